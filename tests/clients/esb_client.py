"""Drives a running cmdb-lite with BlueKing's own Python client, unchanged.

The client is `bkapi-component-open` (which pulls `bkapi-client-core`); see requirements.txt. It
calls the ESB component routes `/api/c/compapi{bk_api_ver}/cc/<name>/`, sends the caller in the
`X-Bkapi-Authorization` header, never looks at `result`, raises on HTTP 4xx/5xx and on non-JSON
bodies, and would follow a redirect as a GET without body. So every check below goes through
`client.cc.<operation>(data)` exactly as an application would, then inspects the JSON answer.

Usage: python esb_client.py http://127.0.0.1:PORT   (a server started with `serve --memory
--admin --auth tests/clients/auth.json`: the built-in demo dataset, business 7, raw service instance
30 on host 11, process 41).

Between checks the script uses the test-double routes as an application's test suite would
(README "Using it in your tests"): `POST /_cmdb/reset` where a check needs the seed,
`DELETE /_cmdb/requests` before each check, and after it `GET /_cmdb/requests`, which must list
the ESB calls the check made (real operations, HTTP 200); `POST /_cmdb/faults` for an error the
application must survive.

Adding an operation: write one small function `def check_<what>(ctx):` and append it to CHECKS.
Each check gets a `Ctx`: `ctx.cc()` is the `cc` group of a client as an application builds it;
`ctx.state` carries ids from one check to the next (checks run in table order).
"""

import json
import sys
import traceback
import urllib.request

from bkapi_client_core.esb import Operation, bind_property
from bkapi_component.open.client import CcGroup, Client

APP_CODE = "cmdb-lite-ci"
APP_SECRET = "ci-secret-for-tests-only"  # tests/clients/auth.json
USERNAME = "alice"

# The demo dataset (data/demo.json).
BIZ = 7
RAW_SERVICE_INSTANCE = 30
HOST = 11
DEMO_PROCESS = 41

ENVELOPE_KEYS = ["result", "code", "message", "permission", "request_id", "data"]


class CheckFailed(Exception):
    pass


class CcWithHidden(CcGroup):
    """bk-cmdb's hidden cc components (`is_hidden` in its cc.yaml), which the published client
    does not list: bound exactly as the client binds its own operations."""

    list_service_template_difference = bind_property(
        Operation,
        name="list_service_template_difference",
        method="POST",
        path="/api/c/compapi{bk_api_ver}/cc/list_service_template_difference/",
    )
    sync_service_template_to_service_instance = bind_property(
        Operation,
        name="sync_service_template_to_service_instance",
        method="POST",
        path="/api/c/compapi{bk_api_ver}/cc/sync_service_template_to_service_instance/",
    )
    list_process_related_info = bind_property(
        Operation,
        name="list_process_related_info",
        method="POST",
        path="/api/c/compapi{bk_api_ver}/cc/list_process_related_info/",
    )
    list_service_template_sync_status = bind_property(
        Operation,
        name="list_service_template_sync_status",
        method="POST",
        path="/api/c/compapi{bk_api_ver}/cc/list_service_template_sync_status/",
    )


class ClientWithHidden(Client):
    cc = bind_property(CcWithHidden, name="cc")


def expect(cond, what, answer=None):
    if not cond:
        shown = "" if answer is None else repr(answer)
        if len(shown) > 800:
            shown = shown[:800] + "..."
        raise CheckFailed("%s: %s" % (what, shown) if shown else what)


class Ctx:
    def __init__(self, endpoint):
        self.endpoint = endpoint
        self.state = {}

    def client(self, bk_api_ver="v2", language=None):
        """A client exactly as the README shows it."""
        client = Client(endpoint=self.endpoint, bk_api_ver=bk_api_ver, language=language)
        client.update_bkapi_authorization(
            bk_app_code=APP_CODE, bk_app_secret=APP_SECRET, bk_username=USERNAME
        )
        return client

    def cc(self, bk_api_ver="v2", language=None):
        return self.client(bk_api_ver, language).cc

    def admin(self, method, path, body=None):
        """A call of the test-double routes (`serve --admin`); returns `data`."""
        raw = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.endpoint + path, data=raw, method=method)
        with urllib.request.urlopen(req, timeout=60) as response:
            answer = json.loads(response.read())
        expect(answer["result"] is True, "%s %s" % (method, path), answer)
        return answer["data"]

    def cc_hidden(self, language=None):
        """The `cc` group with the hidden components bound as well."""
        client = ClientWithHidden(endpoint=self.endpoint, bk_api_ver="v2", language=language)
        client.update_bkapi_authorization(
            bk_app_code=APP_CODE, bk_app_secret=APP_SECRET, bk_username=USERNAME
        )
        return client.cc


def ok(answer):
    """A success answer in the ESB envelope; returns its data."""
    expect(isinstance(answer, dict), "answer is not a JSON object", answer)
    expect(list(answer) == ENVELOPE_KEYS, "ESB envelope keys", answer)
    expect(answer["result"] is True, "result true", answer)
    expect(answer["code"] == 0, "code 0", answer)
    expect(answer["message"] == "success", "message success", answer)
    expect(answer["permission"] is None, "permission null", answer)
    expect(isinstance(answer["request_id"], str) and answer["request_id"], "request_id", answer)
    return answer["data"]


