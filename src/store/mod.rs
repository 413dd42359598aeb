//! The only module that touches redb: opening the file, typed tables, the codec, id sequences,
//! secondary indexes, and read and write transactions.
//!
//! Callers work through [`Store::read`] and [`Store::write`] with closures over [`ReadTx`] and
//! [`WriteTx`]. A write closure that returns `Err` takes back everything it wrote. A write
//! closure that returns `Ok` is on disk before `write` returns (a durable commit covers it: its
//! group's one sync, or its own after an I/O failure), so an answer built from its result
//! describes data that is on disk. Every write keeps the secondary indexes in the same
//! transaction.
//!
//! The files, as redb splits its own: `open.rs` (verdict on an existing file, open, layout of
//! a new one), `read.rs` (`Tx`, the reads of both kinds of transaction), `write.rs` (`WriteTx`),
//! `undo.rs` (the undo log of a request in a shared batch), `keys.rs` (index entries and
//! uniqueness keys), `typed.rs` (the `Record` trait), `layout.rs` (the stored layouts),
//! `group.rs` (group commit on the writer thread), `error.rs` (`StoreError`, which `api` maps
//! to bk-cmdb's codes), and this file: the `Store` itself, its file
//! lifecycle and its reopen after an I/O failure.
//!
//! Durability lives in [`Store::write`] alone. An I/O failure (a full disk, a file-size limit)
//! latches redb's file backend: every later operation answers `PreviousIo` until the database
//! is closed and opened again. The store notices such a failure, lets the transactions in
//! progress end, and reopens the file (see `Store::reopen`); the request that met the failure
//! gets an error, reads go on, and writes work again once the disk does.

#![forbid(unsafe_code)]

pub mod admin;
pub mod changelog;
pub mod check;
pub mod codec;
pub mod compact;
mod error;
pub mod floor;
mod group;
pub mod keys;
mod lasting;
pub mod layout;
mod migrate;
mod open;
pub mod push_map;
pub mod read;
pub mod records;
mod reset;
mod room;
pub mod tables;
pub mod topology;
pub mod typed;
mod undo;
pub mod write;

use crate::limits::{
    MAX_REQUESTS_PER_COMMIT, STORE_READ_ATTEMPTS, WRITE_PROBE_FIRST_MILLIS, WRITE_PROBE_MAX_MILLIS,
};
use group::{Batches, Work};
use redb::{Database, Durability, ReadableDatabase};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard};

pub use admin::ReadOnly;
pub use error::StoreError;
pub use keys::ProcKey;
pub use lasting::Lasting;
pub use open::OpenError;
pub use read::{ReadTx, Tx};
pub use typed::Record;
pub use write::{NewProcess, WriteTx};

/// An open database and, for a file, the room its backend reports (`room.rs`).
pub(crate) struct Db {
    db: Database,
    room: Option<Arc<room::Room>>,
    /// The last change-log stamp a committed transaction on this database issued (0: not
    /// known yet; the first write transaction reads it from the logs). It only grows: a stamp
    /// above every committed one is all `next_stamp` needs, and saves each batch a look at
    /// every log.
    last_stamp: AtomicU64,
}

impl std::ops::Deref for Db {
    type Target = Database;
    fn deref(&self) -> &Database {
        &self.db
    }
}

impl Db {
    fn new(db: Database, room: Option<Arc<room::Room>>) -> Db {
        Db {
            db,
            room,
            last_stamp: AtomicU64::new(0),
        }
    }

    /// A write transaction on this database, knowing the last stamp committed before it.
    fn write_tx(&self, txn: redb::WriteTransaction) -> WriteTx {
        let mut tx = WriteTx::new(txn, None);
        tx.events
            .resume_after(self.last_stamp.load(Ordering::Acquire));
        tx
    }

    /// After a commit of a transaction whose last stamp issued was `last`.
    fn committed(&self, last: Option<u64>) {
        if let Some(last) = last {
            self.last_stamp.fetch_max(last, Ordering::AcqRel);
        }
    }

    /// Whether the write transaction in progress grew the file onto room that is not there: it
    /// must be aborted, not committed (see `room.rs`).
    fn short(&self) -> bool {
        self.room.as_ref().is_some_and(|r| r.short())
    }

