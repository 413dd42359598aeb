//! Test harness: starts the real `cmdb-lite` binary on a loopback port and speaks HTTP/1.1 to it
//! with the library's own client over plain TCP (no HTTP crate), so every test sees exactly the
//! bytes a client would.

pub mod lang;

use cmdb_lite::client::Client;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_cmdb-lite");

/// Serialises the tests that must not overlap one another now that every test runs in one
/// process: those that count every thread of a user (`RLIMIT_NPROC`), hold thousands of
/// connections, time a window in which a limit is set on a live server, or load the machine for
/// long. Each holds the guard for its whole run; a test that failed while holding it does not
/// block the others (the poison is ignored).
pub fn serial() -> MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// A temporary folder removed on drop: the library's, named `cmdb-lite-test-<tag>-…`.
pub struct TempDir(cmdb_lite::tempdir::TempDir);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        TempDir(cmdb_lite::tempdir::TempDir::new(&format!("test-{tag}")).unwrap())
    }
}

impl std::ops::Deref for TempDir {
    type Target = cmdb_lite::tempdir::TempDir;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// A running server process, killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: String,
}

impl Server {
    /// `cmdb-lite serve --listen 127.0.0.1:0 --quiet` plus `args` (8 threads unless `args` say
    /// otherwise); waits for the listening line.
    pub fn start(args: &[&str]) -> Server {
        let threads: &[&str] = if args.contains(&"--threads") {
            &[]
        } else {
            &["--threads", "8"]
        };
        // No access log: the child shares the test's stderr. (tests/it/ops.rs reads the log.)
        let quiet: &[&str] = if args.contains(&"--log-format") {
            &[]
        } else {
            &["--quiet"]
        };
        let child = Command::new(BIN)
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(threads)
            .args(quiet)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn cmdb-lite");
        let mut server = Server::adopt(child);
        drop(server.child.stdout.take());
        server
    }

    /// The server `child` is: a `cmdb-lite serve` spawned with a piped stdout, at the address
    /// its first line names (panics on any other first line).
    pub fn adopt(mut child: Child) -> Server {
        let addr = listening_addr(&mut child)
            .unwrap_or_else(|line| panic!("unexpected first line: {line:?}"));
        Server { child, addr }
    }

    /// In memory, with the built-in demo dataset.
    pub fn memory() -> Server {
        Server::start(&["--memory"])
    }

    /// On a database file.
    pub fn file(db: &Path) -> Server {
        Server::start(&["--db", db.to_str().unwrap()])
    }

