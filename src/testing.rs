//! cmdb-lite inside a Rust test: [`TestServer`] serves bk-cmdb's API on a free loopback port,
//! from a store in memory seeded with a dataset or fixture, with the admin routes on. Reset it
//! between tests, load another dataset, read its address; it stops when dropped.
//!
//! ```
//! use cmdb_lite::testing::TestServer;
//!
//! // The built-in demo dataset: business 7, raw service instance 30, ...
//! let server = TestServer::start().unwrap();
//! let url = server.url(); // "http://127.0.0.1:<port>": give it to the code under test
//! assert!(url.starts_with("http://127.0.0.1:"));
//!
//! let body = r#"{"bk_biz_id":7,"service_instance_id":30,
//!     "processes":[{"process_info":{"bk_process_name":"nginx","bk_func_name":"nginx"}}]}"#;
//! let (status, answer) = server
//!     .call("POST", "/api/c/compapi/v2/cc/create_process_instance/", body)
//!     .unwrap();
//! assert_eq!(status, 200);
//! assert!(answer.contains(r#""data":[42]"#), "{answer}");
//!
//! // Back to the seed: the same create gets the same id again.
//! server.reset().unwrap();
//! let (_, answer) = server
//!     .call("POST", "/api/c/compapi/v2/cc/create_process_instance/", body)
//!     .unwrap();
//! assert!(answer.contains(r#""data":[42]"#), "{answer}");
//! server.stop();
//! ```
//!
//! A lenient fixture gives only what the test cares about (README "Using it in your tests"):
//!
//! ```
//! use cmdb_lite::testing::TestServer;
//!
//! let fixture = r#"{"format": "cmdb-lite/fixture-1",
//!     "businesses": [{"bk_biz_id": 3}],
//!     "hosts": [{"bk_host_id": 5, "bk_host_innerip": "10.0.0.5"}],
//!     "service_instances": [{"id": 9, "bk_host_id": 5,
//!         "processes": [{"bk_process_name": "nginx"}, {"bk_process_name": "redis"}]}]}"#;
//! let server = TestServer::builder().seed_text(fixture).start().unwrap();
//! let (_, answer) = server
//!     .call("POST", "/api/c/compapi/v2/cc/list_process_instance/",
//!           r#"{"bk_biz_id": 3, "service_instance_id": 9}"#)
//!     .unwrap();
//! assert!(answer.contains(r#""bk_process_name":"redis""#), "{answer}");
//! ```

use crate::error::Lang;
use crate::http::{Config, Server};
use crate::limits::{
    BODY_TIMEOUT_SECS, DEFAULT_BODY_MEMORY_MIB, DEFAULT_MAX_CONNECTIONS, HEAD_TIMEOUT_SECS,
    READ_TIMEOUT_SECS,
};
use crate::seed::{self, Seed};
use crate::store::Store;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How long [`TestServer::stop`] waits for requests in progress.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long [`TestServer::call`] waits for an answer.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// How to start a [`TestServer`].
pub struct Builder {
    seed: Seed,
    language: Lang,
    threads: usize,
}

