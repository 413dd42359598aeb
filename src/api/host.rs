//! Host reads (bk-cmdb host_server `findhost.go`, `host.go`; coreservice host searcher; spec
//! topology 6, 7.2): list_biz_hosts, list_hosts_without_biz, list_biz_hosts_topo,
//! find_host_topo_relation, find_host_biz_relations, get_host_base_info,
//! find_host_by_service_template. Host ids come from the topology indexes (hosts of a
//! business or set, a module's own list), so a read costs what its answer costs; a
//! `host_property_filter` is evaluated by `domain::query_filter` on the hosts of that set only.

use super::topology::{arg, body, module_name, project, set_name};
use super::{Ctx, Data, Input, Listing};
use crate::domain::condition::Cond;
use crate::domain::decode;
use crate::domain::page::{self, Page, SortValue};
use crate::domain::query_filter::{self, Filter, Options};
use crate::domain::service_template::parse_int;
use crate::domain::topology::{self as rules, Obj};
use crate::error::{Arg, CcError, code};
use crate::limits::{
    MAX_BATCH_IDS, MAX_HOSTS_TOPO_PAGE, MAX_LIST_HOSTS_MODULE_IDS, MAX_PAGE_SIZE,
    MAX_RELATION_SET_IDS, NO_LIMIT,
};
use crate::store::records::Host;
use crate::store::{ReadTx, Store};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// Host fields bk-cmdb stores as lists and returns comma-joined.
pub const LIST_FIELDS: [&str; 6] = [
    "bk_host_innerip",
    "bk_host_outerip",
    "bk_host_innerip_v6",
    "bk_host_outerip_v6",
    "operator",
    "bk_bak_operator",
];

fn host_opts() -> Options {
    Options {
        same_type: true,
        ..Options::default()
    }
}

/// Validates a host filter as `ListHostsParameter.Validate` does: `'host_property_filter.<key>'`.
fn check_filter(filter: &Filter, name: &str) -> Result<(), CcError> {
    if let Err(key) = filter.validate(&host_opts()) {
        return Err(CcError::invalid(format!("{name}.{key}")));
    }
    if filter.depth() > query_filter::MAX_DEPTH {
        return Err(CcError::invalid(format!("{name}.rules")));
    }
    Ok(())
}

/// A `set_cond` / `module_cond` list (`[{field, operator, value}]`, MongoDB operators) as one
/// condition.
fn cond_items(obj: &Map<String, Value>, key: &str) -> Result<Option<Cond>, CcError> {
    let items = match decode::get(obj, key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(CcError::json()),
    };
    if items.is_empty() {
        return Ok(None);
    }
    let mut all = Map::new();
    let mut and = Vec::new();
    for item in items {
        let Value::Object(i) = item else {
            return Err(CcError::json());
        };
        let field = decode::string(i, "field")?;
        let op = decode::string(i, "operator")?;
        let value = i.get("value").cloned().unwrap_or(Value::Null);
        and.push(json!({ field: { op: value } }));
    }
    all.insert("$and".into(), Value::Array(and));
    Cond::parse(&all).map(Some)
}

/// A host as a filter sees it (list fields as arrays).
fn matches(filter: &Filter, h: &Map<String, Value>) -> bool {
    let get = query_filter::getter(h, &LIST_FIELDS);
    filter.matches(&get)
}

/// The page of hosts for `ids` (ascending, distinct) as `list_biz_hosts` cuts it: without a
/// filter and sorted by nothing or `bk_host_id`, the page is a slice of the ids (sorted within
/// the page); otherwise every host is read, filtered, sorted, then cut.
fn host_page(
    tx: &ReadTx,
    ids: &[i64],
    filter: &Filter,
    page: &Page,
    fields: &[String],
) -> Result<(usize, Vec<Map<String, Value>>), CcError> {
    let sort = page.sort.as_str();
    // bk-cmdb's searcher: no sort, `bk_host_id` with any leading `+`/`-`, or one
    // `bk_host_id:<dir>`.
    let bare = sort.trim_start_matches(['+', '-']);
    let by_id = sort.is_empty()
        || bare == "bk_host_id"
        || (!bare.contains(',') && bare.starts_with("bk_host_id:"));
    let limit = page.mongo_limit();
    if filter.0.is_none() && by_id {
        let count = ids.len();
        let start = usize::try_from(page.start).unwrap_or(0);
        if start > count {
            return Ok((0, Vec::new()));
        }
        let slice = page::window(ids.to_vec(), page.start, limit);
        let mut hosts = Vec::with_capacity(slice.len());
        for id in slice {
            if let Some(h) = tx.host(id)? {
                hosts.push(h.to_map());
            }
        }
        let hosts = page::sort_maps(hosts, page.sort_or("bk_host_id"))?;
        return Ok((
            count,
            hosts
                .into_iter()
                .map(|m| project(m, fields, false))
                .collect(),
        ));
    }
    let mut found = Vec::new();
    for &id in ids {
        if let Some(h) = tx.host(id)? {
            let m = h.to_map();
            if matches(filter, &m) {
                found.push(m);
            }
        }
    }
    let count = found.len();
    let sorted = page::sort_maps(found, page.sort_or("bk_host_id"))?;
    let info = page::window(sorted, page.start.max(0), limit)
        .into_iter()
        .map(|m| project(m, fields, false))
        .collect();
    Ok((count, info))
}

