//! Topology reads (bk-cmdb topo_server `inst_business.go`, `inst_set.go`, `inst_module.go`,
//! `association.go`; host_server `cloudarea.go`; spec topology 5): search_business,
//! search_set, search_module, search_biz_inst_topo, get_biz_internal_module, search_cloud_area,
//! get_mainline_object_topo, find_set_batch, find_module_batch, find_module_with_relation,
//! find_topo_node_paths. Every read goes through the index narrowest for it (sets of a
//! business, modules of a set or business), never a whole table whose size its answer does not
//! bound, except the business and cloud-area tables, which the answers list.

use super::{Ctx, Data, Input};
use crate::domain::condition::{self, Cond};
use crate::domain::decode;
use crate::domain::page::{self, Page};
use crate::domain::query_filter::{self, Filter, Options};
use crate::domain::service_template::parse_int;
use crate::domain::topology::{self as rules, Obj};
use crate::error::{Arg, CcError, Lang, code};
use crate::limits::{MAX_BATCH_IDS, MAX_PAGE_SIZE, MAX_RELATION_SET_IDS};
use crate::store::Store;
use crate::store::records::{Module, Set};
use serde::Serialize;
use serde_json::{Map, Value, json};

/// A route parameter: from the native or gateway path, else from the ESB body or query.
pub(super) fn arg(input: &Input, name: &str) -> String {
    if let Some((_, v)) = input.params.iter().find(|(n, _)| *n == name) {
        return v.clone();
    }
    match &input.body {
        Value::Object(o) => match decode::get(o, name) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        },
        _ => String::new(),
    }
}

/// A query-string parameter of a native route, else a body key (ESB).
fn query_arg(input: &Input, name: &str) -> Option<String> {
    for pair in input.query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == name {
            return Some(v.to_string());
        }
    }
    match &input.body {
        Value::Object(o) => match o.get(name) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(Value::Bool(b)) => Some(b.to_string()),
            _ => None,
        },
        _ => None,
    }
}

/// The body as an object; an empty body is an empty object.
pub(super) fn body(input: &Input) -> Result<Map<String, Value>, CcError> {
    match &input.body {
        Value::Null => Ok(Map::new()),
        v => decode::body_object(v).cloned(),
    }
}

/// An optional object field (`null` = absent); another type is 1199000.
pub(super) fn opt_object(
    obj: &Map<String, Value>,
    key: &str,
) -> Result<Option<Map<String, Value>>, CcError> {
    match decode::get(obj, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m.clone())),
        Some(_) => Err(CcError::json()),
    }
}

/// `fields` projection as coreservice applies it: empty = the whole record; otherwise only
/// those keys, plus `default` on businesses, sets and modules when `fields` has two or more
/// entries or one non-empty entry.
pub(super) fn project(
    map: Map<String, Value>,
    fields: &[String],
    add_default: bool,
) -> Map<String, Value> {
    if fields.is_empty() {
        return map;
    }
    let with_default =
        add_default && (fields.len() >= 2 || fields.first().is_some_and(|f| !f.is_empty()));
    let mut out = Map::new();
    for f in fields {
        if let Some(v) = map.get(f) {
            out.insert(f.clone(), v.clone());
        }
    }
    if with_default && let Some(v) = map.get("default") {
        out.insert("default".into(), v.clone());
    }
    out
}

/// Sorts record maps by a `page.sort` text (ties keep storage order) and cuts the page.
pub(super) fn sort_page(
    items: Vec<Map<String, Value>>,
    page: &Page,
    default_sort: &str,
) -> Result<Vec<Map<String, Value>>, CcError> {
    let sorted = page::sort_maps(items, page.sort_or(default_sort))?;
    Ok(page::window(sorted, page.start.max(0), page.mongo_limit()))
}

fn listing(count: usize, info: Vec<Map<String, Value>>) -> Data {
    Data::of(&json!({"count": count, "info": info}))
}

