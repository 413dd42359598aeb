//! Service-template synchronisation rules (events-sync spec 2.2, 2.3, 2.7; bk-cmdb
//! `DiffWithProcessTemplate`, `ProcessTemplate.ExtractChangeInfo`,
//! `ProcPropertyBindInfo.ExtractChangeInfoBindInfo`, `getSvcTempSyncStatus`): whether a module
//! built from a template differs from it (`need_sync`), and what a sync does to one service
//! instance: which processes go, which change and how, which templates need a new process.
//!
//! Pure: templates (their `property`), processes (stored maps) and host addresses come in as
//! arguments; the caller reads and writes the store.

use super::bound_process::{
    BAD_IP_CODE, HostIps, PORT_NOT_SET, PROTOCOL_NOT_SET, bind_ip, is_locked,
};
use super::process_fields::LOCKABLE;
use crate::error::{CcError, code};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// A process template as the rules need it: its id and `property`.
#[derive(Clone, Copy, Debug)]
pub struct TemplateRef<'a> {
    pub id: i64,
    pub property: &'a Value,
}

/// One process of a service instance: its id, its relation's `process_template_id` and its
/// stored map.
#[derive(Clone, Copy, Debug)]
pub struct ProcRef<'a> {
    pub id: i64,
    pub template_id: i64,
    pub map: &'a Map<String, Value>,
}

/// `property.<field>.value`, or null.
fn template_value(wrapper: Option<&Value>) -> &Value {
    wrapper.and_then(|w| w.get("value")).unwrap_or(&Value::Null)
}

fn locked(wrapper: Option<&Value>) -> bool {
    wrapper.and_then(|w| w.get("as_default_value")) == Some(&Value::Bool(true))
}

/// Equality of two stored values as Go compares the typed fields: numbers by value (an
/// integer stored as `80` equals `80.0`), everything else as JSON.
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        _ => a == b,
    }
}

/// A bind row's `enable` as a sync writes it: null is `false`.
fn enable_of(v: &Value) -> Value {
    match v {
        Value::Null => Value::Bool(false),
        v => v.clone(),
    }
}

/// The template's bind rows (`property.bind_info.value`), objects only.
fn template_rows(property: &Value) -> Vec<&Map<String, Value>> {
    template_value(property.get("bind_info"))
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .collect()
}

/// The process's bind rows by `template_row_id` (the last of a repeated id wins, as Go's map).
fn rows_by_template_row(
    process: &Map<String, Value>,
) -> (usize, BTreeMap<i64, &Map<String, Value>>) {
    let rows: Vec<&Map<String, Value>> = process
        .get("bind_info")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .collect();
    let count = rows.len();
    let by_id = rows
        .into_iter()
        .map(|r| {
            let id = r
                .get("template_row_id")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            (id, r)
        })
        .collect();
    (count, by_id)
}

/// The address a template row's `ip` code stands for on `host`; null when the template sets
/// no code.
fn row_ip(t: &Map<String, Value>, host: Option<&HostIps>) -> Result<Value, CcError> {
    match template_value(t.get("ip")) {
        Value::Null => Ok(Value::Null),
        Value::String(code) => Ok(Value::from(bind_ip(Some(code), host)?)),
        _ => Err(CcError::raw(code::PARAMS_INVALID, BAD_IP_CODE)),
    }
}

/// need_sync's `bind_info` comparison: only when the template locks `bind_info` as a whole;
/// then a different row count, a template row the process lacks, or a locked sub-field (the
/// ip resolved on the host, port, protocol, enable) that differs.
fn bind_info_differs(
    property: &Value,
    process: &Map<String, Value>,
    host: Option<&HostIps>,
) -> bool {
    if !is_locked(property, "bind_info") {
        return false;
    }
    let tpl = template_rows(property);
    let (count, by_id) = rows_by_template_row(process);
    if count != tpl.len() {
        return true;
    }
    for t in tpl {
        let row_id = t.get("row_id").and_then(Value::as_i64).unwrap_or(0);
        let Some(row) = by_id.get(&row_id) else {
            return true;
        };
        let get = |k: &str| row.get(k).unwrap_or(&Value::Null);
        if locked(t.get("ip")) {
            // An ip code the host cannot resolve is a difference a sync would report.
            match row_ip(t, host) {
                Ok(ip) if same_value(&ip, get("ip")) => {}
                _ => return true,
            }
        }
        for k in ["port", "protocol"] {
            if locked(t.get(k)) && !same_value(template_value(t.get(k)), get(k)) {
                return true;
            }
        }
        if locked(t.get("enable"))
            && enable_of(template_value(t.get("enable"))) != enable_of(get("enable"))
        {
            return true;
        }
    }
    false
}

