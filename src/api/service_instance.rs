//! Service instances: `create_service_instance` (spec 4.3), `list_service_instance`,
//! `list_service_instance_by_host`, `list_service_instance_detail`, `delete_service_instance`
//! (spec 4.4), `add_label_for_service_instance` and `remove_label_from_service_instance`
//! (bk-cmdb proc_server `serviceinstance.go`, coreservice `process/service_instance.go` and
//! `label/label.go`).

use super::process_instance::{self, Item};
use super::process_lifecycle;
use super::{Ctx, Data, Input, Listing};
use crate::clock;
use crate::domain::bound_process::HostIps;
use crate::domain::decode;
use crate::domain::page::{self, Page, SortValue};
use crate::domain::process::{self, ServerFields};
use crate::domain::service_instance::{
    self as si_rules, Candidate, Filter, FirstProcess, Selector,
};
use crate::error::{Arg, CcError, code};
use crate::limits::{
    MAX_IDS_PER_DELETE, MAX_LABEL_ADD_INSTANCES, MAX_LIST_HOST_IDS,
    MAX_SERVICE_INSTANCE_NAME_BYTES, MAX_SERVICE_INSTANCES_PER_CREATE,
};
use crate::store::records::{Host, Kind, Relation, ServiceInstance};
use crate::store::{ReadTx, Store, WriteTx};
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
    super::one_to_max(
        instances.len(),
        "service_instance_ids",
        "create service instances",
        MAX_SERVICE_INSTANCES_PER_CREATE,
    )?;
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
        let at = InModule {
            ctx: &ctx,
            now: &now,
            biz,
            module_id,
            st_id,
        };
        let mut ids = Vec::with_capacity(instances.len());
        for inst in &instances {
            ids.push(create_one(tx, &at, inst)?);
        }
        // proc_server: the processes given in the request.
        let mut template_items: Vec<Item> = Vec::new();
        for (inst, &si_id) in instances.iter().zip(&ids) {
            if inst.processes.is_empty() {
                continue;
            }
            if st_id == 0 {
                create_raw_processes(tx, &at, si_id, inst)?;
            } else {
                template_items.extend(template_overrides(tx, biz, si_id, inst)?);
            }
        }
        // bk-cmdb hands them all to `updateProcessInstances`: only unlocked fields change.
        if !template_items.is_empty() {
            process_lifecycle::update_in_tx(tx, &ctx, biz, &template_items)?;
        }
        Ok(ids)
    })?;
    Ok(Data::of(&ids))
}

/// Where service instances are made: a module of a business (and its service template, 0 for
/// none), by the request `ctx` at its time `now`.
#[derive(Clone, Copy)]
pub(crate) struct InModule<'a> {
    pub ctx: &'a Ctx,
    pub now: &'a str,
    pub biz: i64,
    pub module_id: i64,
    pub st_id: i64,
}

/// A template instance on `host` as a sync's first step makes it (spec 2.3 step 1): through
/// the same path as `create_service_instance`, with a generated name and no process given.
pub(super) fn create_for_sync(tx: &mut WriteTx, at: &InModule, host: i64) -> Result<i64, CcError> {
    let inst = NewInstance {
        host,
        name: String::new(),
        processes: Vec::new(),
    };
    create_one(tx, at, &inst)
}

/// coreservice `CreateServiceInstance`: checks, the record, the template's processes, the name.
fn create_one(tx: &mut WriteTx, at: &InModule, inst: &NewInstance) -> Result<i64, CcError> {
    let &InModule {
        ctx,
        now,
        biz,
        module_id,
        st_id,
    } = at;
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
    at: &InModule,
    host: &Host,
) -> Result<Option<i64>, CcError> {
    let &InModule {
        ctx,
        now,
        biz,
        module_id,
        st_id,
    } = at;
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
    at: &InModule,
    si_id: i64,
    inst: &NewInstance,
) -> Result<(), CcError> {
    let (ctx, now, biz) = (at.ctx, at.now, at.biz);
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

/// The fields of a stored instance that a [`Filter`] looks at.
fn candidate(si: &ServiceInstance) -> Candidate<'_> {
    Candidate {
        biz: si.bk_biz_id,
        supplier: &si.bk_supplier_account,
        module: si.bk_module_id,
        host: si.bk_host_id,
        id: si.id,
        name: &si.name,
        labels: si.labels.as_ref(),
    }
}