impl Builder {
    /// Seeds the store with a dataset or fixture given as JSON text.
    pub fn seed_text(mut self, json: &str) -> Builder {
        self.seed = Seed::Text(json.to_string());
        self
    }
    /// Seeds the store with a dataset or fixture file (read again at every reset).
    pub fn seed_file(mut self, path: impl Into<PathBuf>) -> Builder {
        self.seed = Seed::File(path.into());
        self
    }
    /// Starts with an empty store.
    pub fn seed_none(mut self) -> Builder {
        self.seed = Seed::Empty;
        self
    }
    /// English messages by default (bk-cmdb's default, and ours, is Chinese).
    pub fn english(mut self) -> Builder {
        self.language = Lang::En;
        self
    }
    /// Starts the server on `127.0.0.1:0`; the error says why it could not.
    pub fn start(self) -> Result<TestServer, String> {
        let store = Arc::new(Store::memory().map_err(|e| e.to_string())?);
        seed::seed(&store, &self.seed).map_err(|e| format!("seed: {e}"))?;
        let config = Config {
            listen: "127.0.0.1:0".into(),
            threads: self.threads,
            language: self.language,
            read_timeout: Duration::from_secs(READ_TIMEOUT_SECS),
            body_timeout: Duration::from_secs(BODY_TIMEOUT_SECS),
            watch_timeout: Duration::from_secs(crate::limits::WATCH_TIMEOUT_SECS),
            admin: Some(self.seed.clone()),
            gate: Default::default(),
            floor: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            head_timeout: Duration::from_secs(HEAD_TIMEOUT_SECS),
            max_body_memory: DEFAULT_BODY_MEMORY_MIB * 1024 * 1024,
            health: {
                let health = crate::http::ops::Health::new();
                health.set_ready();
                Arc::new(health)
            },
        };
        let server = Server::start(Arc::clone(&store), &config)?;
        Ok(TestServer {
            addr: server.addr(),
            server: Some(server),
            store,
            seed: self.seed,
        })
    }
}

/// A running server on a store in memory, with the admin routes on; stopped when dropped.
pub struct TestServer {
    server: Option<Server>,
    store: Arc<Store>,
    addr: SocketAddr,
    seed: Seed,
}

impl TestServer {
    /// The demo dataset, Chinese messages by default.
    pub fn start() -> Result<TestServer, String> {
        TestServer::builder().start()
    }

    pub fn builder() -> Builder {
        Builder {
            seed: Seed::Demo,
            language: Lang::Zh,
            threads: 4,
        }
    }

    /// The bound address (a free port on 127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`: the endpoint to give to the code under test.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Back to the seed, as `POST /_cmdb/reset`; the journal and the faults are cleared too
    /// (through the HTTP route, so the server's own state is reset with the store).
    pub fn reset(&self) -> Result<(), String> {
        self.admin("POST", "/_cmdb/reset", "")
    }

    /// Replaces the store with a dataset or fixture, as `POST /_cmdb/load`: all or nothing.
    pub fn load(&self, json: &str) -> Result<(), String> {
        self.admin("POST", "/_cmdb/load", json)
    }

    fn admin(&self, method: &str, path: &str, body: &str) -> Result<(), String> {
        let (status, answer) = self.call(method, path, body)?;
        if status == 200 {
            Ok(())
        } else {
            Err(format!("{path}: HTTP {status}: {answer}"))
        }
    }

    /// One HTTP/1.1 call on a connection of its own, with the native identity headers
    /// (`X-Bkcmdb-User: admin`, supplier `0`): returns the status and the body. For tests that
    /// have no HTTP client at hand.
    pub fn call(&self, method: &str, path: &str, body: &str) -> Result<(u16, String), String> {
        let fail = |e: std::io::Error| format!("{method} {path}: {e}");
        let mut conn = TcpStream::connect(self.addr).map_err(fail)?;
        conn.set_read_timeout(Some(CALL_TIMEOUT)).map_err(fail)?;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nX-Bkcmdb-User: admin\r\n\
             X-Bkcmdb-Supplier-Account: 0\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.addr,
            body.len()
        );
        conn.write_all(head.as_bytes()).map_err(fail)?;
        conn.write_all(body.as_bytes()).map_err(fail)?;
        let mut raw = Vec::new();
        conn.read_to_end(&mut raw).map_err(fail)?;
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| format!("{method} {path}: no answer"))?;
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("{method} {path}: bad status line"))?;
        Ok((status, body.to_string()))
    }

    /// The seed [`TestServer::reset`] goes back to.
    pub fn seed(&self) -> &Seed {
        &self.seed
    }

    /// Stops the server (as dropping it does).
    pub fn stop(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown(STOP_GRACE);
            let _ = self.store.close();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shut();
    }
}
