//! Processes bound to a process template (relation `process_template_id` ≠ 0): what an update
//! may change in them (spec 4.1, 4.3 step 5, 4.4; bk-cmdb `ProcessTemplate.
//! ExtractInstanceUpdateData`, `GetEditableFields`, `ProcPropertyBindInfo.
//! changeInstanceBindInfo`).
//!
//! A template's `property` maps each process field to `{"value", "as_default_value"}`;
//! `as_default_value: true` locks the field: instances carry the template's value and an
//! update cannot change it. An update takes only the unlocked fields the item sets (non-null),
//! clears the unlocked fields the item sends as explicit `null`, and always rebuilds
//! `bind_info`: one row per template row, matched with the item's rows by `template_row_id`;
//! an unlocked sub-field keeps the item's value when the item has that row, everything else
//! comes from the template (the bind-IP code resolved against the host). Item rows that match
//! no template row are dropped.
//!
//! Pure: the template's `property`, the host's addresses and the item come in as arguments.

use super::process_fields::{LOCKABLE, is_clearable};
use super::process_update::{self, UpdateItem};
use crate::error::{CcError, code};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// bk-cmdb's verbatim texts (1199006) when the template cannot supply a bind_info value.
pub const PORT_NOT_SET: &str = "process template bind port is not set or is empty";
pub const PROTOCOL_NOT_SET: &str = "process template bind protocol is not set or is empty";
pub const NO_HOST: &str = "process host is not specified to get bind ip";
pub const BAD_IP_CODE: &str = "process template bind info ip is invalid";

/// The addresses of a process's host that bind-IP codes 3, 4, 7 and 8 refer to (bk-cmdb stores
/// several addresses as one comma-joined string).
#[derive(Clone, Copy, Debug, Default)]
pub struct HostIps<'a> {
    pub inner: &'a str,
    pub outer: &'a str,
    pub inner_v6: &'a str,
    pub outer_v6: &'a str,
}

/// True if the template locks `field` (`property.<field>.as_default_value` is `true`).
pub fn is_locked(property: &Value, field: &str) -> bool {
    locked(property.get(field))
}

fn locked(wrapper: Option<&Value>) -> bool {
    wrapper.and_then(|w| w.get("as_default_value")) == Some(&Value::Bool(true))
}

/// The string `value` of a `{"value", "as_default_value"}` wrapper, if it is one.
fn str_value(wrapper: Option<&Value>) -> Option<&str> {
    wrapper.and_then(|w| w.get("value")).and_then(Value::as_str)
}

/// The fields an update may change (bk-cmdb `ExtractEditableFields`): the unlocked ones of
/// [`LOCKABLE`] (`process_fields`), and `bind_info`.
pub fn editable_fields(property: &Value) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = LOCKABLE
        .into_iter()
        .filter(|f| !is_locked(property, f))
        .collect();
    out.push("bind_info");
    out
}

/// The address a bind-IP code stands for (bk-cmdb `SocketBindType.IP`). An empty or absent
/// code is `""`; codes 3/4/7/8 take the first address of the host's inner/outer IPv4/IPv6
/// list and need the host.
pub fn bind_ip(bind_code: Option<&str>, host: Option<&HostIps>) -> Result<String, CcError> {
    let fixed = match bind_code {
        None | Some("") => "",
        Some("1") => "127.0.0.1",
        Some("2") => "0.0.0.0",
        Some("5") => "::1",
        Some("6") => "::",
        Some("3" | "4" | "7" | "8") => {
            let h = host.ok_or_else(|| CcError::raw(code::PARAMS_INVALID, NO_HOST))?;
            let list = match bind_code {
                Some("3") => h.inner,
                Some("4") => h.outer,
                Some("7") => h.inner_v6,
                _ => h.outer_v6,
            };
            first_ip(list)
        }
        Some(_) => return Err(CcError::raw(code::PARAMS_INVALID, BAD_IP_CODE)),
    };
    Ok(fixed.to_string())
}

/// The first address of a comma-joined list, as bk-cmdb cuts it: the comma is looked for in the
/// list trimmed of outer commas, and that position is cut from the untrimmed list.
fn first_ip(list: &str) -> &str {
    match list.trim_matches(',').find(',') {
        None => list,
        Some(i) => list.get(..i).unwrap_or(list),
    }
}

