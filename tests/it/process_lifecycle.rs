//! Black-box tests of the rest of a process instance's life: `update_process_instance`,
//! `delete_process_instance` and `list_process_detail_by_ids` (spec bk-cmdb-process.md 1.1,
//! 2.4-2.6, 4.4), and a seeded random sequence of creates, updates and deletes checked against
//! an in-test model, the id sequence and `cmdb-lite check`.
//!
//! Most tests run on [`dataset`]: the demo dataset (business 7: raw service instance 30 with
//! process 41 "billing"; template-bound service instance 31 with process 40 "envoy" of process
//! template 6) plus
//! - a second raw service instance 32 of business 7 (host 12);
//! - process template 6 with `description`, `proc_num`, `user`, `work_path` and
//!   `bk_start_param_regex` unlocked, its bind row 1 binding to the host's first inner IP (code
//!   3, locked) with an unlocked port, and an unlocked row 2;
//! - process template 7 "sidecar" with process 43 in service instance 31;
//! - business 8 with raw module 23, service instance 34 (host 12) and process 42 "lab", whose
//!   `bk_created_at`/`bk_updated_at` are null as in records older than those fields.

use crate::common::lang::{both, exceed_limit, invalid_param, unassigned};
use crate::common::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

const CREATE: &str = "/api/v3/create/proc/process_instance";
const LIST: &str = "/api/v3/findmany/proc/process_instance";
const UPDATE: &str = "/api/v3/update/proc/process_instance";
const DELETE: &str = "/api/v3/delete/proc/process_instance";

fn detail_path(biz: &str) -> String {
    format!("/api/v3/findmany/proc/process_instance/detail/biz/{biz}")
}

// ---------------------------------------------------------------------------------------------
// helpers

/// A request on a native route with `headers`; asserts HTTP 200 and returns the JSON answer.
#[track_caller]
fn call_with(
    s: &Server,
    headers: &[(&str, &str)],
    method: &str,
    path: &str,
    body: &Value,
) -> Value {
    let r = s.request(method, path, headers, body.to_string().as_bytes());
    assert_eq!(r.status, 200, "{method} {path} {body}: {}", r.body);
    r.json()
}

/// English, user `admin`.
#[track_caller]
fn call(s: &Server, method: &str, path: &str, body: &Value) -> Value {
    call_with(s, &NATIVE_EN, method, path, body)
}

#[track_caller]
fn update(s: &Server, body: &Value) -> Value {
    call(s, "PUT", UPDATE, body)
}

#[track_caller]
fn delete(s: &Server, body: &Value) -> Value {
    call(s, "DELETE", DELETE, body)
}

#[track_caller]
fn detail(s: &Server, biz: i64, body: &Value) -> Value {
    call(s, "POST", &detail_path(&biz.to_string()), body)
}

/// 1199011 wrapping an inner message once (coreservice's update validation, spec 4.4).
#[track_caller]
fn wrapped_once(s: &Server, body: &Value, inner_en: &str, inner_zh: &str) {
    both(
        s,
        "PUT",
        UPDATE,
        body,
        1199011,
        &format!("'{inner_en}' the parameter is invalid or does not exist"),
        &format!("'{inner_zh}' 参数无效或不存在"),
    );
}

/// The listed processes (`{property, relation}`) of one service instance.
#[track_caller]
fn listed(s: &Server, biz: i64, si: i64) -> Vec<Value> {
    let r = s.list(biz, si);
    assert_eq!(r["result"], true, "{r}");
    r["data"].as_array().unwrap().clone()
}

fn listed_ids(s: &Server, biz: i64, si: i64) -> Vec<i64> {
    listed(s, biz, si)
        .iter()
        .map(|p| p["relation"]["bk_process_id"].as_i64().unwrap())
        .collect()
}

/// The stored map of process `pid`, read through `list_process_instance`.
#[track_caller]
fn stored(s: &Server, biz: i64, si: i64, pid: i64) -> Value {
    listed(s, biz, si)
        .into_iter()
        .find(|p| p["relation"]["bk_process_id"] == pid)
        .unwrap_or_else(|| panic!("process {pid} not listed in {si}"))["property"]
        .clone()
}

/// Creates one process in service instance `si` of business 7 and returns its id.
#[track_caller]
fn create(s: &Server, si: i64, info: Value) -> i64 {
    let r = s.create(&json!({"bk_biz_id": 7, "service_instance_id": si,
                             "processes": [{"process_info": info}]}));
    assert_eq!(r["result"], true, "create {info}: {r}");
    r["data"][0].as_i64().unwrap()
}

/// Creates a process with only its two names in service instance `si` of business 7.
#[track_caller]
fn create_named(s: &Server, si: i64, name: &str, func: &str) -> i64 {
    create(
        s,
        si,
        json!({"bk_process_name": name, "bk_func_name": func}),
    )
}

const T0: &str = "2026-01-02T03:04:05.678Z";

fn wrapper(value: Value, locked: bool) -> Value {
    json!({"value": value, "as_default_value": locked})
}

/// A stored process map of the dataset with every attribute null but those given.
fn dataset_process(pid: i64, biz: i64, si: i64, host: i64, tpl: i64, extra: Value) -> Value {
    let mut p = json!({
        "bk_process_id": pid, "bk_biz_id": biz, "bk_supplier_account": "0",
        "service_instance_id": si, "bk_process_name": null, "bk_func_name": null,
        "description": null, "bk_start_param_regex": null, "work_path": null, "user": null,
        "start_cmd": null, "stop_cmd": null, "restart_cmd": null, "face_stop_cmd": null,
        "reload_cmd": null, "pid_file": null, "proc_num": null, "priority": null,
        "timeout": null, "bk_start_check_secs": null, "auto_start": null, "bind_info": null,
        "create_time": T0, "last_time": T0, "bk_created_at": T0, "bk_updated_at": T0,
        "bk_created_by": "admin", "bk_updated_by": null,
        "relation": {"bk_biz_id": biz, "bk_process_id": pid, "service_instance_id": si,
                     "process_template_id": tpl, "bk_host_id": host, "bk_supplier_account": "0"}
    });
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    p
}

fn service_instance(id: i64, biz: i64, module: i64, host: i64, tpl: i64) -> Value {
    json!({"bk_biz_id": biz, "id": id, "name": format!("si-{id}"), "labels": null,
           "service_template_id": tpl, "bk_host_id": host, "bk_module_id": module,
           "creator": "admin", "modifier": "admin", "create_time": T0, "last_time": T0,
           "bk_supplier_account": "0"})
}

