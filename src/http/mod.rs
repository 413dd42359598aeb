//! The HTTP edge: a tiny_http listener, the threads of [`pool`], routing to [`crate::api`],
//! identity from headers, body limits and deadlines, and the family's envelope around every
//! answer. Only this module names tiny_http.

pub mod admin;
pub mod auth;
pub mod budget;
pub mod conn_limit;
pub mod envelope;
pub mod identity;
pub mod ops;
pub mod pool;
pub mod routes;
mod stream;

use crate::api::{self, Ctx, Input};
use crate::error::{CcError, Lang, code};
use crate::limits::{BODY_READ_CHUNK_BYTES, MAX_BODY_BYTES, STREAM_CHUNK_BYTES};
use crate::store::Store;
use envelope::Shape;
use identity::Headers;
use pool::{Permits, Receivers};
use routes::{Family, Resolved};
use serde_json::{Map, Value};
use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How to serve.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: String,
    /// Requests worked on at once (decoding, store, rendering); socket I/O does not count.
    pub threads: usize,
    pub language: Lang,
    /// How long one socket read or write may block (`limits::READ_TIMEOUT_SECS`).
    pub read_timeout: Duration,
    /// How long a whole request body may take to arrive (`limits::BODY_TIMEOUT_SECS`).
    pub body_timeout: Duration,
    /// How long a `resource_watch` waits for an event (`limits::WATCH_TIMEOUT_SECS`).
    pub watch_timeout: Duration,
    /// `serve --admin`: the test-double routes (`admin.rs`), resetting to this seed.
    pub admin: Option<crate::seed::Seed>,
    /// Connections open at once (`limits::DEFAULT_MAX_CONNECTIONS`).
    pub max_connections: usize,
    /// How long a request head may take (`limits::HEAD_TIMEOUT_SECS`).
    pub head_timeout: Duration,
    /// Bytes of request bodies in flight, parsing included (`limits::DEFAULT_BODY_MEMORY_MIB`).
    pub max_body_memory: usize,
    /// Serve the benchmark's floor instead of the API (`serve --floor`, see [`floor_reply`]).
    pub floor: Option<Arc<crate::store::floor::Shape>>,
    /// Starting, ready or stopping (`/readyz`); bk-cmdb's routes answer 503 until ready.
    pub health: Arc<ops::Health>,
    /// `--auth` and `--jwt-public-key` (see `auth.rs`); the default checks nothing.
    pub gate: auth::Gate,
}

/// A bound listening socket: `serve` binds before it opens the store, so a port in use leaves
/// nothing created on disk.
pub struct Bound {
    listener: std::net::TcpListener,
    listen: String,
}

