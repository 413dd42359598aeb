//! The compact encoding of a stored process (schema version 2): its known attributes by
//! position, the others by name, and times as milliseconds.
//!
//! ```text
//! [version] [varint: which of PROCESS_KEYS are present, bit i for key i]
//!           [value of each present known key, in PROCESS_KEYS order]
//!           [varint: number of other keys] [(varint length, key bytes, value) of each, in key order]
//! value:    0 null | 1 false | 2 true | 3 zigzag varint i64 | 4 varint u64 (above i64::MAX)
//!           | 5 f64 (8 bytes, little-endian) | 6 varint length + UTF-8 | 7 zigzag varint ms
//!           (a string that is exactly `clock::format_ms` of those ms) | 8 varint count + values
//!           | 9 varint count + (varint length, key bytes, value) of each entry, in key order
//! ```
//!
//! [`PROCESS_KEYS`] is part of the file format: it may only change with a new schema version.
//! It is sorted, so the known keys and the others merge into the key order serde_json's `Map`
//! has, and a stored process is written as JSON straight from its bytes ([`write_json`]).

use super::codec::CodecError;
use crate::clock;
use serde_json::{Map, Number, Value};

/// The attributes of a stored process, in byte order of their names: the stored column of
/// the process field table (`domain::process_fields`).
pub const PROCESS_KEYS: [&str; 28] = crate::domain::process_fields::STORED;

const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const INT: u8 = 3;
const UINT: u8 = 4;
const FLOAT: u8 = 5;
const STR: u8 = 6;
const TIME: u8 = 7;
const ARR: u8 = 8;
const OBJ: u8 = 9;

/// Which of [`PROCESS_KEYS`] each key of a map is, the keys taken in the map's (sorted) order:
/// one merge pass over both lists, each key compared with the few known keys between it and
/// the one before.
struct Known {
    at: usize,
}

impl Known {
    fn new() -> Known {
        Known { at: 0 }
    }

    /// The position of `key` (greater than every key asked before) in [`PROCESS_KEYS`].
    fn next(&mut self, key: &str) -> Option<usize> {
        while let Some(k) = PROCESS_KEYS.get(self.at) {
            match (*k).cmp(key) {
                std::cmp::Ordering::Less => self.at += 1,
                std::cmp::Ordering::Equal => {
                    self.at += 1;
                    return Some(self.at - 1);
                }
                std::cmp::Ordering::Greater => return None,
            }
        }
        None
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// The milliseconds a string stands for, if it is exactly how `clock` writes them.
fn as_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if !(20..=24).contains(&b.len()) || b[b.len() - 1] != b'Z' || b[4] != b'-' {
        return None;
    }
    // A process carries the same time several times (created, updated, ...), and a request's
    // processes all carry it: the last one recognised is kept for the next.
    thread_local! {
        static LAST: std::cell::RefCell<(String, i64)> = const {
            std::cell::RefCell::new((String::new(), 0))
        };
    }
    if let Some(ms) = LAST.with_borrow(|(text, ms)| (text == s).then_some(*ms)) {
        return Some(ms);
    }
    let ms = clock::parse_ms(s)?;
    let exact = clock::format_ms(ms) == s;
    if exact {
        LAST.with_borrow_mut(|last| {
            last.0.clear();
            last.0.push_str(s);
            last.1 = ms;
        });
    }
    exact.then_some(ms)
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.push(NULL),
        Value::Bool(false) => out.push(FALSE),
        Value::Bool(true) => out.push(TRUE),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push(INT);
                put_varint(out, zigzag(i));
            } else if let Some(u) = n.as_u64() {
                out.push(UINT);
                put_varint(out, u);
            } else {
                out.push(FLOAT);
                out.extend_from_slice(&n.as_f64().unwrap_or(0.0).to_le_bytes());
            }
        }
        Value::String(s) => match as_time(s) {
            Some(ms) => {
                out.push(TIME);
                put_varint(out, zigzag(ms));
            }
            None => {
                out.push(STR);
                put_str(out, s);
            }
        },
        Value::Array(a) => {
            out.push(ARR);
            put_varint(out, a.len() as u64);
            for v in a {
                put_value(out, v);
            }
        }
        Value::Object(o) => {
            out.push(OBJ);
            put_varint(out, o.len() as u64);
            for (k, v) in o {
                put_str(out, k);
                put_value(out, v);
            }
        }
    }
}

