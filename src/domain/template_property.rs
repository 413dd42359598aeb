//! Process-template properties (spec 4.1, 4.2): the `{value, as_default_value}` wrappers, decoded
//! as strictly as bk-cmdb's Go structs decode them, validated, updated and rendered in bk-cmdb's
//! field order. Pure: no store, no clock.

use super::bind_info::is_port_or_range;
use super::decode;
use super::process_fields::{PROPERTY, property_position};
use crate::error::{CcError, code};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

/// The JSON type of one property's `value`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    Int,
    Str,
    Bool,
}

const PROC_NUM: usize = property_position("proc_num");
const FUNC_NAME: usize = property_position("bk_func_name");
const PRIORITY: usize = property_position("priority");
const PROCESS_NAME: usize = property_position("bk_process_name");
const START_CHECK_SECS: usize = property_position("bk_start_check_secs");
const TIMEOUT: usize = property_position("timeout");
const START_PARAM_REGEX: usize = property_position("bk_start_param_regex");

/// Bind-type codes of `bind_info[].ip.value` (bk-cmdb `SocketBindType`).
pub const BIND_IP_CODES: [&str; 8] = ["1", "2", "3", "4", "5", "6", "7", "8"];
/// Protocol codes of `bind_info[].protocol.value` (bk-cmdb `ProtocolType`: TCP, UDP, TCP6, UDP6).
pub const PROTOCOL_CODES: [&str; 4] = ["1", "2", "3", "4"];

/// One `{value, as_default_value}` wrapper. `value` is `Null` when unset; `as_default_value: true`
/// locks the field for every instance of the template.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Prop {
    pub value: Value,
    pub as_default_value: Option<bool>,
}

impl Prop {
    pub fn locked(&self) -> bool {
        self.as_default_value == Some(true)
    }
    pub fn str(&self) -> Option<&str> {
        self.value.as_str()
    }
}

/// Struct order, as Go renders it: `value`, then `as_default_value`.
impl Serialize for Prop {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("value", &self.value)?;
        m.serialize_entry("as_default_value", &self.as_default_value)?;
        m.end()
    }
}

/// One row of a template's `bind_info`. Rendered with sorted keys, as bk-cmdb renders it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BindRow {
    pub enable: Prop,
    pub ip: Prop,
    pub port: Prop,
    pub protocol: Prop,
    pub row_id: i64,
}

/// bk-cmdb renders a row through a map, so its keys come sorted.
impl Serialize for BindRow {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(5))?;
        m.serialize_entry("enable", &self.enable)?;
        m.serialize_entry("ip", &self.ip)?;
        m.serialize_entry("port", &self.port)?;
        m.serialize_entry("protocol", &self.protocol)?;
        m.serialize_entry("row_id", &self.row_id)?;
        m.end()
    }
}

/// A template's `bind_info`: `value` is `None` for Go's nil slice (rendered `null`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BindInfo {
    pub value: Option<Vec<BindRow>>,
    pub as_default_value: Option<bool>,
}

/// A process template's `property` (bk-cmdb `ProcessProperty`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcessProperty {
    /// Indexed like [`PROPERTY`].
    pub fields: [Prop; 17],
    pub bind_info: BindInfo,
}

impl Serialize for ProcessProperty {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(PROPERTY.len() + 1))?;
        for ((name, _), prop) in PROPERTY.iter().zip(&self.fields) {
            m.serialize_entry(name, prop)?;
        }
        m.serialize_entry("bind_info", &self.bind_info)?;
        m.end()
    }
}

impl Serialize for BindInfo {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("value", &self.value)?;
        m.serialize_entry("as_default_value", &self.as_default_value)?;
        m.end()
    }
}

fn typed(v: Option<&Value>, ty: Ty) -> Result<Value, CcError> {
    match (v, ty) {
        (None | Some(Value::Null), _) => Ok(Value::Null),
        (Some(Value::Number(n)), Ty::Int) => n.as_i64().map(Value::from).ok_or_else(CcError::json),
        (Some(s @ Value::String(_)), Ty::Str) => Ok(s.clone()),
        (Some(b @ Value::Bool(_)), Ty::Bool) => Ok(b.clone()),
        _ => Err(CcError::json()),
    }
}

