//! Randomized, structure-aware testing of create_process_instance's request decoding and
//! validation (and list_process_instance's), reproducible from a seed. Bodies come from
//! `fuzzgen` (random keys, types, nesting, bind_info rows, unicode, huge numbers, lengths around
//! the limits, damaged JSON). Most go in-process through `http::parse_body` and `api::call` on a
//! memory store seeded with the demo dataset; a share goes over HTTP to the real binary.
//!
//! Asserted for every case: no panic; a success is well-formed (one increasing id per process,
//! each stored with its relation, the id sequence advanced by exactly that many); a failure has
//! a code of bk-cmdb's catalogue, renders in both languages and writes nothing; every
//! rendered envelope is JSON; `check` finds the store consistent, in-process and (after the
//! server is killed) on the server's file.
//!
//! Budget: `CMDB_FUZZ_SECS` seconds (default 3) from seed `CMDB_FUZZ_SEED` (default fixed).
//! A long run: `CMDB_FUZZ_SECS=600 cargo test --release --test it fuzz_create:: -- --nocapture`.

use crate::fuzzgen;

use crate::common::*;
use crate::fuzzgen::{Source, XorShift, check_clean, known_code, process_seq};
use cmdb_lite::error::Lang;
use serde_json::Value;
use std::time::{Duration, Instant};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn show(raw: &[u8]) -> String {
    let t = String::from_utf8_lossy(raw);
    if t.len() > 2000 {
        format!(
            "{}... ({} bytes)",
            &t[..t.floor_char_boundary(2000)],
            raw.len()
        )
    } else {
        t.into_owned()
    }
}

/// One case: (body bytes, list rather than create, language, supplier).
fn case(rng: &mut XorShift) -> (Vec<u8>, bool, Lang, &'static str) {
    let list = rng.chance(1, 8);
    let body = if list {
        fuzzgen::list_body(rng)
    } else {
        fuzzgen::create_body(rng)
    };
    let raw = fuzzgen::damage(rng, &body);
    let lang = if rng.chance(1, 2) { Lang::En } else { Lang::Zh };
    let supplier = *rng.pick(&["0", "0", "0", "1"]);
    (raw, list, lang, supplier)
}

/// Replays one case by its seed, as a failure prints it, on a fresh store:
/// `CMDB_FUZZ_CASE=N cargo test --test it -- --ignored --nocapture fuzz_create::replay_one_case`.
#[test]
#[ignore = "a tool: replays the case CMDB_FUZZ_CASE names"]
fn replay_one_case() {
    let case_seed = std::env::var("CMDB_FUZZ_CASE").expect("CMDB_FUZZ_CASE");
    let (raw, list, lang, supplier) = case(&mut XorShift(case_seed.parse().unwrap()));
    eprintln!(
        "list {list}, {lang:?}, supplier {supplier}, body: {}",
        show(&raw)
    );
    let store = fuzzgen::demo_store();
    let answer = fuzzgen::drive(&store, &raw, list, lang, supplier);
    eprintln!("answer: {answer:?}");
    answer.unwrap();
}

/// Cases run on one store before it is replaced by a fresh one.
const STORE_CASES: u64 = 20_000;

#[test]
fn create_process_instance_randomized() {
    let secs = env_u64("CMDB_FUZZ_SECS", 3);
    let seed = env_u64("CMDB_FUZZ_SEED", 0x00C0_FFEE_5EED);
    let budget = Duration::from_secs(secs);
    let mut store = fuzzgen::demo_store();
    let mut rng = XorShift(seed);
    let start = Instant::now();
    let (mut cases, mut created, mut refused) = (0u64, 0u64, 0u64);
    let mut codes = std::collections::BTreeMap::<i64, u64>::new();
    while start.elapsed() < budget || cases < 200 {
        // Each case's own generator, so a failure is replayable from (seed, case).
        let case_seed = rng.next_u64();
        let mut case_rng = XorShift(case_seed);
        let before = process_seq(&store);
        let (raw, list, lang, supplier) = case(&mut case_rng);
        let answer = fuzzgen::drive(&store, &raw, list, lang, supplier);
        if let Ok(code) = answer {
            *codes.entry(code).or_default() += 1;
        }
        if let Err(e) = answer {
            panic!(
                "case {cases} (seed {seed}; replay with CMDB_FUZZ_CASE={case_seed}): {e}\n\
                 list {list}, {lang:?}, supplier {supplier}, body: {}",
                show(&raw)
            );
        }
        if process_seq(&store) > before {
            created += 1;
        } else {
            refused += 1;
        }
        cases += 1;
        if cases % 500 == 0 {
            check_clean(&store).unwrap_or_else(|e| panic!("after {cases} cases: {e}"));
        }
        // A fresh store now and then, so that long runs do not slow down as it grows.
        if cases % STORE_CASES == 0 {
            store = fuzzgen::demo_store();
        }
    }
    check_clean(&store).unwrap();
    eprintln!(
        "fuzz_create: seed {seed}: {cases} cases in {:?} ({created} created, {refused} refused or \
         listed); answers by code: {codes:?}",
        start.elapsed()
    );
    assert!(
        created > 0 && refused > 0,
        "{created} created, {refused} refused"
    );
}

