//! The command line (product.md section 2): `serve`, `import`, `export`, `check`, and `bench`.
//! Errors are one readable line on stderr and a non-zero exit code.

use crate::auth;
use crate::bench;
use crate::bench::{
    BENCH_CONNECTIONS, BENCH_IDLE_WATCHERS, BENCH_LIST_SIZE, BENCH_SCALE_LARGE, BENCH_SECS,
    BENCH_SYNC_INSTANCES,
};
use crate::dataset;
use crate::error::{CcError, Lang};
use crate::http::{self, Config};
use crate::limits::{
    BODY_TIMEOUT_SECS, DEFAULT_BODY_MEMORY_MIB, DEFAULT_CACHE_MIB, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_THREADS, HEAD_TIMEOUT_SECS, MALLOC_ARENAS, MAX_DATASET_BYTES, OFFLINE_CACHE_MIB,
    READ_TIMEOUT_SECS, SHUTDOWN_GRACE_SECS, WATCH_TIMEOUT_SECS,
};
use crate::log::Format;
use crate::seed;
use crate::signals;
use crate::store::{self, Store};
use argh::FromArgs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// cmdb-lite: BlueKing CMDB's process-management API on one embedded redb file.
#[derive(FromArgs)]
pub struct Cli {
    #[argh(subcommand)]
    pub command: Command,
}

#[derive(FromArgs)]
#[argh(subcommand)]
pub enum Command {
    Serve(Serve),
    Import(Import),
    Export(Export),
    Check(Check),
    Compact(Compact),
    Push(Push),
    Bench(Bench),
}

const DEFAULT_DB: &str = "data/cmdb.redb";

/// Serve the HTTP API.
#[derive(FromArgs)]
#[argh(subcommand, name = "serve")]
pub struct Serve {
    /// database file (default data/cmdb.redb; created with its folder if absent)
    #[argh(option, default = "PathBuf::from(DEFAULT_DB)")]
    pub db: PathBuf,
    /// address to listen on (default 127.0.0.1:8080; port 0 picks a free port)
    #[argh(option, default = "String::from(\"127.0.0.1:8080\")")]
    pub listen: String,
    /// requests worked on at once (default 16); slow clients wait on threads of their own
    #[argh(option, default = "DEFAULT_THREADS")]
    pub threads: usize,
    /// default language of messages: zh (bk-cmdb's default) or en
    #[argh(option, default = "String::from(\"zh\")")]
    pub language: String,
    /// dataset loaded into an empty store: a file, or "none" (default: the built-in demo)
    #[argh(option)]
    pub seed: Option<String>,
    /// keep the store in memory only (nothing on disk; for tests)
    #[argh(switch)]
    pub memory: bool,
    /// redb page cache in MiB (default 16)
    #[argh(option, default = "DEFAULT_CACHE_MIB")]
    pub cache_mib: usize,
    /// seconds one socket read or write may wait; idle connections close after it (default 30)
    #[argh(option, default = "READ_TIMEOUT_SECS")]
    pub read_timeout_secs: u64,
    /// seconds a request body may take to arrive; later is HTTP 408 (default 120)
    #[argh(option, default = "BODY_TIMEOUT_SECS")]
    pub body_timeout_secs: u64,
    /// seconds a resource_watch with a cursor waits for an event (default 20, as bk-cmdb)
    #[argh(option, default = "WATCH_TIMEOUT_SECS")]
    pub watch_timeout_secs: u64,
    /// serve the test-double routes under /_cmdb/ (reset, load, requests, faults)
    #[argh(switch)]
    pub admin: bool,
    /// connections open at once (default 1024); at the cap the one idle longest is closed for a
    /// new one, and when all are busy a new one gets 503
    #[argh(option, default = "DEFAULT_MAX_CONNECTIONS")]
    pub max_connections: usize,
    /// seconds a request head may take to arrive; the connection is closed after (default 10)
    #[argh(option, default = "HEAD_TIMEOUT_SECS")]
    pub head_timeout_secs: u64,
    /// memory for request bodies in flight in MiB, parsing included (default 32); beyond, requests wait
    /// briefly, then get 503
    #[argh(option, default = "DEFAULT_BODY_MEMORY_MIB")]
    pub max_body_memory: usize,
    /// serve the benchmark's floor instead of the API (for `cmdb-lite bench`; no seed)
    #[argh(switch)]
    pub floor: bool,
    /// log lines on stderr: text (default) or json
    #[argh(option, default = "String::from(\"text\")")]
    pub log_format: String,
    /// no access log and no info lines on stderr (warnings and errors stay)
    #[argh(switch)]
    pub quiet: bool,
    /// apps, their secrets and users' permissions (JSON; README "Security"); reloaded on SIGHUP
    #[argh(option)]
    pub auth: Option<PathBuf>,
    /// the API gateway's RSA public key (PEM): X-Bkapi-JWT is then verified and trusted
    #[argh(option)]
    pub jwt_public_key: Option<PathBuf>,
    /// allow a non-loopback --listen without --auth (anyone who can connect may write)
    #[argh(switch)]
    pub insecure_listen: bool,
}

