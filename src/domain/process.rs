//! The process model (spec 2.3, 2.4): its attribute table, the validation and filling of one
//! process map on create, and the server-owned fields.

use super::bind_info;
use crate::error::{CcError, code};
use crate::limits::{MAX_LONGCHAR_BYTES, MAX_SINGLECHAR_BYTES};
use regex::Regex;
use serde_json::{Map, Value};
use std::sync::OnceLock;

/// The type rule of an attribute.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Type {
    SingleChar,
    LongChar,
    Int { min: i64, max: i64 },
    Bool,
    Table,
    Time,
    User,
}

/// One attribute of the process model.
#[derive(Debug)]
pub struct Attr {
    pub id: &'static str,
    pub ty: Type,
    pub required: bool,
    /// `bk_property_name`: the name bk-cmdb puts inside error messages (Chinese, untranslated).
    pub name: &'static str,
    /// The English `bk_property_name` of `search_object_attribute`
    /// (`resources/language/en/property.json`); `None` where bk-cmdb has none (`name` is used).
    pub en: Option<&'static str>,
}

const NO_RANGE: Type = Type::Int {
    min: i64::MIN,
    max: i64::MAX,
};

/// The process attributes in the order this implementation reports the first bad one.
pub const ATTRS: &[Attr] = &[
    Attr {
        id: "bk_biz_id",
        ty: NO_RANGE,
        required: true,
        name: "业务ID",
        en: Some("Business ID"),
    },
    Attr {
        id: "bk_process_name",
        ty: Type::SingleChar,
        required: true,
        name: "进程别名",
        en: Some("Alias"),
    },
    Attr {
        id: "bk_func_name",
        ty: Type::SingleChar,
        required: true,
        name: "进程名称",
        en: Some("Function name"),
    },
    Attr {
        id: "description",
        ty: Type::SingleChar,
        required: false,
        name: "备注",
        en: Some("Description"),
    },
    Attr {
        id: "bk_start_param_regex",
        ty: Type::LongChar,
        required: false,
        name: "启动参数匹配规则",
        en: Some("Startup parameter"),
    },
    Attr {
        id: "work_path",
        ty: Type::LongChar,
        required: false,
        name: "工作路径",
        en: Some("Work path"),
    },
    Attr {
        id: "user",
        ty: Type::SingleChar,
        required: false,
        name: "启动用户",
        en: Some("User"),
    },
    Attr {
        id: "proc_num",
        ty: Type::Int { min: 1, max: 10000 },
        required: false,
        name: "启动数量",
        en: Some("Process number"),
    },
    Attr {
        id: "priority",
        ty: Type::Int {
            min: -100,
            max: 10000,
        },
        required: false,
        name: "启动优先级",
        en: Some("Priority"),
    },
    Attr {
        id: "timeout",
        ty: Type::Int { min: 0, max: 10000 },
        required: false,
        name: "操作超时时长",
        en: Some("Timeout"),
    },
    Attr {
        id: "bk_start_check_secs",
        ty: Type::Int { min: 0, max: 600 },
        required: false,
        name: "启动等待时长",
        en: Some("Startup check time"),
    },
    Attr {
        id: "start_cmd",
        ty: Type::LongChar,
        required: false,
        name: "启动命令",
        en: Some("Start command"),
    },
    Attr {
        id: "stop_cmd",
        ty: Type::LongChar,
        required: false,
        name: "停止命令",
        en: Some("Stop command"),
    },
    Attr {
        id: "restart_cmd",
        ty: Type::LongChar,
        required: false,
        name: "重启命令",
        en: Some("Restart command"),
    },
    Attr {
        id: "face_stop_cmd",
        ty: Type::LongChar,
        required: false,
        name: "强制停止命令",
        en: Some("Force-stop command"),
    },
    Attr {
        id: "reload_cmd",
        ty: Type::LongChar,
        required: false,
        name: "进程重载命令",
        en: Some("Reload command"),
    },
    Attr {
        id: "pid_file",
        ty: Type::LongChar,
        required: false,
        name: "PID文件路径",
        en: Some("PID filepath"),
    },
    Attr {
        id: "auto_start",
        ty: Type::Bool,
        required: false,
        name: "是否自动拉起",
        en: Some("Autostart"),
    },
    Attr {
        id: "bind_info",
        ty: Type::Table,
        required: false,
        name: "bind_info",
        en: Some("Bind Information"),
    },
    Attr {
        id: "service_instance_id",
        ty: NO_RANGE,
        required: true,
        name: "服务实例ID",
        en: None,
    },
    Attr {
        id: "bk_created_at",
        ty: Type::Time,
        required: false,
        name: "创建时间",
        en: Some("Created At"),
    },
    Attr {
        id: "bk_updated_at",
        ty: Type::Time,
        required: false,
        name: "更新时间",
        en: Some("Updated At"),
    },
    Attr {
        id: "bk_created_by",
        ty: Type::User,
        required: false,
        name: "创建人",
        en: Some("Created By"),
    },
    Attr {
        id: "bk_updated_by",
        ty: Type::User,
        required: false,
        name: "更新人",
        en: Some("Updated By"),
    },
];

