//! `cmdb-lite push` into a second cmdb-lite standing in for bk-cmdb (it speaks the same ESB
//! and gateway APIs), whose topology has the same names under other ids: a source of two
//! businesses with a custom service category, a service template with two process templates,
//! template and raw service instances and 1,000 processes is pushed; the target then lists
//! the same data under its own ids; a second push writes nothing; changes, additions and
//! deletions follow; a push killed at 20 points and resumed ends as an uninterrupted one; a
//! host missing on the target is reported and nothing depending on it is written; a target
//! that refuses a call or drops the connection stops the push, and the next one resumes.

use crate::common::lang::call;
use crate::common::*;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[track_caller]
fn ok(s: &Server, path: &str, body: Value) -> Value {
    // The updates and deletes are PUT and DELETE natively.
    let method = if path.contains("/update/") {
        "PUT"
    } else if path.contains("/delete") {
        "DELETE"
    } else {
        "POST"
    };
    let r = call(s, method, path, &body, false);
    assert_eq!(r["result"], true, "{path} {body}: {r}");
    r["data"].clone()
}

const CATEGORIES: &str = r#"[
  {"id": 1, "name": "Default", "bk_parent_id": 0, "bk_root_id": 1, "bk_biz_id": 0},
  {"id": 2, "name": "Default", "bk_parent_id": 1, "bk_root_id": 1, "bk_biz_id": 0}]"#;

/// A server on `db` seeded with businesses (id, name).
fn seeded(td: &TempDir, db: &std::path::Path, businesses: &[(i64, &str)]) -> Server {
    seeded_with(td, db, businesses, &[])
}

