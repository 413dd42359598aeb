use ascii::AsciiString;

use std::io::Error as IoError;
use std::io::Result as IoResult;
use std::io::{BufReader, BufWriter, ErrorKind, Read};

use std::net::SocketAddr;
use std::str::FromStr;

use crate::common::{HTTPVersion, Method};
use crate::util::RefinedTcpStream;
use crate::util::{SequentialReader, SequentialReaderBuilder, SequentialWriterBuilder};
use crate::Request;

/// A ClientConnection is an object that will store a socket to a client
/// and return Request objects.
pub struct ClientConnection {
    // address of the client
    remote_addr: IoResult<Option<SocketAddr>>,

    // sequence of Readers to the stream, so that the data is not read in
    //  the wrong order
    source: SequentialReaderBuilder<BufReader<RefinedTcpStream>>,

    // sequence of Writers to the stream, to avoid writing response #2 before
    //  response #1
    sink: SequentialWriterBuilder<BufWriter<RefinedTcpStream>>,

    // Reader to read the next header from
    next_header_source: SequentialReader<BufReader<RefinedTcpStream>>,

    // set to true if we know that the previous request is the last one
    no_more_requests: bool,

    // true if the connection goes through SSL
    secure: bool,

    // cmdb-lite patch: a descriptor of the connection each request can shut it down with
    // (`Request::drop_connection`).
    closer: Option<std::sync::Arc<crate::connection::Connection>>,
    // cmdb-lite patch: this connection in the server's registry (requests in progress, head
    // deadline, eviction), and the path of the request being read (for error answers).
    registration: crate::bounds::Registration,
    path: Option<String>,
}

/// cmdb-lite patch: the most bytes a request line and its headers may take together: Go's
/// net/http limit (`DefaultMaxHeaderBytes`, 1 MiB, plus the 4 KiB it allows beyond it), which
/// bk-cmdb serves with. Beyond it the answer is 431 and the connection is closed. Upstream had
/// no limit: one endless header line grew a buffer until memory ran out.
const MAX_HEADER_BYTES: usize = (1 << 20) + 4096;

/// Error that can happen when reading a request.
#[derive(Debug)]
enum ReadError {
    /// cmdb-lite patch: more than `MAX_HEADER_BYTES` before the end of the headers.
    HeadersTooLarge,
    WrongRequestLine,
    WrongHeader(HTTPVersion),
    /// cmdb-lite patch: a control character (other than tab) in a header value, as Go's
    /// net/http refuses ("invalid header value").
    InvalidHeaderValue(HTTPVersion),
    /// the client sent an unrecognized `Expect` header
    ExpectationFailed(HTTPVersion),
    ReadIoError(IoError),
}

impl ClientConnection {
    /// Creates a new `ClientConnection` that takes ownership of the `TcpStream`.
    pub(crate) fn new(
        write_socket: RefinedTcpStream,
        mut read_socket: RefinedTcpStream,
        registration: crate::bounds::Registration,
    ) -> ClientConnection {
        let remote_addr = read_socket.peer_addr();
        let secure = read_socket.secure();
        let closer = read_socket.closer();

        let mut source = SequentialReaderBuilder::new(BufReader::with_capacity(1024, read_socket));
        let first_header = source.next().unwrap();

        ClientConnection {
            source,
            sink: SequentialWriterBuilder::new(BufWriter::with_capacity(1024, write_socket)),
            remote_addr,
            next_header_source: first_header,
            no_more_requests: false,
            secure,
            closer,
            registration,
            path: None,
        }
    }

    /// true if the connection is HTTPS
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// Reads the next line from self.next_header_source.
    ///
    /// Reads until `CRLF` is reached. The next read will start
    ///  at the first byte of the new line.
    ///
    /// cmdb-lite patch: the line's bytes, ASCII or not (Go's net/http accepts any byte other
    /// than a control character in a header value; upstream closed the connection without an
    /// answer), and `first` tells the registry when a head's first byte has arrived.
    fn read_next_line(&mut self, budget: &mut usize, first: bool) -> Result<Vec<u8>, ReadError> {
        let mut buf = Vec::new();
        let mut prev_byte_was_cr = false;

        loop {
            let byte = self.next_header_source.by_ref().bytes().next();

            let byte = match byte {
                Some(b) => b.map_err(ReadError::ReadIoError)?,
                None => {
                    return Err(ReadError::ReadIoError(IoError::new(
                        ErrorKind::ConnectionAborted,
                        "Unexpected EOF",
                    )))
                }
            };
            if first && buf.is_empty() && !prev_byte_was_cr {
                if self.registration.0.is_closed() {
                    // The last answer closed the connection (`Connection: close`, an abandoned
                    // drain, eviction): what follows is not read as a request.
                    return Err(ReadError::ReadIoError(IoError::new(
                        ErrorKind::ConnectionAborted,
                        "connection closed",
                    )));
                }
                self.registration.0.head_started();
            }
            if *budget == 0 {
                return Err(ReadError::HeadersTooLarge);
            }
            *budget -= 1;

            if byte == b'\n' && prev_byte_was_cr {
                buf.pop(); // removing the '\r'
                return Ok(buf);
            }

            prev_byte_was_cr = byte == b'\r';

            buf.push(byte);
        }
    }

