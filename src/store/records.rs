//! The stored records. Field names and order are bk-cmdb's JSON (spec 4.1), so the same structs
//! serve the store (through `codec`), the dataset file and the API answers. Times are
//! milliseconds in the store and RFC 3339 text in JSON (`codec::time_ms`).

use super::codec::{json_value, time_ms};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A business (`bk_biz_id` 1 with `default: 1` is bk-cmdb's resource pool). The fields the store
/// indexes or checks are typed; every other attribute, built-in or custom, is in `attrs` (a JSON
/// object), so a record is `attrs` plus the typed fields: see [`Business::to_map`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Business {
    pub bk_biz_id: i64,
    pub bk_biz_name: String,
    /// 1 for the resource pool, else 0.
    pub default: i64,
    #[serde(with = "json_value")]
    pub attrs: Value,
}

/// A set (bk-cmdb's "cluster"): `default: 1` is its business's idle pool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Set {
    pub bk_set_id: i64,
    pub bk_biz_id: i64,
    pub bk_set_name: String,
    /// The business (sets sit right under it).
    pub bk_parent_id: i64,
    pub default: i64,
    #[serde(with = "json_value")]
    pub attrs: Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Host {
    pub bk_host_id: i64,
    /// IP lists as bk-cmdb returns them: comma-joined.
    pub bk_host_innerip: String,
    pub bk_host_outerip: String,
    pub bk_host_innerip_v6: String,
    pub bk_host_outerip_v6: String,
    pub bk_cloud_id: i64,
    #[serde(with = "json_value")]
    pub attrs: Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Module {
    pub bk_module_id: i64,
    pub bk_biz_id: i64,
    pub bk_set_id: i64,
    pub bk_module_name: String,
    pub service_template_id: i64,
    pub service_category_id: i64,
    /// Non-zero for bk-cmdb's built-in modules: 1 idle, 2 fault, 3 recycle.
    pub default: i64,
    /// The module's hosts (bk-cmdb's `cc_ModuleHostConfig`), ascending.
    pub hosts: Vec<i64>,
    #[serde(with = "json_value")]
    pub attrs: Value,
}

/// A cloud area (bk-cmdb's "管控区域"); 0 is "Default Area".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CloudArea {
    pub bk_cloud_id: i64,
    pub bk_cloud_name: String,
    #[serde(with = "json_value")]
    pub attrs: Value,
}

/// `attrs` plus the typed fields, keys sorted (bk-cmdb returns these records as Go maps).
fn merged(attrs: &Value, typed: &[(&str, Value)]) -> Map<String, Value> {
    let mut map = attrs.as_object().cloned().unwrap_or_default();
    for (k, v) in typed {
        map.insert((*k).to_string(), v.clone());
    }
    map
}

