//! Emptying the store in one transaction (`/_cmdb/reset`, `/_cmdb/load`): every table but
//! `meta` is deleted and created again, which frees its pages whole instead of removing
//! records one by one, so the cost follows the number of pages, not of records.

use super::tables::META;
use super::{WriteTx, create_tables, write_err};
use crate::error::{CcError, code};
use redb::TableHandle;

impl WriteTx {
    /// Deletes every record, index entry, sequence and setting, leaving the empty tables of a
    /// new store (`meta` stays). Only for a transaction of its own ([`super::Store::write_alone`]):
    /// a shared batch could not take it back from its undo log.
    pub fn clear_all(&mut self) -> Result<(), CcError> {
        if self.undo.is_some() {
            return Err(CcError::raw(
                code::DB_INSERT,
                "clearing the store needs a transaction of its own",
            ));
        }
        let tables: Vec<_> = self
            .txn
            .list_tables()
            .map_err(write_err)?
            .filter(|h| h.name() != META.name())
            .collect();
        for table in tables {
            self.txn.delete_table(table).map_err(write_err)?;
        }
        create_tables(&self.txn).map_err(write_err)
    }
}
