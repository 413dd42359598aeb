//! The test-double routes of `serve --admin`: reset, load (strict datasets and lenient
//! fixtures), the request journal and fault injection, and their 404 without `--admin`.

use crate::common::*;
use cmdb_lite::limits::{JOURNAL_MAX_BODY_BYTES, JOURNAL_MAX_ENTRIES};
use cmdb_lite::store::StoreError;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CREATE: &str = "/api/v3/create/proc/process_instance";
const ESB_CREATE: &str = "/api/c/compapi/v2/cc/create_process_instance/";

fn admin() -> Server {
    Server::start(&["--memory", "--admin"])
}

/// An admin call; returns (status, answer).
fn call(s: &Server, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let raw = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let r = s.request(method, path, &[], &raw);
    (r.status, r.json())
}

/// An admin call that must succeed; returns its `data`.
#[track_caller]
fn ok(s: &Server, method: &str, path: &str, body: &Value) -> Value {
    let (status, v) = call(s, method, path, body);
    assert_eq!(status, 200, "{method} {path}: {v}");
    assert_eq!(v["result"], json!(true), "{v}");
    v["data"].clone()
}

fn create_one(s: &Server, name: &str) -> Value {
    s.create(
        &json!({"bk_biz_id": 7, "service_instance_id": 30, "processes": [
        {"process_info": {"bk_process_name": name, "bk_func_name": name}}]}),
    )
}

fn names(s: &Server, biz: i64, si: i64) -> BTreeSet<String> {
    process_names(&s.list(biz, si)).into_iter().collect()
}

