//! Service-instance rules that need no store: instantiating a process from a process template
//! on a host (bk-cmdb `ProcessTemplate.NewProcess`, `ProcPropertyBindInfo.NewProcBindInfo`; the
//! bind-IP codes are `bound_process::bind_ip`), the generated instance name
//! (`genServiceInstanceName`, spec 2.9), the
//! label rules (`selector.Labels.Validate`) and label selectors (`selector.Selector`), and the
//! two views of a process as bk-cmdb's Go `Process` struct: decoding a request's map into it
//! (`mapstr.DecodeFromMapStr`) and the struct-shaped answer of `list_service_instance_detail`.

use super::bound_process::{self, HostIps};
use super::process_fields::{GoType, PROPERTY};
use super::process_update;
use crate::error::{CcError, code};
use regex::Regex;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// `property.<field>.value`, or null.
fn prop_value<'a>(property: &'a Value, field: &str) -> &'a Value {
    property
        .get(field)
        .and_then(|w| w.get("value"))
        .unwrap_or(&Value::Null)
}

/// A process built from a template, before validation and insertion.
#[derive(Clone, Debug, PartialEq)]
pub struct NewProcess {
    /// The map bk-cmdb inserts: every field of its `Process` struct, unset values null.
    pub map: Map<String, Value>,
    /// What the instance name is made of: `bk_process_name` and the first bind port.
    pub first: FirstProcess,
}

/// Builds the process of one template for a new instance (`NewProcess`): every property value
/// is copied, locked or not; bind rows get their address from the host, their port and
/// protocol from the template (both required: 1107014, 1107015, answered under 1199006 as
/// bk-cmdb does), `enable` false when unset, `template_row_id` from the row's `row_id`.
/// `now` is the RFC 3339 text of the request's time.
pub fn instantiate(
    property: &Value,
    biz: i64,
    si_id: i64,
    supplier: &str,
    now: &str,
    host: &HostIps,
) -> Result<NewProcess, CcError> {
    let mut map = Map::new();
    // The fields a template carries, in the order of bk-cmdb's `Process` struct.
    for f in PROPERTY.iter().map(|(name, _)| name) {
        map.insert((*f).into(), prop_value(property, f).clone());
    }
    map.insert("bk_process_id".into(), Value::from(0));
    map.insert("last_time".into(), Value::from(now));
    map.insert("create_time".into(), Value::from(now));
    map.insert("bk_biz_id".into(), Value::from(biz));
    map.insert("bk_supplier_account".into(), Value::from(supplier));
    map.insert("service_instance_id".into(), Value::from(si_id));

    let mut rows: Vec<Value> = Vec::new();
    let mut first_port = None;
    if let Some(tpl_rows) = prop_value(property, "bind_info").as_array() {
        for row in tpl_rows {
            if !row.is_object() {
                continue;
            }
            let ip = bound_process::bind_ip(prop_value(row, "ip").as_str(), Some(host))?;
            let port = match prop_value(row, "port") {
                Value::String(s) if !s.is_empty() => s.clone(),
                _ => {
                    return Err(CcError::recode(
                        code::PARAMS_INVALID,
                        CcError::plain(code::PROC_BIND_PORT_NOT_SET),
                    ));
                }
            };
            let protocol = match prop_value(row, "protocol") {
                Value::String(s) if !s.is_empty() => s.clone(),
                _ => {
                    return Err(CcError::recode(
                        code::PARAMS_INVALID,
                        CcError::plain(code::PROC_BIND_PROTOCOL_NOT_SET),
                    ));
                }
            };
            let enable = match prop_value(row, "enable") {
                Value::Null => Value::from(false),
                v => v.clone(),
            };
            let row_id = row.get("row_id").cloned().unwrap_or(Value::from(0));
            first_port.get_or_insert_with(|| port.clone());
            let mut out = Map::new();
            out.insert("enable".into(), enable);
            out.insert("ip".into(), Value::from(ip));
            out.insert("port".into(), Value::from(port));
            out.insert("protocol".into(), Value::from(protocol));
            out.insert("template_row_id".into(), row_id);
            rows.push(Value::Object(out));
        }
    }
    // Go appends to a nil slice: no row at all serialises as null.
    let bind_info = if rows.is_empty() {
        Value::Null
    } else {
        Value::Array(rows)
    };
    map.insert("bind_info".into(), bind_info);
    let name = prop_value(property, "bk_process_name")
        .as_str()
        .map(String::from);
    Ok(NewProcess {
        map,
        first: FirstProcess {
            name,
            port: first_port,
        },
    })
}