/// Load a dataset file into the store, all or nothing.
#[derive(FromArgs)]
#[argh(subcommand, name = "import")]
pub struct Import {
    /// the dataset file
    #[argh(positional)]
    pub file: PathBuf,
    /// database file (default data/cmdb.redb)
    #[argh(option, default = "PathBuf::from(DEFAULT_DB)")]
    pub db: PathBuf,
}

/// Write the whole store, id sequences included, as a dataset file: from a stopped store's
/// file (opened read-only), or from a running server (--from).
#[derive(FromArgs)]
#[argh(subcommand, name = "export")]
pub struct Export {
    /// database file (default data/cmdb.redb)
    #[argh(option, default = "PathBuf::from(DEFAULT_DB)")]
    pub db: PathBuf,
    /// a running server to export from instead, as http://HOST:PORT (its GET /_cmdb/export)
    #[argh(option)]
    pub from: Option<String>,
    /// with --from, to a server under --auth: the X-Bkapi-Authorization header to send, e.g.
    /// '{"bk_app_code":"ops","bk_app_secret":"..."}'
    #[argh(option)]
    pub authorization: Option<String>,
    /// output file (default: standard output)
    #[argh(option)]
    pub out: Option<PathBuf>,
}

/// Verify the store's indexes, relations and sequences; exit 0 only if clean. The file is
/// opened read-only: one that was not closed cleanly is reported, not repaired.
#[derive(FromArgs)]
#[argh(subcommand, name = "check")]
pub struct Check {
    /// database file (default data/cmdb.redb)
    #[argh(option, default = "PathBuf::from(DEFAULT_DB)")]
    pub db: PathBuf,
    /// let redb repair a file that was not closed cleanly first (it rolls back a torn commit)
    #[argh(switch)]
    pub repair: bool,
}

/// Replay a stopped store's service categories, templates, service instances and processes
/// into a bk-cmdb through its ESB or API gateway, and keep it in step on later pushes (README
/// "Moving to bk-cmdb").
#[derive(FromArgs)]
#[argh(subcommand, name = "push")]
pub struct Push {
    /// database file (default data/cmdb.redb); it keeps the map of pushed records
    #[argh(option, default = "PathBuf::from(DEFAULT_DB)")]
    pub db: PathBuf,
    /// the target's address, http://HOST[:PORT][/PREFIX] (the ESB's or the API gateway's)
    #[argh(option)]
    pub to: String,
    /// esb (default: /api/c/compapi/v2/cc/NAME/) or gateway (/api/bk-cmdb/STAGE/api/v3/...)
    #[argh(option, default = "String::from(\"esb\")")]
    pub family: String,
    /// the BlueKing app's code
    #[argh(option, default = "String::new()")]
    pub app_code: String,
    /// the BlueKing app's secret
    #[argh(option, default = "String::new()")]
    pub app_secret: String,
    /// the user the records are written as (default admin)
    #[argh(option, default = "String::from(\"admin\")")]
    pub user: String,
    /// the API gateway's stage (default prod)
    #[argh(option, default = "String::from(\"prod\")")]
    pub stage: String,
    /// print what would be created, updated and deleted; write nothing
    #[argh(switch)]
    pub dry_run: bool,
}