/// A search's answer: `count` of every record found, and the page of them (sorted by the
/// page's sort or `default_sort`), each as `shown` makes it.
fn listed(
    found: Vec<Map<String, Value>>,
    page: &Page,
    default_sort: &str,
    shown: impl Fn(Map<String, Value>) -> Map<String, Value>,
) -> Result<Data, CcError> {
    let count = found.len();
    let info = sort_page(found, page, default_sort)?
        .into_iter()
        .map(shown)
        .collect();
    Ok(listing(count, info))
}

/// A record of `obj` as a search shows it: translated to `lang`, cut to `fields` (see
/// [`project`]).
fn shown(
    lang: Lang,
    obj: Obj,
    fields: &[String],
    add_default: bool,
) -> impl Fn(Map<String, Value>) -> Map<String, Value> + '_ {
    move |mut m| {
        rules::translate(obj, &mut m, lang);
        project(m, fields, add_default)
    }
}

fn getter(m: &Map<String, Value>) -> impl Fn(&str) -> Option<Value> + '_ {
    |f: &str| m.get(f).cloned()
}

/// bk-cmdb's user-type business fields (a string on them matches whole members).
const BIZ_USER_FIELDS: [&str; 7] = [
    "bk_biz_maintainer",
    "bk_biz_productor",
    "bk_biz_tester",
    "bk_biz_developer",
    "operator",
    "bk_created_by",
    "bk_updated_by",
];

/// `search_business` (spec topology 5.1).
pub fn search_business(ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let obj = body(input)?;
    let fields = decode::string_array(&obj, "fields")?;
    let page = Page::decode(&obj, "page")?;
    let cond = opt_object(&obj, "condition")?;
    let filter = Filter::parse(decode::get(&obj, "biz_property_filter"))?;
    if cond.is_some() && filter.0.is_some() {
        return Err(CcError::bare(code::PARAMS_INVALID));
    }
    let mut cond = cond.unwrap_or_default();
    // Strings become fuzzy matches; on user fields each name must be a whole member.
    let mut exact = Vec::new();
    for (k, v) in cond.iter_mut() {
        if let Value::String(s) = v {
            if BIZ_USER_FIELDS.contains(&k.as_str()) {
                for user in s.trim_matches(',').split(',') {
                    let u = regex::escape(user);
                    let re = format!("(^{u}$)|(^{u}[,]{{1}})|([,]{{1}}{u}[,]{{1}})|([,]{{1}}{u}$)");
                    exact.push(json!({ k.clone(): {"$regex": re} }));
                }
                *v = Value::Null;
            } else {
                *v = condition::fuzzy(s);
            }
        }
    }
    cond.retain(|k, v| !(v.is_null() && BIZ_USER_FIELDS.contains(&k.as_str())));
    if !exact.is_empty() {
        cond.insert("$and".into(), Value::Array(exact));
    }
    if let Some(b) = cond.get("bk_biz_id") {
        match b {
            Value::Object(m) => {
                let bad = m.get("$eq").is_some_and(|v| !v.is_i64())
                    || m.get("$in")
                        .and_then(Value::as_array)
                        .is_some_and(|a| a.iter().any(|v| !v.is_i64()));
                if bad {
                    return Err(CcError::bare(code::PARAMS_INVALID));
                }
            }
            v if v.is_i64() => {}
            _ => return Err(CcError::invalid("bk_biz_id")),
        }
    }
    if filter.0.is_some() {
        let opt = Options {
            same_type: true,
            max_elements: query_filter::DEFAULT_MAX_ELEMENTS,
            max_or: query_filter::DEFAULT_MAX_OR_RULES,
            max_and: 0,
        };
        if let Err(key) = filter.validate(&opt) {
            return Err(CcError::invalid(format!("biz.property.{key}")));
        }
        if filter.depth() > query_filter::MAX_DEPTH {
            return Err(CcError::invalid(format!(
                "exceed max query condition deepth: {}",
                query_filter::MAX_DEPTH
            )));
        }
    }
    let named_status = cond.contains_key("bk_data_status")
        || filter.fields().iter().any(|f| f == "bk_data_status");
    let cond = Cond::parse(&cond)?;
    let found = store.read::<_, CcError>(|tx| {
        let mut found = Vec::new();
        tx.each_business::<CcError>(|_, b| {
            if b.default != 0 {
                return Ok(true);
            }
            let m = b.to_map();
            if !named_status && m.get("bk_data_status") == Some(&json!("disabled")) {
                return Ok(true);
            }
            let hit = cond.matches(&getter(&m)) && filter.matches(&getter(&m));
            if hit {
                found.push(m);
            }
            Ok(true)
        })?;
        Ok(found)
    })?;
    let shown = shown(ctx.lang, Obj::Biz, &fields, true);
    listed(found, &page, "", shown)
}

