//! Route families, envelopes, identity, language and request-id headers, transport errors and
//! concurrency, over real HTTP (product.md sections 3 and 6, spec sections 1.1 to 1.3).

use crate::common::*;
use serde_json::{Value, json};
use std::io::Write;
use std::sync::{Arc, Barrier, mpsc};
use std::time::{Duration, Instant};

const CREATE: &str = "/api/v3/create/proc/process_instance";
const LIST: &str = "/api/v3/findmany/proc/process_instance";
const GW_CREATE: &str = "/api/bk-cmdb/prod/api/v3/create/proc/process_instance";
const GW_LIST: &str = "/api/bk-cmdb/prod/api/v3/findmany/proc/process_instance";
const ESB_V2_CREATE: &str = "/api/c/compapi/v2/cc/create_process_instance/";
const ESB_CREATE: &str = "/api/c/compapi/cc/create_process_instance/";
const ESB_V2_LIST: &str = "/api/c/compapi/v2/cc/list_process_instance/";
const ESB_LIST: &str = "/api/c/compapi/cc/list_process_instance/";

const GW_AUTH: (&str, &str) = (
    "X-Bkapi-Authorization",
    r#"{"bk_app_code":"a","bk_app_secret":"s","bk_username":"alice"}"#,
);

const NATIVE_KEYS: [&str; 5] = [
    "result",
    "bk_error_code",
    "bk_error_msg",
    "permission",
    "data",
];
const GATEWAY_KEYS: [&str; 5] = ["result", "code", "message", "permission", "data"];
const ESB_KEYS: [&str; 6] = [
    "result",
    "code",
    "message",
    "permission",
    "request_id",
    "data",
];

/// The top-level keys of a JSON object, in the order they appear in the raw text.
fn top_keys(body: &str) -> Vec<String> {
    let b = body.trim().as_bytes();
    assert_eq!(b.first(), Some(&b'{'), "not an object: {body}");
    let mut keys = Vec::new();
    let (mut depth, mut i, mut expect_key) = (0usize, 0usize, false);
    while i < b.len() {
        match b[i] {
            b'"' => {
                let start = i + 1;
                i += 1;
                while b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if depth == 1 && expect_key {
                    keys.push(String::from_utf8(b[start..i].to_vec()).unwrap());
                    expect_key = false;
                }
            }
            b'{' | b'[' => {
                depth += 1;
                expect_key = depth == 1;
            }
            b'}' | b']' => depth -= 1,
            b',' if depth == 1 => expect_key = true,
            _ => {}
        }
        i += 1;
    }
    keys
}

fn assert_keys(r: &Resp, keys: &[&str]) {
    assert_eq!(top_keys(&r.body), keys, "key order of {}", r.body);
}

/// Asserts an answer's status and its top-level keys in the order of `keys`; its JSON.
#[track_caller]
fn enveloped(r: &Resp, status: u16, keys: &[&str]) -> Value {
    assert_eq!(r.status, status, "{}", r.body);
    assert_keys(r, keys);
    r.json()
}

/// A create in service instance 999, which does not exist (1199019).
fn to_unknown_instance() -> Value {
    json!({"bk_biz_id": 7, "service_instance_id": 999,
        "processes": [{"process_info": {"bk_process_name": "x"}}]})
}

fn proc_body(names: &[&str]) -> Value {
    let processes: Vec<Value> = names
        .iter()
        .map(|n| json!({"process_info": {"bk_process_name": n, "bk_func_name": n}}))
        .collect();
    json!({"bk_biz_id": 7, "service_instance_id": 30, "processes": processes})
}

fn send(s: &Server, method: &str, path: &str, headers: &[(&str, &str)], body: &Value) -> Resp {
    s.request(method, path, headers, body.to_string().as_bytes())
}

/// The stored property map of process `pid` in service instance 30.
fn stored(s: &Server, pid: i64) -> Value {
    listed_process(&s.list(7, 30), pid)["property"].clone()
}

fn created_id(v: &Value) -> i64 {
    assert_eq!(v["result"], json!(true), "{v}");
    v["data"][0]
        .as_i64()
        .unwrap_or_else(|| panic!("no id in {v}"))
}

fn b64url(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &c)| acc | (c as u32) << (16 - 8 * i));
        for k in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * k)) & 63) as usize] as char);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Families and envelopes
// ---------------------------------------------------------------------------------------------