/// The parts of an instance's first process that its generated name uses.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FirstProcess {
    pub name: Option<String>,
    /// The `port` of the first bind row that has one.
    pub port: Option<String>,
}

/// `genServiceInstanceName` (spec 2.9): the host's inner IPv4 list (or inner IPv6 if empty),
/// then `_<name>` if the first process has a non-empty name, then `_<port>` of its first bind
/// row with a port.
pub fn instance_name(host: &HostIps, first: Option<&FirstProcess>) -> String {
    let mut name = if host.inner.is_empty() {
        host.inner_v6.to_string()
    } else {
        host.inner.to_string()
    };
    if let Some(p) = first {
        if let Some(n) = p.name.as_deref().filter(|n| !n.is_empty()) {
            name.push('_');
            name.push_str(n);
        }
        if let Some(port) = &p.port {
            name.push('_');
            name.push_str(port);
        }
    }
    name
}

/// `mapstr.DecodeFromMapStr(&Process, map)` as `create_service_instance` runs it on the first
/// process of a raw instance to name it (see `process_update::decode_item`): a value Go cannot
/// decode into the struct's field (a fractional number into an integer field, say) is 1199000.
/// Values are as sent (untrimmed).
pub fn decode_first_process(map: &Map<String, Value>) -> Result<FirstProcess, CcError> {
    let item = process_update::decode_item(map)?;
    let name = item
        .fields
        .get("bk_process_name")
        .and_then(Value::as_str)
        .map(String::from);
    let port = item
        .fields
        .get("bind_info")
        .and_then(Value::as_array)
        .and_then(|rows| {
            rows.iter()
                .find_map(|r| r.get("port").and_then(Value::as_str).map(String::from))
        });
    Ok(FirstProcess { name, port })
}

/// One bind row as Go's `ProcBindInfo.MarshalJSON` writes it: all five keys, sorted.
#[derive(Serialize, Debug, PartialEq)]
pub struct BindRowOut {
    pub enable: Value,
    pub ip: Value,
    pub port: Value,
    pub protocol: Value,
    pub template_row_id: i64,
}

/// A stored process as Go's `Process` struct serialises it (`list_service_instance_detail`):
/// its fields in declaration order, nothing else (no `bk_created_at` and the like).
#[derive(Serialize, Debug, PartialEq)]
pub struct ProcessOut {
    pub proc_num: Value,
    pub stop_cmd: Value,
    pub restart_cmd: Value,
    pub face_stop_cmd: Value,
    pub bk_process_id: i64,
    pub bk_func_name: Value,
    pub work_path: Value,
    pub priority: Value,
    pub reload_cmd: Value,
    pub bk_process_name: Value,
    pub pid_file: Value,
    pub auto_start: Value,
    pub bk_start_check_secs: Value,
    pub last_time: Value,
    pub create_time: Value,
    pub bk_biz_id: i64,
    pub start_cmd: Value,
    pub user: Value,
    pub timeout: Value,
    pub description: Value,
    pub bk_supplier_account: String,
    pub bk_start_param_regex: Value,
    pub service_instance_id: i64,
    pub bind_info: Option<Vec<BindRowOut>>,
}

/// A stored value read into a Go field the way the MongoDB driver decodes BSON: integral
/// doubles fit an integer field, fractional ones fail the read (1199017).
fn stored(ty: GoType, v: Option<&Value>) -> Result<Value, CcError> {
    let v = v.unwrap_or(&Value::Null);
    let bad = || CcError::plain(code::DB_SELECT);
    Ok(match (ty, v) {
        (_, Value::Null) => Value::Null,
        (GoType::OptInt | GoType::Int, Value::Number(n)) => match n.as_i64() {
            Some(i) => Value::from(i),
            None => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Value::from(f as i64),
                _ => return Err(bad()),
            },
        },
        (GoType::OptStr | GoType::Str | GoType::Time, Value::String(_))
        | (GoType::OptBool, Value::Bool(_)) => v.clone(),
        _ => return Err(bad()),
    })
}