impl Business {
    pub const TYPED: [&'static str; 3] = ["bk_biz_id", "bk_biz_name", "default"];
    pub fn to_map(&self) -> Map<String, Value> {
        merged(
            &self.attrs,
            &[
                ("bk_biz_id", self.bk_biz_id.into()),
                ("bk_biz_name", self.bk_biz_name.clone().into()),
                ("default", self.default.into()),
            ],
        )
    }
}

impl Set {
    pub const TYPED: [&'static str; 5] = [
        "bk_set_id",
        "bk_biz_id",
        "bk_set_name",
        "bk_parent_id",
        "default",
    ];
    pub fn to_map(&self) -> Map<String, Value> {
        merged(
            &self.attrs,
            &[
                ("bk_set_id", self.bk_set_id.into()),
                ("bk_biz_id", self.bk_biz_id.into()),
                ("bk_set_name", self.bk_set_name.clone().into()),
                ("bk_parent_id", self.bk_parent_id.into()),
                ("default", self.default.into()),
            ],
        )
    }
    /// A JSON attribute of the record (typed fields included).
    pub fn get(&self, key: &str) -> Value {
        attr(&self.attrs, key, || self.to_map().remove(key))
    }
}

impl Host {
    pub const TYPED: [&'static str; 6] = [
        "bk_host_id",
        "bk_host_innerip",
        "bk_host_outerip",
        "bk_host_innerip_v6",
        "bk_host_outerip_v6",
        "bk_cloud_id",
    ];
    pub fn to_map(&self) -> Map<String, Value> {
        merged(
            &self.attrs,
            &[
                ("bk_host_id", self.bk_host_id.into()),
                ("bk_host_innerip", self.bk_host_innerip.clone().into()),
                ("bk_host_outerip", self.bk_host_outerip.clone().into()),
                ("bk_host_innerip_v6", self.bk_host_innerip_v6.clone().into()),
                ("bk_host_outerip_v6", self.bk_host_outerip_v6.clone().into()),
                ("bk_cloud_id", self.bk_cloud_id.into()),
            ],
        )
    }
    pub fn get(&self, key: &str) -> Value {
        attr(&self.attrs, key, || self.to_map().remove(key))
    }
}

impl Module {
    /// Typed fields that are attributes (`hosts` is not one).
    pub const TYPED: [&'static str; 7] = [
        "bk_module_id",
        "bk_biz_id",
        "bk_set_id",
        "bk_module_name",
        "service_template_id",
        "service_category_id",
        "default",
    ];
    /// The record as bk-cmdb returns it (without `hosts`).
    pub fn to_map(&self) -> Map<String, Value> {
        merged(
            &self.attrs,
            &[
                ("bk_module_id", self.bk_module_id.into()),
                ("bk_biz_id", self.bk_biz_id.into()),
                ("bk_set_id", self.bk_set_id.into()),
                ("bk_parent_id", self.bk_set_id.into()),
                ("bk_module_name", self.bk_module_name.clone().into()),
                ("service_template_id", self.service_template_id.into()),
                ("service_category_id", self.service_category_id.into()),
                ("default", self.default.into()),
            ],
        )
    }
    pub fn get(&self, key: &str) -> Value {
        attr(&self.attrs, key, || self.to_map().remove(key))
    }
}

impl CloudArea {
    pub const TYPED: [&'static str; 2] = ["bk_cloud_id", "bk_cloud_name"];
    pub fn to_map(&self) -> Map<String, Value> {
        merged(
            &self.attrs,
            &[
                ("bk_cloud_id", self.bk_cloud_id.into()),
                ("bk_cloud_name", self.bk_cloud_name.clone().into()),
            ],
        )
    }
}

/// `attrs[key]` if present, else `typed()` (the typed fields), else null.
fn attr(attrs: &Value, key: &str, typed: impl FnOnce() -> Option<Value>) -> Value {
    match attrs.get(key) {
        Some(v) => v.clone(),
        None => typed().unwrap_or(Value::Null),
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceCategory {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub bk_parent_id: i64,
    #[serde(default)]
    pub bk_root_id: i64,
    /// 0 = built in, shared by every business.
    #[serde(default)]
    pub bk_biz_id: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceTemplate {
    pub bk_biz_id: i64,
    pub id: i64,
    pub name: String,
    pub service_category_id: i64,
    pub creator: String,
    pub modifier: String,
    #[serde(with = "time_ms")]
    pub create_time: i64,
    #[serde(with = "time_ms")]
    pub last_time: i64,
    pub bk_supplier_account: String,
    #[serde(default)]
    pub host_apply_enabled: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessTemplate {
    pub id: i64,
    pub bk_process_name: String,
    pub bk_biz_id: i64,
    pub service_template_id: i64,
    /// `{<field>: {"value": …, "as_default_value": …}}` (spec 4.1).
    #[serde(with = "json_value")]
    pub property: Value,
    pub creator: String,
    pub modifier: String,
    #[serde(with = "time_ms")]
    pub create_time: i64,
    #[serde(with = "time_ms")]
    pub last_time: i64,
    pub bk_supplier_account: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceInstance {
    pub bk_biz_id: i64,
    pub id: i64,
    pub name: String,
    pub labels: Option<BTreeMap<String, String>>,
    pub service_template_id: i64,
    pub bk_host_id: i64,
    pub bk_module_id: i64,
    pub creator: String,
    pub modifier: String,
    #[serde(with = "time_ms")]
    pub create_time: i64,
    #[serde(with = "time_ms")]
    pub last_time: i64,
    pub bk_supplier_account: String,
}

/// One per process (spec 2.8); keyed by `bk_process_id`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Relation {
    pub bk_biz_id: i64,
    pub bk_process_id: i64,
    pub service_instance_id: i64,
    pub process_template_id: i64,
    pub bk_host_id: i64,
    pub bk_supplier_account: String,
}

/// The id sequences, one per kind (spec 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Process,
    ServiceInstance,
    ServiceTemplate,
    ProcessTemplate,
    ServiceCategory,
    AuditLog,
    Business,
    Set,
    Module,
    Host,
    CloudArea,
}

impl Kind {
    pub const ALL: [Kind; 11] = [
        Kind::Process,
        Kind::ServiceInstance,
        Kind::ServiceTemplate,
        Kind::ProcessTemplate,
        Kind::ServiceCategory,
        Kind::AuditLog,
        Kind::Business,
        Kind::Set,
        Kind::Module,
        Kind::Host,
        Kind::CloudArea,
    ];

    /// The name used in the sequences table and in the dataset's `sequences`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Process => "process",
            Kind::ServiceInstance => "service_instance",
            Kind::ServiceTemplate => "service_template",
            Kind::ProcessTemplate => "process_template",
            Kind::ServiceCategory => "service_category",
            Kind::AuditLog => "audit_log",
            Kind::Business => "business",
            Kind::Set => "set",
            Kind::Module => "module",
            Kind::Host => "host",
            Kind::CloudArea => "cloud_area",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}
