//! `resource_watch`'s pure rules (spec events-sync part 1): the resources and their cursor
//! numbers, bk-cmdb's cursor encoding, the request options and their validation, and the
//! `bk_fields` cut of a detail. No I/O and no clock: the handler (`api::watch`) brings the time
//! and the events.

use crate::domain::decode;
use crate::error::{CcError, code};
use serde_json::Value;

/// One watchable resource (bk-cmdb `cursorTypeIntMap`, spec 1.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resource {
    pub name: &'static str,
    /// The number written in its cursors.
    pub cursor_type: u8,
    /// `bk_fields` must not be empty (host, biz, set, module).
    pub needs_fields: bool,
    /// `bk_filter.bk_sub_resource` is allowed.
    pub sub_resource: bool,
}

const fn res(name: &'static str, cursor_type: u8) -> Resource {
    Resource {
        name,
        cursor_type,
        needs_fields: false,
        sub_resource: false,
    }
}

const fn with_fields(name: &'static str, cursor_type: u8) -> Resource {
    Resource {
        needs_fields: true,
        ..res(name, cursor_type)
    }
}

const fn with_sub(name: &'static str, cursor_type: u8) -> Resource {
    Resource {
        sub_resource: true,
        ..res(name, cursor_type)
    }
}

/// Every resource bk-cmdb serves events for.
pub const RESOURCES: &[Resource] = &[
    with_fields("host", 2),
    res("host_relation", 3),
    with_fields("biz", 4),
    with_fields("set", 5),
    with_fields("module", 6),
    with_sub("object_instance", 8),
    res("process", 9),
    res("process_instance_relation", 10),
    res("host_identifier", 11),
    with_sub("mainline_instance", 12),
    with_sub("inst_asst", 13),
    res("biz_set", 14),
    res("biz_set_relation", 15),
    res("plat", 16),
    res("kube_cluster", 17),
    res("kube_node", 18),
    res("kube_namespace", 19),
    with_sub("kube_workload", 20),
    res("kube_pod", 21),
    res("project", 22),
];

/// The resource named `name`, if bk-cmdb serves events for it.
pub fn resource(name: &str) -> Option<&'static Resource> {
    RESOURCES.iter().find(|r| r.name == name)
}

/// What a change did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Create,
    Update,
    Delete,
}

impl EventType {
    pub fn name(self) -> &'static str {
        match self {
            EventType::Create => "create",
            EventType::Update => "update",
            EventType::Delete => "delete",
        }
    }

    /// The change-stream operation a cursor names (`insert`, `update`, `delete`).
    pub fn oper(self) -> &'static str {
        match self {
            EventType::Create => "insert",
            EventType::Update => "update",
            EventType::Delete => "delete",
        }
    }

    pub fn from_code(c: u8) -> Option<EventType> {
        match c {
            0 => Some(EventType::Create),
            1 => Some(EventType::Update),
            2 => Some(EventType::Delete),
            _ => None,
        }
    }

    pub fn code(self) -> u8 {
        match self {
            EventType::Create => 0,
            EventType::Update => 1,
            EventType::Delete => 2,
        }
    }

    fn parse(s: &str) -> Option<EventType> {
        match s {
            "create" => Some(EventType::Create),
            "update" => Some(EventType::Update),
            "delete" => Some(EventType::Delete),
            _ => None,
        }
    }
}

/// The record id behind an event, as the 24 hex digits of a MongoDB `_id`: the cursor number in
/// the first byte, the id in the last eight (one oid per record, as bk-cmdb's documents have).
pub fn oid(cursor_type: u8, id: i64) -> String {
    format!("{cursor_type:02x}000000{:016x}", id as u64)
}

/// An event's place in the change log: bk-cmdb's oplog cluster time, seconds and the ordinal
/// of the change within that second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp {
    pub sec: u32,
    pub nano: u32,
}

impl Stamp {
    pub fn key(self) -> u64 {
        (u64::from(self.sec) << 32) | u64::from(self.nano)
    }
    pub fn from_key(k: u64) -> Stamp {
        Stamp {
            sec: (k >> 32) as u32,
            nano: k as u32,
        }
    }
}

/// bk-cmdb's cursor (`src/common/watch/cursor.go` `Cursor.Encode`): standard base64 of
/// `1\r<type>\r<oid>\r<oper>\r<sec>\r<nano>\r<uniqKey>`, the key empty for our resources.
pub fn encode_cursor(cursor_type: u8, oid: &str, oper: &str, stamp: Stamp) -> String {
    let raw = format!(
        "1\r{cursor_type}\r{oid}\r{oper}\r{}\r{}\r",
        stamp.sec, stamp.nano
    );
    base64(raw.as_bytes())
}

