//! The one place that names the value encoding: bincode 2 behind a leading schema-version byte.
//!
//! Every stored value is `[SCHEMA_VERSION] ++ bincode(value)`. A value whose first byte is not a
//! version this binary knows is refused, never guessed at. Moving to another encoding is a change
//! of this file plus a migration that rewrites the values under a new version byte.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Map, Number, Value};
use std::collections::BTreeMap;

/// The schema version written in front of every value. Version 2 stores processes in the
/// compact encoding (`compact.rs`); the other records are as in version 1.
pub const SCHEMA_VERSION: u8 = 2;

/// The previous version, which a store is migrated from when it is opened (`migrate.rs`).
pub const V1: u8 = 1;

/// Why a stored value could not be read back.
#[derive(Debug)]
pub enum CodecError {
    UnknownVersion(u8),
    Empty,
    Bincode(String),
}

impl std::fmt::Display for CodecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CodecError::UnknownVersion(v) => write!(
                f,
                "stored value has schema version {v}, this binary knows only {SCHEMA_VERSION}"
            ),
            CodecError::Empty => write!(f, "stored value is empty"),
            CodecError::Bincode(e) => write!(f, "stored value does not decode: {e}"),
        }
    }
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard()
}

/// Encodes a record.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![SCHEMA_VERSION];
    // Encoding into a Vec cannot fail for our record types (no maps with non-string keys,
    // no unsized sequences); a failure here is a programming error.
    let body = bincode::serde::encode_to_vec(value, config()).expect("record types always encode");
    out.extend_from_slice(&body);
    out
}

/// `v` as [`encode`] writes an `i64` field: the buffer and how much of it is used.
fn i64_bytes(v: i64) -> ([u8; 16], usize) {
    let mut buf = [0u8; 16];
    let n = bincode::encode_into_slice(v, &mut buf, config()).expect("an i64 fits 16 bytes");
    (buf, n)
}

/// The length of `v` as [`encode`] writes an `i64` field.
pub fn i64_len(v: i64) -> usize {
    i64_bytes(v).1
}

/// Appends `bytes`, an encoded record with an `i64` field of 0 (one byte) at offset `at`, with
/// `v` in that field to `out`: the record encoded with `v` there, without encoding it again.
pub fn splice_i64_into(bytes: &[u8], at: usize, v: i64, out: &mut Vec<u8>) {
    let (buf, n) = i64_bytes(v);
    out.extend_from_slice(&bytes[..at]);
    out.extend_from_slice(&buf[..n]);
    out.extend_from_slice(&bytes[at + 1..]);
}

/// Decodes a record written by [`encode`].
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (&version, body) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version != SCHEMA_VERSION {
        return Err(CodecError::UnknownVersion(version));
    }
    let (value, _) = bincode::serde::decode_from_slice(body, config())
        .map_err(|e| CodecError::Bincode(e.to_string()))?;
    Ok(value)
}

/// A JSON value in a form bincode can carry (serde_json's `Value` needs a self-describing format).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Dyn {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(String),
    Arr(Vec<Dyn>),
    Obj(BTreeMap<String, Dyn>),
}

impl Dyn {
    pub fn from_json(v: &Value) -> Dyn {
        match v {
            Value::Null => Dyn::Null,
            Value::Bool(b) => Dyn::Bool(*b),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Dyn::I64(i)
                } else if let Some(u) = n.as_u64() {
                    Dyn::U64(u)
                } else {
                    Dyn::F64(n.as_f64().unwrap_or(0.0))
                }
            }
            Value::String(s) => Dyn::Str(s.clone()),
            Value::Array(a) => Dyn::Arr(a.iter().map(Dyn::from_json).collect()),
            Value::Object(o) => Dyn::Obj(
                o.iter()
                    .map(|(k, v)| (k.clone(), Dyn::from_json(v)))
                    .collect(),
            ),
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            Dyn::Null => Value::Null,
            Dyn::Bool(b) => Value::Bool(*b),
            Dyn::I64(i) => Value::Number((*i).into()),
            Dyn::U64(u) => Value::Number((*u).into()),
            Dyn::F64(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Dyn::Str(s) => Value::String(s.clone()),
            Dyn::Arr(a) => Value::Array(a.iter().map(Dyn::to_json).collect()),
            Dyn::Obj(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
        }
    }
}

/// Encodes a stored process map (`compact.rs`).
pub fn encode_map(map: &Map<String, Value>) -> Vec<u8> {
    super::compact::encode(SCHEMA_VERSION, map)
}