/// Binds `config.listen` with the timeouts and options every connection inherits.
pub fn bind(config: &Config) -> Result<Bound, String> {
    let listener = std::net::TcpListener::bind(&config.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    inherit_timeouts(&listener, config.read_timeout)
        .map_err(|e| format!("cannot set socket timeouts: {e}"))?;
    conn_limit::check_open_files(config.max_connections)?;
    Ok(Bound {
        listener,
        listen: config.listen.clone(),
    })
}

/// A running server.
pub struct Server {
    http: Arc<tiny_http::Server>,
    receivers: Receivers<tiny_http::Request>,
    addr: SocketAddr,
    /// A second descriptor of the listening socket (tiny_http owns the first), to stop
    /// accepting with.
    listener: std::net::TcpListener,
    store: Arc<Store>,
}

/// What every request's thread shares.
struct Shared {
    store: Arc<Store>,
    lang: Lang,
    permits: Permits,
    body_timeout: Duration,
    watch_timeout: Duration,
    /// The state of the admin routes, with `--admin` only.
    admin: Option<admin::Admin>,
    budget: budget::Budget,
    log: Arc<conn_limit::Throttled>,
    floor: Option<Arc<crate::store::floor::Shape>>,
    health: Arc<ops::Health>,
    threads: usize,
    gate: auth::Gate,
}

impl Server {
    /// Binds `config.listen` and starts the threads.
    pub fn start(store: Arc<Store>, config: &Config) -> Result<Server, String> {
        Server::start_on(bind(config)?, store, config)
    }

    /// Starts the threads on a socket bound by [`bind`].
    pub fn start_on(bound: Bound, store: Arc<Store>, config: &Config) -> Result<Server, String> {
        let Bound { listener, listen } = bound;
        tiny_http::set_server_name(SERVER.clone());
        let own = listener
            .try_clone()
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let log = conn_limit::event_log();
        let options = conn_limit::options(
            config.max_connections,
            config.head_timeout,
            config.language,
            Arc::clone(&log),
        );
        let http = tiny_http::Server::from_listener_with(listener, None, options)
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let addr = http
            .server_addr()
            .to_ip()
            .ok_or_else(|| "listener has no IP address".to_string())?;
        let http = Arc::new(http);
        let shared = Shared {
            store: Arc::clone(&store),
            lang: config.language,
            permits: Permits::new(config.threads),
            body_timeout: config.body_timeout,
            watch_timeout: config.watch_timeout,
            admin: config.admin.clone().map(admin::Admin::new),
            budget: budget::Budget::new(config.max_body_memory),
            log: Arc::clone(&log),
            floor: config.floor.clone(),
            health: Arc::clone(&config.health),
            threads: config.threads,
            gate: config.gate.clone(),
        };
        let from = Arc::clone(&http);
        // One thread per request in progress, and a connection has at most one at a time.
        let receivers = Receivers::start(
            config.threads,
            config.max_connections.max(1) + config.threads,
            log,
            move || from.recv().ok(),
            move |req| serve(&shared, req),
        )?;
        Ok(Server {
            http,
            receivers,
            addr,
            listener: own,
            store,
        })
    }

    /// The bound address (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Blocks until every thread has stopped.
    pub fn join(self) {
        self.receivers.join();
    }

    /// Graceful stop: stops accepting connections, lets the threads answer every request they
    /// have taken or that is already queued, and waits for them for at most `grace`. Requests
    /// that arrive later (on connections already open) are not taken: they get no answer, so
    /// nothing unanswered was acknowledged. Returns the number of threads still busy when
    /// `grace` ran out (0 when every one finished).
    pub fn shutdown(self, grace: Duration) -> usize {
        stop_listening(&self.listener);
        // Waiting watches answer now (nothing new) instead of holding their threads.
        self.store.bell().stop();
        self.receivers.stop(|| self.http.unblock(), grace)
    }
}

/// Stops a listening socket from accepting: on Linux, `shutdown(SHUT_RD)` on a listening socket
/// takes it out of the listening state (new connections are refused) and wakes the blocked
/// `accept` with an error, on which tiny_http's accept thread ends and closes the socket.
fn stop_listening(listener: &std::net::TcpListener) {
    use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
    // SAFETY: the descriptor stays owned by `listener`: the temporary `TcpStream` is only used
    // for shutdown(2) and is turned back into a raw descriptor, never closed.
    let view = unsafe { std::net::TcpStream::from_raw_fd(listener.as_raw_fd()) };
    let _ = view.shutdown(std::net::Shutdown::Read);
    let _ = view.into_raw_fd();
}

/// Sets read and write timeouts on the listening socket; Linux copies them to every accepted
/// connection, so no connection can hold a tiny_http thread or one of our workers forever with a
/// half-sent request, a stalled body or an unread answer. A timed-out read surfaces as
/// `WouldBlock`, on which tiny_http closes the connection without an answer.
///
/// It also sets `TCP_NODELAY`, inherited the same way: tiny_http writes an answer in pieces
/// (1 KiB buffer, 8 KiB chunks), and with Nagle's algorithm every piece after the first waited
/// for the client's delayed acknowledgement, up to 40 ms per answer larger than one piece
/// (`cmdb-lite bench`: list p99 45-55 ms before, see README "Benchmark").
fn inherit_timeouts(listener: &std::net::TcpListener, timeout: Duration) -> std::io::Result<()> {
    use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
    // SAFETY: the descriptor stays owned by `listener`: the temporary `TcpStream` is only used to
    // call setsockopt(SO_RCVTIMEO/SO_SNDTIMEO/TCP_NODELAY) and is turned back into a raw
    // descriptor, never closed.
    let view = unsafe { std::net::TcpStream::from_raw_fd(listener.as_raw_fd()) };
    let result = view
        .set_read_timeout(Some(timeout))
        .and_then(|()| view.set_write_timeout(Some(timeout)))
        .and_then(|()| view.set_nodelay(true));
    let _ = view.into_raw_fd();
    result
}

/// One answer: status, body, and its headers: `None` for the usual (`Content-Type:
/// application/json` and `X-Request-Id`), or exactly these (the refusals of `auth.rs`, and
/// `with_header`'s). `Connection: close` closes the connection after the answer.
/// Status 0: drop the connection without an answer (a fault of `/_cmdb/faults`).
struct Reply {
    status: u16,
    body: String,
    headers: Option<Vec<(&'static str, String)>>,
}

/// The code an answer carries (for the journal): the first `"bk_error_code"` or `"code"` of
/// its head, where every envelope (ours, and the ESB's and gateway's refusals) puts it; 0 if
/// none.
fn reply_code(body: &str) -> i64 {
    let head = &body.as_bytes()[..body.len().min(256)];
    let head = String::from_utf8_lossy(head);
    ["\"bk_error_code\":", "\"code\":"]
        .iter()
        .filter_map(|key| head.find(key).map(|at| at + key.len()))
        .min()
        .and_then(|at| {
            let digits: String = head[at..]
                .trim_start()
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '-')
                .collect();
            digits.parse().ok()
        })
        .unwrap_or(0)
}

fn family_name(f: Family) -> &'static str {
    match f {
        Family::Native => "native",
        Family::Gateway => "gateway",
        Family::Esb => "esb",
    }
}

/// What the journal notes of a call besides its answer.
#[derive(Default)]
struct Trace {
    operation: Option<&'static str>,
    /// The body's first `JOURNAL_MAX_BODY_BYTES` (with `--admin` only) and its length.
    body: Vec<u8>,
    body_len: usize,
    fault: bool,
    /// A list answer to stream (`stream.rs`): the reply's body is then the envelope up to
    /// `"data":`, and `data` follows from this.
    streamed: Option<api::streamed::Streamed>,
}

impl Reply {
    /// The reply with one more header (after the usual ones).
    fn with_header(mut self, rid: &str, name: &'static str, value: &str) -> Reply {
        let headers = self.headers.get_or_insert_with(|| {
            vec![
                ("Content-Type", "application/json".to_string()),
                ("X-Request-Id", rid.to_string()),
            ]
        });
        headers.push((name, value.to_string()));
        self
    }
}