def fails(answer, code, message):
    """A business error: HTTP 200 (the client did not raise), result false, bk-cmdb's code."""
    expect(isinstance(answer, dict), "answer is not a JSON object", answer)
    expect(list(answer) == ENVELOPE_KEYS, "ESB envelope keys", answer)
    expect(answer["result"] is False, "result false", answer)
    expect(answer["code"] == code, "code %d" % code, answer)
    expect(answer["message"] == message, "message %r" % message, answer)
    expect(answer["data"] is None, "data null", answer)


def processes_of(data):
    expect(isinstance(data, list), "data is a list", data)
    return {p["property"]["bk_process_id"]: p for p in data}


# ---------------------------------------------------------------------------------------------
# Checks, one per operation (and per notable way of calling it)
# ---------------------------------------------------------------------------------------------


def check_create_process_instance(ctx):
    data = ok(
        ctx.cc().create_process_instance(
            {
                "bk_biz_id": BIZ,
                "service_instance_id": RAW_SERVICE_INSTANCE,
                "processes": [
                    {
                        "process_info": {
                            "bk_process_name": "py-nginx",
                            "bk_func_name": "nginx",
                            "bind_info": [
                                {"ip": "127.0.0.1", "port": "80", "protocol": "1", "enable": True}
                            ],
                        }
                    },
                    {"process_info": {"bk_process_name": "py-worker", "bk_func_name": "worker"}},
                ],
            }
        )
    )
    expect(isinstance(data, list) and len(data) == 2, "two ids", data)
    expect(all(isinstance(i, int) for i in data) and data[0] < data[1], "increasing ids", data)
    ctx.state["created"] = data


def check_list_process_instance(ctx):
    data = ok(
        ctx.cc().list_process_instance(
            {"bk_biz_id": BIZ, "service_instance_id": RAW_SERVICE_INSTANCE}
        )
    )
    procs = processes_of(data)
    nginx_id, worker_id = ctx.state["created"]
    expect(sorted(procs) == [DEMO_PROCESS, nginx_id, worker_id], "listed ids", sorted(procs))
    nginx = procs[nginx_id]
    prop, rel = nginx["property"], nginx["relation"]
    expect(prop["bk_process_name"] == "py-nginx", "bk_process_name", prop)
    expect(prop["bk_func_name"] == "nginx", "bk_func_name", prop)
    rows = prop["bind_info"]
    expect(isinstance(rows, list) and len(rows) == 1, "one bind_info row", rows)
    want = {"enable": True, "ip": "127.0.0.1", "port": "80", "protocol": "1"}
    expect({k: rows[0].get(k) for k in want} == want, "bind_info row", rows)
    expect(prop["bk_biz_id"] == BIZ, "bk_biz_id", prop)
    # The user comes from X-Bkapi-Authorization, the supplier defaults to "0".
    expect(prop["bk_created_by"] == USERNAME, "bk_created_by", prop)
    expect(prop["bk_supplier_account"] == "0", "bk_supplier_account", prop)
    expect(rel["bk_process_id"] == nginx_id, "relation bk_process_id", rel)
    expect(rel["service_instance_id"] == RAW_SERVICE_INSTANCE, "relation instance", rel)
    expect(rel["bk_host_id"] == HOST, "relation host", rel)
    ctx.state["listed"] = data


def check_create_process_instance_business_error(ctx):
    # No such service instance: HTTP 200, result false, bk-cmdb's code and (Chinese) text.
    answer = ctx.cc().create_process_instance(
        {
            "bk_biz_id": BIZ,
            "service_instance_id": 999,
            "processes": [{"process_info": {"bk_process_name": "nowhere"}}],
        }
    )
    fails(answer, 1199019, "未找到相关数据")


def check_business_error_in_english(ctx):
    # Client(language="en") sends Blueking-Language: en.
    answer = ctx.cc(language="en").create_process_instance(
        {
            "bk_biz_id": BIZ,
            "service_instance_id": 999,
            "processes": [{"process_info": {"bk_process_name": "nowhere"}}],
        }
    )
    fails(answer, 1199019, "No relevant data found")


def check_duplicate_name_is_a_business_error(ctx):
    answer = ctx.cc(language="en").create_process_instance(
        {
            "bk_biz_id": BIZ,
            "service_instance_id": RAW_SERVICE_INSTANCE,
            "processes": [{"process_info": {"bk_process_name": "py-nginx", "bk_func_name": "x"}}],
        }
    )
    fails(
        answer,
        1199014,
        'duplicated instances exist, fields [ service_instance_id: %d, bk_process_name: "py-nginx" ] '
        "duplicated" % RAW_SERVICE_INSTANCE,
    )
    # Nothing was written.
    data = ok(
        ctx.cc().list_process_instance(
            {"bk_biz_id": BIZ, "service_instance_id": RAW_SERVICE_INSTANCE}
        )
    )
    expect(len(data) == len(ctx.state["listed"]), "no process added", data)


def check_list_process_instance_without_api_version(ctx):
    # bk_api_ver="" calls /api/c/compapi/cc/<name>/ (no "v2").
    cc = ctx.cc(bk_api_ver="")
    expect(
        cc.list_process_instance.path.format(bk_api_ver="") == "/api/c/compapi/cc/list_process_instance/",
        "path without v2",
        cc.list_process_instance.path,
    )
    data = ok(
        cc.list_process_instance({"bk_biz_id": BIZ, "service_instance_id": RAW_SERVICE_INSTANCE})
    )
    expect(data == ctx.state["listed"], "same data as through v2", data)


