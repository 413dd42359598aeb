//! The one place that names the value encoding: bincode 2 behind a leading schema-version byte.
//!
//! Every stored value is `[SCHEMA_VERSION] ++ bincode(value)`. A value whose first byte is not a
//! version this binary knows is refused, never guessed at. Moving to another encoding is a change
//! of this file plus a migration that rewrites the values under a new version byte.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Map, Number, Value};
use std::collections::BTreeMap;

/// The schema version written in front of every value.
pub const SCHEMA_VERSION: u8 = 2;

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

/// Encodes a JSON object (a stored process map): the bytes of `encode(&BTreeMap<String, Dyn>)`,
/// written straight from the JSON values without building that map.
pub fn encode_map(map: &Map<String, Value>) -> Vec<u8> {
    encode(&AsDynMap(map))
}

/// A JSON object serialised as the `BTreeMap<String, Dyn>` it converts to (serde_json's `Map`
/// iterates in key order, as a `BTreeMap` does).
struct AsDynMap<'a>(&'a Map<String, Value>);

/// A JSON value serialised as the [`Dyn`] that [`Dyn::from_json`] makes of it.
struct AsDyn<'a>(&'a Value);

impl Serialize for AsDynMap<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, AsDyn(v))))
    }
}

impl Serialize for AsDyn<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The variant indexes and names of `Dyn`, in its declaration order.
        match self.0 {
            Value::Null => s.serialize_unit_variant("Dyn", 0, "Null"),
            Value::Bool(b) => s.serialize_newtype_variant("Dyn", 1, "Bool", b),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    s.serialize_newtype_variant("Dyn", 2, "I64", &i)
                } else if let Some(u) = n.as_u64() {
                    s.serialize_newtype_variant("Dyn", 3, "U64", &u)
                } else {
                    s.serialize_newtype_variant("Dyn", 4, "F64", &n.as_f64().unwrap_or(0.0))
                }
            }
            Value::String(t) => s.serialize_newtype_variant("Dyn", 5, "Str", t),
            Value::Array(a) => s.serialize_newtype_variant("Dyn", 6, "Arr", &AsDynSeq(a)),
            Value::Object(o) => s.serialize_newtype_variant("Dyn", 7, "Obj", &AsDynMap(o)),
        }
    }
}

struct AsDynSeq<'a>(&'a [Value]);

impl Serialize for AsDynSeq<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(AsDyn))
    }
}

/// Decodes a JSON object written by [`encode_map`].
pub fn decode_map(bytes: &[u8]) -> Result<Map<String, Value>, CodecError> {
    let m: BTreeMap<String, Dyn> = decode(bytes)?;
    Ok(m.into_iter().map(|(k, v)| (k, v.to_json())).collect())
}

/// A stored JSON value read in place, its strings borrowed from the encoded bytes: the same
/// variants as [`Dyn`], in the same order, so it decodes exactly what `Dyn` encodes.
#[derive(Deserialize)]
enum DynRef<'a> {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(&'a str),
    Arr(#[serde(borrow)] Vec<DynRef<'a>>),
    Obj(#[serde(borrow)] Entries<'a>),
}

/// The entries of an encoded map (a `BTreeMap`, so in key order), kept in that order.
struct Entries<'a>(Vec<(&'a str, DynRef<'a>)>);

impl<'de: 'a, 'a> Deserialize<'de> for Entries<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Entries<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Entries<'a>, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(entry) = map.next_entry::<&'de str, DynRef<'de>>()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

impl Serialize for DynRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            DynRef::Null => s.serialize_unit(),
            DynRef::Bool(b) => s.serialize_bool(*b),
            DynRef::I64(i) => s.serialize_i64(*i),
            DynRef::U64(u) => s.serialize_u64(*u),
            // serde_json writes a non-finite number as null, as `Dyn::to_json` turns it into.
            DynRef::F64(f) => s.serialize_f64(*f),
            DynRef::Str(t) => s.serialize_str(t),
            DynRef::Arr(a) => s.collect_seq(a),
            DynRef::Obj(e) => e.serialize(s),
        }
    }
}

impl Serialize for Entries<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// Appends the JSON text of a map written by [`encode_map`] to `out`, straight from its bytes:
/// the text serialising [`decode_map`]'s result gives, without building that map.
pub fn write_map_json(bytes: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
    let (&version, body) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version != SCHEMA_VERSION {
        return Err(CodecError::UnknownVersion(version));
    }
    let (entries, _): (Entries, usize) = bincode::serde::borrow_decode_from_slice(body, config())
        .map_err(|e| CodecError::Bincode(e.to_string()))?;
    serde_json::to_writer(out, &entries).map_err(|e| CodecError::Bincode(e.to_string()))
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
    fn encode_map_writes_the_bytes_of_the_dyn_map() {
        let v = json!({"a": null, "b": true, "c": -3, "d": 18446744073709551615u64, "e": 1.5,
                       "f": "x", "g": [1, {"h": "i", "a": [null, false, 2.5, "s"]}], "": {},
                       "z": {"y": {"x": []}}, "n": -9223372036854775808i64});
        let map = v.as_object().unwrap().clone();
        let via_dyn: BTreeMap<String, Dyn> = map
            .iter()
            .map(|(k, v)| (k.clone(), Dyn::from_json(v)))
            .collect();
        assert_eq!(encode_map(&map), encode(&via_dyn));
    }

    #[test]
    fn map_json_is_the_decoded_map_serialised() {
        let v = json!({"a": null, "b": true, "c": -3, "d": 18446744073709551615u64, "e": 1.5,
                       "f": "x\"<\u{2028}", "g": [1, {"h": "i", "a": []}], "": {}, "z": 1e300});
        let map = v.as_object().unwrap().clone();
        let bytes = encode_map(&map);
        let mut out = b"[".to_vec();
        write_map_json(&bytes, &mut out).unwrap();
        let want = format!(
            "[{}",
            serde_json::to_string(&decode_map(&bytes).unwrap()).unwrap()
        );
        assert_eq!(String::from_utf8(out).unwrap(), want);
        let mut bad = bytes.clone();
        bad[0] = 9;
        assert!(matches!(
            write_map_json(&bad, &mut Vec::new()),
            Err(CodecError::UnknownVersion(9))
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
    }
}
