//! Reads, shared by both kinds of transaction: [`Tx`] over a [`Snapshot`], which a read
//! transaction and a write transaction both are. [`ReadTx`] is a read snapshot; a `WriteTx`
//! (`write.rs`) dereferences to its own `Tx`, so every read here works inside a write too and
//! sees that transaction's writes.

use super::StoreError;
use super::keys::{ProcKey, key_parts};
use super::records::*;
use super::tables::*;
use super::typed::Record;
use super::{codec, codec_err, read_err};
use redb::{
    Key, ReadableTable, ReadableTableMetadata, TableDefinition, TableError, Value as RValue,
};
use serde_json::{Map, Value};

/// A transaction tables can be read from.
pub trait Snapshot {
    /// Opens a table for reading.
    fn table<K: Key + 'static, V: RValue + 'static>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<impl ReadableTable<K, V> + '_, TableError>;
}

impl Snapshot for redb::ReadTransaction {
    fn table<K: Key + 'static, V: RValue + 'static>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<impl ReadableTable<K, V> + '_, TableError> {
        self.open_table(def)
    }
}

impl Snapshot for redb::WriteTransaction {
    fn table<K: Key + 'static, V: RValue + 'static>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<impl ReadableTable<K, V> + '_, TableError> {
        self.open_table(def)
    }
}

/// The reads of a transaction.
pub struct Tx<T> {
    pub(crate) txn: T,
}

/// A read snapshot.
pub type ReadTx = Tx<redb::ReadTransaction>;

impl<T: Snapshot> Tx<T> {
    /// The record of kind `R` stored under `id`.
    pub fn get<R: Record>(&self, id: i64) -> Result<Option<R>, StoreError> {
        let t = self.txn.table(R::TABLE).map_err(read_err)?;
        match t.get(id).map_err(read_err)? {
            Some(v) => Ok(Some(R::decode(v.value()).map_err(codec_err)?)),
            None => Ok(None),
        }
    }

    /// True if a record of kind `R` is stored under `id` (it is not decoded).
    pub fn has<R: Record>(&self, id: i64) -> Result<bool, StoreError> {
        let t = self.txn.table(R::TABLE).map_err(read_err)?;
        Ok(t.get(id).map_err(read_err)?.is_some())
    }

    /// Every record of kind `R`, in id order, given to `f` with its id until `f` returns
    /// `false`.
    pub fn scan<R: Record, E: From<StoreError>>(
        &self,
        mut f: impl FnMut(i64, R) -> Result<bool, E>,
    ) -> Result<(), E> {
        self.scan_bytes(R::TABLE, |id, bytes| {
            f(id, R::decode(bytes).map_err(codec_err)?)
        })
    }

    /// The records of kind `R` that pass `keep`, in id order.
    pub fn select<R: Record>(
        &self,
        mut keep: impl FnMut(&R) -> bool,
    ) -> Result<Vec<R>, StoreError> {
        let mut out = Vec::new();
        self.scan::<R, StoreError>(|_, r| {
            if keep(&r) {
                out.push(r);
            }
            Ok(true)
        })?;
        Ok(out)
    }

    /// True if some record of kind `R` passes `hit` (the scan stops at the first that does).
    pub fn any<R: Record>(&self, mut hit: impl FnMut(&R) -> bool) -> Result<bool, StoreError> {
        let mut found = false;
        self.scan::<R, StoreError>(|_, r| {
            found = hit(&r);
            Ok(!found)
        })?;
        Ok(found)
    }

    /// Every stored value of a record table, undecoded, in id order, until `f` returns `false`.
    pub fn scan_bytes<E: From<StoreError>>(
        &self,
        def: super::typed::RecTable,
        mut f: impl FnMut(i64, &[u8]) -> Result<bool, E>,
    ) -> Result<(), E> {
        let t = self.txn.table(def).map_err(read_err)?;
        for item in t.iter().map_err(read_err)? {
            let (k, v) = item.map_err(read_err)?;
            if !f(k.value(), v.value())? {
                break;
            }
        }
        Ok(())
    }

    /// Second halves of the (a, b) keys of an index whose first half is `a`.
    pub(super) fn index_pairs(
        &self,
        def: TableDefinition<(i64, i64), ()>,
        a: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let t = self.txn.table(def).map_err(read_err)?;
        let mut out = Vec::new();
        for item in t.range((a, i64::MIN)..=(a, i64::MAX)).map_err(read_err)? {
            out.push(item.map_err(read_err)?.0.value().1);
        }
        Ok(out)
    }

    pub fn business(&self, id: i64) -> Result<Option<Business>, StoreError> {
        self.get(id)
    }
    pub fn host(&self, id: i64) -> Result<Option<Host>, StoreError> {
        self.get(id)
    }
    pub fn module(&self, id: i64) -> Result<Option<Module>, StoreError> {
        self.get(id)
    }
    pub fn service_category(&self, id: i64) -> Result<Option<ServiceCategory>, StoreError> {
        self.get(id)
    }
    pub fn service_template(&self, id: i64) -> Result<Option<ServiceTemplate>, StoreError> {
        self.get(id)
    }
    pub fn process_template(&self, id: i64) -> Result<Option<ProcessTemplate>, StoreError> {
        self.get(id)
    }
    pub fn service_instance(&self, id: i64) -> Result<Option<ServiceInstance>, StoreError> {
        self.get(id)
    }
    pub fn relation(&self, pid: i64) -> Result<Option<Relation>, StoreError> {
        self.get(pid)
    }
    /// The stored process map.
    pub fn process(&self, pid: i64) -> Result<Option<Map<String, Value>>, StoreError> {
        self.get(pid)
    }

