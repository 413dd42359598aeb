//! The request journal of `serve --admin` (`GET`/`DELETE /_cmdb/requests`): the last
//! [`JOURNAL_MAX_ENTRIES`] calls of bk-cmdb's route families, oldest first, each with at most
//! [`JOURNAL_MAX_BODY_BYTES`] of its body and path, so its memory is bounded whatever the load.

use crate::limits::{JOURNAL_MAX_BODY_BYTES, JOURNAL_MAX_ENTRIES};
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

/// One call as the journal keeps it.
#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    /// RFC 3339, milliseconds, UTC.
    pub time: String,
    pub request_id: String,
    /// `native`, `gateway` or `esb`.
    pub family: &'static str,
    /// The operation's ESB name (`create_process_instance`), `null` for a path that is none.
    pub operation: Option<&'static str>,
    pub method: String,
    /// The path and query as sent (cut at `JOURNAL_MAX_BODY_BYTES`).
    pub path: String,
    /// The body as text (invalid UTF-8 replaced), cut at `JOURNAL_MAX_BODY_BYTES`.
    pub body: String,
    /// Whether `body` (or `path`) was cut.
    pub truncated: bool,
    /// The HTTP status answered; 0 when a fault dropped the connection.
    pub status: u16,
    /// The bk-cmdb code answered (0 for success).
    pub bk_error_code: i64,
    /// Whether a fault of `/_cmdb/faults` decided the answer (or delayed it).
    pub fault: bool,
}

/// Cuts `s` to at most `max` bytes on a character boundary; says whether it cut.
fn cut(s: &str, max: usize) -> (String, bool) {
    if s.len() <= max {
        return (s.to_string(), false);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (s[..end].to_string(), true)
}

impl Entry {
    /// An entry whose path and body are cut to the journal's limit.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        time: String,
        request_id: &str,
        family: &'static str,
        operation: Option<&'static str>,
        method: &str,
        path: &str,
        body: &[u8],
        status: u16,
        bk_error_code: i64,
        fault: bool,
    ) -> Entry {
        let head = &body[..body.len().min(JOURNAL_MAX_BODY_BYTES)];
        let (body_text, mut truncated) =
            cut(&String::from_utf8_lossy(head), JOURNAL_MAX_BODY_BYTES);
        truncated |= body.len() > JOURNAL_MAX_BODY_BYTES;
        let (path, path_cut) = cut(path, JOURNAL_MAX_BODY_BYTES);
        Entry {
            time,
            request_id: cut(request_id, JOURNAL_MAX_BODY_BYTES).0,
            family,
            operation,
            method: cut(method, 32).0,
            path,
            body: body_text,
            truncated: truncated || path_cut,
            status,
            bk_error_code,
            fault,
        }
    }
}

#[derive(Default)]
struct Inner {
    entries: VecDeque<Entry>,
    /// Entries pushed out by newer ones since the last clear.
    dropped: u64,
}

/// The journal: a bounded queue behind a mutex (held only to push, copy or clear).
#[derive(Default)]
pub struct Journal {
    inner: Mutex<Inner>,
}

/// What `GET /_cmdb/requests` answers in `data`.
#[derive(Serialize)]
pub struct Listing<'a> {
    pub count: usize,
    /// Older entries that no longer fit (`JOURNAL_MAX_ENTRIES`) since the last clear.
    pub dropped: u64,
    pub info: Vec<&'a Entry>,
}

impl Journal {
    pub fn push(&self, e: Entry) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.entries.len() >= JOURNAL_MAX_ENTRIES {
            inner.entries.pop_front();
            inner.dropped += 1;
        }
        inner.entries.push_back(e);
    }

    /// The entries as JSON, oldest first, of `operation` only if given. Written under the
    /// lock from the entries themselves: no copy of the journal is made.
    pub fn list_json(&self, operation: Option<&str>) -> String {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let info: Vec<&Entry> = inner
            .entries
            .iter()
            .filter(|e| operation.is_none_or(|op| e.operation == Some(op)))
            .collect();
        let listing = Listing {
            count: info.len(),
            dropped: inner.dropped,
            info,
        };
        serde_json::to_string(&listing).unwrap_or_else(|_| "null".into())
    }

    /// Empties the journal; returns how many entries it held.
    pub fn clear(&self) -> usize {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let n = inner.entries.len();
        *inner = Inner::default();
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(body: &[u8]) -> Entry {
        Entry::new(
            "t".into(),
            "rid",
            "esb",
            Some("x"),
            "POST",
            "/p",
            body,
            200,
            0,
            false,
        )
    }

    #[test]
    fn bodies_are_cut_on_a_character_boundary() {
        let e = entry(b"{}");
        assert_eq!((e.body.as_str(), e.truncated), ("{}", false));
        let long = "é".repeat(JOURNAL_MAX_BODY_BYTES);
        let e = entry(long.as_bytes());
        assert!(e.truncated);
        assert!(e.body.len() <= JOURNAL_MAX_BODY_BYTES);
        assert!(e.body.chars().all(|c| c == 'é'));
    }

    #[test]
    fn the_oldest_entries_go_first() {
        let j = Journal::default();
        for i in 0..JOURNAL_MAX_ENTRIES + 5 {
            j.push(entry(i.to_string().as_bytes()));
        }
        let l: serde_json::Value = serde_json::from_str(&j.list_json(None)).unwrap();
        assert_eq!(l["count"], JOURNAL_MAX_ENTRIES);
        assert_eq!(l["dropped"], 5);
        assert_eq!(l["info"][0]["body"], "5");
        let other: serde_json::Value = serde_json::from_str(&j.list_json(Some("other"))).unwrap();
        assert_eq!(other["count"], 0);
        assert_eq!(j.clear(), JOURNAL_MAX_ENTRIES);
        assert!(j.list_json(None).starts_with(r#"{"count":0,"#));
    }
}
