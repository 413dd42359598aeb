//! The benchmark's floor: the durable work of a process create and nothing else. `cmdb-lite
//! serve --floor` answers its requests with [`insert`] over the same HTTP stack and the same
//! group commit as the API, so `cmdb-lite bench` can compare each create scenario with what
//! the machine does when nothing but the records is written.
//!
//! Per record: the id counter (read and raised, as `WriteTx::next_id`), one process value, its
//! relation, the `idx_proc_by_si` entry and both uniqueness keys. The values are a sample of
//! the real shape, encoded once ([`Shape`]) and written under new keys.

use super::records::{Kind, Relation};
use super::tables::*;
use super::{WriteTx, codec, write_err};
use crate::error::CcError;
use serde_json::{Map, Value};

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

/// Writes `n` records of `shape` into service instance `si` on `tx`; returns their ids. The
/// writes are not noted in an undo log: they do not fail but with the file, which fails the
/// whole batch.
pub fn insert(tx: &mut WriteTx, shape: &Shape, si: i64, n: usize) -> Result<Vec<i64>, CcError> {
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
    for &pid in &ids {
        let name = format!("floor-{pid}");
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
