//! The command line (product.md section 2): `serve`, `import`, `export`, `check`.
//! Errors are one readable line on stderr and a non-zero exit code.

use crate::dataset;
use crate::error::Lang;
use crate::http::{self, Config};
use crate::limits::{DEFAULT_CACHE_MIB, DEFAULT_THREADS, MAX_DATASET_BYTES, SHUTDOWN_GRACE_SECS};
use crate::signals;
use crate::store::{self, Store};
use argh::FromArgs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

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
    /// HTTP worker threads (default 16)
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
    /// redb page cache in MiB (default 32)
    #[argh(option, default = "DEFAULT_CACHE_MIB")]
    pub cache_mib: usize,
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
    Store::open(db, cache_mib.saturating_mul(1024 * 1024)).map_err(|e| e.to_string())
}

/// Opens a database that must already exist (`export`, `check` never create one).
fn open_existing(db: &Path) -> Result<Store, String> {
    if !db.exists() {
        return Err(format!("no database at {} (pass --db)", db.display()));
    }
    open(db, DEFAULT_CACHE_MIB)
}

fn read_dataset(path: &Path) -> Result<dataset::Dataset, String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if meta.len() > MAX_DATASET_BYTES {
        return Err(format!(
            "{} is larger than {MAX_DATASET_BYTES} bytes",
            path.display()
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    dataset::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn serve(s: Serve) -> Result<i32, String> {
    // Before any thread starts, so that every thread inherits the blocked signals.
    let shutdown = signals::Shutdown::install()?;
    let language = match s.language.as_str() {
        "zh" => Lang::Zh,
        "en" => Lang::En,
        other => return Err(format!("--language must be zh or en, not {other:?}")),
    };
    let store = if s.memory {
        Store::memory().map_err(|e| e.to_string())?
    } else {
        open(&s.db, s.cache_mib)?
    };
    let empty = store.read(|tx| tx.is_empty()).map_err(|e| e.to_string())?;
    if empty {
        let seed = match s.seed.as_deref() {
            Some("none") => None,
            Some(file) => Some(read_dataset(Path::new(file))?),
            None => Some(dataset::parse(dataset::DEMO).map_err(|e| format!("built-in demo: {e}"))?),
        };
        if let Some(ds) = seed {
            dataset::import(&store, &ds).map_err(|e| format!("seed: {e}"))?;
        }
    }
    let config = Config {
        listen: s.listen,
        threads: s.threads,
        language,
    };
    let store = Arc::new(store);
    let server = http::Server::start(Arc::clone(&store), &config)?;
    println!("cmdb-lite listening on http://{}", server.addr());
    let signal = shutdown.wait();
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

fn import(i: Import) -> Result<i32, String> {
    let ds = read_dataset(&i.file)?;
    let store = open(&i.db, DEFAULT_CACHE_MIB)?;
    let n = dataset::import(&store, &ds)
        .map_err(|e| format!("{}: {e}; nothing was imported", i.file.display()))?;
    eprintln!("cmdb-lite: imported {n} records from {}", i.file.display());
    Ok(0)
}

fn export(e: Export) -> Result<i32, String> {
    let store = open_existing(&e.db)?;
    let ds = dataset::export(&store).map_err(|err| err.to_string())?;
    let text = serde_json::to_string_pretty(&ds).map_err(|err| err.to_string())? + "\n";
    match e.out {
        Some(path) => std::fs::write(&path, text)
            .map_err(|err| format!("cannot write {}: {err}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(0)
}

fn check(c: Check) -> Result<i32, String> {
    let store = open_existing(&c.db)?;
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
