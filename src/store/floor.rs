//! The benchmark's floor: the durable work of a process create and nothing else. `cmdb-lite
//! serve --floor` answers its requests with [`insert`] over the same HTTP stack and the same
//! group commit as the API, so `cmdb-lite bench` can compare each create scenario with what
//! the machine does when nothing but the records is written.
//!
//! Per record: the id counter (read and raised, as `WriteTx::next_id`), one process value, its
//! relation, the `idx_proc_by_si` entry and both uniqueness keys. The values are a sample of
//! the real shape, encoded once ([`Shape`]); the keys are the ones the create being compared
//! writes: its service instance and its processes' names (`{prefix}-{k}`, as the benchmark's
//! client names them), so the floor touches the same pages of the same indexes.

use super::StoreError;
use super::records::{Kind, Relation};
use super::tables::*;
use super::{WriteTx, codec, write_err};
use redb::{Database, Durability, ReadableTable};
use serde_json::{Map, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// The encoded values every floor record repeats.
#[derive(Debug)]
pub struct Shape {
    process: Vec<u8>,
    relation: Vec<u8>,
}

impl Shape {
    /// The shape of `process` (a stored process map) and `relation`.
    pub fn new(process: &Map<String, Value>, relation: &Relation) -> Shape {
        Shape {
            process: codec::encode_map(process),
            relation: super::Record::encode(relation),
        }
    }
}

/// Writes `n` records of `shape` into service instance `si` on `tx`, the `k`th named
/// `{prefix}-{k}` (its process name and its function name, as the benchmark's creates); returns
/// their ids. The writes are not noted in an undo log: they do not fail but with the file,
/// which fails the whole batch.
pub fn insert(
    tx: &mut WriteTx,
    shape: &Shape,
    si: i64,
    prefix: &str,
    n: usize,
) -> Result<Vec<i64>, StoreError> {
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        ids.push(tx.next_id(Kind::Process)?);
    }
    let txn = tx.txn();
    let mut procs = txn.open_table(PROCESSES).map_err(write_err)?;
    let mut rels = txn.open_table(RELATIONS).map_err(write_err)?;
    let mut by_si = txn.open_table(PROC_BY_SI).map_err(write_err)?;
    let mut names = txn.open_table(UNIQ_PROC_NAME).map_err(write_err)?;
    let mut funcs = txn.open_table(UNIQ_PROC_FUNC).map_err(write_err)?;
    for (k, &pid) in ids.iter().enumerate() {
        let name = format!("{prefix}-{k}");
        procs
            .insert(pid, shape.process.as_slice())
            .map_err(write_err)?;
        rels.insert(pid, shape.relation.as_slice())
            .map_err(write_err)?;
        by_si.insert((si, pid), ()).map_err(write_err)?;
        names.insert((si, name.as_str()), pid).map_err(write_err)?;
        funcs
            .insert((si, name.as_str(), ""), pid)
            .map_err(write_err)?;
    }
    Ok(ids)
}

/// The raw floor: a fresh database file for a commit loop of raw redb durable commits of
/// these records, with no HTTP and no batching (the template-sync comparison of `bench`).
pub struct Floor {
    db: Database,
    process: Vec<u8>,
    relation: Vec<u8>,
    si: i64,
}

/// What one loop measured.
pub struct FloorRun {
    pub commits: u64,
    pub records: u64,
    pub elapsed: Duration,
    /// Each commit's duration (begin to durable), in microseconds.
    pub latencies_us: Vec<u32>,
}

fn err(e: impl std::fmt::Display) -> String {
    format!("floor: {e}")
}

impl Floor {
    /// Creates the database at `path` (which must not exist) with the record shape of `process`
    /// and `relation`.
    pub fn create(
        path: &Path,
        cache_bytes: usize,
        process: &Map<String, Value>,
        relation: &Relation,
    ) -> Result<Floor, String> {
        let db = Database::builder()
            .set_cache_size(cache_bytes)
            .create(path)
            .map_err(err)?;
        let txn = db.begin_write().map_err(err)?;
        {
            txn.open_table(SEQUENCES).map_err(err)?;
            txn.open_table(PROCESSES).map_err(err)?;
            txn.open_table(RELATIONS).map_err(err)?;
            txn.open_table(PROC_BY_SI).map_err(err)?;
            txn.open_table(UNIQ_PROC_NAME).map_err(err)?;
            txn.open_table(UNIQ_PROC_FUNC).map_err(err)?;
        }
        txn.commit().map_err(err)?;
        Ok(Floor {
            db,
            process: codec::encode_map(process),
            relation: super::Record::encode(relation),
            si: relation.service_instance_id,
        })
    }

