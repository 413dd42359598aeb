//! The checks of `serve --auth` and `--jwt-public-key` at the HTTP edge, and their answers, each
//! in the shape of whoever gives it in BlueKing (spec bk-auth.md): the ESB (1306xxx, Python's
//! JSON), the API gateway (HTTP 400 with `X-Bkapi-Error-*` headers), bk-cmdb's JWT filter
//! (1199998 as `text/plain`) and its IAM denial (9900403 with the `permission` object,
//! pretty-printed). The rules (file, actions, JWT) are in `crate::auth`.

use super::envelope::{self, Shape};
use super::identity::Headers;
use super::routes::Family;
use super::{Reply, percent_decode};
use crate::api::Op;
use crate::auth::actions::{self, On};
use crate::auth::jwt::{self, Kind};
use crate::auth::rsa::PublicKey;
use crate::auth::{AppCheck, AuthFile, Live};
use crate::error::{CcError, Lang, code};
use crate::limits::{MAX_APP_CODE_CHARS, MAX_APP_SECRET_CHARS};
use crate::store::Store;
use serde::Serialize;
use serde_json::{Map, Value};
use std::sync::Arc;

/// What `serve` was started with: the auth file in force (reloaded on SIGHUP) and the API
/// gateway's public key. Both absent: nothing is checked, and `X-Bkapi-JWT` names nobody.
#[derive(Clone, Debug, Default)]
pub struct Gate {
    pub auth: Option<Arc<Live>>,
    pub jwt_key: Option<Arc<PublicKey>>,
}

const AUTH_HEADER: &[&str] = &["X-Bkapi-Authorization"];
const JWT_HEADER: &[&str] = &["X-Bkapi-JWT"];

fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// 128 random bits as a version-4 UUID's hex digits (32, no dashes), for the request ids the
/// ESB and the gateway generate.
fn uuid4_hex() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut bits = [0u8; 16];
    for (i, half) in bits.chunks_mut(8).enumerate() {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(n);
        h.write_usize(i);
        h.write_i128(now_ns());
        half.copy_from_slice(&h.finish().to_be_bytes());
    }
    bits[6] = (bits[6] & 0x0f) | 0x40;
    bits[8] = (bits[8] & 0x3f) | 0x80;
    bits.iter().map(|b| format!("{b:02x}")).collect()
}

