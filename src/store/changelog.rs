//! The change log that `resource_watch` reads: one event per committed change of a watched
//! record, written by the same `put_*`/`delete_*` that change the record, in its transaction.
//! An event therefore exists if and only if its change committed, in commit order; a request
//! rolled back inside a shared group commit takes its events back with its other writes (the
//! undo log). Seeds and imports (`WriteTx::without_events`) write none.
//!
//! Each watched resource has a table (`LOGS`) keyed by the event's [`Stamp`]: bk-cmdb's oplog
//! time, the second and the ordinal of the change within it, strictly increasing across the
//! whole store (never below the last stamp written, whatever the clock does). A value is
//! `[SCHEMA_VERSION, event type, record id (8 bytes, little-endian)] ++ detail`, the detail
//! either JSON (it starts with `{` or `n`) or, for the resources created in bulk (processes and
//! their relations, [`in_record_form`]), `[RECORD_FORM] ++` the record's own stored bytes, a
//! third of its JSON, made into the JSON detail when the event is read.
//!
//! Retention (`trim`, run by the writer on each batch's transaction after its requests): events
//! older than `EVENT_WINDOW_SECS` and beyond `MAX_EVENTS_PER_RESOURCE` are removed, oldest
//! first, but never a resource's last event: it is bk-cmdb's watch token, after which a client
//! holding its cursor resumes however old it is.
//!
//! [`Bell`] wakes the watches waiting for a resource once a commit that wrote its events is
//! durable.

use super::StoreError;
use super::codec::SCHEMA_VERSION;
use super::records::Module;
use super::tables::*;
use super::undo::Undo;
use super::{ReadTx, WriteTx, read_err, write_err};
use crate::domain::watch::{EventType, Stamp, oid};
use crate::limits::{EVENT_TRIM_SLACK, EVENT_WINDOW_SECS, MAX_EVENTS_PER_RESOURCE};
use redb::TableError;
use redb::{ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::Serialize;
use serde_json::Value;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub type LogTable = TableDefinition<'static, u64, &'static [u8]>;

/// The resources cmdb-lite writes events for: cursor number (`domain::watch::RESOURCES`) and
/// table. Adding a kind is a line here and an `emit` in its `put_*`/`delete_*`.
pub const LOGS: &[(u8, LogTable)] = &[
    (2, EVENTS_HOST),
    (3, EVENTS_HOST_RELATION),
    (4, EVENTS_BIZ),
    (5, EVENTS_SET),
    (6, EVENTS_MODULE),
    (9, EVENTS_PROCESS),
    (10, EVENTS_PROCESS_RELATION),
    (16, EVENTS_PLAT),
];

pub const HOST: u8 = 2;
pub const HOST_RELATION: u8 = 3;
pub const BIZ: u8 = 4;
pub const SET: u8 = 5;
pub const MODULE: u8 = 6;
pub const PROCESS: u8 = 9;
pub const PROCESS_RELATION: u8 = 10;
pub const PLAT: u8 = 16;

fn table(cursor_type: u8) -> Option<LogTable> {
    LOGS.iter()
        .find(|(t, _)| *t == cursor_type)
        .map(|(_, def)| *def)
}

/// True if cmdb-lite writes events for this cursor number.
pub fn is_logged(cursor_type: u8) -> bool {
    table(cursor_type).is_some()
}

/// The bit of a resource in a mask of resources with new events.
fn bit(cursor_type: u8) -> u32 {
    1u32 << (cursor_type % 32)
}

/// One stored event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub stamp: Stamp,
    pub event_type: EventType,
    /// The record's id (for a host relation: module << 32 | host).
    pub id: i64,
    /// The record after the change (before it, for a delete), JSON with sorted keys.
    pub detail: String,
}

const HEAD: usize = 10;

/// The first byte of a detail kept as the record's stored bytes (JSON never starts with it).
const RECORD_FORM: u8 = 0;

/// Whether a resource's events keep the record's stored bytes rather than its JSON: the kinds
/// created in bulk, whose stored form is about a third of their JSON (704 bytes of JSON for the
/// benchmark's process). The others keep JSON: a module's record carries its host list.
pub(super) fn in_record_form(cursor_type: u8) -> bool {
    matches!(cursor_type, PROCESS | PROCESS_RELATION)
}

fn head(t: EventType, id: i64, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEAD + capacity);
    push_head(&mut out, t, id);
    out
}

fn push_head(out: &mut Vec<u8>, t: EventType, id: i64) {
    out.push(SCHEMA_VERSION);
    out.push(t.code());
    out.extend_from_slice(&id.to_le_bytes());
}

fn encode(t: EventType, id: i64, detail: &str) -> Vec<u8> {
    let mut out = head(t, id, detail.len());
    out.extend_from_slice(detail.as_bytes());
    out
}

/// An event whose detail is the record's stored bytes (`Record::encode`).
pub(super) fn encode_record(t: EventType, id: i64, record: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(RECORD_AT + record.len());
    push_record_head(&mut out, t, id);
    out.extend_from_slice(record);
    out
}

/// Where the record starts in an event in record form.
pub(super) const RECORD_AT: usize = HEAD + 1;