fn path_int(input: &Input, name: &str, what: &str) -> Result<i64, CcError> {
    parse_int(&arg(input, name)).map_err(|_| CcError::with(code::PARAMS_NEED_INT, what))
}

/// `search_set` (spec topology 5.2).
pub fn search_set(ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let biz = path_int(input, "bk_biz_id", "business id")?;
    let obj = body(input)?;
    let fields = decode::string_array(&obj, "fields")?;
    let page = Page::decode(&obj, "page")?;
    let cond = opt_object(&obj, "condition")?;
    let filter = Filter::parse(decode::get(&obj, "filter"))?;
    if cond.is_some() && filter.0.is_some() {
        return Err(CcError::with(
            code::PARAMS_IS_INVALID,
            "condition and filter cannot be set at the same time",
        ));
    }
    if let Err(key) = filter.validate(&Options::default()) {
        return Err(CcError::with(
            code::PARAMS_IS_INVALID,
            format!("filter: {key}"),
        ));
    }
    let mut cond = cond.unwrap_or_default();
    cond.insert("bk_biz_id".into(), json!(biz));
    let cond = Cond::parse(&cond)?;
    let found = store.read::<_, CcError>(|tx| {
        let mut found = Vec::new();
        for id in tx.set_ids_of_biz(biz)? {
            if let Some(s) = tx.set(id)? {
                let m = s.to_map();
                if cond.matches(&getter(&m)) && filter.matches(&getter(&m)) {
                    found.push(m);
                }
            }
        }
        Ok(found)
    })?;
    let shown = shown(ctx.lang, Obj::Set, &fields, true);
    listed(found, &page, "", shown)
}

/// `search_module` (spec topology 5.3): set 0 in the path = every module of the business.
pub fn search_module(ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let biz = path_int(input, "bk_biz_id", "bk_biz_id")?;
    let path_set = path_int(input, "bk_set_id", "bk_set_id")?;
    let obj = body(input)?;
    let fields = decode::string_array(&obj, "fields")?;
    let page = Page::decode(&obj, "page")?;
    let body_set = decode::int(&obj, "bk_set_id")?;
    let mut cond = opt_object(&obj, "condition")?.unwrap_or_default();
    cond.insert("bk_biz_id".into(), json!(biz));
    let set = if body_set > 0 { body_set } else { path_set };
    if set > 0 {
        cond.insert("bk_set_id".into(), json!(set));
    }
    let cond = Cond::parse(&cond)?;
    let found = store.read::<_, CcError>(|tx| {
        let ids = if set > 0 {
            tx.module_ids_of_set(set)?
        } else {
            tx.module_ids_of_biz(biz)?
        };
        let mut found = Vec::new();
        for id in ids {
            if let Some(m) = tx.module(id)? {
                let m = m.to_map();
                if cond.matches(&getter(&m)) {
                    found.push(m);
                }
            }
        }
        Ok(found)
    })?;
    let shown = shown(ctx.lang, Obj::Module, &fields, true);
    listed(found, &page, "", shown)
}

/// A module's name as shown in `lang` (the built-in ones translated).
pub(super) fn module_name(m: &Module, lang: Lang) -> String {
    rules::shown_name(Obj::Module, m.default, &m.bk_module_name, lang).to_string()
}

