//! The bk-cmdb a push writes into, called as a BlueKing app calls it: through the ESB
//! (`/api/c/compapi/v2/cc/{name}/`) or the API gateway (`/api/bk-cmdb/{stage}/api/v3/...`),
//! with the app's credentials in `X-Bkapi-Authorization`.

use crate::client::Client;
use crate::http::routes::ROUTES;
use serde_json::{Value, json};

/// Which door of the target the push calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Esb,
    Gateway,
}

/// Why a call did not give its data.
#[derive(Debug)]
pub enum CallError {
    /// The target answered `result: false`: its code and message.
    Refused {
        api: String,
        code: i64,
        message: String,
    },
    /// No answer, or not one of bk-cmdb's.
    Failed { api: String, why: String },
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Refused { api, code, message } => {
                write!(f, "the target refused {api}: {code} {message}")
            }
            CallError::Failed { api, why } => write!(f, "{api} failed: {why}"),
        }
    }
}

/// A connection to the target and how to address it.
pub struct Target {
    client: Client,
    prefix: String,
    family: Family,
    stage: String,
    /// Calls made, for the summary.
    pub calls: u64,
}

/// Where the push goes and as whom.
pub struct Address<'a> {
    /// `http://host:port` with an optional path prefix.
    pub url: &'a str,
    pub family: Family,
    pub stage: &'a str,
    pub app_code: &'a str,
    pub app_secret: &'a str,
    pub user: &'a str,
}

impl Target {
    pub fn connect(a: &Address) -> Result<Target, String> {
        let rest = a
            .url
            .strip_prefix("http://")
            .ok_or_else(|| format!("--to {}: only http:// addresses are supported", a.url))?;
        let (host, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let host = if host.contains(':') {
            host.to_string()
        } else {
            format!("{host}:80")
        };
        let auth = json!({"bk_app_code": a.app_code, "bk_app_secret": a.app_secret,
            "bk_username": a.user})
        .to_string();
        let client = Client::connect_with(
            &host,
            &[
                ("X-Bkapi-Authorization", auth.as_str()),
                ("X-Bkcmdb-Language", "en"),
                ("Blueking-Language", "en"),
            ],
        )?;
        Ok(Target {
            client,
            prefix: prefix.to_string(),
            family: a.family,
            stage: a.stage.to_string(),
            calls: 0,
        })
    }

    /// Calls the API `name` (its ESB name) with `body`; the answer's `data`.
    pub fn call(&mut self, name: &str, body: &Value) -> Result<Value, CallError> {
        let failed = |why: String| CallError::Failed {
            api: name.to_string(),
            why,
        };
        let (method, path) = self.path_of(name, body).map_err(failed)?;
        self.calls += 1;
        let (status, answer) = self
            .client
            .call(method, &path, body.to_string().as_bytes())
            .map_err(failed)?;
        let v: Value = serde_json::from_slice(answer).map_err(|_| {
            failed(format!(
                "HTTP {status}, not JSON: {}",
                String::from_utf8_lossy(&answer[..answer.len().min(200)])
            ))
        })?;
        if v["result"] == json!(true) {
            return Ok(v["data"].clone());
        }
        let code = v["code"]
            .as_i64()
            .or_else(|| v["bk_error_code"].as_i64())
            .unwrap_or(-1);
        let message = v["message"]
            .as_str()
            .or_else(|| v["bk_error_msg"].as_str())
            .unwrap_or("")
            .to_string();
        Err(CallError::Refused {
            api: name.to_string(),
            code,
            message,
        })
    }

    fn path_of(&self, name: &str, body: &Value) -> Result<(&'static str, String), String> {
        let route = ROUTES
            .iter()
            .find(|r| r.esb_name == name)
            .ok_or_else(|| format!("no route named {name}"))?;
        match self.family {
            Family::Esb => Ok((
                "POST",
                format!("{}/api/c/compapi/v2/cc/{name}/", self.prefix),
            )),
            Family::Gateway => {
                let mut path = String::new();
                for seg in route.path.split('/').skip(1) {
                    path.push('/');
                    match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                        Some("bk_supplier_account") => path.push('0'),
                        Some(param) => match &body[param] {
                            Value::Number(n) => path.push_str(&n.to_string()),
                            Value::String(s) => path.push_str(s),
                            _ => return Err(format!("{name}: no {param} for its path")),
                        },
                        None => path.push_str(seg),
                    }
                }
                Ok((
                    route.method,
                    format!("{}/api/bk-cmdb/{}{path}", self.prefix, self.stage),
                ))
            }
        }
    }
}
