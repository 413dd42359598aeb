//! The command line on database files (product.md sections 2 and 5): restart persistence,
//! import/export round trips, import refusals, `check`, the single-writer lock, seeding, foreign
//! files and `--help`.

use crate::common::*;
use redb::TableDefinition;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

use std::time::{Duration, Instant};

/// Copied from src/store/tables.rs.
const PROC_BY_SI: TableDefinition<(i64, i64), ()> = TableDefinition::new("idx_proc_by_si");
const SEQUENCES: TableDefinition<&str, i64> = TableDefinition::new("sequences");

/// product.md's example dataset, from the specification folder beside the checkout (as CI lays
/// it out); without that folder, the demo dataset, which started as a copy of it.
fn example_path() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shared = root.join("../shared/spec/dataset-example.json");
    if shared.exists() {
        shared
    } else {
        root.join("data/demo.json")
    }
}

fn example() -> Value {
    serde_json::from_str(&std::fs::read_to_string(example_path()).unwrap()).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn cli_ok(args: &[&str]) -> String {
    let (code, out, err) = run_cli_within(args, 30);
    assert_eq!(code, 0, "cmdb-lite {args:?}: stdout {out:?} stderr {err:?}");
    out
}

fn export_text(db: &Path) -> String {
    cli_ok(&["export", "--db", s(db)])
}

fn import_ok(file: &Path, db: &Path) {
    cli_ok(&["import", s(file), "--db", s(db)]);
}

fn write_json(path: &Path, v: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

fn ids(list: &Value) -> Vec<i64> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["property"]["bk_process_id"].as_i64().unwrap())
        .collect()
}

