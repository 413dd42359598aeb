//! Service instances: `create_service_instance` (spec 4.3), `list_service_instance`,
//! `list_service_instance_by_host`, `list_service_instance_detail`, `delete_service_instance`
//! (spec 4.4), `add_label_for_service_instance` and `remove_label_from_service_instance`
//! (bk-cmdb proc_server `serviceinstance.go`, coreservice `process/service_instance.go` and
//! `label/label.go`).

use super::process_instance::{self, Item};
use super::service_template::Listing;
use super::{Ctx, Data, Input};
use crate::clock;
use crate::domain::decode;
use crate::domain::page::{self, Page, SortValue};
use crate::domain::process::{self, ServerFields};
use crate::domain::service_instance::{self as si_rules, FirstProcess, Selector};
use crate::domain::template_process::HostIps;
use crate::error::{Arg, CcError, code};
use crate::limits::{
    MAX_IDS_PER_DELETE, MAX_LABEL_ADD_INSTANCES, MAX_LIST_HOST_IDS,
    MAX_SERVICE_INSTANCE_NAME_BYTES, MAX_SERVICE_INSTANCES_PER_CREATE,
};
use crate::store::records::{Host, Kind, Relation, ServiceInstance};
use crate::store::{ReadTx, Store, WriteTx};
use regex::Regex;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

pub(super) fn host_ips(h: &Host) -> HostIps<'_> {
    HostIps {
        inner: &h.bk_host_innerip,
        outer: &h.bk_host_outerip,
        inner_v6: &h.bk_host_innerip_v6,
        outer_v6: &h.bk_host_outerip_v6,
    }
}

/// `ids` without repeats, first occurrences kept in order (bk-cmdb `util.IntArrayUnique`).
fn unique(ids: &[i64]) -> Vec<i64> {
    let mut seen = BTreeSet::new();
    ids.iter().copied().filter(|i| seen.insert(*i)).collect()
}

/// An element of `processes` in `create_service_instance`: `process_template_id` and
/// `process_info` (`None` when null or absent).
struct ProcItem {
    template_id: i64,
    info: Item,
}

/// An element of `instances`.
struct NewInstance {
    host: i64,
    name: String,
    processes: Vec<ProcItem>,
}

fn decode_instances(obj: &Map<String, Value>) -> Result<Vec<NewInstance>, CcError> {
    let mut out = Vec::new();
    for v in decode::array(obj, "instances")? {
        let empty = Map::new();
        let inst = match v {
            Value::Null => &empty,
            Value::Object(m) => m,
            _ => return Err(CcError::json()),
        };
        let mut processes = Vec::new();
        for p in decode::array(inst, "processes")? {
            processes.push(match p {
                Value::Null => ProcItem {
                    template_id: 0,
                    info: None,
                },
                Value::Object(item) => ProcItem {
                    template_id: decode::int(item, "process_template_id")?,
                    info: decode::object(item, "process_info")?.cloned(),
                },
                _ => return Err(CcError::json()),
            });
        }
        out.push(NewInstance {
            host: decode::int(inst, "bk_host_id")?,
            name: decode::string(inst, "service_instance_name")?,
            processes,
        });
    }
    Ok(out)
}

