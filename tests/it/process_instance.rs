//! Black-box tests of `create_process_instance` and `list_process_instance` against the real
//! binary (spec bk-cmdb-process.md sections 2, 3, 4.4, 5; product.md).
//!
//! The demo dataset: business 7 (raw service instance 30 on host 11 with process 41 "billing",
//! template-bound service instance 31 with process 40), business 8; new process ids start at 42.

use crate::common::*;
use serde_json::{Value, json};

const CREATE: &str = "/api/v3/create/proc/process_instance";
const LIST: &str = "/api/v3/findmany/proc/process_instance";

// ---------------------------------------------------------------------------------------------
// helpers

/// A create body for business 7, service instance 30.
fn body(processes: Value) -> Value {
    json!({"bk_biz_id": 7, "service_instance_id": 30, "processes": processes})
}

/// One item of `processes`.
fn item(info: Value) -> Value {
    json!({ "process_info": info })
}

/// A valid process_info named `name`/`func`.
fn proc(name: &str, func: &str) -> Value {
    json!({"bk_process_name": name, "bk_func_name": func})
}

/// A valid process_info (`p`/`f`) with `extra` keys merged in (overriding).
fn with(extra: Value) -> Value {
    let mut m = proc("p", "f");
    for (k, v) in extra.as_object().unwrap() {
        m[k] = v.clone();
    }
    m
}

/// Asserts the same error code in English and in Chinese, with both texts.
#[track_caller]
fn both(s: &Server, path: &str, body: &Value, code: i64, en: &str, zh: &str) {
    assert_eq!(
        s.native(path, body),
        err_native(code, en),
        "en, body {body}"
    );
    assert_eq!(
        s.native_zh(path, body),
        err_native(code, zh),
        "zh, body {body}"
    );
}

/// Same as [`both`] for a raw (possibly malformed) body.
#[track_caller]
fn both_raw(s: &Server, path: &str, raw: &[u8], code: i64, en: &str, zh: &str) {
    let shown = String::from_utf8_lossy(raw);
    for (lang, headers, msg) in [("en", &NATIVE_EN[..], en), ("zh", &NATIVE_ZH[..], zh)] {
        let r = s.request("POST", path, headers, raw);
        assert_eq!(r.status, 200, "{lang}, body {shown:?}: {}", r.body);
        assert_eq!(r.json(), err_native(code, msg), "{lang}, body {shown:?}");
    }
}

/// The final English text of a value-level failure (spec 2.12): wrapped by coreservice and
/// again by proc_server in the 1199011 template.
fn wrap2_en(inner: &str) -> String {
    format!(
        "''{inner}' the parameter is invalid or does not exist' the parameter is invalid or does not exist"
    )
}

fn wrap2_zh(inner: &str) -> String {
    format!("''{inner}' 参数无效或不存在' 参数无效或不存在")
}

/// An inner message (en, zh) of a type rule of spec 2.4: its two templates with the display name
/// `n` in place of `{}`.
fn rule(n: &str, en: &str, zh: &str) -> (String, String) {
    (en.replace("{}", n), zh.replace("{}", n))
}
fn unassigned(n: &str) -> (String, String) {
    rule(n, "'{}' unassigned", "'{}' 未赋值")
}
fn over_limit(n: &str) -> (String, String) {
    rule(n, "Data out of bounds%!(EXTRA string={})", "'{}' 数据越界")
}
fn need_string(n: &str) -> (String, String) {
    rule(n, "'{}' must be a string type", "'{}' 必须为字符串类型")
}
fn need_int(n: &str) -> (String, String) {
    rule(n, "'{}' parameters must be integral", "'{}' 参数必须是整型")
}
fn invalid(n: &str) -> (String, String) {
    rule(
        n,
        "'{}' data parameter verification does not pass",
        "'{}' 数据参数校验不通过",
    )
}
fn need_bool(n: &str) -> (String, String) {
    rule(n, "'{}' must be boolean", "'{}' 必须为bool类型")
}

/// Asserts a value-level failure (1199011, double wrapped) in both languages.
#[track_caller]
fn value_error(s: &Server, body: &Value, inner: &(String, String)) {
    both(
        s,
        CREATE,
        body,
        1199011,
        &wrap2_en(&inner.0),
        &wrap2_zh(&inner.1),
    );
}

/// `list_process_instance` in English (the harness decodes chunked answers of big lists).
fn list(s: &Server, biz: i64, si: i64) -> Value {
    s.list(biz, si)
}

/// The `bk_process_id`s listed for business 7, service instance 30, in answer order.
fn listed_ids(s: &Server) -> Vec<i64> {
    listed_ids_of(s, 7, 30)
}