/// A `bind_info` row as bk-cmdb writes it: the five standard keys.
fn empty_row() -> Map<String, Value> {
    let mut row = Map::new();
    for k in ["enable", "ip", "port", "protocol"] {
        row.insert(k.into(), Value::Null);
    }
    row.insert("template_row_id".into(), Value::from(0));
    row
}

/// Rebuilds `bind_info` from the template rows (`property.bind_info.value`) and the item's rows
/// (already decoded, see [`process_update::decode_item`]).
pub fn rebuild_bind_info(
    property: &Value,
    item_rows: &Value,
    host: Option<&HostIps>,
) -> Result<Value, CcError> {
    let mut by_row_id: BTreeMap<i64, &Map<String, Value>> = BTreeMap::new();
    for row in item_rows.as_array().into_iter().flatten() {
        if let Some(row) = row.as_object() {
            let id = row
                .get("template_row_id")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            by_row_id.insert(id, row);
        }
    }
    let template_rows = property
        .get("bind_info")
        .and_then(|b| b.get("value"))
        .and_then(Value::as_array);
    let mut out = Vec::new();
    for t in template_rows.into_iter().flatten() {
        let row_id = t.get("row_id").and_then(Value::as_i64).unwrap_or(0);
        let given = by_row_id.get(&row_id);
        let mut row = given.map_or_else(empty_row, |r| (*r).clone());
        row.insert("template_row_id".into(), Value::from(row_id));
        // A sub-field keeps the item's value only if the item has the row and it is unlocked.
        let from_template = |key: &str| given.is_none() || locked(t.get(key));
        if from_template("ip") {
            let ip = bind_ip(str_value(t.get("ip")), host)?;
            row.insert("ip".into(), Value::from(ip));
        }
        for (key, missing) in [("port", PORT_NOT_SET), ("protocol", PROTOCOL_NOT_SET)] {
            if from_template(key) {
                match str_value(t.get(key)) {
                    Some(v) if !v.is_empty() => row.insert(key.into(), Value::from(v)),
                    _ => return Err(CcError::raw(code::PARAMS_INVALID, missing)),
                };
            }
        }
        if from_template("enable") {
            let enable = t
                .get("enable")
                .and_then(|w| w.get("value"))
                .and_then(Value::as_bool)
                .map_or(Value::Null, Value::from);
            row.insert("enable".into(), enable);
        }
        out.push(Value::Object(row));
    }
    Ok(Value::Array(out))
}

/// The update data of a template-bound process, before validation: the unlocked fields the item
/// sets, the rebuilt `bind_info`, and `null` for every unlocked field the item sends as an
/// explicit `null` (bk-cmdb `ExtractInstanceUpdateData` followed by `GetEditableFields` on the
/// clear list). Errors are 1199006 with bk-cmdb's verbatim text.
pub fn update_data(
    property: &Value,
    item: &UpdateItem,
    host: Option<&HostIps>,
) -> Result<Map<String, Value>, CcError> {
    let mut data = Map::new();
    for f in LOCKABLE {
        if is_locked(property, f) {
            continue;
        }
        if let Some(v) = item.fields.get(f).filter(|v| !v.is_null()) {
            data.insert(f.to_string(), v.clone());
        }
    }
    let rows = item.fields.get("bind_info").unwrap_or(&Value::Null);
    data.insert("bind_info".into(), rebuild_bind_info(property, rows, host)?);
    let editable = editable_fields(property);
    for k in &item.nulls {
        if is_clearable(k) && editable.contains(&k.as_str()) {
            data.insert(k.clone(), Value::Null);
        }
    }
    Ok(data)
}

