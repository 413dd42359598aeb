//! Nothing acknowledged is ever lost, and no id is issued twice (product.md section 4).
//!
//! - `crash_cycles`: the real binary on a database file, several keep-alive writers, SIGKILL at
//!   a random moment, restart, verify; `CMDB_CRASH_CYCLES` cycles (default 20),
//!   `CMDB_CRASH_SEED` replays a run (the seed is printed). A client follows `resource_watch`
//!   across the kills with its last cursor: every committed create appears exactly once, in id
//!   order, and nothing that did not commit.
//! - `crash_during_syncs_of_100_instances`: SIGKILL while a client changes a process template and
//!   syncs a module of 100 hosts again and again; after each restart every instance is at one
//!   generation (`CMDB_SYNC_CRASH_CYCLES` cycles, default 6).
//! - `crash_during_transfers_into_template_modules`: SIGKILL while writers move hosts between
//!   template modules, a raw module and the idle module (`transfer_host_module`, with and without
//!   `is_increment`, and `transfer_host_to_idlemodule`); after each restart every acknowledged
//!   transfer is there, an unanswered one whole or not at all, and each host has exactly one
//!   instance, with every process, in each template module it is in and none elsewhere
//!   (`CMDB_TRANSFER_CRASH_CYCLES` cycles, default 10).
//! - Graceful shutdown on SIGTERM and SIGINT: in-flight requests answered, new connections
//!   refused, exit 0, and a file that needs no repair on the next open.
//! - The id rules after a crash, a failed batch and an import with `sequences`.
//! - `compact` killed at random moments: the store keeps exactly what it held.

use crate::common::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIZ: i64 = 7;
/// The demo's raw service instance, and the ones the seed below adds beside it.
const SIS: [i64; 6] = [30, 32, 33, 34, 35, 36];
/// Processes of the demo dataset in those service instances (not written by the tests).
const SEED_PIDS: [i64; 1] = [41];
const CREATE: &str = "/api/v3/create/proc/process_instance";
const LIST: &str = "/api/v3/findmany/proc/process_instance";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The demo dataset plus raw service instances 32..=36 (module 20, host 11), to spread the load.
fn write_seed(dir: &TempDir) -> PathBuf {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/demo.json");
    let mut ds: Value = serde_json::from_str(&std::fs::read_to_string(demo).unwrap()).unwrap();
    let template = item_with(&ds["service_instances"], "id", 30);
    for id in &SIS[1..] {
        let mut si = template.clone();
        si["id"] = json!(id);
        si["name"] = json!(format!("raw-{id}"));
        ds["service_instances"].as_array_mut().unwrap().push(si);
    }
    ds["sequences"]["service_instance"] = json!(SIS[SIS.len() - 1]);
    let path = dir.join("seed.json");
    std::fs::write(&path, serde_json::to_string_pretty(&ds).unwrap()).unwrap();
    path
}

fn start(db: &Path, seed: &Path) -> Server {
    Server::start(&[
        "--db",
        s(db),
        "--seed",
        s(seed),
        "--watch-timeout-secs",
        "1",
    ])
}

/// xorshift64*: reproducible randomness without a crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn seed_from_env() -> u64 {
    std::env::var("CMDB_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        })
}

// ---------------------------------------------------------------------------------------------
// Batches: every process a test writes says which request it came from, so a process found in
// the store can be traced to its batch, and a batch found partly is a half-applied request.
// ---------------------------------------------------------------------------------------------

/// One item of a batch, as sent.
fn item(tag: &str, i: usize, n: usize) -> Value {
    json!({
        "bk_process_name": format!("{tag}-{i}"),
        "bk_func_name": format!("f{i}"),
        "bk_start_param_regex": format!("{tag}-{i}"),
        "description": format!("{tag} {i}/{n}"),
        "bind_info": [{"ip": "127.0.0.1", "port": format!("{}", 1000 + i), "protocol": "1",
                       "enable": true}],
    })
}

fn create_body(si: i64, items: &[Value]) -> Vec<u8> {
    let processes: Vec<Value> = items.iter().map(|p| json!({"process_info": p})).collect();
    json!({"bk_biz_id": BIZ, "service_instance_id": si, "processes": processes})
        .to_string()
        .into_bytes()
}

/// A batch the server must refuse whole: its last item repeats the first one's name.
fn failing_items(tag: &str, n: usize) -> Vec<Value> {
    assert!(n >= 2, "a failing batch needs two items");
    let mut items: Vec<Value> = (0..n).map(|i| item(tag, i, n)).collect();
    items[n - 1]["bk_process_name"] = items[0]["bk_process_name"].clone();
    items
}

/// (tag, item, count) from a description written by [`item`].
fn parse_description(d: &str) -> Option<(String, usize, usize)> {
    let (tag, rest) = d.split_once(' ')?;
    let (i, n) = rest.split_once('/')?;
    Some((tag.to_string(), i.parse().ok()?, n.parse().ok()?))
}

/// Checks a listed process against what was sent for it.
fn assert_item(pid: i64, si: i64, property: &Value, tag: &str, i: usize, n: usize) {
    let sent = item(tag, i, n);
    for key in [
        "bk_process_name",
        "bk_func_name",
        "bk_start_param_regex",
        "description",
    ] {
        assert_eq!(
            property[key], sent[key],
            "process {pid}: {key} differs from what was sent"
        );
    }
    assert_eq!(property["bk_process_id"], json!(pid));
    assert_eq!(property["service_instance_id"], json!(si), "process {pid}");
    assert_eq!(property["bk_biz_id"], json!(BIZ), "process {pid}");
    assert_eq!(
        property["bind_info"][0]["port"], sent["bind_info"][0]["port"],
        "process {pid}"
    );
}

/// What the writers of one run saw.
#[derive(Default)]
struct Outcomes {
    /// tag → (service instance, item count, ids answered).
    acked: BTreeMap<String, (i64, usize, Vec<i64>)>,
    /// Sent, no answer (the server died): tag → (service instance, item count).
    in_doubt: BTreeMap<String, (i64, usize)>,
    /// Refused as a whole, as they must be.
    refused: BTreeSet<String>,
}

/// Everything committed so far, across restarts.
#[derive(Default)]
struct History {
    /// tag → (service instance, ids in item order).
    batches: BTreeMap<String, (i64, Vec<i64>)>,
    /// Every id ever answered or found, with the batch and item it belongs to.
    owner: BTreeMap<i64, (String, usize)>,
    /// Tags that must never appear: refused batches.
    refused: BTreeSet<String>,
    acked_requests: usize,
    acked_processes: usize,
    in_doubt_found: usize,
    in_doubt_absent: usize,
}

impl History {
    fn max_id(&self) -> i64 {
        self.owner
            .keys()
            .next_back()
            .copied()
            .unwrap_or(SEED_PIDS[0])
    }

    /// Records ids as issued; an id issued before for another item is a reuse.
    fn own(&mut self, ids: &[i64], tag: &str, floor: i64) {
        for (i, &pid) in ids.iter().enumerate() {
            assert!(
                pid > floor,
                "id {pid} ({tag} item {i}) is not above {floor}, the largest id issued before"
            );
            if let Some(prev) = self.owner.insert(pid, (tag.to_string(), i)) {
                panic!("id {pid} issued twice: to {prev:?} and to ({tag}, {i})");
            }
        }
    }

