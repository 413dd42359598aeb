//! `cmdb-lite bench`: throughput and latency of the real server, measured against two floors
//! in the same run (README, "Benchmark").
//!
//! The floors are this binary's `serve --floor` (`store::floor`): the same HTTP stack writing
//! only a process create's records, in the group commit or each request with a sync of its own.
//! The server is this very binary too, started as a child process on a file database in a
//! temporary folder, seeded with a generated dataset; both are driven over plain-TCP
//! keep-alive HTTP/1.1 connections. Every figure that is compared is measured in the same run:
//! the machine may be busy, so ratios count, absolute numbers do not.
//!
//! `--scale` instead compares a store of 10,000 processes with one of 1,000,000 (1,000 per service
//! instance), both loaded with `cmdb-lite import`: import time and peak RSS, startup to the
//! first answered request, create and list latency (measured in alternating slices on both
//! servers, so that a busy machine weighs on both alike) and the servers' peak RSS.

mod dataset;
mod report;
mod scale;
mod server;

use crate::client::Client;
use crate::clock;
use crate::domain::process::{self, ServerFields};
use crate::limits::MAX_PROCESSES_PER_REQUEST;
use crate::store::floor::{Floor, Shape};
use crate::store::records::Relation;
use crate::tempdir::TempDir;
use dataset::*;
use report::*;
use scale::*;
use serde_json::{Map, Value, json};
use server::*;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// `bench` defaults: seconds each scenario is measured, connections of the concurrent
/// scenarios, processes in the service instance the list scenario reads.
pub const BENCH_SECS: f64 = 3.0;
pub const BENCH_CONNECTIONS: usize = 8;
pub const BENCH_LIST_SIZE: usize = 100;
/// `bench`: `resource_watch` long polls waiting (on hosts, which nothing changes) beside the
/// creates of the idle-watchers comparison.
pub const BENCH_IDLE_WATCHERS: usize = 100;
/// `bench`: the slices a measurement is cut into, alternating with what it is compared with.
pub const BENCH_ROUNDS: usize = 3;
/// `bench --scale`: processes of the small and (default) large store, processes per service
/// instance in both.
pub const BENCH_SCALE_SMALL: usize = 10_000;
pub const BENCH_SCALE_LARGE: usize = 1_000_000;
pub const BENCH_PROCESSES_PER_INSTANCE: usize = 1_000;
/// `bench` datasets: hosts per host module (the module list_biz_hosts reads), and at least one
/// host per so many processes (10,000 hosts for 1,000,000 processes), never fewer than one
/// module's worth.
pub const BENCH_HOSTS_PER_MODULE: usize = 1_000;
pub const BENCH_PROCESSES_PER_HOST: usize = 100;
/// `bench`: hosts (so service instances) of the module its template-sync scenario syncs, each
/// instance with one process per each of the template's 3 process templates.
pub const BENCH_SYNC_INSTANCES: usize = 1_000;

/// What to run (the `bench` command's flags).
pub struct Options {
    /// Seconds each scenario is measured.
    pub secs: f64,
    /// Connections of the concurrent scenarios.
    pub connections: usize,
    /// Processes in the service instance the list scenario reads.
    pub list_size: usize,
    /// Run the scale comparison instead of the throughput table.
    pub scale: bool,
    /// Processes of the large store of the scale comparison.
    pub scale_processes: usize,
    /// Service instances of the template-sync scenario.
    pub sync_instances: usize,
    /// Where the temporary folder goes (default: the system's).
    pub dir: Option<PathBuf>,
    /// The server's `--cache-mib`.
    pub cache_mib: usize,
    /// The server's `--threads`.
    pub threads: usize,
    /// Idle `resource_watch` long polls of the watchers comparison.
    pub watchers: usize,
}

