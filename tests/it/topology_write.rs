//! Black-box tests of the topology and host writes (spec bk-cmdb-topology.md sections 8, 9):
//! every refusal of create_set, update_set, delete_set, batch_delete_set, create_module,
//! update_module, delete_module, add_host_to_business_idle, transfer_host_module and
//! transfer_host_to_idlemodule with its code and text in English and Chinese, the effects
//! (stored records, relations, service instances) and the ESB and gateway routes.
//!
//! Each test starts from [`FRESH_INSTALL`]: business 2 with idle set 2 (modules 4 idle, 5
//! fault, 6 recycle), the resource pool 1 (set 1, modules 1-3), cloud area 0. [`topology`]
//! adds set 3 "gse" with raw module 7 "tools" and module 8 "agent" of template 1 (one process
//! template), hosts 1 (10.0.0.1, in module 8) and 2 (10.0.0.2, idle), and host 3 (10.0.0.3) in
//! the resource pool.

use crate::common::lang::{
    both, call, exceed_limit, invalid, invalid_param, not_found, unassigned,
};
use crate::common::*;
use serde_json::{Value, json};

#[track_caller]
fn ok(s: &Server, method: &str, path: &str, body: Value) -> Value {
    let r = call(s, method, path, &body, false);
    assert_eq!(r["result"], true, "{method} {path} {body}: {r}");
    r["data"].clone()
}

fn topology() -> (Server, TempDir) {
    let td = TempDir::new("topo-write");
    let (s, _) = fresh_install(&td);
    ok(
        &s,
        "POST",
        "/api/v3/set/2",
        json!({"bk_set_name": "gse", "bk_parent_id": 2}),
    );
    ok(
        &s,
        "POST",
        "/api/v3/create/proc/service_template",
        json!({"bk_biz_id": 2, "name": "agent", "service_category_id": 2}),
    );
    ok(
        &s,
        "POST",
        "/api/v3/createmany/proc/proc_template",
        json!({"bk_biz_id": 2, "service_template_id": 1, "processes": [{"spec": {
            "bk_process_name": {"value": "gse_agent", "as_default_value": true},
            "bk_func_name": {"value": "gse_agent", "as_default_value": true},
            "bind_info": {"value": [{"ip": {"value": "1"}, "port": {"value": "48000"},
                "protocol": {"value": "1"}, "enable": {"value": true}}]}}}]}),
    );
    ok(
        &s,
        "POST",
        "/api/v3/module/2/3",
        json!({"bk_module_name": "tools", "bk_parent_id": 3}),
    );
    ok(
        &s,
        "POST",
        "/api/v3/module/2/3",
        json!({"service_template_id": 1, "bk_parent_id": 3}),
    );
    let host =
        |ip: &str| json!({"bk_host_innerip": ip, "bk_cloud_id": 0, "bk_addressing": "static"});
    ok(
        &s,
        "POST",
        "/api/v3/hosts/add/business_idle",
        json!({"bk_biz_id": 2, "bk_host_list": [host("10.0.0.1"), host("10.0.0.2")]}),
    );
    ok(
        &s,
        "POST",
        "/api/v3/hosts/add/business_idle",
        json!({"bk_biz_id": 1, "bk_host_list": [host("10.0.0.3")]}),
    );
    ok(
        &s,
        "POST",
        "/api/v3/hosts/modules",
        json!({"bk_biz_id": 2, "bk_host_id": [1], "bk_module_id": [8]}),
    );
    (s, td)
}

/// 1199011 wrapping an inner message (en, zh) once, for a POST of `body` to `path`.
#[track_caller]
fn wrapped_invalid(s: &Server, path: &str, body: &Value, inner_en: &str, inner_zh: &str) {
    both(
        s,
        "POST",
        path,
        body,
        1199011,
        &format!("'{inner_en}' the parameter is invalid or does not exist"),
        &format!("'{inner_zh}' 参数无效或不存在"),
    );
}

