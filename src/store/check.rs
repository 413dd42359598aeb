//! `cmdb-lite check`: proves the store's invariants. Every index entry must be derivable from a
//! record and every record's entries must be present (both ways); every uniqueness key must be
//! held once; relations, processes and service instances (and the records they name) must
//! point at each other; every record must decode and sit under its own id; every sequence must
//! be at least the largest id it issued. Each problem is one line naming the record.
//!
//! Memory is bounded whatever the store's size: the small kinds (businesses, hosts, modules,
//! categories, templates, service instances) are read into maps, while processes, relations and
//! their three indexes, which grow with the store, are scanned once each and checked with point
//! lookups both ways (each record's entries are looked up in the index; each index entry's
//! record is looked up and must imply it). Problems are handed to the caller as found.

use super::StoreError;
use super::records::*;
use super::tables::*;
use super::{ProcKey, ReadTx, Record, Store};
use redb::{ReadableTable, TableDefinition};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Where problems go, as they are found.
pub(super) struct Sink<'a> {
    report: &'a mut dyn FnMut(&str),
}

impl Sink<'_> {
    pub(super) fn push(&mut self, line: String) {
        (self.report)(&line);
    }
}

/// Compares a small index as stored with the index the records imply, both ways.
pub(super) fn compare<T: Ord + std::fmt::Debug>(
    problems: &mut Sink<'_>,
    index: &str,
    stored: impl IntoIterator<Item = T>,
    expected: impl IntoIterator<Item = T>,
) {
    let stored: BTreeSet<T> = stored.into_iter().collect();
    let expected: BTreeSet<T> = expected.into_iter().collect();
    for extra in stored.difference(&expected) {
        problems.push(format!("{index}: entry {extra:?} has no matching record"));
    }
    for missing in expected.difference(&stored) {
        problems.push(format!(
            "{index}: record needs entry {missing:?}, which is missing"
        ));
    }
}

/// Reports every key held by more than one record: `(key, id)` pairs, `what` names the key.
fn unique_keys<K: Ord + Clone>(
    problems: &mut Sink<'_>,
    pairs: &[(K, i64)],
    describe: impl Fn(&K, i64, i64) -> String,
) {
    let mut first: BTreeMap<K, i64> = BTreeMap::new();
    for (key, id) in pairs {
        match first.get(key) {
            Some(&holder) => problems.push(describe(key, *id, holder)),
            None => {
                first.insert(key.clone(), *id);
            }
        }
    }
}

/// Runs every check; an empty list means the store is clean. (For tests: the list holds every
/// problem; `cmdb-lite check` uses [`each_problem`].)
pub fn run(store: &Store) -> Result<Vec<String>, StoreError> {
    store.read(|tx| {
        let mut all = Vec::new();
        each_problem(tx, &mut |p| all.push(p.to_string()))?;
        Ok(all)
    })
}

/// Runs every check on one snapshot, handing each problem to `report` as it is found.
pub fn each_problem(tx: &ReadTx, report: &mut dyn FnMut(&str)) -> Result<(), StoreError> {
    check_tx(tx, &mut Sink { report })
}

fn storage(e: impl Into<redb::Error>) -> StoreError {
    super::read_err(e)
}

/// Every record of a (small) kind `R`, in id order. A value that does not decode is reported
/// with its id and left out, so the other checks still run.
pub(super) fn records<R: Record>(
    tx: &ReadTx,
    p: &mut Sink<'_>,
) -> Result<BTreeMap<i64, R>, StoreError> {
    records_as(tx, p, |r| r)
}

/// [`records`], each record passed through `keep` as it is read (to drop what no check needs).
pub(super) fn records_as<R: Record, T>(
    tx: &ReadTx,
    p: &mut Sink<'_>,
    keep: impl Fn(R) -> T,
) -> Result<BTreeMap<i64, T>, StoreError> {
    let mut out = BTreeMap::new();
    tx.scan_bytes(R::TABLE, |id, bytes| {
        match R::decode(bytes) {
            Ok(rec) => {
                out.insert(id, keep(rec));
            }
            Err(e) => p.push(format!("{} {id}: {e}", R::WHAT)),
        }
        Ok(true)
    })?;
    Ok(out)
}

