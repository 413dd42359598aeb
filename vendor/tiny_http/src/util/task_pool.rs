use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

/// Manages a collection of threads.
///
/// A new thread is created every time all the existing threads are full.
/// Any idle thread will automatically die after a few seconds.
pub struct TaskPool {
    sharing: Arc<Sharing>,
}

struct Sharing {
    // cmdb-lite patch: the stack of each thread.
    stack_bytes: usize,

    // list of the tasks to be done by worker threads
    todo: Mutex<VecDeque<Box<dyn FnMut() + Send>>>,

    // condvar that will be notified whenever a task is added to `todo`
    condvar: Condvar,

    // number of total worker threads running
    active_tasks: AtomicUsize,

    // number of idle worker threads
    waiting_tasks: AtomicUsize,
}

/// Minimum number of active threads.
static MIN_THREADS: usize = 4;

struct Registration<'a> {
    nb: &'a AtomicUsize,
}

impl<'a> Registration<'a> {
    fn new(nb: &'a AtomicUsize) -> Registration<'a> {
        nb.fetch_add(1, Ordering::Release);
        Registration { nb }
    }
}

impl<'a> Drop for Registration<'a> {
    fn drop(&mut self) {
        self.nb.fetch_sub(1, Ordering::Release);
    }
}

impl TaskPool {
    /// cmdb-lite patch: threads of `stack_bytes`; an error if the first threads cannot start.
    pub fn new(stack_bytes: usize) -> std::io::Result<TaskPool> {
        let pool = TaskPool {
            sharing: Arc::new(Sharing {
                stack_bytes,
                todo: Mutex::new(VecDeque::new()),
                condvar: Condvar::new(),
                active_tasks: AtomicUsize::new(0),
                waiting_tasks: AtomicUsize::new(0),
            }),
        };

        for _ in 0..MIN_THREADS {
            pool.add_thread(None).map_err(|(e, _)| e)?;
        }

        Ok(pool)
    }

    /// Executes a function in a thread.
    /// If no thread is available, spawns a new one.
    ///
    /// cmdb-lite patch: when no thread can be started, the task is given back with the error
    /// (upstream panicked, on the accept thread and holding the queue's lock, which then stayed
    /// poisoned: every connection thread panicked in turn and the server stopped accepting).
    pub fn spawn(
        &self,
        code: Box<dyn FnMut() + Send>,
    ) -> Result<(), (std::io::Error, Box<dyn FnMut() + Send>)> {
        let mut queue = self.sharing.todo.lock().unwrap_or_else(|e| e.into_inner());

        // cmdb-lite patch: queue the task only if an idle thread is left for it. A woken thread
        // still counts as waiting until it has taken a task, so upstream's `waiting == 0` test
        // let several tasks share one waiter when connections arrived together; the extra tasks
        // (keep-alive connections) then stayed queued until some other connection closed.
        if self.sharing.waiting_tasks.load(Ordering::Acquire) <= queue.len() {
            drop(queue);
            self.add_thread(Some(code))
                .map_err(|(e, code)| (e, code.unwrap_or_else(|| Box::new(|| {}))))
        } else {
            queue.push_back(code);
            self.sharing.condvar.notify_one();
            Ok(())
        }
    }

    #[allow(clippy::type_complexity)]
    fn add_thread(
        &self,
        initial_fn: Option<Box<dyn FnMut() + Send>>,
    ) -> Result<(), (std::io::Error, Option<Box<dyn FnMut() + Send>>)> {
        let sharing = self.sharing.clone();
        // The task comes back if the thread cannot start.
        let slot = Arc::new(Mutex::new(initial_fn));
        let mine = Arc::clone(&slot);

        let spawned = thread::Builder::new()
            .stack_size(self.sharing.stack_bytes)
            .spawn(move || {
            let initial_fn = mine.lock().unwrap_or_else(|e| e.into_inner()).take();
            drop(mine);
            let sharing = sharing;
            let _active_guard = Registration::new(&sharing.active_tasks);

            if let Some(mut f) = initial_fn {
                f();
            }

            loop {
                let mut task: Box<dyn FnMut() + Send> = {
                    let mut todo = sharing.todo.lock().unwrap_or_else(|e| e.into_inner());

                    let task;
                    loop {
                        if let Some(poped_task) = todo.pop_front() {
                            task = poped_task;
                            break;
                        }
                        let _waiting_guard = Registration::new(&sharing.waiting_tasks);

                        let received =
                            if sharing.active_tasks.load(Ordering::Acquire) <= MIN_THREADS {
                                todo = sharing
                                    .condvar
                                    .wait(todo)
                                    .unwrap_or_else(|e| e.into_inner());
                                true
                            } else {
                                let (new_lock, waitres) = sharing
                                    .condvar
                                    .wait_timeout(todo, Duration::from_millis(5000))
                                    .unwrap_or_else(|e| e.into_inner());
                                todo = new_lock;
                                !waitres.timed_out()
                            };

                        if !received && todo.is_empty() {
                            return;
                        }
                    }

                    task
                };

                task();
            }
        });
        match spawned {
            Ok(_) => Ok(()),
            Err(e) => {
                let task = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
                Err((e, task))
            }
        }
    }
}

impl Drop for TaskPool {
    fn drop(&mut self) {
        self.sharing
            .active_tasks
            .store(999_999_999, Ordering::Release);
        self.sharing.condvar.notify_all();
    }
}