const BIZ: i64 = 1;
const CREATE_PATH: &str = "/api/v3/create/proc/process_instance";
const ESB_CREATE_PATH: &str = "/api/c/compapi/v2/cc/create_process_instance/";
const LIST_PATH: &str = "/api/v3/findmany/proc/process_instance";
const WATCH_HOSTS_PATH: &str = "/api/v3/event/watch/resource/host";
/// A watch of hosts from the start of the window (bk-cmdb's `NoEventCursor`): nothing writes
/// hosts, so it waits its whole long poll.
const WATCH_HOSTS_BODY: &str = r#"{"bk_cursor":"MQ0xDTVlYTZkM2YzOTRjMWY1ZDk4NmU5YmQ4Ng1ub0V2ZW50DTENMQ0=","bk_fields":["bk_host_id"]}"#;
/// The topology reads of `--scale`, and the module ids of the generated datasets: module 1
/// holds the hosts of the empty service instances, module `SI_MODULE_BASE + si` the one host of
/// populated instance `si`, module `HOST_MODULE_BASE + k` the `k`-th thousand hosts.
const HOSTS_PATH: &str = "/api/v3/hosts/app/1/list_hosts";
const RELATED_PATH: &str = "/api/v3/findmany/proc/process_related_info/biz/1";
const SI_MODULE_BASE: i64 = 1_000_000;
const HOST_MODULE_BASE: i64 = 2_000_000;

/// Runs the benchmark and prints its table on standard output.
pub fn run(o: &Options) -> Result<(), String> {
    if o.connections == 0
        || o.list_size == 0
        || o.sync_instances == 0
        || o.secs.is_nan()
        || o.secs <= 0.0
    {
        return Err(
            "--secs, --connections, --list-size and --sync-instances must be positive".into(),
        );
    }
    let tmp = match &o.dir {
        Some(base) => TempDir::new_in(base, "bench")?,
        None => TempDir::new("bench")?,
    };
    println!("{}", machine_line(o, tmp.path()));
    println!("load average before: {}", load_average());
    if o.scale {
        scale(o, &tmp)?;
    } else {
        throughput(o, &tmp)?;
    }
    println!("load average after:  {}", load_average());
    Ok(())
}

fn machine_line(o: &Options, dir: &Path) -> String {
    let build = if cfg!(debug_assertions) {
        "DEBUG build (figures are not meaningful; use --release)"
    } else {
        "release build"
    };
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "cmdb-lite bench: {build}, {cpus} CPUs, {:.1} s per scenario, server --threads {} --cache-mib {}, files in {}",
        o.secs,
        o.threads,
        o.cache_mib,
        dir.display()
    )
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

// ---------------------------------------------------------------------------------------------
// The throughput table
// ---------------------------------------------------------------------------------------------