#[test]
fn create_set_refusals_and_answer() {
    let (s, _td) = topology();
    let p = "/api/v3/set/2";
    both(
        &s,
        "POST",
        "/api/v3/set/x",
        &json!({"bk_set_name": "a", "bk_parent_id": 2}),
        1199009,
        "'business id' parameters must be integral",
        "'business id' 参数必须是整型",
    );
    invalid_param(
        &s,
        "POST",
        "/api/v3/set/99",
        &json!({"bk_set_name": "a", "bk_parent_id": 99}),
        "bk_biz_id",
    );
    unassigned(&s, "POST", p, &json!({"bk_parent_id": 2}), "bk_set_name");
    unassigned(&s, "POST", p, &json!({"bk_set_name": "a"}), "bk_parent_id");
    wrapped_invalid(
        &s,
        p,
        &json!({"bk_set_name": "  ", "bk_parent_id": 2}),
        "'bk_set_name' unassigned",
        "'bk_set_name' 未赋值",
    );
    wrapped_invalid(
        &s,
        p,
        &json!({"bk_set_name": "a/b", "bk_parent_id": 2}),
        "'bk_set_name' data parameter verification does not pass",
        "'bk_set_name' 数据参数校验不通过",
    );
    wrapped_invalid(
        &s,
        p,
        &json!({"bk_set_name": "b", "bk_parent_id": 0}),
        "'bk_parent_id' data parameter verification does not pass",
        "'bk_parent_id' 数据参数校验不通过",
    );
    both(
        &s,
        "POST",
        p,
        &json!({"bk_set_name": "gse", "bk_parent_id": 2}),
        1101108,
        "the same set name exist",
        "已经存在同名的集群",
    );
    not_found(
        &s,
        "POST",
        p,
        &json!({"bk_set_name": "b", "bk_parent_id": 2, "set_template_id": 5}),
    );
    both(
        &s,
        "POST",
        p,
        &json!({"bk_set_name": "b", "bk_parent_id": 2, "default": "0"}),
        1199998,
        "not numeric",
        "not numeric",
    );
    both(
        &s,
        "POST",
        p,
        &json!({"bk_set_name": "b", "bk_parent_id": 2, "default": 1.5}),
        1199998,
        "strconv.ParseInt: parsing \"1.5\": invalid syntax",
        "strconv.ParseInt: parsing \"1.5\": invalid syntax",
    );
    // Refusals took no id: the next set is 4; unknown keys dropped, strings trimmed.
    let set = ok(
        &s,
        "POST",
        p,
        json!({"bk_set_name": " db ", "bk_parent_id": 2, "nope": 1, "bk_set_env": "1"}),
    );
    assert_eq!(set["bk_set_id"], 4);
    assert_eq!(set["bk_set_name"], "db");
    assert_eq!(set["bk_set_env"], "1");
    assert!(set.get("nope").is_none());
    let keys: Vec<&String> = set.as_object().unwrap().keys().collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "Go map order");
}

/// `forbidden remove or update built in set or module` (1101098) in both languages.
#[track_caller]
fn built_in(s: &Server, method: &str, path: &str, body: &Value) {
    both(
        s,
        method,
        path,
        body,
        1101098,
        "forbidden remove or update built in set or module",
        "禁止删除或更新内置集群/模块",
    );
}

