//! The only module that touches redb: opening the file, typed tables, the codec, id sequences,
//! secondary indexes, and read and write transactions.
//!
//! Callers work through [`Store::read`] and [`Store::write`] with closures over [`ReadTx`] and
//! [`WriteTx`]. A write closure that returns `Err` aborts its transaction: nothing it wrote
//! persists. A write closure that returns `Ok` is committed with `Durability::Immediate` before
//! `write` returns, so an answer built from its result describes data that is on disk.
//! Every `put_*`/`delete_*` keeps the secondary indexes in the same transaction.
//!
//! Durability lives in [`Store::write`] alone (one transaction per call, synced before it
//! returns), so a later group commit changes that one function. An I/O failure (a full disk, a
//! file-size limit) latches redb's file backend: every later operation answers `PreviousIo` until
//! the database is closed and opened again. The store notices such a failure, lets the
//! transactions in progress end, and reopens the file (see `Store::reopen`); the request that
//! met the failure gets an error, reads go on, and writes work again once the disk does.

pub mod changelog;
pub mod check;
pub mod codec;
pub mod floor;
mod group;
pub mod records;
pub mod tables;

use crate::domain::watch::EventType;
use crate::error::{CcError, code};
use crate::limits::STORE_READ_ATTEMPTS;
use group::Batches;
use records::*;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Map, Value};
use std::cell::Cell;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};
use tables::*;

const MAGIC: &[u8] = b"cmdb-lite";

/// Why a database could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// Another process holds the file.
    InUse(PathBuf),
    /// The file is not a redb database, or a redb database of another program.
    NotOurs(PathBuf, String),
    /// The file was written by a newer (or unknown) schema version.
    UnknownSchema(PathBuf, u8),
    /// Any other failure, with its text.
    Other(PathBuf, String),
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
            OpenError::Other(p, why) => write!(f, "cannot open {}: {why}", p.display()),
        }
    }
}

/// The store: one redb database, reopened in place after an I/O failure.
pub struct Store {
    /// The open database. Every transaction holds the read side for its whole life; a reopen
    /// (and a write while degraded) takes the write side, so the database is closed with no
    /// transaction alive. Transaction closures must therefore never call the store again.
    slot: RwLock<Slot>,
    /// The file and cache size to reopen with; `None` for a store in memory.
    file: Option<(PathBuf, usize)>,
    /// Set by a reopen, cleared by the next write that commits: writes hold the slot alone.
    degraded: AtomicBool,
    /// Group commit: the batch write requests are joining (see `group.rs`).
    batches: Batches,
    /// Wakes the watches waiting for events (`changelog.rs`).
    bell: changelog::Bell,
}

struct Slot {
    /// `None` after a reopen failed; the next transaction tries again.
    db: Option<Database>,
    /// Bumped by every reopen, so that threads that met the same failure reopen only once.
    generation: u64,
    /// Set by [`Store::close`]: no transaction starts and nothing reopens any more.
    closed: bool,
}

thread_local! {
    /// Set by [`read_err`]/[`write_err`] when redb reports a failure of the file itself on this
    /// thread; taken by [`Store::read`]/[`Store::write`] once their transaction has ended.
    static IO_FAILED: Cell<bool> = const { Cell::new(false) };
}

/// Notes a failure of the file (an I/O error, or one latched by an earlier I/O error), after
/// which the database must be reopened.
fn note(e: &redb::Error) {
    if matches!(
        e,
        redb::Error::Io(_) | redb::Error::PreviousIo | redb::Error::DatabaseClosed
    ) {
        IO_FAILED.set(true);
    }
}

fn read_err(e: impl Into<redb::Error>) -> CcError {
    let e = e.into();
    note(&e);
    CcError::storage(code::DB_SELECT, &e)
}

fn write_err(e: impl Into<redb::Error>) -> CcError {
    let e = e.into();
    note(&e);
    CcError::storage(code::DB_INSERT, &e)
}

/// A stored value that does not decode (another schema version, or damage).
fn codec_err(e: codec::CodecError) -> CcError {
    CcError::storage(code::DB_SELECT, &e)
}

/// Opens an existing or new database file read-write. redb repairs a file that was not closed
/// cleanly (a crash) during this call; that is logged, as it takes time on a large file.
fn open_db(path: &Path, cache_bytes: usize) -> Result<Database, OpenError> {
    let p = path.to_path_buf();
    let announced = Arc::new(AtomicBool::new(false));
    let shown = path.display().to_string();
    Database::builder()
        .set_cache_size(cache_bytes)
        .set_repair_callback(move |_| {
            if !announced.swap(true, Ordering::Relaxed) {
                crate::log!("cmdb-lite: {shown} was not closed cleanly; redb is repairing it");
            }
        })
        .create(path)
        .map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => OpenError::InUse(p),
            other => OpenError::Other(p, other.to_string()),
        })
}

/// One group-commit batch (`group.rs`), on the writer thread: every job in order on one write
/// transaction, each failing one rolled back from its undo log, then one durable commit (or an
/// abort when nothing is left to write). Returns whether the batch committed and whether the
/// file itself failed.
fn run_batch(db: &Database, jobs: &mut [&mut dyn group::Job]) -> (bool, bool) {
    IO_FAILED.set(false);
    let committed = (|| {
        let mut txn = db.begin_write().map_err(write_err).ok()?;
        txn.set_durability(Durability::Immediate)
            .map_err(write_err)
            .ok()?;
        let mut tx = WriteTx {
            txn,
            undo: None,
            events: changelog::TxLog::new(true),
        };
        let mut dirty = false;
        let mut broken = false;
        for job in jobs.iter_mut() {
            if job.run(&mut tx) {
                dirty = true;
            } else if tx.roll_back().is_err() {
                broken = true;
            }
        }
        // A failure of the file itself leaves the transaction unusable.
        if broken || IO_FAILED.get() {
            let _ = tx.txn.abort();
            return None;
        }
        if dirty {
            // Retention, outside every request's undo log.
            tx.undo = None;
            let mask = tx.events.tx_mask;
            tx.trim_logs(mask).ok()?;
            tx.txn.commit().map_err(write_err).ok()
        } else {
            tx.txn.abort().map_err(write_err).ok()
        }
    })()
    .is_some();
    (committed, IO_FAILED.take())
}

impl Store {
    fn with(db: Database, file: Option<(PathBuf, usize)>) -> Store {
        Store {
            slot: RwLock::new(Slot {
                db: Some(db),
                generation: 0,
                closed: false,
            }),
            file,
            degraded: AtomicBool::new(false),
            batches: Batches::new(run_batch),
            bell: changelog::Bell::default(),
        }
    }

