//! Every redb table, typed, in one place. Records are `codec`-encoded bytes keyed by their id;
//! indexes are composite keys with empty (or id) values. See ARCHITECTURE.md "Storage layout".

use redb::TableDefinition;

/// `"schema_version"` → `[u8]`, `"magic"` → `b"cmdb-lite"`.
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Kind name → last issued id.
pub const SEQUENCES: TableDefinition<&str, i64> = TableDefinition::new("sequences");
/// The dataset's `supplier_account` and other store-wide settings.
pub const SETTINGS: TableDefinition<&str, &str> = TableDefinition::new("settings");

pub const BUSINESSES: TableDefinition<i64, &[u8]> = TableDefinition::new("businesses");
pub const HOSTS: TableDefinition<i64, &[u8]> = TableDefinition::new("hosts");
pub const MODULES: TableDefinition<i64, &[u8]> = TableDefinition::new("modules");
pub const SERVICE_CATEGORIES: TableDefinition<i64, &[u8]> =
    TableDefinition::new("service_categories");
pub const SERVICE_TEMPLATES: TableDefinition<i64, &[u8]> =
    TableDefinition::new("service_templates");
pub const PROCESS_TEMPLATES: TableDefinition<i64, &[u8]> =
    TableDefinition::new("process_templates");
pub const SERVICE_INSTANCES: TableDefinition<i64, &[u8]> =
    TableDefinition::new("service_instances");
/// `bk_process_id` → the stored process map.
pub const PROCESSES: TableDefinition<i64, &[u8]> = TableDefinition::new("processes");
/// `bk_process_id` → its relation record.
pub const RELATIONS: TableDefinition<i64, &[u8]> = TableDefinition::new("relations");

/// (service_instance_id, bk_process_id): processes of a service instance, in id order.
pub const PROC_BY_SI: TableDefinition<(i64, i64), ()> = TableDefinition::new("idx_proc_by_si");
/// (service_instance_id, bk_process_name) → bk_process_id (spec 2.6, first unique index).
pub const UNIQ_PROC_NAME: TableDefinition<(i64, &str), i64> =
    TableDefinition::new("uniq_proc_name");
/// (service_instance_id, bk_func_name, bk_start_param_regex) → bk_process_id (second index).
pub const UNIQ_PROC_FUNC: TableDefinition<(i64, &str, &str), i64> =
    TableDefinition::new("uniq_proc_func");
/// (bk_module_id, service_instance_id).
pub const SI_BY_MODULE: TableDefinition<(i64, i64), ()> = TableDefinition::new("idx_si_by_module");
/// (bk_host_id, service_instance_id).
pub const SI_BY_HOST: TableDefinition<(i64, i64), ()> = TableDefinition::new("idx_si_by_host");
/// (bk_module_id, bk_host_id, service_template_id) → service instance id, template instances only.
pub const UNIQ_SI_TEMPLATE: TableDefinition<(i64, i64, i64), i64> =
    TableDefinition::new("uniq_si_template");
/// (bk_biz_id, service_template_id).
pub const ST_BY_BIZ: TableDefinition<(i64, i64), ()> = TableDefinition::new("idx_st_by_biz");
/// (bk_biz_id, name) → service_template_id.
pub const UNIQ_ST_NAME: TableDefinition<(i64, &str), i64> = TableDefinition::new("uniq_st_name");
/// (service_template_id, process_template_id).
pub const PT_BY_ST: TableDefinition<(i64, i64), ()> = TableDefinition::new("idx_pt_by_st");

/// The change log `resource_watch` reads, one table per watched resource (`changelog::LOGS`):
/// the event's stamp (seconds << 32 | ordinal in that second) → `changelog` bytes.
pub const EVENTS_HOST: TableDefinition<u64, &[u8]> = TableDefinition::new("events_host");
pub const EVENTS_HOST_RELATION: TableDefinition<u64, &[u8]> =
    TableDefinition::new("events_host_relation");
pub const EVENTS_BIZ: TableDefinition<u64, &[u8]> = TableDefinition::new("events_biz");
pub const EVENTS_SET: TableDefinition<u64, &[u8]> = TableDefinition::new("events_set");
pub const EVENTS_PLAT: TableDefinition<u64, &[u8]> = TableDefinition::new("events_plat");
pub const EVENTS_MODULE: TableDefinition<u64, &[u8]> = TableDefinition::new("events_module");
pub const EVENTS_PROCESS: TableDefinition<u64, &[u8]> = TableDefinition::new("events_process");
pub const EVENTS_PROCESS_RELATION: TableDefinition<u64, &[u8]> =
    TableDefinition::new("events_process_instance_relation");
// Topology (businesses, sets, modules, hosts, cloud areas) and its indexes; maintained by
// `WriteTx::put_set`/`put_module`/`put_host` in `store/topology.rs`.

/// `bk_set_id` → set.
pub const SETS: TableDefinition<i64, &[u8]> = TableDefinition::new("sets");
/// `bk_cloud_id` → cloud area.
pub const CLOUD_AREAS: TableDefinition<i64, &[u8]> = TableDefinition::new("cloud_areas");
/// (bk_biz_id, bk_set_id): sets of a business.
pub const SET_BY_BIZ: TableDefinition<(i64, i64), ()> = TableDefinition::new("idx_set_by_biz");
/// (bk_set_id, bk_module_id): modules of a set.
pub const MODULE_BY_SET: TableDefinition<(i64, i64), ()> =
    TableDefinition::new("idx_module_by_set");
/// (bk_biz_id, bk_module_id): modules of a business.
pub const MODULE_BY_BIZ: TableDefinition<(i64, i64), ()> =
    TableDefinition::new("idx_module_by_biz");
/// (service_template_id, bk_module_id): modules built from a service template.
pub const MODULE_BY_ST: TableDefinition<(i64, i64), ()> = TableDefinition::new("idx_module_by_st");
/// (bk_host_id, bk_module_id): the modules of a host (a module's own `hosts` the other way).
pub const MODULE_BY_HOST: TableDefinition<(i64, i64), ()> =
    TableDefinition::new("idx_module_by_host");
/// (bk_set_id, bk_host_id, bk_module_id): the hosts of a set, one entry per module holding it.
pub const HOST_BY_SET: TableDefinition<(i64, i64, i64), ()> =
    TableDefinition::new("idx_host_by_set");
/// (bk_biz_id, bk_host_id, bk_module_id): the hosts of a business, likewise.
pub const HOST_BY_BIZ: TableDefinition<(i64, i64, i64), ()> =
    TableDefinition::new("idx_host_by_biz");
/// (inner IP, bk_cloud_id, bk_host_id): hosts by each element of their inner IPv4 and IPv6 lists.
pub const HOST_BY_IP: TableDefinition<(&str, i64, i64), ()> =
    TableDefinition::new("idx_host_by_ip");