fn throughput(o: &Options, tmp: &TempDir) -> Result<(), String> {
    let time = Duration::from_secs_f64(o.secs);
    let slice = time / BENCH_ROUNDS as u32;
    let warm = time.min(Duration::from_millis(500)) / 2;
    let now = clock::format_ms(clock::now_ms());

    // The server: instance 1 holds `list_size` processes, 2.. are empty create targets (one per
    // connection, and one more that every connection of the ESB scenarios shares).
    let layout = Layout {
        populated: 1,
        per_instance: o.list_size,
        empty: o.connections + 1,
    };
    let seed = tmp.join("seed.json");
    layout.write(&seed, &now)?;
    let server = Server::start(&tmp.join("bench.redb"), Some(&seed), o, false)?;
    // The floors: `serve --floor` on a file of its own, the same HTTP stack and group commit.
    let floor = Server::start(&tmp.join("floor.redb"), None, o, true)?;
    let targets: Vec<i64> = layout.empty_ids().collect();
    let shared = targets[o.connections];

    // Each create scenario alternates, slice by slice, with both floors of its shape (as many
    // connections, as many processes per request), so that all three see the same machine.
    let n = MAX_PROCESSES_PER_REQUEST;
    let c = o.connections;
    let scenarios = [
        ("create_process_instance", 1, 1, false),
        ("create_process_instance", c, 1, false),
        ("create_process_instance", 1, n, false),
        ("create_process_instance", c, n, false),
        ("create (ESB, one instance)", c, 1, true),
        ("create (ESB, one instance)", c, n, true),
    ];
    let mut rows = Vec::new();
    for (k, (name, conns, per_req, esb)) in scenarios.into_iter().enumerate() {
        eprintln!("bench: {name}, {conns} connection(s), {per_req} per request, and the floors…");
        let to: Vec<i64> = if esb {
            vec![shared; conns]
        } else {
            targets[..conns].to_vec()
        };
        let group_path = format!("/floor/group/{per_req}");
        let alone_path = format!("/floor/alone/{per_req}");
        let spec = |addr, path, floor| CreateSpec {
            addr,
            path,
            targets: &to,
            per_req,
            floor,
        };
        let api = spec(
            &server.addr,
            if esb { ESB_CREATE_PATH } else { CREATE_PATH },
            false,
        );
        let group = spec(&floor.addr, &group_path, true);
        let alone = spec(&floor.addr, &alone_path, true);
        for (s, tag) in [(&api, "w"), (&group, "wg"), (&alone, "wa")] {
            create_load(s, &format!("{tag}{k}"), warm)?;
        }
        let (mut m, mut mg, mut ma) = Default::default();
        for round in 0..BENCH_ROUNDS {
            Measured::absorb(
                &mut mg,
                floor.cpu_of(|| create_load(&group, &format!("g{k}r{round}"), slice))?,
            );
            Measured::absorb(
                &mut m,
                server.cpu_of(|| create_load(&api, &format!("b{k}r{round}"), slice))?,
            );
            Measured::absorb(
                &mut ma,
                floor.cpu_of(|| create_load(&alone, &format!("a{k}r{round}"), slice))?,
            );
        }
        let (g, a) = (mg.per_sec(), ma.per_sec());
        let ratios = |x: &Measured| (x.per_sec() / g, x.per_sec() / a);
        rows.push(Row {
            name: name.into(),
            conns,
            per_req: Some(per_req),
            ratios: Some(ratios(&m)),
            m,
        });
        for (label, x) in [
            ("  floor: group commit", mg),
            ("  floor: fsync per request", ma),
        ] {
            rows.push(Row {
                name: label.into(),
                conns,
                per_req: Some(per_req),
                ratios: Some(ratios(&x)),
                m: x,
            });
        }
    }
    drop(floor);
    eprintln!("bench: list_process_instance of {} processes…", o.list_size);
    check_list(&server.addr, 1, o.list_size)?;
    list_load(&server.addr, &[1], warm)?;
    let m = list_load(&server.addr, &[1], time)?;
    rows.push(Row {
        name: format!("list_process_instance ({} procs)", o.list_size),
        conns: 1,
        per_req: None,
        m,
        ratios: None,
    });
    let watch_rows = idle_watchers(o, &server.addr, &targets[..1], slice, warm)?;
    let hwm = server.vm_hwm_kib();
    drop(server);

    print!("{}", table(&rows));
    println!(
        "×group, ×fsync: requests per second ÷ those of the floor with as many connections and processes per request over the same HTTP stack (`serve --floor`), writing only the records: in one group commit with the others (×group), or each request in a transaction and sync of its own (×fsync); measured in slices alternating with the scenario's"
    );
    println!(
        "cpu/rec, writer/rec: the serving process's CPU time (user + system, all threads) and its writer thread's, in µs per record created, from /proc at 100 ticks a second: what a busy machine does not change"
    );
    print!("{watch_rows}");
    println!(
        "×none: requests per second with the watchers waiting ÷ without, in alternating slices"
    );
    println!("server peak RSS (VmHWM): {}", mib(hwm));
    template_sync(o, tmp, &now)
}

