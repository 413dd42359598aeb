//! Service-template synchronisation (events-sync spec 2.2 to 2.4; bk-cmdb proc_server
//! `servicetemplate.go` `GetServiceTemplateSyncStatus`, `serviceinstance.go`
//! `SyncServiceInstanceByTemplate`, `FindServiceTemplateSyncStatus`):
//! `list_service_template_difference`, `sync_service_template_to_service_instance` and
//! `list_service_template_sync_status`.
//!
//! bk-cmdb queues a sync as one task per module and answers `data: null` at once; here the
//! whole sync runs in one write transaction before the answer (still `data: null`), so a client
//! never sees a half-synced module, and the sync status reports it finished.

use super::process_lifecycle::detail_biz;
use super::service_instance::{InModule, create_for_sync, host_ips};
use super::{Ctx, Data, Input};
use crate::clock;
use crate::domain::decode;
use crate::domain::process::{self, ServerFields};
use crate::domain::process_update;
use crate::domain::service_instance as si_rules;
use crate::domain::template_sync::{self, ModuleCounts, ProcRef, TemplateRef};
use crate::error::{CcError, code};
use crate::limits::{MAX_SYNC_GROUPED_PROCESSES, MAX_SYNC_MODULES, MAX_SYNC_STATUS_IDS};
use crate::store::records::{Kind, Module, ProcessTemplate, Relation};
use crate::store::{ReadTx, Store, WriteTx};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// `ids` without repeats, in ascending order (MongoDB's `$in`).
fn id_set(ids: &[i64]) -> Vec<i64> {
    ids.iter()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The process templates of `st`, in id order; only those of `biz` if given.
fn templates_of(tx: &ReadTx, st: i64, biz: Option<i64>) -> Result<Vec<ProcessTemplate>, CcError> {
    let mut out = Vec::new();
    for id in tx.process_template_ids_of(st)? {
        if let Some(pt) = tx.process_template(id)?
            && biz.is_none_or(|b| pt.bk_biz_id == b)
        {
            out.push(pt);
        }
    }
    Ok(out)
}

/// `need_sync` of `module` (bound to template `st` of business `biz`, already checked by the
/// caller's query): spec 2.2 "per module". Instances are read one at a time and the first that
/// differs ends the search, so memory does not grow with the module.
fn module_needs_sync(
    tx: &ReadTx,
    biz: i64,
    module: &Module,
    template_name: &str,
    templates: &[ProcessTemplate],
) -> Result<bool, CcError> {
    let st = module.service_template_id;
    let mut instances = Vec::new();
    for si_id in tx.service_instance_ids_of_module(module.bk_module_id)? {
        if let Some(si) = tx.service_instance(si_id)?
            && si.bk_biz_id == biz
            && si.service_template_id == st
        {
            instances.push((si.id, si.bk_host_id));
        }
    }
    let hosts = if module.bk_biz_id == biz {
        module.hosts.iter().collect::<BTreeSet<_>>().len()
    } else {
        0
    };
    let counts = ModuleCounts {
        module_name: &module.bk_module_name,
        template_name,
        hosts,
        templates: templates.len(),
        instances: instances.len(),
    };
    if let Some(need) = template_sync::module_needs_sync_by_counts(&counts) {
        return Ok(need);
    }
    let refs = template_refs(templates);
    let mut any_process = false;
    for (si, host_id) in instances {
        let procs: Vec<_> = processes_of(tx, si)?
            .into_iter()
            .map(|(pid, rel, map)| (pid, rel.process_template_id, map))
            .collect();
        any_process |= !procs.is_empty();
        let proc_refs = proc_refs(&procs);
        let host = tx.host(host_id)?;
        if template_sync::instance_needs_sync(
            &refs,
            &proc_refs,
            host.as_ref().map(host_ips).as_ref(),
        ) {
            return Ok(true);
        }
    }
    Ok(!any_process)
}

/// `need_sync` of each module in `modules` (all of business `biz`, bound to a template), by
/// module id; modules whose template is not a template of `biz` are left out.
fn modules_need_sync(
    tx: &ReadTx,
    biz: i64,
    modules: &[Module],
) -> Result<BTreeMap<i64, (i64, bool)>, CcError> {
    let mut templates: BTreeMap<i64, Option<(String, Vec<ProcessTemplate>)>> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for m in modules {
        let st = m.service_template_id;
        let entry = match templates.entry(st) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(match tx.service_template(st)? {
                Some(t) if t.bk_biz_id == biz => Some((t.name, templates_of(tx, st, None)?)),
                _ => None,
            }),
        };
        let Some((name, pts)) = entry else {
            continue;
        };
        let need = module_needs_sync(tx, biz, m, name, pts)?;
        out.insert(m.bk_module_id, (st, need));
    }
    Ok(out)
}

