//! Black-box tests of the topology and host reads (spec bk-cmdb-topology.md sections 5-7):
//! search_business, search_set, search_module, search_biz_inst_topo, get_biz_internal_module,
//! search_cloud_area, get_mainline_object_topo, find_set_batch, find_module_batch,
//! find_module_with_relation, find_topo_node_paths, list_biz_hosts (every QueryFilter operator
//! and refusal), list_biz_hosts_topo, list_hosts_without_biz, find_host_topo_relation,
//! find_host_biz_relations, get_host_base_info, find_host_by_service_template and
//! list_process_related_info, en and zh, on the three route families.
//!
//! Every server here is seeded with [`seed`]: the resource pool 1 (idle set 2, modules 1-3,
//! host 17 in its idle module); business 7 "shop" (maintainers "alice,bob", a custom attribute
//! `team`) with sets 3 "web" (env "1") and 4 "db", idle set 5 (modules 13-15, host 15 idle);
//! modules 10 "nginx" (hosts 11, 12, 13), 11 "php" (template 5, host 12), 12 "mysql" (host 14);
//! business 8 "MyShop2" with set 6 "core" and module 16 "api" (host 16); business 9 "lab"
//! (nothing; its idle set and modules are created on import). Cloud areas 0 and 5 (host 13).
//! Service instances 30 (module 11, host 12), 31 (module 10, host 11), 32 (module 16, host
//! 16); processes 40, 41 (instance 31), 42 (30), 43 (32).

use crate::common::lang::{
    both, call, exceed_limit, invalid, invalid_param, json_error, unassigned,
};
use crate::common::*;
use serde_json::{Value, json};

const T: &str = "2026-01-02T03:04:05.678Z";

fn stamp(mut v: Value) -> Value {
    let m = v.as_object_mut().unwrap();
    for k in ["create_time", "last_time", "bk_created_at", "bk_updated_at"] {
        m.entry(k).or_insert(json!(T));
    }
    m.entry("bk_created_by").or_insert(json!("admin"));
    v
}

fn module(id: i64, biz: i64, set: i64, name: &str, st: i64, default: i64, hosts: &[i64]) -> Value {
    stamp(
        json!({"bk_module_id": id, "bk_biz_id": biz, "bk_set_id": set, "bk_module_name": name,
        "service_template_id": st, "service_category_id": 2, "default": default, "hosts": hosts}),
    )
}

fn set(id: i64, biz: i64, name: &str, default: i64, extra: Value) -> Value {
    let mut s = json!({"bk_set_id": id, "bk_biz_id": biz, "bk_set_name": name, "default": default});
    for (k, v) in extra.as_object().unwrap() {
        s[k] = v.clone();
    }
    stamp(s)
}

fn host(id: i64, inner: &str, cloud: i64, extra: Value) -> Value {
    let mut h = json!({"bk_host_id": id, "bk_host_innerip": inner, "bk_cloud_id": cloud});
    for (k, v) in extra.as_object().unwrap() {
        h[k] = v.clone();
    }
    stamp(h)
}

fn process(pid: i64, biz: i64, si: i64, host: i64, name: &str, port: &str, tpl: i64) -> Value {
    let demo = demo_dataset();
    let mut p = demo["processes"][0].clone();
    p["bk_process_id"] = json!(pid);
    p["bk_biz_id"] = json!(biz);
    p["service_instance_id"] = json!(si);
    p["bk_process_name"] = json!(name);
    p["bk_func_name"] = json!(name);
    p["bind_info"][0]["port"] = json!(port);
    p["relation"] = json!({"bk_biz_id": biz, "bk_process_id": pid, "service_instance_id": si,
        "process_template_id": tpl, "bk_host_id": host, "bk_supplier_account": "0"});
    p
}

fn si(id: i64, biz: i64, module: i64, host: i64, st: i64, name: &str) -> Value {
    json!({"bk_biz_id": biz, "id": id, "name": name, "labels": null, "service_template_id": st,
        "bk_host_id": host, "bk_module_id": module, "creator": "admin", "modifier": "admin",
        "create_time": T, "last_time": T, "bk_supplier_account": "0"})
}

fn seed() -> Value {
    json!({
        "format": "cmdb-lite/1",
        "supplier_account": "0",
        "cloud_areas": [
            stamp(json!({"bk_cloud_id": 0, "bk_cloud_name": "Default Area", "default": 1})),
            stamp(json!({"bk_cloud_id": 5, "bk_cloud_name": "edge", "bk_region": "sh",
                "create_time": "2026-02-01T00:00:00.000Z"})),
        ],
        "businesses": [
            stamp(json!({"bk_biz_id": 1, "bk_biz_name": "资源池", "default": 1})),
            stamp(json!({"bk_biz_id": 7, "bk_biz_name": "shop", "bk_biz_maintainer": "alice,bob",
                "team": "red"})),
            stamp(json!({"bk_biz_id": 8, "bk_biz_name": "MyShop2", "life_cycle": "1",
                "bk_biz_maintainer": "bobby"})),
            stamp(json!({"bk_biz_id": 9, "bk_biz_name": "lab"})),
        ],
        "sets": [
            set(2, 1, "空闲机池", 1, json!({})),
            set(3, 7, "web", 0, json!({"bk_set_env": "1"})),
            set(4, 7, "db", 0, json!({})),
            set(5, 7, "空闲机池", 1, json!({})),
            set(6, 8, "core", 0, json!({})),
        ],
        "hosts": [
            host(11, "10.0.0.11", 0, json!({"bk_host_name": "web-11", "bk_cpu": 8,
                "bk_os_type": "1", "operator": "alice"})),
            host(12, "10.0.0.12,10.0.0.13", 0, json!({"bk_host_name": "Web-12", "bk_cpu": 4,
                "bk_os_type": "1"})),
            host(13, "", 5, json!({"bk_host_innerip_v6": "fd00::13", "bk_host_name": "v6-13",
                "bk_cpu": 2, "rack": "r1"})),
            host(14, "10.0.0.14", 0, json!({"bk_host_name": "db-14", "bk_cpu": 16,
                "bk_os_type": "2", "create_time": "2026-03-01T00:00:00.000Z"})),
            host(15, "10.0.0.15", 0, json!({"bk_host_name": "idle-15"})),
            host(16, "10.0.1.16", 0, json!({"bk_host_name": "api-16"})),
            host(17, "10.0.2.17", 0, json!({"bk_host_name": "pool-17"})),
        ],
        "modules": [
            module(1, 1, 2, "空闲机", 0, 1, &[17]),
            module(2, 1, 2, "故障机", 0, 2, &[]),
            module(3, 1, 2, "待回收", 0, 3, &[]),
            module(10, 7, 3, "nginx", 0, 0, &[11, 12, 13]),
            module(11, 7, 3, "php", 5, 0, &[12]),
            module(12, 7, 4, "mysql", 0, 0, &[14]),
            module(13, 7, 5, "空闲机", 0, 1, &[15]),
            module(14, 7, 5, "故障机", 0, 2, &[]),
            module(15, 7, 5, "待回收", 0, 3, &[]),
            module(16, 8, 6, "api", 0, 0, &[16]),
        ],
        "service_categories": [
            {"id": 1, "name": "Default", "bk_parent_id": 0, "bk_root_id": 1, "bk_biz_id": 0},
            {"id": 2, "name": "Default", "bk_parent_id": 1, "bk_root_id": 1, "bk_biz_id": 0},
        ],
        "service_templates": [
            {"bk_biz_id": 7, "id": 5, "name": "tpl-php", "service_category_id": 2,
             "creator": "admin", "modifier": "admin", "create_time": T, "last_time": T,
             "bk_supplier_account": "0", "host_apply_enabled": false},
        ],
        "service_instances": [
            si(30, 7, 11, 12, 5, "10.0.0.12_php-fpm_9000"),
            si(31, 7, 10, 11, 0, "10.0.0.11_nginx_80"),
            si(32, 8, 16, 16, 0, "10.0.1.16_api_8000"),
        ],
        "processes": [
            process(40, 7, 31, 11, "nginx", "80", 0),
            process(41, 7, 31, 11, "nginx-exporter", "9113", 0),
            process(42, 7, 30, 12, "php-fpm", "9000", 0),
            process(43, 8, 32, 16, "api", "8000", 0),
        ],
        "sequences": {"business": 9, "set": 6, "module": 16, "host": 17},
    })
}

pub(crate) fn server() -> (Server, TempDir) {
    let td = TempDir::new("topology");
    let file = td.join("seed.json");
    std::fs::write(&file, seed().to_string()).unwrap();
    (
        Server::start(&["--memory", "--seed", file.to_str().unwrap()]),
        td,
    )
}

pub(crate) fn ok(s: &Server, method: &str, path: &str, body: &Value) -> Value {
    let r = call(s, method, path, body, false);
    assert_eq!(r["result"], json!(true), "{method} {path} {body}: {r}");
    r["data"].clone()
}

fn ok_zh(s: &Server, method: &str, path: &str, body: &Value) -> Value {
    let r = call(s, method, path, body, true);
    assert_eq!(r["result"], json!(true), "{method} {path} {body}: {r}");
    r["data"].clone()
}

pub(crate) fn ids(v: &Value, key: &str) -> Vec<i64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x[key].as_i64().unwrap_or_else(|| panic!("no {key} in {x}")))
        .collect()
}

/// An ESB call (POST) with the body; the whole answer.
fn esb(s: &Server, name: &str, body: &Value) -> Value {
    s.esb(name, &[("X-Bkcmdb-Language", "en")], body)
}

