//! The topology part of a dataset file: cloud areas, businesses, sets, hosts and modules as
//! bk-cmdb stores them. A record may carry any attribute (kept as a custom one); a built-in one it
//! omits takes bk-cmdb's default (`domain::topology::fill`). A file without `sets` gets one set
//! per set id its modules name (a fresh id where two businesses name the same one); a file
//! without `cloud_areas` gets one per cloud id its hosts name. Every store then holds the
//! built-in records ([`ensure_builtins`]).

use super::{Dataset, bad};
use crate::clock;
use crate::domain::topology::{self as rules, Obj, Stamp};
use crate::error::CcError;
use crate::store::WriteTx;
use crate::store::records::*;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// Who and when for records an import creates or completes.
pub struct ImportStamp {
    now: String,
    supplier: String,
}

impl ImportStamp {
    fn stamp(&self) -> Stamp<'_> {
        Stamp {
            now: &self.now,
            user: "admin",
            supplier: &self.supplier,
        }
    }
}

pub fn import_stamp() -> ImportStamp {
    ImportStamp {
        now: clock::format_ms(clock::now_ms()),
        supplier: "0".into(),
    }
}

/// The topology records of a file, typed and completed.
pub struct Records {
    clouds: Vec<CloudArea>,
    /// The file has no `cloud_areas`: `clouds` are derived, and those the store holds are kept.
    clouds_derived: bool,
    bizs: Vec<Business>,
    /// `None`: the file has no `sets`; they are derived from the modules ([`derive_sets`]).
    sets: Option<Vec<Set>>,
    /// Hosts as the file gives them (without their id), completed when stored.
    hosts: Vec<(i64, Map<String, Value>)>,
    host_count: usize,
    modules: Vec<Module>,
    now: String,
    supplier: String,
}

impl Records {
    pub fn count(&self) -> usize {
        self.clouds.len()
            + self.bizs.len()
            + self.sets.as_ref().map_or(0, Vec::len)
            + self.host_count
            + self.modules.len()
    }

    /// Converts the records of `src`, consuming them one at a time (a large file's hosts are
    /// held once, not twice).
    pub fn from_source(src: Source) -> Result<Records, CcError> {
        let st = ImportStamp {
            now: clock::format_ms(clock::now_ms()),
            supplier: src.supplier,
        };
        let stamp = st.stamp();
        let clouds_derived = src.clouds.is_none();
        let bizs = each(src.bizs, "business", "bk_biz_id", |id, m| {
            to_business(id, m, &stamp)
        })?;
        // Hosts are completed one at a time as they are stored (see `load_head`).
        let hosts = each(src.hosts, "host", "bk_host_id", |id, m| Ok((id, m)))?;
        let modules = each(src.modules, "module", "bk_module_id", |id, m| {
            to_module(id, m, &stamp)
        })?;
        let sets = match src.sets {
            Some(sets) => Some(each(sets, "set", "bk_set_id", |id, m| {
                to_set(id, m, &stamp)
            })?),
            None => None,
        };
        let clouds = match src.clouds {
            Some(c) => each(c, "cloud area", "bk_cloud_id", |id, m| {
                to_cloud(id, m, &stamp)
            })?,
            None => {
                let ids: BTreeSet<i64> = hosts
                    .iter()
                    .map(|(_, h)| h.get("bk_cloud_id").and_then(Value::as_i64).unwrap_or(0))
                    .collect();
                ids.into_iter()
                    .map(|id| {
                        let name = if id == 0 {
                            rules::DEFAULT_CLOUD_NAME.to_string()
                        } else {
                            format!("cloud-area-{id}")
                        };
                        let mut m = Map::new();
                        m.insert("default".into(), json!(i64::from(id == 0)));
                        rules::fill(Obj::Cloud, &mut m, &stamp);
                        CloudArea {
                            bk_cloud_id: id,
                            bk_cloud_name: name,
                            attrs: Value::Object(m),
                        }
                    })
                    .collect()
            }
        };
        Ok(Records {
            clouds_derived,
            host_count: hosts.len(),
            clouds,
            bizs,
            sets,
            hosts,
            modules,
            now: st.now.clone(),
            supplier: st.supplier.clone(),
        })
    }
}

/// The topology keys of a dataset, taken out of it (or copied, for a dataset kept whole).
pub struct Source {
    clouds: Option<Vec<Map<String, Value>>>,
    bizs: Vec<Map<String, Value>>,
    sets: Option<Vec<Map<String, Value>>>,
    hosts: Vec<Map<String, Value>>,
    modules: Vec<Map<String, Value>>,
    supplier: String,
}

