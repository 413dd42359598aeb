use crate::common::*;
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

/// The README's second example: a service instance from the demo's template module 22.
#[test]
fn demo_service_instance_from_template() {
    let s = Server::memory();
    let r = s.native(
        "/api/v3/create/proc/service_instance",
        &json!({"bk_biz_id": 7, "bk_module_id": 22, "instances": [{"bk_host_id": 12,
            "processes": [{"process_template_id": 10, "process_info": {"user": "nginx"}}]}]}),
    );
    assert_eq!(r, ok_native(json!([32])));
    let d = s.native(
        "/api/v3/findmany/proc/service_instance/details",
        &json!({"bk_biz_id": 7, "bk_module_id": 22, "page": {"limit": 10}}),
    );
    let info = &d["data"]["info"][0];
    assert_eq!(info["name"], "192.168.10.12_nginx_80");
    let procs = info["process_instances"].as_array().unwrap();
    assert_eq!(procs.len(), 2);
    let nginx = &procs[0]["process"];
    assert_eq!(nginx["bk_process_name"], "nginx");
    assert_eq!(nginx["user"], "nginx");
    assert_eq!(nginx["bind_info"][0]["ip"], "192.168.10.12");
    assert_eq!(nginx["bind_info"][0]["port"], "80");
    assert_eq!(procs[1]["process"]["bk_process_name"], "php-fpm");
}