#[derive(Serialize)]
struct TemplateStatus {
    service_template_id: i64,
    need_sync: bool,
}

#[derive(Serialize)]
struct ModuleStatus {
    bk_module_id: i64,
    need_sync: bool,
}

#[derive(Serialize)]
struct Difference {
    service_templates: Option<Vec<TemplateStatus>>,
    modules: Option<Vec<ModuleStatus>>,
}

/// `list_service_template_difference`: `POST …/service_template/sync_status/biz/{bk_biz_id}`
/// with `{service_template_ids, bk_module_ids, is_partial}`.
pub fn difference(_ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let biz = detail_biz(input)?;
    if biz <= 0 {
        return Err(CcError::with(code::PARAMS_IS_INVALID, "bk_biz_id"));
    }
    let obj = decode::body_object(&input.body)?;
    let template_ids = decode::int_array(obj, "service_template_ids")?;
    let module_ids = decode::int_array(obj, "bk_module_ids")?;
    let partial = decode::boolean(obj, "is_partial")?;
    let (key, ids) = if partial {
        ("service_template_ids", &template_ids)
    } else {
        ("bk_module_ids", &module_ids)
    };
    if ids.is_empty() {
        return Err(CcError::with(code::PARAMS_NEED_SET, key));
    }
    if ids.len() > MAX_SYNC_STATUS_IDS {
        return Err(CcError::exceed_limit(key, MAX_SYNC_STATUS_IDS as i64));
    }
    let wanted: BTreeSet<i64> = ids.iter().copied().collect();
    let statuses = store.read(|tx| {
        let mut modules = Vec::new();
        if partial {
            modules = tx.select::<Module>(|m| {
                m.bk_biz_id == biz && wanted.contains(&m.service_template_id)
            })?;
        } else {
            for &id in &wanted {
                if let Some(m) = tx.module(id)?
                    && m.bk_biz_id == biz
                    && m.service_template_id != 0
                {
                    modules.push(m);
                }
            }
        }
        modules_need_sync(tx, biz, &modules)
    })?;
    let answer = if partial {
        let mut by_template: BTreeMap<i64, bool> = BTreeMap::new();
        for (st, need) in statuses.values() {
            *by_template.entry(*st).or_default() |= need;
        }
        let list = by_template
            .into_iter()
            .rev()
            .map(|(service_template_id, need_sync)| TemplateStatus {
                service_template_id,
                need_sync,
            })
            .collect();
        Difference {
            service_templates: Some(list),
            modules: None,
        }
    } else {
        let list = statuses
            .into_iter()
            .map(|(bk_module_id, (_, need_sync))| ModuleStatus {
                bk_module_id,
                need_sync,
            })
            .collect();
        Difference {
            service_templates: None,
            modules: Some(list),
        }
    };
    Ok(Data::of(&answer))
}

/// One item of `list_service_template_sync_status` (bk-cmdb `APITaskSyncStatus`, empty strings
/// left out; Go's zero time where the module carries none).
#[derive(Serialize)]
struct SyncStatus {
    bk_inst_id: i64,
    status: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    creator: String,
    create_time: String,
    last_time: String,
}