#[test]
fn update_and_delete_set() {
    let (s, _td) = topology();
    built_in(&s, "PUT", "/api/v3/set/2/2", &json!({"bk_set_name": "x"}));
    not_found(&s, "PUT", "/api/v3/set/2/99", &json!({"bk_set_name": "x"}));
    both(
        &s,
        "PUT",
        "/api/v3/set/2/x",
        &json!({}),
        1199009,
        "'set id' parameters must be integral",
        "'set id' 参数必须是整型",
    );
    ok(
        &s,
        "POST",
        "/api/v3/set/2",
        json!({"bk_set_name": "db", "bk_parent_id": 2}),
    );
    both(
        &s,
        "PUT",
        "/api/v3/set/2/4",
        &json!({"bk_set_name": "gse"}),
        1101108,
        "the same set name exist",
        "已经存在同名的集群",
    );
    assert_eq!(
        ok(
            &s,
            "PUT",
            "/api/v3/set/2/4",
            json!({"bk_set_name": "mysql", "bk_set_desc": "d", "bk_biz_id": 9})
        ),
        Value::Null
    );
    let got = ok(
        &s,
        "POST",
        "/api/v3/set/search/0/2",
        json!({"condition": {"bk_set_id": 4}}),
    );
    assert_eq!(got["info"][0]["bk_set_name"], "mysql");
    assert_eq!(got["info"][0]["bk_set_desc"], "d");
    assert_eq!(got["info"][0]["bk_biz_id"], 2);
    assert_eq!(got["info"][0]["bk_updated_by"], "admin");
    // Delete: built-in, holding hosts, unknown (success), then the empty set.
    built_in(&s, "DELETE", "/api/v3/set/2/2", &Value::Null);
    both(
        &s,
        "DELETE",
        "/api/v3/set/2/3",
        &Value::Null,
        1101030,
        "Having hosts under the target, deleting forbidden",
        "目标包含主机, 不允许删除",
    );
    assert_eq!(
        ok(&s, "DELETE", "/api/v3/set/2/99", Value::Null),
        Value::Null
    );
    both(
        &s,
        "DELETE",
        "/api/v3/set/2/batch",
        &json!({"delete": {}}),
        1199017,
        "Failed to query data",
        "查询数据失败",
    );
    built_in(
        &s,
        "DELETE",
        "/api/v3/set/2/batch",
        &json!({"delete": {"inst_ids": [4, 1]}}),
    );
    ok(
        &s,
        "POST",
        "/api/v3/module/2/4",
        json!({"bk_module_name": "m", "bk_parent_id": 4}),
    );
    assert_eq!(
        ok(
            &s,
            "DELETE",
            "/api/v3/set/2/batch",
            json!({"delete": {"inst_ids": [4, 77]}})
        ),
        Value::Null
    );
    let got = ok(&s, "POST", "/api/v3/set/search/0/2", json!({}));
    assert_eq!(got["count"], 2, "{got}");
    let got = ok(
        &s,
        "POST",
        "/api/v3/findmany/module/bk_biz_id/2",
        json!({"bk_ids": [9], "fields": ["bk_module_id"]}),
    );
    assert_eq!(got, json!([]), "the set's module went with it");
}

#[test]
fn create_module_refusals() {
    let (s, _td) = topology();
    let p = "/api/v3/module/2/3";
    both(
        &s,
        "POST",
        "/api/v3/module/2/x",
        &json!({}),
        1199009,
        "'bk_set_id' parameters must be integral",
        "'bk_set_id' 参数必须是整型",
    );
    invalid_param(
        &s,
        "POST",
        "/api/v3/module/2/99",
        &json!({"bk_module_name": "a", "bk_parent_id": 99}),
        "bk_set_id",
    );
    invalid_param(
        &s,
        "POST",
        "/api/v3/module/2/1",
        &json!({"bk_module_name": "a", "bk_parent_id": 1}),
        "bk_biz_id/bk_set_id",
    );
    invalid(
        &s,
        "POST",
        p,
        &json!({"service_template_id": 99, "bk_parent_id": 3}),
        "service_template_id",
    );
    both(
        &s,
        "POST",
        p,
        &json!({"service_template_id": 1, "service_category_id": 5, "bk_parent_id": 3}),
        1108036,
        "service category and template not conincide",
        "服务分类与服务模板不一致",
    );
    invalid(
        &s,
        "POST",
        p,
        &json!({"bk_module_name": "a", "service_category_id": 99, "bk_parent_id": 3}),
        "service_category_id",
    );
    invalid(
        &s,
        "POST",
        p,
        &json!({"bk_module_name": "a", "bk_parent_id": 2}),
        "bk_parent_id",
    );
    both(
        &s,
        "POST",
        p,
        &json!({"bk_module_name": "a", "bk_parent_id": 3, "default": 0}),
        1199999,
        "'topo' Internal Server Error",
        "'topo' 服务器内部错误",
    );
    invalid_param(
        &s,
        "POST",
        p,
        &json!({"bk_module_name": "a"}),
        "bk_parent_id",
    );
    unassigned(&s, "POST", p, &json!({"bk_parent_id": 3}), "bk_module_name");
    wrapped_invalid(
        &s,
        p,
        &json!({"bk_module_name": "a b", "bk_parent_id": 3}),
        "'bk_module_name' data parameter verification does not pass",
        "'bk_module_name' 数据参数校验不通过",
    );
    both(
        &s,
        "POST",
        p,
        &json!({"bk_module_name": "tools", "bk_parent_id": 3}),
        1199014,
        "duplicated instances exist, fields [ bk_biz_id: 2, bk_set_id: 3, bk_module_name: \"tools\" ] duplicated",
        "数据唯一性校验失败，  bk_biz_id: 2, bk_set_id: 3, bk_module_name: \"tools\"  重复",
    );
    // A second module of the same template takes its name: a duplicate too.
    both(
        &s,
        "POST",
        p,
        &json!({"service_template_id": 1, "bk_parent_id": 3}),
        1199014,
        "duplicated instances exist, fields [ bk_biz_id: 2, bk_set_id: 3, bk_module_name: \"agent\" ] duplicated",
        "数据唯一性校验失败，  bk_biz_id: 2, bk_set_id: 3, bk_module_name: \"agent\"  重复",
    );
    let m = ok(
        &s,
        "POST",
        p,
        json!({"bk_module_name": "db", "bk_parent_id": 3, "service_category_id": 2}),
    );
    assert_eq!(m["bk_module_id"], 9, "refusals took no id");
    assert_eq!(m["host_apply_enabled"], false);
    assert_eq!(m["bk_parent_id"], 3);
}

