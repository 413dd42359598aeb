//! `resource_watch` (spec events-sync 1.6): the three start modes over the store's change log
//! (`store::changelog`), and the long poll of the cursor mode.
//!
//! A watch holds a worker permit only while it reads the log: the caller passes a `gate` that
//! runs a closure under a permit, and the wait for new events happens outside it, on the
//! store's bell (woken by the commit that wrote them, once it is durable). So waiting watches
//! never keep other requests from being worked on.

use super::{Ctx, Data, Input};
use crate::domain::watch::{
    self, EventType, Options, Resource, Stamp, answer_json, cut_fields, encode_cursor, event_json,
    no_event_cursor, oid, type_matches,
};
use crate::error::{CcError, code};
use crate::limits::{WATCH_ERROR_DELAY_MS, WATCH_EVENTS_PER_ANSWER};
use crate::store::changelog::{Event, window_start};
use crate::store::{ReadTx, Store};
use std::time::{Duration, Instant};

/// Runs a closure while holding a worker permit.
pub type Gate<'a> = &'a dyn Fn(&mut dyn FnMut());

fn gated<T>(gate: Gate, f: impl FnOnce() -> T) -> T {
    let mut f = Some(f);
    let mut out = None;
    gate(&mut || {
        if let Some(f) = f.take() {
            out = Some(f());
        }
    });
    match out {
        Some(v) => v,
        // A gate that does not run its closure is a bug of the caller.
        None => panic!("the watch gate did not run the read"),
    }
}

/// The validated request.
struct Watch {
    res: &'static Resource,
    types: Vec<EventType>,
    fields: Vec<String>,
    opts: Options,
}

impl Watch {
    fn cursor_of(&self, e: &Event) -> String {
        let ct = self.res.cursor_type;
        encode_cursor(ct, &oid(ct, e.id), e.event_type.oper(), e.stamp)
    }

    fn matches(&self, e: &Event) -> bool {
        type_matches(&self.types, e.event_type)
    }

    fn hit(&self, e: &Event) -> String {
        let detail = if self.fields.is_empty() {
            e.detail.clone()
        } else {
            let v = serde_json::from_str(&e.detail).unwrap_or(serde_json::Value::Null);
            cut_fields(&v, &self.fields)
        };
        event_json(
            &self.cursor_of(e),
            self.res.name,
            e.event_type.name(),
            &detail,
        )
    }

    /// `bk_watched: false` with one element carrying `cursor`.
    fn nothing(&self, cursor: &str) -> Data {
        Data(answer_json(
            false,
            &[event_json(cursor, self.res.name, "", "null")],
        ))
    }

    fn hits(&self, events: &[Event]) -> Data {
        let list: Vec<String> = events.iter().map(|e| self.hit(e)).collect();
        Data(answer_json(true, &list))
    }

    /// From now (and start-from's same case): the latest event if it matches, else nothing.
    fn latest(&self, last: Option<Event>, ws: u64) -> Data {
        match last {
            Some(e) if e.stamp.key() >= ws && self.matches(&e) => self.hits(&[e]),
            _ => self.nothing(&no_event_cursor()),
        }
    }

    /// `first` if it matches, then up to 200 matching events after it.
    fn starting_with(&self, tx: &ReadTx, first: Event) -> Result<Vec<Event>, CcError> {
        let ct = self.res.cursor_type;
        let after = tx.events_after(
            ct,
            first.stamp.key(),
            |t| type_matches(&self.types, t),
            WATCH_EVENTS_PER_ANSWER,
        )?;
        let mut out = Vec::with_capacity(after.len() + 1);
        if self.matches(&first) {
            out.push(first);
        }
        out.extend(after);
        Ok(out)
    }

    fn after(&self, tx: &ReadTx, key: u64) -> Result<Vec<Event>, CcError> {
        Ok(tx.events_after(
            self.res.cursor_type,
            key,
            |t| type_matches(&self.types, t),
            WATCH_EVENTS_PER_ANSWER,
        )?)
    }
}

/// Where a cursor-mode watch goes on from.
enum Start {
    Answer(Data),
    /// Nothing yet after this key.
    After(u64),
}

