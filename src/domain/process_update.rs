//! Updating a process instance (spec 4.4, `update_process_instance`): how bk-cmdb reads one
//! item of `processes`, the update a raw process receives, and the validation coreservice runs
//! on an update before it sets the fields.
//!
//! bk-cmdb decodes every item into its Go `Process` struct and works from that struct: keys the
//! struct does not have are dropped, a value of the wrong JSON type fails the request (1199000),
//! `bind_info` rows come back with exactly five keys, and a raw process is written back whole,
//! so an omitted field becomes null. The keys sent as an explicit `null` are remembered apart:
//! they clear fields of a template-bound process (see `bound_process`).

use super::decode;
use super::process::{ATTRS, Attr, attr, check_value};
use super::process_fields::{GoType, is_clearable, is_editable, struct_fields};
use crate::clock;
use crate::error::{CcError, code};
use serde_json::{Map, Value};

/// Go's zero `time.Time` as JSON.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Keys an update keeps without validation (bk-cmdb `updateIgnoreKeys`).
const UPDATE_IGNORED_KEYS: &[&str] = &[
    "bk_supplier_account",
    "default",
    "bk_parent_id",
    "bk_biz_id",
    "bk_data_status",
    "bk_inst_id",
];

/// One item of `processes`, as bk-cmdb sees it after decoding it into its `Process` struct.
#[derive(Clone, Debug, PartialEq)]
pub struct UpdateItem {
    /// `bk_process_id` (0 when absent).
    pub id: i64,
    /// The struct written back as JSON: every field of [`struct_fields`], nothing else; null
    /// where the item had none; `bind_info` rows with exactly their five keys.
    pub fields: Map<String, Value>,
    /// The keys the item sent with an explicit `null`, exactly as spelled.
    pub nulls: Vec<String>,
}

/// Decodes one item of `processes` into bk-cmdb's `Process` struct (its
/// `mapstr.DecodeFromMapStr`): keys match case-insensitively, unknown keys are dropped, and any
/// value of the wrong JSON type fails with 1199000.
pub fn decode_item(raw: &Map<String, Value>) -> Result<UpdateItem, CcError> {
    let mut fields = Map::new();
    for (name, ty) in struct_fields() {
        let v = decode::get(raw, name).unwrap_or(&Value::Null);
        fields.insert(name.to_string(), go_value(ty, v)?);
    }
    let id = fields
        .get("bk_process_id")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let nulls = raw
        .iter()
        .filter(|(_, v)| v.is_null())
        .map(|(k, _)| k.clone())
        .collect();
    Ok(UpdateItem { id, fields, nulls })
}

fn go_value(ty: GoType, v: &Value) -> Result<Value, CcError> {
    let bad = CcError::json;
    Ok(match (ty, v) {
        (GoType::OptStr | GoType::OptInt | GoType::OptBool | GoType::BindInfo, Value::Null) => {
            Value::Null
        }
        (GoType::OptStr | GoType::Str, Value::String(s)) => Value::from(s.as_str()),
        (GoType::Str, Value::Null) => Value::from(""),
        (GoType::OptInt | GoType::Int, Value::Number(n)) => {
            Value::from(n.as_i64().ok_or_else(bad)?)
        }
        (GoType::Int, Value::Null) => Value::from(0),
        (GoType::OptBool, Value::Bool(b)) => Value::from(*b),
        (GoType::Time, Value::Null) => Value::from(ZERO_TIME),
        (GoType::Time, Value::String(s)) => {
            // Go's strict RFC 3339: an upper-case `T` and `Z`.
            let strict = s.as_bytes().get(10) == Some(&b'T') && !s.ends_with('z');
            if !strict || clock::parse_ms(s).is_none() {
                return Err(bad());
            }
            Value::from(s.as_str())
        }
        (GoType::BindInfo, Value::Array(rows)) => Value::Array(
            rows.iter()
                .map(bind_row)
                .collect::<Result<Vec<_>, CcError>>()?,
        ),
        _ => return Err(bad()),
    })
}