/// Keys kept verbatim without validation (bk-cmdb `createIgnoreKeys` plus `bk_obj_id`).
pub const IGNORED_KEYS: &[&str] = &[
    "bk_supplier_account",
    "default",
    "bk_parent_id",
    "bk_biz_id",
    "bk_inst_id",
    "bk_data_status",
    "create_time",
    "last_time",
    "bk_process_id",
    "bk_obj_id",
];

/// The attribute `id`, if the process model has it.
pub fn attr(id: &str) -> Option<&'static Attr> {
    by_id()
        .binary_search_by(|&i| ATTRS[i].id.cmp(id))
        .ok()
        .map(|at| &ATTRS[by_id()[at]])
}

const ATTR_COUNT: usize = ATTRS.len();

/// The positions in [`ATTRS`] in the order of their ids, for lookups and merges with a map.
fn by_id() -> &'static [usize] {
    static BY_ID: OnceLock<Vec<usize>> = OnceLock::new();
    BY_ID.get_or_init(|| {
        let mut v: Vec<usize> = (0..ATTRS.len()).collect();
        v.sort_by_key(|&i| ATTRS[i].id);
        v
    })
}

/// The keys a create keeps, sorted: the attributes and the ignored keys.
fn kept_on_create() -> &'static [&'static str] {
    static KEPT: OnceLock<Vec<&'static str>> = OnceLock::new();
    KEPT.get_or_init(|| {
        let mut v: Vec<&'static str> = ATTRS.iter().map(|a| a.id).collect();
        v.extend_from_slice(IGNORED_KEYS);
        v.sort_unstable();
        v.dedup();
        v
    })
}

/// Whether each attribute, by position in [`ATTRS`], is one of [`IGNORED_KEYS`].
fn ignored() -> &'static [bool] {
    static IGNORED: OnceLock<Vec<bool>> = OnceLock::new();
    IGNORED.get_or_init(|| ATTRS.iter().map(|a| IGNORED_KEYS.contains(&a.id)).collect())
}

/// The server-owned values of a process being created (spec 2.3).
pub struct ServerFields<'a> {
    pub biz_id: i64,
    pub service_instance_id: i64,
    pub supplier: &'a str,
    pub user: &'a str,
    /// RFC 3339 text of the request's time.
    pub now: &'a str,
}

/// Overwrites the keys proc_server decides before validation (spec 2.2 step 9).
pub fn stamp_request_fields(map: &mut Map<String, Value>, f: &ServerFields) {
    set(map, "bk_process_id", Value::from(0));
    set(map, "bk_biz_id", Value::from(f.biz_id));
    set(map, "bk_supplier_account", Value::from(f.supplier));
    set(map, "create_time", Value::from(f.now));
    set(map, "last_time", Value::from(f.now));
    set(
        map,
        "service_instance_id",
        Value::from(f.service_instance_id),
    );
}

/// `map[key] = v`, allocating the key only if it is new.
fn set(map: &mut Map<String, Value>, key: &str, v: Value) {
    match map.get_mut(key) {
        Some(slot) => *slot = v,
        None => {
            map.insert(key.into(), v);
        }
    }
}

/// `map[key] = s`, building nothing if it holds that string already (the request's stamps).
fn set_str(map: &mut Map<String, Value>, key: &str, s: &str) {
    if map.get(key).and_then(Value::as_str) != Some(s) {
        set(map, key, Value::from(s));
    }
}

/// Sets what the store's insert sets (spec 2.2 step 10, `save`).
pub fn stamp_insert_fields(map: &mut Map<String, Value>, pid: i64, f: &ServerFields) {
    set(map, "bk_process_id", Value::from(pid));
    set_str(map, "bk_supplier_account", f.supplier);
    set_str(map, "create_time", f.now);
    set_str(map, "last_time", f.now);
    set_str(map, "bk_created_by", f.user);
    set_str(map, "bk_created_at", f.now);
    set_str(map, "bk_updated_at", f.now);
}

/// Validates, trims, fills and prunes one process map for creation (spec 2.4), in place.
/// The error is what coreservice reports for the item; [`proc_server_error`] wraps it.
pub fn validate_create(map: &mut Map<String, Value>) -> Result<(), CcError> {
    check_create(map)?;
    for (k, v) in defaults() {
        if !map.contains_key(*k) {
            map.insert((*k).into(), v.clone());
        }
    }
    Ok(())
}