/// Applies one update item (an element of `update_process_instance`'s `processes`) to the
/// stored map `current` of a process created from a template whose `property` is given:
/// decodes the item as bk-cmdb does (1199000 on a wrong JSON type), takes [`update_data`],
/// validates it as coreservice does (1199011 wrapping the rule's message once) and sets it.
///
/// Returns the new stored map. The caller then stamps `last_time`/`bk_updated_by`/
/// `bk_updated_at` (`process_update::stamp_update_fields`), checks the uniqueness keys and
/// writes it. `host` is the process's host (needed when the template binds to a host address).
/// A batch that must report errors in bk-cmdb's order (all items decoded, then every update
/// computed, then each applied) uses the three steps separately, as
/// `api::process_lifecycle::update_in_tx` does.
pub fn apply_update(
    current: &Map<String, Value>,
    property: &Value,
    input: &Map<String, Value>,
    host: Option<&HostIps>,
) -> Result<Map<String, Value>, CcError> {
    let item = process_update::decode_item(input)?;
    let mut data = update_data(property, &item, host)?;
    process_update::validate_update(&mut data)?;
    Ok(process_update::merge(current, &data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Lang;
    use serde_json::json;

    fn w(value: Value, locked: bool) -> Value {
        json!({"value": value, "as_default_value": locked})
    }

    /// bk_process_name, bk_func_name, user locked; description, proc_num, work_path unlocked;
    /// row 1: ip code 3 locked, port unlocked, protocol and enable locked; row 2 all unlocked.
    fn property() -> Value {
        json!({
            "bk_process_name": w(json!("envoy"), true),
            "bk_func_name": w(json!("envoy"), true),
            "user": w(json!("root"), true),
            "description": w(json!("tpl"), false),
            "proc_num": w(json!(1), false),
            "work_path": w(json!(null), false),
            "bind_info": {"as_default_value": true, "value": [
                {"row_id": 1, "ip": w(json!("3"), true), "port": w(json!("80"), false),
                 "protocol": w(json!("1"), true), "enable": w(json!(true), true)},
                {"row_id": 2, "ip": w(json!("1"), false), "port": w(json!("81"), false),
                 "protocol": w(json!("2"), false), "enable": w(json!(false), false)}
            ]}
        })
    }

    const HOST: HostIps = HostIps {
        inner: "10.0.0.1,10.0.0.2",
        outer: "",
        inner_v6: "",
        outer_v6: "",
    };

    fn item(v: Value) -> UpdateItem {
        process_update::decode_item(v.as_object().unwrap()).unwrap()
    }

    fn current() -> Map<String, Value> {
        json!({"bk_process_id": 40, "bk_process_name": "envoy", "bk_func_name": "envoy",
               "user": "root", "description": "old", "proc_num": 2, "work_path": "/w",
               "service_instance_id": 31, "bind_info": []})
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn locked_fields_are_ignored_and_unlocked_ones_taken() {
        let d = update_data(
            &property(),
            &item(
                json!({"bk_process_id": 40, "bk_process_name": "x", "user": "u",
                         "description": "new", "proc_num": 3}),
            ),
            Some(&HOST),
        )
        .unwrap();
        assert!(!d.contains_key("bk_process_name"));
        assert!(!d.contains_key("user"));
        assert_eq!(d["description"], "new");
        assert_eq!(d["proc_num"], 3);
        // Omitted unlocked fields are not touched.
        assert!(!d.contains_key("work_path"));
    }

    #[test]
    fn explicit_null_clears_unlocked_fields_only() {
        let d = update_data(
            &property(),
            &item(json!({"bk_process_id": 40, "work_path": null, "user": null,
                         "bind_info": null, "port": null})),
            Some(&HOST),
        )
        .unwrap();
        assert_eq!(d["work_path"], Value::Null);
        assert!(!d.contains_key("user"));
        assert!(!d.contains_key("port"));
        // bind_info cannot be cleared: it is rebuilt from the template.
        assert_eq!(d["bind_info"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn bind_info_is_rebuilt_by_template_row_id() {
        let d = update_data(
            &property(),
            &item(json!({"bk_process_id": 40, "bind_info": [
                {"template_row_id": 1, "ip": "9.9.9.9", "port": "8080", "protocol": "2",
                 "enable": false},
                {"template_row_id": 7, "port": "1"}
            ]})),
            Some(&HOST),
        )
        .unwrap();
        assert_eq!(
            d["bind_info"],
            json!([
                {"template_row_id": 1, "ip": "10.0.0.1", "port": "8080", "protocol": "1",
                 "enable": true},
                {"template_row_id": 2, "ip": "127.0.0.1", "port": "81", "protocol": "2",
                 "enable": false}
            ])
        );
        // An item row for template row 2 keeps its unlocked values, even absent ones.
        let d = update_data(
            &property(),
            &item(json!({"bind_info": [{"template_row_id": 2, "port": "99"}]})),
            Some(&HOST),
        )
        .unwrap();
        assert_eq!(
            d["bind_info"][1],
            json!({"template_row_id": 2, "ip": null, "port": "99", "protocol": null,
                   "enable": null})
        );
    }

    #[test]
    fn template_gaps_are_bk_cmdb_texts() {
        let mut p = property();
        p["bind_info"]["value"][0]["port"] = w(json!(""), true);
        let e = update_data(&p, &item(json!({})), Some(&HOST)).unwrap_err();
        assert_eq!(e.code, code::PARAMS_INVALID);
        assert_eq!(e.render(Lang::Zh), PORT_NOT_SET);
        let mut p = property();
        p["bind_info"]["value"][1]["protocol"] = w(json!(null), false);
        let e = update_data(&p, &item(json!({})), Some(&HOST)).unwrap_err();
        assert_eq!(e.render(Lang::En), PROTOCOL_NOT_SET);
        let e = update_data(&property(), &item(json!({})), None).unwrap_err();
        assert_eq!(e.render(Lang::En), NO_HOST);
        let mut p = property();
        p["bind_info"]["value"][1]["ip"] = w(json!("9"), true);
        let e = update_data(&p, &item(json!({})), Some(&HOST)).unwrap_err();
        assert_eq!(e.render(Lang::En), BAD_IP_CODE);
    }

    #[test]
    fn bind_ip_codes() {
        let h = HostIps {
            inner: ",10.0.0.1,10.0.0.2",
            outer: "1.2.3.4",
            inner_v6: "::5",
            outer_v6: "",
        };
        assert_eq!(bind_ip(None, None).unwrap(), "");
        assert_eq!(bind_ip(Some("2"), None).unwrap(), "0.0.0.0");
        assert_eq!(bind_ip(Some("5"), None).unwrap(), "::1");
        assert_eq!(bind_ip(Some("6"), None).unwrap(), "::");
        assert_eq!(bind_ip(Some("4"), Some(&h)).unwrap(), "1.2.3.4");
        assert_eq!(bind_ip(Some("7"), Some(&h)).unwrap(), "::5");
        assert_eq!(bind_ip(Some("8"), Some(&h)).unwrap(), "");
        // bk-cmdb finds the comma in the trimmed list and cuts the untrimmed one.
        assert_eq!(bind_ip(Some("3"), Some(&h)).unwrap(), ",10.0.0.");
        assert_eq!(first_ip("10.0.0.1,"), "10.0.0.1,");
    }

    #[test]
    fn template_without_rows_gives_an_empty_list() {
        let p = json!({"bk_process_name": w(json!("a"), true)});
        let d = update_data(&p, &item(json!({"bind_info": [{"port": "1"}]})), None).unwrap();
        assert_eq!(d["bind_info"], json!([]));
        assert_eq!(editable_fields(&p).len(), LOCKABLE.len());
    }

    #[test]
    fn apply_update_validates_and_sets() {
        let m = apply_update(
            &current(),
            &property(),
            &json!({"bk_process_id": 40, "description": "  d  ", "bk_func_name": ""})
                .as_object()
                .unwrap()
                .clone(),
            Some(&HOST),
        )
        .unwrap();
        assert_eq!(m["description"], "d");
        assert_eq!(m["bk_func_name"], "envoy");
        assert_eq!(m["proc_num"], 2);
        assert_eq!(m["bind_info"][0]["ip"], "10.0.0.1");
        let e = apply_update(
            &current(),
            &property(),
            &json!({"proc_num": 0}).as_object().unwrap().clone(),
            Some(&HOST),
        )
        .unwrap_err();
        assert_eq!(e.code, code::PARAMS_IS_INVALID);
        let e = apply_update(
            &current(),
            &property(),
            &json!({"proc_num": "1"}).as_object().unwrap().clone(),
            Some(&HOST),
        )
        .unwrap_err();
        assert_eq!(e.code, code::JSON_UNMARSHAL);
    }
}
