//! Schema version 2 and the in-place migration of a version-1 store. `tests/fixtures/v1.redb`
//! was written by the version-1 binary (`import` of `tests/fixtures/v1.json`: the demo dataset
//! and a process with unknown keys, odd numbers and times that are not in `clock`'s form), and
//! `tests/fixtures/v1-export.json` is what that binary exported from it. `v1-raw.redb`,
//! `v1-raw.json` and `v1-raw-export.json` are the same for a store without templates: one
//! business, one module and service instance not built from one, one process (a version-1 file
//! holds only the tables its writes created: that one lacks `idx_module_by_st`).

use crate::common::{BIN, SIGKILL, TempDir, assert_clean, run_cli, send_signal, wait_exit};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn fixture(dir: &TempDir) -> PathBuf {
    fixture_named(dir, "v1")
}

/// A copy of the version-1 fixture `tests/fixtures/{name}.redb`.
fn fixture_named(dir: &TempDir, name: &str) -> PathBuf {
    let db = dir.join("cmdb.redb");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/{name}.redb"));
    std::fs::copy(&src, &db).expect("copy the version-1 fixture");
    db
}

fn v1_export() -> String {
    v1_export_named("v1")
}

fn v1_export_named(name: &str) -> String {
    let p =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/{name}-export.json"));
    std::fs::read_to_string(p).expect("the version-1 export")
}

/// The migrated store's export holds the version-1 export: every record and sequence as it was,
/// and the topology records (businesses, hosts, modules) with every field they had; the
/// attributes, sets, cloud areas and built-in records the topology gains on the first open are
/// extra.
fn assert_holds_v1_export(exported: &str) {
    assert_holds(exported, &v1_export());
}

fn assert_holds(exported: &str, v1: &str) {
    use serde_json::Value;
    let got: Value = serde_json::from_str(exported).unwrap();
    let want: Value = serde_json::from_str(v1).unwrap();
    for (key, w) in want.as_object().unwrap() {
        match key.as_str() {
            "businesses" | "hosts" | "modules" => {
                let id = match key.as_str() {
                    "businesses" => "bk_biz_id",
                    "hosts" => "bk_host_id",
                    _ => "bk_module_id",
                };
                for rec in w.as_array().unwrap() {
                    let g = got[key]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|r| r[id] == rec[id])
                        .unwrap_or_else(|| panic!("{key} {} missing", rec[id]));
                    for (f, v) in rec.as_object().unwrap() {
                        assert_eq!(&g[f], v, "{key} {} {f}", rec[id]);
                    }
                }
            }
            "sequences" => {
                for (k, v) in w.as_object().unwrap() {
                    assert_eq!(&got[key][k], v, "sequence {k}");
                }
            }
            _ => assert_eq!(
                &got[key], w,
                "{key}: the migrated store exports another dataset"
            ),
        }
    }
}

fn export(db: &Path, dir: &TempDir) -> (String, String) {
    let out = dir.join("export.json");
    let (code, _, err) = run_cli(&[
        "export",
        "--db",
        db.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "export failed: {err}");
    (std::fs::read_to_string(out).unwrap(), err)
}

/// `check` accepts only the current version: on a version-1 store it names the version and,
/// on a store closed cleanly (`untouched`), changes nothing (after a crash, redb's repair runs
/// first).
fn assert_check_refuses_v1(db: &Path, untouched: bool) {
    let before = std::fs::read(db).unwrap();
    // A crashed file is reported, not repaired, unless `--repair` lets redb repair it first.
    let repair: &[&str] = if untouched { &[] } else { &["--repair"] };
    let args: Vec<&str> = ["check", "--db", db.to_str().unwrap()]
        .into_iter()
        .chain(repair.iter().copied())
        .collect();
    let (code, out, err) = run_cli(&args);
    assert_eq!(code, 1, "check on a version-1 store: {out} {err}");
    assert!(
        err.contains("has schema version 1") && err.contains("`check` accepts only version 2"),
        "{err}"
    );
    if untouched {
        assert!(
            std::fs::read(db).unwrap() == before,
            "check touched the file"
        );
    }
}

#[test]
fn a_version_1_store_migrates_in_place_and_exports_the_same_dataset() {
    let dir = TempDir::new("migrate");
    let db = fixture(&dir);
    assert_check_refuses_v1(&db, true);
    let (exported, err) = export(&db, &dir);
    assert!(
        err.contains("has schema version 1; migrating it to version 2 in one transaction"),
        "{err}"
    );
    assert!(
        err.contains("migrated") && err.contains("to version 2"),
        "{err}"
    );
    assert_holds_v1_export(&exported);
    // Migrated once: the next open says nothing of it, and check finds the store clean.
    let (again, err) = export(&db, &dir);
    assert!(!err.contains("migrating it"), "{err}");
    assert_eq!(again, exported);
    assert_clean(&db);
}

#[test]
fn a_version_1_store_without_templates_migrates_and_takes_them() {
    let dir = TempDir::new("migrate-raw");
    let db = fixture_named(&dir, "v1-raw");
    assert_check_refuses_v1(&db, true);
    let (exported, err) = export(&db, &dir);
    assert!(
        err.contains("has schema version 1; migrating it to version 2 in one transaction"),
        "{err}"
    );
    assert_holds(&exported, &v1_export_named("v1-raw"));
    assert_clean(&db);
    // The tables it lacked are there: a template, and a module built from it, are written.
    let s = crate::common::Server::file(&db);
    let native = [
        ("X-Bkcmdb-User", "admin"),
        ("X-Bkcmdb-Supplier-Account", "0"),
    ];
    let r = s.request(
        "POST",
        "/api/v3/create/proc/service_template",
        &native,
        br#"{"bk_biz_id": 7, "name": "tpl", "service_category_id": 2}"#,
    );
    let v = r.json();
    assert_eq!(v["result"], true, "{v}");
    let tpl = v["data"]["id"].as_i64().unwrap();
    let body = format!(r#"{{"bk_parent_id": 3, "service_template_id": {tpl}}}"#);
    let r = s.request("POST", "/api/v3/module/7/3", &native, body.as_bytes());
    let v = r.json();
    assert_eq!(v["result"], true, "{v}");
    s.stop();
    assert_clean(&db);
}

#[test]
fn a_migration_killed_midway_leaves_the_version_1_store_usable() {
    let dir = TempDir::new("migrate-kill");
    let db = fixture(&dir);
    let mut child = Command::new(BIN)
        .args(["export", "--db", db.to_str().unwrap(), "--out"])
        .arg(dir.join("never.json"))
        .env("CMDB_MIGRATE_STALL_MS", "60000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cmdb-lite");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let halfway = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains("migration halfway"));
    assert!(halfway, "the migration never reached its halfway point");
    send_signal(&child, SIGKILL);
    assert!(wait_exit(&mut child, Duration::from_secs(30)).is_some());
    // Still a version-1 store, whole: check names version 1, and opening it migrates it and
    // exports what version 1 exported.
    assert_check_refuses_v1(&db, false);
    let (exported, err) = export(&db, &dir);
    assert!(err.contains("migrated"), "{err}");
    assert_holds_v1_export(&exported);
    assert_clean(&db);
}