fn listing(count: usize, info: Vec<Map<String, Value>>) -> Data {
    Data::of(&json!({"count": count, "info": info}))
}

/// A record's attribute getter, as the conditions and filters read it.
type Get<'a> = &'a dyn Fn(&str) -> Option<Value>;

/// How a host list narrows a business's hosts: to sets (given, or those whose attributes pass
/// `set_hit`), then to modules of those sets (given, or passing `module_hit`).
struct Narrow<'a> {
    sets: Option<BTreeSet<i64>>,
    set_hit: Option<&'a dyn Fn(Get) -> bool>,
    modules: Option<BTreeSet<i64>>,
    module_hit: Option<&'a dyn Fn(Get) -> bool>,
}

impl Narrow<'_> {
    /// The hosts of `biz` left (ascending, distinct); none if a test finds no set or module.
    fn host_ids(mut self, tx: &ReadTx, biz: i64) -> Result<Vec<i64>, CcError> {
        if let Some(hit) = self.set_hit {
            let found = sets_matching(tx, biz, hit)?;
            if found.is_empty() {
                return Ok(Vec::new());
            }
            self.sets = Some(found);
        }
        if let Some(hit) = self.module_hit {
            let found = modules_matching(tx, biz, self.sets.as_ref(), hit)?;
            if found.is_empty() {
                return Ok(Vec::new());
            }
            self.modules = Some(found);
        }
        biz_host_ids(tx, biz, self.sets.as_ref(), self.modules.as_ref())
    }
}

/// The sets of `biz` whose attributes pass `hit`.
fn sets_matching(
    tx: &ReadTx,
    biz: i64,
    hit: impl Fn(Get) -> bool,
) -> Result<BTreeSet<i64>, CcError> {
    let mut found = BTreeSet::new();
    for sid in tx.set_ids_of_biz(biz)? {
        if let Some(s) = tx.set(sid)? {
            let m = s.to_map();
            if hit(&|f: &str| m.get(f).cloned()) {
                found.insert(sid);
            }
        }
    }
    Ok(found)
}

/// The modules of `biz` in `sets` (any set if `None`) whose attributes pass `hit`.
fn modules_matching(
    tx: &ReadTx,
    biz: i64,
    sets: Option<&BTreeSet<i64>>,
    hit: impl Fn(Get) -> bool,
) -> Result<BTreeSet<i64>, CcError> {
    let mut found = BTreeSet::new();
    for mid in tx.module_ids_of_biz(biz)? {
        if let Some(m) = tx.module(mid)? {
            let map = m.to_map();
            if sets.is_none_or(|s| s.contains(&m.bk_set_id)) && hit(&|f: &str| map.get(f).cloned())
            {
                found.insert(mid);
            }
        }
    }
    Ok(found)
}

/// Hosts of a business narrowed to sets and modules (ascending, distinct).
fn biz_host_ids(
    tx: &ReadTx,
    biz: i64,
    sets: Option<&BTreeSet<i64>>,
    modules: Option<&BTreeSet<i64>>,
) -> Result<Vec<i64>, CcError> {
    if let Some(mods) = modules {
        let mut ids = BTreeSet::new();
        for &mid in mods {
            if let Some(m) = tx.module(mid)?
                && m.bk_biz_id == biz
                && sets.is_none_or(|s| s.contains(&m.bk_set_id))
            {
                ids.extend(m.hosts);
            }
        }
        return Ok(ids.into_iter().collect());
    }
    if let Some(sets) = sets {
        let mut ids = BTreeSet::new();
        for &s in sets {
            if tx.set(s)?.is_some_and(|x| x.bk_biz_id == biz) {
                ids.extend(tx.host_ids_of_set(s)?);
            }
        }
        return Ok(ids.into_iter().collect());
    }
    Ok(tx.host_ids_of_biz(biz)?)
}