/// [`seeded`], with more `serve` arguments.
fn seeded_with(
    td: &TempDir,
    db: &std::path::Path,
    businesses: &[(i64, &str)],
    extra: &[&str],
) -> Server {
    let bizs: Vec<Value> = businesses
        .iter()
        .map(|(id, name)| json!({"bk_biz_id": id, "bk_biz_name": name}))
        .collect();
    let seed = json!({"format": "cmdb-lite/1", "businesses": bizs,
        "service_categories": serde_json::from_str::<Value>(CATEGORIES).unwrap()});
    let file = td.join(&format!("seed-{}.json", businesses[0].0));
    std::fs::write(&file, seed.to_string()).unwrap();
    let mut args = vec![
        "--db",
        db.to_str().unwrap(),
        "--seed",
        file.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    Server::start(&args)
}

fn spec(name: &str, port: &str) -> Value {
    json!({"spec": {
        "bk_process_name": {"value": name, "as_default_value": true},
        "bk_func_name": {"value": name, "as_default_value": true},
        "work_path": {"value": "/opt/php", "as_default_value": true},
        "user": {"value": "www", "as_default_value": false},
        "bind_info": {"value": [{"ip": {"value": "1", "as_default_value": true},
            "port": {"value": port, "as_default_value": true},
            "protocol": {"value": "1", "as_default_value": true},
            "enable": {"value": true, "as_default_value": true}}], "as_default_value": true}}})
}

fn raw_process(n: usize) -> Value {
    json!({"process_info": {"bk_process_name": format!("p{n:04}"), "bk_func_name": "worker",
        "bk_start_param_regex": format!("--id={n}"), "user": "ops",
        "work_path": format!("/srv/{}", n % 7), "proc_num": 1,
        "bind_info": [{"ip": "127.0.0.1", "port": format!("{}", 10000 + n % 50000), "protocol": "1",
            "enable": true}]}})
}

/// Module ids of a built topology: (php: template module in biz A, tools: raw in biz A,
/// api: raw in biz B).
struct Built {
    php: i64,
    tools: i64,
    api: i64,
}

/// Builds the topology both sides share by name: set "web" (modules "php", bound to template
/// "tpl-php", and "tools") in business A, set "core" (module "api") in business B, hosts
/// 10.0.0.1-5 in both modules of A and 10.0.1.1-5 in "api". The source also gets a custom
/// category tree, the template's two process templates and the raw instances and processes;
/// the target a decoy set, module and host first, so that its ids differ. `skip_host` leaves
/// one host out of the target.
fn build(s: &Server, a: i64, b: i64, source: bool, skip_host: Option<&str>) -> Built {
    if !source {
        let decoy = ok(
            s,
            &format!("/api/v3/set/{a}"),
            json!({"bk_set_name": "decoy", "bk_parent_id": a}),
        );
        let set = decoy["bk_set_id"].as_i64().unwrap();
        ok(
            s,
            &format!("/api/v3/module/{a}/{set}"),
            json!({"bk_module_name": "decoy", "bk_parent_id": set}),
        );
        ok(
            s,
            "/api/v3/hosts/add/business_idle",
            json!({"bk_biz_id": a, "bk_host_list": [
            {"bk_host_innerip": "10.9.9.9", "bk_cloud_id": 0, "bk_addressing": "static"}]}),
        );
    }
    let web = ok(
        s,
        &format!("/api/v3/set/{a}"),
        json!({"bk_set_name": "web", "bk_parent_id": a}),
    )["bk_set_id"]
        .as_i64()
        .unwrap();
    let core = ok(
        s,
        &format!("/api/v3/set/{b}"),
        json!({"bk_set_name": "core", "bk_parent_id": b}),
    )["bk_set_id"]
        .as_i64()
        .unwrap();
    let category = if source {
        let team = ok(
            s,
            "/api/v3/create/proc/service_category",
            json!({"bk_biz_id": a, "name": "team", "bk_parent_id": 0}),
        )["id"]
            .as_i64()
            .unwrap();
        ok(
            s,
            "/api/v3/create/proc/service_category",
            json!({"bk_biz_id": a, "name": "php", "bk_parent_id": team}),
        )["id"]
            .as_i64()
            .unwrap()
    } else {
        2
    };
    let tpl = ok(
        s,
        "/api/v3/create/proc/service_template",
        json!({"bk_biz_id": a, "name": "tpl-php", "service_category_id": category}),
    )["id"]
        .as_i64()
        .unwrap();
    if source {
        ok(
            s,
            "/api/v3/createmany/proc/proc_template",
            json!({"bk_biz_id": a,
            "service_template_id": tpl, "processes": [spec("php-fpm", "9000"), spec("php-exporter", "9253")]}),
        );
    }
    let php = ok(
        s,
        &format!("/api/v3/module/{a}/{web}"),
        json!({"service_template_id": tpl, "bk_parent_id": web}),
    )["bk_module_id"]
        .as_i64()
        .unwrap();
    let tools = ok(
        s,
        &format!("/api/v3/module/{a}/{web}"),
        json!({"bk_module_name": "tools", "bk_parent_id": web}),
    )["bk_module_id"]
        .as_i64()
        .unwrap();
    let api = ok(
        s,
        &format!("/api/v3/module/{b}/{core}"),
        json!({"bk_module_name": "api", "bk_parent_id": core}),
    )["bk_module_id"]
        .as_i64()
        .unwrap();
    let hosts = |biz: i64, net: i64| -> Vec<i64> {
        let list: Vec<Value> = (1..=5)
            .map(|i| format!("10.0.{net}.{i}"))
            .filter(|ip| Some(ip.as_str()) != skip_host)
            .map(|ip| json!({"bk_host_innerip": ip, "bk_cloud_id": 0, "bk_addressing": "static"}))
            .collect();
        let d = ok(
            s,
            "/api/v3/hosts/add/business_idle",
            json!({"bk_biz_id": biz, "bk_host_list": list}),
        );
        d["bk_host_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_i64().unwrap())
            .collect()
    };
    let (ha, hb) = (hosts(a, 0), hosts(b, 1));
    ok(
        s,
        "/api/v3/hosts/modules",
        json!({"bk_biz_id": a, "bk_host_id": ha, "bk_module_id": [php, tools], "is_increment": false}),
    );
    ok(
        s,
        "/api/v3/hosts/modules",
        json!({"bk_biz_id": b, "bk_host_id": hb, "bk_module_id": [api], "is_increment": false}),
    );
    if source {
        // 5 raw instances of 100 processes in A, 5 of 98 in B: with the template's 10, 1,000.
        let mut n = 0;
        for (biz, module, hosts, per) in [(a, tools, &ha, 100), (b, api, &hb, 98)] {
            for h in hosts {
                let first = raw_process(n);
                n += 1;
                let si = ok(
                    s,
                    "/api/v3/create/proc/service_instance",
                    json!({"bk_biz_id": biz,
                    "bk_module_id": module, "instances": [{"bk_host_id": h, "processes": [first]}]}),
                );
                let si = si[0].as_i64().unwrap();
                let rest: Vec<Value> = (0..per - 1)
                    .map(|_| {
                        n += 1;
                        raw_process(n - 1)
                    })
                    .collect();
                ok(
                    s,
                    "/api/v3/create/proc/process_instance",
                    json!({"bk_biz_id": biz, "service_instance_id": si, "processes": rest}),
                );
            }
        }
    }
    Built { php, tools, api }
}

/// What a side holds, without ids: per module path, its instances (name, host IP, template
/// name) with their processes (name → property without ids and times); the templates with
/// their category path and process templates; the custom categories.
fn snapshot(s: &Server, bizs: [(i64, &str); 2], b: &Built) -> Value {
    let mut out = Map::new();
    for (biz, name) in bizs {
        let hosts = ok(
            s,
            &format!("/api/v3/hosts/app/{biz}/list_hosts"),
            json!({"page": {"start": 0, "limit": 500}, "fields": ["bk_host_id", "bk_host_innerip"]}),
        );
        let ip: BTreeMap<i64, String> = hosts["info"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h["bk_host_id"].as_i64().unwrap(),
                    h["bk_host_innerip"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let templates = ok(
            s,
            "/api/v3/findmany/proc/service_template",
            json!({"bk_biz_id": biz, "page": {"start": 0, "limit": 100}}),
        );
        let cats = ok(
            s,
            "/api/v3/findmany/proc/service_category",
            json!({"bk_biz_id": biz}),
        );
        let cat_name: BTreeMap<i64, (String, i64)> = cats["info"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["id"].as_i64().unwrap(),
                    (
                        c["name"].as_str().unwrap().to_string(),
                        c["bk_parent_id"].as_i64().unwrap(),
                    ),
                )
            })
            .collect();
        let path = |id: i64| {
            let (n, parent) = cat_name[&id].clone();
            match cat_name.get(&parent) {
                Some((p, _)) => format!("{p}/{n}"),
                None => n,
            }
        };
        let mut tpl_names = BTreeMap::new();
        let mut tpls = Map::new();
        for t in templates["info"].as_array().unwrap() {
            let id = t["id"].as_i64().unwrap();
            tpl_names.insert(id, t["name"].as_str().unwrap().to_string());
            let pts = ok(
                s,
                "/api/v3/findmany/proc/proc_template",
                json!({"bk_biz_id": biz, "service_template_id": id}),
            );
            let mut pt = Map::new();
            for p in pts["info"].as_array().unwrap() {
                pt.insert(
                    p["bk_process_name"].as_str().unwrap().to_string(),
                    p["property"].clone(),
                );
            }
            tpls.insert(t["name"].as_str().unwrap().to_string(),
                json!({"category": path(t["service_category_id"].as_i64().unwrap()), "processes": pt}));
        }
        let mut modules = Map::new();
        let mods: &[(&str, i64)] = if bizs[0].0 == biz {
            &[("php", b.php), ("tools", b.tools)]
        } else {
            &[("api", b.api)]
        };
        for (mname, module) in mods {
            let d = ok(
                s,
                "/api/v3/findmany/proc/service_instance/details",
                json!({"bk_biz_id": biz, "bk_module_id": module, "page": {"start": 0, "limit": 1000}}),
            );
            let mut sis: Vec<Value> = Vec::new();
            for si in d["info"].as_array().unwrap() {
                let mut procs = Map::new();
                for p in si["process_instances"].as_array().into_iter().flatten() {
                    let mut prop = p["process"].as_object().unwrap().clone();
                    for k in [
                        "bk_process_id",
                        "bk_biz_id",
                        "service_instance_id",
                        "create_time",
                        "last_time",
                        "bk_created_at",
                        "bk_updated_at",
                        "bk_created_by",
                        "bk_updated_by",
                        "bk_supplier_account",
                    ] {
                        prop.remove(k);
                    }
                    procs.insert(
                        prop["bk_process_name"].as_str().unwrap().to_string(),
                        Value::Object(prop),
                    );
                }
                let st = si["service_template_id"].as_i64().unwrap();
                sis.push(
                    json!({"name": si["name"], "host": ip[&si["bk_host_id"].as_i64().unwrap()],
                    "template": tpl_names.get(&st), "processes": procs}),
                );
            }
            sis.sort_by_key(|v| v.to_string());
            modules.insert(mname.to_string(), Value::Array(sis));
        }
        out.insert(
            name.to_string(),
            json!({"templates": tpls, "modules": modules}),
        );
    }
    Value::Object(out)
}

fn process_count(snap: &Value) -> usize {
    let mut n = 0;
    for biz in snap.as_object().unwrap().values() {
        for sis in biz["modules"].as_object().unwrap().values() {
            for si in sis.as_array().unwrap() {
                n += si["processes"].as_object().unwrap().len();
            }
        }
    }
    n
}

fn push(db: &std::path::Path, target: &Server, extra: &[&str]) -> (i32, String, String) {
    let to = format!("http://{}", target.addr);
    let mut args = vec!["push", "--db", db.to_str().unwrap(), "--to", to.as_str()];
    args.extend_from_slice(extra);
    run_cli_within(&args, 240)
}

const SRC_BIZ: [(i64, &str); 2] = [(2, "shop"), (3, "lab")];
const DST_BIZ: [(i64, &str); 2] = [(12, "shop"), (14, "lab")];

/// A source store on `db` (stopped) and its snapshot.
fn source(td: &TempDir, db: &std::path::Path) -> (Value, Built) {
    let s = seeded(td, db, &SRC_BIZ);
    let built = build(&s, 2, 3, true, None);
    let snap = snapshot(&s, SRC_BIZ, &built);
    s.stop();
    (snap, built)
}

fn target(td: &TempDir, skip_host: Option<&str>) -> (Server, Built) {
    let db = td.join(&format!("target-{}.redb", skip_host.unwrap_or("all")));
    let s = seeded(td, &db, &[(5, "other"), (12, "shop"), (14, "lab")]);
    let built = build(&s, 12, 14, false, skip_host);
    (s, built)
}

/// Write requests `t` has committed (`cmdb_commit_batch_requests_sum` of its `/metrics`).
fn committed_writes(t: &Server) -> u64 {
    let body = t.request("GET", "/metrics", &[], b"").body;
    body.lines()
        .find_map(|l| l.strip_prefix("cmdb_commit_batch_requests_sum "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

fn summary_line<'a>(out: &'a str, kind: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(kind))
        .unwrap_or_else(|| panic!("no {kind} line in {out}"))
}

#[test]
fn push_then_follow_changes() {
    let td = TempDir::new("push");
    let db = td.join("source.redb");
    let (want, sb) = source(&td, &db);
    assert_eq!(process_count(&want), 1000);
    let (t, tb) = target(&td, None);
    assert_ne!(
        (sb.php, sb.tools, sb.api),
        (tb.php, tb.tools, tb.api),
        "ids differ"
    );

    // A dry run writes nothing and says what it would do.
    let (code, out, err) = push(&db, &t, &["--dry-run"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        summary_line(&out, "processes").contains("would be created 1000"),
        "{out}"
    );
    assert_eq!(
        ok(
            &t,
            "/api/v3/findmany/proc/proc_template",
            json!({"bk_biz_id": 12, "service_template_id": 1})
        )["count"],
        0
    );

    let (code, out, err) = push(&db, &t, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("records"), "progress on stderr: {err}");
    assert_eq!(snapshot(&t, DST_BIZ, &tb), want);
    println!("first push: {out}");

    // A second push writes nothing.
    let (code, out, err) = push(&db, &t, &[]);
    assert_eq!(code, 0, "{out}{err}");
    for kind in [
        "service categories",
        "service templates",
        "process templates",
        "service instances",
        "processes",
    ] {
        assert!(
            summary_line(&out, kind).contains("created 0, updated 0, deleted 0"),
            "{out}"
        );
    }
    assert_eq!(snapshot(&t, DST_BIZ, &tb), want);

    // Changes here: a process updated, one added, one deleted, a raw instance deleted, a
    // process template's locked field changed and synced, a category renamed.
    let s = Server::file(&db);
    let sis = ok(
        &s,
        "/api/v3/findmany/proc/service_instance",
        json!({"bk_biz_id": 3, "bk_module_id": sb.api, "page": {"start": 0, "limit": 0}}),
    );
    let si_ids: Vec<i64> = sis["info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_i64().unwrap())
        .collect();
    let procs = ok(
        &s,
        "/api/v3/findmany/proc/process_instance",
        json!({"bk_biz_id": 3, "service_instance_id": si_ids[0]}),
    );
    let pids: Vec<i64> = procs
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["property"]["bk_process_id"].as_i64().unwrap())
        .collect();
    let mut changed = procs[0]["property"].clone();
    changed["user"] = json!("root");
    changed["description"] = json!("changed");
    ok(
        &s,
        "/api/v3/update/proc/process_instance",
        json!({"bk_biz_id": 3, "processes": [changed]}),
    );
    ok(
        &s,
        "/api/v3/create/proc/process_instance",
        json!({"bk_biz_id": 3,
        "service_instance_id": si_ids[0], "processes": [raw_process(5000)]}),
    );
    ok(
        &s,
        "/api/v3/delete/proc/process_instance",
        json!({"bk_biz_id": 3, "process_instance_ids": [pids[1]]}),
    );
    ok(
        &s,
        "/api/v3/deletemany/proc/service_instance",
        json!({"bk_biz_id": 3, "service_instance_ids": [si_ids[1]]}),
    );
    let pts = ok(
        &s,
        "/api/v3/findmany/proc/proc_template",
        json!({"bk_biz_id": 2, "service_template_id": 1}),
    );
    let pt = pts["info"][0]["id"].as_i64().unwrap();
    ok(
        &s,
        "/api/v3/update/proc/proc_template",
        json!({"bk_biz_id": 2, "process_template_id": pt,
        "process_property": {"work_path": {"value": "/opt/php8", "as_default_value": true}}}),
    );
    ok(
        &s,
        "/api/v3/update/proc/service_instance/sync",
        json!({"bk_biz_id": 2,
        "service_template_id": 1, "bk_module_ids": [sb.php]}),
    );
    let want = snapshot(&s, SRC_BIZ, &sb);
    s.stop();
    let (code, out, err) = push(&db, &t, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(snapshot(&t, DST_BIZ, &tb), want, "{out}");
    assert!(
        summary_line(&out, "service instances").contains("deleted 1"),
        "{out}"
    );
}

#[test]
fn a_push_killed_at_20_points_resumes_without_duplicates() {
    let _alone = serial();
    let td = TempDir::new("push-kill");
    let db = td.join("source.redb");
    let (want, _) = source(&td, &db);
    let (t, tb) = target(&td, None);
    let to = format!("http://{}", t.addr);
    let cycles: u64 = std::env::var("CMDB_PUSH_KILL_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let (mut killed, mut finished) = (0, 0);
    let mut progress: Vec<usize> = Vec::new();
    for i in 0..cycles {
        let before = committed_writes(&t);
        let mut child = std::process::Command::new(BIN)
            .args(["push", "--db", db.to_str().unwrap(), "--to", &to])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Each run is killed 0 to 6 ms after the target has committed its first write, so
        // that the kills fall all along the push (whatever the machine's speed) and at any
        // point of a write; a run with nothing left to do finishes.
        let (step, lag) = (1, (i * 3) % 7);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if child.try_wait().unwrap().is_some() {
                finished += 1;
                break;
            }
            if committed_writes(&t) >= before + step || Instant::now() > deadline {
                std::thread::sleep(Duration::from_millis(lag));
                if child.try_wait().unwrap().is_some() {
                    finished += 1;
                } else {
                    send_signal(&child, SIGKILL);
                    killed += 1;
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let _ = child.wait();
        progress.push(process_count(&snapshot(&t, DST_BIZ, &tb)));
    }
    println!(
        "{cycles} cycles: {killed} pushes killed mid-way, {finished} had finished; processes \
         on the target after each: {progress:?}"
    );
    assert!(killed >= cycles / 4, "{killed} of {cycles} killed mid-way");
    let mut points = progress.clone();
    points.dedup();
    assert!(points.len() >= 3, "kills at too few points: {progress:?}");
    let (code, out, err) = push(&db, &t, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(snapshot(&t, DST_BIZ, &tb), want);
    let (code, out, err) = push(&db, &t, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        summary_line(&out, "processes").contains("created 0, updated 0, deleted 0"),
        "{out}"
    );
    assert_clean(&db);
}

#[test]
fn a_host_missing_on_the_target_is_reported_and_nothing_on_it_is_written() {
    let td = TempDir::new("push-missing");
    let db = td.join("source.redb");
    let (want, _) = source(&td, &db);
    let (t, tb) = target(&td, Some("10.0.1.5"));
    // Through the API gateway this time.
    let (code, out, err) = push(&db, &t, &["--family", "gateway", "--stage", "prod"]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        out.contains("not pushed: host 10.0.1.5 (cloud area 0) is not in the target's business 14"),
        "{out}"
    );
    assert!(
        summary_line(&out, "service instances").contains("skipped 1"),
        "{out}"
    );
    assert!(
        summary_line(&out, "processes").contains("skipped 98"),
        "{out}"
    );
    let got = snapshot(&t, DST_BIZ, &tb);
    // Everything but the missing host's instance and its 98 processes.
    let mut expected = want.clone();
    let api = expected["lab"]["modules"]["api"].as_array_mut().unwrap();
    api.retain(|si| si["host"] != "10.0.1.5");
    assert_eq!(got, expected);
    assert_eq!(process_count(&got), 902);
}

/// One business "shop", set "web", raw module "tools" with 10 hosts: (module, host ids).
fn flat(s: &Server, biz: i64, decoy: bool) -> (i64, Vec<i64>) {
    if decoy {
        ok(
            s,
            &format!("/api/v3/set/{biz}"),
            json!({"bk_set_name": "decoy", "bk_parent_id": biz}),
        );
    }
    let web = ok(
        s,
        &format!("/api/v3/set/{biz}"),
        json!({"bk_set_name": "web", "bk_parent_id": biz}),
    )["bk_set_id"]
        .as_i64()
        .unwrap();
    let tools = ok(
        s,
        &format!("/api/v3/module/{biz}/{web}"),
        json!({"bk_module_name": "tools", "bk_parent_id": web}),
    )["bk_module_id"]
        .as_i64()
        .unwrap();
    let list: Vec<Value> = (1..=10)
        .map(|i| json!({"bk_host_innerip": format!("10.1.0.{i}"), "bk_cloud_id": 0, "bk_addressing": "static"}))
        .collect();
    let d = ok(
        s,
        "/api/v3/hosts/add/business_idle",
        json!({"bk_biz_id": biz, "bk_host_list": list}),
    );
    let hosts: Vec<i64> = d["bk_host_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_i64().unwrap())
        .collect();
    ok(
        s,
        "/api/v3/hosts/modules",
        json!({"bk_biz_id": biz, "bk_host_id": hosts, "bk_module_id": [tools], "is_increment": false}),
    );
    (tools, hosts)
}

/// The push's rate and calls per process, printed (`CMDB_PUSH_BENCH_PROCESSES`, default
/// 2,000, in instances of 100 processes; run with `--release` for figures worth quoting).
#[test]
fn push_rate_and_calls_per_process() {
    let n: usize = std::env::var("CMDB_PUSH_BENCH_PROCESSES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let td = TempDir::new("push-rate");
    let db = td.join("source.redb");
    let s = seeded(&td, &db, &[(2, "shop")]);
    let (tools, hosts) = flat(&s, 2, false);
    // The floor: the same creates (instances with their first process, then 99 more per
    // create_process_instance) sent straight to a server of the same build.
    let floor = Instant::now();
    for i in 0..n.div_ceil(100) {
        let si = ok(
            &s,
            "/api/v3/create/proc/service_instance",
            json!({"bk_biz_id": 2,
            "bk_module_id": tools, "instances": [{"bk_host_id": hosts[i % hosts.len()],
            "service_instance_name": format!("si-{i}"), "processes": [raw_process(i * 100)]}]}),
        );
        let rest: Vec<Value> = (i * 100 + 1..n.min(i * 100 + 100))
            .map(raw_process)
            .collect();
        if !rest.is_empty() {
            ok(
                &s,
                "/api/v3/create/proc/process_instance",
                json!({"bk_biz_id": 2,
                "service_instance_id": si[0].as_i64().unwrap(), "processes": rest}),
            );
        }
    }
    let floor = floor.elapsed();
    s.stop();
    let tdb = td.join("target.redb");
    let t = seeded(&td, &tdb, &[(5, "other"), (9, "shop")]);
    flat(&t, 9, true);
    let started = Instant::now();
    let (code, out, err, peak_kib) = push_sampling_peak(&db, &t);
    let took = started.elapsed();
    assert_eq!(code, 0, "{out}{err}");
    let calls: f64 = out
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let records = n + n.div_ceil(100);
    println!(
        "push of {n} processes in {} instances: {:.2} s, {:.0} records/s, {calls} calls, {:.4} calls per process",
        n.div_ceil(100),
        took.as_secs_f64(),
        records as f64 / took.as_secs_f64(),
        calls / n as f64
    );
    println!(
        "floor, the same creates sent directly: {:.2} s; push / floor time: {:.2}",
        floor.as_secs_f64(),
        took.as_secs_f64() / floor.as_secs_f64()
    );
    assert!(
        summary_line(&out, "processes").contains(&format!("created {}", n - n.div_ceil(100))),
        "{out}"
    );
    if let Some(kib) = peak_kib {
        println!("push peak RSS (VmHWM): {:.1} MiB", kib as f64 / 1024.0);
        // Every command stays within 64 MiB whatever the store's size.
        assert!(kib < 64 * 1024, "push peaked at {kib} KiB");
    }
    let started = Instant::now();
    let (code, out, err, peak_kib) = push_sampling_peak(&db, &t);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        summary_line(&out, "processes").contains("created 0, updated 0, deleted 0"),
        "{out}"
    );
    println!(
        "a second push (nothing to send): {:.2} s, {}, peak RSS {:.1} MiB",
        started.elapsed().as_secs_f64(),
        out.lines().last().unwrap(),
        peak_kib.unwrap_or(0) as f64 / 1024.0
    );
}

/// `push` of `db` into `target`, its peak resident set (VmHWM, KiB) sampled from /proc while
/// it runs (`None` where /proc has no such line).
fn push_sampling_peak(db: &std::path::Path, target: &Server) -> (i32, String, String, Option<u64>) {
    let to = format!("http://{}", target.addr);
    let mut child = std::process::Command::new(BIN)
        .args(["push", "--db", db.to_str().unwrap(), "--to", &to])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (t_out, t_err) = read_output(&mut child);
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = None;
    let deadline = Instant::now() + std::time::Duration::from_secs(1800);
    let status = loop {
        // Read before reaping: the kernel's figure is the process's whole-life peak.
        if let Ok(text) = std::fs::read_to_string(&status_file)
            && let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak = Some(peak.map_or(kib, |p: u64| p.max(kib)));
        }
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "push did not finish within 30 min"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    (
        status.code().unwrap_or(-1),
        t_out.join().unwrap(),
        t_err.join().unwrap(),
        peak,
    )
}

#[test]
fn a_refused_or_cut_call_stops_the_push_and_the_next_one_resumes() {
    let td = TempDir::new("push-refused");
    let db = td.join("source.redb");
    let (want, _) = source(&td, &db);
    let tdb = td.join("target.redb");
    let t = seeded_with(
        &td,
        &tdb,
        &[(5, "other"), (12, "shop"), (14, "lab")],
        &["--admin"],
    );
    let tb = build(&t, 12, 14, false, None);
    let fault = |rule: Value| {
        let r = t.request("POST", "/_cmdb/faults", &[], rule.to_string().as_bytes());
        assert_eq!(r.status, 200, "{}", r.body);
    };
    // The third create_process_instance is refused: the push stops there, exit 1, with the
    // target's code and message.
    fault(
        json!({"operation": "create_process_instance", "times": 1, "code": 1199014,
        "message": "duplicated instances exist, fields [bk_process_name] duplicated"}),
    );
    let (code, out, err) = push(&db, &t, &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("push stopped: the target refused create_process_instance: 1199014 duplicated instances exist, fields [bk_process_name] duplicated"),
        "{err}"
    );
    // The connection is cut on the next create_service_instance: stopped again.
    fault(json!({"operation": "create_service_instance", "times": 1, "drop": true}));
    let (code, out, err) = push(&db, &t, &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("push stopped: create_service_instance failed"),
        "{err}"
    );
    // Then it goes through, and the target is as after an uninterrupted push.
    let (code, out, err) = push(&db, &t, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(snapshot(&t, DST_BIZ, &tb), want);
    let (code, out, err) = push(&db, &t, &[]);
    assert_eq!(code, 0, "{out}{err}");
    for kind in ["service instances", "processes"] {
        assert!(
            summary_line(&out, kind).contains("created 0, updated 0, deleted 0"),
            "{out}"
        );
    }
}
