//! More black-box tests of the topology and host reads, on the seed of [`crate::topology`]:
//! refusals of six reads through the API gateway and the ESB as well as natively, in English
//! and Chinese, with their whole envelopes; sorting by each field, both ways, of the lists the
//! `topology` tests do not sort (list_biz_hosts_topo, list_hosts_without_biz,
//! find_module_with_relation, find_host_topo_relation); an unknown sort field and bk-cmdb's
//! other sort spellings on every list that takes `page.sort`; and the paging edges (a start past
//! the end, limit 0, the maximum and one above it) of every list.

use crate::common::lang::{both, call, exceed_limit, invalid, unassigned};
use crate::common::*;
use crate::topology::{BIZ, HOSTS7, PRI, Sorted, ids, ok, server};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Refusals on every route family

#[derive(Clone, Copy, Debug)]
enum Family {
    Native,
    Gateway,
    Esb,
}

/// One POST on one family, in English or (no language header: the default) Chinese. The ESB
/// body also carries the path's parameters, `esb_extra`. The whole answer, HTTP 200.
fn post(
    s: &Server,
    family: Family,
    native: &str,
    name: &str,
    body: &Value,
    esb_extra: &Value,
    zh: bool,
) -> Value {
    let lang: &[(&str, &str)] = if zh {
        &[]
    } else {
        &[("X-Bkcmdb-Language", "en")]
    };
    let (path, body) = match family {
        Family::Native => return call(s, "POST", native, body, zh),
        Family::Gateway => (format!("/api/bk-cmdb/prod{native}"), body.clone()),
        Family::Esb => {
            let mut b = body.clone();
            for (k, v) in esb_extra.as_object().unwrap() {
                b[k] = v.clone();
            }
            (format!("/api/c/compapi/v2/cc/{name}/"), b)
        }
    };
    let r = s.request("POST", &path, lang, body.to_string().as_bytes());
    assert_eq!(r.status, 200, "{family:?} {path}: {}", r.body);
    r.json()
}

/// One refusal of a read, asserted on the three families in both languages, each in its own
/// envelope.
struct Refusal<'a> {
    native: &'a str,
    name: &'a str,
    body: Value,
    esb_extra: Value,
    code: i64,
    en: &'a str,
    zh: &'a str,
}

impl Refusal<'_> {
    fn check(&self, s: &Server) {
        for family in [Family::Native, Family::Gateway, Family::Esb] {
            for (zh, text) in [(false, self.en), (true, self.zh)] {
                let got = post(
                    s,
                    family,
                    self.native,
                    self.name,
                    &self.body,
                    &self.esb_extra,
                    zh,
                );
                let want = match family {
                    Family::Native => err_native(self.code, text),
                    Family::Gateway => json!({"result": false, "code": self.code,
                        "message": text, "permission": null, "data": null}),
                    Family::Esb => {
                        assert!(got["request_id"].is_string(), "{got}");
                        json!({"result": false, "code": self.code, "message": text,
                            "permission": null, "request_id": got["request_id"].clone(),
                            "data": null})
                    }
                };
                assert_eq!(got, want, "{} on {family:?}, zh {zh}", self.name);
            }
        }
    }
}

