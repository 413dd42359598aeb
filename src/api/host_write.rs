//! Host writes (bk-cmdb host_server `host.go`, `module.go`, `logics/import.go`; coreservice
//! `core/host/transfer`; spec topology 9): add_host_to_business_idle, transfer_host_module,
//! transfer_host_to_idlemodule. A transfer into a module bound to a service template creates
//! the host's service instance and the template's processes in the same transaction
//! (`service_instance::auto_create`); a host leaving a module loses its instances there.

use super::service_instance::{InModule, auto_create};
use super::{Ctx, Data, Input};
use crate::clock;
use crate::domain::decode;
use crate::domain::topology::{self as rules, Obj, Stamp};
use crate::domain::topology_write::{Current, distinct, ip_list, transfer_plan};
use crate::error::{Arg, CcError, code};
use crate::limits::{
    MAX_HOSTS_PER_ADD, MAX_HOSTS_PER_MODULE, MAX_TRANSFER_HOSTS, MAX_TRANSFER_MODULES,
};
use crate::store::records::{Host, Kind, Module};
use crate::store::{Store, WriteTx};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The idle module (`default` 1) of a business.
fn idle_module(tx: &WriteTx, biz: i64) -> Result<Option<Module>, CcError> {
    for id in tx.module_ids_of_biz(biz)? {
        if let Some(m) = tx.module(id)?
            && m.default == 1
        {
            return Ok(Some(m));
        }
    }
    Ok(None)
}

/// A host's business as its modules say (`None` for a host in no module).
fn biz_of_host(tx: &WriteTx, host: i64) -> Result<Option<i64>, CcError> {
    for mid in tx.module_ids_of_host(host)? {
        if let Some(m) = tx.module(mid)? {
            return Ok(Some(m.bk_biz_id));
        }
    }
    Ok(None)
}

/// The membership changes of one request, applied once per module.
#[derive(Default)]
struct Moves {
    add: BTreeMap<i64, BTreeSet<i64>>,
    remove: BTreeMap<i64, BTreeSet<i64>>,
}

impl Moves {
    fn apply(self, tx: &mut WriteTx) -> Result<(), CcError> {
        let ids: BTreeSet<i64> = self.add.keys().chain(self.remove.keys()).copied().collect();
        for id in ids {
            let Some(mut m) = tx.module(id)? else {
                continue;
            };
            let mut hosts: BTreeSet<i64> = m.hosts.iter().copied().collect();
            if let Some(r) = self.remove.get(&id) {
                hosts.retain(|h| !r.contains(h));
            }
            if let Some(a) = self.add.get(&id) {
                hosts.extend(a);
            }
            if hosts.len() > MAX_HOSTS_PER_MODULE {
                return Err(CcError::exceed_limit(
                    "module hosts",
                    MAX_HOSTS_PER_MODULE as i64,
                ));
            }
            m.hosts = hosts.into_iter().collect();
            tx.put_module(&m)?;
        }
        Ok(())
    }
}

/// Deletes the service instances of `host` in `module`, with their processes and relations.
fn drop_instances(tx: &mut WriteTx, host: i64, module: i64) -> Result<(), CcError> {
    for si_id in tx.service_instance_ids_of_host(host)? {
        if tx
            .service_instance(si_id)?
            .is_some_and(|si| si.bk_module_id == module)
        {
            for pid in tx.process_ids_of(si_id)? {
                tx.delete_process(pid)?;
            }
            tx.delete_service_instance(si_id)?;
        }
    }
    Ok(())
}

/// The hosts of a transfer: every id must name a host, repeats counting as missing (1199011),
/// and every host must be in `biz` (1113002, naming those that are not).
fn check_hosts(tx: &WriteTx, biz: i64, ids: &[i64]) -> Result<Vec<Host>, CcError> {
    let mut hosts = Vec::with_capacity(ids.len());
    for id in distinct(ids) {
        if let Some(h) = tx.host(id)? {
            hosts.push(h);
        }
    }
    if hosts.len() != ids.len() {
        return Err(CcError::invalid_param("bk_host_id"));
    }
    let mut other = Vec::new();
    for h in &hosts {
        if biz_of_host(tx, h.bk_host_id)?.is_some_and(|b| b != biz) {
            other.push(h.bk_host_id);
        }
    }
    if !other.is_empty() {
        return Err(CcError::new(
            code::HOST_NOT_BELONG_BIZ,
            vec![Arg::Ints(other), Arg::Ints(vec![biz])],
        ));
    }
    Ok(hosts)
}