    /// Opens (creating if absent, with its folder) the database file at `path`.
    pub fn open(path: &Path, cache_bytes: usize) -> Result<Store, OpenError> {
        let p = path.to_path_buf();
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| OpenError::Other(p.clone(), e.to_string()))?;
        }
        // A non-empty file must at least carry redb's magic number: refuse early, untouched.
        if let Ok(meta) = std::fs::metadata(path)
            && meta.len() > 0
        {
            let mut head = [0u8; 9];
            let ok = std::fs::File::open(path)
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
                .is_ok();
            if !ok || &head != b"redb\x1A\x0A\xA9\x0D\x0A" {
                return Err(OpenError::NotOurs(p, "no redb header".into()));
            }
        }
        // Look before opening read-write: a read-write open rewrites redb's header, and a file
        // that is not ours must be left as it was. A store that needs repair after a crash is
        // refused by the read-only open and checked again after the repairing open below.
        if std::fs::metadata(path).is_ok_and(|m| m.len() > 0) {
            match Database::builder().open_read_only(path) {
                Ok(ro) => {
                    if let Some(Err(e)) = verdict(&ro, path)? {
                        return Err(e);
                    }
                }
                Err(redb::DatabaseError::DatabaseAlreadyOpen) => return Err(OpenError::InUse(p)),
                Err(_) => {}
            }
        }
        let db = open_db(path, cache_bytes)?;
        let store = Store::with(db, Some((p.clone(), cache_bytes)));
        store.init(&p)?;
        Ok(store)
    }

    /// A store in memory: nothing touches the disk.
    pub fn memory() -> Result<Store, OpenError> {
        let p = PathBuf::from(":memory:");
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(|e| OpenError::Other(p.clone(), e.to_string()))?;
        let store = Store::with(db, None);
        store.init(&p)?;
        Ok(store)
    }

    /// Checks the meta table of an existing store, or lays out a new one.
    fn init(&self, p: &Path) -> Result<(), OpenError> {
        let other = |e: &dyn fmt::Display| OpenError::Other(p.to_path_buf(), e.to_string());
        let slot = self.slot.read().unwrap_or_else(PoisonError::into_inner);
        let db = slot.db.as_ref().expect("a store is created open");
        if let Some(verdict) = verdict(db, p)? {
            return verdict;
        }
        let txn = db.begin_write().map_err(|e| other(&e))?;
        {
            let mut meta = txn.open_table(META).map_err(|e| other(&e))?;
            meta.insert("magic", MAGIC).map_err(|e| other(&e))?;
            meta.insert("schema_version", [codec::SCHEMA_VERSION].as_slice())
                .map_err(|e| other(&e))?;
        }
        macro_rules! create {
            ($($t:expr),*) => { $( txn.open_table($t).map_err(|e| other(&e))?; )* };
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
        create!(PROC_BY_SI, SI_BY_MODULE, SI_BY_HOST, ST_BY_BIZ, PT_BY_ST);
        for (_, def) in changelog::LOGS {
            txn.open_table(*def).map_err(|e| other(&e))?;
        }
        create!(
            UNIQ_PROC_NAME,
            UNIQ_PROC_FUNC,
            UNIQ_SI_TEMPLATE,
            UNIQ_ST_NAME
        );
        txn.commit().map_err(|e| other(&e))
    }

    /// Runs `f` on a consistent snapshot. A read that meets a failure of the file (typically
    /// a write failing beside it, which latches the file for every transaction) is run again
    /// on the reopened file, up to `STORE_READ_ATTEMPTS` times in all: reads change nothing,
    /// so running one twice is harmless. Writes are never repeated.
    pub fn read<T>(&self, f: impl Fn(&ReadTx) -> Result<T, CcError>) -> Result<T, CcError> {
        let mut attempt = 1;
        loop {
            IO_FAILED.set(false);
            let (result, generation) = {
                let slot = self.open_slot(code::DB_SELECT)?;
                let db = slot
                    .db
                    .as_ref()
                    .expect("open_slot returns an open database");
                let result = match db.begin_read() {
                    Ok(txn) => f(&ReadTx { txn }),
                    Err(e) => Err(read_err(e)),
                };
                (result, slot.generation)
            };
            if !IO_FAILED.take() {
                return result;
            }
            self.recover(generation);
            if attempt >= STORE_READ_ATTEMPTS {
                return result;
            }
            attempt += 1;
        }
    }

    /// Runs `f` in a write transaction of its own, holding the store alone (no read or write
    /// beside it), committed with `Durability::Immediate` if it returns `Ok`, aborted
    /// otherwise. For bulk work (import, seeding), which a group commit's undo log would only
    /// slow down.
    pub fn write_alone<T>(
        &self,
        f: impl FnOnce(&mut WriteTx) -> Result<T, CcError>,
    ) -> Result<T, CcError> {
        IO_FAILED.set(false);
        let mut slot = self.slot.write().unwrap_or_else(PoisonError::into_inner);
        if slot.closed {
            return Err(CcError::storage(code::DB_INSERT, &"the database is closed"));
        }
        if slot.db.is_none() {
            self.reopen(&mut slot);
        }
        let Some(db) = slot.db.as_ref() else {
            return Err(CcError::storage(
                code::DB_INSERT,
                &"the database could not be reopened",
            ));
        };
        let result = self.write_immediate(db, false, f);
        if IO_FAILED.take() {
            self.reopen(&mut slot);
        }
        result
    }

    /// Runs `f` in one write transaction: committed durably if it returns `Ok`, aborted otherwise.
    ///
    /// This is the one place that decides durability. Normally the transaction is committed
    /// without a sync and then joins a group commit (`group.rs`): `write` returns `Ok` only once
    /// a durable commit (one `fdatasync` for every transaction committed before it) covers it,
    /// so the caller answers only with data on disk. A transaction that fails aborts alone.
    ///
    /// Normally a write shares the slot with the reads (redb runs one write transaction at a
    /// time beside any number of reads). After an I/O failure the store is *degraded*: each
    /// write then holds the slot alone and commits with `Durability::Immediate`, so a write
    /// that fails again latches the file under no read, and reopens it before any read
    /// resumes. The first write that commits ends that.
    pub fn write<T: Send>(
        &self,
        f: impl FnOnce(&mut WriteTx) -> Result<T, CcError> + Send,
    ) -> Result<T, CcError> {
        IO_FAILED.set(false);
        if !self.degraded.load(Ordering::Acquire) {
            let slot = self.open_slot(code::DB_INSERT)?;
            // Checked again under the slot: `reopen` sets it holding the slot alone.
            if !self.degraded.load(Ordering::Acquire) {
                let db = slot
                    .db
                    .as_ref()
                    .expect("open_slot returns an open database");
                let result = self.write_grouped(db, f);
                let generation = slot.generation;
                drop(slot);
                if IO_FAILED.take() {
                    self.recover(generation);
                }
                return result;
            }
        }
        let mut slot = self.slot.write().unwrap_or_else(PoisonError::into_inner);
        if slot.closed {
            return Err(CcError::storage(code::DB_INSERT, &"the database is closed"));
        }
        if slot.db.is_none() {
            self.reopen(&mut slot);
        }
        let Some(db) = slot.db.as_ref() else {
            return Err(CcError::storage(
                code::DB_INSERT,
                &"the database could not be reopened",
            ));
        };
        let result = self.write_immediate(db, true, f);
        if IO_FAILED.take() {
            self.reopen(&mut slot);
        } else if result.is_ok() {
            self.degraded.store(false, Ordering::Release);
            crate::log!("cmdb-lite: writes succeed again");
        }
        result
    }

    /// Runs `f` as one job of a group commit (`group.rs`): on a batch's transaction, rolled
    /// back alone if it fails, and answered once its batch is on disk.
    fn write_grouped<T: Send>(
        &self,
        db: &Database,
        f: impl FnOnce(&mut WriteTx) -> Result<T, CcError> + Send,
    ) -> Result<T, CcError> {
        struct One<F, T> {
            f: Option<F>,
            outcome: Option<std::thread::Result<Result<T, CcError>>>,
            /// Resources this request wrote events of.
            mask: u32,
        }
        impl<F, T> group::Job for One<F, T>
        where
            F: FnOnce(&mut WriteTx) -> Result<T, CcError> + Send,
            T: Send,
        {
            fn run(&mut self, tx: &mut WriteTx) -> bool {
                let Some(f) = self.f.take() else {
                    return false;
                };
                tx.undo = Some(Vec::new());
                tx.events.job_mask = 0;
                // Caught here, so a panicking job cannot take the leader (or its batch) down;
                // raised again on the job's own thread.
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(tx)));
                let kept = matches!(outcome, Ok(Ok(_)));
                if kept {
                    self.mask = tx.events.job_mask;
                    tx.events.tx_mask |= self.mask;
                }
                self.outcome = Some(outcome);
                kept
            }
        }
        let mut job = One {
            f: Some(f),
            outcome: None,
            mask: 0,
        };
        let done = self.batches.run(db, &mut job);
        if done.io_failed {
            // The file failed under this request's batch: have the store reopened.
            IO_FAILED.set(true);
        }
        let stage = done.stage;
        let outcome = job.outcome.take().unwrap_or_else(|| {
            Ok(Err(CcError::storage(
                code::DB_INSERT,
                &"the write did not run",
            )))
        });
        match outcome {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(Err(e)) => Err(e),
            Ok(Ok(_)) if stage != group::Stage::Committed => Err(CcError::storage(
                code::DB_INSERT,
                &"the group commit did not reach the disk",
            )),
            Ok(Ok(v)) => {
                self.bell.ring(job.mask);
                Ok(v)
            }
        }
    }

    /// One write transaction committed with `Durability::Immediate` (the store is degraded and
    /// held alone: no group to join).
    fn write_immediate<T>(
        &self,
        db: &Database,
        events: bool,
        f: impl FnOnce(&mut WriteTx) -> Result<T, CcError>,
    ) -> Result<T, CcError> {
        let mut txn = db.begin_write().map_err(write_err)?;
        txn.set_durability(Durability::Immediate)
            .map_err(write_err)?;
        let mut tx = WriteTx {
            txn,
            undo: None,
            events: changelog::TxLog::new(events),
        };
        match f(&mut tx) {
            Ok(v) => {
                let mask = tx.events.job_mask;
                if let Err(e) = tx.trim_logs(mask) {
                    return Err(Self::abort(tx, e));
                }
                tx.txn.commit().map_err(write_err)?;
                self.bell.ring(mask);
                Ok(v)
            }
            Err(e) => Err(Self::abort(tx, e)),
        }
    }

    /// Aborts a transaction whose closure failed; the closure's error is the answer.
    fn abort(tx: WriteTx, e: CcError) -> CcError {
        // A failing abort is only noted for the reopen, and logged unless it merely repeats a
        // failure already logged.
        if let Err(abort) = tx.txn.abort() {
            let abort: redb::Error = abort.into();
            note(&abort);
            if !matches!(abort, redb::Error::PreviousIo) {
                crate::log!("cmdb-lite: storage error: {abort}");
            }
        }
        e
    }

    /// The slot, holding an open database: reopens it first if an earlier reopen failed.
    fn open_slot(&self, code: i64) -> Result<RwLockReadGuard<'_, Slot>, CcError> {
        let slot = self.slot.read().unwrap_or_else(PoisonError::into_inner);
        if slot.db.is_some() {
            return Ok(slot);
        }
        if slot.closed {
            return Err(CcError::storage(code, &"the database is closed"));
        }
        let generation = slot.generation;
        drop(slot);
        self.recover(generation);
        let slot = self.slot.read().unwrap_or_else(PoisonError::into_inner);
        if slot.db.is_some() {
            Ok(slot)
        } else {
            Err(CcError::storage(
                code,
                &"the database could not be reopened",
            ))
        }
    }

    /// Reopens the file after a transaction sharing the slot met an I/O failure.
    ///
    /// Takes the slot alone, so it waits for every transaction in progress (each holds the slot
    /// shared) and none starts until the file is open again. `seen` is the generation the
    /// failing transaction ran on: when several threads meet the same failure, the first
    /// reopens and the others find a newer generation and return.
    fn recover(&self, seen: u64) {
        let mut slot = self.slot.write().unwrap_or_else(PoisonError::into_inner);
        if slot.generation == seen {
            self.reopen(&mut slot);
        }
    }

    /// Closes the latched database and opens the file again, with the slot held alone; the
    /// store is degraded from then on until a write commits (see [`Store::write`]). Closing a
    /// latched database writes nothing; opening it again lets redb recover the file to its last
    /// commit, as after a crash. If that open fails too (the disk still refuses the repair's
    /// writes), the slot stays empty and every later transaction tries again before it runs,
    /// answering a storage error until one succeeds. A store in memory has no file to reopen
    /// and cannot fail this way.
    fn reopen(&self, slot: &mut Slot) {
        let Some((path, cache_bytes)) = &self.file else {
            return;
        };
        if slot.closed {
            return;
        }
        slot.generation += 1;
        self.degraded.store(true, Ordering::Release);
        // Closing a latched database fails with the latched error by design; nothing to report.
        if let Some(old) = slot.db.take() {
            let _ = old.close();
        }
        match open_db(path, *cache_bytes) {
            Ok(db) => {
                crate::log!(
                    "cmdb-lite: reopened {} after an I/O failure",
                    path.display()
                );
                slot.db = Some(db);
            }
            Err(e) => crate::log!("cmdb-lite: {e}; trying again on the next request"),
        }
    }

    /// The bell that wakes the watches waiting for events (`changelog::Bell`).
    pub fn bell(&self) -> &changelog::Bell {
        &self.bell
    }

    /// Closes the database once the transactions in progress have ended (graceful shutdown).
    /// redb then records its allocator state, so the next open needs no repair. Later
    /// transactions are refused with a storage error.
    pub fn close(&self) -> Result<(), String> {
        let mut slot = self.slot.write().unwrap_or_else(PoisonError::into_inner);
        slot.closed = true;
        match slot.db.take() {
            Some(db) => db.close().map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }
}