fn decode_flag(obj: &Map<String, Value>) -> Result<Option<bool>, CcError> {
    match decode::get(obj, "as_default_value") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(CcError::json()),
    }
}

fn decode_prop(v: Option<&Value>, ty: Ty) -> Result<Prop, CcError> {
    match v {
        None | Some(Value::Null) => Ok(Prop::default()),
        Some(Value::Object(o)) => Ok(Prop {
            value: typed(decode::get(o, "value"), ty)?,
            as_default_value: decode_flag(o)?,
        }),
        Some(_) => Err(CcError::json()),
    }
}

fn decode_row(v: &Value) -> Result<BindRow, CcError> {
    let o = match v {
        Value::Null => return Ok(BindRow::default()),
        Value::Object(o) => o,
        _ => return Err(CcError::json()),
    };
    Ok(BindRow {
        enable: decode_prop(decode::get(o, "enable"), Ty::Bool)?,
        ip: decode_prop(decode::get(o, "ip"), Ty::Str)?,
        port: decode_prop(decode::get(o, "port"), Ty::Str)?,
        protocol: decode_prop(decode::get(o, "protocol"), Ty::Str)?,
        row_id: decode::int(o, "row_id")?,
    })
}

fn decode_bind_info(v: Option<&Value>) -> Result<BindInfo, CcError> {
    let o = match v {
        None | Some(Value::Null) => return Ok(BindInfo::default()),
        Some(Value::Object(o)) => o,
        Some(_) => return Err(CcError::json()),
    };
    let value = match decode::get(o, "value") {
        None | Some(Value::Null) => None,
        Some(Value::Array(rows)) => Some(rows.iter().map(decode_row).collect::<Result<_, _>>()?),
        Some(_) => return Err(CcError::json()),
    };
    Ok(BindInfo {
        value,
        as_default_value: decode_flag(o)?,
    })
}

impl ProcessProperty {
    /// Decodes a JSON object as Go decodes it into `ProcessProperty`: unknown keys ignored, keys
    /// case-insensitive, a value of the wrong JSON type → 1199000.
    pub fn decode(obj: &Map<String, Value>) -> Result<ProcessProperty, CcError> {
        let mut p = ProcessProperty::default();
        for (i, (name, ty)) in PROPERTY.iter().enumerate() {
            p.fields[i] = decode_prop(decode::get(obj, name), *ty)?;
        }
        p.bind_info = decode_bind_info(decode::get(obj, "bind_info"))?;
        Ok(p)
    }

    /// Reads a stored property (the store keeps it as JSON).
    pub fn from_stored(v: &Value) -> ProcessProperty {
        v.as_object()
            .and_then(|o| ProcessProperty::decode(o).ok())
            .unwrap_or_default()
    }