    /// Verifies the store behind `srv` after a restart against everything known, and folds in
    /// the outcomes of the run that the crash ended. `floor` is the largest id issued before
    /// that run.
    fn verify(&mut self, srv: &Server, run: &Outcomes, floor: i64) {
        // Every process of the test's service instances, by batch.
        let mut found: BTreeMap<String, Vec<(usize, usize, i64, i64)>> = BTreeMap::new();
        for si in SIS {
            let list = srv.list(BIZ, si);
            assert_eq!(list["result"], json!(true), "{list}");
            for p in list["data"].as_array().unwrap() {
                let pid = p["property"]["bk_process_id"].as_i64().unwrap();
                if SEED_PIDS.contains(&pid) {
                    continue;
                }
                let d = p["property"]["description"].as_str().unwrap_or_default();
                let (tag, i, n) = parse_description(d)
                    .unwrap_or_else(|| panic!("process {pid} was not written by this test: {p}"));
                assert_item(pid, si, &p["property"], &tag, i, n);
                assert_eq!(p["relation"]["service_instance_id"], json!(si));
                found.entry(tag).or_default().push((i, n, pid, si));
            }
        }
        for (tag, items) in &mut found {
            items.sort();
            let n = items[0].1;
            let whole = items.len() == n && items.iter().enumerate().all(|(k, it)| it.0 == k);
            assert!(whole, "half a batch: {tag} has items {items:?}");
            assert!(
                !self.refused.contains(tag) && !run.refused.contains(tag),
                "refused batch {tag} is in the store"
            );
        }
        let ids_of = |items: &[(usize, usize, i64, i64)]| -> Vec<i64> {
            items.iter().map(|it| it.2).collect()
        };
        // Everything committed before is still there, unchanged.
        // Issue 4 (update/delete of process instances) adds its expectations here: an updated
        // batch carries its new data, a deleted one is absent, and its ids stay owned.
        for (tag, (si, ids)) in &self.batches {
            let items = found
                .get(tag)
                .unwrap_or_else(|| panic!("committed batch {tag} (ids {ids:?}) is lost"));
            assert_eq!(&ids_of(items), ids, "batch {tag}: ids changed");
            assert_eq!(items[0].3, *si, "batch {tag}: moved");
        }
        // Every batch acknowledged in the last run is there, with the ids it was answered.
        for (tag, (si, n, ids)) in &run.acked {
            let items = found.get(tag).unwrap_or_else(|| {
                panic!("acknowledged batch {tag} (ids {ids:?}) is lost after the crash")
            });
            assert_eq!(items.len(), *n, "batch {tag}");
            assert_eq!(
                &ids_of(items),
                ids,
                "batch {tag}: ids differ from the answer"
            );
            assert_eq!(items[0].3, *si);
            self.own(ids, tag, floor);
            self.batches.insert(tag.clone(), (*si, ids.clone()));
            self.acked_requests += 1;
            self.acked_processes += n;
        }
        // A batch without an answer is there whole or not at all (checked above); if there,
        // its ids are issued like any other.
        for (tag, (si, _)) in &run.in_doubt {
            match found.get(tag) {
                Some(items) => {
                    let ids = ids_of(items);
                    assert_eq!(items[0].3, *si);
                    self.own(&ids, tag, floor);
                    self.batches.insert(tag.clone(), (*si, ids));
                    self.in_doubt_found += 1;
                }
                None => self.in_doubt_absent += 1,
            }
        }
        self.refused.extend(run.refused.iter().cloned());
        // Nothing else is there.
        for tag in found.keys() {
            assert!(
                self.batches.contains_key(tag),
                "batch {tag} is in the store but was never sent in a way that could commit"
            );
        }
    }
}

/// bk-cmdb's `NoEventCursor`: a watch from the start of the window.
const NO_EVENT: &str = "MQ0xDTVlYTZkM2YzOTRjMWY1ZDk4NmU5YmQ4Ng1ub0V2ZW50DTENMQ0=";

/// A `resource_watch` client of processes, resuming with its last cursor after every restart.
struct Follower {
    cursor: String,
    /// Process id → the batch its create event came from.
    seen: BTreeMap<i64, String>,
    /// The last process id seen per service instance.
    last_by_si: BTreeMap<i64, i64>,
    answers: usize,
}

impl Follower {
    fn new() -> Follower {
        Follower {
            cursor: NO_EVENT.to_string(),
            seen: BTreeMap::new(),
            last_by_si: BTreeMap::new(),
            answers: 0,
        }
    }

    /// With no writer running, reads the stream up to its end and checks it against what is
    /// known to be committed: each create exactly once, in id order per service instance, of a
    /// committed batch; and every committed process has had its event.
    fn follow(&mut self, srv: &Server, history: &History) {
        loop {
            let body = json!({"bk_cursor": self.cursor}).to_string();
            let r = srv.request(
                "POST",
                "/api/v3/event/watch/resource/process",
                &NATIVE_EN,
                body.as_bytes(),
            );
            let v = r.json();
            assert_eq!(v["result"], json!(true), "watch with {}: {v}", self.cursor);
            self.answers += 1;
            let events = v["data"]["bk_events"].as_array().unwrap();
            self.cursor = events.last().unwrap()["bk_cursor"]
                .as_str()
                .unwrap()
                .to_string();
            if v["data"]["bk_watched"] == json!(false) {
                break;
            }
            for e in events {
                assert_eq!(e["bk_event_type"], json!("create"), "{e}");
                let d = &e["bk_detail"];
                let pid = d["bk_process_id"].as_i64().unwrap();
                let si = d["service_instance_id"].as_i64().unwrap();
                let (tag, i, _) = parse_description(d["description"].as_str().unwrap_or(""))
                    .unwrap_or_else(|| panic!("event of a process not written here: {e}"));
                match history.owner.get(&pid) {
                    Some((owner, item)) if *owner == tag && *item == i => {}
                    other => panic!(
                        "event of process {pid} ({tag} item {i}), which did not commit as such                          (the store has {other:?})"
                    ),
                }
                if let Some(prev) = self.seen.insert(pid, tag) {
                    panic!("process {pid} created twice in the stream (before: {prev})");
                }
                let last = self.last_by_si.insert(si, pid).unwrap_or(0);
                assert!(
                    pid > last,
                    "service instance {si}: event of {pid} after {last}"
                );
            }
            if events.len() < 200 {
                break;
            }
        }
        let missing: Vec<&i64> = history
            .owner
            .keys()
            .filter(|pid| !self.seen.contains_key(pid))
            .collect();
        assert!(
            missing.is_empty(),
            "committed processes without an event: {missing:?}"
        );
        assert_eq!(self.seen.len(), history.owner.len());
    }
}

