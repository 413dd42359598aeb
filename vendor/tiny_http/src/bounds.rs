//! cmdb-lite patch: connections bounded.
//!
//! Every accepted connection is registered here with the number of its requests in progress. At
//! `max_connections`, the connection idle longest (no request in progress: it never sent a byte,
//! or it waits between keep-alive requests) is closed to admit the new one; when every
//! connection has a request in progress, the new one is refused with a 503 (and `Retry-After`)
//! by the warden thread, which also closes connections whose request head is not complete within
//! `head_timeout`. Refusals and other events go to the embedder's `events` callback.

use std::collections::HashMap;
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::connection::Connection;

/// What the server tells its embedder (for its log).
#[derive(Debug)]
pub enum Event<'a> {
    /// A new connection was refused: every connection had a request in progress.
    RefusedBusy,
    /// No thread could be started for a new connection: the connection idle longest is closed
    /// so that its thread serves the new one.
    NoThread(&'a std::io::Error),
    /// A new connection was refused: no thread could be started for it.
    RefusedNoThread(&'a std::io::Error),
    /// A refused connection was closed without an answer: the warden's queue was full.
    DroppedRefusal,
    /// The connection idle longest was closed to admit a new one.
    EvictedIdle,
    /// A connection was closed: its request head was not complete in time.
    HeadTimeout,
    /// `accept` failed; the accept loop waits `backoff` before the next try.
    AcceptFailed(&'a std::io::Error, Duration),
}

/// Renders the body of an answer that tiny_http writes itself (400, 408, 431, 503): the HTTP
/// status and the request path when it is known.
pub type ErrorBody = dyn Fn(u16, Option<&str>) -> Vec<u8> + Send + Sync;
/// Receives the server's events.
pub type Events = dyn Fn(Event<'_>) + Send + Sync;

/// How many connections, for how long, and whom to tell.
#[derive(Clone)]
pub struct Options {
    /// Connections open at once (0: no limit).
    pub max_connections: usize,
    /// A request head must be complete this long after the connection was accepted (for its
    /// first request) or after its first byte (for later ones).
    pub head_timeout: Option<Duration>,
    /// Stack of each connection thread (which only parses request heads).
    pub thread_stack_bytes: usize,
    /// `Retry-After` of a 503 refusal, in seconds.
    pub retry_after_secs: u32,
    pub events: Arc<Events>,
    pub error_body: Arc<ErrorBody>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_connections: 0,
            head_timeout: None,
            thread_stack_bytes: 256 * 1024,
            retry_after_secs: 1,
            events: Arc::new(|_| {}),
            error_body: Arc::new(|_, _| Vec::new()),
        }
    }
}

/// Refused connections waiting for their 503 (beyond, they are closed at once).
const REFUSAL_QUEUE: usize = 64;
/// How long a refused connection is kept after its 503, reading what the client still sends,
/// so that closing it does not reset the connection before the client has read the answer.
const REFUSAL_LINGER: Duration = Duration::from_millis(500);
/// The warden's tick.
const WARDEN_TICK: Duration = Duration::from_millis(50);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One registered connection.
pub(crate) struct Entry {
    id: u64,
    conn: Arc<Connection>,
    /// Requests in progress (a head partly read counts as one).
    active: AtomicUsize,
    /// Milliseconds since the registry's epoch (+1) when the head now awaited started to count
    /// against `head_timeout`; 0 when no head is being awaited under the deadline.
    head_since: AtomicU64,
    /// Microseconds since the epoch when the connection last became idle.
    idle_since: AtomicU64,
    closed: AtomicBool,
    registry: Arc<Registry>,
}

impl Entry {
    /// The first byte of a request head arrived.
    pub(crate) fn head_started(&self) {
        self.active.fetch_add(1, Ordering::SeqCst);
        let now = self.registry.now_ms() + 1;
        let _ = self
            .head_since
            .compare_exchange(0, now, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// The head is complete (the count of `head_started` now belongs to the request).
    pub(crate) fn head_done(&self) {
        self.head_since.store(0, Ordering::SeqCst);
    }

    /// A request is finished (its `Request` dropped).
    pub(crate) fn request_done(&self) {
        if self.active.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle_since
                .store(self.registry.now_us(), Ordering::SeqCst);
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// After the answer now written: no further request is read, and the socket is closed
    /// for reading once the request is done (see `InProgress`).
    pub(crate) fn close_after_reply(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let _ = self.conn.shutdown(Shutdown::Write);
    }

    /// Closes the socket (both directions): blocked reads return at once.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let _ = self.conn.shutdown(Shutdown::Both);
    }

    pub(crate) fn error_body(&self, status: u16, path: Option<&str>) -> Vec<u8> {
        (self.registry.options.error_body)(status, path)
    }
}

/// Removes its entry from the registry when the connection's thread is done with it.
pub(crate) struct Registration(pub(crate) Arc<Entry>);

impl Drop for Registration {
    fn drop(&mut self) {
        lock(&self.0.registry.entries).remove(&self.0.id);
    }
}

/// Held by a `Request`: its connection has one request fewer in progress when it is dropped.
pub(crate) struct InProgress(pub(crate) Arc<Entry>);

impl Drop for InProgress {
    fn drop(&mut self) {
        if self.0.closed.load(Ordering::SeqCst) {
            let _ = self.0.conn.shutdown(Shutdown::Read);
        }
        self.0.request_done();
    }
}

/// The open connections.
pub(crate) struct Registry {
    pub(crate) options: Options,
    entries: Mutex<HashMap<u64, Arc<Entry>>>,
    next_id: AtomicU64,
    epoch: Instant,
    refusals: SyncSender<Arc<Connection>>,
}

/// What to do with a newly accepted connection.
pub(crate) enum Admission {
    Admitted(Registration),
    Refused(Connection),
}

impl Registry {
    /// The registry and its warden thread.
    pub(crate) fn start(options: Options) -> std::io::Result<Arc<Registry>> {
        let (tx, rx) = std::sync::mpsc::sync_channel(REFUSAL_QUEUE);
        let registry = Arc::new(Registry {
            options,
            entries: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            epoch: Instant::now(),
            refusals: tx,
        });
        let weak = Arc::downgrade(&registry);
        std::thread::Builder::new()
            .name("http-warden".into())
            .stack_size(256 * 1024)
            .spawn(move || warden(weak, rx))?;
        Ok(registry)
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// Connections registered now.
    pub(crate) fn len(&self) -> usize {
        lock(&self.entries).len()
    }

    /// Registers a new connection, first closing the connection idle longest when at the cap;
    /// refuses it when every connection has a request in progress.
    pub(crate) fn admit(self: &Arc<Self>, conn: Connection) -> Admission {
        let mut entries = lock(&self.entries);
        let max = self.options.max_connections;
        if max > 0 && entries.len() >= max {
            let idlest = entries
                .values()
                .filter(|e| e.active.load(Ordering::SeqCst) == 0)
                .min_by_key(|e| (e.idle_since.load(Ordering::SeqCst), e.id))
                .cloned();
            match idlest {
                Some(e) => {
                    entries.remove(&e.id);
                    e.close();
                    (self.options.events)(Event::EvictedIdle);
                }
                None => {
                    drop(entries);
                    (self.options.events)(Event::RefusedBusy);
                    return Admission::Refused(conn);
                }
            }
        }
        let now = self.now_ms();
        let entry = Arc::new(Entry {
            id: self.next_id.fetch_add(1, Ordering::SeqCst),
            conn: Arc::new(conn),
            active: AtomicUsize::new(0),
            head_since: AtomicU64::new(if self.options.head_timeout.is_some() {
                now + 1
            } else {
                0
            }),
            idle_since: AtomicU64::new(self.now_us()),
            closed: AtomicBool::new(false),
            registry: Arc::clone(self),
        });
        entries.insert(entry.id, Arc::clone(&entry));
        Admission::Admitted(Registration(entry))
    }

    /// Closes the connection idle longest (other than `except`), if there is one: at the
    /// connection cap, or when no thread could be started for a new connection (its thread
    /// comes free).
    pub(crate) fn evict_idlest(&self, except: &Entry) -> bool {
        let mut entries = lock(&self.entries);
        let idlest = entries
            .values()
            .filter(|e| e.id != except.id && e.active.load(Ordering::SeqCst) == 0)
            .min_by_key(|e| (e.idle_since.load(Ordering::SeqCst), e.id))
            .cloned();
        match idlest {
            Some(e) => {
                entries.remove(&e.id);
                e.close();
                (self.options.events)(Event::EvictedIdle);
                true
            }
            None => false,
        }
    }

    /// Hands a refused connection to the warden for its 503 (or closes it when the warden is
    /// behind).
    pub(crate) fn refuse(&self, conn: Arc<Connection>) {
        match self.refusals.try_send(conn) {
            Ok(()) => {}
            Err(TrySendError::Full(conn)) | Err(TrySendError::Disconnected(conn)) => {
                (self.options.events)(Event::DroppedRefusal);
                let _ = conn.shutdown(Shutdown::Both);
            }
        }
    }
}

impl Entry {
    pub(crate) fn conn(&self) -> &Arc<Connection> {
        &self.conn
    }
}

impl crate::util::DrainControl for Entry {
    fn closing(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    fn read_timeout(&self, t: Option<Duration>) -> Option<Duration> {
        match &*self.conn {
            Connection::Tcp(s) => {
                let before = s.read_timeout().ok().flatten();
                let _ = s.set_read_timeout(t);
                before
            }
            #[cfg(unix)]
            Connection::Unix(s) => {
                let before = s.read_timeout().ok().flatten();
                let _ = s.set_read_timeout(t);
                before
            }
        }
    }

    fn abandon(&self) {
        self.close();
    }
}

/// A refused connection after its 503: read and thrown away until the client closes or the
/// linger ends.
struct Lingering {
    conn: Arc<Connection>,
    until: Instant,
}

fn warden(registry: std::sync::Weak<Registry>, rx: Receiver<Arc<Connection>>) {
    let mut lingering: Vec<Lingering> = Vec::new();
    let mut last_scan = Instant::now();
    loop {
        let got = rx.recv_timeout(WARDEN_TICK);
        let Some(registry) = registry.upgrade() else {
            return;
        };
        match got {
            Ok(conn) => {
                let body = (registry.options.error_body)(503, None);
                let head = format!(
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\
                     Retry-After: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    registry.options.retry_after_secs,
                    body.len()
                );
                let _ = conn.set_nonblocking(true);
                let mut answer = head.into_bytes();
                answer.extend_from_slice(&body);
                // A fresh socket's send buffer takes a small answer whole.
                let _ = conn.write_all_nonblocking(&answer);
                let _ = conn.shutdown(Shutdown::Write);
                if lingering.len() < REFUSAL_QUEUE {
                    lingering.push(Lingering {
                        conn,
                        until: Instant::now() + REFUSAL_LINGER,
                    });
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        }
        let now = Instant::now();
        lingering.retain_mut(|l| {
            let mut buf = [0u8; 4096];
            loop {
                match l.conn.read_shared(&mut buf) {
                    Ok(0) => return false,
                    Ok(_) => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(_) => return false,
                }
            }
            now < l.until
        });
        if now.duration_since(last_scan) >= Duration::from_millis(250) {
            last_scan = now;
            if let Some(limit) = registry.options.head_timeout {
                let limit = limit.as_millis() as u64;
                let now_ms = registry.now_ms();
                let late: Vec<Arc<Entry>> = lock(&registry.entries)
                    .values()
                    .filter(|e| {
                        let since = e.head_since.load(Ordering::SeqCst);
                        since != 0 && now_ms + 1 > since + limit && !e.closed.load(Ordering::SeqCst)
                    })
                    .cloned()
                    .collect();
                for e in late {
                    e.close();
                    (registry.options.events)(Event::HeadTimeout);
                }
            }
        }
    }
}