/// What an existing database says about itself: `None` if it has no table yet (a new file),
/// otherwise whether it is a cmdb-lite store of this schema version.
fn verdict(
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
    } else if version != codec::SCHEMA_VERSION {
        Err(OpenError::UnknownSchema(p.to_path_buf(), version))
    } else {
        Ok(())
    }))
}

/// A read snapshot.
pub struct ReadTx {
    txn: redb::ReadTransaction,
}

/// A write transaction.
pub struct WriteTx {
    txn: redb::WriteTransaction,
    /// What every write of this request replaced, newest last, when the request shares its
    /// transaction with others (group commit): a request that fails is rolled back from it
    /// alone. `None` for a transaction of its own, which an abort rolls back.
    undo: Option<Vec<Undo>>,
    /// The change log's state in this transaction (`changelog.rs`).
    events: changelog::TxLog,
}

/// One write to take back: the table, the key and what the key held before (`None`: nothing).
enum Undo {
    Rec(
        redb::TableDefinition<'static, i64, &'static [u8]>,
        i64,
        Option<Vec<u8>>,
    ),
    Pair(
        redb::TableDefinition<'static, (i64, i64), ()>,
        i64,
        i64,
        bool,
    ),
    Seq(&'static str, Option<i64>),
    Setting(String, Option<String>),
    StName(i64, String, Option<i64>),
    SiTemplate((i64, i64, i64), Option<i64>),
    ProcName(i64, String, Option<i64>),
    ProcFunc(i64, String, String, Option<i64>),
    /// An appended event (`changelog.rs`): removed.
    Event(changelog::LogTable, u64),
}

/// Restores `key` of `table` to `old`.
macro_rules! restore {
    ($txn:expr, $def:expr, $key:expr, $old:expr) => {{
        let mut t = $txn.open_table($def)?;
        match $old {
            Some(v) => {
                t.insert($key, v)?;
            }
            None => {
                t.remove($key)?;
            }
        }
    }};
}

impl Undo {
    fn apply(self, txn: &redb::WriteTransaction) -> Result<(), redb::Error> {
        match self {
            Undo::Rec(def, id, old) => restore!(txn, def, id, old.as_deref()),
            Undo::Pair(def, a, b, was) => restore!(txn, def, (a, b), was.then_some(())),
            Undo::Seq(name, old) => restore!(txn, SEQUENCES, name, old),
            Undo::Setting(key, old) => restore!(txn, SETTINGS, key.as_str(), old.as_deref()),
            Undo::StName(biz, name, old) => restore!(txn, UNIQ_ST_NAME, (biz, name.as_str()), old),
            Undo::SiTemplate(key, old) => restore!(txn, UNIQ_SI_TEMPLATE, key, old),
            Undo::ProcName(si, name, old) => {
                restore!(txn, UNIQ_PROC_NAME, (si, name.as_str()), old)
            }
            Undo::ProcFunc(si, func, regex, old) => {
                restore!(
                    txn,
                    UNIQ_PROC_FUNC,
                    (si, func.as_str(), regex.as_str()),
                    old
                )
            }
            Undo::Event(def, key) => {
                txn.open_table(def)?.remove(key)?;
            }
        }
        Ok(())
    }
}

/// A host's membership of a module as a host_relation event's detail (bk-cmdb's
/// `cc_ModuleHostConfig` document).
#[derive(Serialize)]
struct HostRelation<'a> {
    bk_biz_id: i64,
    bk_host_id: i64,
    bk_module_id: i64,
    bk_set_id: i64,
    bk_supplier_account: &'a str,
}