/// Give a stopped store's free space back to the file system (after large deletes).
#[derive(FromArgs)]
#[argh(subcommand, name = "compact")]
pub struct Compact {
    /// database file (default data/cmdb.redb)
    #[argh(option, default = "PathBuf::from(DEFAULT_DB)")]
    pub db: PathBuf,
}

/// Measure the server against the disk's floor (build with --release); see README "Benchmark".
#[derive(FromArgs)]
#[argh(subcommand, name = "bench")]
pub struct Bench {
    /// seconds each scenario is measured (default 3)
    #[argh(option, default = "BENCH_SECS")]
    pub secs: f64,
    /// connections of the concurrent scenarios (default 8)
    #[argh(option, default = "BENCH_CONNECTIONS")]
    pub connections: usize,
    /// processes of the service instance the list scenario reads (default 100)
    #[argh(option, default = "BENCH_LIST_SIZE")]
    pub list_size: usize,
    /// instead: 10,000 vs 1,000,000 processes (import, startup, create and list latency, RSS)
    #[argh(switch)]
    pub scale: bool,
    /// processes of the large store of --scale (default 1000000)
    #[argh(option, default = "BENCH_SCALE_LARGE")]
    pub scale_processes: usize,
    /// service instances of the template-sync scenario, 3 processes each (default 1000)
    #[argh(option, default = "BENCH_SYNC_INSTANCES")]
    pub sync_instances: usize,
    /// folder for the temporary files (default: the system's temporary folder)
    #[argh(option)]
    pub dir: Option<PathBuf>,
    /// the server's redb page cache in MiB (default 16)
    #[argh(option, default = "DEFAULT_CACHE_MIB")]
    pub cache_mib: usize,
    /// the server's HTTP worker threads (default 16)
    #[argh(option, default = "DEFAULT_THREADS")]
    pub threads: usize,
    /// idle resource_watch long polls beside the creates of the watchers comparison (default 100)
    #[argh(option, default = "BENCH_IDLE_WATCHERS")]
    pub watchers: usize,
}

/// Why a command failed: a usage error (exit 2, as Rust's and most Unix tools) or a failure
/// while running (exit 1). Both are one line on stderr.
pub enum Fail {
    Usage(String),
    Run(String),
}

impl From<String> for Fail {
    fn from(s: String) -> Fail {
        Fail::Run(s)
    }
}

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let options = args.iter().skip(1).take_while(|a| a.as_str() != "--");
    if options.clone().any(|a| a == "--version" || a == "-V") {
        let _ = out_line(&format!("cmdb-lite {}", http::ops::VERSION));
        return 0;
    }
    let name = args
        .first()
        .map_or("cmdb-lite", |a| a.rsplit('/').next().unwrap_or("cmdb-lite"));
    let rest: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    let cli = match Cli::from_args(&[name], &rest) {
        Ok(cli) => cli,
        Err(early) if early.status.is_ok() => {
            let _ = out_line(early.output.trim_end());
            return 0;
        }
        Err(early) => {
            err_line(&format!(
                "{}\nRun {name} --help for more information.",
                early.output.trim_end()
            ));
            return 2;
        }
    };
    // A write past a file-size limit then fails (and is reported) instead of killing us.
    signals::ignore_file_size_limit_signal();
    let result = match cli.command {
        Command::Serve(s) => serve(s),
        Command::Import(i) => import(i),
        Command::Export(e) => export(e),
        Command::Check(c) => check(c),
        Command::Compact(c) => compact(c),
        Command::Push(p) => push(p),
        Command::Bench(b) => run_bench(b),
    };
    match result {
        Ok(code) => code,
        Err(Fail::Usage(msg)) => {
            err_line(&format!("cmdb-lite: {msg}"));
            2
        }
        Err(Fail::Run(msg)) => {
            err_line(&format!("cmdb-lite: {msg}"));
            1
        }
    }
}