/// One `bind_info` row through bk-cmdb's `ProcBindInfo` (open-source version): the five
/// standard keys, `template_row_id` 0 when absent, anything else dropped.
fn bind_row(row: &Value) -> Result<Value, CcError> {
    let empty = Map::new();
    let obj = match row {
        Value::Null => &empty,
        Value::Object(m) => m,
        _ => return Err(CcError::json()),
    };
    let get = |k: &str| decode::get(obj, k).unwrap_or(&Value::Null);
    let mut out = Map::new();
    out.insert("enable".into(), go_value(GoType::OptBool, get("enable"))?);
    for k in ["ip", "port", "protocol"] {
        out.insert(k.into(), go_value(GoType::OptStr, get(k))?);
    }
    out.insert(
        "template_row_id".into(),
        go_value(GoType::Int, get("template_row_id"))?,
    );
    Ok(Value::Object(out))
}

/// The update a raw process receives: the whole decoded struct with `bk_biz_id` = the request's
/// business, less the keys proc_server removes (id, times, supplier), then explicit nulls of
/// the clearable fields (`process_fields`). Omitted fields are null in it: a raw process is fully replaced.
pub fn raw_update_data(item: &UpdateItem, biz: i64) -> Map<String, Value> {
    let mut data = item.fields.clone();
    data.insert("bk_biz_id".into(), Value::from(biz));
    for k in [
        "bk_process_id",
        "metadata",
        "last_time",
        "create_time",
        "bk_supplier_account",
    ] {
        data.remove(k);
    }
    for k in item.nulls.iter().filter(|k| is_clearable(k)) {
        data.insert(k.clone(), Value::Null);
    }
    data
}

fn editable(a: &Attr) -> bool {
    is_editable(a.id)
}

/// coreservice's validation of update data (its `validOneUpdateInstKeyVal` for processes), in
/// place: ignored keys stay as they are, keys that are not editable attributes are removed,
/// strings are trimmed, and each value must pass its type rule. An error is 1199011 wrapping
/// the rule's message once, which proc_server passes on unchanged. Keys are judged in the
/// attribute table's order, so the reported one is deterministic.
pub fn validate_update(data: &mut Map<String, Value>) -> Result<(), CcError> {
    data.retain(|k, _| UPDATE_IGNORED_KEYS.contains(&k.as_str()) || attr(k).is_some_and(editable));
    for a in ATTRS {
        if UPDATE_IGNORED_KEYS.contains(&a.id) {
            continue;
        }
        let Some(v) = data.get_mut(a.id) else {
            continue;
        };
        if let Value::String(s) = v {
            let t = s.trim();
            if t.len() != s.len() {
                *s = t.to_string();
            }
        }
        check_value(a, v).map_err(|inner| CcError::wrap(code::PARAMS_IS_INVALID, inner))?;
    }
    Ok(())
}

/// `current` with every key of validated update `data` set (MongoDB's `$set`).
pub fn merge(current: &Map<String, Value>, data: &Map<String, Value>) -> Map<String, Value> {
    let mut out = current.clone();
    for (k, v) in data {
        out.insert(k.clone(), v.clone());
    }
    out
}

