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

/// One built-in attribute of a topology object (spec topology 3.2): names as bk-cmdb returns
/// them (`resources/language/{default,en}/property.json`).
#[derive(Clone, Copy, Debug)]
pub struct AttrDef {
    pub id: &'static str,
    /// bk-cmdb's `bk_property_type`.
    pub kind: &'static str,
    pub zh: &'static str,
    pub en: &'static str,
    pub required: bool,
    pub editable: bool,
}

impl AttrDef {
    pub fn name(&self, lang: Lang) -> &'static str {
        if lang == Lang::En { self.en } else { self.zh }
    }
}

/// The built-in attributes of an object, in bk-cmdb's order (cloud areas have none served).
pub fn attributes(obj: Obj) -> &'static [AttrDef] {
    match obj {
        Obj::Biz => BIZ_ATTRS,
        Obj::Set => SET_ATTRS,
        Obj::Module => MODULE_ATTRS,
        Obj::Host => HOST_ATTRS,
        Obj::Cloud => &[],
    }
}

const BIZ_ATTRS: &[AttrDef] = &[
    AttrDef {
        id: "bk_biz_name",
        kind: "singlechar",
        zh: "业务名",
        en: "Business name",
        required: true,
        editable: true,
    },
    AttrDef {
        id: "life_cycle",
        kind: "enum",
        zh: "生命周期",
        en: "Lifecycle",
        required: false,
        editable: true,
    },
    AttrDef {
        id: "bk_biz_maintainer",
        kind: "objuser",
        zh: "运维人员",
        en: "Maintainer",
        required: true,
        editable: true,
    },
    AttrDef {
        id: "bk_biz_productor",
        kind: "objuser",
        zh: "产品人员",
        en: "Productor",
        required: false,
        editable: true,
    },
    AttrDef {
        id: "bk_biz_tester",
        kind: "objuser",
        zh: "测试人员",
        en: "Tester",
        required: false,
        editable: true,
    },
    AttrDef {
        id: "bk_biz_developer",
        kind: "objuser",
        zh: "开发人员",
        en: "Developer",
        required: false,
        editable: true,
    },
    AttrDef {
        id: "operator",
        kind: "objuser",
        zh: "操作人员",
        en: "Operator",
        required: false,
        editable: true,
    },
    AttrDef {
        id: "time_zone",
        kind: "timezone",
        zh: "时区",
        en: "Time zone",
        required: true,
        editable: false,
    },
    AttrDef {
        id: "language",
        kind: "enum",
        zh: "语言",
        en: "Language",
        required: true,
        editable: false,
    },
    AttrDef {
        id: "bk_created_at",
        kind: "time",
        zh: "创建时间",
        en: "Created At",
        required: false,
        editable: false,
    },
    AttrDef {
        id: "bk_created_by",
        kind: "objuser",
        zh: "创建人",
        en: "Created By",
        required: false,
        editable: false,
    },
    AttrDef {
        id: "bk_updated_at",
        kind: "time",
        zh: "更新时间",
        en: "Updated At",
        required: false,
        editable: false,
    },
    AttrDef {
        id: "bk_updated_by",
        kind: "objuser",
        zh: "更新人",
        en: "Updated By",
        required: false,
        editable: false,
    },
];
const SET_ATTRS: &[AttrDef] = &[
    AttrDef {
        id: "bk_set_name",
        kind: "singlechar",
        zh: "集群名",
        en: "Set name",
        required: true,
        editable: true,
    },
    AttrDef {
        id: "bk_set_desc",
        kind: "singlechar",
        zh: "集群描述",
        en: "Set description",
        required: false,
        editable: true,
    },
    AttrDef {
        id: "bk_set_env",
        kind: "enum",
        zh: "环境类型",
        en: "Environment",
        required: false,
        editable: true,
    },
    AttrDef {
        id: "bk_service_status",
        kind: "enum",
        zh: "服务状态",
        en: "Service status",
        required: false,
        editable: true,
    },
    AttrDef {
        id: "description",
        kind: "longchar",
        zh: "备注",
        en: "Remark",
        required: false,
        editable: true,
    },
    AttrDef {
        id: "bk_capacity",
        kind: "int",
        zh: "设计容量",
        en: "Capacity",
        required: false,
        editable: true,
    },
    AttrDef {
        id: "set_template_id",
        kind: "int",
        zh: "集群模板ID",
        en: "Set template ID",
        required: false,
        editable: false,
    },
    AttrDef {
        id: "bk_created_at",
        kind: "time",
        zh: "创建时间",
        en: "Created At",
        required: false,
        editable: false,
    },
    AttrDef {
        id: "bk_created_by",
        kind: "objuser",
        zh: "创建人",
        en: "Created By",
        required: false,
        editable: false,
    },
    AttrDef {
        id: "bk_updated_at",
        kind: "time",
        zh: "更新时间",
        en: "Updated At",
        required: false,
        editable: false,
    },
    AttrDef {
        id: "bk_updated_by",
        kind: "objuser",
        zh: "更新人",
        en: "Updated By",
        required: false,
        editable: false,
    },
];
const MODULE_ATTRS: &[AttrDef] = &[
    AttrDef {
        id: "bk_module_name",
        kind: "singlechar",
        zh: "模块名",
        en: "Module name",
        required: true,
        editable: true,
    },
    AttrDef {
        id: "bk_module_type",
        kind: "enum",
        zh: "模块类型",
        en: "Module type",
        required: false,
        editable: true,
    },
    AttrDef {
        id: "operator",
        kind: "objuser",
        zh: "主要维护人",
        en: "Primary Maintainer",
        required: false,
        editable: true,
    },
    AttrDef {
        id: "bk_bak_operator",
        kind: "objuser",
        zh: "备份维护人",
        en: "Backup Maintainer",
        required: false,
        editable: true,
    },
    AttrDef {
        id: "service_category_id",
        kind: "int",
        zh: "服务分类ID",
        en: "Service category ID",
        required: true,
        editable: true,
    },
    AttrDef {
        id: "service_template_id",
        kind: "int",
        zh: "服务模板ID",
        en: "Service template ID",
        required: true,
        editable: false,
    },
    AttrDef {
        id: "set_template_id",
        kind: "int",
        zh: "集群模板ID",
        en: "Set template ID",
        required: false,
        editable: false,
    },
    AttrDef {
        id: "bk_created_at",
        kind: "time",
        zh: "创建时间",
        en: "Created At",
        required: false,
        editable: false,
    },
    AttrDef {
        id: "bk_created_by",
        kind: "objuser",
        zh: "创建人",
        en: "Created By",
        required: false,
        editable: false,
    },
    AttrDef {
        id: "bk_updated_at",
        kind: "time",
        zh: "更新时间",
        en: "Updated At",
        required: false,
        editable: false,
    },
    AttrDef {
        id: "bk_updated_by",
        kind: "objuser",
        zh: "更新人",
        en: "Updated By",
        required: false,
        editable: false,
    },
];
const HOST_ATTRS: &[AttrDef] = &[
    AttrDef {
        id: "bk_host_innerip",
        kind: "singlechar",
        zh: "内网IPv4",
        en: "Inner IPv4",
        required: false,
        editable: false,
    },
    AttrDef {
        id: "bk_host_outerip",
        kind: "singlechar",
        zh: "外网IPv4",
        en: "Outer IPv4",
        required: false,
        editable: true,
    },
    AttrDef {
        id: "bk_host_innerip_v6",
        kind: "singlechar",
        zh: "内网IPv6",
        en: "Inner IPv6",
        required: false,
        editable: false,
    },
    AttrDef {
        id: "bk_host_outerip_v6",
        kind: "singlechar",
        zh: "外网IPv6",
        en: "Outer IPv6",
        required: false,
        editable: true,
    },
    AttrDef {
        id: "bk_agent_id",
        kind: "singlechar",
        zh: "GSE Agent ID",
        en: "GSE Agent ID",
        required: false,
        editable: false,
    },
    AttrDef {
        id: "bk_addressing",
        kind: "enum",
        zh: "寻址方式",
        en: "Addressing Mode",
        required: false,
        editable: false,
    },
    AttrDef {
        id: "bk_cloud_id",
        kind: "foreignkey",
        zh: "管控区域",
        en: "BK-Network Area",
        required: false,
        editable: false,
    },
    AttrDef {
        id: "bk_host_name",
        kind: "singlechar",
        zh: "主机名称",
        en: "Hostname",
        required: false,
        editable: true,
    },
    AttrDef {
        id: "operator",
        kind: "objuser",
        zh: "主要维护人",
        en: "Primary Maintainer",
        required: false,
        editable: true,
    },
    AttrDef {
        id: "bk_bak_operator",
        kind: "objuser",
        zh: "备份维护人",
        en: "Backup Maintainer",
        required: false,
        editable: true,
    },
    AttrDef {
        id: "bk_asset_id",
        kind: "singlechar",
        zh: "固资编号",
        en: "Asset ID",
        required: false,
        editable: true,
    },
    AttrDef {
        id: "bk_sn",
        kind: "singlechar",
        zh: "设备SN",
        en: "Device SN",
        required: false,
        editable: true,
    },
    AttrDef {
        id: "bk_comment",
        kind: "longchar",
        zh: "备注",
        en: "Remark",
        required: false,
        editable: true,
    },
    AttrDef {
        id: "bk_service_term",
        kind: "int",
        zh: "质保年限",
        en: "Service Term",
        required: false,
        editable: true,
    },
    AttrDef {
        id: "bk_sla",
        kind: "enum",
        zh: "SLA级别",
        en: "SLA Level",
        required: false,
        editable: true,
    },
    AttrDef {
        id: "bk_os_type",
        kind: "enum",
        zh: "操作系统类型",
        en: "OS type",
        required: false,
        editable: true,
    },
    AttrDef {
        id: "bk_os_name",
        kind: "singlechar",
        zh: "操作系统名称",
        en: "OS name",
        required: false,
        editable: true,
    },
    AttrDef {
        id: "bk_os_version",
        kind: "singlechar",
        zh: "操作系统版本",
        en: "OS vesion",
        required: false,
        editable: true,
    },
    AttrDef {
        id: "bk_os_bit",
        kind: "singlechar",
        zh: "操作系统位数",
        en: "OS bit",
        required: false,
        editable: true,
    },
    AttrDef {
        id: "bk_os_kernel_version",
        kind: "singlechar",
        zh: "操作系统内核版本",
        en: "OS kernel version",
        required: false,
        editable: true,
    },
    AttrDef {
        id: "bk_cpu",
        kind: "int",
        zh: "CPU逻辑核心数",
        en: "CPU number",
        required: false,
        editable: true,
    },
    AttrDef {
        id: "bk_cpu_module",
        kind: "singlechar",
        zh: "CPU型号",
        en: "CPU module",
        required: false,
        editable: true,
    },
    AttrDef {
        id: "bk_cpu_architecture",
        kind: "enum",
        zh: "CPU架构",
        en: "CPU Architecture",
        required: false,
        editable: true,
    },
    AttrDef {
        id: "bk_mem",
        kind: "int",
        zh: "内存容量(MB)",
        en: "Memory(MB)",
        required: false,
        editable: true,
    },
    AttrDef {
        id: "bk_disk",
        kind: "int",
        zh: "磁盘容量(GB)",
        en: "Disk(GB)",
        required: false,
        editable: true,
    },
    AttrDef {
        id: "bk_mac",
        kind: "singlechar",
        zh: "内网MAC地址",
        en: "Inner MAC",
        required: false,
        editable: true,
    },
    AttrDef {
        id: "bk_outer_mac",
        kind: "singlechar",
        zh: "外网MAC地址",
        en: "Outer MAC",
        required: false,
        editable: true,
    },
    AttrDef {
        id: "create_time",
        kind: "time",
        zh: "录入时间",
        en: "Import data",
        required: false,
        editable: false,
    },
    AttrDef {
        id: "import_from",
        kind: "enum",
        zh: "录入方式",
        en: "Import source",
        required: false,
        editable: false,
    },
    AttrDef {
        id: "bk_state_name",
        kind: "enum",
        zh: "所在国家",
        en: "State name",
        required: false,
        editable: true,
    },
    AttrDef {
        id: "bk_province_name",
        kind: "enum",
        zh: "所在省份",
        en: "Province name",
        required: false,
        editable: true,
    },
    AttrDef {
        id: "bk_isp_name",
        kind: "enum",
        zh: "所属运营商",
        en: "ISP name",
        required: false,
        editable: true,
    },
    AttrDef {
        id: "bk_state",
        kind: "list",
        zh: "当前状态",
        en: "Current status",
        required: false,
        editable: true,
    },
    AttrDef {
        id: "bk_cloud_inst_id",
        kind: "singlechar",
        zh: "云主机实例ID",
        en: "Cloud Instance ID",
        required: false,
        editable: false,
    },
    AttrDef {
        id: "bk_cloud_host_status",
        kind: "enum",
        zh: "云主机状态",
        en: "Cloud Host status",
        required: false,
        editable: false,
    },
    AttrDef {
        id: "bk_cloud_vendor",
        kind: "enum",
        zh: "云厂商",
        en: "Cloud vendor",
        required: false,
        editable: false,
    },
    AttrDef {
        id: "bk_cloud_region",
        kind: "singlechar",
        zh: "云地域（Region）",
        en: "Cloud Region",
        required: false,
        editable: false,
    },
    AttrDef {
        id: "bk_cloud_zone",
        kind: "singlechar",
        zh: "云可用区（Zone）",
        en: "Cloud Zone",
        required: false,
        editable: false,
    },
    AttrDef {
        id: "bk_cloud_host_identifier",
        kind: "bool",
        zh: "云主机标识",
        en: "Cloud Host Identifier",
        required: false,
        editable: false,
    },
    AttrDef {
        id: "bk_created_at",
        kind: "time",
        zh: "创建时间",
        en: "Created At",
        required: false,
        editable: false,
    },
    AttrDef {
        id: "bk_created_by",
        kind: "objuser",
        zh: "创建人",
        en: "Created By",
        required: false,
        editable: false,
    },
    AttrDef {
        id: "bk_updated_at",
        kind: "time",
        zh: "更新时间",
        en: "Updated At",
        required: false,
        editable: false,
    },
    AttrDef {
        id: "bk_updated_by",
        kind: "objuser",
        zh: "更新人",
        en: "Updated By",
        required: false,
        editable: false,
    },
];

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