impl Source {
    pub fn take<P>(ds: &mut Dataset<P>) -> Source {
        Source {
            clouds: ds.cloud_areas.take(),
            bizs: std::mem::take(&mut ds.businesses),
            sets: ds.sets.take(),
            hosts: std::mem::take(&mut ds.hosts),
            modules: std::mem::take(&mut ds.modules),
            supplier: ds.supplier_account.clone(),
        }
    }

    pub fn copy<P>(ds: &Dataset<P>) -> Source {
        Source {
            clouds: ds.cloud_areas.clone(),
            bizs: ds.businesses.clone(),
            sets: ds.sets.clone(),
            hosts: ds.hosts.clone(),
            modules: ds.modules.clone(),
            supplier: ds.supplier_account.clone(),
        }
    }
}

/// Converts each record of a key, refusing a duplicate id.
fn each<T>(
    items: Vec<Map<String, Value>>,
    what: &str,
    id_key: &str,
    mut f: impl FnMut(i64, Map<String, Value>) -> Result<T, String>,
) -> Result<Vec<T>, CcError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(items.len());
    let min = if what == "cloud area" { 0 } else { 1 };
    for (i, mut map) in items.into_iter().enumerate() {
        let id = match map.get(id_key) {
            Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64().unwrap_or(0),
            _ => {
                return Err(bad(format!(
                    "{what} #{}: {id_key} must be an integer",
                    i + 1
                )));
            }
        };
        if id < min {
            return Err(bad(format!("{what} {id}: ids start at {min}")));
        }
        if !seen.insert(id) {
            return Err(bad(format!("{what} {id}: duplicate id")));
        }
        map.remove(id_key);
        out.push(f(id, map).map_err(|e| bad(format!("{what} {id}: {e}")))?);
    }
    Ok(out)
}

fn take_int(m: &mut Map<String, Value>, key: &str, default: i64) -> Result<i64, String> {
    match m.remove(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64().unwrap_or(default)),
        Some(_) => Err(format!("{key} must be an integer")),
    }
}

fn take_str(m: &mut Map<String, Value>, key: &str, required: bool) -> Result<String, String> {
    match m.remove(key) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) if !required => Ok(String::new()),
        _ => Err(format!("{key} must be a string")),
    }
}

/// An IP list: a comma-joined string, or an array of strings (bk-cmdb's stored form).
fn take_ips(m: &mut Map<String, Value>, key: &str) -> Result<String, String> {
    match m.remove(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s),
        Some(Value::Array(a)) => {
            let mut parts = Vec::with_capacity(a.len());
            for v in a {
                match v {
                    Value::String(s) => parts.push(s),
                    _ => return Err(format!("{key} must hold strings")),
                }
            }
            Ok(parts.join(","))
        }
        Some(_) => Err(format!("{key} must be a string")),
    }
}

fn to_business(id: i64, mut m: Map<String, Value>, st: &Stamp) -> Result<Business, String> {
    let name = take_str(&mut m, "bk_biz_name", true)?;
    let default = take_int(&mut m, "default", 0)?;
    if default == 1 {
        for (k, v) in rules::resource_pool_attrs() {
            m.entry(k).or_insert(v);
        }
    }
    rules::fill(Obj::Biz, &mut m, st);
    Ok(Business {
        bk_biz_id: id,
        bk_biz_name: name,
        default,
        attrs: Value::Object(m),
    })
}

fn to_set(id: i64, mut m: Map<String, Value>, st: &Stamp) -> Result<Set, String> {
    let biz = take_int(&mut m, "bk_biz_id", 0)?;
    let name = take_str(&mut m, "bk_set_name", true)?;
    let parent = take_int(&mut m, "bk_parent_id", biz)?;
    let default = take_int(&mut m, "default", 0)?;
    rules::fill(Obj::Set, &mut m, st);
    Ok(Set {
        bk_set_id: id,
        bk_biz_id: biz,
        bk_set_name: name,
        bk_parent_id: parent,
        default,
        attrs: Value::Object(m),
    })
}

