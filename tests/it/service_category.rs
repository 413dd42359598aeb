//! Black-box tests of `create_service_category`, `update_service_category` and
//! `delete_service_category` (events-sync spec 3): every rule and refusal in both languages,
//! the create/update uniqueness asymmetry, the `'bk_biz_id'` text for a missing parent,
//! built-in categories deletable when unused, on all three route families.
//!
//! The demo: built-in categories 1 "Default" (root) and 2 "Default" (its child), category 2
//! used by service templates 5 and 9 and modules 20 to 22; businesses 7 and 8.

use crate::common::lang::{both, call, invalid, json_error, not_found};
use crate::common::*;
use serde_json::{Value, json};

const CREATE: &str = "/api/v3/create/proc/service_category";
const UPDATE: &str = "/api/v3/update/proc/service_category";
const DELETE: &str = "/api/v3/delete/proc/service_category";
const LIST: &str = "/api/v3/findmany/proc/service_category";

fn record(biz: i64, id: i64, name: &str, root: i64, parent: i64) -> Value {
    json!({"bk_biz_id": biz, "id": id, "name": name, "bk_root_id": root,
           "bk_parent_id": parent, "bk_supplier_account": "0", "is_built_in": biz == 0})
}

#[track_caller]
fn create(s: &Server, biz: i64, name: &str, parent: i64) -> Value {
    call(
        s,
        "POST",
        CREATE,
        &json!({"bk_biz_id": biz, "name": name, "bk_parent_id": parent}),
        false,
    )
}

#[track_caller]
fn create_id(s: &Server, biz: i64, name: &str, parent: i64) -> i64 {
    let r = create(s, biz, name, parent);
    assert_eq!(r["result"], true, "{r}");
    r["data"]["id"].as_i64().unwrap()
}

fn duplicated(s: &Server, method: &str, path: &str, body: Value, name: &str) {
    both(
        s,
        method,
        path,
        &body,
        1113017,
        &format!("service caetgory name [{name}] duplicated"),
        &format!("服务分类名称【{name}】重复"),
    );
}

fn listed_names(s: &Server, biz: i64) -> Vec<(i64, String)> {
    let r = call(s, "POST", LIST, &json!({"bk_biz_id": biz}), false);
    r["data"]["info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_i64().unwrap(),
                c["name"].as_str().unwrap().into(),
            )
        })
        .collect()
}

#[test]
fn create_roots_and_children() {
    let s = Server::memory();
    // A root: its own root; ids from 3 (the demo's categories are 1 and 2).
    assert_eq!(
        create(&s, 7, "web", 0),
        ok_native(record(7, 3, "web", 3, 0))
    );
    // A child of a built-in root, then a child of that child (three levels are accepted).
    assert_eq!(
        create(&s, 7, "nginx", 1),
        ok_native(record(7, 4, "nginx", 1, 1))
    );
    assert_eq!(
        create(&s, 7, "nginx-edge", 4),
        ok_native(record(7, 5, "nginx-edge", 1, 4))
    );
    // A parent of another business is accepted.
    assert_eq!(
        create(&s, 8, "lab-child", 3),
        ok_native(record(8, 6, "lab-child", 3, 3))
    );
    // Names: word characters, Han, ':', '-', '(' and ')'.
    assert_eq!(create(&s, 7, "数据(主):x_1", 0)["result"], true);
    assert_eq!(
        listed_names(&s, 7),
        [
            (1, "Default".into()),
            (2, "Default".into()),
            (4, "nginx".into()),
            (5, "nginx-edge".into()),
            (3, "web".into()),
            (7, "数据(主):x_1".into())
        ]
    );
    // The list of business 8 holds its own and the built-in ones only.
    assert_eq!(listed_names(&s, 8).len(), 3);
}

