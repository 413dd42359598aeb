//! The stored records. Field names and order are bk-cmdb's JSON (spec 4.1), so the same structs
//! serve the store (through `codec`), the dataset file and the API answers. Times are
//! milliseconds in the store and RFC 3339 text in JSON (`codec::time_ms`).

use super::codec::{json_value, time_ms};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Business {
    pub bk_biz_id: i64,
    pub bk_biz_name: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Host {
    pub bk_host_id: i64,
    #[serde(default)]
    pub bk_host_innerip: String,
    #[serde(default)]
    pub bk_host_outerip: String,
    #[serde(default)]
    pub bk_host_innerip_v6: String,
    #[serde(default)]
    pub bk_host_outerip_v6: String,
    #[serde(default)]
    pub bk_cloud_id: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Module {
    pub bk_module_id: i64,
    pub bk_biz_id: i64,
    #[serde(default)]
    pub bk_set_id: i64,
    pub bk_module_name: String,
    #[serde(default)]
    pub service_template_id: i64,
    #[serde(default)]
    pub service_category_id: i64,
    /// Non-zero for bk-cmdb's built-in modules (idle, faulty, recycle).
    #[serde(default)]
    pub default: i64,
    #[serde(default)]
    pub hosts: Vec<i64>,
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
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Process,
        Kind::ServiceInstance,
        Kind::ServiceTemplate,
        Kind::ProcessTemplate,
        Kind::ServiceCategory,
        Kind::AuditLog,
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
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}
