//! `serve --auth` and `--jwt-public-key`, black-box: every refusal on each route family (ESB,
//! API gateway, native) with its exact status, body and headers, in both languages; IAM
//! denials with bk-cmdb's `permission` object; forged, expired and valid JWTs (signed here with
//! the test-only key of `tests/keys/`); SIGHUP reload under concurrent writers; the refusal of
//! a non-loopback listen; file modes under umask 000; secrets kept out of logs and errors.

use crate::common::*;
use cmdb_lite::auth::rsa::{Hash, encode_pkcs1, mod_pow};
use serde_json::{Value, json};
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

const SECRET: &str = "s3cret-ci-0123";
const AUTH_FILE: &str = r#"{
  "apps": [{"bk_app_code": "ci", "bk_app_secret": "s3cret-ci-0123"}],
  "users": [
    {"bk_username": "admin", "grants": [{"bk_biz_id": "*", "actions": ["*"]}]},
    {"bk_username": "alice", "grants": [{"bk_biz_id": 7, "actions": ["edit_biz_service_instance"]}]},
    {"bk_username": "bob", "grants": []},
    {"bk_username": "tpl", "grants": [{"service_template_id": 5, "actions": ["edit_biz_service_template"]}]}
  ]
}"#;

const CREATE: &str = "/api/v3/create/proc/process_instance";
const ESB_CREATE: &str = "/api/c/compapi/v2/cc/create_process_instance/";
const GW_CREATE: &str = "/api/bk-cmdb/prod/api/v3/create/proc/process_instance";

fn create_body(name: &str) -> Value {
    json!({"bk_biz_id": 7, "service_instance_id": 30,
        "processes": [{"process_info": {"bk_process_name": name, "bk_func_name": name}}]})
}

fn app_header(user: &str) -> String {
    json!({"bk_app_code": "ci", "bk_app_secret": SECRET, "bk_username": user}).to_string()
}

/// A server with the test auth file (and the test JWT key), in memory on the demo dataset.
fn start(dir: &TempDir, extra: &[&str]) -> Server {
    let file = dir.join("auth.json");
    std::fs::write(&file, AUTH_FILE).unwrap();
    let mut args = vec!["--memory", "--auth", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    Server::start(&args)
}

fn key_path(name: &str) -> String {
    format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn send(s: &Server, method: &str, path: &str, headers: &[(&str, &str)], body: &Value) -> Resp {
    s.request(method, path, headers, body.to_string().as_bytes())
}

/// Service instance 30's processes, listed with an app's `X-Bkapi-Authorization` `header` (and a
/// user header the token's user overrides).
fn list_30_as_app(s: &Server, header: &str) -> Value {
    send(
        s,
        "POST",
        "/api/v3/findmany/proc/process_instance",
        &[
            ("X-Bkapi-Authorization", header),
            ("X-Bkcmdb-User", "x"),
            ("X-Bkcmdb-Supplier-Account", "0"),
        ],
        &json!({"bk_biz_id": 7, "service_instance_id": 30}),
    )
    .json()
}

fn with_lang<'a>(headers: &[(&'a str, &'a str)], zh: bool) -> Vec<(&'a str, &'a str)> {
    let mut h = headers.to_vec();
    if !zh {
        h.push(("X-Bkcmdb-Language", "en"));
    }
    h
}

// ------------------------------------------------------------------------------------------
// ESB
// ------------------------------------------------------------------------------------------

/// The ESB's own refusal: HTTP 200, Python's `json.dumps` layout, a 32-hex `request_id`
/// (or none), the same English text whatever the language asked for.
fn assert_esb_refusal(r: &Resp, code: i64, message: &str, with_request_id: bool) {
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("Content-Type"),
        Some("application/json; charset=utf-8")
    );
    let prefix = format!(
        "{{\"result\": false, \"code\": {code}, \"data\": null, \"message\": {}",
        serde_json::to_string(message).unwrap()
    );
    assert!(r.body.starts_with(&prefix), "{}", r.body);
    let rest = &r.body[prefix.len()..];
    if with_request_id {
        let id = rest
            .strip_prefix(", \"request_id\": \"")
            .and_then(|x| x.strip_suffix("\"}"))
            .unwrap_or_else(|| panic!("{}", r.body));
        assert!(
            id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{id}"
        );
    } else {
        assert_eq!(rest, "}");
    }
}