fn shape_for(family: Family, headers: &Headers) -> Shape {
    match family {
        Family::Native if headers.first(&["X-Bkapi-JWT"]).is_some() => Shape::Gateway,
        Family::Native => Shape::Native,
        Family::Gateway => Shape::Gateway,
        Family::Esb => Shape::Esb,
    }
}

fn error_reply(status: u16, shape: Shape, e: &CcError, lang: Lang, rid: &str) -> Reply {
    Reply {
        status,
        body: envelope::render(shape, false, e.code, &e.render(lang), "null", rid),
        headers: None,
    }
}

/// One request, on its own thread of [`pool::Receivers`]: socket I/O happens here without a
/// permit; only `api::call` holds one.
fn serve(shared: &Shared, mut req: tiny_http::Request) {
    let started = Instant::now();
    let headers = Headers(
        req.headers()
            .iter()
            .map(|h| {
                (
                    h.field.as_str().as_str().to_string(),
                    h.value.as_str().to_string(),
                )
            })
            .chain(req.non_ascii_headers().iter().cloned())
            .collect(),
    );
    let rid = identity::request_id(&headers);
    let lang = identity::language(&headers, shared.lang);
    let deadline = started + shared.body_timeout;
    let url = req.url().to_string();
    let method = req.method().as_str().to_ascii_uppercase();
    let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
    if let Some(route) = ops::resolve(path) {
        let at = (method.as_str(), path, started);
        return serve_ops(shared, route, req, &rid, &headers, at);
    }
    let mut streamed = None;
    let reply = match (&shared.floor, &shared.admin) {
        (Some(shape), _) => floor_reply(shared, shape, &rid, &mut req, deadline),
        (None, Some(a)) if admin::is_admin_path(path) => {
            let reader = req.as_reader();
            admin::handle(a, &shared.store, &method, path, query, reader, deadline)
        }
        _ if !shared.health.serving() => starting_reply(&method, path, &headers, lang, &rid),
        _ => {
            let mut trace = Trace::default();
            let reply = handle(shared, lang, &headers, &rid, &mut req, deadline, &mut trace);
            if let Some(a) = &shared.admin {
                let body = &trace.body;
                let mut entry = crate::journal::Entry::new(
                    crate::clock::format_ms(crate::clock::now_ms()),
                    &rid,
                    family_name(routes::family_of(path)),
                    trace.operation,
                    &method,
                    &url,
                    body,
                    reply.status,
                    reply_code(&reply.body),
                    trace.fault,
                );
                entry.truncated |= trace.body_len > body.len();
                a.journal.push(entry);
            }
            if reply.status == 0 {
                req.drop_connection();
                return;
            }
            streamed = trace.streamed.take();
            reply
        }
    };
    let (mut result, mut code) = outcome_of(reply.status, &reply.body);
    let mut status = reply.status;
    let mut body = reply.body;
    let mut out_headers = reply.headers.unwrap_or_else(|| {
        vec![
            ("Content-Type", "application/json".to_string()),
            ("X-Request-Id", rid.clone()),
        ]
    });
    out_headers.push(("Server", SERVER.clone()));
    let mut stream = streamed.map(|s| stream::Body::new(body.clone(), s, &shared.permits, &rid));
    if let Some(s) = &mut stream {
        // An answer that ends within the first buffer goes whole, with its `Content-Length`
        // (as every answer did); a failure before any byte is sent is an error envelope.
        match s.fill(STREAM_CHUNK_BYTES) {
            Ok(true) => {
                body = stream
                    .take()
                    .and_then(stream::Body::whole)
                    .unwrap_or_default()
            }
            Ok(false) => {}
            Err(e) => {
                stream = None;
                let shape = shape_for(routes::family_of(path), &headers);
                let refused = error_reply(200, shape, &e, lang, &rid);
                (result, code) = outcome_of(refused.status, &refused.body);
                status = refused.status;
                body = refused.body;
            }
        }
    }
    let mut bytes = body.len() as u64;
    let (answered, sent) = match stream {
        Some(s) => {
            let sent = s.counter();
            let resp = tiny_http::Response::new(status.into(), Vec::new(), s, None, None);
            (req.respond(with_headers(resp, &out_headers)), Some(sent))
        }
        None => {
            let resp = tiny_http::Response::from_string(body).with_status_code(status);
            (req.respond(with_headers(resp, &out_headers)), None)
        }
    };
    if let Some(sent) = sent {
        bytes = sent.get();
        if answered.is_err() {
            result = false;
            code = code::DB_SELECT;
        }
    }
    let (op, family) = match routes::resolve(&method, path) {
        Resolved::Found { route, family, .. } => (route.esb_name, family_name(family)),
        Resolved::WrongMethod(f) | Resolved::NotFound(f) => ("none", family_name(f)),
    };
    record(&Answered {
        rid: &rid,
        method: &method,
        path,
        op,
        family,
        status,
        result,
        code,
        started,
        bytes,
    });
}

