//! Opening a store: the file's verdict (ours, of this schema version, or refused untouched),
//! redb's open with its repair callback, and laying out the tables of a new store.

use super::codec;
use super::tables::*;
use redb::{Database, ReadableDatabase};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub(super) const MAGIC: &[u8] = b"cmdb-lite";

/// Why a database could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// Another process holds the file.
    InUse(PathBuf),
    /// The file is not a redb database, or a redb database of another program.
    NotOurs(PathBuf, String),
    /// The file was written by a newer (or unknown) schema version.
    UnknownSchema(PathBuf, u8),
    /// The file has an older schema version this binary migrates (`check` does not).
    Migratable(PathBuf, u8),
    /// A migration needs this many free bytes on the file's disk, which has only these.
    NoRoom(PathBuf, u64, u64),
    /// Any other failure, with its text.
    Other(PathBuf, String),
    /// A read-only open met a file that was not closed cleanly (redb must repair it first).
    NeedsRepair(PathBuf),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::InUse(p) => write!(
                f,
                "database is in use: {} is held by another process (stop the other cmdb-lite, or pass another --db)",
                p.display()
            ),
            OpenError::NotOurs(p, why) => write!(
                f,
                "{} is not a cmdb-lite database ({why}); it was left untouched",
                p.display()
            ),
            OpenError::UnknownSchema(p, v) => write!(
                f,
                "{} has schema version {v}, but this binary knows only version {}; use a newer cmdb-lite",
                p.display(),
                codec::SCHEMA_VERSION
            ),
            OpenError::Migratable(p, v) => write!(
                f,
                "{} has schema version {v}; `serve`, `import` and `export` migrate it to version {} in place, `check` accepts only version {}",
                p.display(),
                codec::SCHEMA_VERSION,
                codec::SCHEMA_VERSION
            ),
            OpenError::NoRoom(p, need, free) => write!(
                f,
                "{} needs migrating to schema version {}, which needs {need} free bytes on its disk, and there are {free}; it was left untouched",
                p.display(),
                codec::SCHEMA_VERSION
            ),
            OpenError::Other(p, why) => write!(f, "cannot open {}: {why}", p.display()),
            OpenError::NeedsRepair(p) => write!(
                f,
                "{} was not closed cleanly (a crash); it was left untouched: `cmdb-lite check --repair` lets redb repair it",
                p.display()
            ),
        }
    }
}

/// Opens an existing or new database file read-write. redb repairs a file that was not closed
/// cleanly (a crash) during this call; that is logged, as it takes time on a large file.
pub(super) fn open_db(path: &Path, cache_bytes: usize) -> Result<super::Db, OpenError> {
    let p = path.to_path_buf();
    let announced = Arc::new(AtomicBool::new(false));
    let shown = path.display().to_string();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| OpenError::Other(p.clone(), e.to_string()))?;
    let (backend, room) = super::room::RoomBackend::new(file)
        .map_err(|e| OpenError::Other(p.clone(), e.to_string()))?;
    let db = Database::builder()
        .set_cache_size(cache_bytes)
        .set_repair_callback(move |_| {
            if !announced.swap(true, Ordering::Relaxed) {
                crate::log!("cmdb-lite: {shown} was not closed cleanly; redb is repairing it");
            }
        })
        .create_with_backend(backend)
        .map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => OpenError::InUse(p),
            other => OpenError::Other(p, other.to_string()),
        })?;
    Ok(super::Db::new(db, Some(room)))
}

/// What an existing database says about itself: `None` if it has no table yet (a new file),
/// otherwise whether it is a cmdb-lite store of this schema version.
pub(super) fn verdict(
    db: &impl ReadableDatabase,
    p: &Path,
) -> Result<Option<Result<(), OpenError>>, OpenError> {
    let other = |e: &dyn fmt::Display| OpenError::Other(p.to_path_buf(), e.to_string());
    let not_ours = || OpenError::NotOurs(p.to_path_buf(), "a redb file of another program".into());
    let rtx = db.begin_read().map_err(|e| other(&e))?;
    let names: Vec<String> = rtx
        .list_tables()
        .map_err(|e| other(&e))?
        .map(|h| redb::TableHandle::name(&h).to_string())
        .collect();
    if names.is_empty() {
        return Ok(None);
    }
    if !names.iter().any(|n| n == "meta") {
        return Ok(Some(Err(not_ours())));
    }
    let meta = rtx.open_table(META).map_err(|e| other(&e))?;
    let magic_ok = meta
        .get("magic")
        .map_err(|e| other(&e))?
        .is_some_and(|m| m.value() == MAGIC);
    let version = meta
        .get("schema_version")
        .map_err(|e| other(&e))?
        .and_then(|v| v.value().first().copied())
        .unwrap_or(0);
    Ok(Some(if !magic_ok {
        Err(not_ours())
    } else if version == codec::V1 {
        Err(OpenError::Migratable(p.to_path_buf(), version))
    } else if version != codec::SCHEMA_VERSION {
        Err(OpenError::UnknownSchema(p.to_path_buf(), version))
    } else {
        Ok(())
    }))
}

/// Lays out a new store: the meta table (magic, schema version) and every table, empty.
pub(super) fn lay_out(db: &Database, p: &Path) -> Result<(), OpenError> {
    let other = |e: &dyn fmt::Display| OpenError::Other(p.to_path_buf(), e.to_string());
    let txn = db.begin_write().map_err(|e| other(&e))?;
    {
        let mut meta = txn.open_table(META).map_err(|e| other(&e))?;
        meta.insert("magic", MAGIC).map_err(|e| other(&e))?;
        meta.insert("schema_version", [codec::SCHEMA_VERSION].as_slice())
            .map_err(|e| other(&e))?;
    }
    create_tables(&txn).map_err(|e| other(&e))?;
    txn.commit().map_err(|e| other(&e))
}

/// Creates every table of the current layout that `txn`'s file lacks (a new store, or one
/// migrated from an older version, whose tables were created as they were first written).
pub(super) fn create_tables(txn: &redb::WriteTransaction) -> Result<(), redb::TableError> {
    macro_rules! create {
        ($($t:expr),*) => { $( txn.open_table($t)?; )* };
    }
    create!(SEQUENCES, SETTINGS);
    create!(
        BUSINESSES,
        HOSTS,
        MODULES,
        SERVICE_CATEGORIES,
        SERVICE_TEMPLATES
    );
    create!(PROCESS_TEMPLATES, SERVICE_INSTANCES, PROCESSES, RELATIONS);
    create!(SETS, CLOUD_AREAS, SET_BY_BIZ, MODULE_BY_SET, MODULE_BY_BIZ);
    create!(
        MODULE_BY_ST,
        MODULE_BY_HOST,
        HOST_BY_SET,
        HOST_BY_BIZ,
        HOST_BY_IP
    );
    create!(PROC_BY_SI, SI_BY_MODULE, SI_BY_HOST, ST_BY_BIZ, PT_BY_ST);
    create!(
        UNIQ_PROC_NAME,
        UNIQ_PROC_FUNC,
        UNIQ_SI_TEMPLATE,
        UNIQ_ST_NAME
    );
    for (_, def) in super::changelog::LOGS {
        txn.open_table(*def)?;
    }
    Ok(())
}
