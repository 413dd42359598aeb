//! The server's log on stderr: lifecycle lines (starting, seeding, storage trouble, shutdown),
//! each with a UTC timestamp and a level, and one access line per request. `serve
//! --log-format text|json` picks the shape; `serve --quiet` drops the access lines and the
//! info lines, keeping warnings and errors. A line that cannot be written (a full disk, a closed
//! pipe) is dropped: logging never takes a worker down, where `eprintln!` would panic.

use crate::limits::MAX_LOGGED_PATH_BYTES;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicU8, Ordering};

/// The shape of a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `2026-01-02T03:04:05.678Z INFO message` and `key=value` access lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "text" => Some(Format::Text),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// Bit 0: JSON; bit 1: quiet. Set once by `serve` before any thread starts.
static SETTINGS: AtomicU8 = AtomicU8::new(0);

/// Sets the format and quietness of every later line.
pub fn configure(format: Format, quiet: bool) {
    let bits = u8::from(format == Format::Json) | (u8::from(quiet) << 1);
    SETTINGS.store(bits, Ordering::Relaxed);
}

fn format() -> Format {
    if SETTINGS.load(Ordering::Relaxed) & 1 == 1 {
        Format::Json
    } else {
        Format::Text
    }
}

fn quiet() -> bool {
    SETTINGS.load(Ordering::Relaxed) & 2 == 2
}

/// `2026-01-02T03:04:05.678Z`: always three digits of milliseconds, so lines align.
pub fn timestamp(ms: i64) -> String {
    let whole = crate::clock::format_ms(ms - ms.rem_euclid(1000));
    let base = whole.trim_end_matches('Z');
    format!("{base}.{:03}Z", ms.rem_euclid(1000))
}

fn emit(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(line.as_bytes());
}

/// Appends `s` as a JSON string (quotes included).
fn json_str(out: &mut String, s: &str) {
    out.push_str(&serde_json::Value::from(s).to_string());
}

/// Writes one lifecycle line (use the [`crate::log!`] macro).
pub fn line(level: Level, args: std::fmt::Arguments<'_>) {
    if level == Level::Info && quiet() {
        return;
    }
    let time = timestamp(crate::clock::now_ms());
    let msg = args.to_string();
    let mut out = String::with_capacity(msg.len() + 64);
    match format() {
        Format::Text => {
            let _ = writeln!(out, "{time} {} {msg}", level.name().to_uppercase());
        }
        Format::Json => {
            out.push_str("{\"time\":");
            json_str(&mut out, &time);
            out.push_str(",\"level\":");
            json_str(&mut out, level.name());
            out.push_str(",\"msg\":");
            json_str(&mut out, &msg);
            out.push_str("}\n");
        }
    }
    emit(&out);
}

/// What the access line of one request says.
pub struct Access<'a> {
    pub request_id: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    /// The operation (ESB name, or `healthz`, `metrics`...); `-` when no route matched.
    pub operation: &'a str,
    pub status: u16,
    /// The envelope's `result` (true for a success, false for any error).
    pub result: bool,
    /// The bk-cmdb error code answered (0 for a success).
    pub code: i64,
    pub micros: u128,
    /// Bytes of the answer's body (for a streamed answer, those written).
    pub bytes: u64,
}

/// The path as logged: at most `MAX_LOGGED_PATH_BYTES`, control characters and spaces escaped,
/// so one request is always one line.
fn loggable_path(path: &str) -> String {
    let mut out = String::new();
    for c in path.chars() {
        if out.len() >= MAX_LOGGED_PATH_BYTES {
            out.push_str("...");
            break;
        }
        if c.is_control() || c == ' ' || c == '"' {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Writes the access line of one request (none under `--quiet`).
pub fn access(a: &Access<'_>) {
    if quiet() {
        return;
    }
    let time = timestamp(crate::clock::now_ms());
    let path = loggable_path(a.path);
    let rid = loggable_path(a.request_id);
    let ms = a.micros as f64 / 1000.0;
    let mut out = String::with_capacity(256);
    match format() {
        Format::Text => {
            let _ = writeln!(
                out,
                "{time} INFO access rid={} method={} path={path} op={} status={} result={} code={} ms={ms:.3} bytes={}",
                rid, a.method, a.operation, a.status, a.result, a.code, a.bytes
            );
        }
        Format::Json => {
            out.push_str("{\"time\":");
            json_str(&mut out, &time);
            out.push_str(",\"level\":\"info\",\"msg\":\"access\",\"request_id\":");
            json_str(&mut out, &rid);
            out.push_str(",\"method\":");
            json_str(&mut out, a.method);
            out.push_str(",\"path\":");
            json_str(&mut out, &path);
            out.push_str(",\"operation\":");
            json_str(&mut out, a.operation);
            let _ = writeln!(
                out,
                ",\"status\":{},\"result\":{},\"code\":{},\"duration_ms\":{ms:.3},\"bytes\":{}}}",
                a.status, a.result, a.code, a.bytes
            );
        }
    }
    emit(&out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_keep_three_digits() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(timestamp(1_700_000_000_120), "2023-11-14T22:13:20.120Z");
    }

    #[test]
    fn paths_stay_on_one_line_and_bounded() {
        assert_eq!(loggable_path("/a b\n\"c"), "/a%20b%0A%22c");
        let long = "x".repeat(MAX_LOGGED_PATH_BYTES * 2);
        assert_eq!(loggable_path(&long).len(), MAX_LOGGED_PATH_BYTES + 3);
    }
}
