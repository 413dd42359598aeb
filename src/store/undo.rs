//! The undo log of a request that shares its transaction with others (group commit): every
//! write notes what it replaced, and a request that fails is rolled back from its log alone,
//! newest write first, leaving the writes of the requests beside it in the batch as they were.

use super::keys::{Held, IndexKey};
use super::tables::{SEQUENCES, SETTINGS};
use super::typed::RecTable;

/// One write to take back: the table and key, and what the key held before.
pub enum Undo {
    /// A record: its bytes before (`None`: there was none).
    Rec(RecTable, i64, Option<Vec<u8>>),
    /// An index entry.
    Key(IndexKey, Held),
    /// An id sequence's last issued id before.
    Seq(&'static str, Option<i64>),
    /// A setting's value before.
    Setting(String, Option<String>),
    /// An event appended to a change log (`changelog.rs`): removed.
    Event(super::changelog::LogTable, u64),
}

impl Undo {
    /// Puts back what the write replaced.
    pub fn apply(self, txn: &redb::WriteTransaction) -> Result<(), redb::Error> {
        match self {
            Undo::Rec(def, id, old) => {
                let mut t = txn.open_table(def)?;
                match old {
                    Some(v) => t.insert(id, v.as_slice())?,
                    None => t.remove(id)?,
                };
            }
            Undo::Key(key, held) => key.restore(txn, held)?,
            Undo::Seq(name, old) => {
                let mut t = txn.open_table(SEQUENCES)?;
                match old {
                    Some(v) => t.insert(name, v)?,
                    None => t.remove(name)?,
                };
            }
            Undo::Event(def, key) => {
                txn.open_table(def)?.remove(key)?;
            }
            Undo::Setting(key, old) => {
                let mut t = txn.open_table(SETTINGS)?;
                match old {
                    Some(v) => t.insert(key.as_str(), v.as_str())?,
                    None => t.remove(key.as_str())?,
                };
            }
        }
        Ok(())
    }
}