    /// Commits `per_commit` records per transaction until `time` has passed or `max_commits`
    /// commits are done.
    pub fn run(
        &self,
        per_commit: usize,
        time: Duration,
        max_commits: u64,
    ) -> Result<FloorRun, String> {
        let start = Instant::now();
        let mut latencies_us = Vec::new();
        let mut commits = 0u64;
        while commits < max_commits && start.elapsed() < time {
            let t0 = Instant::now();
            self.commit(per_commit)?;
            latencies_us.push(u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX));
            commits += 1;
        }
        Ok(FloorRun {
            commits,
            records: commits * per_commit as u64,
            elapsed: start.elapsed(),
            latencies_us,
        })
    }

    fn commit(&self, per_commit: usize) -> Result<(), String> {
        let mut txn = self.db.begin_write().map_err(err)?;
        txn.set_durability(Durability::Immediate).map_err(err)?;
        {
            let mut seq = txn.open_table(SEQUENCES).map_err(err)?;
            let mut procs = txn.open_table(PROCESSES).map_err(err)?;
            let mut rels = txn.open_table(RELATIONS).map_err(err)?;
            let mut by_si = txn.open_table(PROC_BY_SI).map_err(err)?;
            let mut names = txn.open_table(UNIQ_PROC_NAME).map_err(err)?;
            let mut funcs = txn.open_table(UNIQ_PROC_FUNC).map_err(err)?;
            let kind = Kind::Process.name();
            for _ in 0..per_commit {
                let pid = seq.get(kind).map_err(err)?.map_or(0, |v| v.value()) + 1;
                seq.insert(kind, pid).map_err(err)?;
                let name = format!("floor-{pid}");
                procs.insert(pid, self.process.as_slice()).map_err(err)?;
                rels.insert(pid, self.relation.as_slice()).map_err(err)?;
                by_si.insert((self.si, pid), ()).map_err(err)?;
                names.insert((self.si, name.as_str()), pid).map_err(err)?;
                funcs
                    .insert((self.si, name.as_str(), ""), pid)
                    .map_err(err)?;
            }
        }
        txn.commit().map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn the_floor_writes_the_keys_of_the_create_it_stands_for() {
        let store = Store::memory().unwrap();
        let mut process = Map::new();
        process.insert("bk_process_name".into(), Value::from("sample"));
        let rel = Relation {
            bk_biz_id: 3,
            bk_process_id: 0,
            service_instance_id: 1,
            process_template_id: 0,
            bk_host_id: 4,
            bk_supplier_account: "0".into(),
        };
        let shape = Shape::new(&process, &rel);
        let ids = store
            .write_alone(|tx| insert(tx, &shape, 7, "c-1", 2))
            .unwrap();
        let more = store
            .write_alone(|tx| insert(tx, &shape, 9, "c-2", 1))
            .unwrap();
        assert_eq!(ids.len(), 2);
        assert!(more[0] > ids[1] && ids[1] > ids[0]);
        let names = entries(&store, UNIQ_PROC_NAME, |(si, name), pid| {
            ((si, name.to_string()), pid)
        });
        assert_eq!(
            names,
            vec![
                ((7, "c-1-0".into()), ids[0]),
                ((7, "c-1-1".into()), ids[1]),
                ((9, "c-2-0".into()), more[0]),
            ]
        );
        let funcs = entries(&store, UNIQ_PROC_FUNC, |(si, func, regex), _| {
            (si, format!("{func}/{regex}"))
        });
        assert_eq!(
            funcs,
            vec![
                (7, "c-1-0/".into()),
                (7, "c-1-1/".into()),
                (9, "c-2-0/".into())
            ]
        );
        let by_si = entries(&store, PROC_BY_SI, |key, ()| key);
        assert_eq!(by_si, vec![(7, ids[0]), (7, ids[1]), (9, more[0])]);
    }

    /// Every entry of `def`, in key order, as `f` makes it.
    fn entries<K: redb::Key + 'static, V: redb::Value + 'static, T>(
        store: &Store,
        def: redb::TableDefinition<K, V>,
        f: impl Fn(K::SelfType<'_>, V::SelfType<'_>) -> T,
    ) -> Vec<T> {
        store
            .read(|tx| {
                let t = tx.txn.open_table(def).map_err(crate::store::read_err)?;
                let mut out = Vec::new();
                for e in t.iter().map_err(crate::store::read_err)? {
                    let (k, v) = e.map_err(crate::store::read_err)?;
                    out.push(f(k.value(), v.value()));
                }
                Ok::<_, StoreError>(out)
            })
            .unwrap()
    }
}