fn dashed(hex: &str) -> String {
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// The API gateway's refusal: `errorx.lua` and `bk-error-wrapper.lua` (cjson escapes `/`).
fn gateway_error(
    status: u16,
    code: i64,
    code_name: &str,
    message: &str,
    headers: &Headers,
) -> Reply {
    let id = uuid4_hex();
    let body = format!(
        "{{\"code\":{code},\"code_name\":\"{code_name}\",\"message\":{},\"result\":false,\"data\":null}}",
        quote(message).replace('/', "\\/")
    );
    let rid = headers
        .first(&["X-Request-Id"])
        .map(str::to_string)
        .unwrap_or_else(|| id.clone());
    Reply {
        status,
        body,
        headers: Some(vec![
            ("Content-Type", "application/json; charset=utf-8".into()),
            ("X-Bkapi-Error-Code", code.to_string()),
            ("X-Bkapi-Error-Message", message.to_string()),
            ("X-Bkapi-Request-Id", dashed(&id)),
            ("X-Request-Id", rid),
        ]),
    }
}

fn invalid_args(reason: &str, headers: &Headers) -> Reply {
    gateway_error(
        400,
        1640001,
        "INVALID_ARGS",
        &format!("Parameters error [reason={}]", quote(reason)),
        headers,
    )
}

/// The ESB's own refusal (Django's `JsonResponse` of Python's `json.dumps`), with a new
/// `request_id` unless it is raised before the ESB's pipeline starts.
fn esb_error(code: i64, message: &str, with_request_id: bool) -> Reply {
    let mut body = format!(
        "{{\"result\": false, \"code\": {code}, \"data\": null, \"message\": {}",
        quote(message)
    );
    if with_request_id {
        body.push_str(&format!(", \"request_id\": \"{}\"", uuid4_hex()));
    }
    body.push('}');
    Reply {
        status: 200,
        body,
        headers: Some(vec![(
            "Content-Type",
            "application/json; charset=utf-8".into(),
        )]),
    }
}

/// bk-cmdb's answer to a JWT it refuses (`JwtFilter`): 1199998 with the error's text, written
/// by go-restful's `WriteError` (no Content-Type of its own, so Go sniffs `text/plain`).
fn jwt_refused(text: &str) -> Reply {
    Reply {
        status: 200,
        body: envelope::render(Shape::Native, false, code::UNKNOWN, text, "null", ""),
        headers: Some(vec![("Content-Type", "text/plain; charset=utf-8".into())]),
    }
}

/// The app credentials of the gateway's `X-Bkapi-Authorization` (never from the body or query:
/// bk-cmdb's gateway sets `allow_auth_from_params: false`). `Ok` holds the header's object.
fn gateway_app(file: &AuthFile, headers: &Headers) -> Result<Map<String, Value>, Reply> {
    let Some(raw) = headers.first(AUTH_HEADER) else {
        return Err(invalid_args("app code cannot be empty", headers));
    };
    let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(raw) else {
        return Err(invalid_args(
            "request header X-Bkapi-Authorization is not a valid JSON",
            headers,
        ));
    };
    let text = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or_default();
    let (code, secret) = (text("bk_app_code"), text("bk_app_secret"));
    if code.is_empty() {
        return Err(invalid_args("app code cannot be empty", headers));
    }
    if code.chars().count() > MAX_APP_CODE_CHARS {
        return Err(invalid_args(
            &format!("app code cannot be longer than {MAX_APP_CODE_CHARS} characters"),
            headers,
        ));
    }
    if secret.is_empty() {
        let reason = if text("bk_signature").is_empty() {
            "please provide bk_app_secret or bk_signature to verify app"
        } else {
            // Signatures are not supported: nothing can verify one.
            "signature [bk_signature] verification failed, please provide valid bk_signature"
        };
        return Err(invalid_args(reason, headers));
    }
    if secret.chars().count() > MAX_APP_SECRET_CHARS {
        return Err(invalid_args(
            &format!("app secret cannot be longer than {MAX_APP_SECRET_CHARS} characters"),
            headers,
        ));
    }
    match file.check_app(code, secret) {
        AppCheck::Ok => Ok(obj),
        AppCheck::UnknownApp => Err(invalid_args("app not found", headers)),
        AppCheck::WrongSecret => Err(invalid_args(
            "bk_app_code or bk_app_secret is incorrect",
            headers,
        )),
    }
}

/// Native routes, before the identity headers are checked. A JWT (with a key configured) is
/// verified as bk-cmdb does and, valid, names the user and stands for the app; without one, an
/// auth file asks for the app's credentials in `X-Bkapi-Authorization`, as the gateway in front
/// of an apiserver would. `Ok(Some(user))`: the JWT's user, which overrides the headers.
pub(super) fn native(gate: &Gate, headers: &Headers) -> Result<Option<String>, Reply> {
    if let (Some(key), Some(token)) = (&gate.jwt_key, headers.first(JWT_HEADER)) {
        return match jwt::verify(token, key, now_ns()) {
            Ok(claims) => Ok(Some(claims.username)),
            Err(e) => Err(jwt_refused(&e.text)),
        };
    }
    if let Some(live) = &gate.auth {
        gateway_app(&live.get(), headers)?;
    }
    Ok(None)
}

/// Gateway routes: the gateway's app check, then the user it would put in its JWT
/// (`bk_username` of the same header; bk-cmdb refuses an empty one with `user is not set`).
pub(super) fn gateway(gate: &Gate, headers: &Headers) -> Result<Option<String>, Reply> {
    let Some(live) = &gate.auth else {
        return Ok(None);
    };
    let obj = gateway_app(&live.get(), headers)?;
    match obj.get("bk_username").and_then(Value::as_str) {
        Some(u) if !u.is_empty() => Ok(Some(u.to_string())),
        _ => Err(jwt_refused("user is not set")),
    }
}

/// ESB routes (spec bk-auth.md 1.3 and 1.4): the authorization header, the gateway's JWT when
/// one is sent and a key is configured, then the app's secret and the user. `Ok(Some(user))`
/// is the user the ESB would pass on.
pub(super) fn esb(
    gate: &Gate,
    headers: &Headers,
    body: Option<&Value>,
    query: &str,
) -> Result<Option<String>, Reply> {
    let header = headers.first(AUTH_HEADER);
    let from_header = match header.map(serde_json::from_str::<Value>) {
        Some(Ok(Value::Object(obj))) => Some(obj),
        Some(_) if gate.auth.is_some() => {
            return Err(esb_error(
                1306406,
                "Parameters error, request header X-Bkapi-Authorization is not a valid JSON format string",
                false,
            ));
        }
        _ => None,
    };
    if let (Some(key), Some(token)) = (&gate.jwt_key, headers.first(JWT_HEADER)) {
        return match jwt::verify(token, key, now_ns()) {
            Ok(claims) => Ok(Some(claims.username)),
            Err(e) => Err(match e.kind {
                Kind::Expired => esb_error(
                    1306408,
                    "APIGateway JWT verification failed, [X-Bkapi-JWT] has expired",
                    false,
                ),
                Kind::Invalid => esb_error(
                    1306408,
                    "APIGateway JWT verification failed, [X-Bkapi-JWT] decode error, please check if jwt is correct, or if its private key is correct",
                    false,
                ),
                Kind::App => esb_error(
                    1306000,
                    "verify app fail, please check if the authentication parameters are correct",
                    true,
                ),
                Kind::User => esb_error(
                    1306000,
                    "Please provide a valid user identity, such as bk_username",
                    true,
                ),
            }),
        };
    }
    let Some(live) = &gate.auth else {
        return Ok(None);
    };
    // Without the header, the ESB reads the same keys from the query string and the body.
    let params = match from_header {
        Some(obj) => obj,
        None => {
            let mut obj = match body {
                Some(Value::Object(m)) => m.clone(),
                _ => Map::new(),
            };
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                obj.entry(percent_decode(k))
                    .or_insert_with(|| Value::from(percent_decode(v)));
            }
            obj
        }
    };
    let text = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| {
                params
                    .get(*k)
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
            })
            .unwrap_or_default()
            .to_string()
    };
    let secret = text(&["bk_app_secret", "app_secret"]);
    let code = text(&["bk_app_code", "app_code"]);
    let signature = query.split('&').any(|p| p.starts_with("bk_signature="));
    if secret.is_empty() {
        return Err(esb_error(
            1306000,
            if signature {
                // Signatures are not supported: nothing can verify one.
                "Signature [bk_signature] verification failed, please provide valid parameters and signature"
            } else {
                "Signature [bk_signature] and APP Secret [bk_app_secret] cannot be empty at the same time"
            },
            true,
        ));
    }
    if code.is_empty() {
        return Err(esb_error(
            1306000,
            "APP Code [bk_app_code] cannot be empty",
            true,
        ));
    }
    match live.get().check_app(&code, &secret) {
        AppCheck::Ok => {}
        AppCheck::UnknownApp => {
            return Err(esb_error(
                1306000,
                &format!(
                    "Invalid APP Code [bk_app_code={code}], please confirm if the APP Code has been registered"
                ),
                true,
            ));
        }
        AppCheck::WrongSecret => {
            return Err(esb_error(
                1306000,
                &format!(
                    "APP Secret verification failed, pelase confirm if the APP Secret and APP Code [bk_app_code={code}] match"
                ),
                true,
            ));
        }
    }
    // A bk_token would need BlueKing's login service to be believed.
    if !text(&["bk_token"]).is_empty() {
        return Err(esb_error(
            1306000,
            "User authentication failed, please check if the bk_token is valid",
            true,
        ));
    }
    match text(&["bk_username", "username"]) {
        u if u.is_empty() => Err(esb_error(
            1306000,
            "User authentication failed, please provide a valid user identity, such as bk_token, bk_username",
            true,
        )),
        u => Ok(Some(u)),
    }
}