/// A uniqueness key of a process (spec 2.6): the text bk-cmdb reports when it is hit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcKey {
    Name {
        si: i64,
        name: String,
    },
    Func {
        si: i64,
        func: String,
        regex: String,
    },
}

/// The two uniqueness keys of a process map, borrowed from it (see [`ProcKey::of`]):
/// (service instance, name) and (service instance, func, regex), each if it applies.
type KeyParts<'a> = (Option<(i64, &'a str)>, Option<(i64, &'a str, &'a str)>);

fn key_parts(map: &Map<String, Value>) -> KeyParts<'_> {
    let Some(si) = map.get("service_instance_id").and_then(Value::as_i64) else {
        return (None, None);
    };
    let s = |k: &str| map.get(k).and_then(Value::as_str);
    let func = match (s("bk_func_name"), s("bk_start_param_regex")) {
        (Some(func), Some(regex)) => Some((si, func, regex)),
        _ => None,
    };
    (s("bk_process_name").map(|name| (si, name)), func)
}

impl ProcKey {
    /// The keys a process map occupies: each index applies only when its fields are a number
    /// and strings, as bk-cmdb's partial unique indexes do. Name first, as MongoDB checks them.
    pub fn of(map: &Map<String, Value>) -> Vec<ProcKey> {
        let (name, func) = key_parts(map);
        let mut keys = Vec::with_capacity(2);
        if let Some((si, name)) = name {
            keys.push(ProcKey::Name {
                si,
                name: name.to_string(),
            });
        }
        if let Some((si, func, regex)) = func {
            keys.push(ProcKey::Func {
                si,
                func: func.to_string(),
                regex: regex.to_string(),
            });
        }
        keys
    }

    /// MongoDB's `dup key` rendering, the `%s` of 1199014.
    pub fn dup_text(&self) -> String {
        let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
        match self {
            ProcKey::Name { si, name } => {
                format!(" service_instance_id: {si}, bk_process_name: {} ", q(name))
            }
            ProcKey::Func { si, func, regex } => format!(
                " service_instance_id: {si}, bk_func_name: {}, bk_start_param_regex: {} ",
                q(func),
                q(regex)
            ),
        }
    }
}

fn decode_rec<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CcError> {
    codec::decode(bytes).map_err(codec_err)
}

