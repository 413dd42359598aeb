//! Group commit: many write transactions, one `fdatasync`.
//!
//! Every write request still runs in its own redb write transaction (redb admits one writer at a
//! time, so requests stay serial and a failing one aborts alone), but commits it with
//! `Durability::None`: the new state is in memory only. The request then waits in
//! [`Group::sync`] until a durable commit covers it. Whoever finds no sync running becomes the
//! leader: it notes how many commits have been made so far, runs one empty
//! `Durability::Immediate` commit (redb then writes and syncs everything committed before it),
//! and releases every request it covered. Requests that committed while it synced are covered by
//! the next leader, one of themselves. So under load one sync serves a whole group, and a
//! request is answered only after its data is on disk.
//!
//! A non-durable commit is visible to reads before it is on disk, so a read also waits (see
//! `Store::read`) until every commit it may have seen is durable: nothing a client is shown can
//! be lost by a crash.
//!
//! A sync that fails loses every commit it was to cover; a reopen of the file (after any I/O
//! failure) loses every commit not yet durable. [`Group::sync`] then answers those requests with
//! a storage error.

use std::sync::{Condvar, Mutex, PoisonError};

/// Lost ranges remembered (each is one failed sync or reopen).
const LOST_RANGES_KEPT: usize = 64;

/// The commit counters; see the module documentation.
#[derive(Default)]
struct State {
    /// Commits made (each counted while its transaction still holds redb's write lock).
    committed: u64,
    /// Every commit up to this one is on disk, except the lost ones.
    durable: u64,
    /// Lost commits: the ranges `(after, upto]` a failed sync or a reopen gave up, newest last
    /// (the last `LOST_RANGES_KEPT`; a waiter is woken long before its range is dropped).
    lost: Vec<(u64, u64)>,
    /// A leader is running the durable commit.
    syncing: bool,
}

impl State {
    fn lose(&mut self, after: u64, upto: u64) {
        if upto > after {
            if self.lost.len() == LOST_RANGES_KEPT {
                self.lost.remove(0);
            }
            self.lost.push((after, upto));
        }
    }
}

/// How one wait for durability ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Synced {
    Durable,
    /// The commit was lost (a failed sync or a reopen): it must not be acknowledged.
    Lost,
}

#[derive(Default)]
pub struct Group {
    state: Mutex<State>,
    changed: Condvar,
}

impl Group {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one commit; call it while the transaction still holds redb's write lock, just
    /// before committing. Returns the commit's sequence number.
    pub fn count_commit(&self) -> u64 {
        let mut s = self.lock();
        s.committed += 1;
        s.committed
    }

    /// The number of commits counted so far (for a read: every commit its snapshot can hold).
    pub fn committed(&self) -> u64 {
        self.lock().committed
    }

    /// Notes that every commit counted so far is on disk (a durable commit made directly).
    pub fn all_durable(&self) {
        let mut s = self.lock();
        s.durable = s.committed;
        self.changed.notify_all();
    }

    /// Notes that every commit not yet durable is lost (the file was reopened), and that the
    /// reopened file, which holds only durable commits, is itself durable: it counts as one
    /// more commit, so a read of it waits for nothing.
    pub fn all_lost(&self) {
        let mut s = self.lock();
        let (after, upto) = (s.durable, s.committed);
        s.lose(after, upto);
        s.committed += 1;
        s.durable = s.committed;
        self.changed.notify_all();
    }

    /// Waits until commit `seq` is durable or lost; leads a sync when none is running.
    /// `sync` makes every commit made before it durable, or fails.
    pub fn sync<E>(&self, seq: u64, sync: impl Fn() -> Result<(), E>) -> Result<Synced, E> {
        let mut s = self.lock();
        loop {
            if s.lost
                .iter()
                .any(|&(after, upto)| after < seq && seq <= upto)
            {
                return Ok(Synced::Lost);
            }
            if s.durable >= seq {
                return Ok(Synced::Durable);
            }
            if s.syncing {
                s = self.changed.wait(s).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            s.syncing = true;
            let target = s.committed;
            drop(s);
            let result = sync();
            s = self.lock();
            s.syncing = false;
            match &result {
                Ok(()) => s.durable = s.durable.max(target),
                Err(_) => {
                    let after = s.durable;
                    s.lose(after, target);
                }
            }
            self.changed.notify_all();
            result?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn one_sync_covers_every_commit_before_it() {
        let g = Group::default();
        let a = g.count_commit();
        let b = g.count_commit();
        let syncs = AtomicUsize::new(0);
        let sync = || {
            syncs.fetch_add(1, Ordering::SeqCst);
            Ok::<(), ()>(())
        };
        assert_eq!(g.sync(b, sync), Ok(Synced::Durable));
        assert_eq!(g.sync(a, sync), Ok(Synced::Durable));
        assert_eq!(syncs.load(Ordering::SeqCst), 1);
        let c = g.count_commit();
        assert_eq!(g.sync(c, sync), Ok(Synced::Durable));
        assert_eq!(syncs.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_failed_sync_loses_what_it_covered_only() {
        let g = Group::default();
        let a = g.count_commit();
        assert_eq!(g.sync(a, || Err("disk")), Err("disk"));
        assert_eq!(g.sync(a, || Ok::<(), &str>(())), Ok(Synced::Lost));
        let b = g.count_commit();
        assert_eq!(g.sync(b, || Ok::<(), &str>(())), Ok(Synced::Durable));
        let c = g.count_commit();
        g.all_lost();
        assert_eq!(g.sync(c, || Ok::<(), &str>(())), Ok(Synced::Lost));
        // A read of the reopened file waits for nothing.
        assert_eq!(
            g.sync(g.committed(), || Err("no sync")),
            Ok(Synced::Durable)
        );
        let d = g.count_commit();
        g.all_durable();
        assert_eq!(g.sync(d, || Err("never called")), Ok(Synced::Durable));
    }

    #[test]
    fn concurrent_waiters_share_syncs() {
        let g = Arc::new(Group::default());
        let syncs = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (g, syncs) = (Arc::clone(&g), Arc::clone(&syncs));
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        let seq = g.count_commit();
                        let r = g.sync(seq, || {
                            syncs.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_micros(200));
                            Ok::<(), ()>(())
                        });
                        assert_eq!(r, Ok(Synced::Durable));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let n = syncs.load(Ordering::SeqCst);
        assert!(n < 1600, "{n} syncs for 1600 commits");
    }
}