/// Encodes a process map behind `version`.
pub fn encode(version: u8, map: &Map<String, Value>) -> Vec<u8> {
    let (mut out, tail) = encode_parts(version, map.iter().map(|(k, v)| (k.as_str(), v)), None);
    out.extend_from_slice(&tail);
    out
}

/// The index of `bk_process_id` in [`PROCESS_KEYS`].
const ID_INDEX: usize = 6;

/// A process encoded without its id, before the id is known (on the request's thread): the
/// bytes before and after the id's value. [`Split::append_with_id`] gives exactly what
/// [`encode`] gives for the map with that id.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    head: Vec<u8>,
    tail: Vec<u8>,
}

/// Encodes the map whose entries, in key order, are `entries` behind `version`, with its
/// `bk_process_id` left out, to be filled in later.
pub fn encode_split<'a>(version: u8, entries: impl Iterator<Item = (&'a str, &'a Value)>) -> Split {
    let (head, tail) = encode_parts(version, entries, Some(ID_INDEX));
    Split { head, tail }
}

/// The encoding of the map whose entries, in key order, are `entries`, cut where the value of
/// known key `cut` goes (that value left out, its presence bit set): the bytes before and
/// after it. Without a cut the tail holds only the other keys.
fn encode_parts<'a>(
    version: u8,
    entries: impl Iterator<Item = (&'a str, &'a Value)>,
    cut: Option<usize>,
) -> (Vec<u8>, Vec<u8>) {
    let mut present = cut.map_or(0, |c| 1u64 << c);
    let mut head = Vec::with_capacity(128);
    let mut tail = Vec::with_capacity(256);
    // The map's keys are sorted as `PROCESS_KEYS` is: one pass meets the known ones in order;
    // the others are noted to follow them.
    let mut others = Vec::new();
    let mut known = Known::new();
    for (k, v) in entries {
        match known.next(k) {
            Some(i) if Some(i) == cut => {}
            Some(i) => {
                present |= 1 << i;
                let after_cut = cut.is_some_and(|c| i > c);
                put_value(if after_cut { &mut tail } else { &mut head }, v);
            }
            None => others.push((k, v)),
        }
    }
    let mut out = Vec::with_capacity(head.len() + 10);
    out.push(version);
    put_varint(&mut out, present);
    out.extend_from_slice(&head);
    put_varint(&mut tail, others.len() as u64);
    for (k, v) in others {
        put_str(&mut tail, k);
        put_value(&mut tail, v);
    }
    (out, tail)
}

impl Split {
    /// At most the length of the encoding, whatever the id.
    pub fn max_len(&self) -> usize {
        self.head.len() + self.tail.len() + 11
    }

    /// Appends the encoded process with `bk_process_id` = `pid` to `out`.
    pub fn append_with_id(&self, pid: i64, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.head);
        out.push(INT);
        put_varint(out, zigzag(pid));
        out.extend_from_slice(&self.tail);
    }
}

/// A reader over encoded bytes.
struct Reader<'a> {
    b: &'a [u8],
}

