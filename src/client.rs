//! A keep-alive HTTP/1.1 client over a plain TCP stream, just enough for the commands that
//! call a server themselves: `bench` (against the server it starts) and `push` (against a
//! bk-cmdb). Answers with `Content-Length` or chunked bodies; no TLS, no redirects, no proxy.
//! One request at a time per connection, or pipelined with [`Client::send`] and
//! [`Client::read_answer`].

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// How long a read or a write on the connection may block.
pub const CLIENT_IO_TIMEOUT: Duration = Duration::from_secs(60);

/// The largest answer body the client reads (a list of 1,000 large records fits).
pub const CLIENT_MAX_ANSWER_BYTES: usize = 256 * 1024 * 1024;

/// One keep-alive connection.
pub struct Client {
    addr: String,
    stream: Option<BufReader<TcpStream>>,
    headers: Vec<(String, String)>,
    request: Vec<u8>,
    line: String,
    body: Vec<u8>,
}

/// The native user headers of user admin, in English: what `bench` sends.
pub const NATIVE_ADMIN: [(&str, &str); 3] = [
    ("X-Bkcmdb-User", "admin"),
    ("X-Bkcmdb-Supplier-Account", "0"),
    ("X-Bkcmdb-Language", "en"),
];

impl Client {
    /// Connects to `addr` (`host:port`); every request carries `headers`.
    pub fn connect_with(addr: &str, headers: &[(&str, &str)]) -> Result<Client, String> {
        let mut c = Client {
            addr: addr.to_string(),
            stream: None,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            request: Vec::new(),
            line: String::new(),
            body: Vec::new(),
        };
        c.reconnect()?;
        Ok(c)
    }

    /// Connects with the native user headers of user admin ([`NATIVE_ADMIN`]).
    pub fn connect(addr: &str) -> Result<Client, String> {
        Client::connect_with(addr, &NATIVE_ADMIN)
    }

    fn reconnect(&mut self) -> Result<(), String> {
        let s =
            TcpStream::connect(&self.addr).map_err(|e| format!("connect {}: {e}", self.addr))?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(CLIENT_IO_TIMEOUT))
            .map_err(|e| e.to_string())?;
        s.set_write_timeout(Some(CLIENT_IO_TIMEOUT))
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
            .send_method(method, path, body)
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
        self.send_method("POST", path, body)
    }

    fn send_method(&mut self, method: &str, path: &str, body: &[u8]) -> Result<(), String> {
        self.request.clear();
        self.request
            .extend_from_slice(format!("{method} {path} HTTP/1.1\r\nHost: cmdb\r\n").as_bytes());
        self.request
            .extend_from_slice(b"Content-Type: application/json\r\n");
        for (k, v) in &self.headers {
            self.request
                .extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        self.request
            .extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        self.request.extend_from_slice(body);
        let request = std::mem::take(&mut self.request);
        let sent = self
            .stream()?
            .get_mut()
            .write_all(&request)
            .map_err(|e| format!("send: {e}"));
        self.request = request;
        sent
    }

    fn read_line(&mut self) -> Result<&str, String> {
        self.line.clear();
        let mut line = std::mem::take(&mut self.line);
        let read = self.stream()?.read_line(&mut line);
        self.line = line;
        match read {
            Ok(0) => Err("the server closed the connection".into()),
            Ok(_) => Ok(self.line.trim_end()),
            Err(e) => Err(format!("receive: {e}")),
        }
    }

    /// Reads the answer of the oldest request sent: its status and body.
    pub fn read_answer(&mut self) -> Result<(u16, &[u8]), String> {
        let head = self.read_head()?;
        self.read_body(head)?;
        Ok((head.0, &self.body))
    }

    /// The status line and headers: (status, Content-Length, chunked).
    fn read_head(&mut self) -> Result<(u16, Option<usize>, bool), String> {
        let status_line = self.read_line()?.to_string();
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| format!("not an HTTP answer: {status_line:?}"))?;
        let mut length = None;
        let mut chunked = false;
        loop {
            let line = self.read_line()?;
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                let (k, v) = (k.trim(), v.trim());
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.parse::<usize>().ok();
                } else if k.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = v.eq_ignore_ascii_case("chunked");
                }
            }
        }
        Ok((status, length, chunked))
    }

    fn read_body(
        &mut self,
        (_, length, chunked): (u16, Option<usize>, bool),
    ) -> Result<(), String> {
        let io = |e: std::io::Error| format!("receive: {e}");
        let too_big = || format!("an answer over {CLIENT_MAX_ANSWER_BYTES} bytes");
        let mut body = std::mem::take(&mut self.body);
        body.clear();
        let result = (|| {
            if chunked {
                loop {
                    let size_text = self.read_line()?;
                    let size = usize::from_str_radix(size_text.split(';').next().unwrap_or(""), 16)
                        .map_err(|_| format!("bad chunk size {size_text:?}"))?;
                    if body.len() + size > CLIENT_MAX_ANSWER_BYTES {
                        return Err(too_big());
                    }
                    let at = body.len();
                    body.resize(at + size + 2, 0);
                    self.stream()?.read_exact(&mut body[at..]).map_err(io)?;
                    body.truncate(at + size);
                    if size == 0 {
                        return Ok(());
                    }
                }
            } else {
                let n = length.ok_or("an answer without Content-Length")?;
                if n > CLIENT_MAX_ANSWER_BYTES {
                    return Err(too_big());
                }
                body.resize(n, 0);
                self.stream()?.read_exact(&mut body).map_err(io)
            }
        })();
        self.body = body;
        result
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

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

    #[test]
    fn a_written_request_is_never_sent_twice() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || {
            // First connection: one request answered, the next read and dropped unanswered.
            let (s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
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
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let (closed, was_closed) = std::sync::mpsc::channel();
        let server = std::thread::spawn(move || {
            for _ in 0..2 {
                let (s, _) = l.accept().unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
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
}
