//! Replacing the whole store (`/_cmdb/reset`, `/_cmdb/load`): the new content is written into
//! a new database, which then takes the old one's place. Nothing of the old store is read or
//! freed record by record, so the time is that of writing the new content (a seed: a few
//! milliseconds), whatever the old store's size. Deleting the old tables instead took 430 ms
//! for 100,000 processes (redb frees a table page by page).
//!
//! On a file, the new database is built in `<db>.reset` beside it, committed durably, renamed
//! over the database file and the folder synced: a crash leaves either the old file whole or
//! the new one whole (and perhaps a stale `<db>.reset`, replaced by the next reset).

use super::StoreError;
use super::open::{lay_out, open_db};
use super::{Store, WriteTx, close_db, write_err};
use redb::{Database, Durability};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError};

/// The file a replacement is built in, beside the database file.
fn staging(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".reset");
    PathBuf::from(name)
}

fn io_err(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::write(&format!("{what}: {e}"))
}

/// Lays out a new store in `db`, then runs `f` in a durable transaction (the layout is made
/// durable by the same sync).
fn fill<T, E: From<StoreError>>(
    db: &Database,
    p: &Path,
    f: impl FnOnce(&mut WriteTx) -> Result<T, E>,
) -> Result<T, E> {
    lay_out(db, p).map_err(|e| io_err("laying out the new store", e))?;
    let mut txn = db.begin_write().map_err(write_err)?;
    txn.set_durability(Durability::Immediate)
        .map_err(write_err)?;
    let mut tx = WriteTx::new(txn, None);
    // The store's new starting point, not a change anyone watches: no events (the old log goes
    // with the old store).
    tx.without_events();
    match f(&mut tx) {
        Ok(v) => {
            if let Err(e) = tx.flush_events(0) {
                return Err(Store::abort(tx, e).into());
            }
            tx.into_txn().commit().map_err(write_err)?;
            Ok(v)
        }
        Err(e) => Err(Store::abort(tx, e)),
    }
}

impl Store {
    /// Replaces everything in the store with what `f` writes into an empty store, holding the
    /// store alone (no read or write runs beside it: each is wholly before or after). If `f`
    /// fails, or the new database cannot be written, the store is left as it was.
    pub fn replace_all<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut WriteTx) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut slot = self.slot.write().unwrap_or_else(PoisonError::into_inner);
        if slot.closed {
            return Err(StoreError::write(&"the database is closed").into());
        }
        let Some((path, cache_bytes)) = &self.file else {
            let db = Database::builder()
                .create_with_backend(redb::backends::InMemoryBackend::new())
                .map_err(|e| io_err("a new store in memory", e))?;
            let v = fill(&db, Path::new(":memory:"), f)?;
            slot.db = Some(Arc::new(super::Db::new(db, None)));
            slot.generation += 1;
            return Ok(v);
        };
        let staged = staging(path);
        match std::fs::remove_file(&staged) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&staged.display().to_string(), e).into()),
        }
        let db = open_db(&staged, *cache_bytes).map_err(|e| io_err("opening the new store", e))?;
        let v = match fill(&db, &staged, f) {
            Ok(v) => v,
            Err(e) => {
                drop(db);
                let _ = std::fs::remove_file(&staged);
                return Err(e);
            }
        };
        // The new file takes the old one's name; the open database follows its file.
        if let Err(e) = std::fs::rename(&staged, path) {
            drop(db);
            let _ = std::fs::remove_file(&staged);
            return Err(io_err("renaming the new store", e).into());
        }
        if let Some(dir) = path.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io_err("syncing the folder", e))?;
        }
        // The old database now has no name. Closing it writes redb's allocator state into the
        // nameless file, and the last close frees the file's blocks: neither concerns the new
        // store, so it is done on a thread of its own rather than before the answer.
        if let Some(old) = slot.db.replace(Arc::new(db)) {
            let closing = std::thread::Builder::new()
                .name("close-replaced".into())
                .spawn(move || drop(close_db(old)));
            if let Err(e) = closing {
                crate::log!("cmdb-lite: closing the replaced store on this thread: {e}");
            }
        }
        slot.generation += 1;
        self.degraded
            .store(false, std::sync::atomic::Ordering::Release);
        Ok(v)
    }
}