/// Reports a record stored under another id than its own.
pub(super) fn own(p: &mut Sink<'_>, what: &str, key: i64, field: i64) {
    if key != field {
        p.push(format!("{what} {key}: stored under another id ({field})"));
    }
}

/// Every key of a (small) pair index.
fn index_keys(
    tx: &ReadTx,
    def: TableDefinition<(i64, i64), ()>,
) -> Result<Vec<(i64, i64)>, StoreError> {
    let t = tx.txn.open_table(def).map_err(storage)?;
    let mut out = Vec::new();
    for item in t.iter().map_err(storage)? {
        out.push(item.map_err(storage)?.0.value());
    }
    Ok(out)
}

fn check_tx(tx: &ReadTx, p: &mut Sink<'_>) -> Result<(), StoreError> {
    let bizs: BTreeMap<i64, Business> = records(tx, p)?;
    // Hosts carry every attribute; only their ids, addresses and cloud areas are checked, so
    // their attributes are dropped as they are read (10,000 full hosts are tens of MiB).
    let hosts: BTreeMap<i64, Host> = records_as(tx, p, |h: Host| Host {
        attrs: Value::Null,
        ..h
    })?;
    let modules: BTreeMap<i64, Module> = records(tx, p)?;
    let cats: BTreeMap<i64, ServiceCategory> = records(tx, p)?;
    let sts: BTreeMap<i64, ServiceTemplate> = records(tx, p)?;
    let pts: BTreeMap<i64, ProcessTemplate> = records(tx, p)?;
    let sis: BTreeMap<i64, ServiceInstance> = records(tx, p)?;
    // Every event of the change log decodes, its detail JSON.
    tx.each_event(|ct, key, e| match e {
        Ok(e) if serde_json::from_str::<Value>(&e.detail).is_ok() => {}
        _ => p.push(format!("event {key} of change log {ct}: does not decode")),
    })?;

    // Each record under its own id.
    for (&id, b) in &bizs {
        own(p, "business", id, b.bk_biz_id);
    }
    for (&id, h) in &hosts {
        own(p, "host", id, h.bk_host_id);
    }

    for (&id, c) in &cats {
        own(p, "service category", id, c.id);
        if c.bk_biz_id != 0 && !bizs.contains_key(&c.bk_biz_id) {
            p.push(format!(
                "service category {id}: business {} does not exist",
                c.bk_biz_id
            ));
        }
        if c.bk_parent_id > 0 && !cats.contains_key(&c.bk_parent_id) {
            p.push(format!(
                "service category {id}: parent {} does not exist",
                c.bk_parent_id
            ));
        }
    }

    let (mut st_by_biz, mut st_names) = (Vec::new(), Vec::new());
    for (&id, st) in &sts {
        own(p, "service template", id, st.id);
        if !bizs.contains_key(&st.bk_biz_id) {
            p.push(format!(
                "service template {id}: business {} does not exist",
                st.bk_biz_id
            ));
        }
        if !cats.contains_key(&st.service_category_id) {
            p.push(format!(
                "service template {id}: service category {} does not exist",
                st.service_category_id
            ));
        }
        st_by_biz.push((st.bk_biz_id, id));
        st_names.push((st.bk_biz_id, st.name.clone(), id));
    }
    let pairs: Vec<_> = st_names
        .iter()
        .map(|(biz, name, id)| ((*biz, name.clone()), *id))
        .collect();
    unique_keys(p, &pairs, |(biz, name), id, holder| {
        format!(
            "service template {id}: name {name:?} is not unique in business {biz} (service template {holder} has it)"
        )
    });

    for (&id, m) in &modules {
        own(p, "module", id, m.bk_module_id);
        if !bizs.contains_key(&m.bk_biz_id) {
            p.push(format!(
                "module {id}: business {} does not exist",
                m.bk_biz_id
            ));
        }
        for h in &m.hosts {
            if !hosts.contains_key(h) {
                p.push(format!("module {id}: host {h} does not exist"));
            }
        }
        if m.service_template_id != 0 && !sts.contains_key(&m.service_template_id) {
            p.push(format!(
                "module {id}: service template {} does not exist",
                m.service_template_id
            ));
        }
    }

    let mut pt_by_st = Vec::new();
    for (&id, pt) in &pts {
        own(p, "process template", id, pt.id);
        match sts.get(&pt.service_template_id) {
            None => p.push(format!(
                "process template {id}: service template {} does not exist",
                pt.service_template_id
            )),
            Some(st) if st.bk_biz_id != pt.bk_biz_id => p.push(format!(
                "process template {id}: business {} differs from its service template's ({})",
                pt.bk_biz_id, st.bk_biz_id
            )),
            Some(_) => {}
        }
        pt_by_st.push((pt.service_template_id, id));
    }

    let (mut si_by_module, mut si_by_host, mut si_tpl) = (Vec::new(), Vec::new(), Vec::new());
    for (&id, si) in &sis {
        own(p, "service instance", id, si.id);
        if !bizs.contains_key(&si.bk_biz_id) {
            p.push(format!(
                "service instance {id}: business {} does not exist",
                si.bk_biz_id
            ));
        }
        match modules.get(&si.bk_module_id) {
            None => p.push(format!(
                "service instance {id}: module {} does not exist",
                si.bk_module_id
            )),
            Some(m) if m.bk_biz_id != si.bk_biz_id => p.push(format!(
                "service instance {id}: business {} differs from module {}'s ({})",
                si.bk_biz_id, si.bk_module_id, m.bk_biz_id
            )),
            Some(_) => {}
        }
        if !hosts.contains_key(&si.bk_host_id) {
            p.push(format!(
                "service instance {id}: host {} does not exist",
                si.bk_host_id
            ));
        }
        si_by_module.push((si.bk_module_id, id));
        si_by_host.push((si.bk_host_id, id));
        if si.service_template_id != 0 {
            if !sts.contains_key(&si.service_template_id) {
                p.push(format!(
                    "service instance {id}: service template {} does not exist",
                    si.service_template_id
                ));
            }
            si_tpl.push(((si.bk_module_id, si.bk_host_id, si.service_template_id), id));
        }
    }
    unique_keys(p, &si_tpl, |(module, host, st), id, holder| {
        format!(
            "service instance {id}: a second instance of service template {st} on host {host} in module {module} (service instance {holder} is one)"
        )
    });

    let procs = tx.txn.open_table(PROCESSES).map_err(storage)?;
    let rels = tx.txn.open_table(RELATIONS).map_err(storage)?;
    let by_si = tx.txn.open_table(PROC_BY_SI).map_err(storage)?;
    let uniq_name = tx.txn.open_table(UNIQ_PROC_NAME).map_err(storage)?;
    let uniq_func = tx.txn.open_table(UNIQ_PROC_FUNC).map_err(storage)?;
    let process_at = |pid: i64| -> Result<Option<Map<String, Value>>, StoreError> {
        Ok(match procs.get(pid).map_err(storage)? {
            Some(v) => <Map<String, Value> as Record>::decode(v.value()).ok(),
            None => None,
        })
    };
    let relation_at = |pid: i64| -> Result<Option<Relation>, StoreError> {
        Ok(match rels.get(pid).map_err(storage)? {
            Some(v) => Relation::decode(v.value()).ok(),
            None => None,
        })
    };
    let mut top_process = 0i64;

    for item in rels.iter().map_err(storage)? {
        let (k, v) = item.map_err(storage)?;
        let pid = k.value();
        top_process = top_process.max(pid);
        let r = match Relation::decode(v.value()) {
            Ok(r) => r,
            Err(e) => {
                p.push(format!("relation of process {pid}: {e}"));
                continue;
            }
        };
        if r.bk_process_id != pid {
            p.push(format!(
                "relation of process {pid}: names process {}",
                r.bk_process_id
            ));
        }
        match sis.get(&r.service_instance_id) {
            None => p.push(format!(
                "relation of process {pid}: service instance {} does not exist",
                r.service_instance_id
            )),
            Some(si) if si.bk_host_id != r.bk_host_id || si.bk_biz_id != r.bk_biz_id => {
                p.push(format!(
                    "relation of process {pid}: host/business differ from service instance {}",
                    r.service_instance_id
                ))
            }
            Some(_) => {}
        }
        if r.process_template_id != 0 && !pts.contains_key(&r.process_template_id) {
            p.push(format!(
                "relation of process {pid}: process template {} does not exist",
                r.process_template_id
            ));
        }
        if procs.get(pid).map_err(storage)?.is_none() {
            p.push(format!(
                "relation of process {pid}: the process does not exist"
            ));
        }
    }

    // Each process, and the index entries it needs (looked up, not collected).
    for item in procs.iter().map_err(storage)? {
        let (k, v) = item.map_err(storage)?;
        let pid = k.value();
        top_process = top_process.max(pid);
        let map = match <Map<String, Value> as Record>::decode(v.value()) {
            Ok(map) => map,
            Err(e) => {
                p.push(format!("process {pid}: {e}"));
                continue;
            }
        };
        let int = |k: &str| map.get(k).and_then(Value::as_i64);
        if int("bk_process_id") != Some(pid) {
            p.push(format!(
                "process {pid}: bk_process_id field differs from its key"
            ));
        }
        match relation_at(pid)? {
            None => p.push(format!("process {pid}: has no relation")),
            Some(r) => {
                if int("service_instance_id") != Some(r.service_instance_id) {
                    p.push(format!(
                        "process {pid}: service_instance_id differs from its relation"
                    ));
                }
                if int("bk_biz_id") != Some(r.bk_biz_id) {
                    p.push(format!(
                        "process {pid}: bk_biz_id differs from its relation"
                    ));
                }
                let entry = (r.service_instance_id, pid);
                if by_si.get(entry).map_err(storage)?.is_none() {
                    p.push(format!(
                        "idx_proc_by_si: record needs entry {entry:?}, which is missing"
                    ));
                }
            }
        }
        for key in ProcKey::of(&map) {
            let holder = match &key {
                ProcKey::Name { si, name } => uniq_name
                    .get((*si, name.as_str()))
                    .map_err(storage)?
                    .map(|v| v.value()),
                ProcKey::Func { si, func, regex } => uniq_func
                    .get((*si, func.as_str(), regex.as_str()))
                    .map_err(storage)?
                    .map(|v| v.value()),
            };
            if holder == Some(pid) {
                continue;
            }
            match &key {
                ProcKey::Name { si, name } => p.push(format!(
                    "uniq_proc_name: record needs entry {:?}, which is missing",
                    (si, name, pid)
                )),
                ProcKey::Func { si, func, regex } => p.push(format!(
                    "uniq_proc_func: record needs entry {:?}, which is missing",
                    (si, func, regex, pid)
                )),
            }
            // The entry names another process: a second holder of the key if that one has it.
            let Some(holder) = holder else { continue };
            if !process_at(holder)?.is_some_and(|m| ProcKey::of(&m).contains(&key)) {
                continue;
            }
            match &key {
                ProcKey::Name { si, name } => p.push(format!(
                    "process {pid}: name {name:?} is not unique in service instance {si} (process {holder} has it)"
                )),
                ProcKey::Func { si, func, regex } => p.push(format!(
                    "process {pid}: ({func:?}, {regex:?}) is not unique in service instance {si} (process {holder} has it)"
                )),
            }
        }
    }

    super::topology::check(tx, &bizs, &hosts, &modules, p)?;

    // Each entry of the three process indexes must be implied by its record.
    for item in by_si.iter().map_err(storage)? {
        let (si, pid) = item.map_err(storage)?.0.value();
        let implied = procs.get(pid).map_err(storage)?.is_some()
            && relation_at(pid)?.is_some_and(|r| r.service_instance_id == si);
        if !implied {
            p.push(format!(
                "idx_proc_by_si: entry {:?} has no matching record",
                (si, pid)
            ));
        }
    }
    for item in uniq_name.iter().map_err(storage)? {
        let (k, v) = item.map_err(storage)?;
        let ((si, name), pid) = (k.value(), v.value());
        let key = ProcKey::Name {
            si,
            name: name.to_string(),
        };
        if !process_at(pid)?.is_some_and(|m| ProcKey::of(&m).contains(&key)) {
            p.push(format!(
                "uniq_proc_name: entry {:?} has no matching record",
                (si, name, pid)
            ));
        }
    }
    for item in uniq_func.iter().map_err(storage)? {
        let (k, v) = item.map_err(storage)?;
        let ((si, func, regex), pid) = (k.value(), v.value());
        let key = ProcKey::Func {
            si,
            func: func.to_string(),
            regex: regex.to_string(),
        };
        if !process_at(pid)?.is_some_and(|m| ProcKey::of(&m).contains(&key)) {
            p.push(format!(
                "uniq_proc_func: entry {:?} has no matching record",
                (si, func, regex, pid)
            ));
        }
    }

    compare(
        p,
        "idx_si_by_module",
        index_keys(tx, SI_BY_MODULE)?,
        si_by_module,
    );
    compare(p, "idx_si_by_host", index_keys(tx, SI_BY_HOST)?, si_by_host);
    compare(p, "idx_st_by_biz", index_keys(tx, ST_BY_BIZ)?, st_by_biz);
    compare(p, "idx_pt_by_st", index_keys(tx, PT_BY_ST)?, pt_by_st);
    {
        let t = tx.txn.open_table(UNIQ_SI_TEMPLATE).map_err(storage)?;
        let mut stored = Vec::new();
        for item in t.iter().map_err(storage)? {
            let (k, v) = item.map_err(storage)?;
            stored.push((k.value(), v.value()));
        }
        compare(p, "uniq_si_template", stored, si_tpl);
    }
    {
        let t = tx.txn.open_table(UNIQ_ST_NAME).map_err(storage)?;
        let mut stored = Vec::new();
        for item in t.iter().map_err(storage)? {
            let (k, v) = item.map_err(storage)?;
            let (biz, name) = k.value();
            stored.push((biz, name.to_string(), v.value()));
        }
        compare(p, "uniq_st_name", stored, st_names);
    }

    // Sequences: each at least the largest id of its kind still stored (ids of deleted records
    // are below the sequence by construction, since it never goes down).
    let largest = |ids: Option<i64>| ids.unwrap_or(0);
    let top = [
        (Kind::Process, top_process),
        (Kind::ServiceInstance, largest(sis.keys().max().copied())),
        (Kind::ServiceTemplate, largest(sts.keys().max().copied())),
        (Kind::ProcessTemplate, largest(pts.keys().max().copied())),
        (Kind::ServiceCategory, largest(cats.keys().max().copied())),
    ];
    for (kind, max) in top {
        let seq = tx.sequence(kind)?;
        if seq < max {
            p.push(format!(
                "sequence {}: at {seq}, below issued id {max}",
                kind.name()
            ));
        }
    }
    let t = tx.txn.open_table(SEQUENCES).map_err(storage)?;
    for item in t.iter().map_err(storage)? {
        let (k, v) = item.map_err(storage)?;
        if Kind::from_name(k.value()).is_none() {
            p.push(format!(
                "sequence {:?} (at {}): not a kind of record",
                k.value(),
                v.value()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! Each test corrupts a clean demo store through raw table writes (what a bug or a damaged
    //! file could leave behind) and shows `check` names the problem and the record.
    use super::*;
    use crate::dataset;
    use serde_json::json;

    fn demo() -> Store {
        let store = Store::memory().unwrap();
        dataset::import(&store, &dataset::parse(dataset::DEMO).unwrap()).unwrap();
        assert_eq!(
            run(&store).unwrap(),
            Vec::<String>::new(),
            "the demo is clean"
        );
        store
    }

    /// Applies `f` to the raw redb transaction of a demo store; returns what check reports.
    fn corrupt(f: impl FnOnce(&redb::WriteTransaction)) -> Vec<String> {
        let store = demo();
        store
            .write_alone::<_, StoreError>(|tx| {
                f(&tx.txn);
                Ok(())
            })
            .unwrap();
        run(&store).unwrap()
    }

    /// Asserts one reported line contains every part.
    fn reported(problems: &[String], parts: &[&str]) {
        assert!(
            problems
                .iter()
                .any(|line| parts.iter().all(|part| line.contains(part))),
            "no line with {parts:?} in {problems:#?}"
        );
    }

    fn process_41(tx: &redb::WriteTransaction) -> Map<String, Value> {
        let t = tx.open_table(PROCESSES).unwrap();
        Record::decode(t.get(41).unwrap().unwrap().value()).unwrap()
    }

    fn put_process(tx: &redb::WriteTransaction, pid: i64, map: &Map<String, Value>) {
        let mut t = tx.open_table(PROCESSES).unwrap();
        t.insert(pid, map.encode().as_slice()).unwrap();
    }

    fn relation_41(tx: &redb::WriteTransaction) -> Relation {
        let t = tx.open_table(RELATIONS).unwrap();
        Record::decode(t.get(41).unwrap().unwrap().value()).unwrap()
    }

    fn put_relation(tx: &redb::WriteTransaction, pid: i64, r: &Relation) {
        let mut t = tx.open_table(RELATIONS).unwrap();
        t.insert(pid, r.encode().as_slice()).unwrap();
    }

    #[test]
    fn index_entry_missing_or_stray() {
        let p = corrupt(|tx| {
            tx.open_table(PROC_BY_SI).unwrap().remove((30, 41)).unwrap();
        });
        reported(&p, &["idx_proc_by_si", "(30, 41)", "missing"]);
        let p = corrupt(|tx| {
            tx.open_table(PROC_BY_SI)
                .unwrap()
                .insert((30, 999), ())
                .unwrap();
        });
        reported(&p, &["idx_proc_by_si", "(30, 999)", "no matching record"]);
        let p = corrupt(|tx| {
            tx.open_table(SI_BY_HOST).unwrap().remove((11, 30)).unwrap();
        });
        reported(&p, &["idx_si_by_host", "(11, 30)", "missing"]);
        let p = corrupt(|tx| {
            tx.open_table(SI_BY_MODULE)
                .unwrap()
                .insert((20, 77), ())
                .unwrap();
        });
        reported(&p, &["idx_si_by_module", "(20, 77)", "no matching record"]);
        let p = corrupt(|tx| {
            tx.open_table(PT_BY_ST).unwrap().remove((5, 6)).unwrap();
        });
        reported(&p, &["idx_pt_by_st", "(5, 6)", "missing"]);
        let p = corrupt(|tx| {
            tx.open_table(ST_BY_BIZ)
                .unwrap()
                .insert((7, 55), ())
                .unwrap();
        });
        reported(&p, &["idx_st_by_biz", "(7, 55)", "no matching record"]);
    }

    #[test]
    fn uniqueness_index_pointing_elsewhere() {
        let p = corrupt(|tx| {
            let name = process_41(tx)["bk_process_name"]
                .as_str()
                .unwrap()
                .to_string();
            let mut t = tx.open_table(UNIQ_PROC_NAME).unwrap();
            t.insert((30, name.as_str()), 40).unwrap();
        });
        reported(&p, &["uniq_proc_name", "40", "no matching record"]);
        reported(&p, &["uniq_proc_name", "41", "missing"]);
        let p = corrupt(|tx| {
            tx.open_table(UNIQ_SI_TEMPLATE)
                .unwrap()
                .remove((21, 11, 5))
                .unwrap();
        });
        reported(&p, &["uniq_si_template", "31", "missing"]);
        let p = corrupt(|tx| {
            tx.open_table(UNIQ_ST_NAME)
                .unwrap()
                .insert((7, "ghost"), 5)
                .unwrap();
        });
        reported(&p, &["uniq_st_name", "ghost", "no matching record"]);
    }

    #[test]
    fn uniqueness_key_held_twice() {
        // A copy of process 41 as process 42, with its index entries: only the unique indexes
        // cannot hold both.
        let p = corrupt(|tx| {
            let mut map = process_41(tx);
            map.insert("bk_process_id".into(), json!(42));
            map.insert("bk_start_param_regex".into(), json!("x"));
            put_process(tx, 42, &map);
            let mut r = relation_41(tx);
            r.bk_process_id = 42;
            put_relation(tx, 42, &r);
            tx.open_table(PROC_BY_SI)
                .unwrap()
                .insert((30, 42), ())
                .unwrap();
        });
        reported(
            &p,
            &[
                "process 42",
                "not unique in service instance 30",
                "process 41",
            ],
        );
        // Two template instances of one template on one host in one module.
        let p = corrupt(|tx| {
            let mut si: ServiceInstance = {
                let t = tx.open_table(SERVICE_INSTANCES).unwrap();
                Record::decode(t.get(31).unwrap().unwrap().value()).unwrap()
            };
            si.id = 32;
            let mut t = tx.open_table(SERVICE_INSTANCES).unwrap();
            t.insert(32, si.encode().as_slice()).unwrap();
            tx.open_table(SI_BY_MODULE)
                .unwrap()
                .insert((21, 32), ())
                .unwrap();
            tx.open_table(SI_BY_HOST)
                .unwrap()
                .insert((11, 32), ())
                .unwrap();
            tx.open_table(SEQUENCES)
                .unwrap()
                .insert("service_instance", 32)
                .unwrap();
        });
        reported(
            &p,
            &[
                "service instance 32",
                "second instance",
                "service instance 31",
            ],
        );
        // Two service templates of one name in one business.
        let p = corrupt(|tx| {
            let mut st: ServiceTemplate = {
                let t = tx.open_table(SERVICE_TEMPLATES).unwrap();
                Record::decode(t.get(5).unwrap().unwrap().value()).unwrap()
            };
            st.id = 9;
            let mut t = tx.open_table(SERVICE_TEMPLATES).unwrap();
            t.insert(9, st.encode().as_slice()).unwrap();
            tx.open_table(ST_BY_BIZ)
                .unwrap()
                .insert((7, 9), ())
                .unwrap();
            tx.open_table(SEQUENCES)
                .unwrap()
                .insert("service_template", 9)
                .unwrap();
        });
        reported(&p, &["service template 9", "not unique in business 7", "5"]);
    }

    #[test]
    fn relations_processes_and_service_instances() {
        let p = corrupt(|tx| {
            tx.open_table(RELATIONS).unwrap().remove(41).unwrap();
        });
        reported(&p, &["process 41", "has no relation"]);
        let p = corrupt(|tx| {
            tx.open_table(PROCESSES).unwrap().remove(41).unwrap();
        });
        reported(&p, &["relation of process 41", "process does not exist"]);
        let p = corrupt(|tx| {
            let mut r = relation_41(tx);
            r.service_instance_id = 99;
            put_relation(tx, 41, &r);
        });
        reported(
            &p,
            &[
                "relation of process 41",
                "service instance 99 does not exist",
            ],
        );
        reported(&p, &["process 41", "service_instance_id differs"]);
        let p = corrupt(|tx| {
            let mut r = relation_41(tx);
            r.bk_host_id = 12;
            put_relation(tx, 41, &r);
        });
        reported(
            &p,
            &["relation of process 41", "differ from service instance 30"],
        );
        let p = corrupt(|tx| {
            let mut r = relation_41(tx);
            r.process_template_id = 66;
            put_relation(tx, 41, &r);
        });
        reported(&p, &["relation of process 41", "process template 66"]);
        let p = corrupt(|tx| {
            let mut r = relation_41(tx);
            r.bk_process_id = 40;
            put_relation(tx, 41, &r);
        });
        reported(&p, &["relation of process 41", "names process 40"]);
        let p = corrupt(|tx| {
            let mut map = process_41(tx);
            map.insert("bk_biz_id".into(), json!(8));
            put_process(tx, 41, &map);
        });
        reported(&p, &["process 41", "bk_biz_id differs"]);
        let p = corrupt(|tx| {
            let mut map = process_41(tx);
            map.insert("bk_process_id".into(), json!(4));
            put_process(tx, 41, &map);
        });
        reported(&p, &["process 41", "bk_process_id field differs"]);
        let p = corrupt(|tx| {
            tx.open_table(MODULES).unwrap().remove(20).unwrap();
        });
        reported(&p, &["service instance 30", "module 20 does not exist"]);
        let p = corrupt(|tx| {
            tx.open_table(HOSTS).unwrap().remove(11).unwrap();
        });
        reported(&p, &["service instance 30", "host 11 does not exist"]);
        reported(&p, &["module", "host 11 does not exist"]);
        let p = corrupt(|tx| {
            tx.open_table(SERVICE_TEMPLATES).unwrap().remove(5).unwrap();
        });
        reported(
            &p,
            &["process template 6", "service template 5 does not exist"],
        );
        reported(
            &p,
            &["service instance 31", "service template 5 does not exist"],
        );
    }

    #[test]
    fn sequences_at_least_every_issued_id() {
        let p = corrupt(|tx| {
            tx.open_table(SEQUENCES)
                .unwrap()
                .insert("process", 40)
                .unwrap();
        });
        reported(&p, &["sequence process", "at 40", "below issued id 41"]);
        let p = corrupt(|tx| {
            tx.open_table(SEQUENCES)
                .unwrap()
                .remove("service_instance")
                .unwrap();
        });
        reported(
            &p,
            &["sequence service_instance", "at 0", "below issued id 31"],
        );
        let p = corrupt(|tx| {
            tx.open_table(SEQUENCES)
                .unwrap()
                .insert("widgets", 3)
                .unwrap();
        });
        reported(&p, &["sequence \"widgets\"", "not a kind"]);
        // A relation left without its process still counts as an issued process id.
        let p = corrupt(|tx| {
            let mut r = relation_41(tx);
            r.bk_process_id = 50;
            put_relation(tx, 50, &r);
        });
        reported(&p, &["sequence process", "below issued id 50"]);
    }

    #[test]
    fn records_that_do_not_decode_or_sit_under_another_id() {
        let p = corrupt(|tx| {
            let mut t = tx.open_table(PROCESSES).unwrap();
            let mut bytes = t.get(41).unwrap().unwrap().value().to_vec();
            bytes[0] = 9;
            t.insert(41, bytes.as_slice()).unwrap();
        });
        reported(&p, &["process 41", "schema version 9"]);
        let p = corrupt(|tx| {
            let mut t = tx.open_table(SERVICE_INSTANCES).unwrap();
            t.insert(
                30,
                [crate::store::codec::SCHEMA_VERSION, 0xff, 0xff].as_slice(),
            )
            .unwrap();
        });
        reported(&p, &["service instance 30", "does not decode"]);
        let p = corrupt(|tx| {
            let bytes = {
                let t = tx.open_table(HOSTS).unwrap();
                t.get(11).unwrap().unwrap().value().to_vec()
            };
            tx.open_table(HOSTS)
                .unwrap()
                .insert(13, bytes.as_slice())
                .unwrap();
        });
        reported(&p, &["host 13", "stored under another id (11)"]);
    }

    #[test]
    fn topology_indexes_references_and_built_ins() {
        // A module's host entry missing, a stray host-by-IP entry, a host-by-set entry of a
        // module that does not hold the host.
        let p = corrupt(|tx| {
            tx.open_table(MODULE_BY_HOST)
                .unwrap()
                .remove((11, 20))
                .unwrap();
            tx.open_table(HOST_BY_IP)
                .unwrap()
                .insert(("10.9.9.9", 0, 11), ())
                .unwrap();
            tx.open_table(HOST_BY_SET)
                .unwrap()
                .insert((3, 12, 21), ())
                .unwrap();
        });
        reported(&p, &["idx_module_by_host", "(11, 20)", "missing"]);
        reported(&p, &["idx_host_by_ip", "10.9.9.9", "no matching record"]);
        reported(
            &p,
            &["idx_host_by_set", "(3, 12, 21)", "no matching record"],
        );
        // A module whose set is gone; no cloud area 0; no resource pool.
        let p = corrupt(|tx| {
            tx.open_table(SETS).unwrap().remove(3).unwrap();
            tx.open_table(CLOUD_AREAS).unwrap().remove(0).unwrap();
            tx.open_table(BUSINESSES).unwrap().remove(1).unwrap();
        });
        reported(&p, &["module 20", "set 3 does not exist"]);
        reported(&p, &["host 11", "cloud area 0 does not exist"]);
        reported(&p, &["cloud area 0", "missing"]);
        reported(&p, &["no resource pool"]);
        reported(&p, &["set 1", "business 1 does not exist"]);
        // A sequence below a set id.
        let p = corrupt(|tx| {
            tx.open_table(SEQUENCES).unwrap().insert("set", 1).unwrap();
        });
        reported(&p, &["sequence set", "below issued id 5"]);
    }
}
