//! A read snapshot that outlives the call that took it: a streamed list answer renders its
//! items from it while the client reads (`api::streamed`), after its permit is given back.
//!
//! It holds redb's read transaction, not the store's slot, so a slow reader never holds a
//! reopen (nor every request queued behind one). A reopen or a close does not wait for it:
//! redb's `Database::close` releases the file at once, and a read transaction still alive then
//! reads `DatabaseClosed` (what it already holds in memory may still be returned), so a streamed
//! answer whose snapshot is gone ends at its next piece that needs the file.

use super::StoreError;
use super::{IO_FAILED, ReadTx, Store, read_err};
use redb::ReadableDatabase;
use std::sync::Arc;

/// A read transaction of its own, with the store it came from.
pub struct Lasting {
    tx: Option<ReadTx>,
    store: Arc<Store>,
    generation: u64,
}

impl Lasting {
    /// The snapshot.
    pub fn tx(&self) -> &ReadTx {
        self.tx
            .as_ref()
            .expect("the transaction lives as long as the snapshot")
    }
}

impl Drop for Lasting {
    fn drop(&mut self) {
        drop(self.tx.take());
        // A read of this snapshot met a failure of the file: reopen it, unless that was done.
        if IO_FAILED.take() {
            self.store.recover(self.generation);
        }
    }
}

impl Store {
    /// Runs `f` on a snapshot that is then kept (see [`Lasting`]), retried on a reopened file
    /// as [`Store::read`] is.
    pub fn lasting<T, E: From<StoreError>>(
        self: &Arc<Self>,
        f: impl Fn(&ReadTx) -> Result<T, E>,
    ) -> Result<(Lasting, T), E> {
        let mut attempt = 1;
        loop {
            IO_FAILED.set(false);
            let (taken, generation) = {
                let slot = self.open_slot(false)?;
                let db = slot
                    .db
                    .as_ref()
                    .expect("open_slot returns an open database");
                let taken = db.begin_read().map_err(read_err).map(|txn| Lasting {
                    tx: Some(ReadTx { txn }),
                    store: Arc::clone(self),
                    generation: slot.generation,
                });
                (taken, slot.generation)
            };
            let snap = match taken {
                Ok(snap) => snap,
                Err(e) if !IO_FAILED.take() => return Err(e.into()),
                Err(e) => {
                    self.recover(generation);
                    if attempt >= crate::limits::STORE_READ_ATTEMPTS {
                        return Err(e.into());
                    }
                    attempt += 1;
                    continue;
                }
            };
            let e = match f(snap.tx()) {
                Ok(t) => return Ok((snap, t)),
                Err(e) => e,
            };
            // Taken before the snapshot goes, so that its drop does not reopen the file too.
            let failed = IO_FAILED.take();
            drop(snap);
            if !failed {
                return Err(e);
            }
            self.recover(generation);
            if attempt >= crate::limits::STORE_READ_ATTEMPTS {
                return Err(e);
            }
            attempt += 1;
        }
    }
}
