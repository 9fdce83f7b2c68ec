"""The OpenAPI document covers every /v1 route, with the error shape and examples; /docs works."""

import pytest
from django.urls import URLResolver, get_resolver, reverse

from tests.accounts.test_tokens import _v1_routes
from tests.emailapi.openapi_calls_accounts import _accounts_calls
from tests.emailapi.openapi_calls_exports import _export_calls
from tests.emailapi.openapi_calls_oauth2 import _oauth2_calls
from tests.emailapi.openapi_calls_stream import _stream_calls
from tests.emailapi.openapi_calls_submit import _submit_calls
from tests.emailapi.openapi_calls_webhooks import _webhooks_calls
from tests.emailapi.openapi_calls_write import _folder_calls, _write_calls

pytestmark = pytest.mark.django_db


def test_openapi_is_public_json_and_lists_every_route(client):
    response = client.get("/v1/openapi.json")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi+json") or \
        response["Content-Type"].startswith("application/json")
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    documented = set(schema["paths"])
    for route in _v1_routes():
        template = (route.replace("/sales", "/{account}").replace("/token/1", "/token/{token}")
                    .replace("/tokens/1", "/tokens/{token}")
                    .replace("/msgid", "/{id}").replace("/attid", "/{attachment}")
                    .replace("/txtid", "/{text}")
                    .replace("/thrid", "/{thread}").replace("/qid", "/{queueId}")
                    .replace("/oauth2/appid", "/oauth2/{app}")
                    .replace("/whid", "/{webhook}").replace("/dlid", "/{delivery}")
                    .replace("/gwid", "/{gateway}").replace("/tplid", "/{template}")
                    .replace("/lstid", "/{listId}").replace("/expid", "/{exportId}")
                    .replace("/whrid", "/{webhookRoute}").replace("/qname", "/{queue}"))
        assert template in documented, route