/// The dataset described at the top of this file.
fn dataset() -> Value {
    let mut ds = demo_dataset();
    let prop = &mut ds["process_templates"][0]["property"];
    for (f, v) in [
        ("description", json!("from template")),
        ("proc_num", json!(1)),
        ("user", json!("root")),
        ("work_path", json!("/opt/envoy")),
        ("bk_start_param_regex", json!(null)),
    ] {
        prop[f] = wrapper(v, false);
    }
    prop["bind_info"]["value"] = json!([
        {"row_id": 1, "ip": wrapper(json!("3"), true), "port": wrapper(json!("80"), false),
         "protocol": wrapper(json!("1"), true), "enable": wrapper(json!(true), true)},
        {"row_id": 2, "ip": wrapper(json!("2"), false), "port": wrapper(json!("9090"), false),
         "protocol": wrapper(json!("1"), false), "enable": wrapper(json!(false), false)}
    ]);
    let mut sidecar = ds["process_templates"][0].clone();
    sidecar["id"] = json!(7);
    sidecar["bk_process_name"] = json!("sidecar");
    sidecar["property"]["bk_process_name"] = wrapper(json!("sidecar"), true);
    sidecar["property"]["bk_func_name"] = wrapper(json!("sidecar"), true);
    sidecar["property"]["bind_info"]["value"] = json!([]);
    ds["process_templates"]
        .as_array_mut()
        .unwrap()
        .push(sidecar);

    ds["processes"][0]["bind_info"] = json!([
        {"enable": true, "ip": "192.168.10.11", "port": "80", "protocol": "1", "template_row_id": 1},
        {"enable": false, "ip": "0.0.0.0", "port": "9090", "protocol": "1", "template_row_id": 2}
    ]);
    ds["modules"].as_array_mut().unwrap().push(json!({
        "bk_module_id": 23, "bk_biz_id": 8, "bk_set_id": 4, "bk_module_name": "lab-raw",
        "service_template_id": 0, "service_category_id": 2, "default": 0, "hosts": [12]
    }));
    let sis = ds["service_instances"].as_array_mut().unwrap();
    sis.push(service_instance(32, 7, 20, 12, 0));
    sis.push(service_instance(34, 8, 23, 12, 0));
    let procs = ds["processes"].as_array_mut().unwrap();
    procs.push(dataset_process(
        42,
        8,
        34,
        12,
        0,
        json!({"bk_process_name": "lab", "bk_func_name": "lab",
               "bk_created_at": null, "bk_updated_at": null}),
    ));
    procs.push(dataset_process(
        43,
        7,
        31,
        11,
        7,
        json!({"bk_process_name": "sidecar", "bk_func_name": "sidecar", "bind_info": []}),
    ));
    ds["sequences"] = json!({"process": 43, "service_instance": 34});
    ds
}

/// A server in memory, seeded with `ds`.
fn start_with(ds: &Value) -> (TempDir, Server) {
    let dir = TempDir::new("lifecycle");
    let path = dir.join("seed.json");
    std::fs::write(&path, ds.to_string()).unwrap();
    let s = Server::start(&["--memory", "--seed", path.to_str().unwrap()]);
    (dir, s)
}

fn start() -> (TempDir, Server) {
    start_with(&dataset())
}

/// A server on a database file seeded with [`dataset`]; `check` it with [`stop_and_check`].
fn start_file() -> (TempDir, Server) {
    let dir = TempDir::new("lifecycle-file");
    let path = dir.join("seed.json");
    std::fs::write(&path, dataset().to_string()).unwrap();
    let db = dir.join("cmdb.redb");
    let s = Server::start(&[
        "--db",
        db.to_str().unwrap(),
        "--seed",
        path.to_str().unwrap(),
    ]);
    (dir, s)
}

/// Stops the server and runs `cmdb-lite check` on its database: it must be clean.
#[track_caller]
fn stop_and_check(dir: &TempDir, s: Server) {
    s.stop();
    let db = dir.join("cmdb.redb");
    assert_clean(&db);
}

fn dup_name(si: i64, name: &str) -> (String, String) {
    let key = format!(" service_instance_id: {si}, bk_process_name: {name:?} ");
    (
        format!("duplicated instances exist, fields [{key}] duplicated"),
        format!("数据唯一性校验失败， {key} 重复"),
    )
}

fn dup_func(si: i64, func: &str, regex: &str) -> (String, String) {
    let key = format!(
        " service_instance_id: {si}, bk_func_name: {func:?}, bk_start_param_regex: {regex:?} "
    );
    (
        format!("duplicated instances exist, fields [{key}] duplicated"),
        format!("数据唯一性校验失败， {key} 重复"),
    )
}

// ---------------------------------------------------------------------------------------------
// update_process_instance: request-level rules

#[test]
fn update_without_items_answers_an_empty_list() {
    let (_d, s) = start();
    for body in [
        json!({"bk_biz_id": 7}),
        json!({"bk_biz_id": 7, "processes": []}),
        json!({"bk_biz_id": 7, "processes": null}),
        json!(null),
    ] {
        assert_eq!(update(&s, &body), ok_native(json!([])), "{body}");
    }
}

#[test]
fn update_more_than_100_items_is_1199035() {
    let (_d, s) = start();
    let items: Vec<Value> = (0..101).map(|_| json!({"bk_process_id": 41})).collect();
    exceed_limit(
        &s,
        "PUT",
        UPDATE,
        &json!({"bk_biz_id": 7, "processes": items}),
        "update process instances",
        100,
    );
    // 100 items of one id are accepted: the id is answered once.
    let items: Vec<Value> = (0..100)
        .map(|i| {
            json!({"bk_process_id": 41, "bk_process_name": format!("n{i}"),
                        "bk_func_name": "billing"})
        })
        .collect();
    assert_eq!(
        update(&s, &json!({"bk_biz_id": 7, "processes": items})),
        ok_native(json!([41]))
    );
    assert_eq!(stored(&s, 7, 30, 41)["bk_process_name"], "n99");
}

#[test]
fn update_items_need_a_numeric_bk_process_id() {
    let (_d, s) = start();
    let en = "'bk_process_id' data parameter verification does not pass";
    let zh = "'bk_process_id' 数据参数校验不通过";
    for items in [
        json!([{}]),
        json!([{"bk_process_id": "41"}]),
        json!([{"bk_process_id": 41.5}]),
        json!([{"bk_process_id": null}]),
        json!([null]),
        json!([{"BK_PROCESS_ID": 41}]),
        json!([{"bk_process_id": 41, "bk_process_name": "x", "bk_func_name": "x"}, {}]),
        // An id of 0 passes the audit step and is refused by the update itself.
        json!([{"bk_process_id": 41, "bk_process_name": "x", "bk_func_name": "x"},
               {"bk_process_id": 0}]),
    ] {
        both(
            &s,
            "PUT",
            UPDATE,
            &json!({"bk_biz_id": 7, "processes": items}),
            1199006,
            en,
            zh,
        );
    }
    assert_eq!(stored(&s, 7, 30, 41)["bk_process_name"], "billing");
}

#[test]
fn update_wrong_json_types_are_1199000() {
    let (_d, s) = start();
    let en = "Deserializing JSON data failed";
    let zh = "反序列化JSON数据失败";
    let item = |extra: Value| {
        let mut m = json!({"bk_process_id": 41, "bk_process_name": "b", "bk_func_name": "b"});
        for (k, v) in extra.as_object().unwrap() {
            m[k] = v.clone();
        }
        json!({"bk_biz_id": 7, "processes": [m]})
    };
    for body in [
        json!([1]),
        json!({"bk_biz_id": "7", "processes": [{"bk_process_id": 41}]}),
        json!({"bk_biz_id": 7, "processes": {"bk_process_id": 41}}),
        json!({"bk_biz_id": 7, "processes": [41]}),
        item(json!({"bk_process_name": 5})),
        item(json!({"proc_num": 1.5})),
        item(json!({"proc_num": "5"})),
        item(json!({"auto_start": "yes"})),
        item(json!({"bk_supplier_account": 0})),
        item(json!({"service_instance_id": "30"})),
        item(json!({"create_time": "yesterday"})),
        item(json!({"bind_info": {"port": "80"}})),
        item(json!({"bind_info": ["80"]})),
        item(json!({"bind_info": [{"port": 80}]})),
        item(json!({"bind_info": [{"enable": "true"}]})),
        item(json!({"bind_info": [{"template_row_id": "1"}]})),
    ] {
        both(&s, "PUT", UPDATE, &body, 1199000, en, zh);
    }
    let r = s.request("PUT", UPDATE, &NATIVE_EN, b"{\"bk_biz_id\": 7,");
    assert_eq!(r.json(), err_native(1199000, en));
    assert_eq!(stored(&s, 7, 30, 41)["bk_process_name"], "billing");
}

