//! The threads that serve requests, so that slow clients cannot starve the others.
//!
//! A request's socket I/O (reading its body, writing its answer, draining what a refused request
//! still sends) can take as long as the client likes, so it runs on a [`Receivers`] thread of its
//! own: an elastic set of threads, each taking one request at a time, where whoever takes the
//! last waiting thread's place starts another. Only the work in between (decoding, the store,
//! rendering) is bounded, by [`Permits`] (`serve --threads`).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A counting semaphore: at most `n` holders of a [`Permit`] at once.
pub struct Permits {
    free: Mutex<usize>,
    freed: Condvar,
}

/// Held while a request is being worked on; released on drop.
pub struct Permit<'a>(&'a Permits);

impl Permits {
    pub fn new(n: usize) -> Permits {
        Permits {
            free: Mutex::new(n.max(1)),
            freed: Condvar::new(),
        }
    }

    /// Waits for a free permit.
    pub fn acquire(&self) -> Permit<'_> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
        Permit(self)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut free = self.0.free.lock().unwrap_or_else(|e| e.into_inner());
        *free += 1;
        self.0.freed.notify_one();
    }
}

type Recv<T> = Box<dyn Fn() -> Option<T> + Send + Sync>;
type Serve<T> = Box<dyn Fn(T) + Send + Sync>;

struct Shared<T> {
    recv: Recv<T>,
    serve: Serve<T>,
    /// Threads that will call `recv` next (waiting in it, or about to). Never 0 for long:
    /// a thread that takes an item when it was the last one starts a replacement first.
    idle: AtomicUsize,
    /// Idle threads kept; a thread finding this many idle when it is done exits.
    keep_idle: usize,
    /// Threads alive at most: at the bound, items wait for a thread to come back.
    max: usize,
    log: Arc<super::conn_limit::Throttled>,
    live: Mutex<usize>,
    all_done: Condvar,
    stopping: AtomicBool,
}

/// An elastic set of threads, each looping `recv` → `serve`.
pub struct Receivers<T: Send + 'static> {
    shared: Arc<Shared<T>>,
}