def check_no_redirect_and_json(ctx):
    # The raw HTTP answer behind the calls above: 200, JSON, never a redirect, with or without v2.
    for ver in ("v2", ""):
        response = ctx.cc(bk_api_ver=ver).list_process_instance.request(
            {"bk_biz_id": BIZ, "service_instance_id": RAW_SERVICE_INSTANCE}
        )
        expect(response.status_code == 200, "HTTP 200", response.status_code)
        expect(not response.history, "no redirect", [r.status_code for r in response.history])
        expect(
            response.headers.get("Content-Type", "").startswith("application/json"),
            "Content-Type",
            response.headers,
        )
        expect(response.json()["request_id"] == response.headers.get("X-Request-Id"), "request id")


def check_one_keep_alive_connection(ctx):
    # `with client:` keeps one connection for several calls.
    client = ctx.client()
    with client:
        ids = ok(
            client.cc.create_process_instance(
                {
                    "bk_biz_id": BIZ,
                    "service_instance_id": RAW_SERVICE_INSTANCE,
                    "processes": [{"process_info": {"bk_process_name": "py-kept", "bk_func_name": "kept"}}],
                }
            )
        )
        data = ok(
            client.cc.list_process_instance(
                {"bk_biz_id": BIZ, "service_instance_id": RAW_SERVICE_INSTANCE}
            )
        )
    expect(len(ids) == 1 and ids[0] in processes_of(data), "created then listed", data)


# --- service templates, process templates, service instances, process lifecycle ---------------
# Demo: template module 22 (business 7) is built from service template 9 with process templates
# 10 (nginx) and 11 (php-fpm); hosts 11 and 12 are in it; category 2 is a built-in leaf.


def check_service_template_lifecycle(ctx):
    cc = ctx.cc(language="en")
    st = ok(cc.create_service_template({"bk_biz_id": BIZ, "name": "py-tpl", "service_category_id": 2}))
    expect(st["name"] == "py-tpl" and st["creator"] == USERNAME, "created template", st)
    ctx.state["template"] = st["id"]
    # get_service_template is an ESB GET: the client puts the id in the query string.
    got = ok(cc.get_service_template({"service_template_id": st["id"]}))
    expect(got == st, "get returns the created template", got)
    renamed = ok(cc.update_service_template({"bk_biz_id": BIZ, "id": st["id"], "name": "py-tpl-2"}))
    expect(renamed["name"] == "py-tpl-2", "renamed", renamed)
    listed = ok(cc.list_service_template({"bk_biz_id": BIZ, "search": "PY-TPL", "page": {"limit": 10}}))
    expect(listed["count"] == 1 and listed["info"][0]["id"] == st["id"], "listed by search", listed)
    fails(
        cc.create_service_template({"bk_biz_id": BIZ, "name": "py-tpl-2", "service_category_id": 2}),
        1199014,
        "duplicated instances exist, fields [name] duplicated",
    )


def check_process_template_lifecycle(ctx):
    cc = ctx.cc(language="en")
    st = ctx.state["template"]
    spec = {
        "bk_process_name": {"value": "py-proc", "as_default_value": True},
        "bk_func_name": {"value": "py-proc", "as_default_value": True},
        "user": {"value": "root", "as_default_value": False},
        "bind_info": {
            "value": [
                {
                    "ip": {"value": "1", "as_default_value": True},
                    "port": {"value": "8000", "as_default_value": True},
                    "protocol": {"value": "1", "as_default_value": True},
                    "enable": {"value": True, "as_default_value": True},
                }
            ],
            "as_default_value": True,
        },
    }
    ids = ok(
        cc.batch_create_proc_template(
            {"bk_biz_id": BIZ, "service_template_id": st, "processes": [{"spec": spec}]}
        )
    )
    expect(len(ids) == 1, "one process template", ids)
    pt = ok(cc.get_proc_template({"bk_biz_id": BIZ, "process_template_id": ids[0]}))
    expect(pt["property"]["bind_info"]["value"][0]["row_id"] == 1, "row_id assigned", pt)
    upd = ok(
        cc.update_proc_template(
            {
                "bk_biz_id": BIZ,
                "process_template_id": ids[0],
                "process_property": {"user": {"value": "www", "as_default_value": False}},
            }
        )
    )
    expect(upd["property"]["user"]["value"] == "www", "updated user", upd)
    listed = ok(cc.list_proc_template({"bk_biz_id": BIZ, "service_template_id": st}))
    expect(listed["count"] == 1 and listed["info"][0]["id"] == ids[0], "listed", listed)
    fails(
        cc.batch_create_proc_template(
            {"bk_biz_id": BIZ, "service_template_id": st, "processes": [{"spec": spec}]}
        ),
        1113019,
        "process name [py-proc] unique validation failed",
    )
    # A template used by nothing but its process templates is deleted, and they with it.
    expect(
        ok(cc.delete_service_template({"bk_biz_id": BIZ, "service_template_id": st})) is None,
        "template deleted",
    )
    fails(
        cc.get_proc_template({"bk_biz_id": BIZ, "process_template_id": ids[0]}),
        1199019,
        "No relevant data found",
    )