fn bad(what: &str) -> CodecError {
    CodecError::Bincode(format!("compact process: {what}"))
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, CodecError> {
        let (&first, rest) = self.b.split_first().ok_or_else(|| bad("truncated"))?;
        self.b = rest;
        Ok(first)
    }

    fn varint(&mut self) -> Result<u64, CodecError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(bad("varint too long"))
    }

    fn count(&mut self) -> Result<usize, CodecError> {
        let n = self.varint()?;
        // Every element takes at least one byte: a count beyond what is left is damage.
        if n > self.b.len() as u64 {
            return Err(bad("count beyond the value"));
        }
        Ok(n as usize)
    }

    fn str(&mut self) -> Result<&'a str, CodecError> {
        let n = self.count()?;
        let (s, rest) = self.b.split_at(n);
        self.b = rest;
        std::str::from_utf8(s).map_err(|_| bad("text is not UTF-8"))
    }

    fn value(&mut self, depth: usize) -> Result<Value, CodecError> {
        if depth > MAX_DEPTH {
            return Err(bad("nested too deep"));
        }
        Ok(match self.byte()? {
            NULL => Value::Null,
            FALSE => Value::Bool(false),
            TRUE => Value::Bool(true),
            INT => Value::from(unzigzag(self.varint()?)),
            UINT => Value::from(self.varint()?),
            FLOAT => {
                if self.b.len() < 8 {
                    return Err(bad("truncated"));
                }
                let (f, rest) = self.b.split_at(8);
                self.b = rest;
                let f = f64::from_le_bytes(f.try_into().map_err(|_| bad("truncated"))?);
                Number::from_f64(f).map_or(Value::Null, Value::Number)
            }
            STR => Value::String(self.str()?.to_string()),
            TIME => Value::String(clock::format_ms(unzigzag(self.varint()?))),
            ARR => {
                let n = self.count()?;
                let mut a = Vec::with_capacity(n);
                for _ in 0..n {
                    a.push(self.value(depth + 1)?);
                }
                Value::Array(a)
            }
            OBJ => {
                let n = self.count()?;
                let mut o = Map::new();
                for _ in 0..n {
                    let k = self.str()?.to_string();
                    o.insert(k, self.value(depth + 1)?);
                }
                Value::Object(o)
            }
            _ => return Err(bad("unknown value tag")),
        })
    }

    /// Skips one value; returns its bytes.
    fn skip(&mut self, depth: usize) -> Result<&'a [u8], CodecError> {
        if depth > MAX_DEPTH {
            return Err(bad("nested too deep"));
        }
        let start = self.b;
        match self.byte()? {
            NULL | FALSE | TRUE => {}
            INT | UINT | TIME => {
                self.varint()?;
            }
            FLOAT => {
                if self.b.len() < 8 {
                    return Err(bad("truncated"));
                }
                self.b = &self.b[8..];
            }
            STR => {
                self.str()?;
            }
            ARR => {
                for _ in 0..self.count()? {
                    self.skip(depth + 1)?;
                }
            }
            OBJ => {
                for _ in 0..self.count()? {
                    self.str()?;
                    self.skip(depth + 1)?;
                }
            }
            _ => return Err(bad("unknown value tag")),
        }
        Ok(&start[..start.len() - self.b.len()])
    }

    /// The top-level entries (key, value bytes), in key order.
    fn entries(&mut self) -> Result<Vec<(&'a str, &'a [u8])>, CodecError> {
        let present = self.varint()?;
        if present >> PROCESS_KEYS.len() != 0 {
            return Err(bad("unknown known-key bit"));
        }
        let mut out = Vec::with_capacity(present.count_ones() as usize + 2);
        for (i, key) in PROCESS_KEYS.iter().enumerate() {
            if present & (1 << i) != 0 {
                out.push((*key, self.skip(0)?));
            }
        }
        for _ in 0..self.count()? {
            let k = self.str()?;
            out.push((k, self.skip(0)?));
        }
        if !self.b.is_empty() {
            return Err(bad("trailing bytes"));
        }
        out.sort_by(|a, b| a.0.cmp(b.0));
        Ok(out)
    }
}

/// Nesting deeper than this in a stored value is damage (the HTTP edge refuses deeper JSON).
const MAX_DEPTH: usize = crate::limits::MAX_JSON_DEPTH;

/// Decodes a process map written by [`encode`] (the version byte already checked and removed).
pub fn decode(body: &[u8]) -> Result<Map<String, Value>, CodecError> {
    let mut r = Reader { b: body };
    let mut map = Map::new();
    for (k, bytes) in r.entries()? {
        map.insert(k.to_string(), Reader { b: bytes }.value(0)?);
    }
    Ok(map)
}

/// Appends the JSON text of a process written by [`encode`] (without its version byte) to
/// `out`: what serialising [`decode`]'s map gives, without building it.
pub fn write_json(body: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
    let entries = Reader { b: body }.entries()?;
    out.push(b'{');
    for (i, (k, bytes)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_str(out, k)?;
        out.push(b':');
        write_value(&mut Reader { b: bytes }, out, 0)?;
    }
    out.push(b'}');
    Ok(())
}

fn json_str(out: &mut Vec<u8>, s: &str) -> Result<(), CodecError> {
    serde_json::to_writer(out, s).map_err(|e| bad(&e.to_string()))
}

