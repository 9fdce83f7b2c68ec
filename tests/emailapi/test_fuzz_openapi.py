"""A bounded fuzz of the whole API from its OpenAPI document: every operation, with a valid
token and a real registered, synced mailbox, gets hostile values in each path parameter, query
parameter and body field (huge and negative integers, NUL, lone surrogates, bidi and escape
characters, wrong JSON types, deep nesting), and hostile bodies (100,000 levels of nesting,
NaN, invalid UTF-8). No answer may be a 5xx, and every error has the API's JSON shape.

The requests go to ``emailapi.asgi.application`` (what the web server runs) in this process, so
that name resolution can be fenced: a fuzzed host name must never leave the machine.
"""

from __future__ import annotations

import copy
import json
import random
import time

import pytest

from mailboxes.command_pool import pool
from mailboxes.sync.account import sync_account
from tests import asgi_calls
from tests.mailboxes.helpers import open_session
from tests.mailboxes.sending_helpers import sending_account
from tests.servers import seed

pytestmark = pytest.mark.django_db(transaction=True)

# Values for a JSON body field, by the field's type; every field also gets WRONG_TYPES.
DEEP_TEXT = "[" * 30_000 + "]" * 30_000  # JSON in a string (token metadata): a deep decode
STRINGS = ["", "\x00", "a\x00b", "\ud800", "é\u202e😀\u2028\x1b[31m", "x" * 70_000,
           "99999999999999999999999", "-1", "../../etc", "\\Seen", "a\r\nBcc: x@y.z", "a\x85b",
           DEEP_TEXT]
INTEGERS = [2**31, 2**63, -(2**63) - 1, 10**30, -1, 0]
WRONG_TYPES = [None, True, 1.5, "1", [], {}, ["\x00"], {"\x00": 1}, [2**63], [[[]]]]
# Raw bodies (Content-Type: application/json).
BODIES = [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
          b'{"x": NaN}', b"Infinity", b"1" * 5000, b"\xff\xfe{}", b'"\\u0000"', b"[]", b"null",
          b"", b'{"\\u0000": "\\ud800"}']
# Percent-encoded query values and path segments.
QUERY_VALUES = ["", "%00", "a%00b", "99999999999999999999", "-99999999999999999999", "1e400",
                "%FF", "%ED%A0%80", "%C3%A9%E2%80%AE%1B", "x" * 5000, "-1", "1.5", "%5B%5D",
                "true", "NaN"]
PATH_VALUES = ["%00", "a%00b", "99999999999999999999", "-1", "%FF", "%ED%A0%80",
               "%C3%A9%E2%80%AE", "x" * 2000, "%20", "a%2Fb"]
# Fields whose string values name a host: only values that fail validation are tried there.
NETWORK_FIELDS = {"host", "url", "redirectUrl", "authorizeUrl", "tokenUrl", "baseUrl", "issuer",
                  "authority", "tenant"}
LOOPBACK_URL = "http://127.0.0.1:9/x"
# The run is bounded: per operation the NAMED values and hostile bodies, and up to this many
# requests in all with others chosen at random (fixed seed), so that it stays well under a
# minute on a busy machine (all of them: about 10,500 requests, 3 minutes).
PER_OPERATION = 45
NAMED = {"%00", "99999999999999999999", "\x00", "\ud800", 2**63, DEEP_TEXT}


def _named(value) -> bool:
    return isinstance(value, (str, int)) and not isinstance(value, bool) and value in NAMED


