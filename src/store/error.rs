//! The store's own error: what failed, in the store's terms. The store never answers a client;
//! `api` maps a [`StoreError`] to bk-cmdb's code and text (`impl From<StoreError> for StoreError`
//! in `api/mod.rs`), so `?` carries it out of a handler unchanged.
//!
//! The cause of a failure of the file or of a stored value goes to the server log where the
//! error is made ([`StoreError::read`], [`StoreError::write`]), never to the client.

use std::fmt;

/// A failure of a store operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// A read failed: redb, a stored value that does not decode, a file closed or not
    /// reopened.
    Read,
    /// A write failed, or was refused while the store is degraded.
    Write,
    /// An id sequence has no id left.
    IdsExhausted,
    /// A record took a uniqueness key another record holds: a bug of the caller, which checks
    /// uniqueness first and reports bk-cmdb's own error.
    KeyHeld,
    /// A new process's id is already in use: a sequence behind the records.
    IdInUse,
}

impl StoreError {
    /// A failed read; `cause` is logged.
    pub fn read(cause: &dyn fmt::Display) -> StoreError {
        crate::log!(error, "cmdb-lite: storage error: {cause}");
        StoreError::Read
    }

    /// A failed write; `cause` is logged.
    pub fn write(cause: &dyn fmt::Display) -> StoreError {
        crate::log!(error, "cmdb-lite: storage error: {cause}");
        StoreError::Write
    }

    /// A failed read or write (`write`), `cause` logged.
    pub(super) fn failed(write: bool, cause: &dyn fmt::Display) -> StoreError {
        if write {
            StoreError::write(cause)
        } else {
            StoreError::read(cause)
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreError::Read => "a read of the store failed",
            StoreError::Write => "a write of the store failed",
            StoreError::IdsExhausted => "no id is left in a sequence",
            StoreError::KeyHeld => "uniqueness key already held",
            StoreError::IdInUse => "a new process id is in use",
        })
    }
}

impl std::error::Error for StoreError {}