/// A request in English with `raw` as its body; the whole answer, which must be HTTP 200.
fn answer_en(s: &Server, method: &str, path: &str, raw: &[u8]) -> Value {
    let r = s.request(method, path, &[("X-Bkcmdb-Language", "en")], raw);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

/// An ESB GET of `name_query` (`<name>/?<query>`), in English; the whole answer.
fn esb_get(s: &Server, name_query: &str) -> Value {
    answer_en(s, "GET", &format!("/api/c/compapi/v2/cc/{name_query}"), b"")
}

/// A gateway call; the whole answer.
fn gateway(s: &Server, method: &str, path: &str, body: &Value) -> Value {
    s.gateway(method, path, body)
}

// ---------------------------------------------------------------------------------------------
// search_business

pub(crate) const BIZ: &str = "/api/v3/biz/search/0";

#[test]
fn search_business() {
    let (s, _td) = server();
    let d = ok(&s, "POST", BIZ, &json!({}));
    // The resource pool is never returned; storage order.
    assert_eq!(d["count"], json!(3));
    assert_eq!(ids(&d["info"], "bk_biz_id"), [7, 8, 9]);
    // The whole record: built-in attributes with defaults, the custom one, keys sorted.
    let shop = &d["info"][0];
    assert_eq!(
        shop,
        &json!({"bk_biz_id": 7, "bk_biz_name": "shop", "bk_biz_maintainer": "alice,bob",
            "bk_biz_productor": null, "bk_biz_tester": null, "bk_biz_developer": null,
            "operator": null, "life_cycle": "2", "time_zone": "Asia/Shanghai", "language": "1",
            "default": 0, "team": "red", "bk_supplier_account": "0", "create_time": T,
            "last_time": T, "bk_created_at": T, "bk_updated_at": T, "bk_created_by": "admin",
            "bk_updated_by": null})
    );
    let keys: Vec<&String> = shop.as_object().unwrap().keys().collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "keys in Go map order");

    let names = |body: Value| ids(&ok(&s, "POST", BIZ, &body)["info"], "bk_biz_id");
    // A string is a case-insensitive substring match; on user fields a whole member.
    assert_eq!(names(json!({"condition": {"bk_biz_name": "shop"}})), [7, 8]);
    assert_eq!(names(json!({"condition": {"bk_biz_name": "SHOP2"}})), [8]);
    assert_eq!(
        names(json!({"condition": {"bk_biz_name": "s.op"}})),
        Vec::<i64>::new()
    );
    assert_eq!(
        names(json!({"condition": {"bk_biz_maintainer": "bob"}})),
        [7]
    );
    assert_eq!(
        names(json!({"condition": {"bk_biz_maintainer": "bo"}})),
        Vec::<i64>::new()
    );
    assert_eq!(
        names(json!({"condition": {"bk_biz_maintainer": "bobby,x"}})),
        Vec::<i64>::new()
    );
    assert_eq!(names(json!({"condition": {"bk_biz_id": 8}})), [8]);
    assert_eq!(
        names(json!({"condition": {"bk_biz_id": {"$in": [7, 9]}}})),
        [7, 9]
    );
    assert_eq!(
        names(json!({"condition": {"bk_biz_id": 1}})),
        Vec::<i64>::new()
    );
    assert_eq!(names(json!({"condition": {"team": "RE"}})), [7]);
    // biz_property_filter replaces the fuzzy matching.
    let f = |op: &str, v: Value| {
        json!({"biz_property_filter": {"condition": "AND",
            "rules": [{"field": "bk_biz_name", "operator": op, "value": v}]}})
    };
    assert_eq!(names(f("equal", json!("shop"))), [7]);
    assert_eq!(names(f("contains", json!("SHOP"))), [7, 8]);
    assert_eq!(names(f("in", json!(["lab", "shop"]))), [7, 9]);
    // fields: only those keys, plus `default`.
    let d = ok(&s, "POST", BIZ, &json!({"fields": ["bk_biz_name"]}));
    assert_eq!(d["info"][0], json!({"bk_biz_name": "shop", "default": 0}));
    let d = ok(&s, "POST", BIZ, &json!({"fields": [""]}));
    assert_eq!(d["info"][0], json!({}));
    // Paging: no checks, limit 0 = all, sort by any field, count before paging.
    let page = |p: Value| {
        ok(
            &s,
            "POST",
            BIZ,
            &json!({"page": p, "fields": ["bk_biz_id"]}),
        )
    };
    let d = page(json!({"start": 1, "limit": 1}));
    assert_eq!(
        (d["count"].clone(), ids(&d["info"], "bk_biz_id")),
        (json!(3), vec![8])
    );
    let d = page(json!({"start": 10, "limit": 5}));
    assert_eq!(
        (d["count"].clone(), d["info"].clone()),
        (json!(3), json!([]))
    );
    assert_eq!(
        ids(&page(json!({"sort": "-bk_biz_id"}))["info"], "bk_biz_id"),
        [9, 8, 7]
    );
    assert_eq!(
        ids(&page(json!({"sort": "bk_biz_name"}))["info"], "bk_biz_id"),
        [8, 9, 7]
    );
    assert_eq!(
        ids(&page(json!({"limit": 5000}))["info"], "bk_biz_id"),
        [7, 8, 9]
    );
    // English and Chinese answers are equal (no built-in name is shown).
    assert_eq!(
        ok_zh(&s, "POST", BIZ, &json!({})),
        ok(&s, "POST", BIZ, &json!({}))
    );
}

#[test]
fn search_business_refusals() {
    let (s, _td) = server();
    let both_set = json!({"condition": {}, "biz_property_filter":
        {"condition": "AND", "rules": [{"field": "a", "operator": "exist"}]}});
    invalid(&s, "POST", BIZ, &both_set, "%s");
    let filter = |r: Value| json!({"biz_property_filter": {"condition": "OR", "rules": r}});
    invalid(
        &s,
        "POST",
        BIZ,
        &filter(json!([{"field": "a", "operator": "like", "value": 1}])),
        "biz.property.rules[0].operator",
    );
    let many: Vec<Value> = (0..21)
        .map(|i| json!({"field": "bk_biz_id", "operator": "equal", "value": i}))
        .collect();
    invalid(&s, "POST", BIZ, &filter(json!(many)), "biz.property.rules");
    let big: Vec<i64> = (0..501).collect();
    invalid(
        &s,
        "POST",
        BIZ,
        &filter(json!([{"field": "bk_biz_id", "operator": "in", "value": big}])),
        "biz.property.rules[0].value",
    );
    let deep = json!({"biz_property_filter": {"condition": "AND", "rules": [{"condition": "OR",
        "rules": [{"condition": "AND", "rules": [{"field": "a", "operator": "exist"}]}]}]}});
    invalid(
        &s,
        "POST",
        BIZ,
        &deep,
        "exceed max query condition deepth: 3",
    );
    invalid(
        &s,
        "POST",
        BIZ,
        &json!({"condition": {"bk_biz_id": true}}),
        "bk_biz_id",
    );
    invalid(
        &s,
        "POST",
        BIZ,
        &json!({"condition": {"bk_biz_id": {"$eq": "7"}}}),
        "%s",
    );
    json_error(&s, "POST", BIZ, &json!({"fields": "bk_biz_id"}));
    json_error(&s, "POST", BIZ, &json!({"condition": []}));
    json_error(&s, "POST", BIZ, &json!({"biz_property_filter": {"x": 1}}));
}

#[test]
fn search_business_on_every_route_family() {
    let (s, _td) = server();
    let body = json!({"fields": ["bk_biz_id"], "condition": {"bk_biz_id": 7}});
    let native = ok(&s, "POST", BIZ, &body);
    let g = gateway(&s, "POST", BIZ, &body);
    assert_eq!(
        (g["result"].clone(), g["data"].clone()),
        (json!(true), native.clone())
    );
    let e = esb(&s, "search_business", &body);
    assert_eq!((e["code"].clone(), e["data"].clone()), (json!(0), native));
}

// ---------------------------------------------------------------------------------------------
// list_biz_hosts

pub(crate) const HOSTS7: &str = "/api/v3/hosts/app/7/list_hosts";

fn host_ids(s: &Server, body: Value) -> (i64, Vec<i64>) {
    let d = ok(s, "POST", HOSTS7, &body);
    (d["count"].as_i64().unwrap(), ids(&d["info"], "bk_host_id"))
}

fn rule(field: &str, op: &str, value: Value) -> Value {
    json!({"condition": "AND", "rules": [{"field": field, "operator": op, "value": value}]})
}

#[test]
fn list_biz_hosts() {
    let (s, _td) = server();
    let page = json!({"start": 0, "limit": 10});
    let d = ok(&s, "POST", HOSTS7, &json!({"page": page}));
    // Every host of the business (one per relation), ascending; the whole record.
    assert_eq!(d["count"], json!(5));
    assert_eq!(ids(&d["info"], "bk_host_id"), [11, 12, 13, 14, 15]);
    let h12 = &d["info"][1];
    assert_eq!(h12["bk_host_innerip"], json!("10.0.0.12,10.0.0.13"));
    assert_eq!(h12["bk_cpu_architecture"], json!("x86"));
    assert_eq!(h12["bk_addressing"], json!("static"));
    assert_eq!(h12["operator"], json!(""));
    assert_eq!(
        d["info"][2]["rack"],
        json!("r1"),
        "custom attributes are returned"
    );
    assert_eq!(d["info"][0]["operator"], json!("alice"));
    // fields: only those (no bk_host_id added).
    let d = ok(
        &s,
        "POST",
        HOSTS7,
        &json!({"page": page, "fields": ["bk_host_name"]}),
    );
    assert_eq!(d["info"][0], json!({"bk_host_name": "web-11"}));
    // Narrowed by sets, modules, set_cond, module_cond.
    let with = |extra: Value| {
        let mut b = json!({"page": page, "fields": ["bk_host_id"]});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        host_ids(&s, b)
    };
    assert_eq!(with(json!({"bk_set_ids": [3]})), (3, vec![11, 12, 13]));
    assert_eq!(with(json!({"bk_set_ids": [4, 5]})), (2, vec![14, 15]));
    assert_eq!(
        with(json!({"bk_set_ids": [6]})),
        (0, vec![]),
        "another business's set"
    );
    assert_eq!(with(json!({"bk_module_ids": [11]})), (1, vec![12]));
    assert_eq!(
        with(json!({"bk_module_ids": [10, 12]})),
        (4, vec![11, 12, 13, 14])
    );
    assert_eq!(with(json!({"bk_module_ids": [16]})), (0, vec![]));
    assert_eq!(
        with(json!({"bk_set_ids": [4], "bk_module_ids": [10, 12]})),
        (1, vec![14])
    );
    let cond = |f: &str, op: &str, v: Value| json!([{"field": f, "operator": op, "value": v}]);
    assert_eq!(
        with(json!({"set_cond": cond("bk_set_name", "$eq", json!("db"))})),
        (1, vec![14])
    );
    assert_eq!(
        with(json!({"set_cond": cond("bk_set_name", "$eq", json!("nope"))})),
        (0, vec![])
    );
    assert_eq!(
        with(json!({"module_cond": cond("bk_module_name", "$in", json!(["php", "mysql"]))})),
        (2, vec![12, 14])
    );
    assert_eq!(
        with(json!({"module_cond": cond("bk_module_name", "$regex", json!("^ng"))})),
        (3, vec![11, 12, 13])
    );
    // Other businesses: 8 has host 16, 9 none, an unknown one none.
    let other = |biz: i64| {
        let d = ok(
            &s,
            "POST",
            &format!("/api/v3/hosts/app/{biz}/list_hosts"),
            &json!({"page": page, "fields": ["bk_host_id"]}),
        );
        (d["count"].as_i64().unwrap(), ids(&d["info"], "bk_host_id"))
    };
    assert_eq!(other(8), (1, vec![16]));
    assert_eq!(other(9), (0, vec![]));
    assert_eq!(other(99), (0, vec![]));
    assert_eq!(other(1), (1, vec![17]));
}

