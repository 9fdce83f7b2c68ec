"""Error bodies as EmailEngine's clients read them: Boom's ``{statusCode, error, message,
code}``, ``error`` the HTTP reason phrase, ``message`` the text to show, validation errors
with Joi's ``fields: [{message, key}]``, and EmailEngine's codes where it has one for the
same condition (``FolderNotFound``, ``ReferenceNotFound``, ``ConnectionError``...), ours kept
as ``emailapiCode``. Requests as EmailEngine's documentation shows them; real Dovecot."""

from __future__ import annotations

import pytest

from accounts import services
from accounts.models import User
from tests.base import account_payload, api_client

pytestmark = pytest.mark.django_db


def boom(response, status: int, phrase: str) -> dict:
    """The body of an EmailEngine-shaped error answer, after the facts every client reads."""
    assert response.status_code == status, response.content
    body = response.json()
    assert body["statusCode"] == status
    assert body["error"] == phrase
    assert isinstance(body["message"], str)
    assert body["message"]
    return body


def test_a_missing_account_is_boom_not_found(alice):
    body = boom(alice.client.get("/v1/account/example"), 404, "Not Found")
    assert body["code"] == "AccountNotFound"
    assert "example" in body["message"]


def test_validation_errors_carry_jois_fields(alice):
    payload = account_payload("example")
    payload["imap"]["port"] = 70000
    body = boom(alice.client.post("/v1/account", payload, format="json"), 400, "Bad Request")
    assert body["message"].startswith("Invalid input")
    assert [set(field) for field in body["fields"]] == [{"message", "key"}]
    assert body["fields"][0]["key"] == "port"
    assert body["fields"][0]["message"].startswith("imap.port: ")
    assert list(body["details"]) == ["imap.port"]


def test_no_token_is_401_unauthorized():
    body = boom(api_client().get("/v1/accounts"), 401, "Unauthorized")
    assert body["code"] == "Unauthorized"


def test_a_bad_token_is_401_unauthorized():
    body = boom(api_client("f" * 64).get("/v1/accounts"), 401, "Unauthorized")
    assert body["code"] == "InvalidToken"


def test_a_token_without_the_scope_is_403_forbidden(alice):
    reader = alice.client_with("read")
    body = boom(reader.post("/v1/account", account_payload("example"), format="json"), 403,
                "Forbidden")
    assert body["code"] == "InsufficientScope"


def test_a_missing_folder_is_folder_not_found(synced):
    response = synced.client.get("/v1/account/box/messages", {"path": "Nope/Deeper"})
    body = boom(response, 404, "Not Found")
    assert body["code"] == "FolderNotFound"
    assert body["emailapiCode"] == "MailboxNotFound"
    assert "Nope/Deeper" in body["message"]


def test_a_missing_message_is_message_not_found(synced):
    body = boom(synced.client.get("/v1/account/box/message/AAAAAQAAAAE"), 404, "Not Found")
    assert body["code"] == "MessageNotFound"


def test_a_reply_to_a_missing_message_is_reference_not_found(synced):
    response = synced.client.post("/v1/account/box/submit", {
        "reference": {"message": "AAAAAQAAAAE", "action": "reply"},
        "to": [{"name": "Ada", "address": "ada@example.com"}],
        "subject": "Re: gone", "text": "Hello"}, format="json")
    body = boom(response, 404, "Not Found")
    assert body["code"] == "ReferenceNotFound"
    assert body["emailapiCode"] == "MessageNotFound"


def test_a_taken_id_is_409_conflict(alice):
    app = {"app": "google", "name": "Google", "provider": "gmail",
           "clientId": "123.apps.googleusercontent.com", "clientSecret": "GOCSPX-Secret-42"}
    alice.client.post("/v1/oauth2", app, format="json")
    body = boom(alice.client.post("/v1/oauth2", app, format="json"), 409, "Conflict")
    assert body["code"] == "AlreadyExists"


def test_a_body_over_the_limit_is_413_payload_too_large(alice, settings):
    settings.EMAILAPI_MAX_BODY_SIZE = 2048
    payload = account_payload("example", name="x" * 4096)
    body = boom(alice.client.post("/v1/account", payload, format="json"), 413,
                "Payload Too Large")
    assert body["code"] == "PayloadTooLarge"


def test_the_rate_limit_is_429_with_emailengines_ttl(alice, settings):
    settings.EMAILAPI_RATE_LIMIT = 1
    alice.client.get("/v1/accounts")
    response = alice.client.get("/v1/accounts")
    body = boom(response, 429, "Too Many Requests")
    assert body["ttl"] == int(response["Retry-After"])
    assert body["ttl"] > 0


def test_a_mail_server_that_is_down_is_503_connection_error(alice, settings):
    settings.IMAP_COMMAND_TIMEOUT = 2
    services.register_account(alice.tenant, {"account": "dead", "imap": {
        "host": "127.0.0.1", "port": 9, "secure": False, "auth": {"user": "u", "pass": "p"}}})
    response = alice.client.get("/v1/account/dead/mailboxes", {"counters": "true"})
    body = boom(response, 503, "Service Unavailable")
    assert body["code"] == "ConnectionError"
    assert body["emailapiCode"] == "MailboxUnavailable"


def test_the_dashboards_live_data_refuses_in_the_same_shape(client):
    body = boom(client.get("/dashboard/live.json"), 401, "Unauthorized")
    assert body["code"] == "Unauthorized"


def test_the_dashboards_live_data_without_an_organization_is_a_json_404(client):
    client.force_login(User.objects.create_user(email="lone@example.test", password="x" * 16))
    body = boom(client.get("/dashboard/live.json"), 404, "Not Found")
    assert body["code"] == "NotFound"


def test_the_dashboards_live_stream_refuses_in_the_same_shape(client):
    body = boom(client.get("/dashboard/stream"), 403, "Forbidden")
    assert body["code"] == "Forbidden"
