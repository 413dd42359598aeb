//! `cmdb-lite export --from http://HOST:PORT`: downloads a running server's `GET
//! /_cmdb/export` over plain HTTP/1.1 (std's `TcpStream`, no crate), streaming it to the output
//! as it arrives, and refuses an answer that is not a whole dataset file: a non-200 status, a
//! chunked body without its last chunk, or a file that does not end with its `sequences` line
//! (the server writes it last, only after every record was read).

use crate::dataset::WriteError;
use crate::limits::EXPORT_FROM_TIMEOUT_SECS;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Bytes of the status line and headers accepted from the server.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Bytes of an error answer's body quoted in the error.
const MAX_ERROR_BODY_BYTES: usize = 2048;
/// Bytes kept of the end of the body, to check its last line.
const TAIL_BYTES: usize = 4096;

fn fail(msg: impl Into<String>) -> WriteError {
    WriteError::Out(std::io::Error::other(msg.into()))
}

/// `HOST:PORT` of `http://HOST:PORT[/]`.
pub fn authority(url: &str) -> Result<&str, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("--from must be http://HOST:PORT, not {url:?}"))?;
    let host = rest.strip_suffix('/').unwrap_or(rest);
    if host.is_empty() || host.contains('/') || !host.contains(':') {
        return Err(format!("--from must be http://HOST:PORT, not {url:?}"));
    }
    Ok(host)
}

/// Downloads the server's export into `out`, sending `authorization` as the
/// `X-Bkapi-Authorization` header if given; returns the bytes written.
pub fn export(
    url: &str,
    authorization: Option<&str>,
    out: &mut dyn Write,
) -> Result<usize, WriteError> {
    if authorization.is_some_and(|a| a.contains(['\r', '\n'])) {
        return Err(fail("--authorization must be one line"));
    }
    let host = authority(url).map_err(fail)?;
    let timeout = Duration::from_secs(EXPORT_FROM_TIMEOUT_SECS);
    let stream = TcpStream::connect(host).map_err(|e| fail(format!("cannot reach {host}: {e}")))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| fail(e.to_string()))?;
    let mut w = &stream;
    let auth = authorization
        .map(|a| format!("X-Bkapi-Authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        w,
        "GET /_cmdb/export HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nUser-Agent: cmdb-lite/{}\r\n{auth}\r\n",
        crate::http::ops::VERSION
    )
    .map_err(|e| fail(format!("cannot send the request to {host}: {e}")))?;
    let mut r = BufReader::with_capacity(64 * 1024, &stream);
    let (status, chunked, length) = read_head(&mut r)?;
    if status != 200 {
        let mut body = Vec::new();
        let _ = r.take(MAX_ERROR_BODY_BYTES as u64).read_to_end(&mut body);
        return Err(fail(format!(
            "{host} answered HTTP {status}: {}",
            String::from_utf8_lossy(&body).trim()
        )));
    }
    let mut sink = Sink {
        out,
        tail: Vec::with_capacity(TAIL_BYTES * 2),
        written: 0,
    };
    if chunked {
        read_chunked(&mut r, &mut sink)?;
    } else if let Some(n) = length {
        copy(&mut (&mut r).take(n), &mut sink)?;
        if sink.written as u64 != n {
            return Err(fail("the answer ended early"));
        }
    } else {
        copy(&mut r, &mut sink)?;
    }
    let tail = String::from_utf8_lossy(&sink.tail);
    let last = tail
        .trim_end_matches('\n')
        .rsplit('\n')
        .next()
        .unwrap_or("");
    if !(last.starts_with("\"sequences\":{") && last.ends_with("}}")) {
        return Err(fail(
            "the export ended before its last line (the server stopped it; see its log)",
        ));
    }
    Ok(sink.written)
}

/// The output, remembering the end of what went through.
struct Sink<'a> {
    out: &'a mut dyn Write,
    tail: Vec<u8>,
    written: usize,
}