/// Writes a command's error on stderr, one line, without a timestamp (a failing stderr is
/// ignored).
fn err_line(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Writes one line on stdout. A closed stdout (`cmdb-lite export | head`) is not an error to
/// report: the reader has what it wanted.
fn out_line(line: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").and_then(|()| out.flush())
}

/// Whether an output error is the reader going away (`| head`), which ends a command quietly.
fn closed(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::BrokenPipe
}

/// A positive number for `flag`, or a usage error.
fn positive<T: PartialOrd + Default + std::fmt::Display>(flag: &str, v: T) -> Result<T, Fail> {
    if v > T::default() {
        Ok(v)
    } else {
        Err(Fail::Usage(format!("{flag} must be at least 1, not {v}")))
    }
}

/// Removes what a failed command created: the database file, then its folder if it made it and
/// it is empty.
struct Created {
    file: Option<PathBuf>,
    dir: Option<PathBuf>,
}

impl Created {
    /// Notes what opening `db` is about to create.
    fn before_open(db: &Path) -> Created {
        let file = (!db.exists()).then(|| db.to_path_buf());
        let dir = db
            .parent()
            .filter(|d| !d.as_os_str().is_empty() && !d.exists())
            .map(Path::to_path_buf);
        Created { file, dir }
    }

    fn remove(&self) {
        if let Some(f) = &self.file {
            let _ = std::fs::remove_file(f);
        }
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir(d);
        }
    }
}

fn open(db: &Path, cache_mib: usize) -> Result<Store, String> {
    let store =
        Store::open(db, cache_mib.saturating_mul(1024 * 1024)).map_err(|e| e.to_string())?;
    // A store written before the topology records gains them once (see `dataset::topology`).
    let n = dataset::topology::upgrade(&store).map_err(|e| format!("{}: {e}", db.display()))?;
    if n > 0 {
        eprintln!(
            "cmdb-lite: {}: completed {n} topology records (sets, cloud areas, built-in records)",
            db.display()
        );
    }
    Ok(store)
}

/// Imports a dataset file (`import`, `serve --seed`): all or nothing.
fn import_file(store: &Store, path: &Path, progress: impl FnMut(usize)) -> Result<usize, String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if meta.len() > MAX_DATASET_BYTES {
        return Err(format!(
            "{} is larger than {MAX_DATASET_BYTES} bytes",
            path.display()
        ));
    }
    dataset::import_file(store, path, progress).map_err(|e| match e {
        dataset::FileError::Read(e) => format!("{}: {e}", path.display()),
        dataset::FileError::Refused(e) => {
            format!("{}: {e}; nothing was imported", path.display())
        }
    })
}