// ---------------------------------------------------------------------------------------------
// The template sync
// ---------------------------------------------------------------------------------------------

const ESB: &str = "/api/c/compapi/v2/cc/";

/// The process templates of the sync scenario: every field locked, start_cmd `version`.
fn sync_template_spec(k: usize, version: &str) -> Value {
    let locked = |v: Value| json!({"value": v, "as_default_value": true});
    json!({"spec": {
        "bk_process_name": locked(json!(format!("svc-{k}"))),
        "bk_func_name": locked(json!(format!("svc-{k}"))),
        "start_cmd": locked(json!(version)),
        "user": locked(json!("app")),
        "bind_info": {"as_default_value": true, "value": [{"row_id": 1,
            "ip": locked(json!("1")), "port": locked(json!(format!("{}", 8000 + k))),
            "protocol": locked(json!("1")), "enable": locked(json!(true))}]}}})
}

/// One ESB call (POST) that must succeed; its duration.
fn esb_call(client: &mut Client, name: &str, body: &Value) -> Result<Duration, String> {
    let t = Instant::now();
    let answer = client.post(&format!("{ESB}{name}/"), body.to_string().as_bytes())?;
    let took = t.elapsed();
    expect_ok(answer)?;
    Ok(took)
}

/// Whether module 1 needs a sync (`list_service_template_difference`).
fn needs_sync(client: &mut Client) -> Result<bool, String> {
    let body = json!({"bk_biz_id": BIZ, "bk_module_ids": [1]}).to_string();
    let answer = client.post(
        &format!("{ESB}list_service_template_difference/"),
        body.as_bytes(),
    )?;
    let v: Value = serde_json::from_slice(answer).map_err(|e| e.to_string())?;
    v["data"]["modules"][0]["need_sync"]
        .as_bool()
        .ok_or_else(|| format!("unexpected difference answer: {v}"))
}