/// `resp` with `headers`; `Connection: close` closes the connection after the answer.
fn with_headers<R: Read>(
    mut resp: tiny_http::Response<R>,
    headers: &[(&'static str, String)],
) -> tiny_http::Response<R> {
    for (k, v) in headers {
        if k.eq_ignore_ascii_case("Connection") && v.eq_ignore_ascii_case("close") {
            // tiny_http drops a `Connection` header; this closes the connection after the answer.
            resp = resp.with_connection_close();
        } else if let Ok(h) = tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()) {
            resp.add_header(h);
        }
    }
    resp
}

/// `cmdb-lite/<version>`, the `Server` header of every answer.
static SERVER: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("cmdb-lite/{}", ops::VERSION));

/// `result` and the code of an answer: bk-cmdb's code from the envelope (whose first two keys
/// `envelope::render` always writes as `"result":…,"<code key>":<code>`), else the status.
fn outcome_of(status: u16, body: &str) -> (bool, i64) {
    let result = body.starts_with("{\"result\":true");
    let head = &body.as_bytes()[..body.len().min(64)];
    let code = head
        .windows(6)
        .position(|w| w == b"code\":")
        .and_then(|at| {
            let digits: String = head[at + 6..]
                .iter()
                .take_while(|b| b.is_ascii_digit() || **b == b'-')
                .map(|b| char::from(*b))
                .collect();
            digits.parse::<i64>().ok()
        })
        .unwrap_or(i64::from(status));
    (result, code)
}

/// What one answered request leaves in the access log and the metrics.
struct Answered<'a> {
    rid: &'a str,
    method: &'a str,
    path: &'a str,
    op: &'static str,
    family: &'static str,
    status: u16,
    result: bool,
    code: i64,
    started: Instant,
    bytes: u64,
}

fn record(a: &Answered<'_>) {
    let elapsed = a.started.elapsed();
    let outcome = if a.status != 200 {
        crate::metrics::Outcome::Transport(a.status)
    } else if a.result {
        crate::metrics::Outcome::Success
    } else {
        crate::metrics::Outcome::Business(a.code)
    };
    crate::metrics::request(a.op, a.family, outcome, elapsed.as_secs_f64());
    crate::log::access(&crate::log::Access {
        request_id: a.rid,
        method: a.method,
        path: a.path,
        operation: a.op,
        status: a.status,
        result: a.result,
        code: a.code,
        micros: elapsed.as_micros(),
        bytes: a.bytes,
    });
}

/// bk-cmdb's routes before the store is open and seeded: HTTP 503 in the family's envelope.
fn starting_reply(method: &str, path: &str, headers: &Headers, lang: Lang, rid: &str) -> Reply {
    let family = match routes::resolve(method, path) {
        Resolved::Found { family, .. } => family,
        Resolved::WrongMethod(f) | Resolved::NotFound(f) => f,
    };
    let e = CcError::raw(
        code::UNKNOWN,
        "cmdb-lite is starting: the store is not ready yet".to_string(),
    );
    error_reply(503, shape_for(family, headers), &e, lang, rid)
}

/// An operators' route (`ops.rs`), on the request's own thread, without a worker permit.
fn serve_ops(
    shared: &Shared,
    route: ops::Route,
    req: tiny_http::Request,
    rid: &str,
    headers: &Headers,
    (method, path, started): (&str, &str, Instant),
) {
    let header = |k: &str, v: &str| tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).ok();
    let common = |ctype: &str| {
        [
            header("Content-Type", ctype),
            header("X-Request-Id", rid),
            header("Server", SERVER.as_str()),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
    };
    let mut answered = Answered {
        rid,
        method,
        path,
        op: route.name(),
        family: "ops",
        status: 200,
        result: true,
        code: 0,
        started,
        bytes: 0,
    };
    let plain = |status: u16, body: String, ctype: &str| {
        let mut resp = tiny_http::Response::from_string(body).with_status_code(status);
        for h in common(ctype) {
            resp.add_header(h);
        }
        resp
    };
    if method != "GET" && method != "HEAD" {
        let body =
            serde_json::json!({"error": format!("method {method} is not allowed on {path}")})
                .to_string();
        answered.status = 405;
        answered.result = false;
        answered.code = 405;
        answered.bytes = body.len() as u64;
        let _ = req.respond(plain(405, body, "application/json"));
        return record(&answered);
    }
    let (status, body, ctype) = match route {
        ops::Route::Healthz | ops::Route::Readyz => {
            let (status, body) = ops::health_answer(route, &shared.health, &shared.store);
            (status, body, "application/json")
        }
        ops::Route::Metrics => (
            200,
            ops::metrics_answer(&shared.health, &shared.store, shared.threads),
            "text/plain; version=0.0.4; charset=utf-8",
        ),
        ops::Route::Export => {
            // The whole store: under `--auth`, only for an app of the auth file (or a valid
            // gateway JWT), checked and refused as on the native routes.
            if let Err(refused) = auth::native(&shared.gate, headers) {
                answered.status = refused.status;
                answered.result = false;
                answered.code = outcome_of(refused.status, &refused.body).1;
                answered.bytes = refused.body.len() as u64;
                let mut resp =
                    tiny_http::Response::from_string(refused.body).with_status_code(refused.status);
                let extra = refused
                    .headers
                    .unwrap_or_else(|| vec![("Content-Type", "application/json".to_string())]);
                for h in extra
                    .iter()
                    .filter_map(|(k, v)| header(k, v))
                    .chain(header("Server", SERVER.as_str()))
                {
                    resp.add_header(h);
                }
                let _ = req.respond(resp);
                return record(&answered);
            }
            let slot = if shared.health.serving() {
                ops::ExportSlot::take()
            } else {
                None
            };
            let start = |slot| {
                ops::Export::start(Arc::clone(&shared.store), Arc::clone(&shared.health), slot)
            };
            match slot.map(start) {
                Some(Ok((reader, export))) => {
                    let sent = reader.counter();
                    let mut headers = common("application/json");
                    headers.extend(header(
                        "Content-Disposition",
                        "attachment; filename=\"cmdb-lite-export.json\"",
                    ));
                    let resp = tiny_http::Response::new(
                        tiny_http::StatusCode(200),
                        headers,
                        reader,
                        None,
                        None,
                    );
                    let _ = req.respond(resp);
                    answered.bytes = sent.load(std::sync::atomic::Ordering::Relaxed);
                    if let Err(e) = export.finish() {
                        crate::log!(warn, "cmdb-lite: {rid}: the export stopped early: {e}");
                        answered.result = false;
                        answered.code = code::DB_SELECT;
                    }
                    return record(&answered);
                }
                Some(Err(e)) => (
                    503,
                    serde_json::json!({ "error": e }).to_string(),
                    "application/json",
                ),
                None => (
                    503,
                    serde_json::json!({
                        "error": "not ready, or too many exports running; try again later"
                    })
                    .to_string(),
                    "application/json",
                ),
            }
        }
    };
    answered.status = status;
    answered.result = status == 200;
    answered.code = if status == 200 { 0 } else { i64::from(status) };
    answered.bytes = body.len() as u64;
    let _ = req.respond(plain(status, body, ctype));
    record(&answered);
}