/// bk-cmdb's `metadata.IamPermission` and its parts, in their field order.
#[derive(Serialize)]
struct Permission {
    system_id: &'static str,
    system_name: &'static str,
    actions: Vec<PermAction>,
}

#[derive(Serialize)]
struct PermAction {
    id: &'static str,
    name: &'static str,
    related_resource_types: Vec<PermType>,
}

#[derive(Serialize)]
struct PermType {
    system_id: &'static str,
    system_name: &'static str,
    #[serde(rename = "type")]
    type_id: &'static str,
    type_name: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    instances: Option<Vec<Vec<PermInstance>>>,
}

#[derive(Serialize)]
struct PermInstance {
    #[serde(rename = "type")]
    type_id: &'static str,
    type_name: &'static str,
    id: String,
    name: String,
}

/// bk-cmdb's apiserver `BaseResp` (no `data`), as go-restful writes it: one-space indent.
#[derive(Serialize)]
struct BaseResp<'a> {
    result: bool,
    bk_error_code: i64,
    bk_error_msg: String,
    permission: Option<&'a Permission>,
}

fn pretty<T: Serialize>(v: &T) -> String {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b" ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    if v.serialize(&mut ser).is_err() {
        return "null".into();
    }
    envelope::go_escape(String::from_utf8(out).unwrap_or_default())
}