fn serve(s: Serve) -> Result<i32, Fail> {
    // Everything that can be refused is, before anything is created on disk.
    let language = match s.language.as_str() {
        "zh" => Lang::Zh,
        "en" => Lang::En,
        other => {
            return Err(Fail::Usage(format!(
                "--language must be zh or en, not {other:?}"
            )));
        }
    };
    let Some(log_format) = Format::parse(&s.log_format) else {
        return Err(Fail::Usage(format!(
            "--log-format must be text or json, not {:?}",
            s.log_format
        )));
    };
    let threads = positive("--threads", s.threads)?;
    let read_timeout = positive("--read-timeout-secs", s.read_timeout_secs)?;
    let body_timeout = positive("--body-timeout-secs", s.body_timeout_secs)?;
    let cache_mib = positive("--cache-mib", s.cache_mib)?;
    let max_connections = positive("--max-connections", s.max_connections)?;
    let head_timeout = positive("--head-timeout-secs", s.head_timeout_secs)?;
    let max_body_memory = positive("--max-body-memory", s.max_body_memory)?;
    let seed = seed::Seed::from_arg(s.seed.as_deref());
    if let seed::Seed::File(path) = &seed {
        std::fs::File::open(path)
            .map_err(|e| Fail::Run(format!("seed: cannot read {}: {e}", path.display())))?;
    }
    if s.auth.is_none() && !s.insecure_listen && !is_loopback(&s.listen) {
        return Err(Fail::Run(format!(
            "refusing to listen on {}, which is not a loopback address, without --auth FILE \
             (anyone who can connect could write; --insecure-listen allows it)",
            s.listen
        )));
    }
    // The admin routes answer anyone without credentials (they are a test double's).
    if s.admin && !s.insecure_listen && !is_loopback(&s.listen) {
        return Err(Fail::Run(format!(
            "refusing --admin on {}, which is not a loopback address: anyone who can connect \
             could reset or replace the store (--insecure-listen allows it)",
            s.listen
        )));
    }
    let gate = http::auth::Gate {
        auth: match &s.auth {
            Some(path) => Some(Arc::new(auth::Live::new(auth::load(path)?))),
            None => None,
        },
        jwt_key: match &s.jwt_public_key {
            Some(path) => {
                let text = std::fs::read(path)
                    .map_err(|e| format!("--jwt-public-key {}: {e}", path.display()))?;
                let key = auth::rsa::parse_public_key(&text)
                    .map_err(|e| format!("--jwt-public-key {}: {e}", path.display()))?;
                Some(Arc::new(key))
            }
            None => None,
        },
    };
    crate::log::configure(log_format, s.quiet);
    crate::memory::limit_malloc_arenas(MALLOC_ARENAS);
    // Before any thread starts, so that every thread inherits the blocked signals.
    let shutdown = signals::Shutdown::install()?;
    let health = Arc::new(http::ops::Health::new());
    let config = Config {
        listen: s.listen,
        threads,
        language,
        read_timeout: Duration::from_secs(read_timeout),
        body_timeout: Duration::from_secs(body_timeout),
        watch_timeout: Duration::from_secs(s.watch_timeout_secs),
        health: Arc::clone(&health),
        admin: s.admin.then(|| seed.clone()),
        max_connections,
        head_timeout: Duration::from_secs(head_timeout),
        max_body_memory: max_body_memory.saturating_mul(1024 * 1024),
        floor: if s.floor {
            Some(Arc::new(crate::bench::floor_shape()?))
        } else {
            None
        },
        gate: gate.clone(),
    };
    // A port in use is refused before the store is opened (and its file created).
    let bound = http::bind(&config)?;
    let created = Created::before_open(&s.db);
    let store = if s.memory {
        Store::memory().map_err(|e| e.to_string())?
    } else {
        open(&s.db, cache_mib)?
    };
    let where_ = if s.memory {
        "memory".to_string()
    } else {
        s.db.display().to_string()
    };
    crate::log!(
        "cmdb-lite {} starting: store {where_}, {threads} worker permit(s)",
        http::ops::VERSION
    );
    let store = Arc::new(store);
    let server = match http::Server::start_on(bound, Arc::clone(&store), &config) {
        Ok(server) => server,
        Err(e) => {
            let _ = store.close();
            if !s.memory {
                created.remove();
            }
            return Err(Fail::Run(e));
        }
    };
    // /healthz and /readyz answer from here on; bk-cmdb's routes once the store is seeded.
    crate::log!("cmdb-lite: listening on http://{}", server.addr());
    if let Err(e) = seed_if_empty(&store, &seed, s.floor) {
        crate::log!(error, "cmdb-lite: seed: {e}; stopping");
        server.shutdown(Duration::from_secs(SHUTDOWN_GRACE_SECS));
        let _ = store.close();
        if !s.memory {
            created.remove();
        }
        return Err(Fail::Run(format!("seed: {e}")));
    }
    health.set_ready();
    crate::log!("cmdb-lite: ready");
    // Scripts and supervisors wait for this line: everything is served once it is out.
    if let Err(e) = out_line(&format!("cmdb-lite listening on http://{}", server.addr())) {
        crate::log!(warn, "cmdb-lite: cannot write to standard output: {e}");
    }
    let signal = loop {
        match shutdown.wait() {
            "SIGHUP" => reload(s.auth.as_deref(), gate.auth.as_deref()),
            other => break other,
        }
    };
    health.set_stopping();
    crate::log!("cmdb-lite: {signal}: shutting down");
    let busy = server.shutdown(Duration::from_secs(SHUTDOWN_GRACE_SECS));
    if busy > 0 {
        crate::log!(
            warn,
            "cmdb-lite: {busy} request(s) still running after {SHUTDOWN_GRACE_SECS} s are abandoned (not answered)"
        );
    }
    // Waits for a transaction in progress, then closes the file cleanly.
    store
        .close()
        .map_err(|e| format!("closing the database: {e}"))?;
    crate::log!("cmdb-lite: stopped");
    Ok(0)
}

