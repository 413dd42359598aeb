mod common;
use common::*;
use serde_json::json;

#[test]
fn demo_create_then_list() {
    let s = Server::memory();
    let r = s.create(&json!({"bk_biz_id": 7, "service_instance_id": 30,
        "processes": [{"process_info": {"bk_process_name": "nginx", "bk_func_name": "nginx"}}]}));
    assert_eq!(r, ok_native(json!([42])));
    let l = s.list(7, 30);
    assert_eq!(l["data"].as_array().unwrap().len(), 2);
}