/// `create_service_instance`: spec 4.3. `data` is the new ids in input order.
pub fn create(ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let obj = decode::body_object(&input.body)?;
    let biz = decode::int(obj, "bk_biz_id")?;
    let module_id = decode::int(obj, "bk_module_id")?;
    let instances = decode_instances(obj)?;
    if instances.is_empty() {
        return Err(CcError::with(code::PARAMS_NEED_SET, "service_instance_ids"));
    }
    if instances.len() > MAX_SERVICE_INSTANCES_PER_CREATE {
        return Err(CcError::exceed_limit(
            "create service instances",
            MAX_SERVICE_INSTANCES_PER_CREATE as i64,
        ));
    }
    let now = clock::format_ms(ctx.now_ms);
    let ctx = ctx.clone();
    let ids = store.write(move |tx| {
        // proc_server: the module, its business, its kind, the instances' processes, the hosts.
        let module = tx
            .module(module_id)?
            .ok_or_else(|| CcError::with(code::TOPO_GET_MODULE, "get none or multiple modules"))?;
        if module.bk_biz_id != biz {
            return Err(CcError::new(
                code::MODULE_NOT_BELONG_BIZ,
                vec![Arg::Int(module_id), Arg::Int(biz)],
            ));
        }
        if module.default != 0 {
            return Err(CcError::invalid("bk_module_id"));
        }
        let st_id = module.service_template_id;
        if st_id != 0 && tx.process_template_ids_of(st_id)?.is_empty() {
            return Err(CcError::invalid("service_template_id"));
        }
        let mut host_ids = Vec::with_capacity(instances.len());
        for inst in &instances {
            host_ids.push(inst.host);
            if st_id == 0 && inst.processes.is_empty() {
                return Err(CcError::with(code::PARAMS_NEED_SET, "instances.processes"));
            }
        }
        let outside: Vec<i64> = unique(&host_ids)
            .into_iter()
            .filter(|h| !module.hosts.contains(h))
            .collect();
        if !outside.is_empty() {
            return Err(CcError::new(
                code::HOST_MODULE_NOT_MATCH,
                vec![Arg::Ints(outside)],
            ));
        }
        // coreservice: one instance after the other (bk-cmdb runs up to ten at once; the
        // first failure in input order is answered here).
        let mut ids = Vec::with_capacity(instances.len());
        for inst in &instances {
            ids.push(create_one(tx, &ctx, &now, biz, module_id, st_id, inst)?);
        }
        // proc_server: the processes given in the request.
        let mut template_items: Vec<Item> = Vec::new();
        for (inst, &si_id) in instances.iter().zip(&ids) {
            if inst.processes.is_empty() {
                continue;
            }
            if st_id == 0 {
                create_raw_processes(tx, &ctx, &now, biz, si_id, inst)?;
            } else {
                template_items.extend(template_overrides(tx, biz, si_id, inst)?);
            }
        }
        // bk-cmdb hands them all to `updateProcessInstances`: only unlocked fields change.
        if !template_items.is_empty() {
            process_instance::update_in_tx(tx, &ctx, biz, &template_items)?;
        }
        Ok(ids)
    })?;
    Ok(Data::of(&ids))
}

/// A template instance on `host` as a sync's first step makes it (spec 2.3 step 1): through
/// the same path as `create_service_instance`, with a generated name and no process given.
pub(super) fn create_for_sync(
    tx: &mut WriteTx,
    ctx: &Ctx,
    now: &str,
    biz: i64,
    module_id: i64,
    st_id: i64,
    host: i64,
) -> Result<i64, CcError> {
    let inst = NewInstance {
        host,
        name: String::new(),
        processes: Vec::new(),
    };
    create_one(tx, ctx, now, biz, module_id, st_id, &inst)
}