/// The value an absent attribute takes on create: its type's empty value.
fn default_value(a: &Attr) -> Value {
    match a.ty {
        Type::SingleChar | Type::LongChar => Value::from(""),
        Type::Bool => Value::from(false),
        _ => Value::Null,
    }
}

/// Every attribute with its default, sorted by id.
fn defaults() -> &'static [(&'static str, Value)] {
    static DEFAULTS: OnceLock<Vec<(&'static str, Value)>> = OnceLock::new();
    DEFAULTS.get_or_init(|| {
        by_id()
            .iter()
            .map(|&i| (ATTRS[i].id, default_value(&ATTRS[i])))
            .collect()
    })
}

/// [`validate_create`] but for the filling: the absent attributes are checked as their
/// defaults and left out of `map`; [`Filled`] reads `map` as if they were in it. The bulk
/// create path uses it, sparing each process some thirty keys built and freed.
pub fn check_create(map: &mut Map<String, Value>) -> Result<(), CcError> {
    // 1. Required keys must be present (their values are checked below).
    for a in ATTRS.iter().filter(|a| a.required) {
        if !map.contains_key(a.id) {
            return Err(CcError::with(code::PARAMS_NEED_SET, a.id));
        }
    }
    // 2. Unknown keys go; ignored keys stay as sent. (The map's keys come in order: one merge
    // with the sorted kept keys.)
    let kept = kept_on_create();
    let mut at = 0;
    map.retain(|k, _| {
        while kept.get(at).is_some_and(|c| *c < k.as_str()) {
            at += 1;
        }
        kept.get(at) == Some(&k.as_str())
    });
    // 3. Attributes are trimmed and checked, in `ATTRS` order, an absent one as its type's
    // empty value. Each attribute's value is found by one merge of the map with the sorted ids.
    let mut values: [Option<&mut Value>; ATTR_COUNT] = [const { None }; ATTR_COUNT];
    let ids = by_id();
    let mut at = 0;
    for (k, v) in map.iter_mut() {
        while ids.get(at).is_some_and(|&i| ATTRS[i].id < k.as_str()) {
            at += 1;
        }
        if let Some(&i) = ids.get(at).filter(|&&i| ATTRS[i].id == k) {
            values[i] = Some(v);
        }
    }
    let ignored = ignored();
    for (i, a) in ATTRS.iter().enumerate() {
        if ignored[i] {
            continue;
        }
        let Some(v) = values[i].take() else {
            check_value(a, &default_value(a))
                .map_err(|inner| CcError::wrap(code::PARAMS_IS_INVALID, inner))?;
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

/// A process map checked by [`check_create`], read as [`validate_create`] would have filled
/// it: every attribute it lacks with its default.
#[derive(Clone, Copy)]
pub struct Filled<'a>(pub &'a Map<String, Value>);

impl<'a> Filled<'a> {
    pub fn get(self, key: &str) -> Option<&'a Value> {
        self.0.get(key).or_else(|| {
            let d = defaults();
            d.binary_search_by(|(k, _)| (*k).cmp(key))
                .ok()
                .map(|i| &d[i].1)
        })
    }

    /// Every entry in key order: the map's and the defaults of the attributes it lacks.
    pub fn iter(self) -> impl Iterator<Item = (&'a str, &'a Value)> {
        let mut map = self.0.iter().map(|(k, v)| (k.as_str(), v)).peekable();
        let mut defaults = defaults().iter().map(|(k, v)| (*k, v)).peekable();
        std::iter::from_fn(move || match (map.peek(), defaults.peek()) {
            (Some(m), Some(d)) => match m.0.cmp(d.0) {
                std::cmp::Ordering::Less => map.next(),
                std::cmp::Ordering::Equal => {
                    defaults.next();
                    map.next()
                }
                std::cmp::Ordering::Greater => defaults.next(),
            },
            (Some(_), None) => map.next(),
            (None, _) => defaults.next(),
        })
    }
}

/// What proc_server answers for an item error of coreservice: `CCErrorf(code, message)`.
pub fn proc_server_error(core: CcError) -> CcError {
    CcError::wrap(core.code, core)
}

fn user_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^([0-9]|[a-zA-Z])([a-zA-Z0-9@.,_-])*$").expect("user pattern"))
}

fn time_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(concat!(
            r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[\t\n\x0C\r ][0-9]{2}:[0-9]{2}:[0-9]{2}$|",
            r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$"
        ))
        .expect("time pattern")
    })
}