/// True if a locked field of the template differs from the process (spec 2.7).
pub fn process_differs(
    property: &Value,
    process: &Map<String, Value>,
    host: Option<&HostIps>,
) -> bool {
    LOCKABLE.iter().any(|f| {
        is_locked(property, f)
            && !same_value(
                template_value(property.get(*f)),
                process.get(*f).unwrap_or(&Value::Null),
            )
    }) || bind_info_differs(property, process, host)
}

/// What bk-cmdb knows of a module before it reads any process (spec 2.2, "per module").
pub struct ModuleCounts<'a> {
    pub module_name: &'a str,
    pub template_name: &'a str,
    /// Hosts in the module.
    pub hosts: usize,
    /// Process templates of the template.
    pub templates: usize,
    /// The module's instances of the template.
    pub instances: usize,
}

/// The rules of a module's `need_sync` that need no process: `Some` if they decide it.
pub fn module_needs_sync_by_counts(m: &ModuleCounts) -> Option<bool> {
    if m.module_name != m.template_name {
        return Some(true);
    }
    if m.instances == 0 {
        return Some(m.hosts > 0 && m.templates > 0);
    }
    if m.templates == 0 || m.instances != m.hosts {
        return Some(true);
    }
    None
}

/// One instance's part of `need_sync`: a process whose template is not among `templates`
/// (0 after a template delete included), a locked field that differs, or a template without a
/// process in the instance. The caller adds the module's last rule: no process in any of its
/// instances needs a sync too.
pub fn instance_needs_sync(
    templates: &[TemplateRef],
    procs: &[ProcRef],
    host: Option<&HostIps>,
) -> bool {
    let by_id: BTreeMap<i64, &Value> = templates.iter().map(|t| (t.id, t.property)).collect();
    let mut seen = BTreeSet::new();
    for p in procs {
        let Some(property) = by_id.get(&p.template_id) else {
            return true;
        };
        if process_differs(property, p.map, host) {
            return true;
        }
        seen.insert(p.template_id);
    }
    by_id.keys().any(|id| !seen.contains(id))
}

/// The rebuilt `bind_info` of a sync (`ExtractChangeInfoBindInfo`): one row per template row,
/// in the template's order; a row the process has keeps its unlocked sub-fields, the rest come
/// from the template (ip resolved on the host, null if the template has no ip); `enable` null
/// becomes `false`. `None` if nothing changed.
fn sync_bind_info(
    property: &Value,
    process: &Map<String, Value>,
    host: Option<&HostIps>,
) -> Result<Option<Value>, CcError> {
    let tpl = template_rows(property);
    let (count, by_id) = rows_by_template_row(process);
    let mut changed = count != tpl.len();
    let mut out = Vec::with_capacity(tpl.len());
    for t in tpl {
        let row_id = t.get("row_id").and_then(Value::as_i64).unwrap_or(0);
        let given = by_id.get(&row_id);
        let mut row = match given {
            Some(r) => (*r).clone(),
            None => {
                let mut r = Map::new();
                for k in ["enable", "ip", "port", "protocol"] {
                    r.insert(k.into(), Value::Null);
                }
                r
            }
        };
        row.insert("template_row_id".into(), Value::from(row_id));
        let from_template = |k: &str| given.is_none() || locked(t.get(k));
        let mut set = |row: &mut Map<String, Value>, k: &str, v: Value| {
            if !same_value(row.get(k).unwrap_or(&Value::Null), &v) {
                row.insert(k.into(), v);
                changed = true;
            }
        };
        if from_template("ip") {
            let ip = row_ip(t, host)?;
            set(&mut row, "ip", ip);
        }
        for (k, missing) in [("port", PORT_NOT_SET), ("protocol", PROTOCOL_NOT_SET)] {
            if !from_template(k) {
                continue;
            }
            let v = template_value(t.get(k));
            if v.is_null() && row.get(k).is_none_or(Value::is_null) {
                continue;
            }
            match v {
                Value::String(s) if !s.is_empty() => set(&mut row, k, v.clone()),
                _ => return Err(CcError::raw(code::PARAMS_INVALID, missing)),
            }
        }
        let current = enable_of(row.get("enable").unwrap_or(&Value::Null));
        row.insert("enable".into(), current);
        if from_template("enable") {
            set(
                &mut row,
                "enable",
                enable_of(template_value(t.get("enable"))),
            );
        }
        out.push(Value::Object(row));
    }
    Ok(changed.then_some(Value::Array(out)))
}