impl<T: Send + 'static> Receivers<T> {
    /// Starts `keep_idle` threads calling `recv` (which returns `None` to stop one thread) and
    /// `serve` on each item; never more than `max` threads at once.
    pub fn start(
        keep_idle: usize,
        max: usize,
        log: Arc<super::conn_limit::Throttled>,
        recv: impl Fn() -> Option<T> + Send + Sync + 'static,
        serve: impl Fn(T) + Send + Sync + 'static,
    ) -> Result<Receivers<T>, String> {
        let shared = Arc::new(Shared {
            recv: Box::new(recv),
            serve: Box::new(serve),
            idle: AtomicUsize::new(0),
            keep_idle: keep_idle.max(1),
            max: max.max(keep_idle.max(1)),
            log,
            live: Mutex::new(0),
            all_done: Condvar::new(),
            stopping: AtomicBool::new(false),
        });
        for _ in 0..shared.keep_idle {
            spawn(&shared).map_err(|e| format!("cannot start a thread: {e}"))?;
        }
        Ok(Receivers { shared })
    }

    /// Threads alive now.
    pub fn live(&self) -> usize {
        *self.shared.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks until every thread has stopped.
    pub fn join(&self) {
        let mut live = self.shared.live.lock().unwrap_or_else(|e| e.into_inner());
        while *live > 0 {
            live = self
                .shared
                .all_done
                .wait(live)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Stops the threads: each finishes its current item and goes on taking the items already
    /// queued, until `unblock` (which must make one waiting `recv` return `None`, behind what
    /// is queued) stops it; no thread is started any more. Waits at most `grace`, and returns
    /// the number of threads still alive then (0 when all have stopped).
    pub fn stop(&self, unblock: impl Fn(), grace: Duration) -> usize {
        self.shared.stopping.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + grace;
        let mut live = self.shared.live.lock().unwrap_or_else(|e| e.into_inner());
        let mut unblocked = 0;
        while *live > 0 {
            // One stop mark per live thread, once; more only if threads were started since.
            while unblocked < *live {
                unblock();
                unblocked += 1;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            live = self
                .shared
                .all_done
                .wait_timeout(live, left.min(Duration::from_millis(50)))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *live
    }
}

/// Starts one more thread, counted idle from now on (unless `max` are alive: then `Ok(false)`).
fn spawn<T: Send + 'static>(shared: &Arc<Shared<T>>) -> std::io::Result<bool> {
    {
        let mut live = shared.live.lock().unwrap_or_else(|e| e.into_inner());
        if *live >= shared.max {
            return Ok(false);
        }
        *live += 1;
    }
    shared.idle.fetch_add(1, Ordering::SeqCst);
    let mine = Arc::clone(shared);
    let spawned = std::thread::Builder::new()
        .name("http".into())
        .spawn(move || run(&mine));
    if spawned.is_err() {
        shared.idle.fetch_sub(1, Ordering::SeqCst);
        finished(shared);
    }
    spawned.map(|_| true)
}

fn finished<T>(shared: &Shared<T>) {
    let mut live = shared.live.lock().unwrap_or_else(|e| e.into_inner());
    *live -= 1;
    shared.all_done.notify_all();
}

fn run<T: Send + 'static>(shared: &Arc<Shared<T>>) {
    loop {
        // Counted idle here (by `spawn`, or below).
        let Some(item) = (shared.recv)() else {
            shared.idle.fetch_sub(1, Ordering::SeqCst);
            break;
        };
        // Nobody else is waiting for the next item: start someone before serving this one
        // (which may take as long as a slow client wants).
        if shared.idle.fetch_sub(1, Ordering::SeqCst) == 1
            && !shared.stopping.load(Ordering::SeqCst)
            && let Err(e) = spawn(shared)
        {
            // This thread goes back to waiting when it is done; until then new items queue.
            shared.log.log(
                "cannot start a thread for the next request (it waits for one)",
                &format!(": {e}"),
            );
        }
        let serve = std::panic::AssertUnwindSafe(|| (shared.serve)(item));
        if std::panic::catch_unwind(serve).is_err() {
            crate::log!("cmdb-lite: an HTTP thread panicked");
        }
        if shared.stopping.load(Ordering::SeqCst) {
            // Stopping: take what is still queued, until this thread's stop mark.
            shared.idle.fetch_add(1, Ordering::SeqCst);
            continue;
        }
        let back = shared
            .idle
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < shared.keep_idle).then_some(n + 1)
            });
        if back.is_err() {
            break;
        }
    }
    finished(shared);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Instant;

    /// Items served by threads that block until released: every item is served at once,
    /// however many threads are already blocked, and surplus threads go away afterwards.
    #[test]
    fn blocked_items_never_hold_up_the_next() {
        let (tx, rx) = mpsc::channel::<usize>();
        let rx = Mutex::new(rx);
        let release = Arc::new((Mutex::new(false), Condvar::new()));
        let (started_tx, started_rx) = mpsc::channel::<usize>();
        let started_tx = Mutex::new(started_tx);
        let r2 = Arc::clone(&release);
        let pool = Receivers::start(
            2,
            1000,
            Arc::new(crate::http::conn_limit::Throttled::new(
                Duration::from_secs(1),
            )),
            move || rx.lock().unwrap().recv().ok(),
            move |i| {
                started_tx.lock().unwrap().send(i).unwrap();
                let (lock, cv) = &*r2;
                let mut go = lock.lock().unwrap();
                while !*go {
                    go = cv.wait(go).unwrap();
                }
            },
        )
        .unwrap();
        // 40 items sent at once, each blocking its thread: all start.
        for i in 0..40 {
            tx.send(i).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = Vec::new();
        while seen.len() < 40 {
            let left = deadline.saturating_duration_since(Instant::now());
            seen.push(
                started_rx
                    .recv_timeout(left)
                    .unwrap_or_else(|_| panic!("only {} of 40 items started", seen.len())),
            );
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..40).collect::<Vec<_>>());
        assert!(pool.live() > 40, "{} threads", pool.live());
        // Released: back to about `keep_idle` threads.
        *release.0.lock().unwrap() = true;
        release.1.notify_all();
        let deadline = Instant::now() + Duration::from_secs(10);
        while pool.live() > 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(pool.live() <= 3, "{} threads left", pool.live());
        drop(tx);
        pool.join();
        assert_eq!(pool.live(), 0);
    }

    #[test]
    fn permits_bound_the_holders() {
        let permits = Arc::new(Permits::new(3));
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..12)
            .map(|_| {
                let (p, inside, most) = (permits.clone(), inside.clone(), most.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let _permit = p.acquire();
                        let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(n, Ordering::SeqCst);
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let most = most.load(Ordering::SeqCst);
        assert!((1..=3).contains(&most), "{most} holders at once");
    }
}