    /// Appends the JSON text of process `pid`'s stored map to `out` (what serialising
    /// [`Self::process`] gives, written straight from the stored bytes); `false` if there is
    /// no such process.
    pub fn write_process_json(&self, pid: i64, out: &mut Vec<u8>) -> Result<bool, StoreError> {
        let t = self.txn.table(PROCESSES).map_err(read_err)?;
        match t.get(pid).map_err(read_err)? {
            Some(v) => {
                codec::write_map_json(v.value(), out).map_err(|e| StoreError::read(&e))?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// True if process `pid` exists (its record is not decoded).
    pub fn has_process(&self, pid: i64) -> Result<bool, StoreError> {
        self.has::<Map<String, Value>>(pid)
    }

    /// Process ids of a service instance, ascending (= creation order).
    pub fn process_ids_of(&self, si: i64) -> Result<Vec<i64>, StoreError> {
        self.index_pairs(PROC_BY_SI, si)
    }
    pub fn service_instance_ids_of_module(&self, module: i64) -> Result<Vec<i64>, StoreError> {
        self.index_pairs(SI_BY_MODULE, module)
    }
    pub fn service_instance_ids_of_host(&self, host: i64) -> Result<Vec<i64>, StoreError> {
        self.index_pairs(SI_BY_HOST, host)
    }
    pub fn service_template_ids_of_biz(&self, biz: i64) -> Result<Vec<i64>, StoreError> {
        self.index_pairs(ST_BY_BIZ, biz)
    }
    pub fn process_template_ids_of(&self, st: i64) -> Result<Vec<i64>, StoreError> {
        self.index_pairs(PT_BY_ST, st)
    }
    /// The service template named `name` in `biz`.
    pub fn service_template_named(&self, biz: i64, name: &str) -> Result<Option<i64>, StoreError> {
        let t = self.txn.table(UNIQ_ST_NAME).map_err(read_err)?;
        Ok(t.get((biz, name)).map_err(read_err)?.map(|v| v.value()))
    }
    /// The template instance of (module, host, template), if any.
    pub fn template_instance(
        &self,
        module: i64,
        host: i64,
        st: i64,
    ) -> Result<Option<i64>, StoreError> {
        let t = self.txn.table(UNIQ_SI_TEMPLATE).map_err(read_err)?;
        Ok(t.get((module, host, st))
            .map_err(read_err)?
            .map(|v| v.value()))
    }
    /// The process holding a uniqueness key, if any.
    pub fn process_with_key(&self, key: &ProcKey) -> Result<Option<i64>, StoreError> {
        match key {
            ProcKey::Name { si, name } => {
                let t = self.txn.table(UNIQ_PROC_NAME).map_err(read_err)?;
                Ok(t.get((*si, name.as_str()))
                    .map_err(read_err)?
                    .map(|v| v.value()))
            }
            ProcKey::Func { si, func, regex } => {
                let t = self.txn.table(UNIQ_PROC_FUNC).map_err(read_err)?;
                Ok(t.get((*si, func.as_str(), regex.as_str()))
                    .map_err(read_err)?
                    .map(|v| v.value()))
            }
        }
    }
    /// The first key of `map` held by a process other than `pid`.
    pub fn process_key_conflict(
        &self,
        map: &Map<String, Value>,
        pid: i64,
    ) -> Result<Option<ProcKey>, StoreError> {
        let (name, func) = key_parts(map);
        if let Some((si, name)) = name {
            let t = self.txn.table(UNIQ_PROC_NAME).map_err(read_err)?;
            if t.get((si, name))
                .map_err(read_err)?
                .is_some_and(|owner| owner.value() != pid)
            {
                let name = name.to_string();
                return Ok(Some(ProcKey::Name { si, name }));
            }
        }
        if let Some((si, func, regex)) = func {
            let t = self.txn.table(UNIQ_PROC_FUNC).map_err(read_err)?;
            if t.get((si, func, regex))
                .map_err(read_err)?
                .is_some_and(|owner| owner.value() != pid)
            {
                let (func, regex) = (func.to_string(), regex.to_string());
                return Ok(Some(ProcKey::Func { si, func, regex }));
            }
        }
        Ok(None)
    }

    /// The last id issued for `kind` (0 if none).
    pub fn sequence(&self, kind: Kind) -> Result<i64, StoreError> {
        let t = self.txn.table(SEQUENCES).map_err(read_err)?;
        Ok(t.get(kind.name())
            .map_err(read_err)?
            .map_or(0, |v| v.value()))
    }
    /// A store-wide setting.
    pub fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let t = self.txn.table(SETTINGS).map_err(read_err)?;
        Ok(t.get(key).map_err(read_err)?.map(|v| v.value().to_string()))
    }
    /// True if the store holds no business (a fresh store: the seed is loaded into it).
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        let t = self.txn.table(BUSINESSES).map_err(read_err)?;
        t.is_empty().map_err(read_err)
    }
}