/// The fields MongoDB's update sets on every updated process (coreservice `update`).
pub fn stamp_update_fields(map: &mut Map<String, Value>, user: &str, now: &str) {
    map.insert("last_time".into(), Value::from(now));
    map.insert("bk_updated_by".into(), Value::from(user));
    map.insert("bk_updated_at".into(), Value::from(now));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Lang;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn decoding_keeps_only_struct_fields_and_normalises_rows() {
        let item = decode_item(&obj(json!({
            "bk_process_id": 41, "BK_PROCESS_NAME": "n", "unknown": 1, "default": 3,
            "description": null,
            "bind_info": [{"port": "80", "row_id": 9}, null]
        })))
        .unwrap();
        assert_eq!(item.id, 41);
        assert_eq!(item.fields.len(), struct_fields().count());
        assert_eq!(item.fields["bk_process_name"], "n");
        assert_eq!(item.fields["bk_func_name"], Value::Null);
        assert_eq!(item.fields["bk_supplier_account"], "");
        assert_eq!(item.fields["service_instance_id"], 0);
        assert!(!item.fields.contains_key("default"));
        assert_eq!(
            item.fields["bind_info"],
            json!([
                {"enable": null, "ip": null, "port": "80", "protocol": null, "template_row_id": 0},
                {"enable": null, "ip": null, "port": null, "protocol": null, "template_row_id": 0}
            ])
        );
        assert_eq!(item.nulls, vec!["description".to_string()]);
    }

    #[test]
    fn wrong_json_types_fail_decoding() {
        for bad in [
            json!({"bk_process_name": 5}),
            json!({"proc_num": 1.5}),
            json!({"proc_num": "5"}),
            json!({"auto_start": "true"}),
            json!({"bk_biz_id": "7"}),
            json!({"bk_supplier_account": 0}),
            json!({"create_time": "yesterday"}),
            json!({"create_time": "2024-01-02 03:04:05Z"}),
            json!({"create_time": "2024-01-02T03:04:05z"}),
            json!({"create_time": "2024-13-02T03:04:05Z"}),
            json!({"last_time": 5}),
            json!({"bind_info": {}}),
            json!({"bind_info": [1]}),
            json!({"bind_info": [{"port": 80}]}),
            json!({"bind_info": [{"enable": "true"}]}),
            json!({"bind_info": [{"template_row_id": 1.5}]}),
        ] {
            let e = decode_item(&obj(bad.clone())).unwrap_err();
            assert_eq!(e.code, code::JSON_UNMARSHAL, "{bad}");
        }
        for ok in ["2024-01-02T03:04:05Z", "2024-01-02T03:04:05.5+08:00"] {
            assert!(decode_item(&obj(json!({"last_time": ok}))).is_ok(), "{ok}");
        }
    }

    #[test]
    fn raw_update_replaces_everything_but_server_fields() {
        let item = decode_item(&obj(json!({
            "bk_process_id": 41, "bk_process_name": " n ", "bk_func_name": "f",
            "bk_supplier_account": "x", "service_instance_id": 99, "port": null
        })))
        .unwrap();
        let mut data = raw_update_data(&item, 7);
        assert_eq!(data["bk_biz_id"], 7);
        assert_eq!(data["description"], Value::Null);
        assert!(data.contains_key("port"));
        for k in [
            "bk_process_id",
            "last_time",
            "create_time",
            "bk_supplier_account",
        ] {
            assert!(!data.contains_key(k), "{k}");
        }
        validate_update(&mut data).unwrap();
        assert_eq!(data["bk_process_name"], "n");
        assert!(!data.contains_key("service_instance_id"));
        assert!(!data.contains_key("port"));
        assert_eq!(data["bk_biz_id"], 7);
    }

    #[test]
    fn update_errors_are_wrapped_once() {
        let mut data = obj(json!({"bk_process_name": "n", "bk_func_name": null}));
        let e = validate_update(&mut data).unwrap_err();
        assert_eq!(
            e.render(Lang::En),
            "''进程名称' unassigned' the parameter is invalid or does not exist"
        );
        let mut data = obj(json!({"bk_process_name": null, "bk_func_name": null}));
        let e = validate_update(&mut data).unwrap_err();
        assert_eq!(e.render(Lang::Zh), "''进程别名' 未赋值' 参数无效或不存在");
        let mut data = obj(json!({"proc_num": 0}));
        assert!(
            validate_update(&mut data)
                .unwrap_err()
                .render(Lang::En)
                .starts_with("''启动数量' data parameter verification does not pass'")
        );
        let mut data = obj(
            json!({"bind_info": [{"port": "80", "protocol": "1", "enable": null,
            "ip": null, "template_row_id": 0}]}),
        );
        assert_eq!(
            validate_update(&mut data).unwrap_err().render(Lang::En),
            "''bind_info' data parameter verification does not pass' the parameter is invalid or does not exist"
        );
    }

    #[test]
    fn merge_sets_keys_and_keeps_the_rest() {
        let cur = obj(json!({"a": 1, "b": 2}));
        let m = merge(&cur, &obj(json!({"b": null, "c": 3})));
        assert_eq!(Value::Object(m), json!({"a": 1, "b": null, "c": 3}));
    }
}
