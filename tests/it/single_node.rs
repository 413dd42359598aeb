//! A single-node install stood up through the API alone (issue "single-node installs"): from a
//! store holding one business and nothing under it, a set, a raw module and two modules bound
//! to service templates, four hosts added to the business and transferred; the template
//! modules' service instances and processes appear by themselves, a raw instance takes a
//! process through create_process_instance, a host moved out of a template module loses its
//! instance there, and `cmdb-lite check` finds the store clean.

use crate::common::lang::call;
use crate::common::*;
use serde_json::{Value, json};

#[track_caller]
fn ok(s: &Server, method: &str, path: &str, body: Value) -> Value {
    let r = call(s, method, path, &body, false);
    assert_eq!(r["result"], true, "{method} {path} {body}: {r}");
    r["data"].clone()
}

fn spec(name: &str, port: &str) -> Value {
    json!({"spec": {
        "bk_process_name": {"value": name, "as_default_value": true},
        "bk_func_name": {"value": name, "as_default_value": true},
        "bind_info": {"value": [{"ip": {"value": "1", "as_default_value": true},
            "port": {"value": port, "as_default_value": true},
            "protocol": {"value": "1", "as_default_value": true},
            "enable": {"value": true, "as_default_value": true}}], "as_default_value": true}}})
}