/// The benchmark's floor (`serve --floor`): `POST /floor/group/{n}/{si}/{prefix}` writes `n`
/// records of a process create's shape into service instance `si`, named `{prefix}-0` to
/// `{prefix}-{n-1}` (the keys of the create it is compared with), as one job of the group
/// commit; `POST /floor/alone/{n}/{si}/{prefix}` in a transaction of its own with its own
/// sync. Either way the body is read as the API reads it (and not parsed), and the answer is a
/// native success envelope with the new ids.
fn floor_reply(
    shared: &Shared,
    shape: &Arc<crate::store::floor::Shape>,
    rid: &str,
    req: &mut tiny_http::Request,
    deadline: Instant,
) -> Reply {
    let url = req.url().to_string();
    let Some(FloorCall {
        alone,
        n,
        si,
        prefix,
    }) = FloorCall::parse(&url)
    else {
        let e = CcError::raw(code::UNKNOWN, format!("no floor at {url}"));
        return error_reply(404, Shape::Native, &e, Lang::En, rid);
    };
    // The benchmark's floor (`serve --floor`) takes small bodies outside the memory budget.
    let known = req.body_length();
    if let Err(e) = read_body(req.as_reader(), deadline, known, |_| Ok(())) {
        let e = CcError::raw(code::HTTP_READ_BODY, format!("{e:?}"));
        return error_reply(200, Shape::Native, &e, Lang::En, rid);
    }
    let _permit = shared.permits.acquire();
    let result = if alone {
        shared
            .store
            .write_alone(|tx| crate::store::floor::insert(tx, shape, si, &prefix, n))
    } else {
        let shape = Arc::clone(shape);
        shared
            .store
            .write(move |tx| crate::store::floor::insert(tx, &shape, si, &prefix, n))
    };
    match result {
        Ok(ids) => Reply {
            status: 200,
            headers: None,
            body: envelope::render(
                Shape::Native,
                true,
                0,
                "success",
                &serde_json::to_string(&ids).unwrap_or_default(),
                rid,
            ),
        },
        Err(e) => error_reply(200, Shape::Native, &e.into(), Lang::En, rid),
    }
}

/// A floor request's path: `/floor/{group|alone}/{n}/{si}/{prefix}`, `n` within the create's
/// limit, `si` positive, the prefix of at most 64 letters, digits, `-` and `_`.
#[derive(Debug, PartialEq)]
struct FloorCall {
    alone: bool,
    n: usize,
    si: i64,
    prefix: String,
}

impl FloorCall {
    fn parse(url: &str) -> Option<FloorCall> {
        let mut parts = url.strip_prefix("/floor/")?.split('/');
        let alone = match parts.next()? {
            "group" => false,
            "alone" => true,
            _ => return None,
        };
        let n = parts.next()?.parse::<usize>().ok()?;
        let si = parts.next()?.parse::<i64>().ok()?;
        let prefix = parts.next()?;
        let fine = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        let ok = (1..=crate::limits::MAX_PROCESSES_PER_REQUEST).contains(&n)
            && si > 0
            && (1..=64).contains(&prefix.len())
            && prefix.chars().all(fine)
            && parts.next().is_none();
        ok.then(|| FloorCall {
            alone,
            n,
            si,
            prefix: prefix.to_string(),
        })
    }
}