/// The update a sync makes to one process (`ExtractChangeInfo`): every locked field whose value
/// differs takes the template's (null included), and `bind_info` is rebuilt whatever its lock.
/// `None` if nothing changes. Errors are 1199006 with bk-cmdb's verbatim text.
pub fn sync_update(
    property: &Value,
    process: &Map<String, Value>,
    host: Option<&HostIps>,
) -> Result<Option<Map<String, Value>>, CcError> {
    let mut data = Map::new();
    for f in LOCKABLE {
        if !is_locked(property, f) {
            continue;
        }
        let want = template_value(property.get(f));
        if !same_value(want, process.get(f).unwrap_or(&Value::Null)) {
            data.insert(f.to_string(), want.clone());
        }
    }
    if let Some(rows) = sync_bind_info(property, process, host)? {
        data.insert("bind_info".into(), rows);
    }
    Ok((!data.is_empty()).then_some(data))
}

/// What a sync does to one existing service instance (spec 2.3 steps 3 to 5).
#[derive(Debug, Default, PartialEq)]
pub struct InstancePlan {
    /// Processes to delete (with their relations).
    pub remove: Vec<i64>,
    /// Processes to update, with their update data.
    pub update: Vec<(i64, Map<String, Value>)>,
    /// Templates (ids, ascending) to create a process from.
    pub add: Vec<i64>,
    /// The instance itself goes (the template has no process template left).
    pub remove_instance: bool,
}

