//! Black-box tests of the service-template APIs (`create_service_template`,
//! `update_service_template`, `get_service_template`, `list_service_template`,
//! `delete_service_template`) against the real binary: spec bk-cmdb-process.md sections 4.1, 4.4
//! and 5, and bk-cmdb's proc_server `servicetemplate.go` / coreservice
//! `core/process/service_template.go`.
//!
//! The demo dataset: business 7 with service templates 5 "tpl-gateway" (used by module 21 and
//! service instance 31) and 9 "tpl-web" (used by module 22), both in the built-in leaf category
//! 2 (child of the root 1); business 8 has none. New service template ids start at 10.

use crate::common::lang::{both, call, invalid, json_error, not_found};
use crate::common::*;
use serde_json::{Value, json};

const CREATE: &str = "/api/v3/create/proc/service_template";
const UPDATE: &str = "/api/v3/update/proc/service_template";
const GET: &str = "/api/v3/find/proc/service_template/";
const LIST: &str = "/api/v3/findmany/proc/service_template";
const DELETE: &str = "/api/v3/delete/proc/service_template";
const PT_CREATE: &str = "/api/v3/createmany/proc/proc_template";

/// The time of every record of the demo dataset.
const DEMO_TIME: &str = "2026-01-02T03:04:05.678Z";

// ---------------------------------------------------------------------------------------------
// helpers

fn create(s: &Server, body: &Value) -> Value {
    call(s, "POST", CREATE, body, false)
}

/// Creates a template of business 7 in category 2 and returns its id.
#[track_caller]
fn create_ok(s: &Server, biz: i64, name: &str, category: i64) -> i64 {
    let r = create(
        s,
        &json!({"bk_biz_id": biz, "name": name, "service_category_id": category}),
    );
    assert_eq!(r["result"], true, "create {name}: {r}");
    r["data"]["id"].as_i64().unwrap()
}

fn update(s: &Server, body: &Value) -> Value {
    call(s, "PUT", UPDATE, body, false)
}

fn get(s: &Server, id: &str) -> Value {
    call(s, "GET", &format!("{GET}{id}"), &Value::Null, false)
}

fn list(s: &Server, body: &Value) -> Value {
    call(s, "POST", LIST, body, false)
}

fn delete(s: &Server, body: &Value) -> Value {
    call(s, "DELETE", DELETE, body, false)
}

/// The ids a successful list answers, in order, and its count.
#[track_caller]
fn listed(s: &Server, body: &Value) -> (u64, Vec<i64>) {
    crate::common::lang::listed(s, LIST, body)
}

/// A list body for business `biz` with `extra` keys merged in and a page of 1000.
fn q(biz: i64, extra: Value) -> Value {
    let mut b = json!({"bk_biz_id": biz, "page": {"start": 0, "limit": 1000}});
    for (k, v) in extra.as_object().unwrap() {
        b[k] = v.clone();
    }
    b
}

/// A demo template as stored (and as every API answers it).
fn demo(id: i64, name: &str) -> Value {
    json!({"bk_biz_id": 7, "id": id, "name": name, "service_category_id": 2,
        "creator": "admin", "modifier": "admin", "create_time": DEMO_TIME, "last_time": DEMO_TIME,
        "bk_supplier_account": "0", "host_apply_enabled": false})
}

/// The template's text exactly as bk-cmdb's struct order writes it.
fn template_text(t: &Value) -> String {
    format!(
        r#"{{"bk_biz_id":{},"id":{},"name":{},"service_category_id":{},"creator":{},"modifier":{},"create_time":{},"last_time":{},"bk_supplier_account":{},"host_apply_enabled":{}}}"#,
        t["bk_biz_id"],
        t["id"],
        t["name"],
        t["service_category_id"],
        t["creator"],
        t["modifier"],
        t["create_time"],
        t["last_time"],
        t["bk_supplier_account"],
        t["host_apply_enabled"]
    )
}

/// A server seeded with the demo dataset changed by `f`.
fn seeded(f: impl FnOnce(&mut Value)) -> (TempDir, Server) {
    let mut ds = demo_dataset();
    f(&mut ds);
    let dir = TempDir::new("svctpl");
    let path = dir.join("seed.json");
    std::fs::write(&path, ds.to_string()).unwrap();
    let s = Server::start(&["--memory", "--seed", path.to_str().unwrap()]);
    (dir, s)
}

fn push(ds: &mut Value, key: &str, v: Value) {
    ds[key].as_array_mut().unwrap().push(v);
}

fn category(id: i64, parent: i64, root: i64, biz: i64) -> Value {
    json!({"id": id, "name": format!("cat-{id}"), "bk_parent_id": parent, "bk_root_id": root,
        "bk_biz_id": biz})
}

fn stored_template(id: i64, biz: i64, name: &str, category: i64, time: &str) -> Value {
    json!({"bk_biz_id": biz, "id": id, "name": name, "service_category_id": category,
        "creator": "seed", "modifier": "seed", "create_time": time, "last_time": time,
        "bk_supplier_account": "0", "host_apply_enabled": false})
}

/// The demo plus a category tree and templates in it:
///
/// ```text
/// built-in   1 ─ 2                          (templates 5, 9: demo, business 7)
/// biz 7      3 ─ 4 ─ 5                      (23 in 3, 21 in 4, 20 in 5)
///                └── 9 (a biz 8 category)   (24, business 8)
/// biz 7      6                              (22)
/// biz 8      7 ─ 8                          (25, business 8)
/// ```
///
/// Template create times are out of id order (20 is the newest, 22 the oldest).
fn tree(ds: &mut Value) {
    for c in [
        category(3, 0, 3, 7),
        category(4, 3, 3, 7),
        category(5, 4, 3, 7),
        category(6, 0, 6, 7),
        category(7, 0, 7, 8),
        category(8, 7, 7, 8),
        category(9, 4, 3, 8),
    ] {
        push(ds, "service_categories", c);
    }
    for t in [
        stored_template(20, 7, "t-cat5", 5, "2026-03-01T00:00:00Z"),
        stored_template(21, 7, "t-cat4", 4, "2026-02-01T00:00:00.5Z"),
        stored_template(22, 7, "t-cat6", 6, "2025-12-31T23:59:59.999Z"),
        stored_template(23, 7, "t-cat3", 3, "2026-01-15T00:00:00Z"),
        stored_template(24, 8, "t8-cat9", 9, "2026-01-15T00:00:00Z"),
        stored_template(25, 8, "t8-cat8", 8, "2026-01-15T00:00:00Z"),
    ] {
        push(ds, "service_templates", t);
    }
    ds["sequences"]["service_template"] = json!(25);
}