fn stored_int(v: Option<&Value>) -> Result<i64, CcError> {
    Ok(stored(GoType::Int, v)?.as_i64().unwrap_or(0))
}

/// The `Process` struct view of a stored process map.
pub fn process_out(map: &Map<String, Value>) -> Result<ProcessOut, CcError> {
    let f = |name: &str, ty: GoType| stored(ty, map.get(name));
    let bind_info = match map.get("bind_info") {
        None | Some(Value::Null) => None,
        Some(Value::Array(rows)) => {
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let empty = Map::new();
                let o = match r {
                    Value::Object(o) => o,
                    Value::Null => &empty,
                    _ => return Err(CcError::plain(code::DB_SELECT)),
                };
                out.push(BindRowOut {
                    enable: stored(GoType::OptBool, o.get("enable"))?,
                    ip: stored(GoType::OptStr, o.get("ip"))?,
                    port: stored(GoType::OptStr, o.get("port"))?,
                    protocol: stored(GoType::OptStr, o.get("protocol"))?,
                    template_row_id: stored_int(o.get("template_row_id"))?,
                });
            }
            Some(out)
        }
        Some(_) => return Err(CcError::plain(code::DB_SELECT)),
    };
    Ok(ProcessOut {
        proc_num: f("proc_num", GoType::OptInt)?,
        stop_cmd: f("stop_cmd", GoType::OptStr)?,
        restart_cmd: f("restart_cmd", GoType::OptStr)?,
        face_stop_cmd: f("face_stop_cmd", GoType::OptStr)?,
        bk_process_id: stored_int(map.get("bk_process_id"))?,
        bk_func_name: f("bk_func_name", GoType::OptStr)?,
        work_path: f("work_path", GoType::OptStr)?,
        priority: f("priority", GoType::OptInt)?,
        reload_cmd: f("reload_cmd", GoType::OptStr)?,
        bk_process_name: f("bk_process_name", GoType::OptStr)?,
        pid_file: f("pid_file", GoType::OptStr)?,
        auto_start: f("auto_start", GoType::OptBool)?,
        bk_start_check_secs: f("bk_start_check_secs", GoType::OptInt)?,
        last_time: zero_time(f("last_time", GoType::Time)?),
        create_time: zero_time(f("create_time", GoType::Time)?),
        bk_biz_id: stored_int(map.get("bk_biz_id"))?,
        start_cmd: f("start_cmd", GoType::OptStr)?,
        user: f("user", GoType::OptStr)?,
        timeout: f("timeout", GoType::OptInt)?,
        description: f("description", GoType::OptStr)?,
        bk_supplier_account: f("bk_supplier_account", GoType::Str)?
            .as_str()
            .unwrap_or("")
            .to_string(),
        bk_start_param_regex: f("bk_start_param_regex", GoType::OptStr)?,
        service_instance_id: stored_int(map.get("service_instance_id"))?,
        bind_info,
    })
}

/// A `time.Time` field that was never set serialises as Go's zero time.
fn zero_time(v: Value) -> Value {
    if v.is_null() {
        Value::from("0001-01-01T00:00:00Z")
    } else {
        v
    }
}

fn label_key_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^[a-zA-Z]([a-z0-9A-Z\-_.]*[a-z0-9A-Z])?$").expect("label key pattern")
    })
}

fn label_value_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^[a-z0-9A-Z]([a-z0-9A-Z\-_.]*[a-z0-9A-Z])?$").expect("label value pattern")
    })
}

/// `selector.Labels.Validate`: keys and values match Kubernetes-like patterns and are shorter
/// than 64 bytes. The error names the field as bk-cmdb does: `label.<key>` for a bad key,
/// `label.<key>:<value>` for a bad value (1199006). bk-cmdb visits a Go map (random order);
/// here keys are visited in sorted order.
pub fn validate_labels(labels: &BTreeMap<String, String>) -> Result<(), CcError> {
    use crate::limits::MAX_LABEL_BYTES;
    for (k, v) in labels {
        if !label_key_re().is_match(k) || k.len() > MAX_LABEL_BYTES {
            return Err(CcError::invalid(format!("label.{k}")));
        }
        if !label_value_re().is_match(v) || v.len() > MAX_LABEL_BYTES {
            return Err(CcError::invalid(format!("label.{k}:{v}")));
        }
    }
    Ok(())
}