def check_service_instance_from_template(ctx):
    cc = ctx.cc(language="en")
    ids = ok(
        cc.create_service_instance(
            {
                "bk_biz_id": BIZ,
                "bk_module_id": 22,
                "instances": [
                    {
                        "bk_host_id": 12,
                        "processes": [{"process_template_id": 10, "process_info": {"user": "nginx"}}],
                    }
                ],
            }
        )
    )
    expect(len(ids) == 1, "one service instance", ids)
    ctx.state["instance"] = ids[0]
    detail = ok(
        cc.list_service_instance_detail({"bk_biz_id": BIZ, "bk_module_id": 22, "page": {"limit": 10}})
    )
    inst = detail["info"][0]
    expect(inst["name"] == "192.168.10.12_nginx_80", "generated name", inst)
    procs = {p["process"]["bk_process_name"]: p["process"] for p in inst["process_instances"]}
    expect(sorted(procs) == ["nginx", "php-fpm"], "processes from the templates", procs)
    expect(procs["nginx"]["user"] == "nginx", "unlocked field overridden", procs["nginx"])
    expect(procs["nginx"]["bind_info"][0]["ip"] == "192.168.10.12", "bind ip resolved", procs)
    ctx.state["template_processes"] = {n: p["bk_process_id"] for n, p in procs.items()}
    listed = ok(cc.list_service_instance({"bk_biz_id": BIZ, "bk_module_id": 22, "page": {"limit": 10}}))
    expect(listed["count"] == 1 and listed["info"][0]["id"] == ids[0], "listed", listed)
    by_host = ok(cc.list_service_instance_by_host({"bk_biz_id": BIZ, "bk_host_id": 12}))
    expect(ids[0] in [i["id"] for i in by_host["info"]], "listed by host", by_host)
    fails(
        cc.create_service_instance(
            {"bk_biz_id": BIZ, "bk_module_id": 22, "instances": [{"bk_host_id": 12}]}
        ),
        1113016,
        "service instance bound to host [192.168.10.12] already exist",
    )


def check_service_instance_labels(ctx):
    cc = ctx.cc(language="en")
    si = ctx.state["instance"]
    ok(cc.add_label_for_service_instance({"bk_biz_id": BIZ, "instance_ids": [si], "labels": {"env": "ci"}}))
    listed = ok(
        cc.list_service_instance(
            {
                "bk_biz_id": BIZ,
                "selectors": [{"key": "env", "operator": "=", "values": ["ci"]}],
                "page": {"limit": 10},
            }
        )
    )
    expect([i["id"] for i in listed["info"]] == [si], "found by label", listed)
    expect(listed["info"][0]["labels"] == {"env": "ci"}, "labels", listed)
    ok(cc.remove_label_from_service_instance({"bk_biz_id": BIZ, "instance_ids": [si], "keys": ["env"]}))
    listed = ok(
        cc.list_service_instance(
            {
                "bk_biz_id": BIZ,
                "selectors": [{"key": "env", "operator": "exists", "values": []}],
                "page": {"limit": 10},
            }
        )
    )
    expect(listed["count"] == 0, "label removed", listed)


def check_list_service_category(ctx):
    data = ok(ctx.cc().list_service_category({"bk_biz_id": BIZ}))
    expect([c["id"] for c in data["info"]] == [1, 2], "built-in categories", data)


def check_process_lifecycle(ctx):
    cc = ctx.cc(language="en")
    nginx_id, worker_id = ctx.state["created"]
    ids = ok(
        cc.update_process_instance(
            {
                "bk_biz_id": BIZ,
                "processes": [
                    {"bk_process_id": worker_id, "bk_process_name": "py-worker-2", "bk_func_name": "worker"}
                ],
            }
        )
    )
    expect(ids == [worker_id], "updated id", ids)
    detail = ok(
        cc.list_process_detail_by_ids(
            {"bk_biz_id": BIZ, "bk_process_ids": [worker_id], "fields": ["bk_process_id", "bk_process_name"]}
        )
    )
    expect(detail == [{"bk_process_id": worker_id, "bk_process_name": "py-worker-2"}], "detail", detail)
    # Processes made from a template cannot be deleted directly.
    tpl_id = ctx.state["template_processes"]["nginx"]
    fails(
        cc.delete_process_instance({"bk_biz_id": BIZ, "process_instance_ids": [tpl_id]}),
        1113022,
        "delete processe [%d] created by template forbidden" % tpl_id,
    )
    expect(
        ok(cc.delete_process_instance({"bk_biz_id": BIZ, "process_instance_ids": [worker_id]})) is None,
        "deleted",
    )
    data = ok(cc.list_process_instance({"bk_biz_id": BIZ, "service_instance_id": RAW_SERVICE_INSTANCE}))
    expect(worker_id not in processes_of(data), "gone from the list", data)
    # Deleting a service instance removes its processes.
    si = ctx.state["instance"]
    expect(ok(cc.delete_service_instance({"bk_biz_id": BIZ, "service_instance_ids": [si]})) is None, "si deleted")
    data = ok(cc.list_process_detail_by_ids({"bk_biz_id": BIZ, "bk_process_ids": [tpl_id]}))
    expect(data == [], "its processes are gone", data)


