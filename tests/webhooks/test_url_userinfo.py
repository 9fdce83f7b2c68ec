"""Webhook URLs with ``user:password@``, as EmailEngine takes them: the request goes to the URL
without them and carries ``Authorization: Basic``; the password is sealed at rest, shown as
``******`` everywhere, kept when the mask is written back to the same server and refused for
another; a userinfo Basic cannot carry is a 400. Real PostgreSQL, Redis, dispatcher and
loopback receivers."""

from __future__ import annotations

import base64
import json
import logging

import pytest
from django.db import connection

from webhooks import events, signing
from webhooks.models import WebhookSubscription

pytestmark = pytest.mark.django_db

PASSWORD = "Pw-9f3k2-hook-secret"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def with_userinfo(url: str, userinfo: str) -> str:
    return url.replace("http://", f"http://{userinfo}@", 1)


def authorizations(request) -> list[str]:
    """Every Authorization header line the receiver got (a repeat would be a second line)."""
    return [value for name, value in request.header_lines if name.lower() == "authorization"]


def raw_rows(table: str) -> str:
    """A table's rows as the database holds them, read past the ORM."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 - a table name of ours
        return repr(cursor.fetchall())


def create(client, **body):
    body = {"url": "http://127.0.0.1:9/hook", "events": ["*"], **body}
    return client.post("/v1/webhooks", json.dumps(body), content_type="application/json")


def created(client, **body) -> dict:
    answer = create(client, **body)
    assert answer.status_code == 200, answer.content
    return answer.json()


def sent_test(client, hook_id: str, receiver):
    """POST .../test and the request the receiver got for it."""
    before = len(receiver.requests)
    result = client.post(f"/v1/webhooks/{hook_id}/test").json()
    assert result["statusCode"] == 200, result
    return receiver.requests[before]


@pytest.mark.django_db(transaction=True)
def test_events_go_to_the_url_without_userinfo_with_basic_auth_percent_decoded(
        alice, allow_private_webhooks, webhook_receiver, start_dispatcher):
    receiver = webhook_receiver()
    hook = created(alice.client,
                   url=with_userinfo(receiver.url + "?x=1", "us%40er:p%40ss%3Aw%C3%B6rd"))
    start_dispatcher()
    events.record(alice.tenant, events.MESSAGE_NEW, "box", {"uid": 1, "path": "INBOX"})
    [request] = receiver.wait_accepted(1)
    assert authorizations(request) == [basic("us@er", "p@ss:wörd")]
    assert request.path == "/hook?x=1"
    assert request.headers["Host"] == receiver.url.split("/")[2]  # 127.0.0.1:port
    assert signing.verify(hook["secret"], request.headers["X-EmailAPI-Timestamp"], request.body,
                          request.headers["X-EmailAPI-Signature"])


@pytest.mark.parametrize("userinfo, expected", [
    ("hook-user", ["hook-user", ""]),  # a user without a password: Basic with an empty one
    ("hook-user:", ["hook-user", ""]),
    (":only-a-password", ["", "only-a-password"]),
    ("us%20er:50%25%2Foff", ["us er", "50%/off"]),
    ("", None),  # an empty userinfo sends none, as EmailEngine
])
def test_each_userinfo_becomes_its_basic_auth(alice, allow_private_webhooks, webhook_receiver,
                                              userinfo, expected):
    receiver = webhook_receiver()
    hook = created(alice.client, url=with_userinfo(receiver.url, userinfo))
    request = sent_test(alice.client, hook["id"], receiver)
    assert authorizations(request) == ([basic(*expected)] if expected else [])
    assert request.path == "/hook"


def test_a_custom_authorization_header_wins_over_the_urls(alice, allow_private_webhooks,
                                                         webhook_receiver):
    receiver = webhook_receiver()
    hook = created(alice.client, url=with_userinfo(receiver.url, f"hook-user:{PASSWORD}"),
                   headers={"authorization": "Bearer from-the-headers"})
    assert authorizations(sent_test(alice.client, hook["id"], receiver)) == [
        "Bearer from-the-headers"]


def test_the_password_is_sealed_at_rest_and_every_answer_shows_it_masked(
        alice, allow_private_webhooks, webhook_receiver):
    receiver = webhook_receiver()
    answer = create(alice.client, url=with_userinfo(receiver.url, f"hook-user:{PASSWORD}"))
    hook = answer.json()
    masked = with_userinfo(receiver.url, "hook-user:******")
    assert hook["url"] == masked
    path = f"/v1/webhooks/{hook['id']}"
    answers = [answer, alice.client.get("/v1/webhooks"), alice.client.get(path),
               alice.client.put(path, {"events": ["messageNew"]}, format="json"),
               alice.client.post(f"{path}/test"), alice.client.get(f"{path}/deliveries")]
    for shown in answers:
        assert shown.status_code == 200
        assert PASSWORD not in shown.content.decode()
    assert alice.client.get(path).json()["url"] == masked
    assert alice.client.get("/v1/webhooks").json()["webhooks"][0]["url"] == masked
    stored = raw_rows("webhooks_webhooksubscription")
    assert PASSWORD not in stored
    assert masked in stored
    assert WebhookSubscription.objects.get(pk=hook["id"]).sealed_url_password.startswith("v1.")
    # Sealed, not dropped: it is what the request carried.
    assert authorizations(receiver.requests[-1]) == [basic("hook-user", PASSWORD)]


@pytest.mark.django_db(transaction=True)
def test_the_webhook_disabled_event_and_the_log_name_the_url_masked(
        alice, allow_private_webhooks, settings, webhook_receiver, start_dispatcher, caplog):
    caplog.set_level(logging.DEBUG)
    # The retry comes 1.6-2.4 s later (+-20 % jitter): past the 1 s of failing that disables.
    settings.WEBHOOK_RETRY_SCHEDULE = [2]
    settings.WEBHOOK_DISABLE_AFTER = 1
    failing = webhook_receiver()
    failing.fail_next(10_000)
    healthy = webhook_receiver()
    hook = created(alice.client, url=with_userinfo(failing.url, f"hook-user:{PASSWORD}"))
    created(alice.client, url=healthy.url, events=["webhookDisabled"])
    start_dispatcher()
    events.record(alice.tenant, events.MESSAGE_NEW, "box", {"uid": 1, "path": "INBOX"})
    [notice] = healthy.wait_accepted(1, timeout=15)
    assert notice.payload["data"]["url"] == with_userinfo(failing.url, "hook-user:******")
    assert PASSWORD not in notice.body.decode()
    assert authorizations(failing.requests[0]) == [basic("hook-user", PASSWORD)]
    for answer in (alice.client.get("/v1/changes"), alice.client.get(f"/v1/webhooks/{hook['id']}")):
        assert answer.status_code == 200
        assert PASSWORD not in answer.content.decode()
    assert PASSWORD not in raw_rows("webhooks_event")
    failures = [record.getMessage() for record in caplog.records if "failed" in record.getMessage()]
    assert failures, "expected the dispatcher to log the failed attempts"
    assert PASSWORD not in "\n".join(record.getMessage() for record in caplog.records)


def test_the_masked_url_written_back_keeps_the_password(alice, allow_private_webhooks,
                                                        webhook_receiver):
    receiver = webhook_receiver()
    hook = created(alice.client, url=with_userinfo(receiver.url, f"hook-user:{PASSWORD}"))
    path = f"/v1/webhooks/{hook['id']}"
    got = alice.client.get(path).json()
    again = alice.client.put(path, {key: got[key] for key in (
        "url", "events", "accounts", "enabled", "format")}, format="json")
    assert again.status_code == 200, again.content
    assert again.json()["url"] == got["url"]
    assert authorizations(sent_test(alice.client, hook["id"], receiver)) == [
        basic("hook-user", PASSWORD)]
    # Another path or user on the same server keeps it too.
    moved = alice.client.put(path, {"url": with_userinfo(receiver.url + "/v2", "other:******")},
                             format="json")
    assert moved.status_code == 200, moved.content
    request = sent_test(alice.client, hook["id"], receiver)
    assert authorizations(request) == [basic("other", PASSWORD)]
    assert request.path == "/hook/v2"


@pytest.mark.parametrize("elsewhere", [
    "http://hook-user:******@127.0.0.2:{port}/hook",  # another host
    "http://hook-user:******@localhost:{port}/hook",  # another name for it: not the same
    "http://hook-user:******@127.0.0.1:{other}/hook",  # another port
    "https://hook-user:******@127.0.0.1:{port}/hook",  # another scheme
])
def test_the_mask_for_another_server_is_refused_and_changes_nothing(
        alice, allow_private_webhooks, webhook_receiver, elsewhere):
    receiver = webhook_receiver()
    port = int(receiver.url.split("/")[2].split(":")[1])
    hook = created(alice.client, url=with_userinfo(receiver.url, f"hook-user:{PASSWORD}"))
    path = f"/v1/webhooks/{hook['id']}"
    answer = alice.client.put(path, {"url": elsewhere.format(port=port, other=port + 1),
                                     "enabled": False}, format="json")
    assert answer.status_code == 400, answer.content
    error = answer.json()
    assert error["code"] == "InputValidationError"
    assert list(error["details"]) == ["url"]
    assert "only ever sent to the server it was given for" in error["message"]
    assert PASSWORD not in answer.content.decode()
    unchanged = alice.client.get(path).json()
    assert unchanged["url"] == hook["url"]
    assert unchanged["enabled"] is True
    assert authorizations(sent_test(alice.client, hook["id"], receiver)) == [
        basic("hook-user", PASSWORD)]


def test_the_mask_with_no_password_stored_is_refused(alice, allow_private_webhooks):
    answer = create(alice.client, url="http://hook-user:******@127.0.0.1:9/hook")
    assert answer.status_code == 400, answer.content
    assert list(answer.json()["details"]) == ["url"]
    assert "none is stored" in answer.json()["message"]
    assert not WebhookSubscription.objects.exists()
    hook = created(alice.client, url="http://hook-user@127.0.0.1:9/hook")
    changed = alice.client.put(f"/v1/webhooks/{hook['id']}",
                               {"url": "http://hook-user:******@127.0.0.1:9/hook"}, format="json")
    assert changed.status_code == 400, changed.content
    assert alice.client.get(f"/v1/webhooks/{hook['id']}").json()["url"] == hook["url"]


def test_a_new_password_replaces_the_stored_one_and_a_plain_url_drops_it(
        alice, allow_private_webhooks, webhook_receiver):
    receiver = webhook_receiver()
    hook = created(alice.client, url=with_userinfo(receiver.url, f"hook-user:{PASSWORD}"))
    path = f"/v1/webhooks/{hook['id']}"
    alice.client.put(path, {"url": with_userinfo(receiver.url, "hook-user:second")},
                     format="json")
    assert authorizations(sent_test(alice.client, hook["id"], receiver)) == [
        basic("hook-user", "second")]
    plain = alice.client.put(path, {"url": receiver.url}, format="json").json()
    assert plain["url"] == receiver.url
    assert authorizations(sent_test(alice.client, hook["id"], receiver)) == []
    assert WebhookSubscription.objects.get(pk=hook["id"]).sealed_url_password == ""


@pytest.mark.parametrize("url", [
    "http://u:Marker%zz@127.0.0.1:9/",  # a % without two hex digits
    "http://u:Marker%4@127.0.0.1:9/",
    "http://u%g0:Marker@127.0.0.1:9/",
    "http://u:Marker%ff@127.0.0.1:9/",  # not UTF-8 once decoded
    "http://u:Marker%0A@127.0.0.1:9/",  # a control character, decoded
    "http://u:Marker%7F@127.0.0.1:9/",
    "http://u:Marker\x01@127.0.0.1:9/",  # ... or as written
    "http://u:Marker\u0085@127.0.0.1:9/",
    "http://u:Marker\ud800@127.0.0.1:9/",  # a lone surrogate (JSON can carry one)
    "http://us%3Aer:Marker@127.0.0.1:9/",  # a colon in the user name: Basic cannot carry it
    "http://u:Marker\r\n@127.0.0.1:9/",
])
def test_a_userinfo_basic_cannot_carry_is_a_400_that_does_not_echo_it(
        alice, allow_private_webhooks, url):
    answer = create(alice.client, url=url)
    assert answer.status_code == 400, answer.content
    error = answer.json()
    assert error["code"] == "InputValidationError"
    assert list(error["details"]) == ["url"]
    assert "Marker" not in answer.content.decode()
    assert not WebhookSubscription.objects.exists()


def test_a_url_too_long_once_its_short_password_is_masked_is_a_400(alice,
                                                                  allow_private_webhooks):
    start = "http://u:p@127.0.0.1:9/"
    answer = create(alice.client, url=start + "x" * (2048 - len(start)))
    assert answer.status_code == 400, answer.content
    assert "at most 2048 characters" in answer.json()["details"]["url"][0]


def test_a_userinfo_does_not_lift_the_internal_address_refusal(alice, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    answer = create(alice.client, url=f"http://hook-user:{PASSWORD}@127.0.0.1/hook")
    assert answer.status_code == 400, answer.content
    assert "internal address" in answer.json()["details"]["url"][0]
    assert PASSWORD not in answer.content.decode()