/// A label selector operator (bk-cmdb `selector.Operator`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operator {
    /// `!`: the key is absent.
    DoesNotExist,
    /// `=`: the key is present with this value.
    Equals,
    /// `in`: the key is present with one of the values.
    In,
    /// `!=`: the key is absent or has another value.
    NotEquals,
    /// `notin`: the key is absent or has none of the values.
    NotIn,
    /// `exists`: the key is present.
    Exists,
}

/// One label selector, as decoded (the operator still text: it is validated later, in order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    pub key: String,
    pub operator: String,
    pub values: Vec<String>,
}

/// A validated selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    /// The label path inside `labels`: a key with dots reaches into nested objects, as the
    /// MongoDB path `labels.<key>` does, so it never finds a flat label.
    path: Vec<String>,
    op: Operator,
    values: Vec<String>,
}

/// `selector.Selectors.Validate`: per selector, in order: the operator, the number of values
/// it takes, then the key pattern. The error names `operator`, `values` or `key` (1199006).
pub fn check_selectors(selectors: &[Selector]) -> Result<Vec<Checked>, CcError> {
    let mut out = Vec::with_capacity(selectors.len());
    for s in selectors {
        let op = match s.operator.as_str() {
            "!" => Operator::DoesNotExist,
            "=" => Operator::Equals,
            "in" => Operator::In,
            "!=" => Operator::NotEquals,
            "notin" => Operator::NotIn,
            "exists" => Operator::Exists,
            _ => return Err(CcError::invalid("operator")),
        };
        let n = s.values.len();
        let values_ok = match op {
            Operator::In | Operator::NotIn => n > 0,
            Operator::Exists | Operator::DoesNotExist => n == 0,
            Operator::Equals | Operator::NotEquals => n == 1,
        };
        if !values_ok {
            return Err(CcError::invalid("values"));
        }
        if !label_key_re().is_match(&s.key) {
            return Err(CcError::invalid("key"));
        }
        out.push(Checked {
            path: s.key.split('.').map(String::from).collect(),
            op,
            values: s.values.clone(),
        });
    }
    Ok(out)
}

/// Whether `labels` satisfies every selector (MongoDB semantics: `$nin` and `$ne` match an
/// absent key).
pub fn selectors_match(checked: &[Checked], labels: Option<&BTreeMap<String, String>>) -> bool {
    checked.iter().all(|c| {
        // Labels are flat strings: a dotted path finds nothing.
        let value = match (labels, c.path.as_slice()) {
            (Some(l), [key]) => l.get(key).map(String::as_str),
            _ => None,
        };
        match c.op {
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::Equals => value == Some(c.values[0].as_str()),
            Operator::NotEquals => value != Some(c.values[0].as_str()),
            Operator::In => value.is_some_and(|v| c.values.iter().any(|x| x == v)),
            Operator::NotIn => value.is_none_or(|v| c.values.iter().all(|x| x != v)),
        }
    })
}

/// What the service-instance list APIs filter on (bk-cmdb coreservice `ListServiceInstance`'s
/// conditions).
#[derive(Default)]
pub struct Filter {
    pub biz: i64,
    /// `Some` for `list_service_instance` and `_by_host`: only this supplier's instances.
    pub supplier: Option<String>,
    pub module: Option<i64>,
    pub hosts: Vec<i64>,
    pub ids: Option<Vec<i64>>,
    pub name: Option<Regex>,
    pub selectors: Vec<Checked>,
}

/// The fields of a service instance that a [`Filter`] looks at.
pub struct Candidate<'a> {
    pub biz: i64,
    pub supplier: &'a str,
    pub module: i64,
    pub host: i64,
    pub id: i64,
    pub name: &'a str,
    pub labels: Option<&'a BTreeMap<String, String>>,
}