def check_search_business(ctx):
    cc = ctx.cc()
    data = ok(cc.search_business({"fields": ["bk_biz_id", "bk_biz_name"]}))
    # The resource pool (business 1) is never listed; `default` comes with `fields`.
    expect(data["count"] == 2, "two businesses", data)
    expect(
        data["info"]
        == [
            {"bk_biz_id": 7, "bk_biz_name": "shop", "default": 0},
            {"bk_biz_id": 8, "bk_biz_name": "lab", "default": 0},
        ],
        "businesses",
        data,
    )
    # A string condition is a case-insensitive substring match.
    data = ok(cc.search_business({"condition": {"bk_biz_name": "SHO"}, "fields": ["bk_biz_id"]}))
    expect(data == {"count": 1, "info": [{"bk_biz_id": 7, "default": 0}]}, "fuzzy name", data)
    whole = ok(cc.search_business({"condition": {"bk_biz_id": 7}}))["info"][0]
    expect(whole["cost_center"] == "CC-1024", "custom attribute returned", whole)
    expect(whole["life_cycle"] == "2" and whole["time_zone"] == "Asia/Shanghai", "built-ins", whole)


def check_list_biz_hosts(ctx):
    cc = ctx.cc(language="en")
    data = ok(
        cc.list_biz_hosts(
            {
                "bk_biz_id": BIZ,
                "page": {"start": 0, "limit": 10},
                "fields": ["bk_host_id", "bk_host_innerip"],
            }
        )
    )
    expect(
        data
        == {
            "count": 2,
            "info": [
                {"bk_host_id": 11, "bk_host_innerip": "192.168.10.11"},
                {"bk_host_id": 12, "bk_host_innerip": "192.168.10.12"},
            ],
        },
        "hosts of the business",
        data,
    )
    rule = {"field": "bk_cpu", "operator": "greater", "value": 4}
    data = ok(
        cc.list_biz_hosts(
            {
                "bk_biz_id": BIZ,
                "page": {"limit": 10},
                "fields": ["bk_host_id"],
                "host_property_filter": {"condition": "AND", "rules": [rule]},
            }
        )
    )
    expect(data == {"count": 1, "info": [{"bk_host_id": 11}]}, "filtered", data)
    fails(
        cc.list_biz_hosts({"bk_biz_id": BIZ, "page": {"limit": 0}}),
        1199006,
        "'page.limit' data parameter verification does not pass",
    )


def check_search_biz_inst_topo(ctx):
    # The client calls it with GET, the business in the query string.
    data = ok(ctx.cc(language="en").search_biz_inst_topo({"bk_biz_id": BIZ, "with_default": 1}))
    biz = data[0]
    expect((biz["bk_inst_id"], biz["bk_obj_id"], biz["bk_inst_name"]) == (BIZ, "biz", "shop"), "root", data)
    sets = [(s["bk_inst_name"], s["default"]) for s in biz["child"]]
    expect(sets == [("web", 0), ("idle pool", 1)], "sets, idle pool last, translated", data)
    modules = [m["bk_inst_id"] for m in biz["child"][0]["child"]]
    expect(modules == [20, 21, 22], "modules of set web", data)
    expect(biz["child"][0]["child"][0]["child"] == [], "leaves", data)


def check_list_process_related_info(ctx):
    cc = ctx.cc_hidden()
    data = ok(
        cc.list_process_related_info(
            {
                "bk_biz_id": BIZ,
                "module": {"bk_module_ids": [21]},
                "fields": ["bk_process_name"],
                "page": {"start": 0, "limit": 10},
            }
        )
    )
    expect(data["count"] == 1, "one process in module 21", data)
    item = data["info"][0]
    expect(list(item) == ["set", "module", "host", "service_instance", "process_template", "process"], "keys", item)
    expect(item["set"] == {"bk_set_id": 3, "bk_set_name": "web", "bk_set_env": "3"}, "set", item)
    expect(item["module"] == {"bk_module_id": 21, "bk_module_name": "web-tpl"}, "module", item)
    expect(item["host"]["bk_host_id"] == HOST and item["host"]["bk_host_innerip"] == "192.168.10.11", "host", item)
    expect(item["process"] == {"bk_process_id": 40, "bk_process_name": "envoy"}, "process", item)
    # GSEKit's five-segment expressions: "*" is left out by the caller, a name becomes a rule.
    rule = {"field": "bk_process_name", "operator": "equal", "value": "envoy"}
    data = ok(
        cc.list_process_related_info(
            {
                "bk_biz_id": BIZ,
                "process_property_filter": {"condition": "AND", "rules": [rule]},
                "page": {"limit": 10},
            }
        )
    )
    expect([i["process"]["bk_process_id"] for i in data["info"]] == [40], "by name", data)


def check_find_host_by_service_template(ctx):
    data = ok(
        ctx.cc().find_host_by_service_template(
            {
                "bk_biz_id": BIZ,
                "bk_service_template_ids": [9],
                "fields": ["bk_host_id", "bk_host_name"],
                "page": {"start": 0, "limit": 10},
            }
        )
    )
    expect(
        data
        == {
            "count": 2,
            "info": [
                {"bk_host_id": 11, "bk_host_name": "shop-web-11"},
                {"bk_host_id": 12, "bk_host_name": "shop-web-12"},
            ],
        },
        "hosts of the template's modules",
        data,
    )