#[test]
fn update_of_ids_outside_the_business() {
    let (_d, s) = start();
    // No id is a process of the business: the audit step finds no service instance.
    for body in [
        json!({"bk_biz_id": 7, "processes": [{"bk_process_id": 999}]}),
        json!({"bk_biz_id": 8, "processes": [{"bk_process_id": 41}]}),
        json!({"bk_biz_id": 7, "processes": [{"bk_process_id": 42}]}),
        json!({"processes": [{"bk_process_id": 41}]}),
        json!({"bk_biz_id": 7, "processes": [{"bk_process_id": 0}]}),
    ] {
        unassigned(&s, "PUT", UPDATE, &body, "service_instance_ids");
    }
    // Some are: the others are named, in input order.
    invalid_param(
        &s,
        "PUT",
        UPDATE,
        &json!({"bk_biz_id": 7, "processes": [
            {"bk_process_id": 999}, {"bk_process_id": 41, "bk_process_name": "x",
                                     "bk_func_name": "x"},
            {"bk_process_id": 42}, {"bk_process_id": 999}]}),
        "[bk_process_id: 999,42]",
    );
    assert_eq!(stored(&s, 7, 30, 41)["bk_process_name"], "billing");
    assert_eq!(stored(&s, 8, 34, 42)["bk_process_name"], "lab");
}

// ---------------------------------------------------------------------------------------------
// update_process_instance: raw processes

#[test]
fn raw_process_is_fully_replaced() {
    let (_d, s) = start();
    let pid = create(
        &s,
        30,
        json!({"bk_process_name": "web", "bk_func_name": "nginx", "description": "d",
               "work_path": "/w", "proc_num": 2, "auto_start": true, "default": 7,
               "bind_info": [{"ip": "1.2.3.4", "port": "80", "protocol": "1", "enable": true}]}),
    );
    let before = stored(&s, 7, 30, pid);
    let lo = now_ms();
    let headers = [
        ("X-Bkcmdb-User", "alice"),
        ("X-Bkcmdb-Supplier-Account", "0"),
        ("X-Bkcmdb-Language", "en"),
    ];
    let r = call_with(
        &s,
        &headers,
        "PUT",
        UPDATE,
        &json!({"bk_biz_id": 7, "processes": [{
            "bk_process_id": pid, "bk_process_name": "  web2  ", "bk_func_name": "nginx",
            "priority": 5, "service_instance_id": 32, "bk_supplier_account": "other",
            "bk_biz_id": 8, "create_time": "2020-01-01T00:00:00Z", "bk_created_by": "eve",
            "unknown": 1
        }]}),
    );
    let hi = now_ms();
    assert_eq!(r, ok_native(json!([pid])));
    let after = stored(&s, 7, 30, pid);
    for k in ["last_time", "bk_updated_at"] {
        let t = parse_time(&after[k]);
        assert!(
            lo - 1 <= t && t <= hi + 1,
            "{k} {} outside the request",
            after[k]
        );
    }
    assert_eq!(after["last_time"], after["bk_updated_at"]);
    let mut expected = before.clone();
    for (k, v) in [
        ("bk_process_name", json!("web2")),
        ("priority", json!(5)),
        ("bk_updated_by", json!("alice")),
        ("last_time", after["last_time"].clone()),
        ("bk_updated_at", after["bk_updated_at"].clone()),
    ] {
        expected[k] = v;
    }
    // Everything the item did not send is null now, except what the server owns.
    for k in [
        "description",
        "bk_start_param_regex",
        "work_path",
        "user",
        "start_cmd",
        "stop_cmd",
        "restart_cmd",
        "face_stop_cmd",
        "reload_cmd",
        "pid_file",
        "proc_num",
        "timeout",
        "bk_start_check_secs",
        "auto_start",
        "bind_info",
    ] {
        expected[k] = Value::Null;
    }
    assert_eq!(after, expected);
    assert_eq!(after["default"], 7);
    assert_eq!(after["service_instance_id"], 30);
    assert_eq!(after["create_time"], before["create_time"]);
    assert_eq!(after["bk_created_by"], "admin");
}

#[test]
fn raw_process_without_its_names_is_refused_wrapped_once() {
    let (_d, s) = start();
    wrapped_once(
        &s,
        &json!({"bk_biz_id": 7, "processes": [{"bk_process_id": 41, "bk_process_name": "b"}]}),
        "'进程名称' unassigned",
        "'进程名称' 未赋值",
    );
    wrapped_once(
        &s,
        &json!({"bk_biz_id": 7, "processes": [{"bk_process_id": 41}]}),
        "'进程别名' unassigned",
        "'进程别名' 未赋值",
    );
    wrapped_once(
        &s,
        &json!({"bk_biz_id": 7, "processes": [{"bk_process_id": 41, "bk_process_name": "  ",
                                                "bk_func_name": "b"}]}),
        "'进程别名' unassigned",
        "'进程别名' 未赋值",
    );
    assert_eq!(stored(&s, 7, 30, 41)["bk_process_name"], "billing");
}

#[test]
fn raw_process_value_rules_are_wrapped_once() {
    let (_d, s) = start();
    let body = |extra: Value| {
        let mut m = json!({"bk_process_id": 41, "bk_process_name": "b", "bk_func_name": "b"});
        for (k, v) in extra.as_object().unwrap() {
            m[k] = v.clone();
        }
        json!({"bk_biz_id": 7, "processes": [m]})
    };
    wrapped_once(
        &s,
        &body(json!({"proc_num": 0})),
        "'启动数量' data parameter verification does not pass",
        "'启动数量' 数据参数校验不通过",
    );
    wrapped_once(
        &s,
        &body(json!({"description": "x".repeat(257)})),
        "Data out of bounds%!(EXTRA string=备注)",
        "'备注' 数据越界",
    );
    wrapped_once(
        &s,
        &body(json!({"timeout": 10001})),
        "'操作超时时长' data parameter verification does not pass",
        "'操作超时时长' 数据参数校验不通过",
    );
    let bind = "'bind_info' data parameter verification does not pass";
    let bind_zh = "'bind_info' 数据参数校验不通过";
    for rows in [
        json!([{"port": "80", "protocol": "1"}]),
        json!([{"port": "80,81", "protocol": "1", "enable": true}]),
        json!([{"port": "80", "protocol": "5", "enable": true}]),
        json!([{"ip": "1", "port": "80", "protocol": "1", "enable": true}]),
        json!([null]),
    ] {
        wrapped_once(&s, &body(json!({"bind_info": rows})), bind, bind_zh);
    }
    assert_eq!(stored(&s, 7, 30, 41)["bk_process_name"], "billing");
}