@pytest.fixture
def world(alice, smtp_server, smtp_user, settings, no_remote_names):
    """Alice's real mailbox ``box`` (synced, with attachments), a scratch one, a webhook, an
    OAuth2 app, an outbox entry and a spare token: sample values for every path parameter."""
    from accounts import services

    settings.WEBHOOKS_ALLOW_PRIVATE = True
    seed.seed_mailbox(smtp_user, messages=list(seed.build_named_messages().values()))
    account = sending_account(alice.tenant, smtp_user, smtp_server)
    sending_account(alice.tenant, smtp_user, smtp_server, "scratch")
    session = open_session(account)
    sync_account(session, account)
    session.client.logout()
    api = alice.client
    messages = api.get("/v1/account/box/messages?path=INBOX&pageSize=100").json()["messages"]
    with_attachment = next(m for m in messages if m["hasAttachments"])
    detail = api.get(f"/v1/account/box/message/{with_attachment['id']}").json()
    webhook = api.post("/v1/webhooks", {"url": "http://127.0.0.1:9/hook"}, format="json").json()
    app = api.post("/v1/oauth2", {"provider": "gmail", "name": "Fuzz", "clientId": "id",
                                  "clientSecret": "secret"}, format="json").json()
    queued = api.post("/v1/account/box/submit", {
        "to": [{"address": "someone@example.test"}], "subject": "s", "text": "t",
        "sendAt": "2099-01-01T00:00:00Z"}, format="json").json()
    spare, _ = services.issue_token(alice.tenant, "spare", ["api"])
    gateway = api.post("/v1/gateway", {"gateway": "gw", "name": "GW", "host": "127.0.0.1",
                                       "port": smtp_server.port}, format="json").json()
    # Bodies that name mail servers name the real ones, so that hostile credentials reach
    # a real LOGIN and AUTH.
    servers = {"imap": {**smtp_user.imap_settings(), "tls": {"rejectUnauthorized": False}},
               "smtp": {**smtp_server.smtp_settings(smtp_user.username, smtp_user.password),
                        "tls": {"rejectUnauthorized": False}}}
    yield {"servers": servers, "account": "box", "id": with_attachment["id"],
           "attachment": detail["attachments"][0]["id"], "thread": with_attachment["threadId"],
           "webhook": webhook.get("id", "none"), "app": app.get("id", "none"),
           "queueId": queued.get("queueId", "none"), "token_id": str(spare.pk),
           "gateway": gateway.get("gateway", "none"),
           "delivery": "00000000-0000-4000-8000-000000000000"}
    pool.close_all()


# --- Building requests from the document

def _resolve(schema: dict, components: dict) -> dict:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    for key in ("allOf", "oneOf", "anyOf"):
        if schema.get(key):
            return _resolve(schema[key][0], components)
    return schema


def _sample(schema: dict, components: dict, name: str = "", depth: int = 0):
    """A plausible value for ``schema``: required fields only, hosts on loopback."""
    schema = _resolve(schema, components)
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "object" or "properties" in schema:
        if depth > 4:
            return {}
        props = schema.get("properties", {})
        return {key: _sample(props[key], components, key, depth + 1)
                for key in schema.get("required", []) if key in props}
    if kind == "array":
        return [_sample(schema.get("items", {}), components, name, depth + 1)] \
            if schema.get("minItems") else []
    if kind == "integer":
        return 9 if name == "port" else max(1, schema.get("minimum", 1))
    if kind == "number":
        return 1
    if kind == "boolean":
        return False
    if name == "host":
        return "127.0.0.1"
    if schema.get("format") == "uri" or name in NETWORK_FIELDS:
        return LOOPBACK_URL
    return {"email": "fuzz@example.test", "date-time": "2026-01-01T00:00:00Z",
            "uuid": "00000000-0000-4000-8000-000000000000"}.get(schema.get("format"), "x")


def _loopback(value, name: str = ""):
    """An example body with every host and URL on loopback."""
    if isinstance(value, dict):
        return {key: _loopback(item, key) for key, item in value.items()}
    if isinstance(value, list):
        return [_loopback(item, name) for item in value]
    if isinstance(value, str) and (name == "host"):
        return "127.0.0.1"
    if isinstance(value, str) and (name in NETWORK_FIELDS or value.startswith("http")):
        return LOOPBACK_URL
    if name == "port":
        return 9
    return value


def _fields(schema: dict, components: dict, prefix=(), depth: int = 0):
    """``(path, schema)`` of every body field, three levels deep (imap.auth.pass)."""
    schema = _resolve(schema, components)
    for key, prop in schema.get("properties", {}).items():
        if _resolve(prop, components).get("readOnly"):
            continue
        yield (*prefix, key), _resolve(prop, components)
        if depth < 2:
            yield from _fields(prop, components, (*prefix, key), depth + 1)


def _hostile(path: tuple, schema: dict) -> list:
    kind = schema.get("type")
    if path[-1] in NETWORK_FIELDS or schema.get("format") == "uri":
        strings = ["", "\x00", "\ud800", "x" * 70_000]
    else:
        strings = STRINGS
    by_type = {"string": strings + [2**63], "integer": INTEGERS + ["\x00"],
               "number": [1e308, -1e308, 2**63], "boolean": ["true", 0, "\x00"],
               "array": [[v] for v in strings[:4]] + [[2**63], ["x"] * 10_000],
               "object": [{"\x00": 1}, {"x" * 1000: 1}] + [{"X-Fuzz": v} for v in strings]}
    return by_type.get(kind, strings + INTEGERS) + WRONG_TYPES


def _with(body, path: tuple, value):
    body = copy.deepcopy(body) if isinstance(body, dict) else {}
    node = body
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value
    return body