/// coreservice `CreateServiceInstance`: checks, the record, the template's processes, the name.
fn create_one(
    tx: &mut WriteTx,
    ctx: &Ctx,
    now: &str,
    biz: i64,
    module_id: i64,
    st_id: i64,
    inst: &NewInstance,
) -> Result<i64, CcError> {
    if inst.name.len() > MAX_SERVICE_INSTANCE_NAME_BYTES {
        return Err(CcError::invalid("name"));
    }
    if biz == 0 || tx.business(biz)?.is_none() {
        return Err(CcError::invalid("bk_biz_id"));
    }
    if module_id == 0 || tx.module(module_id)?.is_none() {
        return Err(CcError::invalid("bk_module_id"));
    }
    let template = if st_id > 0 {
        Some(
            tx.service_template(st_id)?
                .ok_or_else(|| CcError::invalid("service_template_id"))?,
        )
    } else {
        None
    };
    let host = match inst.host {
        0 => None,
        id => tx.host(id)?,
    }
    .ok_or_else(|| CcError::invalid("bk_host_id"))?;
    if template.as_ref().is_some_and(|t| t.bk_biz_id != biz) {
        return Err(CcError::invalid("bk_biz_id"));
    }
    if st_id != 0 && tx.template_instance(module_id, inst.host, st_id)?.is_some() {
        return Err(CcError::new(
            code::SERVICE_INSTANCE_EXISTS,
            vec![Arg::Str(host.bk_host_innerip.clone())],
        ));
    }
    let id = tx.next_id(Kind::ServiceInstance)?;
    let mut si = ServiceInstance {
        bk_biz_id: biz,
        id,
        name: inst.name.clone(),
        labels: None,
        service_template_id: st_id,
        bk_host_id: inst.host,
        bk_module_id: module_id,
        creator: ctx.user.clone(),
        modifier: ctx.user.clone(),
        create_time: ctx.now_ms,
        last_time: ctx.now_ms,
        bk_supplier_account: ctx.supplier.clone(),
    };
    tx.put_service_instance(&si)?;
    let first = match st_id {
        0 => None,
        _ => Some(create_template_processes(tx, ctx, now, &si, &host)?),
    };
    if si.name.is_empty() {
        let name = si_rules::instance_name(&host_ips(&host), first.as_ref());
        if !name.is_empty() {
            si.name = name;
            tx.put_service_instance(&si)?;
        }
    }
    Ok(id)
}

/// coreservice `AutoCreateServiceInstanceModuleHost` for one host entering a template module
/// (spec topology 9.4): the instance and the processes of every process template, named as
/// `create_service_instance` names them. A template with no process template creates nothing;
/// a process the host cannot get (bk-cmdb logs the failure and goes on) skips the instance,
/// checked before anything is written. Returns the new instance's id, if any.
pub(crate) fn auto_create(
    tx: &mut WriteTx,
    ctx: &Ctx,
    now: &str,
    biz: i64,
    module_id: i64,
    st_id: i64,
    host: &Host,
) -> Result<Option<i64>, CcError> {
    let mut templates = Vec::new();
    for pt_id in tx.process_template_ids_of(st_id)? {
        if let Some(pt) = tx.process_template(pt_id)?
            && pt.bk_biz_id == biz
        {
            templates.push(pt);
        }
    }
    if templates.is_empty() {
        return Ok(None);
    }
    let ips = host_ips(host);
    for pt in &templates {
        let Ok(b) = si_rules::instantiate(&pt.property, biz, 0, &ctx.supplier, now, &ips) else {
            return Ok(None);
        };
        let mut map = b.map;
        if process::validate_create(&mut map).is_err() {
            return Ok(None);
        }
    }
    let id = tx.next_id(Kind::ServiceInstance)?;
    let mut si = ServiceInstance {
        bk_biz_id: biz,
        id,
        name: String::new(),
        labels: None,
        service_template_id: st_id,
        bk_host_id: host.bk_host_id,
        bk_module_id: module_id,
        creator: ctx.user.clone(),
        modifier: ctx.user.clone(),
        create_time: ctx.now_ms,
        last_time: ctx.now_ms,
        bk_supplier_account: ctx.supplier.clone(),
    };
    tx.put_service_instance(&si)?;
    let first = create_template_processes(tx, ctx, now, &si, host)?;
    let name = si_rules::instance_name(&ips, Some(&first));
    if !name.is_empty() {
        si.name = name;
        tx.put_service_instance(&si)?;
    }
    Ok(Some(id))
}

