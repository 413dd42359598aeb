//! The routes for operators, outside bk-cmdb's three families (product.md section 7):
//! `GET /healthz` (live), `GET /readyz` (ready to answer bk-cmdb's APIs), `GET /metrics`
//! (Prometheus text) and `GET /_cmdb/export` (a dataset file streamed from one read snapshot of
//! the running store). They need no identity headers and take no worker permit: they are
//! answered on the request's own thread of `pool::Receivers`, so a server whose permits are all
//! busy still says it is alive.

use crate::dataset;
use crate::limits::{EXPORT_CHUNK_BYTES, EXPORT_CHUNKS_IN_FLIGHT, MAX_CONCURRENT_EXPORTS};
use crate::metrics;
use crate::store::Store;
use serde_json::json;
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Instant;

/// The version of this binary, as `--version` and the `Server` header say it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Where the server is in its life, for `/readyz`.
#[derive(Debug)]
pub struct Health {
    state: AtomicU8,
    started: Instant,
}

const STARTING: u8 = 0;
const READY: u8 = 1;
const STOPPING: u8 = 2;

impl Health {
    /// A server that is starting (the store is being opened or seeded).
    pub fn new() -> Health {
        Health {
            state: AtomicU8::new(STARTING),
            started: Instant::now(),
        }
    }
    /// The store is open and seeded: bk-cmdb's routes are served.
    pub fn set_ready(&self) {
        self.state.store(READY, Ordering::Release);
    }
    /// A stop was asked for: `/readyz` answers 503 from now on.
    pub fn set_stopping(&self) {
        self.state.store(STOPPING, Ordering::Release);
    }
    /// Whether bk-cmdb's routes are served (after seeding, also while stopping).
    pub fn serving(&self) -> bool {
        self.state.load(Ordering::Acquire) != STARTING
    }
    fn state_name(&self) -> &'static str {
        match self.state.load(Ordering::Acquire) {
            STARTING => "starting",
            READY => "ready",
            _ => "stopping",
        }
    }
    fn uptime_secs(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

/// One of the operators' routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Healthz,
    Readyz,
    Metrics,
    Export,
}

impl Route {
    /// The name in the access log and in `/metrics`.
    pub fn name(self) -> &'static str {
        match self {
            Route::Healthz => "healthz",
            Route::Readyz => "readyz",
            Route::Metrics => "metrics",
            Route::Export => "export",
        }
    }
}

/// The operators' route at `path` (with or without a trailing slash), if it is one.
pub fn resolve(path: &str) -> Option<Route> {
    let trimmed = if path.len() > 1 {
        path.strip_suffix('/').unwrap_or(path)
    } else {
        path
    };
    match trimmed {
        "/healthz" => Some(Route::Healthz),
        "/readyz" => Some(Route::Readyz),
        "/metrics" => Some(Route::Metrics),
        "/_cmdb/export" => Some(Route::Export),
        _ => None,
    }
}

/// What `/healthz` and `/readyz` say about the store.
fn store_state(health: &Health, store: &Store) -> &'static str {
    if !health.serving() {
        "starting"
    } else if store.degraded() {
        "degraded"
    } else {
        "ok"
    }
}

/// The body of `/healthz` or `/readyz`, and its status.
pub fn health_answer(route: Route, health: &Health, store: &Store) -> (u16, String) {
    let state = health.state_name();
    let store_state = store_state(health, store);
    let ready = state == "ready" && store_state == "ok";
    let status = match route {
        Route::Readyz if !ready => 503,
        _ => 200,
    };
    let body = json!({
        "status": match route {
            Route::Healthz => "alive",
            _ if ready => "ready",
            _ if state == "ready" => "degraded",
            _ => state,
        },
        "version": VERSION,
        "schema_version": crate::store::codec::SCHEMA_VERSION,
        "uptime_seconds": (health.uptime_secs() * 1000.0).round() / 1000.0,
        "server": state,
        "store": store_state,
    });
    (status, body.to_string() + "\n")
}

/// The `/metrics` text.
pub fn metrics_answer(health: &Health, store: &Store, threads: usize) -> String {
    let degraded = store.degraded();
    metrics::render(&metrics::Gauges {
        version: VERSION,
        uptime_secs: health.uptime_secs(),
        ready: health.state_name() == "ready" && !degraded,
        degraded,
        store_file_bytes: store
            .path()
            .and_then(|p| std::fs::metadata(p).ok())
            .map(|m| m.len()),
        open_connections: open_connections(),
        worker_permits: threads,
        rss_bytes: rss_bytes(),
    })
}

/// Sockets the process has open, less the listening one: the server opens no other socket, so
/// these are its client connections.
fn open_connections() -> Option<u64> {
    let dir = std::fs::read_dir("/proc/self/fd").ok()?;
    let sockets = dir
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter(|l| l.to_string_lossy().starts_with("socket:"))
        .count() as u64;
    Some(sockets.saturating_sub(1))
}