/// (instance name, host, process names) of a module's instances.
fn instances(s: &Server, module: i64) -> Vec<(String, i64, Vec<String>)> {
    let d = ok(
        s,
        "POST",
        "/api/v3/findmany/proc/service_instance/details",
        json!({"bk_biz_id": 2, "bk_module_id": module, "page": {"start": 0, "limit": 100}}),
    );
    d["info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|si| {
            let procs = si["process_instances"]
                .as_array()
                .map(|p| {
                    p.iter()
                        .map(|x| {
                            x["process"]["bk_process_name"]
                                .as_str()
                                .unwrap()
                                .to_string()
                        })
                        .collect()
                })
                .unwrap_or_default();
            (
                si["name"].as_str().unwrap().to_string(),
                si["bk_host_id"].as_i64().unwrap(),
                procs,
            )
        })
        .collect()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn a_single_node_topology_through_the_api() {
    let td = TempDir::new("single-node");
    let seed = td.join("fresh.json");
    std::fs::write(&seed, FRESH_INSTALL).unwrap();
    let db = td.join("cmdb.redb");
    let srv = Server::start(&[
        "--db",
        db.to_str().unwrap(),
        "--seed",
        seed.to_str().unwrap(),
    ]);
    // A set, two service templates with their process templates, three modules.
    let set = ok(
        &srv,
        "POST",
        "/api/v3/set/2",
        json!({"bk_set_name": " gse ", "bk_parent_id": 2, "bk_set_desc": "agents"}),
    );
    assert_eq!(set["bk_set_id"], 3);
    assert_eq!(set["bk_set_name"], "gse");
    assert_eq!(set["bk_set_desc"], "agents");
    assert_eq!(set["bk_set_env"], "3");
    assert_eq!(set["default"], 0);
    let st = |name: &str| {
        ok(
            &srv,
            "POST",
            "/api/v3/create/proc/service_template",
            json!({"bk_biz_id": 2, "name": name, "service_category_id": 2}),
        )["id"]
            .as_i64()
            .unwrap()
    };
    let (agent_st, web_st) = (st("agent"), st("web"));
    ok(
        &srv,
        "POST",
        "/api/v3/createmany/proc/proc_template",
        json!({"bk_biz_id": 2, "service_template_id": agent_st, "processes": [spec("gse_agent", "48000")]}),
    );
    ok(
        &srv,
        "POST",
        "/api/v3/createmany/proc/proc_template",
        json!({"bk_biz_id": 2, "service_template_id": web_st,
               "processes": [spec("nginx", "80"), spec("php-fpm", "9000")]}),
    );
    let raw = ok(
        &srv,
        "POST",
        "/api/v3/module/2/3",
        json!({"bk_module_name": "tools", "bk_parent_id": 3}),
    );
    assert_eq!(raw["bk_module_id"], 7);
    assert_eq!(raw["service_category_id"], 2);
    assert_eq!(raw["service_template_id"], 0);
    let agent = ok(
        &srv,
        "POST",
        "/api/v3/module/2/3",
        json!({"service_template_id": agent_st, "bk_parent_id": 3}),
    );
    assert_eq!(agent["bk_module_name"], "agent", "the template's name");
    let web = ok(
        &srv,
        "POST",
        "/api/v3/module/2/3",
        json!({"bk_module_name": "ignored", "service_template_id": web_st, "bk_parent_id": 3}),
    );
    assert_eq!(web["bk_module_name"], "web");
    let (raw, agent, web) = (7, 8, 9);
    assert!(
        instances(&srv, agent).is_empty(),
        "no instance without hosts"
    );
    // Four hosts into the business's idle module, then into the modules.
    let hosts: Vec<Value> = (1..=4)
        .map(|i| {
            json!({"bk_host_innerip": format!("10.0.0.{i}"), "bk_cloud_id": 0,
                        "bk_addressing": "static", "bk_host_name": format!("node-{i}")})
        })
        .collect();
    let added = ok(
        &srv,
        "POST",
        "/api/v3/hosts/add/business_idle",
        json!({"bk_biz_id": 2, "bk_host_list": hosts}),
    );
    assert_eq!(added, json!({"bk_host_ids": [1, 2, 3, 4]}));
    let transfer = |hosts: &[i64], modules: &[i64], inc: bool| {
        let b = json!({"bk_biz_id": 2, "bk_host_id": hosts, "bk_module_id": modules, "is_increment": inc});
        assert_eq!(ok(&srv, "POST", "/api/v3/hosts/modules", b), Value::Null);
    };
    transfer(&[1, 2], &[agent], false);
    transfer(&[3, 4], &[web], false);
    transfer(&[1, 4], &[raw], true);
    assert_eq!(
        instances(&srv, agent),
        vec![
            ("10.0.0.1_gse_agent_48000".into(), 1, s(&["gse_agent"])),
            ("10.0.0.2_gse_agent_48000".into(), 2, s(&["gse_agent"])),
        ]
    );
    assert_eq!(
        instances(&srv, web),
        vec![
            ("10.0.0.3_nginx_80".into(), 3, s(&["nginx", "php-fpm"])),
            ("10.0.0.4_nginx_80".into(), 4, s(&["nginx", "php-fpm"])),
        ]
    );
    // The processes carry their template and the host's address.
    let d = ok(
        &srv,
        "POST",
        "/api/v3/findmany/proc/service_instance/details",
        json!({"bk_biz_id": 2, "bk_module_id": agent, "bk_host_id": 1, "page": {"limit": 10}}),
    );
    let p = &d["info"][0]["process_instances"][0];
    assert_eq!(p["relation"]["process_template_id"], 1);
    assert_eq!(p["process"]["bind_info"][0]["ip"], "127.0.0.1");
    assert_eq!(p["process"]["bind_info"][0]["port"], "48000");
    // A raw instance on host 4 in the raw module, then one more process in it.
    let si = ok(
        &srv,
        "POST",
        "/api/v3/create/proc/service_instance",
        json!({"bk_biz_id": 2, "bk_module_id": raw, "instances": [{"bk_host_id": 4, "processes": [
            {"process_info": {"bk_process_name": "exporter", "bk_func_name": "exporter"}}]}]}),
    );
    let si_id = si[0].as_i64().unwrap();
    ok(
        &srv,
        "POST",
        "/api/v3/create/proc/process_instance",
        json!({"bk_biz_id": 2, "service_instance_id": si_id, "processes": [
            {"process_info": {"bk_process_name": "logrotate", "bk_func_name": "logrotate"}}]}),
    );
    assert_eq!(
        instances(&srv, raw),
        vec![("10.0.0.4_exporter".into(), 4, s(&["exporter", "logrotate"]))]
    );
    // Host 3 leaves the web module for the raw one: its web instance and processes go.
    transfer(&[3], &[raw], false);
    assert_eq!(
        instances(&srv, web),
        vec![("10.0.0.4_nginx_80".into(), 4, s(&["nginx", "php-fpm"]))]
    );
    // Host 2 back to the idle module: its agent instance goes.
    assert_eq!(
        ok(
            &srv,
            "POST",
            "/api/v3/hosts/modules/idle",
            json!({"bk_biz_id": 2, "bk_host_id": [2]})
        ),
        Value::Null
    );
    assert_eq!(
        instances(&srv, agent),
        vec![("10.0.0.1_gse_agent_48000".into(), 1, s(&["gse_agent"]))]
    );
    // Host 1 again into the agent module (increment): nothing doubles.
    transfer(&[1], &[agent], true);
    assert_eq!(instances(&srv, agent).len(), 1);
    // Where each host is, as the reads see it.
    let rel = ok(
        &srv,
        "POST",
        "/api/v3/hosts/modules/read",
        json!({"bk_biz_id": 2, "bk_host_id": [1, 2, 3, 4]}),
    );
    let mut pairs = host_module_pairs(&rel);
    pairs.sort_unstable();
    assert_eq!(pairs, vec![(1, 7), (1, 8), (2, 4), (3, 7), (4, 7), (4, 9)]);
    srv.stop();
    assert_clean(&db);
    // The sequences of the new kinds, as an export carries them.
    let (code, out, err) = run_cli(&["export", "--db", db.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let ds: Value = serde_json::from_str(&out).unwrap();
    let seq = &ds["sequences"];
    assert_eq!(
        (&seq["set"], &seq["module"], &seq["host"]),
        (&json!(3), &json!(9), &json!(4)),
        "{seq}"
    );
}
