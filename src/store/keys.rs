//! Index entries and uniqueness keys: what a record holds in the index tables.
//!
//! A record names its entries with [`crate::store::typed::Record::index`]; `WriteTx::put` and
//! `WriteTx::delete` add and remove them in the record's own transaction, and `check`
//! recomputes them from the records. Two shapes of table: a *pair* index `(a, b) → ()` lists
//! the `b`s of an `a` in order; a *unique* index `key → id` is held by one record, and a second
//! record taking it is refused. Adding an index is a table in `tables.rs`, a variant here and
//! its line in [`IndexKey::shape`].

use super::StoreError;
use super::tables::*;
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde_json::{Map, Value};

/// One entry a record holds in an index table.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum IndexKey {
    /// (service instance, process), of a relation.
    ProcBySi(i64, i64),
    /// (module, service instance).
    SiByModule(i64, i64),
    /// (host, service instance).
    SiByHost(i64, i64),
    /// (business, service template).
    StByBiz(i64, i64),
    /// (service template, process template).
    PtBySt(i64, i64),
    /// Unique (service instance, bk_process_name) of a process.
    ProcName(i64, String),
    /// Unique (service instance, bk_func_name, bk_start_param_regex) of a process.
    ProcFunc(i64, String, String),
    /// Unique (module, host, service template) of a template's service instance.
    SiTemplate(i64, i64, i64),
    /// Unique (business, name) of a service template.
    StName(i64, String),
    /// (business, set), of a set.
    SetByBiz(i64, i64),
    /// (set, module), (business, module), (service template, module), (host, module): of a
    /// module.
    ModuleBySet(i64, i64),
    ModuleByBiz(i64, i64),
    ModuleBySt(i64, i64),
    ModuleByHost(i64, i64),
    /// (set, host, module) and (business, host, module): a module's hosts.
    HostBySet(i64, i64, i64),
    HostByBiz(i64, i64, i64),
    /// (inner IP, cloud area, host): each inner IPv4/IPv6 address of a host.
    HostByIp(String, i64, i64),
}

/// What an index key held before a write, so that the write can be taken back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Held {
    Absent,
    /// A pair index's entry was there.
    Present,
    /// A unique key was held by this id.
    By(i64),
}

/// The table and the key of an entry, by the shape of its table.
enum Shape<'a> {
    Pair(TableDefinition<'static, (i64, i64), ()>, (i64, i64)),
    /// A pair index with a three-part key.
    Pair3(
        TableDefinition<'static, (i64, i64, i64), ()>,
        (i64, i64, i64),
    ),
    /// A pair index keyed by a text and two ids.
    PairText(
        TableDefinition<'static, (&'static str, i64, i64), ()>,
        (&'a str, i64, i64),
    ),
    Str(
        TableDefinition<'static, (i64, &'static str), i64>,
        (i64, &'a str),
    ),
    Str2(
        TableDefinition<'static, (i64, &'static str, &'static str), i64>,
        (i64, &'a str, &'a str),
    ),
    Int3(
        TableDefinition<'static, (i64, i64, i64), i64>,
        (i64, i64, i64),
    ),
}

/// Runs `$body` with `$t` the opened unique table and `$k` the key, for each unique shape.
macro_rules! unique {
    ($shape:expr, $txn:expr, |$t:ident, $k:ident| $body:expr) => {
        match $shape {
            Shape::Pair(..) | Shape::Pair3(..) | Shape::PairText(..) => {
                unreachable!("a pair index is not unique")
            }
            Shape::Str(def, $k) => {
                let mut $t = $txn.open_table(def)?;
                $body
            }
            Shape::Str2(def, $k) => {
                let mut $t = $txn.open_table(def)?;
                $body
            }
            Shape::Int3(def, $k) => {
                let mut $t = $txn.open_table(def)?;
                $body
            }
        }
    };
}

