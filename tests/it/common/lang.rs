//! Calls that assert an answer in both languages: shared by the template test files.

use super::{NATIVE_EN, NATIVE_ZH, Server, err_native};
use serde_json::Value;

/// A native request in English (`zh` false) or Chinese; the answer must be HTTP 200.
#[track_caller]
pub fn call(s: &Server, method: &str, path: &str, body: &Value, zh: bool) -> Value {
    let headers: &[(&str, &str)] = if zh { &NATIVE_ZH } else { &NATIVE_EN };
    let raw = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let r = s.request(method, path, headers, &raw);
    assert_eq!(r.status, 200, "{method} {path} {body}: {}", r.body);
    r.json()
}

/// Asserts the same error code in English and in Chinese, with both texts.
#[track_caller]
pub fn both(s: &Server, method: &str, path: &str, body: &Value, code: i64, en: &str, zh: &str) {
    assert_eq!(
        call(s, method, path, body, false),
        err_native(code, en),
        "en, {method} {path} {body}"
    );
    assert_eq!(
        call(s, method, path, body, true),
        err_native(code, zh),
        "zh, {method} {path} {body}"
    );
}

/// `'<field>' data parameter verification does not pass` (1199006) in both languages.
#[track_caller]
pub fn invalid(s: &Server, method: &str, path: &str, body: &Value, field: &str) {
    both(
        s,
        method,
        path,
        body,
        1199006,
        &format!("'{field}' data parameter verification does not pass"),
        &format!("'{field}' 数据参数校验不通过"),
    );
}

/// `<what> exceed the limit <max>` (1199035) in both languages.
#[track_caller]
pub fn exceed_limit(s: &Server, method: &str, path: &str, body: &Value, what: &str, max: usize) {
    both(
        s,
        method,
        path,
        body,
        1199035,
        &format!(" {what} exceed the limit {max}"),
        &format!(" {what} 超过限制 {max}"),
    );
}

/// `Deserializing JSON data failed` (1199000) in both languages.
#[track_caller]
pub fn json_error(s: &Server, method: &str, path: &str, body: &Value) {
    both(
        s,
        method,
        path,
        body,
        1199000,
        "Deserializing JSON data failed",
        "反序列化JSON数据失败",
    );
}
