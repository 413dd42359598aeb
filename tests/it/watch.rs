//! Black-box tests of `resource_watch` (spec bk-cmdb-events-sync.md part 1): the events each
//! watched kind produces and their details, `bk_fields` and `bk_event_types`, the three start
//! modes, bad and expired cursors, the long poll (answering at its end when idle, woken at once
//! by a commit, holding no worker permit), the three route families and both languages.
//! The window of 6 hours is tested in-process, where a request's time can be set.

use crate::common::*;
use cmdb_lite::api::{Ctx, Input, watch};
use cmdb_lite::error::Lang;
use cmdb_lite::store::Store;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const NO_EVENT: &str = "MQ0xDTVlYTZkM2YzOTRjMWY1ZDk4NmU5YmQ4Ng1ub0V2ZW50DTENMQ0=";

fn path(resource: &str) -> String {
    format!("/api/v3/event/watch/resource/{resource}")
}

/// A server whose long poll lasts `secs`.
fn server(secs: u64) -> Server {
    Server::start(&["--memory", "--watch-timeout-secs", &secs.to_string()])
}

#[track_caller]
fn watch_with(s: &Server, headers: &[(&str, &str)], resource: &str, body: &Value) -> Value {
    let r = s.request(
        "POST",
        &path(resource),
        headers,
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

#[track_caller]
fn watch(s: &Server, resource: &str, body: &Value) -> Value {
    watch_with(s, &NATIVE_EN, resource, body)
}

/// The events of a successful answer, with `bk_watched`.
#[track_caller]
fn events(answer: &Value) -> (bool, Vec<Value>) {
    assert_eq!(answer["result"], true, "{answer}");
    let data = &answer["data"];
    (
        data["bk_watched"].as_bool().expect("bk_watched"),
        data["bk_events"].as_array().expect("bk_events").clone(),
    )
}

/// The same error in English and Chinese.
#[track_caller]
fn refused(s: &Server, resource: &str, body: &Value, code: i64, en: &str, zh: &str) {
    assert_eq!(
        watch_with(s, &NATIVE_EN, resource, body),
        err_native(code, en),
        "{resource} {body}"
    );
    assert_eq!(
        watch_with(s, &NATIVE_ZH, resource, body),
        err_native(code, zh),
        "{resource} {body}"
    );
}

fn nothing(resource: &str, cursor: &str) -> Value {
    json!({"result": true, "bk_error_code": 0, "bk_error_msg": "success",
           "data": {"bk_watched": false, "bk_events": [{"bk_cursor": cursor,
           "bk_resource": resource, "bk_event_type": "", "bk_detail": null}]}})
}

#[track_caller]
fn create(s: &Server, si: i64, name: &str) -> i64 {
    let r = s.create(&json!({"bk_biz_id": 7, "service_instance_id": si,
        "processes": [{"process_info": {"bk_process_name": name, "bk_func_name": name}}]}));
    assert_eq!(r["result"], true, "{r}");
    r["data"][0].as_i64().unwrap()
}

/// The cursor of the last event of an answer.
fn last_cursor(events: &[Value]) -> String {
    events.last().unwrap()["bk_cursor"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn process_events_follow_create_update_and_delete() {
    let s = server(1);
    // Nothing happened yet: from now, the answer is bk-cmdb's exact bytes.
    let r = s.request("POST", &path("process"), &NATIVE_EN, b"{}");
    assert_eq!(
        r.body,
        format!(
            "{{\"result\": true, \"bk_error_code\": 0, \"bk_error_msg\": \"success\", \"data\": \
             {{\"bk_watched\":false,\"bk_events\":[{{\"bk_cursor\":\"{NO_EVENT}\",\
             \"bk_resource\":\"process\",\"bk_event_type\":\"\",\"bk_detail\":null}}]}}}}"
        )
    );

    let pid = create(&s, 30, "nginx");
    let r = s.native_method(
        "PUT",
        "/api/v3/update/proc/process_instance",
        &json!({"bk_biz_id": 7, "processes": [{"bk_process_id": pid, "bk_process_name": "nginx",
                                                "bk_func_name": "nginx", "description": "edge"}]}),
    );
    assert_eq!(r["result"], true, "{r}");
    let r = s.native_method(
        "DELETE",
        "/api/v3/delete/proc/process_instance",
        &json!({"bk_biz_id": 7, "process_instance_ids": [pid]}),
    );
    assert_eq!(r["result"], true, "{r}");

    // From the start of the window: create, update, delete, in order, each with its detail.
    let (watched, evs) = events(&watch(&s, "process", &json!({"bk_cursor": NO_EVENT})));
    assert!(watched);
    let kinds: Vec<&str> = evs
        .iter()
        .map(|e| e["bk_event_type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["create", "update", "delete"]);
    let oid = format!("09000000{pid:016x}");
    for (e, desc) in evs.iter().zip(["", "edge", "edge"]) {
        assert_eq!(e["bk_resource"], "process");
        let d = &e["bk_detail"];
        assert_eq!(d["bk_process_id"], pid);
        assert_eq!(d["bk_process_name"], "nginx");
        assert_eq!(d["description"], desc, "{e}");
        assert_eq!(d["bk_biz_id"], 7);
        assert_eq!(d["service_instance_id"], 30);
    }
    assert_eq!(evs[0]["bk_detail"]["_id"], oid.as_str());
    assert_eq!(evs[1]["bk_detail"]["_id"], oid.as_str());
    assert!(
        evs[2]["bk_detail"].get("_id").is_none(),
        "a delete has no _id"
    );
    // A detail's keys are sorted, as bk-cmdb's encoder writes a document.
    let raw = s
        .request(
            "POST",
            &path("process"),
            &NATIVE_EN,
            json!({"bk_cursor": NO_EVENT}).to_string().as_bytes(),
        )
        .body;
    let detail_start = raw.find("\"bk_detail\":{").unwrap() + 13;
    let keys: Vec<&str> = raw[detail_start..]
        .split(",\"")
        .take(4)
        .map(|k| k.trim_start_matches('"').split('"').next().unwrap())
        .collect();
    assert_eq!(keys, ["_id", "auto_start", "bind_info", "bk_biz_id"]);

    // Each cursor resumes after its event.
    let (_, after_create) = events(&watch(
        &s,
        "process",
        &json!({"bk_cursor": evs[0]["bk_cursor"]}),
    ));
    assert_eq!(after_create, evs[1..].to_vec());

    // The relation has its own stream: created and deleted with the process.
    let (_, rel) = events(&watch(
        &s,
        "process_instance_relation",
        &json!({"bk_cursor": NO_EVENT}),
    ));
    let kinds: Vec<&str> = rel
        .iter()
        .map(|e| e["bk_event_type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["create", "delete"]);
    assert_eq!(
        rel[1]["bk_detail"],
        json!({"bk_biz_id": 7, "bk_host_id": 11, "bk_process_id": pid, "bk_supplier_account": "0",
               "process_template_id": 0, "service_instance_id": 30})
    );
    assert_eq!(rel[0]["bk_detail"]["_id"], format!("0a000000{pid:016x}"));

    // bk_event_types and bk_fields: only deletes, exactly the fields asked for, in order.
    let r = s.request(
        "POST",
        &path("process"),
        &NATIVE_EN,
        json!({"bk_cursor": NO_EVENT, "bk_event_types": ["delete"],
               "bk_fields": ["description", "bk_process_id", "nope", "bk_process_id"]})
        .to_string()
        .as_bytes(),
    );
    assert!(
        r.body.contains(&format!(
            "\"bk_event_type\":\"delete\",\"bk_detail\":{{\"description\":\"edge\",\"bk_process_id\":{pid},\"nope\":null,\"bk_process_id\":{pid}}}}}]"
        )),
        "{}",
        r.body
    );
    assert_eq!(r.json()["data"]["bk_events"].as_array().unwrap().len(), 1);

    // From now: the latest event itself, if its type is watched; else nothing.
    let (watched, latest) = events(&watch(&s, "process", &json!({})));
    assert!(watched);
    assert_eq!(latest, evs[2..].to_vec());
    assert_eq!(
        watch(&s, "process", &json!({"bk_event_types": ["create"]})),
        nothing("process", NO_EVENT)
    );
}

/// Deleting a process template leaves its processes as raw ones: their relations are updated
/// (`process_template_id` 0), the processes themselves not.
#[test]
fn relations_follow_a_deleted_process_template() {
    let s = server(1);
    let r = s.native_method(
        "DELETE",
        "/api/v3/deletemany/proc/proc_template",
        &json!({"bk_biz_id": 7, "process_templates": [6]}),
    );
    assert_eq!(r["result"], true, "{r}");
    let (watched, evs) = events(&watch(
        &s,
        "process_instance_relation",
        &json!({"bk_cursor": NO_EVENT}),
    ));
    assert!(watched);
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert_eq!(evs[0]["bk_event_type"], "update");
    assert_eq!(evs[0]["bk_detail"]["bk_process_id"], 40);
    assert_eq!(evs[0]["bk_detail"]["process_template_id"], 0);
    assert_eq!(
        watch(&s, "process", &json!({"bk_cursor": NO_EVENT})),
        nothing("process", NO_EVENT)
    );
}

#[test]
fn a_failed_request_writes_no_event() {
    let s = server(1);
    create(&s, 30, "a");
    // The same name again: refused, and no event.
    let r = s.create(&json!({"bk_biz_id": 7, "service_instance_id": 30,
        "processes": [{"process_info": {"bk_process_name": "a", "bk_func_name": "b"}}]}));
    assert_eq!(r["result"], false, "{r}");
    let (_, evs) = events(&watch(&s, "process", &json!({"bk_cursor": NO_EVENT})));
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0]["bk_detail"]["bk_process_name"], "a");
}

#[test]
fn modules_follow_a_renamed_template() {
    let s = server(1);
    refused(
        &s,
        "module",
        &json!({}),
        1199998,
        "module event must have fields",
        "module event must have fields",
    );
    let r = s.native_method(
        "PUT",
        "/api/v3/update/proc/service_template",
        &json!({"bk_biz_id": 7, "id": 9, "name": "tpl-web2"}),
    );
    assert_eq!(r["result"], true, "{r}");
    let (watched, evs) = events(&watch(
        &s,
        "module",
        &json!({"bk_cursor": NO_EVENT, "bk_fields": ["bk_module_id", "bk_module_name"]}),
    ));
    assert!(watched);
    assert_eq!(
        evs.iter().map(|e| &e["bk_detail"]).collect::<Vec<_>>(),
        [&json!({"bk_module_id": 22, "bk_module_name": "tpl-web2"})]
    );
    assert_eq!(evs[0]["bk_event_type"], "update");
    // Hosts and businesses have no writes yet: a watch of them sees nothing.
    for r in ["host", "biz", "host_relation"] {
        let (watched, _) = events(&watch(
            &s,
            r,
            &json!({"bk_cursor": NO_EVENT, "bk_fields": ["bk_host_id"]}),
        ));
        assert!(!watched, "{r}");
    }
}

#[test]
fn start_from_and_its_range() {
    let s = server(1);
    let now = now_ms() / 1000;
    assert_eq!(
        watch(&s, "process", &json!({"bk_start_from": now - 10})),
        nothing("process", NO_EVENT)
    );
    create(&s, 30, "a");
    create(&s, 30, "b");
    let (watched, evs) = events(&watch(&s, "process", &json!({"bk_start_from": now - 10})));
    assert!(watched);
    let names: Vec<&str> = evs
        .iter()
        .map(|e| e["bk_detail"]["bk_process_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
    // No delete since then: one element with the latest cursor, not watched.
    let r = watch(
        &s,
        "process",
        &json!({"bk_start_from": now - 10, "bk_event_types": ["delete"]}),
    );
    assert_eq!(r, nothing("process", &last_cursor(&evs)));
    for bad in [now + 3600, now - 6 * 3600 - 60] {
        refused(
            &s,
            "process",
            &json!({"bk_start_from": bad}),
            1199006,
            "'bk_start_from' data parameter verification does not pass",
            "'bk_start_from' 数据参数校验不通过",
        );
    }
}

#[test]
fn refusals_in_bk_cmdbs_order_and_words() {
    let s = server(1);
    let plain = |resource: &str, body: Value, text: &str| {
        refused(&s, resource, &body, 1199998, text, text);
    };
    plain(
        "process",
        json!({"bk_event_types": ["create", ""]}),
        "unsupported event type",
    );
    plain(
        "host",
        json!({"bk_fields": []}),
        "host event must have fields",
    );
    plain("biz", json!({}), "biz event must have fields");
    plain("set", json!({}), "set event must have fields");
    plain(
        "process",
        json!({"bk_start_from": 1, "bk_cursor": NO_EVENT}),
        "bk_start_from and bk_cursor can not use at the same time",
    );
    plain(
        "process",
        json!({"bk_filter": {"bk_sub_resource": "x"}}),
        "process event cannot have sub resource",
    );
    for r in ["foo", "service_instance", "no_event"] {
        plain(r, json!({}), &format!("unsupported cursor type {r}"));
    }
    refused(
        &s,
        "process",
        &json!({"bk_start_from": "1"}),
        1199000,
        "Deserializing JSON data failed",
        "反序列化JSON数据失败",
    );
    // Malformed, invented and other resources' cursors are all "not exist".
    create(&s, 30, "a");
    let (_, evs) = events(&watch(&s, "process", &json!({"bk_cursor": NO_EVENT})));
    let good = last_cursor(&evs);
    let (_, rel) = events(&watch(
        &s,
        "process_instance_relation",
        &json!({"bk_cursor": NO_EVENT}),
    ));
    let invented = "MQ05DTA5MDAwMDAwMDAwMDAwMDAwMDAwMDAyYQ1pbnNlcnQNMTAwDTANDQ==";
    for bad in [
        "abc",
        "!!!!",
        &good[..good.len() - 4],
        invented,
        &last_cursor(&rel),
    ] {
        refused(
            &s,
            "process",
            &json!({"bk_cursor": bad}),
            1103007,
            "Event chain node not exist",
            "事件节点不存在",
        );
    }
    // Resources cmdb-lite stores nothing for answer as a bk-cmdb without such events.
    assert_eq!(
        watch(&s, "kube_pod", &json!({})),
        nothing("kube_pod", NO_EVENT)
    );
    assert_eq!(
        watch(&s, "project", &json!({"bk_cursor": NO_EVENT})),
        nothing("project", NO_EVENT)
    );
}

#[test]
fn route_families() {
    let s = server(1);
    create(&s, 30, "a");
    let body = json!({"bk_cursor": NO_EVENT, "bk_resource": "process"});
    let gw = s
        .request(
            "POST",
            "/api/bk-cmdb/prod/api/v3/event/watch/resource/process",
            &[],
            body.to_string().as_bytes(),
        )
        .json();
    assert_eq!(gw["code"], 0);
    assert_eq!(gw["permission"], Value::Null);
    let esb = s
        .request(
            "POST",
            "/api/c/compapi/v2/cc/resource_watch/",
            &[],
            body.to_string().as_bytes(),
        )
        .json();
    assert_eq!(esb["code"], 0);
    assert!(esb["request_id"].is_string());
    assert_eq!(gw["data"], esb["data"]);
    let (_, evs) = events(&watch(&s, "process", &json!({"bk_cursor": NO_EVENT})));
    assert_eq!(esb["data"]["bk_events"], json!(evs));
    // The path wins over the body.
    let native = watch(
        &s,
        "process_instance_relation",
        &json!({"bk_cursor": NO_EVENT, "bk_resource": "process"}),
    );
    assert_eq!(
        native["data"]["bk_events"][0]["bk_resource"],
        "process_instance_relation"
    );
}

#[test]
fn an_idle_watch_answers_at_the_end_of_its_wait() {
    let s = server(1);
    // Empty window: the client's own cursor back.
    assert_eq!(
        watch(&s, "process", &json!({"bk_cursor": NO_EVENT})),
        nothing("process", NO_EVENT)
    );
    create(&s, 30, "a");
    let (_, evs) = events(&watch(&s, "process", &json!({"bk_cursor": NO_EVENT})));
    let cursor = last_cursor(&evs);
    // Nothing after it: the latest event's cursor, not watched; a watch of deletes only
    // gets the same.
    assert_eq!(
        watch(&s, "process", &json!({"bk_cursor": cursor})),
        nothing("process", &cursor)
    );
    assert_eq!(
        watch(
            &s,
            "process",
            &json!({"bk_cursor": NO_EVENT, "bk_event_types": ["delete"]})
        ),
        nothing("process", &cursor)
    );
}

/// A watch waiting for the next event is woken by the commit that writes it. Its wait is a
/// minute; the assertion is only that it answered with the event, not at the end of its wait.
#[test]
fn a_waiting_watch_is_woken_by_a_commit() {
    let s = server(60);
    create(&s, 30, "a");
    let (_, evs) = events(&watch(&s, "process", &json!({"bk_cursor": NO_EVENT})));
    let cursor = last_cursor(&evs);
    let addr = s.addr.clone();
    let started = Instant::now();
    let waiter = std::thread::spawn(move || {
        let mut c = Conn::open(&addr);
        let body = json!({"bk_cursor": cursor}).to_string();
        c.send("POST", &path("process"), &NATIVE_EN, body.as_bytes())
            .json()
    });
    std::thread::sleep(Duration::from_millis(300));
    create(&s, 30, "b");
    let (watched, evs) = events(&waiter.join().unwrap());
    assert!(watched);
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0]["bk_detail"]["bk_process_name"], "b");
    assert!(
        started.elapsed() < Duration::from_secs(55),
        "the watch answered at the end of its wait, not when woken"
    );
}

/// Waiting watches hold no worker permit: with one permit and five watches waiting, creates
/// and lists are still served, and each create wakes the process watchers.
#[test]
fn waiting_watches_take_no_worker_permit() {
    let s = Server::start(&["--memory", "--threads", "1", "--watch-timeout-secs", "60"]);
    let waiters: Vec<_> = (0..5)
        .map(|_| {
            let addr = s.addr.clone();
            std::thread::spawn(move || {
                let mut c = Conn::open(&addr);
                let body = json!({"bk_cursor": NO_EVENT, "bk_fields": ["bk_host_id"]});
                c.send(
                    "POST",
                    &path("host"),
                    &NATIVE_EN,
                    body.to_string().as_bytes(),
                )
                .json()
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    // The connection's read timeout is 30 s: a create blocked behind the watches would fail.
    for i in 0..5 {
        create(&s, 30, &format!("p{i}"));
    }
    assert_eq!(s.list(7, 30)["data"].as_array().map(Vec::len), Some(6));
    // Shutting down answers the waiting watches at once.
    send_signal(&s.child, SIGTERM);
    for w in waiters {
        assert_eq!(w.join().unwrap(), nothing("host", NO_EVENT));
    }
}

fn ctx(now_ms: i64) -> Ctx {
    Ctx {
        user: "admin".into(),
        supplier: "0".into(),
        lang: Lang::En,
        rid: "r".into(),
        now_ms,
    }
}

fn serve_at(store: &Store, now_ms: i64, body: Value) -> Result<Value, String> {
    let input = Input {
        body,
        path_id: Some("process".into()),
        params: vec![("bk_resource", "process".into())],
        query: String::new(),
    };
    watch::serve(&ctx(now_ms), store, &input, Duration::from_secs(0), &|f| {
        f()
    })
    .map(|d| serde_json::from_str(&d.0).unwrap())
    .map_err(|e| format!("{} {}", e.code, e.render(Lang::En)))
}

/// The window: seen from 7 hours later, an event is gone, except the resource's last, which
/// is the token a client resumes from however old; from-now and start-from see nothing.
#[test]
fn the_six_hour_window() {
    let store = Store::memory().unwrap();
    cmdb_lite::dataset::import(
        &store,
        &cmdb_lite::dataset::parse(cmdb_lite::dataset::DEMO).unwrap(),
    )
    .unwrap();
    let now = now_ms();
    for name in ["a", "b"] {
        let input = Input {
            body: json!({"bk_biz_id": 7, "service_instance_id": 30,
                "processes": [{"process_info": {"bk_process_name": name, "bk_func_name": name}}]}),
            path_id: None,
            params: Vec::new(),
            query: String::new(),
        };
        cmdb_lite::api::call(
            cmdb_lite::api::Op::CreateProcessInstance,
            &ctx(now),
            &store,
            input,
        )
        .unwrap();
    }
    let all = serve_at(&store, now, json!({"bk_cursor": NO_EVENT})).unwrap();
    let evs = all["bk_events"].as_array().unwrap();
    assert_eq!(evs.len(), 2);
    let first = evs[0]["bk_cursor"].clone();
    let last = evs[1]["bk_cursor"].clone();
    let later = now + 7 * 3600 * 1000;
    assert_eq!(
        serve_at(&store, later, json!({"bk_cursor": first})),
        Err("1103007 Event chain node not exist".into())
    );
    let token = serve_at(&store, later, json!({"bk_cursor": last})).unwrap();
    assert_eq!(token["bk_watched"], false);
    // Empty window at the end of the wait: the client's cursor back.
    assert_eq!(token["bk_events"][0]["bk_cursor"], last);
    for body in [json!({}), json!({"bk_cursor": NO_EVENT})] {
        let r = serve_at(&store, later, body).unwrap();
        assert_eq!(r["bk_watched"], false);
        assert_eq!(r["bk_events"][0]["bk_cursor"], NO_EVENT);
    }
}