#[test]
fn update_and_delete_module() {
    let (s, _td) = topology();
    built_in(
        &s,
        "PUT",
        "/api/v3/module/2/2/4",
        &json!({"bk_module_name": "x"}),
    );
    not_found(
        &s,
        "PUT",
        "/api/v3/module/2/3/99",
        &json!({"bk_module_name": "x"}),
    );
    both(
        &s,
        "PUT",
        "/api/v3/module/2/3/8",
        &json!({"service_template_id": 0}),
        1199083,
        "modify field service_template_id forbidden",
        "禁止修改字段: service_template_id",
    );
    both(
        &s,
        "PUT",
        "/api/v3/module/2/3/8",
        &json!({"bk_module_name": "x"}),
        1101091,
        "update name field on module create by template forbidden",
        "禁止修改由模板创建模块的名称",
    );
    both(
        &s,
        "PUT",
        "/api/v3/module/2/3/8",
        &json!({"service_category_id": 5}),
        1101090,
        "update service category on module create by template forbidden",
        "禁止修改由模板创建模块的服务分类",
    );
    both(
        &s,
        "PUT",
        "/api/v3/module/2/3/7",
        &json!({"bk_module_name": "agent"}),
        1199014,
        "duplicated instances exist, fields [ bk_biz_id: 2, bk_set_id: 3, bk_module_name: \"agent\" ] duplicated",
        "数据唯一性校验失败，  bk_biz_id: 2, bk_set_id: 3, bk_module_name: \"agent\"  重复",
    );
    assert_eq!(
        ok(
            &s,
            "PUT",
            "/api/v3/module/2/3/8",
            json!({"bk_module_name": "", "operator": "bob"})
        ),
        Value::Null
    );
    assert_eq!(
        ok(
            &s,
            "PUT",
            "/api/v3/module/2/3/7",
            json!({"bk_module_name": "tools2"})
        ),
        Value::Null
    );
    let got = ok(
        &s,
        "POST",
        "/api/v3/findmany/module/bk_biz_id/2",
        json!({"bk_ids": [7, 8], "fields": ["bk_module_name", "operator"]}),
    );
    assert_eq!(
        got,
        json!([{"bk_module_name": "tools2", "default": 0, "operator": null},
               {"bk_module_name": "agent", "default": 0, "operator": "bob"}])
    );
    built_in(&s, "DELETE", "/api/v3/module/2/2/4", &Value::Null);
    both(
        &s,
        "DELETE",
        "/api/v3/module/2/3/8",
        &Value::Null,
        1101030,
        "Having hosts under the target, deleting forbidden",
        "目标包含主机, 不允许删除",
    );
    assert_eq!(
        ok(&s, "DELETE", "/api/v3/module/2/3/7", Value::Null),
        Value::Null
    );
    assert_eq!(
        ok(&s, "DELETE", "/api/v3/module/2/3/99", Value::Null),
        Value::Null
    );
}

