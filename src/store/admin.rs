//! What operating a store needs beside the API's requests: its state for `/readyz` and
//! `/metrics`, one long read that is never repeated (the online export streams from it), the
//! read-only open of `export` and `check` (a file in use or one that needs redb's repair is
//! refused, never changed), and `compact`.

use super::StoreError;
use super::open::{open_db, verdict};
use super::{IO_FAILED, OpenError, ReadTx, Store, read_err};
use redb::{Database, ReadOnlyDatabase, ReadableDatabase};
use std::path::{Path, PathBuf};
use std::sync::TryLockError;
use std::sync::atomic::Ordering;

impl Store {
    /// True while writes are refused: the store is degraded after an I/O failure ([`Store::failed`])
    /// or its file could not grow (until a write commits again). Never waits.
    pub fn degraded(&self) -> bool {
        self.full.load(Ordering::Acquire) || self.failed()
    }

    /// True while the store is degraded after an I/O failure (until a write commits again), or
    /// has no open file at all: a read may meet a reopen. Never waits: while the store is held
    /// alone (an import, a seed, a reopen) only the flag is read.
    pub fn failed(&self) -> bool {
        if self.degraded.load(Ordering::Acquire) {
            return true;
        }
        match self.slot.try_read() {
            Ok(slot) => slot.db.is_none() && !slot.closed,
            Err(TryLockError::Poisoned(p)) => {
                let slot = p.into_inner();
                slot.db.is_none() && !slot.closed
            }
            Err(TryLockError::WouldBlock) => false,
        }
    }

    /// The database file, `None` for a store in memory.
    pub fn path(&self) -> Option<&Path> {
        self.file.as_ref().map(|(p, _)| p.as_path())
    }

    /// Runs `f` on one snapshot, once: unlike [`Store::read`], a read that meets a failure of
    /// the file is not run again (its output may already be on its way to a client); the store
    /// is reopened for the requests after it. The snapshot holds the store's slot shared for as
    /// long as `f` runs, so a reopen waits for it.
    pub fn read_once<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&ReadTx) -> Result<T, E>,
    ) -> Result<T, E> {
        IO_FAILED.set(false);
        let (result, generation) = {
            let slot = self.open_slot(false)?;
            let db = slot
                .db
                .as_ref()
                .expect("open_slot returns an open database");
            let result = match db.begin_read() {
                Ok(txn) => f(&ReadTx { txn }),
                Err(e) => Err(read_err(e).into()),
            };
            (result, slot.generation)
        };
        if IO_FAILED.take() {
            self.recover(generation);
        }
        result
    }
}

/// A store opened read-only (`export`, `check`): nothing is written to the file, not even by
/// redb, so a crashed file is reported as such instead of being repaired.
pub struct ReadOnly {
    db: ReadOnlyDatabase,
}

impl ReadOnly {
    /// Opens an existing store read-only with a page cache of `cache_bytes`.
    pub fn open(path: &Path, cache_bytes: usize) -> Result<ReadOnly, OpenError> {
        let p = path.to_path_buf();
        match std::fs::metadata(path) {
            Err(e) => return Err(OpenError::Other(p, e.to_string())),
            Ok(m) if m.len() == 0 => {
                return Err(OpenError::NotOurs(p, "an empty file".into()));
            }
            Ok(_) => {}
        }
        if held_elsewhere(path) {
            return Err(OpenError::InUse(p));
        }
        let db = Database::builder()
            .set_cache_size(cache_bytes)
            .open_read_only(path)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => OpenError::InUse(p.clone()),
                redb::DatabaseError::RepairAborted => OpenError::NeedsRepair(p.clone()),
                other => OpenError::NotOurs(p.clone(), other.to_string()),
            })?;
        match verdict(&db, path)? {
            None => Err(OpenError::NotOurs(p, "no cmdb-lite tables".into())),
            Some(Err(e)) => Err(e),
            Some(Ok(())) => Ok(ReadOnly { db }),
        }
    }

    /// Runs `f` on one snapshot.
    pub fn read<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&ReadTx) -> Result<T, E>,
    ) -> Result<T, E> {
        let txn = self.db.begin_read().map_err(read_err)?;
        f(&ReadTx { txn })
    }
}

/// Whether another process has the file open read-write: redb's writer holds a lock on the
/// whole file, which a shared lock cannot be had beside. Checked before a read-only open,
/// which would otherwise take a live file for one that needs repair.
fn held_elsewhere(path: &Path) -> bool {
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            false
        }
        Err(std::fs::TryLockError::WouldBlock) => true,
        Err(std::fs::TryLockError::Error(_)) => false,
    }
}

/// Opens an existing store read-write (redb repairs a crashed file here, and says so), for
/// `check --repair` and `compact`.
fn open_for_maintenance(path: &Path, cache_bytes: usize) -> Result<Database, OpenError> {
    let p = path.to_path_buf();
    if !path.exists() {
        return Err(OpenError::Other(p, "no such file".into()));
    }
    // Refuse what is not ours before redb rewrites any header.
    match Database::builder().open_read_only(path) {
        Ok(ro) => {
            if let Some(Err(e)) = verdict(&ro, path)? {
                return Err(e);
            }
        }
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => return Err(OpenError::InUse(p)),
        Err(redb::DatabaseError::RepairAborted) => {}
        Err(e) => return Err(OpenError::NotOurs(p, e.to_string())),
    }
    let db = open_db(path, cache_bytes)?.db;
    match verdict(&db, path)? {
        Some(Ok(())) => Ok(db),
        Some(Err(e)) => Err(e),
        None => Err(OpenError::NotOurs(p, "no cmdb-lite tables".into())),
    }
}

/// Opens a store read-write so that redb repairs it if it was not closed cleanly, then closes
/// it cleanly (`check --repair`). Returns whether a repair ran.
pub fn repair(path: &Path, cache_bytes: usize) -> Result<bool, OpenError> {
    let needed = matches!(
        Database::builder().open_read_only(path),
        Err(redb::DatabaseError::RepairAborted)
    );
    let db = open_for_maintenance(path, cache_bytes)?;
    db.close()
        .map_err(|e| OpenError::Other(path.to_path_buf(), e.to_string()))?;
    Ok(needed)
}

/// Compacts a store in place: redb moves pages towards the file's start and truncates the
/// free end. Returns the file's size before and after.
pub fn compact(path: &Path, cache_bytes: usize) -> Result<(u64, u64), OpenError> {
    let p: PathBuf = path.to_path_buf();
    let size = || std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let before = size();
    let mut db = open_for_maintenance(path, cache_bytes)?;
    loop {
        match db.compact() {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(OpenError::Other(p, e.to_string())),
        }
    }
    db.close()
        .map_err(|e| OpenError::Other(p.clone(), e.to_string()))?;
    Ok((before, size()))
}