/// `list_biz_hosts` (spec topology 6.1).
pub fn list_biz_hosts(_ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let obj = body(input)?;
    let set_ids = decode::int_array(&obj, "bk_set_ids")?;
    let module_ids = decode::int_array(&obj, "bk_module_ids")?;
    let fields = decode::string_array(&obj, "fields")?;
    let page = Page::decode(&obj, "page")?;
    let filter = Filter::parse(decode::get(&obj, "host_property_filter"))?;
    let set_cond = cond_items(&obj, "set_cond")?;
    let module_cond = cond_items(&obj, "module_cond")?;
    if let Err(key) = page.validate(false) {
        return Err(CcError::invalid(format!("page.{key}")));
    }
    check_filter(&filter, "host_property_filter")?;
    if set_ids.len() > MAX_RELATION_SET_IDS {
        return Err(CcError::invalid("bk_set_ids"));
    }
    if module_ids.len() > MAX_LIST_HOSTS_MODULE_IDS {
        return Err(CcError::invalid("bk_module_ids"));
    }
    let biz = parse_int(&arg(input, "bk_biz_id"))
        .ok()
        .filter(|b| *b != 0)
        .ok_or_else(|| CcError::invalid("bk_biz_id"))?;
    if page.limit <= 0 {
        return Err(CcError::invalid("page.limit"));
    }
    if !set_ids.is_empty() && set_cond.is_some() {
        return Err(CcError::invalid(
            "bk_set_ids and set_cond can't both be set",
        ));
    }
    if !module_ids.is_empty() && module_cond.is_some() {
        return Err(CcError::invalid(
            "bk_module_ids and module_cond can't both be set",
        ));
    }
    let set_hit = set_cond.as_ref().map(|c| move |get: Get| c.matches(get));
    let module_hit = module_cond.as_ref().map(|c| move |get: Get| c.matches(get));
    store.read(|tx| {
        let narrow = Narrow {
            sets: (!set_ids.is_empty()).then(|| set_ids.iter().copied().collect()),
            set_hit: set_hit.as_ref().map(|h| h as &dyn Fn(Get) -> bool),
            modules: (!module_ids.is_empty()).then(|| module_ids.iter().copied().collect()),
            module_hit: module_hit.as_ref().map(|h| h as &dyn Fn(Get) -> bool),
        };
        let ids = narrow.host_ids(tx, biz)?;
        if ids.is_empty() {
            return Ok(listing(0, Vec::new()));
        }
        let (count, info) = host_page(tx, &ids, &filter, &page, &fields)?;
        Ok(listing(count, info))
    })
}

/// `list_hosts_without_biz` (spec topology 6.2): every host, whatever its business.
pub fn list_hosts_without_biz(_ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let obj = body(input)?;
    let fields = decode::string_array(&obj, "fields")?;
    let page = Page::decode(&obj, "page")?;
    let filter = Filter::parse(decode::get(&obj, "host_property_filter"))?;
    if let Err(key) = page.validate(false) {
        return Err(CcError::invalid(format!("page.{key}")));
    }
    check_filter(&filter, "host_property_filter")?;
    store.read(|tx| {
        let mut found = Vec::new();
        tx.each_host::<CcError>(|_, h| {
            let m = h.to_map();
            if matches(&filter, &m) {
                found.push(m);
            }
            Ok(true)
        })?;
        let count = found.len();
        let sorted = page::sort_maps(found, page.sort_or("bk_host_id"))?;
        let info = page::window(sorted, page.start, page.limit)
            .into_iter()
            .map(|m| project(m, &fields, false))
            .collect();
        Ok(listing(count, info))
    })
}

#[derive(Serialize)]
struct TopoModule {
    bk_module_id: i64,
    bk_module_name: String,
}

#[derive(Serialize)]
struct TopoSet {
    bk_set_id: i64,
    bk_set_name: String,
    module: Vec<TopoModule>,
}

#[derive(Serialize)]
struct HostTopo {
    host: Map<String, Value>,
    topo: Vec<TopoSet>,
}