    /// A request with arbitrary headers and body, on a new connection.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        let mut c = Conn::open(&self.addr);
        c.send(method, path, headers, body)
    }

    /// A native-route POST as user `admin`, supplier `0`, in English.
    pub fn native(&self, path: &str, body: &Value) -> Value {
        self.native_method("POST", path, body)
    }

    pub fn native_method(&self, method: &str, path: &str, body: &Value) -> Value {
        let r = self.request(method, path, &NATIVE_EN, body.to_string().as_bytes());
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    }

    /// The text of the answer to a native POST of `raw` in English, whatever its status (to
    /// compare to the byte).
    pub fn native_text(&self, path: &str, raw: &[u8]) -> String {
        self.request("POST", path, &NATIVE_EN, raw).body
    }

    /// Native POST in Chinese (no language header).
    pub fn native_zh(&self, path: &str, body: &Value) -> Value {
        let r = self.request("POST", path, &NATIVE_ZH, body.to_string().as_bytes());
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    }

    /// An ESB call: POST `/api/c/compapi/v2/cc/<name>/` with `headers` and `body`; the answer
    /// must be HTTP 200.
    #[track_caller]
    pub fn esb(&self, name: &str, headers: &[(&str, &str)], body: &Value) -> Value {
        let r = self.request(
            "POST",
            &format!("/api/c/compapi/v2/cc/{name}/"),
            headers,
            body.to_string().as_bytes(),
        );
        assert_eq!(r.status, 200, "{name}: {}", r.body);
        r.json()
    }

    /// A gateway call in English: `method` on `/api/bk-cmdb/prod<path>`; the answer must be
    /// HTTP 200.
    #[track_caller]
    pub fn gateway(&self, method: &str, path: &str, body: &Value) -> Value {
        let r = self.request(
            method,
            &format!("/api/bk-cmdb/prod{path}"),
            &[("X-Bkcmdb-Language", "en")],
            body.to_string().as_bytes(),
        );
        assert_eq!(r.status, 200, "{method} {path}: {}", r.body);
        r.json()
    }

    pub fn create(&self, body: &Value) -> Value {
        self.native("/api/v3/create/proc/process_instance", body)
    }

    pub fn list(&self, biz: i64, si: i64) -> Value {
        self.native(
            "/api/v3/findmany/proc/process_instance",
            &serde_json::json!({"bk_biz_id": biz, "service_instance_id": si}),
        )
    }

    /// Stops the process gracefully (SIGTERM) and waits up to 30 s for it, so its store is
    /// closed cleanly (the read-only `check` and `export` refuse a crashed file).
    pub fn stop(mut self) {
        send_signal(&self.child, 15);
        if wait_exit(&mut self.child, Duration::from_secs(30)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// Kills the process (SIGKILL) and waits for it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first line `child` (spawned with a piped stdout) writes, without its line end; the pipe
/// stays open.
pub fn first_line(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("a piped stdout"))
        .read_line(&mut line)
        .unwrap();
    line.trim_end().to_string()
}

/// The address `cmdb-lite serve` names in its first line, or `Err` with that line.
pub fn listening_addr(child: &mut Child) -> Result<String, String> {
    let line = first_line(child);
    match line.strip_prefix("cmdb-lite listening on http://") {
        Some(addr) => Ok(addr.to_string()),
        None => Err(line),
    }
}

pub const NATIVE_EN: [(&str, &str); 3] = [
    ("X-Bkcmdb-User", "admin"),
    ("X-Bkcmdb-Supplier-Account", "0"),
    ("X-Bkcmdb-Language", "en"),
];
pub const NATIVE_ZH: [(&str, &str); 2] = [
    ("X-Bkcmdb-User", "admin"),
    ("X-Bkcmdb-Supplier-Account", "0"),
];

/// One HTTP answer.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A keep-alive connection: the library's client ([`cmdb_lite::client::Client`]) with no
/// header of its own, so each request carries `Host`, `Content-Length` and exactly the headers
/// a test gives. A request is written once, on this connection only, whatever happens to it.
pub struct Conn(Client);

impl Conn {
    pub fn open(addr: &str) -> Conn {
        Conn::open_within(addr, Duration::from_secs(30))
    }

    /// A connection whose reads wait up to `read_timeout` (a request that takes long on a
    /// loaded machine, such as a sync of thousands of instances).
    pub fn open_within(addr: &str, read_timeout: Duration) -> Conn {
        Conn(Client::connect_bare(addr, read_timeout).expect("connect"))
    }

    /// Writes raw bytes (for malformed requests).
    pub fn write_raw(&mut self, bytes: &[u8]) {
        self.0.write_raw(bytes).unwrap();
    }

    /// Writes raw bytes; the error if the connection refused them (the server may have
    /// answered and closed it first: its answer can still be read).
    pub fn try_write_raw(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.0.write_raw(bytes)
    }

    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Resp {
        self.0.send_with(method, path, headers, body).unwrap();
        self.read_response().expect("a response")
    }

    /// Reads one response; `None` if the server closed the connection first.
    pub fn read_response(&mut self) -> Option<Resp> {
        let (status, body) = self.0.read_answer().ok()?;
        let body = String::from_utf8(body.to_vec()).unwrap();
        let headers = self
            .0
            .answer_headers()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Some(Resp {
            status,
            headers,
            body,
        })
    }
}

/// Runs `cmdb-lite <args>` to completion: (exit code, stdout, stderr).
pub fn run_cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .expect("run cmdb-lite");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `ProcessProperty`'s fields in bk-cmdb's struct order (`bind_info` last): a process
/// template's properties, as the template and service-instance tests expect them.
pub const FIELDS: [&str; 17] = [
    "proc_num",
    "stop_cmd",
    "restart_cmd",
    "face_stop_cmd",
    "bk_func_name",
    "work_path",
    "priority",
    "reload_cmd",
    "bk_process_name",
    "pid_file",
    "auto_start",
    "bk_start_check_secs",
    "start_cmd",
    "user",
    "timeout",
    "description",
    "bk_start_param_regex",
];

/// The process names of a `list_process_instance` answer, in its order.
#[track_caller]
pub fn process_names(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap_or_else(|| panic!("{list}"))
        .iter()
        .map(|p| {
            p["property"]["bk_process_name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// Process `pid` (its `{property, relation}`) in a `list_process_instance` answer; panics if
/// it is not listed.
#[track_caller]
pub fn listed_process(list: &Value, pid: i64) -> &Value {
    list["data"]
        .as_array()
        .unwrap_or_else(|| panic!("not a listing: {list}"))
        .iter()
        .find(|p| p["property"]["bk_process_id"] == pid && p["relation"]["bk_process_id"] == pid)
        .unwrap_or_else(|| panic!("process {pid} not listed: {list}"))
}

/// The `(bk_host_id, bk_module_id)` of each host-module relation in the array `rels`, in order.
#[track_caller]
pub fn host_module_pairs(rels: &Value) -> Vec<(i64, i64)> {
    rels.as_array()
        .unwrap_or_else(|| panic!("not an array: {rels}"))
        .iter()
        .map(|r| {
            let id = |k: &str| r[k].as_i64().unwrap_or_else(|| panic!("no {k} in {r}"));
            (id("bk_host_id"), id("bk_module_id"))
        })
        .collect()
}

/// The success envelope of the native family.
pub fn ok_native(data: Value) -> Value {
    serde_json::json!({"result": true, "bk_error_code": 0, "bk_error_msg": "success", "permission": null, "data": data})
}

/// The `data` part of a native success answer's text (bk-cmdb's key order), to compare to the
/// byte.
#[track_caller]
pub fn data_text(body: &str) -> &str {
    body.strip_prefix(
        r#"{"result":true,"bk_error_code":0,"bk_error_msg":"success","permission":null,"data":"#,
    )
    .and_then(|b| b.strip_suffix('}'))
    .unwrap_or_else(|| panic!("not a native success: {body}"))
}

/// The failure envelope of the native family.
pub fn err_native(code: i64, msg: &str) -> Value {
    serde_json::json!({"result": false, "bk_error_code": code, "bk_error_msg": msg, "permission": null, "data": null})
}

/// The success envelope of the ESB and gateway families (with a `request_id` only where the
/// request had an `X-Request-Id`: [`with_request_id`]).
pub fn ok_esb(data: Value) -> Value {
    serde_json::json!({"result": true, "code": 0, "message": "success", "permission": null, "data": data})
}

/// The failure envelope of the ESB and gateway families.
pub fn err_esb(code: i64, msg: &str) -> Value {
    serde_json::json!({"result": false, "code": code, "message": msg, "permission": null, "data": null})
}

/// `body` (an object) with the app fields of an ESB call set: `bk_app_code` "app",
/// `bk_app_secret` "secret", `bk_username` "esb-user"; any other value as it is.
pub fn as_esb_app(mut body: Value) -> Value {
    if body.is_object() {
        body["bk_app_code"] = Value::from("app");
        body["bk_app_secret"] = Value::from("secret");
        body["bk_username"] = Value::from("esb-user");
    }
    body
}

/// An ESB or gateway envelope answering a request whose `X-Request-Id` was `rid`.
pub fn with_request_id(mut envelope: Value, rid: &str) -> Value {
    envelope["request_id"] = Value::from(rid);
    envelope
}

// ---------------------------------------------------------------------------------------------
// Crash, fault and shutdown tests: requests that may meet a dead server, and signals.
// ---------------------------------------------------------------------------------------------

impl Conn {
    /// Like [`Conn::send`], but `None` instead of a panic when the server is gone (killed, or
    /// closing the connection) before the whole answer has arrived.
    pub fn try_send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Option<Resp> {
        self.0.send_with(method, path, headers, body).ok()?;
        self.read_response()
    }

    /// Opens a connection, `None` if the server does not accept it.
    pub fn try_open(addr: &str) -> Option<Conn> {
        Client::connect_bare(addr, Duration::from_secs(30))
            .ok()
            .map(Conn)
    }
}

/// Sets a resource limit of the live process `pid` with util-linux's `prlimit` (`limit` such
/// as `--fsize=4096:`), which must succeed.
pub fn prlimit(pid: u32, limit: &str) {
    let out = Command::new("prlimit")
        .args(["--pid", &pid.to_string(), limit])
        .output()
        .expect("run prlimit");
    assert!(
        out.status.success(),
        "prlimit {limit}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// True if util-linux's `prlimit` can be run; otherwise says loudly that `test` is skipped.
pub fn have_prlimit(test: &str) -> bool {
    let ok = Command::new("prlimit")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!(
            "\n*** SKIPPED {test}: prlimit (util-linux) is not installed; .ci/run installs it ***\n"
        );
    }
    ok
}

/// A create of `n` processes `<tag>-<i>` in service instance 30 of business 7, each with a
/// 1.5 KB `start_cmd`, so that the file has to grow after a few batches.
pub fn sizeable_batch(tag: &str, n: usize) -> Value {
    let processes: Vec<Value> = (0..n)
        .map(|i| {
            serde_json::json!({"process_info": {
                "bk_process_name": format!("{tag}-{i}"),
                "bk_func_name": format!("{tag}-{i}"),
                "start_cmd": format!("{tag} {i} {}", "x".repeat(1500)),
            }})
        })
        .collect();
    serde_json::json!({"bk_biz_id": 7, "service_instance_id": 30, "processes": processes})
}

pub const SIGINT: i32 = 2;
pub const SIGKILL: i32 = 9;
pub const SIGTERM: i32 = 15;

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

/// Sends `sig` to a child process.
pub fn send_signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on our own child's pid; no memory is shared.
    let rc = unsafe { kill(child.id() as i32, sig) };
    assert_eq!(rc, 0, "kill({}, {sig}) failed", child.id());
}

/// Waits up to `limit` for a child to exit; `None` if it is still running.
pub fn wait_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `cmdb-lite check --db <db>` finds the store clean (exit 0 and its "is clean" line) within
/// 120 s.
#[track_caller]
pub fn assert_clean(db: &Path) {
    let (code, out, err) = run_cli_within(&["check", "--db", db.to_str().unwrap()], 120);
    assert_eq!(code, 0, "check: {out}{err}");
    assert!(out.contains("is clean"), "check: {out}");
}

/// Threads reading all of a child's piped stdout and stderr, so that neither pipe fills while
/// the test waits for it; each joins with the text read.
pub fn read_output(child: &mut Child) -> (JoinHandle<String>, JoinHandle<String>) {
    fn all(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s);
            s
        })
    }
    (
        all(child.stdout.take().expect("a piped stdout")),
        all(child.stderr.take().expect("a piped stderr")),
    )
}

/// Runs `cmdb-lite <args>`, killing it (and failing) if it has not exited within `secs`:
/// (exit code, stdout, stderr).
pub fn run_cli_within(args: &[&str], secs: u64) -> (i32, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cmdb-lite");
    let (t_out, t_err) = read_output(&mut child);
    let Some(status) = wait_exit(&mut child, Duration::from_secs(secs)) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("cmdb-lite {args:?} did not exit within {secs} s");
    };
    (
        status.code().unwrap_or(-1),
        t_out.join().unwrap(),
        t_err.join().unwrap(),
    )
}

/// Now, in milliseconds since the epoch (for the time window around a request).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.f{1,3}]Z` (spec 4.5: UTC `Z`, milliseconds, trailing zeros
/// trimmed) to milliseconds since the epoch; panics on any other shape.
#[track_caller]
pub fn parse_time(v: &Value) -> i64 {
    let t = v
        .as_str()
        .unwrap_or_else(|| panic!("time is not a string: {v}"));
    let re = regex::Regex::new(
        r"^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{0,2}[1-9])?Z$",
    )
    .unwrap();
    let c = re
        .captures(t)
        .unwrap_or_else(|| panic!("not RFC 3339 UTC ms with Z: {t}"));
    let n = |i: usize| c[i].parse::<i64>().unwrap();
    let (y, m, d) = (n(1), n(2), n(3));
    // Days from civil (Howard Hinnant).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2.rem_euclid(400);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let frac = c.get(7).map_or(0, |f| {
        let digits = &f.as_str()[1..];
        format!("{digits:0<3}").parse::<i64>().unwrap()
    });
    ((days * 86_400 + n(4) * 3600 + n(5) * 60 + n(6)) * 1000) + frac
}

