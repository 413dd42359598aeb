//! Hostile input at the HTTP edge: the server answers (or closes) and stays up.
mod common;
use common::*;
use serde_json::json;

fn still_serves(s: &Server) {
    let r = s.list(7, 30);
    assert_eq!(r["result"], true, "{r}");
}

#[test]
fn huge_content_length_is_refused_without_taking_the_server_down() {
    let s = Server::memory();
    let mut c = Conn::open(&s.addr);
    c.write_raw(
        b"POST /api/v3/create/proc/process_instance HTTP/1.1\r\nHost: t\r\n\
          X-Bkcmdb-User: admin\r\nX-Bkcmdb-Supplier-Account: 0\r\n\
          Content-Length: 99999999999999\r\n\r\n{\"a\":",
    );
    let r = c.read_response().expect("an answer");
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["result"], false);
    drop(c);
    still_serves(&s);
}

#[test]
fn garbage_request_line_gets_400_and_the_server_goes_on() {
    let s = Server::memory();
    let mut c = Conn::open(&s.addr);
    c.write_raw(b"\x00\xff garbage\r\n\r\n");
    if let Some(r) = c.read_response() {
        assert_eq!(r.status, 400);
    }
    still_serves(&s);
}

#[test]
fn invalid_utf8_and_deep_json_are_1199000() {
    let s = Server::memory();
    for body in [
        b"{\"bk_biz_id\":\xff}".to_vec(),
        "[".repeat(10_000).into_bytes(),
    ] {
        let r = s.request(
            "POST",
            "/api/v3/create/proc/process_instance",
            &NATIVE_EN,
            &body,
        );
        assert_eq!(r.status, 200);
        assert_eq!(
            r.json(),
            err_native(1199000, "Deserializing JSON data failed")
        );
    }
    let created = s.create(&json!({"bk_biz_id": 7, "service_instance_id": 30,
        "processes": [{"process_info": {"bk_process_name": "after", "bk_func_name": "after"}}]}));
    assert_eq!(created["result"], true, "{created}");
}