/// Appends the start of an event of record `id` in record form to `out`: the record's bytes
/// appended after it make the event, and `RECORD_AT` bytes on from where it started is the
/// record itself (one buffer for both, on the bulk create path).
pub(super) fn push_record_head(out: &mut Vec<u8>, t: EventType, id: i64) {
    push_head(out, t, id);
    out.push(RECORD_FORM);
}

/// The document of a detail kept in record form.
fn record_document(cursor_type: u8, record: &[u8]) -> Result<Value, StoreError> {
    use super::Record;
    let doc = match cursor_type {
        PROCESS => serde_json::Map::<String, Value>::decode(record).map(|r| r.event_detail()),
        PROCESS_RELATION => super::records::Relation::decode(record).map(|r| r.event_detail()),
        _ => return Err(bad("is in record form for a resource that keeps JSON")),
    };
    doc.map_err(|_| bad("holds a record that does not decode"))
}

fn bad(what: &str) -> StoreError {
    StoreError::read(&format!("a stored event {what}"))
}

/// The type of a stored event, from its first bytes alone.
fn type_of(bytes: &[u8]) -> Result<EventType, StoreError> {
    if bytes.first() != Some(&SCHEMA_VERSION) {
        return Err(bad("has another schema version"));
    }
    bytes
        .get(1)
        .and_then(|&c| EventType::from_code(c))
        .ok_or_else(|| bad("has an unknown type"))
}

fn decode(cursor_type: u8, key: u64, bytes: &[u8]) -> Result<Event, StoreError> {
    let event_type = type_of(bytes)?;
    let id = bytes
        .get(2..HEAD)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(i64::from_le_bytes)
        .ok_or_else(|| bad("is cut short"))?;
    let detail = match bytes[HEAD..].split_first() {
        Some((&RECORD_FORM, record)) => detail_text(
            cursor_type,
            event_type,
            id,
            record_document(cursor_type, record)?,
        ),
        _ => std::str::from_utf8(&bytes[HEAD..])
            .map_err(|_| bad("is not UTF-8"))?
            .to_string(),
    };
    Ok(Event {
        stamp: Stamp::from_key(key),
        event_type,
        id,
        detail,
    })
}

fn now_sec() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs().min(u64::from(u32::MAX)) as u32)
}

/// An event's detail: the record's document (`Record::event_detail`, keys sorted) with `_id`
/// (the record's oid) unless it is a delete, as bk-cmdb's change stream delivers documents and
/// its delete archive strips `_id`.
fn detail_text(cursor_type: u8, t: EventType, id: i64, mut v: Value) -> String {
    if let Value::Object(m) = &mut v
        && t != EventType::Delete
    {
        m.insert("_id".into(), Value::String(oid(cursor_type, id)));
    }
    serde_json::to_string(&v).unwrap_or_else(|_| "null".into())
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

/// What a write transaction knows about the log.
#[derive(Default)]
pub struct TxLog {
    /// False for seeds and imports: they write no events.
    pub enabled: bool,
    /// The last stamp issued in this transaction (`None`: not read from the tables yet).
    last: Option<u64>,
    /// Resources with events from the request running now, and from the whole transaction's
    /// kept requests.
    pub job_mask: u32,
    pub tx_mask: u32,
    /// Create events stamped but not written yet ([`WriteTx::push_create`]): every request
    /// of a batch adds its own, and they reach their logs together when the batch ends
    /// ([`WriteTx::flush_events`]), each log opened once.
    pending: Vec<Pending>,
    /// The pending events' stored values, end to end (one buffer for the batch, not one
    /// allocation per event).
    bytes: Vec<u8>,
    /// Where the running request's pending events and their bytes start: a request rolled
    /// back drops those from there on (`forget_job`).
    job_start: usize,
    job_bytes: usize,
}

/// Pending events of one log from which [`write_pending`] writes them through a cursor.
const CURSOR_FROM: usize = 16;

/// A create event waiting for the end of its batch: its resource, stamp and where its stored
/// value is in `TxLog::bytes`.
struct Pending {
    cursor_type: u8,
    key: u64,
    value: std::ops::Range<usize>,
}

impl TxLog {
    pub fn new(enabled: bool) -> TxLog {
        TxLog {
            enabled,
            ..TxLog::default()
        }
    }

    /// The transaction starts after a commit whose last stamp was `last` (0: unknown): its
    /// stamps go above it without reading the logs.
    pub(super) fn resume_after(&mut self, last: u64) {
        if last > 0 {
            self.last = Some(last);
        }
    }

    /// The last stamp this transaction issued, if it issued or looked one up.
    pub(super) fn last_issued(&self) -> Option<u64> {
        self.last
    }

    /// A request starts on the transaction: what it adds to `pending` is its own.
    pub(super) fn begin_job(&mut self) {
        self.job_start = self.pending.len();
        self.job_bytes = self.bytes.len();
    }

    /// The running request is rolled back: its pending events go.
    pub(super) fn forget_job(&mut self) {
        self.pending.truncate(self.job_start);
        self.bytes.truncate(self.job_bytes);
    }

    /// The buffer the pending events' values go into, lent to the caller that builds them
    /// (with [`push_record_head`]); [`TxLog::give_back`] returns it.
    pub(super) fn lend_bytes(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.bytes)
    }

    pub(super) fn give_back(&mut self, bytes: Vec<u8>) {
        self.bytes = bytes;
    }
}

