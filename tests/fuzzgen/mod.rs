//! A structure-aware generator of create_process_instance (and list) request bodies for the
//! randomized test `tests/it/fuzz_create.rs` and the cargo-fuzz target under `fuzz/`.
//!
//! Everything is driven by a [`Source`] of random numbers: a seeded xorshift generator in the
//! test (reproducible from the seed it prints), the fuzzer's input bytes in the cargo-fuzz target
//! (so libFuzzer's coverage guidance steers the structure).

use cmdb_lite::api::{self, Ctx, Input, Op};
use cmdb_lite::error::{self, CcError, Lang};
use cmdb_lite::http::{self, envelope};
use cmdb_lite::store::Store;
use cmdb_lite::store::records::Kind;
use serde_json::{Map, Number, Value, json};

/// Where choices come from.
pub trait Source {
    fn next_u64(&mut self) -> u64;

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// True with probability `num` / `den`.
    fn chance(&mut self, num: u32, den: u32) -> bool {
        self.below(den as usize) < num as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// xorshift64*: small, fast, reproducible.
pub struct XorShift(pub u64);

impl Source for XorShift {
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0.max(1);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Choices read from a byte string (a fuzzer's input); zeros once it is used up.
pub struct Bytes<'a> {
    pub data: &'a [u8],
    pub at: usize,
}

impl Source for Bytes<'_> {
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        for (i, slot) in b.iter_mut().enumerate().take(4) {
            *slot = self.data.get(self.at + i).copied().unwrap_or(0);
        }
        self.at += 4;
        u64::from_le_bytes(b)
    }
}

/// Every field of a process, as bk-cmdb names them (spec 2.2), plus server-owned ones.
pub const PROCESS_KEYS: &[&str] = &[
    "bk_process_name",
    "bk_func_name",
    "bk_start_param_regex",
    "work_path",
    "user",
    "start_cmd",
    "stop_cmd",
    "restart_cmd",
    "face_stop_cmd",
    "reload_cmd",
    "pid_file",
    "description",
    "proc_num",
    "priority",
    "timeout",
    "auto_start",
    "bk_start_check_secs",
    "bind_info",
    "bk_biz_id",
    "bk_process_id",
    "bk_supplier_account",
    "service_instance_id",
    "create_time",
    "last_time",
    "bk_created_at",
    "bk_created_by",
    "bk_updated_at",
    "bk_updated_by",
];

const STRINGS: &[&str] = &[
    "",
    " ",
    "nginx",
    "  padded  ",
    "\t\n",
    "名字",
    "emoji 🦀",
    "a\u{0}b",
    "\u{feff}",
    "\u{2028}",
    "<script>&amp;",
    "\"quoted\\",
    "%s %d %v %!",
    "0",
    "-1",
    "80",
    "1-65535",
    "true",
    "null",
    "1e3",
    "9223372036854775808",
    "127.0.0.1",
    "::1",
    "0.0.0.0",
    "255.255.255.255",
    "256.1.1.1",
    "1.2.3",
    "fe80::1%eth0",
    "::ffff:1.2.3.4",
    "2001:db8::",
    "-c conf",
    "^regex$(",
];

fn string<S: Source>(s: &mut S) -> String {
    match s.below(10) {
        0..=4 => s.pick(STRINGS).to_string(),
        5 => {
            // Around the length limits (256 singlechar, 2000 longchar), sometimes multi-byte.
            let len = *s.pick(&[255usize, 256, 257, 1999, 2000, 2001, 4096]);
            let unit = *s.pick(&["a", "é", "中", "🦀", " "]);
            let mut out = unit.repeat(len / unit.len().max(1));
            if s.chance(1, 2) {
                out = format!(" {out} ");
            }
            out
        }
        6 => {
            // Random code points (valid chars only: serde_json holds Rust strings).
            let n = s.below(12);
            (0..n)
                .map(|_| {
                    let c = match s.below(4) {
                        0 => s.below(0x80) as u32,
                        1 => s.below(0x800) as u32,
                        2 => s.below(0x1_0000) as u32,
                        _ => s.below(0x11_0000) as u32,
                    };
                    char::from_u32(c).unwrap_or('?')
                })
                .collect()
        }
        7 => format!("p{}", s.below(20)),
        8 => "x".repeat(s.below(64)),
        _ => {
            let a = s.pick(STRINGS).to_string();
            let b = s.pick(STRINGS).to_string();
            a + &b
        }
    }
}

fn number<S: Source>(s: &mut S) -> Value {
    match s.below(12) {
        0 => json!(0),
        1 => json!(-1),
        2 => json!(s.below(200) as i64),
        3 => json!(i64::MAX),
        4 => json!(i64::MIN),
        5 => json!(u64::MAX),
        6 => json!(1.5),
        7 => json!(1e300),
        8 => json!(-0.0),
        9 => json!(9007199254740993i64),
        10 => json!(*s.pick(&[7i64, 8, 30, 31, 11, 12, 20, 21, 5, 6, 40, 41, 999])),
        _ => Value::Number(Number::from_f64(s.below(100_000) as f64 / 7.0).unwrap()),
    }
}

/// Any JSON value, `depth` levels deep at most.
pub fn any<S: Source>(s: &mut S, depth: usize) -> Value {
    let top = if depth == 0 { 4 } else { 7 };
    match s.below(top) {
        0 => Value::Null,
        1 => Value::Bool(s.chance(1, 2)),
        2 => number(s),
        3 => Value::String(string(s)),
        4 | 5 => {
            let n = s.below(4);
            Value::Array((0..n).map(|_| any(s, depth - 1)).collect())
        }
        _ => {
            let n = s.below(4);
            let mut m = Map::new();
            for _ in 0..n {
                let k = if s.chance(1, 2) {
                    s.pick(PROCESS_KEYS).to_string()
                } else {
                    string(s)
                };
                m.insert(k, any(s, depth - 1));
            }
            Value::Object(m)
        }
    }
}

/// A key with its case sometimes changed (bk-cmdb decodes typed fields case-insensitively).
fn key<S: Source>(s: &mut S, k: &str) -> String {
    match s.below(12) {
        0 => k.to_uppercase(),
        1 => {
            let mut c = k.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        }
        _ => k.to_string(),
    }
}

/// A mostly plausible value for `k`, sometimes anything; when `calm`, always of the right type.
fn value_for<S: Source>(s: &mut S, k: &str, calm: bool) -> Value {
    if !calm && s.chance(1, 10) {
        return any(s, 3);
    }
    match k {
        // Mostly fresh names, so that creations get past the uniqueness rules and grow the store.
        "bk_process_name" | "bk_func_name" if s.chance(3, 5) => {
            Value::String(format!("n{:x}", s.next_u64() & 0xff_ffff))
        }
        "bind_info" => bind_info(s, calm),
        "proc_num"
        | "priority"
        | "timeout"
        | "bk_start_check_secs"
        | "bk_biz_id"
        | "bk_process_id"
        | "service_instance_id" => {
            if calm {
                json!(s.below(100_001) as i64 - 1)
            } else if s.chance(1, 5) {
                Value::String(number(s).to_string())
            } else {
                number(s)
            }
        }
        "auto_start" if calm => Value::Bool(s.chance(1, 2)),
        "auto_start" => match s.below(4) {
            0 => json!("true"),
            1 => Value::Null,
            _ => Value::Bool(s.chance(1, 2)),
        },
        _ => Value::String(string(s)),
    }
}

fn bind_info<S: Source>(s: &mut S, calm: bool) -> Value {
    if !calm && s.chance(1, 8) {
        return any(s, 2);
    }
    let n = s.below(4);
    let rows = (0..n)
        .map(|_| {
            let mut row = Map::new();
            for (k, choices) in [
                (
                    "ip",
                    &["127.0.0.1", "0.0.0.0", "::1", "::", "1.2.3", "x"][..],
                ),
                (
                    "port",
                    &["80", "1-65535", "0", "65536", "90-80", "8080"][..],
                ),
                ("protocol", &["1", "2", "3", "TCP", ""][..]),
            ] {
                if s.chance(7, 8) {
                    let v = if calm || s.chance(4, 5) {
                        json!(s.pick(choices))
                    } else {
                        value_for(s, k, calm)
                    };
                    row.insert(key(s, k), v);
                }
            }
            if s.chance(7, 8) {
                let v = if calm || s.chance(4, 5) {
                    Value::Bool(s.chance(1, 2))
                } else {
                    any(s, 1)
                };
                row.insert("enable".into(), v);
            }
            if !calm && s.chance(1, 6) {
                row.insert(string(s), any(s, 1));
            }
            Value::Object(row)
        })
        .collect();
    Value::Array(rows)
}

fn process_info<S: Source>(s: &mut S, calm: bool) -> Value {
    let mut m = Map::new();
    // Usually a name and a function name, so that deeper rules are reached.
    if s.chance(5, 6) {
        m.insert(
            "bk_process_name".into(),
            value_for(s, "bk_process_name", calm),
        );
    }
    if s.chance(5, 6) {
        m.insert("bk_func_name".into(), value_for(s, "bk_func_name", calm));
    }
    for _ in 0..s.below(5) {
        let k = s.pick(PROCESS_KEYS).to_string();
        let v = value_for(s, &k, calm);
        m.insert(key(s, &k), v);
    }
    if !calm && s.chance(1, 12) {
        m.insert(string(s), any(s, 2));
    }
    Value::Object(m)
}

/// A create_process_instance body: in two cases out of three "calm" (every value of the right
/// type, so that the later rules are reached), else anything may be off.
pub fn create_body<S: Source>(s: &mut S) -> Value {
    if s.chance(1, 40) {
        return any(s, 4);
    }
    let calm = s.chance(2, 3);
    let mut top = Map::new();
    if s.chance(9, 10) {
        let v = if calm && s.chance(5, 6) {
            json!(7)
        } else if s.chance(4, 5) {
            json!(s.pick(&[7, 7, 7, 8, 0, 999]))
        } else {
            value_for(s, "bk_biz_id", calm)
        };
        top.insert(key(s, "bk_biz_id"), v);
    }
    if s.chance(9, 10) {
        let v = if calm && s.chance(5, 6) {
            json!(30)
        } else if s.chance(4, 5) {
            json!(s.pick(&[30, 30, 30, 31, 0, 999]))
        } else {
            value_for(s, "service_instance_id", calm)
        };
        top.insert(key(s, "service_instance_id"), v);
    }
    if s.chance(19, 20) {
        let n = match s.below(20) {
            0 => 0,
            1 => 100,
            2 => 101,
            _ => 1 + s.below(4),
        };
        let items = (0..n)
            .map(|_| {
                if !calm && s.chance(1, 15) {
                    return any(s, 2);
                }
                let mut item = Map::new();
                if calm || s.chance(15, 16) {
                    item.insert("process_info".into(), process_info(s, calm));
                }
                if !calm && s.chance(1, 8) {
                    item.insert(
                        "process_template_id".into(),
                        value_for(s, "bk_process_id", calm),
                    );
                }
                Value::Object(item)
            })
            .collect();
        top.insert("processes".into(), Value::Array(items));
    }
    for k in ["bk_username", "bk_app_code", "bk_supplier_account"] {
        if !calm && s.chance(1, 10) {
            top.insert(k.into(), any(s, 1));
        }
    }
    Value::Object(top)
}

/// A list_process_instance body.
pub fn list_body<S: Source>(s: &mut S) -> Value {
    let mut top = Map::new();
    for (k, usual) in [("bk_biz_id", 7), ("service_instance_id", 30)] {
        if s.chance(9, 10) {
            let v = if s.chance(3, 4) {
                json!(usual)
            } else {
                value_for(s, k, false)
            };
            top.insert(key(s, k), v);
        }
    }
    if s.chance(1, 5) {
        top.insert(string(s), any(s, 2));
    }
    Value::Object(top)
}

const JUNK: &[&[u8]] = &[b"\xff", b"\xc3", b"\x00", b",", b"}", b"[", b"\"", b"1e999"];

/// The bytes sent: usually the body's JSON, sometimes damaged (truncated, a byte changed or
/// inserted, invalid UTF-8, deep nesting).
pub fn damage<S: Source>(s: &mut S, body: &Value) -> Vec<u8> {
    let mut b = serde_json::to_vec(body).unwrap();
    match s.below(24) {
        0 if !b.is_empty() => {
            let at = s.below(b.len());
            b.truncate(at);
        }
        1 if !b.is_empty() => {
            let at = s.below(b.len());
            b[at] = s.below(256) as u8;
        }
        2 => {
            let at = s.below(b.len() + 1);
            let junk = JUNK[s.below(JUNK.len())];
            b.splice(at..at, junk.iter().copied());
        }
        3 => {
            let d = *s.pick(&[126usize, 127, 128, 200, 10_000]);
            let nest = format!("{}{}", "[".repeat(d), "]".repeat(d));
            b = format!(r#"{{"bk_biz_id":7,"service_instance_id":30,"processes":{nest}}}"#)
                .into_bytes();
        }
        4 => b = (*s.pick(&[&b""[..], b" ", b"null", b"[]", b"0", b"\"x\"", b"{}"])).to_vec(),
        _ => {}
    }
    b
}

// ---------------------------------------------------------------------------------------------
// Driving a request and checking the answer
// ---------------------------------------------------------------------------------------------

/// A memory store with the built-in demo dataset.
pub fn demo_store() -> Store {
    let store = Store::memory().unwrap();
    let ds = cmdb_lite::dataset::parse(cmdb_lite::dataset::DEMO).unwrap();
    cmdb_lite::dataset::import(&store, &ds).unwrap();
    store
}

pub fn known_code(code: i64) -> bool {
    code == 0 || error::template(code, Lang::En).is_some()
}

pub fn process_seq(store: &Store) -> i64 {
    store.read(|tx| tx.sequence(Kind::Process)).unwrap()
}

/// Every envelope shape renders `result` as JSON that parses back.
pub fn envelopes_parse(ok: bool, code: i64, msg: &str, data: &str) -> Result<(), String> {
    for shape in [
        envelope::Shape::Native,
        envelope::Shape::Gateway,
        envelope::Shape::Esb,
    ] {
        let text = envelope::render(shape, ok, code, msg, data, "rid");
        let v: Value = serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
        if v["result"] != Value::Bool(ok) {
            return Err(format!("result not {ok}: {text}"));
        }
    }
    Ok(())
}

/// One request through the server's own decoding (`http::parse_body`) and `api::call`, as
/// `list` or create, checked: the answer's code (0 on success), or a broken invariant.
pub fn drive(
    store: &Store,
    raw: &[u8],
    list: bool,
    lang: Lang,
    supplier: &str,
) -> Result<i64, String> {
    let ctx = Ctx {
        user: "fuzz".into(),
        supplier: supplier.into(),
        lang,
        rid: "fuzz".into(),
        now_ms: 1_767_323_045_678,
    };
    let before = process_seq(store);
    let result: Result<api::Data, CcError> = http::parse_body(raw).and_then(|parsed| {
        let items = parsed
            .get("processes")
            .and_then(Value::as_array)
            .map(Vec::len);
        let op = if list {
            Op::ListProcessInstance
        } else {
            Op::CreateProcessInstance
        };
        let input = Input::body(parsed);
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            api::call(op, &ctx, store, input)
        }))
        .map_err(|_| CcError::raw(-1, "PANIC".to_string()))?;
        if let (Ok(_), false, None) = (&out, list, items) {
            return Err(CcError::raw(
                -2,
                "success without a processes array".to_string(),
            ));
        }
        out
    });
    let after = process_seq(store);
    match result {
        Ok(data) => {
            let v: Value = serde_json::from_str(&data.0).map_err(|e| format!("data: {e}"))?;
            envelopes_parse(true, 0, "success", &data.0)?;
            if list {
                if !v.is_array() || after != before {
                    return Err(format!("list: {v}"));
                }
                return Ok(0);
            }
            let ids: Vec<i64> = v
                .as_array()
                .ok_or("create data is not an array")?
                .iter()
                .map(|x| x.as_i64().ok_or("id is not an integer"))
                .collect::<Result<_, _>>()?;
            let n = body_items(raw);
            if ids.len() != n || ids.is_empty() {
                return Err(format!("{} ids for {n} processes", ids.len()));
            }
            if after != before + n as i64 || ids != ((before + 1)..=after).collect::<Vec<_>>() {
                return Err(format!("ids {ids:?}, sequence {before} -> {after}"));
            }
            store
                .read::<_, CcError>(|tx| {
                    for id in &ids {
                        if tx.process(*id)?.is_none() || tx.relation(*id)?.is_none() {
                            return Ok(Some(*id));
                        }
                    }
                    Ok(None)
                })
                .map_err(|e| e.render(Lang::En))?
                .map_or(Ok(0), |id| Err(format!("process {id} not stored")))
        }
        Err(e) if e.code == -1 => Err("panicked".into()),
        Err(e) if e.code == -2 => Err(e.render(Lang::En)),
        Err(e) => {
            if !known_code(e.code) {
                return Err(format!("unknown code {}", e.code));
            }
            let (en, zh) = (e.render(Lang::En), e.render(Lang::Zh));
            if en.is_empty() || zh.is_empty() {
                return Err(format!("empty message for {}", e.code));
            }
            envelopes_parse(false, e.code, &e.render(lang), "null")?;
            if after != before {
                return Err(format!("a failure moved the sequence {before} -> {after}"));
            }
            Ok(e.code)
        }
    }
}

pub fn body_items(raw: &[u8]) -> usize {
    serde_json::from_slice::<Value>(raw)
        .ok()
        .and_then(|v| v.get("processes").and_then(Value::as_array).map(Vec::len))
        .unwrap_or(0)
}

pub fn check_clean(store: &Store) -> Result<(), String> {
    let problems =
        cmdb_lite::store::check::run(store).map_err(|e| CcError::from(e).render(Lang::En))?;
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("check: {problems:?}"))
    }
}