fn handle(
    shared: &Shared,
    lang: Lang,
    headers: &Headers,
    rid: &str,
    req: &mut tiny_http::Request,
    deadline: Instant,
    trace: &mut Trace,
) -> Reply {
    let method = req.method().as_str().to_ascii_uppercase();
    let url = req.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
    let (route, family, path_id, params) = match routes::resolve(&method, path) {
        Resolved::Found {
            route,
            family,
            path_id,
            params,
        } => (route, family, path_id, params),
        Resolved::WrongMethod(f) => {
            let e = CcError::raw(
                code::UNKNOWN,
                format!("method {method} is not allowed on {path}"),
            );
            return unread_if_chunked(
                headers,
                rid,
                error_reply(405, shape_for(f, headers), &e, lang, rid),
            );
        }
        Resolved::NotFound(f) => {
            let e = CcError::raw(code::UNKNOWN, format!("no API at {method} {path}"));
            return unread_if_chunked(
                headers,
                rid,
                error_reply(404, shape_for(f, headers), &e, lang, rid),
            );
        }
    };
    let shape = shape_for(family, headers);
    trace.operation = Some(route.esb_name);
    let too_large = || {
        let e = CcError::raw(
            code::HTTP_READ_BODY,
            format!("request body exceeds {MAX_BODY_BYTES} bytes"),
        );
        unread(rid, error_reply(413, shape, &e, lang, rid))
    };
    if req.body_length().is_some_and(|n| n > MAX_BODY_BYTES) {
        return too_large();
    }
    // The body's bytes, then its parse, are held from the memory budget until the answer.
    let until = Instant::now() + budget::wait();
    let mut held = shared.budget.none();
    let over_budget = |r: budget::Refused| match r {
        budget::Refused::Never => {
            let total = shared.budget.total();
            let e = CcError::raw(
                code::HTTP_READ_BODY,
                format!("request body needs more than {total} bytes of memory (--max-body-memory)"),
            );
            error_reply(413, shape, &e, lang, rid)
        }
        budget::Refused::Busy => {
            shared.log.log(
                "refused a request (503): request bodies in flight fill the memory budget",
                &format!(" (--max-body-memory {} MiB)", shared.budget.total() >> 20),
            );
            let e = CcError::raw(
                code::UNKNOWN,
                "503 Service Unavailable: request bodies in flight fill the memory budget, retry later",
            );
            error_reply(503, shape, &e, lang, rid).with_header(rid, "Retry-After", "1")
        }
    };
    if let Some(n) = req.body_length()
        && let Err(r) = held.grow(n, until)
    {
        // Read and thrown away (no memory kept), so that the client, which may be sending it
        // before it reads, gets the answer and keeps its connection.
        let drained = discard_body(req.as_reader(), deadline);
        let reply = over_budget(r);
        return if drained { reply } else { unread(rid, reply) };
    }
    let known = req.body_length();
    let raw = match read_body(req.as_reader(), deadline, known, |n| held.grow(n, until)) {
        Ok(raw) => raw,
        Err(BodyError::Memory(r)) => {
            let drained = discard_body(req.as_reader(), deadline);
            let reply = over_budget(r);
            return if drained { reply } else { unread(rid, reply) };
        }
        Err(BodyError::TooLarge) => return too_large(),
        Err(BodyError::TimedOut) => {
            crate::log!("cmdb-lite: {rid}: the body did not arrive in time");
            let e = CcError::plain(code::HTTP_READ_BODY);
            return unread(rid, error_reply(408, shape, &e, lang, rid));
        }
        Err(BodyError::Failed(e)) => {
            crate::log!("cmdb-lite: {rid}: reading the body failed: {e}");
            let e = CcError::plain(code::HTTP_READ_BODY);
            return unread(rid, error_reply(200, shape, &e, lang, rid));
        }
    };
    if let Some(admin) = &shared.admin {
        trace.body_len = raw.len();
        trace.body = raw[..raw.len().min(crate::limits::JOURNAL_MAX_BODY_BYTES)].to_vec();
        if let Some(action) = admin.faults.take(route.esb_name) {
            trace.fault = true;
            if action.delay_ms > 0 {
                std::thread::sleep(Duration::from_millis(action.delay_ms));
            }
            if action.drop {
                return Reply {
                    status: 0,
                    body: String::new(),
                    headers: None,
                };
            }
            if let Some((status, code, message)) = action.answer {
                let e = match message {
                    Some(m) => CcError::raw(code, m),
                    None => CcError::plain(code),
                };
                return error_reply(status, shape, &e, lang, rid);
            }
        }
    }

    // Native routes: the JWT and the app (`auth.rs`), then both identity headers, checked
    // before the body is parsed (HTTP 500).
    let native_identity = if family == Family::Native {
        let jwt_user = match auth::native(&shared.gate, headers) {
            Ok(user) => user,
            Err(reply) => return reply,
        };
        let Some(supplier) = headers.first(identity::SUPPLIER) else {
            let e = CcError::with(code::NOT_AUTH_ITEM, "owner_id");
            return error_reply(500, Shape::Native, &e, lang, rid);
        };
        let Some(user) = jwt_user.or_else(|| headers.first(identity::USER).map(String::from))
        else {
            let e = CcError::with(code::NOT_AUTH_ITEM, "user");
            return error_reply(500, Shape::Native, &e, lang, rid);
        };
        Some((user, supplier.to_string()))
    } else {
        None
    };

    if let Err(r) = held.grow(budget::parse_cost(&raw), until) {
        return over_budget(r);
    }
    let mut body = parse_body(&raw);
    drop(raw);
    if family == Family::Esb && (method == "GET" || route.esb_method == "GET") && !query.is_empty()
    {
        body = body.map(|b| merge_query(b, query));
    }
    let (user, supplier) = match native_identity {
        Some(pair) => pair,
        None => {
            // The ESB's or the gateway's checks (`auth.rs`); a user they vouch for wins.
            let vouched = match family {
                Family::Esb => auth::esb(&shared.gate, headers, body.as_ref().ok(), query),
                _ => auth::gateway(&shared.gate, headers),
            };
            let vouched = match vouched {
                Ok(user) => user,
                Err(reply) => return reply,
            };
            let from_body = body.as_ref().ok().and_then(identity::body_user);
            let user = vouched
                .or_else(|| identity::gateway_user(headers))
                .or(from_body)
                .or_else(|| headers.first(identity::USER).map(String::from))
                .unwrap_or_else(|| "admin".to_string());
            let supplier = headers.first(identity::SUPPLIER).unwrap_or("0").to_string();
            (user, supplier)
        }
    };
    let ctx = Ctx {
        user,
        supplier,
        lang,
        rid: rid.to_string(),
        now_ms: crate::clock::now_ms(),
    };
    let watch = route.op == api::Op::ResourceWatch;
    // tiny_http sends a body of unknown length chunked, except to an HTTP/1.0 client or one
    // that asks for another transfer coding (`TE`), for which it would buffer it whole.
    let streams = *req.http_version() >= (1, 1) && headers.first(&["TE"]).is_none();
    if let Ok(body) = &body {
        let asker = auth::Asker {
            family,
            shape,
            user: &ctx.user,
            lang,
            rid,
        };
        // A business in the path (the topology writes) is the one the action is checked on.
        let path_biz = params.iter().find(|(n, _)| *n == "bk_biz_id");
        let with_path_biz = match (path_biz, body) {
            (Some((_, biz)), Value::Object(m)) if !m.contains_key("bk_biz_id") => {
                let mut m = m.clone();
                m.insert("bk_biz_id".into(), Value::String(biz.clone()));
                Some(Value::Object(m))
            }
            (Some((_, biz)), Value::Null) => Some(serde_json::json!({ "bk_biz_id": biz })),
            _ => None,
        };
        let body = with_path_biz.as_ref().unwrap_or(body);
        if let Err(reply) = auth::permit(&shared.gate, &shared.store, route.op, body, &asker) {
            return reply;
        }
    }
    let result = body.and_then(|body| {
        let input = Input {
            body,
            path_id,
            params,
            query: query.to_string(),
        };
        if watch {
            // A watch takes a permit only to read the log, never while it waits.
            let gate = |f: &mut dyn FnMut()| {
                let _permit = shared.permits.acquire();
                f();
            };
            return std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                api::watch::serve(&ctx, &shared.store, &input, shared.watch_timeout, &gate)
            }))
            .unwrap_or_else(|_| {
                crate::log!("cmdb-lite: {rid}: handler panicked");
                Err(CcError::with(code::INTERNAL, "proc"))
            });
        }
        let _permit = shared.permits.acquire();
        let _in_use = crate::metrics::PermitInUse::new();
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if streams {
                match api::streamed::call(route.op, &ctx, &shared.store, &input) {
                    Some(Ok(s)) => {
                        trace.streamed = Some(s);
                        return Ok(api::Data::null());
                    }
                    Some(Err(e)) => return Err(e),
                    None => {}
                }
            }
            api::call(route.op, &ctx, &shared.store, input)
        }))
        .unwrap_or_else(|_| {
            crate::log!("cmdb-lite: {rid}: handler panicked");
            Err(CcError::with(code::INTERNAL, "proc"))
        })
    });
    match result {
        Ok(_) if trace.streamed.is_some() => Reply {
            status: 200,
            body: envelope::head(shape, true, 0, "success", "null", rid),
            headers: None,
        },
        Ok(data) if watch && shape == Shape::Native => Reply {
            status: 200,
            body: envelope::render_event_success(&data.0),
            headers: None,
        },
        Ok(data) => Reply {
            status: 200,
            body: envelope::render(shape, true, 0, "success", &data.0, rid),
            headers: None,
        },
        Err(e) => error_reply(200, shape, &e, lang, rid),
    }
}