/// coreservice `createSvcInstProcesses`: one process per process template of the instance's
/// service template in its business, in template id order. Building a process can fail with
/// 1199006 (a bind row without port or protocol, an unknown bind-IP code); validating or
/// inserting one with 1108008. Returns what the instance name is made of.
fn create_template_processes(
    tx: &mut WriteTx,
    ctx: &Ctx,
    now: &str,
    si: &ServiceInstance,
    host: &Host,
) -> Result<FirstProcess, CcError> {
    let mut templates = Vec::new();
    for pt_id in tx.process_template_ids_of(si.service_template_id)? {
        if let Some(pt) = tx.process_template(pt_id)?
            && pt.bk_biz_id == si.bk_biz_id
        {
            templates.push(pt);
        }
    }
    if templates.is_empty() {
        return Err(CcError::invalid("service_template_id"));
    }
    let ips = host_ips(host);
    let mut built = Vec::with_capacity(templates.len());
    for pt in &templates {
        built.push(si_rules::instantiate(
            &pt.property,
            si.bk_biz_id,
            si.id,
            &ctx.supplier,
            now,
            &ips,
        )?);
    }
    let first = built[0].first.clone();
    // The batch is validated as a whole before anything is inserted; any failure is 1108008.
    let failed = || CcError::plain(code::PROC_CREATE_PROCESS);
    let mut maps = Vec::with_capacity(built.len());
    for b in built {
        let mut map = b.map;
        process::validate_create(&mut map).map_err(|_| failed())?;
        maps.push(map);
    }
    let fields = ServerFields {
        biz_id: si.bk_biz_id,
        service_instance_id: si.id,
        supplier: &ctx.supplier,
        user: &ctx.user,
        now,
    };
    for (mut map, pt) in maps.into_iter().zip(&templates) {
        let pid = tx.next_id(Kind::Process)?;
        process::stamp_insert_fields(&mut map, pid, &fields);
        if tx.process_key_conflict(&map, pid)?.is_some() {
            return Err(failed());
        }
        let rel = Relation {
            bk_biz_id: si.bk_biz_id,
            bk_process_id: pid,
            service_instance_id: si.id,
            process_template_id: pt.id,
            bk_host_id: si.bk_host_id,
            bk_supplier_account: ctx.supplier.clone(),
        };
        tx.put_process(pid, &map, &rel)?;
    }
    Ok(first)
}

/// proc_server for a raw module: the instance's processes go through `create_process_instance`
/// (spec 2.2 steps 6 to 13); an unnamed instance is then named after the first of them, as
/// sent (untrimmed).
fn create_raw_processes(
    tx: &mut WriteTx,
    ctx: &Ctx,
    now: &str,
    biz: i64,
    si_id: i64,
    inst: &NewInstance,
) -> Result<(), CcError> {
    let items: Vec<Item> = inst.processes.iter().map(|p| p.info.clone()).collect();
    process_instance::create_in_tx(tx, ctx, now, biz, si_id, &items)?;
    if !inst.name.is_empty() {
        return Ok(());
    }
    // create_in_tx refused a null process_info, so the first item is there; bk-cmdb decodes
    // it as create_process_instance left it, with the server's fields written in.
    let Some(Some(first)) = items.first() else {
        return Ok(());
    };
    let mut first = first.clone();
    process::stamp_request_fields(
        &mut first,
        &ServerFields {
            biz_id: biz,
            service_instance_id: si_id,
            supplier: &ctx.supplier,
            user: &ctx.user,
            now,
        },
    );
    let first = si_rules::decode_first_process(&first)?;
    let Some(mut si) = tx.service_instance(si_id)? else {
        return Err(CcError::plain(code::NOT_FOUND));
    };
    let host = tx.host(si.bk_host_id)?;
    let ips = host.as_ref().map(host_ips).unwrap_or_default();
    let name = si_rules::instance_name(&ips, Some(&first));
    if !name.is_empty() {
        si.name = name;
        tx.put_service_instance(&si)?;
    }
    Ok(())
}