/// `list_biz_hosts_topo` (spec topology 6.3): hosts with their sets and modules in the
/// business.
pub fn list_biz_hosts_topo(ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let biz = parse_int(&arg(input, "bk_biz_id"))
        .ok()
        .filter(|b| *b != 0)
        .ok_or_else(|| CcError::invalid("bk_biz_id"))?;
    let obj = body(input)?;
    let mut fields = decode::string_array(&obj, "fields")?;
    let page = Page::decode(&obj, "page")?;
    let set_filter = Filter::parse(decode::get(&obj, "set_property_filter"))?;
    let module_filter = Filter::parse(decode::get(&obj, "module_property_filter"))?;
    let host_filter = Filter::parse(decode::get(&obj, "host_property_filter"))?;
    if page.limit == 0 {
        return Err(CcError::with(code::PARAMS_NEED_SET, "page.limit"));
    }
    if page.limit > MAX_HOSTS_TOPO_PAGE {
        return Err(CcError::exceed_limit("page.limit", MAX_HOSTS_TOPO_PAGE));
    }
    for (f, name) in [
        (&set_filter, "set_property_filter"),
        (&module_filter, "module_property_filter"),
        (&host_filter, "host_property_filter"),
    ] {
        if let Err(key) = f.validate(&host_opts()) {
            return Err(CcError::invalid(format!("{name}.{key}")));
        }
        if f.depth() > query_filter::MAX_DEPTH {
            return Err(CcError::exceed_limit(
                format!("{name}.rules"),
                query_filter::MAX_DEPTH as i64,
            ));
        }
    }
    if !fields.iter().any(|f| f == "bk_host_id") {
        fields.push("bk_host_id".into());
    }
    let lang = ctx.lang;
    store.read(|tx| {
        let empty = || listing(0, Vec::new());
        let set_hit = |get: Get| set_filter.matches(get);
        let module_hit = |get: Get| module_filter.matches(get);
        let narrow = Narrow {
            sets: None,
            set_hit: set_filter
                .0
                .is_some()
                .then_some(&set_hit as &dyn Fn(Get) -> bool),
            modules: None,
            module_hit: module_filter
                .0
                .is_some()
                .then_some(&module_hit as &dyn Fn(Get) -> bool),
        };
        let ids = narrow.host_ids(tx, biz)?;
        if ids.is_empty() {
            return Ok(empty());
        }
        let (count, hosts) = host_page(tx, &ids, &host_filter, &page, &fields)?;
        let mut info = Vec::with_capacity(hosts.len());
        for host in hosts {
            let hid = host.get("bk_host_id").and_then(Value::as_i64).unwrap_or(0);
            let mut by_set: BTreeMap<i64, TopoSet> = BTreeMap::new();
            for mid in tx.module_ids_of_host(hid)? {
                let Some(m) = tx.module(mid)? else { continue };
                if m.bk_biz_id != biz {
                    continue;
                }
                if let std::collections::btree_map::Entry::Vacant(e) = by_set.entry(m.bk_set_id) {
                    let name = match tx.set(m.bk_set_id)? {
                        Some(s) => set_name(&s, lang),
                        None => String::new(),
                    };
                    e.insert(TopoSet {
                        bk_set_id: m.bk_set_id,
                        bk_set_name: name,
                        module: Vec::new(),
                    });
                }
                if let Some(s) = by_set.get_mut(&m.bk_set_id) {
                    s.module.push(TopoModule {
                        bk_module_id: m.bk_module_id,
                        bk_module_name: module_name(&m, lang),
                    });
                }
            }
            info.push(HostTopo {
                host,
                topo: by_set.into_values().collect(),
            });
        }
        Ok(Data::of(&json!({"count": count, "info": info})))
    })
}