impl WriteTx {
    /// Appends an event for record `id` of resource `cursor_type` with the record's document
    /// `detail` (a no-op in a seed or import).
    pub(super) fn emit(
        &mut self,
        cursor_type: u8,
        t: EventType,
        id: i64,
        detail: Value,
    ) -> Result<(), StoreError> {
        self.emit_value(cursor_type, || {
            encode(t, id, &detail_text(cursor_type, t, id, detail))
        })
    }

    /// Appends an event for record `id` of resource `cursor_type` whose stored bytes are
    /// `record`: in record form if the resource keeps that form, else as `detail()`'s JSON.
    pub(super) fn emit_record(
        &mut self,
        cursor_type: u8,
        t: EventType,
        id: i64,
        record: &[u8],
        detail: impl FnOnce() -> Value,
    ) -> Result<(), StoreError> {
        if in_record_form(cursor_type) {
            self.emit_value(cursor_type, || encode_record(t, id, record))
        } else {
            self.emit(cursor_type, t, id, detail())
        }
    }

    /// Appends the event `value()` to the log of `cursor_type` (a no-op in a seed or import).
    fn emit_value(
        &mut self,
        cursor_type: u8,
        value: impl FnOnce() -> Vec<u8>,
    ) -> Result<(), StoreError> {
        if !self.events.enabled {
            return Ok(());
        }
        let Some(def) = table(cursor_type) else {
            return Ok(());
        };
        let key = self.next_stamp()?;
        {
            let mut tbl = self.txn().open_table(def).map_err(write_err)?;
            tbl.insert(key, value().as_slice()).map_err(write_err)?;
        }
        self.log(|| Undo::Event(def, key));
        self.events.job_mask |= bit(cursor_type);
        Ok(())
    }

    /// Stamps a create event of resource `cursor_type` (one that keeps the record form),
    /// whose value ([`push_record_head`] and the record) is `value` of the lent buffer (now
    /// given back), and keeps it for the end of the batch.
    pub(super) fn push_create(
        &mut self,
        cursor_type: u8,
        value: std::ops::Range<usize>,
    ) -> Result<(), StoreError> {
        debug_assert!(
            in_record_form(cursor_type),
            "a bulk create keeps the record form"
        );
        debug_assert_eq!(
            self.events.bytes.get(value.start + HEAD),
            Some(&RECORD_FORM),
            "an event in record form"
        );
        if !self.events.enabled || table(cursor_type).is_none() {
            return Ok(());
        }
        let key = self.next_stamp()?;
        self.events.pending.push(Pending {
            cursor_type,
            key,
            value,
        });
        self.events.job_mask |= bit(cursor_type);
        Ok(())
    }

    /// Writes the pending create events into their logs, each log's in stamp order
    /// ([`write_pending`]: by inserts, or through one cursor at its end when there are many),
    /// then applies retention to each log of `trim`, each log opened once for both. Run before
    /// the transaction commits, with no request's undo log: the requests that added them were
    /// kept.
    ///
    /// Retention (nothing to take back): removes the events older than the window and those
    /// beyond the count, oldest first, keeping the last. A log is cut back to the count only
    /// once it exceeds it by `EVENT_TRIM_SLACK`, so that most commits remove nothing and leave
    /// its first pages as they are.
    pub(crate) fn flush_events(&mut self, trim: u32) -> Result<(), StoreError> {
        let cutoff = u64::from(now_sec().saturating_sub(EVENT_WINDOW_SECS)) << 32;
        self.flush_trimming(trim, cutoff, MAX_EVENTS_PER_RESOURCE, EVENT_TRIM_SLACK)
    }

    /// [`WriteTx::flush_events`], removing events below `cutoff`, and beyond `cap` once there
    /// are more than `cap + slack`.
    fn flush_trimming(
        &mut self,
        trim: u32,
        cutoff: u64,
        cap: u64,
        slack: u64,
    ) -> Result<(), StoreError> {
        let pending = std::mem::take(&mut self.events.pending);
        let bytes = std::mem::take(&mut self.events.bytes);
        self.events.job_start = 0;
        self.events.job_bytes = 0;
        for (ct, def) in LOGS {
            let mine = pending.iter().filter(|p| p.cursor_type == *ct);
            let trims = trim & bit(*ct) != 0;
            let first = mine.clone().next().map(|p| p.key);
            if first.is_none() && !trims {
                continue;
            }
            let mut tbl = self.txn().open_table(*def).map_err(write_err)?;
            if let Some(first) = first {
                write_pending(&mut tbl, first, mine, &bytes)?;
            }
            if trims {
                trim_log(&mut tbl, cutoff, cap, slack)?;
            }
        }
        Ok(())
    }

    /// This transaction writes no events: a seed or an import is the store's starting point,
    /// not a change anyone watches.
    pub fn without_events(&mut self) {
        self.events.enabled = false;
    }