/// proc_server for a template module: each given process is matched with the instance's
/// process of the same `process_template_id` and becomes an item of `update_process_instance`
/// (its `bk_process_id` set); items matching no template are ignored. A matched item whose
/// `process_info` is null makes bk-cmdb write into a nil map: the 1199999 answer.
fn template_overrides(
    tx: &WriteTx,
    biz: i64,
    si_id: i64,
    inst: &NewInstance,
) -> Result<Vec<Item>, CcError> {
    let mut by_template = BTreeMap::new();
    for pid in tx.process_ids_of(si_id)? {
        if let Some(rel) = tx.relation(pid)?
            && rel.bk_biz_id == biz
        {
            by_template.insert(rel.process_template_id, pid);
        }
    }
    let mut items = Vec::new();
    for p in &inst.processes {
        let Some(&pid) = by_template.get(&p.template_id) else {
            continue;
        };
        let Some(info) = &p.info else {
            return Err(CcError::with(code::INTERNAL, "proc"));
        };
        let mut info = info.clone();
        info.insert("bk_process_id".into(), Value::from(pid));
        items.push(Some(info));
    }
    Ok(items)
}

/// What the list APIs filter on.
#[derive(Default)]
struct Filter {
    biz: i64,
    /// `Some` for `list_service_instance` and `_by_host`: only this supplier's instances.
    supplier: Option<String>,
    module: Option<i64>,
    hosts: Vec<i64>,
    ids: Option<Vec<i64>>,
    name: Option<Regex>,
    selectors: Vec<si_rules::Checked>,
}

impl Filter {
    fn keeps(&self, si: &ServiceInstance) -> bool {
        si.bk_biz_id == self.biz
            && self
                .supplier
                .as_ref()
                .is_none_or(|s| &si.bk_supplier_account == s)
            && self.module.is_none_or(|m| si.bk_module_id == m)
            && (self.hosts.is_empty() || self.hosts.contains(&si.bk_host_id))
            && self.ids.as_ref().is_none_or(|ids| ids.contains(&si.id))
            && self.name.as_ref().is_none_or(|re| re.is_match(&si.name))
            && si_rules::selectors_match(&self.selectors, si.labels.as_ref())
    }

    /// The matching instances in storage (id) order, read through the narrowest index.
    fn find(&self, tx: &ReadTx) -> Result<Vec<ServiceInstance>, CcError> {
        let candidates: Option<BTreeSet<i64>> = if let Some(m) = self.module {
            Some(tx.service_instance_ids_of_module(m)?.into_iter().collect())
        } else if !self.hosts.is_empty() {
            let mut set = BTreeSet::new();
            for h in &self.hosts {
                set.extend(tx.service_instance_ids_of_host(*h)?);
            }
            Some(set)
        } else {
            self.ids.as_ref().map(|ids| ids.iter().copied().collect())
        };
        let mut out = Vec::new();
        match candidates {
            Some(ids) => {
                for id in ids {
                    if let Some(si) = tx.service_instance(id)?
                        && self.keeps(&si)
                    {
                        out.push(si);
                    }
                }
            }
            None => tx.scan::<ServiceInstance>(|_, si| {
                if self.keeps(&si) {
                    out.push(si);
                }
                Ok(true)
            })?,
        }
        Ok(out)
    }
}

/// `selectors`: `[{key, operator, values}]` as Go decodes `selector.Selectors`.
fn decode_selectors(obj: &Map<String, Value>) -> Result<Vec<Selector>, CcError> {
    let mut out = Vec::new();
    for v in decode::array(obj, "selectors")? {
        let empty = Map::new();
        let s = match v {
            Value::Null => &empty,
            Value::Object(m) => m,
            _ => return Err(CcError::json()),
        };
        out.push(Selector {
            key: decode::string(s, "key")?,
            operator: decode::string(s, "operator")?,
            values: decode::string_array(s, "values")?,
        });
    }
    Ok(out)
}