    /// Reads a request from the stream.
    /// Blocks until the header has been read.
    fn read(&mut self) -> Result<Request, ReadError> {
        let mut budget = MAX_HEADER_BYTES;
        self.path = None;
        let (method, path, version, headers, non_ascii) = {
            // reading the request line
            let (method, path, version) = {
                let line = self.read_next_line(&mut budget, true)?;
                if line.iter().any(|&b| b < 0x20 || b == 0x7f) {
                    return Err(ReadError::WrongRequestLine);
                }
                let line = String::from_utf8_lossy(&line);
                let parsed = parse_request_line(line.trim());
                if let Some(path) = line.split(' ').nth(1) {
                    self.path = Some(path.to_string());
                }
                parsed?
            };

            // getting all headers
            let mut non_ascii = Vec::new();
            let headers = {
                let mut headers = Vec::new();
                let mut bad_value = false;
                loop {
                    let line = self.read_next_line(&mut budget, false)?;

                    if line.is_empty() {
                        break;
                    };
                    let Some(colon) = line.iter().position(|&b| b == b':') else {
                        return Err(ReadError::WrongHeader(version));
                    };
                    if line[colon + 1..]
                        .iter()
                        .any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f)
                    {
                        // Read on to the end of the head, then answer 400.
                        bad_value = true;
                        continue;
                    }
                    if !line.is_ascii() {
                        let name = &line[..colon];
                        if !name.is_ascii() || name.is_empty() {
                            return Err(ReadError::WrongHeader(version));
                        }
                        let value = String::from_utf8_lossy(&line[colon + 1..]);
                        non_ascii.push((
                            String::from_utf8_lossy(name).trim().to_string(),
                            value.trim().to_string(),
                        ));
                        continue;
                    }
                    let line = String::from_utf8_lossy(&line);
                    headers.push(match FromStr::from_str(line.trim()) {
                        // TODO: remove this conversion
                        Ok(h) => h,
                        _ => return Err(ReadError::WrongHeader(version)),
                    });
                }
                if bad_value {
                    return Err(ReadError::InvalidHeaderValue(version));
                }

                headers
            };

            (method, path, version, headers, non_ascii)
        };
        self.registration.0.head_done();

        // building the writer for the request
        let writer = self.sink.next().unwrap();

        // follow-up for next potential request
        let mut data_source = self.source.next().unwrap();
        std::mem::swap(&mut self.next_header_source, &mut data_source);

        // building the next reader
        let request = crate::request::new_request(
            self.secure,
            method,
            path,
            version.clone(),
            headers,
            self.remote_addr.as_ref().ok().copied().flatten(),
            data_source,
            writer,
            non_ascii,
            Some(crate::bounds::InProgress(std::sync::Arc::clone(
                &self.registration.0,
            ))),
        )
        .map_err(|e| {
            use crate::request;
            match e {
                request::RequestCreationError::CreationIoError(e) => ReadError::ReadIoError(e),
                request::RequestCreationError::ExpectationFailed => {
                    ReadError::ExpectationFailed(version)
                }
            }
        })?;

        // return the request
        Ok(request.with_closer(self.closer.clone()))
    }
}

impl Iterator for ClientConnection {
    type Item = Request;

