//! Who may call and write: the `--auth` file (app codes with their secrets, users with the IAM
//! actions they may use on which businesses and service templates), the IAM action table
//! ([`actions`]) and the verification of the API gateway's signed JWT ([`jwt`], [`rsa`],
//! [`sha`]). Pure: no sockets, no clock (the caller passes the time); reading the file is the
//! one I/O, in [`load`]. The HTTP answers to a refusal live in `http/auth.rs`.

pub mod actions;
pub mod jwt;
pub mod rsa;
pub mod sha;

use crate::limits::{MAX_APP_CODE_CHARS, MAX_APP_SECRET_CHARS, MAX_AUTH_FILE_BYTES};
use serde::Deserialize;
use std::path::Path;
use std::sync::{Arc, RwLock};

/// A grant's scope: one id, or `"*"` for every one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    All,
    Id(i64),
}

impl Scope {
    fn covers(self, id: i64) -> bool {
        matches!(self, Scope::All) || self == Scope::Id(id)
    }
}

/// What a grant is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Biz(Scope),
    Template(Scope),
}

/// Some actions (or `"*"`, every action) on a target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub target: Target,
    /// Empty means every action.
    pub actions: Vec<String>,
}

impl Grant {
    fn has(&self, action: &str) -> bool {
        self.actions.is_empty() || self.actions.iter().any(|a| a == action)
    }
}

/// An app and its secret. `Debug` never shows the secret.
pub struct App {
    pub code: String,
    secret: String,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "App {{ code: {:?}, secret: <hidden> }}", self.code)
    }
}

/// The parsed `--auth` file.
#[derive(Debug, Default)]
pub struct AuthFile {
    pub apps: Vec<App>,
    /// (user name or `"*"` for every user, grants).
    pub users: Vec<(String, Vec<Grant>)>,
}

/// How an app's credentials compare with the file.
#[derive(Debug, PartialEq, Eq)]
pub enum AppCheck {
    Ok,
    UnknownApp,
    WrongSecret,
}

impl AuthFile {
    /// Compares `secret` with the app's in constant time (of the secret's content and length).
    pub fn check_app(&self, code: &str, secret: &str) -> AppCheck {
        match self.apps.iter().find(|a| a.code == code) {
            None => AppCheck::UnknownApp,
            Some(app) if secret_eq(&app.secret, secret) => AppCheck::Ok,
            Some(_) => AppCheck::WrongSecret,
        }
    }

    /// Whether `user` may use `action` on business `biz` (a business resource), or on service
    /// template `template` of business `biz` (a template resource: a grant on its business
    /// covers it, as IAM's resource path does).
    pub fn allows(&self, user: &str, action: &str, biz: i64, template: Option<i64>) -> bool {
        self.users
            .iter()
            .filter(|(name, _)| name == user || name == "*")
            .flat_map(|(_, grants)| grants)
            .any(|g| {
                g.has(action)
                    && match (g.target, template) {
                        (Target::Biz(s), _) => s.covers(biz),
                        (Target::Template(s), Some(t)) => s.covers(t),
                        (Target::Template(_), None) => false,
                    }
            })
    }
}

/// Equality of two secrets whose time depends on neither: both are hashed, and the digests are
/// compared without an early exit.
pub fn secret_eq(a: &str, b: &str) -> bool {
    let (x, y) = (sha::sha256(a.as_bytes()), sha::sha256(b.as_bytes()));
    let diff = x
        .iter()
        .zip(y.iter())
        .fold(0u8, |acc, (p, q)| acc | (p ^ q));
    std::hint::black_box(diff) == 0
}

