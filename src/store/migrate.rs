//! The migration of a version-1 store to the current schema version, in place, when this
//! binary first opens it (`Store::open`; `check` refuses to, see `OpenError::Migratable`).
//!
//! One redb write transaction rewrites every record (the processes into the compact encoding
//! of `compact.rs`, the other records under the new version byte, their layout unchanged) and
//! the schema version, and commits once, durably. Until that commit the file holds the
//! version-1 store: a migration that fails, or is killed, leaves it as it was, and the next
//! open migrates again. It is refused before it starts if the disk has no room for it.

use super::codec::{self, CodecError};
use super::open::OpenError;
use super::tables::*;
use super::typed::RecTable;
use crate::limits::{MIGRATION_CHUNK, MIGRATION_SPARE_BYTES};
use redb::{Database, Durability, ReadableTable};
use std::path::Path;
use std::time::Instant;

/// The record tables whose values keep their layout and take the new version byte.
const STRUCT_TABLES: [RecTable; 8] = [
    BUSINESSES,
    HOSTS,
    MODULES,
    SERVICE_CATEGORIES,
    SERVICE_TEMPLATES,
    PROCESS_TEMPLATES,
    SERVICE_INSTANCES,
    RELATIONS,
];

/// Test hook: milliseconds the migration sleeps halfway, its transaction open, after logging
/// that it does (so a test can kill it there).
const STALL_ENV: &str = "CMDB_MIGRATE_STALL_MS";

/// Migrates the version-1 store `db` (the file at `path`, `None` in memory) in one transaction.
pub(super) fn run(db: &Database, path: Option<&Path>) -> Result<(), OpenError> {
    let p = path.map_or_else(|| ":memory:".into(), Path::to_path_buf);
    let other = |e: &dyn std::fmt::Display| OpenError::Other(p.clone(), e.to_string());
    if let Some(path) = path {
        let size = std::fs::metadata(path).map_err(|e| other(&e))?.len();
        let need = size.saturating_add(MIGRATION_SPARE_BYTES);
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if let Some(free) = crate::disk::free_bytes(dir)
            && free < need
        {
            return Err(OpenError::NoRoom(p.clone(), need, free));
        }
    }
    crate::log!(
        "cmdb-lite: {} has schema version {}; migrating it to version {} in one transaction",
        p.display(),
        codec::V1,
        codec::SCHEMA_VERSION
    );
    let started = Instant::now();
    let mut txn = db.begin_write().map_err(|e| other(&e))?;
    txn.set_durability(Durability::Immediate)
        .map_err(|e| other(&e))?;
    let mut records = 0usize;
    for (i, def) in STRUCT_TABLES.into_iter().enumerate() {
        records += rewrite(&txn, def, codec::struct_v1_to_v2).map_err(|e| other(&e))?;
        if i == STRUCT_TABLES.len() / 2 {
            stall();
        }
    }
    records += rewrite(&txn, PROCESSES, |bytes| {
        codec::decode_map_v1(bytes).map(|map| codec::encode_map(&map))
    })
    .map_err(|e| other(&e))?;
    // A version-1 file has only the tables its writes created: `check` expects them all.
    super::open::create_tables(&txn).map_err(|e| other(&e))?;
    {
        let mut meta = txn.open_table(META).map_err(|e| other(&e))?;
        meta.insert("schema_version", [codec::SCHEMA_VERSION].as_slice())
            .map_err(|e| other(&e))?;
    }
    txn.commit().map_err(|e| other(&e))?;
    crate::log!(
        "cmdb-lite: migrated {} to version {}: {records} records in {:.1} s",
        p.display(),
        codec::SCHEMA_VERSION,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn stall() {
    let Some(ms) = std::env::var(STALL_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return;
    };
    crate::log!("cmdb-lite: migration halfway, stalling {ms} ms ({STALL_ENV})");
    std::thread::sleep(std::time::Duration::from_millis(ms));
}

/// Why a table could not be rewritten.
enum Failure {
    Db(redb::Error),
    Value(i64, CodecError),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Db(e) => write!(f, "{e}"),
            Failure::Value(id, e) => write!(f, "record {id}: {e}"),
        }
    }
}

impl<E: Into<redb::Error>> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure::Db(e.into())
    }
}

/// Rewrites every value of `def` through `convert`, `MIGRATION_CHUNK` records at a time.
fn rewrite(
    txn: &redb::WriteTransaction,
    def: RecTable,
    convert: impl Fn(&[u8]) -> Result<Vec<u8>, CodecError>,
) -> Result<usize, Failure> {
    let mut from = i64::MIN;
    let mut done = 0;
    loop {
        let chunk: Vec<(i64, Vec<u8>)> = {
            let t = txn.open_table(def)?;
            let mut chunk = Vec::with_capacity(MIGRATION_CHUNK);
            for item in t.range(from..)?.take(MIGRATION_CHUNK) {
                let (k, v) = item?;
                let id = k.value();
                chunk.push((id, convert(v.value()).map_err(|e| Failure::Value(id, e))?));
            }
            chunk
        };
        let Some(&(last, _)) = chunk.last() else {
            return Ok(done);
        };
        let mut t = txn.open_table(def)?;
        for (id, bytes) in &chunk {
            t.insert(*id, bytes.as_slice())?;
        }
        done += chunk.len();
        match last.checked_add(1) {
            Some(next) => from = next,
            None => return Ok(done),
        }
    }
}