/// `search_key` (a `*string`): null or absent is no search.
fn search_key(obj: &Map<String, Value>) -> Result<Option<String>, CcError> {
    match decode::get(obj, "search_key") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(CcError::json()),
    }
}

/// The `name` filter of a search key: bk-cmdb hands `.*<key>.*` to MongoDB as a regular
/// expression, unescaped; a pattern that does not compile fails the query (1199017).
fn name_regex(key: Option<&str>) -> Result<Option<Regex>, CcError> {
    key.map(|k| Regex::new(&format!(".*{k}.*")).map_err(|_| CcError::plain(code::DB_SELECT)))
        .transpose()
}

/// A service instance's value for a sort field: its JSON, with its times as dates.
fn sort_value(si: &ServiceInstance, field: &str) -> SortValue {
    match field {
        "create_time" => SortValue::Date(si.create_time),
        "last_time" => SortValue::Date(si.last_time),
        _ => SortValue::at(&serde_json::to_value(si).unwrap_or(Value::Null), field),
    }
}

/// coreservice `ListServiceInstance`: a business is required (1199006), then the selectors
/// (1199006 naming `operator`, `values` or `key`); the search key and the sort can still fail
/// the query (1199017). `count` ignores paging; a negative start fails the query.
fn list_instances(
    store: &Store,
    mut filter: Filter,
    search: Option<&str>,
    selectors: &[Selector],
    page: &Page,
) -> Result<Data, CcError> {
    if filter.biz == 0 {
        return Err(CcError::invalid("bk_biz_id"));
    }
    filter.selectors = si_rules::check_selectors(selectors)?;
    filter.name = name_regex(search)?;
    let keys = page::parse_sort(&page.sort)?;
    if page.start < 0 {
        return Err(CcError::plain(code::DB_SELECT));
    }
    let found = store.read(|tx| filter.find(tx))?;
    let count = found.len();
    let info = page::window(page::sort(found, &keys, sort_value), page.start, page.limit);
    Ok(Data::of(&Listing { count, info }))
}

/// `list_service_instance`: spec 4.4.
pub fn list(ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let obj = decode::body_object(&input.body)?;
    let biz = decode::int(obj, "bk_biz_id")?;
    let module = decode::int(obj, "bk_module_id")?;
    let hosts = decode::int_array(obj, "bk_host_ids")?;
    let page = Page::decode(obj, "page")?;
    let search = search_key(obj)?;
    let selectors = decode_selectors(obj)?;
    if hosts.len() > MAX_LIST_HOST_IDS {
        return Err(CcError::exceed_limit(
            "search service instances",
            MAX_LIST_HOST_IDS as i64,
        ));
    }
    if page.validate(false).is_err() {
        return Err(CcError::plain(code::PAGE_LIMIT_EXCEEDED));
    }
    let filter = Filter {
        biz,
        supplier: Some(ctx.supplier.clone()),
        module: (module != 0).then_some(module),
        hosts,
        ..Filter::default()
    };
    list_instances(store, filter, search.as_deref(), &selectors, &page)
}

/// `list_service_instance_by_host`: the instances of one host; its page is not validated
/// (limit 0 is everything, a negative limit its absolute value, a negative start 1199017).
pub fn list_by_host(ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let obj = decode::body_object(&input.body)?;
    let biz = decode::int(obj, "bk_biz_id")?;
    let host = decode::int(obj, "bk_host_id")?;
    let search = search_key(obj)?;
    let selectors = decode_selectors(obj)?;
    let page = Page::decode(obj, "page")?;
    if host == 0 {
        return Err(CcError::plain(code::HTTP_INPUT_INVALID));
    }
    let filter = Filter {
        biz,
        supplier: Some(ctx.supplier.clone()),
        hosts: vec![host],
        ..Filter::default()
    };
    list_instances(store, filter, search.as_deref(), &selectors, &page)
}

