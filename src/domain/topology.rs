//! Businesses, sets, modules, hosts and cloud areas as bk-cmdb stores them (spec topology 3.1):
//! the built-in attributes each record carries and the defaults an absent one takes
//! (`FillLostFieldValue`: singlechar/longchar `""`; int, user, time, list `null`; bool `false`;
//! enum its default option), the built-in records of every store (spec 2), and the English names
//! bk-cmdb shows for them (`resources/language/en/inst.json`). Pure: the time and the user are
//! passed in.

use crate::error::Lang;
use serde_json::{Map, Value, json};

/// The five topology objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Obj {
    Biz,
    Set,
    Module,
    Host,
    Cloud,
}

/// Who created a record, and when (RFC 3339 text), for the recorded fields.
pub struct Stamp<'a> {
    pub now: &'a str,
    pub user: &'a str,
    pub supplier: &'a str,
}

/// Built-in attributes and their defaults, per object (spec topology 3.1, 3.2).
fn defaults(obj: Obj) -> Vec<(&'static str, Value)> {
    let s = |v: &str| Value::String(v.into());
    match obj {
        Obj::Biz => vec![
            ("bk_biz_maintainer", Value::Null),
            ("bk_biz_productor", Value::Null),
            ("bk_biz_tester", Value::Null),
            ("bk_biz_developer", Value::Null),
            ("operator", Value::Null),
            ("life_cycle", s("2")),
            ("time_zone", s("Asia/Shanghai")),
            ("language", s("1")),
        ],
        Obj::Set => vec![
            ("bk_set_desc", s("")),
            ("bk_set_env", s("3")),
            ("bk_service_status", s("1")),
            ("description", s("")),
            ("bk_capacity", Value::Null),
            ("set_template_id", json!(0)),
            ("bk_childid", Value::Null),
        ],
        Obj::Module => vec![
            ("bk_module_type", s("1")),
            ("operator", Value::Null),
            ("bk_bak_operator", Value::Null),
            ("set_template_id", json!(0)),
            ("host_apply_enabled", json!(false)),
        ],
        Obj::Host => {
            let mut v: Vec<(&str, Value)> = [
                "bk_host_name",
                "bk_os_name",
                "bk_os_version",
                "bk_os_bit",
                "bk_cpu_module",
                "bk_mac",
                "bk_outer_mac",
                "bk_sn",
                "bk_os_kernel_version",
                "bk_asset_id",
                "bk_comment",
                "bk_cloud_inst_id",
                "bk_cloud_region",
                "bk_cloud_zone",
                "bk_agent_id",
                // Stored as lists and returned comma-joined; an empty list reads as "".
                "operator",
                "bk_bak_operator",
            ]
            .into_iter()
            .map(|k| (k, s("")))
            .collect();
            for k in [
                "bk_cpu",
                "bk_mem",
                "bk_disk",
                "bk_service_term",
                "bk_os_type",
                "bk_sla",
                "bk_state_name",
                "bk_province_name",
                "bk_isp_name",
                "import_from",
                "bk_cloud_host_status",
                "bk_cloud_vendor",
                "bk_state",
            ] {
                v.push((k, Value::Null));
            }
            v.push(("bk_addressing", s("static")));
            v.push(("bk_cpu_architecture", s("x86")));
            v.push(("bk_cloud_host_identifier", json!(false)));
            v
        }
        Obj::Cloud => vec![
            ("bk_status", s("1")),
            ("bk_status_detail", s("")),
            ("bk_cloud_vendor", s("")),
            ("bk_vpc_id", s("")),
            ("bk_vpc_name", s("")),
            ("bk_region", s("")),
            ("bk_account_id", json!(0)),
            ("default", json!(0)),
        ],
    }
}

/// Fills every built-in attribute `map` lacks with bk-cmdb's default, and the recorded fields
/// (supplier, times, creator) from `stamp`. Keys present are kept as given, custom ones too.
pub fn fill(obj: Obj, map: &mut Map<String, Value>, stamp: &Stamp) {
    for (k, v) in defaults(obj) {
        map.entry(k).or_insert(v);
    }
    let now = || Value::String(stamp.now.into());
    let user = || Value::String(stamp.user.into());
    map.entry("bk_supplier_account")
        .or_insert_with(|| Value::String(stamp.supplier.into()));
    map.entry("create_time").or_insert_with(now);
    map.entry("last_time").or_insert_with(now);
    if obj == Obj::Cloud {
        map.entry("bk_creator").or_insert_with(user);
        map.entry("bk_last_editor").or_insert_with(user);
    } else {
        map.entry("bk_created_at").or_insert_with(now);
        map.entry("bk_updated_at").or_insert_with(now);
        map.entry("bk_created_by").or_insert_with(user);
        map.entry("bk_updated_by").or_insert(Value::Null);
    }
}

