//! Connections bounded: the open-files check at start (`--max-connections` against
//! `RLIMIT_NOFILE`), the bounds handed to tiny_http (connection cap with idle eviction, head
//! deadline, 503 refusals), the JSON bodies of the answers tiny_http writes itself, and the log
//! of refusals, one line per cause and interval.

use super::envelope::{self, Shape};
use super::routes::{self, Family};
use crate::error::{CcError, Lang, code};
use crate::limits::{FDS_RESERVED, REFUSAL_LOG_INTERVAL_SECS};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One log line per cause per interval: the first occurrence at once, later ones counted and
/// reported with the next line of that cause.
pub struct Throttled {
    interval: Duration,
    /// cause → (last line written, occurrences since)
    seen: Mutex<HashMap<&'static str, (Instant, u64)>>,
}

impl Throttled {
    pub fn new(interval: Duration) -> Throttled {
        Throttled {
            interval,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Notes one occurrence of `cause`; returns the line to log now, if it is time for one.
    pub fn note(&self, cause: &'static str, detail: &str) -> Option<String> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match seen.get_mut(cause) {
            Some((last, count)) if now.duration_since(*last) < self.interval => {
                *count += 1;
                None
            }
            Some((last, count)) => {
                let more = std::mem::take(count);
                *last = now;
                Some(format!(
                    "cmdb-lite: {cause}{detail} ({more} more in the last {} s)",
                    self.interval.as_secs()
                ))
            }
            None => {
                seen.insert(cause, (now, 0));
                Some(format!("cmdb-lite: {cause}{detail}"))
            }
        }
    }

    /// `note`, and the line (if any) written to the log.
    pub fn log(&self, cause: &'static str, detail: &str) {
        if let Some(line) = self.note(cause, detail) {
            crate::log!("{line}");
        }
    }
}

/// The event log of the HTTP edge, shared by tiny_http's threads and ours.
pub fn event_log() -> Arc<Throttled> {
    Arc::new(Throttled::new(Duration::from_secs(
        REFUSAL_LOG_INTERVAL_SECS,
    )))
}

/// tiny_http's bounds and callbacks for this server.
pub fn options(
    max_connections: usize,
    head_timeout: Duration,
    lang: Lang,
    log: Arc<Throttled>,
) -> tiny_http::Options {
    tiny_http::Options {
        max_connections,
        head_timeout: Some(head_timeout),
        events: Arc::new(move |e| match e {
            tiny_http::Event::RefusedBusy => log.log(
                "refused a connection (503): every connection has a request in progress",
                &format!(" (--max-connections {max_connections})"),
            ),
            tiny_http::Event::NoThread(err) => log.log(
                "cannot start a thread for a new connection; closing the one idle longest for it",
                &format!(": {err}"),
            ),
            tiny_http::Event::RefusedNoThread(err) => log.log(
                "refused a connection (503): cannot start a thread",
                &format!(": {err}"),
            ),
            tiny_http::Event::DroppedRefusal => log.log(
                "closed a connection without an answer: too many refusals at once",
                "",
            ),
            tiny_http::Event::EvictedIdle => log.log(
                "closed the connection idle longest to admit a new one",
                &format!(" (--max-connections {max_connections})"),
            ),
            tiny_http::Event::HeadTimeout => log.log(
                "closed a connection: no complete request head in time",
                &format!(" ({} s)", head_timeout.as_secs()),
            ),
            tiny_http::Event::AcceptFailed(err, backoff) => log.log(
                "accepting a connection failed",
                &format!(": {err}; retrying in {} ms", backoff.as_millis()),
            ),
        }),
        error_body: Arc::new(move |status, path| error_body(status, path, lang)),
        ..tiny_http::Options::default()
    }
}

/// The body of an answer tiny_http writes before a request reaches us: the envelope of the
/// path's family (native when the path is unknown).
pub fn error_body(status: u16, path: Option<&str>, lang: Lang) -> Vec<u8> {
    let family = path.map(routes::family_of).unwrap_or(Family::Native);
    let shape = match family {
        Family::Native => Shape::Native,
        Family::Gateway => Shape::Gateway,
        Family::Esb => Shape::Esb,
    };
    let text = match status {
        400 => "400 Bad Request: malformed request head or invalid header value",
        408 => "408 Request Timeout: the request head did not arrive in time",
        417 => "417 Expectation Failed",
        431 => "431 Request Header Fields Too Large",
        503 => "503 Service Unavailable: too many connections, retry later",
        _ => "HTTP error",
    };
    let e = CcError::raw(code::UNKNOWN, text);
    envelope::render(shape, false, e.code, &e.render(lang), "null", "").into_bytes()
}

/// The open-files limit `serve` needs for `max_connections` (each connection costs one
/// descriptor, plus `FDS_RESERVED` for the store, the listener and the log): raises the soft
/// limit up to the hard one when it is lower (as Go's runtime does), and refuses to start when
/// even the hard limit is too low.
pub fn check_open_files(max_connections: usize) -> Result<(), String> {
    let need = (max_connections + FDS_RESERVED) as u64;
    let (soft, hard) = nofile()?;
    if soft >= need {
        return Ok(());
    }
    if hard < need {
        return Err(format!(
            "--max-connections {max_connections} needs {need} open files, but the limit \
             (ulimit -n) is {hard}: lower --max-connections or raise the limit"
        ));
    }
    set_nofile(hard, hard).map_err(|e| {
        format!(
            "--max-connections {max_connections} needs {need} open files; raising the limit \
             from {soft} to {hard} failed: {e}"
        )
    })
}

#[repr(C)]
struct RLimit {
    cur: u64,
    max: u64,
}

#[cfg(target_os = "linux")]
const RLIMIT_NOFILE: std::os::raw::c_int = 7;
#[cfg(not(target_os = "linux"))]
const RLIMIT_NOFILE: std::os::raw::c_int = 8;

unsafe extern "C" {
    fn getrlimit(resource: std::os::raw::c_int, rlim: *mut RLimit) -> std::os::raw::c_int;
    fn setrlimit(resource: std::os::raw::c_int, rlim: *const RLimit) -> std::os::raw::c_int;
}

fn nofile() -> Result<(u64, u64), String> {
    let mut r = RLimit { cur: 0, max: 0 };
    // SAFETY: `r` is a valid, writable `struct rlimit` (two 64-bit `rlim_t` on the 64-bit
    // targets this builds for); getrlimit only writes it.
    let rc = unsafe { getrlimit(RLIMIT_NOFILE, &mut r) };
    if rc != 0 {
        return Err(format!(
            "cannot read the open-files limit: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok((r.cur, r.max))
}

fn set_nofile(soft: u64, hard: u64) -> std::io::Result<()> {
    let r = RLimit {
        cur: soft,
        max: hard,
    };
    // SAFETY: `r` is a valid `struct rlimit` that setrlimit only reads.
    let rc = unsafe { setrlimit(RLIMIT_NOFILE, &r) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_cause_and_interval() {
        let t = Throttled::new(Duration::from_millis(200));
        assert_eq!(t.note("a", ": x").as_deref(), Some("cmdb-lite: a: x"));
        assert_eq!(t.note("a", ": x"), None);
        assert_eq!(t.note("a", ": x"), None);
        assert!(t.note("b", "").is_some());
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(
            t.note("a", ": y").as_deref(),
            Some("cmdb-lite: a: y (2 more in the last 0 s)")
        );
    }

    #[test]
    fn the_open_files_limit_is_read() {
        let (soft, hard) = nofile().unwrap();
        assert!(soft > 0 && soft <= hard);
        assert!(check_open_files(0).is_ok() || soft < FDS_RESERVED as u64);
        let e = check_open_files(usize::MAX / 4).unwrap_err();
        assert!(e.contains("lower --max-connections"), "{e}");
    }

    #[test]
    fn error_bodies_take_the_family_envelope() {
        let native = String::from_utf8(error_body(431, None, Lang::En)).unwrap();
        assert!(
            native.starts_with(r#"{"result":false,"bk_error_code":1199998,"#),
            "{native}"
        );
        let esb = error_body(
            503,
            Some("/api/c/compapi/v2/cc/list_process_instance/"),
            Lang::Zh,
        );
        let esb = String::from_utf8(esb).unwrap();
        assert!(
            esb.starts_with(r#"{"result":false,"code":1199998,"#),
            "{esb}"
        );
    }
}