// ---------------------------------------------------------------------------------------------
// create_service_template

#[test]
fn create_answers_the_stored_template_in_struct_order() {
    let s = Server::memory();
    let before = now_ms();
    let r = s.request(
        "POST",
        CREATE,
        &[
            ("X-Bkcmdb-User", "bob"),
            ("X-Bkcmdb-Supplier-Account", "0"),
        ],
        br#"{"bk_biz_id": 7, "name": "  web  ", "service_category_id": 2, "host_apply_enabled": true, "unknown": 1}"#,
    );
    let after = now_ms();
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    let t = &v["data"];
    let time = parse_time(&t["create_time"]);
    assert!(before - 1 <= time && time <= after + 1, "{t}");
    assert_eq!(t["last_time"], t["create_time"]);
    let expected = json!({"bk_biz_id": 7, "id": 10, "name": "web", "service_category_id": 2,
        "creator": "bob", "modifier": "bob", "create_time": t["create_time"],
        "last_time": t["create_time"], "bk_supplier_account": "0", "host_apply_enabled": true});
    assert_eq!(v, ok_native(expected.clone()));
    assert_eq!(data_text(&r.body), template_text(&expected));

    // Stored as answered.
    let r = s.request("GET", &format!("{GET}10"), &NATIVE_EN, b"");
    assert_eq!(data_text(&r.body), template_text(&expected));

    // Business 8, the built-in category; the same name is fine in another business.
    let r = create(
        &s,
        &json!({"bk_biz_id": 8, "name": "web", "service_category_id": 2}),
    );
    assert_eq!(r["data"]["id"], 11, "{r}");
    assert_eq!(r["data"]["bk_biz_id"], 8);
    assert_eq!(r["data"]["creator"], "admin");
    assert_eq!(r["data"]["host_apply_enabled"], false);
}

#[test]
fn create_ids_strictly_increase_and_failures_consume_none() {
    let s = Server::memory();
    assert_eq!(create_ok(&s, 7, "a", 2), 10);
    // Failures in between leave no gap.
    assert_eq!(
        create(
            &s,
            &json!({"bk_biz_id": 7, "name": "a", "service_category_id": 2})
        )["bk_error_code"],
        1199014
    );
    assert_eq!(
        create(
            &s,
            &json!({"bk_biz_id": 7, "name": "b", "service_category_id": 1})
        )["bk_error_code"],
        1113032
    );
    assert_eq!(create_ok(&s, 7, "b", 2), 11);
    // Never reused after a delete.
    assert_eq!(
        delete(&s, &json!({"bk_biz_id": 7, "service_template_id": 11})),
        ok_native(Value::Null)
    );
    assert_eq!(create_ok(&s, 7, "b", 2), 12);
    assert_eq!(create_ok(&s, 8, "c", 2), 13);
}

#[test]
fn create_name_rules() {
    let s = Server::memory();
    let body = |name: &str| json!({"bk_biz_id": 7, "name": name, "service_category_id": 2});
    let long_ok = "界".repeat(256);
    let too_long = "界".repeat(257);
    let too_long_padded = format!("{too_long} ");
    let long_padded = format!("  {long_ok}  ");
    for bad in [
        "",
        " ",
        "     ",
        "a\\b",
        "a|b",
        "a/b",
        "a:b",
        "a*b",
        "a,b",
        "a<b",
        "a>b",
        "a\"b",
        "a?b",
        "a#b",
        "a b",
        "a\tb",
        "a\nb",
        "a\rb",
        "a\u{c}b",
        // Only ' ' is trimmed: other white space stays and is refused.
        "\tweb",
        "web\n",
        too_long.as_str(),
        // Padding is trimmed before the runes are counted.
        too_long_padded.as_str(),
    ] {
        invalid(&s, "POST", CREATE, &body(bad), "name");
    }
    // A missing or null name is the empty name.
    invalid(
        &s,
        "POST",
        CREATE,
        &json!({"bk_biz_id": 7, "service_category_id": 2}),
        "name",
    );
    invalid(
        &s,
        "POST",
        CREATE,
        &json!({"bk_biz_id": 7, "name": null, "service_category_id": 2}),
        "name",
    );

    // Go's \s is [\t\n\f\r ]: a vertical tab or a no-break space is a name character.
    let mut next = 10;
    for (good, stored) in [
        ("a\u{b}b", "a\u{b}b"),
        ("a\u{a0}b", "a\u{a0}b"),
        ("  padded ", "padded"),
        (long_ok.as_str(), long_ok.as_str()),
        (long_padded.as_str(), "dup"),
        (
            "web.1-x_(y)[z]{w}+=!@$%^&~`';",
            "web.1-x_(y)[z]{w}+=!@$%^&~`';",
        ),
        ("服务-中文", "服务-中文"),
    ] {
        let r = create(&s, &body(good));
        if stored == "dup" {
            // The trimmed name equals the 256-rune one created just before.
            assert_eq!(
                r,
                err_native(
                    1199014,
                    "duplicated instances exist, fields [name] duplicated"
                )
            );
            continue;
        }
        assert_eq!(r["result"], true, "{good:?}: {r}");
        assert_eq!(r["data"]["id"], next);
        assert_eq!(r["data"]["name"], stored);
        assert_eq!(get(&s, &next.to_string())["data"]["name"], stored);
        next += 1;
    }
}