/// Records of one kind keyed by their id field, for order-independent comparison.
fn by_id(v: &Value, id_key: &str) -> std::collections::BTreeMap<i64, Value> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|r| {
            (
                r[id_key]
                    .as_i64()
                    .unwrap_or_else(|| panic!("no {id_key} in {r}")),
                r.clone(),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Restart persistence
// ---------------------------------------------------------------------------------------------

#[test]
fn restart_keeps_data_and_never_reuses_ids() {
    let td = TempDir::new("restart");
    let db = td.join("cmdb.redb");
    let srv = Server::file(&db);
    let r = srv.create(&json!({"bk_biz_id": 7, "service_instance_id": 30, "processes": [
        {"process_info": {"bk_process_name": "p1", "bk_func_name": "f1", "work_path": "/opt/p1", "user": "root",
            "bind_info": [{"enable": true, "ip": "127.0.0.1", "port": "9000", "protocol": "1"}]}},
        {"process_info": {"bk_process_name": "p2", "bk_func_name": "f2", "description": "second"}},
        {"process_info": {"bk_process_name": "p3", "bk_func_name": "f3"}}]}));
    assert_eq!(r, ok_native(json!([42, 43, 44])));
    let r = srv.create(&json!({"bk_biz_id": 7, "service_instance_id": 30,
        "processes": [{"process_info": {"bk_process_name": "p4", "bk_func_name": "f4"}}]}));
    assert_eq!(r, ok_native(json!([45])));
    // A failed request (duplicate name) may consume an id, never reuse one.
    let r = srv.create(&json!({"bk_biz_id": 7, "service_instance_id": 30,
        "processes": [{"process_info": {"bk_process_name": "p4", "bk_func_name": "other"}}]}));
    assert_eq!(r["result"], json!(false), "{r}");
    let before = srv.list(7, 30);
    assert_eq!(ids(&before), [41, 42, 43, 44, 45]);
    srv.kill();

    let srv = Server::file(&db);
    let after = srv.list(7, 30);
    assert_eq!(after, before, "data changed across a restart");
    let r = srv.create(&json!({"bk_biz_id": 7, "service_instance_id": 30,
        "processes": [{"process_info": {"bk_process_name": "p5", "bk_func_name": "f5"}}]}));
    let id5 = r["data"][0].as_i64().unwrap_or_else(|| panic!("{r}"));
    assert!(id5 > 45, "id {id5} reused after restart");
    srv.kill();

    // Once more: ids keep growing across a second crash.
    let srv = Server::file(&db);
    let l = srv.list(7, 30);
    assert_eq!(ids(&l), [41, 42, 43, 44, 45, id5]);
    let r = srv.create(&json!({"bk_biz_id": 7, "service_instance_id": 30,
        "processes": [{"process_info": {"bk_process_name": "p6", "bk_func_name": "f6"}}]}));
    let id6 = r["data"][0].as_i64().unwrap_or_else(|| panic!("{r}"));
    assert!(id6 > id5, "id {id6} not above {id5}");
    srv.kill();

    // And the store is consistent (once redb has repaired the crashed file).
    let (code, out, err) = run_cli_within(&["check", "--repair", "--db", s(&db)], 30);
    assert_eq!(code, 0, "{out}{err}");
}

// ---------------------------------------------------------------------------------------------
// Import and export
// ---------------------------------------------------------------------------------------------

#[test]
fn import_export_round_trip() {
    let td = TempDir::new("roundtrip");
    let (db1, db2) = (td.join("a.redb"), td.join("b.redb"));
    let (f1, f2) = (td.join("one.json"), td.join("two.json"));
    let (code, out, err) = run_cli_within(&["import", s(&example_path()), "--db", s(&db1)], 30);
    assert_eq!(code, 0, "{out}{err}");
    cli_ok(&["export", "--db", s(&db1), "--out", s(&f1)]);
    import_ok(&f1, &db2);
    cli_ok(&["export", "--db", s(&db2), "--out", s(&f2)]);
    let (t1, t2) = (std::fs::read(&f1).unwrap(), std::fs::read(&f2).unwrap());
    assert!(t1 == t2, "the two exports differ");
    // Export to standard output writes the same text.
    assert_eq!(export_text(&db1).as_bytes(), &t1[..]);

    // The first export holds everything of the example.
    let ex = example();
    let got: Value = serde_json::from_slice(&t1).unwrap();
    assert_eq!(got["format"], json!("cmdb-lite/1"));
    assert_eq!(got["supplier_account"], ex["supplier_account"]);
    // Topology records come back with every built-in attribute filled and the built-in records
    // (resource pool, idle sets and modules, cloud area 0) added: each field of the example is
    // kept as given.
    for (key, id) in [
        ("businesses", "bk_biz_id"),
        ("sets", "bk_set_id"),
        ("hosts", "bk_host_id"),
        ("modules", "bk_module_id"),
        ("cloud_areas", "bk_cloud_id"),
    ] {
        let got = by_id(&got[key], id);
        if ex[key].is_null() {
            continue;
        }
        for (rid, rec) in by_id(&ex[key], id) {
            for (field, value) in rec.as_object().unwrap() {
                assert_eq!(&got[&rid][field], value, "{key} {rid} {field}");
            }
        }
    }
    let pool: Vec<&Value> = got["businesses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["default"] == json!(1))
        .collect();
    assert_eq!(pool.len(), 1, "one resource pool");
    assert_eq!(pool[0]["bk_biz_name"], json!("资源池"));
    for (key, id) in [
        ("service_categories", "id"),
        ("service_templates", "id"),
        ("process_templates", "id"),
        ("service_instances", "id"),
        ("processes", "bk_process_id"),
    ] {
        assert_eq!(by_id(&got[key], id), by_id(&ex[key], id), "{key}");
    }
    let seq = got["sequences"].as_object().unwrap();
    for (kind, v) in ex["sequences"].as_object().unwrap() {
        assert_eq!(seq.get(kind), Some(v), "sequence {kind}");
    }
    // Every kind is written; absent kinds start after the largest imported id.
    for kind in [
        "process",
        "service_instance",
        "service_template",
        "process_template",
        "service_category",
        "audit_log",
    ] {
        assert!(
            seq.contains_key(kind),
            "sequence {kind} missing from the export"
        );
    }
    assert_eq!(seq["service_category"], json!(2));
    assert_eq!(seq["audit_log"], json!(0));
    // Every top-level key is written.
    for key in [
        "format",
        "supplier_account",
        "businesses",
        "hosts",
        "modules",
        "service_categories",
        "service_templates",
        "process_templates",
        "service_instances",
        "processes",
        "sequences",
    ] {
        assert!(got.get(key).is_some(), "{key} missing from the export");
    }

    // A server on the imported store is not re-seeded and continues the sequence.
    let srv = Server::file(&db2);
    assert_eq!(ids(&srv.list(7, 30)), [41]);
    let r = srv.create(&json!({"bk_biz_id": 7, "service_instance_id": 30,
        "processes": [{"process_info": {"bk_process_name": "after", "bk_func_name": "after"}}]}));
    assert_eq!(r, ok_native(json!([42])));
}

/// A valid chain of new records (ids far from the example's): business 100, host 110,
/// module 120, service instance 130, processes `pids` named `names`.
fn chain(pids: &[(i64, &str)]) -> Value {
    let ex = example();
    let mut si = ex["service_instances"][0].clone();
    si["id"] = json!(130);
    si["bk_biz_id"] = json!(100);
    si["bk_module_id"] = json!(120);
    si["bk_host_id"] = json!(110);
    si["name"] = json!("10.0.0.110_chain");
    let processes: Vec<Value> = pids
        .iter()
        .map(|&(pid, name)| {
            let mut p = ex["processes"][1].clone();
            p["bk_process_id"] = json!(pid);
            p["bk_biz_id"] = json!(100);
            p["service_instance_id"] = json!(130);
            p["bk_process_name"] = json!(name);
            p["bk_func_name"] = json!(format!("func-{pid}"));
            p["relation"] = json!({"bk_biz_id": 100, "bk_process_id": pid, "service_instance_id": 130,
                "process_template_id": 0, "bk_host_id": 110, "bk_supplier_account": "0"});
            p
        })
        .collect();
    json!({
        "format": "cmdb-lite/1",
        "businesses": [{"bk_biz_id": 100, "bk_biz_name": "chain"}],
        "hosts": [{"bk_host_id": 110, "bk_host_innerip": "10.0.0.110", "bk_host_outerip": "",
            "bk_host_innerip_v6": "", "bk_host_outerip_v6": "", "bk_cloud_id": 0}],
        "modules": [{"bk_module_id": 120, "bk_biz_id": 100, "bk_set_id": 3, "bk_module_name": "chain-mod",
            "service_template_id": 0, "service_category_id": 2, "default": 0, "hosts": [110]}],
        "service_instances": [si],
        "processes": processes,
    })
}

#[test]
fn import_refusals_leave_store_unchanged() {
    let td = TempDir::new("refusals");
    let db = td.join("cmdb.redb");
    import_ok(&example_path(), &db);
    let before = export_text(&db);

    let mut cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "wrong format",
            json!({"format": "cmdb-lite/2"}),
            vec!["format", "cmdb-lite/2"],
        ),
        ("no format", json!({"businesses": []}), vec!["format"]),
        (
            "unknown top-level key",
            json!({"format": "cmdb-lite/1", "bogus_key": []}),
            vec!["bogus_key"],
        ),
    ];
    let mut c = chain(&[(140, "a")]);
    c["businesses"] =
        json!([{"bk_biz_id": 100, "bk_biz_name": "x"}, {"bk_biz_id": 100, "bk_biz_name": "y"}]);
    cases.push(("duplicate business ids", c, vec!["business 100"]));
    let mut c = chain(&[(140, "a")]);
    c["businesses"] =
        json!([{"bk_biz_id": 100, "bk_biz_name": "x"}, {"bk_biz_id": 7, "bk_biz_name": "again"}]);
    cases.push(("business id already in the store", c, vec!["business 7"]));
    cases.push((
        "duplicate process ids",
        chain(&[(140, "a"), (140, "b")]),
        vec!["process 140"],
    ));
    let mut c = chain(&[(140, "a")]);
    c["modules"][0]["bk_biz_id"] = json!(999);
    cases.push(("module of unknown business", c, vec!["module 120", "999"]));
    let mut c = chain(&[(140, "a")]);
    c["processes"][0]["relation"]["service_instance_id"] = json!(999);
    c["processes"][0]["service_instance_id"] = json!(999);
    cases.push((
        "relation to unknown service instance",
        c,
        vec!["process 140", "999"],
    ));
    let mut c = chain(&[(140, "a")]);
    c["modules"][0]["hosts"] = json!([110, 999]);
    cases.push(("module host not in hosts", c, vec!["module 120", "999"]));
    cases.push((
        "two processes with one name",
        chain(&[(140, "same"), (141, "same")]),
        vec!["process 141"],
    ));
    let mut c = chain(&[(140, "a"), (141, "b")]);
    c["sequences"] = json!({"process": 100});
    cases.push((
        "sequence below an imported id",
        c,
        vec!["sequence", "process"],
    ));

    for (what, dataset, needles) in &cases {
        let file = td.join("bad.json");
        write_json(&file, dataset);
        let (code, out, err) = run_cli_within(&["import", s(&file), "--db", s(&db)], 30);
        assert_ne!(
            code, 0,
            "{what}: import accepted; stdout {out:?} stderr {err:?}"
        );
        for n in needles {
            assert!(
                err.contains(n),
                "{what}: stderr does not name {n:?}: {err:?}"
            );
        }
        assert_eq!(
            err.trim().lines().count(),
            1,
            "{what}: stderr is not one line: {err:?}"
        );
        assert_eq!(export_text(&db), before, "{what}: the store changed");
    }

    // Control: the chain itself is valid, so each refusal above was for its one defect.
    let file = td.join("good.json");
    write_json(&file, &chain(&[(140, "a"), (141, "b")]));
    import_ok(&file, &db);
    let after: Value = serde_json::from_str(&export_text(&db)).unwrap();
    assert!(by_id(&after["processes"], "bk_process_id").contains_key(&141));
    assert_eq!(after["sequences"]["process"], json!(141));

    // A file that does not exist, or is not JSON: one line, non-zero.
    let (code, _, err) =
        run_cli_within(&["import", s(&td.join("missing.json")), "--db", s(&db)], 30);
    assert_ne!(code, 0);
    assert!(err.contains("missing.json"), "{err:?}");
    std::fs::write(td.join("notjson.json"), b"{ this is not json").unwrap();
    let (code, _, err) =
        run_cli_within(&["import", s(&td.join("notjson.json")), "--db", s(&db)], 30);
    assert_ne!(code, 0);
    assert!(err.contains("notjson.json"), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// check
// ---------------------------------------------------------------------------------------------

fn with_db(db: &Path, f: impl FnOnce(&redb::WriteTransaction)) {
    let d = redb::Database::open(db).expect("open the redb file directly");
    let tx = d.begin_write().unwrap();
    f(&tx);
    tx.commit().unwrap();
}

fn check(db: &Path) -> (i32, String) {
    let (code, out, err) = run_cli_within(&["check", "--db", s(db)], 30);
    (code, format!("{out}{err}"))
}

#[test]
fn check_clean_and_corrupt_stores() {
    let td = TempDir::new("check");
    let db = td.join("cmdb.redb");
    import_ok(&example_path(), &db);
    let (code, out) = check(&db);
    assert_eq!(code, 0, "{out}");

    // A missing index entry.
    with_db(&db, |tx| {
        let mut t = tx.open_table(PROC_BY_SI).unwrap();
        assert!(t.remove((30i64, 41i64)).unwrap().is_some());
    });
    let (code, out) = check(&db);
    assert_ne!(code, 0, "a missing idx_proc_by_si entry passed: {out}");
    assert!(
        out.contains("idx_proc_by_si") && out.contains("41"),
        "{out}"
    );
    with_db(&db, |tx| {
        tx.open_table(PROC_BY_SI)
            .unwrap()
            .insert((30i64, 41i64), ())
            .unwrap();
    });
    let (code, out) = check(&db);
    assert_eq!(code, 0, "{out}");

    // A stray index entry.
    with_db(&db, |tx| {
        tx.open_table(PROC_BY_SI)
            .unwrap()
            .insert((30i64, 999i64), ())
            .unwrap();
    });
    let (code, out) = check(&db);
    assert_ne!(code, 0, "a stray idx_proc_by_si entry passed: {out}");
    assert!(
        out.contains("idx_proc_by_si") && out.contains("999"),
        "{out}"
    );
    with_db(&db, |tx| {
        tx.open_table(PROC_BY_SI)
            .unwrap()
            .remove((30i64, 999i64))
            .unwrap();
    });
    assert_eq!(check(&db).0, 0);

    // A sequence below an issued id.
    with_db(&db, |tx| {
        tx.open_table(SEQUENCES)
            .unwrap()
            .insert("process", 1i64)
            .unwrap();
    });
    let (code, out) = check(&db);
    assert_ne!(code, 0, "a sequence below an issued id passed: {out}");
    assert!(out.contains("process") && out.contains("41"), "{out}");
}

// ---------------------------------------------------------------------------------------------
// One process per database
// ---------------------------------------------------------------------------------------------

#[test]
fn database_in_use_is_refused_promptly() {
    let td = TempDir::new("inuse");
    let db = td.join("cmdb.redb");
    let srv = Server::file(&db);
    let example = example_path();
    let commands: Vec<Vec<&str>> = vec![
        vec!["export", "--db", s(&db)],
        vec!["check", "--db", s(&db)],
        vec!["import", s(&example), "--db", s(&db)],
        vec!["serve", "--db", s(&db), "--listen", "127.0.0.1:0"],
    ];
    for args in &commands {
        let start = Instant::now();
        let (code, out, err) = run_cli_within(args, 10);
        assert_ne!(code, 0, "{args:?}: stdout {out:?} stderr {err:?}");
        assert!(err.contains("database is in use"), "{args:?}: {err:?}");
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{args:?} took {:?}",
            start.elapsed()
        );
    }
    // The server was not disturbed.
    assert_eq!(ids(&srv.list(7, 30)), [41]);
    srv.kill();
    // Free again once the server is gone. It was killed, so the read-only check reports the
    // file as crashed and leaves it alone; `check --repair` lets redb repair it first.
    let before = std::fs::read(&db).unwrap();
    let (code, _out, err) = run_cli(&["check", "--db", s(&db)]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("not closed cleanly") && err.contains("check --repair"),
        "{err}"
    );
    assert!(
        std::fs::read(&db).unwrap() == before,
        "check changed a crashed file"
    );
    let (code, out, err) = run_cli(&["check", "--repair", "--db", s(&db)]);
    assert_eq!(code, 0, "{out} {err}");
    assert!(err.contains("redb repaired it"), "{err}");
    let (code, out) = check(&db);
    assert_eq!(code, 0, "{out}");
}

// ---------------------------------------------------------------------------------------------
// Seeding
// ---------------------------------------------------------------------------------------------

#[test]
fn seed_none_starts_empty() {
    let srv = Server::start(&["--memory", "--seed", "none"]);
    let r = srv.create(&json!({"bk_biz_id": 7, "service_instance_id": 30,
        "processes": [{"process_info": {"bk_process_name": "x", "bk_func_name": "x"}}]}));
    assert_eq!(r, err_native(1199019, "No relevant data found"));
    assert_eq!(srv.list(7, 30), ok_native(json!([])));

    let td = TempDir::new("seednone");
    let db = td.join("cmdb.redb");
    let srv = Server::start(&["--db", s(&db), "--seed", "none"]);
    let r = srv.create(&json!({"bk_biz_id": 7, "service_instance_id": 30,
        "processes": [{"process_info": {"bk_process_name": "x", "bk_func_name": "x"}}]}));
    assert_eq!(r, err_native(1199019, "No relevant data found"));
    srv.stop();
    let ds: Value = serde_json::from_str(&export_text(&db)).unwrap();
    // Only what every bk-cmdb holds: the resource pool with its idle set and modules, and
    // cloud area 0.
    let names = |key: &str, field: &str| -> Vec<Value> {
        ds[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r[field].clone())
            .collect()
    };
    assert_eq!(names("businesses", "bk_biz_name"), [json!("资源池")]);
    assert_eq!(names("businesses", "bk_biz_id"), [json!(1)]);
    assert_eq!(names("sets", "bk_set_name"), [json!("空闲机池")]);
    assert_eq!(
        names("modules", "bk_module_name"),
        [json!("空闲机"), json!("故障机"), json!("待回收")]
    );
    assert_eq!(names("modules", "default"), [json!(1), json!(2), json!(3)]);
    assert_eq!(
        names("cloud_areas", "bk_cloud_name"),
        [json!("Default Area")]
    );
    assert_eq!(ds["processes"], json!([]));
}

#[test]
fn seed_file_is_loaded_into_an_empty_store_only() {
    let td = TempDir::new("seedfile");
    let mut ds = example();
    ds["processes"][1]["bk_process_name"] = json!("seeded-billing");
    ds["sequences"]["process"] = json!(500);
    let seed = td.join("seed.json");
    write_json(&seed, &ds);

    let srv = Server::start(&["--memory", "--seed", s(&seed)]);
    let l = srv.list(7, 30);
    assert_eq!(
        l["data"][0]["property"]["bk_process_name"],
        json!("seeded-billing"),
        "{l}"
    );
    let r = srv.create(&json!({"bk_biz_id": 7, "service_instance_id": 30,
        "processes": [{"process_info": {"bk_process_name": "n", "bk_func_name": "n"}}]}));
    assert_eq!(r, ok_native(json!([501])));

    // On a file: seeded once; a later --seed on the non-empty store changes nothing.
    let db = td.join("cmdb.redb");
    let srv = Server::start(&["--db", s(&db), "--seed", s(&seed)]);
    assert_eq!(
        srv.list(7, 30)["data"][0]["property"]["bk_process_name"],
        json!("seeded-billing")
    );
    srv.kill();
    let srv = Server::file(&db);
    assert_eq!(
        srv.list(7, 30)["data"][0]["property"]["bk_process_name"],
        json!("seeded-billing")
    );
    srv.kill();
    let mut other = example();
    other["processes"][1]["bk_process_name"] = json!("other");
    let other_file = td.join("other.json");
    write_json(&other_file, &other);
    let srv = Server::start(&["--db", s(&db), "--seed", s(&other_file)]);
    assert_eq!(
        srv.list(7, 30)["data"][0]["property"]["bk_process_name"],
        json!("seeded-billing")
    );
    srv.kill();

    // A bad seed file: the server does not start, and says why.
    let bad = td.join("bad-seed.json");
    write_json(&bad, &json!({"format": "cmdb-lite/1", "nonsense": 1}));
    let (code, out, err) = run_cli_within(
        &[
            "serve",
            "--memory",
            "--seed",
            s(&bad),
            "--listen",
            "127.0.0.1:0",
        ],
        10,
    );
    assert_ne!(code, 0, "stdout {out:?}");
    assert!(err.contains("nonsense"), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// Files that are not ours
// ---------------------------------------------------------------------------------------------

fn assert_refused_untouched(path: &Path, what: &str) {
    let bytes = std::fs::read(path).unwrap();
    let example = example_path();
    let commands: Vec<Vec<&str>> = vec![
        vec!["serve", "--db", s(path), "--listen", "127.0.0.1:0"],
        vec!["export", "--db", s(path)],
        vec!["check", "--db", s(path)],
        vec!["import", s(&example), "--db", s(path)],
    ];
    for args in &commands {
        let (code, out, err) = run_cli_within(args, 10);
        assert_ne!(code, 0, "{what}: {args:?} accepted; stdout {out:?}");
        assert!(
            err.contains(s(path)),
            "{what}: {args:?}: error does not name the file: {err:?}"
        );
        assert!(
            err.contains("not a"),
            "{what}: {args:?}: unclear error: {err:?}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{what}: {args:?}: {err:?}");
        assert!(
            std::fs::read(path).unwrap() == bytes,
            "{what}: {args:?} modified the file"
        );
    }
}

#[test]
fn garbage_file_is_refused_and_left_untouched() {
    let td = TempDir::new("garbage");
    let junk = td.join("junk.redb");
    let mut bytes = b"this is not a redb database, just some text\n".repeat(100);
    bytes.extend((0..=255u8).cycle().take(10_000));
    std::fs::write(&junk, &bytes).unwrap();
    assert_refused_untouched(&junk, "garbage");

    // A few bytes only.
    let tiny = td.join("tiny.redb");
    std::fs::write(&tiny, b"xyz").unwrap();
    assert_refused_untouched(&tiny, "three bytes");
}

#[test]
fn foreign_redb_file_is_refused_and_left_untouched() {
    let td = TempDir::new("foreign");
    // A real redb database of another program.
    let foreign = td.join("foreign.redb");
    {
        let d = redb::Database::create(&foreign).unwrap();
        let tx = d.begin_write().unwrap();
        {
            let t: TableDefinition<&str, &str> = TableDefinition::new("things");
            tx.open_table(t).unwrap().insert("a", "b").unwrap();
        }
        tx.commit().unwrap();
    }
    assert_refused_untouched(&foreign, "another program's redb file");
}

#[test]
fn redb_header_followed_by_garbage_is_left_untouched() {
    let td = TempDir::new("badredb");
    let path = td.join("broken.redb");
    let mut bytes = b"redb\x1A\x0A\xA9\x0D\x0A".to_vec();
    bytes.extend((0..20_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    std::fs::write(&path, &bytes).unwrap();
    for args in [
        vec!["serve", "--db", s(&path), "--listen", "127.0.0.1:0"],
        vec!["export", "--db", s(&path)],
        vec!["check", "--db", s(&path)],
    ] {
        let (code, out, err) = run_cli_within(&args, 10);
        assert_ne!(code, 0, "{args:?} accepted; stdout {out:?}");
        assert!(err.contains(s(&path)), "{args:?}: {err:?}");
        assert!(
            std::fs::read(&path).unwrap() == bytes,
            "{args:?} modified the file"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// --help
// ---------------------------------------------------------------------------------------------

#[test]
fn help_on_every_command() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["import", "--help"],
        vec!["export", "--help"],
        vec!["check", "--help"],
    ] {
        let (code, out, err) = run_cli(&args);
        assert_eq!(code, 0, "{args:?}: {out}{err}");
        assert!(out.contains("Usage"), "{args:?}: {out:?}");
    }
    let (_, out, _) = run_cli(&["serve", "--help"]);
    for opt in [
        "--db",
        "--listen",
        "--threads",
        "--language",
        "--seed",
        "--memory",
    ] {
        assert!(out.contains(opt), "serve --help lacks {opt}: {out}");
    }
    let (_, out, _) = run_cli(&["export", "--help"]);
    assert!(out.contains("--out") && out.contains("--db"), "{out}");
    // An unknown command or option is an error.
    assert_ne!(run_cli(&["frobnicate"]).0, 0);
    assert_ne!(run_cli(&["serve", "--no-such-option"]).0, 0);
}

#[test]
fn check_and_export_do_not_create_a_missing_database() {
    let td = TempDir::new("missing");
    let db = td.join("sub/none.redb");
    for cmd in ["check", "export"] {
        let (code, _out, err) = run_cli(&[cmd, "--db", s(&db)]);
        assert_ne!(code, 0, "{cmd}");
        assert!(err.contains("no database at"), "{cmd}: {err:?}");
        assert!(
            !db.exists() && !td.join("sub").exists(),
            "{cmd} created a file"
        );
    }
}
