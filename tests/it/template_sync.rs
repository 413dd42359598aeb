//! Black-box tests of the service-template lifecycle (events-sync spec 2):
//! `list_service_template_difference`, `list_service_template_sync_status`,
//! `sync_service_template_to_service_instance`, what process-template edits do to existing
//! instances by themselves, on all three route families, every refusal in both languages, and
//! `cmdb-lite check` after the syncs.
//!
//! The seed is the demo plus host 13, with module 22 renamed after its template 9 "tpl-web"
//! (process templates 10 nginx and 11 php-fpm) and holding hosts 11, 12 and 13.

use crate::common::lang::{both, call, exceed_limit, invalid_param, json_error};
use crate::common::*;
use serde_json::{Value, json};
use std::time::Duration;

const DIFF: &str = "/api/v3/findmany/proc/service_template/sync_status/biz/";
const STATUS: &str = "/api/v3/findmany/proc/service_template_sync_status/bk_biz_id/";
const SYNC: &str = "/api/v3/update/proc/service_instance/sync";
const SI_CREATE: &str = "/api/v3/create/proc/service_instance";
const PT_CREATE: &str = "/api/v3/createmany/proc/proc_template";
const PT_UPDATE: &str = "/api/v3/update/proc/proc_template";
const PT_DELETE: &str = "/api/v3/deletemany/proc/proc_template";
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn dataset() -> Value {
    let mut ds = demo_dataset();
    ds["hosts"].as_array_mut().unwrap().push(json!({
        "bk_host_id": 13, "bk_host_innerip": "192.168.10.13", "bk_host_outerip": "",
        "bk_host_innerip_v6": "", "bk_host_outerip_v6": "", "bk_cloud_id": 0}));
    for m in ds["modules"].as_array_mut().unwrap() {
        if m["bk_module_id"] == 22 {
            m["bk_module_name"] = json!("tpl-web");
            m["hosts"] = json!([11, 12, 13]);
        }
    }
    // The dataset's host sequence covers the host added here.
    ds["sequences"]["host"] = json!(13);
    ds
}

/// A server on a database file seeded with [`dataset`].
fn start(dir: &TempDir) -> Server {
    let seed = dir.join("seed.json");
    std::fs::write(&seed, dataset().to_string()).unwrap();
    let db = dir.join("cmdb.redb");
    Server::start(&[
        "--db",
        db.to_str().unwrap(),
        "--seed",
        seed.to_str().unwrap(),
    ])
}

/// Stops the server gracefully and runs `cmdb-lite check` on its file.
fn stop_and_check(mut s: Server, dir: &TempDir) {
    send_signal(&s.child, SIGTERM);
    wait_exit(&mut s.child, Duration::from_secs(30)).expect("exit after SIGTERM");
    let db = dir.join("cmdb.redb");
    assert_clean(&db);
}

#[track_caller]
fn ok(s: &Server, method: &str, path: &str, body: &Value) -> Value {
    let r = call(s, method, path, body, false);
    assert_eq!(r["result"], true, "{method} {path} {body}: {r}");
    r["data"].clone()
}

fn module_diff(s: &Server, modules: Value) -> Value {
    ok(
        s,
        "POST",
        &format!("{DIFF}7"),
        &json!({"bk_module_ids": modules}),
    )
}

fn template_diff(s: &Server, templates: Value) -> Value {
    ok(
        s,
        "POST",
        &format!("{DIFF}7"),
        &json!({"service_template_ids": templates, "is_partial": true}),
    )
}

fn needs(s: &Server) -> bool {
    let d = module_diff(s, json!([22]));
    assert_eq!(d["service_templates"], Value::Null);
    let m = &d["modules"][0];
    assert_eq!(m["bk_module_id"], 22, "{d}");
    let need = m["need_sync"].as_bool().unwrap();
    // The template view and the status agree with the module view.
    assert_eq!(
        template_diff(s, json!([9])),
        json!({"service_templates": [{"service_template_id": 9, "need_sync": need}],
               "modules": null})
    );
    let status = if need { "need_sync" } else { "finished" };
    assert_eq!(
        ok(
            s,
            "POST",
            &format!("{STATUS}7"),
            &json!({"service_template_id": 9, "bk_module_ids": [22]})
        ),
        json!([{"bk_inst_id": 22, "status": status, "create_time": ZERO_TIME,
                "last_time": ZERO_TIME}])
    );
    need
}

fn sync(s: &Server, modules: Value) {
    let r = call(
        s,
        "PUT",
        SYNC,
        &json!({"bk_biz_id": 7, "service_template_id": 9, "bk_module_ids": modules}),
        false,
    );
    assert_eq!(r, ok_native(Value::Null));
}

