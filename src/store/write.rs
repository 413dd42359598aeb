//! [`WriteTx`]: the writes of a transaction. Every write keeps the indexes of what it writes in
//! the same transaction and, for a request sharing its transaction with others (group commit),
//! notes what it replaced in the request's undo log (`undo.rs`).

use super::StoreError;
use super::changelog::{self, TxLog};
use super::keys::{Held, IndexKey, ProcKey, key_parts_of};
use super::read::Tx;
use super::records::*;
use super::tables::*;
use super::typed::{RecTable, Record};
use super::undo::Undo;
use super::{codec_err, write_err};
use crate::domain::watch::EventType;
use redb::ReadableTable;
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::ops::Deref;
use std::ops::Range;

/// A new process prepared before its transaction (on the request's own thread): its
/// uniqueness keys and its encoding (which its create event keeps too), all but the id, which
/// only the transaction gives. The map itself stays (and is freed) on that thread.
#[derive(Clone, Debug, PartialEq)]
pub struct NewProcess {
    name: Option<(i64, String)>,
    func: Option<(i64, String, String)>,
    bytes: super::compact::Split,
}

impl NewProcess {
    /// The new process of a whole map (the tests' way; the create path reads its maps
    /// [`process::Filled`](crate::domain::process::Filled) through [`NewProcess::of_entries`]).
    #[cfg(test)]
    pub fn new(map: Map<String, Value>) -> NewProcess {
        NewProcess::of_entries(|k| map.get(k), map.iter().map(|(k, v)| (k.as_str(), v)))
    }

    /// The new process whose map's values `get` gives and whose entries, in key order, are
    /// `entries` (a map read with what it lacks filled in, without building that map).
    pub fn of_entries<'a>(
        get: impl Fn(&str) -> Option<&'a Value>,
        entries: impl Iterator<Item = (&'a str, &'a Value)>,
    ) -> NewProcess {
        let bytes = super::codec::encode_entries_split(entries);
        let (name, func) = key_parts_of(get);
        NewProcess {
            name: name.map(|(si, n)| (si, n.to_string())),
            func: func.map(|(si, f, r)| (si, f.to_string(), r.to_string())),
            bytes,
        }
    }
}

/// A write transaction. Reads (`Tx`) work on it through `Deref` and see its writes.
pub struct WriteTx {
    pub(super) tx: Tx<redb::WriteTransaction>,
    /// What every write of this request replaced, newest last, when the request shares its
    /// transaction with others (group commit): a request that fails is rolled back from it
    /// alone. `None` for a transaction of its own, which an abort rolls back.
    pub(super) undo: Option<Vec<Undo>>,
    /// The change log's state in this transaction (`changelog.rs`).
    pub(super) events: TxLog,
}