fn current(tx: &WriteTx, host: i64) -> Result<Vec<Current>, CcError> {
    let mut out = Vec::new();
    for mid in tx.module_ids_of_host(host)? {
        if let Some(m) = tx.module(mid)? {
            out.push(Current {
                module: mid,
                default: m.default,
            });
        }
    }
    Ok(out)
}

#[derive(Serialize)]
struct Added {
    bk_host_ids: Vec<i64>,
}

/// A new host's record from its request map (the IP fields checked and normalised; unknown
/// keys dropped). `Err` is the double-wrapped validation error of bk-cmdb.
fn new_host(ctx: &Ctx, m: &Map<String, Value>, cloud: i64, now: &str) -> Result<Host, CcError> {
    let defs = rules::attributes(Obj::Host);
    let bad = |field: &str| {
        let name = defs
            .iter()
            .find(|d| d.id == field)
            .map_or(field, |d| d.name(ctx.lang));
        let inner = CcError::with(code::FIELD_REG_VALID, name);
        CcError::wrap(
            code::PARAMS_IS_INVALID,
            CcError::wrap(code::PARAMS_IS_INVALID, inner),
        )
    };
    let ip = |f: &str, v6: bool| ip_list(m.get(f), v6).ok_or_else(|| bad(f));
    let host = Host {
        bk_host_id: 0,
        bk_host_innerip: ip("bk_host_innerip", false)?,
        bk_host_outerip: ip("bk_host_outerip", false)?,
        bk_host_innerip_v6: ip("bk_host_innerip_v6", true)?,
        bk_host_outerip_v6: ip("bk_host_outerip_v6", true)?,
        bk_cloud_id: cloud,
        attrs: Value::Null,
    };
    let mut attrs: Map<String, Value> = m
        .iter()
        .filter(|(k, _)| {
            defs.iter().any(|d| d.id == k.as_str()) && !Host::TYPED.contains(&k.as_str())
        })
        .map(|(k, v)| match v {
            Value::String(s) => (k.clone(), Value::String(s.trim().to_string())),
            v => (k.clone(), v.clone()),
        })
        .collect();
    // Stored as lists by bk-cmdb and returned comma-joined, as the reads return them here.
    for key in ["operator", "bk_bak_operator"] {
        if let Some(Value::Array(a)) = attrs.get(key) {
            let joined: Vec<&str> = a.iter().filter_map(Value::as_str).collect();
            let joined = Value::String(joined.join(","));
            attrs.insert(key.into(), joined);
        }
    }
    rules::fill(
        Obj::Host,
        &mut attrs,
        &Stamp {
            now,
            user: &ctx.user,
            supplier: &ctx.supplier,
        },
    );
    Ok(Host {
        attrs: Value::Object(attrs),
        ..host
    })
}

fn is_static(h: &Host) -> bool {
    h.attrs.get("bk_addressing").and_then(Value::as_str) != Some("dynamic")
}