/// The processes of an instance: `(bk_process_id, process_template_id, property)`.
fn processes(s: &Server, si: i64) -> Vec<(i64, i64, Value)> {
    let r = s.list(7, si);
    assert_eq!(r["result"], true, "{r}");
    r["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["property"]["bk_process_id"].as_i64().unwrap(),
                p["relation"]["process_template_id"].as_i64().unwrap(),
                p["property"].clone(),
            )
        })
        .collect()
}

/// Service instances of module 22: `(id, host, name)`.
fn instances(s: &Server) -> Vec<(i64, i64, String)> {
    let d = ok(
        s,
        "POST",
        "/api/v3/findmany/proc/service_instance",
        &json!({"bk_biz_id": 7, "bk_module_id": 22, "page": {"limit": 100}}),
    );
    d["info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|si| {
            (
                si["id"].as_i64().unwrap(),
                si["bk_host_id"].as_i64().unwrap(),
                si["name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn change_add_delete_then_sync_makes_instances_match() {
    let dir = TempDir::new("tplsync");
    let s = start(&dir);
    // Three hosts without instances: a sync would create them.
    assert!(needs(&s));
    let ids = ok(
        &s,
        "POST",
        SI_CREATE,
        &json!({"bk_biz_id": 7, "bk_module_id": 22, "instances": [
            {"bk_host_id": 11},
            {"bk_host_id": 12, "processes": [{"process_template_id": 10,
                                              "process_info": {"user": "nginx"}}]},
            {"bk_host_id": 13}]}),
    );
    let si: Vec<i64> = ids
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert!(!needs(&s));
    let before: Vec<Vec<(i64, i64, Value)>> = si.iter().map(|&i| processes(&s, i)).collect();
    for procs in &before {
        assert_eq!(
            procs.iter().map(|p| p.1).collect::<Vec<_>>(),
            [10, 11],
            "{procs:?}"
        );
    }
    let names_before = instances(&s);

    // A locked field of nginx changes: the instances differ; nothing of theirs changed.
    let r = ok(
        &s,
        "PUT",
        PT_UPDATE,
        &json!({"bk_biz_id": 7, "process_template_id": 10, "process_property": {
            "start_cmd": {"value": "./sbin/nginx -g 'daemon off;'", "as_default_value": true}}}),
    );
    assert_eq!(r["id"], 10);
    assert!(needs(&s));
    assert_eq!(processes(&s, si[0]), before[0]);

    // A new process template: still a difference; the instances are unchanged.
    let new_pt = ok(
        &s,
        "POST",
        PT_CREATE,
        &json!({"bk_biz_id": 7, "service_template_id": 9, "processes": [{"spec": {
            "bk_process_name": {"value": "redis", "as_default_value": true},
            "bk_func_name": {"value": "redis-server", "as_default_value": true},
            "user": {"value": "redis", "as_default_value": false},
            "bind_info": {"as_default_value": true, "value": [{"row_id": 1,
                "ip": {"value": "1", "as_default_value": true},
                "port": {"value": "6379", "as_default_value": true},
                "protocol": {"value": "1", "as_default_value": true},
                "enable": {"value": true, "as_default_value": true}}]}}}]}),
    )[0]
    .as_i64()
    .unwrap();
    assert!(needs(&s));
    assert_eq!(processes(&s, si[1]), before[1]);

    // php-fpm's template goes: its processes stay, as raw processes (relation template 0).
    assert_eq!(
        ok(
            &s,
            "DELETE",
            PT_DELETE,
            &json!({"bk_biz_id": 7, "process_templates": [11]})
        ),
        Value::Null
    );
    for &i in &si {
        let procs = processes(&s, i);
        assert_eq!(
            procs.iter().map(|p| p.1).collect::<Vec<_>>(),
            [10, 0],
            "{procs:?}"
        );
    }
    assert!(needs(&s));

    // The sync: one request, answered null; the instances now match the template.
    sync(&s, json!([22]));
    assert!(!needs(&s));
    for (k, &i) in si.iter().enumerate() {
        let procs = processes(&s, i);
        assert_eq!(
            procs.iter().map(|p| p.1).collect::<Vec<_>>(),
            [10, new_pt],
            "{procs:?}"
        );
        let (nginx_id, _, nginx) = &procs[0];
        // The same process, its locked field from the template, its unlocked one kept.
        assert_eq!(*nginx_id, before[k][0].0);
        assert_eq!(nginx["start_cmd"], "./sbin/nginx -g 'daemon off;'");
        assert_eq!(nginx["user"], if k == 1 { "nginx" } else { "www" });
        assert_eq!(nginx["bk_updated_by"], "admin");
        let redis = &procs[1].2;
        assert_eq!(redis["bk_process_name"], "redis");
        assert_eq!(redis["bk_func_name"], "redis-server");
        assert_eq!(redis["user"], "redis");
        assert_eq!(
            redis["bind_info"],
            json!([{"enable": true, "ip": "127.0.0.1", "port": "6379", "protocol": "1",
                    "template_row_id": 1}])
        );
        assert_eq!(redis["service_instance_id"], i);
    }
    // Instance names are never recomputed by a sync.
    assert_eq!(instances(&s), names_before);
    // A second sync changes nothing.
    let after: Vec<_> = si.iter().map(|&i| processes(&s, i)).collect();
    sync(&s, json!([22]));
    assert_eq!(
        si.iter().map(|&i| processes(&s, i)).collect::<Vec<_>>(),
        after
    );
    stop_and_check(s, &dir);
}

#[test]
fn sync_creates_missing_instances_and_drops_processes_of_a_template_emptied() {
    let dir = TempDir::new("tplsync2");
    let s = start(&dir);
    assert!(instances(&s).is_empty());
    sync(&s, json!([22, 999, 20]));
    let made = instances(&s);
    assert_eq!(
        made.iter()
            .map(|(_, h, n)| (*h, n.as_str()))
            .collect::<Vec<_>>(),
        [
            (11, "192.168.10.11_nginx_80"),
            (12, "192.168.10.12_nginx_80"),
            (13, "192.168.10.13_nginx_80")
        ]
    );
    assert!(!needs(&s));
    // Both process templates go: the next sync deletes the processes and the instances.
    assert_eq!(
        ok(
            &s,
            "DELETE",
            PT_DELETE,
            &json!({"bk_biz_id": 7, "process_templates": [10, 11]})
        ),
        Value::Null
    );
    assert!(needs(&s));
    sync(&s, json!([22]));
    assert!(instances(&s).is_empty());
    for (id, _, _) in made {
        assert_eq!(s.list(7, id)["data"], json!([]));
    }
    // No instance and no process template: nothing to sync.
    assert!(!needs(&s));
    stop_and_check(s, &dir);
}

#[test]
fn a_module_whose_sync_fails_is_left_untouched_and_the_answer_is_still_null() {
    let dir = TempDir::new("tplsync3");
    let s = start(&dir);
    // Module 21 is bound to template 5: creating instances of template 9 there is 1113018 in
    // bk-cmdb's task; the request still answers null, and module 22 is synced.
    sync(&s, json!([21, 22]));
    assert_eq!(instances(&s).len(), 3);
    let in_21 = ok(
        &s,
        "POST",
        "/api/v3/findmany/proc/service_instance",
        &json!({"bk_biz_id": 7, "bk_module_id": 21, "page": {"limit": 100}}),
    );
    assert_eq!(in_21["count"], 1, "{in_21}");
    stop_and_check(s, &dir);
}

#[test]
fn difference_lists_only_what_exists() {
    let s = Server::memory();
    // Module 21 (template 5, name "web-tpl" ≠ "tpl-gateway") needs a sync; 20 is raw,
    // 999 unknown: both absent. Module order: id ascending.
    assert_eq!(
        module_diff(&s, json!([999, 22, 20, 21, 21])),
        json!({"service_templates": null, "modules": [
            {"bk_module_id": 21, "need_sync": true}, {"bk_module_id": 22, "need_sync": true}]})
    );
    // Templates: id descending; 77 has no module.
    assert_eq!(
        template_diff(&s, json!([5, 9, 77])),
        json!({"service_templates": [{"service_template_id": 9, "need_sync": true},
                                     {"service_template_id": 5, "need_sync": true}],
               "modules": null})
    );
    // Another business: nothing, as an empty list.
    assert_eq!(
        ok(
            &s,
            "POST",
            &format!("{DIFF}8"),
            &json!({"bk_module_ids": [21]})
        ),
        json!({"service_templates": null, "modules": []})
    );
    // The status: unknown modules dropped, modules of another template reported as they
    // stand (no history), in id order.
    assert_eq!(
        ok(
            &s,
            "POST",
            &format!("{STATUS}7"),
            &json!({"service_template_id": 9, "bk_module_ids": [999, 22, 21]})
        ),
        json!([{"bk_inst_id": 21, "status": "finished", "create_time": ZERO_TIME,
                "last_time": ZERO_TIME},
               {"bk_inst_id": 22, "status": "need_sync", "create_time": ZERO_TIME,
                "last_time": ZERO_TIME}])
    );
}

#[test]
fn refusals_in_both_languages() {
    let s = Server::memory();
    let bad_biz = |path: &str, body: Value| invalid_param(&s, "POST", path, &body, "bk_biz_id");
    for biz in ["0", "-1", "x"] {
        bad_biz(&format!("{DIFF}{biz}"), json!({"bk_module_ids": [22]}));
    }
    bad_biz(
        &format!("{STATUS}x"),
        json!({"service_template_id": 9, "bk_module_ids": [22]}),
    );
    let unassigned = |method: &str, path: &str, body: Value, field: &str| {
        both(
            &s,
            method,
            path,
            &body,
            1199010,
            &format!("'{field}' unassigned"),
            &format!("'{field}' 未赋值"),
        )
    };
    let diff = format!("{DIFF}7");
    unassigned("POST", &diff, json!({}), "bk_module_ids");
    unassigned(
        "POST",
        &diff,
        json!({"is_partial": true, "bk_module_ids": [22]}),
        "service_template_ids",
    );
    let many: Vec<i64> = (1..=101).collect();
    exceed_limit(
        &s,
        "POST",
        &diff,
        &json!({"bk_module_ids": many}),
        "bk_module_ids",
        100,
    );
    exceed_limit(
        &s,
        "POST",
        &diff,
        &json!({"is_partial": true, "service_template_ids": many}),
        "service_template_ids",
        100,
    );
    json_error(&s, "POST", &diff, &json!({"bk_module_ids": "22"}));
    // Status: 0 and negative businesses pass; empty modules first, then the template.
    let status = format!("{STATUS}0");
    unassigned(
        "POST",
        &status,
        json!({"service_template_id": 9}),
        "bk_module_ids",
    );
    unassigned(
        "POST",
        &status,
        json!({"bk_module_ids": [22]}),
        "service_template_id",
    );
    assert_eq!(
        ok(
            &s,
            "POST",
            &format!("{STATUS}-3"),
            &json!({"service_template_id": 9, "bk_module_ids": [22]})
        ),
        json!([{"bk_inst_id": 22, "status": "finished", "create_time": ZERO_TIME,
                "last_time": ZERO_TIME}])
    );
    // Sync: business, modules, template, in that order.
    unassigned("PUT", SYNC, json!({}), "bk_biz_id");
    unassigned(
        "PUT",
        SYNC,
        json!({"bk_biz_id": 7, "service_template_id": 9}),
        "bk_module_ids",
    );
    unassigned(
        "PUT",
        SYNC,
        json!({"bk_biz_id": 7, "bk_module_ids": [22]}),
        "service_template_id",
    );
    let too_many: Vec<i64> = (1..=1001).collect();
    exceed_limit(
        &s,
        "PUT",
        SYNC,
        &json!({"bk_biz_id": 7, "service_template_id": 9, "bk_module_ids": too_many}),
        "bk_module_ids",
        1000,
    );
    json_error(&s, "PUT", SYNC, &json!({"bk_biz_id": "7"}));
}

#[test]
fn gateway_and_esb_routes() {
    let s = Server::memory();
    let esb = |name: &str, body: Value| {
        s.esb(
            name,
            &[("X-Bkcmdb-Language", "en"), ("X-Request-Id", "rid-1")],
            &body,
        )
    };
    let esb_ok = |data: Value| with_request_id(ok_esb(data), "rid-1");
    assert_eq!(
        esb(
            "list_service_template_difference",
            json!({"bk_biz_id": 7, "bk_module_ids": [22]})
        ),
        esb_ok(json!({"service_templates": null,
                      "modules": [{"bk_module_id": 22, "need_sync": true}]}))
    );
    assert_eq!(
        esb(
            "list_service_template_difference",
            json!({"bk_module_ids": [22]})
        ),
        json!({"result": false, "code": 1199011,
               "message": "'bk_biz_id' the parameter is invalid or does not exist",
               "permission": null, "request_id": "rid-1", "data": null})
    );
    assert_eq!(
        esb(
            "sync_service_template_to_service_instance",
            json!({"bk_biz_id": 7, "service_template_id": 9, "bk_module_ids": [22]})
        ),
        esb_ok(Value::Null)
    );
    assert_eq!(
        esb(
            "list_service_template_sync_status",
            json!({"bk_biz_id": 7, "service_template_id": 9, "bk_module_ids": [22]})
        ),
        esb_ok(json!([{"bk_inst_id": 22, "status": "need_sync",
                       "create_time": ZERO_TIME, "last_time": ZERO_TIME}]))
    );
    // Gateway: same paths under /api/bk-cmdb/{stage}; module 22 is still named "web-app".
    let gw = |method: &str, path: &str, body: Value| s.gateway(method, path, &body);
    assert_eq!(
        gw(
            "POST",
            &format!("{DIFF}7"),
            json!({"service_template_ids": [9], "is_partial": true})
        ),
        json!({"result": true, "code": 0, "message": "success", "permission": null,
               "data": {"service_templates": [{"service_template_id": 9, "need_sync": true}],
                        "modules": null}})
    );
    assert_eq!(
        gw(
            "PUT",
            SYNC,
            json!({"bk_biz_id": 7, "service_template_id": 9, "bk_module_ids": [22]})
        ),
        ok_esb(json!(null))
    );
    assert_eq!(instances(&s).len(), 2);
}

#[test]
fn a_deleted_instance_is_a_difference_and_a_sync_makes_it_again() {
    let dir = TempDir::new("tplsync4");
    let s = start(&dir);
    sync(&s, json!([22]));
    let made = instances(&s);
    assert_eq!(made.len(), 3);
    assert_eq!(
        ok(
            &s,
            "DELETE",
            "/api/v3/deletemany/proc/service_instance",
            &json!({"bk_biz_id": 7, "service_instance_ids": [made[1].0]})
        ),
        Value::Null
    );
    // Two instances for three hosts.
    assert!(needs(&s));
    // A sync naming the module under another business, or another template, changes nothing.
    let r = call(
        &s,
        "PUT",
        SYNC,
        &json!({"bk_biz_id": 8, "service_template_id": 9, "bk_module_ids": [22]}),
        false,
    );
    assert_eq!(r, ok_native(Value::Null));
    assert_eq!(instances(&s).len(), 2);
    sync(&s, json!([22]));
    let again = instances(&s);
    assert_eq!(again.len(), 3);
    let host12 = again.iter().find(|(_, h, _)| *h == 12).unwrap();
    assert!(host12.0 > made[2].0, "a new id: {again:?}");
    assert_eq!(host12.2, "192.168.10.12_nginx_80");
    assert!(!needs(&s));
    stop_and_check(s, &dir);
}

#[test]
fn under_auth_a_sync_needs_edit_biz_service_instance() {
    let dir = TempDir::new("tplsync-auth");
    let file = dir.join("auth.json");
    std::fs::write(
        &file,
        json!({"apps": [{"bk_app_code": "ci", "bk_app_secret": "s3cret"}],
               "users": [
                   {"bk_username": "ops", "grants": [
                       {"bk_biz_id": 7, "actions": ["edit_biz_service_instance"]}]},
                   {"bk_username": "viewer", "grants": []}]})
        .to_string(),
    )
    .unwrap();
    let s = Server::start(&["--memory", "--auth", file.to_str().unwrap()]);
    let esb = |user: &str, name: &str, body: Value| -> Value {
        let auth = json!({"bk_app_code": "ci", "bk_app_secret": "s3cret", "bk_username": user})
            .to_string();
        let r = s.request(
            "POST",
            &format!("/api/c/compapi/v2/cc/{name}/"),
            &[
                ("X-Bkapi-Authorization", auth.as_str()),
                ("X-Bkcmdb-Language", "en"),
            ],
            body.to_string().as_bytes(),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    };
    let sync = json!({"bk_biz_id": 7, "service_template_id": 9, "bk_module_ids": [22]});
    // Reads need nothing.
    let r = esb(
        "viewer",
        "list_service_template_difference",
        json!({"bk_biz_id": 7, "bk_module_ids": [22]}),
    );
    assert_eq!(r["result"], true, "{r}");
    let r = esb(
        "viewer",
        "sync_service_template_to_service_instance",
        sync.clone(),
    );
    assert_eq!(r["code"], 9900403, "{r}");
    assert_eq!(
        r["permission"]["actions"][0]["id"], "edit_biz_service_instance",
        "{r}"
    );
    let r = esb("ops", "sync_service_template_to_service_instance", sync);
    assert_eq!(r["result"], true, "{r}");
    assert_eq!(r["data"], Value::Null);
    // Category writes need the category actions, which ops does not have.
    let r = esb(
        "ops",
        "create_service_category",
        json!({"bk_biz_id": 7, "name": "x"}),
    );
    assert_eq!(r["code"], 9900403, "{r}");
    assert_eq!(
        r["permission"]["actions"][0]["id"], "create_biz_service_category",
        "{r}"
    );
}
