//! A read snapshot that outlives the call that took it: a streamed list answer renders its
//! items from it while the client reads (`api::stream`), after its permit is given back.
//!
//! It does not hold the store's slot (a slow reader would then hold every reopen, and every
//! request queued behind one); it holds the database handle and is counted instead. A reopen
//! or a close asks the lasting snapshots to end ([`Lasting::wanted`]), waits for them (each
//! ends at its next piece, or when the client's socket times out), and only then closes the
//! file: the database is never closed under a transaction.

use super::{IO_FAILED, ReadTx, Store, read_err};
use crate::error::{CcError, code};
use redb::ReadableDatabase;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

/// The count of lasting snapshots alive, and the flag that asks them to end.
#[derive(Default)]
pub(super) struct Census {
    alive: std::sync::Mutex<usize>,
    ended: std::sync::Condvar,
    wanted: std::sync::atomic::AtomicBool,
}

impl Census {
    /// Asks the lasting snapshots to end and waits until none is left; the caller holds the
    /// slot alone, so no new one starts meanwhile.
    pub(super) fn drain(&self) {
        self.wanted.store(true, Ordering::Release);
        let mut alive = self.alive.lock().unwrap_or_else(PoisonError::into_inner);
        while *alive > 0 {
            alive = self
                .ended
                .wait(alive)
                .unwrap_or_else(PoisonError::into_inner);
        }
        self.wanted.store(false, Ordering::Release);
    }
}

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

    /// True once a reopen or a close waits for this snapshot to end.
    pub fn wanted(&self) -> bool {
        self.store.lasting.wanted.load(Ordering::Acquire)
    }

    /// Whether a read on this snapshot met a failure of the file (on this thread).
    pub fn failed(&self) -> bool {
        IO_FAILED.get()
    }
}

impl Drop for Lasting {
    fn drop(&mut self) {
        drop(self.tx.take());
        {
            let census = &self.store.lasting;
            let mut alive = census.alive.lock().unwrap_or_else(PoisonError::into_inner);
            *alive -= 1;
            census.ended.notify_all();
        }
        if IO_FAILED.take() {
            self.store.recover(self.generation);
        }
    }
}

impl Store {
    /// Runs `f` on a snapshot that is then kept (see [`Lasting`]), retried on a reopened file
    /// as [`Store::read`] is.
    pub fn lasting<T>(
        self: &Arc<Self>,
        f: impl Fn(&ReadTx) -> Result<T, CcError>,
    ) -> Result<(Lasting, T), CcError> {
        let mut attempt = 1;
        loop {
            IO_FAILED.set(false);
            let (taken, generation) = {
                let slot = self.open_slot(code::DB_SELECT)?;
                let db = slot
                    .db
                    .as_ref()
                    .expect("open_slot returns an open database");
                let taken = db.begin_read().map_err(read_err).map(|txn| {
                    *self
                        .lasting
                        .alive
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) += 1;
                    Lasting {
                        tx: Some(ReadTx { txn }),
                        store: Arc::clone(self),
                        generation: slot.generation,
                    }
                });
                (taken, slot.generation)
            };
            let snap = match taken {
                Ok(snap) => snap,
                Err(e) if !IO_FAILED.take() => return Err(e),
                Err(e) => {
                    self.recover(generation);
                    if attempt >= crate::limits::STORE_READ_ATTEMPTS {
                        return Err(e);
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