def test_every_operation_documents_errors_and_security(client):
    schema = client.get("/v1/openapi.json").json()
    assert "Error" in schema["components"]["schemas"]
    assert "bearerAuth" in schema["components"]["securitySchemes"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert {"401", "400", "503"} <= set(operation["responses"]), (path, method)
            assert operation.get("security"), (path, method)
            assert operation.get("operationId")


def test_request_examples_exist_for_writes(client):
    schema = client.get("/v1/openapi.json").json()
    create = schema["paths"]["/v1/account"]["post"]["requestBody"]["content"]["application/json"]
    assert create["examples"]
    verify = schema["paths"]["/v1/verifyAccount"]["post"]["requestBody"]["content"]
    assert verify["application/json"]["examples"]


def test_docs_page_renders_without_external_assets(client):
    response = client.get("/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html.lower()
    assert "cdn.jsdelivr" not in html
    assert "unpkg.com" not in html
    assert "/v1/openapi.json" in html


def _to_json_schema(node, components):
    """OpenAPI 3.0 schema -> JSON Schema: resolve $ref, turn ``nullable`` into a null type."""
    if isinstance(node, list):
        return [_to_json_schema(item, components) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _to_json_schema(components[node["$ref"].rsplit("/", 1)[1]], components)
    out = {key: _to_json_schema(value, components) for key, value in node.items()
           if key not in ("nullable", "readOnly", "writeOnly", "example", "examples")}
    if node.get("nullable"):
        out = {"anyOf": [out, {"type": "null"}]}
    return out


def _check(schema, path, method, response):
    import jsonschema

    operation = schema["paths"][path][method]
    documented = operation["responses"].get(str(response.status_code))
    assert documented, f"{method.upper()} {path} answered {response.status_code}, not documented"
    content = documented["content"]
    if "application/json" not in content:  # a download: the media type must be documented
        media = response["Content-Type"].split(";")[0]
        assert media in content or "*/*" in content, f"{method.upper()} {path}: {media}"
        if response.streaming:
            assert b"".join(response.streaming_content)
        return
    body_schema = content["application/json"]["schema"]
    components = schema["components"]["schemas"]
    jsonschema.validate(response.json(), _to_json_schema(body_schema, components))


def test_real_responses_match_the_document(client, alice, bob, mail_user):
    """Every documented route, called for real, answers with what the document promises."""
    from tests.base import account_payload

    schema = client.get("/v1/openapi.json").json()
    api = alice.client
    calls = [
        ("/v1/account", "post", lambda: api.post("/v1/account", account_payload(), format="json")),
        ("/v1/account", "post", lambda: api.post("/v1/account", account_payload(), format="json")),
        ("/v1/account", "post", lambda: api.post("/v1/account", {"imap": 1}, format="json")),
        ("/v1/accounts", "get", lambda: api.get("/v1/accounts")),
        ("/v1/accounts", "get", lambda: api.get("/v1/accounts?pageSize=0")),
        ("/v1/account/{account}", "get", lambda: api.get("/v1/account/sales")),
        ("/v1/account/{account}", "get", lambda: bob.client.get("/v1/account/sales")),
        ("/v1/account/{account}", "put",
         lambda: api.put("/v1/account/sales", {"name": "New"}, format="json")),
        ("/v1/verifyAccount", "post",
         lambda: api.post("/v1/verifyAccount", {"imap": mail_user.imap_settings(secure=True),
                                                "mailboxes": True}, format="json")),
        ("/v1/token", "post", lambda: api.post("/v1/token", {"name": "x"}, format="json")),
        ("/v1/tokens", "get", lambda: api.get("/v1/tokens")),
        ("/v1/gateway", "post", lambda: api.post("/v1/gateway", {
            "gateway": "gw", "name": "GW", "host": "127.0.0.1", "port": 2525, "user": "u",
            "pass": "p"}, format="json")),
        ("/v1/gateway", "post", lambda: api.post("/v1/gateway", {"port": 0}, format="json")),
        ("/v1/gateways", "get", lambda: api.get("/v1/gateways")),
        ("/v1/gateway/{gateway}", "get", lambda: api.get("/v1/gateway/gw")),
        ("/v1/gateway/{gateway}", "get", lambda: api.get("/v1/gateway/nope")),
        ("/v1/gateway/edit/{gateway}", "put",
         lambda: api.put("/v1/gateway/edit/gw", {"name": "G"}, format="json")),
        ("/v1/gateway/{gateway}", "delete", lambda: api.delete("/v1/gateway/gw")),
        ("/v1/tokens/account/{account}", "get", lambda: api.get("/v1/tokens/account/sales")),
        ("/v1/tokens/account/{account}", "get", lambda: api.get("/v1/tokens/account/nobody")),
        ("/v1/tokens", "get", lambda: alice.client_with("metrics").get("/v1/tokens")),
        ("/v1/token/{token}", "delete", lambda: api.delete("/v1/token/999999")),
        ("/v1/account/{account}/reconnect", "put",
         lambda: api.put("/v1/account/sales/reconnect", format="json")),
        ("/v1/account/{account}/pause", "put",
         lambda: api.put("/v1/account/sales/pause", format="json")),
        ("/v1/account/{account}/resume", "put",
         lambda: api.put("/v1/account/sales/resume", format="json")),
        ("/v1/account/{account}", "delete", lambda: api.delete("/v1/account/sales")),
        ("/v1/accounts", "get", lambda: client.get("/v1/accounts")),
        *_read_api_calls(alice, mail_user),
        *_export_calls(alice, bob),
        *_submit_calls(alice, bob),
        *_oauth2_calls(alice, bob),
        *_stream_calls(alice, bob),
        *_write_calls(alice),
        *_accounts_calls(alice),
        *_folder_calls(alice),
        *_webhooks_calls(alice, bob),
    ]
    for path, method, call in calls:
        _check(schema, path, method, call())
    covered = {(path, method) for path, method, _ in calls}
    for path, operations in schema["paths"].items():
        for method in operations:
            if path != "/v1/openapi.json":
                assert (path, method) in covered, f"add a call of {method.upper()} {path}"


def test_schema_generation_is_warning_free_and_valid():
    """drf-spectacular's own validator plus --fail-on-warn: an undocumented type fails here."""
    import io

    from django.core.management import call_command

    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json",
                 stdout=out)
    assert '"openapi"' in out.getvalue()


def _read_api_calls(alice, mail_user):
    """Calls of the read API on a mailbox synced from Dovecot (what its responses look like
    with real messages in them)."""
    from mailboxes.sync.account import sync_account
    from tests.mailboxes.helpers import open_session, register
    from tests.servers import seed

    seed.seed_mailbox(mail_user, messages=seed.build_messages())
    account = register(alice.tenant, mail_user)
    session = open_session(account)
    sync_account(session, account)
    session.client.logout()
    api = alice.client
    listed = api.get("/v1/account/box/messages?path=INBOX").json()["messages"]
    message = next(m for m in listed if m["hasAttachments"])
    detail = api.get(f"/v1/account/box/message/{message['id']}").json()
    attachment = detail["attachments"][0]["id"]
    thread = listed[0]["threadId"]
    search = {"search": {"subject": "a"}}
    return [
        ("/v1/account/{account}/mailboxes", "get", lambda: api.get("/v1/account/box/mailboxes")),
        ("/v1/account/{account}/mailboxes", "get",
         lambda: api.get("/v1/account/box/mailboxes?counters=true")),
        ("/v1/account/{account}/messages", "get",
         lambda: api.get("/v1/account/box/messages?path=INBOX&pageSize=2")),
        ("/v1/account/{account}/messages", "get",
         lambda: api.get("/v1/account/box/messages?path=Nope")),
        ("/v1/account/{account}/message/{id}", "get",
         lambda: api.get(f"/v1/account/box/message/{message['id']}?headers=true")),
        ("/v1/account/{account}/message/{id}", "get",
         lambda: api.get("/v1/account/box/message/bogus")),
        ("/v1/account/{account}/message/{id}/source", "get",
         lambda: api.get(f"/v1/account/box/message/{message['id']}/source")),
        ("/v1/account/{account}/text/{text}", "get",
         lambda: api.get(f"/v1/account/box/text/{detail['text']['id']}")),
        ("/v1/account/{account}/text/{text}", "get",
         lambda: api.get("/v1/account/box/text/bogus")),
        ("/v1/account/{account}/message/{id}", "get",
         lambda: api.get(f"/v1/account/box/message/{message['id']}?webSafeHtml=true")),
        ("/v1/account/{account}/attachment/{attachment}", "get",
         lambda: api.get(f"/v1/account/box/attachment/{attachment}")),
        ("/v1/account/{account}/search", "post",
         lambda: api.post("/v1/account/box/search?path=INBOX", search, format="json")),
        ("/v1/account/{account}/search", "post",
         lambda: api.post("/v1/account/box/search?source=index", search, format="json")),
        ("/v1/account/{account}/search", "get",
         lambda: api.get("/v1/account/box/search?path=INBOX&search[seen]=false")),
        ("/v1/account/{account}/threads", "get", lambda: api.get("/v1/account/box/threads")),
        ("/v1/account/{account}/thread/{thread}", "get",
         lambda: api.get(f"/v1/account/box/thread/{thread}")),
    ]


def test_each_app_mounts_its_api_once_under_its_namespace():
    v1 = next(p for p in get_resolver().url_patterns if str(p.pattern) == "v1/")
    namespaces = [p.namespace for p in v1.url_patterns if isinstance(p, URLResolver)]
    assert sorted(namespaces) == ["accounts", "mailboxes", "webhooks"]  # order: test_url_order
    assert reverse("accounts:account-detail", args=["sales"]) == "/v1/account/sales"
    assert reverse("mailboxes:message-list", args=["sales"]) == "/v1/account/sales/messages"
    assert reverse("webhooks:changes") == "/v1/changes"