def check_service_category_writes(ctx):
    cc = ctx.cc(language="en")
    cat = ok(cc.create_service_category({"bk_biz_id": BIZ, "name": "py-cat", "bk_parent_id": 0}))
    expect(cat["name"] == "py-cat" and cat["bk_root_id"] == cat["id"], "created root", cat)
    child = ok(cc.create_service_category({"bk_biz_id": BIZ, "name": "py-leaf", "bk_parent_id": cat["id"]}))
    expect(child["bk_root_id"] == cat["id"], "child under it", child)
    fails(
        cc.create_service_category({"bk_biz_id": BIZ, "name": "py-leaf", "bk_parent_id": 1}),
        1113017,
        "service caetgory name [py-leaf] duplicated",
    )
    renamed = ok(cc.update_service_category({"id": child["id"], "name": "py-leaf-2"}))
    expect(renamed["name"] == "py-leaf-2", "renamed", renamed)
    fails(
        cc.delete_service_category({"id": cat["id"]}),
        1199055,
        "forbidden remove item with child node",
    )
    expect(ok(cc.delete_service_category({"id": child["id"]})) is None, "child deleted")
    expect(ok(cc.delete_service_category({"id": cat["id"]})) is None, "root deleted")


def check_template_sync(ctx):
    """difference -> sync -> difference, as GSEKit-style callers do before a release."""
    cc = ctx.cc_hidden(language="en")
    # Module 22 is named after its template once the template takes the module's name.
    ok(cc.update_service_template({"bk_biz_id": BIZ, "id": 9, "name": "web-app"}))
    diff = {"bk_biz_id": BIZ, "bk_module_ids": [22]}
    status = {"bk_biz_id": BIZ, "service_template_id": 9, "bk_module_ids": [22]}
    sync = {"bk_biz_id": BIZ, "service_template_id": 9, "bk_module_ids": [22]}

    def need():
        d = ok(cc.list_service_template_difference(diff))
        expect(d["service_templates"] is None and len(d["modules"]) == 1, "module view", d)
        return d["modules"][0]["need_sync"]

    # Hosts 11 and 12 have no instance of the template: a sync would create them.
    expect(need() is True, "needs a sync")
    st = ok(cc.list_service_template_sync_status(status))
    expect([(s["bk_inst_id"], s["status"]) for s in st] == [(22, "need_sync")], "status", st)
    expect(ok(cc.sync_service_template_to_service_instance(sync)) is None, "sync answers null")
    expect(need() is False, "in sync")
    st = ok(cc.list_service_template_sync_status(status))
    expect([(s["bk_inst_id"], s["status"]) for s in st] == [(22, "finished")], "finished", st)
    listed = ok(cc.list_service_instance({"bk_biz_id": BIZ, "bk_module_id": 22, "page": {"limit": 10}}))
    expect(sorted(i["bk_host_id"] for i in listed["info"]) == [11, 12], "one instance per host", listed)
    # A locked field of nginx changes: a difference until the next sync.
    ok(
        cc.update_proc_template(
            {
                "bk_biz_id": BIZ,
                "process_template_id": 10,
                "process_property": {"work_path": {"value": "/opt/nginx", "as_default_value": True}},
            }
        )
    )
    expect(need() is True, "a locked field differs")
    expect(ok(cc.sync_service_template_to_service_instance(sync)) is None, "sync answers null")
    expect(need() is False, "in sync again")
    detail = ok(cc.list_service_instance_detail({"bk_biz_id": BIZ, "bk_module_id": 22, "page": {"limit": 10}}))
    paths = [
        p["process"]["work_path"]
        for inst in detail["info"]
        for p in inst["process_instances"]
        if p["process"]["bk_process_name"] == "nginx"
    ]
    expect(paths == ["/opt/nginx", "/opt/nginx"], "instances follow the template", detail)
    fails(
        cc.sync_service_template_to_service_instance({"bk_biz_id": BIZ, "service_template_id": 9}),
        1199010,
        "'bk_module_ids' unassigned",
    )