/// The demo dataset (`data/demo.json`), which seeds every fresh server.
pub fn demo_dataset() -> Value {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/data/demo.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A copy of the item of the array `list` whose `key` is `id` (a dataset's record, say); panics
/// if there is none.
#[track_caller]
pub fn item_with(list: &Value, key: &str, id: i64) -> Value {
    list.as_array()
        .unwrap_or_else(|| panic!("not an array: {list}"))
        .iter()
        .find(|x| x[key] == id)
        .unwrap_or_else(|| panic!("no {key} {id} in {list}"))
        .clone()
}

/// The dataset a fresh install starts from: business 2 (as bk-cmdb's "蓝鲸") and the built-in
/// service categories; every store adds the resource pool and the idle sets and modules.
pub const FRESH_INSTALL: &str = r#"{"format": "cmdb-lite/1",
 "businesses": [{"bk_biz_id": 2, "bk_biz_name": "蓝鲸"}],
 "service_categories": [
  {"id": 1, "name": "Default", "bk_parent_id": 0, "bk_root_id": 1, "bk_biz_id": 0},
  {"id": 2, "name": "Default", "bk_parent_id": 1, "bk_root_id": 1, "bk_biz_id": 0}]}"#;

/// A server on a new database seeded with [`FRESH_INSTALL`]; the database's path.
pub fn fresh_install(td: &TempDir) -> (Server, PathBuf) {
    let seed = td.join("fresh.json");
    std::fs::write(&seed, FRESH_INSTALL).unwrap();
    let db = td.join("cmdb.redb");
    let s = Server::start(&[
        "--db",
        db.to_str().unwrap(),
        "--seed",
        seed.to_str().unwrap(),
    ]);
    (s, db)
}