/// A reply sent before the request's body was read to its end: the next request on this
/// connection could not be found, so the connection closes after the answer.
fn unread(rid: &str, reply: Reply) -> Reply {
    match reply.headers {
        Some(_) => {
            let mut reply = reply;
            if let Some(h) = reply.headers.as_mut() {
                h.push(("Connection", "close".to_string()));
            }
            reply
        }
        None => reply.with_header(rid, "Connection", "close"),
    }
}

/// A reply that leaves the body unread: a body of known length is drained by tiny_http (up to
/// a bound, beyond which it closes the connection), a chunked one is not.
fn unread_if_chunked(headers: &Headers, rid: &str, reply: Reply) -> Reply {
    if headers.first(&["Transfer-Encoding"]).is_some() {
        unread(rid, reply)
    } else {
        reply
    }
}

#[derive(Debug)]
enum BodyError {
    /// More than `MAX_BODY_BYTES`.
    TooLarge,
    /// A read waited longer than the read timeout, or the deadline passed.
    TimedOut,
    /// The memory budget refused the bytes read.
    Memory(budget::Refused),
    Failed(std::io::Error),
}

/// Reads a whole body of at most `MAX_BODY_BYTES`, giving up once `deadline` has passed. Each
/// read waits at most the socket's read timeout, so this returns by `deadline` plus that.
/// `known` is the body's declared length, already held from the budget; otherwise (chunked)
/// `hold` is asked for the buffer's room, 1 MiB at a time, before it grows.
fn read_body(
    r: &mut dyn Read,
    deadline: Instant,
    known: Option<usize>,
    mut hold: impl FnMut(usize) -> Result<(), budget::Refused>,
) -> Result<Vec<u8>, BodyError> {
    const STEP: usize = 1 << 20;
    let mut raw = Vec::with_capacity(known.unwrap_or(0));
    let mut buf = vec![0u8; BODY_READ_CHUNK_BYTES];
    loop {
        if Instant::now() > deadline {
            return Err(BodyError::TimedOut);
        }
        match r.read(&mut buf) {
            Ok(0) => return Ok(raw),
            Ok(n) if raw.len() + n > MAX_BODY_BYTES => return Err(BodyError::TooLarge),
            Ok(n) => {
                if raw.capacity() < raw.len() + n {
                    let more = STEP.max(raw.len() + n - raw.capacity());
                    if known.is_none() {
                        hold(more).map_err(BodyError::Memory)?;
                    }
                    raw.reserve_exact(raw.capacity() + more - raw.len());
                }
                raw.extend_from_slice(&buf[..n]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(BodyError::TimedOut);
            }
            Err(e) => return Err(BodyError::Failed(e)),
        }
    }
}

/// Reads the rest of a body (at most `MAX_BODY_BYTES`) and throws it away; true if it ended.
fn discard_body(r: &mut dyn Read, deadline: Instant) -> bool {
    let mut buf = vec![0u8; BODY_READ_CHUNK_BYTES];
    let mut seen = 0usize;
    while Instant::now() <= deadline && seen <= MAX_BODY_BYTES {
        match r.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => seen += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    false
}

/// The JSON body: empty (or blank) is `null`; anything not JSON is 1199000. (Public for the
/// randomized tests, which drive request decoding without sockets.)
pub fn parse_body(raw: &[u8]) -> Result<Value, CcError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(raw).map_err(|_| CcError::json())
}

/// Adds query-string parameters to the body object, numbers and booleans coerced.
fn merge_query(body: Value, query: &str) -> Value {
    let mut obj = match body {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (percent_decode(k), percent_decode(v));
        let value = if let Ok(i) = v.parse::<i64>() {
            Value::from(i)
        } else if v == "true" || v == "false" {
            Value::from(v == "true")
        } else {
            Value::from(v)
        };
        obj.entry(k).or_insert(value);
    }
    Value::Object(obj)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_floor_path_names_its_instance_and_names() {
        let call = |alone, n, si, prefix: &str| FloorCall {
            alone,
            n,
            si,
            prefix: prefix.into(),
        };
        assert_eq!(
            FloorCall::parse("/floor/group/1/7/b1r0-3-12"),
            Some(call(false, 1, 7, "b1r0-3-12"))
        );
        assert_eq!(
            FloorCall::parse("/floor/alone/100/2/a_b"),
            Some(call(true, 100, 2, "a_b"))
        );
        let long = format!("/floor/group/1/1/{}", "x".repeat(65));
        for bad in [
            "/floor/group/1",
            "/floor/group/1/7",
            "/floor/group/1/7/",
            "/floor/group/0/7/a",
            "/floor/group/101/7/a",
            "/floor/group/1/0/a",
            "/floor/group/1/-3/a",
            "/floor/group/1/7/a b",
            "/floor/group/1/7/a/b",
            "/floor/other/1/7/a",
            "/api/group/1/7/a",
            long.as_str(),
        ] {
            assert_eq!(FloorCall::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn outcome_is_read_from_every_envelope() {
        for shape in [Shape::Native, Shape::Gateway, Shape::Esb] {
            let ok = envelope::render(shape, true, 0, "success", "[1]", "r");
            assert_eq!(outcome_of(200, &ok), (true, 0));
            let e = envelope::render(shape, false, 1199006, "参数无效", "null", "r");
            assert_eq!(outcome_of(200, &e), (false, 1199006));
        }
        assert_eq!(outcome_of(503, "not json"), (false, 503));
    }

    #[test]
    fn query_coercion() {
        let v = merge_query(Value::Null, "service_template_id=5&name=a%20b&x=true");
        assert_eq!(
            v,
            serde_json::json!({"service_template_id": 5, "name": "a b", "x": true})
        );
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }

    #[test]
    fn json_depth_limit_is_the_named_one() {
        use crate::limits::MAX_JSON_DEPTH;
        let nest = |d: usize| format!("{}{}", "[".repeat(d), "]".repeat(d));
        assert!(parse_body(nest(MAX_JSON_DEPTH).as_bytes()).is_ok());
        let e = parse_body(nest(MAX_JSON_DEPTH + 1).as_bytes()).unwrap_err();
        assert_eq!(e.code, code::JSON_UNMARSHAL);
        assert!(parse_body(nest(10_000).as_bytes()).is_err());
    }
}