#[test]
fn list_biz_hosts_paging() {
    let (s, _td) = server();
    let p = |page: Value| host_ids(&s, json!({"page": page, "fields": ["bk_host_id"]}));
    // Without a filter the page is a slice of the ids: count is every host.
    assert_eq!(p(json!({"start": 1, "limit": 2})), (5, vec![12, 13]));
    assert_eq!(p(json!({"start": 4, "limit": 2})), (5, vec![15]));
    assert_eq!(p(json!({"start": 5, "limit": 2})), (5, vec![]));
    // bk-cmdb: a start past the end answers count 0.
    assert_eq!(p(json!({"start": 6, "limit": 2})), (0, vec![]));
    assert_eq!(p(json!({"limit": 1000})), (5, vec![11, 12, 13, 14, 15]));
    // Sorting by bk_host_id descending reverses within the page only.
    assert_eq!(
        p(json!({"start": 0, "limit": 2, "sort": "-bk_host_id"})),
        (5, vec![12, 11])
    );
    assert_eq!(
        p(json!({"start": 0, "limit": 2, "sort": "bk_host_id:-1"})),
        (5, vec![12, 11])
    );
    // Another sort field sorts every host, then pages.
    assert_eq!(
        p(json!({"start": 0, "limit": 2, "sort": "-bk_cpu"})),
        (5, vec![14, 11])
    );
    assert_eq!(
        p(json!({"start": 0, "limit": 10, "sort": "bk_host_name"})),
        (5, vec![12, 14, 15, 13, 11])
    );
    assert_eq!(
        p(json!({"start": 0, "limit": 10, "sort": "bk_cpu,-bk_host_id"})),
        (5, vec![15, 13, 12, 11, 14])
    );
    // With a filter: count is of the matching hosts.
    let d = host_ids(
        &s,
        json!({"page": {"start": 1, "limit": 1}, "fields": ["bk_host_id"],
            "host_property_filter": rule("bk_os_type", "equal", json!("1"))}),
    );
    assert_eq!(d, (2, vec![12]));
}

#[test]
fn list_biz_hosts_every_filter_operator() {
    let (s, _td) = server();
    let f = |filter: Value| {
        host_ids(
            &s,
            json!({"page": {"limit": 100}, "fields": ["bk_host_id"], "host_property_filter": filter}),
        )
        .1
    };
    let r = |field: &str, op: &str, v: Value| f(rule(field, op, v));
    let none: Vec<i64> = vec![];
    assert_eq!(r("bk_host_name", "equal", json!("web-11")), [11]);
    assert_eq!(r("bk_host_innerip", "equal", json!("10.0.0.13")), [12]);
    assert_eq!(r("bk_cpu", "not_equal", json!(8)), [12, 13, 14, 15]);
    assert_eq!(r("bk_host_id", "in", json!([11, 14, 99])), [11, 14]);
    assert_eq!(r("bk_host_innerip", "in", json!(["10.0.0.12"])), [12]);
    assert_eq!(r("bk_host_id", "not_in", json!([11, 14])), [12, 13, 15]);
    assert_eq!(r("bk_cpu", "less", json!(8)), [12, 13]);
    assert_eq!(r("bk_cpu", "less_or_equal", json!(8)), [11, 12, 13]);
    assert_eq!(r("bk_cpu", "greater", json!(4)), [11, 14]);
    assert_eq!(r("bk_cpu", "greater_or_equal", json!(4)), [11, 12, 14]);
    assert_eq!(
        r("create_time", "datetime_less", json!("2026-02-01")),
        [11, 12, 13, 15]
    );
    assert_eq!(
        r(
            "create_time",
            "datetime_less_or_equal",
            json!("2026-03-01 00:00:00")
        ),
        [11, 12, 13, 14, 15]
    );
    assert_eq!(
        r("create_time", "datetime_greater", json!("2026-02-01")),
        [14]
    );
    assert_eq!(
        r(
            "create_time",
            "datetime_greater_or_equal",
            json!("2026-03-02")
        ),
        none
    );
    assert_eq!(r("bk_host_name", "begins_with", json!("web")), [11]);
    assert_eq!(
        r("bk_host_name", "not_begins_with", json!("web")),
        [12, 13, 14, 15]
    );
    assert_eq!(r("bk_host_name", "contains", json!("WEB")), [11, 12]);
    assert_eq!(r("bk_host_name", "not_contains", json!("eb")), [13, 14, 15]);
    assert_eq!(
        r("bk_host_name", "ends_with", json!("1[0-9]")),
        [11, 12, 13, 14, 15]
    );
    assert_eq!(
        r("bk_host_name", "not_ends_with", json!("-1[1-3]")),
        [14, 15]
    );
    assert_eq!(
        r("bk_host_innerip", "begins_with", json!("10.0.0.13")),
        [12]
    );
    assert_eq!(r("bk_state", "is_null", Value::Null), [11, 12, 13, 14, 15]);
    assert_eq!(r("bk_cpu", "is_null", Value::Null), [15]);
    assert_eq!(r("bk_cpu", "is_not_null", Value::Null), [11, 12, 13, 14]);
    assert_eq!(r("rack", "exist", Value::Null), [13]);
    assert_eq!(r("rack", "not_exist", Value::Null), [11, 12, 14, 15]);
    assert_eq!(r("bk_host_innerip", "is_empty", Value::Null), none);
    assert_eq!(
        r("bk_host_innerip", "is_not_empty", Value::Null),
        [11, 12, 13, 14, 15]
    );
    // AND and OR, nested.
    let or = json!({"condition": "OR", "rules": [
        {"field": "bk_cpu", "operator": "greater", "value": 10},
        {"condition": "AND", "rules": [
            {"field": "bk_os_type", "operator": "equal", "value": "1"},
            {"field": "bk_cpu", "operator": "less", "value": 5}]}]});
    assert_eq!(f(or), [12, 14]);
    let and = json!({"condition": "AND", "rules": [
        {"field": "bk_os_type", "operator": "equal", "value": "1"},
        {"field": "bk_host_name", "operator": "contains", "value": "12"}]});
    assert_eq!(f(and), [12]);
    // A filter and sets together.
    let d = host_ids(
        &s,
        json!({"page": {"limit": 100}, "fields": ["bk_host_id"], "bk_set_ids": [3],
            "host_property_filter": rule("bk_cpu", "greater", json!(2))}),
    );
    assert_eq!(d, (2, vec![11, 12]));
}