/// A set's name as shown in `lang` (the built-in ones translated).
pub(super) fn set_name(s: &Set, lang: Lang) -> String {
    rules::shown_name(Obj::Set, s.default, &s.bk_set_name, lang).to_string()
}

/// The model names (`resources/language/*/object.json`).
pub(super) fn obj_name(obj: &str, lang: Lang) -> &'static str {
    match (obj, lang) {
        ("biz", Lang::En) => "Business",
        ("biz", _) => "业务",
        ("set", Lang::En) => "Set",
        ("set", _) => "集群",
        ("module", Lang::En) => "Module",
        ("module", _) => "模块",
        ("host", Lang::En) => "Host",
        ("host", _) => "主机",
        _ => "",
    }
}

/// `metadata.TopoInstRst`.
#[derive(Serialize)]
struct TopoNode {
    bk_inst_id: i64,
    bk_inst_name: String,
    bk_obj_id: &'static str,
    bk_obj_name: &'static str,
    default: i64,
    child: Vec<TopoNode>,
}

/// Children as bk-cmdb reads them: by `default` ascending, ties in storage order; with
/// `need_sort`, built-in ones first, then by lower-cased name (bk-cmdb sorts Chinese names by
/// pinyin initials, which this does not).
fn order_children(nodes: &mut [TopoNode], need_sort: bool) {
    if need_sort {
        nodes.sort_by(|a, b| {
            (a.default == 0)
                .cmp(&(b.default == 0))
                .then_with(|| {
                    a.bk_inst_name
                        .to_lowercase()
                        .cmp(&b.bk_inst_name.to_lowercase())
                })
                .then_with(|| a.bk_inst_name.cmp(&b.bk_inst_name))
        });
    } else {
        nodes.sort_by_key(|n| n.default);
    }
}

/// `search_biz_inst_topo` (spec topology 5.4). `with_default` (any non-empty value) includes
/// the idle set after the normal ones.
pub fn search_biz_inst_topo(ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let raw = arg(input, "bk_biz_id");
    let biz = parse_int(&raw).map_err(|e| CcError::raw(code::UNKNOWN, e))?;
    let with_default = query_arg(input, "with_default").is_some_and(|v| !v.is_empty());
    let need_sort = query_arg(input, "need_sort").is_some_and(|v| v == "true" || v == "1");
    let lang = ctx.lang;
    let tree = store.read::<_, CcError>(|tx| {
        let Some(b) = tx.business(biz)? else {
            return Ok(None);
        };
        let mut sets = Vec::new();
        for sid in tx.set_ids_of_biz(biz)? {
            let Some(s) = tx.set(sid)? else { continue };
            if s.default != 0 && !with_default {
                continue;
            }
            let mut modules = Vec::new();
            for mid in tx.module_ids_of_set(sid)? {
                if let Some(m) = tx.module(mid)? {
                    modules.push(TopoNode {
                        bk_inst_id: m.bk_module_id,
                        bk_inst_name: module_name(&m, lang),
                        bk_obj_id: "module",
                        bk_obj_name: obj_name("module", lang),
                        default: m.default,
                        child: Vec::new(),
                    });
                }
            }
            order_children(&mut modules, need_sort);
            sets.push(TopoNode {
                bk_inst_id: s.bk_set_id,
                bk_inst_name: set_name(&s, lang),
                bk_obj_id: "set",
                bk_obj_name: obj_name("set", lang),
                default: s.default,
                child: modules,
            });
        }
        order_children(&mut sets, need_sort);
        Ok(Some(TopoNode {
            bk_inst_id: b.bk_biz_id,
            bk_inst_name: rules::shown_name(Obj::Biz, b.default, &b.bk_biz_name, lang).to_string(),
            bk_obj_id: "biz",
            bk_obj_name: obj_name("biz", lang),
            default: b.default,
            child: sets,
        }))
    })?;
    Ok(Data::of(&tree.into_iter().collect::<Vec<_>>()))
}