#[test]
fn native_create_and_list_envelope() {
    let s = Server::memory();
    let r = send(&s, "POST", CREATE, &NATIVE_EN, &proc_body(&["n1"]));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_keys(&r, &NATIVE_KEYS);
    assert_eq!(r.json(), ok_native(json!([42])));
    assert!(
        r.body.starts_with(
            r#"{"result":true,"bk_error_code":0,"bk_error_msg":"success","permission":null,"data":"#
        ),
        "{}",
        r.body
    );

    let r = send(
        &s,
        "POST",
        LIST,
        &NATIVE_EN,
        &json!({"bk_biz_id": 7, "service_instance_id": 30}),
    );
    let v = enveloped(&r, 200, &NATIVE_KEYS);
    assert_eq!(v["result"], json!(true));
    assert_eq!(v["bk_error_code"], json!(0));
    assert_eq!(v["bk_error_msg"], json!("success"));
    assert_eq!(v["permission"], Value::Null);
    let data = v["data"].as_array().unwrap();
    let ids: Vec<i64> = data
        .iter()
        .map(|p| p["property"]["bk_process_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [41, 42]);
    assert_eq!(data[1]["property"]["bk_process_name"], json!("n1"));
    assert_eq!(data[1]["property"]["bk_created_by"], json!("admin"));
    assert_eq!(data[1]["relation"]["bk_process_id"], json!(42));
    assert_eq!(data[1]["relation"]["service_instance_id"], json!(30));
    assert_eq!(data[1]["relation"]["bk_host_id"], json!(11));

    // A business error: HTTP 200, result false, native keys in order.
    let r = send(&s, "POST", CREATE, &NATIVE_EN, &to_unknown_instance());
    assert_eq!(
        enveloped(&r, 200, &NATIVE_KEYS),
        err_native(1199019, "No relevant data found")
    );
}

#[test]
fn gateway_create_and_list_envelope() {
    let s = Server::memory();
    let r = send(&s, "POST", GW_CREATE, &[GW_AUTH], &proc_body(&["gw1"]));
    assert_eq!(enveloped(&r, 200, &GATEWAY_KEYS), ok_esb(json!([42])));
    assert_eq!(stored(&s, 42)["bk_created_by"], json!("alice"));

    let r = send(
        &s,
        "POST",
        GW_LIST,
        &[GW_AUTH],
        &json!({"bk_biz_id": 7, "service_instance_id": 30}),
    );
    let v = enveloped(&r, 200, &GATEWAY_KEYS);
    assert_eq!(v["result"], json!(true));
    assert_eq!(v["code"], json!(0));
    assert_eq!(v["data"].as_array().unwrap().len(), 2);

    // Any stage name.
    let r = send(
        &s,
        "POST",
        "/api/bk-cmdb/stag/api/v3/findmany/proc/process_instance",
        &[GW_AUTH],
        &json!({"bk_biz_id": 7, "service_instance_id": 30}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 2);

    // A business error through the gateway: 200, gateway keys.
    let r = send(&s, "POST", GW_CREATE, &[GW_AUTH], &to_unknown_instance());
    assert_eq!(
        enveloped(&r, 200, &GATEWAY_KEYS),
        err_esb(1199019, "未找到相关数据")
    );
}

#[test]
fn esb_create_and_list_envelope() {
    let s = Server::memory();
    let mut next = 42;
    for (path, list_path, user) in [
        (ESB_V2_CREATE, ESB_V2_LIST, "bob"),
        (ESB_CREATE, ESB_LIST, "carol"),
    ] {
        let mut body = proc_body(&[&format!("esb-{user}")]);
        body["bk_app_code"] = json!("app");
        body["bk_app_secret"] = json!("secret");
        body["bk_username"] = json!(user);
        body["bk_token"] = json!("tok");
        let r = send(&s, "POST", path, &[], &body);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert_keys(&r, &ESB_KEYS);
        let v = r.json();
        let rid = r.header("X-Request-Id").expect("X-Request-Id header");
        assert_eq!(v["request_id"], json!(rid), "{path}");
        assert_eq!(
            v,
            json!({"result": true, "code": 0, "message": "success", "permission": null,
                "request_id": rid, "data": [next]})
        );
        assert_eq!(stored(&s, next)["bk_created_by"], json!(user), "{path}");
        next += 1;

        let r = send(
            &s,
            "POST",
            list_path,
            &[("X-Request-Id", "esb-list-1")],
            &json!({"bk_biz_id": 7, "service_instance_id": 30, "bk_username": user, "bk_app_code": "app"}),
        );
        assert_eq!(r.status, 200, "{list_path}: {}", r.body);
        assert_keys(&r, &ESB_KEYS);
        let v = r.json();
        assert_eq!(v["request_id"], json!("esb-list-1"));
        assert_eq!(r.header("X-Request-Id"), Some("esb-list-1"));
        assert_eq!(v["data"].as_array().unwrap().len() as i64, next - 41);
    }

    // A business error through the ESB: 200, ESB keys, request_id still present.
    let r = send(
        &s,
        "POST",
        ESB_V2_CREATE,
        &[("X-Request-Id", "e-err")],
        &json!({"bk_biz_id": 7,
        "service_instance_id": 999, "bk_username": "bob", "processes": [{"process_info": {"bk_process_name": "x"}}]}),
    );
    assert_eq!(r.status, 200);
    assert_keys(&r, &ESB_KEYS);
    assert_eq!(
        r.json(),
        json!({"result": false, "code": 1199019, "message": "未找到相关数据", "permission": null,
            "request_id": "e-err", "data": null})
    );
}

#[test]
fn native_with_jwt_gets_gateway_envelope() {
    let s = Server::memory();
    let claims = json!({"app": {"app_code": "a", "verified": true}, "user": {"username": "jwtuser", "verified": true}});
    let jwt = format!(
        "{}.{}.c2ln",
        b64url(br#"{"alg":"RS512","typ":"JWT"}"#),
        b64url(claims.to_string().as_bytes())
    );
    // The gateway injects the supplier header. Without `--jwt-public-key` the token is not
    // verified, so it names nobody: the user comes from the user header (tests/it/auth.rs checks
    // signed tokens).
    let headers = [
        ("X-Bkapi-JWT", jwt.as_str()),
        ("X-Bkcmdb-Supplier-Account", "0"),
        ("X-Bkcmdb-User", "hdruser"),
    ];
    let r = send(&s, "POST", CREATE, &headers, &proc_body(&["jwt1"]));
    assert_eq!(enveloped(&r, 200, &GATEWAY_KEYS), ok_esb(json!([42])));
    assert_eq!(stored(&s, 42)["bk_created_by"], json!("hdruser"));

    let r = send(
        &s,
        "POST",
        LIST,
        &headers,
        &json!({"bk_biz_id": 7, "service_instance_id": 30}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_keys(&r, &GATEWAY_KEYS);
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 2);

    // A JWT next to the ordinary identity headers also switches the envelope.
    let mut h = NATIVE_EN.to_vec();
    h.push(("X-Bkapi-JWT", jwt.as_str()));
    let r = send(&s, "POST", CREATE, &h, &to_unknown_instance());
    assert_eq!(r.status, 200, "{}", r.body);
    assert_keys(&r, &GATEWAY_KEYS);
    assert_eq!(r.json()["code"], json!(1199019));
}

#[test]
fn trailing_slash_on_every_family_never_redirects() {
    let s = Server::memory();
    let list_body = json!({"bk_biz_id": 7, "service_instance_id": 30});
    type Case<'a> = (String, Vec<(&'a str, &'a str)>, &'a [&'a str]);
    let paths: Vec<Case> = vec![
        (CREATE.to_string(), NATIVE_EN.to_vec(), &NATIVE_KEYS),
        (LIST.to_string(), NATIVE_EN.to_vec(), &NATIVE_KEYS),
        (GW_CREATE.to_string(), vec![GW_AUTH], &GATEWAY_KEYS),
        (GW_LIST.to_string(), vec![GW_AUTH], &GATEWAY_KEYS),
        (
            ESB_V2_CREATE.trim_end_matches('/').to_string(),
            vec![],
            &ESB_KEYS,
        ),
        (
            ESB_CREATE.trim_end_matches('/').to_string(),
            vec![],
            &ESB_KEYS,
        ),
        (
            ESB_V2_LIST.trim_end_matches('/').to_string(),
            vec![],
            &ESB_KEYS,
        ),
        (
            ESB_LIST.trim_end_matches('/').to_string(),
            vec![],
            &ESB_KEYS,
        ),
    ];
    let mut n = 0;
    let mut last_id = 41;
    for (path, headers, keys) in &paths {
        for p in [path.clone(), format!("{path}/")] {
            n += 1;
            let is_create = p.contains("create");
            let mut body = if is_create {
                proc_body(&[&format!("slash-{n}")])
            } else {
                list_body.clone()
            };
            body["bk_username"] = json!("admin");
            let r = send(&s, "POST", &p, headers, &body);
            assert!(
                !(300..400).contains(&r.status),
                "{p}: redirect {}",
                r.status
            );
            assert_eq!(r.status, 200, "{p}: {}", r.body);
            assert_keys(&r, keys);
            let v = r.json();
            assert_eq!(v["result"], json!(true), "{p}: {v}");
            if is_create {
                let id = created_id(&v);
                assert!(id > last_id, "{p}: {id} after {last_id}");
                last_id = id;
            } else {
                assert!(!v["data"].as_array().unwrap().is_empty(), "{p}: {v}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Identity headers
// ---------------------------------------------------------------------------------------------

#[test]
fn native_missing_identity_headers_is_500() {
    let s = Server::memory();
    let body = proc_body(&["nobody"]);
    // No supplier: 1199027 'owner_id', before the body is parsed (a malformed body changes nothing).
    for (lang, msg) in [
        (
            Some("en"),
            "'owner_id' authorization information query failed",
        ),
        (None, "[owner_id]授权信息查询失败"),
    ] {
        let mut h = vec![("X-Bkcmdb-User", "admin")];
        if let Some(l) = lang {
            h.push(("X-Bkcmdb-Language", l));
        }
        let r = send(&s, "POST", CREATE, &h, &body);
        assert_eq!(enveloped(&r, 500, &NATIVE_KEYS), err_native(1199027, msg));
        let r = s.request("POST", CREATE, &h, b"{not json");
        assert_eq!(r.status, 500, "{}", r.body);
        assert_eq!(r.json(), err_native(1199027, msg));
        // Neither header at all.
        let h2: Vec<(&str, &str)> = h
            .iter()
            .filter(|(k, _)| *k != "X-Bkcmdb-User")
            .copied()
            .collect();
        let r = send(
            &s,
            "POST",
            LIST,
            &h2,
            &json!({"bk_biz_id": 7, "service_instance_id": 30}),
        );
        assert_eq!(r.status, 500, "{}", r.body);
        assert_eq!(r.json(), err_native(1199027, msg));
    }
    // Supplier but no user: 'user'.
    for (lang, msg) in [
        (Some("en"), "'user' authorization information query failed"),
        (None, "[user]授权信息查询失败"),
    ] {
        let mut h = vec![("X-Bkcmdb-Supplier-Account", "0")];
        if let Some(l) = lang {
            h.push(("X-Bkcmdb-Language", l));
        }
        let r = send(&s, "POST", CREATE, &h, &body);
        assert_eq!(enveloped(&r, 500, &NATIVE_KEYS), err_native(1199027, msg));
    }
    // Nothing was created by the refused requests.
    assert_eq!(s.list(7, 30)["data"].as_array().unwrap().len(), 1);
}

#[test]
fn legacy_identity_headers_accepted() {
    let s = Server::memory();
    let r = send(
        &s,
        "POST",
        CREATE,
        &[("BK_User", "legacy"), ("HTTP_BK_SUPPLIER_ACCOUNT", "0")],
        &proc_body(&["legacy1"]),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), ok_native(json!([42])));
    assert_eq!(stored(&s, 42)["bk_created_by"], json!("legacy"));
    assert_eq!(stored(&s, 42)["bk_supplier_account"], json!("0"));

    // The other supplier names.
    for (i, sup) in ["X-Bkapi-Supplier-Account", "HTTP_BLUEKING_SUPPLIER_ID"]
        .iter()
        .enumerate()
    {
        let r = send(
            &s,
            "POST",
            CREATE,
            &[("X-Bkcmdb-User", "u"), (sup, "0")],
            &proc_body(&[&format!("sup{i}")]),
        );
        assert_eq!(r.status, 200, "{sup}: {}", r.body);
        assert_eq!(r.json()["result"], json!(true), "{sup}");
    }
    // X-Bkcmdb-User wins over BK_User.
    let r = send(
        &s,
        "POST",
        CREATE,
        &[
            ("BK_User", "second"),
            ("X-Bkcmdb-User", "first"),
            ("X-Bkcmdb-Supplier-Account", "0"),
        ],
        &proc_body(&["prec"]),
    );
    let id = created_id(&r.json());
    assert_eq!(stored(&s, id)["bk_created_by"], json!("first"));
}

#[test]
fn gateway_and_esb_identity_defaults() {
    let s = Server::memory();
    // Gateway: X-Bkapi-Authorization wins over bk_username in the body.
    let mut body = proc_body(&["gwprec"]);
    body["bk_username"] = json!("bodyuser");
    let r = send(&s, "POST", GW_CREATE, &[GW_AUTH], &body);
    let id = created_id(&r.json());
    let p = stored(&s, id);
    assert_eq!(p["bk_created_by"], json!("alice"));
    assert_eq!(p["bk_supplier_account"], json!("0"));
    // Gateway: legacy client with bk_username only in the body.
    let mut body = proc_body(&["gwbody"]);
    body["bk_username"] = json!("bodyuser");
    let r = send(&s, "POST", GW_CREATE, &[], &body);
    let id = created_id(&r.json());
    assert_eq!(stored(&s, id)["bk_created_by"], json!("bodyuser"));
    // ESB: X-Bkapi-Authorization also names the user.
    let r = send(
        &s,
        "POST",
        ESB_V2_CREATE,
        &[GW_AUTH],
        &proc_body(&["esbhdr"]),
    );
    let id = created_id(&r.json());
    assert_eq!(stored(&s, id)["bk_created_by"], json!("alice"));
}

// ---------------------------------------------------------------------------------------------
// Language
// ---------------------------------------------------------------------------------------------

fn not_found_body() -> Value {
    json!({"bk_biz_id": 7, "service_instance_id": 999, "processes": [{"process_info": {"bk_process_name": "x"}}]})
}

#[test]
fn language_headers() {
    let s = Server::memory();
    let base = [
        ("X-Bkcmdb-User", "admin"),
        ("X-Bkcmdb-Supplier-Account", "0"),
    ];
    let cases: &[(Option<(&str, &str)>, &str)] = &[
        (Some(("X-Bkcmdb-Language", "en")), "No relevant data found"),
        (Some(("Blueking-Language", "en")), "No relevant data found"),
        (
            Some(("HTTP_BLUEKING_LANGUAGE", "en")),
            "No relevant data found",
        ),
        (None, "未找到相关数据"),
        (Some(("X-Bkcmdb-Language", "zh")), "未找到相关数据"),
        (Some(("X-Bkcmdb-Language", "fr")), "未找到相关数据"),
        (Some(("X-Bkcmdb-Language", "en-US")), "未找到相关数据"),
        (Some(("Blueking-Language", "zh-cn")), "未找到相关数据"),
    ];
    for (extra, msg) in cases {
        let mut h = base.to_vec();
        h.extend(extra.iter().copied());
        let r = send(&s, "POST", CREATE, &h, &not_found_body());
        assert_eq!(r.status, 200, "{extra:?}: {}", r.body);
        assert_eq!(r.json(), err_native(1199019, msg), "{extra:?}");
    }
    // Gateway and ESB follow the same headers.
    let r = send(
        &s,
        "POST",
        GW_CREATE,
        &[GW_AUTH, ("Blueking-Language", "en")],
        &not_found_body(),
    );
    assert_eq!(r.json()["message"], json!("No relevant data found"));
    let r = send(
        &s,
        "POST",
        ESB_V2_CREATE,
        &[("HTTP_BLUEKING_LANGUAGE", "en")],
        &not_found_body(),
    );
    assert_eq!(r.json()["message"], json!("No relevant data found"));
    let r = send(&s, "POST", ESB_V2_CREATE, &[], &not_found_body());
    assert_eq!(r.json()["message"], json!("未找到相关数据"));
}

#[test]
fn server_default_language_en() {
    let s = Server::start(&["--memory", "--language", "en"]);
    let r = send(&s, "POST", CREATE, &NATIVE_ZH, &not_found_body());
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), err_native(1199019, "No relevant data found"));
}

// ---------------------------------------------------------------------------------------------
// Request id
// ---------------------------------------------------------------------------------------------

fn assert_generated_rid(rid: &str) {
    assert_eq!(rid.len(), 26, "{rid}");
    assert!(rid.starts_with("cc0000"), "{rid}");
    assert!(rid[6..].bytes().all(|c| c.is_ascii_alphanumeric()), "{rid}");
}

#[test]
fn request_id_echoed_or_generated() {
    let s = Server::memory();
    let list = json!({"bk_biz_id": 7, "service_instance_id": 30});
    for name in ["X-Request-Id", "X-Bkapi-Request-Id", "Cc_Request_Id"] {
        let mut h = NATIVE_EN.to_vec();
        h.push((name, "rid-from-client-42"));
        let r = send(&s, "POST", LIST, &h, &list);
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("X-Request-Id"),
            Some("rid-from-client-42"),
            "{name}"
        );
        // ESB echoes it in the body as well.
        let r = send(&s, "POST", ESB_V2_LIST, &[(name, "rid-esb-7")], &list);
        assert_eq!(r.header("X-Request-Id"), Some("rid-esb-7"), "{name}");
        assert_eq!(r.json()["request_id"], json!("rid-esb-7"), "{name}");
    }
    // Precedence: X-Request-Id, then X-Bkapi-Request-Id, then Cc_Request_Id.
    let mut h = NATIVE_EN.to_vec();
    h.extend([
        ("Cc_Request_Id", "third"),
        ("X-Bkapi-Request-Id", "second"),
        ("X-Request-Id", "first"),
    ]);
    assert_eq!(
        send(&s, "POST", LIST, &h, &list).header("X-Request-Id"),
        Some("first")
    );
    let mut h = NATIVE_EN.to_vec();
    h.extend([("Cc_Request_Id", "third"), ("X-Bkapi-Request-Id", "second")]);
    assert_eq!(
        send(&s, "POST", LIST, &h, &list).header("X-Request-Id"),
        Some("second")
    );

    // Generated: cc0000 + 20 characters, different each time, also on errors.
    let a = send(&s, "POST", LIST, &NATIVE_EN, &list);
    let b = send(&s, "POST", LIST, &NATIVE_EN, &list);
    let (ra, rb) = (
        a.header("X-Request-Id").unwrap(),
        b.header("X-Request-Id").unwrap(),
    );
    assert_generated_rid(ra);
    assert_generated_rid(rb);
    assert_ne!(ra, rb);
    let r = send(&s, "POST", ESB_V2_LIST, &[], &list);
    let rid = r.header("X-Request-Id").unwrap();
    assert_generated_rid(rid);
    assert_eq!(r.json()["request_id"], json!(rid));
    let r = send(&s, "POST", CREATE, &[], &list);
    assert_eq!(r.status, 500);
    assert_generated_rid(r.header("X-Request-Id").unwrap());
    let r = s.request(
        "POST",
        "/api/v3/no/such/thing",
        &[("X-Request-Id", "r404")],
        b"",
    );
    assert_eq!(r.header("X-Request-Id"), Some("r404"));
}

// ---------------------------------------------------------------------------------------------
// Transport errors
// ---------------------------------------------------------------------------------------------

fn assert_error_envelope(r: &Resp, keys: &[&str]) {
    assert_eq!(r.header("Content-Type"), Some("application/json"), "{r:?}");
    assert_keys(r, keys);
    let v = r.json();
    assert_eq!(v["result"], json!(false), "{v}");
    assert_eq!(v["data"], Value::Null, "{v}");
}

fn still_serves(s: &Server) {
    let r = send(
        s,
        "POST",
        LIST,
        &NATIVE_EN,
        &json!({"bk_biz_id": 7, "service_instance_id": 30}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["result"], json!(true));
}

#[test]
fn unknown_path_is_json_404() {
    let s = Server::memory();
    for (path, keys) in [
        ("/api/v3/nope", &NATIVE_KEYS[..]),
        ("/nothing/here", &NATIVE_KEYS[..]),
        (
            "/api/v3/create/proc/process_instance/extra",
            &NATIVE_KEYS[..],
        ),
        ("/api/bk-cmdb/prod/api/v3/nope", &GATEWAY_KEYS[..]),
        ("/api/c/compapi/v2/cc/no_such_api/", &ESB_KEYS[..]),
    ] {
        let r = s.request("POST", path, &NATIVE_EN, b"{}");
        assert_eq!(r.status, 404, "{path}: {}", r.body);
        assert_error_envelope(&r, keys);
    }
    still_serves(&s);
}

#[test]
fn wrong_method_is_json_405() {
    let s = Server::memory();
    for (method, path, keys) in [
        ("GET", CREATE, &NATIVE_KEYS[..]),
        (
            "GET",
            "/api/v3/create/proc/process_instance/",
            &NATIVE_KEYS[..],
        ),
        ("PUT", LIST, &NATIVE_KEYS[..]),
        ("GET", GW_CREATE, &GATEWAY_KEYS[..]),
    ] {
        let r = s.request(method, path, &NATIVE_EN, b"");
        assert_eq!(r.status, 405, "{method} {path}: {}", r.body);
        assert_error_envelope(&r, keys);
    }
    // Keep-alive survives a 405.
    let mut c = Conn::open(&s.addr);
    let r = c.send("GET", CREATE, &NATIVE_EN, b"");
    assert_eq!(r.status, 405);
    let r = c.send(
        "POST",
        LIST,
        &NATIVE_EN,
        json!({"bk_biz_id": 7, "service_instance_id": 30})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    still_serves(&s);
}

#[test]
fn body_over_16_mib_is_413() {
    let s = Server::memory();
    const LIMIT: usize = 16 * 1024 * 1024;
    let mut c = Conn::open(&s.addr);
    let head = format!(
        "POST {CREATE} HTTP/1.1\r\nHost: test\r\nX-Bkcmdb-User: admin\r\nX-Bkcmdb-Supplier-Account: 0\r\n\
         X-Bkcmdb-Language: en\r\nContent-Length: {}\r\n\r\n",
        LIMIT + 1
    );
    c.write_raw(head.as_bytes());
    // Headers only: the server answers from Content-Length without waiting for the body.
    let r = c.read_response().expect("a 413 response");
    assert_eq!(r.status, 413, "{}", r.body);
    assert_error_envelope(&r, &NATIVE_KEYS);

    // With the real body written up front (a writer thread, errors ignored).
    let stream = std::net::TcpStream::connect(&s.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut w = stream.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let head = format!(
            "POST {LIST} HTTP/1.1\r\nHost: test\r\nX-Bkcmdb-User: admin\r\nX-Bkcmdb-Supplier-Account: 0\r\n\
             Content-Length: {}\r\n\r\n",
            LIMIT + 1
        );
        if w.write_all(head.as_bytes()).is_err() {
            return;
        }
        let chunk = vec![b' '; 1 << 20];
        let mut left = LIMIT + 1;
        while left > 0 {
            let n = left.min(chunk.len());
            if w.write_all(&chunk[..n]).is_err() {
                return;
            }
            left -= n;
        }
    });
    let mut reader = std::io::BufReader::new(stream);
    let mut status = String::new();
    std::io::BufRead::read_line(&mut reader, &mut status).expect("a status line");
    assert!(status.starts_with("HTTP/1.1 413"), "{status:?}");
    let _ = writer.join();

    // A chunked body (no Content-Length) over the limit is refused too.
    let stream = std::net::TcpStream::connect(&s.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut w = stream.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let head = format!(
            "POST {CREATE} HTTP/1.1\r\nHost: test\r\nX-Bkcmdb-User: admin\r\nX-Bkcmdb-Supplier-Account: 0\r\n\
             Transfer-Encoding: chunked\r\n\r\n"
        );
        if w.write_all(head.as_bytes()).is_err() {
            return;
        }
        let mut chunk = format!("{:x}\r\n", 1 << 20).into_bytes();
        chunk.extend(std::iter::repeat_n(b' ', 1 << 20));
        chunk.extend_from_slice(b"\r\n");
        for _ in 0..17 {
            if w.write_all(&chunk).is_err() {
                return;
            }
        }
        let _ = w.write_all(b"0\r\n\r\n");
    });
    let mut reader = std::io::BufReader::new(stream);
    let (status, text) = read_resp(&mut reader).expect("a 413 response");
    assert_eq!(status, 413, "{text}");
    let _ = writer.join();

    // A small chunked body is read as usual.
    let mut c = Conn::open(&s.addr);
    let body = proc_body(&["chunked"]).to_string();
    c.write_raw(
        format!(
            "POST {CREATE} HTTP/1.1\r\nHost: test\r\nX-Bkcmdb-User: admin\r\nX-Bkcmdb-Supplier-Account: 0\r\n\
             Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    let r = c.read_response().expect("a response");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), ok_native(json!([42])));

    // An ESB request over the limit gets the ESB envelope.
    let mut c = Conn::open(&s.addr);
    c.write_raw(
        format!(
            "POST {ESB_V2_CREATE} HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n",
            LIMIT + 1
        )
        .as_bytes(),
    );
    let r = c.read_response().expect("a 413 response");
    assert_eq!(r.status, 413, "{}", r.body);
    assert_error_envelope(&r, &ESB_KEYS);

    // Exactly at the limit is not refused for size (it is read and parsed).
    let mut body = proc_body(&["at-limit"]).to_string().into_bytes();
    body.resize(LIMIT, b' ');
    let r = s.request("POST", CREATE, &NATIVE_EN, &body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), ok_native(json!([43])));

    still_serves(&s);
}

#[test]
fn content_type_optional() {
    let s = Server::memory();
    let body = proc_body(&["ct0"]).to_string();
    let r = s.request("POST", CREATE, &NATIVE_EN, body.as_bytes());
    assert_eq!(r.json(), ok_native(json!([42])));
    for (i, ct) in [
        "application/json; charset=utf-8",
        "application/json",
        "text/plain",
    ]
    .iter()
    .enumerate()
    {
        let mut h = NATIVE_EN.to_vec();
        h.push(("Content-Type", ct));
        let body = proc_body(&[&format!("ct{}", i + 1)]).to_string();
        let r = s.request("POST", CREATE, &h, body.as_bytes());
        assert_eq!(r.status, 200, "{ct}");
        assert_eq!(r.json(), ok_native(json!([43 + i as i64])), "{ct}");
    }
}

// ---------------------------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------------------------

#[test]
fn eight_keep_alive_connections_at_once() {
    const CONNS: usize = 8;
    const PER_CONN: usize = 300;
    let s = Server::memory();
    let barrier = Arc::new(Barrier::new(CONNS));
    let (tx, rx) = mpsc::channel::<Result<Vec<i64>, String>>();
    for t in 0..CONNS {
        let (addr, barrier, tx) = (s.addr.clone(), Arc::clone(&barrier), tx.clone());
        std::thread::spawn(move || {
            // All connect at the same moment.
            barrier.wait();
            let stream = std::net::TcpStream::connect(&addr).expect("connect");
            stream
                .set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            stream.set_nodelay(true).unwrap();
            let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
            let mut w = stream.try_clone().unwrap();
            let mut run = || -> Result<Vec<i64>, String> {
                let mut ids = Vec::new();
                for i in 0..PER_CONN {
                    let body = proc_body(&[&format!("c{t}-{i}")]).to_string();
                    let req = format!(
                        "POST {CREATE} HTTP/1.1\r\nHost: test\r\nX-Bkcmdb-User: admin\r\n\
                         X-Bkcmdb-Supplier-Account: 0\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    w.write_all(req.as_bytes())
                        .map_err(|e| format!("conn {t} req {i}: write: {e}"))?;
                    let r = read_resp(&mut reader).map_err(|e| format!("conn {t} req {i}: {e}"))?;
                    if r.0 != 200 {
                        return Err(format!("conn {t} req {i}: status {} {}", r.0, r.1));
                    }
                    let v: Value = serde_json::from_str(&r.1).map_err(|e| e.to_string())?;
                    match v["data"][0].as_i64() {
                        Some(id) if v["result"] == json!(true) => ids.push(id),
                        _ => return Err(format!("conn {t} req {i}: {v}")),
                    }
                }
                Ok(ids)
            };
            let result = run();
            // Every connection stays open until all are done, so a connection left unserved
            // cannot be rescued by another one closing: it times out (20 s) instead.
            barrier.wait();
            drop(stream);
            let _ = tx.send(result);
        });
    }
    drop(tx);
    let deadline = Instant::now() + Duration::from_secs(45);
    let mut all = Vec::new();
    for n in 0..CONNS {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Ok(ids)) => {
                assert!(
                    ids.windows(2).all(|w| w[0] < w[1]),
                    "ids of one connection not increasing"
                );
                all.extend(ids);
            }
            Ok(Err(e)) => panic!("a connection failed: {e}"),
            Err(e) => panic!("only {n} of {CONNS} connections finished in time ({e:?})"),
        }
    }
    assert_eq!(all.len(), CONNS * PER_CONN);
    // The answer is large (tiny_http sends it chunked).
    let l = s.list(7, 30);
    assert_eq!(l["result"], json!(true));
    let listed: Vec<i64> = l["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["property"]["bk_process_id"].as_i64().unwrap())
        .collect();
    assert_eq!(listed.len(), CONNS * PER_CONN + 1);
    assert!(
        listed.windows(2).all(|w| w[0] < w[1]),
        "listed ids not strictly increasing"
    );
    all.push(41);
    all.sort_unstable();
    assert_eq!(listed, all);
    assert!(listed[1] >= 42);
}

#[test]
fn idle_and_slow_connections_do_not_block_others() {
    let s = Server::memory();
    let list = json!({"bk_biz_id": 7, "service_instance_id": 30}).to_string();
    // 24 keep-alive connections left idle after one request, 24 stuck in the middle of a request.
    let mut idle = Vec::new();
    for _ in 0..24 {
        let mut c = Conn::open(&s.addr);
        assert_eq!(
            c.send("POST", LIST, &NATIVE_EN, list.as_bytes()).status,
            200
        );
        idle.push(c);
    }
    let mut slow = Vec::new();
    for _ in 0..24 {
        let mut c = Conn::open(&s.addr);
        c.write_raw(
            format!("POST {LIST} HTTP/1.1\r\nHost: test\r\nX-Bkcmdb-User: admin\r\n").as_bytes(),
        );
        slow.push(c);
    }
    let start = Instant::now();
    let v = raw_request(
        &s.addr,
        LIST,
        &json!({"bk_biz_id": 7, "service_instance_id": 30}),
    );
    assert_eq!(v["result"], json!(true));
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    // The idle connections still work.
    for c in &mut idle {
        assert_eq!(
            c.send("POST", LIST, &NATIVE_EN, list.as_bytes()).status,
            200
        );
    }
}

/// Reads one response (status, body) from a raw connection.
fn read_resp(r: &mut impl std::io::BufRead) -> Result<(u16, String), String> {
    let mut line = String::new();
    if r.read_line(&mut line).map_err(|e| format!("read: {e}"))? == 0 {
        return Err("connection closed".into());
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(line.clone())?;
    let (mut len, mut chunked) = (0usize, false);
    loop {
        let mut h = String::new();
        r.read_line(&mut h)
            .map_err(|e| format!("read header: {e}"))?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().map_err(|_| h.to_string())?;
            } else if k.trim().eq_ignore_ascii_case("transfer-encoding") {
                chunked = v.trim().eq_ignore_ascii_case("chunked");
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)
                .map_err(|e| format!("read chunk size: {e}"))?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| format!("bad chunk size {size:?}"))?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk)
                .map_err(|e| format!("read chunk: {e}"))?;
            body.extend_from_slice(&chunk[..n]);
            if n == 0 {
                break;
            }
        }
    } else {
        body.resize(len, 0);
        r.read_exact(&mut body)
            .map_err(|e| format!("read body: {e}"))?;
    }
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// A native POST as `admin` on a new connection with a 20 s read timeout.
fn raw_request(addr: &str, path: &str, body: &Value) -> Value {
    let stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
    let body = body.to_string();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nX-Bkcmdb-User: admin\r\nX-Bkcmdb-Supplier-Account: 0\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut w = stream;
    w.write_all(req.as_bytes()).unwrap();
    let (status, text) = read_resp(&mut reader).unwrap();
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"))
}

// ---------------------------------------------------------------------------------------------
// Legacy and odd callers
// ---------------------------------------------------------------------------------------------

#[test]
fn gateway_authorization_without_a_user_or_not_json() {
    let s = Server::memory();
    // An app-only token, an access_token (what the client sends when one is set), and a header
    // that is not JSON: the gateway envelope, and the fallback user.
    for (i, auth) in [
        r#"{"bk_app_code":"a","bk_app_secret":"s"}"#,
        r#"{"access_token":"tok"}"#,
        "not json",
        r#"{"bk_username":""}"#,
    ]
    .iter()
    .enumerate()
    {
        let r = send(
            &s,
            "POST",
            GW_CREATE,
            &[("X-Bkapi-Authorization", auth)],
            &proc_body(&[&format!("gwauth{i}")]),
        );
        assert_eq!(r.status, 200, "{auth}: {}", r.body);
        assert_keys(&r, &GATEWAY_KEYS);
        let id = created_id(&r.json());
        assert_eq!(stored(&s, id)["bk_created_by"], json!("admin"), "{auth}");
    }
}

#[test]
fn http_1_0_and_connection_close_callers() {
    let s = Server::memory();
    let body = json!({"bk_biz_id": 7, "service_instance_id": 30}).to_string();
    for (version, extra) in [("HTTP/1.0", ""), ("HTTP/1.1", "Connection: close\r\n")] {
        let mut stream = std::net::TcpStream::connect(&s.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let req = format!(
            "POST {ESB_LIST} {version}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(req.as_bytes()).unwrap();
        let mut all = String::new();
        std::io::Read::read_to_string(&mut stream, &mut all)
            .unwrap_or_else(|e| panic!("{version} {extra}: not closed: {e}"));
        assert!(
            all.starts_with(&format!("{version} 200")) || all.starts_with("HTTP/1.1 200"),
            "{all}"
        );
        let json_start = all.find("\r\n\r\n").unwrap() + 4;
        let v: Value = serde_json::from_str(&all[json_start..]).unwrap();
        assert_eq!(v["result"], json!(true), "{version}: {v}");
    }
}
