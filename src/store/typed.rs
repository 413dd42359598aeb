//! [`Record`]: what the store knows of each kind of record (its table, its id, its stored
//! layout and its index entries), so that reading, scanning, writing, deleting and checking are
//! written once, generically (`Tx::get`, `Tx::scan`, `WriteTx::put`, `WriteTx::delete`,
//! `check`).
//!
//! Adding a kind: its record type in `records.rs`, its stored layout in `layout.rs` (with a
//! golden-bytes test), its table in `tables.rs` (and in `open.rs`'s list of tables), its index
//! tables and [`IndexKey`] variants in `keys.rs`, and an `impl Record` here.

use super::changelog;
use super::codec::{self, CodecError};
use super::keys::{IndexKey, ProcKey};
use super::layout::*;
use super::records::*;
use super::tables::*;
use serde_json::{Map, Value};

/// A record table: id → encoded record.
pub type RecTable = redb::TableDefinition<'static, i64, &'static [u8]>;

/// A kind of record stored under its id.
pub trait Record: Sized {
    /// The table holding the records of this kind.
    const TABLE: RecTable;
    /// What `check` calls one record of this kind.
    const WHAT: &'static str;
    /// The id it is stored under.
    fn id(&self) -> i64;
    /// The stored bytes (`codec`, through the kind's layout).
    fn encode(&self) -> Vec<u8>;
    /// The record back from its stored bytes.
    fn decode(bytes: &[u8]) -> Result<Self, CodecError>;
    /// The index entries this record holds; unique ones name this record's id.
    fn index(&self) -> Vec<IndexKey> {
        Vec::new()
    }
    /// The change log its writes append to (a cursor number of `changelog::LOGS`), if any.
    const LOG: Option<u8> = None;
    /// The record as its events show it (bk-cmdb's document, keys sorted).
    fn event_detail(&self) -> Value {
        Value::Null
    }
}

/// The event detail of a watched kind: its JSON without `hide`, its other attributes (`attrs`)
/// beside its built-in fields, as one bk-cmdb document holds them.
fn detail_without(rec: &impl serde::Serialize, hide: &[&str]) -> Value {
    let mut v = serde_json::to_value(rec).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        for k in hide {
            m.remove(*k);
        }
        if let Some(Value::Object(attrs)) = m.remove("attrs") {
            for (k, a) in attrs {
                m.entry(k).or_insert(a);
            }
        }
    }
    v
}

/// A kind stored through a layout type of `layout.rs`.
macro_rules! stored {
    ($rec:ident, $layout:ident, $table:expr, $what:expr, |$r:ident| $id:expr) => {
        stored!($rec, $layout, $table, $what, |$r| $id, None, &[]);
    };
    ($rec:ident, $layout:ident, $table:expr, $what:expr, |$r:ident| $id:expr, log $log:expr, hide $hide:expr) => {
        stored!($rec, $layout, $table, $what, |$r| $id, Some($log), $hide);
    };
    ($rec:ident, $layout:ident, $table:expr, $what:expr, |$r:ident| $id:expr, $log:expr, $hide:expr) => {
        impl Record for $rec {
            const TABLE: RecTable = $table;
            const WHAT: &'static str = $what;
            fn id(&self) -> i64 {
                let $r = self;
                $id
            }
            fn encode(&self) -> Vec<u8> {
                codec::encode(&$layout::from(self))
            }
            fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
                codec::decode::<$layout>(bytes).map($rec::from)
            }
            fn index(&self) -> Vec<IndexKey> {
                <$rec>::index_keys(self)
            }
            const LOG: Option<u8> = $log;
            fn event_detail(&self) -> Value {
                detail_without(self, $hide)
            }
        }
    };
}

/// A kind whose older layout is still read: the current one first, then `$legacy`.
macro_rules! stored_or_legacy {
    ($rec:ident, $layout:ident, $legacy:ident, $table:expr, $what:expr, |$r:ident| $id:expr, log $log:expr, hide $hide:expr) => {
        impl Record for $rec {
            const TABLE: RecTable = $table;
            const WHAT: &'static str = $what;
            fn id(&self) -> i64 {
                let $r = self;
                $id
            }
            fn encode(&self) -> Vec<u8> {
                codec::encode(&$layout::from(self))
            }
            fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
                codec::decode::<$layout>(bytes)
                    .map($rec::from)
                    .or_else(|e| {
                        codec::decode::<$legacy>(bytes)
                            .map($rec::from)
                            .map_err(|_| e)
                    })
            }
            fn index(&self) -> Vec<IndexKey> {
                <$rec>::index_keys(self)
            }
            const LOG: Option<u8> = Some($log);
            fn event_detail(&self) -> Value {
                detail_without(self, $hide)
            }
        }
    };
}

// The watched kinds name their change log (`changelog::LOGS`) and the fields their events leave
// out: a module's host list is not a field of bk-cmdb's module (its host relations have a log
// of their own).
stored_or_legacy!(Business, StoredBusiness, LegacyBusiness, BUSINESSES, "business", |r| r.bk_biz_id,
    log changelog::BIZ, hide &[]);
