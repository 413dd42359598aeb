//! libFuzzer over create_process_instance (and list_process_instance): the request's bytes go
//! through the server's own decoding (`http::parse_body`) and `api::call` on a memory store with
//! the demo dataset, checked by the same invariants as tests/it/fuzz_create.rs (`fuzzgen::drive`).
//!
//! The input's first byte chooses: below 96, the rest is the body as is (raw JSON, where
//! libFuzzer's mutations reach the decoder); otherwise the rest drives the structure-aware
//! generator (`fuzzgen`), so coverage guidance steers keys, types and values.
#![no_main]

#[path = "../../tests/fuzzgen/mod.rs"]
mod fuzzgen;

use cmdb_lite::error::Lang;
use cmdb_lite::store::Store;
use fuzzgen::Source;
use libfuzzer_sys::fuzz_target;
use std::sync::Mutex;

/// Runs on one store before it is checked and replaced.
const STORE_RUNS: u64 = 5_000;

static STORE: Mutex<Option<(Store, u64)>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut guard = STORE.lock().unwrap_or_else(|e| e.into_inner());
    let (store, runs) = guard.get_or_insert_with(|| (fuzzgen::demo_store(), 0));
    let lang = if mode & 1 == 0 { Lang::En } else { Lang::Zh };
    let list = mode & 2 != 0 && mode & 4 != 0 && mode & 8 != 0;
    let raw = if mode < 96 {
        rest.to_vec()
    } else {
        let mut src = fuzzgen::Bytes { data: rest, at: 0 };
        let body = if list {
            fuzzgen::list_body(&mut src)
        } else {
            fuzzgen::create_body(&mut src)
        };
        if src.chance(1, 4) {
            fuzzgen::damage(&mut src, &body)
        } else {
            serde_json::to_vec(&body).unwrap()
        }
    };
    if let Err(e) = fuzzgen::drive(store, &raw, list, lang, "0") {
        panic!("{e}\nbody: {}", String::from_utf8_lossy(&raw));
    }
    *runs += 1;
    if *runs % STORE_RUNS == 0 {
        if let Err(e) = fuzzgen::check_clean(store) {
            panic!("{e}");
        }
        *store = fuzzgen::demo_store();
    }
});
