//! The body of a streamed list answer (`api/streamed.rs`): the envelope's head, then `data`'s
//! pieces rendered from the answer's snapshot as the socket takes them, then the tails. It is
//! read by tiny_http on the request's own thread, so a client that reads slowly holds at most
//! one buffer of `STREAM_CHUNK_BYTES` (plus the piece that crosses it), never the answer.
//! Each refill takes one of the `--threads` permits, as rendering the answer whole did.
//!
//! A failure after the head was sent (a read of the snapshot failing, or the store reopened
//! or closed under it, which ends its snapshot) can no longer become an error envelope: the body ends
//! with an I/O error, tiny_http then closes the connection without the last chunk, and the
//! client sees an incomplete answer, never a complete wrong one. A panic while rendering is
//! caught here and is such a failure (logged): the thread and its permit go on, and the
//! connection is closed rather than left waiting for the rest; before any byte is sent it is an
//! error envelope, as a handler's panic is.

use super::envelope::go_escape;
use super::pool::Permits;
use crate::api::streamed::Streamed;
use crate::limits::STREAM_CHUNK_BYTES;
use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

pub struct Body<'a> {
    streamed: Streamed,
    /// Rendered bytes not yet read, from `pos`.
    buf: Vec<u8>,
    pos: usize,
    /// One piece as rendered, before `go_escape`.
    scratch: Vec<u8>,
    /// `data`'s tail and the envelope's `}`, written once the pieces end.
    tail: &'static str,
    done: bool,
    /// Set once rendering failed: every later read fails too.
    failed: bool,
    permits: &'a Permits,
    rid: &'a str,
    /// The bytes read so far, for the access log.
    sent: Rc<Cell<u64>>,
}

impl<'a> Body<'a> {
    /// The answer's body: `envelope` up to `"data":` (not yet escaped), then `data`.
    pub fn new(
        envelope: String,
        mut streamed: Streamed,
        permits: &'a Permits,
        rid: &'a str,
    ) -> Self {
        let mut buf = go_escape(envelope).into_bytes();
        buf.extend_from_slice(&escape(std::mem::take(&mut streamed.listed.head)));
        let done = streamed.listed.ended;
        if done {
            buf.extend_from_slice(streamed.listed.tail.as_bytes());
            buf.push(b'}');
        }
        Body {
            tail: streamed.listed.tail,
            streamed,
            buf,
            pos: 0,
            scratch: Vec::new(),
            done,
            failed: false,
            permits,
            rid,
            sent: Rc::new(Cell::new(0)),
        }
    }

    /// The counter of bytes read.
    pub fn counter(&self) -> Rc<Cell<u64>> {
        Rc::clone(&self.sent)
    }

    /// Renders pieces until at least `want` bytes wait to be read or the answer has ended;
    /// true once it has.
    pub fn fill(&mut self, want: usize) -> Result<bool, crate::error::CcError> {
        if self.done || self.buf.len() - self.pos >= want {
            return Ok(self.done);
        }
        let _permit = self.permits.acquire();
        let rendered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let Streamed { snapshot, listed } = &mut self.streamed;
            while self.buf.len() - self.pos < want {
                self.scratch.clear();
                if !listed.pieces.next(snapshot.tx(), &mut self.scratch)? {
                    self.buf.extend_from_slice(self.tail.as_bytes());
                    self.buf.push(b'}');
                    self.done = true;
                    break;
                }
                let piece = std::mem::take(&mut self.scratch);
                self.buf.extend_from_slice(&escape(piece));
            }
            Ok(self.done)
        }));
        rendered.unwrap_or_else(|_| {
            crate::log!(
                error,
                "cmdb-lite: {}: rendering the answer panicked",
                self.rid
            );
            // Whatever the pieces hold now is not to be trusted: nothing more is rendered.
            self.done = false;
            self.buf.truncate(self.pos);
            Err(crate::error::CcError::with(
                crate::error::code::INTERNAL,
                "proc",
            ))
        })
    }

    /// The whole body, if [`Body::fill`] reached its end.
    pub fn whole(mut self) -> Option<String> {
        if !self.done {
            return None;
        }
        String::from_utf8(self.buf.split_off(self.pos)).ok()
    }
}

/// `go_escape` of a piece: serde_json wrote it, so it is UTF-8 and holds whole characters.
fn escape(piece: Vec<u8>) -> Vec<u8> {
    if !piece.iter().any(|b| matches!(b, b'<' | b'>' | b'&' | 0xE2)) {
        return piece;
    }
    match String::from_utf8(piece) {
        Ok(text) => go_escape(text).into_bytes(),
        Err(e) => e.into_bytes(),
    }
}

impl Read for Body<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::other("the answer stopped early"));
        }
        if self.pos == self.buf.len() {
            if self.done {
                return Ok(0);
            }
            self.buf.clear();
            self.pos = 0;
            if let Err(e) = self.fill(STREAM_CHUNK_BYTES) {
                crate::log!(
                    "cmdb-lite: {}: the answer stopped after {} bytes: {}",
                    self.rid,
                    self.sent.get(),
                    e.render(crate::error::Lang::En)
                );
                self.failed = true;
                return Err(io::Error::other("the answer stopped early"));
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        self.sent.set(self.sent.get() + n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::streamed::{Listed, Pieces};
    use crate::error::CcError;
    use crate::store::{ReadTx, Store};
    use std::sync::Arc;

    /// Pieces of `"1"`, `left` of them, then a panic.
    struct Boom {
        left: usize,
    }

    impl Pieces for Boom {
        fn next(&mut self, _tx: &ReadTx, out: &mut Vec<u8>) -> Result<bool, CcError> {
            if self.left == 0 {
                panic!("a piece that cannot be rendered");
            }
            self.left -= 1;
            out.extend_from_slice(b"1,");
            Ok(true)
        }
    }

    fn body<'a>(store: &Arc<Store>, permits: &'a Permits, left: usize) -> Body<'a> {
        let (snapshot, ()) = store.lasting(|_| Ok::<(), CcError>(())).unwrap();
        let listed = Listed {
            head: b"{\"count\":1,\"info\":[".to_vec(),
            pieces: Box::new(Boom { left }),
            tail: "]}",
            ended: false,
        };
        Body::new(
            "{\"result\":true,\"data\":".into(),
            Streamed { snapshot, listed },
            permits,
            "rid",
        )
    }

    #[test]
    fn a_panic_while_rendering_ends_the_body_with_an_error_and_keeps_the_permit() {
        let store = Arc::new(Store::memory().unwrap());
        let permits = Permits::new(1);
        // Before anything is sent: an error (the caller answers with an envelope).
        let mut b = body(&store, &permits, 3);
        let e = b.fill(STREAM_CHUNK_BYTES).unwrap_err();
        assert_eq!(e.code, crate::error::code::INTERNAL);
        // Part-way: what was rendered before goes, then the read fails, and keeps failing.
        let mut b = body(&store, &permits, 100_000);
        let mut out = Vec::new();
        let e = b.read_to_end(&mut out).unwrap_err();
        assert_eq!(e.to_string(), "the answer stopped early");
        assert!(out.len() > STREAM_CHUNK_BYTES, "{} bytes", out.len());
        assert!(out.starts_with(b"{\"result\":true,\"data\":{\"count\":1,\"info\":[1,"));
        assert!(b.read(&mut [0u8; 16]).is_err());
        // The permit was given back both times.
        drop(permits.acquire());
    }
}