/// Encodes a stored process map whose id is not known yet, from its entries in key order (see
/// `compact::Split`).
pub fn encode_entries_split<'a>(
    entries: impl Iterator<Item = (&'a str, &'a Value)>,
) -> super::compact::Split {
    super::compact::encode_split(SCHEMA_VERSION, entries)
}

/// Decodes a stored process map written by [`encode_map`].
pub fn decode_map(bytes: &[u8]) -> Result<Map<String, Value>, CodecError> {
    super::compact::decode(body(bytes)?)
}

/// Appends the JSON text of a process written by [`encode_map`] to `out`, straight from its
/// bytes: the text serialising [`decode_map`]'s result gives, without building that map.
pub fn write_map_json(bytes: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
    super::compact::write_json(body(bytes)?, out)
}

/// The bytes after the version byte, which must be the current version.
fn body(bytes: &[u8]) -> Result<&[u8], CodecError> {
    let (&version, body) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version != SCHEMA_VERSION {
        return Err(CodecError::UnknownVersion(version));
    }
    Ok(body)
}

/// Decodes a process map of a version-1 store: `V1 ++ bincode(BTreeMap<String, Dyn>)`.
pub fn decode_map_v1(bytes: &[u8]) -> Result<Map<String, Value>, CodecError> {
    let (&version, body) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version != V1 {
        return Err(CodecError::UnknownVersion(version));
    }
    let (m, _): (BTreeMap<String, Dyn>, usize) = bincode::serde::decode_from_slice(body, config())
        .map_err(|e| CodecError::Bincode(e.to_string()))?;
    Ok(m.into_iter().map(|(k, v)| (k, v.to_json())).collect())
}

/// A record of a version-1 store in version 2: the records other than processes keep their
/// bytes and take the new version byte.
pub fn struct_v1_to_v2(bytes: &[u8]) -> Result<Vec<u8>, CodecError> {
    let (&version, body) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version != V1 {
        return Err(CodecError::UnknownVersion(version));
    }
    let mut out = Vec::with_capacity(bytes.len());
    out.push(SCHEMA_VERSION);
    out.extend_from_slice(body);
    Ok(out)
}

/// serde helpers for a JSON value stored inside a record (process-template properties).
pub mod json_value {
    use super::Dyn;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::Value;

    pub fn serialize<S: Serializer>(v: &Value, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            v.serialize(s)
        } else {
            Dyn::from_json(v).serialize(s)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        if d.is_human_readable() {
            Value::deserialize(d)
        } else {
            Ok(Dyn::deserialize(d)?.to_json())
        }
    }
}

/// serde helpers for a time: milliseconds in the store, RFC 3339 text in JSON.
pub mod time_ms {
    use crate::clock;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&clock::format_ms(*ms))
        } else {
            s.serialize_i64(*ms)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        if d.is_human_readable() {
            let text = String::deserialize(d)?;
            clock::parse_ms(&text)
                .ok_or_else(|| D::Error::custom(format!("not an RFC 3339 time: {text:?}")))
        } else {
            i64::deserialize(d)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn map_round_trip_keeps_types() {
        let v = json!({"a": null, "b": true, "c": -3, "d": 18446744073709551615u64, "e": 1.5,
                       "f": "x", "g": [1, {"h": "i"}]});
        let map = v.as_object().unwrap().clone();
        assert_eq!(decode_map(&encode_map(&map)).unwrap(), map);
    }

    #[test]
    fn a_version_1_map_decodes() {
        let v = json!({"a": null, "b": true, "c": -3, "d": 18446744073709551615u64, "e": 1.5,
                       "f": "x", "g": [1, {"h": "i", "a": [null, false, 2.5, "s"]}], "": {}});
        let map = v.as_object().unwrap().clone();
        let via_dyn: BTreeMap<String, Dyn> = map
            .iter()
            .map(|(k, v)| (k.clone(), Dyn::from_json(v)))
            .collect();
        let mut v1 = vec![V1];
        v1.extend(bincode::serde::encode_to_vec(&via_dyn, config()).unwrap());
        assert_eq!(decode_map_v1(&v1).unwrap(), map);
        assert!(matches!(
            decode_map(&v1),
            Err(CodecError::UnknownVersion(1))
        ));
    }

    #[test]
    fn unknown_version_is_refused() {
        let mut bytes = encode(&42i64);
        bytes[0] = 9;
        assert!(matches!(
            decode::<i64>(&bytes),
            Err(CodecError::UnknownVersion(9))
        ));
        assert!(matches!(decode::<i64>(&[]), Err(CodecError::Empty)));
        let mut map = encode_map(&Map::new());
        map[0] = 9;
        assert!(matches!(
            write_map_json(&map, &mut Vec::new()),
            Err(CodecError::UnknownVersion(9))
        ));
    }
}
