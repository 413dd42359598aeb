//! Black-box tests of the service-instance APIs against the real binary (spec
//! bk-cmdb-process.md sections 2.9, 4.1, 4.3, 4.4, 4.5, 5): create_service_instance (raw and
//! template modules), list_service_instance, list_service_instance_by_host,
//! list_service_instance_detail, delete_service_instance, add/remove labels, and
//! list_service_category.
//!
//! Every server here is seeded with [`seed`]: business 7 (shop) and 8 (lab); hosts 11 (one inner
//! IPv4), 12 (lists of inner/outer IPv4 and IPv6), 13 (IPv6 only), 14 (business 8); raw module
//! 20, template module 21 (service template 5: process templates 50 "nginx" and 51 "agent"),
//! module 22 of a template without process templates, built-in module 23, module 24 of business
//! 8, and modules 25..29 of templates bk-cmdb cannot instantiate. Seeded service instances: 60
//! (raw, no process, labels env=prod, tier=web), 61 (raw, process 600), 62 (business 8), 63
//! (supplier "1"). New service instance ids start at 101, process ids at 601.

use crate::common::lang::{both, exceed_limit, invalid, unassigned};
use crate::common::*;
use serde_json::{Value, json};

const CREATE: &str = "/api/v3/create/proc/service_instance";
const LIST: &str = "/api/v3/findmany/proc/service_instance";
const DETAIL: &str = "/api/v3/findmany/proc/service_instance/details";
const BY_HOST: &str = "/api/v3/findmany/proc/service_instance/with_host";
const DELETE: &str = "/api/v3/deletemany/proc/service_instance";
const ADD_LABELS: &str = "/api/v3/createmany/proc/service_instance/labels";
const REMOVE_LABELS: &str = "/api/v3/deletemany/proc/service_instance/labels";
const CATEGORIES: &str = "/api/v3/findmany/proc/service_category";
const LIST_PROCS: &str = "/api/v3/findmany/proc/process_instance";

const T: &str = "2026-01-02T03:04:05.678Z";

/// The text of the answer to `body` on native `path`, in English (to compare to the byte).
fn text(s: &Server, path: &str, body: &Value) -> String {
    s.native_text(path, body.to_string().as_bytes())
}

/// A success answer listing service instance 61 alone, to the byte (bk-cmdb's field order),
/// with `more` after its last field.
fn only_instance_61(more: &str) -> String {
    format!(
        concat!(
            r#"{{"result":true,"bk_error_code":0,"bk_error_msg":"success","permission":null,"#,
            r#""data":{{"count":1,"info":[{{"bk_biz_id":7,"id":61,"name":"10.0.0.12_billing_8080","#,
            r#""labels":null,"service_template_id":0,"bk_host_id":12,"bk_module_id":20,"#,
            r#""creator":"admin","modifier":"admin","create_time":"{t}","last_time":"{t}","#,
            r#""bk_supplier_account":"0"{more}}}]}}}}"#
        ),
        t = T,
        more = more
    )
}

// ---------------------------------------------------------------------------------------------
// the seed

fn w(value: Value, locked: bool) -> Value {
    json!({"value": value, "as_default_value": locked})
}

/// A bind row of a template: `(row_id, ip code, port, protocol, enable)`, all locked.
fn row(row_id: i64, ip: &str, port: &str, protocol: &str, enable: Value) -> Value {
    json!({"row_id": row_id, "ip": w(json!(ip), true), "port": w(json!(port), true),
           "protocol": w(json!(protocol), true), "enable": w(enable, true)})
}

/// A process template: every field null and unlocked except `set` (value, locked); the names
/// locked; `rows` its bind rows.
fn ptpl(
    id: i64,
    st: i64,
    name: &str,
    func: &str,
    set: &[(&str, Value, bool)],
    rows: Value,
) -> Value {
    let mut prop = serde_json::Map::new();
    for f in FIELDS {
        prop.insert(f.into(), w(Value::Null, false));
    }
    prop.insert("bk_process_name".into(), w(json!(name), true));
    prop.insert("bk_func_name".into(), w(json!(func), true));
    for (k, v, locked) in set {
        prop.insert((*k).into(), w(v.clone(), *locked));
    }
    prop.insert(
        "bind_info".into(),
        json!({"value": rows, "as_default_value": true}),
    );
    json!({"id": id, "bk_process_name": name, "bk_biz_id": 7, "service_template_id": st,
           "property": prop, "creator": "admin", "modifier": "admin", "create_time": T,
           "last_time": T, "bk_supplier_account": "0"})
}

fn stpl(id: i64, name: &str) -> Value {
    json!({"bk_biz_id": 7, "id": id, "name": name, "service_category_id": 2, "creator": "admin",
           "modifier": "admin", "create_time": T, "last_time": T, "bk_supplier_account": "0",
           "host_apply_enabled": false})
}

fn module(id: i64, biz: i64, st: i64, default: i64, hosts: &[i64]) -> Value {
    json!({"bk_module_id": id, "bk_biz_id": biz, "bk_set_id": 3, "bk_module_name": format!("m{id}"),
           "service_template_id": st, "service_category_id": 2, "default": default, "hosts": hosts})
}

fn host(id: i64, inner: &str, outer: &str, inner6: &str, outer6: &str) -> Value {
    json!({"bk_host_id": id, "bk_host_innerip": inner, "bk_host_outerip": outer,
           "bk_host_innerip_v6": inner6, "bk_host_outerip_v6": outer6, "bk_cloud_id": 0})
}

fn si(
    id: i64,
    biz: i64,
    module: i64,
    host: i64,
    name: &str,
    labels: Value,
    supplier: &str,
) -> Value {
    json!({"bk_biz_id": biz, "id": id, "name": name, "labels": labels, "service_template_id": 0,
           "bk_host_id": host, "bk_module_id": module, "creator": "admin", "modifier": "admin",
           "create_time": T, "last_time": T, "bk_supplier_account": supplier})
}

/// The seeded raw process 600 of service instance 61.
fn process_600() -> Value {
    json!({"bk_process_id": 600, "bk_biz_id": 7, "bk_supplier_account": "0",
           "service_instance_id": 61, "bk_process_name": "billing", "bk_func_name": "billing",
           "description": "", "bk_start_param_regex": "", "work_path": "", "user": "",
           "start_cmd": "", "stop_cmd": "", "restart_cmd": "", "face_stop_cmd": "",
           "reload_cmd": "", "pid_file": "", "proc_num": null, "priority": null, "timeout": null,
           "bk_start_check_secs": null, "auto_start": false,
           "bind_info": [{"enable": true, "ip": "10.0.0.12", "port": "8080", "protocol": "1"}],
           "create_time": T, "last_time": T, "bk_created_at": T, "bk_updated_at": T,
           "bk_created_by": "admin", "bk_updated_by": null})
}

