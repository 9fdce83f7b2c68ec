"""Bad input gets the JSON error shape and changes nothing."""

from __future__ import annotations

import json

import pytest

from accounts import credentials
from accounts.models import EmailAccount
from tests.base import account_payload
from webhooks.models import Event

pytestmark = pytest.mark.django_db


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) >= {"statusCode", "error", "message", "code", "emailapiCode"}
    assert body["statusCode"] == status
    assert isinstance(body["message"], str)
    assert body["message"]
    if code:
        assert body["code"] == code
    return body


def assert_nothing_stored():
    assert EmailAccount.objects.count() == 0
    assert Event.objects.count() == 0


def test_malformed_json(alice):
    response = alice.client.post("/v1/account", b'{"account": "x",', content_type="application/json")
    assert_error(response, 400, "InvalidJSON")
    assert_nothing_stored()


def test_non_json_content_type(alice):
    response = alice.client.post("/v1/account", b"account=x",
                                 content_type="application/x-www-form-urlencoded")
    assert_error(response, 415, "UnsupportedMediaType")
    assert_nothing_stored()


@pytest.mark.parametrize("body", [[], "text", 42, None])
def test_a_body_that_is_not_an_object(alice, body):
    response = alice.client.post("/v1/account", json.dumps(body), content_type="application/json")
    assert_error(response, 400, "InputValidationError")
    assert_nothing_stored()


@pytest.mark.parametrize("path, value", [
    (("imap", "port"), "993a"),
    (("imap", "port"), "9.5"),
    (("imap", "port"), ""),
    (("imap", "port"), 99999),
    (("imap", "port"), "99999"),
    (("imap", "secure"), "yes"),
    (("imap", "secure"), "1"),
    (("imap", "secure"), ""),
    (("imap", "host"), 12),
    (("imap", "host"), "bad host\r\nA1 LOGOUT"),
    (("imap", "auth", "pass"), 123),
    (("imap",), "imap.example.com"),
    (("name",), ["list"]),
    (("email",), "not-an-email"),
])
def test_wrong_types_and_values(alice, path, value):
    body = account_payload()
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    response = alice.client.post("/v1/account", body, format="json")
    error = assert_error(response, 400, "InputValidationError")
    assert ".".join(path) in error["details"], error
    assert_nothing_stored()


@pytest.mark.parametrize("path", [("imapp",), ("imap", "hots"), ("imap", "auth", "password")])
def test_unknown_fields_are_refused_at_any_depth(alice, path):
    body = account_payload()
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = "x"
    error = assert_error(alice.client.post("/v1/account", body, format="json"), 400)
    assert ".".join(path) in error["details"]
    assert error["details"][".".join(path)] == ["Unknown field"]
    assert_nothing_stored()


def test_missing_password(alice):
    body = account_payload()
    del body["imap"]["auth"]["pass"]
    error = assert_error(alice.client.post("/v1/account", body, format="json"), 400)
    assert "imap.auth" in error["details"]
    assert_nothing_stored()


@pytest.mark.parametrize("account_id", ["a\x1fb", "a\x00b", "", ".", "..", "a\tb", "a\u202eb", "x" * 257])
def test_bad_account_ids(alice, account_id):
    response = alice.client.post("/v1/account", account_payload(account=account_id), format="json")
    assert_error(response, 400, "InputValidationError")
    assert_nothing_stored()


def test_a_256_character_id_is_fine(alice):
    response = alice.client.post("/v1/account", account_payload(account="a" * 256), format="json")
    assert response.status_code == 200


def test_a_10_mb_body_is_413(alice):
    body = account_payload(name="x" * (10 * 1024 * 1024))
    response = alice.client.post("/v1/account", json.dumps(body), content_type="application/json")
    error = assert_error(response, 413, "PayloadTooLarge")
    assert error["details"]["maxBytes"] > 0
    assert_nothing_stored()


def test_bad_update_changes_nothing(alice):
    alice.client.post("/v1/account", account_payload(), format="json")
    before = EmailAccount.objects.get(account_id="sales")
    for body in ({"imap": {"port": 0}}, {"imap": {"auth": {"pass": 5}}}, {"unknown": 1},
                 {"imap": {"auth": {"pass": "new"}}, "name": 7}):
        response = alice.client.put("/v1/account/sales", body, format="json")
        assert_error(response, 400, "InputValidationError")
    after = EmailAccount.objects.get(account_id="sales")
    assert (after.imap, after.name, after.config_version) == (before.imap, before.name,
                                                              before.config_version)
    assert credentials.get_credential(after, "imap.pass") == "imap-Secret-123"


def test_unknown_query_parameters_are_refused(alice):
    assert_error(alice.client.get("/v1/accounts?pagesize=5"), 400, "InputValidationError")