/// The resident set size, from `/proc/self/status`.
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Online exports in progress (bounded by `MAX_CONCURRENT_EXPORTS`).
static EXPORTS: AtomicUsize = AtomicUsize::new(0);

/// One online export slot, given back on drop.
pub struct ExportSlot(());

impl ExportSlot {
    /// A slot, or `None` when `MAX_CONCURRENT_EXPORTS` exports are running.
    pub fn take() -> Option<ExportSlot> {
        EXPORTS
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_CONCURRENT_EXPORTS).then_some(n + 1)
            })
            .ok()
            .map(|_| ExportSlot(()))
    }
}

impl Drop for ExportSlot {
    fn drop(&mut self) {
        EXPORTS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A running online export: its [`ChunkReader`] yields the dataset file as a thread writes it from one read
/// snapshot; at most `EXPORT_CHUNKS_IN_FLIGHT` pieces of `EXPORT_CHUNK_BYTES` wait between them,
/// so its memory is bounded whatever the store's size. Dropping the reader (the client went
/// away) stops the writer at its next piece, which ends the snapshot.
pub struct Export {
    writer: std::thread::JoinHandle<Result<usize, String>>,
    _slot: ExportSlot,
}

impl Export {
    pub fn start(
        store: Arc<Store>,
        health: Arc<Health>,
        slot: ExportSlot,
    ) -> Result<(ChunkReader, Export), String> {
        let (tx, rx) = sync_channel(EXPORT_CHUNKS_IN_FLIGHT);
        let sent = Arc::new(AtomicU64::new(0));
        let writer = std::thread::Builder::new()
            .name("export".into())
            .spawn(move || {
                let mut out = ChunkWriter {
                    buf: Vec::with_capacity(EXPORT_CHUNK_BYTES),
                    to: tx,
                    health,
                };
                store
                    .read_once(|tx| {
                        Ok::<_, crate::error::CcError>(
                            dataset::write(tx, &mut out).map_err(|e| e.to_string()),
                        )
                    })
                    .map_err(|e| e.render(crate::error::Lang::En))?
            })
            .map_err(|e| format!("cannot start the export thread: {e}"))?;
        let reader = ChunkReader {
            from: rx,
            current: Vec::new(),
            at: 0,
            sent,
        };
        Ok((
            reader,
            Export {
                writer,
                _slot: slot,
            },
        ))
    }

    /// Waits for the writer (after the reader is dropped): the processes written, or why it
    /// stopped.
    pub fn finish(self) -> Result<usize, String> {
        self.writer
            .join()
            .unwrap_or_else(|_| Err("the export thread panicked".into()))
    }
}

/// The writing half: whole pieces into the channel. A stop (SIGTERM) ends it at the next piece
/// that has to wait, so a slow client cannot hold the snapshot (and the store's close) open.
struct ChunkWriter {
    buf: Vec<u8>,
    to: SyncSender<Vec<u8>>,
    health: Arc<Health>,
}

impl ChunkWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut piece = std::mem::replace(&mut self.buf, Vec::with_capacity(EXPORT_CHUNK_BYTES));
        let mut wait = std::time::Duration::from_micros(100);
        loop {
            match self.to.try_send(piece) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Disconnected(_)) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::BrokenPipe,
                        "the client went away",
                    ));
                }
                Err(TrySendError::Full(back)) => {
                    if self.health.state.load(Ordering::Acquire) == STOPPING {
                        return Err(std::io::Error::other("the server is stopping"));
                    }
                    piece = back;
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(std::time::Duration::from_millis(10));
                }
            }
        }
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let room = EXPORT_CHUNK_BYTES - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= EXPORT_CHUNK_BYTES {
            self.send()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// The reading half, handed to the connection as the answer's body.
pub struct ChunkReader {
    from: Receiver<Vec<u8>>,
    current: Vec<u8>,
    at: usize,
    sent: Arc<AtomicU64>,
}

impl ChunkReader {
    /// Bytes handed to the connection so far.
    pub fn counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.sent)
    }
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.at >= self.current.len() {
            match self.from.recv() {
                Ok(piece) => {
                    self.current = piece;
                    self.at = 0;
                }
                // The writer is done (or failed: the file then ends early, without its
                // `sequences`, which every reader of a dataset refuses).
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.current.len() - self.at);
        out[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        self.sent.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_with_and_without_slash() {
        assert_eq!(resolve("/healthz"), Some(Route::Healthz));
        assert_eq!(resolve("/readyz/"), Some(Route::Readyz));
        assert_eq!(resolve("/_cmdb/export"), Some(Route::Export));
        assert_eq!(resolve("/metricsx"), None);
        assert_eq!(resolve("/"), None);
    }

    #[test]
    fn export_slots_are_bounded() {
        let slots: Vec<_> = (0..MAX_CONCURRENT_EXPORTS)
            .map(|_| ExportSlot::take().unwrap())
            .collect();
        assert!(ExportSlot::take().is_none());
        drop(slots);
        assert!(ExportSlot::take().is_some());
    }
}
