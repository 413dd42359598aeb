//! A keep-alive HTTP/1.1 client over a plain TCP stream: the one the commands that call a
//! server themselves use (`bench` against the server it starts, `push` against a bk-cmdb), and
//! the one the integration tests speak to the real binary with. Answers with `Content-Length`
//! or chunked bodies; no TLS, no redirects, no proxy.
//!
//! One request at a time per connection with [`Client::call`] or [`Client::post`], or pipelined
//! with [`Client::send`] / [`Client::send_with`] and [`Client::read_answer`]. A request that was
//! written is never written again: only [`Client::call`] opens a connection anew, and only
//! before it writes, when the server closed the idle one.
//!
//! Every request carries `Host` and `Content-Length`, then the connection's headers (those given
//! to [`Client::connect_with`], after `Content-Type: application/json`; none for
//! [`Client::connect_bare`]), then the request's own headers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// How long a read or a write on the connection may block.
pub const CLIENT_IO_TIMEOUT: Duration = Duration::from_secs(60);

/// The largest answer body the client reads (a list of 1,000 large records fits).
pub const CLIENT_MAX_ANSWER_BYTES: usize = 256 * 1024 * 1024;

/// The largest answer head (status line and headers) the client reads: an echoed request id
/// as long as Go's limit on a request head (1 MiB + 4 KiB, which bk-cmdb keeps) fits.
pub const CLIENT_MAX_HEAD_BYTES: usize = 4 * 1024 * 1024;

/// One keep-alive connection.
pub struct Client {
    addr: String,
    io_timeout: Duration,
    stream: Option<BufReader<TcpStream>>,
    headers: Vec<(String, String)>,
    request: Vec<u8>,
    line: String,
    /// The last answer's header lines, each ended by `\n`.
    head: String,
    body: Vec<u8>,
}

/// The native user headers of user admin, in English: what `bench` sends.
pub const NATIVE_ADMIN: [(&str, &str); 3] = [
    ("X-Bkcmdb-User", "admin"),
    ("X-Bkcmdb-Supplier-Account", "0"),
    ("X-Bkcmdb-Language", "en"),
];

impl Client {
    /// Connects to `addr` (`host:port`); every request carries `Content-Type: application/json`
    /// and `headers`.
    pub fn connect_with(addr: &str, headers: &[(&str, &str)]) -> Result<Client, String> {
        let mut all = vec![("Content-Type", "application/json")];
        all.extend_from_slice(headers);
        Client::open(addr, &all, CLIENT_IO_TIMEOUT)
    }

    /// Connects with the native user headers of user admin ([`NATIVE_ADMIN`]).
    pub fn connect(addr: &str) -> Result<Client, String> {
        Client::connect_with(addr, &NATIVE_ADMIN)
    }

    /// Connects to `addr` with no header of the connection's own: each request carries only
    /// `Host`, `Content-Length` and the headers given to [`Client::send_with`]. A read or a
    /// write waits up to `io_timeout`.
    pub fn connect_bare(addr: &str, io_timeout: Duration) -> Result<Client, String> {
        Client::open(addr, &[], io_timeout)
    }

    fn open(addr: &str, headers: &[(&str, &str)], io_timeout: Duration) -> Result<Client, String> {
        let mut c = Client {
            addr: addr.to_string(),
            io_timeout,
            stream: None,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            request: Vec::new(),
            line: String::new(),
            head: String::new(),
            body: Vec::new(),
        };
        c.reconnect()?;
        Ok(c)
    }

