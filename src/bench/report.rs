//! What the benchmark prints: the throughput table, counts and sizes.

use super::*;

/// One line of the table.
pub(super) struct Row {
    pub(super) name: String,
    pub(super) conns: usize,
    pub(super) per_req: Option<usize>,
    pub(super) m: Measured,
    /// Requests per second ÷ the group-commit floor's and the fsync-per-request floor's.
    pub(super) ratios: Option<(f64, f64)>,
}

pub(super) fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<34} {:>5} {:>9} {:>9} {:>9} {:>10} {:>8} {:>8} {:>7} {:>7} {:>8} {:>10}",
        "scenario",
        "conns",
        "procs/req",
        "requests",
        "req/s",
        "records/s",
        "p50 µs",
        "p99 µs",
        "×group",
        "×fsync",
        "cpu/rec",
        "writer/rec"
    );
    for r in rows {
        let per_req = r.per_req.map_or("-".into(), |n| n.to_string());
        let records = r
            .per_req
            .map_or("-".into(), |n| format!("{:.0}", r.m.per_sec() * n as f64));
        let (group, alone) = r.ratios.map_or(("-".into(), "-".into()), |(g, a)| {
            (format!("{g:.2}"), format!("{a:.2}"))
        });
        // CPU µs per record, from ticks of 10 ms.
        let cpu = |ticks: Option<u64>| match (ticks, r.per_req) {
            (Some(t), Some(n)) if r.m.requests > 0 => {
                format!(
                    "{:.1}",
                    t as f64 * 10_000.0 / (r.m.requests * n as u64) as f64
                )
            }
            _ => "-".into(),
        };
        let _ = writeln!(
            out,
            "{:<34} {:>5} {:>9} {:>9} {:>9.0} {:>10} {:>8} {:>8} {:>7} {:>7} {:>8} {:>10}",
            r.name,
            r.conns,
            per_req,
            r.m.requests,
            r.m.per_sec(),
            records,
            r.m.percentile(0.50),
            r.m.percentile(0.99),
            group,
            alone,
            cpu(r.m.cpu_ticks),
            cpu(r.m.writer_ticks)
        );
    }
    out
}

pub(super) fn count_label(n: usize) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n >= 1_000 && n.is_multiple_of(1_000) {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}

pub(super) fn mib(kib: Option<u64>) -> String {
    kib.map_or("unknown".into(), |k| {
        format!("{:.1} MiB", k as f64 / 1024.0)
    })
}