fn to_module(id: i64, mut m: Map<String, Value>, st: &Stamp) -> Result<Module, String> {
    let biz = take_int(&mut m, "bk_biz_id", 0)?;
    let set = take_int(&mut m, "bk_set_id", 0)?;
    let name = take_str(&mut m, "bk_module_name", true)?;
    let stpl = take_int(&mut m, "service_template_id", 0)?;
    let cat = take_int(&mut m, "service_category_id", 0)?;
    let default = take_int(&mut m, "default", 0)?;
    m.remove("bk_parent_id");
    let mut hosts = Vec::new();
    match m.remove("hosts") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) => {
            for h in a {
                hosts.push(
                    h.as_i64()
                        .ok_or_else(|| String::from("hosts must hold host ids"))?,
                );
            }
        }
        Some(_) => return Err("hosts must be a list of host ids".into()),
    }
    hosts.sort_unstable();
    hosts.dedup();
    rules::fill(Obj::Module, &mut m, st);
    Ok(Module {
        bk_module_id: id,
        bk_biz_id: biz,
        bk_set_id: set,
        bk_module_name: name,
        service_template_id: stpl,
        service_category_id: cat,
        default,
        hosts,
        attrs: Value::Object(m),
    })
}

fn to_host(id: i64, mut m: Map<String, Value>, st: &Stamp) -> Result<Host, String> {
    let h = Host {
        bk_host_id: id,
        bk_host_innerip: take_ips(&mut m, "bk_host_innerip")?,
        bk_host_outerip: take_ips(&mut m, "bk_host_outerip")?,
        bk_host_innerip_v6: take_ips(&mut m, "bk_host_innerip_v6")?,
        bk_host_outerip_v6: take_ips(&mut m, "bk_host_outerip_v6")?,
        bk_cloud_id: take_int(&mut m, "bk_cloud_id", 0)?,
        attrs: Value::Null,
    };
    for key in ["operator", "bk_bak_operator"] {
        if let Some(Value::Array(_)) = m.get(key) {
            let joined = take_ips(&mut m, key)?;
            m.insert(key.into(), Value::String(joined));
        }
    }
    rules::fill(Obj::Host, &mut m, st);
    Ok(Host {
        attrs: Value::Object(m),
        ..h
    })
}

fn to_cloud(id: i64, mut m: Map<String, Value>, st: &Stamp) -> Result<CloudArea, String> {
    let name = take_str(&mut m, "bk_cloud_name", true)?;
    rules::fill(Obj::Cloud, &mut m, st);
    Ok(CloudArea {
        bk_cloud_id: id,
        bk_cloud_name: name,
        attrs: Value::Object(m),
    })
}

/// One set per set id the modules name: an id the store holds for the same business is that
/// set; an id of no set yet becomes a set of the first business naming it; a module naming 0,
/// or an id of another business's set, goes to one fresh set of its business.
fn derive_sets(tx: &WriteTx, modules: &mut [Module], st: &Stamp) -> Result<Vec<Set>, CcError> {
    let mut owner: BTreeMap<i64, i64> = BTreeMap::new();
    let mut stored: BTreeMap<i64, Option<i64>> = BTreeMap::new();
    let named = modules.iter().map(|m| m.bk_set_id).max().unwrap_or(0);
    let mut next = named.max(tx.sequence(Kind::Set)?).max(0) + 1;
    let mut fresh: BTreeMap<i64, i64> = BTreeMap::new();
    for m in modules.iter_mut() {
        if tx.business(m.bk_biz_id)?.is_none() {
            return Err(bad(format!(
                "module {}: business {} does not exist",
                m.bk_module_id, m.bk_biz_id
            )));
        }
        let s = m.bk_set_id;
        if s > 0 {
            if let std::collections::btree_map::Entry::Vacant(e) = stored.entry(s) {
                e.insert(tx.set(s)?.map(|x| x.bk_biz_id));
            }
            let ok = match stored[&s] {
                Some(biz) => biz == m.bk_biz_id,
                None => owner.get(&s).is_none_or(|&b| b == m.bk_biz_id),
            };
            if ok {
                if stored[&s].is_none() {
                    owner.insert(s, m.bk_biz_id);
                }
                continue;
            }
        }
        let id = *fresh.entry(m.bk_biz_id).or_insert_with(|| {
            next += 1;
            next - 1
        });
        owner.insert(id, m.bk_biz_id);
        m.bk_set_id = id;
    }
    Ok(owner
        .into_iter()
        .map(|(id, biz)| {
            let mut m = Map::new();
            rules::fill(Obj::Set, &mut m, st);
            Set {
                bk_set_id: id,
                bk_biz_id: biz,
                bk_set_name: format!("set-{id}"),
                bk_parent_id: biz,
                default: 0,
                attrs: Value::Object(m),
            }
        })
        .collect())
}