/// bk-cmdb's `ModuleHostRelation` (`cc_ModuleHostConfig`), zero fields omitted where the
/// answer's struct says `omitempty`.
#[derive(Serialize, Clone)]
struct Relation {
    #[serde(skip_serializing_if = "is_zero")]
    bk_biz_id: i64,
    #[serde(skip_serializing_if = "is_zero")]
    bk_host_id: i64,
    #[serde(skip_serializing_if = "is_zero")]
    bk_module_id: i64,
    #[serde(skip_serializing_if = "is_zero")]
    bk_set_id: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    bk_supplier_account: String,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

fn supplier(tx: &ReadTx) -> Result<String, CcError> {
    Ok(tx
        .setting("supplier_account")?
        .unwrap_or_else(|| "0".into()))
}

/// The relations of `hosts` (each host's modules), in (host, module) order.
fn relations_of_hosts(
    tx: &ReadTx,
    hosts: &[i64],
    keep: impl Fn(&Relation) -> bool,
) -> Result<Vec<Relation>, CcError> {
    let sup = supplier(tx)?;
    let mut out = Vec::new();
    for &h in hosts {
        for mid in tx.module_ids_of_host(h)? {
            if let Some(m) = tx.module(mid)? {
                let r = Relation {
                    bk_biz_id: m.bk_biz_id,
                    bk_host_id: h,
                    bk_module_id: mid,
                    bk_set_id: m.bk_set_id,
                    bk_supplier_account: sup.clone(),
                };
                if keep(&r) {
                    out.push(r);
                }
            }
        }
    }
    Ok(out)
}

#[derive(Serialize)]
struct RelationPage {
    count: usize,
    data: Vec<Relation>,
    page: PageOut,
}

#[derive(Serialize)]
struct PageOut {
    limit: i64,
    start: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    sort: String,
}

/// `find_host_topo_relation` (spec topology 6.4).
pub fn find_host_topo_relation(_ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let obj = body(input)?;
    let biz = decode::int(&obj, "bk_biz_id")?;
    let set_ids = decode::int_array(&obj, "bk_set_ids")?;
    let host_ids = decode::int_array(&obj, "bk_host_ids")?;
    let module_ids = decode::int_array(&obj, "bk_module_ids")?;
    let page = Page::decode(&obj, "page")?;
    if biz == 0 && set_ids.is_empty() && host_ids.is_empty() && module_ids.is_empty() {
        return Err(CcError::plain(code::INPUT_EMPTY));
    }
    if page.start < 0 || page.limit <= 0 || (page.limit > MAX_PAGE_SIZE && page.limit != NO_LIMIT) {
        return Err(CcError::plain(code::PAGE_LIMIT_EXCEEDED));
    }
    let over = |what: &str, n: usize| CcError::exceed_limit(what, n as i64);
    if set_ids.len() > MAX_RELATION_SET_IDS {
        return Err(over("bk_set_ids", MAX_RELATION_SET_IDS));
    }
    if module_ids.len() > MAX_BATCH_IDS {
        return Err(over("bk_module_ids", MAX_BATCH_IDS));
    }
    if host_ids.len() > MAX_BATCH_IDS {
        return Err(over("bk_host_ids", MAX_BATCH_IDS));
    }
    let rels = store.read(|tx| {
        let hosts: Vec<i64> = if !host_ids.is_empty() {
            let s: BTreeSet<i64> = host_ids.iter().copied().collect();
            s.into_iter().collect()
        } else if !module_ids.is_empty() {
            let mut s = BTreeSet::new();
            for &m in &module_ids {
                if let Some(m) = tx.module(m)? {
                    s.extend(m.hosts);
                }
            }
            s.into_iter().collect()
        } else if !set_ids.is_empty() {
            let mut s = BTreeSet::new();
            for &x in &set_ids {
                s.extend(tx.host_ids_of_set(x)?);
            }
            s.into_iter().collect()
        } else {
            tx.host_ids_of_biz(biz)?
        };
        relations_of_hosts(tx, &hosts, |r| {
            (biz == 0 || r.bk_biz_id == biz)
                && (set_ids.is_empty() || set_ids.contains(&r.bk_set_id))
                && (module_ids.is_empty() || module_ids.contains(&r.bk_module_id))
        })
    })?;
    let count = rels.len();
    // bk-cmdb sorts the relations by `page.sort` (ties in storage order); a sort path MongoDB
    // refuses fails coreservice's query, which the host server answers as a failed call.
    let keys = page::parse_sort(&page.sort).map_err(|_| CcError::plain(code::HTTP_DO_REQUEST))?;
    let rels = page::sort(rels, &keys, |r, field| match field {
        "bk_biz_id" => SortValue::Int(r.bk_biz_id),
        "bk_host_id" => SortValue::Int(r.bk_host_id),
        "bk_module_id" => SortValue::Int(r.bk_module_id),
        "bk_set_id" => SortValue::Int(r.bk_set_id),
        "bk_supplier_account" => SortValue::Str(r.bk_supplier_account.clone()),
        _ => SortValue::Null,
    });
    let data = page::window(rels, page.start, page.mongo_limit());
    Ok(Data::of(&RelationPage {
        count,
        data,
        page: PageOut {
            limit: page.limit,
            start: page.start,
            sort: page.sort,
        },
    }))
}

/// `find_host_biz_relations` (spec topology 6.5): a bare array of relations.
pub fn find_host_biz_relations(_ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let obj = body(input)?;
    let biz = decode::int(&obj, "bk_biz_id")?;
    let hosts = decode::int_array(&obj, "bk_host_id")?;
    if hosts.is_empty() || hosts.len() > MAX_BATCH_IDS {
        return Err(CcError::new(
            code::ARRAY_LENGTH_WRONG,
            vec![
                Arg::Str("bk_host_id".into()),
                Arg::Int(MAX_BATCH_IDS as i64),
            ],
        ));
    }
    let ids: BTreeSet<i64> = hosts.into_iter().collect();
    let ids: Vec<i64> = ids.into_iter().collect();
    let rels = store.read(|tx| relations_of_hosts(tx, &ids, |r| biz == 0 || r.bk_biz_id == biz))?;
    Ok(Data::of(&rels))
}

/// `find_host_by_service_template` (spec topology 7.2).
pub fn find_host_by_service_template(
    _ctx: &Ctx,
    store: &Store,
    input: &Input,
) -> Result<Data, CcError> {
    let obj = body(input)?;
    let st_ids = decode::int_array(&obj, "bk_service_template_ids")?;
    let module_ids = decode::int_array(&obj, "bk_module_ids")?;
    let fields = decode::string_array(&obj, "fields")?;
    let page = Page::decode(&obj, "page")?;
    let wrong = |what: &str| {
        CcError::new(
            code::ARRAY_LENGTH_WRONG,
            vec![Arg::Str(what.into()), Arg::Int(MAX_BATCH_IDS as i64)],
        )
    };
    if st_ids.is_empty() || st_ids.len() > MAX_BATCH_IDS {
        return Err(wrong("bk_service_template_ids"));
    }
    if module_ids.len() > MAX_BATCH_IDS {
        return Err(wrong("bk_module_ids"));
    }
    if fields.is_empty() {
        return Err(CcError::invalid("fields"));
    }
    if page.limit <= 0 || page.limit > MAX_PAGE_SIZE {
        return Err(CcError::invalid("page.limit"));
    }
    let biz = parse_int(&arg(input, "bk_biz_id"))
        .ok()
        .filter(|b| *b > 0)
        .ok_or_else(|| CcError::invalid("bk_biz_id"))?;
    let out = store.read::<_, CcError>(|tx| {
        let mut hosts = BTreeSet::new();
        let mut any = false;
        for &st in &st_ids {
            for mid in tx.module_ids_of_template(st)? {
                if !module_ids.is_empty() && !module_ids.contains(&mid) {
                    continue;
                }
                if let Some(m) = tx.module(mid)?
                    && m.bk_biz_id == biz
                {
                    any = true;
                    hosts.extend(m.hosts);
                }
            }
        }
        if !any {
            return Ok(Listing {
                count: 0,
                info: None,
            });
        }
        let ids: Vec<i64> = hosts.into_iter().collect();
        let count = ids.len();
        let start = usize::try_from(page.start).unwrap_or(0);
        if start >= count {
            return Ok(Listing { count, info: None });
        }
        let mut info = Vec::new();
        for id in page::window(ids, page.start, page.limit) {
            if let Some(h) = tx.host(id)? {
                info.push(project(h.to_map(), &fields, false));
            }
        }
        Ok(Listing {
            count,
            info: Some(info),
        })
    })?;
    Ok(Data::of(&out))
}

/// `get_host_base_info` (spec topology 6.6): every host attribute with its name and value.
pub fn get_host_base_info(ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let id = parse_int(&arg(input, "bk_host_id"))
        .map_err(|_| CcError::with(code::PARAMS_NEED_INT, "bk_host_id"))?;
    let host: Option<Host> = store.read(|tx| tx.host(id))?;
    let host = host.ok_or_else(|| CcError::plain(code::HOST_NOT_FOUND))?;
    let map = host.to_map();
    let out: Vec<Value> = rules::attributes(Obj::Host)
        .iter()
        .map(|a| {
            json!({
                "bk_property_id": a.id,
                "bk_property_name": a.name(ctx.lang),
                "bk_property_value": map.get(a.id).cloned().unwrap_or(Value::Null),
            })
        })
        .collect();
    Ok(Data::of(&out))
}