/// Seeds an empty store (not the benchmark's floor), saying what was loaded and from where.
fn seed_if_empty(store: &Store, seed: &seed::Seed, floor: bool) -> Result<(), String> {
    let empty = store
        .read(|tx| tx.is_empty())
        .map_err(|e| CcError::from(e).to_string())?;
    if !empty {
        crate::log!("cmdb-lite: the store holds data; nothing seeded");
        return Ok(());
    }
    if floor {
        return Ok(());
    }
    let t = Instant::now();
    let n = seed::seed(store, seed)?;
    match seed {
        seed::Seed::Empty => crate::log!(
            "cmdb-lite: the store is empty; only the built-in records ({n}) seeded (--seed none)"
        ),
        seed::Seed::File(path) => crate::log!(
            "cmdb-lite: seeded the empty store with {n} records from {} in {:.1} s",
            path.display(),
            t.elapsed().as_secs_f64()
        ),
        seed::Seed::Demo => crate::log!(
            "cmdb-lite: seeded the empty store with {n} records of the built-in demo dataset \
             (pass --seed none for an empty store)"
        ),
        seed::Seed::Text(_) => crate::log!("cmdb-lite: seeded the empty store with {n} records"),
    }
    Ok(())
}

/// Whether every address `listen` names is a loopback one (`localhost`, 127.0.0.0/8, ::1).
fn is_loopback(listen: &str) -> bool {
    use std::net::ToSocketAddrs;
    match listen.to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<_> = addrs.collect();
            !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback())
        }
        Err(_) => false,
    }
}

/// SIGHUP: reads the auth file again and swaps it in whole; requests in progress finish with the
/// version they started with, and no connection is touched. A file that no longer parses is
/// refused and the one in force is kept.
fn reload(path: Option<&Path>, live: Option<&auth::Live>) {
    let (Some(path), Some(live)) = (path, live) else {
        crate::log!("cmdb-lite: SIGHUP: no --auth file to reload");
        return;
    };
    match auth::load(path) {
        Ok(file) => {
            let (apps, users) = (file.apps.len(), file.users.len());
            live.replace(file);
            crate::log!(
                "cmdb-lite: SIGHUP: reloaded {} ({apps} apps, {users} users)",
                path.display()
            );
        }
        Err(e) => crate::log!("cmdb-lite: SIGHUP: kept the auth file in force: {e}"),
    }
}