/// Plans the sync of one instance of a template whose process templates are `templates`.
pub fn plan_instance(
    templates: &[TemplateRef],
    procs: &[ProcRef],
    host: Option<&HostIps>,
) -> Result<InstancePlan, CcError> {
    let mut plan = InstancePlan::default();
    if templates.is_empty() {
        plan.remove = procs.iter().map(|p| p.id).collect();
        plan.remove_instance = true;
        return Ok(plan);
    }
    let by_id: BTreeMap<i64, &Value> = templates.iter().map(|t| (t.id, t.property)).collect();
    let mut seen = BTreeSet::new();
    for p in procs {
        let Some(property) = by_id.get(&p.template_id) else {
            plan.remove.push(p.id);
            continue;
        };
        seen.insert(p.template_id);
        if let Some(data) = sync_update(property, p.map, host)? {
            plan.update.push((p.id, data));
        }
    }
    plan.add = by_id
        .keys()
        .copied()
        .filter(|id| !seen.contains(id))
        .collect();
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn w(value: Value, locked: bool) -> Value {
        json!({"value": value, "as_default_value": locked})
    }

    fn property() -> Value {
        json!({
            "bk_process_name": w(json!("nginx"), true),
            "bk_func_name": w(json!("nginx"), true),
            "user": w(json!("root"), true),
            "proc_num": w(json!(2), true),
            "description": w(json!("tpl"), false),
            "bind_info": {"as_default_value": true, "value": [
                {"row_id": 1, "ip": w(json!("3"), true), "port": w(json!("80"), true),
                 "protocol": w(json!("1"), true), "enable": w(json!(true), false)}
            ]}
        })
    }

    fn process() -> Map<String, Value> {
        json!({
            "bk_process_name": "nginx", "bk_func_name": "nginx", "user": "root",
            "proc_num": 2, "description": "mine",
            "bind_info": [{"enable": false, "ip": "10.0.0.1", "port": "80", "protocol": "1",
                           "template_row_id": 1}]
        })
        .as_object()
        .cloned()
        .unwrap_or_default()
    }

    const HOST: HostIps = HostIps {
        inner: "10.0.0.1,10.0.0.2",
        outer: "",
        inner_v6: "",
        outer_v6: "",
    };

    #[test]
    fn an_instance_made_from_its_template_does_not_differ() {
        let p = process();
        assert!(!process_differs(&property(), &p, Some(&HOST)));
        assert_eq!(sync_update(&property(), &p, Some(&HOST)).unwrap(), None);
    }

    #[test]
    fn locked_fields_differ_and_are_overwritten_unlocked_ones_stay() {
        let mut p = process();
        p.insert("user".into(), json!("nobody"));
        p.insert("proc_num".into(), json!(2.0));
        assert!(process_differs(&property(), &p, Some(&HOST)));
        let data = sync_update(&property(), &p, Some(&HOST)).unwrap().unwrap();
        assert_eq!(Value::Object(data), json!({"user": "root"}));
        // null in the instance differs from a value in the template.
        let mut p = process();
        p.insert("user".into(), Value::Null);
        assert!(process_differs(&property(), &p, Some(&HOST)));
    }

    #[test]
    fn bind_rows_follow_the_template() {
        // A locked port changed, an extra row: both go back to the template's row.
        let mut p = process();
        p.insert(
            "bind_info".into(),
            json!([{"enable": true, "ip": "10.0.0.1", "port": "81", "protocol": "1",
                    "template_row_id": 1},
                   {"enable": true, "ip": "1.1.1.1", "port": "9", "protocol": "1",
                    "template_row_id": 7}]),
        );
        assert!(process_differs(&property(), &p, Some(&HOST)));
        let data = sync_update(&property(), &p, Some(&HOST)).unwrap().unwrap();
        assert_eq!(
            data["bind_info"],
            json!([{"enable": true, "ip": "10.0.0.1", "port": "80", "protocol": "1",
                    "template_row_id": 1}])
        );
        // A row missing: made from the template, enable from its value.
        let mut p = process();
        p.insert("bind_info".into(), Value::Null);
        let data = sync_update(&property(), &p, Some(&HOST)).unwrap().unwrap();
        assert_eq!(
            data["bind_info"],
            json!([{"enable": true, "ip": "10.0.0.1", "port": "80", "protocol": "1",
                    "template_row_id": 1}])
        );
    }

    #[test]
    fn bind_info_unlocked_as_a_whole_is_not_compared_but_is_rebuilt() {
        let mut prop = property();
        prop["bind_info"]["as_default_value"] = json!(false);
        let mut p = process();
        p.insert("bind_info".into(), json!([]));
        assert!(!process_differs(&prop, &p, Some(&HOST)));
        assert!(sync_update(&prop, &p, Some(&HOST)).unwrap().is_some());
    }

    #[test]
    fn plans_remove_update_add() {
        let prop = property();
        let other = json!({"bk_process_name": w(json!("php"), true)});
        let templates = [
            TemplateRef {
                id: 10,
                property: &prop,
            },
            TemplateRef {
                id: 11,
                property: &other,
            },
        ];
        let mut changed = process();
        changed.insert("user".into(), json!("x"));
        let orphan = process();
        let procs = [
            ProcRef {
                id: 1,
                template_id: 10,
                map: &changed,
            },
            ProcRef {
                id: 2,
                template_id: 0,
                map: &orphan,
            },
        ];
        let plan = plan_instance(&templates, &procs, Some(&HOST)).unwrap();
        assert_eq!(plan.remove, [2]);
        assert_eq!(plan.update.len(), 1);
        assert_eq!(plan.update[0].0, 1);
        assert_eq!(plan.add, [11]);
        assert!(!plan.remove_instance);
        let plan = plan_instance(&[], &procs, Some(&HOST)).unwrap();
        assert_eq!(plan.remove, [1, 2]);
        assert!(plan.remove_instance);
    }

    #[test]
    fn module_rules_in_order() {
        let counts = |name, hosts, templates, instances| ModuleCounts {
            module_name: name,
            template_name: "web",
            hosts,
            templates,
            instances,
        };
        assert_eq!(module_needs_sync_by_counts(&counts("web", 1, 1, 1)), None);
        assert_eq!(
            module_needs_sync_by_counts(&counts("other", 1, 1, 1)),
            Some(true)
        );
        assert_eq!(
            module_needs_sync_by_counts(&counts("web", 2, 1, 1)),
            Some(true)
        );
        assert_eq!(
            module_needs_sync_by_counts(&counts("web", 1, 0, 1)),
            Some(true)
        );
        assert_eq!(
            module_needs_sync_by_counts(&counts("web", 1, 1, 0)),
            Some(true)
        );
        assert_eq!(
            module_needs_sync_by_counts(&counts("web", 0, 1, 0)),
            Some(false)
        );
        assert_eq!(
            module_needs_sync_by_counts(&counts("web", 1, 0, 0)),
            Some(false)
        );
        let prop = property();
        let templates = [TemplateRef {
            id: 10,
            property: &prop,
        }];
        let p = process();
        let procs = [ProcRef {
            id: 1,
            template_id: 10,
            map: &p,
        }];
        assert!(!instance_needs_sync(&templates, &procs, Some(&HOST)));
        assert!(instance_needs_sync(&templates, &[], Some(&HOST)));
        let orphan = [ProcRef {
            id: 1,
            template_id: 0,
            map: &p,
        }];
        assert!(instance_needs_sync(&templates, &orphan, Some(&HOST)));
    }
}