impl Sink<'_> {
    fn put(&mut self, data: &[u8]) -> Result<(), WriteError> {
        self.out.write_all(data).map_err(WriteError::Out)?;
        self.written += data.len();
        self.tail.extend_from_slice(data);
        if self.tail.len() > TAIL_BYTES * 2 {
            let cut = self.tail.len() - TAIL_BYTES;
            self.tail.drain(..cut);
        }
        Ok(())
    }
}

fn copy(r: &mut impl Read, sink: &mut Sink<'_>) -> Result<(), WriteError> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = r
            .read(&mut buf)
            .map_err(|e| fail(format!("reading the export: {e}")))?;
        if n == 0 {
            return Ok(());
        }
        sink.put(&buf[..n])?;
    }
}

/// One line of the head or of the chunk framing, bounded.
fn read_line(r: &mut impl BufRead, budget: &mut usize) -> Result<String, WriteError> {
    let mut line = Vec::new();
    let n = r
        .take(*budget as u64 + 1)
        .read_until(b'\n', &mut line)
        .map_err(|e| fail(format!("reading the answer: {e}")))?;
    if n == 0 {
        return Err(fail("the server closed the connection"));
    }
    if n > *budget {
        return Err(fail("the answer's head is too large"));
    }
    *budget -= n;
    Ok(String::from_utf8_lossy(&line).trim_end().to_string())
}

/// Status, whether the body is chunked, and its length if given.
fn read_head(r: &mut impl BufRead) -> Result<(u16, bool, Option<u64>), WriteError> {
    let mut budget = MAX_HEAD_BYTES;
    let status_line = read_line(r, &mut budget)?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| fail(format!("not an HTTP answer: {status_line:?}")))?;
    let (mut chunked, mut length) = (false, None);
    loop {
        let line = read_line(r, &mut budget)?;
        if line.is_empty() {
            return Ok((status, chunked, length));
        }
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked") {
            chunked = true;
        } else if k.eq_ignore_ascii_case("content-length") {
            length = v.parse().ok();
        }
    }
}

/// A chunked body, which must end with its zero-size chunk.
fn read_chunked(r: &mut impl BufRead, sink: &mut Sink<'_>) -> Result<(), WriteError> {
    loop {
        let mut budget = MAX_HEAD_BYTES;
        let size_line = read_line(r, &mut budget)
            .map_err(|_| fail("the export ended early (connection closed mid-answer)"))?;
        let hex = size_line.split(';').next().unwrap_or("").trim();
        let size = u64::from_str_radix(hex, 16)
            .map_err(|_| fail(format!("bad chunk size {size_line:?}")))?;
        if size == 0 {
            return Ok(());
        }
        let before = sink.written;
        copy(&mut r.take(size), sink)?;
        if (sink.written - before) as u64 != size {
            return Err(fail("the export ended early (connection closed mid-chunk)"));
        }
        let mut budget = 2;
        let end = read_line(r, &mut budget)?;
        if !end.is_empty() {
            return Err(fail("bad chunk framing"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_of_urls() {
        assert_eq!(
            authority("http://127.0.0.1:8080").unwrap(),
            "127.0.0.1:8080"
        );
        assert_eq!(authority("http://h:1/").unwrap(), "h:1");
        assert!(authority("https://h:1").is_err());
        assert!(authority("http://h").is_err());
        assert!(authority("http://h:1/x").is_err());
    }

    #[test]
    fn chunked_bodies_must_end() {
        let mut out = Vec::new();
        let mut sink = Sink {
            out: &mut out,
            tail: Vec::new(),
            written: 0,
        };
        let mut whole = &b"3\r\nabc\r\n0\r\n\r\n"[..];
        read_chunked(&mut whole, &mut sink).unwrap();
        assert_eq!(sink.written, 3);
        let mut cut = &b"3\r\nabc\r\n"[..];
        assert!(read_chunked(&mut cut, &mut sink).is_err());
    }
}