def _operation(template: str, method: str, operation: dict, world: dict, components: dict,
               rng: random.Random) -> list[tuple]:
    """The requests of one operation: always the baseline and the cases the issue names
    (NUL, beyond the integer range, deep nesting), then a fixed random sample of the rest."""
    params = operation.get("parameters", [])
    values = {key: value for key, value in world.items() if isinstance(value, str)}
    if template == "/v1/account/{account}" and method in ("put", "delete"):
        values["account"] = "scratch"
    base_query = {"path": "INBOX"} if any(p["name"] == "path" for p in params) else {}
    if template == "/v1/stream":
        base_query["once"] = "true"
    body = content = None
    if "requestBody" in operation:
        content = operation["requestBody"]["content"]["application/json"]
        examples = content.get("examples")
        body = (_loopback(next(iter(examples.values()))["value"]) if examples
                else _sample(content["schema"], components))
        for kind in ("imap", "smtp"):
            if isinstance(body.get(kind), dict):
                body[kind] = copy.deepcopy(world["servers"][kind])

    def build(path_values=None, query=None, raw_body=None):
        path = template
        for key, value in {**values, **(path_values or {})}.items():
            path = path.replace("{" + key + "}", value)
        encoded = "&".join(f"{k}={v}" for k, v in {**base_query, **(query or {})}.items())
        payload = raw_body if raw_body is not None else (
            json.dumps(body).encode() if body is not None else b"")
        return (f"{method.upper()} {template}", method.upper(), path, encoded, payload)

    must, extra = [build(), build(query={"%00": "1"})], []
    for param in params:
        for value in (PATH_VALUES if param["in"] == "path" else QUERY_VALUES):
            where = "path_values" if param["in"] == "path" else "query"
            (must if value in NAMED else extra).append(build(**{where: {param["name"]: value}}))
    if content is not None:
        for path, field in _fields(content["schema"], components):
            for value in _hostile(path, field):
                request = build(raw_body=json.dumps(_with(body, path, value)).encode())
                (must if _named(value) else extra).append(request)
        must += [build(raw_body=raw) for raw in BODIES]
    return must + rng.sample(extra, min(len(extra), max(0, PER_OPERATION - len(must))))


def _requests(schema: dict, world: dict) -> list[tuple]:
    """``(operation, method, path, query, body bytes)`` of every request of the run, in an
    order that keeps the sample data alive: reads, then writes, then deletions."""
    components = schema["components"]["schemas"]
    rng = random.Random(14)
    runs = []
    for template, operations in schema["paths"].items():
        for method, operation in operations.items():
            order = 2 if method == "delete" else (0 if method == "get" else 1)
            runs.append((order, template,
                         _operation(template, method, operation, world, components, rng)))
    runs.sort(key=lambda run: (run[0], run[1]))
    return [request for _, _, mine in runs for request in mine]


# --- Calling the application

def _run(requests: list, token: str) -> list[tuple]:
    from emailapi.asgi import application

    headers = [(b"authorization", f"Bearer {token}".encode()), (b"content-type", b"application/json")]

    async def main():
        answers = []
        for operation, method, path, query, body in requests:
            status, answer_headers, content = await asgi_calls.call(
                application, method, path, query, body, headers)
            answers.append((operation, method, path, query, body, status, answer_headers, content))
        return answers

    return asgi_calls.run(main)


def _problem(answer) -> str | None:
    operation, method, path, query, body, status, headers, content = answer
    where = f"{operation}: {method} {path[:200]}?{query[:200]} body={body[:200]!r} -> {status}"
    if status == 503 and json.loads(content).get("emailapiCode") == "MailboxUnavailable":
        return None  # a mailbox the fuzz registered, on a port where no server listens
    if status >= 500:
        return f"{where} {content[:300]!r}"
    if status >= 400:
        try:
            error = json.loads(content)
        except ValueError:
            return f"{where}: not JSON: {content[:300]!r}"
        if not (isinstance(error, dict) and error.get("statusCode") == status
                and all(isinstance(error.get(key), str)
                        for key in ("error", "message", "code", "emailapiCode"))):
            return f"{where}: not the error shape: {content[:300]!r}"
    return None


def test_no_operation_answers_5xx_or_an_unshaped_error_to_hostile_input(alice, world, client):
    schema = client.get("/v1/openapi.json").json()
    requests = _requests(schema, world)
    started = time.monotonic()
    answers = _run(requests, alice.token)
    elapsed = time.monotonic() - started
    problems = [problem for problem in map(_problem, answers) if problem]
    assert not problems, f"{len(problems)} of {len(answers)}:\n" + "\n".join(problems[:400])
    operations = {answer[0] for answer in answers}
    assert len(operations) == sum(len(ops) for ops in schema["paths"].values())
    print(f"{len(answers)} requests over {len(operations)} operations in {elapsed:.1f} s")
