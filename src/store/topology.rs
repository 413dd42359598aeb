//! The topology records (businesses, sets, modules, hosts, cloud areas): their writes, which
//! maintain every topology index in the record's own transaction, their reads, and the part of
//! `check` that recomputes those indexes from the records.
//!
//! Indexes (tables in `tables.rs`): sets by business; modules by set, by business, by service
//! template; a host's modules (a module's `hosts` are the other way); hosts by set and by
//! business (present while at least one module of that set or business holds the host); hosts
//! by each inner IPv4/IPv6 address and cloud area.

use super::records::*;
use super::tables::*;
use super::{ReadTx, Undo, WriteTx, read_err, write_err};
use crate::error::CcError;
use redb::ReadableTable;
use std::collections::BTreeSet;

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

macro_rules! topo_reads {
    ($tx:ty) => {
        impl $tx {
            pub fn set(&self, id: i64) -> Result<Option<Set>, CcError> {
                self.get_rec(SETS, id)
            }
            pub fn cloud_area(&self, id: i64) -> Result<Option<CloudArea>, CcError> {
                self.get_rec(CLOUD_AREAS, id)
            }
            pub fn each_set(
                &self,
                f: impl FnMut(i64, Set) -> Result<bool, CcError>,
            ) -> Result<(), CcError> {
                self.scan_rec(SETS, f)
            }
            pub fn each_cloud_area(
                &self,
                f: impl FnMut(i64, CloudArea) -> Result<bool, CcError>,
            ) -> Result<(), CcError> {
                self.scan_rec(CLOUD_AREAS, f)
            }
            /// Set ids of a business, ascending.
            pub fn set_ids_of_biz(&self, biz: i64) -> Result<Vec<i64>, CcError> {
                self.index_pairs(SET_BY_BIZ, biz)
            }
            pub fn module_ids_of_set(&self, set: i64) -> Result<Vec<i64>, CcError> {
                self.index_pairs(MODULE_BY_SET, set)
            }
            pub fn module_ids_of_biz(&self, biz: i64) -> Result<Vec<i64>, CcError> {
                self.index_pairs(MODULE_BY_BIZ, biz)
            }
            pub fn module_ids_of_template(&self, st: i64) -> Result<Vec<i64>, CcError> {
                self.index_pairs(MODULE_BY_ST, st)
            }
            pub fn module_ids_of_host(&self, host: i64) -> Result<Vec<i64>, CcError> {
                self.index_pairs(MODULE_BY_HOST, host)
            }
            /// Distinct hosts of a set / a business, ascending.
            pub fn host_ids_of_set(&self, set: i64) -> Result<Vec<i64>, CcError> {
                self.index_pairs(HOST_BY_SET, set)
            }
            pub fn host_ids_of_biz(&self, biz: i64) -> Result<Vec<i64>, CcError> {
                self.index_pairs(HOST_BY_BIZ, biz)
            }
            /// Hosts whose inner IPv4 or IPv6 list holds `ip`, in cloud area `cloud`.
            pub fn host_ids_by_ip(&self, ip: &str, cloud: i64) -> Result<Vec<i64>, CcError> {
                let t = self.txn.open_table(HOST_BY_IP).map_err(read_err)?;
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
    };
}

topo_reads!(ReadTx);
topo_reads!(WriteTx);

impl WriteTx {
    /// True if `(a, b)` is in the index `def`.
    fn has_pair(
        &self,
        def: redb::TableDefinition<(i64, i64), ()>,
        a: i64,
        b: i64,
    ) -> Result<bool, CcError> {
        let t = self.txn.open_table(def).map_err(read_err)?;
        Ok(t.get((a, b)).map_err(read_err)?.is_some())
    }

    pub fn put_business(&mut self, b: &Business) -> Result<(), CcError> {
        self.put_rec(BUSINESSES, b.bk_biz_id, b)
    }

    pub fn put_cloud_area(&mut self, c: &CloudArea) -> Result<(), CcError> {
        self.put_rec(CLOUD_AREAS, c.bk_cloud_id, c)
    }

    /// Inserts or replaces a set and its index entry.
    pub fn put_set(&mut self, s: &Set) -> Result<(), CcError> {
        if let Some(old) = self.set(s.bk_set_id)? {
            self.pair(SET_BY_BIZ, old.bk_biz_id, old.bk_set_id, false)?;
        }
        self.put_rec(SETS, s.bk_set_id, s)?;
        self.pair(SET_BY_BIZ, s.bk_biz_id, s.bk_set_id, true)
    }

    /// Inserts or replaces a host and its address entries.
    pub fn put_host(&mut self, h: &Host) -> Result<(), CcError> {
        if let Some(old) = self.host(h.bk_host_id)? {
            for ip in inner_ips(&old) {
                self.host_ip(&ip, old.bk_cloud_id, old.bk_host_id, false)?;
            }
        }
        self.put_rec(HOSTS, h.bk_host_id, h)?;
        for ip in inner_ips(h) {
            self.host_ip(&ip, h.bk_cloud_id, h.bk_host_id, true)?;
        }
        Ok(())
    }

    fn host_ip(&mut self, ip: &str, cloud: i64, host: i64, present: bool) -> Result<(), CcError> {
        let was = {
            let mut t = self.txn.open_table(HOST_BY_IP).map_err(write_err)?;
            if present {
                t.insert((ip, cloud, host), ())
                    .map_err(write_err)?
                    .is_some()
            } else {
                t.remove((ip, cloud, host)).map_err(write_err)?.is_some()
            }
        };
        self.log(|| Undo::HostIp(ip.to_string(), cloud, host, was));
        Ok(())
    }

    /// Inserts or replaces a module: its set, business and template entries, its hosts'
    /// module entries, and the host-by-set and host-by-business entries of every host it gains
    /// or loses.
    pub fn put_module(&mut self, m: &Module) -> Result<(), CcError> {
        let old = self.module(m.bk_module_id)?;
        let mut touched: BTreeSet<i64> = m.hosts.iter().copied().collect();
        let mut places = vec![(m.bk_set_id, m.bk_biz_id)];
        if let Some(o) = &old {
            let id = o.bk_module_id;
            self.pair(MODULE_BY_SET, o.bk_set_id, id, false)?;
            self.pair(MODULE_BY_BIZ, o.bk_biz_id, id, false)?;
            if o.service_template_id != 0 {
                self.pair(MODULE_BY_ST, o.service_template_id, id, false)?;
            }
            for &h in &o.hosts {
                self.pair(MODULE_BY_HOST, h, id, false)?;
                touched.insert(h);
            }
            places.push((o.bk_set_id, o.bk_biz_id));
        }
        self.put_rec(MODULES, m.bk_module_id, m)?;
        let id = m.bk_module_id;
        self.pair(MODULE_BY_SET, m.bk_set_id, id, true)?;
        self.pair(MODULE_BY_BIZ, m.bk_biz_id, id, true)?;
        if m.service_template_id != 0 {
            self.pair(MODULE_BY_ST, m.service_template_id, id, true)?;
        }
        for &h in &m.hosts {
            self.pair(MODULE_BY_HOST, h, id, true)?;
        }
        places.dedup();
        for h in touched {
            self.place_host(h, &places)?;
        }
        Ok(())
    }

    /// Sets host `h`'s entries under each (set, business) of `places` to whether one of its
    /// modules is in that set / business.
    fn place_host(&mut self, h: i64, places: &[(i64, i64)]) -> Result<(), CcError> {
        let mods = self.module_ids_of_host(h)?;
        for &(set, biz) in places {
            let mut in_set = false;
            let mut in_biz = false;
            for &mid in &mods {
                in_set = in_set || self.has_pair(MODULE_BY_SET, set, mid)?;
                in_biz = in_biz || self.has_pair(MODULE_BY_BIZ, biz, mid)?;
            }
            self.pair(HOST_BY_SET, set, h, in_set)?;
            self.pair(HOST_BY_BIZ, biz, h, in_biz)?;
        }
        Ok(())
    }
}

/// `check`'s part for the topology: recomputes every topology index from the records and
/// compares both ways; every set's business, module's set (same business) and host's cloud
/// area must exist.
pub(crate) fn check(
    tx: &ReadTx,
    bizs: &std::collections::BTreeMap<i64, Business>,
    hosts: &std::collections::BTreeMap<i64, Host>,
    modules: &std::collections::BTreeMap<i64, Module>,
    p: &mut Vec<String>,
) -> Result<(), CcError> {
    use super::check::{compare, own, records, typed};
    let sets: std::collections::BTreeMap<i64, Set> = records(tx, SETS, "set", typed, p)?;
    let clouds: std::collections::BTreeMap<i64, CloudArea> =
        records(tx, CLOUD_AREAS, "cloud area", typed, p)?;
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
            host_set.insert((m.bk_set_id, h));
            host_biz.insert((m.bk_biz_id, h));
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
    let pairs = |def: redb::TableDefinition<(i64, i64), ()>| -> Result<Vec<(i64, i64)>, CcError> {
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
    compare(p, "idx_host_by_set", pairs(HOST_BY_SET)?, host_set);
    compare(p, "idx_host_by_biz", pairs(HOST_BY_BIZ)?, host_biz);
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
