//! What bk-cmdb's instance read (coreservice `FindInst`) returns for a stored document: a
//! MongoDB inclusion projection on the requested fields, and the recorded times filled in.

use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// A process as bk-cmdb's instance read returns it (coreservice `FindInst` over a MongoDB
/// projection): only `fields` when any are given (dotted paths reach into objects and arrays
/// of objects); a null or absent `bk_created_at`/`bk_updated_at` that is returned takes the
/// value of `create_time`/`last_time`, which are themselves dropped unless asked for.
pub fn read_shape(doc: Map<String, Value>, fields: &[String]) -> Map<String, Value> {
    let wants = |f: &str| fields.is_empty() || fields.iter().any(|x| x == f);
    let (created_at, create_time) = (wants("bk_created_at"), wants("create_time"));
    let (updated_at, last_time) = (wants("bk_updated_at"), wants("last_time"));
    let mut paths: Vec<&str> = fields.iter().map(String::as_str).collect();
    if created_at && !create_time {
        paths.push("create_time");
    }
    if updated_at && !last_time {
        paths.push("last_time");
    }
    let paths: Vec<&str> = paths.into_iter().filter(|p| !p.is_empty()).collect();
    let mut out = if paths.is_empty() {
        doc
    } else {
        project(&doc, &paths)
    };
    for (wanted, key, from) in [
        (created_at, "bk_created_at", "create_time"),
        (updated_at, "bk_updated_at", "last_time"),
    ] {
        if wanted && out.get(key).is_none_or(Value::is_null) {
            let v = out.get(from).cloned().unwrap_or(Value::Null);
            out.insert(key.into(), v);
        }
    }
    if !create_time {
        out.remove("create_time");
    }
    if !last_time {
        out.remove("last_time");
    }
    out
}

/// A MongoDB inclusion projection of `doc` on `paths` (`a` or `a.b.c`); a path that also has a
/// shorter prefix in the list is covered by the prefix.
fn project(doc: &Map<String, Value>, paths: &[&str]) -> Map<String, Value> {
    let mut out = Map::new();
    let mut nested: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut whole: BTreeSet<&str> = BTreeSet::new();
    for p in paths {
        match p.split_once('.') {
            None => {
                whole.insert(p);
            }
            Some((head, rest)) => nested.entry(head).or_default().push(rest),
        }
    }
    for key in &whole {
        if let Some(v) = doc.get(*key) {
            out.insert(key.to_string(), v.clone());
        }
    }
    for (key, rest) in nested {
        if whole.contains(key) {
            continue;
        }
        if let Some(v) = doc.get(key).and_then(|v| project_value(v, &rest)) {
            out.insert(key.to_string(), v);
        }
    }
    out
}

fn project_value(v: &Value, paths: &[&str]) -> Option<Value> {
    match v {
        Value::Object(m) => Some(Value::Object(project(m, paths))),
        Value::Array(items) => Some(Value::Array(
            items
                .iter()
                .filter_map(|i| project_value(i, paths))
                .collect(),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Map<String, Value> {
        json!({"bk_process_id": 1, "bk_process_name": "a", "create_time": "t1", "last_time": "t2",
               "bk_created_at": null, "bind_info": [{"port": "80", "ip": "1.1.1.1"}, 5]})
        .as_object()
        .unwrap()
        .clone()
    }

    fn shape(fields: &[&str]) -> Value {
        let f: Vec<String> = fields.iter().map(|s| s.to_string()).collect();
        Value::Object(read_shape(doc(), &f))
    }

    #[test]
    fn whole_document_fills_the_recorded_times() {
        let v = shape(&[]);
        assert_eq!(v["bk_created_at"], "t1");
        assert_eq!(v["bk_updated_at"], "t2");
        assert_eq!(v["create_time"], "t1");
    }

    #[test]
    fn fields_select_and_times_follow_bk_cmdb() {
        assert_eq!(
            shape(&["bk_process_name", "nope"]),
            json!({"bk_process_name": "a"})
        );
        assert_eq!(shape(&["bk_created_at"]), json!({"bk_created_at": "t1"}));
        assert_eq!(
            shape(&["bk_updated_at", "last_time"]),
            json!({"bk_updated_at": "t2", "last_time": "t2"})
        );
        assert_eq!(
            shape(&["bind_info.port"]),
            json!({"bind_info": [{"port": "80"}]})
        );
        assert_eq!(
            shape(&["bind_info", "bind_info.port"]),
            json!({"bind_info": [{"port": "80", "ip": "1.1.1.1"}, 5]})
        );
        // Only empty names: no projection, but the times are dropped as not asked for.
        let v = shape(&[""]);
        assert_eq!(v["bk_process_name"], "a");
        assert!(v.get("create_time").is_none());
    }
}