    /// Blocks until the next Request is available.
    /// Returns None when no new Requests will come from the client.
    fn next(&mut self) -> Option<Request> {
        use crate::{Response, StatusCode};

        // the client sent a "connection: close" header in this previous request
        //  or is using HTTP 1.0, meaning that no new request will come
        if self.no_more_requests {
            return None;
        }

        loop {
            let rq = match self.read() {
                Err(ReadError::HeadersTooLarge) => {
                    self.answer_error(431, HTTPVersion(1, 1));
                    return None; // the rest of the headers is not read: close
                }
                Err(ReadError::WrongRequestLine) => {
                    self.answer_error(400, HTTPVersion(1, 1));
                    return None; // we don't know where the next request would start,
                                 // se we have to close
                }

                Err(ReadError::WrongHeader(ver)) | Err(ReadError::InvalidHeaderValue(ver)) => {
                    self.answer_error(400, ver);
                    return None; // we don't know where the next request would start,
                                 // se we have to close
                }

                Err(ReadError::ReadIoError(ref err)) if err.kind() == ErrorKind::TimedOut => {
                    // request timeout
                    self.answer_error(408, HTTPVersion(1, 1));
                    return None; // closing the connection
                }

                Err(ReadError::ExpectationFailed(ver)) => {
                    self.answer_error(417, ver);
                    return None; // TODO: should be recoverable, but needs handling in case of body
                }

                Err(ReadError::ReadIoError(_)) => return None,

                Ok(rq) => rq,
            };

            // checking HTTP version
            if *rq.http_version() > (1, 1) {
                let writer = self.sink.next().unwrap();
                let response = Response::from_string(
                    "This server only supports HTTP versions 1.0 and 1.1".to_owned(),
                )
                .with_status_code(StatusCode(505));
                response
                    .raw_print(writer, HTTPVersion(1, 1), &[], false, None)
                    .ok();
                continue;
            }

            // updating the status of the connection
            let connection_header = rq
                .headers()
                .iter()
                .find(|h| h.field.equiv("Connection"))
                .map(|h| h.value.as_str());

            let lowercase = connection_header.map(|h| h.to_ascii_lowercase());

            match lowercase {
                Some(ref val) if val.contains("close") => self.no_more_requests = true,
                // cmdb-lite patch: `Connection: upgrade` is ignored, as Go's net/http does for
                // a handler that does not take the connection over (upstream handed the request
                // the raw socket as its body, which never ended).
                Some(ref val)
                    if !val.contains("keep-alive") && *rq.http_version() == HTTPVersion(1, 0) =>
                {
                    self.no_more_requests = true
                }
                None if *rq.http_version() == HTTPVersion(1, 0) => self.no_more_requests = true,
                _ => (),
            };

            // returning the request
            return Some(rq);
        }
    }
}

impl ClientConnection {
    /// cmdb-lite patch: an error answer tiny_http writes itself, with the body the embedder
    /// renders for the status and path (the JSON envelope).
    fn answer_error(&mut self, status: u16, version: HTTPVersion) {
        use crate::{Header, Response, StatusCode};
        let body = self.registration.0.error_body(status, self.path.as_deref());
        let writer = self.sink.next().unwrap();
        let mut response = Response::from_data(body)
            .with_status_code(StatusCode(status))
            .with_connection_close();
        if let Ok(h) = Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..]) {
            response.add_header(h);
        }
        response.raw_print(writer, version, &[], false, None).ok();
    }
}

/// Parses a "HTTP/1.1" string.
fn parse_http_version(version: &str) -> Result<HTTPVersion, ReadError> {
    let (major, minor) = match version {
        "HTTP/0.9" => (0, 9),
        "HTTP/1.0" => (1, 0),
        "HTTP/1.1" => (1, 1),
        "HTTP/2.0" => (2, 0),
        "HTTP/3.0" => (3, 0),
        _ => return Err(ReadError::WrongRequestLine),
    };

    Ok(HTTPVersion(major, minor))
}

/// Parses the request line of the request.
/// eg. GET / HTTP/1.1
fn parse_request_line(line: &str) -> Result<(Method, String, HTTPVersion), ReadError> {
    let mut parts = line.split(' ');

    let method = parts.next().and_then(|w| w.parse().ok());
    let path = parts.next().map(ToOwned::to_owned);
    let version = parts.next().and_then(|w| parse_http_version(w).ok());

    method
        .and_then(|method| Some((method, path?, version?)))
        .ok_or(ReadError::WrongRequestLine)
}

#[cfg(test)]
mod test {
    #[test]
    fn test_parse_request_line() {
        let (method, path, ver) = super::parse_request_line("GET /hello HTTP/1.1").unwrap();

        assert!(method == crate::Method::Get);
        assert!(path == "/hello");
        assert!(ver == crate::common::HTTPVersion(1, 1));

        assert!(super::parse_request_line("GET /hello").is_err());
        assert!(super::parse_request_line("qsd qsd qsd").is_err());
    }
}
