//! Hostile input at the HTTP edge: the server answers (or closes) and stays up.
use crate::common::*;
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn still_serves(s: &Server) {
    let r = s.list(7, 30);
    assert_eq!(r["result"], true, "{r}");
}

#[test]
fn huge_content_length_is_refused_without_taking_the_server_down() {
    let s = Server::memory();
    let mut c = Conn::open(&s.addr);
    c.write_raw(
        b"POST /api/v3/create/proc/process_instance HTTP/1.1\r\nHost: t\r\n\
          X-Bkcmdb-User: admin\r\nX-Bkcmdb-Supplier-Account: 0\r\n\
          Content-Length: 99999999999999\r\n\r\n{\"a\":",
    );
    let r = c.read_response().expect("an answer");
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["result"], false);
    drop(c);
    still_serves(&s);
}

#[test]
fn garbage_request_line_gets_400_and_the_server_goes_on() {
    let s = Server::memory();
    let mut c = Conn::open(&s.addr);
    c.write_raw(b"\x00\xff garbage\r\n\r\n");
    if let Some(r) = c.read_response() {
        assert_eq!(r.status, 400);
    }
    still_serves(&s);
}

#[test]
fn invalid_utf8_and_deep_json_are_1199000() {
    let s = Server::memory();
    for body in [
        b"{\"bk_biz_id\":\xff}".to_vec(),
        "[".repeat(10_000).into_bytes(),
    ] {
        let r = s.request(
            "POST",
            "/api/v3/create/proc/process_instance",
            &NATIVE_EN,
            &body,
        );
        assert_eq!(r.status, 200);
        assert_eq!(
            r.json(),
            err_native(1199000, "Deserializing JSON data failed")
        );
    }
    let created = s.create(&json!({"bk_biz_id": 7, "service_instance_id": 30,
        "processes": [{"process_info": {"bk_process_name": "after", "bk_func_name": "after"}}]}));
    assert_eq!(created["result"], true, "{created}");
}

// ---------------------------------------------------------------------------------------------
// Slow clients (slowloris)
// ---------------------------------------------------------------------------------------------

const CREATE: &str = "/api/v3/create/proc/process_instance";
const LIST: &str = "/api/v3/findmany/proc/process_instance";
const IDENTITY: &str = "X-Bkcmdb-User: admin\r\nX-Bkcmdb-Supplier-Account: 0\r\n";