/// The resource-pool business's name, and the idle pool's, as stored.
pub const RESOURCE_POOL_NAME: &str = "资源池";
pub const IDLE_SET_NAME: &str = "空闲机池";
/// The built-in modules of every business's idle pool: `default` and stored name.
pub const INNER_MODULES: [(i64, &str); 3] = [(1, "空闲机"), (2, "故障机"), (3, "待回收")];
/// Cloud area 0.
pub const DEFAULT_CLOUD_NAME: &str = "Default Area";
/// The service category of built-in modules ("Default" under "Default").
pub const DEFAULT_SERVICE_CATEGORY: i64 = 2;

/// The extra attributes of the resource pool (spec topology 2).
pub fn resource_pool_attrs() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("bk_biz_maintainer".into(), json!("admin"));
    m.insert("bk_biz_productor".into(), json!("admin"));
    m
}

/// The name a read shows for a record: bk-cmdb translates its built-in names when the stored
/// name is still the original (`coreservice/multilingual/buildin_instance.go`); in Chinese they
/// read as stored.
pub fn shown_name(obj: Obj, default: i64, name: &str, lang: Lang) -> &str {
    if lang != Lang::En {
        return name;
    }
    match (obj, default, name) {
        (Obj::Biz, 1, RESOURCE_POOL_NAME) => "resource pool",
        (Obj::Set, 1, IDLE_SET_NAME) => "idle pool",
        (Obj::Module, 1, "空闲机") => "idle host",
        (Obj::Module, 2, "故障机") => "fault host",
        (Obj::Module, 3, "待回收") => "recycle host",
        (Obj::Cloud, _, "未分配") => "Unassigned Area",
        _ => name,
    }
}

/// The name field of an object's records.
pub fn name_field(obj: Obj) -> &'static str {
    match obj {
        Obj::Biz => "bk_biz_name",
        Obj::Set => "bk_set_name",
        Obj::Module => "bk_module_name",
        Obj::Host => "bk_host_name",
        Obj::Cloud => "bk_cloud_name",
    }
}

/// Translates the name of a record map in place (see [`shown_name`]).
pub fn translate(obj: Obj, map: &mut Map<String, Value>, lang: Lang) {
    let default = map.get("default").and_then(Value::as_i64).unwrap_or(0);
    let field = name_field(obj);
    if let Some(Value::String(name)) = map.get(field) {
        let shown = shown_name(obj, default, name, lang);
        if shown != name {
            let shown = shown.to_string();
            map.insert(field.into(), Value::String(shown));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_keeps_given_and_custom_values() {
        let mut m = Map::new();
        m.insert("bk_set_env".into(), json!("1"));
        m.insert("team".into(), json!("red"));
        let st = Stamp {
            now: "2026-01-01T00:00:00Z",
            user: "alice",
            supplier: "0",
        };
        fill(Obj::Set, &mut m, &st);
        assert_eq!(m["bk_set_env"], json!("1"));
        assert_eq!(m["team"], json!("red"));
        assert_eq!(m["bk_service_status"], json!("1"));
        assert_eq!(m["bk_capacity"], Value::Null);
        assert_eq!(m["bk_created_by"], json!("alice"));
        assert_eq!(m["bk_updated_by"], Value::Null);
        let mut h = Map::new();
        fill(Obj::Host, &mut h, &st);
        assert_eq!(h["bk_cpu_architecture"], json!("x86"));
        assert_eq!(h["bk_addressing"], json!("static"));
        assert_eq!(h["bk_cloud_host_identifier"], json!(false));
        assert_eq!(h["bk_cpu"], Value::Null);
    }

    #[test]
    fn built_in_names_are_translated_in_english_only() {
        assert_eq!(shown_name(Obj::Module, 2, "故障机", Lang::En), "fault host");
        assert_eq!(shown_name(Obj::Module, 2, "故障机", Lang::Zh), "故障机");
        assert_eq!(shown_name(Obj::Module, 0, "故障机", Lang::En), "故障机");
        assert_eq!(shown_name(Obj::Biz, 1, "renamed", Lang::En), "renamed");
        let mut m = Map::new();
        m.insert("default".into(), json!(1));
        m.insert("bk_set_name".into(), json!("空闲机池"));
        translate(Obj::Set, &mut m, Lang::En);
        assert_eq!(m["bk_set_name"], json!("idle pool"));
    }
}