    /// The next stamp: the clock's second with ordinal 0, or one past the last stamp issued,
    /// whichever is later (strictly increasing across restarts and a clock set back).
    fn next_stamp(&mut self) -> Result<u64, StoreError> {
        let last = match self.events.last {
            Some(l) => l,
            None => {
                let mut l = 0;
                for (_, def) in LOGS {
                    let tbl = self.txn().open_table(*def).map_err(write_err)?;
                    if let Some((k, _)) = tbl.last().map_err(write_err)? {
                        l = l.max(k.value());
                    }
                }
                l
            }
        };
        let next = (last + 1).max(u64::from(now_sec()) << 32);
        self.events.last = Some(next);
        Ok(next)
    }

    /// The host_relation events of a module write: a delete for each host that left it, a
    /// create for each that joined.
    pub(super) fn emit_host_relations(
        &mut self,
        old: Option<&Module>,
        new: &Module,
    ) -> Result<(), StoreError> {
        if !self.events.enabled {
            return Ok(());
        }
        let before: &[i64] = old.map_or(&[], |o| &o.hosts);
        let left: Vec<i64> = before
            .iter()
            .filter(|h| !new.hosts.contains(h))
            .copied()
            .collect();
        let joined: Vec<i64> = new
            .hosts
            .iter()
            .filter(|h| !before.contains(h))
            .copied()
            .collect();
        if left.is_empty() && joined.is_empty() {
            return Ok(());
        }
        let supplier = self.setting("supplier_account")?.unwrap_or_default();
        let changes = [
            (EventType::Delete, old.unwrap_or(new), left),
            (EventType::Create, new, joined),
        ];
        for (t, module, hosts) in changes {
            for host in hosts {
                let rel = HostRelation {
                    bk_biz_id: module.bk_biz_id,
                    bk_host_id: host,
                    bk_module_id: module.bk_module_id,
                    bk_set_id: module.bk_set_id,
                    bk_supplier_account: &supplier,
                };
                let id = (module.bk_module_id << 32) | (host & 0xffff_ffff);
                let detail = serde_json::to_value(&rel).unwrap_or(Value::Null);
                self.emit(HOST_RELATION, t, id, detail)?;
            }
        }
        Ok(())
    }
}

/// Writes `mine`, a log's pending events (the first stamped `first`), into `tbl`: fewer than
/// `CURSOR_FROM` by plain inserts (a cursor's set-up and close cost more than the descents it
/// saves), more through one cursor at the log's end (their stamps are above every key of the
/// log), unless `emit` wrote above them since (then by plain inserts too).
fn write_pending<'p>(
    tbl: &mut redb::Table<u64, &'static [u8]>,
    first: u64,
    mine: impl Iterator<Item = &'p Pending> + Clone,
    bytes: &[u8],
) -> Result<(), StoreError> {
    let few = mine.clone().nth(CURSOR_FROM - 1).is_none();
    let last = match few {
        true => None,
        false => tbl.last().map_err(write_err)?.map(|(k, _)| k.value()),
    };
    if few || last.is_some_and(|l| l >= first) {
        for p in mine {
            tbl.insert(p.key, &bytes[p.value.clone()])
                .map_err(write_err)?;
        }
        return Ok(());
    }
    let mut end = tbl
        .upper_bound_mut(std::ops::Bound::<u64>::Unbounded)
        .map_err(write_err)?;
    for p in mine {
        end.insert_before(p.key, &bytes[p.value.clone()])
            .map_err(write_err)?;
    }
    end.close().map_err(write_err)
}

/// Removes from `tbl` the events below `cutoff`, and beyond `cap` once there are more than
/// `cap + slack`, keeping the last.
fn trim_log(
    tbl: &mut redb::Table<u64, &'static [u8]>,
    cutoff: u64,
    cap: u64,
    slack: u64,
) -> Result<(), StoreError> {
    let len = tbl.len().map_err(write_err)?;
    if len <= 1 {
        return Ok(());
    }
    // Nothing to remove: no cursor (which would copy the log's first pages).
    if len <= cap.saturating_add(slack)
        && tbl
            .first()
            .map_err(write_err)?
            .is_none_or(|(k, _)| k.value() >= cutoff)
    {
        return Ok(());
    }
    // The first key kept: the one after the `len - cap` oldest (if any are beyond the count),
    // or the first in the window if that is later, but never after the last.
    let over = len.saturating_sub(cap);
    let by_count = match tbl.iter().map_err(write_err)?.nth(over as usize) {
        Some(item) => item.map_err(write_err)?.0.value(),
        None => return Ok(()),
    };
    let last = match tbl.last().map_err(write_err)? {
        Some((k, _)) => k.value(),
        None => return Ok(()),
    };
    let keep_from = by_count.max(cutoff.min(last));
    // One pass over the range, which redb rewrites leaf by leaf (a cursor's `remove_next`
    // seeks again after each removal).
    tbl.retain_in(..keep_from, |_, _| false)
        .map_err(write_err)?;
    Ok(())
}

/// The first key of the window (events older than it are not answered).
pub fn window_start(now_sec: i64) -> u64 {
    (now_sec.saturating_sub(i64::from(EVENT_WINDOW_SECS)).max(0) as u64) << 32
}

