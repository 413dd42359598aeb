//! The store when the disk or the file misbehaves: a write that fails mid-request (a file-size
//! limit), a schema version this binary does not know, a stored value that does not decode.
//! A database in use, and files that are not ours, are in `cli.rs`.

use crate::common::*;
use redb::{ReadableTable, TableDefinition};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

/// Copied from src/store/tables.rs.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const PROCESSES: TableDefinition<i64, &[u8]> = TableDefinition::new("processes");

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn names(srv: &Server) -> Vec<String> {
    let list = srv.list(7, 30);
    assert_eq!(list["result"], json!(true), "{list}");
    process_names(&list)
}

/// A write that fails mid-request: the server runs under a file-size limit (`RLIMIT_FSIZE`,
/// set on the live process with util-linux's `prlimit`) equal to its file's size, so the first
/// commit that must grow the file fails with EFBIG. That request gets 1199018; the server stays
/// up; earlier data stays readable; once the limit is lifted, writes work again; nothing of the
/// failed request is ever visible; and the file is clean afterwards.
#[test]
fn write_failure_is_answered_and_survived() {
    let _alone = serial();
    if !have_prlimit("write_failure_is_answered_and_survived") {
        return;
    }
    let dir = TempDir::new("efbig");
    let db = dir.join("cmdb.redb");
    let mut srv = Server::file(&db);
    let pid = srv.child.id();
    let mut written = vec![];
    let v = srv.create(&sizeable_batch("early", 10));
    assert_eq!(v["result"], json!(true), "{v}");
    written.extend((0..10).map(|i| format!("early-{i}")));

    // Only the soft limit: the hard one stays unlimited, so the soft one can be raised again.
    let size = std::fs::metadata(&db).unwrap().len();
    prlimit(pid, &format!("--fsize={size}:"));
    let mut failed = None;
    for k in 0..100 {
        let tag = format!("b{k}");
        let v = srv.create(&sizeable_batch(&tag, 100));
        if v["result"] == json!(true) {
            written.extend((0..100).map(|i| format!("{tag}-{i}")));
        } else {
            assert_eq!(v, err_native(1199018, "New data failed"));
            failed = Some(tag);
            break;
        }
    }
    let failed = failed.unwrap_or_else(|| panic!("no write failed under a {size}-byte limit"));
    eprintln!(
        "file-size limit {size} bytes: request {failed} failed after {} processes",
        written.len()
    );
    // The server is up and reads what it had.
    let now = names(&srv);
    for n in &written {
        assert!(now.contains(n), "{n} unreadable after the failure");
    }
    assert!(
        !now.iter().any(|n| n.starts_with(&format!("{failed}-"))),
        "part of the failed request {failed} is visible"
    );
    // Still failing while the limit holds, and still up.
    let v = srv.create(&sizeable_batch("while-full", 100));
    assert_eq!(v, err_native(1199018, "New data failed"));
    assert_eq!(names(&srv).len(), now.len());

    // Space returns: writes work again once the store tries the file again (a few seconds at
    // most: while it failed, only one write per interval tried it).
    prlimit(pid, "--fsize=unlimited:");
    let started = std::time::Instant::now();
    loop {
        let v = srv.create(&sizeable_batch("after", 100));
        if v["result"] == json!(true) {
            break;
        }
        assert_eq!(v, err_native(1199018, "New data failed"));
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "writes never resumed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    written.extend((0..100).map(|i| format!("after-{i}")));
    let now = names(&srv);
    for n in &written {
        assert!(now.contains(n), "{n} missing after the limit was lifted");
    }
    for gone in [&failed, "while-full"] {
        assert!(
            !now.iter().any(|n| n.starts_with(&format!("{gone}-"))),
            "part of the failed request {gone} appeared"
        );
    }

    send_signal(&srv.child, SIGTERM);
    let status = wait_exit(&mut srv.child, Duration::from_secs(20)).expect("exit");
    assert!(status.success(), "{status:?}");
    assert_clean(&db);
    let srv = Server::file(&db);
    let again = names(&srv);
    for n in &written {
        assert!(again.contains(n), "{n} missing after a restart");
    }
    assert_eq!(again.len(), now.len());
}

/// Writers and readers on keep-alive connections while writes start failing and the store
/// reopens its file, then while the disk has room again: every answer is a success or the
/// storage error, reads never fail, nothing hangs, every acknowledged batch is there whole and
/// every refused one absent.
#[test]
fn concurrent_load_through_write_failures() {
    let _alone = serial();
    if !have_prlimit("concurrent_load_through_write_failures") {
        return;
    }
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let dir = TempDir::new("efbig-load");
    let db = dir.join("cmdb.redb");
    let mut srv = Server::file(&db);
    let pid = srv.child.id();
    let size = std::fs::metadata(&db).unwrap().len();
    prlimit(pid, &format!("--fsize={size}:"));
    let stop = Arc::new(AtomicBool::new(false));
    // (tag, acknowledged) for every batch sent.
    let sent = Arc::new(Mutex::new(Vec::<(String, bool)>::new()));
    let mut handles = vec![];
    for w in 0..4 {
        let (addr, stop, sent) = (srv.addr.clone(), stop.clone(), sent.clone());
        handles.push(std::thread::spawn(move || {
            let mut conn = Conn::open(&addr);
            let mut k = 0;
            while !stop.load(Ordering::Relaxed) {
                k += 1;
                let tag = format!("w{w}k{k}");
                let n = if k % 3 == 0 { 40 } else { 1 };
                let body = sizeable_batch(&tag, n).to_string();
                let r = conn.send(
                    "POST",
                    "/api/v3/create/proc/process_instance",
                    &NATIVE_EN,
                    body.as_bytes(),
                );
                let v = r.json();
                let ok = v["result"] == json!(true);
                if !ok {
                    assert_eq!(v, err_native(1199018, "New data failed"), "{tag}");
                }
                sent.lock().unwrap().push((tag, ok));
            }
        }));
    }
    let reads = Arc::new(Mutex::new(0usize));
    for _ in 0..2 {
        let (addr, stop, reads) = (srv.addr.clone(), stop.clone(), reads.clone());
        handles.push(std::thread::spawn(move || {
            let mut conn = Conn::open(&addr);
            while !stop.load(Ordering::Relaxed) {
                let r = conn.send(
                    "POST",
                    "/api/v3/findmany/proc/process_instance",
                    &NATIVE_EN,
                    br#"{"bk_biz_id":7,"service_instance_id":30}"#,
                );
                let v = r.json();
                assert_eq!(v["result"], json!(true), "a read failed: {v}");
                *reads.lock().unwrap() += 1;
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(400));
    let during = sent.lock().unwrap().len();
    prlimit(pid, "--fsize=unlimited:");
    // Writes resume within the store's probe interval (at most a few seconds).
    let lifted = std::time::Instant::now();
    while !sent.lock().unwrap()[during..].iter().any(|(_, ok)| *ok)
        && lifted.elapsed() < Duration::from_secs(20)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().expect("a client thread failed");
    }
    let sent = Arc::try_unwrap(sent).unwrap().into_inner().unwrap();
    let refused = sent.iter().filter(|(_, ok)| !ok).count();
    assert!(refused > 0, "no write failed under the limit");
    assert!(
        sent[during..].iter().any(|(_, ok)| *ok),
        "no write succeeded after the limit was lifted"
    );
    let now = names(&srv);
    for (tag, ok) in &sent {
        let n = if tag.ends_with(|c: char| c.is_ascii_digit())
            && tag.rsplit('k').next().unwrap().parse::<usize>().unwrap() % 3 == 0
        {
            40
        } else {
            1
        };
        let present = (0..n)
            .filter(|i| now.contains(&format!("{tag}-{i}")))
            .count();
        assert_eq!(
            present,
            if *ok { n } else { 0 },
            "batch {tag} (acknowledged: {ok})"
        );
    }
    eprintln!(
        "through write failures: {} batches acknowledged, {refused} refused with 1199018, {} reads, all good",
        sent.len() - refused,
        reads.lock().unwrap()
    );
    send_signal(&srv.child, SIGTERM);
    let status = wait_exit(&mut srv.child, Duration::from_secs(20)).expect("exit");
    assert!(status.success(), "{status:?}");
    assert_clean(&db);
}

/// A store written by a schema version this binary does not know: every command refuses it,
/// promptly, with one clear line, and leaves the file as it was.
#[test]
fn unknown_schema_version_is_refused_untouched() {
    let dir = TempDir::new("schema");
    let db = dir.join("cmdb.redb");
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/demo.json");
    let (code, _, err) = run_cli(&["import", s(&demo), "--db", s(&db)]);
    assert_eq!(code, 0, "{err}");
    {
        let d = redb::Database::open(&db).unwrap();
        let tx = d.begin_write().unwrap();
        tx.open_table(META)
            .unwrap()
            .insert("schema_version", [9u8].as_slice())
            .unwrap();
        tx.commit().unwrap();
    }
    let bytes = std::fs::read(&db).unwrap();
    for args in [
        vec!["serve", "--db", s(&db), "--listen", "127.0.0.1:0"],
        vec!["check", "--db", s(&db)],
        vec!["export", "--db", s(&db)],
        vec!["import", s(&demo), "--db", s(&db)],
    ] {
        let (code, out, err) = run_cli_within(&args, 10);
        assert_ne!(code, 0, "{args:?} accepted it: {out}");
        assert!(
            err.contains("schema version 9") && err.contains(s(&db)),
            "{args:?}: unclear error: {err:?}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err:?}");
        assert!(
            std::fs::read(&db).unwrap() == bytes,
            "{args:?} modified the file"
        );
    }
}

/// A stored value whose version byte is unknown (damage, or a half-done migration): the
/// request that meets it gets 1199017, the server stays up, and `check` names the record.
#[test]
fn undecodable_record_is_an_error_not_a_crash() {
    let dir = TempDir::new("badvalue");
    let db = dir.join("cmdb.redb");
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/demo.json");
    let (code, _, err) = run_cli(&["import", s(&demo), "--db", s(&db)]);
    assert_eq!(code, 0, "{err}");
    {
        let d = redb::Database::open(&db).unwrap();
        let tx = d.begin_write().unwrap();
        {
            let mut t = tx.open_table(PROCESSES).unwrap();
            let mut value = t.get(41).unwrap().unwrap().value().to_vec();
            value[0] = 9;
            t.insert(41, value.as_slice()).unwrap();
        }
        tx.commit().unwrap();
    }
    let srv = Server::file(&db);
    assert_eq!(srv.list(7, 30), err_native(1199017, "Failed to query data"));
    // Other records still answer.
    let other = srv.list(7, 31);
    assert_eq!(
        other["data"][0]["property"]["bk_process_id"],
        json!(40),
        "{other}"
    );
    srv.kill();
    let (code, out, err) = run_cli(&["check", "--repair", "--db", s(&db)]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("process 41: stored value has schema version 9"),
        "{out}"
    );
}
