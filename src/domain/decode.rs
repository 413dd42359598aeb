//! Decoding request bodies the way bk-cmdb's Go decoder does (spec 2.1): unknown keys ignored,
//! keys matched case-insensitively (an exact match first), `null` leaving the zero value, and a
//! JSON type that does not fit the field failing the whole request with 1199000.

use crate::error::CcError;
use serde_json::{Map, Value};

/// The top-level object of a body: an empty body or `null` is an empty object.
pub fn body_object(body: &Value) -> Result<&Map<String, Value>, CcError> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    match body {
        Value::Null => Ok(EMPTY.get_or_init(Map::new)),
        Value::Object(m) => Ok(m),
        _ => Err(CcError::json()),
    }
}

/// The value of `key`: an exact match, else the first case-insensitive one.
pub fn get<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// Takes the value [`get`] finds out of `obj` (for a caller that owns the body: no copy).
pub fn take(obj: &mut Map<String, Value>, key: &str) -> Option<Value> {
    if let Some(v) = obj.remove(key) {
        return Some(v);
    }
    let found = obj.keys().find(|k| k.eq_ignore_ascii_case(key))?.clone();
    obj.remove(&found)
}

/// An `int64` field: absent or null → 0; a non-integral or out-of-range number, or any other
/// JSON type → 1199000.
pub fn int(obj: &Map<String, Value>, key: &str) -> Result<i64, CcError> {
    match get(obj, key) {
        None | Some(Value::Null) => Ok(0),
        Some(v) => as_int(v),
    }
}

/// A JSON value that must fit an `int64`.
pub fn as_int(v: &Value) -> Result<i64, CcError> {
    match v {
        Value::Number(n) => n.as_i64().ok_or_else(CcError::json),
        _ => Err(CcError::json()),
    }
}

/// A `bool` field: absent or null → false.
pub fn boolean(obj: &Map<String, Value>, key: &str) -> Result<bool, CcError> {
    match get(obj, key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(CcError::json()),
    }
}

/// A `string` field: absent or null → "".
pub fn string(obj: &Map<String, Value>, key: &str) -> Result<String, CcError> {
    match get(obj, key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(CcError::json()),
    }
}

/// A slice field: absent or null → empty.
pub fn array<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<&'a [Value], CcError> {
    match get(obj, key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(CcError::json()),
    }
}

/// An `[]int64` field.
pub fn int_array(obj: &Map<String, Value>, key: &str) -> Result<Vec<i64>, CcError> {
    array(obj, key)?
        .iter()
        .map(|v| match v {
            Value::Null => Ok(0),
            v => as_int(v),
        })
        .collect()
}

/// A `map[string]interface{}` field: absent or null → `None`; not an object → 1199000.
pub fn object<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a Map<String, Value>>, CcError> {
    match get(obj, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(CcError::json()),
    }
}

/// A `[]string` field: absent or null → empty; a null element is ""; any other JSON type →
/// 1199000.
pub fn string_array(obj: &Map<String, Value>, key: &str) -> Result<Vec<String>, CcError> {
    array(obj, key)?
        .iter()
        .map(|v| match v {
            Value::Null => Ok(String::new()),
            Value::String(s) => Ok(s.clone()),
            _ => Err(CcError::json()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_like_fields() {
        let v = json!({"service_instance_Id": 5, "BK_BIZ_ID": 2, "f": 1.5, "s": "2", "n": null});
        let o = v.as_object().unwrap();
        assert_eq!(int(o, "service_instance_id").unwrap(), 5);
        assert_eq!(int(o, "bk_biz_id").unwrap(), 2);
        assert!(int(o, "f").is_err());
        assert!(int(o, "s").is_err());
        assert_eq!(int(o, "n").unwrap(), 0);
        assert_eq!(int(o, "absent").unwrap(), 0);
        assert!(body_object(&json!([1])).is_err());
        assert!(body_object(&Value::Null).unwrap().is_empty());
    }
}
