"""BlueKing's Python client against `serve --auth tests/clients/auth.json`: the right secret
works, a wrong secret or an unknown app gets the ESB's own answer, and a user without the
action gets bk-cmdb's 9900403 with its `permission` object, as the ESB passes it on.

Usage: python esb_auth.py http://127.0.0.1:PORT   (started as tests/clients/run.sh does)
"""

import re
import sys
import traceback

from bkapi_component.open.client import Client

from esb_client import APP_CODE, APP_SECRET, BIZ, RAW_SERVICE_INSTANCE, ENVELOPE_KEYS, expect

ESB_ERROR_KEYS = ["result", "code", "data", "message", "request_id"]


def client(endpoint, app_code=APP_CODE, secret=APP_SECRET, user="alice", language=None):
    c = Client(endpoint=endpoint, bk_api_ver="v2", language=language)
    c.update_bkapi_authorization(bk_app_code=app_code, bk_app_secret=secret, bk_username=user)
    return c.cc


def create(cc, name):
    return cc.create_process_instance(
        {
            "bk_biz_id": BIZ,
            "service_instance_id": RAW_SERVICE_INSTANCE,
            "processes": [{"process_info": {"bk_process_name": name, "bk_func_name": name}}],
        }
    )


def count(endpoint):
    answer = client(endpoint).list_process_instance(
        {"bk_biz_id": BIZ, "service_instance_id": RAW_SERVICE_INSTANCE}
    )
    return len(answer["data"])


def esb_refusal(answer, message):
    expect(list(answer) == ESB_ERROR_KEYS, "the ESB's own keys", answer)
    expect(answer["result"] is False and answer["code"] == 1306000, "1306000", answer)
    expect(answer["data"] is None, "data null", answer)
    expect(answer["message"] == message, "the ESB's text", answer)
    expect(re.fullmatch("[0-9a-f]{32}", answer["request_id"]), "a uuid4 hex request_id", answer)


def check_right_secret(endpoint):
    answer = create(client(endpoint), "auth-ok")
    expect(list(answer) == ENVELOPE_KEYS and answer["result"] is True, "created", answer)


def check_wrong_secret(endpoint):
    before = count(endpoint)
    for language in (None, "en"):
        answer = create(client(endpoint, secret="not-the-secret", language=language), "auth-no")
        esb_refusal(
            answer,
            "APP Secret verification failed, pelase confirm if the APP Secret and APP Code "
            "[bk_app_code=%s] match" % APP_CODE,
        )
        expect("not-the-secret" not in repr(answer), "no secret in the answer", answer)
    expect(count(endpoint) == before, "nothing written", before)


def check_unknown_app(endpoint):
    answer = create(client(endpoint, app_code="someone-else"), "auth-no")
    esb_refusal(
        answer,
        "Invalid APP Code [bk_app_code=someone-else], please confirm if the APP Code has been registered",
    )


def check_permission_denied(endpoint):
    before = count(endpoint)
    for language, message in ((None, "没有操作的权限"), ("en", "Do not have access permission.")):
        answer = create(client(endpoint, user="bob", language=language), "auth-denied")
        expect(list(answer) == ENVELOPE_KEYS, "ESB envelope keys", answer)
        expect(answer["code"] == 9900403 and answer["message"] == message, "9900403", answer)
        perm = answer["permission"]
        expect(perm["system_id"] == "bk_cmdb" and perm["system_name"] == "配置平台", "system", perm)
        action = perm["actions"][0]
        expect(action["id"] == "edit_biz_service_instance" and action["name"] == "服务实例编辑", "action", perm)
        instance = action["related_resource_types"][0]["instances"][0][0]
        expect(instance == {"type": "biz", "type_name": "业务", "id": "7", "name": "shop"}, "instance", perm)
    expect(count(endpoint) == before, "nothing written", before)


CHECKS = [check_right_secret, check_wrong_secret, check_unknown_app, check_permission_denied]


def main(argv):
    if len(argv) != 2:
        print("usage: esb_auth.py http://HOST:PORT", file=sys.stderr)
        return 2
    endpoint = argv[1].rstrip("/")
    passed, failed = 0, []
    for check in CHECKS:
        name = check.__name__[len("check_"):]
        try:
            check(endpoint)
        except Exception as e:
            failed.append(name)
            print("client check %s ... FAILED: %s: %s" % (name, type(e).__name__, e))
            traceback.print_exc(file=sys.stdout)
        else:
            passed += 1
            print("client check %s ... ok" % name)
    print(
        "test result: %s. %d passed; %d failed; (bkapi-component-open auth checks)"
        % ("ok" if not failed else "FAILED", passed, len(failed))
    )
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