/// Go's zero `time.Time` as JSON: what bk-cmdb answers for a module without times.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// A stored process: its id, relation and map.
type Stored = (i64, Relation, Map<String, Value>);

/// A service instance's processes with their relations, in id order; one without its relation
/// or record is 1199006 (`bk_process_id`).
fn processes_of<T: crate::store::read::Snapshot>(
    tx: &crate::store::Tx<T>,
    si: i64,
) -> Result<Vec<Stored>, CcError> {
    let mut out = Vec::new();
    for pid in tx.process_ids_of(si)? {
        let (Some(rel), Some(map)) = (tx.relation(pid)?, tx.process(pid)?) else {
            return Err(CcError::invalid("bk_process_id"));
        };
        out.push((pid, rel, map));
    }
    Ok(out)
}

/// The process templates as the sync rules see them.
fn template_refs(templates: &[ProcessTemplate]) -> Vec<TemplateRef<'_>> {
    templates
        .iter()
        .map(|pt| TemplateRef {
            id: pt.id,
            property: &pt.property,
        })
        .collect()
}

/// The processes as the sync rules see them: (id, process template id, map).
fn proc_refs(procs: &[(i64, i64, Map<String, Value>)]) -> Vec<ProcRef<'_>> {
    procs
        .iter()
        .map(|(id, template_id, map)| ProcRef {
            id: *id,
            template_id: *template_id,
            map,
        })
        .collect()
}

/// The template and modules of a sync or its status, checked as bk-cmdb checks them: modules
/// (1199010), the template (1199010), at most `MAX_SYNC_MODULES` modules (1199035).
fn check_sync_args(st: i64, module_ids: &[i64]) -> Result<(), CcError> {
    if module_ids.is_empty() {
        return Err(CcError::with(code::PARAMS_NEED_SET, "bk_module_ids"));
    }
    if st == 0 {
        return Err(CcError::with(code::PARAMS_NEED_SET, "service_template_id"));
    }
    if module_ids.len() > MAX_SYNC_MODULES {
        return Err(CcError::exceed_limit(
            "bk_module_ids",
            MAX_SYNC_MODULES as i64,
        ));
    }
    Ok(())
}

/// `list_service_template_sync_status`: `POST …/service_template_sync_status/bk_biz_id/{id}`
/// with `{service_template_id, bk_module_ids}`. Every sync here finishes before it is
/// answered, so no task history is kept: each module is reported as bk-cmdb reports a module
/// without one, `need_sync` or `finished` from its current state.
pub fn sync_status(_ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let biz = detail_biz(input)?;
    let obj = decode::body_object(&input.body)?;
    let module_ids = decode::int_array(obj, "bk_module_ids")?;
    let st = decode::int(obj, "service_template_id")?;
    check_sync_args(st, &module_ids)?;
    let items = store.read::<_, CcError>(|tx| {
        let mut found = Vec::new();
        let mut matching = Vec::new();
        for id in id_set(&module_ids) {
            let Some(m) = tx.module(id)? else {
                continue;
            };
            if m.bk_biz_id == biz && m.service_template_id == st {
                matching.push(m.clone());
            }
            found.push(m);
        }
        let need = modules_need_sync(tx, biz, &matching)?;
        Ok(found
            .into_iter()
            .map(|m| {
                let needs = need.get(&m.bk_module_id).is_some_and(|(_, n)| *n);
                SyncStatus {
                    bk_inst_id: m.bk_module_id,
                    status: if needs { "need_sync" } else { "finished" },
                    creator: String::new(),
                    create_time: ZERO_TIME.into(),
                    last_time: ZERO_TIME.into(),
                }
            })
            .collect::<Vec<_>>())
    })?;
    Ok(Data::of(&items))
}