#[test]
fn create_business_and_category_rules_in_bk_cmdb_order() {
    let (_d, s) = seeded(tree);
    let body = |biz: Value, name: &str, cat: Value| json!({"bk_biz_id": biz, "name": name, "service_category_id": cat});
    // Unknown or zero business.
    for biz in [json!(0), json!(null), json!(999), json!(-7)] {
        invalid(&s, "POST", CREATE, &body(biz, "x", json!(2)), "bk_biz_id");
    }
    invalid(
        &s,
        "POST",
        CREATE,
        &json!({"name": "x", "service_category_id": 2}),
        "bk_biz_id",
    );
    // Unknown category.
    for cat in [json!(0), json!(null), json!(999), json!(-2)] {
        invalid(
            &s,
            "POST",
            CREATE,
            &body(json!(7), "x", cat),
            "service_category_id",
        );
    }
    // Not a leaf: the built-in root 1, business 7's 3 and 4, business 8's root 7 (the leaf
    // check comes before the business match).
    for cat in [1, 3, 4, 7] {
        both(
            &s,
            "POST",
            CREATE,
            &body(json!(7), "x", json!(cat)),
            1113032,
            "only leaf node available",
            "仅允许使用叶子结点服务分类",
        );
    }
    // A leaf of another business: 8 and 9 (a business 8 child of business 7's 4).
    for cat in [8, 9] {
        invalid(
            &s,
            "POST",
            CREATE,
            &body(json!(7), "x", json!(cat)),
            "bk_biz_id",
        );
    }
    // Order: name, then business, then category.
    invalid(
        &s,
        "POST",
        CREATE,
        &body(json!(999), "a/b", json!(999)),
        "name",
    );
    invalid(
        &s,
        "POST",
        CREATE,
        &body(json!(999), "x", json!(999)),
        "bk_biz_id",
    );
    // Category before the duplicate name.
    both(
        &s,
        "POST",
        CREATE,
        &body(json!(7), "tpl-web", json!(1)),
        1113032,
        "only leaf node available",
        "仅允许使用叶子结点服务分类",
    );
    // Nothing was created: the next id follows the seeded sequence.
    assert_eq!(create_ok(&s, 7, "in-5", 5), 26);
    assert_eq!(create_ok(&s, 7, "in-6", 6), 27);
    assert_eq!(create_ok(&s, 8, "in-8", 8), 28);
    assert_eq!(create_ok(&s, 8, "in-9", 9), 29);
    assert_eq!(create_ok(&s, 8, "in-2", 2), 30);
    assert_eq!(get(&s, "29")["data"]["service_category_id"], 9);
}

#[test]
fn create_duplicate_names_per_business() {
    let s = Server::memory();
    for name in ["tpl-web", "  tpl-web ", "tpl-gateway"] {
        both(
            &s,
            "POST",
            CREATE,
            &json!({"bk_biz_id": 7, "name": name, "service_category_id": 2}),
            1199014,
            "duplicated instances exist, fields [name] duplicated",
            "数据唯一性校验失败， name 重复",
        );
    }
    // Case matters; another business is another namespace.
    assert_eq!(create_ok(&s, 7, "TPL-WEB", 2), 10);
    assert_eq!(create_ok(&s, 8, "tpl-web", 2), 11);
    both(
        &s,
        "POST",
        CREATE,
        &json!({"bk_biz_id": 8, "name": "tpl-web", "service_category_id": 2}),
        1199014,
        "duplicated instances exist, fields [name] duplicated",
        "数据唯一性校验失败， name 重复",
    );
}

#[test]
fn create_wrong_json_types_are_1199000() {
    let s = Server::memory();
    for body in [
        json!({"bk_biz_id": "7", "name": "x", "service_category_id": 2}),
        json!({"bk_biz_id": 7.5, "name": "x", "service_category_id": 2}),
        json!({"bk_biz_id": 7, "name": 5, "service_category_id": 2}),
        json!({"bk_biz_id": 7, "name": ["x"], "service_category_id": 2}),
        json!({"bk_biz_id": 7, "name": "x", "service_category_id": "2"}),
        json!({"bk_biz_id": 7, "name": "x", "service_category_id": 2, "host_apply_enabled": "true"}),
        json!({"bk_biz_id": 7, "name": "x", "service_category_id": 2, "host_apply_enabled": 1}),
        json!([1]),
        json!("x"),
    ] {
        json_error(&s, "POST", CREATE, &body);
    }
    // Keys match case-insensitively, as Go's decoder does.
    let r = create(
        &s,
        &json!({"BK_BIZ_ID": 7, "Name": "x", "Service_Category_Id": 2, "HOST_APPLY_ENABLED": true}),
    );
    assert_eq!(r["data"]["id"], 10, "{r}");
    assert_eq!(r["data"]["host_apply_enabled"], true);
}

// ---------------------------------------------------------------------------------------------
// update_service_template

#[test]
fn update_renames_and_recategorises_keeping_modifier_and_time() {
    let (_d, s) = seeded(tree);
    let id = create_ok(&s, 7, "old", 2);
    let created = get(&s, &id.to_string())["data"].clone();

    // Another user updates: bk-cmdb leaves modifier and last_time as they were.
    let r = s.request(
        "PUT",
        UPDATE,
        &[
            ("X-Bkcmdb-User", "carol"),
            ("X-Bkcmdb-Supplier-Account", "0"),
        ],
        json!({"bk_biz_id": 7, "id": id, "name": "  new ", "service_category_id": 6})
            .to_string()
            .as_bytes(),
    );
    let mut expected = created.clone();
    expected["name"] = json!("new");
    expected["service_category_id"] = json!(6);
    assert_eq!(r.json(), ok_native(expected.clone()));
    assert_eq!(data_text(&r.body), template_text(&expected));
    assert_eq!(get(&s, &id.to_string()), ok_native(expected.clone()));

    // Nothing given (empty name, category 0): nothing changes, the template is answered.
    for body in [
        json!({"bk_biz_id": 7, "id": id}),
        json!({"bk_biz_id": 7, "id": id, "name": "", "service_category_id": 0}),
        json!({"bk_biz_id": 7, "id": id, "name": "new"}),
        // A negative category is not looked at; bk_biz_id is not looked at either.
        json!({"bk_biz_id": 8, "id": id, "service_category_id": -3}),
        json!({"id": id}),
    ] {
        assert_eq!(update(&s, &body), ok_native(expected.clone()), "{body}");
    }
    // Renaming to its own name padded: trimmed, no clash with itself.
    assert_eq!(
        update(&s, &json!({"bk_biz_id": 7, "id": id, "name": " new  "})),
        ok_native(expected.clone())
    );
    // Only the category.
    expected["service_category_id"] = json!(5);
    assert_eq!(
        update(
            &s,
            &json!({"bk_biz_id": 7, "id": id, "service_category_id": 5})
        ),
        ok_native(expected.clone())
    );
    // The freed name can be taken by another template.
    assert_eq!(create_ok(&s, 7, "old", 2), id + 1);
}