    fn reconnect(&mut self) -> Result<(), String> {
        let s =
            TcpStream::connect(&self.addr).map_err(|e| format!("connect {}: {e}", self.addr))?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(self.io_timeout))
            .map_err(|e| e.to_string())?;
        s.set_write_timeout(Some(self.io_timeout))
            .map_err(|e| e.to_string())?;
        self.stream = Some(BufReader::with_capacity(64 * 1024, s));
        Ok(())
    }

    fn stream(&mut self) -> Result<&mut BufReader<TcpStream>, String> {
        self.stream
            .as_mut()
            .ok_or_else(|| "the connection is closed".to_string())
    }

    /// A second handle on the connection's socket (to shut it down from another thread).
    pub fn socket(&self) -> Result<TcpStream, String> {
        let s = self.stream.as_ref().ok_or("the connection is closed")?;
        s.get_ref().try_clone().map_err(|e| e.to_string())
    }

    /// POSTs `body`; returns the answer's body, or an error for any status but 200.
    pub fn post(&mut self, path: &str, body: &[u8]) -> Result<&[u8], String> {
        self.send(path, body)?;
        match self.read_answer()? {
            (200, body) => Ok(body),
            (status, body) => Err(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            )),
        }
    }

    /// One request and its answer (status, body). A kept-alive connection the server has
    /// closed while it was idle is opened again before the request is sent; a request that was
    /// sent is never sent again (it may have been carried out), so a connection lost after
    /// that is an error.
    pub fn call(&mut self, method: &str, path: &str, body: &[u8]) -> Result<(u16, &[u8]), String> {
        if self.stream.is_none() || self.closed_by_server() {
            self.reconnect()?;
        }
        let result = self
            .send_with(method, path, &[], body)
            .and_then(|()| self.read_head())
            .and_then(|head| self.read_body(head).map(|()| head.0));
        match result {
            Ok(status) => Ok((status, &self.body)),
            Err(e) => {
                self.stream = None;
                Err(e)
            }
        }
    }

    /// True if the server closed the idle connection (an end of stream is waiting to be read).
    fn closed_by_server(&mut self) -> bool {
        let Some(stream) = self.stream.as_mut() else {
            return true;
        };
        if !stream.buffer().is_empty() {
            return false;
        }
        let socket = stream.get_ref();
        if socket.set_nonblocking(true).is_err() {
            return true;
        }
        let mut one = [0u8; 1];
        let closed = match socket.peek(&mut one) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
        };
        closed || socket.set_nonblocking(false).is_err()
    }

    /// Sends a POST without reading its answer.
    pub fn send(&mut self, path: &str, body: &[u8]) -> Result<(), String> {
        self.send_with("POST", path, &[], body)
    }

    /// Sends one request, with `headers` after the connection's own, without reading its
    /// answer ([`Client::read_answer`] does) and on the connection as it is: one the server
    /// has closed makes an error here or at the answer, never a second connection.
    pub fn send_with(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), String> {
        let mut request = std::mem::take(&mut self.request);
        request.clear();
        request.extend_from_slice(
            format!(
                "{method} {path} HTTP/1.1\r\nHost: cmdb\r\nContent-Length: {}\r\n",
                body.len()
            )
            .as_bytes(),
        );
        let own = self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        for (k, v) in own.chain(headers.iter().copied()) {
            request.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        request.extend_from_slice(b"\r\n");
        request.extend_from_slice(body);
        let sent = self.write_raw(&request);
        self.request = request;
        sent
    }

    /// Writes `bytes` as they are (a malformed or partial request, say) on the connection.
    pub fn write_raw(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.stream()?
            .get_mut()
            .write_all(bytes)
            .map_err(|e| format!("send: {e}"))
    }

    /// Reads one line of up to [`CLIENT_MAX_HEAD_BYTES`] into `self.line`, its end removed.
    fn read_line(&mut self) -> Result<(), String> {
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        let read = (self.stream()?)
            .take(CLIENT_MAX_HEAD_BYTES as u64)
            .read_line(&mut line);
        let ended = line.ends_with('\n');
        let end = line.trim_end_matches(['\r', '\n']).len();
        line.truncate(end);
        self.line = line;
        match read {
            Ok(0) => Err("the server closed the connection".into()),
            Ok(_) if !ended && self.line.len() >= CLIENT_MAX_HEAD_BYTES => {
                Err(format!("an answer line over {CLIENT_MAX_HEAD_BYTES} bytes"))
            }
            Ok(_) => Ok(()),
            Err(e) => Err(format!("receive: {e}")),
        }
    }

    /// Reads the answer of the oldest request sent: its status and body.
    pub fn read_answer(&mut self) -> Result<(u16, &[u8]), String> {
        let head = self.read_head()?;
        self.read_body(head)?;
        Ok((head.0, &self.body))
    }

    /// The headers of the last answer read, as they came (names as the server spelt them,
    /// values trimmed).
    pub fn answer_headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.head.lines().filter_map(|line| {
            let (k, v) = line.split_once(':')?;
            Some((k.trim(), v.trim()))
        })
    }

    /// The status line and headers: (status, Content-Length, chunked).
    fn read_head(&mut self) -> Result<(u16, Option<usize>, bool), String> {
        self.head.clear();
        self.read_line()?;
        let status = self
            .line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| format!("not an HTTP answer: {:?}", self.line))?;
        let mut length = None;
        let mut chunked = false;
        loop {
            self.read_line()?;
            if self.line.is_empty() {
                break;
            }
            if self.head.len() + self.line.len() > CLIENT_MAX_HEAD_BYTES {
                return Err(format!("an answer head over {CLIENT_MAX_HEAD_BYTES} bytes"));
            }
            if let Some((k, v)) = self.line.split_once(':') {
                let (k, v) = (k.trim(), v.trim());
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.parse::<usize>().ok();
                } else if k.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = v.eq_ignore_ascii_case("chunked");
                }
            }
            self.head.push_str(&self.line);
            self.head.push('\n');
        }
        // Answers that never have a body (RFC 9112, 6.3).
        if (100..200).contains(&status) || status == 204 || status == 304 {
            length = Some(0);
        }
        Ok((status, length, chunked))
    }

    fn read_body(
        &mut self,
        (_, length, chunked): (u16, Option<usize>, bool),
    ) -> Result<(), String> {
        let too_big = || format!("an answer over {CLIENT_MAX_ANSWER_BYTES} bytes");
        let mut body = std::mem::take(&mut self.body);
        body.clear();
        let result = (|| {
            if chunked {
                loop {
                    self.read_line()?;
                    let size_text = &self.line;
                    let size = usize::from_str_radix(size_text.split(';').next().unwrap_or(""), 16)
                        .map_err(|_| format!("bad chunk size {size_text:?}"))?;
                    if body.len() + size > CLIENT_MAX_ANSWER_BYTES {
                        return Err(too_big());
                    }
                    self.read_exactly(size, &mut body)?;
                    let mut end = [0u8; 2];
                    self.stream()?
                        .read_exact(&mut end)
                        .map_err(|e| format!("receive: {e}"))?;
                    if size == 0 {
                        return Ok(());
                    }
                }
            } else {
                let n = length.ok_or("an answer without Content-Length")?;
                if n > CLIENT_MAX_ANSWER_BYTES {
                    return Err(too_big());
                }
                self.read_exactly(n, &mut body)
            }
        })();
        self.body = body;
        result
    }

    /// Appends the next `n` bytes of the answer to `body`. (Read into the vector's spare room,
    /// not into zeroes written first: a large answer costs one copy.)
    fn read_exactly(&mut self, n: usize, body: &mut Vec<u8>) -> Result<(), String> {
        let want = body.len() + n;
        body.reserve(n);
        (self.stream()?)
            .take(n as u64)
            .read_to_end(body)
            .map_err(|e| format!("receive: {e}"))?;
        if body.len() < want {
            return Err("the server closed the connection mid-answer".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, Read, Write};
    use std::net::TcpListener;

    /// Reads one request (head and Content-Length body) from `r`; false at end of file.
    fn read_request(r: &mut BufReader<TcpStream>) -> bool {
        let mut length = 0;
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return false;
            }
            if let Some(v) = line.strip_prefix("Content-Length: ") {
                length = v.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        r.read_exact(&mut body).is_ok()
    }

    /// A listener on a loopback port, and its address.
    fn listen() -> (TcpListener, String) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        (l, addr)
    }

    /// The next connection to `l`, and a reader of it.
    fn accept(l: &TcpListener) -> (TcpStream, BufReader<TcpStream>) {
        let (s, _) = l.accept().unwrap();
        let r = BufReader::new(s.try_clone().unwrap());
        (s, r)
    }

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

    #[test]
    fn a_written_request_is_never_sent_twice() {
        let (l, addr) = listen();
        let server = std::thread::spawn(move || {
            // First connection: one request answered, the next read and dropped unanswered.
            let (s, mut r) = accept(&l);
            assert!(read_request(&mut r));
            (&s).write_all(OK).unwrap();
            assert!(read_request(&mut r));
            drop(r);
            drop(s);
            // Nothing else may arrive: a resent request would open a second connection.
            l.set_nonblocking(true).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            l.accept().is_err()
        });
        let mut c = Client::connect_with(&addr, &[]).unwrap();
        assert_eq!(c.call("POST", "/a", b"{}").unwrap().0, 200);
        let e = c.call("POST", "/create", b"{}").unwrap_err();
        assert!(!e.is_empty());
        assert!(server.join().unwrap(), "the request was sent again");
    }

    #[test]
    fn a_connection_the_server_closed_while_idle_is_opened_again() {
        let (l, addr) = listen();
        let (closed, was_closed) = std::sync::mpsc::channel();
        let server = std::thread::spawn(move || {
            for _ in 0..2 {
                let (s, mut r) = accept(&l);
                assert!(read_request(&mut r));
                (&s).write_all(OK).unwrap();
                // Closed after one answer, as an idle timeout would.
                drop(r);
                drop(s);
                let _ = closed.send(());
            }
        });
        let mut c = Client::connect_with(&addr, &[]).unwrap();
        assert_eq!(c.call("POST", "/a", b"{}").unwrap().1, b"ok");
        was_closed.recv().unwrap();
        // The end of file travels on loopback at once; a little slack for a busy machine.
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(c.call("POST", "/b", b"{}").unwrap().1, b"ok");
        server.join().unwrap();
    }

    #[test]
    fn a_bare_connection_writes_only_the_given_headers_and_keeps_the_answers() {
        let (l, addr) = listen();
        let server = std::thread::spawn(move || {
            let (s, mut r) = accept(&l);
            let mut head = String::new();
            while !head.ends_with("\r\n\r\n") {
                assert!(r.read_line(&mut head).unwrap() > 0);
            }
            let mut body = [0u8; 2];
            r.read_exact(&mut body).unwrap();
            (&s).write_all(b"HTTP/1.1 201 Created\r\nX-One:  a b \r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n1\r\n!\r\n0\r\n\r\n").unwrap();
            (head, body)
        });
        let mut c = Client::connect_bare(&addr, Duration::from_secs(30)).unwrap();
        c.send_with("PUT", "/x", &[("X-Two", "2")], b"{}").unwrap();
        let (status, body) = c.read_answer().unwrap();
        assert_eq!((status, body), (201, &b"ok!"[..]));
        let headers: Vec<_> = c.answer_headers().collect();
        assert_eq!(
            headers,
            [("X-One", "a b"), ("Transfer-Encoding", "chunked")]
        );
        let (head, body) = server.join().unwrap();
        assert_eq!(
            head,
            "PUT /x HTTP/1.1\r\nHost: cmdb\r\nContent-Length: 2\r\nX-Two: 2\r\n\r\n"
        );
        assert_eq!(&body, b"{}");
    }

    #[test]
    fn an_answer_cut_short_is_an_error() {
        let (l, addr) = listen();
        let server = std::thread::spawn(move || {
            for cut in [
                &b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"[..],
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
            ] {
                let (s, mut r) = accept(&l);
                assert!(read_request(&mut r));
                (&s).write_all(cut).unwrap();
            }
        });
        for _ in 0..2 {
            let mut c = Client::connect_bare(&addr, Duration::from_secs(30)).unwrap();
            c.send_with("POST", "/x", &[], b"{}").unwrap();
            assert!(c.read_answer().is_err());
        }
        server.join().unwrap();
    }
}