impl Filter {
    pub fn keeps(&self, si: &Candidate) -> bool {
        si.biz == self.biz
            && self.supplier.as_deref().is_none_or(|s| si.supplier == s)
            && self.module.is_none_or(|m| si.module == m)
            && (self.hosts.is_empty() || self.hosts.contains(&si.host))
            && self.ids.as_ref().is_none_or(|ids| ids.contains(&si.id))
            && self.name.as_ref().is_none_or(|re| re.is_match(si.name))
            && selectors_match(&self.selectors, si.labels)
    }
}

/// The `name` filter of a search key: bk-cmdb hands `.*<key>.*` to MongoDB as a regular
/// expression, unescaped; a pattern that does not compile fails the query (1199017).
pub fn name_regex(key: Option<&str>) -> Result<Option<Regex>, CcError> {
    key.map(|k| Regex::new(&format!(".*{k}.*")).map_err(|_| CcError::plain(code::DB_SELECT)))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Lang;
    use serde_json::json;

    fn host() -> HostIps<'static> {
        HostIps {
            inner: "10.0.0.1,10.0.0.2",
            outer: "1.2.3.4",
            inner_v6: "fd00::1,fd00::2",
            outer_v6: "",
        }
    }

    fn property() -> Value {
        json!({
            "bk_process_name": {"value": "nginx", "as_default_value": true},
            "bk_func_name": {"value": "nginx", "as_default_value": true},
            "proc_num": {"value": 4, "as_default_value": false},
            "description": {"value": null, "as_default_value": false},
            "bind_info": {"as_default_value": true, "value": [
                {"row_id": 1, "ip": {"value": "3", "as_default_value": true},
                 "port": {"value": "80,81", "as_default_value": true},
                 "protocol": {"value": "1", "as_default_value": true},
                 "enable": {"value": null, "as_default_value": false}},
                {"row_id": 2, "ip": {"value": "6", "as_default_value": false},
                 "port": {"value": "8000-8010", "as_default_value": false},
                 "protocol": {"value": "3", "as_default_value": true},
                 "enable": {"value": true, "as_default_value": false}}
            ]}
        })
    }

    #[test]
    fn instantiate_copies_values_and_resolves_rows() {
        let p = instantiate(&property(), 7, 33, "0", "2026-01-01T00:00:00Z", &host()).unwrap();
        let m = &p.map;
        assert_eq!(m["bk_process_name"], "nginx");
        assert_eq!(m["proc_num"], 4);
        assert_eq!(m["description"], Value::Null);
        assert_eq!(m["work_path"], Value::Null);
        assert_eq!(m["service_instance_id"], 33);
        assert_eq!(m["bk_biz_id"], 7);
        assert_eq!(m.len(), 24);
        assert_eq!(
            m["bind_info"],
            json!([
                {"enable": false, "ip": "10.0.0.1", "port": "80,81", "protocol": "1", "template_row_id": 1},
                {"enable": true, "ip": "::", "port": "8000-8010", "protocol": "3", "template_row_id": 2}
            ])
        );
        assert_eq!(
            p.first,
            FirstProcess {
                name: Some("nginx".into()),
                port: Some("80,81".into())
            }
        );
        assert_eq!(
            instance_name(&host(), Some(&p.first)),
            "10.0.0.1,10.0.0.2_nginx_80,81"
        );
    }

    #[test]
    fn instantiate_refuses_rows_without_port_or_protocol() {
        let mut prop = property();
        prop["bind_info"]["value"][1]["port"]["value"] = json!("");
        let e = instantiate(&prop, 7, 33, "0", "t", &host()).unwrap_err();
        assert_eq!(e.code, code::PARAMS_INVALID);
        assert_eq!(
            e.render(Lang::En),
            "service instance process bind info port is not set correctly, please check and try again"
        );
        let mut prop = property();
        prop["bind_info"]["value"][0]["protocol"] = json!(null);
        let e = instantiate(&prop, 7, 33, "0", "t", &host()).unwrap_err();
        assert!(e.render(Lang::Zh).contains("[协议]"));
        let mut prop = property();
        prop["bind_info"]["value"] = json!([]);
        let p = instantiate(&prop, 7, 33, "0", "t", &host()).unwrap();
        assert_eq!(p.map["bind_info"], Value::Null);
        assert_eq!(
            instance_name(&host(), Some(&p.first)),
            "10.0.0.1,10.0.0.2_nginx"
        );
    }

    #[test]
    fn names() {
        let v6 = HostIps {
            inner_v6: "fd00::9",
            ..Default::default()
        };
        assert_eq!(instance_name(&v6, None), "fd00::9");
        let first = FirstProcess {
            name: Some(String::new()),
            port: Some("80".into()),
        };
        assert_eq!(instance_name(&host(), Some(&first)), "10.0.0.1,10.0.0.2_80");
        assert_eq!(instance_name(&HostIps::default(), None), "");
    }

    #[test]
    fn first_process_decoding_is_go_like() {
        let m = |v: Value| v.as_object().unwrap().clone();
        let p = decode_first_process(&m(json!({
            "bk_process_name": " a ",
            "bind_info": [{"ip": "1.1.1.1"}, {"port": "81", "protocol": "1"}, {"port": "82"}],
        })))
        .unwrap();
        assert_eq!(p.name.as_deref(), Some(" a "));
        assert_eq!(p.port.as_deref(), Some("81"));
        assert!(decode_first_process(&m(json!({"priority": 1.5}))).is_err());
        assert!(
            decode_first_process(&m(json!({"bind_info": [{"template_row_id": 1.5}]}))).is_err()
        );
        assert!(decode_first_process(&m(json!({"unknown": {"a": 1}}))).is_ok());
        assert_eq!(
            decode_first_process(&m(json!({}))).unwrap(),
            FirstProcess::default()
        );
    }

    #[test]
    fn process_out_is_struct_shaped() {
        let m = json!({
            "bk_process_id": 5, "bk_biz_id": 7, "service_instance_id": 3, "bk_supplier_account": "0",
            "bk_process_name": "a", "bk_func_name": "a", "priority": 2.0, "auto_start": false,
            "create_time": "2026-01-02T03:04:05.678Z", "last_time": "2026-01-02T03:04:05.678Z",
            "bk_created_by": "admin", "default": 1,
            "bind_info": [{"ip": "1.1.1.1", "port": "80", "protocol": "1", "enable": true}]
        });
        let out = serde_json::to_string(&process_out(m.as_object().unwrap()).unwrap()).unwrap();
        assert_eq!(
            out,
            concat!(
                r#"{"proc_num":null,"stop_cmd":null,"restart_cmd":null,"face_stop_cmd":null,"bk_process_id":5,"#,
                r#""bk_func_name":"a","work_path":null,"priority":2,"reload_cmd":null,"bk_process_name":"a","#,
                r#""pid_file":null,"auto_start":false,"bk_start_check_secs":null,"#,
                r#""last_time":"2026-01-02T03:04:05.678Z","create_time":"2026-01-02T03:04:05.678Z","bk_biz_id":7,"#,
                r#""start_cmd":null,"user":null,"timeout":null,"description":null,"bk_supplier_account":"0","#,
                r#""bk_start_param_regex":null,"service_instance_id":3,"#,
                r#""bind_info":[{"enable":true,"ip":"1.1.1.1","port":"80","protocol":"1","template_row_id":0}]}"#
            )
        );
        let bad = json!({"priority": 1.5});
        assert_eq!(
            process_out(bad.as_object().unwrap()).unwrap_err().code,
            code::DB_SELECT
        );
    }

    #[test]
    fn labels_validation() {
        let l = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(validate_labels(&l(&[("env", "prod"), ("a.b-c_d", "1.x")])).is_ok());
        let msg = |pairs: &[(&str, &str)]| validate_labels(&l(pairs)).unwrap_err().render(Lang::En);
        assert_eq!(
            msg(&[("1env", "x")]),
            "'label.1env' data parameter verification does not pass"
        );
        assert_eq!(
            msg(&[("env", "")]),
            "'label.env:' data parameter verification does not pass"
        );
        assert_eq!(
            msg(&[("env", "x-")]).split('\'').nth(1),
            Some("label.env:x-")
        );
        let long = "a".repeat(64);
        assert!(validate_labels(&l(&[(&"a".repeat(63), "x")])).is_ok());
        assert!(validate_labels(&l(&[(&long, "x")])).is_err());
        assert!(validate_labels(&l(&[("k", &long)])).is_err());
    }

    #[test]
    fn selectors() {
        let s = |k: &str, op: &str, vals: &[&str]| Selector {
            key: k.into(),
            operator: op.into(),
            values: vals.iter().map(|v| v.to_string()).collect(),
        };
        let err = |sel: Selector| {
            check_selectors(&[sel])
                .unwrap_err()
                .render(Lang::En)
                .split('\'')
                .nth(1)
                .unwrap()
                .to_string()
        };
        assert_eq!(err(s("k", "==", &["a"])), "operator");
        assert_eq!(err(s("k", "in", &[])), "values");
        assert_eq!(err(s("k", "notin", &[])), "values");
        assert_eq!(err(s("k", "exists", &["a"])), "values");
        assert_eq!(err(s("k", "!", &["a"])), "values");
        assert_eq!(err(s("k", "=", &["a", "b"])), "values");
        assert_eq!(err(s("k", "!=", &[])), "values");
        assert_eq!(err(s("1k", "exists", &[])), "key");
        let labels: BTreeMap<String, String> = [("env".to_string(), "prod".to_string())]
            .into_iter()
            .collect();
        let m = |sel: Selector, l: Option<&BTreeMap<String, String>>| {
            selectors_match(&check_selectors(&[sel]).unwrap(), l)
        };
        assert!(m(s("env", "=", &["prod"]), Some(&labels)));
        assert!(!m(s("env", "=", &["dev"]), Some(&labels)));
        assert!(m(s("env", "!=", &["dev"]), Some(&labels)));
        assert!(m(s("env", "!=", &["dev"]), None));
        assert!(m(s("env", "in", &["dev", "prod"]), Some(&labels)));
        assert!(!m(s("env", "in", &["dev"]), None));
        assert!(m(s("env", "notin", &["dev"]), None));
        assert!(!m(s("env", "notin", &["prod"]), Some(&labels)));
        assert!(m(s("env", "exists", &[]), Some(&labels)));
        assert!(!m(s("team", "exists", &[]), Some(&labels)));
        assert!(m(s("team", "!", &[]), Some(&labels)));
        assert!(!m(s("env", "!", &[]), Some(&labels)));
        let dotted: BTreeMap<String, String> =
            [("a.b".to_string(), "x".to_string())].into_iter().collect();
        assert!(!m(s("a.b", "exists", &[]), Some(&dotted)));
    }

    #[test]
    fn a_filter_keeps_only_what_every_condition_keeps() {
        let labels = BTreeMap::from([("env".to_string(), "prod".to_string())]);
        let si = Candidate {
            biz: 7,
            supplier: "0",
            module: 22,
            host: 5,
            id: 30,
            name: "10.0.0.5_nginx",
            labels: Some(&labels),
        };
        let selectors = |op: &str, v: &str| {
            check_selectors(&[Selector {
                key: "env".into(),
                operator: op.into(),
                values: vec![v.into()],
            }])
            .unwrap()
        };
        let all = Filter {
            biz: 7,
            supplier: Some("0".into()),
            module: Some(22),
            hosts: vec![4, 5],
            ids: Some(vec![30]),
            name: name_regex(Some("nginx")).unwrap(),
            selectors: selectors("in", "prod"),
        };
        assert!(all.keeps(&si));
        assert!(
            Filter {
                biz: 7,
                ..Filter::default()
            }
            .keeps(&si)
        );
        for one_off in [
            Filter {
                biz: 8,
                ..Filter::default()
            },
            Filter {
                supplier: Some("1".into()),
                ..Filter {
                    biz: 7,
                    ..Filter::default()
                }
            },
            Filter {
                module: Some(23),
                biz: 7,
                ..Filter::default()
            },
            Filter {
                hosts: vec![6],
                biz: 7,
                ..Filter::default()
            },
            Filter {
                ids: Some(vec![]),
                biz: 7,
                ..Filter::default()
            },
            Filter {
                name: name_regex(Some("redis")).unwrap(),
                biz: 7,
                ..Filter::default()
            },
            Filter {
                selectors: selectors("in", "dev"),
                biz: 7,
                ..Filter::default()
            },
        ] {
            assert!(!one_off.keeps(&si));
        }
        // bk-cmdb hands the search key to MongoDB unescaped: a bad pattern fails the query.
        assert_eq!(name_regex(Some("(")).unwrap_err().code, code::DB_SELECT);
    }
}