fn write_value(r: &mut Reader, out: &mut Vec<u8>, depth: usize) -> Result<(), CodecError> {
    if depth > MAX_DEPTH {
        return Err(bad("nested too deep"));
    }
    match r.byte()? {
        NULL => out.extend_from_slice(b"null"),
        FALSE => out.extend_from_slice(b"false"),
        TRUE => out.extend_from_slice(b"true"),
        INT => json(out, &unzigzag(r.varint()?))?,
        UINT => json(out, &r.varint()?)?,
        FLOAT => {
            if r.b.len() < 8 {
                return Err(bad("truncated"));
            }
            let (f, rest) = r.b.split_at(8);
            r.b = rest;
            let f = f64::from_le_bytes(f.try_into().map_err(|_| bad("truncated"))?);
            // serde_json writes a non-finite number as null, as `decode` turns it into.
            json(out, &f)?;
        }
        STR => json_str(out, r.str()?)?,
        TIME => json_str(out, &clock::format_ms(unzigzag(r.varint()?)))?,
        ARR => {
            out.push(b'[');
            for i in 0..r.count()? {
                if i > 0 {
                    out.push(b',');
                }
                write_value(r, out, depth + 1)?;
            }
            out.push(b']');
        }
        OBJ => {
            out.push(b'{');
            for i in 0..r.count()? {
                if i > 0 {
                    out.push(b',');
                }
                json_str(out, r.str()?)?;
                out.push(b':');
                write_value(r, out, depth + 1)?;
            }
            out.push(b'}');
        }
        _ => return Err(bad("unknown value tag")),
    }
    Ok(())
}

/// A number as serde_json writes it.
fn json<T: serde::Serialize>(out: &mut Vec<u8>, v: &T) -> Result<(), CodecError> {
    serde_json::to_writer(out, v).map_err(|e| bad(&e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn known_keys_are_sorted_and_unique() {
        assert!(PROCESS_KEYS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn round_trip_and_json_from_bytes() {
        let v = json!({"a": null, "b": true, "c": -3, "d": 18446744073709551615u64, "e": 1.5,
                       "f": "x\"<\u{2028}", "g": [1, {"h": "i", "a": []}], "": {}, "z": 1e300,
                       "bk_process_id": 42, "create_time": "2026-01-02T03:04:05.678Z",
                       "last_time": "2026-01-02T03:04:05.670Z", "bk_created_at": "2026-01-02T03:04:05Z",
                       "bk_updated_at": "2026-01-02T03:04:05.6Z", "user": null,
                       "bind_info": [{"enable": false, "ip": "1.2.3.4", "port": "80"}],
                       "n": -9223372036854775808i64, "priority": 0.1});
        let map = v.as_object().unwrap().clone();
        let bytes = encode(2, &map);
        assert_eq!(bytes[0], 2);
        assert_eq!(decode(&bytes[1..]).unwrap(), map);
        let mut out = Vec::new();
        write_json(&bytes[1..], &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            serde_json::to_string(&map).unwrap()
        );
    }

    #[test]
    fn a_split_encoding_with_its_id_is_the_encoding() {
        let v = json!({"bk_process_id": 0, "auto_start": false, "bk_biz_id": 3, "zz": [1], "A": 1, "bk_a": 2,
                       "user": "u", "work_path": null, "create_time": "2026-01-02T03:04:05Z"});
        let mut map = v.as_object().unwrap().clone();
        let split = encode_split(2, map.iter().map(|(k, v)| (k.as_str(), v)));
        for pid in [1, 127, 128, 1 << 40, i64::MAX] {
            map.insert("bk_process_id".into(), Value::from(pid));
            let mut with_id = Vec::new();
            split.append_with_id(pid, &mut with_id);
            assert_eq!(with_id, encode(2, &map), "pid {pid}");
        }
        assert_eq!(PROCESS_KEYS[ID_INDEX], "bk_process_id");
    }

    #[test]
    fn damage_is_refused_not_panicked_on() {
        let map = json!({"bk_process_id": 1, "x": [1, "two", {"k": 3.5}]});
        let bytes = encode(2, map.as_object().unwrap());
        for cut in 1..bytes.len() {
            assert!(decode(&bytes[1..cut]).is_err(), "cut at {cut}");
            assert!(write_json(&bytes[1..cut], &mut Vec::new()).is_err());
        }
        let mut flipped = bytes.clone();
        for i in 1..flipped.len() {
            flipped[i] ^= 0xff;
            let _ = decode(&flipped[1..]);
            let _ = write_json(&flipped[1..], &mut Vec::new());
            flipped[i] ^= 0xff;
        }
    }
}