/// The type rule of one attribute value (already trimmed), with its inner error.
pub fn check_value(a: &Attr, v: &Value) -> Result<(), CcError> {
    let name = a.name;
    let need_set = || CcError::with(code::PARAMS_NEED_SET, name);
    match a.ty {
        Type::SingleChar | Type::LongChar => {
            let limit = if a.ty == Type::SingleChar {
                MAX_SINGLECHAR_BYTES
            } else {
                MAX_LONGCHAR_BYTES
            };
            match v {
                Value::Null => {
                    if a.required {
                        Err(need_set())
                    } else {
                        Ok(())
                    }
                }
                Value::String(s) => {
                    if s.len() > limit {
                        Err(CcError::with(code::OVER_LIMIT, name))
                    } else if s.is_empty() && a.required {
                        Err(need_set())
                    } else {
                        Ok(())
                    }
                }
                _ => Err(CcError::with(code::PARAMS_NEED_STRING, name)),
            }
        }
        Type::Int { min, max } => match v {
            Value::Null => {
                if a.required {
                    Err(need_set())
                } else {
                    Ok(())
                }
            }
            Value::Number(n) => {
                // bk-cmdb converts a number that is not an int64 to 0 for the range check.
                let value = n.as_i64().unwrap_or(0);
                if value < min || value > max {
                    Err(CcError::invalid(name))
                } else {
                    Ok(())
                }
            }
            _ => Err(CcError::with(code::PARAMS_NEED_INT, name)),
        },
        Type::Bool => match v {
            Value::Null | Value::Bool(_) => Ok(()),
            _ => Err(CcError::with(code::PARAMS_NEED_BOOL, name)),
        },
        Type::Table => bind_info::validate(v).map_err(|_| CcError::invalid(name)),
        Type::Time => match v {
            Value::Null => Ok(()),
            Value::String(s) if s.is_empty() || time_regex().is_match(s) => Ok(()),
            _ => Err(CcError::invalid(name)),
        },
        Type::User => match v {
            Value::Null => Ok(()),
            Value::String(s) if s.is_empty() => Ok(()),
            Value::String(s) if s.len() > MAX_LONGCHAR_BYTES => {
                Err(CcError::with(code::OVER_LIMIT, name))
            }
            Value::String(s) if user_regex().is_match(s) => Ok(()),
            Value::String(_) => Err(CcError::with(code::FIELD_REG_VALID, name)),
            _ => Err(CcError::with(code::PARAMS_NEED_STRING, name)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Lang;
    use serde_json::json;

    fn run(v: Value) -> Result<Map<String, Value>, String> {
        let mut m = v.as_object().unwrap().clone();
        m.insert("bk_biz_id".into(), json!(2));
        m.insert("service_instance_id".into(), json!(3));
        validate_create(&mut m)
            .map(|()| m)
            .map_err(|e| proc_server_error(e).render(Lang::En))
    }

    #[test]
    fn missing_required_is_wrapped_once_more() {
        assert_eq!(
            run(json!({"bk_process_name": "a"})).unwrap_err(),
            "''bk_func_name' unassigned' unassigned"
        );
        assert_eq!(
            run(json!({})).unwrap_err(),
            "''bk_process_name' unassigned' unassigned"
        );
    }

    #[test]
    fn value_errors_are_double_wrapped() {
        assert_eq!(
            run(json!({"bk_process_name": " ", "bk_func_name": "f"})).unwrap_err(),
            "'''进程别名' unassigned' the parameter is invalid or does not exist' the parameter is invalid or does not exist"
        );
        assert!(
            run(json!({"bk_process_name": "a", "bk_func_name": "f", "proc_num": 1.5}))
                .unwrap_err()
                .contains("'启动数量' data parameter")
        );
        assert!(run(json!({"bk_process_name": "a", "bk_func_name": "f", "priority": 1.5})).is_ok());
        assert!(
            run(json!({"bk_process_name": "a", "bk_func_name": "f", "auto_start": "yes"}))
                .unwrap_err()
                .contains("'是否自动拉起' must be boolean")
        );
        assert!(
            run(json!({"bk_process_name": "a".repeat(257), "bk_func_name": "f"}))
                .unwrap_err()
                .contains("Data out of bounds%!(EXTRA string=进程别名)")
        );
    }

    #[test]
    fn fills_trims_and_prunes() {
        let m =
            run(json!({"bk_process_name": " a ", "bk_func_name": "f", "port": "80", "default": 7}))
                .unwrap();
        assert_eq!(m["bk_process_name"], "a");
        assert_eq!(m["description"], "");
        assert_eq!(m["auto_start"], false);
        assert_eq!(m["proc_num"], Value::Null);
        assert_eq!(m["default"], 7);
        assert!(!m.contains_key("port"));
    }

    #[test]
    fn attribute_table_order_decides() {
        let e = run(
            json!({"bk_process_name": "a", "bk_func_name": "f", "proc_num": 0, "auto_start": 1}),
        )
        .unwrap_err();
        assert!(e.contains("启动数量"), "{e}");
    }
}