fn base_resp(code: i64, lang: Lang, permission: Option<&Permission>) -> Reply {
    Reply {
        status: 200,
        body: pretty(&BaseResp {
            result: false,
            bk_error_code: code,
            bk_error_msg: CcError::plain(code).render(lang),
            permission,
        }),
        headers: None,
    }
}

fn denied(family: Family, permission: &Permission, lang: Lang, rid: &str) -> Reply {
    match family {
        // The ESB renames the keys and keeps `permission` (spec 1.5).
        Family::Esb => {
            let perm = serde_json::to_string(permission).unwrap_or_else(|_| "null".into());
            Reply {
                status: 200,
                body: envelope::render_with_permission(
                    Shape::Esb,
                    false,
                    code::NO_PERMISSION,
                    &CcError::plain(code::NO_PERMISSION).render(lang),
                    &perm,
                    "null",
                    rid,
                ),
                headers: None,
            }
        }
        // The gateway passes bk-cmdb's body through unchanged.
        Family::Native | Family::Gateway => base_resp(code::NO_PERMISSION, lang, Some(permission)),
    }
}

fn id_of(body: &Value, key: &str) -> i64 {
    match body.get(key) {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(0),
        _ => 0,
    }
}

/// A denied action on one resource, as bk-cmdb's `GetPermissionToApply` describes it.
fn permission(
    action: &'static str,
    ty: (&'static str, &'static str),
    inst: Option<PermInstance>,
) -> Permission {
    Permission {
        system_id: actions::SYSTEM_ID,
        system_name: actions::SYSTEM_NAME,
        actions: vec![PermAction {
            id: action,
            name: actions::action_name(action).unwrap_or_default(),
            related_resource_types: vec![PermType {
                system_id: actions::SYSTEM_ID,
                system_name: actions::SYSTEM_NAME,
                type_id: ty.0,
                type_name: ty.1,
                instances: inst.map(|i| vec![vec![i]]),
            }],
        }],
    }
}

/// Who asks, for [`permit`]: the route family, the envelope of its ordinary answers, the user,
/// the language and the request id.
#[derive(Clone, Copy)]
pub(super) struct Asker<'a> {
    pub family: Family,
    pub shape: Shape,
    pub user: &'a str,
    pub lang: Lang,
    pub rid: &'a str,
}