/// One process of an instance in `list_service_instance_detail`.
#[derive(Serialize)]
struct ProcessInstanceNg {
    process: si_rules::ProcessOut,
    relation: Relation,
}

#[derive(Serialize)]
struct Detail {
    #[serde(flatten)]
    instance: ServiceInstance,
    process_instances: Option<Vec<ProcessInstanceNg>>,
}

/// `list_service_instance_detail`: spec 4.4.
pub fn list_detail(_ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let obj = decode::body_object(&input.body)?;
    let biz = decode::int(obj, "bk_biz_id")?;
    let module = decode::int(obj, "bk_module_id")?;
    let host = decode::int(obj, "bk_host_id")?;
    let host_list = decode::int_array(obj, "bk_host_list")?;
    let ids = match decode::get(obj, "service_instance_ids") {
        None | Some(Value::Null) => None,
        Some(_) => Some(decode::int_array(obj, "service_instance_ids")?),
    };
    let selectors = decode_selectors(obj)?;
    let mut page = Page::decode(obj, "page")?;
    if page.validate(false).is_err() {
        return Err(CcError::plain(code::PAGE_LIMIT_EXCEEDED));
    }
    if page.sort.is_empty() {
        page.sort = "-create_time".into();
    }
    if biz <= 0 {
        return Err(CcError::invalid("bk_biz_id"));
    }
    if page.is_illegal() {
        return Err(CcError::plain(code::PAGE_LIMIT_EXCEEDED));
    }
    if host > 0 && !host_list.is_empty() {
        return Err(CcError::invalid(
            "bk_host_id and bk_host_list cannot be set at the same time",
        ));
    }
    let filter = Filter {
        biz,
        module: (module > 0).then_some(module),
        hosts: if host > 0 { vec![host] } else { host_list },
        ids,
        selectors: si_rules::check_selectors(&selectors)?,
        ..Filter::default()
    };
    let keys = page::parse_sort(&page.sort)?;
    let (count, info) = store.read(|tx| {
        let found = filter.find(tx)?;
        let count = found.len();
        let mut info = Vec::new();
        for si in page::window(page::sort(found, &keys, sort_value), page.start, page.limit) {
            let mut procs = Vec::new();
            for pid in tx.process_ids_of(si.id)? {
                let (Some(relation), Some(map)) = (tx.relation(pid)?, tx.process(pid)?) else {
                    continue;
                };
                procs.push(ProcessInstanceNg {
                    process: si_rules::process_out(&map)?,
                    relation,
                });
            }
            info.push(Detail {
                instance: si,
                process_instances: (!procs.is_empty()).then_some(procs),
            });
        }
        Ok((count, info))
    })?;
    Ok(Data::of(&Listing { count, info }))
}

/// `delete_service_instance`: every id must be an instance of the business (1199006, repeats
/// included); its relations, processes and the instance go in one transaction. `data` is null.
pub fn delete(_ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let obj = decode::body_object(&input.body)?;
    let biz = decode::int(obj, "bk_biz_id")?;
    let ids = decode::int_array(obj, "service_instance_ids")?;
    if ids.is_empty() {
        return Err(CcError::with(code::PARAMS_NEED_SET, "service_instance_ids"));
    }
    if ids.len() > MAX_IDS_PER_DELETE {
        return Err(CcError::exceed_limit(
            "delete service instance",
            MAX_IDS_PER_DELETE as i64,
        ));
    }
    store.write(move |tx| {
        let mut found = 0;
        for id in unique(&ids) {
            if tx
                .service_instance(id)?
                .is_some_and(|si| si.bk_biz_id == biz)
            {
                found += 1;
            }
        }
        if found != ids.len() {
            return Err(CcError::invalid("service_instance_ids"));
        }
        for id in unique(&ids) {
            for pid in tx.process_ids_of(id)? {
                tx.delete_process(pid)?;
            }
            tx.delete_service_instance(id)?;
        }
        Ok(())
    })?;
    Ok(Data::null())
}

