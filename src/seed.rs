//! What a store is seeded with, and the two whole-store writes of a test double: reset (back
//! to the seed) and load (replace everything with a dataset). Each is one write transaction
//! holding the store alone (`Store::replace_all`): no API call runs beside it, so a create is
//! wholly before or wholly after it, and a refused dataset leaves the store as it was.
//!
//! A dataset is strict (`"format": "cmdb-lite/1"`, `dataset.rs`) or a lenient fixture
//! (`"format": "cmdb-lite/fixture-1"`, `fixture.rs`); the `format` key decides.

use crate::dataset::{self, FileError};
use crate::error::{CcError, Lang, code};
use crate::fixture;
use crate::limits::{MAX_DATASET_BYTES, MAX_FIXTURE_BYTES};
use crate::store::{Store, WriteTx};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The dataset an empty store starts from (`serve --seed`), and which `/_cmdb/reset` restores.
#[derive(Clone, Debug, PartialEq)]
pub enum Seed {
    /// The built-in demo dataset (`data/demo.json`).
    Demo,
    /// Nothing (`--seed none`).
    Empty,
    /// A dataset or fixture file, read again at every reset.
    File(PathBuf),
    /// A dataset or fixture given as text (the library API).
    Text(String),
}

impl Seed {
    /// `--seed`: absent is the demo, `none` nothing, anything else a file.
    pub fn from_arg(arg: Option<&str>) -> Seed {
        match arg {
            None => Seed::Demo,
            Some("none") => Seed::Empty,
            Some(path) => Seed::File(PathBuf::from(path)),
        }
    }

    /// Loads the seed into an open transaction; returns the number of records.
    pub fn load_in(&self, tx: &mut WriteTx, now_ms: i64) -> Result<usize, CcError> {
        // A seed is the store's starting point, not a change anyone watches: no events.
        tx.without_events();
        match self {
            Seed::Demo => load_text_in(tx, dataset::DEMO.as_bytes(), now_ms),
            // The built-in records every store holds.
            Seed::Empty => {
                dataset::topology::ensure_builtins(tx, &dataset::topology::import_stamp())
            }
            Seed::File(path) => load_file_in(tx, path, now_ms, |_| {}),
            Seed::Text(text) => load_text_in(tx, text.as_bytes(), now_ms),
        }
    }
}

fn bad(msg: String) -> CcError {
    CcError::raw(code::PARAMS_INVALID, msg)
}

/// Just the `format` of a dataset (every other key skipped, nothing kept).
#[derive(Deserialize)]
struct Format {
    format: Option<String>,
}

fn is_fixture(raw: &[u8]) -> bool {
    serde_json::from_slice::<Format>(raw)
        .ok()
        .and_then(|f| f.format)
        .is_some_and(|f| f == fixture::FORMAT)
}

/// Loads a dataset or fixture given as text into an open transaction.
pub fn load_text_in(tx: &mut WriteTx, raw: &[u8], now_ms: i64) -> Result<usize, CcError> {
    tx.without_events();
    if !is_fixture(raw) {
        return dataset::import_bytes_in(tx, raw);
    }
    if raw.len() > MAX_FIXTURE_BYTES {
        return Err(bad(format!(
            "a {} fixture may have at most {MAX_FIXTURE_BYTES} bytes",
            fixture::FORMAT
        )));
    }
    let value = serde_json::from_slice(raw).map_err(|e| bad(format!("not a fixture: {e}")))?;
    let ds = fixture::expand(value, now_ms).map_err(bad)?;
    dataset::import_in(tx, &ds)
}

/// Loads the dataset or fixture file at `path` into an open transaction: a fixture (at most
/// `MAX_FIXTURE_BYTES`) is read whole, a strict dataset streamed (`dataset::import_file`).
pub fn load_file_in(
    tx: &mut WriteTx,
    path: &Path,
    now_ms: i64,
    progress: impl FnMut(usize),
) -> Result<usize, CcError> {
    let read = |e: std::io::Error| bad(format!("cannot read {}: {e}", path.display()));
    let len = std::fs::metadata(path).map_err(read)?.len();
    if len > MAX_DATASET_BYTES {
        return Err(bad(format!(
            "{} is larger than {MAX_DATASET_BYTES} bytes",
            path.display()
        )));
    }
    if len <= MAX_FIXTURE_BYTES as u64 {
        let raw = std::fs::read(path).map_err(read)?;
        if is_fixture(&raw) {
            return load_text_in(tx, &raw, now_ms);
        }
    }
    let mut head = dataset::read_head(path).map_err(|e| match e {
        FileError::Read(m) | FileError::Refused(m) => bad(m),
    })?;
    dataset::import_head_in(tx, path, &mut head, progress)
}

/// Seeds (or imports into) `store` from `seed` in one transaction: all or nothing.
pub fn seed(store: &Store, seed: &Seed) -> Result<usize, String> {
    let now = crate::clock::now_ms();
    store
        .write_alone(|tx| seed.load_in(tx, now))
        .map_err(|e| match seed {
            Seed::File(path) => format!(
                "{}: {}; nothing was imported",
                path.display(),
                e.render(Lang::En)
            ),
            _ => e.render(Lang::En),
        })
}

/// `/_cmdb/reset`: empties the store and loads `seed`, in one transaction.
pub fn reset(store: &Store, seed: &Seed) -> Result<usize, String> {
    let now = crate::clock::now_ms();
    store
        .replace_all(|tx| seed.load_in(tx, now))
        .map_err(|e| e.render(Lang::En))
}

/// `/_cmdb/load`: replaces the whole store with the dataset or fixture `raw`, in one
/// transaction; a refused one leaves the store as it was.
pub fn replace(store: &Store, raw: &[u8]) -> Result<usize, String> {
    let now = crate::clock::now_ms();
    store
        .replace_all(|tx| load_text_in(tx, raw, now))
        .map_err(|e| e.render(Lang::En))
}