#[test]
fn six_reads_refuse_alike_on_every_route_family() {
    let (s, _td) = server();
    let biz7 = json!({"bk_biz_id": 7});
    let refusals = [
        Refusal {
            native: "/api/v3/module/search/0/7/3",
            name: "search_module",
            body: json!({"fields": "bk_module_id"}),
            esb_extra: json!({"bk_supplier_account": "0", "bk_biz_id": 7, "bk_set_id": 3}),
            code: 1199000,
            en: "Deserializing JSON data failed",
            zh: "反序列化JSON数据失败",
        },
        Refusal {
            native: "/api/v3/findmany/module/with_relation/biz/7",
            name: "find_module_with_relation",
            body: json!({"bk_set_ids": [3]}),
            esb_extra: biz7.clone(),
            code: 1199010,
            en: "'fields' unassigned",
            zh: "'fields' 未赋值",
        },
        Refusal {
            native: "/api/v3/cache/find/cache/topo/node_path/biz/7",
            name: "find_topo_node_paths",
            body: json!({"bk_nodes": [{"bk_obj_id": "biz", "bk_inst_id": 7}]}),
            esb_extra: biz7.clone(),
            code: 1199011,
            en: "not support biz",
            zh: "not support biz",
        },
        Refusal {
            native: "/api/v3/host/topo/relation/read",
            name: "find_host_topo_relation",
            body: json!({"bk_biz_id": 7, "page": {"limit": 1001}}),
            esb_extra: json!({}),
            code: 1199059,
            en: "page limit is exceeded. suggestion 200",
            zh: "分页查询数量超过限制的最大值, 建议值200",
        },
        Refusal {
            native: "/api/v3/hosts/list_hosts_without_app",
            name: "list_hosts_without_biz",
            body: json!({"page": {"limit": 1001}}),
            esb_extra: json!({}),
            code: 1199006,
            en: "'page.limit' data parameter verification does not pass",
            zh: "'page.limit' 数据参数校验不通过",
        },
        Refusal {
            native: "/api/v3/findmany/set/bk_biz_id/7",
            name: "find_set_batch",
            body: json!({"bk_ids": [], "fields": ["bk_set_id"]}),
            esb_extra: biz7.clone(),
            code: 1199089,
            en: "the length of array bk_ids is wrong, the length must be in range 1~500",
            zh: "bk_ids数组长度错误，数组长度必须在1~500之间",
        },
    ];
    for r in &refusals {
        r.check(&s);
    }
}

// ---------------------------------------------------------------------------------------------
// Sorting the lists the topology tests do not sort

#[test]
fn more_lists_sort_by_each_field_both_ways() {
    let (s, _td) = server();
    let host_fields = [
        "bk_host_id",
        "bk_host_name",
        "bk_host_innerip",
        "bk_cloud_id",
        "bk_cpu",
        "bk_os_type",
        "operator",
        "rack",
        "create_time",
    ];
    let lists = [
        (
            Sorted {
                path: "/api/v3/hosts/app/7/list_hosts_topo",
                body: json!({"fields": host_fields}),
                id: &["host", "bk_host_id"],
                record: &["host"],
            },
            &host_fields[..],
        ),
        (
            Sorted {
                path: "/api/v3/hosts/list_hosts_without_app",
                body: json!({}),
                id: &["bk_host_id"],
                record: &[],
            },
            &host_fields[..],
        ),
        (
            Sorted {
                path: "/api/v3/findmany/module/with_relation/biz/7",
                body: json!({"fields": ["bk_module_id", "bk_module_name", "bk_set_id",
                    "service_template_id", "default"]}),
                id: &["bk_module_id"],
                record: &[],
            },
            &[
                "bk_module_id",
                "bk_module_name",
                "bk_set_id",
                "service_template_id",
                "default",
            ][..],
        ),
    ];
    for (list, fields) in &lists {
        for field in *fields {
            list.check(&s, field);
        }
    }
    // Written out, so the rule is not only checked against itself.
    let hosts = |path: &str, sort: &str| {
        let d = ok(
            &s,
            "POST",
            path,
            &json!({"fields": ["bk_host_id"], "page": {"sort": sort, "limit": 10}}),
        );
        d["info"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                i.get("host")
                    .unwrap_or(i)
                    .get("bk_host_id")
                    .unwrap()
                    .as_i64()
                    .unwrap()
            })
            .collect::<Vec<i64>>()
    };
    assert_eq!(
        hosts("/api/v3/hosts/app/7/list_hosts_topo", "-bk_cpu"),
        [14, 11, 12, 13, 15]
    );
    assert_eq!(
        hosts("/api/v3/hosts/list_hosts_without_app", "bk_host_name"),
        [12, 16, 14, 15, 17, 13, 11]
    );
    let d = ok(
        &s,
        "POST",
        "/api/v3/findmany/module/with_relation/biz/7",
        &json!({"fields": ["bk_module_id"], "page": {"sort": "-bk_set_id,bk_module_name"}}),
    );
    // Set 5's built-in modules by their stored (Chinese) names: 待回收 < 故障机 < 空闲机.
    assert_eq!(ids(&d["info"], "bk_module_id"), [15, 14, 13, 12, 10, 11]);
}