/// Keep-alive writers until the server dies or `stop` is set. Each writer has its own
/// connection and its own tags; every request's outcome goes to `out`.
fn writers(
    addr: &str,
    count: usize,
    round: usize,
    rng_seed: u64,
    stop: &Arc<AtomicBool>,
    out: &Arc<Mutex<Outcomes>>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..count)
        .map(|w| {
            let addr = addr.to_string();
            let stop = Arc::clone(stop);
            let out = Arc::clone(out);
            let mut rng = Rng(rng_seed ^ (w as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            std::thread::spawn(move || {
                let Some(mut conn) = Conn::try_open(&addr) else {
                    return;
                };
                let mut req = 0;
                while !stop.load(Ordering::Relaxed) {
                    req += 1;
                    let tag = format!("r{round}w{w}q{req}");
                    let si = SIS[rng.below(SIS.len() as u64) as usize];
                    // The operations of the load. Issue 4 adds updates and deletes of earlier
                    // batches here, recorded in `Outcomes` for `History::verify`.
                    let roll = rng.below(100);
                    let (items, must_fail) = match roll {
                        0..=4 => (failing_items(&tag, 2 + rng.below(99) as usize), true),
                        5..=19 => ((0..100).map(|i| item(&tag, i, 100)).collect(), false),
                        _ => (vec![item(&tag, 0, 1)], false),
                    };
                    let n = items.len();
                    let body = create_body(si, &items);
                    let Some(resp) = conn.try_send("POST", CREATE, &NATIVE_EN, &body) else {
                        out.lock().unwrap().in_doubt.insert(tag, (si, n));
                        return;
                    };
                    let v = resp.json();
                    let mut out = out.lock().unwrap();
                    if must_fail {
                        assert_eq!(v["result"], json!(false), "{tag}: {v}");
                        assert_eq!(v["bk_error_code"], json!(1199014), "{tag}: {v}");
                        out.refused.insert(tag);
                    } else {
                        assert_eq!(v["result"], json!(true), "{tag}: {v}");
                        let ids: Vec<i64> = v["data"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|x| x.as_i64().unwrap())
                            .collect();
                        assert_eq!(ids.len(), n, "{tag}: {v}");
                        out.acked.insert(tag, (si, n, ids));
                    }
                }
            })
        })
        .collect()
}

/// Waits (up to 30 s) until the writers have had a first answer, so that every kill lands in a
/// load that has acknowledged something, however slow the machine.
fn wait_first_ack(out: &Arc<Mutex<Outcomes>>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while out.lock().unwrap().acked.is_empty() {
        assert!(Instant::now() < deadline, "no answer within 30 s");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// After a crash: redb's repair (as the next `serve` would run it), then every invariant.
fn check_clean(db: &Path) {
    let (code, out, err) = run_cli(&["check", "--repair", "--db", s(db)]);
    assert_eq!(code, 0, "check: {out}{err}");
    assert!(out.contains("is clean"), "{out}");
}

/// Opens the file read-only with redb itself: `true` if it was closed cleanly. (A read-only
/// open refuses a file a writer left open, whatever its last commit recorded, and changes
/// nothing.)
fn closed_cleanly(db: &Path) -> bool {
    match redb::Database::builder().open_read_only(db) {
        Ok(d) => {
            drop(d);
            true
        }
        Err(redb::DatabaseError::RepairAborted) => false,
        Err(e) => panic!("opening {}: {e}", db.display()),
    }
}

// ---------------------------------------------------------------------------------------------
// The crash test
// ---------------------------------------------------------------------------------------------

#[test]
fn crash_cycles() {
    let _alone = serial();
    let cycles: usize = std::env::var("CMDB_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let rng_seed = seed_from_env();
    let mut rng = Rng(rng_seed);
    let dir = TempDir::new("crash");
    let db = dir.join("cmdb.redb");
    let seed = write_seed(&dir);
    let started = Instant::now();
    let mut history = History::default();
    let mut run = Outcomes::default();
    let mut floor = history.max_id();
    let mut checks = 0;
    let mut follower = Follower::new();
    for cycle in 0..cycles {
        let srv = start(&db, &seed);
        history.verify(&srv, &run, floor);
        follower.follow(&srv, &history);
        floor = history.max_id();

        let stop = Arc::new(AtomicBool::new(false));
        let out = Arc::new(Mutex::new(Outcomes::default()));
        let handles = writers(&srv.addr, 4, cycle, rng.next(), &stop, &out);
        // Kill at a random moment of the load (mid-request, mid-commit, between the two),
        // once it has acknowledged something.
        wait_first_ack(&out);
        std::thread::sleep(Duration::from_millis(rng.below(200)));
        srv.kill();
        for h in handles {
            h.join().expect("a writer failed");
        }
        run = Arc::try_unwrap(out).ok().unwrap().into_inner().unwrap();
        // Every other crashed file is opened (and repaired) first by `check`, the others
        // directly by the server.
        if cycle % 2 == 1 {
            check_clean(&db);
            checks += 1;
        }
    }
    // Last restart: verify, then a graceful stop and a final check.
    let mut srv = start(&db, &seed);
    history.verify(&srv, &run, floor);
    follower.follow(&srv, &history);
    send_signal(&srv.child, SIGTERM);
    let status = wait_exit(&mut srv.child, Duration::from_secs(20)).expect("exit after SIGTERM");
    assert!(status.success(), "{status:?}");
    assert!(closed_cleanly(&db), "a graceful stop left a file to repair");
    check_clean(&db);
    eprintln!(
        "crash test: {cycles} kill cycles, seed {rng_seed}, {} s: {} acknowledged requests ({} processes), \
         {} unanswered requests found committed whole, {} unanswered absent, {} refused batches absent, \
         {} ids issued, largest {}, {} checks of a crashed file; lost 0, reused 0, half batches 0; \
         a watch followed across the kills in {} answers: {} create events, each once, in id order, \
         none uncommitted",
        started.elapsed().as_secs_f32(),
        history.acked_requests,
        history.acked_processes,
        history.in_doubt_found,
        history.in_doubt_absent,
        history.refused.len(),
        history.owner.len(),
        history.max_id(),
        checks + 1,
        follower.answers,
        follower.seen.len(),
    );
    assert!(history.acked_requests >= cycles, "at least one per cycle");
}

// ---------------------------------------------------------------------------------------------
// Graceful shutdown
// ---------------------------------------------------------------------------------------------

#[test]
fn the_clean_close_probe_sees_a_crash() {
    let dir = TempDir::new("probe");
    let db = dir.join("cmdb.redb");
    let srv = Server::file(&db);
    assert_eq!(srv.list(BIZ, 30)["result"], json!(true));
    srv.kill();
    assert!(!closed_cleanly(&db), "SIGKILL left a cleanly closed file?");
}

/// SIGTERM or SIGINT in the middle of the load: the server answers what it took, exits 0, and
/// leaves a file that needs no repair and holds every acknowledged batch whole.
#[test]
fn shutdown_signal_mid_load() {
    for (name, sig) in [("SIGTERM", SIGTERM), ("SIGINT", SIGINT)] {
        let dir = TempDir::new("graceful");
        let db = dir.join("cmdb.redb");
        let seed = write_seed(&dir);
        let mut srv = start(&db, &seed);
        let stop = Arc::new(AtomicBool::new(false));
        let out = Arc::new(Mutex::new(Outcomes::default()));
        let handles = writers(&srv.addr, 4, 0, seed_from_env(), &stop, &out);
        wait_first_ack(&out);
        std::thread::sleep(Duration::from_millis(100));
        let signalled = Instant::now();
        send_signal(&srv.child, sig);
        let status = wait_exit(&mut srv.child, Duration::from_secs(20))
            .unwrap_or_else(|| panic!("no exit within 20 s of {name}"));
        let took = signalled.elapsed();
        assert!(status.success(), "{name}: {status:?}");
        assert!(took < Duration::from_secs(5), "{name}: exit took {took:?}");
        for h in handles {
            h.join().expect("a writer failed");
        }
        let run = Arc::try_unwrap(out).ok().unwrap().into_inner().unwrap();
        assert!(!run.acked.is_empty(), "{name}: no load before the signal");
        assert!(closed_cleanly(&db), "{name}: the next open needs a repair");
        let srv = start(&db, &seed);
        let mut history = History::default();
        let floor = history.max_id();
        history.verify(&srv, &run, floor);
        srv.kill();
        check_clean(&db);
        eprintln!(
            "{name}: exit 0 after {took:?}; {} acknowledged requests present, {} unanswered found whole, {} unanswered absent",
            history.acked_requests, history.in_doubt_found, history.in_doubt_absent
        );
    }
}

/// A request whose body is still arriving when SIGTERM comes is finished and answered; new
/// connections are refused meanwhile; an idle keep-alive connection does not hold the exit up.
#[test]
fn shutdown_finishes_the_request_in_flight() {
    let dir = TempDir::new("inflight");
    let db = dir.join("cmdb.redb");
    let mut srv = Server::file(&db);
    let mut idle = Conn::open(&srv.addr);
    let r = idle.send(
        "POST",
        LIST,
        &NATIVE_EN,
        br#"{"bk_biz_id":7,"service_instance_id":30}"#,
    );
    assert_eq!(r.status, 200);

    // Over 1 KiB: tiny_http hands a request to a worker before its body has arrived only then
    // (a smaller body is read whole first, and a request still being read is not yet taken).
    let items: Vec<Value> = (0..10).map(|i| item("inflight", i, 10)).collect();
    let body = create_body(30, &items);
    assert!(body.len() > 1024);
    let (head, tail) = body.split_at(body.len() / 2);
    let mut slow = Conn::open(&srv.addr);
    let mut req = format!(
        "POST {CREATE} HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in NATIVE_EN {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    slow.write_raw(req.as_bytes());
    slow.write_raw(head);
    // Let a worker take the request and block on the rest of its body.
    std::thread::sleep(Duration::from_millis(300));
    send_signal(&srv.child, SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        srv.child.try_wait().unwrap().is_none(),
        "exited with a request in flight"
    );
    assert!(
        Conn::try_open(&srv.addr).is_none(),
        "a new connection was accepted after SIGTERM"
    );
    slow.write_raw(tail);
    let r = slow
        .read_response()
        .expect("the request in flight is answered");
    let v = r.json();
    assert_eq!(v["result"], json!(true), "{v}");
    let pids: Vec<i64> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect();
    assert_eq!(pids.len(), 10);
    let status = wait_exit(&mut srv.child, Duration::from_secs(5)).expect("exit after the answer");
    assert!(status.success(), "{status:?}");
    assert!(closed_cleanly(&db));
    let srv = Server::file(&db);
    let list = srv.list(BIZ, 30);
    for (i, pid) in pids.iter().enumerate() {
        let found = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["property"]["bk_process_id"] == json!(pid))
            .unwrap_or_else(|| panic!("answered process {pid} is lost: {list}"));
        assert_item(*pid, 30, &found["property"], "inflight", i, 10);
    }
}

/// A client that never finishes its request cannot hold the shutdown up for longer than the
/// grace period (`limits::SHUTDOWN_GRACE_SECS`, 10 s); the file is still closed cleanly.
#[test]
fn shutdown_is_bounded() {
    let dir = TempDir::new("bounded");
    let db = dir.join("cmdb.redb");
    let mut srv = Server::file(&db);
    let mut stalled = Conn::open(&srv.addr);
    stalled.write_raw(
        format!("POST {CREATE} HTTP/1.1\r\nHost: test\r\nContent-Length: 100000\r\n\r\n{{")
            .as_bytes(),
    );
    std::thread::sleep(Duration::from_millis(300));
    let signalled = Instant::now();
    send_signal(&srv.child, SIGTERM);
    let status = wait_exit(&mut srv.child, Duration::from_secs(25)).expect("exit");
    let took = signalled.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(
        took >= Duration::from_secs(9) && took < Duration::from_secs(15),
        "exit after {took:?}, expected the 10 s grace period"
    );
    assert!(closed_cleanly(&db));
    drop(stalled);
}

// ---------------------------------------------------------------------------------------------
// The id rules
// ---------------------------------------------------------------------------------------------

fn create_one(srv: &Server, tag: &str) -> i64 {
    let body: Value = serde_json::from_slice(&create_body(30, &[item(tag, 0, 1)])).unwrap();
    let v = srv.create(&body);
    assert_eq!(v["result"], json!(true), "{v}");
    v["data"][0].as_i64().unwrap()
}

fn stop(mut srv: Server) {
    send_signal(&srv.child, SIGTERM);
    let status = wait_exit(&mut srv.child, Duration::from_secs(20)).expect("exit");
    assert!(status.success());
}

fn import(file: &Path, db: &Path) {
    let (code, out, err) = run_cli(&["import", s(file), "--db", s(db)]);
    assert_eq!(code, 0, "import: {out}{err}");
}

/// After a crash, a failed batch and imports with `sequences`, every new process id is larger
/// than every process id issued before.
#[test]
fn new_ids_exceed_every_issued_id() {
    let dir = TempDir::new("ids");
    let db = dir.join("cmdb.redb");
    let mut issued: Vec<i64> = vec![41];
    let next = |srv: &Server, tag: &str, issued: &mut Vec<i64>| {
        let id = create_one(srv, tag);
        let top = *issued.iter().max().unwrap();
        assert!(id > top, "{tag}: id {id} is not above {top}");
        issued.push(id);
        id
    };

    let srv = Server::file(&db);
    next(&srv, "first", &mut issued);
    // A failed batch consumes nothing that could come back, and gives nothing out.
    let failing: Value =
        serde_json::from_slice(&create_body(30, &failing_items("failing", 5))).unwrap();
    let v = srv.create(&failing);
    assert_eq!(v["bk_error_code"], json!(1199014), "{v}");
    next(&srv, "after-failed-batch", &mut issued);
    // A crash right after an acknowledged create.
    let before_crash = next(&srv, "before-crash", &mut issued);
    srv.kill();
    let srv = Server::file(&db);
    let after = next(&srv, "after-crash", &mut issued);
    assert!(after > before_crash);
    stop(srv);

    // An import whose `sequences` are below what was issued lowers nothing.
    let low = dir.join("low.json");
    std::fs::write(
        &low,
        json!({"format": "cmdb-lite/1", "sequences": {"process": 5}}).to_string(),
    )
    .unwrap();
    import(&low, &db);
    let srv = Server::file(&db);
    next(&srv, "after-low-sequences", &mut issued);
    stop(srv);

    // An import of a process with a larger id, without `sequences`: new ids continue above it.
    let export = {
        let (code, out, err) = run_cli(&["export", "--db", s(&db)]);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<Value>(&out).unwrap()
    };
    let mut si = export["service_instances"][0].clone();
    si["id"] = json!(50);
    si["name"] = json!("imported");
    si["service_template_id"] = json!(0);
    si["bk_module_id"] = json!(20);
    let mut proc = item_with(&export["processes"], "bk_process_id", 41);
    proc["bk_process_id"] = json!(900);
    proc["service_instance_id"] = json!(50);
    proc["relation"]["bk_process_id"] = json!(900);
    proc["relation"]["service_instance_id"] = json!(50);
    proc["relation"]["process_template_id"] = json!(0);
    let high = dir.join("high.json");
    std::fs::write(
        &high,
        json!({"format": "cmdb-lite/1", "service_instances": [si], "processes": [proc]})
            .to_string(),
    )
    .unwrap();
    import(&high, &db);
    issued.push(900);
    let srv = Server::file(&db);
    assert_eq!(next(&srv, "after-import-900", &mut issued), 901);
    stop(srv);

    // An import that raises the sequence itself.
    let raise = dir.join("raise.json");
    std::fs::write(
        &raise,
        json!({"format": "cmdb-lite/1", "sequences": {"process": 5000}}).to_string(),
    )
    .unwrap();
    import(&raise, &db);
    let srv = Server::file(&db);
    assert_eq!(next(&srv, "after-sequence-5000", &mut issued), 5001);
    // Issue 4 (delete of process instances): delete the newest process here, restart, and
    // show the next id is still above it.
    srv.kill();
    let srv = Server::file(&db);
    next(&srv, "after-second-crash", &mut issued);
    stop(srv);
    check_clean(&db);
}

// ---------------------------------------------------------------------------------------------
// Reset and load (`serve --admin`)
// ---------------------------------------------------------------------------------------------

fn admin_post(srv: &Server, path: &str, body: &[u8]) {
    let r = srv.request("POST", path, &[], body);
    assert_eq!(r.status, 200, "{path}: {}", r.body);
}

fn names_at_30(srv: &Server) -> BTreeSet<String> {
    process_names(&srv.list(BIZ, 30)).into_iter().collect()
}

/// A load or a reset that was acknowledged survives SIGKILL whole; writes acknowledged after a
/// reset survive it, and writes before it stay gone.
#[test]
fn an_acknowledged_reset_or_load_survives_a_crash() {
    let dir = TempDir::new("admin-crash");
    let db = dir.join("cmdb.redb");
    let admin = |db: &Path| Server::start(&["--db", s(db), "--admin"]);

    // Load, then SIGKILL at once: the loaded dataset is what the restart finds.
    let srv = admin(&db);
    create_one(&srv, "before-load");
    let mut ds = demo_dataset();
    ds["processes"][1]["bk_process_name"] = json!("loaded-billing");
    admin_post(&srv, "/_cmdb/load", ds.to_string().as_bytes());
    srv.kill();
    let srv = admin(&db);
    let names = names_at_30(&srv);
    assert!(names.contains("loaded-billing"), "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("before-load")),
        "{names:?}"
    );

    // Writers on four connections; a reset in the middle; SIGKILL while they still write.
    let stop = Arc::new(AtomicBool::new(false));
    let reset_end: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let acked = Arc::new(Mutex::new(Vec::<(String, Instant)>::new()));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (addr, stop, acked) = (srv.addr.clone(), stop.clone(), acked.clone());
            std::thread::spawn(move || {
                let Some(mut conn) = Conn::try_open(&addr) else {
                    return;
                };
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    let name = format!("w{t}-{i}");
                    let body = json!({"bk_biz_id": BIZ, "service_instance_id": 30, "processes": [
                        {"process_info": {"bk_process_name": name, "bk_func_name": name}}]});
                    let start = Instant::now();
                    let Some(r) =
                        conn.try_send("POST", CREATE, &NATIVE_EN, body.to_string().as_bytes())
                    else {
                        return;
                    };
                    if r.json()["result"] == json!(true) {
                        acked.lock().unwrap().push((name, start));
                    }
                    i += 1;
                }
            })
        })
        .collect();
    while acked.lock().unwrap().len() < 20 {
        std::thread::sleep(Duration::from_millis(2));
    }
    admin_post(&srv, "/_cmdb/reset", b"");
    *reset_end.lock().unwrap() = Some(Instant::now());
    let after = |acked: &Arc<Mutex<Vec<(String, Instant)>>>| {
        let end = reset_end.lock().unwrap().unwrap();
        acked
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, start)| *start > end)
            .count()
    };
    while after(&acked) < 20 {
        std::thread::sleep(Duration::from_millis(2));
    }
    srv.kill();
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    check_clean(&db);
    let srv = admin(&db);
    let names = names_at_30(&srv);
    assert!(
        names.contains("billing"),
        "the reset's seed is back: {names:?}"
    );
    assert!(!names.contains("loaded-billing"), "{names:?}");
    let end = reset_end.lock().unwrap().unwrap();
    for (name, start) in acked.lock().unwrap().iter() {
        if *start > end {
            assert!(
                names.contains(name),
                "{name} was acknowledged after the reset, then lost"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// compact: the offline rewrite of a stopped store, killed at random moments
// ---------------------------------------------------------------------------------------------

/// `cmdb-lite compact` moves a store's pages and truncates its file. Killed (SIGKILL) at a random
/// moment of its run, it loses nothing: after redb's repair the store is clean and holds exactly
/// what it held before, and a later `compact` completes. `CMDB_CRASH_SEED` replays a run.
#[test]
fn compact_killed_at_random_moments_loses_nothing() {
    let seed = seed_from_env();
    eprintln!("compact crash test: CMDB_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let dir = TempDir::new("compactcrash");
    let db = dir.join("cmdb.redb");
    // A store with free space to give back: many processes created, most deleted.
    let srv = start(&db, &write_seed(&dir));
    let mut pids = Vec::new();
    for k in 0..40 {
        let items: Vec<Value> = (0..100).map(|i| item(&format!("c{k}"), i, 100)).collect();
        let v: Value = serde_json::from_str(
            &srv.request(
                "POST",
                CREATE,
                &NATIVE_EN,
                &create_body(SIS[k % SIS.len()], &items),
            )
            .body,
        )
        .unwrap();
        assert_eq!(v["result"], json!(true), "{v}");
        pids.extend(
            v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_i64().unwrap()),
        );
    }
    for chunk in pids[..3_600].chunks(500) {
        let v = srv.native_method(
            "DELETE",
            "/api/v3/delete/proc/process_instance",
            &json!({"bk_biz_id": BIZ, "process_instance_ids": chunk}),
        );
        assert_eq!(v["result"], json!(true), "{v}");
    }
    stop(srv);
    let export = || {
        let (code, out, err) = run_cli(&["export", "--db", s(&db)]);
        assert_eq!(code, 0, "export: {err}");
        out
    };
    let before = export();
    // How long one compact takes here, on a copy, to aim the kills inside it. Every cycle
    // starts again from the store as it was before any compaction.
    let original = dir.join("original.redb");
    std::fs::copy(&db, &original).unwrap();
    let copy = dir.join("copy.redb");
    std::fs::copy(&db, &copy).unwrap();
    let t = Instant::now();
    let (code, out, err) = run_cli(&["compact", "--db", s(&copy)]);
    assert_eq!(code, 0, "{out}{err}");
    let took = t.elapsed().as_micros().max(1) as u64;
    eprintln!("compact took {took} µs: {}", out.trim());
    for cycle in 0..5 {
        std::fs::copy(&original, &db).unwrap();
        let mut child = std::process::Command::new(BIN)
            .args(["compact", "--db", s(&db)])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(rng.below(took + took / 2)));
        let _ = child.kill();
        let status = child.wait().unwrap();
        eprintln!("cycle {cycle}: compact {status}");
        check_clean(&db);
        assert_eq!(export(), before, "cycle {cycle}: the data changed");
    }
    let (code, out, err) = run_cli(&["compact", "--db", s(&db)]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(export(), before);
}

// ---------------------------------------------------------------------------------------------
// Crashes during template syncs
// ---------------------------------------------------------------------------------------------

/// Hosts of the sync crash test's module 22, one service instance each once synced.
const SYNC_HOSTS: std::ops::RangeInclusive<i64> = 100..=199;

/// The demo plus hosts 100..=199, all in module 22 (template 9), renamed after its template.
fn write_sync_seed(dir: &TempDir) -> PathBuf {
    write_sync_seed_with(dir, SYNC_HOSTS)
}

fn write_sync_seed_with(dir: &TempDir, hosts: std::ops::RangeInclusive<i64>) -> PathBuf {
    let mut ds = demo_dataset();
    for h in hosts.clone() {
        ds["hosts"].as_array_mut().unwrap().push(json!({
            "bk_host_id": h, "bk_host_innerip": format!("10.0.{}.{}", h / 256, h % 256),
            "bk_host_outerip": "", "bk_host_innerip_v6": "", "bk_host_outerip_v6": "",
            "bk_cloud_id": 0}));
    }
    for m in ds["modules"].as_array_mut().unwrap() {
        if m["bk_module_id"] == 22 {
            m["bk_module_name"] = json!("tpl-web");
            m["hosts"] = json!(hosts.clone().collect::<Vec<_>>());
        }
    }
    // The dataset's host sequence must cover the hosts added here.
    let top = ds["sequences"]["host"]
        .as_i64()
        .unwrap_or(0)
        .max(*hosts.end());
    ds["sequences"]["host"] = json!(top);
    let path = dir.join("sync-seed.json");
    std::fs::write(&path, ds.to_string()).unwrap();
    path
}

/// What one cycle's client saw: the last acknowledged template change and sync, and the one
/// left unanswered by the kill, if any.
#[derive(Default, Debug)]
struct SyncRun {
    template_acked: Option<u64>,
    template_in_doubt: Option<u64>,
    sync_acked: Option<u64>,
    sync_in_doubt: Option<u64>,
}

/// One client: changes nginx's locked `start_cmd` to `gen-N`, syncs module 22, again and
/// again, until the server dies.
fn sync_load(addr: &str, first_gen: u64, out: &Arc<Mutex<SyncRun>>) {
    let Some(mut conn) = Conn::try_open(addr) else {
        return;
    };
    let mut generation = first_gen;
    loop {
        generation += 1;
        let update = json!({"bk_biz_id": BIZ, "process_template_id": 10, "process_property": {
            "start_cmd": {"value": format!("gen-{generation}"), "as_default_value": true}}});
        let Some(r) = conn.try_send(
            "PUT",
            "/api/v3/update/proc/proc_template",
            &NATIVE_EN,
            update.to_string().as_bytes(),
        ) else {
            out.lock().unwrap().template_in_doubt = Some(generation);
            return;
        };
        assert_eq!(r.json()["result"], json!(true), "{}", r.body);
        out.lock().unwrap().template_acked = Some(generation);
        let sync = json!({"bk_biz_id": BIZ, "service_template_id": 9, "bk_module_ids": [22]});
        let Some(r) = conn.try_send(
            "PUT",
            "/api/v3/update/proc/service_instance/sync",
            &NATIVE_EN,
            sync.to_string().as_bytes(),
        ) else {
            out.lock().unwrap().sync_in_doubt = Some(generation);
            return;
        };
        assert_eq!(r.json(), ok_native(Value::Null), "{}", r.body);
        out.lock().unwrap().sync_acked = Some(generation);
    }
}

/// The nginx `start_cmd` of every instance of module 22 (and checks each has its two
/// processes, from templates 10 and 11).
fn synced_start_cmds(srv: &Server) -> Vec<String> {
    let r = srv.native(
        "/api/v3/findmany/proc/service_instance/details",
        &json!({"bk_biz_id": BIZ, "bk_module_id": 22, "page": {"limit": 200}}),
    );
    assert_eq!(r["result"], json!(true), "{r}");
    let mut cmds = Vec::new();
    for si in r["data"]["info"].as_array().unwrap() {
        let procs = si["process_instances"].as_array().unwrap();
        let templates: Vec<i64> = procs
            .iter()
            .map(|p| p["relation"]["process_template_id"].as_i64().unwrap())
            .collect();
        assert_eq!(templates, [10, 11], "instance {}", si["id"]);
        cmds.push(
            procs[0]["process"]["start_cmd"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    cmds
}

fn template_start_cmd(srv: &Server) -> String {
    let r = srv.native(
        "/api/v3/find/proc/proc_template/id/10",
        &json!({"bk_biz_id": BIZ}),
    );
    r["data"]["property"]["start_cmd"]["value"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn crash_during_syncs_of_100_instances() {
    let cycles: usize = std::env::var("CMDB_SYNC_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let rng_seed = seed_from_env();
    let mut rng = Rng(rng_seed);
    let dir = TempDir::new("synccrash");
    let db = dir.join("cmdb.redb");
    let seed = write_sync_seed(&dir);
    // What the store is known to hold: the template's start_cmd and the instances' one.
    let mut template = "./sbin/nginx".to_string();
    let mut synced: Option<String> = None;
    let mut run = SyncRun::default();
    let (mut acked_syncs, mut whole_in_doubt, mut absent_in_doubt) = (0, 0, 0);
    let gen_name = |g: Option<u64>| g.map(|g| format!("gen-{g}"));
    for cycle in 0..=cycles {
        let srv = start(&db, &seed);
        // The template: the last acknowledged change, or the one in doubt.
        let t = template_start_cmd(&srv);
        let t_ok = gen_name(run.template_acked).unwrap_or_else(|| template.clone());
        assert!(
            t == t_ok || Some(&t) == gen_name(run.template_in_doubt).as_ref(),
            "cycle {cycle}: template {t}, acknowledged {t_ok}, {run:?}"
        );
        template = t;
        // The instances: none or all 100, all at one generation: the last acknowledged sync
        // or the one in doubt, never a mix.
        let cmds = synced_start_cmds(&srv);
        let hosts = SYNC_HOSTS.count();
        assert!(
            cmds.is_empty() || cmds.len() == hosts,
            "cycle {cycle}: {} instances",
            cmds.len()
        );
        let first = cmds.first().cloned();
        assert!(
            cmds.iter().all(|c| Some(c) == first.as_ref()),
            "cycle {cycle}: a half-applied sync: {cmds:?}"
        );
        let acked = gen_name(run.sync_acked).or_else(|| synced.clone());
        let in_doubt = gen_name(run.sync_in_doubt);
        if first != acked {
            assert!(
                in_doubt.is_some() && first == in_doubt,
                "cycle {cycle}: instances at {first:?}, acknowledged {acked:?}, {run:?}"
            );
            whole_in_doubt += 1;
        } else if in_doubt.is_some() {
            absent_in_doubt += 1;
        }
        synced = first;
        if cycle == cycles {
            stop(srv);
            break;
        }
        let out = Arc::new(Mutex::new(SyncRun::default()));
        let addr = srv.addr.clone();
        let first_gen = (cycle as u64 + 1) * 1_000_000;
        let load = {
            let out = Arc::clone(&out);
            std::thread::spawn(move || sync_load(&addr, first_gen, &out))
        };
        // Kill once a sync has been acknowledged, at a random moment after.
        let deadline = Instant::now() + Duration::from_secs(120);
        while out.lock().unwrap().sync_acked.is_none() {
            assert!(Instant::now() < deadline, "no sync answered within 120 s");
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(rng.below(400)));
        srv.kill();
        load.join().expect("the sync client failed");
        run = Arc::try_unwrap(out).ok().unwrap().into_inner().unwrap();
        acked_syncs += 1;
        if cycle % 2 == 1 {
            check_clean(&db);
        }
    }
    check_clean(&db);
    eprintln!(
        "sync crash test: {cycles} kill cycles, seed {rng_seed}, {} hosts: syncs at the \
         acknowledged generation or, when unanswered, found whole {whole_in_doubt} times and \
         absent {absent_in_doubt} times; half-applied 0 ({acked_syncs} cycles with a sync acked)",
        SYNC_HOSTS.count()
    );
}

/// Service instances of module 22.
fn instance_count(srv: &Server) -> u64 {
    let r = srv.native(
        "/api/v3/findmany/proc/service_instance",
        &json!({"bk_biz_id": BIZ, "bk_module_id": 22, "page": {"limit": 1}}),
    );
    r["data"]["count"].as_u64().unwrap_or_else(|| panic!("{r}"))
}

/// A sync large enough to hold the store alone (2,600 hosts × 2 process templates >
/// `MAX_SYNC_GROUPED_PROCESSES`): killed while it runs, it is absent after the restart; run
/// again, it is all there.
#[test]
fn crash_during_a_sync_that_holds_the_store_alone() {
    let _alone = serial();
    let dir = TempDir::new("synccrash-alone");
    let db = dir.join("cmdb.redb");
    let hosts = 1000..=3599;
    let seed = write_sync_seed_with(&dir, hosts.clone());
    let srv = start(&db, &seed);
    let addr = srv.addr.clone();
    let answered = Arc::new(AtomicBool::new(false));
    let client = {
        let answered = Arc::clone(&answered);
        std::thread::spawn(move || {
            let mut conn = Conn::try_open(&addr).expect("connect");
            let sync = json!({"bk_biz_id": BIZ, "service_template_id": 9, "bk_module_ids": [22]});
            let r = conn.try_send(
                "PUT",
                "/api/v3/update/proc/service_instance/sync",
                &NATIVE_EN,
                sync.to_string().as_bytes(),
            );
            answered.store(r.is_some(), Ordering::SeqCst);
        })
    };
    // The sync of 2,600 instances takes seconds; the kill lands inside it.
    std::thread::sleep(Duration::from_millis(300));
    srv.kill();
    client.join().expect("the client failed");
    let srv = start(&db, &seed);
    let n = instance_count(&srv);
    if answered.load(Ordering::SeqCst) {
        eprintln!("the sync finished before the kill: nothing was tested half-way");
        assert_eq!(n, hosts.clone().count() as u64);
    } else {
        assert_eq!(n, 0, "a half-applied sync after the restart");
    }
    // Seconds on an idle machine, minutes on a loaded one: a patient connection.
    let r = Conn::open_within(&srv.addr, Duration::from_secs(600)).send(
        "PUT",
        "/api/v3/update/proc/service_instance/sync",
        &NATIVE_EN,
        json!({"bk_biz_id": BIZ, "service_template_id": 9, "bk_module_ids": [22]})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(r.json(), ok_native(Value::Null));
    assert_eq!(instance_count(&srv), hosts.count() as u64);
    let d = srv.native(
        "/api/v3/findmany/proc/service_template/sync_status/biz/7",
        &json!({"bk_module_ids": [22]}),
    );
    assert_eq!(d["data"]["modules"][0]["need_sync"], json!(false), "{d}");
    stop(srv);
    check_clean(&db);
}

// ---------------------------------------------------------------------------------------------
// Crashes during host transfers into and out of template modules
// ---------------------------------------------------------------------------------------------

/// The topology of the transfer crash test, built through the API on a fresh install: set 3,
/// template modules 7 (template 1, two process templates) and 8 (template 2, one), raw module
/// 9, and [`TRANSFER_HOSTS`] hosts in business 2's idle module 4.
const TRANSFER_HOSTS: i64 = 24;
const IDLE: i64 = 4;
const TPL_A: i64 = 7;
const TPL_B: i64 = 8;
const RAW: i64 = 9;

fn api_ok(conn: &mut Conn, method: &str, path: &str, body: Value) -> Value {
    let r = conn.send(method, path, &NATIVE_EN, body.to_string().as_bytes());
    let v = r.json();
    assert_eq!(v["result"], json!(true), "{path} {body}: {v}");
    v["data"].clone()
}

fn build_transfer_topology(srv: &Server) {
    let mut c = Conn::open(&srv.addr);
    api_ok(
        &mut c,
        "POST",
        "/api/v3/set/2",
        json!({"bk_set_name": "s", "bk_parent_id": 2}),
    );
    for (name, procs) in [("a", vec!["a1", "a2"]), ("b", vec!["b1"])] {
        let st = api_ok(
            &mut c,
            "POST",
            "/api/v3/create/proc/service_template",
            json!({"bk_biz_id": 2, "name": name, "service_category_id": 2}),
        )["id"]
            .clone();
        let specs: Vec<Value> = procs
            .iter()
            .enumerate()
            .map(|(i, p)| {
                json!({"spec": {"bk_process_name": {"value": p}, "bk_func_name": {"value": p},
                "bind_info": {"value": [{"ip": {"value": "1"}, "port": {"value": format!("{}", 8000 + i)},
                    "protocol": {"value": "1"}, "enable": {"value": true}}]}}})
            })
            .collect();
        api_ok(
            &mut c,
            "POST",
            "/api/v3/createmany/proc/proc_template",
            json!({"bk_biz_id": 2, "service_template_id": st, "processes": specs}),
        );
        api_ok(
            &mut c,
            "POST",
            "/api/v3/module/2/3",
            json!({"service_template_id": st, "bk_parent_id": 3}),
        );
    }
    api_ok(
        &mut c,
        "POST",
        "/api/v3/module/2/3",
        json!({"bk_module_name": "raw", "bk_parent_id": 3}),
    );
    let hosts: Vec<Value> = (1..=TRANSFER_HOSTS)
        .map(|i| json!({"bk_host_innerip": format!("10.1.0.{i}"), "bk_cloud_id": 0, "bk_addressing": "static"}))
        .collect();
    let ids = api_ok(
        &mut c,
        "POST",
        "/api/v3/hosts/add/business_idle",
        json!({"bk_biz_id": 2, "bk_host_list": hosts}),
    );
    assert_eq!(
        ids["bk_host_ids"].as_array().unwrap().len(),
        TRANSFER_HOSTS as usize
    );
}

/// A host's modules after each kind of transfer, from `now`.
fn after_transfer(op: u64, now: &BTreeSet<i64>) -> (Value, BTreeSet<i64>) {
    let set = |v: &[i64]| v.iter().copied().collect::<BTreeSet<i64>>();
    match op {
        0 => (json!({"bk_module_id": [TPL_A]}), set(&[TPL_A])),
        1 => (json!({"bk_module_id": [TPL_B]}), set(&[TPL_B])),
        2 => (json!({"bk_module_id": [RAW]}), set(&[RAW])),
        3 => (json!({"bk_module_id": [TPL_A, RAW]}), set(&[TPL_A, RAW])),
        4 => {
            let mut s: BTreeSet<i64> = now.iter().copied().filter(|m| *m != IDLE).collect();
            s.insert(TPL_B);
            (json!({"bk_module_id": [TPL_B], "is_increment": true}), s)
        }
        _ => (json!({}), set(&[IDLE])),
    }
}

/// What the transfer load knows of each host: its state if the last request was answered, or
/// the two states it may be in if the server died before answering.
#[derive(Default)]
struct Placement {
    known: BTreeMap<i64, BTreeSet<i64>>,
    in_doubt: BTreeMap<i64, (BTreeSet<i64>, BTreeSet<i64>)>,
    acked: usize,
}

/// Each writer moves its own hosts (host % writers == w), so every host's state is known.
fn transfer_writers(
    addr: &str,
    count: u64,
    rng_seed: u64,
    stop: &Arc<AtomicBool>,
    state: &Arc<Mutex<Placement>>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..count)
        .map(|w| {
            let addr = addr.to_string();
            let stop = Arc::clone(stop);
            let state = Arc::clone(state);
            let mut rng = Rng(rng_seed ^ (w + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            std::thread::spawn(move || {
                let Some(mut conn) = Conn::try_open(&addr) else {
                    return;
                };
                let mine: Vec<i64> = (1..=TRANSFER_HOSTS)
                    .filter(|h| *h as u64 % count == w)
                    .collect();
                while !stop.load(Ordering::Relaxed) {
                    let host = mine[rng.below(mine.len() as u64) as usize];
                    let now = state.lock().unwrap().known[&host].clone();
                    let op = rng.below(6);
                    let (extra, next) = after_transfer(op, &now);
                    let mut body = json!({"bk_biz_id": 2, "bk_host_id": [host]});
                    for (k, v) in extra.as_object().unwrap() {
                        body[k] = v.clone();
                    }
                    let path = if op == 5 {
                        "/api/v3/hosts/modules/idle"
                    } else {
                        "/api/v3/hosts/modules"
                    };
                    let resp = conn.try_send("POST", path, &NATIVE_EN, body.to_string().as_bytes());
                    let mut st = state.lock().unwrap();
                    let Some(resp) = resp else {
                        st.in_doubt.insert(host, (now, next));
                        return;
                    };
                    let v = resp.json();
                    assert_eq!(v["result"], json!(true), "{body}: {v}");
                    st.known.insert(host, next);
                    st.acked += 1;
                }
            })
        })
        .collect()
}

/// Host → modules.
type Modules = BTreeMap<i64, BTreeSet<i64>>;
/// Host → (template module → processes of its instance there).
type Instances = BTreeMap<i64, BTreeMap<i64, usize>>;

fn placement(srv: &Server) -> (Modules, Instances) {
    let mut c = Conn::open(&srv.addr);
    let ids: Vec<i64> = (1..=TRANSFER_HOSTS).collect();
    let rel = api_ok(
        &mut c,
        "POST",
        "/api/v3/hosts/modules/read",
        json!({"bk_biz_id": 2, "bk_host_id": ids}),
    );
    let mut modules: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
    for r in rel.as_array().unwrap() {
        modules
            .entry(r["bk_host_id"].as_i64().unwrap())
            .or_default()
            .insert(r["bk_module_id"].as_i64().unwrap());
    }
    let mut instances: BTreeMap<i64, BTreeMap<i64, usize>> = BTreeMap::new();
    for m in [TPL_A, TPL_B, RAW] {
        let d = api_ok(
            &mut c,
            "POST",
            "/api/v3/findmany/proc/service_instance/details",
            json!({"bk_biz_id": 2, "bk_module_id": m, "page": {"start": 0, "limit": 200}}),
        );
        for si in d["info"].as_array().unwrap() {
            let host = si["bk_host_id"].as_i64().unwrap();
            let n = si["process_instances"].as_array().map_or(0, Vec::len);
            let prev = instances.entry(host).or_default().insert(m, n);
            assert!(prev.is_none(), "host {host}: two instances in module {m}");
        }
    }
    (modules, instances)
}

#[test]
fn crash_during_transfers_into_template_modules() {
    let cycles: usize = std::env::var("CMDB_TRANSFER_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let rng_seed = seed_from_env();
    let mut rng = Rng(rng_seed);
    let dir = TempDir::new("transfer-crash");
    let seed = dir.join("fresh.json");
    std::fs::write(&seed, FRESH_INSTALL).unwrap();
    let db = dir.join("cmdb.redb");
    let srv = start(&db, &seed);
    build_transfer_topology(&srv);
    stop(srv);
    let mut state = Placement::default();
    for h in 1..=TRANSFER_HOSTS {
        state.known.insert(h, [IDLE].into_iter().collect());
    }
    let started = Instant::now();
    let (mut acked, mut doubt_new, mut doubt_old, mut doubt_same, mut checks) = (0, 0, 0, 0, 0);
    for cycle in 0..=cycles {
        let srv = start(&db, &seed);
        let (modules, instances) = placement(&srv);
        // Every acknowledged transfer is there; an unanswered one is there whole or not at all.
        for h in 1..=TRANSFER_HOSTS {
            let got = modules.get(&h).cloned().unwrap_or_default();
            if let Some((old, new)) = state.in_doubt.remove(&h) {
                assert!(
                    got == old || got == new,
                    "cycle {cycle}, host {h}: {got:?}, neither {old:?} nor {new:?} (half)"
                );
                if new == old {
                    doubt_same += 1;
                } else if got == new {
                    doubt_new += 1;
                } else {
                    doubt_old += 1;
                }
                state.known.insert(h, got.clone());
            }
            assert_eq!(
                got, state.known[&h],
                "cycle {cycle}, host {h}: acknowledged transfer lost"
            );
            // An instance exactly in each template module the host is in, with every process.
            let mut want = BTreeMap::new();
            if got.contains(&TPL_A) {
                want.insert(TPL_A, 2);
            }
            if got.contains(&TPL_B) {
                want.insert(TPL_B, 1);
            }
            let have = instances.get(&h).cloned().unwrap_or_default();
            assert_eq!(
                have, want,
                "cycle {cycle}, host {h} in {got:?}: instances (half)"
            );
        }
        if cycle == cycles {
            stop(srv);
            break;
        }
        let stop_flag = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Mutex::new(std::mem::take(&mut state)));
        let handles = transfer_writers(&srv.addr, 3, rng.next(), &stop_flag, &shared);
        let deadline = Instant::now() + Duration::from_secs(30);
        while shared.lock().unwrap().acked == 0 {
            assert!(Instant::now() < deadline, "no answer within 30 s");
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(rng.below(200)));
        srv.kill();
        for h in handles {
            h.join().expect("a writer failed");
        }
        state = Arc::try_unwrap(shared).ok().unwrap().into_inner().unwrap();
        acked += state.acked;
        state.acked = 0;
        if cycle % 2 == 1 {
            check_clean(&db);
            checks += 1;
        }
    }
    check_clean(&db);
    eprintln!(
        "transfer crash test: {cycles} kill cycles, seed {rng_seed}, {} s: {acked} acknowledged transfers, \
         {doubt_new} unanswered found applied whole, {doubt_old} unanswered absent, {doubt_same} unanswered \
         that would change nothing, {} checks of a crashed file; \
         lost 0, half 0",
        started.elapsed().as_secs_f32(),
        checks + 1,
    );
    assert!(acked >= cycles, "at least one per cycle");
}
