//! `bind_info` on process instances (spec 2.5): a JSON array of rows whose keys are `ip`,
//! `port`, `protocol`, `enable`, `template_row_id`, each validated only when present.

use regex::Regex;
use serde_json::Value;
use std::sync::OnceLock;

/// bk-cmdb's IPv4 pattern (migration `y3.10.202305110949`), `\d` spelled ASCII.
const IPV4: &str = r"((1?[0-9]{1,2}|2[0-4][0-9]|25[0-5])[.]){3}(1?[0-9]{1,2}|2[0-4][0-9]|25[0-5])";
/// bk-cmdb's IPv6 pattern (same migration), verbatim but for `\d`.
const IPV6: &str = r"(([0-9a-fA-F]{1,4}:){7,7}[0-9a-fA-F]{1,4}|([0-9a-fA-F]{1,4}:){1,7}:|([0-9a-fA-F]{1,4}:){1,6}:[0-9a-fA-F]{1,4}|([0-9a-fA-F]{1,4}:){1,5}(:[0-9a-fA-F]{1,4}){1,2}|([0-9a-fA-F]{1,4}:){1,4}(:[0-9a-fA-F]{1,4}){1,3}|([0-9a-fA-F]{1,4}:){1,3}(:[0-9a-fA-F]{1,4}){1,4}|([0-9a-fA-F]{1,4}:){1,2}(:[0-9a-fA-F]{1,4}){1,5}|[0-9a-fA-F]{1,4}:((:[0-9a-fA-F]{1,4}){1,6})|:((:[0-9a-fA-F]{1,4}){1,7}|:)|fe80:(:[0-9a-fA-F]{0,4}){0,4}%[0-9a-zA-Z]{1,}|::(ffff(:0{1,4}){0,1}:){0,1}((25[0-5]|(2[0-4]|1{0,1}[0-9]){0,1}[0-9])\.){3,3}(25[0-5]|(2[0-4]|1{0,1}[0-9]){0,1}[0-9])|([0-9a-fA-F]{1,4}:){1,4}:((25[0-5]|(2[0-4]|1{0,1}[0-9]){0,1}[0-9])\.){3,3}(25[0-5]|(2[0-4]|1{0,1}[0-9]){0,1}[0-9]))";

fn ip_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(&format!("(^{IPV4}$)|(^{IPV6}$)")).expect("the bind ip pattern compiles")
    })
}

/// True if `s` is an IP bk-cmdb's bind-info pattern accepts.
pub fn is_bind_ip(s: &str) -> bool {
    ip_regex().is_match(s)
}

/// One port `1..65535` without leading zeros (bk-cmdb's port pattern, one alternative).
pub fn is_port(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 5
        && b[0] != b'0'
        && b.iter().all(u8::is_ascii_digit)
        && s.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p))
}

/// One port or one range `a-b` (no lists; `a > b` is accepted, as bk-cmdb's pattern does).
pub fn is_port_or_range(s: &str) -> bool {
    match s.split_once('-') {
        Some((a, b)) => is_port(a) && is_port(b),
        None => is_port(s),
    }
}

const KEYS: [&str; 5] = ["ip", "port", "protocol", "enable", "template_row_id"];

/// A `bind_info` value that breaks a rule; reported by the caller as
/// `'bind_info' data parameter verification does not pass`.
#[derive(Debug, PartialEq, Eq)]
pub struct Invalid;

/// Validates a `bind_info` value of a process instance.
pub fn validate(value: &Value) -> Result<(), Invalid> {
    let rows = match value {
        Value::Null => return Ok(()),
        Value::Array(rows) => rows,
        _ => return Err(Invalid),
    };
    for row in rows {
        let Value::Object(row) = row else {
            return Err(Invalid);
        };
        for (key, v) in row {
            if !KEYS.contains(&key.as_str()) {
                return Err(Invalid);
            }
            let ok = match key.as_str() {
                "ip" => match v {
                    Value::Null => true,
                    Value::String(s) => {
                        let t = s.trim();
                        t.is_empty() || is_bind_ip(t)
                    }
                    _ => false,
                },
                "port" => matches!(v, Value::String(s) if is_port_or_range(s.trim())),
                "protocol" => {
                    matches!(v, Value::String(s) if matches!(s.as_str(), "1" | "2" | "3" | "4"))
                }
                "enable" => v.is_boolean(),
                "template_row_id" => v.is_number() || v.is_null(),
                _ => false,
            };
            if !ok {
                return Err(Invalid);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ips() {
        for ok in [
            "127.0.0.1",
            "0.0.0.0",
            "01.2.3.4",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1%eth0",
            "2001:db8::8a2e:370:7334",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_bind_ip(ok), "{ok}");
        }
        for bad in [
            "1",
            "256.1.1.1",
            "1.2.3",
            "1.2.3.4.5",
            "x",
            "1.2.3.4 ",
            "١.2.3.4",
        ] {
            assert!(!is_bind_ip(bad), "{bad}");
        }
    }

    #[test]
    fn ports() {
        for ok in ["1", "80", "65535", "8000-8080", "9000-80"] {
            assert!(is_port_or_range(ok), "{ok}");
        }
        for bad in ["0", "65536", "080", "80,81", "", "-", "80-", "a"] {
            assert!(!is_port_or_range(bad), "{bad}");
        }
    }

    #[test]
    fn rows() {
        assert!(validate(&json!([])).is_ok());
        assert!(validate(&json!(null)).is_ok());
        assert!(validate(&json!([{"port": "80"}])).is_ok());
        assert!(validate(&json!([{"ip": "", "port": "80", "protocol": "1", "enable": false, "template_row_id": 3}])).is_ok());
        assert!(validate(&json!([{"row_id": 1}])).is_err());
        assert!(validate(&json!([{"port": null}])).is_err());
        assert!(validate(&json!([{"protocol": 1}])).is_err());
        assert!(validate(&json!([{"enable": null}])).is_err());
        assert!(validate(&json!([{"ip": "1"}])).is_err());
        assert!(validate(&json!({})).is_err());
        assert!(validate(&json!([1])).is_err());
    }
}
