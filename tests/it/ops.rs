//! Operating the server on a host: `--version` and the `Server` header, `/healthz` and
//! `/readyz` across start, seeding, SIGTERM and an I/O failure, `/metrics`, the access log and
//! lifecycle lines, the online export under concurrent writers, the read-only offline commands,
//! `compact`, and the command-line conventions (exit 2 on usage errors, a closed stdout,
//! nothing created before a command can run).

use crate::common::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SIGTERM: i32 = 15;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The demo dataset plus `n` raw processes in service instance 30 (ids from 100).
fn dataset_with(n: usize) -> Value {
    let mut ds = demo_dataset();
    let template = item_with(&ds["processes"], "bk_process_id", 41);
    let procs = ds["processes"].as_array_mut().unwrap();
    for i in 0..n {
        let id = 100 + i as i64;
        let mut p = template.clone();
        p["bk_process_id"] = json!(id);
        p["bk_process_name"] = json!(format!("gen-{i}"));
        p["bk_func_name"] = json!(format!("gen-{i}"));
        p["relation"]["bk_process_id"] = json!(id);
        procs.push(p);
    }
    ds["sequences"]["process"] = json!(100 + n as i64);
    ds
}

fn write_dataset(path: &Path, ds: &Value) {
    std::fs::write(path, serde_json::to_vec(ds).unwrap()).unwrap();
}

/// A server whose stderr (the log) is collected line by line.
struct Logged {
    child: Child,
    addr: String,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Logged {
    /// Starts `serve --listen 127.0.0.1:0 <args>`; returns once the log names the address
    /// (before the store is seeded: `/healthz` answers from then on).
    fn start(args: &[&str]) -> Logged {
        let mut child = Command::new(BIN)
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cmdb-lite");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let err = child.stderr.take().unwrap();
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        // Stdout has the address too, once ready (under --quiet the log does not say it).
        let out = child.stdout.take().unwrap();
        let out_lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&out_lines);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr = loop {
            let both: Vec<String> = lines
                .lock()
                .unwrap()
                .iter()
                .chain(out_lines.lock().unwrap().iter())
                .cloned()
                .collect();
            let found = both.iter().find_map(|l| {
                l.split_once("listening on http://")
                    .map(|(_, a)| a.trim_end_matches('"').trim_end_matches('}').to_string())
            });
            if let Some(a) = found {
                break a.trim_end_matches('"').to_string();
            }
            if let Ok(Some(st)) = child.try_wait() {
                panic!("server exited ({st}): {:?}", lines.lock().unwrap());
            }
            assert!(Instant::now() < deadline, "no listening line");
            std::thread::sleep(Duration::from_millis(2));
        };
        Logged { child, addr, lines }
    }