#[test]
fn add_host_refusals() {
    let (s, _td) = topology();
    let p = "/api/v3/hosts/add/business_idle";
    let h = |v: Value| json!({"bk_biz_id": 2, "bk_host_list": [v]});
    unassigned(
        &s,
        "POST",
        p,
        &json!({"bk_biz_id": 2, "bk_host_list": []}),
        "bk_host_list",
    );
    let many: Vec<Value> = (0..201).map(|_| json!({})).collect();
    exceed_limit(
        &s,
        "POST",
        p,
        &json!({"bk_biz_id": 2, "bk_host_list": many}),
        "bk_host_list",
        200,
    );
    unassigned(&s, "POST", p, &json!({"bk_host_list": [{}]}), "bk_biz_id");
    both(
        &s,
        "POST",
        p,
        &json!({"bk_biz_id": 99, "bk_host_list": [{}]}),
        1101033,
        "query business failed",
        "查询业务失败",
    );
    both(
        &s,
        "POST",
        p,
        &h(json!({"bk_cloud_id": 0, "bk_addressing": "static"})),
        1199091,
        "at least one of bk_host_innerip and bk_host_innerip_v6 must be set",
        "至少设置[bk_host_innerip]和[bk_host_innerip_v6]中的一个值",
    );
    for cloud in [json!(-1), json!("0"), Value::Null, json!(7)] {
        invalid(
            &s,
            "POST",
            p,
            &h(
                json!({"bk_host_innerip": "10.1.1.1", "bk_cloud_id": cloud, "bk_addressing": "static"}),
            ),
            "bk_cloud_id",
        );
    }
    invalid(
        &s,
        "POST",
        p,
        &h(json!({"bk_host_innerip": "10.1.1.1", "bk_cloud_id": 0})),
        "bk_addressing",
    );
    both(
        &s,
        "POST",
        p,
        &h(json!({"bk_host_innerip": "10.1.1.x", "bk_cloud_id": 0, "bk_addressing": "static"})),
        1199011,
        "'''Inner IPv4' Field regular check failed' the parameter is invalid or does not exist' the parameter is invalid or does not exist",
        "'''内网IPv4' 字段正则校验失败' 参数无效或不存在' 参数无效或不存在",
    );
    both(
        &s,
        "POST",
        p,
        &h(json!({"bk_host_innerip": "10.0.0.3", "bk_cloud_id": 0, "bk_addressing": "static"})),
        1199014,
        "duplicated instances exist, fields [ bk_host_innerip: \"10.0.0.3\", bk_cloud_id: 0 ] duplicated",
        "数据唯一性校验失败，  bk_host_innerip: \"10.0.0.3\", bk_cloud_id: 0  重复",
    );
    // A dynamic host may share its address; IPv6 is stored in full form.
    let d = ok(
        &s,
        "POST",
        p,
        json!({"bk_biz_id": 2, "bk_host_list": [
            {"bk_host_innerip": "10.0.0.3", "bk_cloud_id": 0, "bk_addressing": "dynamic",
             "operator": ["alice", "bob"]},
            {"bk_host_innerip_v6": "::1", "bk_cloud_id": 0, "bk_addressing": "static"}]}),
    );
    assert_eq!(d, json!({"bk_host_ids": [4, 5]}), "refusals took no id");
    let got = ok(
        &s,
        "POST",
        "/api/v3/hosts/app/2/list_hosts",
        json!({"page": {"start": 0, "limit": 10}, "fields": ["bk_host_id", "bk_host_innerip_v6", "bk_addressing"]}),
    );
    assert_eq!(got["count"], 4);
    let op = ok(
        &s,
        "POST",
        "/api/v3/hosts/app/2/list_hosts",
        json!({"page": {"start": 0, "limit": 10}, "fields": ["bk_host_id", "operator"],
               "host_property_filter": {"condition": "AND", "rules": [
                   {"field": "bk_host_id", "operator": "equal", "value": 4}]}}),
    );
    assert_eq!(
        op["info"],
        json!([{"bk_host_id": 4, "operator": "alice,bob"}])
    );
    assert_eq!(
        got["info"][3],
        json!({"bk_host_id": 5, "bk_host_innerip_v6": "0000:0000:0000:0000:0000:0000:0000:0001", "bk_addressing": "static"})
    );
}