fn seed() -> Value {
    let mut p600 = process_600();
    p600["relation"] = json!({"bk_biz_id": 7, "bk_process_id": 600, "service_instance_id": 61,
                              "process_template_id": 0, "bk_host_id": 12,
                              "bk_supplier_account": "0"});
    // Row 2 of "agent" lets instances choose their port.
    let mut agent_row2 = row(2, "6", "91", "4", json!(true));
    agent_row2["port"]["as_default_value"] = json!(false);
    let nginx = ptpl(
        50,
        5,
        "nginx",
        "nginx",
        &[
            ("description", json!("web server"), false),
            ("proc_num", json!(2), true),
            ("user", json!("www"), false),
            ("auto_start", json!(true), true),
            ("work_path", json!("/srv/nginx"), true),
            ("timeout", json!(30), false),
        ],
        json!([
            row(1, "3", "80", "1", json!(true)),
            row(2, "4", "8080", "2", Value::Null),
            row(3, "1", "81", "1", json!(false)),
            row(4, "2", "82", "2", json!(true)),
        ]),
    );
    let agent = ptpl(
        51,
        5,
        "agent",
        "agentd",
        &[
            ("bk_start_param_regex", json!("--agent"), false),
            ("description", json!("agent"), false),
            ("user", json!("root"), true),
            ("proc_num", json!(1), false),
        ],
        json!([
            row(1, "5", "90", "3", json!(true)),
            agent_row2,
            row(3, "7", "92", "3", json!(true)),
            row(5, "8", "93", "4", json!(true)),
        ]),
    );
    let ok_rows = || json!([row(1, "1", "80", "1", json!(true))]);
    json!({
        "format": "cmdb-lite/1",
        "supplier_account": "0",
        "businesses": [{"bk_biz_id": 7, "bk_biz_name": "shop"}, {"bk_biz_id": 8, "bk_biz_name": "lab"}],
        "hosts": [
            host(11, "10.0.0.11", "", "", ""),
            host(12, "10.0.0.12,10.0.0.13", "1.2.3.4,5.6.7.8", "fd00::12,fd00::13", "2001:db8::12"),
            host(13, "", "", "fd00::31", ""),
            host(14, "10.0.8.14", "", "", ""),
        ],
        "modules": [
            module(20, 7, 0, 0, &[11, 12, 13]),
            module(21, 7, 5, 0, &[11, 12, 13]),
            module(22, 7, 6, 0, &[11]),
            module(23, 7, 0, 1, &[11]),
            module(24, 8, 0, 0, &[14]),
            module(25, 7, 7, 0, &[11]),
            module(26, 7, 8, 0, &[11]),
            module(27, 7, 12, 0, &[11]),
            module(28, 7, 13, 0, &[11]),
            module(29, 7, 14, 0, &[11]),
        ],
        "service_categories": [
            {"id": 1, "name": "Default", "bk_parent_id": 0, "bk_root_id": 1, "bk_biz_id": 0},
            {"id": 2, "name": "Default", "bk_parent_id": 1, "bk_root_id": 1, "bk_biz_id": 0},
            {"id": 3, "name": "Zeta", "bk_parent_id": 0, "bk_root_id": 3, "bk_biz_id": 7},
            {"id": 4, "name": "Alpha", "bk_parent_id": 0, "bk_root_id": 4, "bk_biz_id": 8},
            {"id": 5, "name": "Beta", "bk_parent_id": 3, "bk_root_id": 3, "bk_biz_id": 7},
        ],
        "service_templates": [
            stpl(5, "tpl-web"), stpl(6, "tpl-empty"), stpl(7, "tpl-port-list"),
            stpl(8, "tpl-no-port"), stpl(12, "tpl-bad-ip"), stpl(13, "tpl-slow-check"),
            stpl(14, "tpl-no-protocol"),
        ],
        "process_templates": [
            nginx,
            agent,
            ptpl(70, 7, "lister", "lister", &[], json!([row(1, "1", "80,81", "1", json!(true))])),
            ptpl(71, 8, "noport", "noport", &[], json!([row(1, "1", "", "1", json!(true))])),
            ptpl(72, 12, "badip", "badip", &[], json!([row(1, "9", "80", "1", json!(true))])),
            ptpl(73, 13, "slow", "slow", &[("bk_start_check_secs", json!(700), true)], ok_rows()),
            ptpl(74, 14, "noproto", "noproto", &[], json!([row(1, "1", "80", "", json!(true))])),
        ],
        "service_instances": [
            si(60, 7, 20, 11, "seeded-empty", json!({"env": "prod", "tier": "web"}), "0"),
            si(61, 7, 20, 12, "10.0.0.12_billing_8080", Value::Null, "0"),
            si(62, 8, 24, 14, "lab-one", Value::Null, "0"),
            si(63, 7, 20, 11, "other-supplier", Value::Null, "1"),
        ],
        "processes": [p600],
        "sequences": {"process": 600, "service_instance": 100, "service_template": 14,
                      "process_template": 74, "service_category": 5}
    })
}

/// A server on the seed, in memory.
fn start() -> (TempDir, Server) {
    let td = TempDir::new("si");
    let path = td.join("seed.json");
    std::fs::write(&path, serde_json::to_vec(&seed()).unwrap()).unwrap();
    let srv = Server::start(&["--memory", "--seed", path.to_str().unwrap()]);
    (td, srv)
}

// ---------------------------------------------------------------------------------------------
// request helpers

fn call(s: &Server, method: &str, path: &str, body: &Value) -> Value {
    s.native_method(method, path, body)
}

/// An ESB call (`/api/c/compapi/v2/cc/<name>/`, always POST), in English.
fn esb(s: &Server, name: &str, body: &Value) -> Value {
    s.esb(name, &[("X-Bkcmdb-Language", "en")], body)
}

#[track_caller]
fn ok(v: &Value) -> Value {
    assert_eq!(v["result"], true, "{v}");
    v["data"].clone()
}

#[track_caller]
fn err(s: &Server, method: &str, path: &str, body: &Value, code: i64, en: &str) {
    assert_eq!(
        call(s, method, path, body),
        err_native(code, en),
        "body {body}"
    );
}

fn create(s: &Server, body: &Value) -> Value {
    call(s, "POST", CREATE, body)
}

fn list(s: &Server, body: &Value) -> Value {
    ok(&call(s, "POST", LIST, body))
}