/// bk-cmdb sorts `cc_ModuleHostConfig` by `page.sort` (coreservice `GetHostModuleRelation`),
/// ties in storage order (here host, then module); a sort path MongoDB refuses fails the query,
/// which the host server answers as a failed HTTP call.
#[test]
fn find_host_topo_relation_sorts_its_relations() {
    let (s, _td) = server();
    let path = "/api/v3/host/topo/relation/read";
    let rels = |sort: &str| {
        let d = ok(
            &s,
            "POST",
            path,
            &json!({"bk_biz_id": 7, "page": {"limit": 10, "sort": sort}}),
        );
        let mut page = json!({"limit": 10, "start": 0});
        if !sort.is_empty() {
            page["sort"] = json!(sort);
        }
        assert_eq!(d["page"], page);
        host_module_pairs(&d["data"])
    };
    let storage = [(11, 10), (12, 10), (12, 11), (13, 10), (14, 12), (15, 13)];
    assert_eq!(rels(""), storage);
    assert_eq!(rels("bk_host_id"), storage);
    assert_eq!(rels("bk_set_id"), storage);
    assert_eq!(rels("bk_biz_id:-1"), storage);
    assert_eq!(rels("no_such_field"), storage);
    assert_eq!(
        rels("-bk_host_id"),
        [(15, 13), (14, 12), (13, 10), (12, 10), (12, 11), (11, 10)]
    );
    assert_eq!(
        rels("-bk_module_id"),
        [(15, 13), (14, 12), (12, 11), (11, 10), (12, 10), (13, 10)]
    );
    assert_eq!(
        rels("bk_module_id,-bk_host_id"),
        [(13, 10), (12, 10), (11, 10), (12, 11), (14, 12), (15, 13)]
    );
    assert_eq!(
        rels("-bk_set_id"),
        [(15, 13), (14, 12), (11, 10), (12, 10), (12, 11), (13, 10)]
    );
    // The page is cut after sorting.
    let d = ok(
        &s,
        "POST",
        path,
        &json!({"bk_biz_id": 7, "page": {"start": 1, "limit": 2, "sort": "-bk_host_id"}}),
    );
    assert_eq!(d["count"], json!(6));
    assert_eq!(ids(&d["data"], "bk_host_id"), [14, 13]);
    both(
        &s,
        "POST",
        path,
        &json!({"bk_biz_id": 7, "page": {"limit": 10, "sort": "bk_host_id,,bk_set_id"}}),
        1199002,
        "HTTP request failed",
        "HTTP请求失败",
    );
}

// ---------------------------------------------------------------------------------------------
// An unknown sort field, and bk-cmdb's other sort spellings