impl IndexKey {
    fn shape(&self) -> Shape<'_> {
        use IndexKey::*;
        match self {
            ProcBySi(a, b) => Shape::Pair(PROC_BY_SI, (*a, *b)),
            SiByModule(a, b) => Shape::Pair(SI_BY_MODULE, (*a, *b)),
            SiByHost(a, b) => Shape::Pair(SI_BY_HOST, (*a, *b)),
            StByBiz(a, b) => Shape::Pair(ST_BY_BIZ, (*a, *b)),
            PtBySt(a, b) => Shape::Pair(PT_BY_ST, (*a, *b)),
            ProcName(si, name) => Shape::Str(UNIQ_PROC_NAME, (*si, name)),
            ProcFunc(si, func, regex) => Shape::Str2(UNIQ_PROC_FUNC, (*si, func, regex)),
            SiTemplate(m, h, st) => Shape::Int3(UNIQ_SI_TEMPLATE, (*m, *h, *st)),
            StName(biz, name) => Shape::Str(UNIQ_ST_NAME, (*biz, name)),
            SetByBiz(a, b) => Shape::Pair(SET_BY_BIZ, (*a, *b)),
            ModuleBySet(a, b) => Shape::Pair(MODULE_BY_SET, (*a, *b)),
            ModuleByBiz(a, b) => Shape::Pair(MODULE_BY_BIZ, (*a, *b)),
            ModuleBySt(a, b) => Shape::Pair(MODULE_BY_ST, (*a, *b)),
            ModuleByHost(a, b) => Shape::Pair(MODULE_BY_HOST, (*a, *b)),
            HostBySet(a, b, c) => Shape::Pair3(HOST_BY_SET, (*a, *b, *c)),
            HostByBiz(a, b, c) => Shape::Pair3(HOST_BY_BIZ, (*a, *b, *c)),
            HostByIp(ip, cloud, host) => Shape::PairText(HOST_BY_IP, (ip, *cloud, *host)),
        }
    }

    /// True for a unique key (held by one id), false for a pair index's entry.
    pub fn is_unique(&self) -> bool {
        !matches!(
            self.shape(),
            Shape::Pair(..) | Shape::Pair3(..) | Shape::PairText(..)
        )
    }

    /// Adds the entry for record `id`; returns what the key held before.
    pub(super) fn insert(&self, txn: &WriteTransaction, id: i64) -> Result<Held, redb::Error> {
        let was = match self.shape() {
            Shape::Pair(def, k) => Some(txn.open_table(def)?.insert(k, ())?.is_some()),
            Shape::Pair3(def, k) => Some(txn.open_table(def)?.insert(k, ())?.is_some()),
            Shape::PairText(def, k) => Some(txn.open_table(def)?.insert(k, ())?.is_some()),
            _ => None,
        };
        if let Some(was) = was {
            return Ok(if was { Held::Present } else { Held::Absent });
        }
        unique!(self.shape(), txn, |t, k| {
            let old = t.insert(k, id)?.map(|v| v.value());
            Ok(old.map_or(Held::Absent, Held::By))
        })
    }

    /// Removes the entry of record `id`: a unique key only if `id` holds it. Returns what the
    /// key held before, or `None` if nothing was removed.
    pub(super) fn remove(
        &self,
        txn: &WriteTransaction,
        id: i64,
    ) -> Result<Option<Held>, redb::Error> {
        let removed = match self.shape() {
            Shape::Pair(def, k) => Some(txn.open_table(def)?.remove(k)?.is_some()),
            Shape::Pair3(def, k) => Some(txn.open_table(def)?.remove(k)?.is_some()),
            Shape::PairText(def, k) => Some(txn.open_table(def)?.remove(k)?.is_some()),
            _ => None,
        };
        if let Some(removed) = removed {
            return Ok(removed.then_some(Held::Present));
        }
        unique!(self.shape(), txn, |t, k| {
            if t.get(k)?.is_some_and(|v| v.value() == id) {
                t.remove(k)?;
                Ok(Some(Held::By(id)))
            } else {
                Ok(None)
            }
        })
    }

    /// Puts back what the key held before a write.
    pub(super) fn restore(&self, txn: &WriteTransaction, held: Held) -> Result<(), redb::Error> {
        macro_rules! pair {
            ($def:expr, $k:expr) => {{
                let mut t = txn.open_table($def)?;
                match held {
                    Held::Absent => t.remove($k)?,
                    _ => t.insert($k, ())?,
                };
                return Ok(());
            }};
        }
        match self.shape() {
            Shape::Pair(def, k) => pair!(def, k),
            Shape::Pair3(def, k) => pair!(def, k),
            Shape::PairText(def, k) => pair!(def, k),
            _ => {}
        }
        unique!(self.shape(), txn, |t, k| {
            match held {
                Held::By(id) => t.insert(k, id)?,
                _ => t.remove(k)?,
            };
            Ok(())
        })
    }

    /// The error of a record taking a unique key another record holds: a bug of the caller,
    /// which checks uniqueness first and reports bk-cmdb's own error.
    pub(super) fn held_error() -> StoreError {
        StoreError::KeyHeld
    }
}

/// A uniqueness key of a process (spec 2.6): the text bk-cmdb reports when it is hit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcKey {
    Name {
        si: i64,
        name: String,
    },
    Func {
        si: i64,
        func: String,
        regex: String,
    },
}

/// The two uniqueness keys of a process map, borrowed from it (see [`ProcKey::of`]):
/// (service instance, name) and (service instance, func, regex), each if it applies.
pub(super) type KeyParts<'a> = (Option<(i64, &'a str)>, Option<(i64, &'a str, &'a str)>);

pub(super) fn key_parts(map: &Map<String, Value>) -> KeyParts<'_> {
    key_parts_of(|k| map.get(k))
}

/// [`key_parts`] of the map whose values `get` gives.
pub(super) fn key_parts_of<'a>(get: impl Fn(&str) -> Option<&'a Value>) -> KeyParts<'a> {
    let Some(si) = get("service_instance_id").and_then(Value::as_i64) else {
        return (None, None);
    };
    let s = |k: &str| get(k).and_then(Value::as_str);
    let func = match (s("bk_func_name"), s("bk_start_param_regex")) {
        (Some(func), Some(regex)) => Some((si, func, regex)),
        _ => None,
    };
    (s("bk_process_name").map(|name| (si, name)), func)
}

impl ProcKey {
    /// The keys a process map occupies: each index applies only when its fields are a number
    /// and strings, as bk-cmdb's partial unique indexes do. Name first, as MongoDB checks them.
    pub fn of(map: &Map<String, Value>) -> Vec<ProcKey> {
        let (name, func) = key_parts(map);
        let mut keys = Vec::with_capacity(2);
        if let Some((si, name)) = name {
            keys.push(ProcKey::Name {
                si,
                name: name.to_string(),
            });
        }
        if let Some((si, func, regex)) = func {
            keys.push(ProcKey::Func {
                si,
                func: func.to_string(),
                regex: regex.to_string(),
            });
        }
        keys
    }

    /// The index entry of this key.
    pub fn index_key(&self) -> IndexKey {
        match self {
            ProcKey::Name { si, name } => IndexKey::ProcName(*si, name.clone()),
            ProcKey::Func { si, func, regex } => {
                IndexKey::ProcFunc(*si, func.clone(), regex.clone())
            }
        }
    }
}
