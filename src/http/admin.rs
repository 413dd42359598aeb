//! The test-double routes of `serve --admin` (product.md section 7), beside bk-cmdb's route
//! families: `POST /_cmdb/reset`, `POST /_cmdb/load`, `GET`/`DELETE /_cmdb/requests`,
//! `POST`/`GET`/`DELETE /_cmdb/faults`. Without `--admin` they are unknown paths (404). They
//! take no worker permit and need no identity headers. Answers use the native envelope; a
//! refused admin call is HTTP 400 with `result: false`, code 1199006 (1199000 for a body that
//! is not JSON) and a message naming what is wrong.

use super::{BodyError, Reply, read_body};
use crate::error::code;
use crate::faults::{Faults, Rule};
use crate::journal::Journal;
use crate::limits::MAX_BODY_BYTES;
use crate::seed::{self, Seed};
use crate::store::Store;
use serde::Serialize;
use std::time::Instant;

/// What the admin routes share: the seed to reset to, the journal and the faults.
pub struct Admin {
    pub seed: Seed,
    pub journal: Journal,
    pub faults: Faults,
}

impl Admin {
    pub fn new(seed: Seed) -> Admin {
        Admin {
            seed,
            journal: Journal::default(),
            faults: Faults::default(),
        }
    }
}

/// The admin paths (with or without a trailing slash).
pub fn is_admin_path(path: &str) -> bool {
    matches!(
        path.strip_suffix('/').unwrap_or(path),
        "/_cmdb/reset" | "/_cmdb/load" | "/_cmdb/requests" | "/_cmdb/faults"
    )
}

fn ok(data: &impl Serialize) -> Reply {
    ok_json(&serde_json::to_string(data).unwrap_or_else(|_| "null".into()))
}

/// A success answer around `data`, already JSON.
fn ok_json(data: &str) -> Reply {
    Reply {
        status: 200,
        body: super::envelope::render(super::Shape::Native, true, 0, "success", data, ""),
        headers: None,
    }
}

fn refused(status: u16, code: i64, message: &str) -> Reply {
    Reply {
        status,
        body: super::envelope::render(super::Shape::Native, false, code, message, "null", ""),
        headers: None,
    }
}

/// Answers one admin call. `body` reads the request body (bounded by `MAX_BODY_BYTES` and the
/// body deadline).
pub(super) fn handle(
    admin: &Admin,
    store: &Store,
    method: &str,
    path: &str,
    query: &str,
    body: &mut dyn std::io::Read,
    deadline: Instant,
) -> Reply {
    let path = path.strip_suffix('/').unwrap_or(path);
    // Admin bodies (a dataset of up to `MAX_BODY_BYTES`) are read outside the memory budget of
    // bk-cmdb's routes, as the benchmark's floor does: one admin call at a time is the use.
    let read = |body: &mut dyn std::io::Read| match read_body(body, deadline, None, |_| Ok(())) {
        Ok(raw) => Ok(raw),
        Err(BodyError::TooLarge) => Err(refused(
            413,
            code::HTTP_READ_BODY,
            &format!("request body exceeds {MAX_BODY_BYTES} bytes"),
        )),
        Err(BodyError::TimedOut) => Err(refused(
            408,
            code::HTTP_READ_BODY,
            "the body did not arrive in time",
        )),
        Err(BodyError::Failed(e)) => Err(refused(400, code::HTTP_READ_BODY, &e.to_string())),
        Err(BodyError::Memory(_)) => Err(refused(
            503,
            code::HTTP_READ_BODY,
            "no memory for the body now",
        )),
    };
    match (method, path) {
        ("POST", "/_cmdb/reset") => {
            let started = Instant::now();
            match seed::reset(store, &admin.seed) {
                Ok(records) => {
                    admin.journal.clear();
                    admin.faults.clear();
                    ok(&serde_json::json!({
                        "records": records,
                        "micros": started.elapsed().as_micros() as u64,
                    }))
                }
                Err(e) => refused(400, code::PARAMS_INVALID, &format!("reset: {e}")),
            }
        }
        ("POST", "/_cmdb/load") => {
            let raw = match read(body) {
                Ok(raw) => raw,
                Err(reply) => return reply,
            };
            let started = Instant::now();
            match seed::replace(store, &raw) {
                Ok(records) => ok(&serde_json::json!({
                    "records": records,
                    "micros": started.elapsed().as_micros() as u64,
                })),
                Err(e) => refused(400, code::PARAMS_INVALID, &format!("load: {e}")),
            }
        }
        ("GET", "/_cmdb/requests") => {
            let operation = query_param(query, "operation");
            ok_json(&admin.journal.list_json(operation.as_deref()))
        }
        ("DELETE", "/_cmdb/requests") => ok(&serde_json::json!({"cleared": admin.journal.clear()})),
        ("POST", "/_cmdb/faults") => {
            let raw = match read(body) {
                Ok(raw) => raw,
                Err(reply) => return reply,
            };
            let Ok(value) = serde_json::from_slice(&raw) else {
                return refused(400, code::JSON_UNMARSHAL, "the body is not JSON");
            };
            let rule = match Rule::parse(value) {
                Ok(rule) => rule,
                Err(e) => return refused(400, code::PARAMS_INVALID, &e),
            };
            let seed = crate::clock::now_ms() as u64;
            match admin.faults.add(rule, seed) {
                Ok(id) => ok(&serde_json::json!({ "id": id })),
                Err(e) => refused(400, code::PARAMS_INVALID, &e),
            }
        }
        ("GET", "/_cmdb/faults") => {
            let info = admin.faults.list();
            ok(&serde_json::json!({"count": info.len(), "info": info}))
        }
        ("DELETE", "/_cmdb/faults") => ok(&serde_json::json!({"cleared": admin.faults.clear()})),
        _ => refused(
            405,
            code::UNKNOWN,
            &format!("method {method} is not allowed on {path}"),
        ),
    }
}

/// One query-string parameter, percent-decoded.
fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| super::percent_decode(v))
}