type EsbCase = (Vec<(&'static str, String)>, Value, i64, String, bool);

#[test]
fn esb_refuses_calls_without_valid_app_credentials() {
    let dir = TempDir::new("auth-esb");
    let s = start(&dir, &[]);
    let body = create_body("e1");
    let with_body = |extra: Value| {
        let mut b = body.clone();
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };
    // (headers, body, code, message, whether a request_id is sent)
    let cases: Vec<EsbCase> = vec![
        (
            vec![],
            body.clone(),
            1306000,
            "Signature [bk_signature] and APP Secret [bk_app_secret] cannot be empty at the same time".into(),
            true,
        ),
        (
            vec![],
            with_body(json!({"bk_app_secret": SECRET})),
            1306000,
            "APP Code [bk_app_code] cannot be empty".into(),
            true,
        ),
        (
            vec![],
            with_body(json!({"bk_app_code": "nobody", "bk_app_secret": SECRET})),
            1306000,
            "Invalid APP Code [bk_app_code=nobody], please confirm if the APP Code has been registered".into(),
            true,
        ),
        (
            vec![],
            with_body(json!({"bk_app_code": "ci", "bk_app_secret": "guess"})),
            1306000,
            "APP Secret verification failed, pelase confirm if the APP Secret and APP Code [bk_app_code=ci] match".into(),
            true,
        ),
        (
            vec![("X-Bkapi-Authorization", "{not json".into())],
            body.clone(),
            1306406,
            "Parameters error, request header X-Bkapi-Authorization is not a valid JSON format string".into(),
            false,
        ),
        (
            vec![(
                "X-Bkapi-Authorization",
                json!({"bk_app_code": "ci", "bk_app_secret": "guess", "bk_username": "admin"}).to_string(),
            )],
            body.clone(),
            1306000,
            "APP Secret verification failed, pelase confirm if the APP Secret and APP Code [bk_app_code=ci] match".into(),
            true,
        ),
        (
            vec![(
                "X-Bkapi-Authorization",
                json!({"bk_app_code": "ci", "bk_app_secret": SECRET}).to_string(),
            )],
            body.clone(),
            1306000,
            "User authentication failed, please provide a valid user identity, such as bk_token, bk_username".into(),
            true,
        ),
        (
            vec![(
                "X-Bkapi-Authorization",
                json!({"bk_app_code": "ci", "bk_app_secret": SECRET, "bk_token": "t", "bk_username": "admin"}).to_string(),
            )],
            body.clone(),
            1306000,
            "User authentication failed, please check if the bk_token is valid".into(),
            true,
        ),
    ];
    for (headers, body, code, message, rid) in &cases {
        for zh in [true, false] {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let r = send(&s, "POST", ESB_CREATE, &with_lang(&h, zh), body);
            assert_esb_refusal(&r, *code, message, *rid);
        }
    }
    // The query string carries credentials too (ESB GET components); and a signature, which
    // nothing here can verify, is refused as one that does not verify.
    let r = s.request(
        "GET",
        "/api/c/compapi/v2/cc/get_service_template/?service_template_id=9&bk_app_code=ci&bk_app_secret=s3cret-ci-0123&bk_username=bob",
        &[],
        b"",
    );
    assert_eq!(r.json()["result"], json!(true), "{}", r.body);
    let r = s.request(
        "GET",
        "/api/c/compapi/v2/cc/get_service_template/?service_template_id=9&bk_app_code=ci&bk_signature=abc&bk_nonce=1&bk_timestamp=1",
        &[],
        b"",
    );
    assert_esb_refusal(
        &r,
        1306000,
        "Signature [bk_signature] verification failed, please provide valid parameters and signature",
        true,
    );
    // Nothing was written by any refused call; the right secret (header or body) writes.
    let header = app_header("admin");
    let r = send(
        &s,
        "POST",
        ESB_CREATE,
        &[("X-Bkapi-Authorization", &header)],
        &body,
    );
    assert_eq!(r.json()["data"], json!([42]), "{}", r.body);
    let r = send(
        &s,
        "POST",
        ESB_CREATE,
        &[],
        &with_body(
            json!({"bk_app_code": "ci", "bk_app_secret": SECRET, "bk_username": "alice",
            "processes": [{"process_info": {"bk_process_name": "e2", "bk_func_name": "e2"}}]}),
        ),
    );
    assert_eq!(r.json()["data"], json!([43]), "{}", r.body);
    let stored = list_30_as_app(&s, &header);
    let creators: Vec<_> = stored["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["property"]["bk_created_by"].clone())
        .collect();
    assert!(creators.contains(&json!("admin")) && creators.contains(&json!("alice")));
    assert_eq!(creators.len(), 3, "{creators:?}");
}

// ------------------------------------------------------------------------------------------
// API gateway and native
// ------------------------------------------------------------------------------------------

fn assert_gateway_refusal(r: &Resp, reason: &str) {
    let message = format!("Parameters error [reason=\"{reason}\"]");
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        r.body,
        format!(
            "{{\"code\":1640001,\"code_name\":\"INVALID_ARGS\",\"message\":{},\"result\":false,\"data\":null}}",
            serde_json::to_string(&message).unwrap()
        )
    );
    assert_eq!(
        r.header("Content-Type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(r.header("X-Bkapi-Error-Code"), Some("1640001"));
    assert_eq!(r.header("X-Bkapi-Error-Message"), Some(message.as_str()));
    let id = r.header("X-Bkapi-Request-Id").unwrap();
    assert_eq!(id.len(), 36, "{id}");
    assert_eq!(id.as_bytes()[14], b'4', "a version-4 uuid: {id}");
}

#[test]
fn gateway_and_native_refuse_calls_without_valid_app_credentials() {
    let dir = TempDir::new("auth-gw");
    let s = start(&dir, &[]);
    let long_code = json!({"bk_app_code": "a".repeat(33), "bk_app_secret": "x"}).to_string();
    let long_secret = json!({"bk_app_code": "ci", "bk_app_secret": "x".repeat(129)}).to_string();
    let cases: Vec<(Option<String>, &str)> = vec![
        (None, "app code cannot be empty"),
        (
            Some("{not json".into()),
            "request header X-Bkapi-Authorization is not a valid JSON",
        ),
        (
            Some(json!({"bk_app_secret": SECRET}).to_string()),
            "app code cannot be empty",
        ),
        (
            Some(long_code),
            "app code cannot be longer than 32 characters",
        ),
        (
            Some(json!({"bk_app_code": "ci"}).to_string()),
            "please provide bk_app_secret or bk_signature to verify app",
        ),
        (
            Some(long_secret),
            "app secret cannot be longer than 128 characters",
        ),
        (
            Some(json!({"bk_app_code": "nobody", "bk_app_secret": SECRET}).to_string()),
            "app not found",
        ),
        (
            Some(json!({"bk_app_code": "ci", "bk_app_secret": "guess"}).to_string()),
            "bk_app_code or bk_app_secret is incorrect",
        ),
    ];
    for (header, reason) in &cases {
        for path in [GW_CREATE, CREATE] {
            for zh in [true, false] {
                let mut h = with_lang(&NATIVE_ZH, zh);
                if let Some(v) = header {
                    h.push(("X-Bkapi-Authorization", v));
                }
                // The body's credentials are never read by the gateway.
                let mut body = create_body("g1");
                body["bk_app_code"] = json!("ci");
                body["bk_app_secret"] = json!(SECRET);
                let r = send(&s, "POST", path, &h, &body);
                assert_gateway_refusal(&r, reason);
                assert!(!r.body.contains(SECRET) && !r.body.contains("guess"));
            }
        }
    }
    // The client's X-Request-Id is echoed.
    let r = send(
        &s,
        "POST",
        GW_CREATE,
        &[("X-Request-Id", "mine")],
        &create_body("g1"),
    );
    assert_eq!(r.header("X-Request-Id"), Some("mine"));

    // Through the gateway a user is needed: bk-cmdb refuses the gateway's empty one.
    let no_user = json!({"bk_app_code": "ci", "bk_app_secret": SECRET}).to_string();
    for zh in [true, false] {
        let h = with_lang(&[("X-Bkapi-Authorization", no_user.as_str())], zh);
        let r = send(&s, "POST", GW_CREATE, &h, &create_body("g1"));
        assert_eq!(r.status, 200);
        assert_eq!(r.header("Content-Type"), Some("text/plain; charset=utf-8"));
        assert_eq!(
            r.body,
            r#"{"result":false,"bk_error_code":1199998,"bk_error_msg":"user is not set","permission":null,"data":null}"#
        );
    }
    // The right credentials pass; the user is the header's `bk_username`.
    let header = app_header("admin");
    let r = send(
        &s,
        "POST",
        GW_CREATE,
        &[("X-Bkapi-Authorization", &header)],
        &create_body("g1"),
    );
    assert_eq!(r.json(), ok_esb(json!([42])));
    let mut h = NATIVE_EN.to_vec();
    h.push(("X-Bkapi-Authorization", &header));
    let r = send(&s, "POST", CREATE, &h, &create_body("n1"));
    assert_eq!(r.json(), ok_native(json!([43])));
    // Native calls still need the identity headers after the app (HTTP 500 1199027).
    let r = send(
        &s,
        "POST",
        CREATE,
        &[("X-Bkapi-Authorization", &header)],
        &create_body("n2"),
    );
    assert_eq!(r.status, 500, "{}", r.body);
    assert_eq!(r.json()["bk_error_code"], json!(1199027));
}

// ------------------------------------------------------------------------------------------
// IAM permissions
// ------------------------------------------------------------------------------------------

fn permission(action: &str, name: &str, ty: &str, type_name: &str, id: &str, inst: &str) -> Value {
    json!({"system_id": "bk_cmdb", "system_name": "配置平台", "actions": [{"id": action, "name": name,
        "related_resource_types": [{"system_id": "bk_cmdb", "system_name": "配置平台", "type": ty,
        "type_name": type_name, "instances": [[{"type": ty, "type_name": type_name, "id": id,
        "name": inst}]]}]}]})
}

/// `user` calls `method path` with `body` on each route family in both languages and is
/// denied with 9900403 and `perm`: bk-cmdb's pretty-printed `BaseResp` on native and gateway
/// routes, the ESB's envelope (keys renamed, `permission` kept) on ESB routes.
fn assert_denied(
    s: &Server,
    user: &str,
    method: &str,
    path: &str,
    esb: &str,
    body: &Value,
    perm: &Value,
) {
    let header = app_header(user);
    for zh in [true, false] {
        let msg = if zh {
            "没有操作的权限"
        } else {
            "Do not have access permission."
        };
        let mut h = with_lang(
            &[("X-Bkcmdb-User", user), ("X-Bkcmdb-Supplier-Account", "0")],
            zh,
        );
        h.push(("X-Bkapi-Authorization", &header));
        let gw = format!("/api/bk-cmdb/prod{path}");
        for p in [path, gw.as_str()] {
            let r = send(s, method, p, &h, body);
            assert_eq!(r.status, 200, "{}", r.body);
            let want = json!({"result": false, "bk_error_code": 9900403, "bk_error_msg": msg, "permission": perm});
            assert_eq!(r.json(), want, "{p}");
            // go-restful's MarshalIndent(v, "", " "), keys in bk-cmdb's struct order.
            let mut pretty = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(b" ");
            let mut ser = serde_json::Serializer::with_formatter(&mut pretty, fmt);
            serde::Serialize::serialize(&want, &mut ser).unwrap();
            let pretty = String::from_utf8(pretty).unwrap();
            assert_eq!(r.body.len(), pretty.len(), "{}", r.body);
            assert!(r.body.starts_with(
                "{\n \"result\": false,\n \"bk_error_code\": 9900403,\n \"bk_error_msg\": "
            ));
            assert!(r.body.contains("\n \"permission\": {\n  \"system_id\": \"bk_cmdb\",\n  \"system_name\": \"配置平台\",\n  \"actions\": [\n   {\n    \"id\": "), "{}", r.body);
        }
        let esb_path = format!("/api/c/compapi/v2/cc/{esb}/");
        let r = send(s, "POST", &esb_path, &h, body);
        let v = r.json();
        assert_eq!(
            v.as_object().unwrap().keys().collect::<Vec<_>>(),
            [
                "code",
                "data",
                "message",
                "permission",
                "request_id",
                "result"
            ]
        );
        assert!(r.body.starts_with(&format!(
            "{{\"result\":false,\"code\":9900403,\"message\":\"{msg}\",\"permission\":{{\"system_id\":\"bk_cmdb\""
        )), "{}", r.body);
        assert_eq!(v["permission"], *perm);
        assert_eq!(v["data"], Value::Null);
    }
}

#[test]
fn writes_without_the_action_answer_9900403_with_the_permission_object() {
    let dir = TempDir::new("auth-perm");
    let s = start(&dir, &[]);
    let biz = |action: &str, name: &str| permission(action, name, "biz", "业务", "7", "shop");
    // create_process_instance: bob has no grant at all.
    assert_denied(
        &s,
        "bob",
        "POST",
        CREATE,
        "create_process_instance",
        &create_body("p1"),
        &biz("edit_biz_service_instance", "服务实例编辑"),
    );
    // update_process_instance (process 41 of the demo).
    let update = json!({"bk_biz_id": 7, "processes": [{"bk_process_id": 41, "description": "x"}]});
    assert_denied(
        &s,
        "bob",
        "PUT",
        "/api/v3/update/proc/process_instance",
        "update_process_instance",
        &update,
        &biz("edit_biz_service_instance", "服务实例编辑"),
    );
    // create_service_instance: alice may edit instances of business 7, not create them.
    let si = json!({"bk_biz_id": 7, "bk_module_id": 22, "instances": [{"bk_host_id": 12}]});
    assert_denied(
        &s,
        "alice",
        "POST",
        "/api/v3/create/proc/service_instance",
        "create_service_instance",
        &si,
        &biz("create_biz_service_instance", "服务实例新建"),
    );
    // A template write: update_service_template names the template and its name; `tpl` may
    // edit template 5 only.
    let ust = json!({"bk_biz_id": 7, "id": 9, "name": "tpl-web2", "service_category_id": 2});
    assert_denied(
        &s,
        "tpl",
        "PUT",
        "/api/v3/update/proc/service_template",
        "update_service_template",
        &ust,
        &permission(
            "edit_biz_service_template",
            "服务模板编辑",
            "biz_process_service_template",
            "服务模板",
            "9",
            "tpl-web",
        ),
    );
    // create_service_template on business 8 ("lab").
    let cst = json!({"bk_biz_id": 8, "name": "n", "service_category_id": 2});
    assert_denied(
        &s,
        "alice",
        "POST",
        "/api/v3/create/proc/service_template",
        "create_service_template",
        &cst,
        &permission(
            "create_biz_service_template",
            "服务模板新建",
            "biz",
            "业务",
            "8",
            "lab",
        ),
    );
    // Process templates are checked by proc_server: 1199046, no permission object.
    let pt = json!({"bk_biz_id": 7, "service_template_id": 9,
        "processes": [{"spec": {"bk_process_name": {"value": "p", "as_default_value": true}}}]});
    let header = app_header("tpl");
    for zh in [true, false] {
        let mut h = with_lang(
            &[("X-Bkcmdb-User", "tpl"), ("X-Bkcmdb-Supplier-Account", "0")],
            zh,
        );
        h.push(("X-Bkapi-Authorization", &header));
        let r = send(&s, "POST", "/api/v3/createmany/proc/proc_template", &h, &pt);
        let msg = if zh {
            "鉴权失败"
        } else {
            "Authorize request failed."
        };
        assert_eq!(r.json(), err_native(1199046, msg));
    }
    // ... and `tpl` may on template 5, whose process template 6 it updates.
    let mut h = NATIVE_EN.to_vec();
    h[0] = ("X-Bkcmdb-User", "tpl");
    h.push(("X-Bkapi-Authorization", &header));
    let r = send(
        &s,
        "PUT",
        "/api/v3/update/proc/proc_template",
        &h,
        &json!({"bk_biz_id": 7, "process_template_id": 6, "process_property": {"description": {"value": "d", "as_default_value": true}}}),
    );
    assert_ne!(r.json()["bk_error_code"], json!(1199046), "{}", r.body);
    // Reads need no action; alice's grant covers her own action; nothing denied was written.
    let bob = app_header("bob");
    let r = send(
        &s,
        "POST",
        "/api/c/compapi/v2/cc/list_process_instance/",
        &[("X-Bkapi-Authorization", &bob)],
        &json!({"bk_biz_id": 7, "service_instance_id": 30}),
    );
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 1, "{}", r.body);
    let alice = app_header("alice");
    let r = send(
        &s,
        "POST",
        ESB_CREATE,
        &[("X-Bkapi-Authorization", &alice)],
        &create_body("a1"),
    );
    assert_eq!(r.json()["data"], json!([42]), "{}", r.body);
}

// ------------------------------------------------------------------------------------------
// JWT
// ------------------------------------------------------------------------------------------

fn b64url(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |a, &b| (a << 8) | b as u32) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn hex(s: &str) -> Vec<u8> {
    let s = if s.len() % 2 == 1 {
        format!("0{s}")
    } else {
        s.to_string()
    };
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The test-only key pair of `tests/keys/<name>.hex`: (modulus, private exponent).
fn test_key(name: &str) -> (Vec<u8>, Vec<u8>) {
    let text = std::fs::read_to_string(key_path(&format!("{name}.hex"))).unwrap();
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k} ")))
            .map(hex)
            .unwrap()
    };
    (field("n"), field("d"))
}

/// A JWT of `header` and `claims` signed RS512 (or RS256) with the test key `key`.
fn sign(key: &str, alg: &str, claims: &Value) -> String {
    let (n, d) = test_key(key);
    let signed = format!(
        "{}.{}",
        b64url(
            json!({"alg": alg, "typ": "JWT", "kid": "bk-cmdb"})
                .to_string()
                .as_bytes()
        ),
        b64url(claims.to_string().as_bytes())
    );
    let hash = if alg == "RS256" {
        Hash::Sha256
    } else {
        Hash::Sha512
    };
    let em = encode_pkcs1(hash, &hash.digest(signed.as_bytes()), n.len()).unwrap();
    format!("{signed}.{}", b64url(&mod_pow(&em, &d, &n)))
}

fn now_s() -> i64 {
    now_ms() / 1000
}

fn claims(user: &str, exp: i64) -> Value {
    json!({"iss": "APIGW", "nbf": now_s() - 300, "exp": exp, "iat": now_s() - 10,
        "app": {"version": 1, "app_code": "gw-app", "verified": true, "valid_error_message": ""},
        "user": {"version": 1, "username": user, "verified": false, "valid_error_message": ""}})
}

fn assert_jwt_refused(r: &Resp, text: &str) {
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("Content-Type"), Some("text/plain; charset=utf-8"));
    assert!(r.header("X-Request-Id").is_none());
    assert_eq!(
        r.body,
        format!(
            "{{\"result\":false,\"bk_error_code\":1199998,\"bk_error_msg\":{},\"permission\":null,\"data\":null}}",
            serde_json::to_string(text).unwrap()
        )
    );
}

#[test]
fn jwts_are_believed_only_when_signed_and_current() {
    let dir = TempDir::new("auth-jwt");
    let pem = key_path("jwt_test.pub.pem");
    let s = start(&dir, &["--jwt-public-key", &pem]);
    let native = |jwt: &str, zh: bool| {
        let h = with_lang(
            &[
                ("X-Bkapi-JWT", jwt),
                ("X-Bkcmdb-Supplier-Account", "0"),
                ("X-Bkcmdb-User", "forged"),
            ],
            zh,
        );
        send(&s, "POST", CREATE, &h, &create_body("j1"))
    };
    let valid = sign("jwt_test", "RS512", &claims("alice", now_s() + 1500));
    let segs: Vec<&str> = valid.split('.').collect();
    let none = format!("{}.{}.", b64url(br#"{"alg":"none","typ":"JWT"}"#), segs[1]);
    let hs = format!(
        "{}.{}.{}",
        b64url(br#"{"alg":"HS256","typ":"JWT"}"#),
        segs[1],
        segs[2]
    );
    let other_key = sign("jwt_other", "RS512", &claims("jwtuser", now_s() + 1500));
    let tampered = format!(
        "{}.{}.{}",
        segs[0],
        b64url(claims("root", now_s() + 1500).to_string().as_bytes()),
        segs[2]
    );
    let expired = sign("jwt_test", "RS512", &claims("jwtuser", now_s() - 65));
    let unverified_app = {
        let mut c = claims("jwtuser", now_s() + 100);
        c["app"]["verified"] = json!(false);
        sign("jwt_test", "RS256", &c)
    };
    let no_user = sign("jwt_test", "RS512", &claims("", now_s() + 100));
    let future = {
        let mut c = claims("jwtuser", now_s() + 1000);
        c["nbf"] = json!(now_s() + 600);
        sign("jwt_test", "RS512", &c)
    };
    for zh in [true, false] {
        assert_jwt_refused(
            &native("a.b", zh),
            "token contains an invalid number of segments",
        );
        assert_jwt_refused(&native(&none, zh), "unexpected signing method: none");
        assert_jwt_refused(&native(&hs, zh), "unexpected signing method: HS256");
        assert_jwt_refused(&native(&other_key, zh), "crypto/rsa: verification error");
        assert_jwt_refused(&native(&tampered, zh), "crypto/rsa: verification error");
        assert_jwt_refused(&native(&unverified_app, zh), "app is not verified");
        assert_jwt_refused(&native(&no_user, zh), "user is not set");
        assert_jwt_refused(&native(&future, zh), "token is not valid yet");
        let r = native(&expired, zh);
        let text = r.json()["bk_error_msg"].as_str().unwrap().to_string();
        // `token is expired by 1m5.123456789s`: Go's duration of now - exp.
        let d = text
            .strip_prefix("token is expired by 1m")
            .unwrap_or_else(|| panic!("{text}"));
        assert!(
            d.ends_with('s') && d[..d.len() - 1].parse::<f64>().unwrap() >= 5.0,
            "{text}"
        );
        assert_jwt_refused(&r, &text);
    }
    // A valid token's user wins over the user header, and the token stands for the app.
    let r = native(&valid, false);
    assert_eq!(r.json(), ok_esb(json!([42])));
    let header = app_header("admin");
    let list = list_30_as_app(&s, &header);
    let created = listed_process(&list, 42);
    assert_eq!(created["property"]["bk_created_by"], json!("alice"));

    // The ESB behind the gateway (spec 1.4): its own codes and texts.
    let esb = |jwt: &str| {
        send(
            &s,
            "POST",
            ESB_CREATE,
            &[("X-Bkapi-JWT", jwt)],
            &create_body("j2"),
        )
    };
    assert_esb_refusal(
        &esb(&expired),
        1306408,
        "APIGateway JWT verification failed, [X-Bkapi-JWT] has expired",
        false,
    );
    for forged in [&none, &other_key, &tampered] {
        assert_esb_refusal(
            &esb(forged),
            1306408,
            "APIGateway JWT verification failed, [X-Bkapi-JWT] decode error, please check if jwt is correct, or if its private key is correct",
            false,
        );
    }
    assert_esb_refusal(
        &esb(&unverified_app),
        1306000,
        "verify app fail, please check if the authentication parameters are correct",
        true,
    );
    assert_esb_refusal(
        &esb(&no_user),
        1306000,
        "Please provide a valid user identity, such as bk_username",
        true,
    );
    assert_eq!(esb(&valid).json()["data"], json!([43]));
}

#[test]
fn without_a_key_a_jwt_names_nobody() {
    // No --auth, no key: the forged token of the issue no longer becomes bk_created_by.
    let s = Server::memory();
    let forged = format!(
        "{}.{}.",
        b64url(br#"{"alg":"none"}"#),
        b64url(
            json!({"app": {"verified": true}, "user": {"username": "mallory"}})
                .to_string()
                .as_bytes()
        )
    );
    let r = send(
        &s,
        "POST",
        CREATE,
        &[("X-Bkapi-JWT", &forged), ("X-Bkcmdb-Supplier-Account", "0")],
        &create_body("f1"),
    );
    assert_eq!(r.status, 500, "{}", r.body);
    let r = send(
        &s,
        "POST",
        ESB_CREATE,
        &[("X-Bkapi-JWT", &forged)],
        &create_body("f1"),
    );
    assert_eq!(r.json()["data"], json!([42]));
    let list = s.list(7, 30);
    let created = listed_process(&list, 42);
    assert_eq!(created["property"]["bk_created_by"], json!("admin"));
}

// ------------------------------------------------------------------------------------------
// SIGHUP, listen address, file modes, secrets
// ------------------------------------------------------------------------------------------

const SIGHUP: i32 = 1;

#[test]
fn sighup_reloads_the_file_while_clients_write() {
    let dir = TempDir::new("auth-hup");
    let file = dir.join("auth.json");
    std::fs::write(&file, AUTH_FILE).unwrap();
    let s = Server::start(&[
        "--memory",
        "--auth",
        file.to_str().unwrap(),
        "--threads",
        "16",
    ]);
    // Version B adds app "new" and drops nothing "ci" needs; the writers use "ci" throughout.
    let with_new = AUTH_FILE.replace(
        r#"[{"bk_app_code": "ci""#,
        r#"[{"bk_app_code": "new", "bk_app_secret": "n3w-secret"}, {"bk_app_code": "ci""#,
    );
    let new_header =
        json!({"bk_app_code": "new", "bk_app_secret": "n3w-secret", "bk_username": "admin"})
            .to_string();
    let probe = |s: &Server| {
        send(
            s,
            "POST",
            "/api/c/compapi/v2/cc/list_service_category/",
            &[("X-Bkapi-Authorization", &new_header)],
            &json!({"bk_biz_id": 7}),
        )
        .json()["result"]
            .clone()
    };
    assert_eq!(probe(&s), json!(false));
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (addr, stop, done) = (s.addr.clone(), stop.clone(), done.clone());
            std::thread::spawn(move || {
                let header = app_header("admin");
                let mut c = Conn::open(&addr);
                let mut i = 0;
                let mut failures = Vec::new();
                while !stop.load(Ordering::Relaxed) || i < 5 {
                    let name = format!("w{w}-{i}");
                    let r = c.send(
                        "POST",
                        ESB_CREATE,
                        &[("X-Bkapi-Authorization", &header)],
                        create_body(&name).to_string().as_bytes(),
                    );
                    if r.status != 200 || r.json()["result"] != json!(true) {
                        failures.push(r.body);
                    }
                    i += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                failures
            })
        })
        .collect();
    for round in 0..10 {
        std::fs::write(&file, if round % 2 == 0 { &with_new } else { AUTH_FILE }).unwrap();
        send_signal(&s.child, SIGHUP);
        std::thread::sleep(Duration::from_millis(100));
    }
    // The last write was the original file; now switch to B for good and check it took.
    std::fs::write(&file, &with_new).unwrap();
    send_signal(&s.child, SIGHUP);
    let mut took = false;
    for _ in 0..300 {
        if probe(&s) == json!(true) {
            took = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let failures: Vec<String> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert!(took, "the reloaded file was never used");
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    assert!(done.load(Ordering::Relaxed) >= 40);
    // A file that no longer parses is refused on reload; the one in force stays.
    std::fs::write(&file, "{broken").unwrap();
    send_signal(&s.child, SIGHUP);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(probe(&s), json!(true));
    assert!(s.child.id() > 0);
}

#[test]
fn a_non_loopback_listen_needs_auth_or_insecure_listen() {
    let (code, out, err) = run_cli_within(&["serve", "--memory", "--listen", "0.0.0.0:0"], 60);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(
        err,
        "cmdb-lite: refusing to listen on 0.0.0.0:0, which is not a loopback address, without --auth FILE (anyone who can connect could write; --insecure-listen allows it)\n"
    );
    let (code, _, err) = run_cli_within(&["serve", "--memory", "--listen", "[::]:0"], 60);
    assert_eq!(code, 1, "{err}");
    // Loopback names and addresses need nothing; others need --auth or --insecure-listen.
    let dir = TempDir::new("auth-listen");
    let file = dir.join("auth.json");
    std::fs::write(&file, AUTH_FILE).unwrap();
    for (args, want) in [
        (vec!["--listen", "localhost:0"], "127.0.0.1:"),
        (
            vec!["--listen", "0.0.0.0:0", "--insecure-listen"],
            "0.0.0.0:",
        ),
        (
            vec!["--listen", "0.0.0.0:0", "--auth", file.to_str().unwrap()],
            "0.0.0.0:",
        ),
    ] {
        let mut child = Command::new(BIN)
            .args(["serve", "--memory"])
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let line = first_line(&mut child);
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            line.starts_with(&format!("cmdb-lite listening on http://{want}")),
            "{args:?}: {line}"
        );
    }
}

/// Runs `cmdb-lite <args>` under umask 000.
fn under_umask_000(args: &[&str]) -> std::process::Child {
    Command::new("sh")
        .arg("-c")
        .arg("umask 000 && exec \"$0\" \"$@\"")
        .arg(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// `cmdb-lite export --db <db> --out <out>` under umask 000, which must succeed within 60 s.
fn exports_under_umask_000(db: &std::path::Path, out: &std::path::Path) {
    let mut child = under_umask_000(&[
        "export",
        "--db",
        db.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let status = wait_exit(&mut child, Duration::from_secs(60));
    assert!(status.is_some_and(|s| s.success()), "export: {status:?}");
}

#[test]
fn files_are_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("auth-modes");
    let db = dir.join("a/b/cmdb.redb");
    let mut child = under_umask_000(&[
        "serve",
        "--db",
        db.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    let mut line = [0u8; 16];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut line)
        .unwrap();
    assert_eq!(&line, b"cmdb-lite listen");
    send_signal(&child, SIGTERM);
    assert!(
        wait_exit(&mut child, Duration::from_secs(60))
            .unwrap()
            .success()
    );
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.join("a")), 0o700);
    assert_eq!(mode(&dir.join("a/b")), 0o700);
    assert_eq!(mode(&db), 0o600);
    let out = dir.join("export.json");
    exports_under_umask_000(&db, &out);
    assert_eq!(mode(&out), 0o600);
    // An existing export file is made private too when it is overwritten.
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o666)).unwrap();
    exports_under_umask_000(&db, &out);
    assert_eq!(mode(&out), 0o600);
}

#[test]
fn secrets_stay_out_of_logs_errors_and_refusals() {
    let dir = TempDir::new("auth-secrets");
    let file = dir.join("auth.json");
    // A broken file: the error names the place, never the secret next to it.
    std::fs::write(
        &file,
        r#"{"apps": [{"bk_app_code": "ci", "bk_app_secret": "hunter2-topsecret", "oops": 1}]}"#,
    )
    .unwrap();
    let (code, _, err) =
        run_cli_within(&["serve", "--memory", "--auth", file.to_str().unwrap()], 60);
    assert_eq!(code, 1);
    assert!(
        err.contains("not a valid auth file") && !err.contains("hunter2"),
        "{err}"
    );
    std::fs::write(
        &file,
        r#"{"apps": [{"bk_app_code": "ci", "bk_app_secret": 12345678}]}"#,
    )
    .unwrap();
    let (code, _, err) =
        run_cli_within(&["serve", "--memory", "--auth", file.to_str().unwrap()], 60);
    assert_eq!(code, 1);
    assert!(!err.contains("12345678"), "{err}");
    // A running server with failing and succeeding calls logs neither secret.
    std::fs::write(&file, AUTH_FILE).unwrap();
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--memory",
            "--listen",
            "127.0.0.1:0",
            "--auth",
            file.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = listening_addr(&mut child).unwrap();
    let wrong =
        json!({"bk_app_code": "ci", "bk_app_secret": "wrong-guess-42", "bk_username": "admin"})
            .to_string();
    let right = app_header("admin");
    for h in [&wrong, &right] {
        for path in [ESB_CREATE, GW_CREATE] {
            let r = Conn::open(&addr).send(
                "POST",
                path,
                &[("X-Bkapi-Authorization", h)],
                create_body("s").to_string().as_bytes(),
            );
            assert!(
                !r.body.contains(SECRET) && !r.body.contains("wrong-guess-42"),
                "{}",
                r.body
            );
        }
    }
    send_signal(&child, SIGHUP);
    std::thread::sleep(Duration::from_millis(200));
    send_signal(&child, SIGTERM);
    assert!(
        wait_exit(&mut child, Duration::from_secs(60))
            .unwrap()
            .success()
    );
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(log.contains("SIGHUP: reloaded"), "{log}");
    assert!(
        !log.contains(SECRET) && !log.contains("wrong-guess-42"),
        "{log}"
    );
}

/// The cost of `--auth` (app secret, user and IAM grant checked on every request), printed, not
/// asserted: one connection each to a server with and one without the file, requests
/// alternating between the two so both see the same load, compared by their median latency.
/// `cargo test --release --test it -- --ignored --nocapture auth::auth_overhead_figures`.
#[test]
#[ignore]
fn auth_overhead_figures() {
    use std::time::Instant;
    let dir = TempDir::new("auth-cost");
    let servers = [start(&dir, &[]), Server::memory()];
    let header = app_header("admin");
    let mut conns: Vec<Conn> = servers.iter().map(|s| Conn::open(&s.addr)).collect();
    let ops = [
        (ESB_CREATE, "create_process_instance (1 conn, 1 proc)"),
        (
            "/api/c/compapi/v2/cc/list_service_category/",
            "list_service_category (1 conn)",
        ),
    ];
    let n = 3000;
    for (op, (path, name)) in ops.iter().enumerate() {
        let mut micros = [Vec::with_capacity(n), Vec::with_capacity(n)];
        for i in 0..2 * n {
            let k = i % 2;
            let body = if op == 0 {
                create_body(&format!("c{i}"))
            } else {
                json!({"bk_biz_id": 7})
            };
            let t = Instant::now();
            let r = conns[k].send(
                "POST",
                path,
                &[("X-Bkapi-Authorization", &header)],
                body.to_string().as_bytes(),
            );
            micros[k].push(t.elapsed().as_secs_f64() * 1e6);
            assert_eq!(r.json()["result"], json!(true), "{}", r.body);
        }
        let p50 = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (a, b) = (p50(&mut micros[0]), p50(&mut micros[1]));
        println!(
            "{name:<42} p50 with --auth {a:>7.0} µs   without {b:>7.0} µs   ratio {:.3}",
            a / b
        );
    }
}

#[test]
fn topology_and_host_writes_need_their_actions() {
    let dir = TempDir::new("auth-topo");
    let s = start(&dir, &[]);
    let biz = |action: &str, name: &str| permission(action, name, "biz", "业务", "7", "shop");
    let transfer = json!({"bk_biz_id": 7, "bk_host_id": [11], "bk_module_id": [20]});
    assert_denied(
        &s,
        "bob",
        "POST",
        "/api/v3/hosts/modules",
        "transfer_host_module",
        &transfer,
        &biz("edit_biz_host", "业务主机编辑"),
    );
    // create_set names its business in the path only: the action is checked on it.
    let header = app_header("bob");
    let h = [
        ("X-Bkcmdb-User", "bob"),
        ("X-Bkcmdb-Supplier-Account", "0"),
        ("X-Bkcmdb-Language", "en"),
        ("X-Bkapi-Authorization", header.as_str()),
    ];
    let r = send(
        &s,
        "POST",
        "/api/v3/set/7",
        &h,
        &json!({"bk_set_name": "x", "bk_parent_id": 7}),
    );
    assert_eq!(
        r.json(),
        json!({"result": false, "bk_error_code": 9900403, "bk_error_msg": "Do not have access permission.",
               "permission": biz("create_biz_topology", "业务拓扑新建")})
    );
    let r = send(&s, "DELETE", "/api/v3/module/7/3/20", &h, &Value::Null);
    assert_eq!(
        r.json()["permission"],
        biz("delete_biz_topology", "业务拓扑删除")
    );
}
