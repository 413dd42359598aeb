//! Calls that assert an answer in both languages, one per recurring error code: shared by the
//! API test files.

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

/// `'<field>' unassigned` (1199010) in both languages.
#[track_caller]
pub fn unassigned(s: &Server, method: &str, path: &str, body: &Value, field: &str) {
    both(
        s,
        method,
        path,
        body,
        1199010,
        &format!("'{field}' unassigned"),
        &format!("'{field}' 未赋值"),
    );
}

/// `No relevant data found` (1199019) in both languages.
#[track_caller]
pub fn not_found(s: &Server, method: &str, path: &str, body: &Value) {
    both(
        s,
        method,
        path,
        body,
        1199019,
        "No relevant data found",
        "未找到相关数据",
    );
}

/// `'<what>' the parameter is invalid or does not exist` (1199011) in both languages.
#[track_caller]
pub fn invalid_param(s: &Server, method: &str, path: &str, body: &Value, what: &str) {
    both(
        s,
        method,
        path,
        body,
        1199011,
        &format!("'{what}' the parameter is invalid or does not exist"),
        &format!("'{what}' 参数无效或不存在"),
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

/// The ids (`info[].id`, in order) and the count of a successful `{count, info}` list that a
/// native POST of `body` to `path` answers in English.
#[track_caller]
pub fn listed(s: &Server, path: &str, body: &Value) -> (u64, Vec<i64>) {
    let r = call(s, "POST", path, body, false);
    assert_eq!(r["result"], true, "list {body}: {r}");
    let ids = r["data"]["info"]
        .as_array()
        .unwrap_or_else(|| panic!("no info: {r}"))
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    (r["data"]["count"].as_u64().unwrap(), ids)
}