/// Whether the asker may run `op` with this body (reads always may). Names in the `permission`
/// object come from the store; a record that is missing has the name `""`.
pub(super) fn permit(
    gate: &Gate,
    store: &Store,
    op: Op,
    body: &Value,
    who: &Asker,
) -> Result<(), Reply> {
    let Asker {
        family,
        shape,
        user,
        lang,
        rid,
    } = *who;
    let (Some(live), Some(need)) = (&gate.auth, actions::need(op)) else {
        return Ok(());
    };
    let file = live.get();
    match need.on {
        On::Biz => {
            let biz = id_of(body, "bk_biz_id");
            if op == Op::CreateServiceTemplate && biz <= 0 {
                // bk-cmdb cannot build the IAM resource (`genServiceTemplateResource`).
                return Err(base_resp(code::AUTHORIZE_FAILED, lang, None));
            }
            if file.allows(user, need.action, biz, None) {
                return Ok(());
            }
            let inst = (biz > 0).then(|| {
                let name = store
                    .read(|tx| tx.business(biz))
                    .ok()
                    .flatten()
                    .map(|b| b.bk_biz_name)
                    .unwrap_or_default();
                PermInstance {
                    type_id: actions::TYPE_BIZ.0,
                    type_name: actions::TYPE_BIZ.1,
                    id: biz.to_string(),
                    name,
                }
            });
            Err(denied(
                family,
                &permission(need.action, actions::TYPE_BIZ, inst),
                lang,
                rid,
            ))
        }
        On::Template(key) => {
            let id = id_of(body, key);
            if id <= 0 {
                // Left to the handler, which refuses the id with bk-cmdb's own error.
                return Ok(());
            }
            let tpl = store.read(|tx| tx.service_template(id)).ok().flatten();
            let biz = tpl
                .as_ref()
                .map_or_else(|| id_of(body, "bk_biz_id"), |t| t.bk_biz_id);
            if file.allows(user, need.action, biz, Some(id)) {
                return Ok(());
            }
            let inst = PermInstance {
                type_id: actions::TYPE_TEMPLATE.0,
                type_name: actions::TYPE_TEMPLATE.1,
                id: id.to_string(),
                name: tpl.map(|t| t.name).unwrap_or_default(),
            };
            Err(denied(
                family,
                &permission(need.action, actions::TYPE_TEMPLATE, Some(inst)),
                lang,
                rid,
            ))
        }
        On::ProcTemplates => {
            let owners: Vec<(i64, i64)> = store
                .read::<_, CcError>(|tx| {
                    let mut owners = Vec::new();
                    let mut owner = |st: i64| -> Result<(), CcError> {
                        if st > 0 {
                            let biz = tx
                                .service_template(st)?
                                .map_or_else(|| id_of(body, "bk_biz_id"), |t| t.bk_biz_id);
                            owners.push((st, biz));
                        }
                        Ok(())
                    };
                    match op {
                        Op::CreateProcTemplates => owner(id_of(body, "service_template_id"))?,
                        Op::UpdateProcTemplate => {
                            let pt = id_of(body, "process_template_id");
                            if let Some(t) = tx.process_template(pt)? {
                                owner(t.service_template_id)?;
                            }
                        }
                        _ => {
                            let ids = body.get("process_templates").and_then(Value::as_array);
                            for id in ids.into_iter().flatten().filter_map(Value::as_i64) {
                                if let Some(t) = tx.process_template(id)? {
                                    owner(t.service_template_id)?;
                                }
                            }
                        }
                    }
                    Ok(owners)
                })
                .unwrap_or_default();
            if owners
                .iter()
                .all(|&(st, biz)| file.allows(user, need.action, biz, Some(st)))
            {
                return Ok(());
            }
            // proc_server's `RespErrorCodeOnly`: the family's ordinary envelope.
            let e = CcError::plain(code::AUTHORIZE_FAILED);
            Err(Reply {
                status: 200,
                body: envelope::render(shape, false, e.code, &e.render(lang), "null", rid),
                headers: None,
            })
        }
    }
}