/// Loads cloud areas, businesses, sets and hosts (before the service templates).
pub fn load_head(
    tx: &mut WriteTx,
    r: &mut Records,
    bump: &mut impl FnMut(Kind, i64),
) -> Result<(), CcError> {
    for c in &r.clouds {
        let held = tx.cloud_area(c.bk_cloud_id)?.is_some();
        if held && r.clouds_derived {
            continue;
        }
        if held {
            return Err(bad(format!(
                "cloud area {}: already in the store",
                c.bk_cloud_id
            )));
        }
        tx.put_cloud_area(c)?;
        bump(Kind::CloudArea, c.bk_cloud_id);
    }
    let mut names = BTreeSet::new();
    tx.each_business::<CcError>(|_, b| {
        names.insert(b.bk_biz_name);
        Ok(true)
    })?;
    for b in &r.bizs {
        if tx.business(b.bk_biz_id)?.is_some() {
            return Err(bad(format!(
                "business {}: already in the store",
                b.bk_biz_id
            )));
        }
        if !names.insert(b.bk_biz_name.clone()) {
            return Err(bad(format!(
                "business {}: name {:?} is not unique",
                b.bk_biz_id, b.bk_biz_name
            )));
        }
        tx.put_business(b)?;
        bump(Kind::Business, b.bk_biz_id);
    }
    let sets = match r.sets.take() {
        Some(sets) => sets,
        None => {
            let st = ImportStamp {
                now: r.now.clone(),
                supplier: r.supplier.clone(),
            };
            derive_sets(tx, &mut r.modules, &st.stamp())?
        }
    };
    let mut set_names = BTreeSet::new();
    for s in &sets {
        if tx.set(s.bk_set_id)?.is_some() {
            return Err(bad(format!("set {}: already in the store", s.bk_set_id)));
        }
        if tx.business(s.bk_biz_id)?.is_none() {
            return Err(bad(format!(
                "set {}: business {} does not exist",
                s.bk_set_id, s.bk_biz_id
            )));
        }
        if !set_names.insert((s.bk_parent_id, s.bk_set_name.clone())) {
            return Err(bad(format!(
                "set {}: name {:?} is not unique under its parent",
                s.bk_set_id, s.bk_set_name
            )));
        }
        tx.put_set(s)?;
        bump(Kind::Set, s.bk_set_id);
    }
    r.sets = Some(sets);
    let st = ImportStamp {
        now: r.now.clone(),
        supplier: r.supplier.clone(),
    };
    for (id, map) in std::mem::take(&mut r.hosts) {
        let h = to_host(id, map, &st.stamp()).map_err(|e| bad(format!("host {id}: {e}")))?;
        if tx.host(h.bk_host_id)?.is_some() {
            return Err(bad(format!("host {}: already in the store", h.bk_host_id)));
        }
        if tx.cloud_area(h.bk_cloud_id)?.is_none() {
            return Err(bad(format!(
                "host {}: cloud area {} does not exist",
                h.bk_host_id, h.bk_cloud_id
            )));
        }
        tx.put_host(&h)?;
        bump(Kind::Host, h.bk_host_id);
    }
    Ok(())
}

/// Loads the modules (after the service templates they name).
pub fn load_modules(
    tx: &mut WriteTx,
    r: &Records,
    bump: &mut impl FnMut(Kind, i64),
) -> Result<(), CcError> {
    let mut names = BTreeSet::new();
    for m in &r.modules {
        let id = m.bk_module_id;
        if tx.module(id)?.is_some() {
            return Err(bad(format!("module {id}: already in the store")));
        }
        if tx.business(m.bk_biz_id)?.is_none() {
            return Err(bad(format!(
                "module {id}: business {} does not exist",
                m.bk_biz_id
            )));
        }
        match tx.set(m.bk_set_id)? {
            None => {
                return Err(bad(format!(
                    "module {id}: set {} does not exist",
                    m.bk_set_id
                )));
            }
            Some(s) if s.bk_biz_id != m.bk_biz_id => {
                return Err(bad(format!(
                    "module {id}: set {} is in another business",
                    m.bk_set_id
                )));
            }
            Some(_) => {}
        }
        if m.service_template_id != 0 && tx.service_template(m.service_template_id)?.is_none() {
            return Err(bad(format!(
                "module {id}: service template {} does not exist",
                m.service_template_id
            )));
        }
        if !names.insert((m.bk_set_id, m.bk_module_name.clone())) {
            return Err(bad(format!(
                "module {id}: name {:?} is not unique in its set",
                m.bk_module_name
            )));
        }
        for h in &m.hosts {
            if tx.host(*h)?.is_none() {
                return Err(bad(format!("module {id}: host {h} is not in hosts")));
            }
        }
        tx.put_module(m)?;
        bump(Kind::Module, id);
    }
    Ok(())
}