/// Serves one `resource_watch`. `timeout` is the long poll's (`limits::WATCH_TIMEOUT_SECS`).
pub fn serve(
    ctx: &Ctx,
    store: &Store,
    input: &Input,
    timeout: Duration,
    gate: Gate,
) -> Result<Data, CcError> {
    let w = match gated(gate, || decode(input)) {
        Ok(w) => w,
        Err(e) => {
            // bk-cmdb's event server sleeps before answering a refused request.
            std::thread::sleep(Duration::from_millis(WATCH_ERROR_DELAY_MS));
            return Err(e);
        }
    };
    let now_sec = ctx.now_ms.div_euclid(1000);
    let ws = window_start(now_sec);
    let ct = w.res.cursor_type;
    if w.opts.cursor.is_empty() && w.opts.start_from == 0 {
        return gated(gate, || {
            store.read(|tx| Ok(w.latest(tx.last_event(ct)?, ws)))
        });
    }
    if w.opts.cursor.is_empty() {
        return gated(gate, || start_from(&w, store, now_sec, ws));
    }

    // Cursor mode: read the bell before the log, so a commit after the read wakes the wait.
    let bell = store.bell();
    let mut seen = bell.generation(ct);
    let start = gated(gate, || {
        store.read::<_, CcError>(|tx| {
            let key = if w.opts.cursor == no_event_cursor() {
                match tx.first_event_from(ct, ws)? {
                    Some(first) => {
                        let events = w.starting_with(tx, first)?;
                        if !events.is_empty() {
                            return Ok(Start::Answer(w.hits(&events)));
                        }
                        tx.last_event(ct)?.map_or(0, |e| e.stamp.key())
                    }
                    // An empty window: wait for what comes after the last event ever written.
                    None => tx.last_event(ct)?.map_or(0, |e| e.stamp.key()),
                }
            } else {
                let key = resume_key(&w, tx, ws)?;
                let events = w.after(tx, key)?;
                if !events.is_empty() {
                    return Ok(Start::Answer(w.hits(&events)));
                }
                key
            };
            Ok(Start::After(key))
        })
    })?;
    let key = match start {
        Start::Answer(d) => return Ok(d),
        Start::After(key) => key,
    };
    // bk-cmdb gives up once the clock's whole seconds have moved more than `timeout` past the
    // start's (measured from the request's time, on the monotonic clock).
    let began = Instant::now();
    let end_ms = (now_sec + timeout.as_secs() as i64 + 1) * 1000;
    let deadline = began + Duration::from_millis(end_ms.saturating_sub(ctx.now_ms).max(0) as u64);
    loop {
        let woken = bell.wait(ct, seen, deadline);
        seen = bell.generation(ct);
        let found = gated(gate, || store.read(|tx| w.after(tx, key)))?;
        if !found.is_empty() {
            return Ok(w.hits(&found));
        }
        if !woken {
            break;
        }
    }
    // Timed out: the client's cursor back if the window is empty, else the latest event's.
    let now_ms = ctx.now_ms + began.elapsed().as_millis() as i64;
    let ws = window_start(now_ms.div_euclid(1000));
    gated(gate, || {
        store.read(|tx| match tx.last_event(ct)? {
            Some(last) if last.stamp.key() >= ws => Ok(w.nothing(&w.cursor_of(&last))),
            _ => Ok(w.nothing(&w.opts.cursor)),
        })
    })
}

fn decode(input: &Input) -> Result<Watch, CcError> {
    let opts = watch::decode_options(&input.body)?;
    // The path names the resource; through the ESB it comes from the body.
    let name = match &input.path_id {
        Some(p) => p.clone(),
        None => crate::domain::decode::body_object(&input.body)
            .and_then(|o| crate::domain::decode::string(o, "bk_resource"))?,
    };
    let (res, types) = watch::validate(&name, &opts)?;
    Ok(Watch {
        res,
        types,
        fields: opts.fields.clone(),
        opts,
    })
}

/// Start-from mode (spec 1.6): the events after `bk_start_from`, at once.
fn start_from(w: &Watch, store: &Store, now_sec: i64, ws: u64) -> Result<Data, CcError> {
    let from = w.opts.start_from;
    let age = now_sec - from;
    if !(0..=i64::from(crate::limits::EVENT_WINDOW_SECS)).contains(&age) {
        return Err(CcError::invalid("bk_start_from"));
    }
    let ct = w.res.cursor_type;
    store.read(|tx| {
        let Some(last) = tx.last_event(ct)?.filter(|e| e.stamp.key() >= ws) else {
            return Ok(w.nothing(&no_event_cursor()));
        };
        if i64::from(last.stamp.sec) <= from {
            return Ok(w.latest(Some(last), ws));
        }
        let after_from = Stamp {
            sec: (from + 1).clamp(0, i64::from(u32::MAX)) as u32,
            nano: 0,
        };
        let Some(first) = tx.first_event_from(ct, after_from.key().max(ws))? else {
            return Ok(w.nothing(&w.cursor_of(&last)));
        };
        let events = w.starting_with(tx, first)?;
        if events.is_empty() {
            return Ok(w.nothing(&w.cursor_of(&last)));
        }
        Ok(w.hits(&events))
    })
}

/// The key a cursor resumes after: its event in the window, or the resource's last event (the
/// watch token) however old; anything else is 1103007.
fn resume_key(w: &Watch, tx: &ReadTx, ws: u64) -> Result<u64, CcError> {
    let lost = || CcError::plain(code::EVENT_NODE_NOT_EXIST);
    let ct = w.res.cursor_type;
    let Some((t, stamp)) = watch::decode_cursor(&w.opts.cursor) else {
        return Err(lost());
    };
    if t != ct {
        return Err(lost());
    }
    let Some(e) = tx.event_at(ct, stamp)? else {
        return Err(lost());
    };
    if w.cursor_of(&e) != w.opts.cursor {
        return Err(lost());
    }
    let key = stamp.key();
    if key >= ws || tx.last_event(ct)?.is_some_and(|l| l.stamp.key() == key) {
        Ok(key)
    } else {
        Err(lost())
    }
}
