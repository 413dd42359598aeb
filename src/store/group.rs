//! Group commit: the write requests that arrive together share one transaction and one sync.
//!
//! A write request queues its closure as a [`Job`] and waits. Whichever waiting request finds
//! no leader becomes one: it takes every queued job (at most [`MAX_REQUESTS_PER_COMMIT`]), runs
//! them one after the other on one redb write transaction, rolls back from its undo log each
//! one that fails (`WriteTx::roll_back`) so the others' writes stay as they were, commits once
//! with `Durability::Immediate` (one `fdatasync`), and only then marks the jobs done; each
//! request answers when its job is done. While a batch syncs, the requests that arrive queue for
//! the next one, so the busier the server, the larger the batches, and a batch runs on one
//! thread without handing a lock from request to request. Requests stay serial (one job at a
//! time, in queue order), and reads see only committed batches, which are on disk. A batch that
//! fails to commit fails every request in it.
//!
//! A job runs on the leader's thread while its request's thread waits for it: the closure may
//! borrow from that request's stack, which outlives the job (see [`Batches::run`]).

use crate::limits::MAX_REQUESTS_PER_COMMIT;
use std::sync::{Condvar, Mutex, PoisonError};

/// Where a job stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Queued,
    Taken,
    /// Its batch committed (or had nothing to write).
    Committed,
    /// Its batch did not reach the disk.
    Failed,
}

/// A request's closure, run by the leader on the batch's transaction.
pub trait Job: Send {
    /// Runs the closure; true if its writes are to be kept (it succeeded).
    fn run(&mut self, tx: &mut super::WriteTx) -> bool;
}

/// A queued job: the request's closure and its stage. Owned by the request's stack frame,
/// which stays alive (waiting) until the stage is `Committed` or `Failed`.
struct Entry {
    job: *mut dyn Job,
    stage: *mut Stage,
}

// SAFETY: an entry is a pair of pointers into a request's stack frame. That frame waits, without
// touching them, until the leader has set the stage to a final value under the queue lock; only
// then does it read the stage and the job's result and return. The leader uses the pointers only
// before that point. `Job: Send`, so running it on the leader's thread is allowed.
unsafe impl Send for Entry {}

struct Queue {
    entries: Vec<Entry>,
    leading: bool,
}

pub struct Batches {
    queue: Mutex<Queue>,
    changed: Condvar,
}

impl Default for Batches {
    fn default() -> Batches {
        Batches {
            queue: Mutex::new(Queue {
                entries: Vec::new(),
                leading: false,
            }),
            changed: Condvar::new(),
        }
    }
}

impl Batches {
    /// Queues `job` and returns once it is done (`Committed` or `Failed`), having led batches
    /// when no one else did. `batch` runs a batch: the jobs in order on one transaction,
    /// then the commit; it returns whether the commit reached the disk.
    pub fn run(
        &self,
        job: &mut dyn Job,
        batch: impl Fn(&mut dyn FnMut(&mut dyn FnMut(&mut dyn Job))) -> bool,
    ) -> Stage {
        let mut stage = Stage::Queued;
        let stage_ptr: *mut Stage = &mut stage;
        // SAFETY (lifetime): the job is borrowed for this call only; this function returns only
        // after the leader has finished with the entry (stage final), see `Entry`.
        let job_ptr: *mut (dyn Job + '_) = job;
        let job_ptr: *mut dyn Job = unsafe { std::mem::transmute(job_ptr) };
        let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        q.entries.push(Entry {
            job: job_ptr,
            stage: stage_ptr,
        });
        loop {
            // SAFETY: the stage is read under the queue lock, under which the leader writes it.
            let now = unsafe { *stage_ptr };
            if matches!(now, Stage::Committed | Stage::Failed) {
                return now;
            }
            if q.leading || now != Stage::Queued {
                q = self.changed.wait(q).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            q.leading = true;
            let take = q.entries.len().min(MAX_REQUESTS_PER_COMMIT);
            let taken: Vec<Entry> = q.entries.drain(..take).collect();
            for e in &taken {
                // SAFETY: see `Entry`.
                unsafe { *e.stage = Stage::Taken };
            }
            drop(q);
            let committed = batch(&mut |each: &mut dyn FnMut(&mut dyn Job)| {
                for e in &taken {
                    // SAFETY: see `Entry`; the job's request is waiting.
                    each(unsafe { &mut *e.job });
                }
            });
            q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            let end = if committed {
                Stage::Committed
            } else {
                Stage::Failed
            };
            for e in &taken {
                // SAFETY: see `Entry`; written under the queue lock.
                unsafe { *e.stage = end };
            }
            q.leading = false;
            self.changed.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Count<'a>(&'a Mutex<Vec<usize>>, usize);

    impl Job for Count<'_> {
        fn run(&mut self, _tx: &mut crate::store::WriteTx) -> bool {
            self.0.lock().unwrap().push(self.1);
            true
        }
    }

    #[test]
    fn every_job_runs_once_in_some_batch() {
        let b = Batches::default();
        let seen = Mutex::new(Vec::new());
        let batches = Mutex::new(0usize);
        std::thread::scope(|s| {
            for t in 0..8 {
                let (b, seen, batches) = (&b, &seen, &batches);
                s.spawn(move || {
                    for i in 0..200 {
                        let mut job = Count(seen, t * 1000 + i);
                        let stage = b.run(&mut job, |jobs| {
                            *batches.lock().unwrap() += 1;
                            std::thread::sleep(std::time::Duration::from_micros(100));
                            jobs(&mut |_job| {});
                            true
                        });
                        assert_eq!(stage, Stage::Committed);
                    }
                });
            }
        });
        // The batch closure above does not run the jobs: this checks the queue only.
        assert!(seen.lock().unwrap().is_empty());
        let n = *batches.lock().unwrap();
        assert!(n <= 1600, "{n} batches");
    }
}