#[test]
fn create_refusals_in_order() {
    let s = Server::memory();
    let body = |biz: i64, name: &str, parent: i64| json!({"bk_biz_id": biz, "name": name, "bk_parent_id": parent});
    // 1. The name first, even with a bad business.
    for name in [
        "",
        "a b",
        "a.b",
        " web",
        "ｗｅｂ",
        "（x）",
        &"界".repeat(129),
    ] {
        invalid(&s, "POST", CREATE, &body(0, name, 0), "name");
    }
    assert_eq!(create(&s, 7, &"界".repeat(128), 0)["result"], true);
    // 2. The business: 0 or unknown.
    invalid(&s, "POST", CREATE, &body(0, "x", 0), "bk_biz_id");
    invalid(&s, "POST", CREATE, &body(99, "x", 0), "bk_biz_id");
    // 3. A missing parent names bk_biz_id.
    invalid(&s, "POST", CREATE, &body(7, "x", 999), "bk_biz_id");
    // 4. Uniqueness: roots among roots (built-in ones included)...
    duplicated(&s, "POST", CREATE, body(7, "Default", 0), "Default");
    let web = create_id(&s, 7, "web", 0);
    duplicated(&s, "POST", CREATE, body(7, "web", 0), "web");
    // ...another business may reuse a root name...
    assert_eq!(create(&s, 8, "web", 0)["result"], true);
    // ...a child among every non-root category of any parent: "Default" is the built-in
    // child of root 1, so no child anywhere may take that name.
    duplicated(&s, "POST", CREATE, body(7, "Default", web), "Default");
    let child = create_id(&s, 7, "api", web);
    duplicated(&s, "POST", CREATE, body(7, "api", 1), "api");
    // A root may take a child's name, and a negative parent counts as a child.
    assert_eq!(create(&s, 7, "api", 0)["result"], true);
    duplicated(&s, "POST", CREATE, body(7, "api", -1), "api");
    // A negative parent is stored as given, its own root.
    let neg = create(&s, 7, "neg", -1);
    let id = neg["data"]["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("{neg}"));
    assert_eq!(neg, ok_native(record(7, id, "neg", id, -1)));
    // Failed requests take no id.
    assert_eq!(create_id(&s, 7, "next", child), child + 3);
    json_error(&s, "POST", CREATE, &json!({"bk_biz_id": 7, "name": 5}));
}

#[test]
fn update_rules() {
    let s = Server::memory();
    let web = create_id(&s, 7, "web", 0);
    let api = create_id(&s, 7, "api", web);
    let other = create_id(&s, 7, "other", 0);
    let upd = |id: i64, name: &str| json!({"id": id, "name": name, "bk_biz_id": 123});
    // 1. Unknown id (before the name is looked at).
    for id in [0, 999] {
        not_found(&s, "PUT", UPDATE, &upd(id, "a b"));
    }
    // 2. The name rule.
    invalid(&s, "PUT", UPDATE, &upd(api, "a b"), "name");
    // 3. Built-in categories cannot be renamed (the zh text speaks of deleting).
    both(
        &s,
        "PUT",
        UPDATE,
        &upd(2, "x"),
        1199054,
        "operate built-in object forbidden",
        "内置结点，禁止删除",
    );
    // 4. Unique among siblings only: a child may now take a built-in child's name, which
    // create would refuse.
    assert_eq!(
        call(&s, "PUT", UPDATE, &upd(api, "Default"), false),
        ok_native(record(7, api, "Default", web, web))
    );
    duplicated(&s, "PUT", UPDATE, upd(other, "web"), "web");
    duplicated(&s, "PUT", UPDATE, upd(other, "Default"), "Default");
    // The same name again is no clash with itself.
    assert_eq!(
        call(&s, "PUT", UPDATE, &upd(other, "other"), false),
        ok_native(record(7, other, "other", other, 0))
    );
    json_error(&s, "PUT", UPDATE, &json!({"id": "1"}));
}

#[test]
fn delete_rules() {
    let s = Server::memory();
    let web = create_id(&s, 7, "web", 0);
    let leaf = create_id(&s, 7, "leaf", web);
    let del = |id: i64| json!({"id": id, "bk_biz_id": 8});
    not_found(&s, "DELETE", DELETE, &del(999));
    // A parent with a child.
    for id in [web, 1] {
        both(
            &s,
            "DELETE",
            DELETE,
            &del(id),
            1199055,
            "forbidden remove item with child node",
            "禁止父结点记录",
        );
    }
    // Used by service templates and modules.
    both(
        &s,
        "DELETE",
        DELETE,
        &del(2),
        1199056,
        "remove referenced record forbidden",
        "禁止删除被引用记录",
    );
    // A template in the leaf: referenced; the template deleted: the leaf goes.
    let r = call(
        &s,
        "POST",
        "/api/v3/create/proc/service_template",
        &json!({"bk_biz_id": 7, "name": "t", "service_category_id": leaf}),
        false,
    );
    let st = r["data"]["id"].as_i64().unwrap_or_else(|| panic!("{r}"));
    both(
        &s,
        "DELETE",
        DELETE,
        &del(leaf),
        1199056,
        "remove referenced record forbidden",
        "禁止删除被引用记录",
    );
    let r = call(
        &s,
        "DELETE",
        "/api/v3/delete/proc/service_template",
        &json!({"bk_biz_id": 7, "service_template_id": st}),
        false,
    );
    assert_eq!(r, ok_native(Value::Null));
    assert_eq!(
        call(&s, "DELETE", DELETE, &del(leaf), false),
        ok_native(Value::Null)
    );
    assert_eq!(
        call(&s, "DELETE", DELETE, &del(web), false),
        ok_native(Value::Null)
    );
    assert_eq!(
        listed_names(&s, 7),
        [(1, "Default".into()), (2, "Default".into())]
    );
    json_error(&s, "DELETE", DELETE, &json!({"id": []}));
}

#[test]
fn built_in_categories_can_be_deleted_when_unused() {
    // A seed where nothing uses the built-in child 2: it goes, then its root.
    let mut ds = demo_dataset();
    ds["service_templates"] = json!([]);
    ds["process_templates"] = json!([]);
    ds["service_instances"] = json!([]);
    ds["processes"] = json!([]);
    for m in ds["modules"].as_array_mut().unwrap() {
        m["service_category_id"] = json!(0);
        m["service_template_id"] = json!(0);
    }
    let dir = TempDir::new("svccat");
    let seed = dir.join("seed.json");
    std::fs::write(&seed, ds.to_string()).unwrap();
    let s = Server::start(&["--memory", "--seed", seed.to_str().unwrap()]);
    for id in [2, 1] {
        assert_eq!(
            call(&s, "DELETE", DELETE, &json!({"id": id}), false),
            ok_native(Value::Null)
        );
    }
    assert_eq!(
        call(&s, "POST", LIST, &json!({"bk_biz_id": 7}), false),
        ok_native(json!({"count": 0, "info": null}))
    );
}

#[test]
fn gateway_and_esb_routes() {
    let s = Server::memory();
    let esb = |name: &str, body: Value| s.esb(name, &[("X-Request-Id", "rid-2")], &body);
    let esb_ok = |data: Value| with_request_id(ok_esb(data), "rid-2");
    assert_eq!(
        esb(
            "create_service_category",
            json!({"bk_biz_id": 7, "name": "web", "bk_parent_id": 0})
        ),
        esb_ok(record(7, 3, "web", 3, 0))
    );
    assert_eq!(
        esb(
            "create_service_category",
            json!({"bk_biz_id": 7, "name": "web"})
        ),
        json!({"result": false, "code": 1113017, "message": "服务分类名称【web】重复",
               "permission": null, "request_id": "rid-2", "data": null})
    );
    assert_eq!(
        esb("update_service_category", json!({"id": 3, "name": "web2"})),
        esb_ok(record(7, 3, "web2", 3, 0))
    );
    let gw = |method: &str, path: &str, body: Value| s.gateway(method, path, &body);
    assert_eq!(
        gw("PUT", UPDATE, json!({"id": 1, "name": "x"})),
        err_esb(1199054, "operate built-in object forbidden")
    );
    assert_eq!(gw("DELETE", DELETE, json!({"id": 3})), ok_esb(json!(null)));
    assert_eq!(
        esb("delete_service_category", json!({"id": 3})),
        json!({"result": false, "code": 1199019, "message": "未找到相关数据",
               "permission": null, "request_id": "rid-2", "data": null})
    );
}

#[test]
fn check_is_clean_after_category_writes() {
    let dir = TempDir::new("svccat-check");
    let db = dir.join("cmdb.redb");
    let mut s = Server::file(&db);
    let web = create_id(&s, 7, "web", 0);
    create_id(&s, 7, "leaf", web);
    create_id(&s, 7, "neg", -1);
    let gone = create_id(&s, 8, "gone", 0);
    assert_eq!(
        call(&s, "DELETE", DELETE, &json!({"id": gone}), false),
        ok_native(Value::Null)
    );
    send_signal(&s.child, SIGTERM);
    wait_exit(&mut s.child, std::time::Duration::from_secs(30)).expect("exit after SIGTERM");
    assert_clean(&db);
    // The export imports again (a negative parent is not a dangling reference).
    let (code, out, err) = run_cli(&["export", "--db", db.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let file = dir.join("export.json");
    std::fs::write(&file, out).unwrap();
    let db2 = dir.join("again.redb");
    let (code, _, err) = run_cli(&[
        "import",
        file.to_str().unwrap(),
        "--db",
        db2.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "import: {err}");
}