/// `sync_service_template_to_service_instance`: `PUT …/update/proc/service_instance/sync` with
/// `{bk_biz_id, service_template_id, bk_module_ids}`. bk-cmdb checks nothing else before
/// answering: a module that does not exist, is of another business or has no hosts is synced
/// as nothing. A module whose sync fails (bk-cmdb's task would end in `failure`, possibly half
/// applied) is left untouched here; the others are synced; the answer is `null` either way.
pub fn sync(ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let obj = decode::body_object(&input.body)?;
    let biz = decode::int(obj, "bk_biz_id")?;
    let st = decode::int(obj, "service_template_id")?;
    let module_ids = decode::int_array(obj, "bk_module_ids")?;
    if biz == 0 {
        return Err(CcError::with(code::PARAMS_NEED_SET, "bk_biz_id"));
    }
    check_sync_args(st, &module_ids)?;
    let now = clock::format_ms(ctx.now_ms);
    let mut modules = id_set(&module_ids);
    // A large sync holds the store alone: a group commit's undo log would keep a copy of every
    // process it changes (memory growing with the module), a transaction of its own needs none.
    let size = {
        let modules = modules.clone();
        store.read(move |tx| sync_size(tx, biz, st, &modules))?
    };
    let alone = size > MAX_SYNC_GROUPED_PROCESSES;
    // A failing module takes back the whole transaction; it is then left out and the rest run
    // again, so at most one run per module.
    loop {
        let failed = Arc::new(Mutex::new(None));
        let job = {
            let (ctx, now, modules, failed) = (
                ctx.clone(),
                now.clone(),
                modules.clone(),
                Arc::clone(&failed),
            );
            move |tx: &mut WriteTx| {
                for &module_id in &modules {
                    let at = InModule {
                        ctx: &ctx,
                        now: &now,
                        biz,
                        module_id,
                        st_id: st,
                    };
                    if let Err(e) = sync_module(tx, &at) {
                        if let Ok(mut f) = failed.lock() {
                            *f = Some(module_id);
                        }
                        return Err(e);
                    }
                }
                Ok(())
            }
        };
        let result = if alone {
            store.write_alone(job)
        } else {
            store.write(job)
        };
        let failed = failed.lock().ok().and_then(|f| *f);
        match (result, failed) {
            (Ok(()), _) => return Ok(Data::null()),
            (Err(e), Some(m)) if is_business_error(&e) => modules.retain(|x| *x != m),
            (Err(e), _) => return Err(e),
        }
    }
}

/// About how many processes a sync of `modules` writes: hosts times the template's process
/// templates (at least one), per module of the business.
fn sync_size(tx: &ReadTx, biz: i64, st: i64, modules: &[i64]) -> Result<usize, CcError> {
    let templates = templates_of(tx, st, Some(biz))?.len().max(1);
    let mut size = 0usize;
    for &m in modules {
        if let Some(module) = tx.module(m)?
            && module.bk_biz_id == biz
        {
            size = size.saturating_add(module.hosts.len().saturating_mul(templates));
        }
    }
    Ok(size)
}

/// A refusal of the sync's own rules, as opposed to a failing store (which fails the request).
fn is_business_error(e: &CcError) -> bool {
    use crate::error::code::{DB_INSERT, DB_SELECT, DB_UPDATE};
    !matches!(e.code, DB_SELECT | DB_INSERT | DB_UPDATE)
}