/// Reads shared by both transaction kinds.
macro_rules! reads {
    ($tx:ty) => {
        impl $tx {
            fn get_rec<T: DeserializeOwned>(
                &self,
                def: redb::TableDefinition<i64, &[u8]>,
                id: i64,
            ) -> Result<Option<T>, CcError> {
                let t = self.txn.open_table(def).map_err(read_err)?;
                match t.get(id).map_err(read_err)? {
                    Some(v) => Ok(Some(decode_rec(v.value())?)),
                    None => Ok(None),
                }
            }

            /// Every record of a table, in id order, given to `f` until it returns `false`.
            fn scan_rec<T: DeserializeOwned>(
                &self,
                def: redb::TableDefinition<i64, &[u8]>,
                mut f: impl FnMut(i64, T) -> Result<bool, CcError>,
            ) -> Result<(), CcError> {
                let t = self.txn.open_table(def).map_err(read_err)?;
                for item in t.iter().map_err(read_err)? {
                    let (k, v) = item.map_err(read_err)?;
                    if !f(k.value(), decode_rec(v.value())?)? {
                        break;
                    }
                }
                Ok(())
            }

            /// Second halves of the (a, b) keys of an index whose first half is `a`.
            fn index_pairs(
                &self,
                def: redb::TableDefinition<(i64, i64), ()>,
                a: i64,
            ) -> Result<Vec<i64>, CcError> {
                let t = self.txn.open_table(def).map_err(read_err)?;
                let mut out = Vec::new();
                for item in t.range((a, i64::MIN)..=(a, i64::MAX)).map_err(read_err)? {
                    out.push(item.map_err(read_err)?.0.value().1);
                }
                Ok(out)
            }

            pub fn business(&self, id: i64) -> Result<Option<Business>, CcError> {
                self.get_rec(BUSINESSES, id)
            }
            pub fn host(&self, id: i64) -> Result<Option<Host>, CcError> {
                self.get_rec(HOSTS, id)
            }
            pub fn module(&self, id: i64) -> Result<Option<Module>, CcError> {
                self.get_rec(MODULES, id)
            }
            pub fn service_category(&self, id: i64) -> Result<Option<ServiceCategory>, CcError> {
                self.get_rec(SERVICE_CATEGORIES, id)
            }
            pub fn service_template(&self, id: i64) -> Result<Option<ServiceTemplate>, CcError> {
                self.get_rec(SERVICE_TEMPLATES, id)
            }
            pub fn process_template(&self, id: i64) -> Result<Option<ProcessTemplate>, CcError> {
                self.get_rec(PROCESS_TEMPLATES, id)
            }
            pub fn service_instance(&self, id: i64) -> Result<Option<ServiceInstance>, CcError> {
                self.get_rec(SERVICE_INSTANCES, id)
            }
            pub fn relation(&self, pid: i64) -> Result<Option<Relation>, CcError> {
                self.get_rec(RELATIONS, pid)
            }
            /// The stored process map.
            pub fn process(&self, pid: i64) -> Result<Option<Map<String, Value>>, CcError> {
                let t = self.txn.open_table(PROCESSES).map_err(read_err)?;
                match t.get(pid).map_err(read_err)? {
                    Some(v) => Ok(Some(codec::decode_map(v.value()).map_err(codec_err)?)),
                    None => Ok(None),
                }
            }

            /// Appends the JSON text of process `pid`'s stored map to `out` (what serialising
            /// [`Self::process`] gives, written straight from the stored bytes); `false` if
            /// there is no such process.
            pub fn write_process_json(&self, pid: i64, out: &mut Vec<u8>) -> Result<bool, CcError> {
                let t = self.txn.open_table(PROCESSES).map_err(read_err)?;
                match t.get(pid).map_err(read_err)? {
                    Some(v) => {
                        codec::write_map_json(v.value(), out)
                            .map_err(|e| CcError::storage(code::DB_SELECT, &e))?;
                        Ok(true)
                    }
                    None => Ok(false),
                }
            }

            /// True if process `pid` exists (its record is not decoded).
            pub fn has_process(&self, pid: i64) -> Result<bool, CcError> {
                let t = self.txn.open_table(PROCESSES).map_err(read_err)?;
                Ok(t.get(pid).map_err(read_err)?.is_some())
            }

            /// Process ids of a service instance, ascending (= creation order).
            pub fn process_ids_of(&self, si: i64) -> Result<Vec<i64>, CcError> {
                self.index_pairs(PROC_BY_SI, si)
            }
            pub fn service_instance_ids_of_module(&self, module: i64) -> Result<Vec<i64>, CcError> {
                self.index_pairs(SI_BY_MODULE, module)
            }
            pub fn service_instance_ids_of_host(&self, host: i64) -> Result<Vec<i64>, CcError> {
                self.index_pairs(SI_BY_HOST, host)
            }
            pub fn service_template_ids_of_biz(&self, biz: i64) -> Result<Vec<i64>, CcError> {
                self.index_pairs(ST_BY_BIZ, biz)
            }
            pub fn process_template_ids_of(&self, st: i64) -> Result<Vec<i64>, CcError> {
                self.index_pairs(PT_BY_ST, st)
            }
            /// The service template named `name` in `biz`.
            pub fn service_template_named(
                &self,
                biz: i64,
                name: &str,
            ) -> Result<Option<i64>, CcError> {
                let t = self.txn.open_table(UNIQ_ST_NAME).map_err(read_err)?;
                Ok(t.get((biz, name)).map_err(read_err)?.map(|v| v.value()))
            }
            /// The template instance of (module, host, template), if any.
            pub fn template_instance(
                &self,
                module: i64,
                host: i64,
                st: i64,
            ) -> Result<Option<i64>, CcError> {
                let t = self.txn.open_table(UNIQ_SI_TEMPLATE).map_err(read_err)?;
                Ok(t.get((module, host, st))
                    .map_err(read_err)?
                    .map(|v| v.value()))
            }
            /// The process holding a uniqueness key, if any.
            pub fn process_with_key(&self, key: &ProcKey) -> Result<Option<i64>, CcError> {
                match key {
                    ProcKey::Name { si, name } => {
                        let t = self.txn.open_table(UNIQ_PROC_NAME).map_err(read_err)?;
                        Ok(t.get((*si, name.as_str()))
                            .map_err(read_err)?
                            .map(|v| v.value()))
                    }
                    ProcKey::Func { si, func, regex } => {
                        let t = self.txn.open_table(UNIQ_PROC_FUNC).map_err(read_err)?;
                        Ok(t.get((*si, func.as_str(), regex.as_str()))
                            .map_err(read_err)?
                            .map(|v| v.value()))
                    }
                }
            }
            /// The first key of `map` held by a process other than `pid`.
            pub fn process_key_conflict(
                &self,
                map: &Map<String, Value>,
                pid: i64,
            ) -> Result<Option<ProcKey>, CcError> {
                let (name, func) = key_parts(map);
                if let Some((si, name)) = name {
                    let t = self.txn.open_table(UNIQ_PROC_NAME).map_err(read_err)?;
                    if t.get((si, name))
                        .map_err(read_err)?
                        .is_some_and(|owner| owner.value() != pid)
                    {
                        let name = name.to_string();
                        return Ok(Some(ProcKey::Name { si, name }));
                    }
                }
                if let Some((si, func, regex)) = func {
                    let t = self.txn.open_table(UNIQ_PROC_FUNC).map_err(read_err)?;
                    if t.get((si, func, regex))
                        .map_err(read_err)?
                        .is_some_and(|owner| owner.value() != pid)
                    {
                        let (func, regex) = (func.to_string(), regex.to_string());
                        return Ok(Some(ProcKey::Func { si, func, regex }));
                    }
                }
                Ok(None)
            }

            /// The last id issued for `kind` (0 if none).
            pub fn sequence(&self, kind: Kind) -> Result<i64, CcError> {
                let t = self.txn.open_table(SEQUENCES).map_err(read_err)?;
                Ok(t.get(kind.name())
                    .map_err(read_err)?
                    .map_or(0, |v| v.value()))
            }
            /// A store-wide setting.
            pub fn setting(&self, key: &str) -> Result<Option<String>, CcError> {
                let t = self.txn.open_table(SETTINGS).map_err(read_err)?;
                Ok(t.get(key).map_err(read_err)?.map(|v| v.value().to_string()))
            }
            /// True if the store holds no business (a fresh store: the seed is loaded into it).
            pub fn is_empty(&self) -> Result<bool, CcError> {
                let t = self.txn.open_table(BUSINESSES).map_err(read_err)?;
                t.is_empty().map_err(read_err)
            }

            pub fn each_business(
                &self,
                f: impl FnMut(i64, Business) -> Result<bool, CcError>,
            ) -> Result<(), CcError> {
                self.scan_rec(BUSINESSES, f)
            }
            pub fn each_host(
                &self,
                f: impl FnMut(i64, Host) -> Result<bool, CcError>,
            ) -> Result<(), CcError> {
                self.scan_rec(HOSTS, f)
            }
            pub fn each_module(
                &self,
                f: impl FnMut(i64, Module) -> Result<bool, CcError>,
            ) -> Result<(), CcError> {
                self.scan_rec(MODULES, f)
            }
            pub fn each_service_category(
                &self,
                f: impl FnMut(i64, ServiceCategory) -> Result<bool, CcError>,
            ) -> Result<(), CcError> {
                self.scan_rec(SERVICE_CATEGORIES, f)
            }
            pub fn each_service_template(
                &self,
                f: impl FnMut(i64, ServiceTemplate) -> Result<bool, CcError>,
            ) -> Result<(), CcError> {
                self.scan_rec(SERVICE_TEMPLATES, f)
            }
            pub fn each_process_template(
                &self,
                f: impl FnMut(i64, ProcessTemplate) -> Result<bool, CcError>,
            ) -> Result<(), CcError> {
                self.scan_rec(PROCESS_TEMPLATES, f)
            }
            pub fn each_service_instance(
                &self,
                f: impl FnMut(i64, ServiceInstance) -> Result<bool, CcError>,
            ) -> Result<(), CcError> {
                self.scan_rec(SERVICE_INSTANCES, f)
            }
            pub fn each_relation(
                &self,
                f: impl FnMut(i64, Relation) -> Result<bool, CcError>,
            ) -> Result<(), CcError> {
                self.scan_rec(RELATIONS, f)
            }
            /// Every process map, in id order, until `f` returns `false`.
            pub fn each_process(
                &self,
                mut f: impl FnMut(i64, Map<String, Value>) -> Result<bool, CcError>,
            ) -> Result<(), CcError> {
                let t = self.txn.open_table(PROCESSES).map_err(read_err)?;
                for item in t.iter().map_err(read_err)? {
                    let (k, v) = item.map_err(read_err)?;
                    let map = codec::decode_map(v.value()).map_err(codec_err)?;
                    if !f(k.value(), map)? {
                        break;
                    }
                }
                Ok(())
            }
        }
    };
}

reads!(ReadTx);
reads!(WriteTx);

impl ReadTx {
    /// Visits every entry of every index, for `check`.
    pub(crate) fn index_entries(&self) -> Result<check::IndexSnapshot, CcError> {
        let mut snap = check::IndexSnapshot::default();
        let pairs =
            |def: redb::TableDefinition<(i64, i64), ()>| -> Result<Vec<(i64, i64)>, CcError> {
                let t = self.txn.open_table(def).map_err(read_err)?;
                let mut out = Vec::new();
                for item in t.iter().map_err(read_err)? {
                    out.push(item.map_err(read_err)?.0.value());
                }
                Ok(out)
            };
        snap.proc_by_si = pairs(PROC_BY_SI)?;
        snap.si_by_module = pairs(SI_BY_MODULE)?;
        snap.si_by_host = pairs(SI_BY_HOST)?;
        snap.st_by_biz = pairs(ST_BY_BIZ)?;
        snap.pt_by_st = pairs(PT_BY_ST)?;
        {
            let t = self.txn.open_table(UNIQ_PROC_NAME).map_err(read_err)?;
            for item in t.iter().map_err(read_err)? {
                let (k, v) = item.map_err(read_err)?;
                let (si, name) = k.value();
                snap.uniq_proc_name.push((si, name.to_string(), v.value()));
            }
        }
        {
            let t = self.txn.open_table(UNIQ_PROC_FUNC).map_err(read_err)?;
            for item in t.iter().map_err(read_err)? {
                let (k, v) = item.map_err(read_err)?;
                let (si, func, regex) = k.value();
                snap.uniq_proc_func
                    .push((si, func.to_string(), regex.to_string(), v.value()));
            }
        }
        {
            let t = self.txn.open_table(UNIQ_SI_TEMPLATE).map_err(read_err)?;
            for item in t.iter().map_err(read_err)? {
                let (k, v) = item.map_err(read_err)?;
                snap.uniq_si_template.push((k.value(), v.value()));
            }
        }
        {
            let t = self.txn.open_table(UNIQ_ST_NAME).map_err(read_err)?;
            for item in t.iter().map_err(read_err)? {
                let (k, v) = item.map_err(read_err)?;
                let (biz, name) = k.value();
                snap.uniq_st_name.push((biz, name.to_string(), v.value()));
            }
        }
        Ok(snap)
    }
}

