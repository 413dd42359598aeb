//! `search_object_attribute` (bk-cmdb topo_server `object_attribute.go`, spec topology 3.2
//! and 5.7): the built-in attributes of biz, set, module, host and process as
//! `metadata.Attribute`, filtered by the body's equality conditions.

use super::topology::body;
use super::{Ctx, Data, Input};
use crate::domain::condition::Cond;
use crate::domain::process::{ATTRS as PROCESS_ATTRS, Type};
use crate::domain::topology::{self as rules, Obj};
use crate::error::{CcError, Lang};
use crate::store::Store;
use serde::Serialize;
use serde_json::{Value, json};

/// bk-cmdb's `metadata.Attribute`, in its field order.
#[derive(Serialize)]
struct Attribute {
    bk_biz_id: i64,
    id: i64,
    bk_supplier_account: &'static str,
    bk_obj_id: &'static str,
    bk_property_id: &'static str,
    bk_property_name: String,
    bk_property_group: &'static str,
    bk_property_group_name: &'static str,
    bk_property_index: i64,
    unit: &'static str,
    placeholder: &'static str,
    editable: bool,
    ispre: bool,
    isrequired: bool,
    isreadonly: bool,
    isonly: bool,
    bk_issystem: bool,
    bk_isapi: bool,
    bk_property_type: &'static str,
    option: Opt,
    #[serde(skip_serializing_if = "Option::is_none")]
    default: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ismultiple: Option<bool>,
    description: &'static str,
    bk_template_id: i64,
    creator: &'static str,
    create_time: Value,
    last_time: Value,
}

/// Enum options `(id, zh, en, is_default)` of the built-in enum attributes.
fn enum_options(
    obj: &str,
    id: &str,
) -> &'static [(&'static str, &'static str, &'static str, bool)] {
    match (obj, id) {
        ("biz", "life_cycle") => &[
            ("1", "测试中", "Testing", false),
            ("2", "已上线", "Online", true),
            ("3", "停运", "Stopped", false),
        ],
        ("biz", "language") => &[
            ("1", "中文", "Chinese", true),
            ("2", "English", "English", false),
        ],
        ("set", "bk_set_env") => &[
            ("1", "测试", "Test", false),
            ("2", "体验", "Experience", false),
            ("3", "正式", "Formal", true),
        ],
        ("set", "bk_service_status") => {
            &[("1", "开放", "Open", true), ("2", "关闭", "Closed", false)]
        }
        ("module", "bk_module_type") => &[
            ("1", "普通", "Ordinary", true),
            ("2", "数据库", "Database", false),
        ],
        ("host", "bk_addressing") => &[
            ("static", "静态", "Static", true),
            ("dynamic", "动态", "Dynamic", false),
        ],
        ("host", "bk_cpu_architecture") => {
            &[("x86", "X86", "X86", true), ("arm", "ARM", "ARM", false)]
        }
        ("host", "bk_os_type") => &[
            ("1", "Linux", "Linux", false),
            ("2", "Windows", "Windows", false),
            ("3", "AIX", "AIX", false),
            ("4", "Unix", "Unix", false),
            ("5", "Solaris", "Solaris", false),
            ("7", "FreeBSD", "FreeBSD", false),
            ("8", "MacOS", "MacOS", false),
        ],
        ("host", "import_from") => &[
            ("1", "excel", "excel", false),
            ("2", "agent", "agent", false),
            ("3", "api", "api", false),
        ],
        _ => &[],
    }
}

/// bk-cmdb's `EnumVal`, in its field order.
#[derive(Serialize)]
struct EnumVal {
    id: &'static str,
    name: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    is_default: bool,
}