/// Every list that takes `page.sort`: its path, a body, where an item's id is, and the ids in
/// storage order.
fn sortable_lists() -> Vec<(&'static str, Value, &'static [&'static str], Vec<i64>)> {
    vec![
        (BIZ, json!({}), &["bk_biz_id"], vec![7, 8, 9]),
        (
            "/api/v3/set/search/0/7",
            json!({}),
            &["bk_set_id"],
            vec![3, 4, 5],
        ),
        (
            "/api/v3/module/search/0/7/0",
            json!({}),
            &["bk_module_id"],
            vec![10, 11, 12, 13, 14, 15],
        ),
        (
            "/api/v3/findmany/module/with_relation/biz/7",
            json!({"fields": ["bk_module_id"]}),
            &["bk_module_id"],
            vec![10, 11, 12, 13, 14, 15],
        ),
        (
            HOSTS7,
            json!({"fields": ["bk_host_id"]}),
            &["bk_host_id"],
            vec![11, 12, 13, 14, 15],
        ),
        (
            "/api/v3/hosts/app/7/list_hosts_topo",
            json!({}),
            &["host", "bk_host_id"],
            vec![11, 12, 13, 14, 15],
        ),
        (
            "/api/v3/hosts/list_hosts_without_app",
            json!({"fields": ["bk_host_id"]}),
            &["bk_host_id"],
            vec![11, 12, 13, 14, 15, 16, 17],
        ),
        (
            "/api/v3/findmany/cloudarea",
            json!({}),
            &["bk_cloud_id"],
            vec![0, 5],
        ),
        (
            PRI,
            json!({"fields": ["bk_process_id"]}),
            &["process", "bk_process_id"],
            vec![40, 41, 42],
        ),
    ]
}

fn sorted_ids(s: &Server, path: &str, body: &Value, id: &[&str], sort: &str) -> Vec<i64> {
    let mut body = body.clone();
    body["page"] = json!({"sort": sort, "limit": 100});
    let d = ok(s, "POST", path, &body);
    d["info"]
        .as_array()
        .unwrap_or_else(|| panic!("{path} sorted by {sort}: {d}"))
        .iter()
        .map(|i| id.iter().fold(i, |v, k| &v[*k]).as_i64().unwrap())
        .collect()
}

#[test]
fn an_unknown_sort_field_keeps_storage_order_on_every_list() {
    let (s, _td) = server();
    for (path, body, id, storage) in sortable_lists() {
        // MongoDB sorts a field no record has as null everywhere: every tie keeps storage
        // order, ascending or descending (search_cloud_area's default newest-first is replaced).
        for sort in ["no_such_field", "-no_such_field", "no_such_field:-1"] {
            assert_eq!(
                sorted_ids(&s, path, &body, id, sort),
                storage,
                "{path} sorted by {sort}"
            );
        }
    }
}

#[test]
fn every_list_reads_the_sort_spellings_as_bk_cmdb_does() {
    let (s, _td) = server();
    for (path, body, id, storage) in sortable_lists() {
        let key = id.last().unwrap();
        let mut reversed = storage.clone();
        reversed.reverse();
        // `Find.Sort`: with `:`, only `-1` is descending, whatever the sign before the name.
        for (sort, want) in [
            (format!("+{key}"), &storage),
            (format!("{key}:1"), &storage),
            (format!("-{key}:1"), &storage),
            (format!("{key}:0"), &storage),
            (format!("{key}:-1"), &reversed),
            (format!(" -{key} "), &reversed),
            (format!("no_such_field,-{key}"), &reversed),
        ] {
            assert_eq!(
                &sorted_ids(&s, path, &body, id, &sort),
                want,
                "{path} sorted by {sort:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Paging edges of every list

/// `(count, ids)` of one page of a list.
fn page_of(s: &Server, path: &str, body: &Value, id: &[&str], page: Value) -> (i64, Vec<i64>) {
    let mut body = body.clone();
    body["page"] = page;
    let d = ok(s, "POST", path, &body);
    let items = d
        .get("info")
        .or_else(|| d.get("data"))
        .unwrap_or_else(|| panic!("{path}: {d}"));
    let list = match items {
        Value::Null => Vec::new(),
        v => v
            .as_array()
            .unwrap()
            .iter()
            .map(|i| id.iter().fold(i, |v, k| &v[*k]).as_i64().unwrap())
            .collect(),
    };
    (d["count"].as_i64().unwrap(), list)
}

#[test]
fn search_business_and_cloud_area_paging_edges() {
    let (s, _td) = server();
    // search_business: no checks, limit 0 is every business, no maximum.
    let biz = |p: Value| page_of(&s, BIZ, &json!({}), &["bk_biz_id"], p);
    assert_eq!(biz(json!({"limit": 0})), (3, vec![7, 8, 9]));
    assert_eq!(biz(json!({"start": 3, "limit": 1})), (3, vec![]));
    assert_eq!(biz(json!({"start": 2, "limit": 0})), (3, vec![9]));
    assert_eq!(biz(json!({"limit": 1_000_000})), (3, vec![7, 8, 9]));
    // search_cloud_area: limit 0 is 1000; 1..=1000 or 999999999; newest first.
    let path = "/api/v3/findmany/cloudarea";
    let area = |p: Value| page_of(&s, path, &json!({}), &["bk_cloud_id"], p);
    assert_eq!(area(json!({"limit": 0})), (2, vec![5, 0]));
    assert_eq!(area(json!({"limit": 1000})), (2, vec![5, 0]));
    assert_eq!(area(json!({"start": 2, "limit": 10})), (2, vec![]));
    assert_eq!(area(json!({"start": 50})), (2, vec![]));
    for page in [json!({"limit": -1}), json!({"limit": 1001})] {
        invalid(&s, "POST", path, &json!({"page": page}), "%s");
    }
}

#[test]
fn module_with_relation_and_hosts_topo_paging_edges() {
    let (s, _td) = server();
    // find_module_with_relation: limit 0 is everything, at most 500.
    let path = "/api/v3/findmany/module/with_relation/biz/7";
    let body = json!({"fields": ["bk_module_id"]});
    let m = |p: Value| page_of(&s, path, &body, &["bk_module_id"], p);
    let all = vec![10, 11, 12, 13, 14, 15];
    assert_eq!(m(json!({"limit": 0})), (6, all.clone()));
    assert_eq!(m(json!({"limit": 500})), (6, all.clone()));
    assert_eq!(m(json!({"start": 6, "limit": 5})), (6, vec![]));
    assert_eq!(m(json!({"start": 4, "limit": 5})), (6, vec![14, 15]));
    both(
        &s,
        "POST",
        path,
        &json!({"fields": ["bk_module_id"], "page": {"limit": 501}}),
        1199015,
        "Data out of bounds%!(EXTRA string=page)",
        "'page' 数据越界",
    );
    // list_biz_hosts_topo: limit 1..=500; past the end of the host ids the count is 0, as
    // list_biz_hosts.
    let path = "/api/v3/hosts/app/7/list_hosts_topo";
    let h = |p: Value| page_of(&s, path, &json!({}), &["host", "bk_host_id"], p);
    assert_eq!(h(json!({"limit": 500})), (5, vec![11, 12, 13, 14, 15]));
    assert_eq!(h(json!({"start": 4, "limit": 500})), (5, vec![15]));
    assert_eq!(h(json!({"start": 5, "limit": 500})), (5, vec![]));
    assert_eq!(h(json!({"start": 6, "limit": 500})), (0, vec![]));
    unassigned(
        &s,
        "POST",
        path,
        &json!({"page": {"limit": 0}}),
        "page.limit",
    );
    exceed_limit(
        &s,
        "POST",
        path,
        &json!({"page": {"limit": 501}}),
        "page.limit",
        500,
    );
}

#[test]
fn host_lists_paging_edges() {
    let (s, _td) = server();
    // list_hosts_without_biz: `Validate(false)`: limit 0 is everything, 999999999 is refused.
    let path = "/api/v3/hosts/list_hosts_without_app";
    let body = json!({"fields": ["bk_host_id"]});
    let w = |p: Value| page_of(&s, path, &body, &["bk_host_id"], p);
    let all = vec![11, 12, 13, 14, 15, 16, 17];
    assert_eq!(w(json!({"limit": 0})), (7, all.clone()));
    assert_eq!(w(json!({"limit": 1000})), (7, all.clone()));
    assert_eq!(w(json!({"start": 7, "limit": 10})), (7, vec![]));
    assert_eq!(w(json!({"start": 100})), (7, vec![]));
    for limit in [1001, 999999999, -1] {
        invalid(
            &s,
            "POST",
            path,
            &json!({"page": {"limit": limit}}),
            "page.limit",
        );
    }
    invalid(
        &s,
        "POST",
        path,
        &json!({"page": {"start": -1, "limit": 1}}),
        "page.start",
    );
    // find_host_topo_relation: limit 1..=1000 or 999999999; a page past the end is empty.
    let path = "/api/v3/host/topo/relation/read";
    let r = |p: Value| page_of(&s, path, &json!({"bk_biz_id": 7}), &["bk_host_id"], p);
    assert_eq!(r(json!({"limit": 1000})), (6, vec![11, 12, 12, 13, 14, 15]));
    assert_eq!(r(json!({"start": 6, "limit": 1000})), (6, vec![]));
    assert_eq!(
        ok(
            &s,
            "POST",
            path,
            &json!({"bk_biz_id": 7, "page": {"start": 99, "limit": 5}})
        ),
        json!({"count": 6, "data": [], "page": {"limit": 5, "start": 99}})
    );
    // find_host_by_service_template: limit 1..=1000.
    let path = "/api/v3/findmany/hosts/by_service_templates/biz/7";
    let body = json!({"bk_service_template_ids": [5], "fields": ["bk_host_id"]});
    let t = |p: Value| page_of(&s, path, &body, &["bk_host_id"], p);
    assert_eq!(t(json!({"limit": 1000})), (1, vec![12]));
    assert_eq!(t(json!({"start": 1, "limit": 1000})), (1, vec![]));
    // list_process_related_info: limit 1..=1000 or 999999999.
    let p = |pg: Value| page_of(&s, PRI, &json!({}), &["process", "bk_process_id"], pg);
    assert_eq!(p(json!({"limit": 1000})), (3, vec![40, 41, 42]));
    assert_eq!(p(json!({"start": 3, "limit": 1000})), (3, vec![]));
    // list_biz_hosts: limit 1..=1000 (999999999 refused, `Validate(false)`).
    let b = |pg: Value| page_of(&s, HOSTS7, &json!({}), &["bk_host_id"], pg);
    assert_eq!(b(json!({"limit": 1000})), (5, vec![11, 12, 13, 14, 15]));
    assert_eq!(b(json!({"start": 5, "limit": 1000})), (5, vec![]));
}