/// bk-cmdb's `NoEventCursor`: type 1, a fixed oid, oper `noEvent`, time 1/1.
pub fn no_event_cursor() -> String {
    encode_cursor(
        1,
        "5ea6d3f394c1f5d986e9bd86",
        "noEvent",
        Stamp { sec: 1, nano: 1 },
    )
}

/// The (type, stamp) a cursor names, if it has bk-cmdb's form; the caller still compares the
/// whole text with the event found there, as bk-cmdb looks cursors up as exact strings.
pub fn decode_cursor(cursor: &str) -> Option<(u8, Stamp)> {
    let raw = unbase64(cursor)?;
    let text = String::from_utf8(raw).ok()?;
    let fields: Vec<&str> = text.split('\r').collect();
    if fields.len() < 6 || fields[0] != "1" || fields[3].is_empty() {
        return None;
    }
    let cursor_type: u8 = fields[1].parse().ok()?;
    let sec: u32 = fields[4].parse().ok()?;
    let nano: u32 = fields[5].parse().ok()?;
    Some((cursor_type, Stamp { sec, nano }))
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Go's `base64.StdEncoding.DecodeString`: padded, no whitespace.
fn unbase64(text: &str) -> Option<Vec<u8>> {
    let t = text.as_bytes();
    if t.is_empty() || !t.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(t.len() / 4 * 3);
    for (i, quad) in t.chunks(4).enumerate() {
        let last = i == t.len() / 4 - 1;
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &quad[..4 - pad] {
            let v = B64.iter().position(|&x| x == c)? as u32;
            n = (n << 6) | v;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

/// A decoded `resource_watch` body (`WatchEventOptions`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Options {
    pub event_types: Vec<String>,
    pub fields: Vec<String>,
    pub start_from: i64,
    pub cursor: String,
    pub sub_resource: String,
}

/// Decodes the body as bk-cmdb's json-iterator does into `WatchEventOptions`: unknown keys
/// ignored, a wrong JSON type is 1199000.
pub fn decode_options(body: &Value) -> Result<Options, CcError> {
    let obj = decode::body_object(body)?;
    // Type-checked although the path decides the resource.
    decode::string(obj, "bk_resource")?;
    let sub_resource = match decode::object(obj, "bk_filter")? {
        Some(f) => decode::string(f, "bk_sub_resource")?,
        None => String::new(),
    };
    Ok(Options {
        event_types: decode::string_array(obj, "bk_event_types")?,
        fields: decode::string_array(obj, "bk_fields")?,
        start_from: decode::int(obj, "bk_start_from")?,
        cursor: decode::string(obj, "bk_cursor")?,
        sub_resource,
    })
}

/// The validation of spec 1.3, in bk-cmdb's order. Its failures are plain Go errors: 1199998
/// with the same English text in every language.
pub fn validate(name: &str, o: &Options) -> Result<(&'static Resource, Vec<EventType>), CcError> {
    let mut types = Vec::with_capacity(o.event_types.len());
    for t in &o.event_types {
        match EventType::parse(t) {
            Some(t) => types.push(t),
            None => return Err(CcError::raw(code::UNKNOWN, "unsupported event type")),
        }
    }
    let found = resource(name);
    if found.is_some_and(|r| r.needs_fields) && o.fields.is_empty() {
        return Err(CcError::raw(
            code::UNKNOWN,
            format!("{name} event must have fields"),
        ));
    }
    if o.start_from != 0 && !o.cursor.is_empty() {
        return Err(CcError::raw(
            code::UNKNOWN,
            "bk_start_from and bk_cursor can not use at the same time",
        ));
    }
    if !o.sub_resource.is_empty() && !found.is_some_and(|r| r.sub_resource) {
        return Err(CcError::raw(
            code::UNKNOWN,
            format!("{name} event cannot have sub resource"),
        ));
    }
    match found {
        Some(r) => Ok((r, types)),
        None => Err(CcError::raw(
            code::UNKNOWN,
            format!("unsupported cursor type {name}"),
        )),
    }
}

/// True if an event of type `t` passes the `bk_event_types` filter (empty = all).
pub fn type_matches(types: &[EventType], t: EventType) -> bool {
    types.is_empty() || types.contains(&t)
}

/// `CutJsonDataWithFields`: an object with exactly the requested keys, in request order,
/// duplicates kept, each value copied; a missing key is `null`; `a.b` descends. An empty list
/// keeps the whole detail. Returns JSON text.
pub fn cut_fields(detail: &Value, fields: &[String]) -> String {
    if fields.is_empty() {
        return serde_json::to_string(detail).unwrap_or_else(|_| "null".into());
    }
    let mut out = String::from("{");
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(f).unwrap_or_default());
        out.push(':');
        let mut v = Some(detail);
        for part in f.split('.') {
            v = v.and_then(|x| x.get(part));
        }
        out.push_str(&v.map_or("null".into(), |x| {
            serde_json::to_string(x).unwrap_or_else(|_| "null".into())
        }));
    }
    out.push('}');
    out
}

/// One element of `bk_events`, its detail already JSON text (`null` for none).
pub fn event_json(cursor: &str, resource: &str, event_type: &str, detail: &str) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    format!(
        "{{\"bk_cursor\":{},\"bk_resource\":{},\"bk_event_type\":{},\"bk_detail\":{detail}}}",
        q(cursor),
        q(resource),
        q(event_type)
    )
}

