//! The id map of `cmdb-lite push` (`src/push/`): for each target it pushed to, which record of
//! the target each local record became, and a digest of what was pushed, so that the next push
//! sends only what changed. Kept in the pushed store itself, in a table of its own that no other
//! part of the store reads, written in a transaction of its own after each acknowledged call.

use super::StoreError;
use super::read::{Snapshot, Tx};
use super::write::WriteTx;
use super::{read_err, write_err};
use redb::{ReadableTable, TableDefinition, TableError};

/// (target, kind, local id) → (target id, parent (see [`Mapped::parent`]), digest of the pushed record).
pub const PUSH_MAP: TableDefinition<(&str, u8, i64), (i64, i64, u64)> =
    TableDefinition::new("push_map");

/// One mapped record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapped {
    pub local: i64,
    pub target: i64,
    /// Where the target record hangs, as the kind needs it to be updated or deleted: the
    /// target's business id (categories, service templates, service instances), the local
    /// service template (process templates) or the local service instance (processes).
    pub parent: i64,
    pub digest: u64,
}

impl<T: Snapshot> Tx<T> {
    /// Every record of `kind` mapped for `target`, in local id order. A store that was never
    /// pushed has no table: nothing is mapped.
    pub fn push_mapped(&self, target: &str, kind: u8) -> Result<Vec<Mapped>, StoreError> {
        let mut out = Vec::new();
        self.push_map_each(target, kind, |m| {
            out.push(m);
            Ok(true)
        })?;
        Ok(out)
    }

    /// Every record of `kind` mapped for `target`, in local id order, given to `f` until it
    /// returns `false`.
    pub fn push_map_each<E: From<StoreError>>(
        &self,
        target: &str,
        kind: u8,
        mut f: impl FnMut(Mapped) -> Result<bool, E>,
    ) -> Result<(), E> {
        let t = match self.txn.table(PUSH_MAP) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(()),
            Err(e) => return Err(read_err(e).into()),
        };
        let range = (target, kind, i64::MIN)..=(target, kind, i64::MAX);
        for item in t.range(range).map_err(read_err)? {
            let (k, v) = item.map_err(read_err)?;
            let (target, parent, digest) = v.value();
            let m = Mapped {
                local: k.value().2,
                target,
                parent,
                digest,
            };
            if !f(m)? {
                break;
            }
        }
        Ok(())
    }

    /// The mapping of one local record.
    pub fn push_map_get(
        &self,
        target: &str,
        kind: u8,
        local: i64,
    ) -> Result<Option<Mapped>, StoreError> {
        let t = match self.txn.table(PUSH_MAP) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(read_err(e)),
        };
        Ok(t.get((target, kind, local)).map_err(read_err)?.map(|v| {
            let (target, parent, digest) = v.value();
            Mapped {
                local,
                target,
                parent,
                digest,
            }
        }))
    }
}

impl WriteTx {
    /// Maps (or maps again) local records of `kind` for `target`.
    pub fn push_map_put(&mut self, target: &str, kind: u8, m: &[Mapped]) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(PUSH_MAP).map_err(write_err)?;
        for m in m {
            t.insert((target, kind, m.local), (m.target, m.parent, m.digest))
                .map_err(write_err)?;
        }
        Ok(())
    }

    /// Forgets local records of `kind` for `target`.
    pub fn push_map_remove(
        &mut self,
        target: &str,
        kind: u8,
        locals: &[i64],
    ) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(PUSH_MAP).map_err(write_err)?;
        for local in locals {
            t.remove((target, kind, *local)).map_err(write_err)?;
        }
        Ok(())
    }
}