stored_or_legacy!(Host, StoredHost, LegacyHost, HOSTS, "host", |r| r.bk_host_id,
    log changelog::HOST, hide &[]);
stored!(Set, StoredSet, SETS, "set", |r| r.bk_set_id, log changelog::SET, hide &[]);
stored!(CloudArea, StoredCloudArea, CLOUD_AREAS, "cloud area", |r| r.bk_cloud_id,
    log changelog::PLAT, hide &[]);
stored_or_legacy!(Module, StoredModule, LegacyModule, MODULES, "module", |r| r.bk_module_id,
    log changelog::MODULE, hide &["hosts"]);
stored!(
    ServiceCategory,
    StoredServiceCategory,
    SERVICE_CATEGORIES,
    "service category",
    |r| r.id
);
stored!(
    ServiceTemplate,
    StoredServiceTemplate,
    SERVICE_TEMPLATES,
    "service template",
    |r| r.id
);
stored!(
    ProcessTemplate,
    StoredProcessTemplate,
    PROCESS_TEMPLATES,
    "process template",
    |r| r.id
);
stored!(
    ServiceInstance,
    StoredServiceInstance,
    SERVICE_INSTANCES,
    "service instance",
    |r| r.id
);
stored!(
    Relation,
    StoredRelation,
    RELATIONS,
    "relation of process",
    |r| r.bk_process_id,
    log changelog::PROCESS_RELATION,
    hide &[]
);

/// The index entries of each kind (none for most).
trait IndexKeys {
    fn index_keys(&self) -> Vec<IndexKey> {
        Vec::new()
    }
}

impl IndexKeys for Business {}
impl IndexKeys for CloudArea {}

impl IndexKeys for Set {
    fn index_keys(&self) -> Vec<IndexKey> {
        vec![IndexKey::SetByBiz(self.bk_biz_id, self.bk_set_id)]
    }
}

impl IndexKeys for Host {
    fn index_keys(&self) -> Vec<IndexKey> {
        super::topology::inner_ips(self)
            .into_iter()
            .map(|ip| IndexKey::HostByIp(ip, self.bk_cloud_id, self.bk_host_id))
            .collect()
    }
}

impl IndexKeys for Module {
    fn index_keys(&self) -> Vec<IndexKey> {
        let id = self.bk_module_id;
        let mut keys = Vec::with_capacity(3 + 3 * self.hosts.len());
        keys.push(IndexKey::ModuleBySet(self.bk_set_id, id));
        keys.push(IndexKey::ModuleByBiz(self.bk_biz_id, id));
        if self.service_template_id != 0 {
            keys.push(IndexKey::ModuleBySt(self.service_template_id, id));
        }
        for &h in &self.hosts {
            keys.push(IndexKey::ModuleByHost(h, id));
            keys.push(IndexKey::HostBySet(self.bk_set_id, h, id));
            keys.push(IndexKey::HostByBiz(self.bk_biz_id, h, id));
        }
        keys
    }
}
impl IndexKeys for ServiceCategory {}

impl IndexKeys for ServiceTemplate {
    fn index_keys(&self) -> Vec<IndexKey> {
        vec![
            IndexKey::StByBiz(self.bk_biz_id, self.id),
            IndexKey::StName(self.bk_biz_id, self.name.clone()),
        ]
    }
}

impl IndexKeys for ProcessTemplate {
    fn index_keys(&self) -> Vec<IndexKey> {
        vec![IndexKey::PtBySt(self.service_template_id, self.id)]
    }
}

impl IndexKeys for ServiceInstance {
    fn index_keys(&self) -> Vec<IndexKey> {
        let mut keys = vec![
            IndexKey::SiByModule(self.bk_module_id, self.id),
            IndexKey::SiByHost(self.bk_host_id, self.id),
        ];
        if self.service_template_id != 0 {
            keys.push(IndexKey::SiTemplate(
                self.bk_module_id,
                self.bk_host_id,
                self.service_template_id,
            ));
        }
        keys
    }
}

impl IndexKeys for Relation {
    fn index_keys(&self) -> Vec<IndexKey> {
        vec![IndexKey::ProcBySi(
            self.service_instance_id,
            self.bk_process_id,
        )]
    }
}

/// A process: its stored map (every attribute bk-cmdb keeps, keys sorted).
impl Record for Map<String, Value> {
    const TABLE: RecTable = PROCESSES;
    const WHAT: &'static str = "process";
    fn id(&self) -> i64 {
        self.get("bk_process_id")
            .and_then(Value::as_i64)
            .unwrap_or(0)
    }
    fn encode(&self) -> Vec<u8> {
        codec::encode_map(self)
    }
    fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        codec::decode_map(bytes)
    }
    fn index(&self) -> Vec<IndexKey> {
        ProcKey::of(self).iter().map(ProcKey::index_key).collect()
    }
    const LOG: Option<u8> = Some(changelog::PROCESS);
    fn event_detail(&self) -> Value {
        Value::Object(self.clone())
    }
}