/// `add_host_to_business_idle`: spec topology 9.1. `data` is `{"bk_host_ids": […]}`.
pub fn add_host_to_business_idle(ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let obj = decode::body_object(&input.body)?;
    let biz = decode::int(obj, "bk_biz_id")?;
    let list = decode::array(obj, "bk_host_list")?.to_vec();
    super::one_to_max(
        list.len(),
        "bk_host_list",
        "bk_host_list",
        MAX_HOSTS_PER_ADD,
    )?;
    if biz == 0 {
        return Err(CcError::with(code::PARAMS_NEED_SET, "bk_biz_id"));
    }
    let mut maps = Vec::with_capacity(list.len());
    for v in list {
        match v {
            Value::Object(m) => maps.push(m),
            Value::Null => maps.push(Map::new()),
            _ => return Err(CcError::json()),
        }
    }
    let ctx = ctx.clone();
    let ids = store.write(move |tx| {
        let mut idle =
            idle_module(tx, biz)?.ok_or_else(|| CcError::plain(code::TOPO_QUERY_BIZ_FAILED))?;
        // host_server `checkHostAttr`, host by host.
        let mut clouds = Vec::with_capacity(maps.len());
        for m in &maps {
            let has = |k: &str| matches!(m.get(k), Some(Value::String(s)) if !s.is_empty());
            if !has("bk_host_innerip") && !has("bk_host_innerip_v6") {
                return Err(CcError::new(
                    code::AT_LEAST_ONE_SET,
                    vec![
                        Arg::Str("bk_host_innerip".into()),
                        Arg::Str("bk_host_innerip_v6".into()),
                    ],
                ));
            }
            let cloud = match m.get("bk_cloud_id").and_then(Value::as_i64) {
                Some(c) if c >= 0 => c,
                _ => return Err(CcError::invalid("bk_cloud_id")),
            };
            match m.get("bk_addressing").and_then(Value::as_str) {
                Some("static" | "dynamic") => {}
                _ => return Err(CcError::invalid("bk_addressing")),
            }
            clouds.push(cloud);
        }
        for &c in &clouds {
            if tx.cloud_area(c)?.is_none() {
                return Err(CcError::invalid("bk_cloud_id"));
            }
        }
        let now = clock::format_ms(ctx.now_ms);
        let mut ids = Vec::with_capacity(maps.len());
        let mut taken: BTreeSet<(String, i64)> = BTreeSet::new();
        for (m, cloud) in maps.iter().zip(clouds) {
            let mut h = new_host(&ctx, m, cloud, &now)?;
            if is_static(&h) {
                for ip in crate::store::topology::inner_ips(&h) {
                    let mut clash = !taken.insert((ip.clone(), cloud));
                    for other in tx.host_ids_by_ip(&ip, cloud)? {
                        if tx.host(other)?.is_some_and(|o| is_static(&o)) {
                            clash = true;
                        }
                    }
                    if clash {
                        let field = if ip.contains(':') {
                            "bk_host_innerip_v6"
                        } else {
                            "bk_host_innerip"
                        };
                        return Err(CcError::with(
                            code::DUPLICATE_ITEM,
                            format!(" {field}: {:?}, bk_cloud_id: {cloud} ", ip),
                        ));
                    }
                }
            }
            h.bk_host_id = tx.next_id(Kind::Host)?;
            tx.put_host(&h)?;
            ids.push(h.bk_host_id);
        }
        if idle.hosts.len() + ids.len() > MAX_HOSTS_PER_MODULE {
            return Err(CcError::exceed_limit(
                "module hosts",
                MAX_HOSTS_PER_MODULE as i64,
            ));
        }
        idle.hosts.extend(&ids);
        idle.hosts.sort_unstable();
        tx.put_module(&idle)?;
        Ok(ids)
    })?;
    Ok(Data::of(&Added { bk_host_ids: ids }))
}

/// `transfer_host_to_idlemodule`: spec topology 9.2. `data` is null.
pub fn transfer_host_to_idlemodule(
    _ctx: &Ctx,
    store: &Store,
    input: &Input,
) -> Result<Data, CcError> {
    let obj = decode::body_object(&input.body)?;
    let biz = decode::int(obj, "bk_biz_id")?;
    let host_ids = decode::int_array(obj, "bk_host_id")?;
    if host_ids.len() > MAX_TRANSFER_HOSTS {
        return Err(CcError::exceed_limit(
            "bk_host_id",
            MAX_TRANSFER_HOSTS as i64,
        ));
    }
    store.write(move |tx| {
        let idle = idle_module(tx, biz)?
            .ok_or_else(|| CcError::with(code::HOST_ADD_TO_MODULE, "module not found"))?;
        if tx.business(biz)?.is_none() {
            return Err(CcError::new(
                code::BIZ_NOT_EXIST,
                vec![Arg::Ints(vec![biz])],
            ));
        }
        if host_ids.is_empty() {
            return Ok(());
        }
        let hosts = check_hosts(tx, biz, &host_ids)?;
        let mut moves = Moves::default();
        for h in &hosts {
            let id = h.bk_host_id;
            for c in current(tx, id)? {
                if c.module != idle.bk_module_id {
                    drop_instances(tx, id, c.module)?;
                    moves.remove.entry(c.module).or_default().insert(id);
                }
            }
            moves.add.entry(idle.bk_module_id).or_default().insert(id);
        }
        moves.apply(tx)
    })?;
    Ok(Data::null())
}

