//! Group commit: the write requests that arrive together share one transaction and one sync.
//!
//! One writer thread owns the write transactions. A write request queues its job (a closure
//! that owns everything it uses) with the database and a result slot, and waits on that slot.
//! The writer takes every queued job (at most [`MAX_REQUESTS_PER_COMMIT`]), runs them one after
//! the other on one redb write transaction, rolls back from its undo log each one that fails
//! (`WriteTx::roll_back`) so the others' writes stay as they were, commits once with
//! `Durability::Immediate` (one `fdatasync`), and only then fills each request's slot; each
//! request answers when its slot is filled. While a batch syncs, the requests that arrive queue
//! for the next one, so the busier the server, the larger the batches. Requests stay serial
//! (one job at a time, in queue order), and reads see only committed batches, which are on
//! disk. A batch that fails to commit fails every request in it.
//!
//! No raw pointers and no lifetimes erased: a job is `'static` and `Send`, the database travels as an `Arc`,
//! and the result comes back over a channel of its own.

use super::Db;
use super::WriteTx;
use crate::limits::{BATCH_LINGER_MICROS, MAX_REQUESTS_PER_COMMIT};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// How a job's batch ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Its batch committed (or had nothing to write).
    Committed,
    /// Its batch did not reach the disk.
    Failed,
}

/// What a request gets back: its job's stage, and whether its batch met a failure of the file
/// itself (the request's thread then has the store reopened).
#[derive(Clone, Copy, Debug)]
pub struct Done {
    pub stage: Stage,
    pub io_failed: bool,
}

/// A request's job, run by the writer on the batch's transaction: true if its writes are to
/// be kept (it succeeded), false to have them rolled back.
pub type Work = Box<dyn FnOnce(&mut WriteTx) -> bool + Send>;

/// Runs one batch on a database: every job in order on one transaction, then the commit.
/// Returns whether the commit reached the disk and whether the file itself failed.
pub type RunBatch = fn(&Db, Vec<Work>) -> (bool, bool);

/// A queued job: the database its request holds the store's slot for, and its result slot.
struct Entry {
    db: Arc<Db>,
    work: Work,
    done: SyncSender<Done>,
}

struct Queue {
    entries: Vec<Entry>,
    /// Set when the store is dropped: the writer exits.
    stop: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    /// The writer waits on it for work.
    work: Condvar,
}

pub struct Batches {
    shared: Arc<Shared>,
    writer: OnceLock<()>,
    run: RunBatch,
}

impl Batches {
    pub fn new(run: RunBatch) -> Batches {
        Batches {
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue {
                    entries: Vec::new(),
                    stop: false,
                }),
                work: Condvar::new(),
            }),
            writer: OnceLock::new(),
            run,
        }
    }

    /// Queues `work` for a batch on `db` and returns once its batch has ended.
    pub fn run(&self, db: Arc<Db>, work: Work) -> Done {
        self.writer.get_or_init(|| {
            let shared = Arc::clone(&self.shared);
            let run = self.run;
            std::thread::Builder::new()
                .name("writer".into())
                .spawn(move || writer(&shared, run))
                .expect("starting the writer thread");
        });
        let (done, slot) = sync_channel(1);
        {
            let mut q = self
                .shared
                .queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            q.entries.push(Entry { db, work, done });
        }
        self.shared.work.notify_one();
        // The writer drops the sender without sending only if it is gone (it never exits while
        // the store lives): the request then fails.
        slot.recv().unwrap_or(Done {
            stage: Stage::Failed,
            io_failed: false,
        })
    }
}

impl Drop for Batches {
    fn drop(&mut self) {
        let mut q = self
            .shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        q.stop = true;
        self.shared.work.notify_all();
    }
}

/// The writer thread: batch after batch, until the store is dropped.
fn writer(shared: &Shared, run: RunBatch) {
    // Requests in flight when the last batch ended: the ones it answered (their clients are
    // likely to send again at once) and the ones that queued while it ran.
    let mut in_flight = 0;
    loop {
        let mut q = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
        while q.entries.is_empty() {
            if q.stop {
                return;
            }
            q = shared.work.wait(q).unwrap_or_else(PoisonError::into_inner);
        }
        // Linger: give the clients the last batch answered a moment to come back, so they join
        // this batch instead of waiting a whole sync for the next one. Under load the writer
        // thus gathers every request in flight into one batch rather than alternating between
        // two halves of them, so each sync and each commit's fixed work serve twice as many.
        // A lone client (one in flight) never waits.
        let deadline = Instant::now() + Duration::from_micros(BATCH_LINGER_MICROS);
        while q.entries.len() < in_flight && !q.stop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            q = shared
                .work
                .wait_timeout(q, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        let take = q.entries.len().min(MAX_REQUESTS_PER_COMMIT);
        let taken: Vec<Entry> = q.entries.drain(..take).collect();
        drop(q);
        // Every queued request holds the store's slot shared, so all of them name the same
        // open database (a reopen waits for them); one batch may take them all.
        let db = Arc::clone(&taken[0].db);
        let mut jobs = Vec::with_capacity(taken.len());
        let mut slots = Vec::with_capacity(taken.len());
        for e in taken {
            debug_assert!(Arc::ptr_eq(&e.db, &db), "one batch, one database");
            jobs.push(e.work);
            slots.push(e.done);
        }
        // A job's own panic is caught inside it; anything else that panics fails the batch
        // rather than the writer, which every waiting request depends on.
        let started = std::time::Instant::now();
        let (committed, io_failed) =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&db, jobs)))
                .unwrap_or_else(|_| {
                    crate::log!(
                        error,
                        "cmdb-lite: a group commit panicked; its requests fail"
                    );
                    (false, false)
                });
        crate::metrics::batch(slots.len(), started.elapsed().as_secs_f64());
        // The writer lets go of the database before any request returns (and releases the
        // store's slot), so a reopen finds the database held by the slot alone.
        drop(db);
        in_flight = {
            let q = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
            (slots.len() + q.entries.len()).min(MAX_REQUESTS_PER_COMMIT)
        };
        let stage = if committed {
            Stage::Committed
        } else {
            Stage::Failed
        };
        for slot in slots {
            // A request that is gone (it cannot be: it waits) just misses its answer.
            let _ = slot.send(Done { stage, io_failed });
        }
    }
}