/// A connection that has sent `head` and then trickles one byte of `rest` every `every`,
/// from its own thread, until `rest` is used up or `stop` is set.
struct Trickler {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Trickler {
    fn start(addr: &str, head: Vec<u8>, rest: Vec<u8>, every: Duration) -> Trickler {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).unwrap();
        stream.write_all(&head).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            for b in rest {
                let until = Instant::now() + every;
                while Instant::now() < until {
                    if flag.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                if stream.write_all(&[b]).is_err() {
                    return;
                }
            }
            // Keep the connection open until told to stop.
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Trickler {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Trickler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A list request on a new connection must be answered within `within`.
fn served_within(s: &Server, within: Duration) {
    let start = Instant::now();
    let mut stream = TcpStream::connect(&s.addr).unwrap();
    stream.set_read_timeout(Some(within)).unwrap();
    let body = json!({"bk_biz_id": 7, "service_instance_id": 30}).to_string();
    let req = format!(
        "POST {LIST} HTTP/1.1\r\nHost: t\r\n{IDENTITY}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(b"}") {
        match stream.read(&mut buf) {
            Ok(0) => panic!("closed after {:?}", start.elapsed()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!(
                "a normal client was not served within {within:?} ({e}); got {:?}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains(r#""result":true"#), "{text}");
}

/// Header-slow and body-slow connections, more of each kind than the server has workers.
fn slowloris(addr: &str, per_kind: usize) -> Vec<Trickler> {
    let every = Duration::from_millis(300);
    let mut conns = Vec::new();
    for i in 0..per_kind {
        // Headers never finished.
        conns.push(Trickler::start(
            addr,
            format!("POST {LIST} HTTP/1.1\r\nHost: t\r\n").into_bytes(),
            "X-Slow-Header: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".into(),
            every,
        ));
        // A large declared body (tiny_http hands such a request over before reading it),
        // small, chunked, behind Expect: 100-continue, and on an unknown path.
        let bodies: [(&str, String); 5] = [
            (CREATE, "Content-Length: 5000\r\n".into()),
            (CREATE, "Content-Length: 500\r\n".into()),
            (CREATE, "Transfer-Encoding: chunked\r\n".into()),
            (
                LIST,
                "Content-Length: 100\r\nExpect: 100-continue\r\n".into(),
            ),
            ("/api/v3/no/such/api", "Content-Length: 5000\r\n".into()),
        ];
        let (path, framing) = &bodies[i % bodies.len()];
        let rest = if framing.contains("chunked") {
            b"1000\r\n{\"bk_biz_id\": 7,           ".to_vec()
        } else {
            b"{\"bk_biz_id\": 7,                              ".to_vec()
        };
        conns.push(Trickler::start(
            addr,
            format!("POST {path} HTTP/1.1\r\nHost: t\r\n{IDENTITY}{framing}\r\n").into_bytes(),
            rest,
            every,
        ));
    }
    conns
}

#[test]
fn slowloris_does_not_starve_normal_clients() {
    let s = Server::start(&["--memory", "--threads", "4"]);
    served_within(&s, Duration::from_secs(5));
    let slow = slowloris(&s.addr, 10);
    // Let every slow request reach the server and start trickling.
    std::thread::sleep(Duration::from_millis(700));
    for _ in 0..3 {
        served_within(&s, Duration::from_secs(3));
    }
    drop(slow);
    served_within(&s, Duration::from_secs(3));
}

// ---------------------------------------------------------------------------------------------
// Lying Content-Length, stalled and endless bodies (short timeouts for speed)
// ---------------------------------------------------------------------------------------------

/// Reads whatever the server sends until it closes or `within` passes: (bytes, closed).
fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (String, bool) {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (String::from_utf8_lossy(&got).into_owned(), false);
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return (String::from_utf8_lossy(&got).into_owned(), true);
            }
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
        }
    }
}

/// The JSON bodies of the complete answers in `raw` (a concatenation of HTTP responses).
fn json_answers(raw: &str) -> Vec<(u16, serde_json::Value)> {
    let mut out = Vec::new();
    let mut rest = raw;
    while let Some(start) = rest.find("HTTP/1.1 ") {
        rest = &rest[start..];
        let status: u16 = rest[9..12].parse().unwrap();
        let Some(head_end) = rest.find("\r\n\r\n") else {
            break;
        };
        let head = &rest[..head_end];
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().unwrap())
            })
            .unwrap_or(0);
        let body = &rest[head_end + 4..(head_end + 4 + len).min(rest.len())];
        out.push((
            status,
            serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
        ));
        rest = &rest[head_end + 4 + len.min(rest.len() - head_end - 4)..];
    }
    out
}

fn head(path: &str, framing: &str) -> String {
    format!("POST {path} HTTP/1.1\r\nHost: t\r\n{IDENTITY}X-Bkcmdb-Language: en\r\n{framing}\r\n")
}

#[test]
fn content_length_shorter_than_the_body() {
    let s = Server::memory();
    let body = json!({"bk_biz_id": 7, "service_instance_id": 30}).to_string();
    let mut stream = TcpStream::connect(&s.addr).unwrap();
    // The first 10 bytes are the body; the rest is taken as the next request, which is garbage.
    stream
        .write_all(format!("{}{body}\r\n\r\n", head(LIST, "Content-Length: 10\r\n")).as_bytes())
        .unwrap();
    let (raw, closed) = read_until_closed(&mut stream, Duration::from_secs(5));
    let answers = json_answers(&raw);
    assert_eq!(
        answers.first(),
        Some(&(
            200,
            err_native(1199000, "Deserializing JSON data failed").clone()
        )),
        "{raw}"
    );
    assert!(
        closed,
        "the connection should be closed after the garbage: {raw}"
    );
    assert!(raw.contains("HTTP/1.1 400"), "{raw}");
    still_serves(&s);
}

#[test]
fn content_length_longer_than_the_body() {
    let s = Server::start(&["--memory", "--read-timeout-secs", "1"]);
    let start = Instant::now();
    let partial = br#"{"bk_biz_id": 7, "service_instance_id": 30}"#;
    // Large declared bodies are read by the request's own thread: a JSON 408 after the read
    // timeout. Small ones (tiny_http reads bodies of up to 1 KiB itself) are closed unanswered.
    let mut handles = Vec::new();
    for (len, expect_408) in [(5000, true), (500, false)] {
        let addr = s.addr.clone();
        handles.push(std::thread::spawn(move || {
            let mut stream = TcpStream::connect(&addr).unwrap();
            let framing = format!("Content-Length: {len}\r\n");
            stream.write_all(head(LIST, &framing).as_bytes()).unwrap();
            stream.write_all(partial).unwrap();
            let (raw, closed) = read_until_closed(&mut stream, Duration::from_secs(5));
            if expect_408 {
                assert_eq!(
                    json_answers(&raw),
                    [(408, err_native(1199004, "Data read failed"))],
                    "{raw}"
                );
            } else {
                assert_eq!(raw, "", "{len}");
                assert!(closed, "{len}: not closed");
            }
        }));
    }
    // The same, but the client closes its side: the short body is parsed (and refused).
    let mut stream = TcpStream::connect(&s.addr).unwrap();
    stream
        .write_all(head(LIST, "Content-Length: 5000\r\n").as_bytes())
        .unwrap();
    stream.write_all(&partial[..20]).unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let (raw, _) = read_until_closed(&mut stream, Duration::from_secs(5));
    assert_eq!(
        json_answers(&raw),
        [(200, err_native(1199000, "Deserializing JSON data failed"))],
        "{raw}"
    );
    for h in handles {
        h.join().unwrap();
    }
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    still_serves(&s);
}

#[test]
fn a_body_trickled_past_the_body_timeout_gets_408() {
    let s = Server::start(&[
        "--memory",
        "--read-timeout-secs",
        "1",
        "--body-timeout-secs",
        "2",
    ]);
    let start = Instant::now();
    let mut stream = TcpStream::connect(&s.addr).unwrap();
    stream
        .write_all(head(CREATE, "Content-Length: 5000\r\n").as_bytes())
        .unwrap();
    let mut w = stream.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        // One byte every 300 ms: never idle for a whole read timeout.
        for _ in 0..30 {
            if w.write_all(b" ").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    let mut reader = std::io::BufReader::new(stream);
    let mut c = ConnReader(&mut reader);
    let (status, body) = c.response();
    let took = start.elapsed();
    assert_eq!(status, 408, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        err_native(1199004, "Data read failed")
    );
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(4),
        "answered after {took:?}"
    );
    drop(reader);
    let _ = writer.join();
    still_serves(&s);
}

#[test]
fn idle_and_stalled_connections_are_closed_after_the_read_timeout() {
    let s = Server::start(&["--memory", "--read-timeout-secs", "1"]);
    let list = json!({"bk_biz_id": 7, "service_instance_id": 30}).to_string();
    // Idle keep-alive after one answer.
    let mut idle = TcpStream::connect(&s.addr).unwrap();
    idle.write_all(
        format!(
            "{}{list}",
            head(LIST, &format!("Content-Length: {}\r\n", list.len()))
        )
        .as_bytes(),
    )
    .unwrap();
    // Headers never finished.
    let mut half = TcpStream::connect(&s.addr).unwrap();
    half.write_all(b"POST /api/v3/findmany/proc/process_instance HTTP/1.1\r\nHost")
        .unwrap();
    let start = Instant::now();
    let (raw, closed) = read_until_closed(&mut idle, Duration::from_secs(5));
    assert!(closed, "idle connection still open: {raw}");
    assert_eq!(json_answers(&raw).len(), 1, "{raw}");
    let (raw, closed) = read_until_closed(&mut half, Duration::from_secs(5));
    assert!(closed && raw.is_empty(), "{raw}");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    still_serves(&s);
}

/// A minimal response reader over a buffered stream: (status, body).
struct ConnReader<'a, R: std::io::BufRead>(&'a mut R);