/// An attribute's `option`: enum values, an int range, or a (regex) text.
#[derive(Serialize)]
#[serde(untagged)]
enum Opt {
    Enum(Vec<EnumVal>),
    Range {
        min: &'static str,
        max: &'static str,
    },
    Text(&'static str),
}

fn option(obj: &str, id: &str, kind: &str, lang: Lang) -> Opt {
    match kind {
        "enum" => Opt::Enum(
            enum_options(obj, id)
                .iter()
                .map(|&(oid, zh, en, d)| EnumVal {
                    id: oid,
                    name: if lang == Lang::En { en } else { zh },
                    kind: "text",
                    is_default: d,
                })
                .collect(),
        ),
        "int" => Opt::Range { min: "", max: "" },
        _ => Opt::Text(""),
    }
}

fn process_type(t: &Type) -> &'static str {
    match t {
        Type::SingleChar => "singlechar",
        Type::LongChar => "longchar",
        Type::Int { .. } => "int",
        Type::Bool => "bool",
        Type::Table => "table",
        Type::Time => "time",
        Type::User => "objuser",
    }
}

/// Every built-in attribute, ids numbered in this order (biz, set, module, host, process).
fn all(lang: Lang) -> Vec<Attribute> {
    let group_name = if lang == Lang::En {
        "Default"
    } else {
        "基础信息"
    };
    let mut out = Vec::new();
    let mut next = 0;
    let mut push = |obj: &'static str,
                    index: i64,
                    id: &'static str,
                    name: String,
                    kind: &'static str,
                    required: bool,
                    editable: bool| {
        next += 1;
        let enum_default = enum_options(obj, id)
            .iter()
            .find(|o| o.3)
            .map(|o| json!(o.0));
        out.push(Attribute {
            bk_biz_id: 0,
            id: next,
            bk_supplier_account: "0",
            bk_obj_id: obj,
            bk_property_id: id,
            bk_property_name: name,
            bk_property_group: "default",
            bk_property_group_name: group_name,
            bk_property_index: index,
            unit: "",
            placeholder: "",
            editable,
            ispre: true,
            isrequired: required,
            isreadonly: matches!(id, "time_zone" | "language"),
            isonly: matches!((obj, id), ("biz", "bk_biz_name")),
            bk_issystem: false,
            bk_isapi: false,
            bk_property_type: kind,
            option: option(obj, id, kind, lang),
            default: enum_default,
            ismultiple: (kind == "enum").then_some(false),
            description: "",
            bk_template_id: 0,
            creator: "cc_system",
            create_time: Value::Null,
            last_time: Value::Null,
        });
    };
    for (obj, name) in [
        (Obj::Biz, "biz"),
        (Obj::Set, "set"),
        (Obj::Module, "module"),
        (Obj::Host, "host"),
    ] {
        for (i, a) in rules::attributes(obj).iter().enumerate() {
            push(
                name,
                i as i64,
                a.id,
                a.name(lang).to_string(),
                a.kind,
                a.required,
                a.editable,
            );
        }
    }
    for (i, a) in PROCESS_ATTRS.iter().enumerate() {
        let name = match lang {
            Lang::En => a.en.unwrap_or(a.name).to_string(),
            _ => a.name.to_string(),
        };
        push(
            "process",
            i as i64,
            a.id,
            name,
            process_type(&a.ty),
            a.required,
            !matches!(a.id, "bk_biz_id" | "service_instance_id")
                && !a.id.starts_with("bk_created")
                && !a.id.starts_with("bk_updated"),
        );
    }
    out
}

/// Keys of the body that are not conditions: paging, and the ESB's authentication keys.
const NOT_CONDITIONS: [&str; 5] = [
    "page",
    "bk_app_code",
    "bk_app_secret",
    "bk_username",
    "bk_token",
];

pub fn search(ctx: &Ctx, _store: &Store, input: &Input) -> Result<Data, CcError> {
    let mut cond = body(input)?;
    for k in NOT_CONDITIONS {
        cond.remove(k);
    }
    // Every built-in attribute is global (business 0): a business condition keeps them all.
    cond.remove("bk_biz_id");
    let cond = Cond::parse(&cond)?;
    let out: Vec<Attribute> = all(ctx.lang)
        .into_iter()
        .filter(|a| {
            let v = serde_json::to_value(a).unwrap_or(Value::Null);
            cond.matches(&|f: &str| v.get(f).cloned())
        })
        .collect();
    Ok(Data::of(&out))
}
