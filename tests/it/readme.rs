//! README's "Standing up a single-node install" walk-through, run as written: every `curl` line
//! of its shell block is sent (method, path, body) to a server seeded as the section says, each
//! answer must succeed, the answers the text promises are checked, and `check` finds the store
//! clean afterwards.

use crate::common::*;
use serde_json::Value;

/// (method, path, body) of each `curl` line of the section's `sh` block.
fn curl_calls() -> Vec<(String, String, String)> {
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    let start = readme
        .find("## Standing up a single-node install")
        .expect("README has the walk-through");
    let section = &readme[start..];
    let block_start = section.find("```sh\n").expect("a sh block") + 6;
    let block = &section[block_start..];
    let block = &block[..block.find("```").unwrap()];
    assert!(
        block.contains("X-Bkcmdb-User: admin") && block.contains("X-Bkcmdb-Supplier-Account: 0"),
        "the calls send bk-cmdb's identity headers"
    );
    let mut calls = Vec::new();
    for line in block.lines().filter(|l| l.starts_with("curl ")) {
        let method = line
            .split_whitespace()
            .skip_while(|w| *w != "-X")
            .nth(1)
            .expect("-X METHOD")
            .to_string();
        let url = line.split("\"$CMDB").nth(1).expect("\"$CMDB/...\"");
        let path = url[..url.find('"').unwrap()].to_string();
        let body = line.split("-d '").nth(1).map_or(String::new(), |b| {
            b.strip_suffix('\'')
                .expect("body ends the line")
                .to_string()
        });
        calls.push((method, path, body));
    }
    calls
}

#[test]
fn the_single_node_walk_through_runs_as_written() {
    let calls = curl_calls();
    assert_eq!(calls.len(), 9, "{calls:?}");
    let td = TempDir::new("readme");
    let (srv, db) = fresh_install(&td);
    let mut answers = Vec::new();
    for (method, path, body) in &calls {
        let r = srv.request(method, path, &NATIVE_EN, body.as_bytes());
        assert_eq!(r.status, 200, "{method} {path}: {}", r.body);
        let v: Value = r.json();
        assert_eq!(v["result"], true, "{method} {path} {body}: {v}");
        answers.push(v["data"].clone());
    }
    assert_eq!(answers[0]["bk_set_id"], 3);
    assert_eq!(answers[3]["bk_module_id"], 7);
    assert_eq!(answers[3]["bk_module_name"], "gse_agent");
    assert_eq!(answers[4]["bk_module_id"], 8);
    assert_eq!(answers[5], serde_json::json!({"bk_host_ids": [1, 2]}));
    let details = &answers[7]["info"];
    let names: Vec<&str> = details
        .as_array()
        .unwrap()
        .iter()
        .map(|si| si["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["10.0.0.1_gse_agent_48000", "10.0.0.2_gse_agent_48000"]
    );
    for si in details.as_array().unwrap() {
        let p = &si["process_instances"][0]["process"];
        assert_eq!(p["bk_process_name"], "gse_agent");
        assert_eq!(p["bind_info"][0]["ip"], "127.0.0.1");
        assert_eq!(p["bind_info"][0]["port"], "48000");
    }
    let after = srv.native(
        "/api/v3/findmany/proc/service_instance/details",
        &serde_json::json!({"bk_biz_id": 2, "bk_module_id": 7, "page": {"start": 0, "limit": 10}}),
    );
    assert_eq!(after["data"]["count"], 1, "{after}");
    assert_eq!(after["data"]["info"][0]["bk_host_id"], 1);
    srv.stop();
    assert_clean(&db);
}
