//! Group commit: the write requests that arrive together share one transaction and one sync.
//!
//! One writer thread owns the write transactions. A write request queues its closure as a
//! [`Job`] and waits. The writer takes every queued job (at most [`MAX_REQUESTS_PER_COMMIT`]),
//! runs them one after the other on one redb write transaction, rolls back from its undo log
//! each one that fails (`WriteTx::roll_back`) so the others' writes stay as they were, commits
//! once with `Durability::Immediate` (one `fdatasync`), and only then marks the jobs done; each
//! request answers when its job is done. While a batch syncs, the requests that arrive queue for
//! the next one, so the busier the server, the larger the batches. Requests stay serial (one
//! job at a time, in queue order), and reads see only committed batches, which are on disk. A
//! batch that fails to commit fails every request in it.
//!
//! A job runs on the writer thread while its request's thread waits for it: the closure may
//! borrow from that request's stack, which outlives the job (see [`Entry`]).

use crate::limits::{BATCH_LINGER_MICROS, MAX_REQUESTS_PER_COMMIT};
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

/// A request's closure, run by the writer on the batch's transaction.
pub trait Job: Send {
    /// Runs the closure; true if its writes are to be kept (it succeeded).
    fn run(&mut self, tx: &mut super::WriteTx) -> bool;
}

/// Runs one batch on `db`: every job in order on one transaction, then the commit. Returns
/// whether the commit reached the disk and whether the file itself failed.
pub type RunBatch = fn(&redb::Database, &mut [&mut dyn Job]) -> (bool, bool);

/// A queued job, pointing into its request's stack frame, which stays alive (waiting) until
/// `done` is set; the writer uses the pointers only before that point.
struct Entry {
    job: *mut dyn Job,
    db: *const redb::Database,
    done: *mut Option<Done>,
}

// SAFETY: an entry points into a request's stack frame. That frame waits, without touching the
// job or the database, until the writer has set `done` under the queue lock; only then does it
// read its job's result and return. The database is the one the request holds the store's slot
// for (shared), so it stays open meanwhile. `Job: Send`, so running it on the writer's thread
// is allowed.
unsafe impl Send for Entry {}

struct Queue {
    entries: Vec<Entry>,
    /// Set when the store is dropped: the writer exits.
    stop: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    /// The writer waits on it for work.
    work: Condvar,
    /// Requests wait on it for their job to be done.
    done: Condvar,
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
                done: Condvar::new(),
            }),
            writer: OnceLock::new(),
            run,
        }
    }

    /// Queues `job` for a batch on `db` and returns once its batch has ended.
    pub fn run(&self, db: &redb::Database, job: &mut dyn Job) -> Done {
        self.writer.get_or_init(|| {
            let shared = Arc::clone(&self.shared);
            let run = self.run;
            std::thread::Builder::new()
                .name("writer".into())
                .spawn(move || writer(&shared, run))
                .expect("starting the writer thread");
        });
        let mut done: Option<Done> = None;
        let done_ptr: *mut Option<Done> = &mut done;
        // SAFETY (lifetime): the job is borrowed for this call only, and this function returns
        // only once the writer is finished with the entry (see `Entry`).
        let job_ptr: *mut (dyn Job + '_) = job;
        let job_ptr: *mut dyn Job = unsafe { std::mem::transmute(job_ptr) };
        let mut q = self
            .shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        q.entries.push(Entry {
            job: job_ptr,
            db,
            done: done_ptr,
        });
        self.shared.work.notify_one();
        loop {
            // SAFETY: `done` is written by the writer under the queue lock, held here.
            if let Some(d) = unsafe { *done_ptr } {
                return d;
            }
            q = self
                .shared
                .done
                .wait(q)
                .unwrap_or_else(PoisonError::into_inner);
        }
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
    // Requests in the last batch: the clients answered by it are likely to send again at once.
    let mut last = 0;
    loop {
        let mut q = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
        while q.entries.is_empty() {
            if q.stop {
                return;
            }
            q = shared.work.wait(q).unwrap_or_else(PoisonError::into_inner);
        }
        // Linger: give the requests of the last batch's clients a moment to come back, so they
        // join this batch instead of waiting a whole sync for the next one. A lone client
        // (last batch of 1) never waits.
        let deadline = Instant::now() + Duration::from_micros(BATCH_LINGER_MICROS);
        while q.entries.len() < last && !q.stop {
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
        last = q.entries.len().min(MAX_REQUESTS_PER_COMMIT);
        let take = q.entries.len().min(MAX_REQUESTS_PER_COMMIT);
        let taken: Vec<Entry> = q.entries.drain(..take).collect();
        drop(q);
        // Every queued request holds the store's slot shared, so all of them name the same
        // open database (a reopen waits for them); one batch may take them all.
        // SAFETY: see `Entry`.
        let db = unsafe { &*taken[0].db };
        let mut jobs: Vec<&mut dyn Job> = taken
            .iter()
            // SAFETY: see `Entry`; each job's request is waiting.
            .map(|e| unsafe { &mut *e.job })
            .collect();
        // A job's own panic is caught inside it; anything else that panics fails the batch
        // rather than the writer, which every waiting request depends on.
        let started = std::time::Instant::now();
        let (committed, io_failed) =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(db, &mut jobs)))
                .unwrap_or_else(|_| {
                    crate::log!(
                        error,
                        "cmdb-lite: a group commit panicked; its requests fail"
                    );
                    (false, false)
                });
        crate::metrics::batch(jobs.len(), started.elapsed().as_secs_f64());
        drop(jobs);
        let stage = if committed {
            Stage::Committed
        } else {
            Stage::Failed
        };
        let _q = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
        for e in &taken {
            // SAFETY: see `Entry`; written under the queue lock.
            unsafe { *e.done = Some(Done { stage, io_failed }) };
        }
        shared.done.notify_all();
    }
}