/// The file as written (JSON).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    apps: Vec<RawApp>,
    #[serde(default)]
    users: Vec<RawUser>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApp {
    bk_app_code: String,
    bk_app_secret: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    bk_username: String,
    #[serde(default)]
    grants: Vec<RawGrant>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrant {
    bk_biz_id: Option<serde_json::Value>,
    service_template_id: Option<serde_json::Value>,
    actions: Vec<String>,
}

fn scope(v: &serde_json::Value, what: &str) -> Result<Scope, String> {
    match v {
        serde_json::Value::String(s) if s == "*" => Ok(Scope::All),
        v => match v.as_i64() {
            Some(id) if id > 0 => Ok(Scope::Id(id)),
            _ => Err(format!("{what} must be a positive id or \"*\", not {v}")),
        },
    }
}

/// Parses the text of an auth file; the error names the first problem (never a secret).
pub fn parse(text: &[u8]) -> Result<AuthFile, String> {
    if text.len() > MAX_AUTH_FILE_BYTES {
        return Err(format!("larger than {MAX_AUTH_FILE_BYTES} bytes"));
    }
    let raw: RawFile = serde_json::from_slice(text).map_err(|e| {
        // serde's message may quote a value; keep only its position, so no secret is echoed.
        format!(
            "not a valid auth file (JSON object with \"apps\" and \"users\") at line {} column {}",
            e.line(),
            e.column()
        )
    })?;
    let mut file = AuthFile::default();
    for (i, a) in raw.apps.into_iter().enumerate() {
        let n = a.bk_app_code.chars().count();
        if n == 0 || n > MAX_APP_CODE_CHARS {
            return Err(format!(
                "apps[{i}]: bk_app_code must have 1 to {MAX_APP_CODE_CHARS} characters"
            ));
        }
        let n = a.bk_app_secret.chars().count();
        if n == 0 || n > MAX_APP_SECRET_CHARS {
            return Err(format!(
                "apps[{i}] ({}): bk_app_secret must have 1 to {MAX_APP_SECRET_CHARS} characters",
                a.bk_app_code
            ));
        }
        if file.apps.iter().any(|x| x.code == a.bk_app_code) {
            return Err(format!("apps[{i}]: {} is listed twice", a.bk_app_code));
        }
        file.apps.push(App {
            code: a.bk_app_code,
            secret: a.bk_app_secret,
        });
    }
    for (i, u) in raw.users.into_iter().enumerate() {
        if u.bk_username.is_empty() {
            return Err(format!("users[{i}]: bk_username is empty"));
        }
        if file.users.iter().any(|(n, _)| *n == u.bk_username) {
            return Err(format!("users[{i}]: {} is listed twice", u.bk_username));
        }
        let mut grants = Vec::new();
        for (j, g) in u.grants.into_iter().enumerate() {
            let at = format!("users[{i}].grants[{j}]");
            let target = match (&g.bk_biz_id, &g.service_template_id) {
                (Some(b), None) => Target::Biz(scope(b, &format!("{at}.bk_biz_id"))?),
                (None, Some(t)) => {
                    Target::Template(scope(t, &format!("{at}.service_template_id"))?)
                }
                _ => {
                    return Err(format!(
                        "{at}: give exactly one of bk_biz_id and service_template_id"
                    ));
                }
            };
            if g.actions.is_empty() {
                return Err(format!("{at}: actions is empty"));
            }
            let mut actions = Vec::new();
            for a in g.actions {
                if a == "*" {
                    actions.clear();
                    break;
                }
                if actions::action_name(&a).is_none() {
                    return Err(format!("{at}: unknown IAM action {a:?}"));
                }
                actions.push(a);
            }
            grants.push(Grant { target, actions });
        }
        file.users.push((u.bk_username, grants));
    }
    Ok(file)
}

/// Reads and parses an auth file.
pub fn load(path: &Path) -> Result<AuthFile, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > MAX_AUTH_FILE_BYTES as u64 {
        return Err(format!(
            "{}: larger than {MAX_AUTH_FILE_BYTES} bytes",
            path.display()
        ));
    }
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The auth file in force, replaced whole on reload: a request reads one version from start to
/// end, and a reload never waits for requests (it swaps a pointer).
#[derive(Debug)]
pub struct Live {
    current: RwLock<Arc<AuthFile>>,
}

impl Live {
    pub fn new(file: AuthFile) -> Live {
        Live {
            current: RwLock::new(Arc::new(file)),
        }
    }

    pub fn get(&self) -> Arc<AuthFile> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn replace(&self, file: AuthFile) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"{
      "apps": [{"bk_app_code": "ci", "bk_app_secret": "s3cret"}],
      "users": [
        {"bk_username": "root", "grants": [{"bk_biz_id": "*", "actions": ["*"]}]},
        {"bk_username": "bob", "grants": [
          {"bk_biz_id": 7, "actions": ["edit_biz_service_instance"]},
          {"service_template_id": 9, "actions": ["edit_biz_service_template"]}]}
      ]
    }"#;

    #[test]
    fn apps_and_grants() {
        let f = parse(FILE.as_bytes()).unwrap();
        assert_eq!(f.check_app("ci", "s3cret"), AppCheck::Ok);
        assert_eq!(f.check_app("ci", "s3cre"), AppCheck::WrongSecret);
        assert_eq!(f.check_app("other", "s3cret"), AppCheck::UnknownApp);
        assert!(f.allows("root", "delete_biz_service_template", 3, Some(4)));
        assert!(f.allows("bob", "edit_biz_service_instance", 7, None));
        assert!(!f.allows("bob", "edit_biz_service_instance", 8, None));
        assert!(!f.allows("bob", "create_biz_service_instance", 7, None));
        assert!(f.allows("bob", "edit_biz_service_template", 8, Some(9)));
        assert!(!f.allows("bob", "edit_biz_service_template", 8, Some(10)));
        assert!(!f.allows("bob", "edit_biz_service_template", 8, None));
        assert!(!f.allows("carol", "edit_biz_service_instance", 7, None));
        assert!(!format!("{f:?}").contains("s3cret"));
    }

    #[test]
    fn refusals_name_the_problem_and_never_a_secret() {
        for (text, want) in [
            (
                r#"{"apps":[{"bk_app_code":"","bk_app_secret":"x"}]}"#,
                "apps[0]",
            ),
            (
                r#"{"users":[{"bk_username":"a","grants":[{"actions":["*"]}]}]}"#,
                "exactly one",
            ),
            (
                r#"{"users":[{"bk_username":"a","grants":[{"bk_biz_id":1,"actions":["fly"]}]}]}"#,
                "unknown IAM action",
            ),
            (
                r#"{"users":[{"bk_username":"a","grants":[{"bk_biz_id":0,"actions":["*"]}]}]}"#,
                "positive id",
            ),
            (
                r#"{"apps":[{"bk_app_code":"a","bk_app_secret":"topsecret","x":1}]}"#,
                "line 1",
            ),
            (
                r#"{"apps":[{"bk_app_code":"a","bk_app_secret":7}]}"#,
                "line 1",
            ),
        ] {
            let e = parse(text.as_bytes()).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
            assert!(!e.contains("topsecret"), "{e}");
        }
    }

    #[test]
    fn secret_equality() {
        assert!(secret_eq("abc", "abc"));
        assert!(!secret_eq("abc", "abd"));
        assert!(!secret_eq("abc", "abcd"));
        assert!(!secret_eq("", "a"));
    }
}