impl<R: std::io::BufRead> ConnReader<'_, R> {
    fn response(&mut self) -> (u16, String) {
        let mut line = String::new();
        self.0.read_line(&mut line).expect("a status line");
        let status = line
            .split_whitespace()
            .nth(1)
            .expect(&line)
            .parse()
            .unwrap();
        let mut len = 0;
        loop {
            let mut h = String::new();
            self.0.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; len];
        self.0.read_exact(&mut body).unwrap();
        (status, String::from_utf8(body).unwrap())
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile bodies, headers and methods
// ---------------------------------------------------------------------------------------------

const ESB: &str = "/api/c/compapi/v2/cc/create_process_instance/";
const GW: &str = "/api/bk-cmdb/prod/api/v3/create/proc/process_instance";

/// `body` through the three families: each answer is HTTP 200 with bk-cmdb's `code`.
fn refused_everywhere(s: &Server, body: &[u8], code: i64) {
    let r = s.request("POST", CREATE, &NATIVE_EN, body);
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["result"], false, "{v}");
    assert_eq!(v["bk_error_code"], code, "{v}");
    for path in [ESB, GW] {
        let r = s.request("POST", path, &[("X-Bkcmdb-Language", "en")], body);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        let v = r.json();
        assert_eq!(v["result"], false, "{path}: {v}");
        assert_eq!(v["code"], code, "{path}: {v}");
    }
}