/// `sync_service_template_to_service_instance` of one module of `--sync-instances` hosts and a
/// template of 3 process templates: the first sync creates the instances and their processes,
/// later ones change a locked field of every process, a last one finds nothing to do. Each is
/// one request and one transaction; the client waits for all of it. Compared with the floor's
/// commit of as many process records in one transaction, alternating round by round.
fn template_sync(o: &Options, tmp: &TempDir, now: &str) -> Result<(), String> {
    const TEMPLATES: usize = 3;
    let n = o.sync_instances;
    let procs = n * TEMPLATES;
    eprintln!("bench: template sync across {n} instances ({procs} processes) and the floor…");
    let hosts: Vec<i64> = (1..=n as i64).collect();
    let seed = json!({
        "format": crate::dataset::FORMAT,
        "supplier_account": "0",
        "businesses": [{"bk_biz_id": BIZ, "bk_biz_name": "bench"}],
        "hosts": hosts.iter().map(|&h| json!({"bk_host_id": h,
            "bk_host_innerip": format!("10.{}.{}.{}", h >> 16 & 255, h >> 8 & 255, h & 255)}))
            .collect::<Vec<_>>(),
        "modules": [{"bk_module_id": 1, "bk_biz_id": BIZ, "bk_set_id": 1,
            "bk_module_name": "bench-tpl", "service_template_id": 1, "service_category_id": 2,
            "hosts": hosts}],
        "service_categories": [
            {"id": 1, "name": "Default", "bk_root_id": 1},
            {"id": 2, "name": "Default", "bk_parent_id": 1, "bk_root_id": 1}],
        "service_templates": [{"bk_biz_id": BIZ, "id": 1, "name": "bench-tpl",
            "service_category_id": 2, "creator": "admin", "modifier": "admin",
            "create_time": now, "last_time": now, "bk_supplier_account": "0"}],
    });
    let seed_file = tmp.join("sync-seed.json");
    std::fs::write(&seed_file, seed.to_string())
        .map_err(|e| format!("cannot write {}: {e}", seed_file.display()))?;
    let server = Server::start(&tmp.join("sync.redb"), Some(&seed_file), o, false)?;
    let mut client = Client::connect(&server.addr)?;
    let specs: Vec<Value> = (0..TEMPLATES)
        .map(|k| sync_template_spec(k, "v0"))
        .collect();
    esb_call(
        &mut client,
        "batch_create_proc_template",
        &json!({"bk_biz_id": BIZ, "service_template_id": 1, "processes": specs}),
    )?;
    let sync = json!({"bk_biz_id": BIZ, "service_template_id": 1, "bk_module_ids": [1]});
    let sample = stored_process("floor", 1, 1, now)?;
    let floor = Floor::create(
        &tmp.join("sync-floor.redb"),
        o.cache_mib << 20,
        &sample,
        &relation(1, 1, 1),
    )?;
    let mut floor_ms = Vec::new();
    let mut floor_commit = || -> Result<(), String> {
        let run = floor.run(procs, Duration::MAX, 1)?;
        floor_ms.push(run.elapsed.as_secs_f64() * 1e3);
        Ok(())
    };
    floor_commit()?;
    let create = esb_call(
        &mut client,
        "sync_service_template_to_service_instance",
        &sync,
    )?;
    if needs_sync(&mut client)? {
        return Err("module 1 still differs from its template after a sync".into());
    }
    let mut changes = Vec::new();
    for round in 1..=BENCH_ROUNDS {
        floor_commit()?;
        for pt in 1..=TEMPLATES {
            let spec = sync_template_spec(pt - 1, &format!("v{round}"));
            esb_call(
                &mut client,
                "update_proc_template",
                &json!({"bk_biz_id": BIZ, "process_template_id": pt,
                        "process_property": spec["spec"]}),
            )?;
        }
        if !needs_sync(&mut client)? {
            return Err("a changed template does not differ from its instances".into());
        }
        changes.push(esb_call(
            &mut client,
            "sync_service_template_to_service_instance",
            &sync,
        )?);
        if needs_sync(&mut client)? {
            return Err("module 1 still differs from its template after a sync".into());
        }
    }
    let t = Instant::now();
    needs_sync(&mut client)?;
    let difference = t.elapsed();
    let nothing = esb_call(
        &mut client,
        "sync_service_template_to_service_instance",
        &sync,
    )?;
    let hwm = server.vm_hwm_kib();
    drop(server);

    floor_ms.sort_by(f64::total_cmp);
    let floor_med = floor_ms[floor_ms.len() / 2];
    changes.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "template sync: 1 module, {n} hosts, {TEMPLATES} process templates (each sync is one request and one transaction: the client waits for all of it)"
    );
    println!("{:<52} {:>10} {:>8}", "scenario", "ms", "×floor");
    let row = |name: String, v: f64| {
        println!("{name:<52} {v:>10.1} {:>8.2}", v / floor_med);
    };
    row(
        format!("floor: one raw redb commit of {procs} processes"),
        floor_med,
    );
    row(
        format!("sync creating {n} instances, {procs} processes"),
        ms(create),
    );
    row(
        format!("sync changing {procs} processes (median of {BENCH_ROUNDS})"),
        ms(changes[changes.len() / 2]),
    );
    row(
        format!("sync changing {procs} processes (slowest)"),
        ms(changes[changes.len() - 1]),
    );
    row("sync finding nothing to change".into(), ms(nothing));
    row(
        format!("list_service_template_difference ({n} instances)"),
        ms(difference),
    );
    println!(
        "×floor: the request's time ÷ the median floor commit, measured alternating with the syncs"
    );
    println!("sync server peak RSS (VmHWM): {}", mib(hwm));
    Ok(())
}