fn listed_ids_of(s: &Server, biz: i64, si: i64) -> Vec<i64> {
    let l = list(s, biz, si);
    assert_eq!(l["result"], true, "{l}");
    l["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["relation"]["bk_process_id"].as_i64().unwrap())
        .collect()
}

/// The stored property map of process `pid` of service instance 30.
#[track_caller]
fn property(s: &Server, pid: i64) -> Value {
    listed_process(&list(s, 7, 30), pid)["property"].clone()
}

/// Creates one process in service instance 30 and returns its id.
#[track_caller]
fn create_one(s: &Server, info: Value) -> i64 {
    let r = s.create(&body(json!([item(info.clone())])));
    assert_eq!(r["result"], true, "create {info}: {r}");
    r["data"][0].as_i64().unwrap()
}

/// Nothing new in service instance 30 (only the demo's process 41).
#[track_caller]
fn assert_untouched(s: &Server) {
    assert_eq!(listed_ids(s), vec![41]);
}

/// Checks the four insert-time fields of a stored process (equal, in `[lo, hi]`) and removes
/// them so the rest can be compared exactly.
#[track_caller]
fn take_times(p: &mut Value, lo: i64, hi: i64) {
    let first = p["create_time"].clone();
    for k in ["create_time", "last_time", "bk_created_at", "bk_updated_at"] {
        let t = parse_time(&p[k]);
        assert!(
            lo - 1 <= t && t <= hi + 1,
            "{k} {} not within the request",
            p[k]
        );
        assert_eq!(p[k], first, "{k} differs from create_time");
        p.as_object_mut().unwrap().remove(k);
    }
}

/// The demo dataset plus a second raw service instance 32 (business 7, module 20, host 12).
fn two_raw_instances() -> (TempDir, Server) {
    let mut ds = demo_dataset();
    ds["service_instances"].as_array_mut().unwrap().push(json!({
        "bk_biz_id": 7, "id": 32, "name": "192.168.10.12", "labels": null, "service_template_id": 0,
        "bk_host_id": 12, "bk_module_id": 20, "creator": "admin", "modifier": "admin",
        "create_time": "2026-01-02T03:04:05.678Z", "last_time": "2026-01-02T03:04:05.678Z",
        "bk_supplier_account": "0"
    }));
    ds["sequences"]["service_instance"] = json!(32);
    let dir = TempDir::new("procinst");
    let path = dir.join("seed.json");
    std::fs::write(&path, ds.to_string()).unwrap();
    let s = Server::start(&["--memory", "--seed", path.to_str().unwrap()]);
    (dir, s)
}

const NOT_SET: &str = "not set processes";

// ---------------------------------------------------------------------------------------------
// request-level errors (spec 2.1, 2.2 steps 2-9)

#[test]
fn empty_or_missing_processes_is_1199011_in_every_language() {
    let s = Server::memory();
    for b in [
        body(json!([])),
        body(Value::Null),
        json!({"bk_biz_id": 7, "service_instance_id": 30}),
        json!({}),
        // Step 3 comes before the service instance lookup.
        json!({"bk_biz_id": 7, "service_instance_id": 999, "processes": []}),
        json!({"bk_biz_id": 8, "service_instance_id": 31, "processes": []}),
    ] {
        both(&s, CREATE, &b, 1199011, NOT_SET, NOT_SET);
    }
    // An empty body decodes to zero values (spec 2.1).
    both_raw(&s, CREATE, b"", 1199011, NOT_SET, NOT_SET);
    both_raw(&s, CREATE, b"null", 1199011, NOT_SET, NOT_SET);
    assert_untouched(&s);
}

#[test]
fn more_than_100_processes_is_1199035_with_leading_space() {
    let s = Server::memory();
    let en = " create process instances exceed the limit 100";
    let zh = " create process instances 超过限制 100";
    let many: Vec<Value> = (0..101)
        .map(|i| item(proc(&format!("p{i}"), &format!("f{i}"))))
        .collect();
    both(&s, CREATE, &body(json!(many)), 1199035, en, zh);
    // Step 4 comes before the service instance lookup and before any item is looked at.
    let nulls: Vec<Value> = (0..101).map(|_| item(Value::Null)).collect();
    both(
        &s,
        CREATE,
        &json!({"bk_biz_id": 7, "service_instance_id": 999, "processes": nulls}),
        1199035,
        en,
        zh,
    );
    assert_untouched(&s);
}

#[test]
fn malformed_json_is_1199000() {
    let s = Server::memory();
    let (en, zh) = ("Deserializing JSON data failed", "反序列化JSON数据失败");
    for raw in [
        &br#"{"bk_biz_id":"#[..],
        br#"{"bk_biz_id": 7, "service_instance_id": 30, "processes": [}"#,
        br#"{"bk_biz_id": 7,}"#,
        b"not json",
        b"[1, 2]",
        b"\"text\"",
    ] {
        both_raw(&s, CREATE, raw, 1199000, en, zh);
    }
    assert_untouched(&s);
}

#[test]
fn wrong_json_types_are_1199000() {
    let s = Server::memory();
    let (en, zh) = ("Deserializing JSON data failed", "反序列化JSON数据失败");
    let ok = json!([item(proc("a", "a"))]);
    for b in [
        json!({"bk_biz_id": "7", "service_instance_id": 30, "processes": ok}),
        json!({"bk_biz_id": "2", "service_instance_id": 30, "processes": ok}),
        json!({"bk_biz_id": 7.5, "service_instance_id": 30, "processes": ok}),
        json!({"bk_biz_id": true, "service_instance_id": 30, "processes": ok}),
        json!({"bk_biz_id": 7, "service_instance_id": "30", "processes": ok}),
        json!({"bk_biz_id": 7, "service_instance_id": [30], "processes": ok}),
        json!({"bk_biz_id": 7, "service_instance_id": 30, "processes": {}}),
        json!({"bk_biz_id": 7, "service_instance_id": 30, "processes": "x"}),
        json!({"bk_biz_id": 7, "service_instance_id": 30, "processes": 1}),
        json!({"bk_biz_id": 7, "service_instance_id": 30, "processes": [1]}),
        json!({"bk_biz_id": 7, "service_instance_id": 30, "processes": ["x"]}),
        body(json!([{"process_info": 5}])),
        body(json!([{"process_info": "x"}])),
        body(json!([{"process_info": []}])),
        body(json!([{"process_info": true}])),
        body(json!([{"process_template_id": "6", "process_info": proc("a", "a")}])),
        // A type error wins over an empty `processes` (decoding is step 2).
        json!({"bk_biz_id": "2", "processes": []}),
        // ... and over an unknown service instance.
        json!({"bk_biz_id": 7, "service_instance_id": 999, "processes": [{"process_info": 1}]}),
    ] {
        both(&s, CREATE, &b, 1199000, en, zh);
    }
    assert_untouched(&s);
}

#[test]
fn unknown_service_instance_is_1199019() {
    let s = Server::memory();
    let (en, zh) = ("No relevant data found", "未找到相关数据");
    let ok = json!([item(proc("a", "a"))]);
    for b in [
        json!({"bk_biz_id": 7, "service_instance_id": 999, "processes": ok}),
        json!({"bk_biz_id": 7, "service_instance_id": 0, "processes": ok}),
        json!({"bk_biz_id": 7, "service_instance_id": null, "processes": ok}),
        json!({"bk_biz_id": 7, "processes": ok}),
        json!({"bk_biz_id": 7, "service_instance_id": -30, "processes": ok}),
        // The lookup has no business filter: not found comes before the business check.
        json!({"bk_biz_id": 8, "service_instance_id": 999, "processes": ok}),
        // The lookup (step 6) comes before the item checks (step 9).
        json!({"bk_biz_id": 7, "service_instance_id": 999, "processes": [item(Value::Null)]}),
        json!({"bk_biz_id": 7, "service_instance_id": 999, "processes": [item(json!({}))]}),
    ] {
        both(&s, CREATE, &b, 1199019, en, zh);
    }
    assert_untouched(&s);
}

#[test]
fn business_mismatch_is_1199006_bk_biz_id() {
    let s = Server::memory();
    let en = "'bk_biz_id' data parameter verification does not pass";
    let zh = "'bk_biz_id' 数据参数校验不通过";
    let ok = json!([item(proc("a", "a"))]);
    for b in [
        json!({"bk_biz_id": 8, "service_instance_id": 30, "processes": ok}),
        json!({"bk_biz_id": 0, "service_instance_id": 30, "processes": ok}),
        json!({"service_instance_id": 30, "processes": ok}),
        json!({"bk_biz_id": 999, "service_instance_id": 30, "processes": ok}),
        // Step 7 (business) comes before step 8 (template) and step 9 (items).
        json!({"bk_biz_id": 8, "service_instance_id": 31, "processes": ok}),
        json!({"bk_biz_id": 8, "service_instance_id": 30, "processes": [item(Value::Null)]}),
    ] {
        both(&s, CREATE, &b, 1199006, en, zh);
    }
    assert_untouched(&s);
}

#[test]
fn template_bound_service_instance_is_1108035() {
    let s = Server::memory();
    let en =
        "create or update process instance under service instance create by template forbidden";
    let zh = "通过模板创建的服务实例禁止直接添加/修改进程实例";
    for p in [
        json!([item(proc("a", "a"))]),
        json!([item(proc("envoy", "envoy"))]),
        // Step 8 comes before step 9 (null process_info) and validation.
        json!([item(Value::Null)]),
        json!([item(json!({}))]),
        json!([item(with(json!({"proc_num": 0})))]),
    ] {
        both(
            &s,
            CREATE,
            &json!({"bk_biz_id": 7, "service_instance_id": 31, "processes": p}),
            1108035,
            en,
            zh,
        );
    }
    assert_eq!(listed_ids_of(&s, 7, 31), vec![40]);
}

#[test]
fn null_or_missing_process_info_is_1199999_proc() {
    let s = Server::memory();
    let en = "'proc' Internal Server Error";
    let zh = "'proc' 服务器内部错误";
    for p in [
        json!([item(Value::Null)]),
        json!([{}]),
        json!([{"process_template_id": 6}]),
        json!([null]),
        json!([item(proc("a", "a")), item(Value::Null)]),
        // Step 9 runs over every item before any validation or insert (step 10).
        json!([item(with(json!({"proc_num": 0}))), {}]),
        json!([item(proc("billing", "billing")), item(Value::Null)]),
        json!([item(json!({})), null]),
    ] {
        both(&s, CREATE, &body(p), 1199999, en, zh);
    }
    // Exact bytes of the body (spec 2.2 step 9).
    let r = s.request(
        "POST",
        CREATE,
        &NATIVE_EN,
        body(json!([item(Value::Null)])).to_string().as_bytes(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        r#"{"result":false,"bk_error_code":1199999,"bk_error_msg":"'proc' Internal Server Error","permission":null,"data":null}"#
    );
    assert_untouched(&s);
}

// ---------------------------------------------------------------------------------------------
// item-level errors (spec 2.4, 2.5, 2.12)

#[test]
fn missing_required_keys_is_1199010_double_quoted() {
    let s = Server::memory();
    // Spec 2.12, literally.
    both(
        &s,
        CREATE,
        &body(json!([item(json!({"bk_process_name": "a"}))])),
        1199010,
        "''bk_func_name' unassigned' unassigned",
        "''bk_func_name' 未赋值' 未赋值",
    );
    for info in [
        json!({}),
        json!({"bk_func_name": "a"}),
        json!({"description": "d"}),
        // Presence is checked before any value (step 1 before step 3).
        json!({"bk_func_name": "a", "proc_num": 0, "auto_start": "x"}),
    ] {
        both(
            &s,
            CREATE,
            &body(json!([item(info)])),
            1199010,
            "''bk_process_name' unassigned' unassigned",
            "''bk_process_name' 未赋值' 未赋值",
        );
    }
    both(
        &s,
        CREATE,
        &body(json!([item(
            json!({"bk_process_name": "a", "bk_start_param_regex": 5})
        )])),
        1199010,
        "''bk_func_name' unassigned' unassigned",
        "''bk_func_name' 未赋值' 未赋值",
    );
    // The first bad item is reported.
    both(
        &s,
        CREATE,
        &body(json!([
            item(proc("x", "x")),
            item(json!({"bk_process_name": "b"})),
            item(json!({}))
        ])),
        1199010,
        "''bk_func_name' unassigned' unassigned",
        "''bk_func_name' 未赋值' 未赋值",
    );
    assert_untouched(&s);
}

#[test]
fn required_value_null_or_blank_is_1199011() {
    let s = Server::memory();
    // Spec 2.12, literally.
    both(
        &s,
        CREATE,
        &body(json!([item(proc("", "f"))])),
        1199011,
        "'''进程别名' unassigned' the parameter is invalid or does not exist' the parameter is invalid or does not exist",
        "'''进程别名' 未赋值' 参数无效或不存在' 参数无效或不存在",
    );
    for info in [
        json!({"bk_process_name": null, "bk_func_name": "f"}),
        json!({"bk_process_name": "   ", "bk_func_name": "f"}),
        json!({"bk_process_name": "\t\n\r ", "bk_func_name": "f"}),
        json!({"bk_process_name": "\u{3000}\u{a0}", "bk_func_name": "f"}),
    ] {
        value_error(&s, &body(json!([item(info)])), &unassigned("进程别名"));
    }
    for info in [
        json!({"bk_process_name": "p", "bk_func_name": null}),
        json!({"bk_process_name": "p", "bk_func_name": ""}),
        json!({"bk_process_name": "p", "bk_func_name": " \t "}),
    ] {
        value_error(&s, &body(json!([item(info)])), &unassigned("进程名称"));
    }
    assert_untouched(&s);
}

#[test]
fn string_length_limits_are_bytes_after_trim() {
    let s = Server::memory();
    let a257 = "a".repeat(257);
    let zh86 = "中".repeat(86); // 86 characters, 258 bytes
    let a2001 = "a".repeat(2001);
    let zh667 = "中".repeat(667); // 2001 bytes
    for (key, name, v) in [
        ("bk_process_name", "进程别名", &a257),
        ("bk_process_name", "进程别名", &zh86),
        ("bk_func_name", "进程名称", &a257),
        ("description", "备注", &a257),
        ("user", "启动用户", &zh86),
    ] {
        value_error(
            &s,
            &body(json!([item(with(json!({ key: v })))])),
            &over_limit(name),
        );
    }
    for (key, name) in [
        ("bk_start_param_regex", "启动参数匹配规则"),
        ("work_path", "工作路径"),
        ("start_cmd", "启动命令"),
        ("stop_cmd", "停止命令"),
        ("restart_cmd", "重启命令"),
        ("face_stop_cmd", "强制停止命令"),
        ("reload_cmd", "进程重载命令"),
        ("pid_file", "PID文件路径"),
    ] {
        value_error(
            &s,
            &body(json!([item(with(json!({ key: a2001 })))])),
            &over_limit(name),
        );
        value_error(
            &s,
            &body(json!([item(with(json!({ key: zh667 })))])),
            &over_limit(name),
        );
    }
    // Spec 1.4 / 2.4 literally.
    both(
        &s,
        CREATE,
        &body(json!([item(with(json!({"bk_process_name": a257})))])),
        1199011,
        "''Data out of bounds%!(EXTRA string=进程别名)' the parameter is invalid or does not exist' the parameter is invalid or does not exist",
        "'''进程别名' 数据越界' 参数无效或不存在' 参数无效或不存在",
    );
    assert_untouched(&s);

    // At the limits, and longer only by surrounding whitespace: accepted, stored trimmed.
    let a256 = "a".repeat(256);
    let zh85 = "中".repeat(85); // 255 bytes
    let a2000 = "a".repeat(2000);
    let pid = create_one(
        &s,
        json!({"bk_process_name": format!("  {a256}\t"), "bk_func_name": zh85, "description": a256,
               "user": format!(" {zh85} "), "bk_start_param_regex": format!(" {a2000} "),
               "work_path": a2000, "pid_file": "中".repeat(666)}),
    );
    let p = property(&s, pid);
    assert_eq!(p["bk_process_name"], json!(a256));
    assert_eq!(p["bk_func_name"], json!(zh85));
    assert_eq!(p["description"], json!(a256));
    assert_eq!(p["user"], json!(zh85));
    assert_eq!(p["bk_start_param_regex"], json!(a2000));
    assert_eq!(p["work_path"], json!(a2000));
    assert_eq!(p["pid_file"], json!("中".repeat(666)));
}

#[test]
fn non_string_values_are_rejected() {
    let s = Server::memory();
    for (key, name, v) in [
        ("bk_process_name", "进程别名", json!(5)),
        ("bk_process_name", "进程别名", json!(["a"])),
        ("bk_func_name", "进程名称", json!(true)),
        ("description", "备注", json!(1.5)),
        ("description", "备注", json!(false)),
        ("user", "启动用户", json!({"a": 1})),
        ("bk_start_param_regex", "启动参数匹配规则", json!(5)),
        ("work_path", "工作路径", json!(0)),
        ("work_path", "工作路径", json!(false)),
        ("start_cmd", "启动命令", json!({})),
        ("stop_cmd", "停止命令", json!([])),
        ("restart_cmd", "重启命令", json!(1)),
        ("face_stop_cmd", "强制停止命令", json!(true)),
        ("reload_cmd", "进程重载命令", json!(2)),
        ("pid_file", "PID文件路径", json!(3)),
    ] {
        value_error(
            &s,
            &body(json!([item(with(json!({ key: v })))])),
            &need_string(name),
        );
    }
    assert_untouched(&s);
}

#[test]
fn int_rules() {
    let s = Server::memory();
    for (key, name, v) in [
        ("proc_num", "启动数量", json!("5")),
        ("proc_num", "启动数量", json!(true)),
        ("priority", "启动优先级", json!("1")),
        ("timeout", "操作超时时长", json!([1])),
        ("bk_start_check_secs", "启动等待时长", json!({})),
    ] {
        value_error(
            &s,
            &body(json!([item(with(json!({ key: v })))])),
            &need_int(name),
        );
    }
    for (key, name, v) in [
        ("proc_num", "启动数量", json!(0)),
        ("proc_num", "启动数量", json!(-1)),
        ("proc_num", "启动数量", json!(10001)),
        // The fractional quirk: converted to 0 for the range check.
        ("proc_num", "启动数量", json!(1.5)),
        ("proc_num", "启动数量", json!(5.0)),
        ("priority", "启动优先级", json!(-101)),
        ("priority", "启动优先级", json!(10001)),
        ("timeout", "操作超时时长", json!(-1)),
        ("timeout", "操作超时时长", json!(10001)),
        ("bk_start_check_secs", "启动等待时长", json!(-1)),
        ("bk_start_check_secs", "启动等待时长", json!(601)),
    ] {
        value_error(
            &s,
            &body(json!([item(with(json!({ key: v })))])),
            &invalid(name),
        );
    }
    // Spec 2.4 literally.
    both(
        &s,
        CREATE,
        &body(json!([item(with(json!({"proc_num": 1.5})))])),
        1199011,
        "'''启动数量' data parameter verification does not pass' the parameter is invalid or does not exist' the parameter is invalid or does not exist",
        "'''启动数量' 数据参数校验不通过' 参数无效或不存在' 参数无效或不存在",
    );
    assert_untouched(&s);

    // Bounds and the fractional quirk on the accepting side; the value is stored as sent.
    let cases = [
        json!({"proc_num": 1, "priority": -100, "timeout": 0, "bk_start_check_secs": 0}),
        json!({"proc_num": 10000, "priority": 10000, "timeout": 10000, "bk_start_check_secs": 600}),
        json!({"proc_num": null, "priority": 1.5, "timeout": 0.5, "bk_start_check_secs": null}),
    ];
    for (i, extra) in cases.iter().enumerate() {
        let mut info = with(extra.clone());
        info["bk_process_name"] = json!(format!("p{i}"));
        info["bk_func_name"] = json!(format!("f{i}"));
        let pid = create_one(&s, info);
        let p = property(&s, pid);
        for (k, v) in extra.as_object().unwrap() {
            assert_eq!(&p[k], v, "{k} of case {extra}");
        }
    }
}

#[test]
fn bool_rule() {
    let s = Server::memory();
    for v in [json!("true"), json!(1), json!("yes"), json!([]), json!(0)] {
        value_error(
            &s,
            &body(json!([item(with(json!({ "auto_start": v })))])),
            &need_bool("是否自动拉起"),
        );
    }
    assert_untouched(&s);
    for (i, v) in [json!(true), json!(false), Value::Null]
        .into_iter()
        .enumerate()
    {
        let pid = create_one(&s, proc_with(i, json!({ "auto_start": v })));
        assert_eq!(property(&s, pid)["auto_start"], v);
    }
}

/// A valid process_info with unique names `p{i}`/`f{i}` and `extra` merged in.
fn proc_with(i: usize, extra: Value) -> Value {
    let mut info = with(extra);
    info["bk_process_name"] = json!(format!("p{i}"));
    info["bk_func_name"] = json!(format!("f{i}"));
    info
}

#[test]
fn bind_info_rejections_are_1199006_bind_info() {
    let s = Server::memory();
    let row = |extra: Value| {
        let mut r = json!({"ip": "127.0.0.1", "port": "80", "protocol": "1", "enable": true});
        for (k, v) in extra.as_object().unwrap() {
            r[k] = v.clone();
        }
        json!([r])
    };
    let cases = [
        // shape
        json!({}),
        json!("x"),
        json!(5),
        json!(true),
        json!([1]),
        json!(["a"]),
        json!([null]),
        json!([[]]),
        // keys: row_id belongs to templates (spec 2.5)
        row(json!({"row_id": 1})),
        json!([{"row_id": 1}]),
        row(json!({"bk_row_id": 1})),
        row(json!({"IP": "127.0.0.1"})),
        // ip
        row(json!({"ip": "1"})),
        row(json!({"ip": "2"})),
        row(json!({"ip": "256.1.1.1"})),
        row(json!({"ip": "1.2.3"})),
        row(json!({"ip": "1.2.3.4.5"})),
        row(json!({"ip": "001.1.1.1"})),
        row(json!({"ip": "localhost"})),
        row(json!({"ip": "1.2.3.4/24"})),
        row(json!({"ip": "1.2.3.4,5.6.7.8"})),
        row(json!({"ip": ":::1"})),
        row(json!({"ip": 1})),
        row(json!({"ip": true})),
        // port
        row(json!({"port": "8080,8081"})),
        row(json!({"port": "80,81-90"})),
        row(json!({"port": "0"})),
        row(json!({"port": "65536"})),
        row(json!({"port": "0-80"})),
        row(json!({"port": "80-65536"})),
        row(json!({"port": "080"})),
        row(json!({"port": "-80"})),
        row(json!({"port": "80-"})),
        row(json!({"port": "a"})),
        row(json!({"port": ""})),
        row(json!({"port": null})),
        row(json!({"port": 80})),
        // protocol
        row(json!({"protocol": 1})),
        row(json!({"protocol": "0"})),
        row(json!({"protocol": "5"})),
        row(json!({"protocol": "TCP"})),
        row(json!({"protocol": ""})),
        row(json!({"protocol": null})),
        // enable
        row(json!({"enable": null})),
        row(json!({"enable": "true"})),
        row(json!({"enable": 1})),
        // template_row_id
        row(json!({"template_row_id": "1"})),
        // the second row is bad
        json!([{"port": "80"}, {"port": "0"}]),
    ];
    for b in cases {
        value_error(
            &s,
            &body(json!([item(with(json!({ "bind_info": b })))])),
            &invalid("bind_info"),
        );
    }
    // Literally.
    both(
        &s,
        CREATE,
        &body(json!([item(with(
            json!({"bind_info": [{"row_id": 1, "port": "80"}]})
        ))])),
        1199011,
        "'''bind_info' data parameter verification does not pass' the parameter is invalid or does not exist' the parameter is invalid or does not exist",
        "'''bind_info' 数据参数校验不通过' 参数无效或不存在' 参数无效或不存在",
    );
    assert_untouched(&s);
}

#[test]
fn bind_info_accepted_values_are_stored_as_sent() {
    let s = Server::memory();
    let cases = [
        Value::Null,
        json!([]),
        json!([{}]),
        json!([{"port": "80"}]),
        json!([{"ip": "127.0.0.1"}]),
        json!([{"enable": false}]),
        json!([{"protocol": "2", "port": "53"}]),
        json!([{"ip": "", "port": "1", "protocol": "1", "enable": true}]),
        json!([{"ip": null, "port": "65535", "protocol": "4", "enable": false}]),
        json!([{"ip": "::1", "port": "80", "protocol": "3", "enable": true}]),
        json!([{"ip": "fe80::1%eth0", "port": "80", "protocol": "3", "enable": true}]),
        json!([{"ip": "2001:db8::1", "port": "80", "protocol": "4", "enable": true}]),
        json!([{"ip": "::", "port": "80", "protocol": "3", "enable": true}]),
        json!([{"ip": "::ffff:10.0.0.1", "port": "80", "protocol": "3", "enable": true}]),
        // Leading zeros in octets are accepted, as bk-cmdb's (1?\d{1,2}|...) does.
        json!([{"ip": "01.02.03.04", "port": "80", "protocol": "1", "enable": true}]),
        json!([{"ip": "10.00.0.09", "port": "80", "protocol": "1", "enable": true}]),
        json!([{"ip": "255.255.255.255", "port": "80", "protocol": "1", "enable": true}]),
        // Ranges, including a > b.
        json!([{"ip": "0.0.0.0", "port": "8000-8080", "protocol": "1", "enable": true}]),
        json!([{"ip": "0.0.0.0", "port": "9000-80", "protocol": "2", "enable": true}]),
        json!([{"ip": "0.0.0.0", "port": "1-65535", "protocol": "1", "enable": true}]),
        // No ip/protocol family cross-check on instances.
        json!([{"ip": "10.0.0.1", "port": "80", "protocol": "3", "enable": true}]),
        json!([{"ip": "::1", "port": "80", "protocol": "1", "enable": true}]),
        json!([{"ip": "10.0.0.1", "port": "80", "protocol": "1", "enable": true, "template_row_id": 3}]),
        json!([{"template_row_id": null}]),
        // The ip is checked trimmed but stored as sent.
        json!([{"ip": " 10.0.0.1 ", "port": "80"}]),
        json!([
            {"ip": "10.0.0.1", "port": "80", "protocol": "1", "enable": true},
            {"ip": "10.0.0.2", "port": "81", "protocol": "2", "enable": false}
        ]),
    ];
    let mut pids = Vec::new();
    for (i, b) in cases.iter().enumerate() {
        let pid = create_one(&s, proc_with(i, json!({ "bind_info": b })));
        pids.push(pid);
    }
    let l = list(&s, 7, 30);
    for (pid, b) in pids.iter().zip(&cases) {
        let p = listed_process(&l, *pid);
        assert_eq!(&p["property"]["bind_info"], b, "process {pid}");
    }
    // Absent bind_info is stored as null.
    let pid = create_one(&s, proc("nobind", "nobind"));
    assert_eq!(property(&s, pid)["bind_info"], Value::Null);
}

#[test]
fn earliest_bad_key_in_the_attribute_table_is_reported() {
    let s = Server::memory();
    let cases = [
        (
            json!({"bk_process_name": "", "bk_func_name": ""}),
            unassigned("进程别名"),
        ),
        (
            json!({"bk_func_name": 5, "description": 5, "auto_start": 1}),
            need_string("进程名称"),
        ),
        (
            json!({"bind_info": 5, "bk_start_param_regex": 5, "description": 5}),
            need_string("备注"),
        ),
        (
            json!({"user": 5, "bk_start_param_regex": 5, "work_path": 5}),
            need_string("启动参数匹配规则"),
        ),
        (json!({"user": 5, "work_path": 5}), need_string("工作路径")),
        (json!({"proc_num": 0, "user": 5}), need_string("启动用户")),
        (
            json!({"auto_start": 1, "bind_info": {}, "priority": 100000, "proc_num": 0}),
            invalid("启动数量"),
        ),
        (
            json!({"timeout": -1, "priority": "x", "bk_start_check_secs": 700}),
            need_int("启动优先级"),
        ),
        (
            json!({"bk_start_check_secs": 700, "timeout": -1}),
            invalid("操作超时时长"),
        ),
        (
            json!({"start_cmd": 5, "bk_start_check_secs": 700}),
            invalid("启动等待时长"),
        ),
        (
            json!({"pid_file": 5, "reload_cmd": 5, "start_cmd": 5}),
            need_string("启动命令"),
        ),
        (
            json!({"pid_file": 5, "reload_cmd": 5, "stop_cmd": 5, "restart_cmd": 5}),
            need_string("停止命令"),
        ),
        (
            json!({"pid_file": 5, "reload_cmd": 5, "restart_cmd": 5, "face_stop_cmd": 5}),
            need_string("重启命令"),
        ),
        (
            json!({"pid_file": 5, "reload_cmd": 5, "face_stop_cmd": 5}),
            need_string("强制停止命令"),
        ),
        (
            json!({"pid_file": 5, "reload_cmd": 5}),
            need_string("进程重载命令"),
        ),
        (
            json!({"auto_start": 1, "pid_file": 5}),
            need_string("PID文件路径"),
        ),
        (
            json!({"bind_info": 5, "auto_start": 1}),
            need_bool("是否自动拉起"),
        ),
    ];
    for (extra, inner) in cases {
        value_error(&s, &body(json!([item(with(extra))])), &inner);
    }
    // Across items, the first failing item is reported.
    value_error(
        &s,
        &body(json!([
            item(proc_with(0, json!({}))),
            item(proc_with(1, json!({"timeout": -1}))),
            item(proc_with(2, json!({"proc_num": 0})))
        ])),
        &invalid("操作超时时长"),
    );
    assert_untouched(&s);
}

// ---------------------------------------------------------------------------------------------
// uniqueness (spec 2.6) and error precedence (2.2 step 11)

#[test]
fn duplicate_against_the_store_is_1199014() {
    let s = Server::memory();
    let name_en = r#"duplicated instances exist, fields [ service_instance_id: 30, bk_process_name: "billing" ] duplicated"#;
    let name_zh =
        r#"数据唯一性校验失败，  service_instance_id: 30, bk_process_name: "billing"  重复"#;
    // Both indexes collide: the name index is reported (spec 2.6 example).
    both(
        &s,
        CREATE,
        &body(json!([item(proc("billing", "billing"))])),
        1199014,
        name_en,
        name_zh,
    );
    both(
        &s,
        CREATE,
        &body(json!([item(proc("billing", "other"))])),
        1199014,
        name_en,
        name_zh,
    );
    // Uniqueness is decided on trimmed values.
    both(
        &s,
        CREATE,
        &body(json!([item(proc("  billing\t", "other"))])),
        1199014,
        name_en,
        name_zh,
    );
    // Same func name, both without a regex ("" after filling).
    both(
        &s,
        CREATE,
        &body(json!([item(proc("other", "billing"))])),
        1199014,
        r#"duplicated instances exist, fields [ service_instance_id: 30, bk_func_name: "billing", bk_start_param_regex: "" ] duplicated"#,
        r#"数据唯一性校验失败，  service_instance_id: 30, bk_func_name: "billing", bk_start_param_regex: ""  重复"#,
    );
    both(
        &s,
        CREATE,
        &body(json!([item(with(
            json!({"bk_process_name": "other", "bk_func_name": "billing", "bk_start_param_regex": "  "})
        ))])),
        1199014,
        r#"duplicated instances exist, fields [ service_instance_id: 30, bk_func_name: "billing", bk_start_param_regex: "" ] duplicated"#,
        r#"数据唯一性校验失败，  service_instance_id: 30, bk_func_name: "billing", bk_start_param_regex: ""  重复"#,
    );
    assert_untouched(&s);

    // func "x" once, then again under another name.
    let a = create_one(&s, proc("a", "x"));
    both(
        &s,
        CREATE,
        &body(json!([item(proc("b", "x"))])),
        1199014,
        r#"duplicated instances exist, fields [ service_instance_id: 30, bk_func_name: "x", bk_start_param_regex: "" ] duplicated"#,
        r#"数据唯一性校验失败，  service_instance_id: 30, bk_func_name: "x", bk_start_param_regex: ""  重复"#,
    );
    // Another regex is another key; the same regex collides again.
    let b = create_one(
        &s,
        with(
            json!({"bk_process_name": "b", "bk_func_name": "x", "bk_start_param_regex": "-c conf"}),
        ),
    );
    both(
        &s,
        CREATE,
        &body(json!([item(with(
            json!({"bk_process_name": "c", "bk_func_name": "x", "bk_start_param_regex": " -c conf "})
        ))])),
        1199014,
        r#"duplicated instances exist, fields [ service_instance_id: 30, bk_func_name: "x", bk_start_param_regex: "-c conf" ] duplicated"#,
        r#"数据唯一性校验失败，  service_instance_id: 30, bk_func_name: "x", bk_start_param_regex: "-c conf"  重复"#,
    );
    // Names compare exactly (case-sensitive).
    let c = create_one(&s, proc("Billing", "Billing"));
    assert_eq!(listed_ids(&s), vec![41, a, b, c]);
}

#[test]
fn duplicate_within_one_batch_is_1199014() {
    let s = Server::memory();
    both(
        &s,
        CREATE,
        &body(json!([item(proc("a", "x")), item(proc("a", "y"))])),
        1199014,
        r#"duplicated instances exist, fields [ service_instance_id: 30, bk_process_name: "a" ] duplicated"#,
        r#"数据唯一性校验失败，  service_instance_id: 30, bk_process_name: "a"  重复"#,
    );
    both(
        &s,
        CREATE,
        &body(json!([item(proc("a", "x")), item(proc("b", "x"))])),
        1199014,
        r#"duplicated instances exist, fields [ service_instance_id: 30, bk_func_name: "x", bk_start_param_regex: "" ] duplicated"#,
        r#"数据唯一性校验失败，  service_instance_id: 30, bk_func_name: "x", bk_start_param_regex: ""  重复"#,
    );
    // The first repeated item is reported.
    both(
        &s,
        CREATE,
        &body(json!([
            item(proc("a", "x")),
            item(proc("b", "y")),
            item(proc("b", "z")),
            item(proc("a", "w"))
        ])),
        1199014,
        r#"duplicated instances exist, fields [ service_instance_id: 30, bk_process_name: "b" ] duplicated"#,
        r#"数据唯一性校验失败，  service_instance_id: 30, bk_process_name: "b"  重复"#,
    );
    assert_untouched(&s);
}

#[test]
fn duplicate_wins_over_validation_errors_of_other_items() {
    let s = Server::memory();
    let en = r#"duplicated instances exist, fields [ service_instance_id: 30, bk_process_name: "billing" ] duplicated"#;
    let zh = r#"数据唯一性校验失败，  service_instance_id: 30, bk_process_name: "billing"  重复"#;
    for p in [
        json!([
            item(proc_with(0, json!({"proc_num": 0}))),
            item(proc("billing", "b2"))
        ]),
        json!([
            item(proc("billing", "b2")),
            item(proc_with(0, json!({"proc_num": 0})))
        ]),
        json!([
            item(json!({"bk_process_name": "x"})),
            item(proc("billing", "b2"))
        ]),
        json!([
            item(proc("ok", "ok")),
            item(proc("", "f")),
            item(proc("billing", "b2"))
        ]),
    ] {
        both(&s, CREATE, &body(p), 1199014, en, zh);
    }
    // An item that failed validation was not inserted, so a later item with its names is not a
    // duplicate: the validation error is reported.
    value_error(
        &s,
        &body(json!([
            item(with(
                json!({"bk_process_name": "a", "bk_func_name": "a", "proc_num": 0})
            )),
            item(proc("a", "a"))
        ])),
        &invalid("启动数量"),
    );
    assert_untouched(&s);
}

#[test]
fn uniqueness_is_per_service_instance() {
    let (_dir, s) = two_raw_instances();
    let r = s.create(&json!({"bk_biz_id": 7, "service_instance_id": 32,
        "processes": [item(proc("billing", "billing"))]}));
    assert_eq!(r, ok_native(json!([42])));
    both(
        &s,
        CREATE,
        &json!({"bk_biz_id": 7, "service_instance_id": 32, "processes": [item(proc("billing", "x"))]}),
        1199014,
        r#"duplicated instances exist, fields [ service_instance_id: 32, bk_process_name: "billing" ] duplicated"#,
        r#"数据唯一性校验失败，  service_instance_id: 32, bk_process_name: "billing"  重复"#,
    );
    assert_eq!(listed_ids_of(&s, 7, 32), vec![42]);
    assert_eq!(listed_ids_of(&s, 7, 30), vec![41]);
    let l = list(&s, 7, 32);
    assert_eq!(
        l["data"][0]["relation"],
        json!({"bk_biz_id": 7, "bk_process_id": 42, "service_instance_id": 32, "process_template_id": 0,
               "bk_host_id": 12, "bk_supplier_account": "0"})
    );
}

// ---------------------------------------------------------------------------------------------
// atomicity and ids (spec 2.7, 3)

#[test]
fn a_failing_batch_writes_nothing_and_ids_keep_increasing() {
    let s = Server::memory();
    let bad_batches = [
        json!([
            item(proc("a", "a")),
            item(proc("b", "b")),
            item(proc_with(9, json!({"proc_num": 0})))
        ]),
        json!([
            item(proc("a", "a")),
            item(proc("b", "b")),
            item(proc("billing", "c"))
        ]),
        json!([item(proc("a", "a")), item(json!({"bk_process_name": "b"}))]),
        json!([
            item(proc("a", "a")),
            item(proc("b", "b")),
            item(Value::Null)
        ]),
        json!([
            item(proc("a", "a")),
            item(proc_with(1, json!({"bind_info": [{"row_id": 1}]})))
        ]),
    ];
    for p in bad_batches {
        let r = s.create(&body(p.clone()));
        assert_eq!(r["result"], false, "{p}: {r}");
        assert_untouched(&s);
    }
    // The names of the failed batches are free.
    let r = s.create(&body(json!([item(proc("a", "a")), item(proc("b", "b"))])));
    assert_eq!(r["result"], true, "{r}");
    let first: Vec<i64> = r["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(first.len(), 2);
    assert!(first[0] > 41, "ids never go back: {first:?}");
    assert_eq!(first[1], first[0] + 1, "consecutive within a request");
    // Another failure, then another success: still increasing.
    let r = s.create(&body(json!([item(proc("c", "c")), item(proc("a", "z"))])));
    assert_eq!(r["bk_error_code"], 1199014);
    let r = s.create(&body(json!([item(proc("c", "c"))])));
    assert_eq!(r["result"], true, "{r}");
    let next = r["data"][0].as_i64().unwrap();
    assert!(next > first[1], "{next} after {first:?}");
    assert_eq!(listed_ids(&s), vec![41, first[0], first[1], next]);
}

// ---------------------------------------------------------------------------------------------
// happy paths (spec 2.3, 2.4, 2.11)

#[test]
fn single_create_returns_the_next_id_and_the_full_stored_process() {
    let s = Server::memory();
    let lo = now_ms();
    let r = s.create(&body(json!([item(proc("nginx", "nginx"))])));
    let hi = now_ms();
    assert_eq!(r, ok_native(json!([42])));
    let mut p = property(&s, 42);
    take_times(&mut p, lo, hi);
    // Defaults of spec 2.4 step 2: singlechar/longchar "", bool false, int/table/time/user null.
    assert_eq!(
        p,
        json!({
            "auto_start": false,
            "bind_info": null,
            "bk_biz_id": 7,
            "bk_created_by": "admin",
            "bk_func_name": "nginx",
            "bk_process_id": 42,
            "bk_process_name": "nginx",
            "bk_start_check_secs": null,
            "bk_start_param_regex": "",
            "bk_supplier_account": "0",
            "bk_updated_by": null,
            "description": "",
            "face_stop_cmd": "",
            "pid_file": "",
            "priority": null,
            "proc_num": null,
            "reload_cmd": "",
            "restart_cmd": "",
            "service_instance_id": 30,
            "start_cmd": "",
            "stop_cmd": "",
            "timeout": null,
            "user": "",
            "work_path": ""
        })
    );
    // The raw success body.
    let r = s.request(
        "POST",
        CREATE,
        &NATIVE_EN,
        body(json!([item(proc("n2", "n2"))])).to_string().as_bytes(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        r#"{"result":true,"bk_error_code":0,"bk_error_msg":"success","permission":null,"data":[43]}"#
    );
    assert!(
        r.header("Content-Type")
            .unwrap_or("")
            .starts_with("application/json"),
        "{:?}",
        r.headers
    );
    // Chinese requests succeed with the same envelope.
    let r = s.native_zh(CREATE, &body(json!([item(proc("n3", "n3"))])));
    assert_eq!(r, ok_native(json!([44])));
}

#[test]
fn full_process_is_stored_with_every_attribute() {
    let s = Server::memory();
    let info = json!({
        "bk_process_name": "job_java", "bk_func_name": "java", "description": "the job",
        "bk_start_param_regex": "-jar job.jar", "work_path": "/data/job", "user": "root",
        "proc_num": 2, "priority": -5, "timeout": 30, "bk_start_check_secs": 10,
        "start_cmd": "./start.sh", "stop_cmd": "./stop.sh", "restart_cmd": "./restart.sh",
        "face_stop_cmd": "kill -9", "reload_cmd": "./reload.sh", "pid_file": "/run/job.pid",
        "auto_start": true,
        "bind_info": [{"enable": true, "ip": "127.0.0.1", "port": "8080", "protocol": "1"}]
    });
    let lo = now_ms();
    let pid = create_one(&s, info.clone());
    let hi = now_ms();
    let mut p = property(&s, pid);
    take_times(&mut p, lo, hi);
    let mut want = info;
    for (k, v) in [
        ("bk_biz_id", json!(7)),
        ("bk_process_id", json!(pid)),
        ("service_instance_id", json!(30)),
        ("bk_supplier_account", json!("0")),
        ("bk_created_by", json!("admin")),
        ("bk_updated_by", Value::Null),
    ] {
        want[k] = v;
    }
    assert_eq!(p, want);
}

#[test]
fn batch_of_100_gets_consecutive_ids_in_input_order() {
    let s = Server::memory();
    // Names in an order that differs from their sort order.
    let names: Vec<String> = (0..100)
        .map(|i| format!("proc-{:03}", (i * 37) % 100))
        .collect();
    let items: Vec<Value> = names.iter().map(|n| item(proc(n, n))).collect();
    let r = s.create(&body(json!(items)));
    let want: Vec<i64> = (42..142).collect();
    assert_eq!(r, ok_native(json!(want)));
    let l = list(&s, 7, 30);
    let data = l["data"].as_array().unwrap();
    assert_eq!(data.len(), 101);
    assert_eq!(data[0]["relation"]["bk_process_id"], 41);
    for (i, n) in names.iter().enumerate() {
        assert_eq!(data[i + 1]["relation"]["bk_process_id"], 42 + i as i64);
        assert_eq!(data[i + 1]["property"]["bk_process_id"], 42 + i as i64);
        assert_eq!(&data[i + 1]["property"]["bk_process_name"], n);
    }
    // The next request continues the sequence.
    assert_eq!(
        s.create(&body(json!([item(proc("next", "next"))]))),
        ok_native(json!([142]))
    );
}

#[test]
fn strings_are_stored_trimmed() {
    let s = Server::memory();
    let pid = create_one(
        &s,
        json!({"bk_process_name": "  nginx  ", "bk_func_name": "\tng\n", "description": " d e ",
               "user": "\u{3000}root\u{a0}", "start_cmd": "  ./start -x  ", "work_path": "\r\n/data\r\n",
               "bk_start_param_regex": " -c  a "}),
    );
    let p = property(&s, pid);
    assert_eq!(p["bk_process_name"], "nginx");
    assert_eq!(p["bk_func_name"], "ng");
    assert_eq!(p["description"], "d e");
    assert_eq!(p["user"], "root");
    assert_eq!(p["start_cmd"], "./start -x");
    assert_eq!(p["work_path"], "/data");
    assert_eq!(p["bk_start_param_regex"], "-c  a");
    // The trimmed name is taken.
    both(
        &s,
        CREATE,
        &body(json!([item(proc("nginx", "other"))])),
        1199014,
        r#"duplicated instances exist, fields [ service_instance_id: 30, bk_process_name: "nginx" ] duplicated"#,
        r#"数据唯一性校验失败，  service_instance_id: 30, bk_process_name: "nginx"  重复"#,
    );
}

#[test]
fn unknown_keys_are_dropped_and_reserved_keys_kept_verbatim() {
    let s = Server::memory();
    let lo = now_ms();
    let pid = create_one(
        &s,
        with(json!({
            // unknown: dropped
            "bk_func_id": "1", "port": "80", "bind_ip": "1.1.1.1", "protocol": "1",
            "metadata": {"label": {"bk_biz_id": "7"}}, "auto_time_gap": 60, "foo": "bar",
            "BK_PROCESS_NAME": "upper", "process_template_id": 6,
            // reserved (ignore list): kept verbatim, without validation
            "default": 1, "bk_parent_id": 5, "bk_inst_id": "nine", "bk_data_status": "enable",
            "bk_obj_id": "process"
        })),
    );
    let hi = now_ms();
    let mut p = property(&s, pid);
    take_times(&mut p, lo, hi);
    assert_eq!(
        p,
        json!({
            "auto_start": false, "bind_info": null, "bk_biz_id": 7, "bk_created_by": "admin",
            "bk_data_status": "enable", "bk_func_name": "f", "bk_inst_id": "nine", "bk_obj_id": "process",
            "bk_parent_id": 5, "bk_process_id": pid, "bk_process_name": "p", "bk_start_check_secs": null,
            "bk_start_param_regex": "", "bk_supplier_account": "0", "bk_updated_by": null, "default": 1,
            "description": "", "face_stop_cmd": "", "pid_file": "", "priority": null, "proc_num": null,
            "reload_cmd": "", "restart_cmd": "", "service_instance_id": 30, "start_cmd": "", "stop_cmd": "",
            "timeout": null, "user": "", "work_path": ""
        })
    );
}

#[test]
fn client_values_of_server_owned_fields_are_discarded() {
    let s = Server::memory();
    let lo = now_ms();
    let pid = create_one(
        &s,
        with(json!({
            "bk_process_id": 999, "bk_biz_id": 8, "service_instance_id": 31, "bk_supplier_account": "x",
            "create_time": "2000-01-01T00:00:00Z", "last_time": "2000-01-01T00:00:00Z",
            "bk_created_at": "2000-01-01T00:00:00Z", "bk_updated_at": "2000-01-01T00:00:00Z",
            "bk_created_by": "mallory",
            // kept: a valid user string (quirk, spec 2.3)
            "bk_updated_by": "bob"
        })),
    );
    let hi = now_ms();
    assert_eq!(pid, 42);
    let l = list(&s, 7, 30);
    let entry = l["data"][1].clone();
    let mut p = entry["property"].clone();
    take_times(&mut p, lo, hi);
    assert_eq!(p["bk_process_id"], 42);
    assert_eq!(p["bk_biz_id"], 7);
    assert_eq!(p["service_instance_id"], 30);
    assert_eq!(p["bk_supplier_account"], "0");
    assert_eq!(p["bk_created_by"], "admin");
    assert_eq!(p["bk_updated_by"], "bob");
    assert_eq!(
        entry["relation"],
        json!({"bk_biz_id": 7, "bk_process_id": 42, "service_instance_id": 30, "process_template_id": 0,
               "bk_host_id": 11, "bk_supplier_account": "0"})
    );
    // Nothing went to service instance 31 or business 8.
    assert_eq!(listed_ids_of(&s, 7, 31), vec![40]);
    assert_eq!(listed_ids_of(&s, 8, 31), Vec::<i64>::new());
}

#[test]
fn capital_i_spelling_esb_keys_and_process_template_id_are_accepted() {
    let s = Server::memory();
    let r = s.create(&json!({
        "bk_app_code": "esb_test", "bk_app_secret": "secret", "bk_username": "someone", "bk_token": "tok",
        "bk_supplier_account": "0", "unknown_top_level": {"x": 1},
        "bk_biz_id": 7, "service_instance_Id": 30,
        "processes": [{"process_template_id": 6, "process_info": proc("esb", "esb")}]
    }));
    assert_eq!(r, ok_native(json!([42])));
    let l = list(&s, 7, 30);
    assert_eq!(l["data"][1]["property"]["bk_process_name"], "esb");
    // The operator is the header user, not bk_username; process_template_id is ignored.
    assert_eq!(l["data"][1]["property"]["bk_created_by"], "admin");
    assert_eq!(l["data"][1]["relation"]["process_template_id"], 0);
    // In Chinese too, and with the lower-case spelling.
    let r = s.native_zh(
        CREATE,
        &json!({"bk_app_code": "a", "bk_app_secret": "b", "bk_username": "c", "bk_token": "d",
                "bk_biz_id": 7, "service_instance_id": 30, "processes": [item(proc("esb2", "esb2"))]}),
    );
    assert_eq!(r, ok_native(json!([43])));
    // Go's decoder matches field names case-insensitively, at every level.
    let r = s.create(&json!({"BK_BIZ_ID": 7, "Service_Instance_ID": 30,
        "Processes": [{"Process_Info": proc("ci", "ci"), "PROCESS_TEMPLATE_ID": 0}]}));
    assert_eq!(r, ok_native(json!([44])));
    // The capital-I spelling also reaches the error paths.
    both(
        &s,
        CREATE,
        &json!({"bk_biz_id": 7, "service_instance_Id": 31, "processes": [item(proc("a", "a"))]}),
        1108035,
        "create or update process instance under service instance create by template forbidden",
        "通过模板创建的服务实例禁止直接添加/修改进程实例",
    );
}

#[test]
fn reserved_string_values_are_not_trimmed() {
    let s = Server::memory();
    let pid = create_one(
        &s,
        with(json!({"bk_obj_id": " process ", "bk_data_status": "\tenable\n"})),
    );
    let p = property(&s, pid);
    assert_eq!(p["bk_obj_id"], " process ");
    assert_eq!(p["bk_data_status"], "\tenable\n");
}

#[test]
fn operator_and_supplier_come_from_the_headers() {
    let s = Server::memory();
    let h = [
        ("X-Bkcmdb-User", "alice"),
        ("X-Bkcmdb-Supplier-Account", "tenant1"),
        ("X-Bkcmdb-Language", "en"),
    ];
    // The service instance is loaded without a supplier filter (spec 2.2 step 6).
    let r = s.request(
        "POST",
        CREATE,
        &h,
        body(json!([item(proc("alice", "alice"))]))
            .to_string()
            .as_bytes(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), ok_native(json!([42])));
    let lb = json!({"bk_biz_id": 7, "service_instance_id": 30}).to_string();
    let l = s.request("POST", LIST, &h, lb.as_bytes()).json();
    let e = listed_process(&l, 42);
    assert_eq!(e["property"]["bk_created_by"], "alice");
    assert_eq!(e["property"]["bk_updated_by"], Value::Null);
    assert_eq!(e["property"]["bk_supplier_account"], "tenant1");
    assert_eq!(
        e["relation"],
        json!({"bk_biz_id": 7, "bk_process_id": 42, "service_instance_id": 30, "process_template_id": 0,
               "bk_host_id": 11, "bk_supplier_account": "tenant1"})
    );
}

// ---------------------------------------------------------------------------------------------
// list_process_instance (spec 4.4)

#[test]
fn list_service_instance_zero_is_1199006() {
    let s = Server::memory();
    let en = "'service_instance_id' data parameter verification does not pass";
    let zh = "'service_instance_id' 数据参数校验不通过";
    for b in [
        json!({"bk_biz_id": 7, "service_instance_id": 0}),
        json!({"bk_biz_id": 7}),
        json!({"bk_biz_id": 7, "service_instance_id": null}),
        json!({}),
    ] {
        both(&s, LIST, &b, 1199006, en, zh);
    }
}

#[test]
fn list_of_another_business_or_unknown_instance_is_empty() {
    let s = Server::memory();
    for (biz, si) in [(8, 30), (0, 30), (999, 30), (7, 999), (8, 31)] {
        assert_eq!(list(&s, biz, si), ok_native(json!([])), "biz {biz} si {si}");
    }
}

#[test]
fn list_demo_instance_exactly() {
    let s = Server::memory();
    let want = ok_native(json!([{
        "property": {
            "auto_start": false,
            "bind_info": [{"enable": true, "ip": "192.168.10.11", "port": "8080", "protocol": "1"}],
            "bk_biz_id": 7, "bk_created_at": "2026-01-02T03:04:05.678Z", "bk_created_by": "admin",
            "bk_func_name": "billing", "bk_process_id": 41, "bk_process_name": "billing",
            "bk_start_check_secs": null, "bk_start_param_regex": "", "bk_supplier_account": "0",
            "bk_updated_at": "2026-01-02T03:04:05.678Z", "bk_updated_by": null,
            "create_time": "2026-01-02T03:04:05.678Z", "description": "", "face_stop_cmd": "",
            "last_time": "2026-01-02T03:04:05.678Z", "pid_file": "", "priority": null, "proc_num": null,
            "reload_cmd": "", "restart_cmd": "", "service_instance_id": 30, "start_cmd": "", "stop_cmd": "",
            "timeout": null, "user": "", "work_path": ""
        },
        "relation": {"bk_biz_id": 7, "bk_process_id": 41, "service_instance_id": 30, "process_template_id": 0,
                     "bk_host_id": 11, "bk_supplier_account": "0"}
    }]));
    assert_eq!(list(&s, 7, 30), want);
    assert_eq!(
        s.native_zh(LIST, &json!({"bk_biz_id": 7, "service_instance_id": 30})),
        want
    );
    // The template-bound instance lists its template process with the relation's template id.
    let l = list(&s, 7, 31);
    assert_eq!(l["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        l["data"][0]["relation"],
        json!({"bk_biz_id": 7, "bk_process_id": 40, "service_instance_id": 31, "process_template_id": 6,
               "bk_host_id": 11, "bk_supplier_account": "0"})
    );
    assert_eq!(l["data"][0]["property"]["proc_num"], Value::Null);
    assert_eq!(l["data"][0]["property"]["description"], Value::Null);
}

#[test]
fn list_key_order_on_the_wire() {
    let s = Server::memory();
    create_one(
        &s,
        with(
            json!({"default": 1, "bk_obj_id": "process", "bind_info": [{"port": "80", "ip": "::1"}]}),
        ),
    );
    let r = s.request(
        "POST",
        LIST,
        &NATIVE_EN,
        json!({"bk_biz_id": 7, "service_instance_id": 30})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(r.status, 200);
    let b = &r.body;
    // Envelope in struct order.
    assert!(
        b.starts_with(r#"{"result":true,"bk_error_code":0,"bk_error_msg":"success","permission":null,"data":[{"property":{"#),
        "{b}"
    );
    // Relation in struct order (spec 2.8), after the property.
    assert!(
        b.contains(r#"},"relation":{"bk_biz_id":7,"bk_process_id":42,"service_instance_id":30,"process_template_id":0,"bk_host_id":11,"bk_supplier_account":"0"}}"#),
        "{b}"
    );
    // Property keys sorted alphabetically (maps are sorted, spec 1.3 / 4.4).
    let v: Value = serde_json::from_str(b).unwrap();
    let start = b.rfind(r#"{"property":{"#).unwrap() + r#"{"property":"#.len();
    let end = b.rfind(r#","relation":"#).unwrap();
    let prop_text = &b[start..end];
    let keys: Vec<&String> = v["data"][1]["property"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    let mut last = 0;
    for k in keys {
        // Keys are top-level in the property object; find them in textual order.
        let needle = format!("\"{k}\":");
        let pos = prop_text[last..]
            .find(&needle)
            .unwrap_or_else(|| panic!("{k} out of order in {prop_text}"));
        last += pos + needle.len();
    }
    // Sorted keys inside a bind_info row too.
    assert!(
        prop_text.contains(r#""bind_info":[{"ip":"::1","port":"80"}]"#),
        "{prop_text}"
    );
}

#[test]
fn list_order_is_creation_order() {
    let s = Server::memory();
    // Names chosen so that neither name order nor func order matches creation order.
    let a = create_one(&s, proc("zeta", "b"));
    let r = s.create(&body(json!([
        item(proc("alpha", "z")),
        item(proc("mid", "a"))
    ])));
    assert_eq!(r["result"], true, "{r}");
    let c = create_one(&s, proc("aaa", "m"));
    let listed = listed_ids(&s);
    assert_eq!(listed, vec![41, a, a + 1, a + 2, c]);
    let names: Vec<Value> = list(&s, 7, 30)["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["property"]["bk_process_name"].clone())
        .collect();
    assert_eq!(
        names,
        vec![
            json!("billing"),
            json!("zeta"),
            json!("alpha"),
            json!("mid"),
            json!("aaa")
        ]
    );
    // Another business sees nothing, whatever was created.
    assert_eq!(list(&s, 8, 30), ok_native(json!([])));
}