#[test]
fn raw_update_writes_bind_info_rows_with_their_five_keys() {
    let (_d, s) = start();
    let r = update(
        &s,
        &json!({"bk_biz_id": 7, "processes": [{"bk_process_id": 41,
        "bk_process_name": "billing", "bk_func_name": "billing",
        "bind_info": [
            {"port": "8080", "protocol": "1", "enable": true, "row_id": 3},
            {"IP": "10.0.0.1", "port": "1-2", "protocol": "2", "enable": false,
             "template_row_id": 9}
        ]}]}),
    );
    assert_eq!(r, ok_native(json!([41])));
    assert_eq!(
        stored(&s, 7, 30, 41)["bind_info"],
        json!([
            {"enable": true, "ip": null, "port": "8080", "protocol": "1", "template_row_id": 0},
            {"enable": false, "ip": "10.0.0.1", "port": "1-2", "protocol": "2",
             "template_row_id": 9}
        ])
    );
    // An empty list stays an empty list.
    let r = update(
        &s,
        &json!({"bk_biz_id": 7, "processes": [{"bk_process_id": 41,
            "bk_process_name": "billing", "bk_func_name": "billing", "bind_info": []}]}),
    );
    assert_eq!(r["result"], true);
    assert_eq!(stored(&s, 7, 30, 41)["bind_info"], json!([]));
}

#[test]
fn update_duplicates_against_the_store_are_1199014() {
    let (_d, s) = start();
    let a = create_named(&s, 30, "a", "fa");
    let (en, zh) = dup_name(30, "billing");
    both(
        &s,
        "PUT",
        UPDATE,
        &json!({"bk_biz_id": 7, "processes": [{"bk_process_id": a,
            "bk_process_name": " billing ", "bk_func_name": "fa"}]}),
        1199014,
        &en,
        &zh,
    );
    // The demo's process 41 has bk_func_name "billing" and an empty regex.
    let (en, zh) = dup_func(30, "billing", "");
    both(
        &s,
        "PUT",
        UPDATE,
        &json!({"bk_biz_id": 7, "processes": [{"bk_process_id": a,
            "bk_process_name": "a", "bk_func_name": "billing", "bk_start_param_regex": ""}]}),
        1199014,
        &en,
        &zh,
    );
    // Without a regex the second unique index does not apply (the omitted field is null).
    let r = update(
        &s,
        &json!({"bk_biz_id": 7, "processes": [{"bk_process_id": a,
            "bk_process_name": "a", "bk_func_name": "billing"}]}),
    );
    assert_eq!(r, ok_native(json!([a])));
    let p = stored(&s, 7, 30, a);
    assert_eq!(p["bk_start_param_regex"], Value::Null);
    // Names are unique per service instance only.
    let b = create_named(&s, 32, "b", "fb");
    let r = update(
        &s,
        &json!({"bk_biz_id": 7, "processes": [{"bk_process_id": b,
            "bk_process_name": "billing", "bk_func_name": "billing",
            "bk_start_param_regex": ""}]}),
    );
    assert_eq!(r, ok_native(json!([b])));
}

#[test]
fn update_duplicates_within_one_batch_are_1199014_and_write_nothing() {
    let (_d, s) = start();
    let a = create_named(&s, 30, "a", "fa");
    let b = create_named(&s, 30, "b", "fb");
    let (en, zh) = dup_name(30, "same");
    both(
        &s,
        "PUT",
        UPDATE,
        &json!({"bk_biz_id": 7, "processes": [
            {"bk_process_id": a, "bk_process_name": "same", "bk_func_name": "fa"},
            {"bk_process_id": b, "bk_process_name": "same", "bk_func_name": "fb"}]}),
        1199014,
        &en,
        &zh,
    );
    // A swap collides on the first process's new name, still held by the second.
    let (en, zh) = dup_name(30, "b");
    both(
        &s,
        "PUT",
        UPDATE,
        &json!({"bk_biz_id": 7, "processes": [
            {"bk_process_id": a, "bk_process_name": "b", "bk_func_name": "fa"},
            {"bk_process_id": b, "bk_process_name": "a", "bk_func_name": "fb"}]}),
        1199014,
        &en,
        &zh,
    );
    assert_eq!(stored(&s, 7, 30, a)["bk_process_name"], "a");
    assert_eq!(stored(&s, 7, 30, b)["bk_process_name"], "b");
    assert_eq!(
        stored(&s, 7, 30, a)["last_time"],
        stored(&s, 7, 30, a)["create_time"]
    );
}

#[test]
fn a_renamed_process_frees_its_old_name_at_once() {
    let (_d, s) = start();
    let a = create_named(&s, 30, "a", "fa");
    let c = create_named(&s, 30, "c", "fc");
    // Processes are updated in the order of their first item: a frees "a" before c takes it.
    let r = update(
        &s,
        &json!({"bk_biz_id": 7, "processes": [
            {"bk_process_id": a, "bk_process_name": "b", "bk_func_name": "fa"},
            {"bk_process_id": c, "bk_process_name": "a", "bk_func_name": "fc"}]}),
    );
    assert_eq!(r, ok_native(json!([a, c])));
    // "c" is free again at once, for a create and for the func index too.
    let d = create_named(&s, 30, "c", "fa");
    let names: Vec<Value> = listed(&s, 7, 30)
        .iter()
        .map(|p| p["property"]["bk_process_name"].clone())
        .collect();
    assert_eq!(
        names,
        vec![json!("billing"), json!("b"), json!("a"), json!("c")]
    );
    assert!(d > c);
}

#[test]
fn repeated_ids_are_answered_once_and_the_last_item_wins() {
    let (_d, s) = start();
    let a = create_named(&s, 30, "a", "fa");
    let r = update(
        &s,
        &json!({"bk_biz_id": 7, "processes": [
            {"bk_process_id": a, "bk_process_name": "x", "bk_func_name": "fa"},
            {"bk_process_id": 41, "bk_process_name": "billing", "bk_func_name": "billing",
             "user": "u"},
            {"bk_process_id": a, "bk_process_name": "y", "bk_func_name": "fa"}]}),
    );
    assert_eq!(r, ok_native(json!([a, 41])));
    assert_eq!(stored(&s, 7, 30, a)["bk_process_name"], "y");
    assert_eq!(stored(&s, 7, 30, 41)["user"], "u");
}

#[test]
fn a_failing_update_batch_changes_nothing() {
    let (_d, s) = start();
    let before = listed(&s, 7, 30);
    let r = update(
        &s,
        &json!({"bk_biz_id": 7, "processes": [
            {"bk_process_id": 41, "bk_process_name": "new", "bk_func_name": "new"},
            {"bk_process_id": 40, "description": "x".repeat(300)}]}),
    );
    assert_eq!(r["bk_error_code"], 1199011, "{r}");
    assert_eq!(listed(&s, 7, 30), before);
    // The name 41 would have given up is still held.
    let r = s.create(&json!({"bk_biz_id": 7, "service_instance_id": 30,
        "processes": [{"process_info": {"bk_process_name": "billing", "bk_func_name": "z"}}]}));
    assert_eq!(r["bk_error_code"], 1199014, "{r}");
}

#[test]
fn update_on_the_other_route_families() {
    let (_d, s) = start();
    let body = json!({"bk_biz_id": 7, "processes": [{"bk_process_id": 41,
        "bk_process_name": "esb", "bk_func_name": "billing"}], "bk_app_code": "x",
        "bk_username": "esb-user"});
    let r = s.request(
        "POST",
        "/api/c/compapi/v2/cc/update_process_instance/",
        &[],
        body.to_string().as_bytes(),
    );
    let v = r.json();
    assert_eq!(v["result"], true, "{v}");
    assert_eq!(v["data"], json!([41]));
    assert_eq!(stored(&s, 7, 30, 41)["bk_updated_by"], "esb-user");
    let r = s.request(
        "PUT",
        "/api/bk-cmdb/prod/api/v3/update/proc/process_instance",
        &[],
        body.to_string().as_bytes(),
    );
    assert_eq!(r.json()["data"], json!([41]), "{}", r.body);
    let r = s.request("POST", UPDATE, &NATIVE_EN, body.to_string().as_bytes());
    assert_eq!(r.status, 405);
}