    fn get(&self, path: &str) -> Resp {
        Conn::open(&self.addr).send("GET", path, &[], b"")
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.get("/readyz").status != 200 {
            assert!(Instant::now() < deadline, "not ready within 120 s");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Log lines containing `part`, waiting up to 10 s for at least one.
    fn lines_with(&self, part: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found: Vec<String> = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .filter(|l| l.contains(part))
                .cloned()
                .collect();
            if !found.is_empty() || Instant::now() > deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn all_lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    fn stop(mut self) -> Vec<String> {
        send_signal(&self.child, SIGTERM);
        let st = wait_exit(&mut self.child, Duration::from_secs(30)).expect("exit after SIGTERM");
        assert!(st.success(), "{st:?}");
        std::thread::sleep(Duration::from_millis(50));
        self.all_lines()
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Version
// ---------------------------------------------------------------------------------------------

#[test]
fn version_on_every_command_and_in_the_server_header() {
    let expected = format!("cmdb-lite {}\n", env!("CARGO_PKG_VERSION"));
    for args in [
        vec!["--version"],
        vec!["-V"],
        vec!["serve", "--version"],
        vec!["export", "-V"],
        vec!["check", "--db", "/nonexistent", "--version"],
    ] {
        let (code, out, err) = run_cli(&args);
        assert_eq!(
            (code, out.as_str()),
            (0, expected.as_str()),
            "{args:?}: {err}"
        );
    }
    let srv = Server::memory();
    let server = format!("cmdb-lite/{}", env!("CARGO_PKG_VERSION"));
    let ok = srv.request(
        "POST",
        "/api/v3/findmany/proc/process_instance",
        &NATIVE_EN,
        br#"{"bk_biz_id":7,"service_instance_id":30}"#,
    );
    let missing = srv.request("GET", "/nowhere", &[], b"");
    let health = srv.request("GET", "/healthz", &[], b"");
    let big = srv.request(
        "POST",
        "/api/v3/findmany/proc/process_instance",
        &[("Content-Length", "999999999999")],
        b"",
    );
    // An answer tiny_http writes itself: a malformed request line.
    let mut c = Conn::open(&srv.addr);
    c.write_raw(b"NOT-HTTP\r\n\r\n");
    let malformed = c.read_response().expect("an answer to a malformed request");
    assert_eq!(malformed.status, 400, "{malformed:?}");
    for (what, r) in [
        ("success", &ok),
        ("404", &missing),
        ("healthz", &health),
        ("413", &big),
        ("400 from the HTTP layer", &malformed),
    ] {
        assert_eq!(r.header("Server"), Some(server.as_str()), "{what}: {r:?}");
        assert_eq!(
            r.headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case("Server"))
                .count(),
            1,
            "{what}: {r:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Health and readiness
// ---------------------------------------------------------------------------------------------

#[test]
fn readiness_across_start_seeding_and_sigterm() {
    let td = TempDir::new("ready");
    let seed = td.join("seed.json");
    // Large enough that seeding takes a while (seconds in a debug build) on any machine.
    write_dataset(&seed, &dataset_with(30_000));
    let db = td.join("cmdb.redb");
    let srv = Logged::start(&["--db", s(&db), "--seed", s(&seed)]);

    // Alive at once; not ready, and bk-cmdb's routes refused, while the seed loads.
    let live = srv.get("/healthz");
    assert_eq!(live.status, 200, "{live:?}");
    assert_eq!(live.json()["status"], json!("alive"));
    let first = srv.get("/readyz");
    let mut seen_starting = false;
    if first.status == 503 {
        seen_starting = true;
        let v = first.json();
        assert_eq!(v["status"], json!("starting"), "{v}");
        assert_eq!(v["store"], json!("starting"), "{v}");
        let r = Conn::open(&srv.addr).send(
            "POST",
            "/api/v3/findmany/proc/process_instance",
            &NATIVE_EN,
            br#"{"bk_biz_id":7,"service_instance_id":30}"#,
        );
        // 503 in the family's envelope, unless the seed finished in between.
        if r.status == 503 {
            assert_eq!(r.json()["result"], json!(false), "{r:?}");
            assert_eq!(r.json()["bk_error_code"], json!(1199998), "{r:?}");
        } else {
            assert_eq!(r.status, 200);
        }
    }
    assert!(
        seen_starting,
        "seeding 30,000 processes was over before the first /readyz: {first:?}"
    );
    srv.wait_ready();
    let ready = srv.get("/readyz").json();
    assert_eq!(ready["status"], json!("ready"), "{ready}");
    assert_eq!(ready["store"], json!("ok"), "{ready}");
    assert_eq!(
        ready["version"],
        json!(env!("CARGO_PKG_VERSION")),
        "{ready}"
    );
    assert_eq!(ready["schema_version"], json!(2), "{ready}");
    assert!(ready["uptime_seconds"].as_f64().unwrap() >= 0.0, "{ready}");
    // The whole seed is there: its last process answers.
    let last = Conn::open(&srv.addr).send(
        "POST",
        "/api/v3/findmany/proc/process_instance/detail/biz/7",
        &NATIVE_EN,
        br#"{"bk_process_ids":[30099]}"#,
    );
    let v = last.json();
    assert_eq!(v["data"][0]["bk_process_name"], json!("gen-29999"), "{v}");

    // Once the server has taken SIGTERM (its "shutting down" line), /readyz never says ready:
    // a request on a connection opened before is answered 503 or not at all. (The signal is
    // handled on a thread of its own: a request sent the instant after kill(2) may still be
    // answered ready.)
    let mut conn = Conn::open(&srv.addr);
    assert_eq!(conn.send("GET", "/readyz", &[], b"").status, 200);
    send_signal(&srv.child, SIGTERM);
    assert!(
        !srv.lines_with("shutting down").is_empty(),
        "no shutdown line"
    );
    let answer = conn.try_send("GET", "/readyz", &[], b"");
    if let Some(r) = answer {
        assert_eq!(r.status, 503, "{r:?}");
        assert_eq!(r.json()["status"], json!("stopping"), "{r:?}");
    }
    drop(srv.stop());
}

#[test]
fn seeding_is_announced_with_its_source() {
    let td = TempDir::new("seedlog");
    let srv = Logged::start(&["--db", s(&td.join("a.redb"))]);
    srv.wait_ready();
    let seeded = srv.lines_with("seeded the empty store");
    assert!(
        seeded
            .iter()
            .any(|l| l.contains("built-in demo dataset") && l.contains("--seed none")),
        "{:?}",
        srv.all_lines()
    );
    let lines = srv.stop();
    // Every lifecycle line has a UTC timestamp with milliseconds and a level.
    let re =
        regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INFO|WARN|ERROR) ").unwrap();
    for l in &lines {
        assert!(re.is_match(l), "line without time or level: {l:?}");
    }
    for part in [
        "starting",
        "listening on",
        "ready",
        "shutting down",
        "stopped",
    ] {
        assert!(
            lines.iter().any(|l| l.contains(part)),
            "no {part:?} line: {lines:?}"
        );
    }
    // A restart on the same store seeds nothing, and says so.
    let srv = Logged::start(&["--db", s(&td.join("a.redb"))]);
    srv.wait_ready();
    assert!(!srv.lines_with("nothing seeded").is_empty());
    drop(srv.stop());
    // A file seed names the file.
    let seed = td.join("seed.json");
    write_dataset(&seed, &dataset_with(3));
    let srv = Logged::start(&["--db", s(&td.join("b.redb")), "--seed", s(&seed)]);
    srv.wait_ready();
    let seeded = srv.lines_with("seeded the empty store");
    assert!(
        seeded.iter().any(|l| l.contains(s(&seed))),
        "{:?}",
        srv.all_lines()
    );
    drop(srv.stop());
}

/// The file-size fault of tests/it/faults.rs: while a write has failed and the store is degraded,
/// `/readyz` answers 503 (store "degraded") and `/healthz` 200; the metrics say so too; once a
/// write commits again, ready.
#[test]
fn readiness_follows_an_io_failure() {
    if !have_prlimit("readiness_follows_an_io_failure") {
        return;
    }
    let td = TempDir::new("degraded");
    let db = td.join("cmdb.redb");
    let srv = Server::file(&db);
    let get = |path: &str| srv.request("GET", path, &[], b"");
    assert_eq!(get("/readyz").status, 200);
    let size = std::fs::metadata(&db).unwrap().len();
    prlimit(srv.child.id(), &format!("--fsize={size}:"));
    let mut failed = false;
    for k in 0..100 {
        let v = srv.create(&sizeable_batch(&format!("b{k}"), 100));
        if v["result"] != json!(true) {
            assert_eq!(v["bk_error_code"], json!(1199018), "{v}");
            failed = true;
            break;
        }
    }
    assert!(failed, "no write failed under a {size}-byte limit");
    let r = get("/readyz");
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.json()["status"], json!("degraded"), "{r:?}");
    assert_eq!(r.json()["store"], json!("degraded"), "{r:?}");
    let h = get("/healthz");
    assert_eq!(h.status, 200, "{h:?}");
    assert_eq!(h.json()["store"], json!("degraded"), "{h:?}");
    let m = get("/metrics").body;
    assert!(m.contains("\ncmdb_store_degraded 1\n"), "{m}");
    assert!(m.contains("\ncmdb_ready 0\n"), "{m}");

    prlimit(srv.child.id(), "--fsize=unlimited:");
    // Writes resume within the store's probe interval (one write per interval tries the file).
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut k = 0;
    loop {
        let v = srv.create(&sizeable_batch(&format!("after{k}"), 100));
        if v["result"] == json!(true) {
            break;
        }
        assert_eq!(v["bk_error_code"], json!(1199018), "{v}");
        assert!(Instant::now() < deadline, "writes never resumed: {v}");
        k += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = get("/readyz");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(get("/metrics").body.contains("\ncmdb_store_degraded 0\n"));
}

// ---------------------------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------------------------

/// The value of the sample `name{labels}` (labels exactly as written), 0 if absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn metrics_count_requests_by_operation_family_and_outcome() {
    let srv = Server::memory();
    let metrics = || {
        let r = srv.request("GET", "/metrics", &[], b"");
        assert_eq!(r.status, 200);
        assert!(
            r.header("Content-Type")
                .unwrap()
                .starts_with("text/plain; version=0.0.4"),
            "{r:?}"
        );
        r.body
    };
    let ok = r#"cmdb_requests_total{operation="list_process_instance",family="native",outcome="success",code="0"}"#;
    let biz = r#"cmdb_requests_total{operation="list_process_instance",family="esb",outcome="business_error",code="1199006"}"#;
    let nf = r#"cmdb_requests_total{operation="none",family="native",outcome="transport_error",code="404"}"#;
    let dur = r#"cmdb_request_duration_seconds_count{operation="list_process_instance"}"#;
    let batches = "cmdb_commit_batch_requests_count";
    let before = metrics();
    for _ in 0..3 {
        assert_eq!(srv.list(7, 30)["result"], json!(true));
    }
    let r = srv.request(
        "POST",
        "/api/c/compapi/v2/cc/list_process_instance/",
        &[],
        br#"{"bk_biz_id":7}"#,
    );
    assert_eq!(r.json()["result"], json!(false), "{}", r.body);
    srv.request("GET", "/api/v3/nowhere", &[], b"");
    let v = srv.create(&json!({"bk_biz_id": 7, "service_instance_id": 30,
        "processes": [{"process_info": {"bk_process_name": "m1", "bk_func_name": "m1"}}]}));
    assert_eq!(v["result"], json!(true), "{v}");
    let after = metrics();
    assert_eq!(sample(&after, ok) - sample(&before, ok), 3.0, "{after}");
    assert_eq!(sample(&after, biz) - sample(&before, biz), 1.0, "{after}");
    assert_eq!(sample(&after, nf) - sample(&before, nf), 1.0, "{after}");
    // Durations are by operation, whatever the family: the ESB call counts too.
    assert_eq!(sample(&after, dur) - sample(&before, dur), 4.0, "{after}");
    assert!(
        sample(&after, batches) > sample(&before, batches),
        "{after}"
    );
    for family in [
        "cmdb_store_degraded 0",
        "cmdb_ready 1",
        "cmdb_worker_permits 8",
        "cmdb_worker_permits_in_use ",
        "cmdb_open_connections ",
        "cmdb_process_resident_memory_bytes ",
        "cmdb_commit_duration_seconds_bucket{le=\"+Inf\"} ",
        "# TYPE cmdb_requests_total counter",
        "# TYPE cmdb_request_duration_seconds histogram",
    ] {
        assert!(after.contains(family), "no {family:?} in {after}");
    }
    // A store in memory has no file size; one on disk has.
    assert!(!after.contains("cmdb_store_file_bytes"));
    let td = TempDir::new("metricsfile");
    let disk = Server::file(&td.join("m.redb"));
    let text = disk.request("GET", "/metrics", &[], b"").body;
    assert!(sample(&text, "cmdb_store_file_bytes") > 0.0, "{text}");
}

/// The operators' routes need no identity and no permit: with every permit held by a slow
/// store, /healthz and /metrics still answer. (A permit is held only around the store, so the
/// observable part is that they answer without identity headers on every route family's
/// server, and refuse other methods.)
#[test]
fn operator_routes_need_no_identity_and_refuse_other_methods() {
    let srv = Server::memory();
    for path in ["/healthz", "/readyz", "/metrics", "/healthz/"] {
        let r = srv.request("GET", path, &[], b"");
        assert_eq!(r.status, 200, "{path}: {r:?}");
    }
    let r = srv.request("POST", "/healthz", &[], b"");
    assert_eq!(r.status, 405, "{r:?}");
    let r = srv.request("DELETE", "/_cmdb/export", &[], b"");
    assert_eq!(r.status, 405, "{r:?}");
}

// ---------------------------------------------------------------------------------------------
// Access log
// ---------------------------------------------------------------------------------------------

#[test]
fn access_log_lines_in_text_and_json() {
    for format in ["text", "json"] {
        let srv = Logged::start(&["--memory", "--log-format", format]);
        srv.wait_ready();
        let mut c = Conn::open(&srv.addr);
        let ok = c.send(
            "POST",
            "/api/v3/findmany/proc/process_instance",
            &[
                ("X-Bkcmdb-User", "admin"),
                ("X-Bkcmdb-Supplier-Account", "0"),
                ("X-Request-Id", "rid-ok"),
            ],
            br#"{"bk_biz_id":7,"service_instance_id":30}"#,
        );
        assert_eq!(ok.status, 200);
        let bad = c.send(
            "POST",
            "/api/c/compapi/v2/cc/list_process_instance/",
            &[("X-Request-Id", "rid-biz")],
            br#"{"bk_biz_id":7}"#,
        );
        assert_eq!(bad.json()["result"], json!(false));
        let nf = c.send("GET", "/nowhere", &[("X-Request-Id", "rid-404")], b"");
        assert_eq!(nf.status, 404);
        let lines = |rid: &str| {
            let found = srv.lines_with(rid);
            assert_eq!(found.len(), 1, "{format} {rid}: {:?}", srv.all_lines());
            found[0].clone()
        };
        let (l_ok, l_bad, l_nf) = (lines("rid-ok"), lines("rid-biz"), lines("rid-404"));
        if format == "text" {
            for (l, parts) in [
                (
                    &l_ok,
                    vec![
                        " INFO access rid=rid-ok method=POST path=/api/v3/findmany/proc/process_instance",
                        " op=list_process_instance status=200 result=true code=0 ms=",
                        &format!(" bytes={}", ok.body.len()),
                    ],
                ),
                (
                    &l_bad,
                    vec![
                        "rid=rid-biz method=POST path=/api/c/compapi/v2/cc/list_process_instance/",
                        " op=list_process_instance status=200 result=false code=1199006 ",
                    ],
                ),
                (
                    &l_nf,
                    vec![
                        "rid=rid-404 method=GET path=/nowhere op=none status=404 result=false code=1199998 ",
                    ],
                ),
            ] {
                for p in parts {
                    assert!(l.contains(p), "{p:?} not in {l:?}");
                }
            }
        } else {
            let v: Value = serde_json::from_str(&l_ok).unwrap();
            assert_eq!(v["msg"], json!("access"));
            assert_eq!(v["level"], json!("info"));
            assert_eq!(v["request_id"], json!("rid-ok"));
            assert_eq!(v["method"], json!("POST"));
            assert_eq!(v["path"], json!("/api/v3/findmany/proc/process_instance"));
            assert_eq!(v["operation"], json!("list_process_instance"));
            assert_eq!(v["status"], json!(200));
            assert_eq!(v["result"], json!(true));
            assert_eq!(v["code"], json!(0));
            assert_eq!(v["bytes"], json!(ok.body.len()));
            assert!(v["duration_ms"].as_f64().unwrap() >= 0.0);
            assert!(v["time"].as_str().unwrap().ends_with('Z'));
            let v: Value = serde_json::from_str(&l_bad).unwrap();
            assert_eq!(
                (v["result"].clone(), v["code"].clone()),
                (json!(false), json!(1199006))
            );
            let v: Value = serde_json::from_str(&l_nf).unwrap();
            assert_eq!(
                (v["status"].clone(), v["operation"].clone()),
                (json!(404), json!("none"))
            );
            // Every line of the log is JSON.
            for l in srv.all_lines() {
                let v: Value = serde_json::from_str(&l).unwrap_or_else(|e| panic!("{e}: {l}"));
                assert!(v["time"].is_string() && v["level"].is_string(), "{l}");
            }
        }
        drop(srv.stop());
    }
    // --quiet: no access lines.
    let srv = Logged::start(&["--memory", "--quiet"]);
    srv.wait_ready();
    srv.get("/healthz");
    Conn::open(&srv.addr).send("GET", "/nowhere", &[("X-Request-Id", "rid-q")], b"");
    let lines = srv.stop();
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("rid-q") || l.contains("access")),
        "{lines:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Online export
// ---------------------------------------------------------------------------------------------

/// An export taken while 8 writers create processes, imported into a fresh store: it is a
/// consistent snapshot (the import checks every reference and key, and `check` is clean) that
/// holds every process acknowledged before the export began.
#[test]
fn online_export_under_eight_writers_is_a_consistent_snapshot() {
    let td = TempDir::new("online");
    let seed = td.join("seed.json");
    write_dataset(&seed, &dataset_with(5_000));
    let db = td.join("live.redb");
    let srv = Server::start(&["--db", s(&db), "--seed", s(&seed)]);
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<(i64, Instant)>>> = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (addr, stop, acked) = (srv.addr.clone(), Arc::clone(&stop), Arc::clone(&acked));
            std::thread::spawn(move || {
                let mut c = Conn::open(&addr);
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let body = json!({"bk_biz_id": 7, "service_instance_id": 30, "processes":
                        [{"process_info": {"bk_process_name": format!("w{w}-{i}"),
                                           "bk_func_name": format!("w{w}-{i}")}}]});
                    let r = c.send(
                        "POST",
                        "/api/v3/create/proc/process_instance",
                        &NATIVE_EN,
                        body.to_string().as_bytes(),
                    );
                    let v = r.json();
                    assert_eq!(v["result"], json!(true), "{v}");
                    acked
                        .lock()
                        .unwrap()
                        .push((v["data"][0].as_i64().unwrap(), Instant::now()));
                    i += 1;
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 50 {
        assert!(Instant::now() < deadline, "writers made no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    let began = Instant::now();
    let out = td.join("backup.json");
    let url = format!("http://{}", srv.addr);
    let (code, stdout, err) = run_cli_within(&["export", "--from", &url, "--out", s(&out)], 120);
    assert_eq!(code, 0, "{stdout} {err}");
    // Let the writers go on a little after the export, then stop them.
    std::thread::sleep(Duration::from_millis(50));
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let before: Vec<i64> = acked
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, at)| *at < began)
        .map(|(id, _)| *id)
        .collect();
    let total = acked.lock().unwrap().len();

    let ds: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let ids: std::collections::BTreeSet<i64> = ds["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["bk_process_id"].as_i64().unwrap())
        .collect();
    for id in &before {
        assert!(
            ids.contains(id),
            "process {id}, acknowledged before the export, is missing"
        );
    }
    assert!(ids.len() >= 5_002 + before.len(), "{} processes", ids.len());
    eprintln!(
        "online export: {} processes, {} of {total} writes acknowledged before it began",
        ids.len(),
        before.len()
    );
    let fresh = td.join("fresh.redb");
    let (code, o, e) = run_cli_within(&["import", s(&out), "--db", s(&fresh)], 120);
    assert_eq!(code, 0, "{o} {e}");
    assert_clean(&fresh);
    // The server's own store is still fine, and the export did not stop the writers.
    assert!(total > before.len());
    srv.stop();
    assert_clean(&db);
}

#[test]
fn export_from_refuses_what_is_not_a_whole_export() {
    let td = TempDir::new("from");
    let out = td.join("x.json");
    // Nothing listening.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", free.local_addr().unwrap());
    drop(free);
    let (code, _, err) = run_cli(&["export", "--from", &url, "--out", s(&out)]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot reach"), "{err}");
    assert!(!out.exists());
    // A server that is not cmdb-lite (answers 404), and one that cuts the answer short.
    for answer in [
        "HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope".to_string(),
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n".to_string(),
        "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"format\":1".to_string(),
    ] {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let t = std::thread::spawn(move || {
            let (mut sock, _) = l.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = std::io::Read::read(&mut sock, &mut buf);
            std::io::Write::write_all(&mut sock, answer.as_bytes()).unwrap();
        });
        let (code, _, err) = run_cli_within(&["export", "--from", &url, "--out", s(&out)], 30);
        t.join().unwrap();
        assert_eq!(code, 1, "{err}");
        assert!(!out.exists(), "a partial export was left: {err}");
        assert!(
            !td.path().read_dir().unwrap().any(|e| e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("partial")),
            "a partial file was left"
        );
    }
    let (code, _, err) = run_cli(&["export", "--from", "ftp://x:1"]);
    assert_eq!(code, 2, "{err}");
}

// ---------------------------------------------------------------------------------------------
// Offline commands: read-only, streaming, compact
// ---------------------------------------------------------------------------------------------

#[test]
fn offline_export_and_check_leave_the_file_untouched_and_compact_shrinks_it() {
    let td = TempDir::new("offline");
    let seed = td.join("seed.json");
    write_dataset(&seed, &dataset_with(5_000));
    let db = td.join("cmdb.redb");
    let (code, o, e) = run_cli(&["import", s(&seed), "--db", s(&db)]);
    assert_eq!(code, 0, "{o} {e}");
    let bytes = std::fs::read(&db).unwrap();
    let (code, first, e) = run_cli(&["export", "--db", s(&db)]);
    assert_eq!(code, 0, "{e}");
    assert_clean(&db);
    assert!(
        std::fs::read(&db).unwrap() == bytes,
        "export or check wrote to the file"
    );
    let ds: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(ds["processes"].as_array().unwrap().len(), 5_002);
    assert_eq!(ds["sequences"]["process"], json!(5_100));

    // Delete most processes through the API, then compact the stopped store.
    let srv = Server::file(&db);
    let ids: Vec<i64> = (100..5_000).collect();
    for chunk in ids.chunks(500) {
        let v = srv.native_method(
            "DELETE",
            "/api/v3/delete/proc/process_instance",
            &json!({"bk_biz_id": 7, "process_instance_ids": chunk}),
        );
        assert_eq!(v["result"], json!(true), "{v}");
    }
    srv.stop();
    let (code, before_export, _) = run_cli(&["export", "--db", s(&db)]);
    assert_eq!(code, 0);
    let before = std::fs::metadata(&db).unwrap().len();
    let (code, o, e) = run_cli(&["compact", "--db", s(&db)]);
    assert_eq!(code, 0, "{o} {e}");
    let after = std::fs::metadata(&db).unwrap().len();
    eprintln!("compact: {before} -> {after} bytes");
    assert!(
        after < before,
        "compact gave nothing back: {before} -> {after}"
    );
    assert!(o.contains(&format!("{before} -> {after} bytes")), "{o}");
    assert_clean(&db);
    let (_, after_export, _) = run_cli(&["export", "--db", s(&db)]);
    assert_eq!(before_export, after_export, "compact changed the data");
    // compact refuses a store in use and a missing one.
    let srv = Server::file(&db);
    let (code, _, err) = run_cli(&["compact", "--db", s(&db)]);
    assert_eq!(code, 1);
    assert!(err.contains("in use"), "{err}");
    drop(srv);
    let (code, _, err) = run_cli(&["compact", "--db", s(&td.join("none.redb"))]);
    assert_eq!(code, 1);
    assert!(err.contains("no database at"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Command-line conventions
// ---------------------------------------------------------------------------------------------

#[test]
fn usage_errors_exit_2_and_create_nothing() {
    let td = TempDir::new("usage");
    let db = td.join("sub/cmdb.redb");
    let dbs = s(&db).to_string();
    for args in [
        vec!["frobnicate"],
        vec!["serve", "--no-such-option"],
        vec!["serve", "--db", &dbs, "--threads", "0"],
        vec!["serve", "--db", &dbs, "--read-timeout-secs", "0"],
        vec!["serve", "--db", &dbs, "--body-timeout-secs", "0"],
        vec!["serve", "--db", &dbs, "--cache-mib", "0"],
        vec!["serve", "--db", &dbs, "--language", "fr"],
        vec!["serve", "--db", &dbs, "--log-format", "xml"],
        vec!["serve", "--db", &dbs, "--threads", "many"],
        vec!["import"],
        vec!["bench", "--connections", "0"],
        vec!["bench", "--secs", "0"],
        vec!["bench", "--threads", "0"],
    ] {
        let (code, out, err) = run_cli_within(&args, 10);
        assert_eq!(code, 2, "{args:?}: {out} {err}");
        assert!(!err.trim().is_empty(), "{args:?}: no message");
        assert!(
            !db.exists() && !td.join("sub").exists(),
            "{args:?} created files"
        );
    }
    for arg in ["--threads", "--read-timeout-secs"] {
        let (_, _, err) = run_cli(&["serve", "--db", &dbs, arg, "0"]);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(arg) && err.contains("at least 1"), "{err}");
    }
    let (code, out, _) = run_cli(&["serve", "--help"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("--log-format") && out.contains("--quiet"),
        "{out}"
    );
}

#[test]
fn nothing_is_created_before_a_command_can_run() {
    let td = TempDir::new("nothing");
    let db = td.join("sub/cmdb.redb");
    // A port in use.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, _, err) = run_cli_within(&["serve", "--db", s(&db), "--listen", &addr], 20);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot listen"), "{err}");
    assert!(
        !td.join("sub").exists(),
        "serve created its database on a port in use"
    );
    // A seed file that cannot be read.
    let (code, _, err) = run_cli_within(
        &["serve", "--db", s(&db), "--seed", s(&td.join("none.json"))],
        20,
    );
    assert_eq!(code, 1, "{err}");
    assert!(!td.join("sub").exists());
    // A seed that is refused: the store it created is removed again.
    let bad = td.join("bad.json");
    std::fs::write(
        &bad,
        br#"{"format":"cmdb-lite/1","hosts":[{"bk_host_id":-1}]}"#,
    )
    .unwrap();
    let (code, _, err) = run_cli_within(
        &[
            "serve",
            "--db",
            s(&db),
            "--listen",
            "127.0.0.1:0",
            "--seed",
            s(&bad),
        ],
        20,
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        !td.join("sub").exists(),
        "a failed seed left its store: {err}"
    );
    // A failed import into a new store leaves no file; into an existing one, leaves it as it was.
    for file in [bad.clone(), td.join("none.json")] {
        let (code, _, err) = run_cli(&["import", s(&file), "--db", s(&db)]);
        assert_eq!(code, 1, "{err}");
        assert!(
            !td.join("sub").exists(),
            "a failed import left files: {err}"
        );
    }
    let good = td.join("good.json");
    write_dataset(&good, &dataset_with(1));
    assert_eq!(run_cli(&["import", s(&good), "--db", s(&db)]).0, 0);
    let (code, _, _) = run_cli(&["import", s(&bad), "--db", s(&db)]);
    assert_eq!(code, 1);
    assert!(db.exists(), "a failed import removed an existing store");
    assert_clean(&db);
}

#[test]
fn a_closed_stdout_ends_export_quietly() {
    let td = TempDir::new("pipe");
    let seed = td.join("seed.json");
    write_dataset(&seed, &dataset_with(20_000));
    let db = td.join("cmdb.redb");
    assert_eq!(run_cli(&["import", s(&seed), "--db", s(&db)]).0, 0);
    // `cmdb-lite export | head -c 100`
    let mut child = Command::new(BIN)
        .args(["export", "--db", s(&db)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut head = [0u8; 100];
    out.read_exact(&mut head).unwrap();
    drop(out);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(60)).expect("export exited");
    assert_eq!(status.code(), Some(0), "{err}");
    assert_eq!(err, "", "export wrote to stderr on a closed pipe");
    assert!(String::from_utf8_lossy(&head).starts_with("{\"format\":\"cmdb-lite/1\""));
}

/// Under `serve --auth` the online export (the whole store) asks for an app of the auth file,
/// refused as on the native routes; health, readiness and metrics stay open.
#[test]
fn online_export_under_auth_needs_an_app() {
    let td = TempDir::new("exportauth");
    let file = td.join("auth.json");
    std::fs::write(
        &file,
        r#"{"apps": [{"bk_app_code": "ops", "bk_app_secret": "s3cret-ops-42"}],
            "users": [{"bk_username": "admin", "grants": [{"bk_biz_id": "*", "actions": ["*"]}]}]}"#,
    )
    .unwrap();
    let srv = Server::start(&["--memory", "--auth", s(&file)]);
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(srv.request("GET", path, &[], b"").status, 200, "{path}");
    }
    let refused = srv.request("GET", "/_cmdb/export", &[], b"");
    assert_ne!(refused.status, 200, "{refused:?}");
    assert!(!refused.body.contains("cmdb-lite/1"), "{}", refused.body);
    let url = format!("http://{}", srv.addr);
    let out = td.join("backup.json");
    let (code, _, err) = run_cli(&["export", "--from", &url, "--out", s(&out)]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("answered HTTP"), "{err}");
    assert!(!out.exists());
    let wrong = r#"{"bk_app_code":"ops","bk_app_secret":"guess"}"#;
    let (code, _, err) = run_cli(&[
        "export",
        "--from",
        &url,
        "--authorization",
        wrong,
        "--out",
        s(&out),
    ]);
    assert_eq!(code, 1, "{err}");
    let right = r#"{"bk_app_code":"ops","bk_app_secret":"s3cret-ops-42"}"#;
    let (code, _, err) = run_cli(&[
        "export",
        "--from",
        &url,
        "--authorization",
        right,
        "--out",
        s(&out),
    ]);
    assert_eq!(code, 0, "{err}");
    let ds: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(ds["format"], json!("cmdb-lite/1"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the export is readable by others: {mode:o}");
    // The secret is never logged or echoed into the file.
    assert!(
        !std::fs::read_to_string(&out)
            .unwrap()
            .contains("s3cret-ops-42")
    );
}