impl ReadTx {
    /// A resource's log; `None` if cmdb-lite keeps none for it, or if the store has not
    /// written one yet (a file laid out before the change log: the first write creates it).
    fn log_table(
        &self,
        cursor_type: u8,
    ) -> Result<Option<redb::ReadOnlyTable<u64, &'static [u8]>>, StoreError> {
        let Some(def) = table(cursor_type) else {
            return Ok(None);
        };
        match self.txn.open_table(def) {
            Ok(t) => Ok(Some(t)),
            Err(TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(read_err(e)),
        }
    }

    /// The event at `stamp`, if it is still kept.
    pub fn event_at(&self, cursor_type: u8, stamp: Stamp) -> Result<Option<Event>, StoreError> {
        let Some(t) = self.log_table(cursor_type)? else {
            return Ok(None);
        };
        match t.get(stamp.key()).map_err(read_err)? {
            Some(v) => Ok(Some(decode(cursor_type, stamp.key(), v.value())?)),
            None => Ok(None),
        }
    }

    /// The resource's last event, in the window or not (the watch token).
    pub fn last_event(&self, cursor_type: u8) -> Result<Option<Event>, StoreError> {
        let Some(t) = self.log_table(cursor_type)? else {
            return Ok(None);
        };
        match t.last().map_err(read_err)? {
            Some((k, v)) => Ok(Some(decode(cursor_type, k.value(), v.value())?)),
            None => Ok(None),
        }
    }

    /// The first event with a key of at least `from`.
    pub fn first_event_from(
        &self,
        cursor_type: u8,
        from: u64,
    ) -> Result<Option<Event>, StoreError> {
        let Some(t) = self.log_table(cursor_type)? else {
            return Ok(None);
        };
        match t.range(from..).map_err(read_err)?.next() {
            Some(item) => {
                let (k, v) = item.map_err(read_err)?;
                Ok(Some(decode(cursor_type, k.value(), v.value())?))
            }
            None => Ok(None),
        }
    }

    /// Up to `limit` events with keys above `after` whose type passes `keep`, in order.
    pub fn events_after(
        &self,
        cursor_type: u8,
        after: u64,
        keep: impl Fn(EventType) -> bool,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let mut out = Vec::new();
        let Some(t) = self.log_table(cursor_type)? else {
            return Ok(out);
        };
        let Some(from) = after.checked_add(1) else {
            return Ok(out);
        };
        for item in t.range(from..).map_err(read_err)? {
            if out.len() >= limit {
                break;
            }
            let (k, v) = item.map_err(read_err)?;
            if keep(type_of(v.value())?) {
                out.push(decode(cursor_type, k.value(), v.value())?);
            }
        }
        Ok(out)
    }

    /// Every event of every resource, for `check`: (cursor number, key, decodes).
    pub(crate) fn each_event(
        &self,
        mut f: impl FnMut(u8, u64, Result<Event, StoreError>),
    ) -> Result<(), StoreError> {
        for (ct, _) in LOGS {
            let Some(t) = self.log_table(*ct)? else {
                continue;
            };
            for item in t.iter().map_err(read_err)? {
                let (k, v) = item.map_err(read_err)?;
                f(*ct, k.value(), decode(*ct, k.value(), v.value()));
            }
        }
        Ok(())
    }
}

/// Wakes the watches waiting for new events of a resource. One condition variable per
/// resource, so a commit wakes only the watches of the resources it wrote: a hundred watches of
/// hosts sleep through every process create.
pub struct Bell {
    state: Mutex<BellState>,
    rung: [Condvar; 32],
}

struct BellState {
    /// Per resource bit: how many commits wrote its events.
    generations: [u64; 32],
    /// Set at shutdown: every wait returns at once.
    stopping: bool,
}

impl Default for Bell {
    fn default() -> Self {
        Bell {
            state: Mutex::new(BellState {
                generations: [0; 32],
                stopping: false,
            }),
            rung: [const { Condvar::new() }; 32],
        }
    }
}

impl Bell {
    /// After a durable commit that wrote events of the resources in `mask`.
    pub fn ring(&self, mask: u32) {
        if mask == 0 {
            return;
        }
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        for i in 0..32 {
            if mask & (1 << i) != 0 {
                s.generations[i] += 1;
                self.rung[i].notify_all();
            }
        }
    }

    /// The resource's generation now: read it before looking at the log, then wait for it to
    /// change.
    pub fn generation(&self, cursor_type: u8) -> u64 {
        let s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.generations[(cursor_type % 32) as usize]
    }