/// The instances `filter` keeps, in storage (id) order, read through the narrowest index.
fn find(filter: &Filter, tx: &ReadTx) -> Result<Vec<ServiceInstance>, CcError> {
    let candidates: Option<BTreeSet<i64>> = if let Some(m) = filter.module {
        Some(tx.service_instance_ids_of_module(m)?.into_iter().collect())
    } else if !filter.hosts.is_empty() {
        let mut set = BTreeSet::new();
        for h in &filter.hosts {
            set.extend(tx.service_instance_ids_of_host(*h)?);
        }
        Some(set)
    } else {
        filter.ids.as_ref().map(|ids| ids.iter().copied().collect())
    };
    let mut out = Vec::new();
    match candidates {
        Some(ids) => {
            for id in ids {
                if let Some(si) = tx.service_instance(id)?
                    && filter.keeps(&candidate(&si))
                {
                    out.push(si);
                }
            }
        }
        None => out = tx.select::<ServiceInstance>(|si| filter.keeps(&candidate(si)))?,
    }
    Ok(out)
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
    filter.name = si_rules::name_regex(search)?;
    let keys = page::parse_sort(&page.sort)?;
    if page.start < 0 {
        return Err(CcError::plain(code::DB_SELECT));
    }
    let found = store.read(|tx| find(&filter, tx))?;
    let (count, info) = page.count_and_window(found, &keys, sort_value);
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

/// `list_service_instance_detail`: spec 4.4 (built whole; `http` streams it instead).
pub fn list_detail(_ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    super::streamed::call_whole(super::Op::ListServiceInstanceDetail, store, input)
}

/// `list_service_instance_detail`'s request, decoded and checked; run on a snapshot, it lists
/// the page (`streamed.rs`).
pub(super) fn detail_query(input: &Input) -> Result<super::streamed::Query, CcError> {
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
    Ok(Box::new(move |tx: &ReadTx| {
        let found = find(&filter, tx)?;
        let (count, items) = page.count_and_window(found, &keys, sort_value);
        Ok(super::streamed::Listed {
            head: format!("{{\"count\":{count},\"info\":[").into_bytes(),
            pieces: Box::new(Details {
                items: items.into_iter(),
                open: None,
                first: true,
            }),
            tail: "]}",
            ended: false,
        })
    }))
}

/// The pieces of `list_service_instance_detail`: each instance's own fields, then each of its
/// processes, then the end of its `process_instances` (`null` when it has none).
struct Details {
    items: std::vec::IntoIter<ServiceInstance>,
    /// The instance being written: its process ids still to write, and whether one was.
    open: Option<(std::vec::IntoIter<i64>, bool)>,
    first: bool,
}

impl super::streamed::Pieces for Details {
    fn next(&mut self, tx: &ReadTx, out: &mut Vec<u8>) -> Result<bool, CcError> {
        let Some((pids, any)) = &mut self.open else {
            let Some(si) = self.items.next() else {
                return Ok(false);
            };
            if !std::mem::take(&mut self.first) {
                out.push(b',');
            }
            // `Detail` flattens the instance: its fields, then `process_instances`.
            let fields = Data::of(&si).0;
            out.extend_from_slice(fields.strip_suffix('}').unwrap_or(&fields).as_bytes());
            out.extend_from_slice(b",\"process_instances\":");
            self.open = Some((tx.process_ids_of(si.id)?.into_iter(), false));
            return Ok(true);
        };
        for pid in pids.by_ref() {
            let (Some(relation), Some(map)) = (tx.relation(pid)?, tx.process(pid)?) else {
                continue;
            };
            let piece = ProcessInstanceNg {
                process: si_rules::process_out(&map)?,
                relation,
            };
            out.push(if std::mem::replace(any, true) {
                b','
            } else {
                b'['
            });
            out.extend_from_slice(Data::of(&piece).0.as_bytes());
            return Ok(true);
        }
        out.extend_from_slice(if *any { b"]}" } else { b"null}" });
        self.open = None;
        Ok(true)
    }
}

/// `delete_service_instance`: every id must be an instance of the business (1199006, repeats
/// included); its relations, processes and the instance go in one transaction. `data` is null.
pub fn delete(_ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let obj = decode::body_object(&input.body)?;
    let biz = decode::int(obj, "bk_biz_id")?;
    let ids = decode::int_array(obj, "service_instance_ids")?;
    super::one_to_max(
        ids.len(),
        "service_instance_ids",
        "delete service instance",
        MAX_IDS_PER_DELETE,
    )?;
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
    super::one_to_max(
        ids.len(),
        "instanceIDs",
        "add labels",
        MAX_LABEL_ADD_INSTANCES,
    )?;
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
    super::one_to_max(
        ids.len(),
        "InstanceIDs",
        "remove labels",
        MAX_IDS_PER_DELETE,
    )?;
    store.write::<_, CcError>(move |tx| {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An item of `list_service_instance_detail` as one value: what [`Details`] writes in pieces.
    #[derive(Serialize)]
    struct Detail {
        #[serde(flatten)]
        instance: ServiceInstance,
        process_instances: Option<Vec<ProcessInstanceNg>>,
    }

    /// The pieces `Details` writes for an instance are the text of the whole item.
    #[test]
    fn a_detail_in_pieces_is_the_detail_whole() {
        let instance = ServiceInstance {
            bk_biz_id: 3,
            id: 7,
            name: "a<b>&c".into(),
            labels: Some(BTreeMap::from([("k".into(), "v".into())])),
            service_template_id: 0,
            bk_host_id: 9,
            bk_module_id: 11,
            creator: "admin".into(),
            modifier: "admin".into(),
            create_time: 1_700_000_000_123,
            last_time: 1_700_000_000_456,
            bk_supplier_account: "0".into(),
        };
        let fields = Data::of(&instance).0;
        let head = fields.strip_suffix('}').unwrap_or(&fields);
        let whole = Data::of(&Detail {
            instance,
            process_instances: None,
        })
        .0;
        assert_eq!(format!("{head},\"process_instances\":null}}"), whole);
    }
}