#[test]
fn admin_routes_answer_404_without_admin() {
    let s = Server::memory();
    assert_eq!(create_one(&s, "a")["data"], json!([42]));
    for (method, path) in [
        ("POST", "/_cmdb/reset"),
        ("POST", "/_cmdb/load"),
        ("GET", "/_cmdb/requests"),
        ("DELETE", "/_cmdb/requests"),
        ("POST", "/_cmdb/faults"),
        ("GET", "/_cmdb/faults"),
        ("DELETE", "/_cmdb/faults"),
        ("POST", "/_cmdb/reset/"),
    ] {
        let r = s.request(method, path, &[], br#"{"drop": true}"#);
        assert_eq!(r.status, 404, "{method} {path}: {}", r.body);
        assert_eq!(
            r.json(),
            err_native(1199998, &format!("no API at {method} {path}")),
            "{method} {path}"
        );
    }
    // Nothing was reset, and no fault is in force.
    assert_eq!(create_one(&s, "b")["data"], json!([43]));
}

#[test]
fn reset_goes_back_to_the_seed_on_the_same_port_and_connection() {
    let s = admin();
    let mut conn = Conn::open(&s.addr);
    let body = json!({"bk_biz_id": 7, "service_instance_id": 30, "processes": [
        {"process_info": {"bk_process_name": "x", "bk_func_name": "x"}}]});
    let created = conn.send("POST", CREATE, &NATIVE_EN, body.to_string().as_bytes());
    assert_eq!(created.json()["data"], json!([42]));
    assert!(names(&s, 7, 30).contains("x"));
    ok(
        &s,
        "POST",
        "/_cmdb/faults",
        &json!({"operation": "nothing", "code": 1}),
    );

    // The reset answers on a keep-alive connection too, which stays open.
    let r = conn.send("POST", "/_cmdb/reset", &[], b"");
    assert_eq!(r.status, 200, "{}", r.body);
    let data = r.json()["data"].clone();
    assert_eq!(data["records"], json!(34), "{data}");
    assert!(data["micros"].as_u64().is_some(), "{data}");
    assert!(!names(&s, 7, 30).contains("x"));
    // The seed's sequences again: the same create gets the same id.
    let again = conn.send("POST", CREATE, &NATIVE_EN, body.to_string().as_bytes());
    assert_eq!(again.json()["data"], json!([42]));
    // The reset cleared the journal (only the create and the list after it) and the faults.
    let journal = ok(&s, "GET", "/_cmdb/requests", &Value::Null);
    assert_eq!(journal["count"], json!(2), "{journal}");
    assert_eq!(
        ok(&s, "GET", "/_cmdb/faults", &Value::Null),
        json!({"count": 0, "info": []})
    );
}

#[test]
fn a_reset_while_eight_clients_create_is_wholly_before_or_after_each_create() {
    let td = TempDir::new("admin-reset-race");
    let db = td.join("cmdb.redb");
    let s = Server::start(&["--db", db.to_str().unwrap(), "--admin"]);
    struct Done {
        name: String,
        start: Instant,
        end: Instant,
        ok: bool,
    }
    let done = Arc::new(Mutex::new(Vec::<Done>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let after_reset = Arc::new(AtomicUsize::new(0));
    let reset_end: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let mut clients = Vec::new();
    for c in 0..8 {
        let (addr, done, stop) = (s.addr.clone(), done.clone(), stop.clone());
        let (after_reset, reset_end) = (after_reset.clone(), reset_end.clone());
        clients.push(std::thread::spawn(move || {
            let mut conn = Conn::open(&addr);
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let name = format!("c{c}-{i}");
                let body = json!({"bk_biz_id": 7, "service_instance_id": 30, "processes": [
                    {"process_info": {"bk_process_name": format!("{name}-a"), "bk_func_name": format!("{name}-a")}},
                    {"process_info": {"bk_process_name": format!("{name}-b"), "bk_func_name": format!("{name}-b")}}]});
                let start = Instant::now();
                let r = conn.send("POST", CREATE, &NATIVE_EN, body.to_string().as_bytes());
                let end = Instant::now();
                let ok = r.json()["result"] == json!(true);
                assert!(ok, "{}", r.body);
                if reset_end.lock().unwrap().is_some_and(|t| start > t) {
                    after_reset.fetch_add(1, Ordering::SeqCst);
                }
                done.lock().unwrap().push(Done {
                    name,
                    start,
                    end,
                    ok,
                });
                i += 1;
            }
        }));
    }
    // Let every client create a few times first.
    while done.lock().unwrap().len() < 40 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let reset_start = Instant::now();
    ok(&s, "POST", "/_cmdb/reset", &Value::Null);
    *reset_end.lock().unwrap() = Some(Instant::now());
    let reset_end = reset_end.lock().unwrap().unwrap();
    while after_reset.load(Ordering::SeqCst) < 40 {
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().unwrap();
    }
    let present = names(&s, 7, 30);
    let done = done.lock().unwrap();
    let (mut before, mut after, mut overlapping) = (0, 0, 0);
    for d in done.iter() {
        assert!(d.ok);
        let a = present.contains(&format!("{}-a", d.name));
        let b = present.contains(&format!("{}-b", d.name));
        assert_eq!(a, b, "{}: half a create survived the reset", d.name);
        if d.end < reset_start {
            assert!(
                !a,
                "{} was answered before the reset, yet survived it",
                d.name
            );
            before += 1;
        } else if d.start > reset_end {
            assert!(a, "{} was answered after the reset, yet is gone", d.name);
            after += 1;
        } else {
            overlapping += 1;
        }
    }
    println!("creates before the reset {before}, after it {after}, overlapping it {overlapping}");
    assert!(before > 0 && after > 0);
    // The seed's processes are back, and the store is consistent.
    assert!(present.contains("billing"), "{present:?}");
    s.kill();
    let (code, out, err) = run_cli(&["check", "--repair", "--db", db.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn a_fault_answers_the_next_three_creates_with_1199014_then_stops() {
    let s = admin();
    let id = ok(
        &s,
        "POST",
        "/_cmdb/faults",
        &json!({"operation": "create_process_instance", "times": 3,
                "code": 1199014, "message": "duplicated by the test"}),
    );
    assert_eq!(id, json!({"id": 1}));
    // Another operation is not touched.
    assert_eq!(s.list(7, 30)["result"], json!(true));
    let listed = ok(&s, "GET", "/_cmdb/faults", &Value::Null);
    assert_eq!(listed["info"][0]["remaining"], json!(3), "{listed}");
    for i in 0..3 {
        let native = create_one(&s, &format!("n{i}"));
        assert_eq!(native, err_native(1199014, "duplicated by the test"));
    }
    // The faulted calls created nothing; the fourth is served.
    assert_eq!(create_one(&s, "n3")["data"], json!([42]));
    assert_eq!(
        ok(&s, "GET", "/_cmdb/faults", &Value::Null),
        json!({"count": 0, "info": []})
    );
    let journal = ok(
        &s,
        "GET",
        "/_cmdb/requests?operation=create_process_instance",
        &Value::Null,
    );
    let codes: Vec<(Value, Value)> = journal["info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["bk_error_code"].clone(), e["fault"].clone()))
        .collect();
    assert_eq!(
        codes,
        vec![
            (json!(1199014), json!(true)),
            (json!(1199014), json!(true)),
            (json!(1199014), json!(true)),
            (json!(0), json!(false)),
        ]
    );
}

#[test]
fn a_fault_without_a_message_answers_the_codes_text_in_both_languages() {
    let s = admin();
    ok(
        &s,
        "POST",
        "/_cmdb/faults",
        &json!({"operation": "list_process_instance", "times": 2, "code": 1199019}),
    );
    let body = json!({"bk_biz_id": 7, "service_instance_id": 30});
    assert_eq!(
        s.native("/api/v3/findmany/proc/process_instance", &body),
        err_native(1199019, "No relevant data found")
    );
    assert_eq!(
        s.native_zh("/api/v3/findmany/proc/process_instance", &body),
        err_native(1199019, "未找到相关数据")
    );
    // Each family's envelope: the gateway's and the ESB's.
    ok(
        &s,
        "POST",
        "/_cmdb/faults",
        &json!({"operation": "*", "times": 2, "code": 1199019, "status": 503}),
    );
    let r = s.request(
        "POST",
        "/api/bk-cmdb/prod/api/v3/findmany/proc/process_instance",
        &[("X-Bkcmdb-Language", "en")],
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 503);
    assert_eq!(r.json(), err_esb(1199019, "No relevant data found"));
    let r = s.request(
        "POST",
        "/api/c/compapi/v2/cc/list_process_instance/",
        &[("X-Request-Id", "rid-1")],
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 503);
    assert_eq!(
        r.json(),
        json!({"result": false, "code": 1199019, "message": "未找到相关数据",
               "permission": null, "request_id": "rid-1", "data": null})
    );
}

#[test]
fn faults_delay_drop_and_fraction() {
    let s = admin();
    // A delay alone: the call is then served as usual.
    ok(
        &s,
        "POST",
        "/_cmdb/faults",
        &json!({"operation": "create_process_instance", "times": 1, "delay_ms": 300}),
    );
    let t = Instant::now();
    assert_eq!(create_one(&s, "slow")["data"], json!([42]));
    assert!(t.elapsed() >= Duration::from_millis(300));

    // A dropped connection: no answer at all, and nothing created.
    ok(
        &s,
        "POST",
        "/_cmdb/faults",
        &json!({"operation": "create_process_instance", "times": 1, "drop": true}),
    );
    let mut conn = Conn::open(&s.addr);
    let body = json!({"bk_biz_id": 7, "service_instance_id": 30, "processes": [
        {"process_info": {"bk_process_name": "dropped", "bk_func_name": "dropped"}}]});
    assert!(
        conn.try_send("POST", CREATE, &NATIVE_EN, body.to_string().as_bytes())
            .is_none()
    );
    assert!(!names(&s, 7, 30).contains("dropped"));
    assert_eq!(create_one(&s, "next")["data"], json!([43]));
    let journal = ok(&s, "GET", "/_cmdb/requests", &Value::Null);
    let dropped: Vec<&Value> = journal["info"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["status"] == json!(0))
        .collect();
    assert_eq!(dropped.len(), 1, "{journal}");
    assert_eq!(dropped[0]["fault"], json!(true));

    // A fraction with a seed: some calls fail, some do not, until the rule is deleted.
    ok(
        &s,
        "POST",
        "/_cmdb/faults",
        &json!({"operation": "list_process_instance", "fraction": 0.5, "seed": 3,
                "code": 1199017, "message": "flaky"}),
    );
    let mut failed = 0;
    for _ in 0..40 {
        if s.list(7, 30)["result"] == json!(false) {
            failed += 1;
        }
    }
    assert!((1..40).contains(&failed), "{failed} of 40 failed");
    assert_eq!(
        ok(&s, "DELETE", "/_cmdb/faults", &Value::Null),
        json!({"cleared": 1})
    );
    for _ in 0..10 {
        assert_eq!(s.list(7, 30)["result"], json!(true));
    }
}

#[test]
fn bad_fault_rules_are_refused_with_400() {
    let s = admin();
    for (body, code, msg) in [
        (
            json!({"operation": "x"}),
            1199006,
            "a fault needs code, status, delay_ms or drop",
        ),
        (
            json!({"code": 1, "fraction": 2.0}),
            1199006,
            "fraction must be in (0, 1], not 2",
        ),
        (
            json!({"code": 1, "times": 0}),
            1199006,
            "times must be at least 1",
        ),
        (
            json!({"delay_ms": 60001}),
            1199006,
            "delay_ms may be at most 60000",
        ),
    ] {
        assert_eq!(
            call(&s, "POST", "/_cmdb/faults", &body),
            (400, err_native(code, msg)),
            "{body}"
        );
    }
    let r = s.request("POST", "/_cmdb/faults", &[], b"{not json");
    assert_eq!(r.status, 400);
    assert_eq!(r.json(), err_native(1199000, "the body is not JSON"));
    let (status, v) = call(
        &s,
        "POST",
        "/_cmdb/faults",
        &json!({"code": 1, "colour": 2}),
    );
    assert_eq!(status, 400);
    assert!(
        v["bk_error_msg"]
            .as_str()
            .unwrap()
            .contains("unknown field `colour`"),
        "{v}"
    );
    let (status, v) = call(&s, "PUT", "/_cmdb/faults", &Value::Null);
    assert_eq!(status, 405, "{v}");
}

#[test]
fn the_journal_records_each_call_with_its_answer() {
    let s = admin();
    let body = json!({"bk_biz_id": 7, "service_instance_id": 30});
    let mut headers = NATIVE_EN.to_vec();
    headers.push(("X-Request-Id", "rid-journal"));
    s.request(
        "POST",
        "/api/v3/findmany/proc/process_instance?x=1",
        &headers,
        body.to_string().as_bytes(),
    );
    s.request("POST", ESB_CREATE, &[], b"{bad");
    s.request("GET", "/api/v3/nothing/here", &[], b"");
    let long = format!("{{\"pad\":\"{}\"}}", "x".repeat(JOURNAL_MAX_BODY_BYTES));
    s.request("POST", CREATE, &NATIVE_EN, long.as_bytes());
    let journal = ok(&s, "GET", "/_cmdb/requests", &Value::Null);
    assert_eq!(journal["count"], json!(4));
    assert_eq!(journal["dropped"], json!(0));
    let info = journal["info"].as_array().unwrap();
    let mut first = info[0].clone();
    assert!(first["time"].as_str().unwrap().ends_with('Z'), "{first}");
    first["time"] = json!("T");
    assert_eq!(
        first,
        json!({"time": "T", "request_id": "rid-journal", "family": "native",
               "operation": "list_process_instance", "method": "POST",
               "path": "/api/v3/findmany/proc/process_instance?x=1",
               "body": body.to_string(), "truncated": false, "status": 200,
               "bk_error_code": 0, "fault": false})
    );
    assert_eq!(
        (
            &info[1]["family"],
            &info[1]["operation"],
            &info[1]["bk_error_code"]
        ),
        (
            &json!("esb"),
            &json!("create_process_instance"),
            &json!(1199000)
        )
    );
    assert_eq!(info[1]["body"], json!("{bad"));
    assert_eq!(
        (
            &info[2]["operation"],
            &info[2]["status"],
            &info[2]["bk_error_code"]
        ),
        (&Value::Null, &json!(404), &json!(1199998))
    );
    assert_eq!(info[3]["truncated"], json!(true));
    assert_eq!(
        info[3]["body"].as_str().unwrap().len(),
        JOURNAL_MAX_BODY_BYTES
    );
    // Filtered by operation; admin calls are not journaled; a clear says how many went.
    let only = ok(
        &s,
        "GET",
        "/_cmdb/requests?operation=create_process_instance",
        &Value::Null,
    );
    assert_eq!(only["count"], json!(2));
    assert_eq!(
        ok(&s, "DELETE", "/_cmdb/requests", &Value::Null),
        json!({"cleared": 4})
    );
    assert_eq!(
        ok(&s, "GET", "/_cmdb/requests", &Value::Null),
        json!({"count": 0, "dropped": 0, "info": []})
    );
}

#[test]
fn the_journal_stays_bounded_under_load() {
    let s = admin();
    let total = JOURNAL_MAX_ENTRIES + 300;
    let per = total / 4;
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let addr = s.addr.clone();
            std::thread::spawn(move || {
                let mut conn = Conn::open(&addr);
                for i in 0..per {
                    let body =
                        json!({"bk_biz_id": 7, "service_instance_id": 30, "n": format!("{t}-{i}")});
                    let r = conn.send(
                        "POST",
                        "/api/v3/findmany/proc/process_instance",
                        &NATIVE_EN,
                        body.to_string().as_bytes(),
                    );
                    assert_eq!(r.status, 200);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let journal = ok(&s, "GET", "/_cmdb/requests", &Value::Null);
    assert_eq!(journal["count"], json!(JOURNAL_MAX_ENTRIES));
    assert_eq!(journal["dropped"], json!(per * 4 - JOURNAL_MAX_ENTRIES));
    assert_eq!(
        journal["info"].as_array().unwrap().len(),
        JOURNAL_MAX_ENTRIES
    );
}

fn fixture() -> Value {
    json!({
        "format": "cmdb-lite/fixture-1",
        "businesses": [{"bk_biz_id": 3}],
        "hosts": [{"bk_host_id": 5, "bk_host_innerip": "10.0.0.5"}],
        "service_instances": [{"id": 9, "bk_host_id": 5}],
        "processes": [
            {"service_instance_id": 9, "bk_process_name": "nginx"},
            {"service_instance_id": 9, "bk_process_name": "redis"}
        ]
    })
}

#[test]
fn a_lenient_fixture_is_stored_as_bk_cmdb_would_store_it() {
    let s = admin();
    let data = ok(&s, "POST", "/_cmdb/load", &fixture());
    // business, host, module (made), 2 built-in categories, instance, 2 processes, and the
    // topology's built-in records (resource pool, idle set and modules, default cloud area)
    assert_eq!(data["records"], json!(19), "{data}");
    let listed = s.list(3, 9);
    let procs = listed["data"].as_array().unwrap();
    assert_eq!(procs.len(), 2, "{listed}");
    let time = procs[0]["property"]["create_time"].clone();
    assert!(time.as_str().unwrap().ends_with('Z'), "{time}");
    for (i, name) in ["nginx", "redis"].into_iter().enumerate() {
        let pid = i as i64 + 1;
        assert_eq!(
            procs[i],
            json!({"property": {
                "auto_start": false, "bind_info": null, "bk_biz_id": 3,
                "bk_created_at": time, "bk_created_by": "admin", "bk_func_name": name,
                "bk_process_id": pid, "bk_process_name": name,
                "bk_start_check_secs": null, "bk_start_param_regex": "",
                "bk_supplier_account": "0", "bk_updated_at": time, "bk_updated_by": null,
                "create_time": time, "description": "", "face_stop_cmd": "",
                "last_time": time, "pid_file": "", "priority": null, "proc_num": null,
                "reload_cmd": "", "restart_cmd": "", "service_instance_id": 9,
                "start_cmd": "", "stop_cmd": "", "timeout": null, "user": "", "work_path": ""},
              "relation": {"bk_biz_id": 3, "bk_process_id": pid, "service_instance_id": 9,
                "process_template_id": 0, "bk_host_id": 5, "bk_supplier_account": "0"}}),
            "{name}"
        );
    }
    // The instance is named as bk-cmdb names it, and the next ids follow the fixture's.
    let si = s.native(
        "/api/v3/findmany/proc/service_instance",
        &json!({"bk_biz_id": 3}),
    );
    assert_eq!(
        si["data"]["info"][0]["name"],
        json!("10.0.0.5_nginx"),
        "{si}"
    );
    let created = s.create(
        &json!({"bk_biz_id": 3, "service_instance_id": 9, "processes": [
        {"process_info": {"bk_process_name": "php", "bk_func_name": "php"}}]}),
    );
    assert_eq!(created["data"], json!([3]));
    // The process create_process_instance stores is the fixture's, field for field.
    let listed = s.list(3, 9);
    let mut made = listed["data"][2]["property"].clone();
    let mut filled = listed["data"][1]["property"].clone();
    for key in [
        "bk_process_id",
        "bk_process_name",
        "bk_func_name",
        "create_time",
        "last_time",
        "bk_created_at",
        "bk_updated_at",
    ] {
        made.as_object_mut().unwrap().remove(key);
        filled.as_object_mut().unwrap().remove(key);
    }
    assert_eq!(made, filled);
}

#[test]
fn the_same_fixture_as_a_strict_dataset_is_refused_naming_the_missing_field() {
    let s = admin();
    let mut strict = fixture();
    strict["format"] = json!("cmdb-lite/1");
    let (status, v) = call(&s, "POST", "/_cmdb/load", &strict);
    assert_eq!(status, 400);
    let msg = v["bk_error_msg"].as_str().unwrap();
    assert_eq!(v["bk_error_code"], json!(1199006));
    assert!(
        msg.starts_with("load: not a dataset: missing field `bk_biz_id`"),
        "{msg}"
    );
    // Refused: the demo is still there.
    assert!(names(&s, 7, 30).contains("billing"));
}

#[test]
fn a_refused_load_leaves_the_store_as_it_was() {
    let s = admin();
    assert_eq!(create_one(&s, "kept")["data"], json!([42]));
    let mut bad = fixture();
    bad["processes"][1]["proc_num"] = json!(0);
    let (status, v) = call(&s, "POST", "/_cmdb/load", &bad);
    assert_eq!(status, 400, "{v}");
    assert_eq!(
        v["bk_error_msg"],
        json!(
            "load: processes[1]: ''启动数量' data parameter verification does not pass' \
             the parameter is invalid or does not exist"
        )
    );
    let mut dup = fixture();
    dup["processes"][1]["bk_process_name"] = json!("nginx");
    let (status, v) = call(&s, "POST", "/_cmdb/load", &dup);
    assert_eq!(status, 400, "{v}");
    assert!(
        v["bk_error_msg"].as_str().unwrap().contains("not unique"),
        "{v}"
    );
    let r = s.request("POST", "/_cmdb/load", &[], b"[1,2");
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(names(&s, 7, 30).contains("kept"));
    assert_eq!(create_one(&s, "after")["data"], json!([43]));
}

#[test]
fn load_takes_a_strict_dataset_and_reset_still_goes_back_to_the_seed() {
    let s = admin();
    let mut ds = demo_dataset();
    ds["processes"][1]["bk_process_name"] = json!("loaded-billing");
    ds["sequences"]["process"] = json!(500);
    ok(&s, "POST", "/_cmdb/load", &ds);
    assert!(names(&s, 7, 30).contains("loaded-billing"));
    assert_eq!(create_one(&s, "x")["data"], json!([501]));
    ok(&s, "POST", "/_cmdb/reset", &Value::Null);
    assert!(names(&s, 7, 30).contains("billing"));
    assert_eq!(create_one(&s, "x")["data"], json!([42]));
}

#[test]
fn a_fixture_seed_is_loaded_at_start_and_by_every_reset() {
    let td = TempDir::new("admin-fixture-seed");
    let path = td.join("fixture.json");
    std::fs::write(&path, fixture().to_string()).unwrap();
    let s = Server::start(&["--memory", "--admin", "--seed", path.to_str().unwrap()]);
    assert_eq!(s.list(3, 9)["data"].as_array().unwrap().len(), 2);
    ok(&s, "POST", "/_cmdb/load", &json!({"format": "cmdb-lite/1"}));
    assert_eq!(s.list(3, 9), ok_native(json!([])));
    ok(&s, "POST", "/_cmdb/reset", &Value::Null);
    assert_eq!(s.list(3, 9)["data"].as_array().unwrap().len(), 2);
}

/// Prints how long a reset of a store of `CMDB_RESET_PROCESSES` processes takes (default
/// 100,000 in a release build, 10,000 in a debug build, where building the store is slow), on a database file, against the reset of the seed alone measured in the same run
/// (the floor: the same transaction and sync with nothing to free). Asserts only what the reset
/// leaves behind; the figure is for README ("Using it in your tests").
#[test]
fn reset_of_a_large_store_prints_its_time() {
    use cmdb_lite::seed::{self, Seed};
    use cmdb_lite::store::Store;
    use cmdb_lite::store::records::Relation;
    let n: i64 = std::env::var("CMDB_RESET_PROCESSES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) {
            10_000
        } else {
            100_000
        });
    let td = TempDir::new("admin-reset-size");
    let path = td.join("cmdb.redb");
    let store = Store::open(&path, 16 << 20).unwrap();
    seed::seed(&store, &Seed::Demo).unwrap();
    let mut floor = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        seed::reset(&store, &Seed::Demo).unwrap();
        floor.push(t.elapsed());
    }
    let template = demo_dataset()["processes"][1].clone();
    let built = Instant::now();
    store
        .write_alone::<_, StoreError>(|tx| {
            for pid in 1000..1000 + n {
                let mut map = template.as_object().unwrap().clone();
                let rel: Relation =
                    serde_json::from_value(map.remove("relation").unwrap()).unwrap();
                let rel = Relation {
                    bk_process_id: pid,
                    ..rel
                };
                map.insert("bk_process_id".into(), json!(pid));
                map.insert("bk_process_name".into(), json!(format!("p{pid}")));
                map.insert("bk_func_name".into(), json!(format!("p{pid}")));
                tx.put_process(pid, &map, &rel)?;
            }
            Ok(())
        })
        .unwrap();
    let built = built.elapsed();
    let size = std::fs::metadata(&path).unwrap().len();
    let t = Instant::now();
    let records = seed::reset(&store, &Seed::Demo).unwrap();
    let reset = t.elapsed();
    assert_eq!(records, 34);
    let left = store
        .read(|tx| {
            let mut n = 0;
            tx.scan_bytes::<StoreError>(cmdb_lite::store::tables::PROCESSES, |_, _| {
                n += 1;
                Ok(true)
            })?;
            Ok::<_, StoreError>(n)
        })
        .unwrap();
    assert_eq!(left, 2, "only the seed's processes are left");
    let floor = floor.iter().min().unwrap();
    println!(
        "reset of {n} processes ({:.1} MB file, built in {:.1} s): {:.1} ms; \
         reset of the seed alone (floor, best of 3): {:.1} ms; ratio {:.1}",
        size as f64 / 1e6,
        built.as_secs_f64(),
        reset.as_secs_f64() * 1e3,
        floor.as_secs_f64() * 1e3,
        reset.as_secs_f64() / floor.as_secs_f64()
    );
    store.close().unwrap();
}

#[test]
fn fixture_templates_are_stored_as_their_create_apis_store_them() {
    let s = admin();
    let fixture = json!({
        "format": "cmdb-lite/fixture-1",
        "businesses": [{"bk_biz_id": 7, "bk_biz_name": "shop"}],
        "hosts": [{"bk_host_id": 11, "bk_host_innerip": "10.0.0.11"}],
        "service_templates": [{"id": 4, "name": "tpl-fixture"}],
        "process_templates": [{"service_template_id": 4, "bk_process_name": "envoy",
                               "property": {"bind_info": {"value": [
                                   {"ip": {"value": "1"}, "port": {"value": "80"},
                                    "protocol": {"value": "1"}, "enable": {"value": true}}]}}}],
        "modules": [{"bk_module_id": 20, "service_template_id": 4, "hosts": [11]}]
    });
    ok(&s, "POST", "/_cmdb/load", &fixture);
    // The same template and process template made through the APIs.
    let st = s.native(
        "/api/v3/create/proc/service_template",
        &json!({"bk_biz_id": 7, "name": "tpl-api", "service_category_id": 2}),
    );
    let st_id = st["data"]["id"].as_i64().unwrap();
    assert_eq!(st_id, 5, "{st}");
    let pt = s.native(
        "/api/v3/createmany/proc/proc_template",
        &json!({"bk_biz_id": 7, "service_template_id": st_id, "processes": [{"spec": {
            "bk_process_name": {"value": "envoy"}, "bk_func_name": {"value": "envoy"},
            "bind_info": {"value": [{"ip": {"value": "1"}, "port": {"value": "80"},
                                     "protocol": {"value": "1"}, "enable": {"value": true}}]}}}]}),
    );
    assert_eq!(pt["data"], json!([2]), "{pt}");
    let get = |id: i64| {
        let mut v = s.native(
            &format!("/api/v3/find/proc/proc_template/id/{id}"),
            &json!({"bk_biz_id": 7}),
        )["data"]
            .clone();
        let o = v.as_object_mut().unwrap();
        for k in ["id", "service_template_id", "create_time", "last_time"] {
            assert!(o.remove(k).is_some(), "{k}");
        }
        v
    };
    assert_eq!(get(1), get(2));
    let get_st = |id: i64| {
        let mut v = s.native_method(
            "GET",
            &format!("/api/v3/find/proc/service_template/{id}"),
            &Value::Null,
        )["data"]
            .clone();
        let o = v.as_object_mut().unwrap();
        for k in ["id", "name", "create_time", "last_time"] {
            assert!(o.remove(k).is_some(), "{k}");
        }
        v
    };
    assert_eq!(get_st(4), get_st(st_id));
    // The fixture's template instantiates on the fixture's module and host.
    let si = s.native(
        "/api/v3/create/proc/service_instance",
        &json!({"bk_biz_id": 7, "bk_module_id": 20, "instances": [{"bk_host_id": 11}]}),
    );
    assert_eq!(si["result"], json!(true), "{si}");
    // Bind IP code "1" is 127.0.0.1.
    let procs = s.list(7, si["data"][0].as_i64().unwrap());
    assert_eq!(
        procs["data"][0]["property"]["bind_info"][0]["ip"],
        json!("127.0.0.1"),
        "{procs}"
    );
}

#[test]
fn admin_is_refused_on_an_address_that_is_not_loopback() {
    let (code, out, err) = run_cli_within(
        &[
            "serve",
            "--memory",
            "--admin",
            "--auth",
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/auth.json"),
            "--listen",
            "0.0.0.0:0",
        ],
        10,
    );
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        err.trim(),
        "cmdb-lite: refusing --admin on 0.0.0.0:0, which is not a loopback address: anyone who \
         can connect could reset or replace the store (--insecure-listen allows it)"
    );
}