impl Deref for WriteTx {
    type Target = Tx<redb::WriteTransaction>;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl WriteTx {
    pub(super) fn new(txn: redb::WriteTransaction, undo: Option<Vec<Undo>>) -> WriteTx {
        WriteTx {
            tx: Tx { txn },
            undo,
            events: TxLog::new(true),
        }
    }

    pub(super) fn txn(&self) -> &redb::WriteTransaction {
        &self.tx.txn
    }

    pub(super) fn into_txn(self) -> redb::WriteTransaction {
        self.tx.txn
    }

    /// Notes a write to take back if this request fails (group commit only).
    pub(super) fn log(&mut self, undo: impl FnOnce() -> Undo) {
        if let Some(log) = &mut self.undo {
            log.push(undo());
        }
    }

    /// Takes back every write of this request, newest first; the log is empty afterwards.
    pub(super) fn roll_back(&mut self) -> Result<(), StoreError> {
        self.events.forget_job();
        let Some(mut log) = self.undo.take() else {
            return Ok(());
        };
        while let Some(undo) = log.pop() {
            undo.apply(self.txn()).map_err(write_err)?;
        }
        debug_assert!(log.is_empty(), "the undo log is empty after a rollback");
        self.undo = Some(log);
        Ok(())
    }

    /// Inserts or replaces a record and its index entries: the entries only the old record
    /// held go, the ones only the new record holds come. A unique key another record holds is
    /// refused (the caller checks uniqueness first; its error takes the request back).
    pub fn put<R: Record>(&mut self, rec: &R) -> Result<(), StoreError> {
        self.put_at(rec.id(), rec)
    }

    fn put_at<R: Record>(&mut self, id: i64, rec: &R) -> Result<(), StoreError> {
        let bytes = rec.encode();
        let old = self.put_bytes(R::TABLE, id, &bytes)?;
        // A watched kind's change log: created, or updated unless nothing changed.
        if let Some(ct) = R::LOG {
            let t = match &old {
                None => Some(EventType::Create),
                Some(before) if *before == bytes => None,
                Some(_) => Some(EventType::Update),
            };
            if let Some(t) = t {
                self.emit_record(ct, t, id, &bytes, || rec.event_detail())?;
            }
        }
        let new_keys = rec.index();
        let old_keys = match old {
            Some(bytes) => R::decode(&bytes).map_err(codec_err)?.index(),
            None => Vec::new(),
        };
        // Sets, not the lists: a module holds three entries per host.
        let old_set: HashSet<&IndexKey> = old_keys.iter().collect();
        let new_set: HashSet<&IndexKey> = new_keys.iter().collect();
        for key in old_keys.iter().filter(|k| !new_set.contains(k)) {
            self.unset_key(key, id)?;
        }
        for key in new_keys.iter().filter(|k| !old_set.contains(k)) {
            self.set_key(key, id)?;
        }
        Ok(())
    }

    /// Removes the record of kind `R` under `id` and its index entries (nothing if absent).
    pub fn delete<R: Record>(&mut self, id: i64) -> Result<(), StoreError> {
        let old = {
            let mut t = self.txn().open_table(R::TABLE).map_err(write_err)?;
            let old = t.remove(id).map_err(write_err)?;
            old.map(|v| v.value().to_vec())
        };
        let Some(bytes) = old else {
            return Ok(());
        };
        // Noted before anything can fail, so that a failure takes the removal back too.
        self.log(|| Undo::Rec(R::TABLE, id, Some(bytes.clone())));
        let old = R::decode(&bytes).map_err(codec_err)?;
        for key in &old.index() {
            self.unset_key(key, id)?;
        }
        if let Some(ct) = R::LOG {
            self.emit_record(ct, EventType::Delete, id, &bytes, || old.event_detail())?;
        }
        Ok(())
    }

    fn set_key(&mut self, key: &IndexKey, id: i64) -> Result<(), StoreError> {
        let held = key.insert(self.txn(), id).map_err(write_err)?;
        self.log(|| Undo::Key(key.clone(), held));
        if matches!(held, Held::By(owner) if owner != id) {
            return Err(IndexKey::held_error());
        }
        Ok(())
    }

    fn unset_key(&mut self, key: &IndexKey, id: i64) -> Result<(), StoreError> {
        if let Some(held) = key.remove(self.txn(), id).map_err(write_err)? {
            self.log(|| Undo::Key(key.clone(), held));
        }
        Ok(())
    }

    /// Inserts a record's bytes; returns the bytes it replaced, if any.
    fn put_bytes(
        &mut self,
        def: RecTable,
        id: i64,
        bytes: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let old = {
            let mut t = self.txn().open_table(def).map_err(write_err)?;
            let old = t.insert(id, bytes).map_err(write_err)?;
            old.map(|v| v.value().to_vec())
        };
        // Copied only for a request in a shared batch (the closure runs only then).
        self.log(|| Undo::Rec(def, id, old.clone()));
        Ok(old)
    }

    /// Issues the next id of `kind`: strictly above every id it issued before.
    pub fn next_id(&mut self, kind: Kind) -> Result<i64, StoreError> {
        let mut t = self.txn().open_table(SEQUENCES).map_err(write_err)?;
        let last = t
            .get(kind.name())
            .map_err(write_err)?
            .map_or(0, |v| v.value());
        // bk-cmdb answers a failed NextSequence with 1199058 (CCErrCommGenerateRecordIDFailed).
        let Some(next) = last.checked_add(1) else {
            crate::log!("cmdb-lite: the id sequence of {} is exhausted", kind.name());
            return Err(StoreError::IdsExhausted);
        };
        debug_assert!(next > last, "ids increase");
        let old = t
            .insert(kind.name(), next)
            .map_err(write_err)?
            .map(|v| v.value());
        drop(t);
        self.log(|| Undo::Seq(kind.name(), old));
        Ok(next)
    }

    /// Raises the sequence of `kind` to at least `at_least` (import).
    pub fn raise_sequence(&mut self, kind: Kind, at_least: i64) -> Result<(), StoreError> {
        let mut t = self.txn().open_table(SEQUENCES).map_err(write_err)?;
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

    pub fn set_setting(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        let mut t = self.txn().open_table(SETTINGS).map_err(write_err)?;
        let old = t
            .insert(key, value)
            .map_err(write_err)?
            .map(|v| v.value().to_string());
        drop(t);
        self.log(|| Undo::Setting(key.to_string(), old));
        Ok(())
    }

    pub fn put_business(&mut self, b: &Business) -> Result<(), StoreError> {
        self.put(b)
    }
    pub fn put_host(&mut self, h: &Host) -> Result<(), StoreError> {
        self.put(h)
    }
    /// Inserts or replaces a module; the hosts that join or leave it write host_relation
    /// events.
    pub fn put_module(&mut self, m: &Module) -> Result<(), StoreError> {
        let old = if self.events.enabled {
            self.get::<Module>(m.bk_module_id)?
        } else {
            None
        };
        self.put(m)?;
        self.emit_host_relations(old.as_ref(), m)
    }
    pub fn put_service_category(&mut self, c: &ServiceCategory) -> Result<(), StoreError> {
        self.put(c)
    }
    pub fn delete_service_category(&mut self, id: i64) -> Result<(), StoreError> {
        self.delete::<ServiceCategory>(id)
    }
    /// Inserts or replaces a service template and its indexes.
    pub fn put_service_template(&mut self, st: &ServiceTemplate) -> Result<(), StoreError> {
        self.put(st)
    }
    pub fn delete_service_template(&mut self, id: i64) -> Result<(), StoreError> {
        self.delete::<ServiceTemplate>(id)
    }
    /// Inserts or replaces a process template and its index.
    pub fn put_process_template(&mut self, pt: &ProcessTemplate) -> Result<(), StoreError> {
        self.put(pt)
    }
    pub fn delete_process_template(&mut self, id: i64) -> Result<(), StoreError> {
        self.delete::<ProcessTemplate>(id)
    }
    /// Inserts or replaces a service instance and its indexes.
    pub fn put_service_instance(&mut self, si: &ServiceInstance) -> Result<(), StoreError> {
        self.put(si)
    }
    /// Removes a service instance record and its indexes (not its processes).
    pub fn delete_service_instance(&mut self, id: i64) -> Result<(), StoreError> {
        self.delete::<ServiceInstance>(id)
    }

    /// Inserts or replaces a process and its relation, with every index. The caller has checked
    /// [`Tx::process_key_conflict`]; a conflict here is a bug and is refused. A new process
    /// costs one insert per table: the replaced record and relation, if any, come back from
    /// those inserts.
    pub fn put_process(
        &mut self,
        pid: i64,
        map: &Map<String, Value>,
        rel: &Relation,
    ) -> Result<(), StoreError> {
        self.put_at(pid, map)?;
        self.put_at(pid, rel)
    }

    /// Inserts new processes in order, each under the next id of the process sequence (its
    /// `bk_process_id`), with a copy of `rel` naming it: what [`WriteTx::put_process`] does for each after a
    /// [`Tx::process_key_conflict`] check, with every table opened once for all of them. A
    /// process one of whose uniqueness keys is held (by a stored process or an earlier one of
    /// `maps`) takes its id but is not inserted: its result is that key.
    pub fn insert_processes(
        &mut self,
        maps: Vec<NewProcess>,
        rel: &Relation,
    ) -> Result<Vec<Result<i64, ProcKey>>, StoreError> {
        if maps.is_empty() {
            return Ok(Vec::new());
        }
        let kind = Kind::Process.name();
        let first = {
            let mut t = self.txn().open_table(SEQUENCES).map_err(write_err)?;
            let last = t.get(kind).map_err(write_err)?.map_or(0, |v| v.value());
            // As in `next_id`: bk-cmdb's code for a failed id generation.
            let Some(top) = last.checked_add(maps.len() as i64) else {
                crate::log!("cmdb-lite: the id sequence of {kind} is exhausted");
                return Err(StoreError::IdsExhausted);
            };
            let old = t.insert(kind, top).map_err(write_err)?.map(|v| v.value());
            drop(t);
            self.log(|| Undo::Seq(kind, old));
            last + 1
        };
        // Each write is noted before it is made (a write that fails midway may have happened)
        // and its note corrected once it tells what it replaced, so that a failure anywhere
        // leaves an undo log that takes back exactly what this call wrote.
        // Five notes a process inserted (both keys, both records, the index entry).
        let mut undo = Vec::with_capacity(5 * maps.len());
        let mut results = Vec::with_capacity(maps.len());
        // The processes inserted, for their events, built in the log's buffer.
        let mut inserted = self.events.enabled.then(|| Vec::with_capacity(maps.len()));
        let mut bytes = self.events.lend_bytes();
        let outcome = insert_new(
            self.txn(),
            first,
            maps,
            rel,
            &mut Built {
                undo: &mut undo,
                results: &mut results,
                bytes: &mut bytes,
                inserted: inserted.as_mut(),
            },
        );
        self.events.give_back(bytes);
        match &mut self.undo {
            Some(log) if log.is_empty() => *log = undo,
            Some(log) => log.extend(undo),
            None => {}
        }
        outcome?;
        // Each process's event, then its relation's, as a `put_process` of each writes them.
        for (process, relation) in inserted.unwrap_or_default() {
            self.push_create(changelog::PROCESS, process)?;
            self.push_create(changelog::PROCESS_RELATION, relation)?;
        }
        Ok(results)
    }

    /// Removes a process, its relation and its index entries.
    pub fn delete_process(&mut self, pid: i64) -> Result<(), StoreError> {
        self.delete::<Map<String, Value>>(pid)?;
        self.delete::<Relation>(pid)
    }
}

/// A process [`insert_new`] wrote, for its events: where the create events of the process and
/// of its relation are in the log's buffer, each holding the record's bytes at
/// `changelog::RECORD_AT`.
type Inserted = (Range<usize>, Range<usize>);

/// What [`insert_new`] builds: each write's note in `undo`, each process's result, and (if
/// `inserted` keeps them) each inserted process's events in `bytes`.
struct Built<'a> {
    undo: &'a mut Vec<Undo>,
    results: &'a mut Vec<Result<i64, ProcKey>>,
    bytes: &'a mut Vec<u8>,
    inserted: Option<&'a mut Vec<Inserted>>,
}

/// The writes of [`WriteTx::insert_processes`], noting each in `undo` as it goes.
fn insert_new(
    txn: &redb::WriteTransaction,
    first: i64,
    maps: Vec<NewProcess>,
    rel: &Relation,
    out: &mut Built,
) -> Result<(), StoreError> {
    let Built {
        undo,
        results,
        bytes: buf,
        inserted,
    } = out;
    let mut procs = txn.open_table(PROCESSES).map_err(write_err)?;
    let mut rels = txn.open_table(RELATIONS).map_err(write_err)?;
    let mut by_si = txn.open_table(PROC_BY_SI).map_err(write_err)?;
    let mut names = txn.open_table(UNIQ_PROC_NAME).map_err(write_err)?;
    let mut funcs = txn.open_table(UNIQ_PROC_FUNC).map_err(write_err)?;
    let si = rel.service_instance_id;
    let relations = super::layout::RelationBytes::new(rel);
    let fresh = || StoreError::IdInUse;
    for (pid, new) in (first..).zip(maps) {
        let NewProcess { name, func, bytes } = new;
        let named = name.is_some();
        // The uniqueness keys first, each claimed by its insert (one lookup, not a lookup and
        // an insert): a key another id held is put back and its note dropped. Each note takes
        // the key's strings, and the insert reads them there (no copy).
        if let Some((si, name)) = name {
            undo.push(Undo::Key(IndexKey::ProcName(si, name), Held::Absent));
            let key = noted_name(undo);
            let held = names.insert(key, pid).map_err(write_err)?;
            if let Some(old) = held.map(|o| o.value()) {
                if old != pid {
                    names.insert(key, old).map_err(write_err)?;
                    if let Some(Undo::Key(IndexKey::ProcName(si, name), _)) = undo.pop() {
                        results.push(Err(ProcKey::Name { si, name }));
                    }
                    continue;
                }
                set_held(undo, Held::By(old));
            }
        }
        if let Some((fsi, func, regex)) = func {
            undo.push(Undo::Key(
                IndexKey::ProcFunc(fsi, func, regex),
                Held::Absent,
            ));
            let key = noted_func(undo);
            let held = funcs.insert(key, pid).map_err(write_err)?;
            if let Some(old) = held.map(|o| o.value()) {
                if old != pid {
                    funcs.insert(key, old).map_err(write_err)?;
                    let taken = undo.pop();
                    // This process's name goes back as it was (noted just before).
                    if named {
                        if let Some(Undo::Key(_, Held::Absent)) = undo.last() {
                            names.remove(noted_name(undo)).map_err(write_err)?;
                        }
                        undo.pop();
                    }
                    if let Some(Undo::Key(IndexKey::ProcFunc(si, func, regex), _)) = taken {
                        results.push(Err(ProcKey::Func { si, func, regex }));
                    }
                    continue;
                }
                set_held(undo, Held::By(old));
            }
        }
        undo.push(Undo::Rec(PROCESSES, pid, None));
        // Encoded behind its create event's head, in the log's buffer: the event is what this
        // appends, the record its tail.
        let at = buf.len();
        buf.reserve(changelog::RECORD_AT + bytes.max_len());
        changelog::push_record_head(buf, EventType::Create, pid);
        bytes.append_with_id(pid, buf);
        let old = procs
            .insert(pid, &buf[at + changelog::RECORD_AT..])
            .map_err(write_err)?;
        if let Some(old) = old {
            replace_last(undo, Undo::Rec(PROCESSES, pid, Some(old.value().to_vec())));
            return Err(fresh());
        }
        undo.push(Undo::Rec(RELATIONS, pid, None));
        let rat = buf.len();
        buf.reserve(changelog::RECORD_AT + relations.max_len());
        changelog::push_record_head(buf, EventType::Create, pid);
        relations.append_with_pid(pid, buf);
        let old = rels
            .insert(pid, &buf[rat + changelog::RECORD_AT..])
            .map_err(write_err)?;
        if let Some(old) = old {
            replace_last(undo, Undo::Rec(RELATIONS, pid, Some(old.value().to_vec())));
            return Err(fresh());
        }
        undo.push(Undo::Key(IndexKey::ProcBySi(si, pid), Held::Absent));
        if by_si.insert((si, pid), ()).map_err(write_err)?.is_some() {
            set_held(undo, Held::Present);
        }
        results.push(Ok(pid));
        match inserted.as_deref_mut() {
            Some(list) => list.push((at..rat, rat..buf.len())),
            // No events: the buffer only built the records.
            None => buf.truncate(at),
        }
    }
    Ok(())
}

/// The (service instance, name) key of the last note, a process name's (as `insert_new` has
/// just noted it).
fn noted_name(undo: &[Undo]) -> (i64, &str) {
    match undo.last() {
        Some(Undo::Key(IndexKey::ProcName(si, name), _)) => (*si, name),
        _ => unreachable!("a process name was just noted"),
    }
}

/// The (service instance, func, regex) key of the last note, a process function's.
fn noted_func(undo: &[Undo]) -> (i64, &str, &str) {
    match undo.last() {
        Some(Undo::Key(IndexKey::ProcFunc(si, func, regex), _)) => (*si, func, regex),
        _ => unreachable!("a process function was just noted"),
    }
}

/// Corrects the note of the index write just made, once it tells what the key held.
fn set_held(undo: &mut [Undo], held: Held) {
    if let Some(Undo::Key(_, h)) = undo.last_mut() {
        *h = held;
    }
}

/// Corrects the note of the write just made, once it tells what it replaced.
fn replace_last(undo: &mut [Undo], with: Undo) {
    if let Some(last) = undo.last_mut() {
        *last = with;
    }
}