#[test]
fn update_errors_in_bk_cmdb_order() {
    let (_d, s) = seeded(tree);
    let id = create_ok(&s, 7, "mine", 2);
    let body = |extra: Value| {
        let mut b = json!({"bk_biz_id": 7, "id": id});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    // Unknown template: first of all.
    for bad in [
        json!({"bk_biz_id": 7, "id": 999, "name": "a/b", "service_category_id": 999}),
        json!({"bk_biz_id": 7, "name": "x"}),
        json!({"bk_biz_id": 7, "id": -5}),
        json!({}),
    ] {
        not_found(&s, "PUT", UPDATE, &bad);
    }
    // Category: unknown, of another business (both 'service_category_id'), not a leaf.
    for cat in [999, 8, 9] {
        invalid(
            &s,
            "PUT",
            UPDATE,
            &body(json!({"service_category_id": cat, "name": "tpl-web"})),
            "service_category_id",
        );
    }
    for cat in [1, 3, 4] {
        both(
            &s,
            "PUT",
            UPDATE,
            &body(json!({"service_category_id": cat, "name": "tpl-web"})),
            1113032,
            "only leaf node available",
            "仅允许使用叶子结点服务分类",
        );
    }
    // Business 8's leaf 8 is refused for a business 7 template, accepted for business 8's.
    let id8 = create_ok(&s, 8, "b8", 2);
    assert_eq!(
        update(&s, &json!({"id": id8, "service_category_id": 8}))["data"]["service_category_id"],
        8
    );
    // Name taken by another template of the business.
    for name in ["tpl-web", "t-cat3"] {
        both(
            &s,
            "PUT",
            UPDATE,
            &body(json!({"name": name, "service_category_id": 6})),
            1199014,
            "duplicated instances exist, fields [name] duplicated",
            "数据唯一性校验失败， name 重复",
        );
    }
    // A padded name whose trimmed form is taken passes bk-cmdb's check (made on the untrimmed
    // name) and then hits MongoDB's unique (bk_biz_id, name) index: 1199020.
    both(
        &s,
        "PUT",
        UPDATE,
        &body(json!({"name": " tpl-web "})),
        1199020,
        "Failed to update data",
        "更新数据失败",
    );
    // Bad names.
    for name in ["a/b", "   ", "a b", "\tx", &"界".repeat(257)] {
        invalid(&s, "PUT", UPDATE, &body(json!({"name": name})), "name");
    }
    // Nothing of the above was written.
    let t = get(&s, &id.to_string());
    assert_eq!(t["data"]["name"], "mine");
    assert_eq!(t["data"]["service_category_id"], 2);

    // Template 5 is used by module 21 (set 3): another module of set 3 is called "web-raw"
    // (raw) and "web-app" (built from template 9), so neither name is free for template 5.
    for name in ["web-raw", "web-app"] {
        both(
            &s,
            "PUT",
            UPDATE,
            &json!({"bk_biz_id": 7, "id": 5, "name": name}),
            1199014,
            "duplicated instances exist, fields [name] duplicated",
            "数据唯一性校验失败， name 重复",
        );
    }
    // Its own module's name is fine (same template), and a template used by no module may
    // take a module's name.
    assert_eq!(
        update(&s, &json!({"bk_biz_id": 7, "id": 5, "name": "web-tpl"}))["data"]["name"],
        "web-tpl"
    );
    assert_eq!(
        update(&s, &body(json!({"name": "web-raw"})))["data"]["name"],
        "web-raw"
    );

    // Wrong JSON types.
    for bad in [
        json!({"bk_biz_id": 7, "id": "5"}),
        json!({"bk_biz_id": 7, "id": id, "name": 1}),
        json!({"bk_biz_id": 7, "id": id, "service_category_id": "6"}),
        json!({"bk_biz_id": "7", "id": id}),
    ] {
        json_error(&s, "PUT", UPDATE, &bad);
    }
}

#[test]
fn update_moves_the_modules_built_from_the_template() {
    let dir = TempDir::new("svctpl-modules");
    let mut ds = demo_dataset();
    tree(&mut ds);
    let seed = dir.join("seed.json");
    std::fs::write(&seed, ds.to_string()).unwrap();
    let db = dir.join("db.redb");
    let s = Server::start(&[
        "--db",
        db.to_str().unwrap(),
        "--seed",
        seed.to_str().unwrap(),
    ]);
    let r = update(
        &s,
        &json!({"bk_biz_id": 7, "id": 9, "name": " web-renamed ", "service_category_id": 6}),
    );
    assert_eq!(r["data"]["name"], "web-renamed", "{r}");
    // A category given equal to the modules' own changes nothing for them.
    let r = update(
        &s,
        &json!({"bk_biz_id": 7, "id": 5, "service_category_id": 2}),
    );
    assert_eq!(r["result"], true, "{r}");
    s.stop();

    let (code, out, err) = run_cli(&["export", "--db", db.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let ex: Value = serde_json::from_str(&out).unwrap();
    let module = |id: i64| {
        ex["modules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["bk_module_id"] == id)
            .unwrap()
            .clone()
    };
    // Module 22 (template 9) follows its template's name and category.
    assert_eq!(module(22)["bk_module_name"], "web-renamed");
    assert_eq!(module(22)["service_category_id"], 6);
    // The others are untouched.
    assert_eq!(module(21)["bk_module_name"], "web-tpl");
    assert_eq!(module(21)["service_category_id"], 2);
    assert_eq!(module(20)["bk_module_name"], "web-raw");
    assert_eq!(module(20)["service_category_id"], 2);
}

// ---------------------------------------------------------------------------------------------
// get_service_template

#[test]
fn get_by_path_id() {
    let s = Server::memory();
    let r = s.request("GET", &format!("{GET}9"), &NATIVE_EN, b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), ok_native(demo(9, "tpl-web")));
    assert_eq!(data_text(&r.body), template_text(&demo(9, "tpl-web")));
    // With a trailing slash, and Go's ParseInt accepting a sign.
    assert_eq!(get(&s, "5/"), ok_native(demo(5, "tpl-gateway")));
    assert_eq!(get(&s, "+5"), ok_native(demo(5, "tpl-gateway")));
    // Not scoped by business: the path is all there is.
    let id = create_ok(&s, 8, "eight", 2);
    assert_eq!(get(&s, &id.to_string())["data"]["bk_biz_id"], 8);

    for missing in ["77", "0", "-5", "9223372036854775807"] {
        both(
            &s,
            "GET",
            &format!("{GET}{missing}"),
            &Value::Null,
            1199019,
            "No relevant data found",
            "未找到相关数据",
        );
    }
    // A path id that is not an int64: bk-cmdb passes its argument list as one value, so the
    // text shows it in brackets with Go's ParseInt error.
    for (raw, reason) in [
        ("abc", r#""abc": invalid syntax"#),
        ("1.5", r#""1.5": invalid syntax"#),
        ("-", r#""-": invalid syntax"#),
        ("0x10", r#""0x10": invalid syntax"#),
        (
            "99999999999999999999",
            r#""99999999999999999999": value out of range"#,
        ),
        (
            "-9223372036854775809",
            r#""-9223372036854775809": value out of range"#,
        ),
    ] {
        let arg = format!("[service_template_id strconv.ParseInt: parsing {reason}]");
        both(
            &s,
            "GET",
            &format!("{GET}{raw}"),
            &Value::Null,
            1199006,
            &format!("'{arg}' data parameter verification does not pass"),
            &format!("'{arg}' 数据参数校验不通过"),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// list_service_template

#[test]
fn list_default_sort_and_shape() {
    let s = Server::memory();
    let r = s.request(
        "POST",
        LIST,
        &NATIVE_EN,
        json!({"bk_biz_id": 7, "page": {"limit": 10}})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(
        r.json(),
        ok_native(json!({"count": 2, "info": [demo(9, "tpl-web"), demo(5, "tpl-gateway")]}))
    );
    assert_eq!(
        data_text(&r.body),
        format!(
            r#"{{"count":2,"info":[{},{}]}}"#,
            template_text(&demo(9, "tpl-web")),
            template_text(&demo(5, "tpl-gateway"))
        )
    );
    // Business 8 has none: an empty list, not null.
    assert_eq!(
        list(&s, &json!({"bk_biz_id": 8, "page": {"limit": 10}})),
        ok_native(json!({"count": 0, "info": []}))
    );
}

#[test]
fn list_paging_edges() {
    let s = Server::memory();
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        assert_eq!(create_ok(&s, 7, name, 2), 10 + i as i64);
    }
    // The page is required: limit 1..=1000 or 999999999, start >= 0.
    for page in [
        Value::Null,
        json!({}),
        json!({"limit": 0}),
        json!({"limit": -1}),
        json!({"limit": 1001}),
        json!({"limit": 999999998}),
        json!({"limit": 1000000000}),
        json!({"start": -1, "limit": 10}),
        json!({"start": 0, "limit": 0, "enable_count": true}),
    ] {
        let mut body = json!({"bk_biz_id": 7});
        if !page.is_null() {
            body["page"] = page.clone();
        }
        both(
            &s,
            "POST",
            LIST,
            &body,
            1199059,
            "page limit is exceeded. suggestion 200",
            "分页查询数量超过限制的最大值, 建议值200",
        );
    }
    let page = |p: Value| json!({"bk_biz_id": 7, "page": p});
    assert_eq!(
        listed(&s, &page(json!({"limit": 1000}))),
        (5, vec![12, 11, 10, 9, 5])
    );
    assert_eq!(
        listed(&s, &page(json!({"limit": 999999999}))),
        (5, vec![12, 11, 10, 9, 5])
    );
    assert_eq!(listed(&s, &page(json!({"limit": 2}))), (5, vec![12, 11]));
    assert_eq!(
        listed(&s, &page(json!({"start": 2, "limit": 2}))),
        (5, vec![10, 9])
    );
    assert_eq!(
        listed(&s, &page(json!({"start": 4, "limit": 2}))),
        (5, vec![5])
    );
    assert_eq!(
        listed(&s, &page(json!({"start": 5, "limit": 2}))),
        (5, vec![])
    );
    assert_eq!(
        listed(&s, &page(json!({"start": 1000000, "limit": 1}))),
        (5, vec![])
    );
    // Wrong types in the page.
    for p in [
        json!("x"),
        json!({"limit": "10"}),
        json!({"limit": 1.5}),
        json!({"start": "1", "limit": 10}),
        json!({"limit": 10, "sort": 1}),
    ] {
        json_error(&s, "POST", LIST, &page(p));
    }
}

#[test]
fn list_sort() {
    let (_d, s) = seeded(tree);
    // Names chosen so byte order differs from id order.
    assert_eq!(create_ok(&s, 7, "b-web", 2), 26);
    assert_eq!(create_ok(&s, 7, "a-web", 2), 27);
    assert_eq!(create_ok(&s, 7, "C-web", 2), 28);
    let ids = vec![5, 9, 26, 27, 28];
    let sorted = |sort: &str| {
        listed(
            &s,
            &q(
                7,
                json!({"service_template_ids": ids, "page": {"limit": 100, "sort": sort}}),
            ),
        )
        .1
    };
    assert_eq!(sorted(""), vec![28, 27, 26, 9, 5]);
    assert_eq!(sorted("-id"), vec![28, 27, 26, 9, 5]);
    assert_eq!(sorted("id"), vec![5, 9, 26, 27, 28]);
    assert_eq!(sorted("+id"), vec![5, 9, 26, 27, 28]);
    assert_eq!(sorted("id:1"), vec![5, 9, 26, 27, 28]);
    assert_eq!(sorted("id:-1"), vec![28, 27, 26, 9, 5]);
    // Byte order: upper case first.
    assert_eq!(sorted("name"), vec![28, 27, 26, 5, 9]);
    assert_eq!(sorted("name:-1"), vec![9, 5, 26, 27, 28]);
    assert_eq!(sorted("-name"), vec![9, 5, 26, 27, 28]);
    // Equal values keep storage (id) order; a second key breaks the tie.
    assert_eq!(sorted("bk_biz_id"), vec![5, 9, 26, 27, 28]);
    assert_eq!(sorted("bk_biz_id,-id"), vec![28, 27, 26, 9, 5]);
    // A field no template has sorts as null for all.
    assert_eq!(sorted("nope"), vec![5, 9, 26, 27, 28]);

    // Times compare as dates: the seeded templates' create times are out of id order.
    let by_time = |sort: &str| {
        listed(
            &s,
            &q(
                0,
                json!({"service_template_ids": [20, 21, 22, 23, 5], "page": {"limit": 10, "sort": sort}}),
            ),
        )
        .1
    };
    // 22 2025-12-31, 5 2026-01-02, 23 2026-01-15, 21 2026-02-01, 20 2026-03-01.
    assert_eq!(by_time("create_time"), vec![22, 5, 23, 21, 20]);
    assert_eq!(by_time("-create_time"), vec![20, 21, 23, 5, 22]);
    assert_eq!(by_time("last_time:-1"), vec![20, 21, 23, 5, 22]);
    // Sorting applies before paging.
    assert_eq!(
        listed(
            &s,
            &q(
                0,
                json!({"service_template_ids": [20, 21, 22, 23, 5], "page": {"start": 1, "limit": 2, "sort": "create_time"}}),
            ),
        ),
        (5, vec![5, 23])
    );
}

#[test]
fn list_search_is_an_escaped_case_insensitive_substring() {
    let s = Server::memory();
    let mut ids = std::collections::BTreeMap::new();
    for name in [
        "x(1)", "v1", "a.b", "axb", "web+", "wwweb", "x[1]", "c^d", "Web$",
    ] {
        ids.insert(name, create_ok(&s, 7, name, 2));
    }
    let id = |n: &str| ids[n];
    let search = |text: &str, exact: bool| {
        let mut got = listed(&s, &q(7, json!({"search": text, "is_exact": exact}))).1;
        got.sort();
        got
    };
    // Case-insensitive substring.
    assert_eq!(search("WEB", false), {
        let mut v = vec![9, id("web+"), id("wwweb"), id("Web$")];
        v.sort();
        v
    });
    assert_eq!(search("TPL-", false), vec![5, 9]);
    // Regex specials are escaped ...
    assert_eq!(search("(1)", false), vec![id("x(1)")]);
    assert_eq!(search("[1]", false), vec![id("x[1]")]);
    assert_eq!(search("a.b", false), vec![id("a.b")]);
    assert_eq!(search(".", false), vec![id("a.b")]);
    assert_eq!(search("c^d", false), vec![id("c^d")]);
    assert_eq!(search("^tpl", false), Vec::<i64>::new());
    assert_eq!(search("b$", false), vec![id("Web$")]);
    assert_eq!(search("?", false), Vec::<i64>::new());
    assert_eq!(search("*", false), Vec::<i64>::new());
    // ... except '+', which stays a quantifier: "w+eb" matches every "…web…", not "web+"
    // literally; "web+" matches "web" and "webb…".
    assert_eq!(search("w+eb", false), {
        let mut v = vec![9, id("web+"), id("wwweb"), id("Web$")];
        v.sort();
        v
    });
    // A pattern MongoDB cannot compile fails the query.
    both(
        &s,
        "POST",
        LIST,
        &q(7, json!({"search": "+"})),
        1199017,
        "Failed to query data",
        "查询数据失败",
    );
    // is_exact: the whole name, case-sensitive, no pattern at all.
    assert_eq!(search("tpl-web", true), vec![9]);
    assert_eq!(search("TPL-WEB", true), Vec::<i64>::new());
    assert_eq!(search("tpl", true), Vec::<i64>::new());
    assert_eq!(search("a.b", true), vec![id("a.b")]);
    assert_eq!(search("+", true), Vec::<i64>::new());
    // An empty search is no filter, exact or not.
    assert_eq!(search("", true).len(), 11);
    // The count follows the filter.
    assert_eq!(
        listed(&s, &q(7, json!({"search": "web", "page": {"limit": 1}}))).0,
        4
    );
}

#[test]
fn list_category_includes_descendants_of_the_business_and_built_ins() {
    let (_d, s) = seeded(tree);
    let cat = |biz: i64, c: Value| listed(&s, &q(biz, json!({"service_category_id": c})));
    assert_eq!(cat(7, json!(3)), (3, vec![23, 21, 20]));
    assert_eq!(cat(7, json!(4)), (2, vec![21, 20]));
    assert_eq!(cat(7, json!(5)), (1, vec![20]));
    assert_eq!(cat(7, json!(6)), (1, vec![22]));
    assert_eq!(cat(7, json!(1)), (2, vec![9, 5]));
    assert_eq!(cat(7, json!(999)), (0, vec![]));
    // Business 8: its own categories and the built-ins are followed, so 4's child 9 counts
    // there, and business 7's category 3 has no descendant.
    assert_eq!(cat(8, json!(4)), (1, vec![24]));
    assert_eq!(cat(8, json!(3)), (0, vec![]));
    assert_eq!(cat(8, json!(7)), (1, vec![25]));
    // Business 0 means every business, but only built-in categories are followed.
    assert_eq!(cat(0, json!(3)), (1, vec![23]));
    assert_eq!(cat(0, json!(4)), (1, vec![21]));
    assert_eq!(cat(0, json!(1)), (2, vec![9, 5]));
    // 0, null and negative are no filter.
    for c in [json!(0), json!(null), json!(-3)] {
        assert_eq!(cat(7, c), (6, vec![23, 22, 21, 20, 9, 5]));
    }
    json_error(&s, "POST", LIST, &q(7, json!({"service_category_id": "3"})));
}

#[test]
fn list_ids_filter_and_every_business() {
    let (_d, s) = seeded(tree);
    assert_eq!(
        listed(&s, &q(7, json!({"service_template_ids": [5, 999, 9, 24]}))),
        (2, vec![9, 5])
    );
    assert_eq!(
        listed(&s, &q(0, json!({"service_template_ids": [5, 999, 9, 24]}))),
        (3, vec![24, 9, 5])
    );
    // Empty or null: no filter.
    for ids in [json!([]), json!(null)] {
        assert_eq!(
            listed(&s, &q(8, json!({"service_template_ids": ids}))),
            (2, vec![25, 24])
        );
    }
    // Business 0: every business; an unknown or negative one: nothing.
    assert_eq!(
        listed(&s, &q(0, json!({}))),
        (8, vec![25, 24, 23, 22, 21, 20, 9, 5])
    );
    assert_eq!(listed(&s, &q(999, json!({}))), (0, vec![]));
    assert_eq!(listed(&s, &q(-7, json!({}))), (0, vec![]));
    // Filters combine.
    assert_eq!(
        listed(
            &s,
            &q(
                7,
                json!({"service_template_ids": [20, 21, 22], "service_category_id": 4, "search": "CAT5"})
            )
        ),
        (1, vec![20])
    );
    for bad in [
        json!({"service_template_ids": "5"}),
        json!({"service_template_ids": ["5"]}),
        json!({"service_template_ids": [5.5]}),
        json!({"search": 5}),
        json!({"is_exact": "true"}),
        json!({"bk_biz_id": "7"}),
    ] {
        json_error(&s, "POST", LIST, &q(7, bad));
    }
}

// ---------------------------------------------------------------------------------------------
// delete_service_template

#[test]
fn delete_is_refused_while_anything_uses_the_template() {
    // Template 40 is used by service instance 33 only (on the raw module 20).
    let (_d, s) = seeded(|ds| {
        push(
            ds,
            "service_templates",
            stored_template(40, 7, "si-only", 2, DEMO_TIME),
        );
        push(
            ds,
            "service_instances",
            json!({"bk_biz_id": 7, "id": 33, "name": "si", "labels": null,
                "service_template_id": 40, "bk_host_id": 12, "bk_module_id": 20,
                "creator": "admin", "modifier": "admin", "create_time": DEMO_TIME,
                "last_time": DEMO_TIME, "bk_supplier_account": "0"}),
        );
        ds["sequences"]["service_template"] = json!(40);
        ds["sequences"]["service_instance"] = json!(33);
    });
    let refused = |body: Value| {
        both(
            &s,
            "DELETE",
            DELETE,
            &body,
            1108030,
            "delete service template failed",
            "删除服务模板失败",
        )
    };
    // 5: module 21 and service instance 31; 9: module 22; 40: service instance 33.
    for id in [5, 9, 40] {
        refused(json!({"bk_biz_id": 7, "service_template_id": id}));
    }
    // Missing.
    refused(json!({"bk_biz_id": 7, "service_template_id": 999}));
    refused(json!({"bk_biz_id": 7}));
    refused(json!({}));
    // Still having process templates (and nothing else): success, as bk-cmdb, and its process
    // templates go with it (bk-cmdb would leave them pointing at a template that is gone).
    let id = create_ok(&s, 7, "with-proc", 2);
    let r = call(
        &s,
        "POST",
        PT_CREATE,
        &json!({"bk_biz_id": 7, "service_template_id": id, "processes": [
            {"spec": {"bk_process_name": {"value": "p"}, "bk_func_name": {"value": "p"}}},
            {"spec": {"bk_process_name": {"value": "q"}, "bk_func_name": {"value": "q"}}}]}),
        false,
    );
    let pts: Vec<i64> = r["data"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .filter_map(Value::as_i64)
        .collect();
    assert_eq!(pts.len(), 2, "{r}");
    assert_eq!(
        delete(&s, &json!({"bk_biz_id": 7, "service_template_id": id})),
        ok_native(Value::Null)
    );
    for pt in pts {
        let r = call(
            &s,
            "POST",
            &format!("/api/v3/find/proc/proc_template/id/{pt}"),
            &json!({"bk_biz_id": 7}),
            false,
        );
        assert_eq!(r["bk_error_code"], 1199019, "{r}");
    }
    both(
        &s,
        "GET",
        &format!("{GET}{id}"),
        &Value::Null,
        1199019,
        "No relevant data found",
        "未找到相关数据",
    );
    refused(json!({"bk_biz_id": 7, "service_template_id": id}));
    // The others are still there.
    assert_eq!(listed(&s, &q(7, json!({}))), (3, vec![40, 9, 5]));
    // The name is free again; the id is not reused.
    assert_eq!(create_ok(&s, 7, "with-proc", 2), id + 1);
}

#[test]
fn delete_is_not_scoped_by_business() {
    let s = Server::memory();
    let id = create_ok(&s, 8, "eight", 2);
    // bk-cmdb deletes by id alone.
    assert_eq!(
        delete(&s, &json!({"bk_biz_id": 7, "service_template_id": id})),
        ok_native(Value::Null)
    );
    assert_eq!(listed(&s, &q(8, json!({}))), (0, vec![]));
    for bad in [
        json!({"bk_biz_id": 7, "service_template_id": "10"}),
        json!({"bk_biz_id": "7", "service_template_id": 10}),
        json!([10]),
    ] {
        json_error(&s, "DELETE", DELETE, &bad);
    }
}

// ---------------------------------------------------------------------------------------------
// route families

/// An ESB call: POST (or GET) `/api/c/compapi/v2/cc/<name>/` with auth keys in the body.
fn esb(s: &Server, method: &str, name: &str, query: &str, body: Value) -> Value {
    let body = as_esb_app(body);
    let raw = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let r = s.request(
        method,
        &format!("/api/c/compapi/v2/cc/{name}/{query}"),
        &[("X-Request-Id", "rid-1")],
        &raw,
    );
    assert_eq!(r.status, 200, "{name}: {}", r.body);
    r.json()
}

fn esb_ok(data: Value) -> Value {
    with_request_id(ok_esb(data), "rid-1")
}

fn esb_err(code: i64, msg: &str) -> Value {
    with_request_id(err_esb(code, msg), "rid-1")
}

/// Service template 10 as a create through another route family answered it: by `creator`, in
/// the envelope `ok` makes.
#[track_caller]
fn created_10(r: &Value, creator: &str, ok: fn(Value) -> Value) -> Value {
    let created = r["data"].clone();
    assert_eq!(created["id"], 10, "{r}");
    assert_eq!(created["creator"], creator);
    assert_eq!(*r, ok(created.clone()));
    created
}

#[test]
fn every_api_through_the_esb() {
    let s = Server::memory();
    let r = esb(
        &s,
        "POST",
        "create_service_template",
        "",
        json!({"bk_biz_id": 7, "name": "esb", "service_category_id": 2}),
    );
    let created = created_10(&r, "esb-user", esb_ok);

    // get: an ESB GET with the id in the query string.
    assert_eq!(
        esb(
            &s,
            "GET",
            "get_service_template",
            "?service_template_id=10",
            Value::Null
        ),
        esb_ok(created.clone())
    );
    assert_eq!(
        esb(
            &s,
            "GET",
            "get_service_template",
            "?service_template_id=5&bk_username=x",
            Value::Null
        ),
        esb_ok(demo(5, "tpl-gateway"))
    );
    assert_eq!(
        esb(
            &s,
            "GET",
            "get_service_template",
            "?service_template_id=77",
            Value::Null
        ),
        esb_err(1199019, "未找到相关数据")
    );
    let arg = |v: &str| {
        format!(
            "'[service_template_id strconv.ParseInt: parsing \"{v}\": invalid syntax]' 数据参数校验不通过"
        )
    };
    assert_eq!(
        esb(
            &s,
            "GET",
            "get_service_template",
            "?service_template_id=abc",
            Value::Null
        ),
        esb_err(1199006, &arg("abc"))
    );
    assert_eq!(
        esb(&s, "GET", "get_service_template", "", Value::Null),
        esb_err(1199006, &arg(""))
    );

    let mut renamed = created.clone();
    renamed["name"] = json!("esb2");
    assert_eq!(
        esb(
            &s,
            "POST",
            "update_service_template",
            "",
            json!({"bk_biz_id": 7, "id": 10, "name": "esb2"})
        ),
        esb_ok(renamed.clone())
    );
    assert_eq!(
        esb(
            &s,
            "POST",
            "list_service_template",
            "",
            json!({"bk_biz_id": 7, "search": "esb", "page": {"limit": 10}})
        ),
        esb_ok(json!({"count": 1, "info": [renamed]}))
    );
    assert_eq!(
        esb(
            &s,
            "POST",
            "list_service_template",
            "",
            json!({"bk_biz_id": 7})
        ),
        esb_err(1199059, "分页查询数量超过限制的最大值, 建议值200")
    );
    assert_eq!(
        esb(
            &s,
            "POST",
            "delete_service_template",
            "",
            json!({"bk_biz_id": 7, "service_template_id": 5})
        ),
        esb_err(1108030, "删除服务模板失败")
    );
    assert_eq!(
        esb(
            &s,
            "POST",
            "delete_service_template",
            "",
            json!({"bk_biz_id": 7, "service_template_id": 10})
        ),
        esb_ok(Value::Null)
    );
    assert_eq!(listed(&s, &q(7, json!({}))).1, vec![9, 5]);
}

#[test]
fn every_api_through_the_gateway() {
    let s = Server::memory();
    let auth = (
        "X-Bkapi-Authorization",
        r#"{"bk_app_code":"a","bk_app_secret":"s","bk_username":"gw-user"}"#,
    );
    let gw = |method: &str, path: &str, body: Value| {
        let raw = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        let r = s.request(
            method,
            &format!("/api/bk-cmdb/prod/api/v3/{path}"),
            &[auth, ("X-Bkcmdb-Language", "en")],
            &raw,
        );
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        r.json()
    };
    let ok = ok_esb;
    let r = gw(
        "POST",
        "create/proc/service_template",
        json!({"bk_biz_id": 7, "name": "gw", "service_category_id": 2}),
    );
    let created = created_10(&r, "gw-user", ok);
    assert_eq!(
        gw("GET", "find/proc/service_template/10", Value::Null),
        ok(created.clone())
    );
    assert_eq!(
        gw("GET", "find/proc/service_template/x", Value::Null),
        err_esb(
            1199006,
            "'[service_template_id strconv.ParseInt: parsing \"x\": invalid syntax]' data parameter verification does not pass"
        )
    );
    let mut renamed = created.clone();
    renamed["service_category_id"] = json!(2);
    renamed["name"] = json!("gw2");
    assert_eq!(
        gw(
            "PUT",
            "update/proc/service_template",
            json!({"bk_biz_id": 7, "id": 10, "name": "gw2"})
        ),
        ok(renamed.clone())
    );
    assert_eq!(
        gw(
            "POST",
            "findmany/proc/service_template",
            json!({"bk_biz_id": 7, "service_template_ids": [10], "page": {"limit": 1}})
        ),
        ok(json!({"count": 1, "info": [renamed]}))
    );
    assert_eq!(
        gw(
            "DELETE",
            "delete/proc/service_template",
            json!({"bk_biz_id": 7, "service_template_id": 10})
        ),
        ok(Value::Null)
    );
    assert_eq!(
        gw(
            "DELETE",
            "delete/proc/service_template",
            json!({"bk_biz_id": 7, "service_template_id": 10})
        ),
        err_esb(1108030, "delete service template failed")
    );
}