/// `transfer_host_module`: spec topology 9.3. coreservice's refusals come back as 1199002
/// with the inner text appended; `data` is null.
pub fn transfer_host_module(ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let obj = decode::body_object(&input.body)?;
    let biz = decode::int(obj, "bk_biz_id")?;
    let host_ids = decode::int_array(obj, "bk_host_id")?;
    let module_key = matches!(decode::get(obj, "bk_module_id"), Some(v) if !v.is_null());
    let module_ids = decode::int_array(obj, "bk_module_id")?;
    let increment = decode::boolean(obj, "is_increment")?;
    let no_auto = decode::boolean(obj, "disable_auto_create")?;
    if host_ids.len() > MAX_TRANSFER_HOSTS {
        return Err(CcError::exceed_limit(
            "bk_host_id",
            MAX_TRANSFER_HOSTS as i64,
        ));
    }
    if module_ids.len() > MAX_TRANSFER_MODULES {
        return Err(CcError::exceed_limit(
            "bk_module_id",
            MAX_TRANSFER_MODULES as i64,
        ));
    }
    let ctx = ctx.clone();
    store.write(move |tx| {
        // host_server: every module is one of the business.
        let mut targets = Vec::with_capacity(module_ids.len());
        for &id in &distinct(&module_ids) {
            match tx.module(id)? {
                Some(m) if m.bk_biz_id == biz => targets.push(m),
                _ => return Err(CcError::plain(code::TOPO_MODULE_NOT_FOUND)),
            }
        }
        let core = |e: CcError| CcError::new(code::HTTP_DO_REQUEST, vec![Arg::Err(Box::new(e))]);
        if !module_key {
            return Err(core(CcError::plain(code::DB_SELECT)));
        }
        if targets.iter().any(|m| m.default != 0) {
            return Err(core(CcError::plain(code::TRANSFER_TO_DEFAULT_WRONG_METHOD)));
        }
        if tx.business(biz)?.is_none() {
            return Err(core(CcError::new(
                code::BIZ_NOT_EXIST,
                vec![Arg::Ints(vec![biz])],
            )));
        }
        if targets.is_empty() {
            return Err(core(CcError::with(code::PARAMS_NEED_SET, "bk_module_id")));
        }
        let hosts = check_hosts(tx, biz, &host_ids).map_err(core)?;
        let target_ids: Vec<i64> = targets.iter().map(|m| m.bk_module_id).collect();
        let mut moves = Moves::default();
        for h in &hosts {
            let id = h.bk_host_id;
            let plan = transfer_plan(&current(tx, id)?, &target_ids, increment);
            for m in plan.drop_instances {
                drop_instances(tx, id, m)?;
            }
            for m in plan.leave {
                moves.remove.entry(m).or_default().insert(id);
            }
            for m in plan.enter {
                moves.add.entry(m).or_default().insert(id);
            }
        }
        moves.apply(tx)?;
        if !no_auto {
            let now = clock::format_ms(ctx.now_ms);
            for m in &targets {
                let st = m.service_template_id;
                if m.default != 0 || st == 0 {
                    continue;
                }
                for h in &hosts {
                    if tx
                        .template_instance(m.bk_module_id, h.bk_host_id, st)?
                        .is_none()
                    {
                        let at = InModule {
                            ctx: &ctx,
                            now: &now,
                            biz,
                            module_id: m.bk_module_id,
                            st_id: st,
                        };
                        auto_create(tx, &at, h)?;
                    }
                }
            }
        }
        Ok(())
    })?;
    Ok(Data::null())
}