    /// The JSON kept in the store.
    pub fn to_stored(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    pub fn field(&self, name: &str) -> Option<&Prop> {
        PROPERTY
            .iter()
            .position(|(n, _)| *n == name)
            .map(|i| &self.fields[i])
    }

    pub fn process_name(&self) -> &str {
        self.fields[PROCESS_NAME].str().unwrap_or("")
    }
    pub fn func_name(&self) -> &str {
        self.fields[FUNC_NAME].str().unwrap_or("")
    }
    pub fn start_param_regex(&self) -> &str {
        self.fields[START_PARAM_REGEX].str().unwrap_or("")
    }

    /// `batch_create_proc_template`'s check: a string value with leading or trailing white space
    /// is refused with bk-cmdb's raw text (answered as 1199998).
    pub fn check_spaces(&self) -> Result<(), CcError> {
        for ((name, ty), prop) in PROPERTY.iter().zip(&self.fields) {
            if *ty != Ty::Str {
                continue;
            }
            if let Some(s) = prop.str()
                && s.trim() != s
            {
                return Err(CcError::raw(
                    code::UNKNOWN,
                    format!("field {name} contains space: {s}"),
                ));
            }
        }
        Ok(())
    }

    /// bk-cmdb `ProcessProperty.Validate`: returns the field name reported in 1199006, and
    /// numbers the `bind_info` rows that have no `row_id` (max + 1, + 2, …).
    pub fn validate(&mut self) -> Result<(), String> {
        let mut max_row = 0;
        if let Some(rows) = &self.bind_info.value {
            for (i, row) in rows.iter().enumerate() {
                max_row = max_row.max(row.row_id);
                let ip = row.ip.str().unwrap_or("");
                if !ip.is_empty() && !BIND_IP_CODES.contains(&ip) {
                    return Err(format!("bind_info[{i}].ip"));
                }
                if !port_list_ok(row.port.str().unwrap_or("")) {
                    return Err(format!("bind_info[{i}].port"));
                }
                let protocol = row.protocol.str().unwrap_or("");
                if !PROTOCOL_CODES.contains(&protocol) {
                    return Err(format!("bind_info[{i}].protocol"));
                }
                if !ip.is_empty() && !families_match(ip, protocol) {
                    return Err(format!("bind_info[{i}].(ip and protocol)"));
                }
            }
        }
        if let Some(rows) = &mut self.bind_info.value {
            for row in rows.iter_mut().filter(|r| r.row_id == 0) {
                max_row += 1;
                row.row_id = max_row;
            }
        }
        if self.process_name().is_empty() {
            return Err("bk_process_name".into());
        }
        if self.func_name().is_empty() {
            return Err("bk_func_name".into());
        }
        for (idx, lo, hi) in [
            (START_CHECK_SECS, 1, 10000),
            (TIMEOUT, 1, 10000),
            (PROC_NUM, 1, 10000),
            (PRIORITY, -100, 10000),
        ] {
            if let Some(n) = self.fields[idx].value.as_i64()
                && !(lo..=hi).contains(&n)
            {
                return Err(PROPERTY[idx].0.into());
            }
        }
        Ok(())
    }

    /// Locks the names, as bk-cmdb does on every create and update.
    pub fn lock_names(&mut self) {
        self.fields[PROCESS_NAME].as_default_value = Some(true);
        self.fields[FUNC_NAME].as_default_value = Some(true);
    }

    /// bk-cmdb `ProcessProperty.Update`: every key present in the raw request replaces the whole
    /// wrapper (a missing `as_default_value` becomes null), except `bk_func_name`, which an update
    /// never changes; `bind_info` is replaced whole when present.
    pub fn update(&mut self, input: &ProcessProperty, raw: &Map<String, Value>) {
        for (i, (name, _)) in PROPERTY.iter().enumerate() {
            if i != FUNC_NAME && raw.contains_key(*name) {
                self.fields[i] = input.fields[i].clone();
            }
        }
        if raw.contains_key("bind_info") {
            self.bind_info = input.bind_info.clone();
        }
    }
}

/// A template port value: ports and ranges in 1..65535, comma separated, start ≤ end, no overlap.
fn port_list_ok(s: &str) -> bool {
    if s.is_empty() || !is_port_or_range_list(s) {
        return false;
    }
    let mut seen: Vec<(u32, u32)> = Vec::new();
    for item in s.split(',') {
        let (a, b) = match item.split_once('-') {
            Some((a, b)) => (a, b),
            None => (item, item),
        };
        let (Ok(start), Ok(end)) = (a.parse::<u32>(), b.parse::<u32>()) else {
            return false;
        };
        if start > end || seen.iter().any(|&(s0, e0)| !(end < s0 || start > e0)) {
            return false;
        }
        seen.push((start, end));
    }
    true
}

fn is_port_or_range_list(s: &str) -> bool {
    s.split(',').all(is_port_or_range)
}

fn families_match(ip: &str, protocol: &str) -> bool {
    match ip {
        "1" | "2" | "3" | "4" => matches!(protocol, "1" | "2"),
        _ => matches!(protocol, "3" | "4"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn prop(v: Value) -> ProcessProperty {
        ProcessProperty::decode(v.as_object().unwrap()).unwrap()
    }

    #[test]
    fn renders_in_bk_cmdb_order() {
        let p = prop(json!({"bk_process_name": {"value": "a"}}));
        let s = serde_json::to_string(&p).unwrap();
        assert!(s.starts_with(r#"{"proc_num":{"value":null,"as_default_value":null},"stop_cmd""#));
        assert!(s.ends_with(r#""bind_info":{"value":null,"as_default_value":null}}"#));
        assert!(s.contains(r#""bk_process_name":{"value":"a","as_default_value":null}"#));
        let p = prop(json!({"bind_info": {"value": [{"row_id": 2}]}}));
        let s = serde_json::to_string(&p.bind_info).unwrap();
        assert_eq!(
            s,
            r#"{"value":[{"enable":{"value":null,"as_default_value":null},"ip":{"value":null,"as_default_value":null},"port":{"value":null,"as_default_value":null},"protocol":{"value":null,"as_default_value":null},"row_id":2}],"as_default_value":null}"#
        );
    }

    #[test]
    fn go_types_are_strict() {
        let o = json!({"proc_num": {"value": "1"}});
        assert!(ProcessProperty::decode(o.as_object().unwrap()).is_err());
        let o = json!({"proc_num": {"value": 1.5}});
        assert!(ProcessProperty::decode(o.as_object().unwrap()).is_err());
        let o = json!({"auto_start": "x"});
        assert!(ProcessProperty::decode(o.as_object().unwrap()).is_err());
        let o = json!({"PROC_NUM": {"Value": 3}});
        assert_eq!(prop(o).fields[PROC_NUM].value, json!(3));
    }

    #[test]
    fn validation_order_and_row_ids() {
        let mut p = prop(json!({
            "bk_process_name": {"value": "a"}, "bk_func_name": {"value": "a"},
            "bind_info": {"value": [
                {"ip": {"value": "1"}, "port": {"value": "80"}, "protocol": {"value": "1"}, "row_id": 4},
                {"ip": {"value": ""}, "port": {"value": "81-90,100"}, "protocol": {"value": "2"}},
            ]}
        }));
        assert_eq!(p.validate(), Ok(()));
        assert_eq!(p.bind_info.value.as_ref().unwrap()[1].row_id, 5);

        let mut p = prop(
            json!({"bind_info": {"value": [{"ip": {"value": "5"}, "port": {"value": "1"}, "protocol": {"value": "1"}}]}}),
        );
        assert_eq!(p.validate(), Err("bind_info[0].(ip and protocol)".into()));
        let mut p = prop(
            json!({"bind_info": {"value": [{"port": {"value": "1-5,5"}, "protocol": {"value": "1"}}]}}),
        );
        assert_eq!(p.validate(), Err("bind_info[0].port".into()));
        let mut p = prop(
            json!({"bind_info": {"value": [{"port": {"value": "5-1"}, "protocol": {"value": "1"}}]}}),
        );
        assert_eq!(p.validate(), Err("bind_info[0].port".into()));
        let mut p = prop(json!({"bind_info": {"value": [{"ip": {"value": "9"}}]}}));
        assert_eq!(p.validate(), Err("bind_info[0].ip".into()));
        let mut p = prop(json!({"bind_info": {"value": [null]}}));
        assert_eq!(p.validate(), Err("bind_info[0].port".into()));
        let mut p = prop(json!({"bk_process_name": {"value": "a"}}));
        assert_eq!(p.validate(), Err("bk_func_name".into()));
        let mut p = prop(
            json!({"bk_process_name": {"value": "a"}, "bk_func_name": {"value": "b"},
            "priority": {"value": -101}}),
        );
        assert_eq!(p.validate(), Err("priority".into()));
        let mut p = prop(
            json!({"bk_process_name": {"value": "a"}, "bk_func_name": {"value": "b"},
            "bk_start_check_secs": {"value": 10000}, "priority": {"value": -100}}),
        );
        assert_eq!(p.validate(), Ok(()));
    }

    #[test]
    fn spaces_and_update() {
        let p = prop(json!({"user": {"value": " root"}}));
        let e = p.check_spaces().unwrap_err();
        assert_eq!(e.code, code::UNKNOWN);
        let mut p = prop(
            json!({"bk_func_name": {"value": "a"}, "user": {"value": "u", "as_default_value": true}}),
        );
        let raw = json!({"bk_func_name": {"value": "b"}, "user": {"value": "v"}});
        let input = ProcessProperty::decode(raw.as_object().unwrap()).unwrap();
        p.update(&input, raw.as_object().unwrap());
        assert_eq!(p.func_name(), "a");
        assert_eq!(p.field("user").unwrap().value, json!("v"));
        assert_eq!(p.field("user").unwrap().as_default_value, None);
    }
}