// ---------------------------------------------------------------------------------------------
// update_process_instance: processes created from a template

#[test]
fn template_process_takes_only_unlocked_fields() {
    let (_d, s) = start();
    let before = stored(&s, 7, 31, 40);
    let r = update(
        &s,
        &json!({"bk_biz_id": 7, "processes": [{"bk_process_id": 40,
            "bk_process_name": "renamed", "bk_func_name": "renamed", "stop_cmd": "stop",
            "description": "  mine  ", "proc_num": 3, "user": "nobody",
            "bind_info": null}]}),
    );
    assert_eq!(r, ok_native(json!([40])));
    let after = stored(&s, 7, 31, 40);
    assert_eq!(after["bk_process_name"], "envoy");
    assert_eq!(after["bk_func_name"], "envoy");
    assert_eq!(after["stop_cmd"], Value::Null);
    assert_eq!(after["description"], "mine");
    assert_eq!(after["proc_num"], 3);
    assert_eq!(after["user"], "nobody");
    // Unlocked but omitted: unchanged (work_path was null in the dataset).
    assert_eq!(after["work_path"], before["work_path"]);
    assert_eq!(after["bk_updated_by"], "admin");
    assert_ne!(after["last_time"], before["last_time"]);

    // Explicit nulls clear unlocked fields only.
    let r = update(
        &s,
        &json!({"bk_biz_id": 7, "processes": [{"bk_process_id": 40,
            "description": null, "user": null, "bk_process_name": null, "stop_cmd": null}]}),
    );
    assert_eq!(r, ok_native(json!([40])));
    let after = stored(&s, 7, 31, 40);
    assert_eq!(after["description"], Value::Null);
    assert_eq!(after["user"], Value::Null);
    assert_eq!(after["proc_num"], 3);
    assert_eq!(after["bk_process_name"], "envoy");
}

#[test]
fn template_process_bind_info_is_rebuilt_by_template_row_id() {
    let (_d, s) = start();
    let r = update(
        &s,
        &json!({"bk_biz_id": 7, "processes": [{"bk_process_id": 40, "bind_info": [
            {"template_row_id": 1, "ip": "1.1.1.1", "port": "8080", "protocol": "2",
             "enable": false},
            {"template_row_id": 5, "ip": "2.2.2.2", "port": "1", "protocol": "1",
             "enable": true}
        ]}]}),
    );
    assert_eq!(r, ok_native(json!([40])));
    // Row 1: the port is unlocked and kept, the locked ip (first inner IP of host 11),
    // protocol and enable come from the template. Row 2 is all template. Row 5 matches none.
    assert_eq!(
        stored(&s, 7, 31, 40)["bind_info"],
        json!([
            {"enable": true, "ip": "192.168.10.11", "port": "8080", "protocol": "1",
             "template_row_id": 1},
            {"enable": false, "ip": "0.0.0.0", "port": "9090", "protocol": "1",
             "template_row_id": 2}
        ])
    );
    // Without rows in the item, every row is the template's.
    let r = update(
        &s,
        &json!({"bk_biz_id": 7, "processes": [{"bk_process_id": 40}]}),
    );
    assert_eq!(r, ok_native(json!([40])));
    assert_eq!(stored(&s, 7, 31, 40)["bind_info"][0]["port"], "80");
    // An item row keeps its unlocked values as sent, so an absent enable fails validation.
    wrapped_once(
        &s,
        &json!({"bk_biz_id": 7, "processes": [{"bk_process_id": 40, "bind_info": [
            {"template_row_id": 2, "port": "7070", "protocol": "1"}]}]}),
        "'bind_info' data parameter verification does not pass",
        "'bind_info' 数据参数校验不通过",
    );
}

#[test]
fn template_process_value_rules_and_decoding() {
    let (_d, s) = start();
    wrapped_once(
        &s,
        &json!({"bk_biz_id": 7, "processes": [{"bk_process_id": 40, "proc_num": 0}]}),
        "'启动数量' data parameter verification does not pass",
        "'启动数量' 数据参数校验不通过",
    );
    // A locked field of the wrong type still fails decoding, as the item is read whole.
    both(
        &s,
        "PUT",
        UPDATE,
        &json!({"bk_biz_id": 7, "processes": [{"bk_process_id": 40, "bk_func_name": 1}]}),
        1199000,
        "Deserializing JSON data failed",
        "反序列化JSON数据失败",
    );
}

