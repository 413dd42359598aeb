//! Black-box tests of the process-template APIs (`batch_create_proc_template`,
//! `list_proc_template`, `get_proc_template`, `update_proc_template`, `delete_proc_template`)
//! against the real binary: spec bk-cmdb-process.md sections 4.1, 4.2, 4.4 and 5, and bk-cmdb's
//! proc_server `processtemplate.go`, coreservice `core/process/process_template.go`,
//! `metadata/process.go` and `metadata/process_bind_info.go`.
//!
//! The demo dataset: business 7 with service template 5 (process template 6 "envoy", from which
//! process 40 of service instance 31 was made) and service template 9 (process templates 10
//! "nginx" and 11 "php-fpm"); business 8. New process template ids start at 12, new service
//! template ids at 10.

use crate::common::lang::{both, call, exceed_limit, invalid, json_error, not_found, unassigned};
use crate::common::*;
use serde_json::{Map, Value, json};

const CREATE: &str = "/api/v3/createmany/proc/proc_template";
const LIST: &str = "/api/v3/findmany/proc/proc_template";
const GET: &str = "/api/v3/find/proc/proc_template/id/";
const UPDATE: &str = "/api/v3/update/proc/proc_template";
const DELETE: &str = "/api/v3/deletemany/proc/proc_template";
const ST_CREATE: &str = "/api/v3/create/proc/service_template";
const PI_LIST: &str = "/api/v3/findmany/proc/process_instance";

/// The time of every record of the demo dataset.
const DEMO_TIME: &str = "2026-01-02T03:04:05.678Z";

// ---------------------------------------------------------------------------------------------
// helpers

/// The same verbatim text (1199998) in both languages.
#[track_caller]
fn unknown_error(s: &Server, body: &Value, text: &str) {
    both(s, "POST", CREATE, body, 1199998, text, text);
}

/// Merges the keys of `extra` into `base` (each replacing the whole value).
fn merged(base: Value, extra: Value) -> Value {
    let mut b = base;
    for (k, v) in extra.as_object().unwrap() {
        b[k] = v.clone();
    }
    b
}

/// A minimal valid spec.
fn spec(name: &str, func: &str) -> Value {
    json!({"bk_process_name": {"value": name}, "bk_func_name": {"value": func}})
}

/// A spec with more wrappers.
fn spec_with(name: &str, func: &str, extra: Value) -> Value {
    merged(spec(name, func), extra)
}

/// A `batch_create_proc_template` body for business 7.
fn batch(st: i64, specs: &[Value]) -> Value {
    let processes: Vec<Value> = specs.iter().map(|s| json!({ "spec": s })).collect();
    json!({"bk_biz_id": 7, "service_template_id": st, "processes": processes})
}

fn create(s: &Server, body: &Value) -> Value {
    call(s, "POST", CREATE, body, false)
}