/// The `data` of an answer: `{"bk_watched":…,"bk_events":[…]}`.
pub fn answer_json(watched: bool, events: &[String]) -> String {
    format!(
        "{{\"bk_watched\":{watched},\"bk_events\":[{}]}}",
        events.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cursors_are_bk_cmdbs() {
        // cursor_test.go's example, which has uniqKey "1".
        let raw = "1\r2\r5eb385974770a118f4922abe\rinsert\r1588853652\r0\r1";
        assert_eq!(
            base64(raw.as_bytes()),
            "MQ0yDTVlYjM4NTk3NDc3MGExMThmNDkyMmFiZQ1pbnNlcnQNMTU4ODg1MzY1Mg0wDTE="
        );
        assert_eq!(
            no_event_cursor(),
            "MQ0xDTVlYTZkM2YzOTRjMWY1ZDk4NmU5YmQ4Ng1ub0V2ZW50DTENMQ0="
        );
        let s = Stamp {
            sec: 1_700_000_000,
            nano: 7,
        };
        let c = encode_cursor(9, &oid(9, 42), "insert", s);
        assert_eq!(decode_cursor(&c), Some((9, s)));
        assert_eq!(oid(9, 42), "09000000000000000000002a");
        assert_eq!(oid(9, 42).len(), 24);
        assert_eq!(Stamp::from_key(s.key()), s);
        for bad in ["", "abc", "MQ0y", "!!!!", "MQ==", "MQ0yDTVlYjM=x"] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
        for n in 1..40usize {
            let b: Vec<u8> = (0..n as u8).collect();
            assert_eq!(unbase64(&base64(&b)), Some(b));
        }
    }

    #[test]
    fn validation_order_and_texts() {
        let o = |v: Value| decode_options(&v).unwrap();
        let msg = |name: &str, v: Value| match validate(name, &o(v)) {
            Ok(_) => String::new(),
            Err(e) => e.render(crate::error::Lang::Zh),
        };
        assert_eq!(
            msg("host", json!({"bk_event_types": ["x"]})),
            "unsupported event type"
        );
        assert_eq!(msg("host", json!({})), "host event must have fields");
        assert_eq!(
            msg("process", json!({"bk_start_from": 1, "bk_cursor": "a"})),
            "bk_start_from and bk_cursor can not use at the same time"
        );
        assert_eq!(
            msg("process", json!({"bk_filter": {"bk_sub_resource": "x"}})),
            "process event cannot have sub resource"
        );
        assert_eq!(msg("foo", json!({})), "unsupported cursor type foo");
        assert_eq!(
            msg("foo", json!({"bk_filter": {"bk_sub_resource": "x"}})),
            "foo event cannot have sub resource"
        );
        assert_eq!(msg("process", json!({"bk_event_types": ["create"]})), "");
        assert!(decode_options(&json!({"bk_start_from": "1"})).is_err());
        assert!(decode_options(&json!({"bk_event_types": [1]})).is_err());
        assert!(decode_options(&json!([])).is_err());
        assert_eq!(decode_options(&Value::Null).unwrap(), Options::default());
    }

    #[test]
    fn fields_are_cut_in_request_order() {
        let d = json!({"a": 1, "b": {"c": "x"}, "z": null});
        let f = |v: &[&str]| cut_fields(&d, &v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            f(&["z", "a", "a", "b.c", "nope"]),
            r#"{"z":null,"a":1,"a":1,"b.c":"x","nope":null}"#
        );
        assert_eq!(f(&[]), r#"{"a":1,"b":{"c":"x"},"z":null}"#);
    }
}