/// Ids of `info` of a list answer.
fn ids(data: &Value) -> Vec<i64> {
    data["info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect()
}

fn instance(s: &Server, id: i64) -> Value {
    let d = list(s, &json!({"bk_biz_id": 7, "page": {"limit": 0}}));
    d["info"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}

fn processes_of(s: &Server, si: i64) -> Vec<Value> {
    ok(&call(
        s,
        "POST",
        LIST_PROCS,
        &json!({"bk_biz_id": 7, "service_instance_id": si}),
    ))
    .as_array()
    .unwrap()
    .clone()
}

/// A raw process_info.
fn rawp(name: &str, port: &str) -> Value {
    json!({"process_info": {"bk_process_name": name, "bk_func_name": name,
           "bind_info": [{"ip": "127.0.0.1", "port": port, "protocol": "1", "enable": true}]}})
}

// ---------------------------------------------------------------------------------------------
// create_service_instance: raw modules

#[test]
fn raw_instances_get_their_processes_names_and_increasing_ids() {
    let (_td, s) = start();
    let r = create(
        &s,
        &json!({"bk_biz_id": 7, "bk_module_id": 20, "instances": [
            {"bk_host_id": 11, "processes": [rawp("web", "80"), rawp("cron", "81")]},
            {"bk_host_id": 12, "service_instance_name": "named", "processes": [rawp("db", "5432")]},
            {"bk_host_id": 13, "processes": [rawp("v6", "90")]},
        ]}),
    );
    assert_eq!(ok(&r), json!([101, 102, 103]));
    let a = instance(&s, 101);
    assert_eq!(a["name"], "10.0.0.11_web_80");
    assert_eq!(a["service_template_id"], 0);
    assert_eq!(a["bk_module_id"], 20);
    assert_eq!(a["bk_host_id"], 11);
    assert_eq!(a["labels"], Value::Null);
    assert_eq!(a["creator"], "admin");
    assert_eq!(a["modifier"], "admin");
    assert_eq!(a["bk_supplier_account"], "0");
    assert_eq!(a["create_time"], a["last_time"]);
    assert_eq!(instance(&s, 102)["name"], "named");
    // A host without an inner IPv4 is named by its inner IPv6 list.
    assert_eq!(instance(&s, 103)["name"], "fd00::31_v6_90");
    let procs = processes_of(&s, 101);
    assert_eq!(procs.len(), 2);
    assert_eq!(procs[0]["property"]["bk_process_id"], 601);
    assert_eq!(procs[1]["property"]["bk_process_id"], 602);
    assert_eq!(procs[0]["property"]["bk_process_name"], "web");
    assert_eq!(
        procs[0]["relation"],
        json!({"bk_biz_id": 7, "bk_process_id": 601, "service_instance_id": 101,
               "process_template_id": 0, "bk_host_id": 11, "bk_supplier_account": "0"})
    );
    assert_eq!(processes_of(&s, 102)[0]["property"]["bk_process_id"], 603);
    // The next request continues both sequences.
    let r = create(
        &s,
        &json!({"bk_biz_id": 7, "bk_module_id": 20, "instances": [
            {"bk_host_id": 11, "processes": [rawp("web", "80")]}]}),
    );
    assert_eq!(ok(&r), json!([104]));
    assert_eq!(processes_of(&s, 104)[0]["property"]["bk_process_id"], 605);
}

#[test]
fn raw_name_uses_the_first_process_as_sent() {
    let (_td, s) = start();
    // Untrimmed name; the first bind row that has a port.
    let r = create(
        &s,
        &json!({"bk_biz_id": 7, "bk_module_id": 20, "instances": [{"bk_host_id": 12, "processes": [
            {"process_info": {"bk_process_name": " web ", "bk_func_name": "web", "bind_info": [
                {"ip": "127.0.0.1", "protocol": "1", "enable": true},
                {"ip": "127.0.0.1", "port": "8000-8010", "protocol": "1", "enable": true}]}},
            rawp("second", "99")]}]}),
    );
    assert_eq!(ok(&r), json!([101]));
    assert_eq!(
        instance(&s, 101)["name"],
        "10.0.0.12,10.0.0.13_ web _8000-8010"
    );
    assert_eq!(
        processes_of(&s, 101)[0]["property"]["bk_process_name"],
        "web"
    );
    // No bind_info, no port.
    let r = create(
        &s,
        &json!({"bk_biz_id": 7, "bk_module_id": 20, "instances": [{"bk_host_id": 11, "processes": [
            {"process_info": {"bk_process_name": "solo", "bk_func_name": "solo"}}]}]}),
    );
    assert_eq!(ok(&r), json!([102]));
    assert_eq!(instance(&s, 102)["name"], "10.0.0.11_solo");
}

#[test]
fn raw_name_needs_a_first_process_go_can_decode() {
    let (_td, s) = start();
    // priority 1.5 passes the attribute check (it counts as 0 there), but bk-cmdb's decoding
    // into its Process struct, done only to name an unnamed instance, refuses it.
    let body = |name: &str| {
        json!({"bk_biz_id": 7, "bk_module_id": 20, "instances": [{"bk_host_id": 11,
               "service_instance_name": name, "processes": [
               {"process_info": {"bk_process_name": "p", "bk_func_name": "p", "priority": 1.5}}]}]})
    };
    both(
        &s,
        "POST",
        CREATE,
        &body(""),
        1199000,
        "Deserializing JSON data failed",
        "反序列化JSON数据失败",
    );
    assert_eq!(instance(&s, 101), Value::Null);
    assert_eq!(ok(&create(&s, &body("given"))), json!([101]));
}

#[test]
fn raw_processes_follow_create_process_instance_rules() {
    let (_td, s) = start();
    let one = |info: Value| {
        json!({"bk_biz_id": 7, "bk_module_id": 20, "instances": [
            {"bk_host_id": 11, "processes": [rawp("ok", "80")]},
            {"bk_host_id": 12, "processes": [{"process_info": info}]}]})
    };
    both(
        &s,
        "POST",
        CREATE,
        &one(json!({"bk_process_name": "a"})),
        1199010,
        "''bk_func_name' unassigned' unassigned",
        "''bk_func_name' 未赋值' 未赋值",
    );
    err(
        &s,
        "POST",
        CREATE,
        &one(json!({"bk_process_name": " ", "bk_func_name": "f"})),
        1199011,
        "'''进程别名' unassigned' the parameter is invalid or does not exist' the parameter is invalid or does not exist",
    );
    err(
        &s,
        "POST",
        CREATE,
        &one(
            json!({"bk_process_name": "a", "bk_func_name": "f", "bind_info": [{"port": "80,81"}]}),
        ),
        1199011,
        "'''bind_info' data parameter verification does not pass' the parameter is invalid or does not exist' the parameter is invalid or does not exist",
    );
    // Duplicates inside one instance.
    let dup = json!({"bk_biz_id": 7, "bk_module_id": 20, "instances": [{"bk_host_id": 11,
        "processes": [rawp("same", "80"), rawp("same", "81")]}]});
    let r = create(&s, &dup);
    assert_eq!(r["bk_error_code"], 1199014, "{r}");
    assert!(
        r["bk_error_msg"]
            .as_str()
            .unwrap()
            .contains("bk_process_name: \"same\""),
        "{r}"
    );
    // A null process_info: bk-cmdb's panic answer.
    err(
        &s,
        "POST",
        CREATE,
        &json!({"bk_biz_id": 7, "bk_module_id": 20, "instances": [{"bk_host_id": 11,
            "processes": [{"process_template_id": 0}]}]}),
        1199999,
        "'proc' Internal Server Error",
    );
    // Nothing of any failed request was written, and no id was consumed.
    assert_eq!(list(&s, &json!({"bk_biz_id": 7}))["count"], 2);
    assert_eq!(
        ok(&create(
            &s,
            &json!({"bk_biz_id": 7, "bk_module_id": 20, "instances": [
                {"bk_host_id": 11, "processes": [rawp("ok", "80")]}]})
        )),
        json!([101])
    );
    assert_eq!(processes_of(&s, 101)[0]["property"]["bk_process_id"], 601);
}

#[test]
fn request_level_checks_in_order() {
    let (_td, s) = start();
    unassigned(
        &s,
        "POST",
        CREATE,
        &json!({"bk_biz_id": 7, "bk_module_id": 20}),
        "service_instance_ids",
    );
    let many: Vec<Value> = (0..101)
        .map(|_| json!({"bk_host_id": 11, "processes": [rawp("a", "80")]}))
        .collect();
    exceed_limit(
        &s,
        "POST",
        CREATE,
        &json!({"bk_biz_id": 7, "bk_module_id": 20, "instances": many}),
        "create service instances",
        100,
    );
    let inst = json!([{"bk_host_id": 11}]);
    both(
        &s,
        "POST",
        CREATE,
        &json!({"bk_biz_id": 7, "bk_module_id": 99, "instances": inst}),
        1101034,
        "query module failed,get none or multiple modules",
        "查询模块失败,get none or multiple modules",
    );
    both(
        &s,
        "POST",
        CREATE,
        &json!({"bk_biz_id": 7, "bk_module_id": 24, "instances": inst}),
        1113004,
        "ModuleID [24] has not belong to  businessID [7]",
        "模块ID[24]不属于业务ID[7]",
    );
    err(
        &s,
        "POST",
        CREATE,
        &json!({"bk_biz_id": 7, "bk_module_id": 23, "instances": inst}),
        1199006,
        "'bk_module_id' data parameter verification does not pass",
    );
    err(
        &s,
        "POST",
        CREATE,
        &json!({"bk_biz_id": 7, "bk_module_id": 22, "instances": inst}),
        1199006,
        "'service_template_id' data parameter verification does not pass",
    );
    unassigned(
        &s,
        "POST",
        CREATE,
        &json!({"bk_biz_id": 7, "bk_module_id": 20, "instances": [
            {"bk_host_id": 11, "processes": [rawp("a", "80")]}, {"bk_host_id": 12}]}),
        "instances.processes",
    );
    // Hosts outside the module, each once, in input order, as Go prints an []int64 with %s.
    both(
        &s,
        "POST",
        CREATE,
        &json!({"bk_biz_id": 7, "bk_module_id": 21, "instances": [
            {"bk_host_id": 14}, {"bk_host_id": 11}, {"bk_host_id": 99}, {"bk_host_id": 14}]}),
        1110056,
        "Operation failed, the following host does not belong to the target module: [%!s(int64=14) %!s(int64=99)]",
        "操作失败，以下主机不属于目标模块：[%!s(int64=14) %!s(int64=99)]",
    );
    err(
        &s,
        "POST",
        CREATE,
        &json!({"bk_biz_id": 7, "bk_module_id": 21, "instances": [
            {"bk_host_id": 11, "service_instance_name": "n".repeat(257)}]}),
        1199006,
        "'name' data parameter verification does not pass",
    );
    // 256 bytes is fine.
    let r = create(
        &s,
        &json!({"bk_biz_id": 7, "bk_module_id": 21, "instances": [
            {"bk_host_id": 11, "service_instance_name": "n".repeat(256)}]}),
    );
    assert_eq!(ok(&r), json!([101]));
    // Wrong JSON types anywhere: 1199000 before anything else.
    for bad in [
        json!({"bk_biz_id": "7", "bk_module_id": 20, "instances": inst}),
        json!({"bk_biz_id": 7, "bk_module_id": 20, "instances": {}}),
        json!({"bk_biz_id": 7, "bk_module_id": 20, "instances": [1]}),
        json!({"bk_biz_id": 7, "bk_module_id": 20, "instances": [{"bk_host_id": 1.5}]}),
        json!({"bk_biz_id": 7, "bk_module_id": 20, "instances": [{"service_instance_name": 5}]}),
        json!({"bk_biz_id": 7, "bk_module_id": 20, "instances": [{"processes": [{"process_info": []}]}]}),
        json!({"bk_biz_id": 7, "bk_module_id": 20, "instances": [{"processes": [{"process_template_id": "1"}]}]}),
    ] {
        err(
            &s,
            "POST",
            CREATE,
            &bad,
            1199000,
            "Deserializing JSON data failed",
        );
    }
}

// ---------------------------------------------------------------------------------------------
// create_service_instance: template modules

/// What a process created from template 50 ("nginx") or 51 ("agent") stores, times aside.
fn expected_template_process(pt: i64, pid: i64, si: i64, rows: Value) -> Value {
    let mut m = json!({
        "bk_process_id": pid, "bk_biz_id": 7, "bk_supplier_account": "0",
        "service_instance_id": si, "bk_created_by": "admin", "bk_updated_by": null,
        "proc_num": null, "stop_cmd": null, "restart_cmd": null, "face_stop_cmd": null,
        "work_path": null, "priority": null, "reload_cmd": null, "pid_file": null,
        "auto_start": null, "bk_start_check_secs": null, "start_cmd": null, "user": null,
        "timeout": null, "description": null, "bk_start_param_regex": null, "bind_info": rows,
    });
    if pt == 50 {
        for (k, v) in [
            ("bk_process_name", json!("nginx")),
            ("bk_func_name", json!("nginx")),
            ("description", json!("web server")),
            ("proc_num", json!(2)),
            ("user", json!("www")),
            ("auto_start", json!(true)),
            ("work_path", json!("/srv/nginx")),
            ("timeout", json!(30)),
        ] {
            m[k] = v;
        }
    } else {
        for (k, v) in [
            ("bk_process_name", json!("agent")),
            ("bk_func_name", json!("agentd")),
            ("bk_start_param_regex", json!("--agent")),
            ("description", json!("agent")),
            ("user", json!("root")),
            ("proc_num", json!(1)),
        ] {
            m[k] = v;
        }
    }
    m
}

/// The stored process map without its four times (checked equal to each other).
fn without_times(mut p: Value) -> Value {
    let t = p["create_time"].clone();
    assert!(t.is_string(), "{p}");
    for k in ["create_time", "last_time", "bk_created_at", "bk_updated_at"] {
        assert_eq!(p[k], t, "{k} in {p}");
        p.as_object_mut().unwrap().remove(k);
    }
    p
}

#[test]
fn template_instances_copy_every_process_template() {
    let (_td, s) = start();
    let r = create(
        &s,
        &json!({"bk_biz_id": 7, "bk_module_id": 21, "instances": [{"bk_host_id": 12}]}),
    );
    assert_eq!(ok(&r), json!([101]));
    let si = instance(&s, 101);
    assert_eq!(si["name"], "10.0.0.12,10.0.0.13_nginx_80");
    assert_eq!(si["service_template_id"], 5);
    let procs = processes_of(&s, 101);
    assert_eq!(procs.len(), 2);
    // Bind codes against host 12: 3 first inner IPv4, 4 first outer IPv4, 1 and 2 fixed;
    // enable false where the template has none.
    assert_eq!(
        without_times(procs[0]["property"].clone()),
        expected_template_process(
            50,
            601,
            101,
            json!([
                {"enable": true, "ip": "10.0.0.12", "port": "80", "protocol": "1", "template_row_id": 1},
                {"enable": false, "ip": "1.2.3.4", "port": "8080", "protocol": "2", "template_row_id": 2},
                {"enable": false, "ip": "127.0.0.1", "port": "81", "protocol": "1", "template_row_id": 3},
                {"enable": true, "ip": "0.0.0.0", "port": "82", "protocol": "2", "template_row_id": 4}
            ])
        )
    );
    // 5 ::1, 6 ::, 7 first inner IPv6, 8 first outer IPv6; template_row_id is the row's row_id.
    assert_eq!(
        without_times(procs[1]["property"].clone()),
        expected_template_process(
            51,
            602,
            101,
            json!([
                {"enable": true, "ip": "::1", "port": "90", "protocol": "3", "template_row_id": 1},
                {"enable": true, "ip": "::", "port": "91", "protocol": "4", "template_row_id": 2},
                {"enable": true, "ip": "fd00::12", "port": "92", "protocol": "3", "template_row_id": 3},
                {"enable": true, "ip": "2001:db8::12", "port": "93", "protocol": "4", "template_row_id": 5}
            ])
        )
    );
    assert_eq!(procs[0]["relation"]["process_template_id"], 50);
    assert_eq!(procs[1]["relation"]["process_template_id"], 51);
    assert_eq!(procs[1]["relation"]["bk_host_id"], 12);
}

#[test]
fn template_instances_on_other_hosts() {
    let (_td, s) = start();
    let r = create(
        &s,
        &json!({"bk_biz_id": 7, "bk_module_id": 21, "instances": [
            {"bk_host_id": 13}, {"bk_host_id": 11, "service_instance_name": "mine"}]}),
    );
    assert_eq!(ok(&r), json!([101, 102]));
    // Host 13 has no IPv4: codes 3 and 4 give "", which a process may hold; the name uses
    // the inner IPv6.
    assert_eq!(instance(&s, 101)["name"], "fd00::31_nginx_80");
    let nginx = &processes_of(&s, 101)[0]["property"];
    assert_eq!(nginx["bind_info"][0]["ip"], "");
    assert_eq!(nginx["bind_info"][1]["ip"], "");
    let agent = &processes_of(&s, 101)[1]["property"];
    assert_eq!(agent["bind_info"][2]["ip"], "fd00::31");
    assert_eq!(agent["bind_info"][3]["ip"], "");
    assert_eq!(instance(&s, 102)["name"], "mine");
    assert_eq!(
        processes_of(&s, 102)[0]["property"]["bind_info"][0]["ip"],
        "10.0.0.11"
    );
    let pids: Vec<i64> = [101, 102]
        .iter()
        .flat_map(|si| processes_of(&s, *si))
        .map(|p| p["property"]["bk_process_id"].as_i64().unwrap())
        .collect();
    assert_eq!(pids, vec![601, 602, 603, 604]);
}

#[test]
fn one_template_instance_per_module_host_and_template() {
    let (_td, s) = start();
    let body = json!({"bk_biz_id": 7, "bk_module_id": 21, "instances": [{"bk_host_id": 11}]});
    assert_eq!(ok(&create(&s, &body)), json!([101]));
    both(
        &s,
        "POST",
        CREATE,
        &body,
        1113016,
        "service instance bound to host [10.0.0.11] already exist",
        "服务实例[10.0.0.11]已经存在",
    );
    // Twice in one request: the second meets the first; nothing of the request stays.
    err(
        &s,
        "POST",
        CREATE,
        &json!({"bk_biz_id": 7, "bk_module_id": 21, "instances": [{"bk_host_id": 12}, {"bk_host_id": 12}]}),
        1113016,
        "service instance bound to host [10.0.0.12,10.0.0.13] already exist",
    );
    assert_eq!(
        ids(&list(&s, &json!({"bk_biz_id": 7, "bk_module_id": 21}))),
        vec![101]
    );
    // Raw modules have no such rule.
    let raw = json!({"bk_biz_id": 7, "bk_module_id": 20, "instances": [
        {"bk_host_id": 11, "processes": [rawp("a", "80")]},
        {"bk_host_id": 11, "processes": [rawp("a", "80")]}]});
    assert_eq!(ok(&create(&s, &raw)), json!([102, 103]));
    // Once deleted, the host may have an instance of the template again, under a new id.
    assert_eq!(
        ok(&call(
            &s,
            "DELETE",
            DELETE,
            &json!({"bk_biz_id": 7, "service_instance_ids": [101]})
        )),
        Value::Null
    );
    assert_eq!(ok(&create(&s, &body)), json!([104]));
}

#[test]
fn templates_bk_cmdb_cannot_instantiate() {
    let (_td, s) = start();
    let body =
        |m: i64| json!({"bk_biz_id": 7, "bk_module_id": m, "instances": [{"bk_host_id": 11}]});
    // A port list is a valid template port but not a valid process port.
    both(
        &s,
        "POST",
        CREATE,
        &body(25),
        1108008,
        "The creation process failed",
        "创建进程失败",
    );
    both(
        &s,
        "POST",
        CREATE,
        &body(26),
        1199006,
        "service instance process bind info port is not set correctly, please check and try again",
        "服务实例的进程绑定信息[端口]未正确设置，请检查后重试",
    );
    both(
        &s,
        "POST",
        CREATE,
        &body(27),
        1199006,
        "process template bind info ip is invalid",
        "process template bind info ip is invalid",
    );
    // bk_start_check_secs 700 is a valid template value (up to 10000), not a process one (600).
    err(
        &s,
        "POST",
        CREATE,
        &body(28),
        1108008,
        "The creation process failed",
    );
    both(
        &s,
        "POST",
        CREATE,
        &body(29),
        1199006,
        "service instance process bind info protocol is not set correctly, please check and try again",
        "服务实例的进程绑定信息[协议]未正确设置，请检查后重试",
    );
    assert_eq!(list(&s, &json!({"bk_biz_id": 7}))["count"], 2);
    assert_eq!(ok(&create(&s, &body(21))), json!([101]));
}

#[test]
fn given_processes_change_only_unlocked_fields_of_template_processes() {
    let (_td, s) = start();
    let r = create(
        &s,
        &json!({"bk_biz_id": 7, "bk_module_id": 21, "instances": [
            {"bk_host_id": 11, "processes": [
                {"process_template_id": 51, "process_info": {
                    "bk_process_name": "renamed", "user": "other", "description": "custom",
                    "proc_num": null, "bk_start_param_regex": "--other",
                    "bind_info": [{"template_row_id": 2, "ip": "9.9.9.9", "port": "9191",
                                   "protocol": "3", "enable": false}]}},
                {"process_template_id": 99, "process_info": null}]},
            {"bk_host_id": 12, "processes": [{"process_template_id": 51, "process_info": {}}]}]}),
    );
    assert_eq!(ok(&r), json!([101, 102]));
    // The name comes from the template, before the given values.
    assert_eq!(instance(&s, 101)["name"], "10.0.0.11_nginx_80");
    let procs = processes_of(&s, 101);
    assert_eq!(procs[0]["property"]["description"], "web server");
    let agent = &procs[1]["property"];
    // Locked: kept. Unlocked: taken, or cleared by an explicit null.
    assert_eq!(agent["bk_process_name"], "agent");
    assert_eq!(agent["user"], "root");
    assert_eq!(agent["description"], "custom");
    assert_eq!(agent["proc_num"], Value::Null);
    assert_eq!(agent["bk_start_param_regex"], "--other");
    assert_eq!(agent["bk_updated_by"], "admin");
    // Rows rebuilt from the template; only row 2's unlocked port comes from the request.
    assert_eq!(
        agent["bind_info"],
        json!([
            {"enable": true, "ip": "::1", "port": "90", "protocol": "3", "template_row_id": 1},
            {"enable": true, "ip": "::", "port": "9191", "protocol": "4", "template_row_id": 2},
            {"enable": true, "ip": "", "port": "92", "protocol": "3", "template_row_id": 3},
            {"enable": true, "ip": "", "port": "93", "protocol": "4", "template_row_id": 5}
        ])
    );
    // An empty item changes nothing that was copied.
    let agent12 = &processes_of(&s, 102)[1]["property"];
    assert_eq!(agent12["bk_start_param_regex"], "--agent");
    assert_eq!(agent12["proc_num"], 1);
    // The given values go through update_process_instance's rules; a failure undoes the request.
    let one = |pt: i64, info: Value| {
        json!({"bk_biz_id": 7, "bk_module_id": 21, "instances": [{"bk_host_id": 13,
               "processes": [{"process_template_id": pt, "process_info": info}]}]})
    };
    err(
        &s,
        "POST",
        CREATE,
        &one(51, json!({"description": 5})),
        1199000,
        "Deserializing JSON data failed",
    );
    let r = create(&s, &one(51, json!({"description": "d".repeat(300)})));
    assert_eq!(r["bk_error_code"], 1199011, "{r}");
    assert!(r["bk_error_msg"].as_str().unwrap().contains("备注"), "{r}");
    err(
        &s,
        "POST",
        CREATE,
        &one(51, Value::Null),
        1199999,
        "'proc' Internal Server Error",
    );
    // "nginx" has a row without `enable`: created as false, but an update rebuilds the row from
    // the template with a null `enable`, which the process rules refuse (bk-cmdb does the same).
    err(
        &s,
        "POST",
        CREATE,
        &one(50, json!({"description": "x"})),
        1199011,
        "''bind_info' data parameter verification does not pass' the parameter is invalid or does not exist",
    );
    assert_eq!(
        ids(&list(&s, &json!({"bk_biz_id": 7, "bk_module_id": 21}))),
        vec![101, 102]
    );
}

#[test]
fn create_through_esb_and_gateway() {
    let (_td, s) = start();
    let body = json!({"bk_app_code": "a", "bk_app_secret": "b", "bk_username": "alice",
                      "bk_biz_id": 7, "bk_module_id": 21, "instances": [{"bk_host_id": 11}]});
    let r = esb(&s, "create_service_instance", &body);
    assert_eq!(r["result"], true, "{r}");
    assert_eq!(r["code"], 0);
    assert_eq!(r["data"], json!([101]));
    assert_eq!(instance(&s, 101)["creator"], "alice");
    let r = s.request(
        "POST",
        "/api/bk-cmdb/prod/api/v3/create/proc/service_instance",
        &[("X-Bkcmdb-Language", "en")],
        json!({"bk_biz_id": 7, "bk_module_id": 21, "instances": [{"bk_host_id": 11}]})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(
        r.json(),
        err_esb(
            1113016,
            "service instance bound to host [10.0.0.11] already exist"
        )
    );
}

// ---------------------------------------------------------------------------------------------
// list_service_instance

#[test]
fn list_filters_and_answer_shape() {
    let (_td, s) = start();
    // Exact bytes: bk-cmdb's field order.
    assert_eq!(
        text(&s, LIST, &json!({"bk_biz_id": 7, "bk_host_ids": [12]})),
        only_instance_61("")
    );
    // The supplier of the request decides which instances exist.
    assert_eq!(ids(&list(&s, &json!({"bk_biz_id": 7}))), vec![60, 61]);
    let r = s.request(
        "POST",
        LIST,
        &[
            ("X-Bkcmdb-User", "admin"),
            ("X-Bkcmdb-Supplier-Account", "1"),
        ],
        json!({"bk_biz_id": 7}).to_string().as_bytes(),
    );
    assert_eq!(ids(&ok(&r.json())), vec![63]);
    assert_eq!(ids(&list(&s, &json!({"bk_biz_id": 8}))), vec![62]);
    assert_eq!(
        ids(&list(&s, &json!({"bk_biz_id": 7, "bk_module_id": 24}))),
        Vec::<i64>::new()
    );
    assert_eq!(
        ids(&list(
            &s,
            &json!({"bk_biz_id": 7, "bk_host_ids": [11, 12, 99]})
        )),
        vec![60, 61]
    );
    assert_eq!(
        list(&s, &json!({"bk_biz_id": 9})),
        json!({"count": 0, "info": []})
    );
    invalid(&s, "POST", LIST, &json!({"bk_module_id": 20}), "bk_biz_id");
    let hosts: Vec<i64> = (1..=1001).collect();
    exceed_limit(
        &s,
        "POST",
        LIST,
        &json!({"bk_biz_id": 7, "bk_host_ids": hosts}),
        "search service instances",
        1000,
    );
    let hosts: Vec<i64> = (1..=1000).collect();
    assert_eq!(
        list(&s, &json!({"bk_biz_id": 7, "bk_host_ids": hosts}))["count"],
        2
    );
    for bad in [
        json!({"bk_biz_id": 7, "page": {"limit": "1"}}),
        json!({"bk_biz_id": 7, "search_key": 1}),
        json!({"bk_biz_id": 7, "selectors": {}}),
        json!({"bk_biz_id": 7, "selectors": [{"values": [1]}]}),
        json!({"bk_biz_id": 7, "bk_host_ids": ["1"]}),
    ] {
        err(
            &s,
            "POST",
            LIST,
            &bad,
            1199000,
            "Deserializing JSON data failed",
        );
    }
    let r = esb(
        &s,
        "list_service_instance",
        &json!({"bk_biz_id": 7, "bk_module_id": 20}),
    );
    assert_eq!(r["result"], true);
    assert_eq!(ids(&r["data"]), vec![60, 61]);
}

/// Creates raw instances on host 11 named `names`, in order; returns their ids.
fn named(s: &Server, names: &[&str]) -> Vec<i64> {
    let instances: Vec<Value> = names
        .iter()
        .map(|n| json!({"bk_host_id": 11, "service_instance_name": n, "processes": [rawp("p", "80")]}))
        .collect();
    let r = create(
        s,
        &json!({"bk_biz_id": 7, "bk_module_id": 20, "instances": instances}),
    );
    ok(&r)
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect()
}

#[test]
fn list_paging_and_sorting() {
    let (_td, s) = start();
    assert_eq!(named(&s, &["b", "a", "c"]), vec![101, 102, 103]);
    let page = |p: Value| list(&s, &json!({"bk_biz_id": 7, "page": p}));
    // No page, or limit 0: everything, in storage order.
    assert_eq!(ids(&page(json!({}))), vec![60, 61, 101, 102, 103]);
    assert_eq!(ids(&page(json!({"limit": 0}))), vec![60, 61, 101, 102, 103]);
    let p = page(json!({"start": 1, "limit": 2}));
    assert_eq!(p["count"], 5);
    assert_eq!(ids(&p), vec![61, 101]);
    assert_eq!(ids(&page(json!({"start": 4, "limit": 1000}))), vec![103]);
    assert_eq!(
        ids(&page(json!({"start": 9, "limit": 10}))),
        Vec::<i64>::new()
    );
    assert_eq!(page(json!({"start": 9}))["count"], 5);
    // enable_count with nothing else set is accepted and changes nothing here.
    assert_eq!(page(json!({"enable_count": true}))["count"], 5);
    assert_eq!(
        ids(&page(json!({"sort": "-id"}))),
        vec![103, 102, 101, 61, 60]
    );
    assert_eq!(
        ids(&page(json!({"sort": "id:-1", "limit": 2}))),
        vec![103, 102]
    );
    assert_eq!(
        ids(&page(json!({"sort": "name"}))),
        vec![61, 102, 101, 103, 60]
    );
    assert_eq!(
        ids(&page(json!({"sort": "bk_host_id:-1,-name"}))),
        vec![61, 60, 103, 101, 102]
    );
    for bad in [
        json!({"limit": 1001}),
        json!({"limit": -1}),
        json!({"start": -1}),
        json!({"limit": 999999999}),
        json!({"enable_count": true, "limit": 10}),
        json!({"enable_count": true, "sort": "id"}),
    ] {
        both(
            &s,
            "POST",
            LIST,
            &json!({"bk_biz_id": 7, "page": bad}),
            1199059,
            "page limit is exceeded. suggestion 200",
            "分页查询数量超过限制的最大值, 建议值200",
        );
    }
    // A sort MongoDB refuses.
    err(
        &s,
        "POST",
        LIST,
        &json!({"bk_biz_id": 7, "page": {"sort": "id,"}}),
        1199017,
        "Failed to query data",
    );
}

#[test]
fn search_key_is_an_unescaped_substring_pattern() {
    let (_td, s) = start();
    named(&s, &["alpha-web", "beta-db", "a.b", "axb", "Web"]);
    let search = |k: &str| ids(&list(&s, &json!({"bk_biz_id": 7, "search_key": k})));
    assert_eq!(search("web"), vec![101]);
    assert_eq!(search("a.b"), vec![103, 104]);
    assert_eq!(search(r"a\.b"), vec![103]);
    assert_eq!(search("^beta"), vec![102]);
    // `.*x|y.*`: the alternation splits the whole pattern.
    assert_eq!(search("db|Web"), vec![102, 105]);
    assert_eq!(search(""), vec![60, 61, 101, 102, 103, 104, 105]);
    assert_eq!(
        list(&s, &json!({"bk_biz_id": 7, "search_key": null}))["count"],
        7
    );
    both(
        &s,
        "POST",
        LIST,
        &json!({"bk_biz_id": 7, "search_key": "("}),
        1199017,
        "Failed to query data",
        "查询数据失败",
    );
}

#[test]
fn label_selectors() {
    let (_td, s) = start();
    let r = call(
        &s,
        "POST",
        ADD_LABELS,
        &json!({"bk_biz_id": 7, "instance_ids": [61], "labels": {"env": "dev"}}),
    );
    assert_eq!(ok(&r), Value::Null);
    let sel = |sels: Value| ids(&list(&s, &json!({"bk_biz_id": 7, "selectors": sels})));
    let one = |k: &str, op: &str, v: Value| sel(json!([{"key": k, "operator": op, "values": v}]));
    assert_eq!(one("env", "=", json!(["prod"])), vec![60]);
    assert_eq!(one("env", "!=", json!(["prod"])), vec![61]);
    assert_eq!(one("tier", "!=", json!(["web"])), vec![61]);
    assert_eq!(one("env", "in", json!(["prod", "dev"])), vec![60, 61]);
    assert_eq!(one("env", "notin", json!(["prod"])), vec![61]);
    assert_eq!(one("tier", "notin", json!(["db"])), vec![60, 61]);
    assert_eq!(one("tier", "exists", json!([])), vec![60]);
    assert_eq!(one("tier", "!", json!(null)), vec![61]);
    assert_eq!(
        sel(
            json!([{"key": "env", "operator": "in", "values": ["prod", "dev"]},
                   {"key": "tier", "operator": "!", "values": []}])
        ),
        vec![61]
    );
    assert_eq!(sel(json!([])), vec![60, 61]);
    let bad = |sels: Value, what: &str| {
        err(
            &s,
            "POST",
            LIST,
            &json!({"bk_biz_id": 7, "selectors": sels}),
            1199006,
            &format!("'{what}' data parameter verification does not pass"),
        )
    };
    bad(
        json!([{"key": "env", "operator": "==", "values": ["a"]}]),
        "operator",
    );
    bad(
        json!([{"key": "env", "operator": "in", "values": []}]),
        "values",
    );
    bad(json!([{"key": "env", "operator": "notin"}]), "values");
    bad(
        json!([{"key": "env", "operator": "exists", "values": ["a"]}]),
        "values",
    );
    bad(
        json!([{"key": "env", "operator": "!", "values": ["a"]}]),
        "values",
    );
    bad(
        json!([{"key": "env", "operator": "=", "values": ["a", "b"]}]),
        "values",
    );
    bad(
        json!([{"key": "env", "operator": "!=", "values": []}]),
        "values",
    );
    bad(
        json!([{"key": "1env", "operator": "exists", "values": []}]),
        "key",
    );
    bad(json!([{"key": "", "operator": "exists"}]), "key");
    // The first bad selector is reported.
    bad(
        json!([{"key": "env", "operator": "exists"}, {"key": "-", "operator": "in", "values": ["x"]}]),
        "key",
    );
}

// ---------------------------------------------------------------------------------------------
// list_service_instance_by_host

#[test]
fn list_by_host() {
    let (_td, s) = start();
    named(&s, &["x1", "x2", "x3"]);
    let by = |b: Value| ok(&call(&s, "POST", BY_HOST, &b));
    assert_eq!(
        ids(&by(json!({"bk_biz_id": 7, "bk_host_id": 11}))),
        vec![60, 101, 102, 103]
    );
    assert_eq!(
        ids(&by(json!({"bk_biz_id": 7, "bk_host_id": 12}))),
        vec![61]
    );
    assert_eq!(
        ids(&by(
            json!({"bk_biz_id": 7, "bk_host_id": 11, "search_key": "x", "page": {"sort": "-id", "limit": 2}})
        )),
        vec![103, 102]
    );
    // No page validation: beyond 1000 is fine, a negative limit is its absolute value.
    let p = by(json!({"bk_biz_id": 7, "bk_host_id": 11, "page": {"start": 1, "limit": 5000}}));
    assert_eq!(p["count"], 4);
    assert_eq!(ids(&p), vec![101, 102, 103]);
    assert_eq!(
        ids(&by(
            json!({"bk_biz_id": 7, "bk_host_id": 11, "page": {"limit": -2}})
        )),
        vec![60, 101]
    );
    assert_eq!(
        ids(&by(json!({"bk_biz_id": 7, "bk_host_id": 11,
            "selectors": [{"key": "env", "operator": "exists"}]}))),
        vec![60]
    );
    both(
        &s,
        "POST",
        BY_HOST,
        &json!({"bk_biz_id": 7, "bk_host_id": 11, "page": {"start": -1}}),
        1199017,
        "Failed to query data",
        "查询数据失败",
    );
    both(
        &s,
        "POST",
        BY_HOST,
        &json!({"bk_biz_id": 7}),
        1199003,
        "invalid input parameter",
        "输入参数无效",
    );
    err(
        &s,
        "POST",
        BY_HOST,
        &json!({"bk_host_id": 11}),
        1199006,
        "'bk_biz_id' data parameter verification does not pass",
    );
    err(
        &s,
        "POST",
        BY_HOST,
        &json!({"bk_biz_id": 7, "bk_host_id": 11, "selectors": [{"key": "k", "operator": "?"}]}),
        1199006,
        "'operator' data parameter verification does not pass",
    );
    let r = esb(
        &s,
        "list_service_instance_by_host",
        &json!({"bk_biz_id": 7, "bk_host_id": 12}),
    );
    assert_eq!(ids(&r["data"]), vec![61]);
}

// ---------------------------------------------------------------------------------------------
// list_service_instance_detail

#[test]
fn detail_answer_is_struct_shaped() {
    let (_td, s) = start();
    assert_eq!(
        text(
            &s,
            DETAIL,
            &json!({"bk_biz_id": 7, "bk_host_id": 12, "page": {"limit": 10}})
        ),
        only_instance_61(&format!(
            concat!(
                r#","process_instances":[{{"process":{{"proc_num":null,"#,
                r#""stop_cmd":"","restart_cmd":"","face_stop_cmd":"","bk_process_id":600,"#,
                r#""bk_func_name":"billing","work_path":"","priority":null,"reload_cmd":"","#,
                r#""bk_process_name":"billing","pid_file":"","auto_start":false,"#,
                r#""bk_start_check_secs":null,"last_time":"{t}","create_time":"{t}","bk_biz_id":7,"#,
                r#""start_cmd":"","user":"","timeout":null,"description":"","#,
                r#""bk_supplier_account":"0","bk_start_param_regex":"","service_instance_id":61,"#,
                r#""bind_info":[{{"enable":true,"ip":"10.0.0.12","port":"8080","protocol":"1","#,
                r#""template_row_id":0}}]}},"relation":{{"bk_biz_id":7,"bk_process_id":600,"#,
                r#""service_instance_id":61,"process_template_id":0,"bk_host_id":12,"#,
                r#""bk_supplier_account":"0"}}}}]"#
            ),
            t = T
        ))
    );
    // An instance without processes has `process_instances: null`.
    let d = ok(&call(
        &s,
        "POST",
        DETAIL,
        &json!({"bk_biz_id": 7, "service_instance_ids": [60], "page": {"limit": 1}}),
    ));
    assert_eq!(d["info"][0]["process_instances"], Value::Null);
    assert_eq!(
        d["info"][0]["labels"],
        json!({"env": "prod", "tier": "web"})
    );
    let r = esb(
        &s,
        "list_service_instance_detail",
        &json!({"bk_biz_id": 8, "page": {"limit": 10}}),
    );
    assert_eq!(ids(&r["data"]), vec![62]);
}

#[test]
fn detail_filters_sort_and_errors() {
    let (_td, s) = start();
    let a = named(&s, &["first"]);
    std::thread::sleep(std::time::Duration::from_millis(5));
    let b = ok(&create(
        &s,
        &json!({"bk_biz_id": 7, "bk_module_id": 21, "instances": [{"bk_host_id": 12}]}),
    ));
    assert_eq!((a, b), (vec![101], json!([102])));
    let detail = |b: Value| ok(&call(&s, "POST", DETAIL, &b));
    // Default sort: newest first; seeded instances (older, equal times) keep id order. Instances
    // of other suppliers are listed too.
    let all = detail(json!({"bk_biz_id": 7, "page": {"limit": 100}}));
    assert_eq!(all["count"], 5);
    assert_eq!(ids(&all), vec![102, 101, 60, 61, 63]);
    let tpl = &all["info"][0]["process_instances"];
    assert_eq!(tpl.as_array().unwrap().len(), 2);
    assert_eq!(tpl[0]["process"]["bk_process_name"], "nginx");
    assert_eq!(tpl[0]["process"]["bind_info"][0]["template_row_id"], 1);
    assert_eq!(tpl[0]["relation"]["process_template_id"], 50);
    assert!(tpl[0]["process"].get("bk_created_by").is_none());
    assert_eq!(
        ids(&detail(
            json!({"bk_biz_id": 7, "page": {"limit": 2, "start": 1, "sort": "id"}})
        )),
        vec![61, 63]
    );
    assert_eq!(
        ids(&detail(
            json!({"bk_biz_id": 7, "bk_module_id": 21, "page": {"limit": 10}})
        )),
        vec![102]
    );
    assert_eq!(
        ids(&detail(
            json!({"bk_biz_id": 7, "bk_host_list": [12, 13], "page": {"limit": 10}})
        )),
        vec![102, 61]
    );
    assert_eq!(
        ids(&detail(
            json!({"bk_biz_id": 7, "bk_host_id": 11, "page": {"limit": 10, "sort": "id"}})
        )),
        vec![60, 63, 101]
    );
    // An empty id list matches nothing; null is no filter.
    assert_eq!(
        detail(json!({"bk_biz_id": 7, "service_instance_ids": [], "page": {"limit": 10}})),
        json!({"count": 0, "info": []})
    );
    assert_eq!(
        detail(json!({"bk_biz_id": 7, "service_instance_ids": null, "page": {"limit": 10}}))["count"],
        5
    );
    assert_eq!(
        ids(&detail(json!({"bk_biz_id": 7, "page": {"limit": 10},
            "selectors": [{"key": "tier", "operator": "=", "values": ["web"]}]}))),
        vec![60]
    );
    for page in [
        json!({}),
        json!({"limit": 0}),
        json!({"limit": 1001}),
        json!({"limit": -1}),
        json!({"start": -1, "limit": 1}),
        json!({"limit": 999999999}),
    ] {
        err(
            &s,
            "POST",
            DETAIL,
            &json!({"bk_biz_id": 7, "page": page}),
            1199059,
            "page limit is exceeded. suggestion 200",
        );
    }
    invalid(
        &s,
        "POST",
        DETAIL,
        &json!({"bk_biz_id": 0, "page": {"limit": 1}}),
        "bk_biz_id",
    );
    err(
        &s,
        "POST",
        DETAIL,
        &json!({"bk_biz_id": -1, "page": {"limit": 1}}),
        1199006,
        "'bk_biz_id' data parameter verification does not pass",
    );
    invalid(
        &s,
        "POST",
        DETAIL,
        &json!({"bk_biz_id": 7, "bk_host_id": 11, "bk_host_list": [12], "page": {"limit": 1}}),
        "bk_host_id and bk_host_list cannot be set at the same time",
    );
    err(
        &s,
        "POST",
        DETAIL,
        &json!({"bk_biz_id": 7, "page": {"limit": 1},
                "selectors": [{"key": "env", "operator": "in"}]}),
        1199006,
        "'values' data parameter verification does not pass",
    );
}

// ---------------------------------------------------------------------------------------------
// delete_service_instance

#[test]
fn delete_cascades_to_relations_and_processes() {
    let td = TempDir::new("si-del");
    let seed_path = td.join("seed.json");
    std::fs::write(&seed_path, serde_json::to_vec(&seed()).unwrap()).unwrap();
    let db = td.join("c.redb");
    let s = Server::start(&[
        "--db",
        db.to_str().unwrap(),
        "--seed",
        seed_path.to_str().unwrap(),
    ]);
    let created = ok(&create(
        &s,
        &json!({"bk_biz_id": 7, "bk_module_id": 21, "instances": [{"bk_host_id": 11}, {"bk_host_id": 12}]}),
    ));
    assert_eq!(created, json!([101, 102]));
    assert_eq!(processes_of(&s, 101).len(), 2);
    let r = call(
        &s,
        "DELETE",
        DELETE,
        &json!({"bk_biz_id": 7, "service_instance_ids": [101, 61]}),
    );
    assert_eq!(r, ok_native(Value::Null));
    assert_eq!(processes_of(&s, 101), Vec::<Value>::new());
    assert_eq!(processes_of(&s, 61), Vec::<Value>::new());
    assert_eq!(ids(&list(&s, &json!({"bk_biz_id": 7}))), vec![60, 102]);
    // The process ids are gone for good: new ones continue after the highest issued.
    let again = ok(&create(
        &s,
        &json!({"bk_biz_id": 7, "bk_module_id": 21, "instances": [{"bk_host_id": 11}]}),
    ));
    assert_eq!(again, json!([103]));
    assert_eq!(processes_of(&s, 103)[0]["property"]["bk_process_id"], 605);
    // Labels, deletes and creates leave every index consistent.
    assert_eq!(
        ok(&call(
            &s,
            "POST",
            ADD_LABELS,
            &json!({"bk_biz_id": 7, "instance_ids": [102], "labels": {"a": "b"}})
        )),
        Value::Null
    );
    let r = esb(
        &s,
        "delete_service_instance",
        &json!({"bk_biz_id": 7, "service_instance_ids": [102, 60]}),
    );
    assert_eq!(r["result"], true, "{r}");
    assert_eq!(r["data"], Value::Null);
    s.stop();
    assert_clean(&db);
}

#[test]
fn delete_refusals_leave_everything() {
    let (_td, s) = start();
    unassigned(
        &s,
        "DELETE",
        DELETE,
        &json!({"bk_biz_id": 7}),
        "service_instance_ids",
    );
    let many: Vec<i64> = (1..=501).collect();
    exceed_limit(
        &s,
        "DELETE",
        DELETE,
        &json!({"bk_biz_id": 7, "service_instance_ids": many}),
        "delete service instance",
        500,
    );
    let not_all = "'service_instance_ids' data parameter verification does not pass";
    // One id of another business, an unknown id, a repeated id, a wrong business.
    for ids in [json!([60, 62]), json!([60, 999]), json!([60, 60])] {
        err(
            &s,
            "DELETE",
            DELETE,
            &json!({"bk_biz_id": 7, "service_instance_ids": ids}),
            1199006,
            not_all,
        );
    }
    err(
        &s,
        "DELETE",
        DELETE,
        &json!({"bk_biz_id": 8, "service_instance_ids": [61]}),
        1199006,
        not_all,
    );
    assert_eq!(list(&s, &json!({"bk_biz_id": 7}))["count"], 2);
    assert_eq!(processes_of(&s, 61).len(), 1);
    // 500 ids are accepted (and then refused for not existing).
    let many: Vec<i64> = (1..=500).collect();
    err(
        &s,
        "DELETE",
        DELETE,
        &json!({"bk_biz_id": 7, "service_instance_ids": many}),
        1199006,
        not_all,
    );
}

// ---------------------------------------------------------------------------------------------
// labels

#[test]
fn add_and_remove_labels() {
    let (_td, s) = start();
    let add = |b: Value| call(&s, "POST", ADD_LABELS, &b);
    let remove = |b: Value| call(&s, "DELETE", REMOVE_LABELS, &b);
    // Merged into existing labels; set on instances without; repeated ids are fine; any
    // business's instance may be named.
    assert_eq!(
        ok(&add(
            json!({"bk_biz_id": 7, "instance_ids": [60, 61, 61, 62],
                       "labels": {"env": "test", "team": "a-1.b_2"}})
        )),
        Value::Null
    );
    assert_eq!(
        instance(&s, 60)["labels"],
        json!({"env": "test", "team": "a-1.b_2", "tier": "web"})
    );
    assert_eq!(
        instance(&s, 61)["labels"],
        json!({"env": "test", "team": "a-1.b_2"})
    );
    let lab = ok(&call(&s, "POST", LIST, &json!({"bk_biz_id": 8})));
    assert_eq!(
        lab["info"][0]["labels"],
        json!({"env": "test", "team": "a-1.b_2"})
    );
    // Removing: unknown keys are ignored; an instance without labels gets an empty map.
    assert_eq!(
        ok(&remove(
            json!({"bk_biz_id": 7, "instance_ids": [60, 62], "keys": ["env", "nope"]})
        )),
        Value::Null
    );
    assert_eq!(
        instance(&s, 60)["labels"],
        json!({"team": "a-1.b_2", "tier": "web"})
    );
    let r = esb(
        &s,
        "remove_label_from_service_instance",
        &json!({"bk_biz_id": 7, "instance_ids": [63], "keys": ["x"]}),
    );
    assert_eq!(r["result"], true, "{r}");
    let r = s.request(
        "POST",
        LIST,
        &[
            ("X-Bkcmdb-User", "admin"),
            ("X-Bkcmdb-Supplier-Account", "1"),
        ],
        json!({"bk_biz_id": 7}).to_string().as_bytes(),
    );
    assert_eq!(r.json()["data"]["info"][0]["labels"], json!({}));
    // Adding empty labels to an instance without labels stores an empty map; null keeps null.
    named(&s, &["n1", "n2"]);
    assert_eq!(
        ok(&add(
            json!({"bk_biz_id": 7, "instance_ids": [101], "labels": {}})
        )),
        Value::Null
    );
    assert_eq!(
        ok(&add(json!({"bk_biz_id": 7, "instance_ids": [102]}))),
        Value::Null
    );
    assert_eq!(instance(&s, 101)["labels"], json!({}));
    assert_eq!(instance(&s, 102)["labels"], Value::Null);
    let r = esb(
        &s,
        "add_label_for_service_instance",
        &json!({"bk_biz_id": 7, "instance_ids": [102], "labels": {"k": "v"}}),
    );
    assert_eq!(r["result"], true, "{r}");
    assert_eq!(instance(&s, 102)["labels"], json!({"k": "v"}));
}

#[test]
fn label_refusals() {
    let (_td, s) = start();
    let bad = |b: Value, code: i64, en: &str| err(&s, "POST", ADD_LABELS, &b, code, en);
    unassigned(
        &s,
        "POST",
        ADD_LABELS,
        &json!({"bk_biz_id": 7, "labels": {"a": "b"}}),
        "instanceIDs",
    );
    let many: Vec<i64> = (1..=101).collect();
    bad(
        json!({"bk_biz_id": 7, "instance_ids": many, "labels": {"a": "b"}}),
        1199035,
        " add labels exceed the limit 100",
    );
    bad(
        json!({"instance_ids": [60], "labels": {"1a": "b"}}),
        1199006,
        "'bk_biz_id' data parameter verification does not pass",
    );
    bad(
        json!({"bk_biz_id": 7, "instance_ids": [999], "labels": {"1a": "b"}}),
        1199006,
        "'label.1a' data parameter verification does not pass",
    );
    for (k, v, field) in [
        ("a_", "b", "label.a_"),
        ("a", "b_", "label.a:b_"),
        ("a", "", "label.a:"),
        ("a", "-b", "label.a:-b"),
    ] {
        bad(
            json!({"bk_biz_id": 7, "instance_ids": [60], "labels": {k: v}}),
            1199006,
            &format!("'{field}' data parameter verification does not pass"),
        );
    }
    let long = "k".repeat(64);
    bad(
        json!({"bk_biz_id": 7, "instance_ids": [60], "labels": {&long: "v"}}),
        1199006,
        &format!("'label.{long}' data parameter verification does not pass"),
    );
    bad(
        json!({"bk_biz_id": 7, "instance_ids": [60], "labels": {"k": &long}}),
        1199006,
        &format!("'label.k:{long}' data parameter verification does not pass"),
    );
    // A null value is "".
    bad(
        json!({"bk_biz_id": 7, "instance_ids": [60], "labels": {"k": null}}),
        1199006,
        "'label.k:' data parameter verification does not pass",
    );
    bad(
        json!({"bk_biz_id": 7, "instance_ids": [60], "labels": {"k": 1}}),
        1199000,
        "Deserializing JSON data failed",
    );
    bad(
        json!({"bk_biz_id": 7, "instance_ids": [60, 999], "labels": {"k": "v"}}),
        1199006,
        "'instance_ids' data parameter verification does not pass",
    );
    assert_eq!(
        instance(&s, 60)["labels"],
        json!({"env": "prod", "tier": "web"})
    );
    // 63 chars is the longest key and value.
    let ok63 = "k".repeat(63);
    assert_eq!(
        ok(&call(
            &s,
            "POST",
            ADD_LABELS,
            &json!({"bk_biz_id": 7, "instance_ids": [60], "labels": {&ok63: &ok63}})
        )),
        Value::Null
    );
    // remove_label_from_service_instance.
    let rbad = |b: Value, code: i64, en: &str| err(&s, "DELETE", REMOVE_LABELS, &b, code, en);
    unassigned(
        &s,
        "DELETE",
        REMOVE_LABELS,
        &json!({"bk_biz_id": 7, "keys": ["a"]}),
        "InstanceIDs",
    );
    let many: Vec<i64> = (1..=501).collect();
    rbad(
        json!({"bk_biz_id": 7, "instance_ids": many, "keys": ["a"]}),
        1199035,
        " remove labels exceed the limit 500",
    );
    rbad(
        json!({"instance_ids": [60], "keys": ["env"]}),
        1199006,
        "'bk_biz_id' data parameter verification does not pass",
    );
    rbad(
        json!({"bk_biz_id": 7, "instance_ids": [60, 998], "keys": ["env"]}),
        1199006,
        "'instance_ids' data parameter verification does not pass",
    );
    rbad(
        json!({"bk_biz_id": 7, "instance_ids": [60], "keys": [1]}),
        1199000,
        "Deserializing JSON data failed",
    );
    assert_eq!(instance(&s, 60)["labels"]["env"], "prod");
}

// ---------------------------------------------------------------------------------------------
// list_service_category

#[test]
fn service_categories_of_a_business_and_built_in() {
    let (_td, s) = start();
    let r = s.request(
        "POST",
        CATEGORIES,
        &NATIVE_EN,
        json!({"bk_biz_id": 7}).to_string().as_bytes(),
    );
    assert_eq!(
        r.body,
        concat!(
            r#"{"result":true,"bk_error_code":0,"bk_error_msg":"success","permission":null,"data":{"count":4,"info":["#,
            r#"{"bk_biz_id":7,"id":5,"name":"Beta","bk_root_id":3,"bk_parent_id":3,"bk_supplier_account":"0","is_built_in":false},"#,
            r#"{"bk_biz_id":0,"id":1,"name":"Default","bk_root_id":1,"bk_parent_id":0,"bk_supplier_account":"0","is_built_in":true},"#,
            r#"{"bk_biz_id":0,"id":2,"name":"Default","bk_root_id":1,"bk_parent_id":1,"bk_supplier_account":"0","is_built_in":true},"#,
            r#"{"bk_biz_id":7,"id":3,"name":"Zeta","bk_root_id":3,"bk_parent_id":0,"bk_supplier_account":"0","is_built_in":false}]}}"#
        )
    );
    let names = |d: &Value| -> Vec<String> {
        d["info"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    let lab = esb(&s, "list_service_category", &json!({"bk_biz_id": 8}));
    assert_eq!(names(&lab["data"]), vec!["Alpha", "Default", "Default"]);
    let none = ok(&call(&s, "POST", CATEGORIES, &json!({})));
    assert_eq!(none["count"], 2);
    err(
        &s,
        "POST",
        CATEGORIES,
        &json!({"bk_biz_id": "7"}),
        1199000,
        "Deserializing JSON data failed",
    );
}
