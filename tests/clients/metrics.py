"""GET /metrics parsed by the Prometheus project's own text-format parser (prometheus_client),
with counters that move as requests are made.

    python metrics.py http://127.0.0.1:PORT
"""

import json
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

BASE = sys.argv[1].rstrip("/")
# run.sh starts the server with --auth tests/clients/auth.json: every bk-cmdb route needs its app.
APP = json.dumps({"bk_app_code": "cmdb-lite-ci", "bk_app_secret": "ci-secret-for-tests-only",
                  "bk_username": "alice"})
NATIVE = {"X-Bkcmdb-User": "alice", "X-Bkcmdb-Supplier-Account": "0",
          "X-Bkapi-Authorization": APP}
ESB = {"X-Bkapi-Authorization": APP}


def scrape():
    with urllib.request.urlopen(BASE + "/metrics") as r:
        assert r.status == 200, r.status
        ctype = r.headers["Content-Type"]
        assert ctype.startswith("text/plain; version=0.0.4"), ctype
        text = r.read().decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    return families


def value(families, metric, sample_name, labels=None):
    for s in families[metric].samples:
        if s.name == sample_name and all(s.labels.get(k) == v for k, v in (labels or {}).items()):
            return s.value
    return 0.0


def post(path, body, headers=None):
    req = urllib.request.Request(
        BASE + path, data=json.dumps(body).encode(), headers=headers or {}, method="POST"
    )
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())


def main():
    before = scrape()
    kinds = {
        "cmdb_requests": "counter",
        "cmdb_request_duration_seconds": "histogram",
        "cmdb_commit_batch_requests": "histogram",
        "cmdb_commit_duration_seconds": "histogram",
        "cmdb_store_degraded": "gauge",
        "cmdb_ready": "gauge",
        "cmdb_worker_permits": "gauge",
        "cmdb_worker_permits_in_use": "gauge",
        "cmdb_open_connections": "gauge",
        "cmdb_process_resident_memory_bytes": "gauge",
        "cmdb_uptime_seconds": "gauge",
        "cmdb_build_info": "gauge",
    }
    for name, kind in kinds.items():
        assert name in before, f"no {name}: {sorted(before)}"
        assert before[name].type == kind, f"{name} is {before[name].type}, not {kind}"
    assert value(before, "cmdb_ready", "cmdb_ready") == 1.0
    assert value(before, "cmdb_store_degraded", "cmdb_store_degraded") == 0.0

    ok = dict(operation="list_process_instance", family="native", outcome="success", code="0")
    created = dict(operation="create_process_instance", family="esb", outcome="success", code="0")
    failed = dict(operation="list_process_instance", family="esb", outcome="business_error",
                  code="1199006")
    for _ in range(5):
        v = post("/api/v3/findmany/proc/process_instance",
                 {"bk_biz_id": 7, "service_instance_id": 30}, NATIVE)
        assert v["result"] is True, v
    v = post("/api/c/compapi/v2/cc/create_process_instance/",
             {"bk_biz_id": 7, "service_instance_id": 30,
              "processes": [{"process_info": {"bk_process_name": "prom", "bk_func_name": "prom"}}]},
             ESB)
    assert v["result"] is True, v
    v = post("/api/c/compapi/v2/cc/list_process_instance/", {"bk_biz_id": 7}, ESB)
    assert v["result"] is False and v["code"] == 1199006, v
    after = scrape()

    def moved(metric, sample, labels):
        return value(after, metric, sample, labels) - value(before, metric, sample, labels)

    assert moved("cmdb_requests", "cmdb_requests_total", ok) == 5
    assert moved("cmdb_requests", "cmdb_requests_total", created) == 1
    assert moved("cmdb_requests", "cmdb_requests_total", failed) == 1
    assert moved("cmdb_request_duration_seconds", "cmdb_request_duration_seconds_count",
                 {"operation": "list_process_instance"}) == 6
    assert moved("cmdb_commit_batch_requests", "cmdb_commit_batch_requests_count", {}) >= 1
    # Histogram buckets are cumulative and end with +Inf = count.
    h = after["cmdb_request_duration_seconds"]
    buckets = [s for s in h.samples if s.name.endswith("_bucket")
               and s.labels["operation"] == "list_process_instance"]
    values = [s.value for s in buckets]
    assert values == sorted(values), values
    assert buckets[-1].labels["le"] == "+Inf"
    assert buckets[-1].value == value(after, "cmdb_request_duration_seconds",
                                      "cmdb_request_duration_seconds_count",
                                      {"operation": "list_process_instance"})
    print("metrics: ok,", len(after), "families parsed by prometheus_client")


if __name__ == "__main__":
    main()
