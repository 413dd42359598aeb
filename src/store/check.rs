//! `cmdb-lite check`: proves the store's invariants. Every index entry must be derivable from a
//! record and every record's entries must be present; relations, processes and service
//! instances must point at each other; every sequence must be at least the largest id it issued.
//! Each problem is reported as one line naming the record.

use super::records::Kind;
use super::{ProcKey, ReadTx, Store};
use crate::error::CcError;
use std::collections::{BTreeMap, BTreeSet};

/// Every entry of every index, read in one snapshot.
#[derive(Default)]
pub(crate) struct IndexSnapshot {
    pub proc_by_si: Vec<(i64, i64)>,
    pub si_by_module: Vec<(i64, i64)>,
    pub si_by_host: Vec<(i64, i64)>,
    pub st_by_biz: Vec<(i64, i64)>,
    pub pt_by_st: Vec<(i64, i64)>,
    pub uniq_proc_name: Vec<(i64, String, i64)>,
    pub uniq_proc_func: Vec<(i64, String, String, i64)>,
    pub uniq_si_template: Vec<((i64, i64, i64), i64)>,
    pub uniq_st_name: Vec<(i64, String, i64)>,
}

/// Compares an index as stored with the index the records imply, both ways.
fn compare<T: Ord + std::fmt::Debug>(
    problems: &mut Vec<String>,
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

/// Runs every check; an empty list means the store is clean.
pub fn run(store: &Store) -> Result<Vec<String>, CcError> {
    store.read(check_tx)
}

fn check_tx(tx: &ReadTx) -> Result<Vec<String>, CcError> {
    let mut p = Vec::new();
    let mut max_id: BTreeMap<&'static str, i64> = BTreeMap::new();
    let mut bump = |kind: Kind, id: i64| {
        let e = max_id.entry(kind.name()).or_insert(0);
        *e = (*e).max(id);
    };

    let mut bizs = BTreeSet::new();
    tx.each_business(|id, b| {
        if id != b.bk_biz_id {
            p.push(format!(
                "business {id}: stored under another id ({})",
                b.bk_biz_id
            ));
        }
        bizs.insert(id);
        Ok(true)
    })?;
    let mut hosts = BTreeSet::new();
    tx.each_host(|id, _| {
        hosts.insert(id);
        Ok(true)
    })?;
    let mut categories = BTreeSet::new();
    tx.each_service_category(|id, _| {
        categories.insert(id);
        bump(Kind::ServiceCategory, id);
        Ok(true)
    })?;
    let mut templates = BTreeMap::new();
    let mut st_by_biz = Vec::new();
    let mut st_names = Vec::new();
    tx.each_service_template(|id, st| {
        bump(Kind::ServiceTemplate, id);
        if !bizs.contains(&st.bk_biz_id) {
            p.push(format!(
                "service template {id}: business {} does not exist",
                st.bk_biz_id
            ));
        }
        st_by_biz.push((st.bk_biz_id, id));
        st_names.push((st.bk_biz_id, st.name.clone(), id));
        templates.insert(id, st.bk_biz_id);
        Ok(true)
    })?;
    let mut modules = BTreeMap::new();
    tx.each_module(|id, m| {
        if !bizs.contains(&m.bk_biz_id) {
            p.push(format!(
                "module {id}: business {} does not exist",
                m.bk_biz_id
            ));
        }
        for h in &m.hosts {
            if !hosts.contains(h) {
                p.push(format!("module {id}: host {h} does not exist"));
            }
        }
        if m.service_template_id != 0 && !templates.contains_key(&m.service_template_id) {
            p.push(format!(
                "module {id}: service template {} does not exist",
                m.service_template_id
            ));
        }
        modules.insert(id, m);
        Ok(true)
    })?;
    let mut pt_by_st = Vec::new();
    tx.each_process_template(|id, pt| {
        bump(Kind::ProcessTemplate, id);
        if !templates.contains_key(&pt.service_template_id) {
            p.push(format!(
                "process template {id}: service template {} does not exist",
                pt.service_template_id
            ));
        }
        pt_by_st.push((pt.service_template_id, id));
        Ok(true)
    })?;
    let mut sis = BTreeMap::new();
    let (mut si_by_module, mut si_by_host, mut si_tpl) = (Vec::new(), Vec::new(), Vec::new());
    tx.each_service_instance(|id, si| {
        bump(Kind::ServiceInstance, id);
        if !bizs.contains(&si.bk_biz_id) {
            p.push(format!(
                "service instance {id}: business {} does not exist",
                si.bk_biz_id
            ));
        }
        if !modules.contains_key(&si.bk_module_id) {
            p.push(format!(
                "service instance {id}: module {} does not exist",
                si.bk_module_id
            ));
        }
        if !hosts.contains(&si.bk_host_id) {
            p.push(format!(
                "service instance {id}: host {} does not exist",
                si.bk_host_id
            ));
        }
        si_by_module.push((si.bk_module_id, id));
        si_by_host.push((si.bk_host_id, id));
        if si.service_template_id != 0 {
            si_tpl.push(((si.bk_module_id, si.bk_host_id, si.service_template_id), id));
        }
        sis.insert(id, si);
        Ok(true)
    })?;
    let mut relations = BTreeMap::new();
    tx.each_relation(|pid, r| {
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
        relations.insert(pid, r);
        Ok(true)
    })?;
    let (mut proc_by_si, mut names, mut funcs) = (Vec::new(), Vec::new(), Vec::new());
    let mut procs = BTreeSet::new();
    tx.each_process(|pid, map| {
        bump(Kind::Process, pid);
        procs.insert(pid);
        if map.get("bk_process_id").and_then(|v| v.as_i64()) != Some(pid) {
            p.push(format!(
                "process {pid}: bk_process_id field differs from its key"
            ));
        }
        let si = map.get("service_instance_id").and_then(|v| v.as_i64());
        match relations.get(&pid) {
            None => p.push(format!("process {pid}: has no relation")),
            Some(r) => {
                if Some(r.service_instance_id) != si {
                    p.push(format!(
                        "process {pid}: service_instance_id differs from its relation"
                    ));
                }
                proc_by_si.push((r.service_instance_id, pid));
            }
        }
        for key in ProcKey::of(&map) {
            match key {
                ProcKey::Name { si, name } => names.push((si, name, pid)),
                ProcKey::Func { si, func, regex } => funcs.push((si, func, regex, pid)),
            }
        }
        Ok(true)
    })?;
    for pid in relations.keys() {
        if !procs.contains(pid) {
            p.push(format!(
                "relation of process {pid}: the process does not exist"
            ));
        }
    }
    // A unique key held twice shows up as two expected entries for one stored key.
    let mut seen = BTreeSet::new();
    for (si, name, pid) in &names {
        if !seen.insert((si, name)) {
            p.push(format!(
                "process {pid}: name {name:?} is not unique in service instance {si}"
            ));
        }
    }
    let mut seen = BTreeSet::new();
    for (si, func, regex, pid) in &funcs {
        if !seen.insert((si, func, regex)) {
            p.push(format!(
                "process {pid}: ({func:?}, {regex:?}) is not unique in service instance {si}"
            ));
        }
    }

    let idx = tx.index_entries()?;
    compare(&mut p, "idx_proc_by_si", idx.proc_by_si, proc_by_si);
    compare(&mut p, "idx_si_by_module", idx.si_by_module, si_by_module);
    compare(&mut p, "idx_si_by_host", idx.si_by_host, si_by_host);
    compare(&mut p, "idx_st_by_biz", idx.st_by_biz, st_by_biz);
    compare(&mut p, "idx_pt_by_st", idx.pt_by_st, pt_by_st);
    compare(&mut p, "uniq_proc_name", idx.uniq_proc_name, names);
    compare(&mut p, "uniq_proc_func", idx.uniq_proc_func, funcs);
    compare(&mut p, "uniq_si_template", idx.uniq_si_template, si_tpl);
    compare(&mut p, "uniq_st_name", idx.uniq_st_name, st_names);

    for kind in Kind::ALL {
        let seq = tx.sequence(kind)?;
        let max = max_id.get(kind.name()).copied().unwrap_or(0);
        if seq < max {
            p.push(format!(
                "sequence {}: at {seq}, below issued id {max}",
                kind.name()
            ));
        }
    }
    Ok(p)
}