/// Creates (1 connection, 1 process per request) without and with `o.watchers` idle
/// `resource_watch` long polls waiting on connections of their own, in alternating slices.
fn idle_watchers(
    o: &Options,
    addr: &str,
    target: &[i64],
    slice: Duration,
    warm: Duration,
) -> Result<String, String> {
    eprintln!(
        "bench: create_process_instance without and with {} idle watchers…",
        o.watchers
    );
    let spec = CreateSpec {
        addr,
        path: CREATE_PATH,
        targets: target,
        per_req: 1,
        floor: false,
    };
    create_load(&spec, "iw", warm)?;
    let (mut without, mut with) = (Measured::default(), Measured::default());
    // Twice the rounds of the other scenarios: the two sides differ by little, and a busy
    // machine varies a lot from one slice to the next.
    for round in 0..2 * BENCH_ROUNDS {
        without.absorb(create_load(&spec, &format!("i{round}"), slice)?);
        let watchers = Watchers::start(addr, o.watchers)?;
        with.absorb(create_load(&spec, &format!("j{round}"), slice)?);
        drop(watchers);
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<34} {:>5} {:>9} {:>9} {:>9} {:>8} {:>8} {:>7}",
        "scenario", "conns", "procs/req", "requests", "req/s", "p50 µs", "p99 µs", "×none"
    );
    let watching = format!("create, {} idle watchers", o.watchers);
    for (name, m) in [("create, no watcher", &without), (watching.as_str(), &with)] {
        let _ = writeln!(
            out,
            "{:<34} {:>5} {:>9} {:>9} {:>9.0} {:>8} {:>8} {:>7.2}",
            name,
            1,
            1,
            m.requests,
            m.per_sec(),
            m.percentile(0.50),
            m.percentile(0.99),
            m.per_sec() / without.per_sec()
        );
    }
    Ok(out)
}

