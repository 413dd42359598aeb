//! The counters and histograms of `GET /metrics`, and their Prometheus text exposition
//! (format 0.0.4), written by hand: a few atomics and small maps behind mutexes, no crate. The
//! HTTP edge records each request, the group-commit writer each batch; gauges (file size,
//! connections, RSS...) are read at scrape time by `http/ops.rs` and passed to [`render`].
//!
//! Every label set is bounded: operations and families come from the routing table, codes from
//! the error catalogue and the few HTTP statuses the edge answers, so the maps cannot grow with
//! the traffic.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, PoisonError};

/// Upper bounds (seconds) of the request-duration buckets.
const DURATION_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
/// Upper bounds (seconds) of the commit-duration buckets.
const COMMIT_BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0,
];
/// Upper bounds of the batch-size buckets (requests per group commit).
const BATCH_BUCKETS: [f64; 8] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// `result: true`.
    Success,
    /// HTTP 200 with `result: false`: bk-cmdb's code.
    Business(i64),
    /// A non-200 status (404, 405, 408, 413, 500, 503...).
    Transport(u16),
}

#[derive(Clone, Debug, Default)]
struct Histogram {
    /// Count per bucket (not cumulative), plus one for +Inf.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, bounds: &[f64], v: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; bounds.len() + 1];
        }
        let i = bounds.iter().position(|b| v <= *b).unwrap_or(bounds.len());
        self.counts[i] += 1;
        self.sum += v;
        self.count += 1;
    }

    fn write(&self, out: &mut String, name: &str, labels: &str, bounds: &[f64]) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, b) in bounds.iter().enumerate() {
            cumulative += self.counts.get(i).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {cumulative}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

type RequestKey = (&'static str, &'static str, Outcome);

struct Registry {
    requests: Mutex<BTreeMap<RequestKey, u64>>,
    durations: Mutex<BTreeMap<&'static str, Histogram>>,
    batches: Mutex<(Histogram, Histogram)>,
    permits: AtomicI64,
}

static REGISTRY: Registry = Registry {
    requests: Mutex::new(BTreeMap::new()),
    durations: Mutex::new(BTreeMap::new()),
    batches: Mutex::new((
        Histogram {
            counts: Vec::new(),
            sum: 0.0,
            count: 0,
        },
        Histogram {
            counts: Vec::new(),
            sum: 0.0,
            count: 0,
        },
    )),
    permits: AtomicI64::new(0),
};

/// Records one answered request: `operation` is the ESB name (or `healthz`, ...; `none` when no
/// route matched), `family` `native`, `gateway`, `esb` or `ops`.
pub fn request(operation: &'static str, family: &'static str, outcome: Outcome, secs: f64) {
    *REGISTRY
        .requests
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry((operation, family, outcome))
        .or_insert(0) += 1;
    REGISTRY
        .durations
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(operation)
        .or_default()
        .observe(&DURATION_BUCKETS, secs);
}

/// Records one group commit: how many write requests it held and how long it took (the
/// transaction and its sync).
pub fn batch(requests: usize, secs: f64) {
    let mut b = REGISTRY
        .batches
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    b.0.observe(&BATCH_BUCKETS, requests as f64);
    b.1.observe(&COMMIT_BUCKETS, secs);
}

/// A worker permit in use while this lives.
pub struct PermitInUse(());

impl PermitInUse {
    pub fn new() -> PermitInUse {
        REGISTRY.permits.fetch_add(1, Ordering::Relaxed);
        PermitInUse(())
    }
}

impl Default for PermitInUse {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for PermitInUse {
    fn drop(&mut self) {
        REGISTRY.permits.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What is read at scrape time.
pub struct Gauges {
    pub version: &'static str,
    pub uptime_secs: f64,
    pub ready: bool,
    pub degraded: bool,
    pub store_file_bytes: Option<u64>,
    pub open_connections: Option<u64>,
    pub worker_permits: usize,
    pub rss_bytes: Option<u64>,
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn gauge(out: &mut String, name: &str, help: &str, value: impl std::fmt::Display) {
    head(out, name, "gauge", help);
    let _ = writeln!(out, "{name} {value}");
}

/// The whole exposition.
pub fn render(g: &Gauges) -> String {
    let mut out = String::with_capacity(16 * 1024);
    head(
        &mut out,
        "cmdb_build_info",
        "gauge",
        "The running version (always 1).",
    );
    let _ = writeln!(out, "cmdb_build_info{{version=\"{}\"}} 1", g.version);
    gauge(
        &mut out,
        "cmdb_uptime_seconds",
        "Seconds since the process started.",
        g.uptime_secs,
    );
    gauge(
        &mut out,
        "cmdb_ready",
        "1 when /readyz answers 200.",
        u8::from(g.ready),
    );
    gauge(
        &mut out,
        "cmdb_store_degraded",
        "1 while the store is degraded after an I/O failure.",
        u8::from(g.degraded),
    );
    if let Some(b) = g.store_file_bytes {
        gauge(
            &mut out,
            "cmdb_store_file_bytes",
            "Size of the database file.",
            b,
        );
    }
    if let Some(c) = g.open_connections {
        gauge(
            &mut out,
            "cmdb_open_connections",
            "Open client connections (sockets of the process other than the listener).",
            c,
        );
    }
    gauge(
        &mut out,
        "cmdb_worker_permits",
        "Worker permits (serve --threads).",
        g.worker_permits,
    );
    gauge(
        &mut out,
        "cmdb_worker_permits_in_use",
        "Worker permits held by requests now.",
        REGISTRY.permits.load(Ordering::Relaxed).max(0),
    );
    if let Some(r) = g.rss_bytes {
        gauge(
            &mut out,
            "cmdb_process_resident_memory_bytes",
            "Resident set size of the process.",
            r,
        );
    }

    head(
        &mut out,
        "cmdb_requests_total",
        "counter",
        "Requests answered, by operation, route family and outcome (code: bk-cmdb code or HTTP status).",
    );
    let requests = REGISTRY
        .requests
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    for ((op, family, outcome), n) in &requests {
        let (kind, code) = match outcome {
            Outcome::Success => ("success", 0),
            Outcome::Business(c) => ("business_error", *c),
            Outcome::Transport(s) => ("transport_error", i64::from(*s)),
        };
        let _ = writeln!(
            out,
            "cmdb_requests_total{{operation=\"{op}\",family=\"{family}\",outcome=\"{kind}\",code=\"{code}\"}} {n}"
        );
    }
    head(
        &mut out,
        "cmdb_request_duration_seconds",
        "histogram",
        "Time from a request's headers to its answer, by operation.",
    );
    let durations = REGISTRY
        .durations
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    for (op, h) in &durations {
        h.write(
            &mut out,
            "cmdb_request_duration_seconds",
            &format!("operation=\"{op}\""),
            &DURATION_BUCKETS,
        );
    }
    let (sizes, commits) = REGISTRY
        .batches
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    head(
        &mut out,
        "cmdb_commit_batch_requests",
        "histogram",
        "Write requests per group commit.",
    );
    sizes.write(&mut out, "cmdb_commit_batch_requests", "", &BATCH_BUCKETS);
    head(
        &mut out,
        "cmdb_commit_duration_seconds",
        "histogram",
        "Duration of a group commit (its transaction and sync).",
    );
    commits.write(
        &mut out,
        "cmdb_commit_duration_seconds",
        "",
        &COMMIT_BUCKETS,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let mut h = Histogram::default();
        for v in [0.5, 1.5, 1.5, 99.0] {
            h.observe(&[1.0, 2.0], v);
        }
        let mut out = String::new();
        h.write(&mut out, "x", "a=\"b\"", &[1.0, 2.0]);
        assert_eq!(
            out,
            "x_bucket{a=\"b\",le=\"1\"} 1\nx_bucket{a=\"b\",le=\"2\"} 3\nx_bucket{a=\"b\",le=\"+Inf\"} 4\nx_sum{a=\"b\"} 102.5\nx_count{a=\"b\"} 4\n"
        );
    }
}