#[derive(Serialize)]
struct InternalModule {
    bk_module_id: i64,
    bk_module_name: String,
    default: i64,
    host_apply_enabled: bool,
}

#[derive(Serialize)]
struct InternalModules {
    bk_set_id: i64,
    bk_set_name: String,
    module: Option<Vec<InternalModule>>,
}

/// `get_biz_internal_module` (spec topology 5.5): the idle set and every built-in module.
pub fn get_biz_internal_module(ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let biz = parse_int(&arg(input, "bk_biz_id"))
        .map_err(|e| CcError::raw(code::TOPO_GET_APP_FAILED, e))?;
    let lang = ctx.lang;
    let out = store.read::<_, CcError>(|tx| {
        let mut idle: Option<Set> = None;
        for sid in tx.set_ids_of_biz(biz)? {
            if let Some(s) = tx.set(sid)?
                && s.default == 1
            {
                idle = Some(s);
                break;
            }
        }
        let Some(idle) = idle else {
            return Ok(InternalModules {
                bk_set_id: 0,
                bk_set_name: String::new(),
                module: None,
            });
        };
        let mut modules = Vec::new();
        for mid in tx.module_ids_of_biz(biz)? {
            if let Some(m) = tx.module(mid)?
                && m.default != 0
            {
                modules.push(InternalModule {
                    bk_module_id: m.bk_module_id,
                    bk_module_name: module_name(&m, lang),
                    default: m.default,
                    host_apply_enabled: m.get("host_apply_enabled").as_bool().unwrap_or(false),
                });
            }
        }
        Ok(InternalModules {
            bk_set_id: idle.bk_set_id,
            bk_set_name: set_name(&idle, lang),
            module: Some(modules),
        })
    })?;
    Ok(Data::of(&out))
}

/// `search_cloud_area` (spec topology 5.6).
pub fn search_cloud_area(ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let obj = body(input)?;
    let fields = decode::string_array(&obj, "fields")?;
    let mut page = Page::decode(&obj, "page")?;
    let fuzzy = decode::boolean(&obj, "is_fuzzy")?;
    if page.limit == 0 {
        page.limit = MAX_PAGE_SIZE;
    }
    // `IsIllegal`: a negative limit too.
    if page.is_illegal() {
        return Err(CcError::bare(code::PARAMS_INVALID));
    }
    let mut cond = opt_object(&obj, "condition")?.unwrap_or_default();
    if fuzzy {
        for v in cond.values_mut() {
            if let Value::String(s) = v {
                *v = condition::fuzzy(s);
            }
        }
    }
    let cond = Cond::parse(&cond)?;
    let found = store.read::<_, CcError>(|tx| {
        let mut found = Vec::new();
        tx.each_cloud_area::<CcError>(|_, c| {
            let m = c.to_map();
            if cond.matches(&getter(&m)) {
                found.push(m);
            }
            Ok(true)
        })?;
        Ok(found)
    })?;
    let shown = shown(ctx.lang, Obj::Cloud, &fields, false);
    listed(found, &page, "-create_time", shown)
}

#[derive(Serialize)]
struct MainlineObject {
    bk_obj_id: &'static str,
    bk_obj_name: &'static str,
    bk_supplier_account: &'static str,
    bk_next_obj: &'static str,
    bk_next_name: &'static str,
    bk_pre_obj_id: &'static str,
    bk_pre_obj_name: &'static str,
}

/// `get_mainline_object_topo` (spec topology 5.8): biz → set → module → host.
pub fn get_mainline_object_topo(
    ctx: &Ctx,
    _store: &Store,
    _input: &Input,
) -> Result<Data, CcError> {
    let chain = ["biz", "set", "module", "host"];
    let n = |o: &str| obj_name(o, ctx.lang);
    let out: Vec<MainlineObject> = chain
        .iter()
        .enumerate()
        .map(|(i, &o)| {
            let next = chain.get(i + 1).copied().unwrap_or("");
            let pre = if i == 0 { "" } else { chain[i - 1] };
            MainlineObject {
                bk_obj_id: o,
                bk_obj_name: n(o),
                bk_supplier_account: "0",
                bk_next_obj: next,
                bk_next_name: n(next),
                bk_pre_obj_id: pre,
                bk_pre_obj_name: n(pre),
            }
        })
        .collect();
    Ok(Data::of(&out))
}

