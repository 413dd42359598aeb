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

use crate::client::Client;
use crate::clock;
use crate::domain::process::{self, ServerFields};
use crate::limits::{
    BENCH_HOSTS_PER_MODULE, BENCH_PROCESSES_PER_HOST, BENCH_PROCESSES_PER_INSTANCE, BENCH_ROUNDS,
    BENCH_SCALE_SMALL, MAX_PROCESSES_PER_REQUEST,
};
use crate::store::floor::{Floor, Shape};
use crate::store::records::Relation;
use serde_json::{Map, Value, json};
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Barrier;
use std::time::{Duration, Instant};

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
    let tmp = Temp::new(o.dir.as_deref())?;
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

fn throughput(o: &Options, tmp: &Temp) -> Result<(), String> {
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
        let spec = |addr, path| CreateSpec {
            addr,
            path,
            targets: &to,
            per_req,
        };
        let api = spec(
            &server.addr,
            if esb { ESB_CREATE_PATH } else { CREATE_PATH },
        );
        let group = spec(&floor.addr, &group_path);
        let alone = spec(&floor.addr, &alone_path);
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
fn template_sync(o: &Options, tmp: &Temp, now: &str) -> Result<(), String> {
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

/// One line of the table.
struct Row {
    name: String,
    conns: usize,
    per_req: Option<usize>,
    m: Measured,
    /// Requests per second ÷ the group-commit floor's and the fsync-per-request floor's.
    ratios: Option<(f64, f64)>,
}

fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<34} {:>5} {:>9} {:>9} {:>9} {:>10} {:>8} {:>8} {:>7} {:>7} {:>8} {:>10}",
        "scenario",
        "conns",
        "procs/req",
        "requests",
        "req/s",
        "records/s",
        "p50 µs",
        "p99 µs",
        "×group",
        "×fsync",
        "cpu/rec",
        "writer/rec"
    );
    for r in rows {
        let per_req = r.per_req.map_or("-".into(), |n| n.to_string());
        let records = r
            .per_req
            .map_or("-".into(), |n| format!("{:.0}", r.m.per_sec() * n as f64));
        let (group, alone) = r.ratios.map_or(("-".into(), "-".into()), |(g, a)| {
            (format!("{g:.2}"), format!("{a:.2}"))
        });
        // CPU µs per record, from ticks of 10 ms.
        let cpu = |ticks: Option<u64>| match (ticks, r.per_req) {
            (Some(t), Some(n)) if r.m.requests > 0 => {
                format!(
                    "{:.1}",
                    t as f64 * 10_000.0 / (r.m.requests * n as u64) as f64
                )
            }
            _ => "-".into(),
        };
        let _ = writeln!(
            out,
            "{:<34} {:>5} {:>9} {:>9} {:>9.0} {:>10} {:>8} {:>8} {:>7} {:>7} {:>8} {:>10}",
            r.name,
            r.conns,
            per_req,
            r.m.requests,
            r.m.per_sec(),
            records,
            r.m.percentile(0.50),
            r.m.percentile(0.99),
            group,
            alone,
            cpu(r.m.cpu_ticks),
            cpu(r.m.writer_ticks)
        );
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The scale comparison
// ---------------------------------------------------------------------------------------------

struct ScaleSide {
    label: String,
    layout: Layout,
    dataset_bytes: u64,
    generate: Duration,
    import: Duration,
    import_hwm_kib: Option<u64>,
    /// Peak RSS (KiB) and time of the offline `export` and `check` of the imported store.
    export: (Option<u64>, Duration),
    check: (Option<u64>, Duration),
    db: PathBuf,
    db_bytes: u64,
}

fn scale(o: &Options, tmp: &Temp) -> Result<(), String> {
    let per = BENCH_PROCESSES_PER_INSTANCE;
    if o.scale_processes < 10 * per || !o.scale_processes.is_multiple_of(per) {
        return Err(format!(
            "--scale-processes must be a multiple of {per} and at least {}",
            10 * per
        ));
    }
    // The small store has BENCH_SCALE_SMALL processes, or a tenth of a smaller large one.
    let small = (BENCH_SCALE_SMALL.min(o.scale_processes / 10) / per).max(1) * per;
    let now = clock::format_ms(clock::now_ms());
    let mut sides = Vec::new();
    for (label, total) in [("small", small), ("large", o.scale_processes)] {
        let layout = Layout {
            populated: total / per,
            per_instance: per,
            empty: o.connections,
        };
        let file = tmp.join(&format!("{label}.json"));
        eprintln!("bench: generating {total} processes…");
        let t = Instant::now();
        layout.write(&file, &now)?;
        let generate = t.elapsed();
        let dataset_bytes = size_of(&file);
        let db = tmp.join(&format!("{label}.redb"));
        eprintln!("bench: cmdb-lite import ({} MiB)…", dataset_bytes >> 20);
        let t = Instant::now();
        let import_hwm_kib = import(&file, &db)?;
        let import = t.elapsed();
        let _ = std::fs::remove_file(&file);
        // The offline commands on the store just closed: streamed, so bounded memory.
        eprintln!("bench: cmdb-lite export and check…");
        let out = tmp.join(&format!("{label}.export.json"));
        let export = measured_run(&[
            OsStr::new("export"),
            OsStr::new("--db"),
            db.as_os_str(),
            OsStr::new("--out"),
            out.as_os_str(),
        ])?;
        let _ = std::fs::remove_file(&out);
        let check = measured_run(&[OsStr::new("check"), OsStr::new("--db"), db.as_os_str()])?;
        sides.push(ScaleSide {
            label: count_label(total),
            layout,
            dataset_bytes,
            generate,
            import,
            import_hwm_kib,
            export,
            check,
            db_bytes: size_of(&db),
            db,
        });
    }

    // Startup to the first answered request (the list of an empty instance), on each freshly
    // imported store.
    let mut servers = Vec::new();
    let mut startups = Vec::new();
    for side in &sides {
        let t = Instant::now();
        let server = Server::start(&side.db, None, o, false)?;
        let mut client = Client::connect(&server.addr)?;
        let body = list_body(side.layout.populated as i64 + 1);
        let answer = client.post(LIST_PATH, body.as_bytes())?;
        expect_ok(answer)?;
        startups.push(t.elapsed());
        servers.push(server);
    }
    for (side, server) in sides.iter().zip(&servers) {
        check_list(&server.addr, 1, side.layout.per_instance)?;
        let module = side.layout.scattered_host_modules(0)[0];
        check_count(
            &server.addr,
            HOSTS_PATH,
            &hosts_body(module),
            BENCH_HOSTS_PER_MODULE,
        )?;
        let related = related_body(SI_MODULE_BASE + 1);
        check_count(
            &server.addr,
            RELATED_PATH,
            &related,
            side.layout.per_instance,
        )?;
    }

    // Alternating slices: create (1 connection, 1 process per request), list (one service
    // instance of 1,000 processes, a different one each time); then, for the peak RSS, bursts of
    // the heaviest loads: creates of 100 processes and lists, each on every connection at once.
    let slice = Duration::from_secs_f64(o.secs) / BENCH_ROUNDS as u32;
    let mut creates = vec![Measured::default(); sides.len()];
    let mut lists = vec![Measured::default(); sides.len()];
    let mut host_lists = vec![Measured::default(); sides.len()];
    let mut related = vec![Measured::default(); sides.len()];
    for round in 0..BENCH_ROUNDS {
        eprintln!("bench: round {} of {BENCH_ROUNDS}…", round + 1);
        for (i, (side, server)) in sides.iter().zip(&servers).enumerate() {
            let targets: Vec<i64> = side.layout.empty_ids().collect();
            let spec = CreateSpec {
                addr: &server.addr,
                path: CREATE_PATH,
                targets: &targets[..1],
                per_req: 1,
            };
            creates[i].absorb(create_load(&spec, &format!("c{round}"), slice)?);
            let order = side.layout.scattered_populated(round);
            lists[i].absorb(list_load(&server.addr, &order, slice)?);
            let bodies: Vec<String> = side
                .layout
                .scattered_host_modules(round)
                .into_iter()
                .map(hosts_body)
                .collect();
            host_lists[i].absorb(post_load(&server.addr, HOSTS_PATH, &bodies, slice)?);
            let bodies: Vec<String> = order
                .iter()
                .map(|&si| related_body(SI_MODULE_BASE + si))
                .collect();
            related[i].absorb(post_load(&server.addr, RELATED_PATH, &bodies, slice)?);
        }
    }
    for (side, server) in sides.iter().zip(&servers) {
        let targets: Vec<i64> = side.layout.empty_ids().collect();
        let spec = CreateSpec {
            addr: &server.addr,
            path: CREATE_PATH,
            targets: &targets,
            per_req: MAX_PROCESSES_PER_REQUEST,
        };
        create_load(&spec, "burst", slice)?;
        let order = side.layout.scattered_populated(BENCH_ROUNDS);
        std::thread::scope(|scope| {
            let lists: Vec<_> = (0..o.connections)
                .map(|c| {
                    let order = &order[c % order.len()..];
                    scope.spawn(move || list_load(&server.addr, order, slice))
                })
                .collect();
            for l in lists {
                l.join()
                    .map_err(|_| "a load thread panicked".to_string())??;
            }
            Ok::<(), String>(())
        })?;
    }
    let hwms: Vec<Option<u64>> = servers.iter().map(Server::vm_hwm_kib).collect();
    // The online export (GET /_cmdb/export through `export --from`) of each running server.
    let mut online = Vec::new();
    for (side, server) in sides.iter().zip(&servers) {
        eprintln!("bench: cmdb-lite export --from ({})…", side.label);
        let out = tmp.join("online.export.json");
        let url = format!("http://{}", server.addr);
        let (_, took) = measured_run(&[
            OsStr::new("export"),
            OsStr::new("--from"),
            OsStr::new(&url),
            OsStr::new("--out"),
            out.as_os_str(),
        ])?;
        let _ = std::fs::remove_file(&out);
        online.push((took, server.vm_hwm_kib()));
    }
    drop(servers);

    let (s, l) = (&sides[0], &sides[1]);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<40} {:>12} {:>12} {:>9}  target",
        "scale",
        s.label,
        l.label,
        format!("{}/{}", l.label, s.label)
    );
    let line = |out: &mut String, name: &str, a: f64, b: f64, target: &str| {
        let _ = writeln!(
            out,
            "{name:<40} {a:>12.1} {b:>12.1} {:>9.2}  {target}",
            b / a
        );
    };
    let mb = |bytes: u64| bytes as f64 / (1 << 20) as f64;
    let kib_mb = |k: Option<u64>| k.map_or(f64::NAN, |k| k as f64 / 1024.0);
    line(
        &mut out,
        "dataset file MiB",
        mb(s.dataset_bytes),
        mb(l.dataset_bytes),
        "",
    );
    line(
        &mut out,
        "dataset generation s",
        s.generate.as_secs_f64(),
        l.generate.as_secs_f64(),
        "",
    );
    line(
        &mut out,
        "import s",
        s.import.as_secs_f64(),
        l.import.as_secs_f64(),
        "",
    );
    line(
        &mut out,
        "import peak RSS MiB",
        kib_mb(s.import_hwm_kib),
        kib_mb(l.import_hwm_kib),
        "",
    );
    line(
        &mut out,
        "offline export s",
        s.export.1.as_secs_f64(),
        l.export.1.as_secs_f64(),
        "",
    );
    line(
        &mut out,
        "offline export peak RSS MiB",
        kib_mb(s.export.0),
        kib_mb(l.export.0),
        "< 64 MiB",
    );
    line(
        &mut out,
        "check s",
        s.check.1.as_secs_f64(),
        l.check.1.as_secs_f64(),
        "",
    );
    line(
        &mut out,
        "check peak RSS MiB",
        kib_mb(s.check.0),
        kib_mb(l.check.0),
        "< 64 MiB",
    );
    line(
        &mut out,
        "online export s (export --from)",
        online[0].0.as_secs_f64(),
        online[1].0.as_secs_f64(),
        "",
    );
    line(
        &mut out,
        "database file MiB",
        mb(s.db_bytes),
        mb(l.db_bytes),
        "",
    );
    let per_process = |side: &ScaleSide| {
        side.db_bytes as f64 / (side.layout.populated * side.layout.per_instance).max(1) as f64
    };
    line(
        &mut out,
        "database bytes per process",
        per_process(s),
        per_process(l),
        "≤ 400 at 1M",
    );
    line(
        &mut out,
        "startup to first answer ms",
        startups[0].as_secs_f64() * 1e3,
        startups[1].as_secs_f64() * 1e3,
        "< 200 ms",
    );
    for (name, m) in [
        ("create p50 µs (1 conn, 1 proc/req)", &creates),
        ("list p50 µs (1 instance, 1,000 procs)", &lists),
        ("list_biz_hosts p50 µs (module, 1,000 hosts)", &host_lists),
        ("process_related p50 µs (module, 1,000 procs)", &related),
    ] {
        line(
            &mut out,
            name,
            m[0].percentile(0.50) as f64,
            m[1].percentile(0.50) as f64,
            "ratio ≤ 1.5",
        );
        let name99 = name.replace("p50", "p99");
        line(
            &mut out,
            &name99,
            m[0].percentile(0.99) as f64,
            m[1].percentile(0.99) as f64,
            "",
        );
        let name_n = name.replace("p50 µs", "requests");
        line(
            &mut out,
            &name_n,
            m[0].requests as f64,
            m[1].requests as f64,
            "",
        );
    }
    line(
        &mut out,
        "server peak RSS (VmHWM) MiB",
        kib_mb(hwms[0]),
        kib_mb(hwms[1]),
        "< 64 MiB",
    );
    line(
        &mut out,
        "server peak RSS after online export MiB",
        kib_mb(online[0].1),
        kib_mb(online[1].1),
        "< 64 MiB",
    );
    print!("{out}");
    Ok(())
}

