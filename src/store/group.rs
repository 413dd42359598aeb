//! Group commit: the write requests that arrive together share one transaction and one sync.
//!
//! The open batch is one redb write transaction, created with `Durability::Immediate`. Requests
//! take turns on it (one at a time, so they stay serial): each runs its closure, and one that
//! fails is rolled back from its undo log (`WriteTx::roll_back`), leaving the others' writes
//! as they were. A request that finishes while no other is waiting to take its turn commits
//! the batch: one `fdatasync` for all of it. The others wait until their batch has ended and
//! answer only then, so every success answer describes data on disk. While one batch syncs, the
//! requests that arrive queue for the next one, so the busier the server, the larger the
//! batches. A batch is capped at [`MAX_REQUESTS_PER_COMMIT`] requests to bound the wait.
//!
//! Reads see only committed batches, which are on disk. A batch that fails to commit (an I/O
//! error) fails every request in it.

use crate::limits::MAX_REQUESTS_PER_COMMIT;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// Failed batches remembered; a request waits for its batch long before it is forgotten.
const FAILED_KEPT: usize = 64;

/// The open batch.
pub struct Open {
    pub txn: redb::WriteTransaction,
    pub id: u64,
    /// Requests that have taken their turn on it.
    pub members: usize,
    /// Some request's writes are kept: there is something to commit.
    pub dirty: bool,
    /// A request met a failure of the transaction itself: the batch cannot commit.
    pub broken: bool,
}

pub struct State {
    /// The batch requests are joining, if any.
    pub open: Option<Open>,
    /// The id the next batch gets.
    next: u64,
    /// Every batch up to this one has ended.
    ended: u64,
    /// Recent batches that ended without committing.
    failed: VecDeque<u64>,
}

pub struct Batches {
    state: Mutex<State>,
    ended: Condvar,
    /// Requests waiting for their turn (for the state's lock).
    arriving: AtomicUsize,
}

impl Default for Batches {
    fn default() -> Batches {
        Batches {
            state: Mutex::new(State {
                open: None,
                next: 1,
                ended: 0,
                failed: VecDeque::new(),
            }),
            ended: Condvar::new(),
            arriving: AtomicUsize::new(0),
        }
    }
}

impl Batches {
    /// Waits for this request's turn.
    pub fn turn(&self) -> MutexGuard<'_, State> {
        self.arriving.fetch_add(1, Ordering::SeqCst);
        let s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        self.arriving.fetch_sub(1, Ordering::SeqCst);
        s
    }

    /// True if the request whose turn just ended must commit the batch: nobody is waiting to
    /// join it, or it is full.
    pub fn must_commit(&self, members: usize) -> bool {
        self.arriving.load(Ordering::SeqCst) == 0 || members >= MAX_REQUESTS_PER_COMMIT
    }

    /// Starts a batch on `txn`; returns its id.
    pub fn open(&self, s: &mut State, txn: redb::WriteTransaction) -> u64 {
        let id = s.next;
        s.next += 1;
        s.open = Some(Open {
            txn,
            id,
            members: 0,
            dirty: false,
            broken: false,
        });
        id
    }

    /// Records the end of batch `id` (committed or not) and wakes its requests.
    pub fn end(&self, id: u64, committed: bool) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.ended = s.ended.max(id);
        if !committed {
            if s.failed.len() == FAILED_KEPT {
                s.failed.pop_front();
            }
            s.failed.push_back(id);
        }
        self.ended.notify_all();
    }

    /// Waits until batch `id` has ended; true if it committed.
    pub fn wait(&self, mut s: MutexGuard<'_, State>, id: u64) -> bool {
        while s.ended < id {
            s = self.ended.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
        !s.failed.contains(&id)
    }
}