#[test]
fn list_biz_hosts_refusals() {
    let (s, _td) = server();
    let lim = json!({"limit": 10});
    let with = |extra: Value| {
        let mut b = json!({"page": lim});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    invalid(
        &s,
        "POST",
        HOSTS7,
        &json!({"page": {"start": -1, "limit": 1}}),
        "page.start",
    );
    invalid(
        &s,
        "POST",
        HOSTS7,
        &json!({"page": {"limit": -1}}),
        "page.limit",
    );
    invalid(
        &s,
        "POST",
        HOSTS7,
        &json!({"page": {"limit": 1001}}),
        "page.limit",
    );
    invalid(
        &s,
        "POST",
        HOSTS7,
        &json!({"page": {"limit": 999999999}}),
        "page.limit",
    );
    invalid(
        &s,
        "POST",
        HOSTS7,
        &json!({"page": {"limit": 0}}),
        "page.limit",
    );
    invalid(&s, "POST", HOSTS7, &json!({}), "page.limit");
    let hpf = |f: Value| with(json!({"host_property_filter": f}));
    invalid(
        &s,
        "POST",
        HOSTS7,
        &hpf(json!({"field": "a", "operator": "equal", "value": 1})),
        "host_property_filter.",
    );
    invalid(
        &s,
        "POST",
        HOSTS7,
        &hpf(json!({"condition": "NOT", "rules": []})),
        "host_property_filter.condition",
    );
    invalid(
        &s,
        "POST",
        HOSTS7,
        &hpf(json!({"condition": "AND", "rules": []})),
        "host_property_filter.rules",
    );
    invalid(
        &s,
        "POST",
        HOSTS7,
        &hpf(rule("a", "regex", json!("x"))),
        "host_property_filter.rules[0].operator",
    );
    invalid(
        &s,
        "POST",
        HOSTS7,
        &hpf(rule("_a", "equal", json!("x"))),
        "host_property_filter.rules[0].field",
    );
    for (op, v) in [
        ("equal", json!(null)),
        ("not_equal", json!({"a": 1})),
        ("in", json!("x")),
        ("not_in", json!([1, "1"])),
        ("less", json!("1")),
        ("greater_or_equal", json!(true)),
        ("datetime_less", json!(20260101)),
        ("datetime_greater", json!("soon")),
        ("begins_with", json!("")),
        ("contains", json!(1)),
        ("not_ends_with", json!(null)),
    ] {
        invalid(
            &s,
            "POST",
            HOSTS7,
            &hpf(rule("a", op, v)),
            "host_property_filter.rules[0].value",
        );
    }
    let nested = json!({"condition": "AND", "rules": [
        {"field": "a", "operator": "exist"},
        {"condition": "OR", "rules": [{"field": "b", "operator": "bogus"}]}]});
    invalid(
        &s,
        "POST",
        HOSTS7,
        &hpf(nested),
        "host_property_filter.rules[1].rules[0].operator",
    );
    let deep = json!({"condition": "AND", "rules": [{"condition": "OR",
        "rules": [{"condition": "AND", "rules": [{"field": "a", "operator": "exist"}]}]}]});
    invalid(&s, "POST", HOSTS7, &hpf(deep), "host_property_filter.rules");
    let sets: Vec<i64> = (1..=201).collect();
    invalid(
        &s,
        "POST",
        HOSTS7,
        &with(json!({"bk_set_ids": sets})),
        "bk_set_ids",
    );
    let mods: Vec<i64> = (1..=501).collect();
    invalid(
        &s,
        "POST",
        HOSTS7,
        &with(json!({"bk_module_ids": mods})),
        "bk_module_ids",
    );
    for bad in ["x", "0"] {
        invalid(
            &s,
            "POST",
            &format!("/api/v3/hosts/app/{bad}/list_hosts"),
            &with(json!({})),
            "bk_biz_id",
        );
    }
    let cond = json!([{"field": "bk_set_name", "operator": "$eq", "value": "web"}]);
    invalid(
        &s,
        "POST",
        HOSTS7,
        &with(json!({"bk_set_ids": [3], "set_cond": cond})),
        "bk_set_ids and set_cond can't both be set",
    );
    invalid(
        &s,
        "POST",
        HOSTS7,
        &with(json!({"bk_module_ids": [10], "module_cond": cond})),
        "bk_module_ids and module_cond can't both be set",
    );
    // Shapes Go cannot decode.
    json_error(&s, "POST", HOSTS7, &hpf(json!({"rules": []})));
    json_error(&s, "POST", HOSTS7, &hpf(json!("AND")));
    json_error(&s, "POST", HOSTS7, &with(json!({"bk_set_ids": ["3"]})));
    json_error(&s, "POST", HOSTS7, &with(json!({"fields": "bk_host_id"})));
}

#[test]
fn list_biz_hosts_on_every_route_family() {
    let (s, _td) = server();
    let body = json!({"page": {"limit": 2}, "fields": ["bk_host_id"]});
    let native = ok(&s, "POST", HOSTS7, &body);
    let g = gateway(&s, "POST", HOSTS7, &body);
    assert_eq!(g["data"], native);
    let mut eb = body.clone();
    eb["bk_biz_id"] = json!(7);
    let e = esb(&s, "list_biz_hosts", &eb);
    assert_eq!(
        (e["result"].clone(), e["data"].clone()),
        (json!(true), native)
    );
    let e = esb(&s, "list_biz_hosts", &body);
    assert_eq!(e["code"], json!(1199006));
    assert_eq!(
        e["message"],
        json!("'bk_biz_id' data parameter verification does not pass")
    );
}

// ---------------------------------------------------------------------------------------------
// search_biz_inst_topo, get_biz_internal_module, get_mainline_object_topo

fn node(id: i64, name: &str, obj: &str, obj_name: &str, default: i64, child: Value) -> Value {
    json!({"bk_inst_id": id, "bk_inst_name": name, "bk_obj_id": obj, "bk_obj_name": obj_name,
        "default": default, "child": child})
}

#[test]
fn search_biz_inst_topo() {
    let (s, _td) = server();
    let m = |id: i64, name: &str, d: i64| node(id, name, "module", "Module", d, json!([]));
    let web = node(
        3,
        "web",
        "set",
        "Set",
        0,
        json!([m(10, "nginx", 0), m(11, "php", 0)]),
    );
    let db = node(4, "db", "set", "Set", 0, json!([m(12, "mysql", 0)]));
    let topo = |q: &str, zh: bool| {
        let path = format!("/api/v3/find/topoinst/biz/7{q}");
        if zh {
            ok_zh(&s, "POST", &path, &Value::Null)
        } else {
            ok(&s, "POST", &path, &Value::Null)
        }
    };
    assert_eq!(
        topo("", false),
        json!([node(7, "shop", "biz", "Business", 0, json!([web, db]))])
    );
    // with_default (any non-empty value): the idle set after the others, names translated.
    let idle = node(
        5,
        "idle pool",
        "set",
        "Set",
        1,
        json!([
            m(13, "idle host", 1),
            m(14, "fault host", 2),
            m(15, "recycle host", 3)
        ]),
    );
    let all = json!([node(
        7,
        "shop",
        "biz",
        "Business",
        0,
        json!([web, db, idle])
    )]);
    assert_eq!(topo("?with_default=1", false), all);
    assert_eq!(topo("?with_default=0", false), all);
    assert_eq!(
        topo("?with_default=", false)[0]["child"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let zh = topo("?with_default=true", true);
    assert_eq!(zh[0]["bk_obj_name"], json!("业务"));
    assert_eq!(zh[0]["child"][2]["bk_inst_name"], json!("空闲机池"));
    assert_eq!(
        zh[0]["child"][2]["child"][1]["bk_inst_name"],
        json!("故障机")
    );
    assert_eq!(zh[0]["child"][0]["bk_obj_name"], json!("集群"));
    // need_sort: built-in nodes first, then by name.
    let sorted = topo("?with_default=1&need_sort=true", false);
    let names: Vec<&str> = sorted[0]["child"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["bk_inst_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["idle pool", "db", "web"]);
    // The resource pool and a business created without sets.
    let lab = ok(
        &s,
        "POST",
        "/api/v3/find/topoinst/biz/9?with_default=1",
        &Value::Null,
    );
    assert_eq!(lab[0]["child"][0]["bk_inst_name"], json!("idle pool"));
    assert_eq!(lab[0]["child"][0]["child"].as_array().unwrap().len(), 3);
    let pool = ok(&s, "POST", "/api/v3/find/topoinst/biz/1", &Value::Null);
    assert_eq!(pool[0]["bk_inst_name"], json!("resource pool"));
    assert_eq!(pool[0]["default"], json!(1));
    // Unknown business: an empty list. Non-numeric: the strconv error.
    assert_eq!(
        ok(&s, "POST", "/api/v3/find/topoinst/biz/99", &Value::Null),
        json!([])
    );
    both(
        &s,
        "POST",
        "/api/v3/find/topoinst/biz/x",
        &Value::Null,
        1199998,
        "strconv.ParseInt: parsing \"x\": invalid syntax",
        "strconv.ParseInt: parsing \"x\": invalid syntax",
    );
    // ESB: the business in the body; gateway: as native.
    let e = esb(&s, "search_biz_inst_topo", &json!({"bk_biz_id": 7}));
    assert_eq!(e["data"], topo("", false));
    let g = gateway(
        &s,
        "POST",
        "/api/v3/find/topoinst/biz/7?with_default=1",
        &Value::Null,
    );
    assert_eq!(g["data"], all);
}

#[test]
fn get_biz_internal_module() {
    let (s, _td) = server();
    let get = |biz: &str, zh: bool| {
        call(
            &s,
            "GET",
            &format!("/api/v3/topo/internal/0/{biz}"),
            &Value::Null,
            zh,
        )
    };
    let m = |id: i64, name: &str, d: i64| {
        json!({"bk_module_id": id, "bk_module_name": name, "default": d,
            "host_apply_enabled": false})
    };
    assert_eq!(
        get("7", false),
        ok_native(
            json!({"bk_set_id": 5, "bk_set_name": "idle pool", "module": [
            m(13, "idle host", 1), m(14, "fault host", 2), m(15, "recycle host", 3)]})
        )
    );
    assert_eq!(
        get("7", true)["data"],
        json!({"bk_set_id": 5, "bk_set_name": "空闲机池", "module": [
            m(13, "空闲机", 1), m(14, "故障机", 2), m(15, "待回收", 3)]})
    );
    assert_eq!(
        get("99", false),
        ok_native(json!({"bk_set_id": 0, "bk_set_name": "", "module": null}))
    );
    both(
        &s,
        "GET",
        "/api/v3/topo/internal/0/x",
        &Value::Null,
        1101133,
        "strconv.ParseInt: parsing \"x\": invalid syntax",
        "strconv.ParseInt: parsing \"x\": invalid syntax",
    );
    // ESB: GET with the business in the query string.
    assert_eq!(
        esb_get(
            &s,
            "get_biz_internal_module/?bk_biz_id=7&bk_supplier_account=0"
        )["data"],
        get("7", false)["data"]
    );
}

#[test]
fn get_mainline_object_topo() {
    let (s, _td) = server();
    let o = |id: &str, name: &str, next: &str, next_name: &str, pre: &str, pre_name: &str| {
        json!({"bk_obj_id": id, "bk_obj_name": name, "bk_supplier_account": "0",
            "bk_next_obj": next, "bk_next_name": next_name, "bk_pre_obj_id": pre,
            "bk_pre_obj_name": pre_name})
    };
    let path = "/api/v3/find/topomodelmainline";
    assert_eq!(
        ok(&s, "POST", path, &Value::Null),
        json!([
            o("biz", "Business", "set", "Set", "", ""),
            o("set", "Set", "module", "Module", "biz", "Business"),
            o("module", "Module", "host", "Host", "set", "Set"),
            o("host", "Host", "", "", "module", "Module"),
        ])
    );
    assert_eq!(
        ok_zh(&s, "POST", path, &json!({"ignored": 1}))[3],
        o("host", "主机", "", "", "module", "模块")
    );
    let raw = s.request("POST", path, &NATIVE_EN, b"").body;
    assert!(raw.contains(r#""data":[{"bk_obj_id":"biz","bk_obj_name":"Business","bk_supplier_account":"0","bk_next_obj":"set""#), "{raw}");
    assert_eq!(
        esb(&s, "get_mainline_object_topo", &json!({}))["data"][0]["bk_obj_id"],
        json!("biz")
    );
}

// ---------------------------------------------------------------------------------------------
// search_set, search_module, search_cloud_area

#[test]
fn search_set_and_module() {
    let (s, _td) = server();
    let sets = ok(&s, "POST", "/api/v3/set/search/0/7", &json!({}));
    assert_eq!(sets["count"], json!(3));
    assert_eq!(ids(&sets["info"], "bk_set_id"), [3, 4, 5]);
    assert_eq!(
        sets["info"][0],
        json!({"bk_set_id": 3, "bk_set_name": "web", "bk_biz_id": 7, "bk_parent_id": 7,
            "default": 0, "bk_set_desc": "", "bk_set_env": "1", "bk_service_status": "1",
            "description": "", "bk_capacity": null, "set_template_id": 0, "bk_childid": null,
            "bk_supplier_account": "0", "create_time": T, "last_time": T, "bk_created_at": T,
            "bk_updated_at": T, "bk_created_by": "admin", "bk_updated_by": null})
    );
    assert_eq!(sets["info"][2]["bk_set_name"], json!("idle pool"));
    let zh = ok_zh(&s, "POST", "/api/v3/set/search/0/7", &json!({}));
    assert_eq!(zh["info"][2]["bk_set_name"], json!("空闲机池"));
    let d = ok(
        &s,
        "POST",
        "/api/v3/set/search/0/7",
        &json!({"condition": {"bk_set_env": "3"}, "fields": ["bk_set_name"],
            "page": {"sort": "-bk_set_id"}}),
    );
    assert_eq!(
        d,
        json!({"count": 2, "info": [{"bk_set_name": "idle pool", "default": 1},
            {"bk_set_name": "db", "default": 0}]})
    );
    let d = ok(
        &s,
        "POST",
        "/api/v3/set/search/0/7",
        &json!({"filter": rule("bk_set_name", "equal", json!("db")), "fields": ["bk_set_id"]}),
    );
    assert_eq!(ids(&d["info"], "bk_set_id"), [4]);
    let d = ok(
        &s,
        "POST",
        "/api/v3/set/search/0/7",
        &json!({"page": {"start": 5, "limit": 1}}),
    );
    assert_eq!(d, json!({"count": 3, "info": []}));
    both(
        &s,
        "POST",
        "/api/v3/set/search/0/x",
        &json!({}),
        1199009,
        "'business id' parameters must be integral",
        "'business id' 参数必须是整型",
    );
    invalid_param(
        &s,
        "POST",
        "/api/v3/set/search/0/7",
        &json!({"condition": {}, "filter": rule("a", "exist", Value::Null)}),
        "condition and filter cannot be set at the same time",
    );
    let e = esb(
        &s,
        "search_set",
        &json!({"bk_biz_id": 7, "fields": ["bk_set_id"]}),
    );
    assert_eq!(ids(&e["data"]["info"], "bk_set_id"), [3, 4, 5]);

    // search_module: set 0 in the path = every module of the business.
    let mods = |path: &str, body: Value| ids(&ok(&s, "POST", path, &body)["info"], "bk_module_id");
    assert_eq!(
        mods("/api/v3/module/search/0/7/0", json!({})),
        [10, 11, 12, 13, 14, 15]
    );
    assert_eq!(mods("/api/v3/module/search/0/7/3", json!({})), [10, 11]);
    assert_eq!(
        mods("/api/v3/module/search/0/7/3", json!({"bk_set_id": 4})),
        [12]
    );
    assert_eq!(
        mods(
            "/api/v3/module/search/0/7/0",
            json!({"condition": {"service_template_id": 5}})
        ),
        [11]
    );
    assert_eq!(
        mods("/api/v3/module/search/0/8/3", json!({})),
        Vec::<i64>::new()
    );
    let d = ok(
        &s,
        "POST",
        "/api/v3/module/search/0/7/5",
        &json!({"fields": ["bk_module_name"], "page": {"sort": "-default", "limit": 2}}),
    );
    assert_eq!(
        d,
        json!({"count": 3, "info": [{"bk_module_name": "recycle host", "default": 3},
            {"bk_module_name": "fault host", "default": 2}]})
    );
    let whole = ok(&s, "POST", "/api/v3/module/search/0/7/3", &json!({}));
    assert_eq!(
        whole["info"][1],
        json!({"bk_module_id": 11, "bk_module_name": "php", "bk_biz_id": 7, "bk_set_id": 3,
            "bk_parent_id": 3, "default": 0, "service_template_id": 5, "service_category_id": 2,
            "set_template_id": 0, "bk_module_type": "1", "operator": null,
            "bk_bak_operator": null, "host_apply_enabled": false, "bk_supplier_account": "0",
            "create_time": T, "last_time": T, "bk_created_at": T, "bk_updated_at": T,
            "bk_created_by": "admin", "bk_updated_by": null})
    );
    for (path, what) in [
        ("/api/v3/module/search/0/x/3", "bk_biz_id"),
        ("/api/v3/module/search/0/7/y", "bk_set_id"),
    ] {
        both(
            &s,
            "POST",
            path,
            &json!({}),
            1199009,
            &format!("'{what}' parameters must be integral"),
            &format!("'{what}' 参数必须是整型"),
        );
    }
}

#[test]
fn search_cloud_area() {
    let (s, _td) = server();
    let path = "/api/v3/findmany/cloudarea";
    let d = ok(&s, "POST", path, &json!({}));
    // Newest first (create_time descending).
    assert_eq!(d["count"], json!(2));
    assert_eq!(ids(&d["info"], "bk_cloud_id"), [5, 0]);
    assert_eq!(
        d["info"][0],
        json!({"bk_cloud_id": 5, "bk_cloud_name": "edge", "bk_status": "1",
            "bk_status_detail": "", "bk_cloud_vendor": "", "bk_vpc_id": "", "bk_vpc_name": "",
            "bk_region": "sh", "bk_account_id": 0, "bk_supplier_account": "0", "default": 0,
            "bk_creator": "admin", "bk_last_editor": "admin",
            "create_time": "2026-02-01T00:00:00.000Z", "last_time": T, "bk_created_at": T,
            "bk_updated_at": T, "bk_created_by": "admin"})
    );
    let names = |body: Value| ids(&ok(&s, "POST", path, &body)["info"], "bk_cloud_id");
    assert_eq!(names(json!({"condition": {"bk_cloud_name": "edge"}})), [5]);
    assert_eq!(
        names(json!({"condition": {"bk_cloud_name": "ED"}})),
        Vec::<i64>::new()
    );
    assert_eq!(
        names(json!({"condition": {"bk_cloud_name": "ED"}, "is_fuzzy": true})),
        [5]
    );
    assert_eq!(names(json!({"page": {"sort": "bk_cloud_id"}})), [0, 5]);
    assert_eq!(names(json!({"page": {"start": 1, "limit": 0}})), [0]);
    let d = ok(
        &s,
        "POST",
        path,
        &json!({"fields": ["bk_cloud_name"], "page": {"limit": 999999999}}),
    );
    assert_eq!(
        d["info"],
        json!([{"bk_cloud_name": "edge"}, {"bk_cloud_name": "Default Area"}])
    );
    for page in [json!({"start": -1}), json!({"limit": 1001})] {
        invalid(&s, "POST", path, &json!({"page": page}), "%s");
    }
    assert_eq!(
        esb(&s, "search_cloud_area", &json!({}))["data"],
        ok(&s, "POST", path, &json!({}))
    );
}

// ---------------------------------------------------------------------------------------------
// find_set_batch, find_module_batch, find_module_with_relation, find_topo_node_paths

#[test]
fn batch_reads() {
    let (s, _td) = server();
    let d = ok(
        &s,
        "POST",
        "/api/v3/findmany/set/bk_biz_id/7",
        &json!({"bk_ids": [5, 3, 3, 6, 99], "fields": ["bk_set_name"]}),
    );
    assert_eq!(
        d,
        json!([{"bk_set_name": "web", "default": 0}, {"bk_set_name": "idle pool", "default": 1}])
    );
    let d = ok(
        &s,
        "POST",
        "/api/v3/findmany/module/bk_biz_id/7",
        &json!({"bk_ids": [16, 12, 13], "fields": ["bk_module_id", "bk_module_name"]}),
    );
    assert_eq!(
        d,
        json!([{"bk_module_id": 12, "bk_module_name": "mysql", "default": 0},
            {"bk_module_id": 13, "bk_module_name": "idle host", "default": 1}])
    );
    for what in ["set", "module"] {
        let path = format!("/api/v3/findmany/{what}/bk_biz_id/7");
        let too_many: Vec<i64> = (1..=501).collect();
        for ids in [json!([]), json!(too_many)] {
            both(
                &s,
                "POST",
                &path,
                &json!({"bk_ids": ids, "fields": ["a"]}),
                1199089,
                "the length of array bk_ids is wrong, the length must be in range 1~500",
                "bk_ids数组长度错误，数组长度必须在1~500之间",
            );
        }
        invalid(&s, "POST", &path, &json!({"bk_ids": [1]}), "fields");
    }
    both(
        &s,
        "POST",
        "/api/v3/findmany/set/bk_biz_id/x",
        &json!({"bk_ids": [1], "fields": ["a"]}),
        1199998,
        "strconv.ParseInt: parsing \"x\": invalid syntax",
        "strconv.ParseInt: parsing \"x\": invalid syntax",
    );
    invalid(
        &s,
        "POST",
        "/api/v3/findmany/module/bk_biz_id/x",
        &json!({"bk_ids": [1], "fields": ["a"]}),
        "bk_biz_id",
    );
    let e = esb(
        &s,
        "find_module_batch",
        &json!({"bk_biz_id": 7, "bk_ids": [10], "fields": ["bk_module_name"]}),
    );
    assert_eq!(
        e["data"],
        json!([{"bk_module_name": "nginx", "default": 0}])
    );

    // find_module_with_relation.
    let path = "/api/v3/findmany/module/with_relation/biz/7";
    let d = ok(
        &s,
        "POST",
        path,
        &json!({"bk_set_ids": [3, 4], "fields": ["bk_module_id"]}),
    );
    assert_eq!(
        (d["count"].clone(), ids(&d["info"], "bk_module_id")),
        (json!(3), vec![10, 11, 12])
    );
    let d = ok(
        &s,
        "POST",
        path,
        &json!({"bk_service_template_ids": [5], "fields": ["bk_module_id"], "page": {"limit": 0}}),
    );
    assert_eq!(ids(&d["info"], "bk_module_id"), [11]);
    unassigned(&s, "POST", path, &json!({}), "fields");
    let sets: Vec<i64> = (1..=201).collect();
    both(
        &s,
        "POST",
        path,
        &json!({"fields": ["a"], "bk_set_ids": sets}),
        1199015,
        "Data out of bounds%!(EXTRA string=the number of bk_set_ids)",
        "'the number of bk_set_ids' 数据越界",
    );
    both(
        &s,
        "POST",
        path,
        &json!({"fields": ["a"], "page": {"limit": 501}}),
        1199015,
        "Data out of bounds%!(EXTRA string=page)",
        "'page' 数据越界",
    );
}

#[test]
fn find_topo_node_paths() {
    let (s, _td) = server();
    let path = "/api/v3/cache/find/cache/topo/node_path/biz/7";
    let d = ok(
        &s,
        "POST",
        path,
        &json!({"bk_nodes": [{"bk_obj_id": "module", "bk_inst_id": 13},
            {"bk_obj_id": "set", "bk_inst_id": 4}, {"bk_obj_id": "module", "bk_inst_id": 16}]}),
    );
    assert_eq!(
        d,
        json!([
            {"bk_obj_id": "module", "bk_inst_id": 13, "bk_inst_name": "空闲机", "bk_paths": [[
                {"bk_obj_id": "biz", "bk_inst_id": 7, "bk_inst_name": "shop"},
                {"bk_obj_id": "set", "bk_inst_id": 5, "bk_inst_name": "空闲机池"}]]},
            {"bk_obj_id": "set", "bk_inst_id": 4, "bk_inst_name": "db", "bk_paths": [[
                {"bk_obj_id": "biz", "bk_inst_id": 7, "bk_inst_name": "shop"}]]},
        ])
    );
    let node = |o: &str, id: i64| json!({"bk_nodes": [{"bk_obj_id": o, "bk_inst_id": id}]});
    for (body, code, text) in [
        (node("biz", 7), 1199011, "not support biz"),
        (node("", 7), 1199011, "object or inst id"),
        (node("set", 0), 1199011, "object or inst id"),
        (node("rack", 1), 1199011, "object"),
        (node("host", 11), 1199006, "host"),
    ] {
        both(&s, "POST", path, &body, code, text, text);
    }
    invalid_param(
        &s,
        "POST",
        "/api/v3/cache/find/cache/topo/node_path/biz/0",
        &node("set", 4),
        "%s",
    );
}

// ---------------------------------------------------------------------------------------------
// list_biz_hosts_topo, list_hosts_without_biz, relations, get_host_base_info

#[test]
fn list_biz_hosts_topo() {
    let (s, _td) = server();
    let path = "/api/v3/hosts/app/7/list_hosts_topo";
    let d = ok(&s, "POST", path, &json!({"page": {"limit": 2}}));
    let m = |id: i64, name: &str| json!({"bk_module_id": id, "bk_module_name": name});
    assert_eq!(
        d,
        json!({"count": 5, "info": [
            {"host": {"bk_host_id": 11}, "topo": [
                {"bk_set_id": 3, "bk_set_name": "web", "module": [m(10, "nginx")]}]},
            {"host": {"bk_host_id": 12}, "topo": [
                {"bk_set_id": 3, "bk_set_name": "web", "module": [m(10, "nginx"), m(11, "php")]}]},
        ]})
    );
    let d = ok(
        &s,
        "POST",
        path,
        &json!({"page": {"limit": 10}, "fields": ["bk_host_name"],
            "set_property_filter": rule("bk_set_name", "in", json!(["db", "空闲机池"]))}),
    );
    assert_eq!(
        d["info"],
        json!([
            {"host": {"bk_host_id": 14, "bk_host_name": "db-14"}, "topo": [
                {"bk_set_id": 4, "bk_set_name": "db", "module": [m(12, "mysql")]}]},
            {"host": {"bk_host_id": 15, "bk_host_name": "idle-15"}, "topo": [
                {"bk_set_id": 5, "bk_set_name": "idle pool", "module": [m(13, "idle host")]}]},
        ])
    );
    let d = ok(
        &s,
        "POST",
        path,
        &json!({"page": {"limit": 10},
            "module_property_filter": rule("bk_module_name", "equal", json!("php")),
            "host_property_filter": rule("bk_cpu", "greater", json!(1))}),
    );
    assert_eq!(d["count"], json!(1));
    let d = ok(
        &s,
        "POST",
        path,
        &json!({"page": {"limit": 10},
            "module_property_filter": rule("bk_module_name", "equal", json!("none"))}),
    );
    assert_eq!(d, json!({"count": 0, "info": []}));
    invalid(
        &s,
        "POST",
        "/api/v3/hosts/app/x/list_hosts_topo",
        &json!("not json"),
        "bk_biz_id",
    );
    unassigned(&s, "POST", path, &json!({}), "page.limit");
    exceed_limit(
        &s,
        "POST",
        path,
        &json!({"page": {"limit": 501}}),
        "page.limit",
        500,
    );
    for name in [
        "set_property_filter",
        "module_property_filter",
        "host_property_filter",
    ] {
        invalid(
            &s,
            "POST",
            path,
            &json!({"page": {"limit": 1}, name: rule("a", "bogus", json!(1))}),
            &format!("{name}.rules[0].operator"),
        );
        let deep = json!({"condition": "AND", "rules": [{"condition": "OR",
            "rules": [{"condition": "AND", "rules": [{"field": "a", "operator": "exist"}]}]}]});
        both(
            &s,
            "POST",
            path,
            &json!({"page": {"limit": 1}, name: deep}),
            1199035,
            &format!(" {name}.rules exceed the limit 3"),
            &format!(" {name}.rules 超过限制 3"),
        );
    }
    let e = esb(
        &s,
        "list_biz_hosts_topo",
        &json!({"bk_biz_id": 7, "page": {"limit": 2}}),
    );
    assert_eq!(e["data"]["count"], json!(5));
}

#[test]
fn list_hosts_without_biz() {
    let (s, _td) = server();
    let path = "/api/v3/hosts/list_hosts_without_app";
    let d = ok(
        &s,
        "POST",
        path,
        &json!({"fields": ["bk_host_id"], "page": {"limit": 3}}),
    );
    assert_eq!(
        (d["count"].clone(), ids(&d["info"], "bk_host_id")),
        (json!(7), vec![11, 12, 13])
    );
    let d = ok(
        &s,
        "POST",
        path,
        &json!({"fields": ["bk_host_id"], "page": {"limit": 0}}),
    );
    assert_eq!(ids(&d["info"], "bk_host_id"), [11, 12, 13, 14, 15, 16, 17]);
    let d = ok(
        &s,
        "POST",
        path,
        &json!({"fields": ["bk_host_id"], "page": {"limit": 10, "sort": "-bk_host_id"},
            "host_property_filter": rule("bk_host_innerip", "begins_with", json!("10.0.[12]"))}),
    );
    assert_eq!(ids(&d["info"], "bk_host_id"), [17, 16]);
    invalid(
        &s,
        "POST",
        path,
        &json!({"page": {"limit": 1001}}),
        "page.limit",
    );
    invalid(
        &s,
        "POST",
        path,
        &json!({"page": {"limit": 1}, "host_property_filter": rule("a", "in", json!(1))}),
        "host_property_filter.rules[0].value",
    );
}

#[test]
fn host_relations() {
    let (s, _td) = server();
    let rel = |biz: i64, host: i64, module: i64, set: i64| {
        json!({"bk_biz_id": biz, "bk_host_id": host, "bk_module_id": module, "bk_set_id": set,
            "bk_supplier_account": "0"})
    };
    let path = "/api/v3/host/topo/relation/read";
    let d = ok(
        &s,
        "POST",
        path,
        &json!({"bk_biz_id": 7, "bk_set_ids": [3], "page": {"limit": 10}}),
    );
    assert_eq!(
        d,
        json!({"count": 4, "data": [rel(7, 11, 10, 3), rel(7, 12, 10, 3), rel(7, 12, 11, 3),
            rel(7, 13, 10, 3)], "page": {"limit": 10, "start": 0}})
    );
    let d = ok(
        &s,
        "POST",
        path,
        &json!({"bk_host_ids": [12, 16], "page": {"start": 1, "limit": 1, "sort": "x"}}),
    );
    assert_eq!(
        d,
        json!({"count": 3, "data": [rel(7, 12, 11, 3)],
            "page": {"limit": 1, "start": 1, "sort": "x"}})
    );
    let d = ok(
        &s,
        "POST",
        path,
        &json!({"bk_module_ids": [12], "page": {"limit": 999999999}}),
    );
    assert_eq!(d["data"], json!([rel(7, 14, 12, 4)]));
    both(
        &s,
        "POST",
        path,
        &json!({"page": {"limit": 1}}),
        1199005,
        "The input is empty",
        "输入内容为空",
    );
    for page in [
        json!({"limit": 0}),
        json!({"limit": 1001}),
        json!({"start": -1, "limit": 1}),
    ] {
        both(
            &s,
            "POST",
            path,
            &json!({"bk_biz_id": 7, "page": page}),
            1199059,
            "page limit is exceeded. suggestion 200",
            "分页查询数量超过限制的最大值, 建议值200",
        );
    }
    let over: Vec<i64> = (1..=501).collect();
    for (key, n) in [
        ("bk_set_ids", 200),
        ("bk_module_ids", 500),
        ("bk_host_ids", 500),
    ] {
        let list: Vec<i64> = over.iter().copied().take(n + 1).collect();
        both(
            &s,
            "POST",
            path,
            &json!({key: list, "page": {"limit": 1}}),
            1199035,
            &format!(" {key} exceed the limit {n}"),
            &format!(" {key} 超过限制 {n}"),
        );
    }

    // find_host_biz_relations.
    let path = "/api/v3/hosts/modules/read";
    let d = ok(&s, "POST", path, &json!({"bk_host_id": [12, 16, 99]}));
    assert_eq!(
        d,
        json!([rel(7, 12, 10, 3), rel(7, 12, 11, 3), rel(8, 16, 16, 6)])
    );
    let d = ok(
        &s,
        "POST",
        path,
        &json!({"bk_biz_id": 8, "bk_host_id": [12, 16]}),
    );
    assert_eq!(d, json!([rel(8, 16, 16, 6)]));
    for hosts in [json!([]), json!((1..=501).collect::<Vec<i64>>())] {
        both(
            &s,
            "POST",
            path,
            &json!({"bk_host_id": hosts}),
            1199089,
            "the length of array bk_host_id is wrong, the length must be in range 1~500",
            "bk_host_id数组长度错误，数组长度必须在1~500之间",
        );
    }
    assert_eq!(
        esb(&s, "find_host_biz_relations", &json!({"bk_host_id": [17]}))["data"],
        json!([rel(1, 17, 1, 2)])
    );
}

#[test]
fn get_host_base_info() {
    let (s, _td) = server();
    let d = call(&s, "GET", "/api/v3/hosts/0/13", &Value::Null, false);
    let rows = d["data"].as_array().unwrap();
    assert_eq!(
        rows[0],
        json!({"bk_property_id": "bk_host_innerip", "bk_property_name": "Inner IPv4",
            "bk_property_value": ""})
    );
    let find = |rows: &[Value], id: &str| {
        rows.iter()
            .find(|r| r["bk_property_id"] == json!(id))
            .cloned()
    };
    assert_eq!(
        find(rows, "bk_host_innerip_v6").unwrap()["bk_property_value"],
        json!("fd00::13")
    );
    assert_eq!(
        find(rows, "bk_cloud_id").unwrap()["bk_property_value"],
        json!(5)
    );
    assert_eq!(
        find(rows, "bk_cpu_architecture").unwrap()["bk_property_value"],
        json!("x86")
    );
    assert_eq!(
        find(rows, "bk_updated_by").unwrap()["bk_property_value"],
        Value::Null
    );
    assert!(
        find(rows, "rack").is_none(),
        "only the attributes of the model"
    );
    let zh = call(&s, "GET", "/api/v3/hosts/0/13", &Value::Null, true);
    assert_eq!(zh["data"][0]["bk_property_name"], json!("内网IPv4"));
    both(
        &s,
        "GET",
        "/api/v3/hosts/0/99",
        &Value::Null,
        1110008,
        "The host could not be found",
        "主机找不到",
    );
    both(
        &s,
        "GET",
        "/api/v3/hosts/0/x",
        &Value::Null,
        1199009,
        "'bk_host_id' parameters must be integral",
        "'bk_host_id' 参数必须是整型",
    );
    assert_eq!(
        esb_get(&s, "get_host_base_info/?bk_host_id=13")["data"],
        d["data"]
    );
}

// ---------------------------------------------------------------------------------------------
// find_host_by_service_template

#[test]
fn find_host_by_service_template() {
    let (s, _td) = server();
    let path = "/api/v3/findmany/hosts/by_service_templates/biz/7";
    let body = |extra: Value| {
        let mut b = json!({"bk_service_template_ids": [5], "fields": ["bk_host_id", "bk_host_name"],
            "page": {"limit": 10}});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    assert_eq!(
        ok(&s, "POST", path, &body(json!({}))),
        json!({"count": 1, "info": [{"bk_host_id": 12, "bk_host_name": "Web-12"}]})
    );
    assert_eq!(
        ok(&s, "POST", path, &body(json!({"bk_module_ids": [10]}))),
        json!({"count": 0, "info": null})
    );
    assert_eq!(
        ok(
            &s,
            "POST",
            path,
            &body(json!({"bk_service_template_ids": [99]}))
        ),
        json!({"count": 0, "info": null})
    );
    assert_eq!(
        ok(
            &s,
            "POST",
            path,
            &body(json!({"page": {"start": 1, "limit": 10}}))
        ),
        json!({"count": 1, "info": null})
    );
    assert_eq!(
        ok(
            &s,
            "POST",
            "/api/v3/findmany/hosts/by_service_templates/biz/8",
            &body(json!({}))
        ),
        json!({"count": 0, "info": null})
    );
    let over: Vec<i64> = (1..=501).collect();
    for (extra, key) in [
        (
            json!({"bk_service_template_ids": []}),
            "bk_service_template_ids",
        ),
        (
            json!({"bk_service_template_ids": over}),
            "bk_service_template_ids",
        ),
        (json!({"bk_module_ids": over}), "bk_module_ids"),
    ] {
        both(
            &s,
            "POST",
            path,
            &body(extra),
            1199089,
            &format!("the length of array {key} is wrong, the length must be in range 1~500"),
            &format!("{key}数组长度错误，数组长度必须在1~500之间"),
        );
    }
    invalid(&s, "POST", path, &body(json!({"fields": []})), "fields");
    for limit in [0, 1001, 999999999] {
        invalid(
            &s,
            "POST",
            path,
            &body(json!({"page": {"limit": limit}})),
            "page.limit",
        );
    }
    for biz in ["x", "0"] {
        invalid(
            &s,
            "POST",
            &format!("/api/v3/findmany/hosts/by_service_templates/biz/{biz}"),
            &body(json!({})),
            "bk_biz_id",
        );
    }
    let mut eb = body(json!({}));
    eb["bk_biz_id"] = json!(7);
    assert_eq!(
        esb(&s, "find_host_by_service_template", &eb)["data"],
        ok(&s, "POST", path, &body(json!({})))
    );
}

// ---------------------------------------------------------------------------------------------
// list_process_related_info

pub(crate) const PRI: &str = "/api/v3/findmany/proc/process_related_info/biz/7";

fn pids(s: &Server, body: Value) -> (i64, Vec<i64>) {
    let d = ok(s, "POST", PRI, &body);
    let list: Vec<i64> = d["info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["process"]["bk_process_id"].as_i64().unwrap())
        .collect();
    (d["count"].as_i64().unwrap(), list)
}

#[test]
fn list_process_related_info() {
    let (s, _td) = server();
    let d = ok(
        &s,
        "POST",
        PRI,
        &json!({"fields": ["bk_process_name"], "page": {"limit": 1}}),
    );
    assert_eq!(
        d,
        json!({"count": 3, "info": [{
            "set": {"bk_set_id": 3, "bk_set_name": "web", "bk_set_env": "1"},
            "module": {"bk_module_id": 10, "bk_module_name": "nginx"},
            "host": {"bk_host_id": 11, "bk_cloud_id": 0, "bk_host_innerip": "10.0.0.11",
                "bk_host_innerip_v6": "", "bk_addressing": "static", "bk_agent_id": ""},
            "service_instance": {"id": 31, "name": "10.0.0.11_nginx_80"},
            "process_template": {"id": 0},
            "process": {"bk_process_id": 40, "bk_process_name": "nginx"}}]})
    );
    // Field order is bk-cmdb's struct order.
    let raw = s.native_text(PRI, br#"{"fields":["bk_func_name"],"page":{"limit":1}}"#);
    assert!(
        raw.contains(r#""info":[{"set":{"bk_set_id":3,"bk_set_name":"web","bk_set_env":"1"},"module":{"bk_module_id":10,"#),
        "{raw}"
    );
    // No fields: the whole stored process.
    let d = ok(&s, "POST", PRI, &json!({"page": {"limit": 1}}));
    assert_eq!(d["info"][0]["process"]["bind_info"][0]["port"], json!("80"));
    assert_eq!(d["info"][0]["process"]["bk_func_name"], json!("nginx"));
    // Every filter key, alone and together.
    let lim = json!({"limit": 10});
    assert_eq!(pids(&s, json!({"page": lim})), (3, vec![40, 41, 42]));
    assert_eq!(
        pids(&s, json!({"page": lim, "set": {"bk_set_ids": [3]}})),
        (3, vec![40, 41, 42])
    );
    assert_eq!(
        pids(&s, json!({"page": lim, "set": {"bk_set_ids": [4]}})),
        (0, vec![])
    );
    assert_eq!(
        pids(&s, json!({"page": lim, "set": {"bk_set_ids": [6]}})),
        (0, vec![])
    );
    assert_eq!(
        pids(&s, json!({"page": lim, "module": {"bk_module_ids": [11]}})),
        (1, vec![42])
    );
    assert_eq!(
        pids(
            &s,
            json!({"page": lim, "set": {"bk_set_ids": [3]}, "module": {"bk_module_ids": [10]}})
        ),
        (2, vec![40, 41])
    );
    assert_eq!(
        pids(
            &s,
            json!({"page": lim, "service_instance": {"ids": [30, 32]}})
        ),
        (1, vec![42])
    );
    assert_eq!(
        pids(
            &s,
            json!({"page": lim, "module": {"bk_module_ids": [10]},
            "service_instance": {"ids": [30]}})
        ),
        (0, vec![])
    );
    let pf = |f: Value| pids(&s, json!({"page": lim, "process_property_filter": f}));
    assert_eq!(pf(rule("bk_process_id", "equal", json!(41))), (1, vec![41]));
    assert_eq!(
        pf(rule("bk_process_name", "begins_with", json!("nginx"))),
        (2, vec![40, 41])
    );
    assert_eq!(
        pf(rule("bk_process_name", "in", json!(["php-fpm", "api"]))),
        (1, vec![42])
    );
    // No wildcard: "*" is a literal name.
    assert_eq!(
        pf(rule("bk_process_name", "equal", json!("*"))),
        (0, vec![])
    );
    // The old "process" key is ignored.
    assert_eq!(
        pids(
            &s,
            json!({"page": lim, "process": {"bk_process_names": ["php-fpm"]}})
        ),
        (3, vec![40, 41, 42])
    );
    // Paging and sorting.
    assert_eq!(
        pids(&s, json!({"page": {"limit": 999999999}})),
        (3, vec![40, 41, 42])
    );
    assert_eq!(
        pids(&s, json!({"page": {"start": 2, "limit": 5}})),
        (3, vec![42])
    );
    assert_eq!(
        pids(&s, json!({"page": {"start": 5, "limit": 5}})),
        (3, vec![])
    );
    assert_eq!(
        pids(&s, json!({"page": {"limit": 5, "sort": "-bk_process_id"}})),
        (3, vec![42, 41, 40])
    );
    assert_eq!(
        pids(&s, json!({"page": {"limit": 5, "sort": "bk_process_name"}})),
        (3, vec![40, 41, 42])
    );
    // Another business.
    let d = ok(
        &s,
        "POST",
        "/api/v3/findmany/proc/process_related_info/biz/8",
        &json!({"fields": ["bk_process_name"], "page": lim}),
    );
    assert_eq!(
        d["info"][0]["set"],
        json!({"bk_set_id": 6, "bk_set_name": "core", "bk_set_env": "3"})
    );
    assert_eq!(
        d["info"][0]["process"],
        json!({"bk_process_id": 43, "bk_process_name": "api"})
    );
    // Built-in names in English and Chinese.
    let e = esb(
        &s,
        "list_process_related_info",
        &json!({"bk_biz_id": 7, "page": lim, "fields": ["bk_process_id"]}),
    );
    assert_eq!(e["data"]["count"], json!(3));
}

#[test]
fn list_process_related_info_refusals() {
    let (s, _td) = server();
    invalid_param(
        &s,
        "POST",
        "/api/v3/findmany/proc/process_related_info/biz/x",
        &json!({"page": {"limit": 1}}),
        "bk_biz_id",
    );
    for limit in [0, -1, 1001] {
        invalid(
            &s,
            "POST",
            PRI,
            &json!({"page": {"limit": limit}}),
            "page.limit",
        );
    }
    invalid(
        &s,
        "POST",
        PRI,
        &json!({"page": {"start": -1, "limit": 1}}),
        "page.limit",
    );
    let f = |filter: Value| json!({"page": {"limit": 1}, "process_property_filter": filter});
    for (filter, text) in [
        (
            json!({"field": "a", "operator": "equal", "value": 1}),
            "query filter must be combined rules, host_property_filter.",
        ),
        (
            json!({"condition": "XOR", "rules": [{"field": "a", "operator": "exist"}]}),
            "unexpected condition: XOR, host_property_filter.condition",
        ),
        (
            json!({"condition": "AND", "rules": []}),
            "combined rules shouldn't be empty, host_property_filter.rules",
        ),
        (
            rule("a", "like", json!(1)),
            "unsupported operator: like, host_property_filter.rules[0].operator",
        ),
        (
            rule("a b", "equal", json!(1)),
            "invalid field: a b, host_property_filter.rules[0].field",
        ),
        (
            rule("a", "contains", json!("")),
            "value shouldn't be empty, host_property_filter.rules[0].value",
        ),
        (
            rule("a", "in", json!([1, "x"])),
            "slice element type not unique, types: [numeric string], host_property_filter.rules[0].value",
        ),
        (
            rule("a", "in", json!("x")),
            "unexpected value type: string, expect array, host_property_filter.rules[0].value",
        ),
        (
            rule("a", "equal", json!([1])),
            "unknow value type: []interface {} with value: [1], host_property_filter.rules[0].value",
        ),
        (
            json!({"condition": "AND", "rules": [{"condition": "OR", "rules": [
                {"condition": "AND", "rules": [{"field": "a", "operator": "exist"}]}]}]}),
            "exceed max query condition deepth: 3, host_property_filter.rules",
        ),
    ] {
        invalid(&s, "POST", PRI, &f(filter), text);
    }
    json_error(&s, "POST", PRI, &json!({"set": {"bk_set_ids": "3"}}));
    json_error(&s, "POST", PRI, &json!({"service_instance": [1]}));
    json_error(&s, "POST", PRI, &f(json!({"x": 1})));
}

// ---------------------------------------------------------------------------------------------
// search_object_attribute

#[test]
fn search_object_attribute() {
    let (s, _td) = server();
    let path = "/api/v3/find/objectattr";
    let attrs = |body: Value| -> Vec<String> {
        ok(&s, "POST", path, &body)
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["bk_property_id"].as_str().unwrap().to_string())
            .collect()
    };
    for obj in ["biz", "set", "module", "host", "process"] {
        let got = attrs(json!({"bk_obj_id": obj}));
        assert!(got.len() >= 8, "{obj}: {got:?}");
        for id in ["bk_created_at", "bk_updated_by"] {
            assert!(got.iter().any(|g| g == id), "{obj} has {id}");
        }
    }
    let set = attrs(json!({"bk_obj_id": "set"}));
    assert!(set.contains(&"bk_set_env".to_string()));
    assert!(
        !set.contains(&"bk_biz_id".to_string()),
        "system attributes are not served"
    );
    // The business condition keeps the global attributes; auth keys and page are no conditions.
    assert_eq!(
        attrs(
            json!({"bk_obj_id": "set", "bk_biz_id": 7, "page": {"limit": 1},
            "bk_app_code": "app", "bk_username": "u"})
        ),
        set
    );
    assert_eq!(
        attrs(json!({"bk_obj_id": "set", "fields": ["x"]})),
        Vec::<String>::new()
    );
    let env = ok(
        &s,
        "POST",
        path,
        &json!({"bk_obj_id": "set", "bk_property_id": "bk_set_env"}),
    );
    let env = &env[0];
    assert_eq!(env["bk_property_name"], json!("Environment"));
    assert_eq!(env["bk_property_type"], json!("enum"));
    assert_eq!(env["default"], json!("3"));
    assert_eq!(
        env["option"][2],
        json!({"id": "3", "name": "Formal", "type": "text", "is_default": true})
    );
    let zh = ok_zh(
        &s,
        "POST",
        path,
        &json!({"bk_obj_id": "set", "bk_property_id": "bk_set_env"}),
    );
    assert_eq!(zh[0]["bk_property_name"], json!("环境类型"));
    assert_eq!(zh[0]["option"][2]["name"], json!("正式"));
    let raw = s.native_text(path, br#"{"bk_obj_id":"host","bk_property_id":"bk_cpu"}"#);
    assert!(
        raw.contains(r#""data":[{"bk_biz_id":0,"id":"#)
            && raw.contains(r#""bk_supplier_account":"0","bk_obj_id":"host","bk_property_id":"bk_cpu","bk_property_name":"CPU number","bk_property_group":"default","bk_property_group_name":"Default","#),
        "{raw}"
    );
    let p = ok_zh(
        &s,
        "POST",
        path,
        &json!({"bk_obj_id": "process", "bk_property_id": "bk_func_name"}),
    );
    assert_eq!(p[0]["bk_property_name"], json!("进程名称"));
    assert_eq!(
        esb(
            &s,
            "search_object_attribute",
            &json!({"bk_obj_id": "module", "bk_app_code": "x"})
        )["data"]
            .as_array()
            .unwrap()
            .len(),
        attrs(json!({"bk_obj_id": "module"})).len()
    );
}

// ---------------------------------------------------------------------------------------------
// Every read above, through the API gateway and the ESB as well as natively

/// Calls `native` (a POST) natively, through the gateway and through the ESB component `name`
/// (whose body also carries the path's parameters, `esb_extra`); the three answers carry the
/// same data in their own envelope. Returns the data.
fn same_on_every_family(
    s: &Server,
    native: &str,
    name: &str,
    body: &Value,
    esb_extra: &Value,
) -> Value {
    let data = ok(s, "POST", native, body);
    let g = gateway(s, "POST", native, body);
    assert_eq!(g, ok_esb(data.clone()), "gateway {native}");
    let mut eb = body.clone();
    for (k, v) in esb_extra.as_object().unwrap() {
        eb[k] = v.clone();
    }
    let e = esb(s, name, &eb);
    assert_eq!(
        e,
        json!({"result": true, "code": 0, "message": "success", "permission": null,
            "request_id": e["request_id"].clone(), "data": data.clone()}),
        "esb {name}"
    );
    assert!(e["request_id"].is_string(), "{e}");
    data
}

#[test]
fn more_reads_on_every_route_family() {
    let (s, _td) = server();
    let d = same_on_every_family(
        &s,
        "/api/v3/module/search/0/7/3",
        "search_module",
        &json!({"fields": ["bk_module_id", "bk_module_name"], "condition": {}}),
        &json!({"bk_supplier_account": "0", "bk_biz_id": 7, "bk_set_id": 3}),
    );
    assert_eq!(ids(&d["info"], "bk_module_id"), [10, 11]);
    let d = same_on_every_family(
        &s,
        "/api/v3/findmany/module/with_relation/biz/7",
        "find_module_with_relation",
        &json!({"bk_set_ids": [3, 4], "fields": ["bk_module_id"], "page": {"limit": 10}}),
        &json!({"bk_biz_id": 7}),
    );
    assert_eq!(ids(&d["info"], "bk_module_id"), [10, 11, 12]);
    let d = same_on_every_family(
        &s,
        "/api/v3/cache/find/cache/topo/node_path/biz/7",
        "find_topo_node_paths",
        &json!({"bk_nodes": [{"bk_obj_id": "set", "bk_inst_id": 4}]}),
        &json!({"bk_biz_id": 7}),
    );
    assert_eq!(d[0]["bk_inst_name"], json!("db"));
    let d = same_on_every_family(
        &s,
        "/api/v3/host/topo/relation/read",
        "find_host_topo_relation",
        &json!({"bk_biz_id": 7, "bk_module_ids": [12], "page": {"limit": 10}}),
        &json!({}),
    );
    assert_eq!(ids(&d["data"], "bk_host_id"), [14]);
    let d = same_on_every_family(
        &s,
        "/api/v3/hosts/list_hosts_without_app",
        "list_hosts_without_biz",
        &json!({"fields": ["bk_host_id"], "page": {"start": 5, "limit": 5}}),
        &json!({}),
    );
    assert_eq!(ids(&d["info"], "bk_host_id"), [16, 17]);
    let d = same_on_every_family(
        &s,
        "/api/v3/findmany/set/bk_biz_id/7",
        "find_set_batch",
        &json!({"bk_ids": [4, 3], "fields": ["bk_set_id"]}),
        &json!({"bk_biz_id": 7}),
    );
    assert_eq!(ids(&d, "bk_set_id"), [3, 4]);
}

// ---------------------------------------------------------------------------------------------
// Sorting every list by each of its fields, both ways

/// MongoDB's order for the values these records hold: null (or missing) before numbers before
/// strings; numbers by value, strings by bytes.
fn mongo_cmp(a: &Value, b: &Value) -> std::cmp::Ordering {
    let rank = |v: &Value| match v {
        Value::Null => 0,
        Value::Number(_) => 1,
        Value::String(_) => 2,
        _ => 3,
    };
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64().unwrap().total_cmp(&y.as_f64().unwrap()),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// One list API: where it is, the body it is called with, and where an item's id and its
/// sortable record sit in an answer item.
pub(crate) struct Sorted<'a> {
    pub(crate) path: &'a str,
    pub(crate) body: Value,
    pub(crate) id: &'a [&'a str],
    pub(crate) record: &'a [&'a str],
}

impl Sorted<'_> {
    fn at<'v>(item: &'v Value, path: &[&str]) -> &'v Value {
        path.iter().fold(item, |v, k| &v[*k])
    }

    fn items(&self, s: &Server, sort: &str) -> Vec<Value> {
        let mut body = self.body.clone();
        body["page"]["sort"] = json!(sort);
        body["page"]["limit"] = json!(100);
        // In Chinese, built-in names are answered as stored, which is what MongoDB sorts.
        let d = ok_zh(s, "POST", self.path, &body);
        d["info"].as_array().unwrap().clone()
    }

    fn ids(&self, items: &[Value]) -> Vec<i64> {
        items
            .iter()
            .map(|i| Self::at(i, self.id).as_i64().unwrap())
            .collect()
    }

    /// Sorting by `field` ascending and descending gives the id order computed here from the
    /// records in storage (id) order, ties keeping that order.
    pub(crate) fn check(&self, s: &Server, field: &str) {
        let mut base = self.items(s, self.id.last().unwrap());
        assert!(base.len() >= 2, "{}: too few items to sort", self.path);
        let value = |i: &Value| Self::at(i, self.record)[field].clone();
        for desc in [false, true] {
            let sort = if desc {
                format!("-{field}")
            } else {
                field.to_string()
            };
            let got = self.ids(&self.items(s, &sort));
            base.sort_by(|a, b| {
                let o = mongo_cmp(&value(a), &value(b));
                if desc { o.reverse() } else { o }
            });
            let mut storage = base.clone();
            storage.sort_by_key(|i| Self::at(i, self.id).as_i64().unwrap());
            storage.sort_by(|a, b| {
                let o = mongo_cmp(&value(a), &value(b));
                if desc { o.reverse() } else { o }
            });
            assert_eq!(got, self.ids(&storage), "{} sorted by {sort}", self.path);
        }
    }
}

#[test]
fn every_list_sorts_by_each_field_both_ways() {
    let (s, _td) = server();
    let lists = [
        (
            Sorted {
                path: BIZ,
                body: json!({}),
                id: &["bk_biz_id"],
                record: &[],
            },
            &[
                "bk_biz_id",
                "bk_biz_name",
                "bk_biz_maintainer",
                "life_cycle",
                "team",
                "create_time",
            ][..],
        ),
        (
            Sorted {
                path: "/api/v3/set/search/0/7",
                body: json!({}),
                id: &["bk_set_id"],
                record: &[],
            },
            &[
                "bk_set_id",
                "bk_set_name",
                "bk_set_env",
                "default",
                "create_time",
            ][..],
        ),
        (
            Sorted {
                path: "/api/v3/module/search/0/7/3",
                body: json!({}),
                id: &["bk_module_id"],
                record: &[],
            },
            &[
                "bk_module_id",
                "bk_module_name",
                "service_template_id",
                "default",
            ][..],
        ),
        (
            Sorted {
                path: HOSTS7,
                body: json!({}),
                id: &["bk_host_id"],
                record: &[],
            },
            &[
                "bk_host_id",
                "bk_host_name",
                "bk_host_innerip",
                "bk_cpu",
                "bk_os_type",
                "operator",
                "rack",
                "create_time",
            ][..],
        ),
        (
            Sorted {
                path: "/api/v3/findmany/cloudarea",
                body: json!({}),
                id: &["bk_cloud_id"],
                record: &[],
            },
            &["bk_cloud_id", "bk_cloud_name", "bk_region", "create_time"][..],
        ),
        (
            Sorted {
                path: PRI,
                body: json!({"fields": ["bk_process_name", "bk_func_name", "port",
                    "bk_process_id"]}),
                id: &["process", "bk_process_id"],
                record: &["process"],
            },
            &["bk_process_id", "bk_process_name", "bk_func_name"][..],
        ),
    ];
    for (list, fields) in &lists {
        for field in *fields {
            list.check(&s, field);
        }
    }
    // Spot checks written out, so the rule above is not only checked against itself.
    let names = |path: &str, sort: &str, id: &str| {
        let d = ok(
            &s,
            "POST",
            path,
            &json!({"page": {"sort": sort, "limit": 10}}),
        );
        ids(&d["info"], id)
    };
    assert_eq!(names(HOSTS7, "-bk_cpu", "bk_host_id"), [14, 11, 12, 13, 15]);
    assert_eq!(
        names(HOSTS7, "bk_host_name", "bk_host_id"),
        [12, 14, 15, 13, 11]
    );
    assert_eq!(names(BIZ, "-bk_biz_name", "bk_biz_id"), [7, 9, 8]);
    // bk-cmdb sorts the stored (Chinese) name of a built-in set, then translates it.
    let sets = ok(
        &s,
        "POST",
        "/api/v3/set/search/0/7",
        &json!({"page": {"sort": "bk_set_name"}, "fields": ["bk_set_name"]}),
    );
    assert_eq!(
        sets["info"],
        json!([{"bk_set_name": "db", "default": 0}, {"bk_set_name": "web", "default": 0},
            {"bk_set_name": "idle pool", "default": 1}])
    );
}

#[test]
fn search_set_and_module_page_without_checks() {
    let (s, _td) = server();
    // bk-cmdb checks neither page: limit 0 is everything, no maximum, a start past the end is
    // an empty page with the full count.
    for (path, key, all) in [
        ("/api/v3/set/search/0/7", "bk_set_id", vec![3, 4, 5]),
        (
            "/api/v3/module/search/0/7/0",
            "bk_module_id",
            vec![10, 11, 12, 13, 14, 15],
        ),
    ] {
        let page = |p: Value| {
            let d = ok(&s, "POST", path, &json!({"page": p}));
            (d["count"].as_i64().unwrap(), ids(&d["info"], key))
        };
        let n = all.len() as i64;
        assert_eq!(page(json!({"limit": 0})), (n, all.clone()), "{path}");
        assert_eq!(page(json!({"limit": 100000})), (n, all.clone()), "{path}");
        assert_eq!(
            page(json!({"start": 1, "limit": 1})),
            (n, vec![all[1]]),
            "{path}"
        );
        assert_eq!(
            page(json!({"start": 50, "limit": 10})),
            (n, vec![]),
            "{path}"
        );
    }
}