fn count_label(n: usize) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n >= 1_000 && n.is_multiple_of(1_000) {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}

fn size_of(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Runs `cmdb-lite import FILE --db DB`; returns its peak RSS, sampled from /proc while it runs.
fn import(file: &Path, db: &Path) -> Result<Option<u64>, String> {
    let args = [
        OsStr::new("import"),
        file.as_os_str(),
        OsStr::new("--db"),
        db.as_os_str(),
    ];
    Ok(measured_run(&args)?.0)
}

/// Runs `cmdb-lite <args>` to completion, sampling its peak RSS (VmHWM) every 5 ms: the peak
/// RSS in KiB and the time taken.
fn measured_run(args: &[&OsStr]) -> Result<(Option<u64>, Duration), String> {
    let t = Instant::now();
    let mut child = Command::new(exe()?)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {args:?}: {e}"))?;
    let mut hwm = None;
    loop {
        if let Some(k) = vm_hwm_kib(child.id()) {
            hwm = Some(k);
        }
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) if status.success() => return Ok((hwm, t.elapsed())),
            Some(status) => return Err(format!("{args:?} failed: {status}")),
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    }
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
                    let mut seq = 0u64;
                    while Instant::now() < deadline {
                        create_body(&mut body, si, spec.per_req, &format!("{tag}-{c}-{seq}"));
                        seq += 1;
                        let t = Instant::now();
                        let answer = client.post(spec.path, body.as_bytes())?;
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
    let mut client = Client::connect(addr)?;
    let bodies: Vec<String> = order.iter().map(|&si| list_body(si)).collect();
    let start = Instant::now();
    let mut m = Measured::default();
    let mut i = 0;
    while start.elapsed() < time {
        let t = Instant::now();
        let answer = client.post(LIST_PATH, bodies[i % bodies.len()].as_bytes())?;
        let us = t.elapsed().as_micros();
        expect_ok(answer)?;
        m.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
        i += 1;
    }
    m.requests = m.latencies_us.len() as u64;
    m.elapsed = start.elapsed();
    Ok(m)
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

// ---------------------------------------------------------------------------------------------
// Generated datasets
// ---------------------------------------------------------------------------------------------

/// A generated dataset: business 1, one raw module, `populated` service instances with
/// `per_instance` processes each (ids 1..), then `empty` service instances; one host per
/// instance.
struct Layout {
    populated: usize,
    per_instance: usize,
    empty: usize,
}

impl Layout {
    fn instances(&self) -> usize {
        self.populated + self.empty
    }

    /// Hosts: every instance's, and at least one per `BENCH_PROCESSES_PER_HOST` processes, in
    /// whole host modules.
    fn hosts(&self) -> usize {
        let n = self
            .instances()
            .max(self.populated * self.per_instance / BENCH_PROCESSES_PER_HOST)
            .max(BENCH_HOSTS_PER_MODULE);
        n.div_ceil(BENCH_HOSTS_PER_MODULE) * BENCH_HOSTS_PER_MODULE
    }

    /// The host modules, in a scattered order that differs per `round`.
    fn scattered_host_modules(&self, round: usize) -> Vec<i64> {
        let n = self.hosts() / BENCH_HOSTS_PER_MODULE;
        (0..n)
            .map(|i| HOST_MODULE_BASE + ((i * 7 + round) % n) as i64)
            .collect()
    }

    fn empty_ids(&self) -> impl Iterator<Item = i64> + use<> {
        let first = self.populated as i64 + 1;
        first..first + self.empty as i64
    }

    /// Every populated instance once, in a scattered order that differs per `round`.
    fn scattered_populated(&self, round: usize) -> Vec<i64> {
        let n = self.populated;
        // 7919 is prime, so stepping by it modulo n visits every instance when n is not a
        // multiple of it.
        (0..n)
            .map(|i| ((i * 7919 + round * 31) % n) as i64 + 1)
            .collect()
    }

    /// Writes the dataset file, streaming the processes.
    fn write(&self, path: &Path, now: &str) -> Result<(), String> {
        let file = std::fs::File::create(path)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        let io = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
        let hosts: Vec<i64> = (1..=self.hosts() as i64).collect();
        let instances: Vec<i64> = (1..=self.instances() as i64).collect();
        let populated = self.populated as i64;
        let mut modules = vec![json!({"bk_module_id": 1, "bk_biz_id": BIZ, "bk_set_id": 1,
            "bk_module_name": "bench", "service_category_id": 2,
            "hosts": &instances[self.populated..]})];
        for si in 1..=populated {
            modules.push(
                json!({"bk_module_id": SI_MODULE_BASE + si, "bk_biz_id": BIZ,
                "bk_set_id": 1, "bk_module_name": format!("si-{si}"), "service_category_id": 2,
                "hosts": [si]}),
            );
        }
        for (k, chunk) in hosts.chunks(BENCH_HOSTS_PER_MODULE).enumerate() {
            modules.push(
                json!({"bk_module_id": HOST_MODULE_BASE + k as i64, "bk_biz_id": BIZ,
                "bk_set_id": 1, "bk_module_name": format!("hosts-{k}"),
                "service_category_id": 2, "hosts": chunk}),
            );
        }
        let head = json!({
            "format": crate::dataset::FORMAT,
            "supplier_account": "0",
            "businesses": [{"bk_biz_id": BIZ, "bk_biz_name": "bench"}],
            "hosts": hosts.iter().map(|&h| json!({"bk_host_id": h,
                "bk_host_innerip": format!("10.{}.{}.{}", h >> 16 & 255, h >> 8 & 255, h & 255),
                "bk_host_name": format!("bench-{h}"), "bk_os_type": "1", "bk_cpu": 8}))
                .collect::<Vec<_>>(),
            "modules": modules,
            "service_categories": [
                {"id": 1, "name": "Default", "bk_root_id": 1},
                {"id": 2, "name": "Default", "bk_parent_id": 1, "bk_root_id": 1}],
            "service_instances": instances.iter().map(|&si| json!({"bk_biz_id": BIZ, "id": si,
                "name": format!("bench-{si}"), "labels": null, "service_template_id": 0,
                "bk_host_id": si,
                "bk_module_id": if si <= populated { SI_MODULE_BASE + si } else { 1 },
                "creator": "admin", "modifier": "admin",
                "create_time": now, "last_time": now, "bk_supplier_account": "0"}))
                .collect::<Vec<_>>(),
        });
        let head = head.to_string();
        w.write_all(&head.as_bytes()[..head.len() - 1])
            .map_err(io)?;
        w.write_all(b",\"processes\":[").map_err(io)?;
        let template = RecordTemplate::new(now)?;
        let mut pid = 0i64;
        for si in 1..=self.populated as i64 {
            for k in 0..self.per_instance {
                pid += 1;
                if pid > 1 {
                    w.write_all(b",").map_err(io)?;
                }
                template
                    .write(&mut w, pid, si, &format!("svc-{k}"))
                    .map_err(io)?;
            }
        }
        w.write_all(b"]}\n").map_err(io)?;
        w.flush().map_err(io)
    }
}

/// A stored process exactly as create would store it, for business 1.
fn stored_process(name: &str, si: i64, pid: i64, now: &str) -> Result<Map<String, Value>, String> {
    let Value::Object(mut map) = process_info(name) else {
        unreachable!("process_info is an object")
    };
    let fields = ServerFields {
        biz_id: BIZ,
        service_instance_id: si,
        supplier: "0",
        user: "admin",
        now,
    };
    process::stamp_request_fields(&mut map, &fields);
    process::validate_create(&mut map).map_err(|e| format!("sample process: {e:?}"))?;
    process::stamp_insert_fields(&mut map, pid, &fields);
    Ok(map)
}

fn relation(pid: i64, si: i64, host: i64) -> Relation {
    Relation {
        bk_biz_id: BIZ,
        bk_process_id: pid,
        service_instance_id: si,
        process_template_id: 0,
        bk_host_id: host,
        bk_supplier_account: "0".into(),
    }
}

/// One dataset process record as JSON text with holes for its id, instance and name.
struct RecordTemplate {
    parts: Vec<(String, Hole)>,
}

#[derive(Clone, Copy)]
enum Hole {
    Pid,
    Si,
    Name,
    End,
}

impl RecordTemplate {
    const MARKS: [(&'static str, Hole); 3] = [
        ("\"@@PID@@\"", Hole::Pid),
        ("\"@@SI@@\"", Hole::Si),
        ("\"@@NAME@@\"", Hole::Name),
    ];

    fn new(now: &str) -> Result<RecordTemplate, String> {
        let mut map = stored_process("@@NAME@@", 1, 1, now)?;
        map.insert("bk_process_id".into(), json!("@@PID@@"));
        map.insert("service_instance_id".into(), json!("@@SI@@"));
        map.insert(
            "relation".into(),
            json!({"bk_biz_id": BIZ, "bk_process_id": "@@PID@@", "service_instance_id": "@@SI@@",
                "process_template_id": 0, "bk_host_id": "@@SI@@", "bk_supplier_account": "0"}),
        );
        let mut text = Value::Object(map).to_string();
        let mut parts = Vec::new();
        loop {
            let next = Self::MARKS
                .iter()
                .filter_map(|&(m, h)| text.find(m).map(|at| (at, m.len(), h)))
                .min_by_key(|&(at, _, _)| at);
            match next {
                Some((at, len, hole)) => {
                    parts.push((text[..at].to_string(), hole));
                    text = text[at + len..].to_string();
                }
                None => {
                    parts.push((text, Hole::End));
                    break;
                }
            }
        }
        Ok(RecordTemplate { parts })
    }

    fn write(&self, w: &mut impl Write, pid: i64, si: i64, name: &str) -> std::io::Result<()> {
        for (lit, hole) in &self.parts {
            w.write_all(lit.as_bytes())?;
            match hole {
                Hole::Pid => write!(w, "{pid}")?,
                Hole::Si => write!(w, "{si}")?,
                Hole::Name => write!(w, "\"{name}\"")?,
                Hole::End => {}
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The server under test and a minimal HTTP/1.1 client
// ---------------------------------------------------------------------------------------------

fn exe() -> Result<PathBuf, String> {
    std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))
}

/// `cmdb-lite serve` as a child process, killed on drop.
struct Server {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    addr: String,
}

impl Server {
    /// Starts `serve` on `db` (with `seed`), or `serve --floor` if `floor`.
    fn start(db: &Path, seed: Option<&Path>, o: &Options, floor: bool) -> Result<Server, String> {
        let mut cmd = Command::new(exe()?);
        cmd.arg("serve")
            .arg("--db")
            .arg(db)
            .args(["--listen", "127.0.0.1:0"])
            .args(["--threads", &o.threads.to_string()])
            .args(["--cache-mib", &o.cache_mib.to_string()])
            // No access log on the terminal the figures are printed on.
            .arg("--quiet");
        if let Some(seed) = seed {
            cmd.arg("--seed").arg(seed);
        }
        if floor {
            cmd.arg("--floor");
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the server: {e}"))?;
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        // The first line names the address; a server that fails exits without it.
        let read = stdout.read_line(&mut line);
        let addr = line
            .trim()
            .strip_prefix("cmdb-lite listening on http://")
            .map(str::to_string);
        match (read, addr) {
            (Ok(_), Some(addr)) => Ok(Server {
                child,
                _stdout: stdout,
                addr,
            }),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!("the server did not start: {line:?}"))
            }
        }
    }

    fn vm_hwm_kib(&self) -> Option<u64> {
        vm_hwm_kib(self.child.id())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Runs `load` and notes the server's CPU time over it (`Measured::cpu_ticks`).
    fn cpu_of(&self, load: impl FnOnce() -> Result<Measured, String>) -> Result<Measured, String> {
        let pid = self.child.id();
        let before = (cpu_ticks(pid, None), cpu_ticks(pid, Some("writer")));
        let mut m = load()?;
        let after = (cpu_ticks(pid, None), cpu_ticks(pid, Some("writer")));
        let delta = |a: Option<u64>, b: Option<u64>| Some(b?.saturating_sub(a?));
        m.cpu_ticks = delta(before.0, after.0);
        m.writer_ticks = delta(before.1, after.1);
        Ok(m)
    }
}

/// The user + system CPU time of process `pid` (all its threads, exited ones included), or of
/// its thread named `thread`, in clock ticks (100 a second on Linux); `None` off Linux.
fn cpu_ticks(pid: u32, thread: Option<&str>) -> Option<u64> {
    let stat = match thread {
        None => std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?,
        Some(name) => std::fs::read_dir(format!("/proc/{pid}/task"))
            .ok()?
            .flatten()
            .find(|t| {
                std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name)
            })
            .and_then(|t| std::fs::read_to_string(t.path().join("stat")).ok())?,
    };
    // After the command name's closing parenthesis: state, then utime and stime are the 12th
    // and 13th fields.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

/// A process's peak resident set (`VmHWM` of /proc/PID/status), in KiB; `None` off Linux.
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("unknown".into(), |k| {
        format!("{:.1} MiB", k as f64 / 1024.0)
    })
}

/// A temporary folder, removed on drop.
struct Temp(PathBuf);

impl Temp {
    fn new(base: Option<&Path>) -> Result<Temp, String> {
        let base = base.map_or_else(std::env::temp_dir, Path::to_path_buf);
        let p = base.join(format!("cmdb-lite-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).map_err(|e| format!("cannot create {}: {e}", p.display()))?;
        Ok(Temp(p))
    }
    fn path(&self) -> &Path {
        &self.0
    }
    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
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

    #[test]
    fn generated_records_are_valid_json_with_their_ids() {
        let t = RecordTemplate::new("2026-01-02T03:04:05.678Z").unwrap();
        let mut out = Vec::new();
        t.write(&mut out, 42, 7, "svc-3").unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["bk_process_id"], json!(42));
        assert_eq!(v["service_instance_id"], json!(7));
        assert_eq!(v["bk_process_name"], json!("svc-3"));
        assert_eq!(v["bk_func_name"], json!("svc-3"));
        assert_eq!(v["relation"]["bk_process_id"], json!(42));
        assert_eq!(v["relation"]["bk_host_id"], json!(7));
    }

    #[test]
    fn scattered_order_visits_every_instance() {
        for populated in [1, 10, 1000] {
            let l = Layout {
                populated,
                per_instance: 1,
                empty: 0,
            };
            let mut seen = l.scattered_populated(3);
            seen.sort_unstable();
            assert_eq!(seen, (1..=populated as i64).collect::<Vec<_>>());
        }
    }
}