/// The host sub-tasks of one module's sync (spec 2.3 steps 1 to 6), all hosts in one go. The
/// module sub-task changes nothing: cmdb-lite has no service-template attributes.
fn sync_module(tx: &mut WriteTx, at: &InModule) -> Result<(), CcError> {
    let (biz, st, module_id) = (at.biz, at.st_id, at.module_id);
    let Some(module) = tx.module(module_id)? else {
        return Ok(());
    };
    if module.bk_biz_id != biz {
        return Ok(());
    }
    let hosts: BTreeSet<i64> = module.hosts.iter().copied().collect();
    if hosts.is_empty() {
        return Ok(());
    }
    let mut templates = Vec::new();
    for id in tx.process_template_ids_of(st)? {
        if let Some(pt) = tx.process_template(id)?
            && pt.bk_biz_id == biz
        {
            templates.push(pt);
        }
    }
    // (instance, host) only: a module may hold many thousands.
    let mut instances: Vec<(i64, i64)> = Vec::new();
    for si_id in tx.service_instance_ids_of_module(module_id)? {
        if let Some(si) = tx.service_instance(si_id)?
            && si.bk_biz_id == biz
            && si.service_template_id == st
            && hosts.contains(&si.bk_host_id)
        {
            instances.push((si.id, si.bk_host_id));
        }
    }
    // 1. Hosts without an instance get one, made like create_service_instance makes it.
    if !templates.is_empty() {
        let covered: BTreeSet<i64> = instances.iter().map(|&(_, host)| host).collect();
        for &host in hosts.iter().filter(|h| !covered.contains(h)) {
            if module.service_template_id != st {
                return Err(CcError::plain(code::MODULE_TEMPLATE_MISMATCH));
            }
            create_for_sync(tx, at, host)?;
        }
    }
    // 2 to 5. The instances that existed before: remove, update, add processes.
    let refs = template_refs(&templates);
    for (si, host) in instances {
        sync_instance(tx, at, si, host, &refs)?;
    }
    Ok(())
}

/// Syncs one existing instance with the template's process templates `templates`.
fn sync_instance(
    tx: &mut WriteTx,
    at: &InModule,
    si: i64,
    host_id: i64,
    templates: &[TemplateRef],
) -> Result<(), CcError> {
    let (ctx, now, biz) = (at.ctx, at.now, at.biz);
    let host = tx.host(host_id)?;
    let ips = host.as_ref().map(host_ips);
    let mut procs = Vec::new();
    let mut relations = BTreeMap::new();
    for (pid, rel, map) in processes_of(tx, si)? {
        procs.push((pid, rel.process_template_id, map));
        relations.insert(pid, rel);
    }
    let proc_refs = proc_refs(&procs);
    let plan = template_sync::plan_instance(templates, &proc_refs, ips.as_ref())?;
    // 3. Remove.
    for pid in &plan.remove {
        tx.delete_process(*pid)?;
    }
    if plan.remove_instance {
        tx.delete_service_instance(si)?;
        return Ok(());
    }
    // 4. Update, through the generic process update's validation and uniqueness.
    let current: BTreeMap<i64, &Map<String, Value>> =
        procs.iter().map(|(id, _, map)| (*id, map)).collect();
    for (pid, mut data) in plan.update {
        process_update::validate_update(&mut data)?;
        let Some(old) = current.get(&pid) else {
            continue;
        };
        let mut map = process_update::merge(old, &data);
        process_update::stamp_update_fields(&mut map, &ctx.user, now);
        if let Some(key) = tx.process_key_conflict(&map, pid)? {
            return Err(super::duplicate(&key));
        }
        tx.put_process(pid, &map, &relations[&pid])?;
    }
    // 5. A process for every template the instance lacks.
    let failed = || CcError::plain(code::SYNC_BY_TEMPLATE_FAILED);
    let fields = ServerFields {
        biz_id: biz,
        service_instance_id: si,
        supplier: &ctx.supplier,
        user: &ctx.user,
        now,
    };
    for ptid in plan.add {
        let Some(t) = templates.iter().find(|t| t.id == ptid) else {
            continue;
        };
        let built = si_rules::instantiate(
            t.property,
            biz,
            si,
            &ctx.supplier,
            now,
            &ips.unwrap_or_default(),
        )?;
        let mut map = built.map;
        process::validate_create(&mut map).map_err(|_| failed())?;
        let pid = tx.next_id(Kind::Process)?;
        process::stamp_insert_fields(&mut map, pid, &fields);
        if tx.process_key_conflict(&map, pid)?.is_some() {
            return Err(failed());
        }
        let rel = Relation {
            bk_biz_id: biz,
            bk_process_id: pid,
            service_instance_id: si,
            process_template_id: ptid,
            bk_host_id: host_id,
            bk_supplier_account: ctx.supplier.clone(),
        };
        tx.put_process(pid, &map, &rel)?;
    }
    Ok(())
}