impl WriteTx {
    /// Notes a write to take back if this request fails (group commit only).
    fn log(&mut self, undo: impl FnOnce() -> Undo) {
        if let Some(log) = &mut self.undo {
            log.push(undo());
        }
    }

    /// Takes back every write of this request, newest first.
    fn roll_back(&mut self) -> Result<(), CcError> {
        let Some(log) = self.undo.as_mut() else {
            return Ok(());
        };
        while let Some(undo) = log.pop() {
            undo.apply(&self.txn).map_err(write_err)?;
        }
        Ok(())
    }

    fn put_rec<T: Serialize>(
        &mut self,
        def: redb::TableDefinition<'static, i64, &'static [u8]>,
        id: i64,
        rec: &T,
    ) -> Result<(), CcError> {
        self.put_bytes(def, id, &codec::encode(rec)).map(drop)
    }

    /// Inserts a record's bytes; returns the bytes it replaced, if any.
    fn put_bytes(
        &mut self,
        def: redb::TableDefinition<'static, i64, &'static [u8]>,
        id: i64,
        bytes: &[u8],
    ) -> Result<Option<Vec<u8>>, CcError> {
        let old = {
            let mut t = self.txn.open_table(def).map_err(write_err)?;
            let old = t.insert(id, bytes).map_err(write_err)?;
            old.map(|v| v.value().to_vec())
        };
        // Copied only for a request in a shared batch (the closure runs only then).
        self.log(|| Undo::Rec(def, id, old.clone()));
        Ok(old)
    }

    fn del_rec(
        &mut self,
        def: redb::TableDefinition<'static, i64, &'static [u8]>,
        id: i64,
    ) -> Result<(), CcError> {
        let old = {
            let mut t = self.txn.open_table(def).map_err(write_err)?;
            let old = t.remove(id).map_err(write_err)?;
            old.map(|v| v.value().to_vec())
        };
        self.log(|| Undo::Rec(def, id, old));
        Ok(())
    }

    fn pair(
        &mut self,
        def: redb::TableDefinition<'static, (i64, i64), ()>,
        a: i64,
        b: i64,
        present: bool,
    ) -> Result<(), CcError> {
        let was = {
            let mut t = self.txn.open_table(def).map_err(write_err)?;
            if present {
                t.insert((a, b), ()).map_err(write_err)?.is_some()
            } else {
                t.remove((a, b)).map_err(write_err)?.is_some()
            }
        };
        self.log(|| Undo::Pair(def, a, b, was));
        Ok(())
    }

    /// Issues the next id of `kind`: strictly above every id it issued before.
    pub fn next_id(&mut self, kind: Kind) -> Result<i64, CcError> {
        let mut t = self.txn.open_table(SEQUENCES).map_err(write_err)?;
        let last = t
            .get(kind.name())
            .map_err(write_err)?
            .map_or(0, |v| v.value());
        let next = last
            .checked_add(1)
            .ok_or_else(|| CcError::raw(code::DB_INSERT, "id sequence exhausted"))?;
        let old = t
            .insert(kind.name(), next)
            .map_err(write_err)?
            .map(|v| v.value());
        drop(t);
        self.log(|| Undo::Seq(kind.name(), old));
        Ok(next)
    }

    /// Raises the sequence of `kind` to at least `at_least` (import).
    pub fn raise_sequence(&mut self, kind: Kind, at_least: i64) -> Result<(), CcError> {
        let mut t = self.txn.open_table(SEQUENCES).map_err(write_err)?;
        let last = t
            .get(kind.name())
            .map_err(write_err)?
            .map_or(0, |v| v.value());
        if at_least > last {
            let old = t
                .insert(kind.name(), at_least)
                .map_err(write_err)?
                .map(|v| v.value());
            drop(t);
            self.log(|| Undo::Seq(kind.name(), old));
        }
        Ok(())
    }

    pub fn set_setting(&mut self, key: &str, value: &str) -> Result<(), CcError> {
        let mut t = self.txn.open_table(SETTINGS).map_err(write_err)?;
        let old = t
            .insert(key, value)
            .map_err(write_err)?
            .map(|v| v.value().to_string());
        drop(t);
        self.log(|| Undo::Setting(key.to_string(), old));
        Ok(())
    }

    /// Inserts or replaces `rec` under `id` and writes its event (create, or update when it
    /// replaced a different record; an unchanged record writes none). Returns the replaced
    /// record.
    fn put_watched<T: Serialize + DeserializeOwned + PartialEq>(
        &mut self,
        def: redb::TableDefinition<'static, i64, &'static [u8]>,
        cursor_type: u8,
        id: i64,
        rec: &T,
        hide: &[&str],
    ) -> Result<Option<T>, CcError> {
        let old: Option<T> = match self.put_bytes(def, id, &codec::encode(rec))? {
            Some(v) => Some(decode_rec(&v)?),
            None => None,
        };
        let t = match &old {
            None => EventType::Create,
            Some(o) if o == rec => return Ok(old),
            Some(_) => EventType::Update,
        };
        let detail = changelog::detail_of(cursor_type, t, id, rec, hide);
        self.emit(cursor_type, t, id, &detail)?;
        Ok(old)
    }

    pub fn put_business(&mut self, b: &Business) -> Result<(), CcError> {
        self.put_watched(BUSINESSES, changelog::BIZ, b.bk_biz_id, b, &[])
            .map(drop)
    }
    pub fn put_host(&mut self, h: &Host) -> Result<(), CcError> {
        self.put_watched(HOSTS, changelog::HOST, h.bk_host_id, h, &[])
            .map(drop)
    }
    /// Inserts or replaces a module: a module event, and a host_relation event for each host
    /// that joined (create) or left (delete) it.
    pub fn put_module(&mut self, m: &Module) -> Result<(), CcError> {
        let old = self.put_watched(MODULES, changelog::MODULE, m.bk_module_id, m, &["hosts"])?;
        let before: &[i64] = old.as_ref().map_or(&[], |o| &o.hosts);
        let left: Vec<i64> = before
            .iter()
            .filter(|h| !m.hosts.contains(h))
            .copied()
            .collect();
        let joined: Vec<i64> = m
            .hosts
            .iter()
            .filter(|h| !before.contains(h))
            .copied()
            .collect();
        if left.is_empty() && joined.is_empty() {
            return Ok(());
        }
        let supplier = self.setting("supplier_account")?.unwrap_or_default();
        let moved = [(EventType::Delete, old.as_ref().unwrap_or(m), left)];
        for (t, module, hosts) in moved.into_iter().chain([(EventType::Create, m, joined)]) {
            for host in hosts {
                let rel = HostRelation {
                    bk_biz_id: module.bk_biz_id,
                    bk_host_id: host,
                    bk_module_id: module.bk_module_id,
                    bk_set_id: module.bk_set_id,
                    bk_supplier_account: &supplier,
                };
                let id = (module.bk_module_id << 32) | (host & 0xffff_ffff);
                let detail = changelog::detail_of(changelog::HOST_RELATION, t, id, &rel, &[]);
                self.emit(changelog::HOST_RELATION, t, id, &detail)?;
            }
        }
        Ok(())
    }
    pub fn put_service_category(&mut self, c: &ServiceCategory) -> Result<(), CcError> {
        self.put_rec(SERVICE_CATEGORIES, c.id, c)
    }

