//! The command line (product.md section 2): `serve`, `import`, `export`, `check`, and `bench`.
//! Errors are one readable line on stderr and a non-zero exit code.

use crate::auth;
use crate::bench;
use crate::dataset;
use crate::error::Lang;
use crate::http::{self, Config};
use crate::limits::{
    BENCH_CONNECTIONS, BENCH_IDLE_WATCHERS, BENCH_LIST_SIZE, BENCH_SCALE_LARGE, BENCH_SECS,
    BENCH_SYNC_INSTANCES, BODY_TIMEOUT_SECS, DEFAULT_BODY_MEMORY_MIB, DEFAULT_CACHE_MIB,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_THREADS, HEAD_TIMEOUT_SECS, MALLOC_ARENAS, MAX_DATASET_BYTES,
    READ_TIMEOUT_SECS, SHUTDOWN_GRACE_SECS, WATCH_TIMEOUT_SECS,
};
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

/// Write the whole store, id sequences included, as a dataset file.
#[derive(FromArgs)]
#[argh(subcommand, name = "export")]
pub struct Export {
    /// database file (default data/cmdb.redb)
    #[argh(option, default = "PathBuf::from(DEFAULT_DB)")]
    pub db: PathBuf,
    /// output file (default: standard output)
    #[argh(option)]
    pub out: Option<PathBuf>,
}

/// Verify the store's indexes, relations and sequences; exit 0 only if clean.
#[derive(FromArgs)]
#[argh(subcommand, name = "check")]
pub struct Check {
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

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    let cli: Cli = argh::from_env();
    // A write past a file-size limit then fails (and is reported) instead of killing us.
    signals::ignore_file_size_limit_signal();
    let result = match cli.command {
        Command::Serve(s) => serve(s),
        Command::Import(i) => import(i),
        Command::Export(e) => export(e),
        Command::Check(c) => check(c),
        Command::Bench(b) => run_bench(b),
    };
    match result {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("cmdb-lite: {msg}");
            1
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

/// Opens a database that must already exist (`export`, `check` never create one).
fn open_existing(db: &Path) -> Result<Store, String> {
    if !db.exists() {
        return Err(format!("no database at {} (pass --db)", db.display()));
    }
    open(db, DEFAULT_CACHE_MIB)
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

fn serve(s: Serve) -> Result<i32, String> {
    crate::memory::limit_malloc_arenas(MALLOC_ARENAS);
    // Before any thread starts, so that every thread inherits the blocked signals.
    let shutdown = signals::Shutdown::install()?;
    let language = match s.language.as_str() {
        "zh" => Lang::Zh,
        "en" => Lang::En,
        other => return Err(format!("--language must be zh or en, not {other:?}")),
    };
    if s.auth.is_none() && !s.insecure_listen && !is_loopback(&s.listen) {
        return Err(format!(
            "refusing to listen on {}, which is not a loopback address, without --auth FILE \
             (anyone who can connect could write; --insecure-listen allows it)",
            s.listen
        ));
    }
    // The admin routes answer anyone without credentials (they are a test double's).
    if s.admin && !s.insecure_listen && !is_loopback(&s.listen) {
        return Err(format!(
            "refusing --admin on {}, which is not a loopback address: anyone who can connect \
             could reset or replace the store (--insecure-listen allows it)",
            s.listen
        ));
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
    let store = if s.memory {
        Store::memory().map_err(|e| e.to_string())?
    } else {
        open(&s.db, s.cache_mib)?
    };
    let empty = store.read(|tx| tx.is_empty()).map_err(|e| e.to_string())?;
    let seed = seed::Seed::from_arg(s.seed.as_deref());
    if empty && !s.floor {
        seed::seed(&store, &seed).map_err(|e| format!("seed: {e}"))?;
    }
    let config = Config {
        listen: s.listen,
        threads: s.threads,
        language,
        read_timeout: std::time::Duration::from_secs(s.read_timeout_secs.max(1)),
        body_timeout: std::time::Duration::from_secs(s.body_timeout_secs),
        watch_timeout: std::time::Duration::from_secs(s.watch_timeout_secs),
        admin: s.admin.then_some(seed),
        max_connections: s.max_connections.max(1),
        head_timeout: std::time::Duration::from_secs(s.head_timeout_secs.max(1)),
        max_body_memory: s.max_body_memory.max(1).saturating_mul(1024 * 1024),
        floor: if s.floor {
            Some(Arc::new(crate::bench::floor_shape()?))
        } else {
            None
        },
        gate: gate.clone(),
    };
    let store = Arc::new(store);
    let server = http::Server::start(Arc::clone(&store), &config)?;
    println!("cmdb-lite listening on http://{}", server.addr());
    let signal = loop {
        match shutdown.wait() {
            "SIGHUP" => reload(s.auth.as_deref(), gate.auth.as_deref()),
            other => break other,
        }
    };
    crate::log!("cmdb-lite: {signal}: shutting down");
    let busy = server.shutdown(Duration::from_secs(SHUTDOWN_GRACE_SECS));
    if busy > 0 {
        crate::log!(
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

fn import(i: Import) -> Result<i32, String> {
    let store = open(&i.db, DEFAULT_CACHE_MIB)?;
    let t = Instant::now();
    let n = import_file(&store, &i.file, |n| {
        eprintln!(
            "cmdb-lite: import: {n} processes loaded ({:.1} s)",
            t.elapsed().as_secs_f64()
        );
    })?;
    eprintln!(
        "cmdb-lite: imported {n} records from {} in {:.1} s",
        i.file.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(0)
}

fn run_bench(b: Bench) -> Result<i32, String> {
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

fn export(e: Export) -> Result<i32, String> {
    let store = open_existing(&e.db)?;
    let ds = dataset::export(&store).map_err(|err| err.to_string())?;
    let text = serde_json::to_string_pretty(&ds).map_err(|err| err.to_string())? + "\n";
    match e.out {
        Some(path) => write_private(&path, text.as_bytes())
            .map_err(|err| format!("cannot write {}: {err}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(0)
}

/// Writes a file readable by its owner only (0600 whatever the umask, also when it existed).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn check(c: Check) -> Result<i32, String> {
    if !c.db.exists() {
        return Err(format!("no database at {} (pass --db)", c.db.display()));
    }
    let cache = DEFAULT_CACHE_MIB.saturating_mul(1024 * 1024);
    let store = Store::open_current(&c.db, cache).map_err(|e| e.to_string())?;
    let problems = store::check::run(&store).map_err(|e| e.to_string())?;
    if problems.is_empty() {
        println!("cmdb-lite: {} is clean", c.db.display());
        Ok(0)
    } else {
        for p in &problems {
            println!("{p}");
        }
        eprintln!(
            "cmdb-lite: {} problem(s) in {}",
            problems.len(),
            c.db.display()
        );
        Ok(1)
    }
}
