"""The error shape for 404, 405, 413, 429 and 500, and that a 500 leaks nothing."""

from __future__ import annotations

import asyncio
import json

import pytest

from emailapi.api.asgi_limits import body_limit
from emailapi.api.errors import flatten_errors
from tests.base import account_payload, api_client

pytestmark = pytest.mark.django_db


def test_unknown_route_is_json_404(alice):
    response = alice.client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["code"] == "RouteNotFound"
    assert response.json()["statusCode"] == 404


def test_unknown_route_without_token_is_404_not_a_traceback():
    response = api_client().get("/v1/does/not/exist")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")


def test_wrong_method_is_405(alice):
    response = alice.client.patch("/v1/accounts", {}, format="json")
    assert response.status_code == 405
    body = response.json()
    assert body["code"] == "MethodNotAllowed"
    assert body["statusCode"] == 405


def test_500_hides_the_cause(alice, settings, caplog):
    settings.ROOT_URLCONF = "tests.emailapi.urls_for_errors"
    response = alice.client.get("/v1/broken")
    assert response.status_code == 500
    assert response.json() == {"statusCode": 500, "error": "Internal Server Error",
                               "message": "Internal server error", "code": "InternalError",
                               "emailapiCode": "InternalError"}
    assert "hunter2" not in response.content.decode()
    assert "Traceback" not in response.content.decode()
    assert any("Unhandled error" in record.message for record in caplog.records)


def test_rate_limit_is_429_with_retry_after(alice, settings):
    settings.EMAILAPI_RATE_LIMIT = 3
    statuses = [alice.client.get("/v1/accounts").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = alice.client.get("/v1/accounts")
    assert response.json()["code"] == "RateLimited"
    assert 1 <= int(response["Retry-After"]) <= 61


def test_rate_limit_is_per_tenant(alice, bob, settings):
    settings.EMAILAPI_RATE_LIMIT = 2
    for _ in range(3):
        alice.client.get("/v1/accounts")
    assert bob.client.get("/v1/accounts").status_code == 200


def test_a_route_may_lower_the_body_limit(alice, settings):
    settings.ROOT_URLCONF = "tests.emailapi.urls_for_errors"
    from tests.emailapi.urls_for_errors import BrokenView

    BrokenView.max_body_size = 2048
    try:
        response = alice.client.post("/v1/broken", {"x": "y" * 4096}, format="json")
    finally:
        del BrokenView.max_body_size
    assert response.status_code == 413
    assert response.json()["details"] == {"maxBytes": 2048}


def test_flatten_errors_names_nested_fields():
    flat = flatten_errors({"imap": {"auth": {"pass": ["Required"]}, "port": ["Bad"]},
                           "non_field_errors": ["Whole"]})
    assert flat == {"imap.auth.pass": ["Required"], "imap.port": ["Bad"],
                    "non_field_errors": ["Whole"]}


def test_asgi_cap_refuses_a_chunked_body_while_it_arrives():
    """Pure ASGI check: the inner app is never given more than the cap."""
    chunks = [{"type": "http.request", "body": b"x" * 600, "more_body": True} for _ in range(5)]
    sent, read = [], []

    async def inner(scope, receive, send):
        while True:
            message = await receive()
            read.append(len(message["body"]))
            if not message.get("more_body"):
                break

    async def receive():
        return chunks.pop(0)

    async def send(message):
        sent.append(message)

    asyncio.run(body_limit(inner, 1000)({"type": "http"}, receive, send))
    assert sum(read) <= 1200
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["code"] == "PayloadTooLarge"


def test_validation_error_names_every_field(alice):
    body = account_payload()
    body["imap"]["port"] = -1
    body["smtp"]["host"] = ""
    details = alice.client.post("/v1/account", body, format="json").json()["details"]
    assert "imap.port" in details
    assert "smtp.host" in details