    /// Inserts or replaces a service template and its indexes.
    pub fn put_service_template(&mut self, st: &ServiceTemplate) -> Result<(), CcError> {
        if let Some(old) = self.service_template(st.id)? {
            self.unindex_service_template(&old)?;
        }
        self.put_rec(SERVICE_TEMPLATES, st.id, st)?;
        self.pair(ST_BY_BIZ, st.bk_biz_id, st.id, true)?;
        let mut t = self.txn.open_table(UNIQ_ST_NAME).map_err(write_err)?;
        let old = t
            .insert((st.bk_biz_id, st.name.as_str()), st.id)
            .map_err(write_err)?
            .map(|v| v.value());
        drop(t);
        self.log(|| Undo::StName(st.bk_biz_id, st.name.clone(), old));
        Ok(())
    }

    fn unindex_service_template(&mut self, st: &ServiceTemplate) -> Result<(), CcError> {
        self.pair(ST_BY_BIZ, st.bk_biz_id, st.id, false)?;
        let mut t = self.txn.open_table(UNIQ_ST_NAME).map_err(write_err)?;
        let old = t
            .remove((st.bk_biz_id, st.name.as_str()))
            .map_err(write_err)?
            .map(|v| v.value());
        drop(t);
        self.log(|| Undo::StName(st.bk_biz_id, st.name.clone(), old));
        Ok(())
    }

    pub fn delete_service_template(&mut self, id: i64) -> Result<(), CcError> {
        if let Some(old) = self.service_template(id)? {
            self.unindex_service_template(&old)?;
            self.del_rec(SERVICE_TEMPLATES, id)?;
        }
        Ok(())
    }

    /// Inserts or replaces a process template and its index.
    pub fn put_process_template(&mut self, pt: &ProcessTemplate) -> Result<(), CcError> {
        if let Some(old) = self.process_template(pt.id)? {
            self.pair(PT_BY_ST, old.service_template_id, old.id, false)?;
        }
        self.put_rec(PROCESS_TEMPLATES, pt.id, pt)?;
        self.pair(PT_BY_ST, pt.service_template_id, pt.id, true)
    }

    pub fn delete_process_template(&mut self, id: i64) -> Result<(), CcError> {
        if let Some(old) = self.process_template(id)? {
            self.pair(PT_BY_ST, old.service_template_id, old.id, false)?;
            self.del_rec(PROCESS_TEMPLATES, id)?;
        }
        Ok(())
    }

    /// Inserts or replaces a service instance and its indexes.
    pub fn put_service_instance(&mut self, si: &ServiceInstance) -> Result<(), CcError> {
        if let Some(old) = self.service_instance(si.id)? {
            self.unindex_service_instance(&old)?;
        }
        self.put_rec(SERVICE_INSTANCES, si.id, si)?;
        self.pair(SI_BY_MODULE, si.bk_module_id, si.id, true)?;
        self.pair(SI_BY_HOST, si.bk_host_id, si.id, true)?;
        if si.service_template_id != 0 {
            let key = (si.bk_module_id, si.bk_host_id, si.service_template_id);
            let mut t = self.txn.open_table(UNIQ_SI_TEMPLATE).map_err(write_err)?;
            let old = t.insert(key, si.id).map_err(write_err)?.map(|v| v.value());
            drop(t);
            self.log(|| Undo::SiTemplate(key, old));
        }
        Ok(())
    }

    fn unindex_service_instance(&mut self, si: &ServiceInstance) -> Result<(), CcError> {
        self.pair(SI_BY_MODULE, si.bk_module_id, si.id, false)?;
        self.pair(SI_BY_HOST, si.bk_host_id, si.id, false)?;
        if si.service_template_id != 0 {
            let mut t = self.txn.open_table(UNIQ_SI_TEMPLATE).map_err(write_err)?;
            let key = (si.bk_module_id, si.bk_host_id, si.service_template_id);
            if t.get(key).map_err(write_err)?.map(|v| v.value()) == Some(si.id) {
                t.remove(key).map_err(write_err)?;
                drop(t);
                self.log(|| Undo::SiTemplate(key, Some(si.id)));
            }
        }
        Ok(())
    }

    /// Removes a service instance record and its indexes (not its processes).
    pub fn delete_service_instance(&mut self, id: i64) -> Result<(), CcError> {
        if let Some(old) = self.service_instance(id)? {
            self.unindex_service_instance(&old)?;
            self.del_rec(SERVICE_INSTANCES, id)?;
        }
        Ok(())
    }

    /// Removes the uniqueness keys of `map` that are held by `pid`.
    fn unset_proc_keys(&mut self, map: &Map<String, Value>, pid: i64) -> Result<(), CcError> {
        let (name, func) = key_parts(map);
        if let Some((si, name)) = name {
            let mut t = self.txn.open_table(UNIQ_PROC_NAME).map_err(write_err)?;
            let held = t
                .get((si, name))
                .map_err(write_err)?
                .is_some_and(|owner| owner.value() == pid);
            if held {
                t.remove((si, name)).map_err(write_err)?;
                drop(t);
                self.log(|| Undo::ProcName(si, name.to_string(), Some(pid)));
            }
        }
        if let Some((si, func, regex)) = func {
            let mut t = self.txn.open_table(UNIQ_PROC_FUNC).map_err(write_err)?;
            let held = t
                .get((si, func, regex))
                .map_err(write_err)?
                .is_some_and(|owner| owner.value() == pid);
            if held {
                t.remove((si, func, regex)).map_err(write_err)?;
                drop(t);
                self.log(|| Undo::ProcFunc(si, func.to_string(), regex.to_string(), Some(pid)));
            }
        }
        Ok(())
    }

    /// Gives the uniqueness keys of `map` to `pid`; a key held by another process is refused
    /// (the caller's error aborts the transaction, so the overwritten entry is not kept).
    fn set_proc_keys(&mut self, map: &Map<String, Value>, pid: i64) -> Result<(), CcError> {
        let held = || CcError::raw(code::DB_INSERT, "uniqueness key already held");
        let (name, func) = key_parts(map);
        if let Some((si, name)) = name {
            let mut t = self.txn.open_table(UNIQ_PROC_NAME).map_err(write_err)?;
            let old = t
                .insert((si, name), pid)
                .map_err(write_err)?
                .map(|v| v.value());
            drop(t);
            self.log(|| Undo::ProcName(si, name.to_string(), old));
            if old.is_some_and(|owner| owner != pid) {
                return Err(held());
            }
        }
        if let Some((si, func, regex)) = func {
            let mut t = self.txn.open_table(UNIQ_PROC_FUNC).map_err(write_err)?;
            let old = t
                .insert((si, func, regex), pid)
                .map_err(write_err)?
                .map(|v| v.value());
            drop(t);
            self.log(|| Undo::ProcFunc(si, func.to_string(), regex.to_string(), old));
            if old.is_some_and(|owner| owner != pid) {
                return Err(held());
            }
        }
        Ok(())
    }