/// Creates what every bk-cmdb has and the store lacks: cloud area 0 "Default Area", the
/// resource-pool business (id 1 when free), and in every business an idle set holding the
/// idle, fault and recycle modules. New ids come from the sequences. Returns how many records
/// it created.
pub fn ensure_builtins(tx: &mut WriteTx, st: &ImportStamp) -> Result<usize, CcError> {
    let supplier = tx
        .setting("supplier_account")?
        .unwrap_or_else(|| "0".into());
    let st = ImportStamp {
        now: st.now.clone(),
        supplier,
    };
    let stamp = st.stamp();
    let mut made = 0;
    if tx.cloud_area(0)?.is_none() {
        let mut m = Map::new();
        m.insert("default".into(), json!(1));
        rules::fill(Obj::Cloud, &mut m, &stamp);
        tx.put_cloud_area(&CloudArea {
            bk_cloud_id: 0,
            bk_cloud_name: rules::DEFAULT_CLOUD_NAME.into(),
            attrs: Value::Object(m),
        })?;
        made += 1;
    }
    let mut bizs = Vec::new();
    let mut pool = false;
    tx.each_business::<CcError>(|id, b| {
        pool |= b.default == 1;
        bizs.push(id);
        Ok(true)
    })?;
    if !pool {
        let id = if tx.business(1)?.is_none() {
            tx.raise_sequence(Kind::Business, 1)?;
            1
        } else {
            tx.next_id(Kind::Business)?
        };
        let mut m = rules::resource_pool_attrs();
        rules::fill(Obj::Biz, &mut m, &stamp);
        tx.put_business(&Business {
            bk_biz_id: id,
            bk_biz_name: rules::RESOURCE_POOL_NAME.into(),
            default: 1,
            attrs: Value::Object(m),
        })?;
        bizs.insert(0, id);
        bizs.sort_unstable();
        made += 1;
    }
    for biz in bizs {
        let mut idle = None;
        for sid in tx.set_ids_of_biz(biz)? {
            if tx.set(sid)?.is_some_and(|s| s.default == 1) {
                idle = Some(sid);
                break;
            }
        }
        let idle = match idle {
            Some(s) => s,
            None => {
                let id = tx.next_id(Kind::Set)?;
                let mut m = Map::new();
                rules::fill(Obj::Set, &mut m, &stamp);
                tx.put_set(&Set {
                    bk_set_id: id,
                    bk_biz_id: biz,
                    bk_set_name: rules::IDLE_SET_NAME.into(),
                    bk_parent_id: biz,
                    default: 1,
                    attrs: Value::Object(m),
                })?;
                made += 1;
                id
            }
        };
        let mut present = BTreeSet::new();
        for mid in tx.module_ids_of_biz(biz)? {
            if let Some(m) = tx.module(mid)? {
                present.insert(m.default);
            }
        }
        for (default, name) in rules::INNER_MODULES {
            if present.contains(&default) {
                continue;
            }
            let id = tx.next_id(Kind::Module)?;
            let mut m = Map::new();
            m.insert("operator".into(), json!(""));
            m.insert("bk_bak_operator".into(), json!(""));
            rules::fill(Obj::Module, &mut m, &stamp);
            tx.put_module(&Module {
                bk_module_id: id,
                bk_biz_id: biz,
                bk_set_id: idle,
                bk_module_name: name.into(),
                service_template_id: 0,
                service_category_id: rules::DEFAULT_SERVICE_CATEGORY,
                default,
                hosts: Vec::new(),
                attrs: Value::Object(m),
            })?;
            made += 1;
        }
    }
    Ok(made)
}