/// The labels of a label request (`map[string]string`): a null value is `""`.
fn decode_labels(obj: &Map<String, Value>) -> Result<Option<BTreeMap<String, String>>, CcError> {
    let Some(m) = decode::object(obj, "labels")? else {
        return Ok(None);
    };
    m.iter()
        .map(|(k, v)| match v {
            Value::Null => Ok((k.clone(), String::new())),
            Value::String(s) => Ok((k.clone(), s.clone())),
            _ => Err(CcError::json()),
        })
        .collect::<Result<_, _>>()
        .map(Some)
}

/// The checks both label requests make inside the transaction: a business (1199006, from
/// bk-cmdb's audit read), then every id an existing instance of any business (1199006
/// `instance_ids`). Returns the ids without repeats.
fn label_targets(tx: &WriteTx, biz: i64, ids: &[i64]) -> Result<Vec<i64>, CcError> {
    if biz == 0 {
        return Err(CcError::invalid("bk_biz_id"));
    }
    let ids = unique(ids);
    for &id in &ids {
        if tx.service_instance(id)?.is_none() {
            return Err(CcError::invalid("instance_ids"));
        }
    }
    Ok(ids)
}

/// `add_label_for_service_instance`: merges `labels` into each instance's labels. As in
/// bk-cmdb, the instances are found by id alone; `bk_biz_id` must only be non-zero.
pub fn add_labels(_ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let obj = decode::body_object(&input.body)?;
    let biz = decode::int(obj, "bk_biz_id")?;
    let ids = decode::int_array(obj, "instance_ids")?;
    let labels = decode_labels(obj)?;
    if ids.is_empty() {
        return Err(CcError::with(code::PARAMS_NEED_SET, "instanceIDs"));
    }
    if ids.len() > MAX_LABEL_ADD_INSTANCES {
        return Err(CcError::exceed_limit(
            "add labels",
            MAX_LABEL_ADD_INSTANCES as i64,
        ));
    }
    store.write(move |tx| {
        if biz == 0 {
            return Err(CcError::invalid("bk_biz_id"));
        }
        if let Some(l) = &labels {
            si_rules::validate_labels(l)?;
        }
        for id in label_targets(tx, biz, &ids)? {
            let Some(mut si) = tx.service_instance(id)? else {
                continue;
            };
            si.labels = match (si.labels.take(), &labels) {
                (Some(mut have), Some(add)) => {
                    have.extend(add.iter().map(|(k, v)| (k.clone(), v.clone())));
                    Some(have)
                }
                (Some(have), None) => Some(have),
                (None, add) => add.clone(),
            };
            tx.put_service_instance(&si)?;
        }
        Ok(())
    })?;
    Ok(Data::null())
}

/// `remove_label_from_service_instance`: removes `keys` from each instance's labels; an
/// instance without labels gets an empty map, as in bk-cmdb.
pub fn remove_labels(_ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let obj = decode::body_object(&input.body)?;
    let biz = decode::int(obj, "bk_biz_id")?;
    let ids = decode::int_array(obj, "instance_ids")?;
    let keys = decode::string_array(obj, "keys")?;
    if ids.is_empty() {
        return Err(CcError::with(code::PARAMS_NEED_SET, "InstanceIDs"));
    }
    if ids.len() > MAX_IDS_PER_DELETE {
        return Err(CcError::exceed_limit(
            "remove labels",
            MAX_IDS_PER_DELETE as i64,
        ));
    }
    store.write(move |tx| {
        for id in label_targets(tx, biz, &ids)? {
            let Some(mut si) = tx.service_instance(id)? else {
                continue;
            };
            let mut labels = si.labels.take().unwrap_or_default();
            for k in &keys {
                labels.remove(k);
            }
            si.labels = Some(labels);
            tx.put_service_instance(&si)?;
        }
        Ok(())
    })?;
    Ok(Data::null())
}