def check_single_node_topology(ctx):
    """A single-node install's steps: a set, a raw module and a template module, hosts added to
    the business and transferred; the template module's instances appear by themselves."""
    cc = ctx.cc(language="en")
    s = ok(cc.create_set({"bk_biz_id": BIZ, "data": {"bk_set_name": "py-node", "bk_parent_id": BIZ}}))
    expect(s["bk_set_name"] == "py-node" and s["default"] == 0, "set created", s)
    set_id = s["bk_set_id"]
    fails(
        cc.create_set({"bk_biz_id": BIZ, "data": {"bk_set_name": "py-node", "bk_parent_id": BIZ}}),
        1101108,
        "the same set name exist",
    )
    st = ok(cc.create_service_template({"bk_biz_id": BIZ, "name": "py-agent", "service_category_id": 2}))
    spec = {
        "bk_process_name": {"value": "py-agent", "as_default_value": True},
        "bk_func_name": {"value": "py-agent", "as_default_value": True},
        "bind_info": {
            "value": [
                {
                    "ip": {"value": "1"},
                    "port": {"value": "48001"},
                    "protocol": {"value": "1"},
                    "enable": {"value": True},
                }
            ]
        },
    }
    ok(cc.batch_create_proc_template({"bk_biz_id": BIZ, "service_template_id": st["id"], "processes": [{"spec": spec}]}))
    tpl = ok(
        cc.create_module(
            {"bk_biz_id": BIZ, "bk_set_id": set_id, "data": {"service_template_id": st["id"], "bk_parent_id": set_id}}
        )
    )
    expect(tpl["bk_module_name"] == "py-agent", "named after the template", tpl)
    raw = ok(
        cc.create_module(
            {"bk_biz_id": BIZ, "bk_set_id": set_id, "data": {"bk_module_name": "py-raw", "bk_parent_id": set_id}}
        )
    )
    hosts = [
        {"bk_host_innerip": "10.77.0.%d" % i, "bk_cloud_id": 0, "bk_addressing": "static"} for i in (1, 2)
    ]
    added = ok(cc.add_host_to_business_idle({"bk_biz_id": BIZ, "bk_host_list": hosts}))
    ids = added["bk_host_ids"]
    expect(len(ids) == 2, "two hosts", added)
    fails(
        cc.add_host_to_business_idle({"bk_biz_id": BIZ, "bk_host_list": hosts[:1]}),
        1199014,
        'duplicated instances exist, fields [ bk_host_innerip: "10.77.0.1", bk_cloud_id: 0 ] duplicated',
    )
    body = {"bk_biz_id": BIZ, "bk_host_id": ids, "bk_module_id": [tpl["bk_module_id"]], "is_increment": False}
    expect(ok(cc.transfer_host_module(body)) is None, "transferred")
    detail = ok(
        cc.list_service_instance_detail(
            {"bk_biz_id": BIZ, "bk_module_id": tpl["bk_module_id"], "page": {"start": 0, "limit": 10}}
        )
    )
    names = [si["name"] for si in detail["info"]]
    expect(names == ["10.77.0.1_py-agent_48001", "10.77.0.2_py-agent_48001"], "instances made", detail)
    # The first host also enters the raw module; an instance there takes two processes.
    body = {"bk_biz_id": BIZ, "bk_host_id": ids[:1], "bk_module_id": [raw["bk_module_id"]], "is_increment": True}
    expect(ok(cc.transfer_host_module(body)) is None, "added to the raw module")
    si = ok(
        cc.create_service_instance(
            {
                "bk_biz_id": BIZ,
                "bk_module_id": raw["bk_module_id"],
                "instances": [
                    {
                        "bk_host_id": ids[0],
                        "processes": [{"process_info": {"bk_process_name": "py-exp", "bk_func_name": "py-exp"}}],
                    }
                ],
            }
        )
    )
    ok(
        cc.create_process_instance(
            {
                "bk_biz_id": BIZ,
                "service_instance_id": si[0],
                "processes": [{"process_info": {"bk_process_name": "py-log", "bk_func_name": "py-log"}}],
            }
        )
    )
    procs = ok(cc.list_process_instance({"bk_biz_id": BIZ, "service_instance_id": si[0]}))
    names = sorted(p["property"]["bk_process_name"] for p in procs)
    expect(names == ["py-exp", "py-log"], "raw instance processes", procs)
    # The second host moves to the raw module and loses its instance there.
    body = {"bk_biz_id": BIZ, "bk_host_id": ids[1:], "bk_module_id": [raw["bk_module_id"]], "is_increment": False}
    expect(ok(cc.transfer_host_module(body)) is None, "moved")
    detail = ok(
        cc.list_service_instance_detail(
            {"bk_biz_id": BIZ, "bk_module_id": tpl["bk_module_id"], "page": {"start": 0, "limit": 10}}
        )
    )
    expect(detail["count"] == 1, "one instance left", detail)
    fails(
        cc.delete_set({"bk_biz_id": BIZ, "bk_set_id": set_id}),
        1101030,
        "Having hosts under the target, deleting forbidden",
    )
    expect(ok(cc.transfer_host_to_idlemodule({"bk_biz_id": BIZ, "bk_host_id": ids})) is None, "to idle")
    procs = ok(cc.list_process_instance({"bk_biz_id": BIZ, "service_instance_id": si[0]}))
    expect(procs == [], "the raw instance went with the host", procs)
    expect(ok(cc.delete_module({"bk_biz_id": BIZ, "bk_set_id": set_id, "bk_module_id": raw["bk_module_id"]})) is None, "module deleted")
    expect(ok(cc.batch_delete_set({"bk_biz_id": BIZ, "delete": {"inst_ids": [set_id]}})) is None, "set deleted")


def check_reset_goes_back_to_the_seed(ctx):
    # Whatever the checks above created, a reset brings back the demo dataset, ids included.
    ctx.admin("POST", "/_cmdb/reset")
    data = ok(
        ctx.cc().list_process_instance(
            {"bk_biz_id": BIZ, "service_instance_id": RAW_SERVICE_INSTANCE}
        )
    )
    expect(sorted(processes_of(data)) == [DEMO_PROCESS], "only the demo's process", data)
    ids = ok(
        ctx.cc().create_process_instance(
            {
                "bk_biz_id": BIZ,
                "service_instance_id": RAW_SERVICE_INSTANCE,
                "processes": [{"process_info": {"bk_process_name": "py-again", "bk_func_name": "again"}}],
            }
        )
    )
    expect(ids == [ctx.state["created"][0]], "the first id after the seed again", ids)


def check_injected_fault_then_recovery(ctx):
    # The next create fails as bk-cmdb would answer a duplicate; the one after it works.
    ctx.admin(
        "POST",
        "/_cmdb/faults",
        {"operation": "create_process_instance", "times": 1, "code": 1199014, "message": "dup"},
    )
    body = {
        "bk_biz_id": BIZ,
        "service_instance_id": RAW_SERVICE_INSTANCE,
        "processes": [{"process_info": {"bk_process_name": "py-flaky", "bk_func_name": "flaky"}}],
    }
    fails(ctx.cc().create_process_instance(body), 1199014, "dup")
    ids = ok(ctx.cc().create_process_instance(body))
    expect(len(ids) == 1, "created on the second try", ids)
    expect(ctx.admin("GET", "/_cmdb/faults")["count"] == 0, "the fault is used up")
    journal = ctx.admin("GET", "/_cmdb/requests?operation=create_process_instance")["info"]
    seen = [(e["bk_error_code"], e["fault"]) for e in journal]
    expect(seen == [(1199014, True), (0, False)], "the journal shows the fault", journal)