fn import(i: Import) -> Result<i32, Fail> {
    // The dataset must be readable before the database is opened (and perhaps created).
    std::fs::File::open(&i.file)
        .map_err(|e| Fail::Run(format!("cannot read {}: {e}", i.file.display())))?;
    let created = Created::before_open(&i.db);
    let store = open(&i.db, DEFAULT_CACHE_MIB)?;
    let t = Instant::now();
    let result = import_file(&store, &i.file, |n| {
        crate::log!(
            "cmdb-lite: import: {n} processes loaded ({:.1} s)",
            t.elapsed().as_secs_f64()
        );
    });
    let closed = store.close();
    let n = match result {
        Ok(n) => n,
        Err(e) => {
            // A database this import created is removed again: nothing is left behind.
            created.remove();
            return Err(Fail::Run(e));
        }
    };
    closed.map_err(|e| format!("closing the database: {e}"))?;
    crate::log!(
        "cmdb-lite: imported {n} records from {} in {:.1} s",
        i.file.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(0)
}

fn run_bench(b: Bench) -> Result<i32, Fail> {
    if !(b.secs > 0.0 && b.secs.is_finite()) {
        return Err(Fail::Usage(format!(
            "--secs must be a positive number, not {}",
            b.secs
        )));
    }
    positive("--connections", b.connections)?;
    positive("--list-size", b.list_size)?;
    positive("--cache-mib", b.cache_mib)?;
    positive("--threads", b.threads)?;
    bench::run(&bench::Options {
        secs: b.secs,
        connections: b.connections,
        list_size: b.list_size,
        scale: b.scale,
        scale_processes: b.scale_processes,
        sync_instances: b.sync_instances,
        dir: b.dir,
        cache_mib: b.cache_mib,
        threads: b.threads,
        watchers: b.watchers,
    })?;
    Ok(0)
}

fn export(e: Export) -> Result<i32, Fail> {
    let t = Instant::now();
    let written = match &e.from {
        Some(url) => {
            let url = url.clone();
            crate::fetch::authority(&url).map_err(Fail::Usage)?;
            write_output(e.out.as_deref(), |out| {
                crate::fetch::export(&url, e.authorization.as_deref(), out)
                    .map(|n| format!("{n} bytes from {url}"))
            })?
        }
        None => {
            existing(&e.db)?;
            let ro = match store::ReadOnly::open(&e.db, OFFLINE_CACHE_MIB << 20) {
                // A version-1 store is upgraded in place once (as `serve` and `import` do),
                // then read read-only like any other.
                Err(store::OpenError::Migratable(..)) => {
                    open(&e.db, OFFLINE_CACHE_MIB)?
                        .close()
                        .map_err(|err| format!("closing the database: {err}"))?;
                    store::ReadOnly::open(&e.db, OFFLINE_CACHE_MIB << 20)
                }
                other => other,
            }
            .map_err(|err| err.to_string())?;
            write_output(e.out.as_deref(), |out| {
                ro.read(|tx| Ok(dataset::write(tx, out)))
                    .map_err(dataset::WriteError::Store)?
                    .map(|n| format!("{n} processes"))
            })?
        }
    };
    if let (Some(n), Some(path)) = (written, &e.out) {
        crate::log!(
            "cmdb-lite: exported {n} to {} in {:.1} s",
            path.display(),
            t.elapsed().as_secs_f64()
        );
    }
    Ok(0)
}

/// Runs `write` into `out` (a file, written beside it and renamed into place once complete,
/// so a failed export leaves no partial file), or into standard output, where a reader that
/// goes away (`| head`) ends the export quietly. Returns `write`'s summary of what it wrote
/// (`None`: stdout was closed).
fn write_output(
    out: Option<&Path>,
    write: impl FnOnce(&mut dyn std::io::Write) -> Result<String, dataset::WriteError>,
) -> Result<Option<String>, Fail> {
    use std::io::Write as _;
    match out {
        Some(path) => {
            let name = path
                .file_name()
                .ok_or_else(|| Fail::Usage(format!("--out {} names no file", path.display())))?;
            let mut partial_name = std::ffi::OsString::from(".");
            partial_name.push(name);
            partial_name.push(".partial");
            let partial = path.with_file_name(partial_name);
            let file = create_private(&partial)
                .map_err(|err| format!("cannot write {}: {err}", path.display()))?;
            let mut w = std::io::BufWriter::new(file);
            let result = write(&mut w).and_then(|n| {
                w.flush().map_err(dataset::WriteError::Out)?;
                w.get_ref().sync_all().map_err(dataset::WriteError::Out)?;
                Ok(n)
            });
            drop(w);
            match result {
                Ok(n) => {
                    std::fs::rename(&partial, path)
                        .map_err(|err| format!("cannot write {}: {err}", path.display()))?;
                    Ok(Some(n))
                }
                Err(err) => {
                    let _ = std::fs::remove_file(&partial);
                    Err(Fail::Run(format!(
                        "export to {} failed: {err}; nothing was written",
                        path.display()
                    )))
                }
            }
        }
        None => {
            let stdout = std::io::stdout();
            let mut w = std::io::BufWriter::new(stdout.lock());
            match write(&mut w)
                .and_then(|n| w.flush().map(|()| n).map_err(dataset::WriteError::Out))
            {
                Ok(n) => Ok(Some(n)),
                Err(dataset::WriteError::Out(err)) if closed(&err) => Ok(None),
                Err(err) => Err(Fail::Run(format!("export failed: {err}"))),
            }
        }
    }
}

/// Refuses a database file that does not exist (`export`, `check`, `compact` create none).
fn existing(db: &Path) -> Result<(), Fail> {
    if db.exists() {
        Ok(())
    } else {
        Err(Fail::Run(format!(
            "no database at {} (pass --db)",
            db.display()
        )))
    }
}

/// Creates (or truncates) a file readable by its owner only (0600 whatever the umask, also
/// when it existed): an export holds the whole store.
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(f)
}