    /// Waits until the resource's generation differs from `seen` (true), or until `deadline`
    /// or shutdown (false).
    pub fn wait(&self, cursor_type: u8, seen: u64, deadline: Instant) -> bool {
        let i = (cursor_type % 32) as usize;
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if s.generations[i] != seen {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if s.stopping || left.is_zero() {
                return false;
            }
            s = self.rung[i]
                .wait_timeout(s, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Shutdown: every waiting watch answers now, and later ones do not wait.
    pub fn stop(&self) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.stopping = true;
        for c in &self.rung {
            c.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip() {
        let b = encode(EventType::Delete, -5, "{\"a\":1}");
        let e = decode(HOST, 7, &b).unwrap();
        assert_eq!(e.event_type, EventType::Delete);
        assert_eq!(e.id, -5);
        assert_eq!(e.detail, "{\"a\":1}");
        assert!(decode(HOST, 7, &b[..5]).is_err());
        assert!(type_of(&[0, 0]).is_err());
    }

    /// An event kept in record form reads as the detail its JSON form holds, for every type,
    /// whatever the process holds (unknown keys, large and odd numbers, times that are not in
    /// `clock`'s form); and its bytes are pinned.
    #[test]
    fn record_form_reads_as_its_json() {
        use crate::store::Record;
        use crate::store::records::Relation;
        let doc = serde_json::json!({"bk_process_id": 42, "bk_process_name": "a\"b<", "x": [1, {"y": null}],
            "priority": 1.5, "proc_num": 18446744073709551615u64, "timeout": -7,
            "create_time": "2026-01-02T03:04:05.678Z", "last_time": "2026-01-02T03:04:05Z",
            "bind_info": [{"enable": true, "ip": "1.2.3.4", "port": "80"}], "user": null});
        let map = doc.as_object().unwrap().clone();
        let rel = Relation {
            bk_biz_id: 3,
            bk_process_id: 42,
            service_instance_id: 9,
            process_template_id: 0,
            bk_host_id: 5,
            bk_supplier_account: "0".into(),
        };
        for t in [EventType::Create, EventType::Update, EventType::Delete] {
            for (ct, bytes, json) in [
                (PROCESS, map.encode(), map.event_detail()),
                (PROCESS_RELATION, rel.encode(), rel.event_detail()),
            ] {
                let got = decode(ct, 7, &encode_record(t, 42, &bytes)).unwrap();
                let want = decode(ct, 7, &encode(t, 42, &detail_text(ct, t, 42, json))).unwrap();
                assert_eq!(got, want, "{ct} {t:?}");
            }
        }
        // [version, type, id] ++ [RECORD_FORM] ++ the relation's own bytes.
        let value = encode_record(EventType::Create, 42, &rel.encode());
        assert_eq!(value[..11], [2, 0, 42, 0, 0, 0, 0, 0, 0, 0, RECORD_FORM]);
        assert_eq!(value[11..], rel.encode()[..]);
        // A record form where the resource keeps JSON, or a record that does not decode.
        assert!(decode(HOST, 7, &encode_record(EventType::Create, 1, &rel.encode())).is_err());
        assert!(
            decode(
                PROCESS_RELATION,
                7,
                &encode_record(EventType::Create, 1, &[2, 9])
            )
            .is_err()
        );
    }

    use crate::store::Store;
    use crate::store::records::{Business, Host, Module};

    fn all(store: &Store, ct: u8) -> Vec<Event> {
        store
            .read(|tx| tx.events_after(ct, 0, |_| true, usize::MAX))
            .unwrap()
    }

    fn module(hosts: Vec<i64>, name: &str) -> Module {
        Module {
            bk_module_id: 5,
            bk_biz_id: 7,
            bk_set_id: 3,
            bk_module_name: name.into(),
            service_template_id: 0,
            service_category_id: 2,
            default: 0,
            hosts,
            attrs: serde_json::json!({}),
        }
    }

    /// Hosts, businesses and modules (with the host relations a module's host list implies)
    /// write create and update events; an unchanged record writes none; a seed writes none.
    #[test]
    fn every_watched_kind_writes_its_events() {
        let store = Store::memory().unwrap();
        store
            .write_alone(|tx| {
                tx.without_events();
                tx.put_host(&host(1, "10.0.0.1"))
            })
            .unwrap();
        assert!(all(&store, HOST).is_empty(), "a seed writes no event");
        store
            .write(|tx| {
                tx.set_setting("supplier_account", "0")?;
                tx.put_host(&host(1, "10.0.0.2"))?;
                tx.put_host(&host(2, "10.0.0.3"))?;
                tx.put_host(&host(2, "10.0.0.3"))?;
                tx.put_business(&Business {
                    bk_biz_id: 7,
                    bk_biz_name: "shop".into(),
                    default: 0,
                    attrs: serde_json::json!({}),
                })?;
                tx.put_module(&module(vec![1, 2], "m"))
            })
            .unwrap();
        store
            .write(|tx| tx.put_module(&module(vec![2, 3], "m2")))
            .unwrap();
        let types = |ct| -> Vec<(EventType, i64)> {
            all(&store, ct)
                .iter()
                .map(|e| (e.event_type, e.id))
                .collect()
        };
        use EventType::*;
        assert_eq!(types(HOST), [(Update, 1), (Create, 2)]);
        assert_eq!(types(BIZ), [(Create, 7)]);
        assert_eq!(types(MODULE), [(Create, 5), (Update, 5)]);
        let rel = |h: i64| (5i64 << 32) | h;
        assert_eq!(
            types(HOST_RELATION),
            [
                (Create, rel(1)),
                (Create, rel(2)),
                (Delete, rel(1)),
                (Create, rel(3))
            ]
        );
        let last = all(&store, HOST_RELATION).pop().unwrap();
        assert_eq!(
            last.detail,
            r#"{"_id":"030000000000000500000003","bk_biz_id":7,"bk_host_id":3,"bk_module_id":5,"bk_set_id":3,"bk_supplier_account":"0"}"#
        );
        let m = all(&store, MODULE).pop().unwrap();
        assert!(!m.detail.contains("hosts"), "{}", m.detail);
        // Stamps increase in commit order across resources.
        let mut stamps: Vec<u64> = LOGS
            .iter()
            .flat_map(|(ct, _)| all(&store, *ct))
            .map(|e| e.stamp.key())
            .collect();
        let n = stamps.len();
        stamps.sort_unstable();
        stamps.dedup();
        assert_eq!(stamps.len(), n, "every stamp is unique");
    }

    fn host(id: i64, ip: &str) -> Host {
        Host {
            bk_host_id: id,
            bk_host_innerip: ip.into(),
            bk_host_outerip: String::new(),
            bk_host_innerip_v6: String::new(),
            bk_host_outerip_v6: String::new(),
            bk_cloud_id: 0,
            attrs: serde_json::json!({}),
        }
    }

    /// Requests sharing group commits, every other one failing after writing events: exactly
    /// the successful ones' events remain, in commit order.
    #[test]
    fn a_failed_request_in_a_shared_batch_leaves_no_event() {
        let store = Store::memory().unwrap();
        std::thread::scope(|s| {
            for t in 0..6i64 {
                let store = &store;
                s.spawn(move || {
                    for i in 0..40i64 {
                        let id = t * 1000 + i;
                        let fail = i % 2 == 1;
                        let r = store.write(move |tx| {
                            tx.put_host(&host(id, "10.0.0.1"))?;
                            if fail {
                                return Err(StoreError::Read);
                            }
                            Ok(())
                        });
                        assert_eq!(r.is_err(), fail);
                    }
                });
            }
        });
        let evs = all(&store, HOST);
        assert_eq!(evs.len(), 6 * 20);
        assert!(evs.iter().all(|e| e.id % 2 == 0));
        for t in 0..6 {
            let mine: Vec<i64> = evs
                .iter()
                .filter(|e| e.id / 1000 == t)
                .map(|e| e.id)
                .collect();
            let expected: Vec<i64> = (0..40)
                .filter(|i| i % 2 == 0)
                .map(|i| t * 1000 + i)
                .collect();
            assert_eq!(mine, expected, "thread {t}'s events in its order");
        }
    }

    /// Create events wait for the end of their batch: requests sharing batches, some failing
    /// after their creates, others updating a process (an event written at once, stamped
    /// after the creates before it): exactly the kept requests' events remain, each once,
    /// stamps increasing in the order they were issued, every value what `emit` writes.
    #[test]
    fn pending_creates_reach_the_log_with_their_batch_or_not_at_all() {
        use crate::store::NewProcess;
        use crate::store::records::Relation;
        let store = Store::memory().unwrap();
        let proc_map = |si: i64, name: &str| {
            serde_json::json!({"service_instance_id": si, "bk_process_name": name,
                "bk_func_name": name, "bk_start_param_regex": ""})
            .as_object()
            .cloned()
            .unwrap()
        };
        let rel = |si: i64| Relation {
            bk_biz_id: 1,
            bk_process_id: 0,
            service_instance_id: si,
            process_template_id: 0,
            bk_host_id: 1,
            bk_supplier_account: "0".into(),
        };
        let size = |i: i64| if i % 2 == 0 { CURSOR_FROM + 4 } else { 2 };
        std::thread::scope(|s| {
            for t in 0..6i64 {
                let store = &store;
                s.spawn(move || {
                    for i in 0..30i64 {
                        let (fail, update) = (i % 3 == 1, i % 5 == 4);
                        // Requests of 2 and of 20: a batch's events go in by inserts or
                        // through a cursor (from `CURSOR_FROM` in one log).
                        let maps = (0..size(i))
                            .map(|k| {
                                let name = if k == 0 {
                                    format!("a{i}")
                                } else {
                                    format!("{k}b{i}")
                                };
                                NewProcess::new(proc_map(t, &name))
                            })
                            .collect();
                        let r = store.write(move |tx| {
                            let ids = tx.insert_processes(maps, &rel(t))?;
                            if update && let Some(Ok(pid)) = ids.first() {
                                let mut m = proc_map(t, &format!("a{i}"));
                                m.insert("bk_process_id".into(), Value::from(*pid));
                                m.insert("description".into(), Value::from("changed"));
                                tx.put_process(
                                    *pid,
                                    &m,
                                    &Relation {
                                        bk_process_id: *pid,
                                        ..rel(t)
                                    },
                                )?;
                            }
                            if fail {
                                return Err(StoreError::Read);
                            }
                            Ok(ids)
                        });
                        assert_eq!(r.is_err(), fail);
                    }
                });
            }
        });
        let procs = all(&store, PROCESS);
        let rels = all(&store, PROCESS_RELATION);
        let kept: usize = 6 * (0..30).filter(|i| i % 3 != 1).map(size).sum::<usize>();
        let updates = 6 * (0..30).filter(|i| i % 3 != 1 && i % 5 == 4).count();
        assert_eq!(procs.len(), kept + updates);
        assert_eq!(rels.len(), kept);
        let stored = |pid: i64| {
            store
                .read(|tx| tx.process(pid))
                .unwrap()
                .expect("an event's process is stored")
        };
        for e in &procs {
            let mut doc = stored(e.id);
            if e.event_type == EventType::Create {
                doc.remove("description");
            }
            let detail = detail_text(PROCESS, e.event_type, e.id, Value::Object(doc));
            assert!(
                e.event_type == EventType::Update || e.detail == detail,
                "{} vs {}",
                e.detail,
                detail
            );
        }
        // Each process has one create event, its relation one, and in the order issued.
        let mut created: Vec<i64> = procs
            .iter()
            .filter(|e| e.event_type == EventType::Create)
            .map(|e| e.id)
            .collect();
        let n = created.len();
        created.dedup();
        assert_eq!(created.len(), n);
        let mut stamps: Vec<u64> = procs.iter().chain(&rels).map(|e| e.stamp.key()).collect();
        stamps.sort_unstable();
        stamps.dedup();
        assert_eq!(
            stamps.len(),
            procs.len() + rels.len(),
            "every stamp is unique"
        );
        for e in &rels {
            let create = procs
                .iter()
                .find(|p| p.id == e.id && p.event_type == EventType::Create)
                .expect("a relation event follows its process's");
            assert!(create.stamp.key() < e.stamp.key());
        }
        // An update is stamped after its process's create.
        for e in procs.iter().filter(|e| e.event_type == EventType::Update) {
            let create = procs
                .iter()
                .find(|p| p.id == e.id && p.event_type == EventType::Create)
                .expect("created first");
            assert!(create.stamp.key() < e.stamp.key());
        }
    }

    /// The record ids of the host events, oldest first.
    fn host_ids(store: &Store) -> Vec<i64> {
        all(store, HOST).iter().map(|e| e.id).collect()
    }

    /// A store whose host log holds the creates of hosts 0 to 5.
    fn six_hosts() -> Store {
        let store = Store::memory().unwrap();
        for i in 0..6 {
            store
                .write(move |tx| tx.put_host(&host(i, "10.0.0.1")))
                .unwrap();
        }
        store
    }

    /// With slack, a log is left alone up to the count plus the slack, then cut back to the
    /// count; an event older than the cutoff goes whatever the count.
    #[test]
    fn trimming_waits_for_the_slack() {
        let store = six_hosts();
        store
            .write_alone(|tx| tx.flush_trimming(bit(HOST), 0, 3, 3))
            .unwrap();
        assert_eq!(host_ids(&store), [0, 1, 2, 3, 4, 5], "within the slack");
        store
            .write_alone(|tx| tx.flush_trimming(bit(HOST), 0, 3, 2))
            .unwrap();
        assert_eq!(host_ids(&store), [3, 4, 5], "beyond it: back to the count");
        let second = all(&store, HOST)[1].stamp.key();
        store
            .write_alone(|tx| tx.flush_trimming(bit(HOST), second, 100, 100))
            .unwrap();
        assert_eq!(host_ids(&store), [4, 5], "older than the cutoff");
    }

    /// Retention removes the oldest events beyond the count and before the cutoff, never the
    /// last one.
    #[test]
    fn trimming_keeps_the_newest_and_the_last() {
        let store = six_hosts();
        store
            .write_alone(|tx| tx.flush_trimming(bit(HOST), 0, 4, 0))
            .unwrap();
        assert_eq!(host_ids(&store), [2, 3, 4, 5]);
        store
            .write_alone(|tx| tx.flush_trimming(bit(HOST), u64::MAX, 100, 0))
            .unwrap();
        assert_eq!(host_ids(&store), [5]);
    }

    /// The window and the count together: the older of the two cuts is not the one kept.
    #[test]
    fn trimming_applies_the_window_and_the_count() {
        let store = six_hosts();
        let events = all(&store, HOST);
        let before: Vec<i64> = events.iter().map(|e| e.id).collect();
        // The window starts at the third event; the count (5) would keep from the second.
        let third = events[2].stamp.key();
        store
            .write_alone(move |tx| tx.flush_trimming(bit(HOST), third, 5, 0))
            .unwrap();
        assert_eq!(host_ids(&store), before[2..]);
        // The count (2) now cuts later than the window.
        store
            .write_alone(move |tx| tx.flush_trimming(bit(HOST), third, 2, 0))
            .unwrap();
        assert_eq!(host_ids(&store), before[before.len() - 2..]);
    }

    #[test]
    fn a_bell_wakes_only_its_resource() {
        let bell = Bell::default();
        let g = bell.generation(PROCESS);
        bell.ring(bit(HOST));
        let soon = Instant::now() + std::time::Duration::from_millis(20);
        assert!(!bell.wait(PROCESS, g, soon));
        bell.ring(bit(PROCESS));
        assert!(bell.wait(
            PROCESS,
            g,
            Instant::now() + std::time::Duration::from_secs(60)
        ));
        bell.stop();
        let g = bell.generation(PROCESS);
        assert!(!bell.wait(
            PROCESS,
            g,
            Instant::now() + std::time::Duration::from_secs(60)
        ));
    }
}