/// Writes the topology records of the store into `ds`, as stored (names untranslated).
pub fn export<P>(tx: &crate::store::ReadTx, ds: &mut Dataset<P>) -> Result<(), CcError> {
    let mut clouds = Vec::new();
    tx.each_cloud_area::<CcError>(|_, c| {
        clouds.push(c.to_map());
        Ok(true)
    })?;
    ds.cloud_areas = Some(clouds);
    tx.each_business::<CcError>(|_, b| {
        ds.businesses.push(b.to_map());
        Ok(true)
    })?;
    let mut sets = Vec::new();
    tx.each_set::<CcError>(|_, s| {
        sets.push(s.to_map());
        Ok(true)
    })?;
    ds.sets = Some(sets);
    tx.each_host::<CcError>(|_, h| {
        ds.hosts.push(h.to_map());
        Ok(true)
    })?;
    tx.each_module::<CcError>(|_, m| {
        let mut map = m.to_map();
        map.insert("hosts".into(), json!(m.hosts));
        ds.modules.push(map);
        Ok(true)
    })?;
    Ok(())
}

/// Brings a store written before the topology records up to date, in one transaction, when it
/// holds businesses but no cloud area 0 (a store migrated from schema version 1, or written by
/// an earlier build): every business, host and module is completed with bk-cmdb's defaults and
/// stored again (which writes its index entries), sets are derived from the modules and cloud
/// areas from the hosts, as for a file without them, the built-in records are created and the
/// sequences raised. Returns how many records it wrote (0: nothing to do).
pub fn upgrade(store: &crate::store::Store) -> Result<usize, String> {
    store
        .write_alone(|tx| {
            if tx.cloud_area(0)?.is_some() || tx.is_empty()? {
                return Ok(0);
            }
            let supplier = tx
                .setting("supplier_account")?
                .unwrap_or_else(|| "0".into());
            let st = ImportStamp {
                now: clock::format_ms(clock::now_ms()),
                supplier,
            };
            let stamp = st.stamp();
            let mut written = 0;
            let mut bizs = Vec::new();
            tx.each_business::<CcError>(|_, b| {
                bizs.push(b);
                Ok(true)
            })?;
            for b in bizs {
                let mut m = b.to_map();
                m.remove("bk_biz_id");
                let b = to_business(b.bk_biz_id, m, &stamp).map_err(bad)?;
                tx.put_business(&b)?;
                tx.raise_sequence(Kind::Business, b.bk_biz_id)?;
                written += 1;
            }
            let mut hosts = Vec::new();
            tx.each_host::<CcError>(|_, h| {
                hosts.push(h);
                Ok(true)
            })?;
            let mut clouds = BTreeSet::new();
            for h in hosts {
                let mut m = h.to_map();
                m.remove("bk_host_id");
                let h = to_host(h.bk_host_id, m, &stamp).map_err(bad)?;
                clouds.insert(h.bk_cloud_id);
                // Deleted first: the legacy record's index entries were never written.
                tx.delete::<Host>(h.bk_host_id)?;
                tx.put_host(&h)?;
                tx.raise_sequence(Kind::Host, h.bk_host_id)?;
                written += 1;
            }
            for id in clouds {
                if tx.cloud_area(id)?.is_some() {
                    continue;
                }
                let mut m = Map::new();
                m.insert("default".into(), json!(i64::from(id == 0)));
                rules::fill(Obj::Cloud, &mut m, &stamp);
                let name = if id == 0 {
                    rules::DEFAULT_CLOUD_NAME.to_string()
                } else {
                    format!("cloud-area-{id}")
                };
                tx.put_cloud_area(&CloudArea {
                    bk_cloud_id: id,
                    bk_cloud_name: name,
                    attrs: Value::Object(m),
                })?;
                tx.raise_sequence(Kind::CloudArea, id)?;
                written += 1;
            }
            let mut modules = Vec::new();
            tx.each_module::<CcError>(|_, m| {
                modules.push(m);
                Ok(true)
            })?;
            let mut completed = Vec::with_capacity(modules.len());
            for m in modules {
                let mut map = m.to_map();
                map.remove("bk_module_id");
                let mut c = to_module(m.bk_module_id, map, &stamp).map_err(bad)?;
                c.hosts = m.hosts;
                completed.push(c);
            }
            for s in derive_sets(tx, &mut completed, &stamp)? {
                if tx.set(s.bk_set_id)?.is_none() {
                    tx.put_set(&s)?;
                    tx.raise_sequence(Kind::Set, s.bk_set_id)?;
                    written += 1;
                }
            }
            for m in &completed {
                tx.delete::<Module>(m.bk_module_id)?;
                tx.put_module(m)?;
                tx.raise_sequence(Kind::Module, m.bk_module_id)?;
                written += 1;
            }
            Ok::<_, CcError>(written + ensure_builtins(tx, &st)?)
        })
        .map_err(|e| e.render(crate::error::Lang::En))
}
