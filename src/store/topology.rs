//! The topology records (businesses, sets, modules, hosts, cloud areas): their writes, which
//! maintain every topology index in the record's own transaction, their reads, and the part of
//! `check` that recomputes those indexes from the records.
//!
//! Indexes (tables in `tables.rs`): sets by business; modules by set, by business, by service
//! template; a host's modules (a module's `hosts` are the other way); hosts by set and by
//! business (present while at least one module of that set or business holds the host); hosts
//! by each inner IPv4/IPv6 address and cloud area.

use super::StoreError;
use super::read::{Snapshot, Tx};
use super::records::*;
use super::tables::*;
use super::{ReadTx, WriteTx, read_err};
use redb::ReadableTable;
use std::collections::{BTreeMap, BTreeSet};

/// The addresses a host is indexed by: each element of its inner IPv4 and IPv6 lists.
pub fn inner_ips(h: &Host) -> Vec<String> {
    let mut out: Vec<String> = h
        .bk_host_innerip
        .split(',')
        .chain(h.bk_host_innerip_v6.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    out.sort();
    out.dedup();
    out
}

impl<T: Snapshot> Tx<T> {
    pub fn set(&self, id: i64) -> Result<Option<Set>, StoreError> {
        self.get(id)
    }
    pub fn cloud_area(&self, id: i64) -> Result<Option<CloudArea>, StoreError> {
        self.get(id)
    }
    pub fn each_business<E: From<StoreError>>(
        &self,
        f: impl FnMut(i64, Business) -> Result<bool, E>,
    ) -> Result<(), E> {
        self.scan(f)
    }
    pub fn each_set<E: From<StoreError>>(
        &self,
        f: impl FnMut(i64, Set) -> Result<bool, E>,
    ) -> Result<(), E> {
        self.scan(f)
    }
    pub fn each_host<E: From<StoreError>>(
        &self,
        f: impl FnMut(i64, Host) -> Result<bool, E>,
    ) -> Result<(), E> {
        self.scan(f)
    }
    pub fn each_module<E: From<StoreError>>(
        &self,
        f: impl FnMut(i64, Module) -> Result<bool, E>,
    ) -> Result<(), E> {
        self.scan(f)
    }
    pub fn each_cloud_area<E: From<StoreError>>(
        &self,
        f: impl FnMut(i64, CloudArea) -> Result<bool, E>,
    ) -> Result<(), E> {
        self.scan(f)
    }
    /// Set ids of a business, ascending.
    pub fn set_ids_of_biz(&self, biz: i64) -> Result<Vec<i64>, StoreError> {
        self.index_pairs(SET_BY_BIZ, biz)
    }
    pub fn module_ids_of_set(&self, set: i64) -> Result<Vec<i64>, StoreError> {
        self.index_pairs(MODULE_BY_SET, set)
    }
    pub fn module_ids_of_biz(&self, biz: i64) -> Result<Vec<i64>, StoreError> {
        self.index_pairs(MODULE_BY_BIZ, biz)
    }
    pub fn module_ids_of_template(&self, st: i64) -> Result<Vec<i64>, StoreError> {
        self.index_pairs(MODULE_BY_ST, st)
    }
    pub fn module_ids_of_host(&self, host: i64) -> Result<Vec<i64>, StoreError> {
        self.index_pairs(MODULE_BY_HOST, host)
    }
    /// Distinct hosts of a set / a business, ascending.
    pub fn host_ids_of_set(&self, set: i64) -> Result<Vec<i64>, StoreError> {
        self.hosts_under(HOST_BY_SET, set)
    }
    pub fn host_ids_of_biz(&self, biz: i64) -> Result<Vec<i64>, StoreError> {
        self.hosts_under(HOST_BY_BIZ, biz)
    }
    fn hosts_under(
        &self,
        def: redb::TableDefinition<(i64, i64, i64), ()>,
        a: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let t = self.txn.table(def).map_err(read_err)?;
        let mut out: Vec<i64> = Vec::new();
        for item in t
            .range((a, i64::MIN, i64::MIN)..=(a, i64::MAX, i64::MAX))
            .map_err(read_err)?
        {
            let h = item.map_err(read_err)?.0.value().1;
            if out.last() != Some(&h) {
                out.push(h);
            }
        }
        Ok(out)
    }
    /// Hosts whose inner IPv4 or IPv6 list holds `ip`, in cloud area `cloud`.
    pub fn host_ids_by_ip(&self, ip: &str, cloud: i64) -> Result<Vec<i64>, StoreError> {
        let t = self.txn.table(HOST_BY_IP).map_err(read_err)?;
        let mut out = Vec::new();
        for item in t
            .range((ip, cloud, i64::MIN)..=(ip, cloud, i64::MAX))
            .map_err(read_err)?
        {
            out.push(item.map_err(read_err)?.0.value().2);
        }
        Ok(out)
    }
}

impl WriteTx {
    pub fn put_set(&mut self, s: &Set) -> Result<(), StoreError> {
        self.put(s)
    }
    pub fn put_cloud_area(&mut self, c: &CloudArea) -> Result<(), StoreError> {
        self.put(c)
    }
}

/// `check`'s part for the topology: recomputes every topology index from the records and
/// compares both ways; every set's business, module's set (same business) and host's cloud
/// area must exist.
pub(super) fn check(
    tx: &ReadTx,
    bizs: &BTreeMap<i64, Business>,
    hosts: &BTreeMap<i64, Host>,
    modules: &BTreeMap<i64, Module>,
    p: &mut super::check::Sink<'_>,
) -> Result<(), StoreError> {
    use super::check::{compare, own, records};
    let sets: BTreeMap<i64, Set> = records(tx, p)?;
    let clouds: BTreeMap<i64, CloudArea> = records(tx, p)?;
    for (&id, c) in &clouds {
        own(p, "cloud area", id, c.bk_cloud_id);
    }
    let mut set_by_biz = Vec::new();
    for (&id, s) in &sets {
        own(p, "set", id, s.bk_set_id);
        if !bizs.contains_key(&s.bk_biz_id) {
            p.push(format!("set {id}: business {} does not exist", s.bk_biz_id));
        }
        set_by_biz.push((s.bk_biz_id, id));
    }
    let (mut by_set, mut by_biz, mut by_st, mut by_host) = (vec![], vec![], vec![], vec![]);
    let (mut host_set, mut host_biz) = (BTreeSet::new(), BTreeSet::new());
    for (&id, m) in modules {
        match sets.get(&m.bk_set_id) {
            None => p.push(format!("module {id}: set {} does not exist", m.bk_set_id)),
            Some(s) if s.bk_biz_id != m.bk_biz_id => p.push(format!(
                "module {id}: set {} is in another business",
                m.bk_set_id
            )),
            Some(_) => {}
        }
        by_set.push((m.bk_set_id, id));
        by_biz.push((m.bk_biz_id, id));
        if m.service_template_id != 0 {
            by_st.push((m.service_template_id, id));
        }
        for &h in &m.hosts {
            by_host.push((h, id));
            host_set.insert((m.bk_set_id, h, id));
            host_biz.insert((m.bk_biz_id, h, id));
        }
    }
    let mut by_ip = Vec::new();
    for (&id, h) in hosts {
        if !clouds.contains_key(&h.bk_cloud_id) {
            p.push(format!(
                "host {id}: cloud area {} does not exist",
                h.bk_cloud_id
            ));
        }
        for ip in inner_ips(h) {
            by_ip.push((ip, h.bk_cloud_id, id));
        }
    }
    let pairs =
        |def: redb::TableDefinition<(i64, i64), ()>| -> Result<Vec<(i64, i64)>, StoreError> {
            let t = tx.txn.open_table(def).map_err(read_err)?;
            let mut out = Vec::new();
            for item in t.iter().map_err(read_err)? {
                out.push(item.map_err(read_err)?.0.value());
            }
            Ok(out)
        };
    compare(p, "idx_set_by_biz", pairs(SET_BY_BIZ)?, set_by_biz);
    compare(p, "idx_module_by_set", pairs(MODULE_BY_SET)?, by_set);
    compare(p, "idx_module_by_biz", pairs(MODULE_BY_BIZ)?, by_biz);
    compare(p, "idx_module_by_st", pairs(MODULE_BY_ST)?, by_st);
    compare(p, "idx_module_by_host", pairs(MODULE_BY_HOST)?, by_host);
    let triples =
        |def: redb::TableDefinition<(i64, i64, i64), ()>| -> Result<Vec<(i64, i64, i64)>, StoreError> {
            let t = tx.txn.open_table(def).map_err(read_err)?;
            let mut out = Vec::new();
            for item in t.iter().map_err(read_err)? {
                out.push(item.map_err(read_err)?.0.value());
            }
            Ok(out)
        };
    compare(p, "idx_host_by_set", triples(HOST_BY_SET)?, host_set);
    compare(p, "idx_host_by_biz", triples(HOST_BY_BIZ)?, host_biz);
    let stored_ip = {
        let t = tx.txn.open_table(HOST_BY_IP).map_err(read_err)?;
        let mut out = Vec::new();
        for item in t.iter().map_err(read_err)? {
            let (k, _) = item.map_err(read_err)?;
            let (ip, cloud, host) = k.value();
            out.push((ip.to_string(), cloud, host));
        }
        out
    };
    compare(p, "idx_host_by_ip", stored_ip, by_ip);
    // The built-in records every store holds.
    if !clouds.contains_key(&0) {
        p.push("cloud area 0: missing (every store has \"Default Area\")".into());
    }
    if !bizs.values().any(|b| b.default == 1) {
        p.push("business: no resource pool (default 1)".into());
    }
    let top = [
        (Kind::Business, bizs.keys().max()),
        (Kind::Set, sets.keys().max()),
        (Kind::Module, modules.keys().max()),
        (Kind::Host, hosts.keys().max()),
        (Kind::CloudArea, clouds.keys().max()),
    ];
    for (kind, max) in top {
        let max = max.copied().unwrap_or(0);
        let seq = tx.sequence(kind)?;
        if seq < max {
            p.push(format!(
                "sequence {}: at {seq}, below issued id {max}",
                kind.name()
            ));
        }
    }
    Ok(())
}