    /// Growths of the file refused since it was opened.
    fn refusals(&self) -> u64 {
        self.room.as_ref().map_or(0, |r| r.refusals())
    }

    /// The last refused growth and its cause.
    fn why(&self) -> String {
        self.room.as_ref().map_or_else(String::new, |r| r.why())
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
    /// Set when a batch was aborted because the file could not grow (`room.rs`), cleared by the
    /// next write that commits: until then, one write per probe interval tries.
    full: AtomicBool,
    /// While degraded or full: when the next write may try the file again (one at a time, each failure
    /// doubling the wait), and that wait. The writes before it are refused at once, so that a
    /// full disk costs readers one reopen per probe, not one per write.
    probe: Mutex<(std::time::Instant, std::time::Duration)>,
    /// Counts the reopens: a write that was let through the probe but waited for the store
    /// while another reopen ran is refused, so the readers get the interval.
    reopens: AtomicU64,
    /// Group commit: the batch write requests are joining (see `group.rs`).
    batches: Batches,
    /// Wakes the watches waiting for events (`changelog.rs`).
    bell: changelog::Bell,
}

struct Slot {
    /// `None` after a reopen failed; the next transaction tries again. Shared with the writer
    /// thread while a batch runs on it; only the slot's own reference is left when the slot is
    /// held alone (every request waiting for a batch holds the slot shared).
    db: Option<Arc<Db>>,
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

pub(crate) fn read_err(e: impl Into<redb::Error>) -> StoreError {
    let e = e.into();
    note(&e);
    StoreError::read(&e)
}

pub(crate) fn write_err(e: impl Into<redb::Error>) -> StoreError {
    let e = e.into();
    note(&e);
    StoreError::write(&e)
}

/// A stored value that does not decode (another schema version, or damage).
fn codec_err(e: codec::CodecError) -> StoreError {
    StoreError::read(&e)
}

/// Creates `dir` and its missing parents 0700, whatever the umask (existing ones are left as
/// they are).
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = vec![dir];
    while let Some(parent) = missing.last().and_then(|d| d.parent()) {
        if parent.as_os_str().is_empty() || parent.is_dir() {
            break;
        }
        missing.push(parent);
    }
    for d in missing.into_iter().rev() {
        match std::fs::DirBuilder::new().mode(0o700).create(d) {
            Ok(()) => {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn set_mode(f: &std::fs::File, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    f.set_permissions(std::fs::Permissions::from_mode(mode))
}

/// Closes a database no one else holds; one still shared (which the slot's locking rules out)
/// is dropped instead, and redb closes it with its last reference.
fn close_db(db: Arc<Db>) -> Result<(), String> {
    match Arc::try_unwrap(db) {
        Ok(db) => db.db.close().map_err(|e| e.to_string()),
        Err(shared) => {
            drop(shared);
            Ok(())
        }
    }
}

/// One group-commit batch (`group.rs`), on the writer thread: every job in order on one write
/// transaction, each failing one rolled back from its undo log, then one durable commit (or an
/// abort when nothing is left to write, or when the file could not grow for it: `room.rs`).
/// Returns whether the batch committed and whether the file itself failed.
fn run_batch(db: &Db, jobs: Vec<Work>) -> (bool, bool) {
    debug_assert!(
        !jobs.is_empty() && jobs.len() <= MAX_REQUESTS_PER_COMMIT,
        "a batch holds 1 to MAX_REQUESTS_PER_COMMIT requests"
    );
    IO_FAILED.set(false);
    let committed = (|| {
        let mut txn = db.begin_write().map_err(write_err).ok()?;
        txn.set_durability(Durability::Immediate)
            .map_err(write_err)
            .ok()?;
        let mut tx = db.write_tx(txn);
        let mut dirty = false;
        let mut broken = false;
        for job in jobs {
            tx.undo = Some(Vec::new());
            tx.events.begin_job();
            if job(&mut tx) {
                dirty = true;
            } else if tx.roll_back().is_err() {
                broken = true;
            } else {
                debug_assert!(
                    tx.undo.as_ref().is_some_and(Vec::is_empty),
                    "a rolled-back request leaves nothing in its undo log"
                );
            }
        }
        // Retention of the change log, outside every request's undo log.
        if dirty && !broken && !IO_FAILED.get() {
            tx.undo = None;
            let mask = tx.events.tx_mask;
            if tx.flush_events(mask).is_err() {
                broken = true;
            }
        }
        let last = tx.events.last_issued();
        let txn = tx.into_txn();
        // A failure of the file itself leaves the transaction unusable.
        if broken || IO_FAILED.get() {
            let _ = txn.abort();
            return None;
        }
        if dirty && db.short() {
            // Taken back by the abort, growth included: the file is never latched.
            let _ = txn.abort().map_err(write_err);
            None
        } else if dirty {
            txn.commit().map_err(write_err).ok()?;
            db.committed(last);
            Some(())
        } else {
            txn.abort().map_err(write_err).ok()
        }
    })()
    .is_some();
    (committed, IO_FAILED.take())
}

impl Store {
    fn with(db: Db, file: Option<(PathBuf, usize)>) -> Store {
        Store {
            slot: RwLock::new(Slot {
                db: Some(Arc::new(db)),
                generation: 0,
                closed: false,
            }),
            file,
            degraded: AtomicBool::new(false),
            full: AtomicBool::new(false),
            probe: Mutex::new((std::time::Instant::now(), std::time::Duration::ZERO)),
            reopens: AtomicU64::new(0),
            batches: Batches::new(run_batch),
            bell: changelog::Bell::default(),
        }
    }

    /// Opens (creating if absent, with its folder) the database file at `path`, migrating a
    /// store of an older schema version in place (`migrate.rs`).
    pub fn open(path: &Path, cache_bytes: usize) -> Result<Store, OpenError> {
        Store::open_as(path, cache_bytes, true)
    }

    /// Opens an existing store of the current schema version only: an older one is refused
    /// (`OpenError::Migratable`), untouched (`check`).
    pub fn open_current(path: &Path, cache_bytes: usize) -> Result<Store, OpenError> {
        Store::open_as(path, cache_bytes, false)
    }

    fn open_as(path: &Path, cache_bytes: usize, migrate: bool) -> Result<Store, OpenError> {
        let p = path.to_path_buf();
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            create_private_dir(dir).map_err(|e| OpenError::Other(p.clone(), e.to_string()))?;
        }
        // A new file is created 0600 (whatever the umask) before redb opens it.
        if std::fs::symlink_metadata(path).is_err() {
            use std::os::unix::fs::OpenOptionsExt;
            let created = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path);
            match created {
                Ok(f) => {
                    set_mode(&f, 0o600).map_err(|e| OpenError::Other(p.clone(), e.to_string()))?
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(OpenError::Other(p.clone(), e.to_string())),
            }
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
                Ok(ro) => match open::verdict(&ro, path)? {
                    Some(Err(OpenError::Migratable(..))) if migrate => {}
                    Some(Err(e)) => return Err(e),
                    _ => {}
                },
                Err(redb::DatabaseError::DatabaseAlreadyOpen) => return Err(OpenError::InUse(p)),
                Err(_) => {}
            }
        }
        let db = open::open_db(path, cache_bytes)?;
        let store = Store::with(db, Some((p.clone(), cache_bytes)));
        store.init(&p, migrate)?;
        Ok(store)
    }

    /// A store in memory: nothing touches the disk.
    pub fn memory() -> Result<Store, OpenError> {
        let p = PathBuf::from(":memory:");
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(|e| OpenError::Other(p.clone(), e.to_string()))?;
        let store = Store::with(Db::new(db, None), None);
        store.init(&p, false)?;
        Ok(store)
    }

    /// Checks the meta table of an existing store (migrating an older one if `migrate`), or
    /// lays out a new one.
    fn init(&self, p: &Path, migrate: bool) -> Result<(), OpenError> {
        let slot = self.slot.read().unwrap_or_else(PoisonError::into_inner);
        let db = slot.db.as_ref().expect("a store is created open");
        match open::verdict(&db.db, p)? {
            Some(Err(OpenError::Migratable(..))) if migrate => {
                migrate::run(&db.db, self.file.as_ref().map(|(path, _)| path.as_path()))
            }
            Some(verdict) => verdict,
            None => open::lay_out(&db.db, p),
        }
    }

    /// Runs `f` on a consistent snapshot. A read that meets a failure of the file (typically
    /// a write failing beside it, which latches the file for every transaction) is run again
    /// on the reopened file, up to `STORE_READ_ATTEMPTS` times in all: reads change nothing,
    /// so running one twice is harmless. Writes are never repeated.
    pub fn read<T, E: From<StoreError>>(
        &self,
        f: impl Fn(&ReadTx) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut attempt = 1;
        loop {
            IO_FAILED.set(false);
            let (result, generation) = {
                let slot = self.open_slot(false)?;
                let db = slot
                    .db
                    .as_ref()
                    .expect("open_slot returns an open database");
                let result = match db.begin_read() {
                    Ok(txn) => f(&ReadTx { txn }),
                    Err(e) => Err(read_err(e).into()),
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
    pub fn write_alone<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut WriteTx) -> Result<T, E>,
    ) -> Result<T, E> {
        IO_FAILED.set(false);
        let mut slot = self.slot.write().unwrap_or_else(PoisonError::into_inner);
        if slot.closed {
            return Err(StoreError::write(&"the database is closed").into());
        }
        if slot.db.is_none() {
            self.reopen(&mut slot);
        }
        let Some(db) = slot.db.as_ref() else {
            return Err(StoreError::write(&"the database could not be reopened").into());
        };
        let result = self.write_immediate(db, f);
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
    /// resumes; and only one write per probe interval tries the file (`probe`), the others
    /// being refused at once. The first write that commits ends that.
    pub fn write<T: Send + 'static, E: From<StoreError> + Send + 'static>(
        &self,
        f: impl FnOnce(&mut WriteTx) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E> {
        IO_FAILED.set(false);
        if self.full.load(Ordering::Acquire)
            && !self.degraded.load(Ordering::Acquire)
            && !self.probe_due()
        {
            // The file could not grow: refused without touching it until the next probe. (A
            // degraded store has its own probe below, on the same interval: one try, not two.)
            return Err(StoreError::Write.into());
        }
        if !self.degraded.load(Ordering::Acquire) {
            let slot = self.open_slot(true)?;
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
        // Degraded: only one write per probe interval tries the file; the others are refused
        // without touching it (the readers keep the slot).
        let reopens = self.reopens.load(Ordering::Acquire);
        if !self.probe_due() {
            return Err(StoreError::Write.into());
        }
        let mut slot = self.slot.write().unwrap_or_else(PoisonError::into_inner);
        if slot.closed {
            return Err(StoreError::write(&"the database is closed").into());
        }
        if self.reopens.load(Ordering::Acquire) != reopens {
            // Another try failed and reopened the file while this one waited: the readers get
            // their interval first.
            return Err(StoreError::Write.into());
        }
        if slot.db.is_none() {
            self.reopen(&mut slot);
        }
        let Some(db) = slot.db.as_ref() else {
            return Err(StoreError::write(&"the database could not be reopened").into());
        };
        let result = self.write_immediate(db, f);
        if IO_FAILED.take() {
            self.reopen(&mut slot);
        } else if result.is_ok() {
            self.degraded.store(false, Ordering::Release);
            crate::log!("cmdb-lite: writes succeed again");
        }
        result
    }

    /// Runs `f` as one job of a group commit (`group.rs`): on a batch's transaction, rolled
    /// back alone if it fails, and answered once its batch is on disk. The job owns everything
    /// it uses, so it can travel to the writer thread; its outcome comes back in a slot of its
    /// own.
    fn write_grouped<T: Send + 'static, E: From<StoreError> + Send + 'static>(
        &self,
        db: &Arc<Db>,
        f: impl FnOnce(&mut WriteTx) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E> {
        type Outcome<T, E> = Option<std::thread::Result<Result<T, E>>>;
        let slot: Arc<Mutex<Outcome<T, E>>> = Arc::new(Mutex::new(None));
        let out = Arc::clone(&slot);
        // The resources this request wrote events of, to ring once its batch is durable.
        let rang = Arc::new(AtomicU32::new(0));
        let mask = Arc::clone(&rang);
        let job: Work = Box::new(move |tx: &mut WriteTx| {
            tx.events.job_mask = 0;
            // Caught here, so a panicking job cannot take the writer (or its batch) down;
            // raised again on the job's own thread.
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(tx)));
            let kept = matches!(outcome, Ok(Ok(_)));
            if kept {
                tx.events.tx_mask |= tx.events.job_mask;
                mask.store(tx.events.job_mask, Ordering::Release);
            }
            *out.lock().unwrap_or_else(PoisonError::into_inner) = Some(outcome);
            kept
        });
        let refusals = db.refusals();
        let done = self.batches.run(Arc::clone(db), job);
        if done.io_failed {
            // The file failed under this request's batch: have the store reopened.
            IO_FAILED.set(true);
        }
        let outcome = slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .unwrap_or_else(|| Ok(Err(StoreError::write(&"the write did not run").into())));
        match outcome {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(Err(e)) => Err(e),
            Ok(Ok(_)) if done.stage != group::Stage::Committed => {
                if !done.io_failed && db.refusals() != refusals {
                    // Aborted because the file could not grow.
                    self.no_room(db);
                    return Err(StoreError::Write.into());
                }
                Err(StoreError::write(&"the group commit did not reach the disk").into())
            }
            Ok(Ok(v)) => {
                self.room_again();
                self.bell.ring(rang.load(Ordering::Acquire));
                Ok(v)
            }
        }
    }

    /// One write transaction committed with `Durability::Immediate` (the store is degraded and
    /// held alone: no group to join).
    fn write_immediate<T, E: From<StoreError>>(
        &self,
        db: &Db,
        f: impl FnOnce(&mut WriteTx) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut txn = db.begin_write().map_err(write_err)?;
        txn.set_durability(Durability::Immediate)
            .map_err(write_err)?;
        let mut tx = db.write_tx(txn);
        match f(&mut tx) {
            Ok(v) => {
                let mask = tx.events.job_mask;
                if let Err(e) = tx.flush_events(mask) {
                    return Err(Self::abort(tx, e).into());
                }
                if db.short() {
                    // The file could not grow for it: taken back, growth included (`room.rs`).
                    self.no_room(db);
                    return Err(Self::abort(tx, StoreError::Write.into()));
                }
                let last = tx.events.last_issued();
                tx.into_txn().commit().map_err(write_err)?;
                db.committed(last);
                self.room_again();
                self.bell.ring(mask);
                Ok(v)
            }
            Err(e) => Err(Self::abort(tx, e)),
        }
    }

    /// Aborts a transaction whose closure failed; the closure's error is the answer.
    fn abort<E>(tx: WriteTx, e: E) -> E {
        // A failing abort is only noted for the reopen, and logged unless it merely repeats a
        // failure already logged.
        if let Err(abort) = tx.into_txn().abort() {
            let abort: redb::Error = abort.into();
            note(&abort);
            if !matches!(abort, redb::Error::PreviousIo) {
                crate::log!("cmdb-lite: storage error: {abort}");
            }
        }
        e
    }

    /// Whether a write may try the file now that it is degraded or full: one per probe
    /// interval, each try doubling the interval (up to `WRITE_PROBE_MAX_MILLIS`).
    fn probe_due(&self) -> bool {
        let mut probe = self.probe.lock().unwrap_or_else(PoisonError::into_inner);
        let now = std::time::Instant::now();
        if now < probe.0 {
            return false;
        }
        let max = std::time::Duration::from_millis(WRITE_PROBE_MAX_MILLIS);
        probe.1 = (probe.1 * 2).min(max);
        probe.0 = now + probe.1;
        true
    }

    /// A write was aborted because the file could not grow: the writes after it are refused
    /// at once, but for one per probe interval, until one commits.
    fn no_room(&self, db: &Db) {
        if !self.full.swap(true, Ordering::AcqRel) {
            crate::log!(
                warn,
                "cmdb-lite: the store file cannot grow ({}); writes that need room are refused \
                 until one succeeds",
                db.why()
            );
            let first = std::time::Duration::from_millis(WRITE_PROBE_FIRST_MILLIS);
            *self.probe.lock().unwrap_or_else(PoisonError::into_inner) =
                (std::time::Instant::now() + first, first / 2);
        }
    }

    /// A write committed: the file had room for it.
    fn room_again(&self) {
        if self.full.swap(false, Ordering::AcqRel) {
            crate::log!("cmdb-lite: writes succeed again");
        }
    }

    /// The slot, holding an open database: reopens it first if an earlier reopen failed.
    /// `write` says which failure a closed or unopenable file is answered with.
    fn open_slot(&self, write: bool) -> Result<RwLockReadGuard<'_, Slot>, StoreError> {
        let slot = self.slot.read().unwrap_or_else(PoisonError::into_inner);
        if slot.db.is_some() {
            return Ok(slot);
        }
        if slot.closed {
            return Err(StoreError::failed(write, &"the database is closed"));
        }
        let generation = slot.generation;
        drop(slot);
        self.recover(generation);
        let slot = self.slot.read().unwrap_or_else(PoisonError::into_inner);
        if slot.db.is_some() {
            Ok(slot)
        } else {
            Err(StoreError::failed(
                write,
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
        self.reopens.fetch_add(1, Ordering::AcqRel);
        if !self.degraded.swap(true, Ordering::AcqRel) {
            // Newly degraded: the first write may try the file again after the first wait.
            let first = std::time::Duration::from_millis(WRITE_PROBE_FIRST_MILLIS);
            *self.probe.lock().unwrap_or_else(PoisonError::into_inner) =
                (std::time::Instant::now() + first, first / 2);
        }
        // Closing a latched database fails with the latched error by design; nothing to report.
        if let Some(old) = slot.db.take() {
            let _ = close_db(old);
        }
        match open::open_db(path, *cache_bytes) {
            Ok(db) => {
                crate::log!(
                    "cmdb-lite: reopened {} after an I/O failure",
                    path.display()
                );
                slot.db = Some(Arc::new(db));
            }
            Err(e) => crate::log!("cmdb-lite: {e}; trying again on the next request"),
        }
        // The readers get the store for a whole probe interval after the open, however long the
        // open took: the next write to try the file waits until then.
        let mut probe = self.probe.lock().unwrap_or_else(PoisonError::into_inner);
        let wait = probe
            .1
            .max(std::time::Duration::from_millis(WRITE_PROBE_FIRST_MILLIS));
        probe.0 = probe.0.max(std::time::Instant::now() + wait);
    }

    /// The bell that wakes the watches waiting for events (`changelog::Bell`).
    pub fn bell(&self) -> &changelog::Bell {
        &self.bell
    }

    /// Closes the database once the transactions in progress have ended (graceful shutdown).
    /// redb then records its allocator state, so the next open needs no repair. Later
    /// transactions are refused with a storage error.
    pub fn close(&self) -> Result<(), String> {
        self.bell.stop();
        let mut slot = self.slot.write().unwrap_or_else(PoisonError::into_inner);
        slot.closed = true;
        match slot.db.take() {
            Some(db) => close_db(db),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use records::{Kind, Relation};
    use serde_json::{Map, Value, json};

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
            .read::<_, StoreError>(|tx| {
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

    /// A store holding process 1, named and run as "a" in instance 10.
    fn with_process_a() -> Store {
        let store = Store::memory().unwrap();
        store
            .write(move |tx| tx.put_process(1, &proc_map(10, "a"), &rel(1, 10)))
            .unwrap();
        store
            .write(move |tx| tx.raise_sequence(Kind::Process, 1))
            .unwrap();
        store
    }

    /// A committed batch leaves its last stamp with its database, and the next batch stamps
    /// above it without reading the logs: a stamp set far ahead is where the next event goes.
    #[test]
    fn the_last_stamp_outlives_its_transaction() {
        let store = with_process_a();
        let cached = || {
            let slot = store.slot.read().unwrap();
            slot.db.as_ref().unwrap().last_stamp.load(Ordering::Acquire)
        };
        let last = |ct| {
            store
                .read(|tx| tx.last_event(ct))
                .unwrap()
                .map(|e| e.stamp.key())
        };
        assert_eq!(Some(cached()), last(changelog::PROCESS_RELATION));
        let ahead = cached() + (1000 << 32);
        {
            let slot = store.slot.read().unwrap();
            slot.db
                .as_ref()
                .unwrap()
                .last_stamp
                .store(ahead, Ordering::Release);
        }
        store
            .write(move |tx| tx.put_process(2, &proc_map(10, "b"), &rel(2, 10)))
            .unwrap();
        assert_eq!(last(changelog::PROCESS), Some(ahead + 1));
        assert_eq!(last(changelog::PROCESS_RELATION), Some(ahead + 2));
        assert_eq!(cached(), ahead + 2);
    }

    /// `insert_processes` takes ids in order, refuses a key held by a stored process or by an
    /// earlier process of the same call, and a failing request takes all of it back.
    #[test]
    fn insert_processes_checks_keys_and_rolls_back_whole() {
        let store = with_process_a();
        let results = store
            .write(move |tx| {
                let maps = [proc_map(10, "b"), proc_map(10, "a"), proc_map(10, "b")];
                tx.insert_processes(maps.into_iter().map(NewProcess::new).collect(), &rel(0, 10))
            })
            .unwrap();
        let name = |n: &str| ProcKey::Name {
            si: 10,
            name: n.into(),
        };
        assert_eq!(results, vec![Ok(2), Err(name("a")), Err(name("b"))]);
        let failed = store.write(move |tx| {
            let maps = [proc_map(10, "c"), proc_map(11, "d")];
            tx.insert_processes(maps.into_iter().map(NewProcess::new).collect(), &rel(0, 10))?;
            Err::<(), _>(StoreError::Read)
        });
        assert!(failed.is_err());
        store
            .read::<_, StoreError>(|tx| {
                assert_eq!(tx.process_ids_of(10)?, [1, 2]);
                assert_eq!(tx.sequence(Kind::Process)?, 4);
                assert_eq!(owner(tx, 10, "b"), Some(2));
                assert_eq!(owner(tx, 10, "c"), None);
                assert!(!tx.has_process(5)? && tx.relation(5)?.is_none());
                let p2 = tx.process(2)?.expect("process 2");
                assert_eq!(p2["bk_process_id"], 2);
                assert_eq!(tx.relation(2)?.map(|r| r.bk_process_id), Some(2));
                Ok(())
            })
            .unwrap();
    }

    /// A process whose name is free but whose function key is held is not inserted and
    /// leaves its name free: a later process of the same request takes it.
    #[test]
    fn a_held_function_key_leaves_the_name_free() {
        let store = with_process_a();
        let mut clash = proc_map(10, "x");
        clash.insert("bk_func_name".into(), Value::from("a"));
        let results = store
            .write(move |tx| {
                let maps = [clash, proc_map(10, "x")];
                tx.insert_processes(maps.into_iter().map(NewProcess::new).collect(), &rel(0, 10))
            })
            .unwrap();
        let func = ProcKey::Func {
            si: 10,
            func: "a".into(),
            regex: String::new(),
        };
        assert_eq!(results, vec![Err(func), Ok(3)]);
        store
            .read(|tx| {
                assert_eq!(owner(tx, 10, "x"), Some(3));
                assert_eq!(owner(tx, 10, "a"), Some(1));
                assert_eq!(tx.process_ids_of(10)?, [1, 3]);
                Ok::<_, StoreError>(())
            })
            .unwrap();
        let problems = crate::store::check::run(&store).unwrap();
        // (The store holds no topology: only the index problems count here.)
        assert!(
            problems
                .iter()
                .all(|p| !p.contains("uniq") && !p.contains("entry")),
            "{problems:?}"
        );
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
                        let r = store.write(move |tx| {
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
                                return Err(StoreError::Read);
                            }
                            Ok(pid)
                        });
                        assert_eq!(r.is_err(), fail);
                    }
                });
            }
        });
        store
            .read::<_, StoreError>(|tx| {
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