#[test]
fn transfer_refusals_and_effects() {
    let (s, _td) = topology();
    let p = "/api/v3/hosts/modules";
    let t = |hosts: Value, modules: Value| json!({"bk_biz_id": 2, "bk_host_id": hosts, "bk_module_id": modules});
    both(
        &s,
        "POST",
        p,
        &t(json!([2]), json!([99])),
        1101080,
        "topo module not found",
        "拓扑模块没找到",
    );
    both(
        &s,
        "POST",
        p,
        &t(json!([2]), json!([1])),
        1101080,
        "topo module not found",
        "拓扑模块没找到",
    );
    let core = |en: &str, zh: &str| {
        (
            format!("HTTP request failed%!(EXTRA string={en})"),
            format!("HTTP请求失败%!(EXTRA string={zh})"),
        )
    };
    let (en, zh) = core(
        "transfer host to default module use the wrong method",
        "转移主机到默认模块调用了错误接口",
    );
    both(&s, "POST", p, &t(json!([2]), json!([4])), 1199002, &en, &zh);
    let (en, zh) = core("'bk_module_id' unassigned", "'bk_module_id' 未赋值");
    both(&s, "POST", p, &t(json!([2]), json!([])), 1199002, &en, &zh);
    let (en, zh) = core(
        "'bk_host_id' the parameter is invalid or does not exist",
        "'bk_host_id' 参数无效或不存在",
    );
    both(
        &s,
        "POST",
        p,
        &t(json!([2, 99]), json!([7])),
        1199002,
        &en,
        &zh,
    );
    both(
        &s,
        "POST",
        p,
        &t(json!([2, 2]), json!([7])),
        1199002,
        &en,
        &zh,
    );
    let (en, zh) = core(
        "hostID [[]int64{3}] does not belong of  businessID [[2]]",
        "主机ID[[]int64{3}]不属于业务ID[[]int64{2}]",
    );
    both(
        &s,
        "POST",
        p,
        &t(json!([2, 3]), json!([7])),
        1199002,
        &en,
        &zh,
    );
    let (en, zh) = core("Failed to query data", "查询数据失败");
    both(
        &s,
        "POST",
        p,
        &json!({"bk_biz_id": 2, "bk_host_id": [2]}),
        1199002,
        &en,
        &zh,
    );
    // Nothing moved: host 2 is idle, host 1 has its one instance.
    let where_is = |h: i64| -> Vec<i64> {
        let r = ok(
            &s,
            "POST",
            "/api/v3/hosts/modules/read",
            json!({"bk_biz_id": 2, "bk_host_id": [h]}),
        );
        r.as_array()
            .unwrap()
            .iter()
            .map(|x| x["bk_module_id"].as_i64().unwrap())
            .collect()
    };
    let instances_of = |h: i64| -> Vec<(i64, usize)> {
        let r = ok(
            &s,
            "POST",
            "/api/v3/findmany/proc/service_instance/with_host",
            json!({"bk_biz_id": 2, "bk_host_id": h, "page": {"limit": 10}}),
        );
        r["info"]
            .as_array()
            .unwrap()
            .iter()
            .map(|si| {
                let d = ok(
                    &s,
                    "POST",
                    "/api/v3/findmany/proc/process_instance",
                    json!({"bk_biz_id": 2, "service_instance_id": si["id"]}),
                );
                (
                    si["bk_module_id"].as_i64().unwrap(),
                    d.as_array().unwrap().len(),
                )
            })
            .collect()
    };
    assert_eq!(where_is(2), [4]);
    assert_eq!(instances_of(1), [(8, 1)]);
    // Increment into the raw module: the instance stays; without it, it goes.
    ok(
        &s,
        "POST",
        p,
        json!({"bk_biz_id": 2, "bk_host_id": [1], "bk_module_id": [7], "is_increment": true}),
    );
    assert_eq!(where_is(1), [7, 8]);
    assert_eq!(instances_of(1), [(8, 1)]);
    ok(&s, "POST", p, t(json!([1]), json!([7])));
    assert_eq!(where_is(1), [7]);
    assert_eq!(instances_of(1), []);
    // disable_auto_create: the host enters, no instance.
    ok(
        &s,
        "POST",
        p,
        json!({"bk_biz_id": 2, "bk_host_id": [2], "bk_module_id": [8], "disable_auto_create": true}),
    );
    assert_eq!(where_is(2), [8]);
    assert_eq!(instances_of(2), []);
    // Idle transfer refusals, then the effect.
    let idle = "/api/v3/hosts/modules/idle";
    both(
        &s,
        "POST",
        idle,
        &json!({"bk_biz_id": 99, "bk_host_id": [1]}),
        1110030,
        "Failed to add host to module, error:module not found",
        "添加主机到模块失败, error:module not found",
    );
    invalid_param(
        &s,
        "POST",
        idle,
        &json!({"bk_biz_id": 2, "bk_host_id": [1, 1]}),
        "bk_host_id",
    );
    both(
        &s,
        "POST",
        idle,
        &json!({"bk_biz_id": 2, "bk_host_id": [3]}),
        1113002,
        "hostID [[]int64{3}] does not belong of  businessID [[2]]",
        "主机ID[[]int64{3}]不属于业务ID[[]int64{2}]",
    );
    assert_eq!(
        ok(&s, "POST", idle, json!({"bk_biz_id": 2, "bk_host_id": []})),
        Value::Null
    );
    ok(&s, "POST", p, t(json!([1]), json!([8, 7])));
    assert_eq!(instances_of(1), [(8, 1)]);
    ok(
        &s,
        "POST",
        idle,
        json!({"bk_biz_id": 2, "bk_host_id": [1, 2]}),
    );
    assert_eq!(where_is(1), [4]);
    assert_eq!(where_is(2), [4]);
    assert_eq!(instances_of(1), []);
}