/// `resource_watch` long polls of hosts, each on its own connection, re-sent when answered,
/// until dropped (their sockets are shut, which ends their threads).
struct Watchers {
    sockets: Vec<TcpStream>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Watchers {
    fn start(addr: &str, n: usize) -> Result<Watchers, String> {
        let mut w = Watchers {
            sockets: Vec::with_capacity(n),
            threads: Vec::with_capacity(n),
        };
        let started = std::sync::Arc::new(Barrier::new(n + 1));
        for _ in 0..n {
            let mut client = Client::connect(addr)?;
            let socket = client.socket()?;
            w.sockets.push(socket);
            let started = std::sync::Arc::clone(&started);
            w.threads.push(std::thread::spawn(move || {
                // Sent before the barrier, so every watch is on its way when creates start.
                let mut first = Some(client.send(WATCH_HOSTS_PATH, WATCH_HOSTS_BODY.as_bytes()));
                started.wait();
                loop {
                    let sent = first.take().unwrap_or_else(|| {
                        client.send(WATCH_HOSTS_PATH, WATCH_HOSTS_BODY.as_bytes())
                    });
                    if sent.is_err() || client.read_answer().is_err() {
                        break;
                    }
                }
            }));
        }
        started.wait();
        // Let the server take them in (reading, a permit for the first read, then the wait).
        std::thread::sleep(Duration::from_millis(500));
        Ok(w)
    }
}

impl Drop for Watchers {
    fn drop(&mut self) {
        for s in &self.sockets {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The shape of the floor's records: a process as create stores the bench's process, and its
/// relation (`serve --floor`).
pub(crate) fn floor_shape() -> Result<Shape, String> {
    let now = clock::format_ms(clock::now_ms());
    Ok(Shape::new(
        &stored_process("floor", 1, 1, &now)?,
        &relation(1, 1, 1),
    ))
}

// ---------------------------------------------------------------------------------------------
// Load generators
// ---------------------------------------------------------------------------------------------

/// Requests measured by one scenario.
#[derive(Clone, Default)]
struct Measured {
    requests: u64,
    elapsed: Duration,
    latencies_us: Vec<u32>,
    /// The serving process's CPU time while it was measured, and its writer thread's, in
    /// clock ticks (`None`: not measured, or /proc unreadable).
    cpu_ticks: Option<u64>,
    writer_ticks: Option<u64>,
}

impl Measured {
    fn per_sec(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The nearest-rank percentile of the latencies, in microseconds.
    fn percentile(&self, q: f64) -> u32 {
        let mut v = self.latencies_us.clone();
        if v.is_empty() {
            return 0;
        }
        v.sort_unstable();
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1]
    }

    fn absorb(&mut self, other: Measured) {
        // A sum of slices is known only if every slice's is.
        let first = self.requests == 0 && self.elapsed.is_zero();
        let add = |a: Option<u64>, b: Option<u64>| if first { b } else { Some(a? + b?) };
        self.cpu_ticks = add(self.cpu_ticks, other.cpu_ticks);
        self.writer_ticks = add(self.writer_ticks, other.writer_ticks);
        self.requests += other.requests;
        self.elapsed += other.elapsed;
        self.latencies_us.extend(other.latencies_us);
    }
}

struct CreateSpec<'a> {
    addr: &'a str,
    /// The create route (native or ESB) or a floor's.
    path: &'a str,
    /// One service instance per connection.
    targets: &'a [i64],
    per_req: usize,
    /// A floor's path: each request's service instance and name prefix are appended to it
    /// (the floor reads the body but does not parse it), so the floor writes the keys the
    /// create would.
    floor: bool,
}

/// Creates processes on `targets.len()` connections for `time`; names are unique per `tag`.
fn create_load(spec: &CreateSpec, tag: &str, time: Duration) -> Result<Measured, String> {
    let barrier = Barrier::new(spec.targets.len() + 1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = spec
            .targets
            .iter()
            .enumerate()
            .map(|(c, &si)| {
                let barrier = &barrier;
                scope.spawn(move || -> Result<(Vec<u32>, Instant), String> {
                    let mut client = Client::connect(spec.addr);
                    barrier.wait();
                    let client = client.as_mut().map_err(|e| e.clone())?;
                    let deadline = Instant::now() + time;
                    let mut lat = Vec::new();
                    let mut body = String::new();
                    let mut path = String::new();
                    let mut seq = 0u64;
                    while Instant::now() < deadline {
                        let prefix = format!("{tag}-{c}-{seq}");
                        create_body(&mut body, si, spec.per_req, &prefix);
                        path.clear();
                        path.push_str(spec.path);
                        if spec.floor {
                            let _ = write!(path, "/{si}/{prefix}");
                        }
                        seq += 1;
                        let t = Instant::now();
                        let answer = client.post(&path, body.as_bytes())?;
                        let us = t.elapsed().as_micros();
                        expect_ok(answer)?;
                        lat.push(u32::try_from(us).unwrap_or(u32::MAX));
                    }
                    Ok((lat, Instant::now()))
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let mut m = Measured::default();
        let mut end = start;
        for w in workers {
            let (lat, finished) = w
                .join()
                .map_err(|_| "a load thread panicked".to_string())??;
            end = end.max(finished);
            m.requests += lat.len() as u64;
            m.latencies_us.extend(lat);
        }
        m.elapsed = end - start;
        Ok(m)
    })
}

/// Lists the service instances of `order`, round-robin, on one connection for `time`.
fn list_load(addr: &str, order: &[i64], time: Duration) -> Result<Measured, String> {
    let bodies: Vec<String> = order.iter().map(|&si| list_body(si)).collect();
    post_load(addr, LIST_PATH, &bodies, time)
}

/// Posts `bodies` to `path`, round-robin, on one connection for `time`.
fn post_load(
    addr: &str,
    path: &str,
    bodies: &[String],
    time: Duration,
) -> Result<Measured, String> {
    let mut client = Client::connect(addr)?;
    let start = Instant::now();
    let mut m = Measured::default();
    let mut i = 0;
    while start.elapsed() < time {
        let t = Instant::now();
        let answer = client.post(path, bodies[i % bodies.len()].as_bytes())?;
        let us = t.elapsed().as_micros();
        expect_ok(answer)?;
        m.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
        i += 1;
    }
    m.requests = m.latencies_us.len() as u64;
    m.elapsed = start.elapsed();
    Ok(m)
}

/// list_biz_hosts of one host module: every host of it, as GSEKit and bk-monitor ask.
fn hosts_body(module: i64) -> String {
    json!({"bk_module_ids": [module], "page": {"start": 0, "limit": BENCH_HOSTS_PER_MODULE},
        "fields": ["bk_host_id", "bk_host_innerip", "bk_cloud_id", "bk_host_name"]})
    .to_string()
}

/// list_process_related_info of one module of one service instance: every process of it.
fn related_body(module: i64) -> String {
    json!({"module": {"bk_module_ids": [module]}, "page": {"start": 0, "limit": 1000},
        "fields": ["bk_process_id", "bk_process_name", "bk_func_name"]})
    .to_string()
}

/// `path` with `body` answers `count` (the dataset is what the bench thinks it is).
fn check_count(addr: &str, path: &str, body: &str, count: usize) -> Result<(), String> {
    let mut client = Client::connect(addr)?;
    let answer = client.post(path, body.as_bytes())?;
    let v: Value = serde_json::from_slice(answer).map_err(|e| format!("{path} answer: {e}"))?;
    let got = v["data"]["count"].as_u64().unwrap_or(0) as usize;
    let info = v["data"]["info"].as_array().map_or(0, Vec::len);
    if got != count || info != count {
        return Err(format!(
            "{path} {body}: count {got} and {info} items, expected {count}"
        ));
    }
    Ok(())
}

/// The list of instance `si` holds `n` processes (the dataset is what the bench thinks it is).
fn check_list(addr: &str, si: i64, n: usize) -> Result<(), String> {
    let mut client = Client::connect(addr)?;
    let answer = client.post(LIST_PATH, list_body(si).as_bytes())?;
    let v: Value = serde_json::from_slice(answer).map_err(|e| format!("list answer: {e}"))?;
    let got = v["data"].as_array().map_or(0, Vec::len);
    if got != n {
        return Err(format!(
            "service instance {si} lists {got} processes, expected {n}"
        ));
    }
    Ok(())
}

fn expect_ok(answer: &[u8]) -> Result<(), String> {
    if answer.starts_with(b"{\"result\":true") {
        Ok(())
    } else {
        let text = String::from_utf8_lossy(&answer[..answer.len().min(300)]);
        Err(format!("the server refused a request: {text}"))
    }
}

fn list_body(si: i64) -> String {
    json!({"bk_biz_id": BIZ, "service_instance_id": si}).to_string()
}

/// The process_info of a create request, as the README's example sends it.
fn process_info(name: &str) -> Value {
    json!({"bk_process_name": name, "bk_func_name": name,
        "bind_info": [{"ip": "127.0.0.1", "port": "8080", "protocol": "1", "enable": true}]})
}

fn create_body(out: &mut String, si: i64, n: usize, prefix: &str) {
    out.clear();
    let _ = write!(
        out,
        "{{\"bk_biz_id\":{BIZ},\"service_instance_id\":{si},\"processes\":["
    );
    for k in 0..n {
        if k > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"process_info\":{}}}",
            process_info(&format!("{prefix}-{k}"))
        );
    }
    out.push_str("]}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let m = Measured {
            requests: 100,
            elapsed: Duration::from_secs(1),
            latencies_us: (1..=100).rev().collect(),
            ..Measured::default()
        };
        assert_eq!(m.percentile(0.50), 50);
        assert_eq!(m.percentile(0.99), 99);
        assert_eq!(m.percentile(1.0), 100);
        assert_eq!(Measured::default().percentile(0.5), 0);
    }
}