#[test]
fn invalid_utf8_anywhere_in_the_body_is_1199000() {
    let s = Server::memory();
    for body in [
        &b"{\"bk_biz_id\":7,\"service_instance_id\":30,\"processes\":[{\"process_info\":{\"bk_process_name\":\"\xff\xfe\"}}]}"[..],
        b"{\"\xc3\x28\":1}",
        b"\xef\xbb\xbf{\"bk_biz_id\":7}",
        b"{\"bk_biz_id\":7,\"service_instance_id\":30,\"x\":\"\xed\xa0\x80\"}",
        b"\x80",
    ] {
        refused_everywhere(&s, body, 1199000);
    }
    // An escaped lone surrogate is valid JSON text but not a string Go or serde can hold.
    refused_everywhere(
        &s,
        br#"{"bk_biz_id":7,"service_instance_id":30,"processes":[{"process_info":{"bk_process_name":"\ud800","bk_func_name":"x"}}]}"#,
        1199000,
    );
    still_serves(&s);
}

#[test]
fn json_nested_10000_deep_is_1199000() {
    let s = Server::memory();
    let deep_array = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_object = format!("{}1{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
    let inside = format!(
        r#"{{"bk_biz_id":7,"service_instance_id":30,"processes":[{{"process_info":{{"bk_process_name":"d","bk_func_name":"d","description":{deep_array}}}}}]}}"#
    );
    let unclosed = "{\"a\":[".repeat(10_000);
    for body in [&deep_array, &deep_object, &inside, &unclosed] {
        refused_everywhere(&s, body.as_bytes(), 1199000);
    }
    still_serves(&s);
}

#[test]
fn one_megabyte_strings_are_refused_quickly() {
    let s = Server::memory();
    let mb = "x".repeat(1 << 20);
    let start = Instant::now();
    // As a value of a checked field: too long (1199011, like any over-long value).
    let body = json!({"bk_biz_id": 7, "service_instance_id": 30,
        "processes": [{"process_info": {"bk_process_name": mb, "bk_func_name": "f"}}]});
    let v = s.create(&body);
    assert_eq!(v["result"], false, "{}", &v.to_string()[..200]);
    assert_eq!(v["bk_error_code"], 1199011);
    // As a number field, as a key, as an unknown field's value.
    let as_id = format!(r#"{{"bk_biz_id":"{mb}","service_instance_id":30,"processes":[]}}"#);
    let r = s.request("POST", CREATE, &NATIVE_EN, as_id.as_bytes());
    assert_eq!(r.json()["result"], false);
    let as_key = format!(
        r#"{{"bk_biz_id":7,"service_instance_id":30,"processes":[{{"process_info":{{"{mb}":1,"bk_process_name":"k","bk_func_name":"k"}}}}]}}"#
    );
    let r = s.request("POST", CREATE, &NATIVE_EN, as_key.as_bytes());
    assert_eq!(r.status, 200);
    let unknown = format!(r#"{{"bk_biz_id":7,"service_instance_id":30,"junk":"{mb}"}}"#);
    let r = s.request("POST", LIST, &NATIVE_EN, unknown.as_bytes());
    assert_eq!(r.json()["result"], true, "{}", r.body);
    // A 1 MB request id header is echoed, not choked on.
    let rid = "r".repeat(1 << 20);
    let r = s.request(
        "POST",
        LIST,
        &[NATIVE_EN[0], NATIVE_EN[1], ("X-Request-Id", &rid)],
        b"{\"bk_biz_id\":7,\"service_instance_id\":30}",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("X-Request-Id").map(str::len), Some(1 << 20));
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    // Nothing of the above was stored except what was valid.
    let listed = s.list(7, 30)["data"].as_array().unwrap().len();
    assert!(listed <= 2, "{listed}");
    still_serves(&s);
}

#[test]
fn unknown_and_odd_methods_get_json_errors() {
    let s = Server::memory();
    for method in [
        "FOO", "PATCH", "DELETE", "OPTIONS", "TRACE", "PROPFIND", "GET",
    ] {
        let r = s.request(method, CREATE, &NATIVE_EN, b"{}");
        assert_eq!(r.status, 405, "{method}: {}", r.body);
        assert_eq!(r.json()["result"], false, "{method}");
        let r = s.request(method, "/api/v3/nothing/here", &NATIVE_EN, b"{}");
        assert_eq!(r.status, 404, "{method}: {}", r.body);
        assert_eq!(r.json()["result"], false, "{method}");
    }
    // HEAD: the status without a body; the connection stays usable.
    let mut c = Conn::open(&s.addr);
    c.write_raw(b"HEAD /api/v3/create/proc/process_instance HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    let mut line = String::new();
    let mut raw = TcpStream::connect(&s.addr).unwrap();
    raw.write_all(b"HEAD /api/v3/create/proc/process_instance HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (text, closed) = read_until_closed(&mut raw, Duration::from_secs(5));
    assert!(closed && text.starts_with("HTTP/1.1 405"), "{text}");
    assert!(
        text.ends_with("\r\n\r\n"),
        "HEAD answer with a body: {text}"
    );
    line.clear();
    drop(c);
    // Methods that are not HTTP tokens, or absurdly long: 400 or a JSON error, never a hang.
    for request_line in [
        "G{T /api/v3/create/proc/process_instance HTTP/1.1".to_string(),
        format!(
            "{} /api/v3/create/proc/process_instance HTTP/1.1",
            "M".repeat(100_000)
        ),
        "POST  HTTP/1.1".to_string(),
        "POST /api/v3/create/proc/process_instance HTTP/9.9".to_string(),
    ] {
        let mut raw = TcpStream::connect(&s.addr).unwrap();
        raw.write_all(format!("{request_line}\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes())
            .unwrap();
        let (text, closed) = read_until_closed(&mut raw, Duration::from_secs(5));
        assert!(
            closed,
            "{}: still open",
            &request_line[..20.min(request_line.len())]
        );
        let status: u16 = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        assert!(
            [400, 404, 405, 505].contains(&status),
            "{}: {text}",
            &request_line[..20.min(request_line.len())]
        );
    }
    still_serves(&s);
}

#[test]
fn non_ascii_headers_and_paths_close_or_refuse() {
    let s = Server::memory();
    for raw_request in [
        &b"POST /api/v3/findmany/proc/process_instance HTTP/1.1\r\nHost: t\r\nX-Bkcmdb-User: \xe5\xbc\xa0\r\nX-Bkcmdb-Supplier-Account: 0\r\nContent-Length: 2\r\n\r\n{}"[..],
        b"POST /api/v3/\xff HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}",
        b"POST /api/v3/findmany/proc/process_instance HTTP/1.1\r\nno colon here\r\n\r\n",
        b"POST /api/v3/findmany/proc/process_instance HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
        b"POST /api/v3/findmany/proc/process_instance HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 99\r\n\r\n{",
        b"POST /api/v3/findmany/proc/process_instance HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    ] {
        let mut raw = TcpStream::connect(&s.addr).unwrap();
        raw.write_all(raw_request).unwrap();
        let _ = raw.shutdown(std::net::Shutdown::Write);
        let (text, closed) = read_until_closed(&mut raw, Duration::from_secs(5));
        assert!(closed, "{:?}: not closed: {text}", String::from_utf8_lossy(raw_request));
        for (status, v) in json_answers(&text) {
            assert!(
                status == 400 || v.get("result") == Some(&json!(false)) || v["result"] == json!(true),
                "{status} {v}"
            );
        }
    }
    still_serves(&s);
}

// ---------------------------------------------------------------------------------------------
// The listener survives
// ---------------------------------------------------------------------------------------------

#[test]
fn still_accepting_after_a_quiet_read_timeout() {
    // The read timeout is set on the listening socket (accepted connections inherit it), so
    // accept() itself times out when no client comes for that long: that must not stop it.
    let s = Server::start(&["--memory", "--read-timeout-secs", "1"]);
    still_serves(&s);
    std::thread::sleep(Duration::from_millis(2500));
    still_serves(&s);
}

#[test]
fn running_out_of_file_descriptors_is_survived() {
    // A server allowed 100 descriptors: it refuses to start with more connections than that
    // allows, and with 30 it holds them while 80 clients try to connect (the others are refused
    // with 503). Once they go, a normal client is served.
    let out = std::process::Command::new("bash")
        .args([
            "-c",
            r#"ulimit -n 100 && exec "$0" serve --memory --listen 127.0.0.1:0 --max-connections 1000"#,
            BIN,
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(
            "--max-connections 1000 needs 1064 open files, but the limit (ulimit -n) is 100"
        ),
        "{err}"
    );
    let child = std::process::Command::new("bash")
        .args([
            "-c",
            r#"ulimit -n 100 && exec "$0" serve --memory --listen 127.0.0.1:0 --threads 2 --max-connections 30"#,
            BIN,
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut s = Server::adopt(child);
    drop(s.child.stdout.take());
    let mut held = Vec::new();
    for _ in 0..80 {
        let mut c = TcpStream::connect(&s.addr).unwrap();
        c.write_all(b"POST /api/v3/findmany/proc/process_instance HTTP/1.1\r\n")
            .unwrap();
        held.push(c);
    }
    std::thread::sleep(Duration::from_millis(500));
    drop(held);
    served_within(&s, Duration::from_secs(5));
    still_serves(&s);
}

#[test]
fn headers_over_one_mebibyte_get_431_and_a_closed_connection() {
    // Go's net/http (bk-cmdb's server) allows 1 MiB + 4 KiB of request line and headers.
    let s = Server::memory();
    let long_line = format!("X-Long: {}\r\n", "a".repeat(2 << 20));
    let many: String = (0..20_000)
        .map(|i| format!("X-Many-{i}: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"))
        .collect();
    let long_path = format!("POST /{} HTTP/1.1\r\n", "p".repeat(2 << 20));
    for extra in [long_line, many] {
        let mut stream = TcpStream::connect(&s.addr).unwrap();
        let req = format!("POST {LIST} HTTP/1.1\r\nHost: t\r\n{extra}\r\n");
        let writer = {
            let mut w = stream.try_clone().unwrap();
            std::thread::spawn(move || {
                let _ = w.write_all(req.as_bytes());
            })
        };
        let (raw, closed) = read_until_closed(&mut stream, Duration::from_secs(10));
        assert!(closed, "not closed: {raw}");
        assert!(raw.is_empty() || raw.starts_with("HTTP/1.1 431"), "{raw}");
        let _ = writer.join();
    }
    let mut stream = TcpStream::connect(&s.addr).unwrap();
    let mut w = stream.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(long_path.as_bytes());
    });
    let (raw, closed) = read_until_closed(&mut stream, Duration::from_secs(10));
    assert!(
        closed && (raw.is_empty() || raw.starts_with("HTTP/1.1 431")),
        "{raw}"
    );
    let _ = writer.join();
    // Just under the limit is served.
    let rid = "r".repeat((1 << 20) + 3000);
    let r = s.request(
        "POST",
        LIST,
        &[NATIVE_EN[0], NATIVE_EN[1], ("X-Request-Id", &rid)],
        br#"{"bk_biz_id":7,"service_instance_id":30}"#,
    );
    assert_eq!(r.status, 200);
    still_serves(&s);
}