    /// Inserts or replaces a process and its relation, with every index. The caller has checked
    /// [`WriteTx::process_key_conflict`]; a conflict here is a bug and is refused. A new process
    /// costs one insert per table: the replaced record and relation, if any, come back from
    /// those inserts.
    pub fn put_process(
        &mut self,
        pid: i64,
        map: &Map<String, Value>,
        rel: &Relation,
    ) -> Result<(), CcError> {
        let stored = |e: codec::CodecError| CcError::storage(code::DB_SELECT, &e);
        let old_map = match self.put_bytes(PROCESSES, pid, &codec::encode_map(map))? {
            Some(v) => Some(codec::decode_map(&v).map_err(stored)?),
            None => None,
        };
        if let Some(old) = &old_map {
            self.unset_proc_keys(old, pid)?;
        }
        let old_rel: Option<Relation> = match self.put_bytes(RELATIONS, pid, &codec::encode(rel))? {
            Some(v) => Some(codec::decode(&v).map_err(stored)?),
            None => None,
        };
        if let Some(old) = &old_rel
            && old.service_instance_id != rel.service_instance_id
        {
            self.pair(PROC_BY_SI, old.service_instance_id, pid, false)?;
        }
        self.pair(PROC_BY_SI, rel.service_instance_id, pid, true)?;
        self.set_proc_keys(map, pid)?;
        let events = [
            (
                changelog::PROCESS,
                old_map.as_ref() == Some(map),
                old_map.is_none(),
            ),
            (
                changelog::PROCESS_RELATION,
                old_rel.as_ref() == Some(rel),
                old_rel.is_none(),
            ),
        ];
        for (cursor_type, unchanged, new) in events {
            if unchanged {
                continue;
            }
            let t = if new {
                EventType::Create
            } else {
                EventType::Update
            };
            let detail = if cursor_type == changelog::PROCESS {
                changelog::detail_of(cursor_type, t, pid, map, &[])
            } else {
                changelog::detail_of(cursor_type, t, pid, rel, &[])
            };
            self.emit(cursor_type, t, pid, &detail)?;
        }
        Ok(())
    }

    /// Removes a process, its relation and its index entries.
    pub fn delete_process(&mut self, pid: i64) -> Result<(), CcError> {
        let t = EventType::Delete;
        if let Some(rel) = self.relation(pid)? {
            self.pair(PROC_BY_SI, rel.service_instance_id, pid, false)?;
            self.del_rec(RELATIONS, pid)?;
            let ct = changelog::PROCESS_RELATION;
            self.emit(ct, t, pid, &changelog::detail_of(ct, t, pid, &rel, &[]))?;
        }
        if let Some(old) = self.process(pid)? {
            self.unset_proc_keys(&old, pid)?;
            self.del_rec(PROCESSES, pid)?;
            let ct = changelog::PROCESS;
            self.emit(ct, t, pid, &changelog::detail_of(ct, t, pid, &old, &[]))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn proc_map(si: i64, name: &str) -> Map<String, Value> {
        let v = json!({"service_instance_id": si, "bk_process_name": name, "bk_func_name": name,
                       "bk_start_param_regex": ""});
        v.as_object().cloned().unwrap_or_default()
    }

    fn rel(pid: i64, si: i64) -> Relation {
        Relation {
            bk_biz_id: 1,
            bk_process_id: pid,
            service_instance_id: si,
            process_template_id: 0,
            bk_host_id: 1,
            bk_supplier_account: "0".into(),
        }
    }

    fn owner(tx: &ReadTx, si: i64, name: &str) -> Option<i64> {
        let name = ProcKey::Name {
            si,
            name: name.into(),
        };
        tx.process_with_key(&name).unwrap()
    }

    #[test]
    fn put_process_keeps_every_index_through_insert_replace_and_refusal() {
        let store = Store::memory().unwrap();
        store
            .write(|tx| {
                tx.put_process(1, &proc_map(10, "a"), &rel(1, 10))?;
                tx.put_process(2, &proc_map(10, "b"), &rel(2, 10))
            })
            .unwrap();
        // Process 1 renamed and moved to instance 11: its old keys and index entry go.
        store
            .write(|tx| tx.put_process(1, &proc_map(11, "c"), &rel(1, 11)))
            .unwrap();
        // A new process taking 2's name is refused, and nothing of it stays.
        assert!(
            store
                .write(|tx| tx.put_process(3, &proc_map(10, "b"), &rel(3, 10)))
                .is_err()
        );
        store
            .read(|tx| {
                assert_eq!(tx.process_ids_of(10)?, [2]);
                assert_eq!(tx.process_ids_of(11)?, [1]);
                assert!(!tx.has_process(3)? && tx.relation(3)?.is_none());
                assert_eq!(owner(tx, 10, "a"), None);
                assert_eq!(owner(tx, 10, "b"), Some(2));
                assert_eq!(owner(tx, 11, "c"), Some(1));
                let func = ProcKey::Func {
                    si: 11,
                    func: "c".into(),
                    regex: String::new(),
                };
                assert_eq!(tx.process_with_key(&func)?, Some(1));
                assert_eq!(tx.relation(1)?.map(|r| r.service_instance_id), Some(11));
                Ok(())
            })
            .unwrap();
    }

    /// Eight threads write at once, so their requests share batches; every other request
    /// fails after writing (a process, a sequence bump, index entries, a replaced record) and
    /// must leave nothing behind, while the ones beside it in its batch are kept whole.
    #[test]
    fn a_failing_request_is_rolled_back_alone_in_a_shared_batch() {
        let store = Store::memory().unwrap();
        store
            .write(|tx| tx.put_process(1, &proc_map(10, "seed"), &rel(1, 10)))
            .unwrap();
        std::thread::scope(|s| {
            for t in 0..8i64 {
                let store = &store;
                s.spawn(move || {
                    for i in 0..50i64 {
                        let fail = (t + i) % 2 == 0;
                        let r = store.write(|tx| {
                            let pid = tx.next_id(Kind::Process)? + 1;
                            tx.put_process(
                                pid,
                                &proc_map(20 + t, &format!("p{i}")),
                                &rel(pid, 20 + t),
                            )?;
                            // Rename the seed process too: a replaced record and moved keys.
                            tx.put_process(
                                1,
                                &proc_map(10, &format!("seed-{t}-{i}")),
                                &rel(1, 10),
                            )?;
                            if fail {
                                return Err(CcError::plain(code::NOT_FOUND));
                            }
                            Ok(pid)
                        });
                        assert_eq!(r.is_err(), fail);
                    }
                });
            }
        });
        store
            .read(|tx| {
                let mut kept = 0;
                for t in 0..8i64 {
                    let ids = tx.process_ids_of(20 + t)?;
                    // Exactly the 25 successful requests of each thread, each with its keys.
                    assert_eq!(ids.len(), 25, "instance {}", 20 + t);
                    for pid in ids {
                        let map = tx.process(pid)?.expect("listed process exists");
                        let name = map["bk_process_name"].as_str().unwrap_or("").to_string();
                        let i: i64 = name[1..].parse().unwrap();
                        assert_eq!((t + i) % 2, 1, "a failed request's process {name} stayed");
                        assert_eq!(owner(tx, 20 + t, &name), Some(pid));
                    }
                    kept += 25;
                }
                // Failed requests gave their ids back: one id per kept process.
                assert_eq!(tx.sequence(Kind::Process)?, kept);
                assert_eq!(tx.process_ids_of(10)?, [1]);
                // The seed process carries the name a successful request gave it, and holds
                // that name's key alone.
                let seed = tx.process(1)?.expect("seed process");
                let name = seed["bk_process_name"].as_str().unwrap_or("").to_string();
                let i: i64 = name.rsplit('-').next().unwrap().parse().unwrap();
                let t: i64 = name.split('-').nth(1).unwrap().parse().unwrap();
                assert_eq!((t + i) % 2, 1, "a failed request's rename stayed: {name}");
                assert_eq!(owner(tx, 10, &name), Some(1));
                assert_eq!(owner(tx, 10, "seed"), None);
                Ok(())
            })
            .unwrap();
    }
}