#[test]
fn esb_and_gateway_routes() {
    let (s, _td) = topology();
    let esb = |name: &str, body: Value| s.esb(name, &[("X-Bkcmdb-Language", "en")], &body);
    let r = esb(
        "create_set",
        json!({"bk_app_code": "a", "bk_username": "admin", "bk_biz_id": 2,
               "data": {"bk_set_name": "esb", "bk_parent_id": 2}}),
    );
    assert_eq!(r["result"], true, "{r}");
    assert_eq!(r["data"]["bk_set_id"], 4);
    let r = esb(
        "create_module",
        json!({"bk_biz_id": 2, "bk_set_id": 4, "data": {"bk_module_name": "m", "bk_parent_id": 4}}),
    );
    assert_eq!(r["data"]["bk_module_id"], 9, "{r}");
    let r = esb(
        "update_module",
        json!({"bk_biz_id": 2, "bk_set_id": 4, "bk_module_id": 9, "data": {"bk_module_name": "m2"}}),
    );
    assert_eq!(r["result"], true, "{r}");
    let r = esb(
        "transfer_host_module",
        json!({"bk_biz_id": 2, "bk_host_id": [2], "bk_module_id": [9], "is_increment": false}),
    );
    assert_eq!(r["result"], true, "{r}");
    let r = esb(
        "delete_module",
        json!({"bk_biz_id": 2, "bk_set_id": 4, "bk_module_id": 9}),
    );
    assert_eq!(r["code"], 1101030, "{r}");
    assert_eq!(
        r["message"],
        "Having hosts under the target, deleting forbidden"
    );
    let r = esb(
        "transfer_host_to_idlemodule",
        json!({"bk_biz_id": 2, "bk_host_id": [2]}),
    );
    assert_eq!(r["result"], true, "{r}");
    let r = esb(
        "delete_module",
        json!({"bk_biz_id": 2, "bk_set_id": 4, "bk_module_id": 9}),
    );
    assert_eq!(r["result"], true, "{r}");
    let r = esb(
        "update_set",
        json!({"bk_biz_id": 2, "bk_set_id": 4, "data": {"bk_set_desc": "x"}}),
    );
    assert_eq!(r["result"], true, "{r}");
    let r = esb(
        "batch_delete_set",
        json!({"bk_biz_id": 2, "delete": {"inst_ids": [4]}}),
    );
    assert_eq!(r["result"], true, "{r}");
    let r = esb("delete_set", json!({"bk_biz_id": 2, "bk_set_id": 2}));
    assert_eq!(r["code"], 1101098, "{r}");
    let r = esb(
        "add_host_to_business_idle",
        json!({"bk_biz_id": 2, "bk_host_list": [{"bk_host_innerip": "10.9.9.9", "bk_cloud_id": 0, "bk_addressing": "static"}]}),
    );
    assert_eq!(r["data"], json!({"bk_host_ids": [4]}), "{r}");
    let gw = s.request(
        "POST",
        "/api/bk-cmdb/prod/api/v3/set/2",
        &[("X-Bkcmdb-Language", "en")],
        json!({"bk_set_name": "gw", "bk_parent_id": 2})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(gw.json()["data"]["bk_set_id"], 5, "{}", gw.body);
}
