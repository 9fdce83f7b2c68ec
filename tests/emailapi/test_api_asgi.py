"""``/v1`` under ASGI runs on the API's own short middleware chain (``ApiMiddleware``): same
answers, same security headers and body limits as the site's full chain, fewer thread hops."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.testing import ApplicationCommunicator

pytestmark = pytest.mark.django_db(transaction=True)


def call(path: str, token: str | None = None, method: str = "GET", body: bytes = b"",
         headers: list[tuple[bytes, bytes]] | None = None) -> tuple[int, dict, bytes]:
    from emailapi.asgi import application

    all_headers = [(b"host", b"127.0.0.1"), *(headers or [])]
    if token:
        all_headers.append((b"authorization", f"Bearer {token}".encode()))
    path, _, query = path.partition("?")
    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(),
             "query_string": query.encode(), "headers": all_headers, "http_version": "1.1",
             "scheme": "http", "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 5000),
             "root_path": "", "asgi": {"version": "3.0"}}

    async def run():
        app = ApplicationCommunicator(application, scope)
        await app.send_input({"type": "http.request", "body": body, "more_body": False})
        start = await app.receive_output(10)
        content = b""
        while True:
            message = await app.receive_output(10)
            content += message.get("body", b"")
            if not message.get("more_body"):
                break
        await app.wait(5)
        return start, content

    # On a thread of its own: a browser test earlier in this process may have left an event
    # loop running on the main thread (Playwright's sync API), where asyncio.run refuses.
    with ThreadPoolExecutor(max_workers=1) as thread:
        start, content = thread.submit(asyncio.run, run()).result()
    found = {name.decode().lower(): value.decode() for name, value in start["headers"]}
    return start["status"], found, content


def test_api_answers_with_the_security_headers_of_the_site(alice):
    status, headers, content = call("/v1/accounts", alice.token)
    assert status == 200
    assert json.loads(content)["accounts"] == []
    _, site_headers, _ = call("/health")
    for name in ("x-content-type-options", "referrer-policy", "cross-origin-opener-policy"):
        assert headers[name] == site_headers[name], name
    assert "set-cookie" not in headers  # no session machinery on the API


def test_api_errors_keep_their_json_shape(alice):
    status, _, content = call("/v1/accounts")
    assert status == 401
    assert json.loads(content)["code"] == "Unauthorized"
    status, _, content = call("/v1/no-such-route", alice.token)
    assert status == 404
    assert json.loads(content)["statusCode"] == 404


def test_api_refuses_a_declared_oversized_body(alice, settings):
    settings.EMAILAPI_MAX_BODY_SIZE = 2048
    body = json.dumps({"name": "x" * 4000}).encode()
    status, _, content = call("/v1/token", alice.token, "POST", body,
                              [(b"content-type", b"application/json"),
                               (b"content-length", str(len(body)).encode())])
    assert status == 413
    assert json.loads(content)["code"] == "PayloadTooLarge"


def test_the_api_chain_has_only_the_api_middleware():
    from emailapi.api.asgi_handler import ApiASGIHandler
    from emailapi.api.middleware import ApiMiddleware

    handler = ApiASGIHandler()
    assert [m.__self__.__class__ for m in handler._view_middleware] == [ApiMiddleware]