/// Creates the specs in service template `st` and returns their ids.
#[track_caller]
fn create_ok(s: &Server, st: i64, specs: &[Value]) -> Vec<i64> {
    let r = create(s, &batch(st, specs));
    assert_eq!(r["result"], true, "{r}");
    r["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect()
}

/// A new, empty service template of business 7 (ids 10, 11, … on the demo).
#[track_caller]
fn new_service_template(s: &Server, name: &str) -> i64 {
    let r = call(
        s,
        "POST",
        ST_CREATE,
        &json!({"bk_biz_id": 7, "name": name, "service_category_id": 2}),
        false,
    );
    r["data"]["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("create service template: {r}"))
}

fn get(s: &Server, id: i64) -> Value {
    call(
        s,
        "POST",
        &format!("{GET}{id}"),
        &json!({"bk_biz_id": 7}),
        false,
    )
}

/// The stored property of process template `id`.
#[track_caller]
fn stored(s: &Server, id: i64) -> Value {
    let r = get(s, id);
    assert_eq!(r["result"], true, "get {id}: {r}");
    r["data"]["property"].clone()
}

fn list(s: &Server, body: &Value) -> Value {
    call(s, "POST", LIST, body, false)
}

/// The ids a successful list answers, in order, and its count.
#[track_caller]
fn listed(s: &Server, body: &Value) -> (u64, Vec<i64>) {
    crate::common::lang::listed(s, LIST, body)
}

/// The process template ids of service template `st` (business 7), id ascending.
fn ids_of(s: &Server, st: i64) -> Vec<i64> {
    let mut ids = listed(s, &json!({"bk_biz_id": 7, "service_template_id": st})).1;
    ids.sort();
    ids
}

fn update(s: &Server, body: &Value) -> Value {
    call(s, "PUT", UPDATE, body, false)
}

fn delete(s: &Server, body: &Value) -> Value {
    call(s, "DELETE", DELETE, body, false)
}

/// `{value, as_default_value}`.
fn w(value: Value, locked: Value) -> Value {
    json!({"value": value, "as_default_value": locked})
}

/// A full property as bk-cmdb answers it: every wrapper `{null, null}` but those in `set`.
fn full(set: Value) -> Value {
    let mut p = Map::new();
    for f in FIELDS {
        p.insert(f.into(), w(Value::Null, Value::Null));
    }
    p.insert("bind_info".into(), w(Value::Null, Value::Null));
    for (k, v) in set.as_object().unwrap() {
        p.insert(k.clone(), v.clone());
    }
    Value::Object(p)
}

/// `full` with the names as a create stores them: values given, locked.
fn full_named(name: &str, func: &str, set: Value) -> Value {
    merged(
        full(set),
        json!({"bk_process_name": w(json!(name), json!(true)), "bk_func_name": w(json!(func), json!(true))}),
    )
}

/// One bind_info row as answered.
fn row(row_id: i64, ip: Value, port: Value, protocol: Value, enable: Value) -> Value {
    json!({"enable": enable, "ip": ip, "port": port, "protocol": protocol, "row_id": row_id})
}

/// The text of a wrapper, `{"value":…,"as_default_value":…}`.
fn wrapper_text(v: &Value) -> String {
    format!(
        r#"{{"value":{},"as_default_value":{}}}"#,
        v["value"], v["as_default_value"]
    )
}

/// The property's text exactly as bk-cmdb writes it: struct order, bind_info rows with sorted
/// keys.
fn property_text(p: &Value) -> String {
    let mut out = String::from("{");
    for f in FIELDS {
        out.push_str(&format!(r#""{f}":{},"#, wrapper_text(&p[f])));
    }
    let bi = &p["bind_info"];
    let rows = match bi["value"].as_array() {
        None => "null".to_string(),
        Some(rows) => {
            let rows: Vec<String> = rows
                .iter()
                .map(|r| {
                    format!(
                        r#"{{"enable":{},"ip":{},"port":{},"protocol":{},"row_id":{}}}"#,
                        wrapper_text(&r["enable"]),
                        wrapper_text(&r["ip"]),
                        wrapper_text(&r["port"]),
                        wrapper_text(&r["protocol"]),
                        r["row_id"]
                    )
                })
                .collect();
            format!("[{}]", rows.join(","))
        }
    };
    out.push_str(&format!(
        r#""bind_info":{{"value":{rows},"as_default_value":{}}}}}"#,
        bi["as_default_value"]
    ));
    out
}

/// A process template's text exactly as bk-cmdb's struct order writes it.
fn template_text(t: &Value) -> String {
    format!(
        r#"{{"id":{},"bk_process_name":{},"bk_biz_id":{},"service_template_id":{},"property":{},"creator":{},"modifier":{},"create_time":{},"last_time":{},"bk_supplier_account":{}}}"#,
        t["id"],
        t["bk_process_name"],
        t["bk_biz_id"],
        t["service_template_id"],
        property_text(&t["property"]),
        t["creator"],
        t["modifier"],
        t["create_time"],
        t["last_time"],
        t["bk_supplier_account"]
    )
}

/// Process template `id` of the demo dataset, as every API answers it.
fn demo_template(id: i64) -> Value {
    demo_dataset()["process_templates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap()
        .clone()
}

/// A bind_info with one row `{ip, port, protocol}` (each a raw `value`, absent if null).
fn bind1(ip: Value, port: Value, protocol: Value) -> Value {
    let mut r = Map::new();
    for (k, v) in [("ip", ip), ("port", port), ("protocol", protocol)] {
        if !v.is_null() {
            r.insert(k.into(), json!({ "value": v }));
        }
    }
    json!({"bind_info": {"value": [Value::Object(r)]}})
}

// ---------------------------------------------------------------------------------------------
// batch_create_proc_template: success

#[test]
fn create_answers_ids_and_stores_the_struct() {
    let s = Server::memory();
    let before = now_ms();
    let r = s.request(
        "POST",
        CREATE,
        &[("X-Bkcmdb-User", "bob"), ("X-Bkcmdb-Supplier-Account", "0")],
        batch(
            9,
            &[spec_with(
                "redis",
                "redis-server",
                json!({
                    "bk_process_name": {"value": "redis", "as_default_value": false},
                    "bk_func_name": {"value": "redis-server"},
                    "proc_num": {"value": 2, "as_default_value": true},
                    "priority": {"value": -100},
                    "auto_start": {"value": false, "as_default_value": false},
                    "user": {"value": "redis", "as_default_value": true},
                    "bk_start_param_regex": {"value": "--port 6379"},
                    "description": {"value": "cache a b"},
                    "timeout": {"value": 30, "as_default_value": null},
                    "bk_start_check_secs": {"as_default_value": true},
                    "unknown_key": {"value": 1},
                    "bind_info": {"value": [
                        {"ip": {"value": "3", "as_default_value": true},
                         "port": {"value": "6379", "as_default_value": false},
                         "protocol": {"value": "1"}, "enable": {"value": true}},
                        {"ip": {"value": ""}, "port": {"value": "16379,17000-17010"},
                         "protocol": {"value": "2", "as_default_value": true}, "row_id": 7},
                    ], "as_default_value": true},
                }),
            )],
        )
        .to_string()
        .as_bytes(),
    );
    let after = now_ms();
    assert_eq!(r.json(), ok_native(json!([12])));

    let property = full_named(
        "redis",
        "redis-server",
        json!({
            "proc_num": w(json!(2), json!(true)),
            "priority": w(json!(-100), Value::Null),
            "auto_start": w(json!(false), json!(false)),
            "user": w(json!("redis"), json!(true)),
            "bk_start_param_regex": w(json!("--port 6379"), Value::Null),
            "description": w(json!("cache a b"), Value::Null),
            "timeout": w(json!(30), Value::Null),
            "bk_start_check_secs": w(Value::Null, json!(true)),
            "bind_info": w(json!([
                // Rows without a row_id get max + 1.
                row(8, w(json!("3"), json!(true)), w(json!("6379"), json!(false)),
                    w(json!("1"), Value::Null), w(json!(true), Value::Null)),
                row(7, w(json!(""), Value::Null), w(json!("16379,17000-17010"), Value::Null),
                    w(json!("2"), json!(true)), w(Value::Null, Value::Null)),
            ]), json!(true)),
        }),
    );
    let r = s.request("POST", &format!("{GET}12"), &NATIVE_EN, b"{}");
    let v = r.json();
    let t = &v["data"];
    let time = parse_time(&t["create_time"]);
    assert!(before - 1 <= time && time <= after + 1, "{t}");
    let expected = json!({"id": 12, "bk_process_name": "redis", "bk_biz_id": 7,
        "service_template_id": 9, "property": property, "creator": "bob", "modifier": "bob",
        "create_time": t["create_time"], "last_time": t["create_time"],
        "bk_supplier_account": "0"});
    assert_eq!(v, ok_native(expected.clone()));
    assert_eq!(data_text(&r.body), template_text(&expected));

    // A batch: ids in order, continuing the sequence.
    assert_eq!(
        create_ok(&s, 9, &[spec("a", "a"), spec("b", "b"), spec("c", "c")]),
        vec![13, 14, 15]
    );
    assert_eq!(ids_of(&s, 9), vec![10, 11, 12, 13, 14, 15]);
    // A minimal spec: every other wrapper {null, null}, bind_info too.
    assert_eq!(stored(&s, 13), full_named("a", "a", json!({})));
    let st = new_service_template(&s, "fresh");
    assert_eq!(create_ok(&s, st, &[spec("a", "a")]), vec![16]);
    assert_eq!(get(&s, 16)["data"]["service_template_id"], st);
}

#[test]
fn get_renders_the_demo_in_struct_order() {
    let s = Server::memory();
    for id in [6, 10, 11] {
        let r = s.request("POST", &format!("{GET}{id}"), &NATIVE_EN, b"");
        assert_eq!(r.status, 200);
        let expected = demo_template(id);
        assert_eq!(r.json(), ok_native(expected.clone()));
        assert_eq!(
            data_text(&r.body),
            template_text(&expected),
            "template {id}"
        );
    }
    // The literal text of one row, to pin the row's key order.
    let r = s.request("POST", &format!("{GET}11"), &NATIVE_EN, b"{}");
    assert!(
        r.body.contains(r#""bind_info":{"value":[{"enable":{"value":true,"as_default_value":true},"ip":{"value":"1","as_default_value":true},"port":{"value":"9000","as_default_value":true},"protocol":{"value":"1","as_default_value":true},"row_id":1}],"as_default_value":true}}"#),
        "{}",
        r.body
    );
    assert!(
        r.body.contains(r#""property":{"proc_num":{"value":4,"as_default_value":false},"stop_cmd":{"value":null,"as_default_value":false},"restart_cmd""#),
        "{}",
        r.body
    );
}

#[test]
fn empty_processes_answer_an_empty_array_before_any_check() {
    let s = Server::memory();
    for body in [
        json!({"bk_biz_id": 7, "service_template_id": 9, "processes": []}),
        json!({"bk_biz_id": 7, "service_template_id": 9, "processes": null}),
        json!({"bk_biz_id": 7, "service_template_id": 9}),
        json!({"bk_biz_id": 0, "service_template_id": 999, "processes": []}),
        json!({}),
    ] {
        assert_eq!(create(&s, &body), ok_native(json!([])), "{body}");
    }
    // An empty body is an empty request.
    let r = s.request("POST", CREATE, &NATIVE_EN, b"");
    assert_eq!(r.json(), ok_native(json!([])));
    // But decoding comes first.
    json_error(
        &s,
        "POST",
        CREATE,
        &json!({"bk_biz_id": "7", "processes": []}),
    );
    assert_eq!(create_ok(&s, 9, &[spec("a", "a")]), vec![12]);
}

// ---------------------------------------------------------------------------------------------
// batch_create_proc_template: request checks

#[test]
fn leading_or_trailing_spaces_are_refused_with_1199998() {
    let s = Server::memory();
    for (field, value) in [
        ("user", " root"),
        ("user", "root "),
        ("bk_process_name", "nginx "),
        ("bk_func_name", "\tnginx"),
        ("description", "x\n"),
        ("bk_start_param_regex", " "),
        ("start_cmd", "\u{a0}run"),
        ("work_path", "/opt\u{3000}"),
    ] {
        let sp = spec_with("p", "p", json!({ field: {"value": value} }));
        unknown_error(
            &s,
            &batch(9, &[sp]),
            &format!("field {field} contains space: {value}"),
        );
    }
    // The first string field in struct order is named: stop_cmd comes before bk_func_name.
    let sp = spec_with(
        " p",
        " f",
        json!({"stop_cmd": {"value": "stop "}, "user": {"value": " u"}}),
    );
    unknown_error(&s, &batch(9, &[sp]), "field stop_cmd contains space: stop ");
    // Any item, even after a null spec (which is not looked at here), and whatever the
    // template or business.
    let body = json!({"bk_biz_id": 0, "service_template_id": 999, "processes": [
        {"spec": null}, null, {"spec": spec("ok", "ok")}, {"spec": spec("bad ", "f")}]});
    unknown_error(&s, &body, "field bk_process_name contains space: bad ");
    // Checked before the count limit.
    let mut specs: Vec<Value> = (0..101)
        .map(|i| spec(&format!("p{i}"), &format!("f{i}")))
        .collect();
    specs[100] = spec("p100", "f100 ");
    unknown_error(
        &s,
        &batch(9, &specs),
        "field bk_func_name contains space: f100 ",
    );
    // bind_info values are not looked at by this check (the port rule refuses this one).
    invalid(
        &s,
        "POST",
        CREATE,
        &batch(
            9,
            &[spec_with(
                "p",
                "p",
                bind1(json!(""), json!(" 80"), json!("1")),
            )],
        ),
        "bind_info[0].port",
    );
    // Nothing was created by any of the above; inner spaces are fine.
    assert_eq!(ids_of(&s, 9), vec![10, 11]);
    let ids = create_ok(
        &s,
        9,
        &[spec_with("a b", "c d", json!({"user": {"value": "x y"}}))],
    );
    assert_eq!(ids, vec![12]);
    assert_eq!(stored(&s, 12)["user"], w(json!("x y"), Value::Null));
}

#[test]
fn more_than_100_processes_is_1199035() {
    let s = Server::memory();
    let specs: Vec<Value> = (0..101)
        .map(|i| spec(&format!("p{i}"), &format!("f{i}")))
        .collect();
    exceed_limit(
        &s,
        "POST",
        CREATE,
        &batch(9, &specs),
        "create process template",
        100,
    );
    assert_eq!(ids_of(&s, 9), vec![10, 11]);
    // 100 is fine, and numbered in order.
    let ids = create_ok(&s, 9, &specs[..100]);
    assert_eq!(ids, (12..112).collect::<Vec<i64>>());
    assert_eq!(get(&s, 111)["data"]["bk_process_name"], "p99");
}

#[test]
fn a_null_spec_is_property() {
    let s = Server::memory();
    for processes in [
        json!([{"spec": null}]),
        json!([null]),
        json!([{}]),
        json!([{"SPEC": null}]),
        // The first item decides, before the second is looked at.
        json!([{"spec": spec("ok", "ok")}, {"spec": null}]),
    ] {
        invalid(
            &s,
            "POST",
            CREATE,
            &json!({"bk_biz_id": 7, "service_template_id": 9, "processes": processes}),
            "property",
        );
    }
    // The whole batch is rolled back.
    assert_eq!(ids_of(&s, 9), vec![10, 11]);
    // A null spec is checked before the business and the template.
    invalid(
        &s,
        "POST",
        CREATE,
        &json!({"bk_biz_id": 0, "service_template_id": 999, "processes": [null]}),
        "property",
    );
}

// ---------------------------------------------------------------------------------------------
// batch_create_proc_template: property validation (spec 4.2, metadata/process.go)

#[test]
fn bind_info_rules() {
    let s = Server::memory();
    let one = |b: Value| batch(9, &[spec_with("p", "p", b)]);
    let bad = |b: Value, field: &str| invalid(&s, "POST", CREATE, &one(b), field);
    let n = Value::Null;
    // ip: empty, or a bind-type code "1".."8".
    for ip in ["0", "9", "10", "127.0.0.1", "a", " 1", "1 "] {
        bad(bind1(json!(ip), json!("80"), json!("1")), "bind_info[0].ip");
    }
    // port: required; ports and ranges in 1..65535, comma separated, start <= end, no overlap.
    for port in [
        n.clone(),
        json!(""),
        json!("0"),
        json!("65536"),
        json!("080"),
        json!("80,"),
        json!(",80"),
        json!("80,,81"),
        json!("a"),
        json!("80-"),
        json!("-80"),
        json!("80-90-100"),
        json!("80 "),
        json!("80;81"),
        json!("5-1"),
        json!("80,80"),
        json!("1-5,5"),
        json!("10-20,15"),
        json!("10-20,5-10"),
        json!("10-20,1-100"),
        json!("1-65536"),
    ] {
        bad(bind1(json!("1"), port, json!("1")), "bind_info[0].port");
    }
    // protocol: required, "1".."4". The port is checked before it.
    for protocol in [n.clone(), json!(""), json!("0"), json!("5"), json!("tcp")] {
        bad(
            bind1(json!("1"), json!("80"), protocol),
            "bind_info[0].protocol",
        );
    }
    bad(
        bind1(json!("1"), json!("0"), json!("9")),
        "bind_info[0].port",
    );
    bad(bind1(json!("9"), json!("0"), json!("9")), "bind_info[0].ip");
    // The ip code's family must match the protocol's.
    for (ip, protocol) in [
        ("1", "3"),
        ("2", "4"),
        ("3", "3"),
        ("4", "4"),
        ("5", "1"),
        ("6", "2"),
        ("7", "1"),
        ("8", "2"),
    ] {
        bad(
            bind1(json!(ip), json!("80"), json!(protocol)),
            "bind_info[0].(ip and protocol)",
        );
    }
    // A row that is null has no port.
    bad(json!({"bind_info": {"value": [null]}}), "bind_info[0].port");
    bad(json!({"bind_info": {"value": [{}]}}), "bind_info[0].port");
    // Rows are checked in order, each fully; bind_info before the names.
    bad(
        json!({"bind_info": {"value": [
            {"ip": {"value": "1"}, "port": {"value": "80"}, "protocol": {"value": "1"}},
            {"ip": {"value": "9"}, "port": {"value": "x"}}]}}),
        "bind_info[1].ip",
    );
    invalid(
        &s,
        "POST",
        CREATE,
        &batch(
            9,
            &[merged(
                bind1(json!("1"), json!("x"), json!("1")),
                json!({"proc_num": {"value": 0}}),
            )],
        ),
        "bind_info[0].port",
    );
    assert_eq!(ids_of(&s, 9), vec![10, 11]);

    // Valid rows.
    let mut next = 12;
    for (ip, port, protocol) in [
        (json!("1"), "80,443,8000-8080", "1"),
        (json!("2"), "1", "2"),
        (json!("3"), "65535", "1"),
        (json!("4"), "1-65535", "2"),
        (json!("5"), "80", "3"),
        (json!("6"), "80", "4"),
        (json!("7"), "9000-9000", "3"),
        (json!("8"), "20-21,22", "4"),
        // No ip (or an empty one) suits any protocol.
        (json!(""), "80", "3"),
        (Value::Null, "80", "1"),
    ] {
        let ids = create_ok(
            &s,
            9,
            &[spec_with(
                &format!("p{next}"),
                &format!("f{next}"),
                bind1(ip.clone(), json!(port), json!(protocol)),
            )],
        );
        assert_eq!(ids, vec![next], "{ip} {port} {protocol}");
        let rows = stored(&s, next)["bind_info"]["value"].clone();
        assert_eq!(
            rows,
            json!([row(
                1,
                w(ip, n.clone()),
                w(json!(port), n.clone()),
                w(json!(protocol), n.clone()),
                w(n.clone(), n.clone())
            )])
        );
        next += 1;
    }
    // No rows at all: null or [] are kept as given.
    create_ok(
        &s,
        9,
        &[spec_with("e1", "e1", json!({"bind_info": {"value": []}}))],
    );
    assert_eq!(stored(&s, next)["bind_info"], w(json!([]), n.clone()));
    create_ok(
        &s,
        9,
        &[spec_with(
            "e2",
            "e2",
            json!({"bind_info": {"as_default_value": false}}),
        )],
    );
    assert_eq!(
        stored(&s, next + 1)["bind_info"],
        w(n.clone(), json!(false))
    );
}

#[test]
fn row_ids_are_assigned_from_the_largest() {
    let s = Server::memory();
    let r = |row_id: Value| {
        let mut r = json!({"port": {"value": "80"}, "protocol": {"value": "1"}});
        if !row_id.is_null() {
            r["row_id"] = row_id;
        }
        r
    };
    let ids_after = |rows: Vec<Value>, name: &str| {
        let id = create_ok(
            &s,
            9,
            &[spec_with(name, name, json!({"bind_info": {"value": rows}}))],
        )[0];
        stored(&s, id)["bind_info"]["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["row_id"].as_i64().unwrap())
            .collect::<Vec<i64>>()
    };
    assert_eq!(
        ids_after(
            vec![
                r(json!(0)),
                r(json!(5)),
                r(Value::Null),
                r(json!(3)),
                r(json!(0))
            ],
            "a"
        ),
        vec![6, 5, 7, 3, 8]
    );
    // A negative row id is kept and does not count; duplicates are kept.
    assert_eq!(ids_after(vec![r(json!(-2)), r(json!(0))], "b"), vec![-2, 1]);
    assert_eq!(
        ids_after(vec![r(json!(2)), r(json!(2)), r(json!(0))], "c"),
        vec![2, 2, 3]
    );
    assert_eq!(ids_after(vec![r(json!(0)), r(json!(0))], "d"), vec![1, 2]);
}

#[test]
fn names_and_numeric_ranges() {
    let s = Server::memory();
    let one = |extra: Value| batch(9, &[merged(spec("p", "p"), extra)]);
    // Names: required and non-empty; the process name first.
    for (extra, field) in [
        (json!({"bk_process_name": null}), "bk_process_name"),
        (json!({"bk_process_name": {"value": ""}}), "bk_process_name"),
        (
            json!({"bk_process_name": {"as_default_value": true}}),
            "bk_process_name",
        ),
        (
            json!({"bk_process_name": null, "bk_func_name": null}),
            "bk_process_name",
        ),
        (json!({"bk_func_name": {"value": null}}), "bk_func_name"),
        (json!({"bk_func_name": {"value": ""}}), "bk_func_name"),
        // Names before the ranges.
        (
            json!({"bk_func_name": null, "proc_num": {"value": 0}}),
            "bk_func_name",
        ),
    ] {
        invalid(&s, "POST", CREATE, &one(extra), field);
    }
    // Ranges: bk_start_check_secs 1..10000 (the message says 600), timeout and proc_num
    // 1..10000, priority -100..10000; checked in that order.
    for (field, bad, good) in [
        (
            "bk_start_check_secs",
            vec![0, -1, 10001],
            vec![1, 600, 601, 10000],
        ),
        ("timeout", vec![0, -5, 10001], vec![1, 10000]),
        ("proc_num", vec![0, 10001, i64::MAX], vec![1, 10000]),
        (
            "priority",
            vec![-101, 10001, i64::MIN],
            vec![-100, 0, 1, 10000],
        ),
    ] {
        for v in bad {
            invalid(
                &s,
                "POST",
                CREATE,
                &one(json!({ field: {"value": v} })),
                field,
            );
        }
        for (i, v) in good.into_iter().enumerate() {
            let name = format!("{field}-{i}");
            let id = create_ok(
                &s,
                9,
                &[spec_with(&name, &name, json!({ field: {"value": v} }))],
            )[0];
            assert_eq!(stored(&s, id)[field], w(json!(v), Value::Null));
        }
    }
    for (extra, field) in [
        (
            json!({"bk_start_check_secs": {"value": 0}, "timeout": {"value": 0}, "proc_num": {"value": 0}, "priority": {"value": -101}}),
            "bk_start_check_secs",
        ),
        (
            json!({"timeout": {"value": 0}, "proc_num": {"value": 0}, "priority": {"value": -101}}),
            "timeout",
        ),
        (
            json!({"proc_num": {"value": 0}, "priority": {"value": -101}}),
            "proc_num",
        ),
    ] {
        invalid(&s, "POST", CREATE, &one(extra), field);
    }
    // A null value is not checked.
    create_ok(
        &s,
        9,
        &[spec_with(
            "nulls",
            "nulls",
            json!({"proc_num": {"value": null, "as_default_value": true}}),
        )],
    );
}

#[test]
fn names_are_always_locked() {
    let s = Server::memory();
    let id = create_ok(
        &s,
        9,
        &[spec_with(
            "unlocked",
            "f",
            json!({"bk_process_name": {"value": "unlocked", "as_default_value": false},
                "bk_func_name": {"value": "f", "as_default_value": false},
                "user": {"value": "u", "as_default_value": false}}),
        )],
    )[0];
    let t = get(&s, id)["data"].clone();
    assert_eq!(t["bk_process_name"], "unlocked");
    assert_eq!(
        t["property"]["bk_process_name"],
        w(json!("unlocked"), json!(true))
    );
    assert_eq!(t["property"]["bk_func_name"], w(json!("f"), json!(true)));
    assert_eq!(t["property"]["user"], w(json!("u"), json!(false)));
}

#[test]
fn uniqueness_inside_a_service_template() {
    let s = Server::memory();
    let name_taken = |name: &str| {
        (
            format!("process name [{name}] unique validation failed"),
            format!("进程别名[{name}]唯一校验失败"),
        )
    };
    let func_taken = |func: &str, regex: &str| {
        (
            format!("process name [{func}] and start parameter [{regex}] unique validation failed"),
            format!("进程名称[{func}]+启动参数[{regex}]唯一校验失败"),
        )
    };
    // Against the store: template 9 has nginx and php-fpm.
    let (en, zh) = name_taken("nginx");
    both(
        &s,
        "POST",
        CREATE,
        &batch(9, &[spec("nginx", "other")]),
        1113019,
        &en,
        &zh,
    );
    // Another template may hold the same names.
    let st = new_service_template(&s, "uniq");
    assert_eq!(create_ok(&s, st, &[spec("nginx", "nginx")]), vec![12]);
    assert_eq!(create_ok(&s, 5, &[spec("nginx", "nginx")]), vec![13]);

    // (function name, start-parameter regex). A template whose regex is unset blocks no
    // other: bk-cmdb looks for a stored value equal to the new regex ("" when unset), and a
    // stored null equals nothing.
    let with_regex = |name: &str, regex: Value| {
        spec_with(name, "f", json!({"bk_start_param_regex": {"value": regex}}))
    };
    assert_eq!(create_ok(&s, st, &[spec("a", "f")]), vec![14]);
    assert_eq!(create_ok(&s, st, &[spec("b", "f")]), vec![15]);
    assert_eq!(create_ok(&s, st, &[with_regex("c", json!(""))]), vec![16]);
    // Now a stored "" exists: an unset regex and "" both clash with it.
    let (en, zh) = func_taken("f", "");
    for sp in [
        spec("d", "f"),
        with_regex("d", json!("")),
        with_regex("d", Value::Null),
    ] {
        both(&s, "POST", CREATE, &batch(st, &[sp]), 1113020, &en, &zh);
    }
    assert_eq!(create_ok(&s, st, &[with_regex("e", json!("-x"))]), vec![17]);
    let (en, zh) = func_taken("f", "-x");
    both(
        &s,
        "POST",
        CREATE,
        &batch(st, &[with_regex("g", json!("-x"))]),
        1113020,
        &en,
        &zh,
    );
    // Another function name, or another regex, is free.
    assert_eq!(create_ok(&s, st, &[with_regex("h", json!("-y"))]), vec![18]);
    assert_eq!(
        create_ok(
            &s,
            st,
            &[spec_with(
                "i",
                "g",
                json!({"bk_start_param_regex": {"value": "-x"}})
            )]
        ),
        vec![19]
    );
    // The name is checked first.
    let (en, zh) = name_taken("a");
    both(
        &s,
        "POST",
        CREATE,
        &batch(st, &[with_regex("a", json!("-x"))]),
        1113019,
        &en,
        &zh,
    );

    // Inside one batch, against the items before; the whole batch is rolled back.
    let before = ids_of(&s, st);
    let (en, zh) = name_taken("dup");
    both(
        &s,
        "POST",
        CREATE,
        &batch(
            st,
            &[spec("new1", "n1"), spec("dup", "n2"), spec("dup", "n3")],
        ),
        1113019,
        &en,
        &zh,
    );
    let (en, zh) = func_taken("q", "r");
    let q = |name: &str| spec_with(name, "q", json!({"bk_start_param_regex": {"value": "r"}}));
    both(
        &s,
        "POST",
        CREATE,
        &batch(st, &[q("q1"), q("q2")]),
        1113020,
        &en,
        &zh,
    );
    assert_eq!(ids_of(&s, st), before);
    // No id was consumed by the failed batches.
    assert_eq!(
        create_ok(&s, st, &[spec("new1", "n1"), spec("dup", "n2")]),
        vec![20, 21]
    );
}

#[test]
fn unknown_service_template_or_business() {
    let s = Server::memory();
    let body = |biz: Value, st: Value| json!({"bk_biz_id": biz, "service_template_id": st, "processes": [{"spec": spec("p", "p")}]});
    for biz in [json!(0), json!(null), json!(999), json!(-7)] {
        invalid(&s, "POST", CREATE, &body(biz, json!(9)), "bk_biz_id");
    }
    for st in [json!(999), json!(0), json!(null), json!(-9)] {
        invalid(
            &s,
            "POST",
            CREATE,
            &body(json!(7), st),
            "service_template_id",
        );
    }
    // The business before the template; a template of another business.
    invalid(
        &s,
        "POST",
        CREATE,
        &body(json!(999), json!(999)),
        "bk_biz_id",
    );
    invalid(&s, "POST", CREATE, &body(json!(8), json!(9)), "bk_biz_id");
    // Validation of the property comes before both.
    invalid(
        &s,
        "POST",
        CREATE,
        &json!({"bk_biz_id": 0, "service_template_id": 999, "processes": [{"spec": {"bk_process_name": {"value": "p"}}}]}),
        "bk_func_name",
    );
    assert_eq!(ids_of(&s, 9), vec![10, 11]);
}

#[test]
fn wrong_json_types_are_1199000() {
    let s = Server::memory();
    let one =
        |sp: Value| json!({"bk_biz_id": 7, "service_template_id": 9, "processes": [{"spec": sp}]});
    for body in [
        json!({"bk_biz_id": "7", "service_template_id": 9, "processes": [{"spec": spec("p", "p")}]}),
        json!({"bk_biz_id": 7, "service_template_id": 9.5, "processes": [{"spec": spec("p", "p")}]}),
        json!({"bk_biz_id": 7, "service_template_id": 9, "processes": "x"}),
        json!({"bk_biz_id": 7, "service_template_id": 9, "processes": {"spec": {}}}),
        json!({"bk_biz_id": 7, "service_template_id": 9, "processes": [5]}),
        json!({"bk_biz_id": 7, "service_template_id": 9, "processes": [[]]}),
        one(json!("x")),
        one(json!([])),
        one(spec_with("p", "p", json!({"proc_num": 5}))),
        one(spec_with("p", "p", json!({"proc_num": {"value": "5"}}))),
        one(spec_with("p", "p", json!({"proc_num": {"value": 1.5}}))),
        one(spec_with("p", "p", json!({"proc_num": {"value": 1e20}}))),
        one(spec_with("p", "p", json!({"priority": {"value": true}}))),
        one(spec_with(
            "p",
            "p",
            json!({"auto_start": {"value": "true"}}),
        )),
        one(spec_with("p", "p", json!({"auto_start": {"value": 1}}))),
        one(spec_with("p", "p", json!({"user": {"value": 5}}))),
        one(spec_with(
            "p",
            "p",
            json!({"user": {"value": "u", "as_default_value": "true"}}),
        )),
        one(json!({"bk_process_name": {"value": 1}, "bk_func_name": {"value": "f"}})),
        one(spec_with("p", "p", json!({"bind_info": []}))),
        one(spec_with("p", "p", json!({"bind_info": {"value": "x"}}))),
        one(spec_with("p", "p", json!({"bind_info": {"value": [5]}}))),
        one(spec_with(
            "p",
            "p",
            json!({"bind_info": {"value": [], "as_default_value": 1}}),
        )),
        one(spec_with(
            "p",
            "p",
            json!({"bind_info": {"value": [{"port": {"value": 80}}]}}),
        )),
        one(spec_with(
            "p",
            "p",
            json!({"bind_info": {"value": [{"ip": {"value": 1}}]}}),
        )),
        one(spec_with(
            "p",
            "p",
            json!({"bind_info": {"value": [{"enable": {"value": "true"}}]}}),
        )),
        one(spec_with(
            "p",
            "p",
            json!({"bind_info": {"value": [{"row_id": "1"}]}}),
        )),
        one(spec_with(
            "p",
            "p",
            json!({"bind_info": {"value": [{"row_id": 1.5}]}}),
        )),
        one(spec_with(
            "p",
            "p",
            json!({"bind_info": {"value": [{"protocol": "1"}]}}),
        )),
        // A type error anywhere fails the whole request, even in a later item.
        json!({"bk_biz_id": 7, "service_template_id": 9, "processes": [
            {"spec": spec("p", "p")}, {"spec": {"user": {"value": 1}}}]}),
    ] {
        json_error(&s, "POST", CREATE, &body);
    }
    assert_eq!(ids_of(&s, 9), vec![10, 11]);
    // Keys match case-insensitively, as Go's decoder does; unknown keys are ignored.
    let id = create_ok(
        &s,
        9,
        &[
            json!({"BK_PROCESS_NAME": {"VALUE": "up"}, "Bk_Func_Name": {"value": "up", "As_Default_Value": false},
            "Bind_Info": {"Value": [{"PORT": {"value": "81"}, "Protocol": {"value": "1"}, "ROW_ID": 4, "extra": 1}]},
            "nope": {"value": 1}}),
        ],
    )[0];
    let p = stored(&s, id);
    assert_eq!(p["bk_process_name"], w(json!("up"), json!(true)));
    assert_eq!(
        p["bind_info"],
        w(
            json!([row(
                4,
                w(Value::Null, Value::Null),
                w(json!("81"), Value::Null),
                w(json!("1"), Value::Null),
                w(Value::Null, Value::Null)
            )]),
            Value::Null
        )
    );
}

// ---------------------------------------------------------------------------------------------
// update_proc_template

/// An update body for template `id` of business 7.
fn upd(id: i64, property: Value) -> Value {
    json!({"bk_biz_id": 7, "process_template_id": id, "process_property": property})
}

#[test]
fn update_replaces_present_wrappers_only() {
    let s = Server::memory();
    let mut expected = demo_template(10);
    let before = now_ms();
    let r = s.request(
        "PUT",
        UPDATE,
        &[("X-Bkcmdb-User", "bob"), ("X-Bkcmdb-Supplier-Account", "0")],
        upd(
            10,
            json!({
                // A present key replaces the whole wrapper: no as_default_value → null.
                "user": {"value": "nobody"},
                "proc_num": null,
                "description": {"value": "front", "as_default_value": true},
                // bk_func_name never changes (bk-cmdb skips it on update).
                "bk_func_name": {"value": "changed", "as_default_value": false},
                // Renaming: the top-level name follows, and the name stays locked.
                "bk_process_name": {"value": "nginx2", "as_default_value": false},
                // Exact keys only: a differently cased key is decoded but not applied.
                "START_CMD": {"value": "ignored"},
                "unknown": {"value": 1},
            }),
        )
        .to_string()
        .as_bytes(),
    );
    let after = now_ms();
    let v = r.json();
    let p = &mut expected["property"];
    p["user"] = w(json!("nobody"), Value::Null);
    p["proc_num"] = w(Value::Null, Value::Null);
    p["description"] = w(json!("front"), json!(true));
    p["bk_process_name"] = w(json!("nginx2"), json!(true));
    expected["bk_process_name"] = json!("nginx2");
    expected["modifier"] = json!("bob");
    let last = parse_time(&v["data"]["last_time"]);
    assert!(before - 1 <= last && last <= after + 1, "{v}");
    expected["last_time"] = v["data"]["last_time"].clone();
    assert_eq!(v, ok_native(expected.clone()));
    assert_eq!(data_text(&r.body), template_text(&expected));
    assert_eq!(get(&s, 10), ok_native(expected.clone()));
    assert_eq!(expected["create_time"], DEMO_TIME);
    assert_eq!(expected["creator"], "admin");

    // bind_info is replaced whole; rows are numbered again from their largest row_id.
    let r = update(
        &s,
        &upd(
            10,
            json!({"bind_info": {"value": [
                {"ip": {"value": "2"}, "port": {"value": "443"}, "protocol": {"value": "2"}},
                {"port": {"value": "8443"}, "protocol": {"value": "1"}, "row_id": 9}]}}),
        ),
    );
    let n = Value::Null;
    assert_eq!(
        r["data"]["property"]["bind_info"],
        w(
            json!([
                row(
                    10,
                    w(json!("2"), n.clone()),
                    w(json!("443"), n.clone()),
                    w(json!("2"), n.clone()),
                    w(n.clone(), n.clone())
                ),
                row(
                    9,
                    w(n.clone(), n.clone()),
                    w(json!("8443"), n.clone()),
                    w(json!("1"), n.clone()),
                    w(n.clone(), n.clone())
                ),
            ]),
            n.clone()
        )
    );
    assert_eq!(r["data"]["property"]["user"], w(json!("nobody"), n.clone()));
    let r = update(&s, &upd(10, json!({"bind_info": null})));
    assert_eq!(r["data"]["property"]["bind_info"], w(n.clone(), n.clone()));

    // An empty property changes nothing but the modifier and the time.
    let r = update(&s, &upd(11, json!({})));
    let mut t11 = demo_template(11);
    t11["last_time"] = r["data"]["last_time"].clone();
    assert_ne!(t11["last_time"], DEMO_TIME);
    assert_eq!(r, ok_native(t11.clone()));

    // bk_biz_id is not looked at (0 aside): another business updates the template.
    let r = update(
        &s,
        &json!({"bk_biz_id": 8, "process_template_id": 11, "process_property": {"user": {"value": "www"}}}),
    );
    assert_eq!(r["data"]["property"]["user"], w(json!("www"), n.clone()));
    assert_eq!(r["data"]["bk_biz_id"], 7);
    // Renaming to its own name is no clash.
    let r = update(
        &s,
        &upd(11, json!({"bk_process_name": {"value": "php-fpm"}})),
    );
    assert_eq!(r["data"]["bk_process_name"], "php-fpm");
    // The leading/trailing-space check is batch_create_proc_template's only: an update keeps
    // the spaces.
    let r = update(&s, &upd(11, json!({"work_path": {"value": " /srv "}})));
    assert_eq!(
        r["data"]["property"]["work_path"],
        w(json!(" /srv "), n.clone())
    );
    assert_eq!(stored(&s, 11)["work_path"], w(json!(" /srv "), n));
}

#[test]
fn update_errors_in_bk_cmdb_order() {
    let s = Server::memory();
    let input_invalid = |body: Value| {
        both(
            &s,
            "PUT",
            UPDATE,
            &body,
            1199003,
            "invalid input parameter",
            "输入参数无效",
        )
    };
    // No property (or null), then id <= 0: before the business and the lookup.
    input_invalid(json!({"bk_biz_id": 7, "process_template_id": 10}));
    input_invalid(json!({"bk_biz_id": 0, "process_template_id": 999, "process_property": null}));
    input_invalid(json!({}));
    input_invalid(upd(0, json!({})));
    input_invalid(upd(-10, json!({"user": {"value": 1}})));
    input_invalid(json!({"bk_biz_id": 0, "process_property": {}}));
    // Business 0 is refused by bk-cmdb's template listing, before the lookup.
    for biz in [json!(0), json!(null)] {
        invalid(
            &s,
            "PUT",
            UPDATE,
            &json!({"bk_biz_id": biz, "process_template_id": 999, "process_property": {}}),
            "bk_biz_id",
        );
    }
    // Unknown template, before the property is decoded.
    for body in [
        upd(999, json!({})),
        upd(999, json!({"proc_num": {"value": "x"}})),
        json!({"bk_biz_id": -1, "process_template_id": 999, "process_property": {}}),
    ] {
        not_found(&s, "PUT", UPDATE, &body);
    }
    // Wrong JSON types.
    for body in [
        upd(10, json!("x")),
        upd(10, json!([])),
        upd(10, json!({"proc_num": {"value": "x"}})),
        upd(10, json!({"proc_num": 5})),
        upd(
            10,
            json!({"bind_info": {"value": [{"port": {"value": 80}}]}}),
        ),
        json!({"bk_biz_id": 7, "process_template_id": "10", "process_property": {}}),
        json!({"bk_biz_id": "7", "process_template_id": 10, "process_property": {}}),
    ] {
        json_error(&s, "PUT", UPDATE, &body);
    }
    // Validation of the merged property.
    for (property, field) in [
        (json!({"proc_num": {"value": 0}}), "proc_num"),
        (json!({"priority": {"value": 10001}}), "priority"),
        (
            json!({"bk_start_check_secs": {"value": 10001}}),
            "bk_start_check_secs",
        ),
        (json!({"bk_process_name": {"value": ""}}), "bk_process_name"),
        (json!({"bk_process_name": null}), "bk_process_name"),
        (
            json!({"bind_info": {"value": [{"ip": {"value": "1"}, "port": {"value": "80"}, "protocol": {"value": "3"}}]}}),
            "bind_info[0].(ip and protocol)",
        ),
        (
            json!({"bind_info": {"value": [{"protocol": {"value": "1"}}]}}),
            "bind_info[0].port",
        ),
    ] {
        invalid(&s, "PUT", UPDATE, &upd(10, property), field);
    }
    // The function name cannot be emptied: the key is skipped.
    assert_eq!(
        update(&s, &upd(11, json!({"bk_func_name": null})))["data"]["property"]["bk_func_name"],
        w(json!("php-fpm"), json!(true))
    );
    // Uniqueness, excluding the template itself.
    both(
        &s,
        "PUT",
        UPDATE,
        &upd(10, json!({"bk_process_name": {"value": "php-fpm"}})),
        1113019,
        "process name [php-fpm] unique validation failed",
        "进程别名[php-fpm]唯一校验失败",
    );
    let st = new_service_template(&s, "upd");
    let re = |name: &str, regex: &str| {
        spec_with(name, "f", json!({"bk_start_param_regex": {"value": regex}}))
    };
    let ids = create_ok(&s, st, &[re("x", "a"), re("y", "b")]);
    both(
        &s,
        "PUT",
        UPDATE,
        &upd(ids[1], json!({"bk_start_param_regex": {"value": "a"}})),
        1113020,
        "process name [f] and start parameter [a] unique validation failed",
        "进程名称[f]+启动参数[a]唯一校验失败",
    );
    // Unsetting the regex of both is no clash (a stored null equals nothing).
    update(&s, &upd(ids[0], json!({"bk_start_param_regex": null})));
    let r = update(
        &s,
        &upd(ids[1], json!({"bk_start_param_regex": {"value": null}})),
    );
    assert_eq!(r["result"], true, "{r}");
    // Nothing of the failures was written.
    assert_eq!(get(&s, 10), ok_native(demo_template(10)));
}

// ---------------------------------------------------------------------------------------------
// get_proc_template

#[test]
fn get_errors() {
    let s = Server::memory();
    for raw in ["x", "1.5", "99999999999999999999", "-", "0x6"] {
        both(
            &s,
            "POST",
            &format!("{GET}{raw}"),
            &json!({}),
            1199003,
            "invalid input parameter",
            "输入参数无效",
        );
    }
    for id in ["999", "0", "-6"] {
        both(
            &s,
            "POST",
            &format!("{GET}{id}"),
            &json!({"bk_biz_id": 7}),
            1199019,
            "No relevant data found",
            "未找到相关数据",
        );
    }
    // The body is decoded first; the business is not looked at.
    json_error(&s, "POST", &format!("{GET}x"), &json!({"bk_biz_id": "7"}));
    json_error(&s, "POST", &format!("{GET}6"), &json!([]));
    let r = call(
        &s,
        "POST",
        &format!("{GET}+6"),
        &json!({"bk_biz_id": 8}),
        false,
    );
    assert_eq!(r, ok_native(demo_template(6)));
}

// ---------------------------------------------------------------------------------------------
// list_proc_template

#[test]
fn list_request_checks() {
    let s = Server::memory();
    let ids = |n: i64| (1..=n).collect::<Vec<i64>>();
    for biz in [json!(0), json!(null), json!(-7)] {
        invalid(
            &s,
            "POST",
            LIST,
            &json!({"bk_biz_id": biz, "service_template_id": 9, "process_template_ids": ids(201)}),
            "bk_biz_id",
        );
    }
    for body in [
        json!({"bk_biz_id": 7, "process_template_ids": ids(201)}),
        json!({"bk_biz_id": 7, "service_template_id": 9, "process_template_ids": ids(1000)}),
    ] {
        both(
            &s,
            "POST",
            LIST,
            &body,
            1199089,
            "the length of array bk_process_ids is wrong, the length must be in range 1~200",
            "bk_process_ids数组长度错误，数组长度必须在1~200之间",
        );
    }
    let neither = "service_template_id and process_template_ids can't be empty at the same time";
    for body in [
        json!({"bk_biz_id": 7}),
        json!({"bk_biz_id": 7, "service_template_id": 0, "process_template_ids": []}),
        json!({"bk_biz_id": 7, "process_template_ids": null, "page": {"limit": 10}}),
    ] {
        invalid(&s, "POST", LIST, &body, neither);
    }
    assert_eq!(
        listed(
            &s,
            &json!({"bk_biz_id": 7, "process_template_ids": ids(200)})
        ),
        (3, vec![11, 10, 6])
    );
    for body in [
        json!({"bk_biz_id": 7, "process_template_ids": "6"}),
        json!({"bk_biz_id": 7, "process_template_ids": [6.5]}),
        json!({"bk_biz_id": 7, "service_template_id": "9"}),
        json!({"bk_biz_id": 7, "service_template_id": 9, "page": {"limit": "1"}}),
        json!({"bk_biz_id": 7, "service_template_id": 9, "page": {"sort": 1}}),
        json!({"bk_biz_id": 7, "service_template_id": 9, "page": []}),
    ] {
        json_error(&s, "POST", LIST, &body);
    }
}

#[test]
fn list_filters_paging_and_sort() {
    let s = Server::memory();
    // Template 9: 10 nginx (proc_num 1), 11 php-fpm (4), and 12 "memcached" (2).
    assert_eq!(
        create_ok(
            &s,
            9,
            &[spec_with(
                "memcached",
                "memcached",
                json!({"proc_num": {"value": 2}})
            )]
        ),
        vec![12]
    );
    let r = list(&s, &json!({"bk_biz_id": 7, "service_template_id": 9}));
    let info: Vec<Value> = r["data"]["info"].as_array().unwrap().clone();
    assert_eq!(r["data"]["count"], 3);
    assert_eq!(info[1], demo_template(11));
    assert_eq!(info[2], demo_template(10));
    let raw = s.request(
        "POST",
        LIST,
        &NATIVE_EN,
        json!({"bk_biz_id": 7, "process_template_ids": [6]})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(
        data_text(&raw.body),
        format!(
            r#"{{"count":1,"info":[{}]}}"#,
            template_text(&demo_template(6))
        )
    );

    let st9 = |page: Value| {
        listed(
            &s,
            &json!({"bk_biz_id": 7, "service_template_id": 9, "page": page}),
        )
    };
    // No page, or limit 0: everything, newest id first.
    assert_eq!(st9(Value::Null), (3, vec![12, 11, 10]));
    assert_eq!(st9(json!({"limit": 0})), (3, vec![12, 11, 10]));
    assert_eq!(st9(json!({"limit": 5000})), (3, vec![12, 11, 10]));
    assert_eq!(st9(json!({"limit": 1})), (3, vec![12]));
    assert_eq!(st9(json!({"start": 1, "limit": 1})), (3, vec![11]));
    assert_eq!(st9(json!({"start": 2})), (3, vec![10]));
    assert_eq!(st9(json!({"start": 3})), (3, vec![]));
    // A negative skip is refused by the database.
    both(
        &s,
        "POST",
        LIST,
        &json!({"bk_biz_id": 7, "service_template_id": 9, "page": {"start": -1}}),
        1199017,
        "Failed to query data",
        "查询数据失败",
    );
    // Sort.
    assert_eq!(st9(json!({"sort": "id"})), (3, vec![10, 11, 12]));
    assert_eq!(st9(json!({"sort": "-id"})), (3, vec![12, 11, 10]));
    assert_eq!(
        st9(json!({"sort": "bk_process_name"})),
        (3, vec![12, 10, 11])
    );
    assert_eq!(
        st9(json!({"sort": "bk_process_name:-1"})),
        (3, vec![11, 10, 12])
    );
    assert_eq!(
        st9(json!({"sort": "property.proc_num.value"})),
        (3, vec![10, 12, 11])
    );
    assert_eq!(
        st9(json!({"sort": "-property.proc_num.value", "start": 1, "limit": 1})),
        (3, vec![12])
    );

    // Filters.
    let q = |body: Value| listed(&s, &body);
    assert_eq!(
        q(json!({"bk_biz_id": 7, "process_template_ids": [6, 10, 999]})),
        (2, vec![10, 6])
    );
    assert_eq!(
        q(json!({"bk_biz_id": 7, "service_template_id": 9, "process_template_ids": [6, 10]})),
        (1, vec![10])
    );
    // An empty id list is no filter (bk-cmdb omits it when forwarding).
    assert_eq!(
        q(json!({"bk_biz_id": 7, "service_template_id": 5, "process_template_ids": []})),
        (1, vec![6])
    );
    // A negative service template passes the check and filters nothing.
    assert_eq!(
        q(json!({"bk_biz_id": 7, "service_template_id": -1})),
        (4, vec![12, 11, 10, 6])
    );
    // Scoped by business.
    assert_eq!(
        q(json!({"bk_biz_id": 8, "process_template_ids": [6, 10]})),
        (0, vec![])
    );
    assert_eq!(
        q(json!({"bk_biz_id": 8, "service_template_id": 9})),
        (0, vec![])
    );
    assert_eq!(
        q(json!({"bk_biz_id": 7, "service_template_id": 999})),
        (0, vec![])
    );
}

// ---------------------------------------------------------------------------------------------
// delete_proc_template

#[test]
fn delete_request_checks_and_all_or_nothing() {
    let s = Server::memory();
    for body in [
        json!({"bk_biz_id": 7, "process_templates": []}),
        json!({"bk_biz_id": 7, "process_templates": null}),
        json!({"bk_biz_id": 0}),
        json!({}),
    ] {
        unassigned(&s, "DELETE", DELETE, &body, "process_templates");
    }
    let many: Vec<i64> = (1..=501).collect();
    exceed_limit(
        &s,
        "DELETE",
        DELETE,
        &json!({"bk_biz_id": 0, "process_templates": many}),
        "delete process template",
        500,
    );
    for biz in [json!(0), json!(null)] {
        invalid(
            &s,
            "DELETE",
            DELETE,
            &json!({"bk_biz_id": biz, "process_templates": [10]}),
            "bk_biz_id",
        );
    }
    // Any unknown id: nothing deleted. A repeated id is unknown the second time.
    for ids in [
        json!([10, 999]),
        json!([999]),
        json!([10, 10]),
        json!([11, 0]),
    ] {
        delete_failed(&s, &json!({"bk_biz_id": 7, "process_templates": ids}));
    }
    assert_eq!(ids_of(&s, 9), vec![10, 11]);
    for body in [
        json!({"bk_biz_id": 7, "process_templates": "10"}),
        json!({"bk_biz_id": 7, "process_templates": ["10"]}),
        json!({"bk_biz_id": "7", "process_templates": [10]}),
    ] {
        json_error(&s, "DELETE", DELETE, &body);
    }
    // 500 ids are not too many (all unknown here).
    let ids: Vec<i64> = (1000..1500).collect();
    delete_failed(&s, &json!({"bk_biz_id": 7, "process_templates": ids}));
}

#[test]
fn delete_detaches_processes_made_from_the_template() {
    let s = Server::memory();
    assert_eq!(
        delete(&s, &json!({"bk_biz_id": 7, "process_templates": [6]})),
        ok_native(Value::Null)
    );
    both(
        &s,
        "POST",
        &format!("{GET}6"),
        &json!({}),
        1199019,
        "No relevant data found",
        "未找到相关数据",
    );
    assert_eq!(
        listed(&s, &json!({"bk_biz_id": 7, "service_template_id": 5})),
        (0, vec![])
    );
    // Process 40 lives on; its relation no longer names a template.
    let l = call(
        &s,
        "POST",
        PI_LIST,
        &json!({"bk_biz_id": 7, "service_instance_id": 31}),
        false,
    );
    let procs = l["data"].as_array().unwrap_or_else(|| panic!("{l}"));
    assert_eq!(procs.len(), 1, "{l}");
    assert_eq!(procs[0]["property"]["bk_process_id"], 40);
    assert_eq!(procs[0]["property"]["bk_process_name"], "envoy");
    assert_eq!(
        procs[0]["relation"],
        json!({"bk_biz_id": 7, "bk_process_id": 40, "service_instance_id": 31,
            "process_template_id": 0, "bk_host_id": 11, "bk_supplier_account": "0"})
    );
    // Gone for good.
    delete_failed(&s, &json!({"bk_biz_id": 7, "process_templates": [6]}));
    // Several at once, and not scoped by business (only 0 is refused).
    assert_eq!(
        delete(&s, &json!({"bk_biz_id": 8, "process_templates": [11, 10]})),
        ok_native(Value::Null)
    );
    assert_eq!(ids_of(&s, 9), Vec::<i64>::new());
    // Ids are never reused; the names are free again.
    assert_eq!(create_ok(&s, 9, &[spec("nginx", "nginx")]), vec![12]);
}

// ---------------------------------------------------------------------------------------------
// route families

fn esb(s: &Server, name: &str, body: Value) -> Value {
    s.esb(name, &[("X-Request-Id", "rid-2")], &as_esb_app(body))
}

fn esb_ok(data: Value) -> Value {
    with_request_id(ok_esb(data), "rid-2")
}

fn esb_err(code: i64, msg: &str) -> Value {
    with_request_id(err_esb(code, msg), "rid-2")
}

/// `delete config template failed` (1108014) in both languages for a delete of `body`.
#[track_caller]
fn delete_failed(s: &Server, body: &Value) {
    both(
        s,
        "DELETE",
        DELETE,
        body,
        1108014,
        "delete config template failed",
        "删除配置模板失败",
    );
}

#[test]
fn every_api_through_the_esb() {
    let s = Server::memory();
    assert_eq!(
        esb(
            &s,
            "batch_create_proc_template",
            batch(9, &[spec("esb", "esb")])
        ),
        esb_ok(json!([12]))
    );
    assert_eq!(
        esb(
            &s,
            "batch_create_proc_template",
            batch(9, &[spec("esb", "esb")])
        ),
        esb_err(1113019, "进程别名[esb]唯一校验失败")
    );
    // get: the id from the body.
    let r = esb(
        &s,
        "get_proc_template",
        json!({"bk_biz_id": 7, "process_template_id": 12}),
    );
    assert_eq!(r["data"]["creator"], "esb-user");
    assert_eq!(r["data"]["property"], full_named("esb", "esb", json!({})));
    assert_eq!(
        esb(
            &s,
            "get_proc_template",
            json!({"bk_biz_id": 7, "process_template_id": 6})
        ),
        esb_ok(demo_template(6))
    );
    assert_eq!(
        esb(
            &s,
            "get_proc_template",
            json!({"bk_biz_id": 7, "process_template_id": 999})
        ),
        esb_err(1199019, "未找到相关数据")
    );
    assert_eq!(
        esb(&s, "get_proc_template", json!({"bk_biz_id": 7})),
        esb_err(1199003, "输入参数无效")
    );
    let r = esb(
        &s,
        "update_proc_template",
        upd(
            12,
            json!({"user": {"value": "u", "as_default_value": true}}),
        ),
    );
    assert_eq!(r["result"], true, "{r}");
    assert_eq!(r["data"]["property"]["user"], w(json!("u"), json!(true)));
    assert_eq!(r["data"]["modifier"], "esb-user");
    let r = esb(
        &s,
        "list_proc_template",
        json!({"bk_biz_id": 7, "service_template_id": 9, "page": {"limit": 1}}),
    );
    assert_eq!(r["data"]["count"], 3);
    assert_eq!(r["data"]["info"][0]["id"], 12);
    assert_eq!(
        r["data"]["info"][0]["property"]["user"],
        w(json!("u"), json!(true))
    );
    assert_eq!(
        esb(&s, "list_proc_template", json!({"bk_biz_id": 0})),
        esb_err(1199006, "'bk_biz_id' 数据参数校验不通过")
    );
    assert_eq!(
        esb(
            &s,
            "delete_proc_template",
            json!({"bk_biz_id": 7, "process_templates": [12]})
        ),
        esb_ok(Value::Null)
    );
    assert_eq!(
        esb(
            &s,
            "delete_proc_template",
            json!({"bk_biz_id": 7, "process_templates": [12]})
        ),
        esb_err(1108014, "删除配置模板失败")
    );
    assert_eq!(ids_of(&s, 9), vec![10, 11]);
}

#[test]
fn every_api_through_the_gateway() {
    let s = Server::memory();
    let auth = (
        "X-Bkapi-Authorization",
        r#"{"bk_app_code":"a","bk_app_secret":"s","bk_username":"gw-user"}"#,
    );
    let gw = |method: &str, path: &str, body: Value| {
        let r = s.request(
            method,
            &format!("/api/bk-cmdb/prod/api/v3/{path}"),
            &[auth, ("X-Bkcmdb-Language", "en")],
            body.to_string().as_bytes(),
        );
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        r.json()
    };
    let (ok, err) = (ok_esb, err_esb);
    assert_eq!(
        gw(
            "POST",
            "createmany/proc/proc_template",
            batch(9, &[spec("gw", "gw")])
        ),
        ok(json!([12]))
    );
    let r = gw(
        "POST",
        "find/proc/proc_template/id/12",
        json!({"bk_biz_id": 7}),
    );
    assert_eq!(r["data"]["creator"], "gw-user");
    assert_eq!(
        gw("POST", "find/proc/proc_template/id/abc", json!({})),
        err(1199003, "invalid input parameter")
    );
    let r = gw(
        "PUT",
        "update/proc/proc_template",
        upd(12, json!({"proc_num": {"value": 3}})),
    );
    assert_eq!(r["data"]["property"]["proc_num"], w(json!(3), Value::Null));
    assert_eq!(r["data"]["modifier"], "gw-user");
    assert_eq!(
        gw(
            "PUT",
            "update/proc/proc_template",
            upd(12, json!({"proc_num": {"value": 0}}))
        ),
        err(
            1199006,
            "'proc_num' data parameter verification does not pass"
        )
    );
    let r = gw(
        "POST",
        "findmany/proc/proc_template",
        json!({"bk_biz_id": 7, "process_template_ids": [12, 6]}),
    );
    assert_eq!(r["data"]["count"], 2);
    assert_eq!(r["data"]["info"][1], demo_template(6));
    assert_eq!(
        gw(
            "DELETE",
            "deletemany/proc/proc_template",
            json!({"bk_biz_id": 7, "process_templates": [12]})
        ),
        ok(Value::Null)
    );
    assert_eq!(
        gw(
            "DELETE",
            "deletemany/proc/proc_template",
            json!({"bk_biz_id": 7, "process_templates": []})
        ),
        err(1199010, "'process_templates' unassigned")
    );
}