/// `bk_ids` of the batch reads: 1 to 500, deduplicated in order.
fn batch_ids(obj: &Map<String, Value>) -> Result<Vec<i64>, CcError> {
    let ids = decode::int_array(obj, "bk_ids")?;
    if ids.is_empty() || ids.len() > MAX_BATCH_IDS {
        return Err(CcError::new(
            code::ARRAY_LENGTH_WRONG,
            vec![Arg::Str("bk_ids".into()), Arg::Int(MAX_BATCH_IDS as i64)],
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    Ok(ids.into_iter().filter(|i| seen.insert(*i)).collect())
}

/// `find_set_batch` (spec topology 5.9): a bare array, ids of other businesses left out.
pub fn find_set_batch(ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let biz = parse_int(&arg(input, "bk_biz_id")).map_err(|e| CcError::raw(code::UNKNOWN, e))?;
    batch_read(ctx, store, input, biz, Obj::Set, |tx, id| {
        Ok(tx.set(id)?.map(|s| (s.bk_biz_id, s.to_map())))
    })
}

/// `find_module_batch` (spec topology 5.9).
pub fn find_module_batch(ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let biz = parse_int(&arg(input, "bk_biz_id")).map_err(|_| CcError::invalid("bk_biz_id"))?;
    batch_read(ctx, store, input, biz, Obj::Module, |tx, id| {
        Ok(tx.module(id)?.map(|m| (m.bk_biz_id, m.to_map())))
    })
}

/// The two batch reads: `bk_ids` (sorted) and a non-empty `fields`; each record of business
/// `biz` that `get` finds is translated and projected, in id order.
fn batch_read(
    ctx: &Ctx,
    store: &Store,
    input: &Input,
    biz: i64,
    obj_kind: Obj,
    get: impl Fn(&crate::store::ReadTx, i64) -> Result<Option<(i64, Map<String, Value>)>, CcError>,
) -> Result<Data, CcError> {
    let obj = body(input)?;
    let mut ids = batch_ids(&obj)?;
    let fields = decode::string_array(&obj, "fields")?;
    if fields.is_empty() {
        return Err(CcError::invalid("fields"));
    }
    ids.sort_unstable();
    let out = store.read::<_, CcError>(|tx| {
        let mut out = Vec::new();
        for &id in &ids {
            if let Some((of_biz, mut map)) = get(tx, id)?
                && of_biz == biz
            {
                rules::translate(obj_kind, &mut map, ctx.lang);
                out.push(project(map, &fields, true));
            }
        }
        Ok(out)
    })?;
    Ok(Data::of(&out))
}

/// `find_module_with_relation` (spec topology 5.10): modules of the business in those sets
/// and built from those templates.
pub fn find_module_with_relation(ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let biz = parse_int(&arg(input, "bk_biz_id")).map_err(|_| CcError::invalid("bk_biz_id"))?;
    let obj = body(input)?;
    let set_ids = decode::int_array(&obj, "bk_set_ids")?;
    let st_ids = decode::int_array(&obj, "bk_service_template_ids")?;
    let fields = decode::string_array(&obj, "fields")?;
    let page = Page::decode(&obj, "page")?;
    if fields.is_empty() {
        return Err(CcError::with(code::PARAMS_NEED_SET, "fields"));
    }
    if set_ids.len() > MAX_RELATION_SET_IDS {
        return Err(CcError::with(code::OVER_LIMIT, "the number of bk_set_ids"));
    }
    if page.limit > crate::limits::MAX_RELATION_PAGE {
        return Err(CcError::with(code::OVER_LIMIT, "page"));
    }
    let found = store.read::<_, CcError>(|tx| {
        let mut ids: Vec<i64> = if set_ids.is_empty() {
            tx.module_ids_of_biz(biz)?
        } else {
            let mut v = Vec::new();
            for s in &set_ids {
                v.extend(tx.module_ids_of_set(*s)?);
            }
            v
        };
        ids.sort_unstable();
        ids.dedup();
        let mut found = Vec::new();
        for id in ids {
            let Some(m) = tx.module(id)? else { continue };
            if m.bk_biz_id != biz
                || (!st_ids.is_empty() && !st_ids.contains(&m.service_template_id))
            {
                continue;
            }
            found.push(m.to_map());
        }
        Ok(found)
    })?;
    let shown = shown(ctx.lang, Obj::Module, &fields, true);
    listed(found, &page, "", shown)
}

#[derive(Serialize)]
struct PathNode {
    bk_obj_id: &'static str,
    bk_inst_id: i64,
    bk_inst_name: String,
}

#[derive(Serialize)]
struct NodePaths {
    bk_obj_id: &'static str,
    bk_inst_id: i64,
    bk_inst_name: String,
    bk_paths: Vec<Vec<PathNode>>,
}

/// `find_topo_node_paths` (spec topology 5.11): the ancestors of each set or module, root
/// first; names as stored (bk-cmdb's cache does not translate them).
pub fn find_topo_node_paths(_ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let biz = parse_int(&arg(input, "bk_biz_id"))
        .ok()
        .filter(|b| *b > 0)
        .ok_or_else(|| CcError::bare(code::PARAMS_IS_INVALID))?;
    let obj = body(input)?;
    let nodes = decode::array(&obj, "bk_nodes")?;
    let mut wanted = Vec::new();
    for n in nodes {
        let Value::Object(n) = n else {
            return Err(CcError::json());
        };
        let o = decode::string(n, "bk_obj_id")?;
        let id = decode::int(n, "bk_inst_id")?;
        if o == "biz" {
            return Err(CcError::raw(code::PARAMS_IS_INVALID, "not support biz"));
        }
        if o.is_empty() || id <= 0 {
            return Err(CcError::raw(code::PARAMS_IS_INVALID, "object or inst id"));
        }
        if !matches!(o.as_str(), "set" | "module" | "host") {
            return Err(CcError::raw(code::PARAMS_IS_INVALID, "object"));
        }
        if o == "host" {
            return Err(CcError::raw(code::PARAMS_INVALID, "host"));
        }
        wanted.push((o, id));
    }
    let out = store.read::<_, CcError>(|tx| {
        let Some(b) = tx.business(biz)? else {
            return Ok(Vec::new());
        };
        let root = || PathNode {
            bk_obj_id: "biz",
            bk_inst_id: b.bk_biz_id,
            bk_inst_name: b.bk_biz_name.clone(),
        };
        let mut out = Vec::new();
        for (o, id) in &wanted {
            if o == "set" {
                if let Some(s) = tx.set(*id)?
                    && s.bk_biz_id == biz
                {
                    out.push(NodePaths {
                        bk_obj_id: "set",
                        bk_inst_id: s.bk_set_id,
                        bk_inst_name: s.bk_set_name,
                        bk_paths: vec![vec![root()]],
                    });
                }
            } else if let Some(m) = tx.module(*id)?
                && m.bk_biz_id == biz
            {
                let set: Option<Set> = tx.set(m.bk_set_id)?;
                let mut path = vec![root()];
                if let Some(s) = set {
                    path.push(PathNode {
                        bk_obj_id: "set",
                        bk_inst_id: s.bk_set_id,
                        bk_inst_name: s.bk_set_name,
                    });
                }
                let Module {
                    bk_module_id,
                    bk_module_name,
                    ..
                } = m;
                out.push(NodePaths {
                    bk_obj_id: "module",
                    bk_inst_id: bk_module_id,
                    bk_inst_name: bk_module_name,
                    bk_paths: vec![path],
                });
            }
        }
        Ok(out)
    })?;
    Ok(Data::of(&out))
}