#[test]
fn template_gaps_are_1199006_with_bk_cmdb_texts() {
    let cases = [
        (
            "port",
            wrapper(json!(""), true),
            "process template bind port is not set or is empty",
        ),
        (
            "protocol",
            wrapper(json!(null), true),
            "process template bind protocol is not set or is empty",
        ),
        (
            "ip",
            wrapper(json!("9"), true),
            "process template bind info ip is invalid",
        ),
    ];
    for (key, value, text) in cases {
        let mut ds = dataset();
        ds["process_templates"][0]["property"]["bind_info"]["value"][0][key] = value;
        let (_d, s) = start_with(&ds);
        both(
            &s,
            "PUT",
            UPDATE,
            &json!({"bk_biz_id": 7, "processes": [{"bk_process_id": 40}]}),
            1199006,
            text,
            text,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// delete_process_instance

#[test]
fn delete_needs_ids() {
    let (_d, s) = start();
    for body in [
        json!({"bk_biz_id": 7}),
        json!({"bk_biz_id": 7, "process_instance_ids": []}),
        json!({"bk_biz_id": 7, "process_instance_ids": null}),
    ] {
        unassigned(&s, "DELETE", DELETE, &body, "bk_process_id");
    }
}

#[test]
fn delete_more_than_500_ids_is_1199035() {
    let (_d, s) = start();
    let ids: Vec<i64> = (1000..1501).collect();
    exceed_limit(
        &s,
        "DELETE",
        DELETE,
        &json!({"bk_biz_id": 7, "process_instance_ids": ids}),
        "delete process instance",
        500,
    );
    let ids: Vec<i64> = (1000..1500).collect();
    assert_eq!(
        delete(&s, &json!({"bk_biz_id": 7, "process_instance_ids": ids})),
        ok_native(Value::Null)
    );
}

#[test]
fn delete_wrong_json_types_are_1199000() {
    let (_d, s) = start();
    for body in [
        json!({"bk_biz_id": "7", "process_instance_ids": [41]}),
        json!({"bk_biz_id": 7, "process_instance_ids": "41"}),
        json!({"bk_biz_id": 7, "process_instance_ids": ["41"]}),
        json!({"bk_biz_id": 7, "process_instance_ids": [41.5]}),
        json!([41]),
    ] {
        both(
            &s,
            "DELETE",
            DELETE,
            &body,
            1199000,
            "Deserializing JSON data failed",
            "反序列化JSON数据失败",
        );
    }
    assert_eq!(listed_ids(&s, 7, 30), vec![41]);
}

#[test]
fn template_created_processes_cannot_be_deleted() {
    let (_d, s) = start();
    both(
        &s,
        "DELETE",
        DELETE,
        &json!({"bk_biz_id": 7, "process_instance_ids": [43, 41, 40, 43]}),
        1113022,
        "delete processe [40,43] created by template forbidden",
        "通过模板创建的进程[40,43]禁止删除",
    );
    assert_eq!(listed_ids(&s, 7, 30), vec![41]);
    assert_eq!(listed_ids(&s, 7, 31), vec![40, 43]);
}

#[test]
fn delete_removes_processes_and_cascades_to_emptied_service_instances() {
    let (d, s) = start_file();
    let a = create_named(&s, 30, "a", "fa");
    let b = create_named(&s, 32, "b", "fb");
    // One of two processes: the service instance stays.
    assert_eq!(
        delete(&s, &json!({"bk_biz_id": 7, "process_instance_ids": [a]})),
        ok_native(Value::Null)
    );
    assert_eq!(listed_ids(&s, 7, 30), vec![41]);
    // Its name is free again.
    let a2 = create_named(&s, 30, "a", "fa");
    assert!(a2 > b, "id {a2} reused");
    // The last processes of 30 and 32 go (with an unknown id and a repeat): both instances go.
    assert_eq!(
        delete(
            &s,
            &json!({"bk_biz_id": 7, "process_instance_ids": [41, a2, b, 999, 41]})
        ),
        ok_native(Value::Null)
    );
    assert_eq!(listed_ids(&s, 7, 30), Vec::<i64>::new());
    for si in [30, 32] {
        let r = s.create(&json!({"bk_biz_id": 7, "service_instance_id": si,
            "processes": [{"process_info": {"bk_process_name": "x", "bk_func_name": "x"}}]}));
        assert_eq!(r, err_native(1199019, "No relevant data found"), "{si}");
    }
    let r = detail(&s, 7, &json!({"bk_process_ids": [41, a, a2, b]}));
    assert_eq!(r, ok_native(json!([])));
    // The template-bound instance is untouched, and a new id is above every issued one.
    assert_eq!(listed_ids(&s, 7, 31), vec![40, 43]);
    stop_and_check(&d, s);
}

#[test]
fn delete_leaves_other_businesses_alone() {
    let (_d, s) = start();
    assert_eq!(
        delete(
            &s,
            &json!({"bk_biz_id": 8, "process_instance_ids": [41, 40]})
        ),
        ok_native(Value::Null)
    );
    assert_eq!(
        delete(&s, &json!({"bk_biz_id": 7, "process_instance_ids": [42]})),
        ok_native(Value::Null)
    );
    assert_eq!(listed_ids(&s, 7, 30), vec![41]);
    assert_eq!(listed_ids(&s, 8, 34), vec![42]);
}

#[test]
fn delete_on_the_other_route_families() {
    let (_d, s) = start();
    let a = create_named(&s, 30, "a", "fa");
    let r = s.request(
        "POST",
        "/api/c/compapi/v2/cc/delete_process_instance/",
        &[],
        json!({"bk_biz_id": 7, "process_instance_ids": [a], "bk_app_code": "x"})
            .to_string()
            .as_bytes(),
    );
    let v = r.json();
    assert_eq!(v["result"], true, "{v}");
    assert_eq!(v["data"], Value::Null);
    assert_eq!(v["code"], 0);
    let r = s.request(
        "DELETE",
        "/api/bk-cmdb/prod/api/v3/delete/proc/process_instance",
        &[],
        json!({"bk_biz_id": 7, "process_instance_ids": [40]})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(r.json(), err_esb(1113022, "通过模板创建的进程[40]禁止删除"));
    assert_eq!(listed_ids(&s, 7, 30), vec![41]);
    let r = s.request("POST", DELETE, &NATIVE_EN, b"{}");
    assert_eq!(r.status, 405);
}

// ---------------------------------------------------------------------------------------------
// list_process_detail_by_ids

#[test]
fn detail_returns_the_stored_processes_of_the_business_in_id_order() {
    let (_d, s) = start();
    let a = create_named(&s, 32, "a", "fa");
    let r = detail(&s, 7, &json!({"bk_process_ids": [a, 41, 999, 42, 40, 41]}));
    assert_eq!(r["result"], true, "{r}");
    let expected = json!([
        stored(&s, 7, 31, 40),
        stored(&s, 7, 30, 41),
        stored(&s, 7, 32, a)
    ]);
    assert_eq!(r["data"], expected);
    // Business 8 sees only its own process.
    let r = detail(&s, 8, &json!({"bk_process_ids": [40, 41, 42]}));
    let data = r["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{r}");
    assert_eq!(data[0]["bk_process_id"], 42);
}

#[test]
fn detail_fields_select_keys_and_fill_the_recorded_times() {
    let (_d, s) = start();
    let r = detail(
        &s,
        7,
        &json!({"bk_process_ids": [41], "fields": ["bk_process_name", "bind_info.port", "nope"]}),
    );
    assert_eq!(
        r,
        ok_native(json!([{"bk_process_name": "billing", "bind_info": [{"port": "8080"}]}]))
    );
    // Process 42 predates bk_created_at/bk_updated_at: reads take create_time/last_time.
    let r = detail(&s, 8, &json!({"bk_process_ids": [42]}));
    let p = &r["data"][0];
    assert_eq!(p["bk_created_at"], T0);
    assert_eq!(p["bk_updated_at"], T0);
    assert_eq!(p["create_time"], T0);
    let r = detail(
        &s,
        8,
        &json!({"bk_process_ids": [42], "fields": ["bk_created_at", "bk_updated_at", "last_time"]}),
    );
    assert_eq!(
        r,
        ok_native(json!([{"bk_created_at": T0, "bk_updated_at": T0, "last_time": T0}]))
    );
}

#[test]
fn detail_id_count_is_1_to_500() {
    let (_d, s) = start();
    let en = "the length of array bk_process_ids is wrong, the length must be in range 1~500";
    let zh = "bk_process_ids数组长度错误，数组长度必须在1~500之间";
    let many: Vec<i64> = (1..=501).collect();
    for body in [
        json!({}),
        json!({"bk_process_ids": []}),
        json!({"bk_process_ids": null}),
        json!({"bk_process_ids": many}),
    ] {
        both(&s, "POST", &detail_path("7"), &body, 1199089, en, zh);
    }
    let ids: Vec<i64> = (1..=500).collect();
    let r = detail(&s, 7, &json!({"bk_process_ids": ids}));
    assert_eq!(r["data"].as_array().unwrap().len(), 3, "{r}");
}

#[test]
fn detail_business_and_body_errors() {
    let (_d, s) = start();
    for biz in ["x", "7.0", "%20"] {
        invalid_param(
            &s,
            "POST",
            &detail_path(biz),
            &json!({"bk_process_ids": [41]}),
            "bk_biz_id",
        );
    }
    let r = call(
        &s,
        "POST",
        &detail_path("+7"),
        &json!({"bk_process_ids": [41]}),
    );
    assert_eq!(r["data"][0]["bk_process_id"], 41, "{r}");
    for body in [
        json!({"bk_process_ids": ["41"]}),
        json!({"bk_process_ids": [41], "fields": [1]}),
        json!({"bk_process_ids": [41], "fields": "bk_process_name"}),
    ] {
        both(
            &s,
            "POST",
            &detail_path("7"),
            &body,
            1199000,
            "Deserializing JSON data failed",
            "反序列化JSON数据失败",
        );
    }
    let r = s.request("GET", &detail_path("7"), &NATIVE_EN, b"");
    assert_eq!(r.status, 405);
}

#[test]
fn detail_on_the_other_route_families() {
    let (_d, s) = start();
    let esb = "/api/c/compapi/v2/cc/list_process_detail_by_ids/";
    for biz in [json!(7), json!("7")] {
        let body = json!({"bk_biz_id": biz, "bk_process_ids": [41, 42],
                          "fields": ["bk_process_id"]});
        let r = s
            .request("POST", esb, &[], body.to_string().as_bytes())
            .json();
        assert_eq!(r["result"], true, "{r}");
        assert_eq!(r["data"], json!([{"bk_process_id": 41}]), "{r}");
    }
    for body in [
        json!({"bk_process_ids": [41]}),
        json!({"bk_biz_id": "x", "bk_process_ids": [41]}),
        json!({"bk_biz_id": null, "bk_process_ids": [41]}),
    ] {
        let r = s
            .request("POST", esb, &[], body.to_string().as_bytes())
            .json();
        assert_eq!(r["code"], 1199011, "{r}");
        assert_eq!(r["message"], "'bk_biz_id' 参数无效或不存在");
    }
    let r = s.request(
        "POST",
        "/api/bk-cmdb/prod/api/v3/findmany/proc/process_instance/detail/biz/8",
        &[],
        json!({"bk_process_ids": [41, 42], "fields": ["bk_process_name"]})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(r.json(), ok_esb(json!([{"bk_process_name": "lab"}])));
}

// ---------------------------------------------------------------------------------------------
// A seeded random sequence of creates, updates and deletes against a model

/// splitmix64: a small reproducible generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }
}

/// What the model knows of a raw process.
#[derive(Clone, Debug, PartialEq)]
struct Proc {
    si: i64,
    name: String,
    func: String,
    /// `None`: null (an update that omitted it); a create stores "" when omitted.
    regex: Option<String>,
}

/// The uniqueness keys a process holds (spec 2.6).
fn keys(p: &Proc) -> Vec<(i64, String, Option<String>)> {
    let mut k = vec![(p.si, format!("name:{}", p.name), None)];
    if let Some(r) = &p.regex {
        k.push((p.si, format!("func:{}", p.func), Some(r.clone())));
    }
    k
}

/// The first key of `p` held by a process of `model` other than `pid`, as bk-cmdb reports it.
fn conflict(model: &BTreeMap<i64, Proc>, pid: i64, p: &Proc) -> Option<(String, String)> {
    for key in keys(p) {
        let held = model
            .iter()
            .any(|(other, q)| *other != pid && keys(q).contains(&key));
        if held {
            return Some(match key.2 {
                None => dup_name(p.si, &p.name),
                Some(r) => dup_func(p.si, &p.func, &r),
            });
        }
    }
    None
}

#[derive(Default, Debug)]
struct Tally {
    created: usize,
    create_dups: usize,
    create_gone: usize,
    updated: usize,
    update_dups: usize,
    update_unknown: usize,
    deleted: usize,
    cascades: usize,
    template_refusals: usize,
}

#[test]
fn random_creates_updates_and_deletes_agree_with_a_model() {
    let seed: u64 = std::env::var("CMDB_LIFECYCLE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_2026);
    const OPS: usize = 300;
    let mut rng = Rng(seed);
    let ctx = |op: usize| format!("seed {seed}, op {op}");

    // Sixteen raw service instances of business 7: 30 and 32 of the dataset and 35 to 48.
    let mut ds = dataset();
    for id in 35..=48 {
        ds["service_instances"]
            .as_array_mut()
            .unwrap()
            .push(service_instance(id, 7, 20, 11 + id % 2, 0));
    }
    ds["sequences"]["service_instance"] = json!(48);
    let dir = TempDir::new("lifecycle-random");
    let seed_path = dir.join("seed.json");
    std::fs::write(&seed_path, ds.to_string()).unwrap();
    let db = dir.join("cmdb.redb");
    let s = Server::start(&[
        "--db",
        db.to_str().unwrap(),
        "--seed",
        seed_path.to_str().unwrap(),
    ]);
    let mut conn = Conn::open(&s.addr);
    let mut send = |method: &str, path: &str, body: &Value| -> Value {
        let r = conn.send(method, path, &NATIVE_EN, body.to_string().as_bytes());
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    };

    let mut model: BTreeMap<i64, Proc> = BTreeMap::new();
    model.insert(
        41,
        Proc {
            si: 30,
            name: "billing".into(),
            func: "billing".into(),
            regex: Some(String::new()),
        },
    );
    let mut live: BTreeSet<i64> = [30, 32].into_iter().chain(35..=48).collect();
    let mut gone: BTreeSet<i64> = BTreeSet::new();
    let mut issued: BTreeSet<i64> = (40..=43).collect();
    let mut last_id = 43;
    // Small pools, so that both uniqueness keys are hit often.
    let names = ["a", "b", "c", "d", "e", "f", "g", "h"];
    let funcs = ["f1", "f2", "f3", "f4"];
    let regexes = [None, Some(""), Some("x"), Some("y")];
    let mut tally = Tally::default();

    for op in 0..OPS {
        let at = ctx(op);
        let roll = rng.below(100);
        // Deletes wait until there is something to delete, so instances are not all emptied.
        if roll < 45 || (roll >= 80 && model.len() < 12) || model.is_empty() {
            // create_process_instance: 1 to 3 processes in one service instance.
            let si = if !gone.is_empty() && rng.below(20) == 0 {
                rng.pick(&gone.iter().copied().collect::<Vec<_>>())
            } else if live.is_empty() {
                break;
            } else {
                rng.pick(&live.iter().copied().collect::<Vec<_>>())
            };
            let n = 1 + rng.below(3);
            let mut infos = Vec::new();
            let mut procs = Vec::new();
            for _ in 0..n {
                let p = Proc {
                    si,
                    name: rng.pick(&names).to_string(),
                    func: rng.pick(&funcs).to_string(),
                    regex: Some(rng.pick(&regexes).unwrap_or("").to_string()),
                };
                let mut info = json!({"bk_process_name": p.name, "bk_func_name": p.func});
                if rng.below(2) == 0 || p.regex.as_deref() != Some("") {
                    info["bk_start_param_regex"] = json!(p.regex);
                }
                infos.push(json!({"process_info": info}));
                procs.push(p);
            }
            let r = send(
                "POST",
                CREATE,
                &json!({"bk_biz_id": 7, "service_instance_id": si, "processes": infos}),
            );
            if gone.contains(&si) {
                assert_eq!(r, err_native(1199019, "No relevant data found"), "{at}");
                tally.create_gone += 1;
                continue;
            }
            // Items are tried one by one; an item that collides is not inserted.
            let mut trial = model.clone();
            let mut first_dup = None;
            for (i, p) in procs.iter().enumerate() {
                let tmp = -1 - i as i64;
                match conflict(&trial, tmp, p) {
                    Some(d) => {
                        first_dup.get_or_insert(d);
                    }
                    None => {
                        trial.insert(tmp, p.clone());
                    }
                }
            }
            match first_dup {
                Some((en, _)) => {
                    assert_eq!(r, err_native(1199014, &en), "{at}");
                    tally.create_dups += 1;
                }
                None => {
                    let ids: Vec<i64> = r["data"]
                        .as_array()
                        .unwrap_or_else(|| panic!("{at}: {r}"))
                        .iter()
                        .map(|v| v.as_i64().unwrap())
                        .collect();
                    assert_eq!(ids.len(), n, "{at}");
                    for (id, p) in ids.iter().zip(procs) {
                        assert!(*id > last_id, "{at}: id {id} not above {last_id}");
                        assert!(issued.insert(*id), "{at}: id {id} reused");
                        last_id = *id;
                        model.insert(*id, p);
                    }
                    tally.created += 1;
                }
            }
        } else if roll < 75 {
            // update_process_instance: 1 to 3 items, sometimes a repeated or unknown id.
            let known: Vec<i64> = model.keys().copied().collect();
            let n = 1 + rng.below(3);
            let mut items = Vec::new();
            let mut plan: Vec<(i64, Option<Proc>)> = Vec::new();
            for _ in 0..n {
                let pid = if rng.below(12) == 0 {
                    // A deleted or never-issued id.
                    last_id + 1 + rng.below(3) as i64
                } else {
                    rng.pick(&known)
                };
                let regex = rng.pick(&regexes).map(str::to_string);
                let name = rng.pick(&names).to_string();
                let func = rng.pick(&funcs).to_string();
                let mut item = json!({"bk_process_id": pid, "bk_process_name": name,
                                      "bk_func_name": func});
                if let Some(r) = &regex {
                    item["bk_start_param_regex"] = json!(r);
                }
                items.push(item);
                let p = model.get(&pid).map(|old| Proc {
                    si: old.si,
                    name,
                    func,
                    regex,
                });
                plan.push((pid, p));
            }
            let r = send("PUT", UPDATE, &json!({"bk_biz_id": 7, "processes": items}));
            let mut order: Vec<i64> = Vec::new();
            for (pid, _) in &plan {
                if !order.contains(pid) {
                    order.push(*pid);
                }
            }
            let unknown: Vec<String> = order
                .iter()
                .filter(|p| !model.contains_key(p))
                .map(|p| p.to_string())
                .collect();
            if unknown.len() == order.len() {
                assert_eq!(
                    r,
                    err_native(1199010, "'service_instance_ids' unassigned"),
                    "{at}"
                );
                tally.update_unknown += 1;
                continue;
            }
            if !unknown.is_empty() {
                let msg = format!(
                    "'[bk_process_id: {}]' the parameter is invalid or does not exist",
                    unknown.join(",")
                );
                assert_eq!(r, err_native(1199011, &msg), "{at}");
                tally.update_unknown += 1;
                continue;
            }
            // Last item of each id, applied in order of first appearance.
            let mut last: BTreeMap<i64, Proc> = BTreeMap::new();
            for (pid, p) in &plan {
                last.insert(*pid, p.clone().unwrap());
            }
            let mut trial = model.clone();
            let mut dup = None;
            for pid in &order {
                let p = &last[pid];
                if let Some(d) = conflict(&trial, *pid, p) {
                    dup = Some(d);
                    break;
                }
                trial.insert(*pid, p.clone());
            }
            match dup {
                Some((en, _)) => {
                    assert_eq!(r, err_native(1199014, &en), "{at}");
                    tally.update_dups += 1;
                }
                None => {
                    assert_eq!(r, ok_native(json!(order)), "{at}");
                    model = trial;
                    tally.updated += 1;
                }
            }
        } else if roll < 80 {
            // Template-created processes are refused, whatever comes with them.
            let mut ids = vec![40];
            if let Some(&pid) = model.keys().next() {
                ids.push(pid);
            }
            let r = send(
                "DELETE",
                DELETE,
                &json!({"bk_biz_id": 7, "process_instance_ids": ids}),
            );
            assert_eq!(
                r,
                err_native(
                    1113022,
                    "delete processe [40] created by template forbidden"
                ),
                "{at}"
            );
            tally.template_refusals += 1;
        } else {
            // delete_process_instance: 1 or 2 known ids, sometimes an unknown one.
            let known: Vec<i64> = model.keys().copied().collect();
            let mut ids: Vec<i64> = (0..1 + rng.below(2)).map(|_| rng.pick(&known)).collect();
            if rng.below(4) == 0 {
                ids.push(last_id + 1 + rng.below(5) as i64);
            }
            let r = send(
                "DELETE",
                DELETE,
                &json!({"bk_biz_id": 7, "process_instance_ids": ids}),
            );
            assert_eq!(r, ok_native(Value::Null), "{at}");
            let mut touched = BTreeSet::new();
            for id in &ids {
                if let Some(p) = model.remove(id) {
                    touched.insert(p.si);
                }
            }
            for si in touched {
                if !model.values().any(|p| p.si == si) {
                    live.remove(&si);
                    gone.insert(si);
                    tally.cascades += 1;
                }
            }
            tally.deleted += 1;
        }
    }

    // Every operation kind happened, successes and refusals alike.
    let t = &tally;
    assert!(
        t.created >= 30
            && t.create_dups >= 10
            && t.updated >= 10
            && t.update_dups >= 5
            && t.update_unknown >= 3
            && t.deleted >= 20
            && t.cascades >= 1
            && t.template_refusals >= 5,
        "seed {seed}: too few of some operation: {t:?}"
    );
    eprintln!("seed {seed}: {t:?}, {} processes left", model.len());

    // The list APIs agree with the model.
    let as_regex = |v: &Value| v.as_str().map(str::to_string);
    for si in live.iter().chain(gone.iter()) {
        let r = send(
            "POST",
            LIST,
            &json!({"bk_biz_id": 7, "service_instance_id": si}),
        );
        let got: Vec<(i64, Proc)> = r["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let q = &p["property"];
                (
                    q["bk_process_id"].as_i64().unwrap(),
                    Proc {
                        si: q["service_instance_id"].as_i64().unwrap(),
                        name: q["bk_process_name"].as_str().unwrap().to_string(),
                        func: q["bk_func_name"].as_str().unwrap().to_string(),
                        regex: as_regex(&q["bk_start_param_regex"]),
                    },
                )
            })
            .collect();
        let want: Vec<(i64, Proc)> = model
            .iter()
            .filter(|(_, p)| p.si == *si)
            .map(|(id, p)| (*id, p.clone()))
            .collect();
        assert_eq!(got, want, "seed {seed}: service instance {si}");
    }
    for si in &gone {
        let r = send(
            "POST",
            CREATE,
            &json!({"bk_biz_id": 7, "service_instance_id": si,
                    "processes": [{"process_info": {"bk_process_name": "z", "bk_func_name": "z"}}]}),
        );
        assert_eq!(
            r,
            err_native(1199019, "No relevant data found"),
            "seed {seed}: {si}"
        );
    }
    let all: Vec<i64> = (1..=last_id).collect();
    let mut listed_ids = Vec::new();
    for chunk in all.chunks(500) {
        let r = send(
            "POST",
            &detail_path("7"),
            &json!({"bk_process_ids": chunk, "fields": ["bk_process_id", "bk_process_name"]}),
        );
        for p in r["data"].as_array().unwrap() {
            let id = p["bk_process_id"].as_i64().unwrap();
            if let Some(m) = model.get(&id) {
                assert_eq!(p["bk_process_name"], json!(m.name), "seed {seed}: {id}");
            }
            listed_ids.push(id);
        }
    }
    let mut want: Vec<i64> = model.keys().copied().collect();
    want.extend([40, 43]);
    want.sort();
    assert_eq!(listed_ids, want, "seed {seed}");
    assert!(issued.len() as i64 <= last_id);

    s.stop();
    let (code, out, err) = run_cli(&["check", "--db", db.to_str().unwrap()]);
    assert_eq!(code, 0, "seed {seed}: check is not clean:\n{out}{err}");
}