fn check(c: Check) -> Result<i32, Fail> {
    existing(&c.db)?;
    if c.repair {
        let repaired =
            store::admin::repair(&c.db, OFFLINE_CACHE_MIB << 20).map_err(|e| e.to_string())?;
        crate::log!(
            "cmdb-lite: {}",
            if repaired {
                format!(
                    "{} was not closed cleanly; redb repaired it",
                    c.db.display()
                )
            } else {
                format!("{} was closed cleanly; no repair needed", c.db.display())
            }
        );
    }
    let ro = store::ReadOnly::open(&c.db, OFFLINE_CACHE_MIB << 20).map_err(|e| e.to_string())?;
    let mut count = 0usize;
    let mut gone = false;
    ro.read(|tx| {
        store::check::each_problem(tx, &mut |p| {
            count += 1;
            if !gone && let Err(e) = out_line(p) {
                gone = closed(&e);
            }
        })
    })
    .map_err(|e| CcError::from(e).render(Lang::En))?;
    if count == 0 {
        let _ = out_line(&format!("cmdb-lite: {} is clean", c.db.display()));
        Ok(0)
    } else {
        crate::log!(warn, "cmdb-lite: {count} problem(s) in {}", c.db.display());
        Ok(1)
    }
}

fn compact(c: Compact) -> Result<i32, Fail> {
    existing(&c.db)?;
    let (before, after) =
        store::admin::compact(&c.db, OFFLINE_CACHE_MIB << 20).map_err(|e| e.to_string())?;
    let _ = out_line(&format!(
        "cmdb-lite: compacted {}: {before} -> {after} bytes",
        c.db.display()
    ));
    Ok(0)
}

fn push(p: Push) -> Result<i32, Fail> {
    let family = match p.family.as_str() {
        "esb" => crate::push::Family::Esb,
        "gateway" => crate::push::Family::Gateway,
        other => {
            return Err(Fail::Usage(format!(
                "--family {other}: expected esb or gateway"
            )));
        }
    };
    existing(&p.db)?;
    let store = open(&p.db, OFFLINE_CACHE_MIB)?;
    let options = crate::push::Options {
        address: crate::push::Address {
            url: &p.to,
            family,
            stage: &p.stage,
            app_code: &p.app_code,
            app_secret: &p.app_secret,
            user: &p.user,
        },
        dry_run: p.dry_run,
        progress: true,
    };
    let result = crate::push::run(&store, &options);
    let closed = store.close();
    let code = match result {
        Ok(sum) => {
            let _ = out_line(sum.render(p.dry_run).trim_end());
            if sum.problems.is_empty() { 0 } else { 3 }
        }
        Err(crate::push::Failure::Call(e, sum)) => {
            let _ = out_line(sum.render(p.dry_run).trim_end());
            err_line(&format!("cmdb-lite: push stopped: {e}"));
            1
        }
        Err(crate::push::Failure::Store(e)) => return Err(Fail::Run(e)),
    };
    closed?;
    Ok(code)
}