NO_EVENT_CURSOR = "MQ0xDTVlYTZkM2YzOTRjMWY1ZDk4NmU5YmQ4Ng1ub0V2ZW50DTENMQ0="


def check_resource_watch_from_now(ctx):
    # A fresh server has no event yet: bk-cmdb's NoEventCursor, to resume from.
    data = ok(ctx.cc().resource_watch({"bk_resource": "process"}))
    expect(data["bk_watched"] is False, "nothing watched yet", data)
    expect(
        data["bk_events"]
        == [{"bk_cursor": NO_EVENT_CURSOR, "bk_resource": "process", "bk_event_type": "", "bk_detail": None}],
        "one empty event with NoEventCursor",
        data,
    )
    ctx.state["cursor"] = data["bk_events"][-1]["bk_cursor"]


def check_resource_watch_follows_changes(ctx):
    # The process worker was created, renamed and deleted by the checks above: follow the stream
    # from the first cursor, as GSEKit does, until its delete.
    _, worker_id = ctx.state["created"]
    cursor, seen = ctx.state["cursor"], []
    with ctx.client() as client:
        for _ in range(50):
            data = ok(
                client.cc.resource_watch(
                    {"bk_resource": "process", "bk_cursor": cursor,
                     "bk_fields": ["bk_process_id", "bk_process_name"]}
                )
            )
            expect(data["bk_watched"] is True, "events after the cursor", data)
            for e in data["bk_events"]:
                expect(e["bk_resource"] == "process", "resource", e)
                if e["bk_detail"]["bk_process_id"] == worker_id:
                    seen.append((e["bk_event_type"], e["bk_detail"]["bk_process_name"]))
            cursor = data["bk_events"][-1]["bk_cursor"]
            if seen and seen[-1][0] == "delete":
                break
    expect(
        seen == [("create", "py-worker"), ("update", "py-worker-2"), ("delete", "py-worker-2")],
        "create, update and delete of the worker, each as it left the record",
        seen,
    )
    fails(
        ctx.cc(language="en").resource_watch({"bk_resource": "process", "bk_cursor": "not-a-cursor"}),
        1103007,
        "Event chain node not exist",
    )


CHECKS = [
    check_resource_watch_from_now,
    check_create_process_instance,
    check_list_process_instance,
    check_create_process_instance_business_error,
    check_business_error_in_english,
    check_duplicate_name_is_a_business_error,
    check_list_process_instance_without_api_version,
    check_no_redirect_and_json,
    check_one_keep_alive_connection,
    check_service_template_lifecycle,
    check_process_template_lifecycle,
    check_service_instance_from_template,
    check_service_instance_labels,
    check_list_service_category,
    check_search_business,
    check_list_biz_hosts,
    check_search_biz_inst_topo,
    check_list_process_related_info,
    check_find_host_by_service_template,
    check_process_lifecycle,
    # Before any check resets the store (a reset replaces the change log with the store).
    check_resource_watch_follows_changes,
    check_service_category_writes,
    check_template_sync,
    check_single_node_topology,
    check_reset_goes_back_to_the_seed,
    check_injected_fault_then_recovery,
]

# Checks that start from the seed: the store is reset before them.
RESET_BEFORE = {check_create_process_instance}


def check_journal(ctx):
    """The journal of the check just run: its ESB calls, each a real operation."""
    journal = ctx.admin("GET", "/_cmdb/requests")
    entries = journal["info"]
    expect(journal["count"] == len(entries) >= 1, "the check's calls are journaled", journal)
    for e in entries:
        expect(e["family"] == "esb", "an ESB call", e)
        expect(e["operation"] and e["path"].startswith("/api/c/compapi/"), "a real operation", e)
        expect(e["status"] == 200, "HTTP 200", e)
        # A GET (get_service_template) carries its parameters in the query string.
        if e["method"] == "GET":
            expect("?" in e["path"], "parameters in the query", e)
        else:
            expect(isinstance(json.loads(e["body"]), dict), "a JSON object body", e)
    return [e["operation"] for e in entries]


def main(argv):
    if len(argv) != 2:
        print("usage: esb_client.py http://HOST:PORT", file=sys.stderr)
        return 2
    ctx = Ctx(argv[1].rstrip("/"))
    passed, failed = 0, []
    for check in CHECKS:
        name = check.__name__[len("check_"):]
        try:
            if check in RESET_BEFORE:
                ctx.admin("POST", "/_cmdb/reset")
            ctx.admin("DELETE", "/_cmdb/requests")
            check(ctx)
            calls = check_journal(ctx)
        except Exception as e:  # any exception is a failed check, the client's own included
            failed.append(name)
            print("client check %s ... FAILED: %s: %s" % (name, type(e).__name__, e))
            traceback.print_exc(file=sys.stdout)
        else:
            passed += 1
            print("client check %s ... ok (%d calls journaled)" % (name, len(calls)))
    # The same closing line as cargo test, so the CI total counts these checks.
    print(
        "test result: %s. %d passed; %d failed; (bkapi-component-open client checks)"
        % ("ok" if not failed else "FAILED", passed, len(failed))
    )
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