#[test]
fn create_process_instance_randomized_over_http() {
    let secs = env_u64("CMDB_FUZZ_SECS", 3).div_ceil(3).max(1);
    let seed = env_u64("CMDB_FUZZ_SEED", 0x00C0_FFEE_5EED) ^ 0x4854_5450;
    let dir = TempDir::new("fuzz");
    let db = dir.join("fuzz.redb");
    let s = Server::file(&db);
    let mut conn = Conn::open(&s.addr);
    let mut rng = XorShift(seed);
    let start = Instant::now();
    let (mut cases, mut ok) = (0u64, 0u64);
    while start.elapsed() < Duration::from_secs(secs) || cases < 50 {
        let list = rng.chance(1, 8);
        let body = if list {
            fuzzgen::list_body(&mut rng)
        } else {
            fuzzgen::create_body(&mut rng)
        };
        let raw = fuzzgen::damage(&mut rng, &body);
        let path = if list {
            "/api/v3/findmany/proc/process_instance"
        } else {
            "/api/v3/create/proc/process_instance"
        };
        let headers: &[(&str, &str)] = if rng.chance(1, 2) {
            &NATIVE_EN
        } else {
            &NATIVE_ZH
        };
        let r = conn.send("POST", path, headers, &raw);
        let fail = |why: &str| -> ! {
            panic!(
                "case {cases} (seed {seed}): {why}: HTTP {} {}\nbody: {}",
                r.status,
                r.body,
                show(&raw)
            )
        };
        if r.status != 200 {
            fail("not HTTP 200");
        }
        let v: Value = serde_json::from_str(&r.body).unwrap_or_else(|_| fail("not JSON"));
        let keys: Vec<&str> = v
            .as_object()
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        if sorted
            != [
                "bk_error_code",
                "bk_error_msg",
                "data",
                "permission",
                "result",
            ]
        {
            fail("not the native envelope");
        }
        let code = v["bk_error_code"].as_i64().unwrap_or(-1);
        if !known_code(code) || v["result"] != Value::Bool(code == 0) {
            fail("code and result disagree or the code is unknown");
        }
        if code == 0 {
            ok += 1;
        }
        cases += 1;
    }
    drop(conn);
    s.stop();
    let (code, out, err) = run_cli(&["check", "--db", db.to_str().unwrap()]);
    assert_eq!(code, 0, "check after {cases} HTTP cases: {out}{err}");
    eprintln!(
        "fuzz_create over HTTP: seed {seed}: {cases} cases in {:?} ({ok} succeeded)",
        start.elapsed()
    );
    assert!(ok > 0);
}

/// The cargo-fuzz target's source of choices (`fuzz/` builds only on a nightly toolchain, so it
/// is checked here): the same input gives the same body, and an input that runs out reads as
/// zeros; every body it yields goes through the server's decoding cleanly.
#[test]
fn fuzzer_input_bytes_drive_the_generator_reproducibly() {
    let input: Vec<u8> = (0..=255u8).rev().collect();
    let body = |data: &[u8]| fuzzgen::create_body(&mut fuzzgen::Bytes { data, at: 0 });
    assert_eq!(body(&input), body(&input));
    let store = fuzzgen::demo_store();
    for data in [&input[..], &[], &[0xff; 3]] {
        let raw = serde_json::to_vec(&body(data)).unwrap();
        fuzzgen::drive(&store, &raw, false, Lang::En, "0").unwrap();
    }
    check_clean(&store).unwrap();
}
