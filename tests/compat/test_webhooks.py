"""Webhooks as EmailEngine sends them, checked by receivers written the way EmailEngine's
documentation and the Standard Webhooks library verify requests: real receiver HTTP servers,
the real dispatcher, Dovecot for mail."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from standardwebhooks.webhooks import Webhook

from accounts import services
from accounts.models import EmailAccount
from mailboxes import sending
from mailboxes.models import Folder
from tests.base import wait_for
from tests.mailboxes import mime_shapes
from tests.mailboxes.helpers import register
from tests.mailboxes.sending_helpers import queue, sending_account
from tests.servers import seed
from tests.webhooks import conftest as webhook_fixtures
from webhooks.models import Event

# The webhook tests' fixtures (receivers, dispatchers), used here too.
allow_private_webhooks = webhook_fixtures.allow_private_webhooks
webhook_receiver = webhook_fixtures.webhook_receiver
start_dispatcher = webhook_fixtures.start_dispatcher

pytestmark = pytest.mark.django_db(transaction=True)

ENGINE_DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def ee_signature_ok(secret: str, body: bytes, header: str) -> bool:
    """EmailEngine's documented check (Node): ``crypto.createHmac('sha256', serviceSecret)
    .update(rawBody).digest('base64url') === req.headers['x-ee-wh-signature']``."""
    expected = base64.urlsafe_b64encode(
        hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode().rstrip("=")
    return hmac.compare_digest(expected, header)


def received(receiver, event: str, count: int = 1, timeout: float = 60.0):
    return receiver.wait_for(
        lambda r: len(found := [q for q in r.accepted() if q.payload["event"] == event])
        >= count and found, timeout)


def subscribe(client, receiver, events, format_):
    answer = client.post("/v1/webhooks", {"url": receiver.url, "events": events,
                                          "format": format_}, format="json")
    assert answer.status_code == 200, answer.content
    return answer.json()


def test_it_sends_emailengine_envelope_and_signature(alice, mail_user, allow_private_webhooks,
                                                       webhook_receiver, start_dispatcher):
    receiver = webhook_receiver()
    hook = subscribe(alice.client, receiver, ["accountAdded"], "emailengine")
    assert hook["format"] == "emailengine"
    register(alice.tenant, mail_user)
    start_dispatcher()
    [request] = received(receiver, "accountAdded")
    headers = {name.lower(): value for name, value in request.headers.items()}
    assert ee_signature_ok(hook["secret"], request.body, headers["x-ee-wh-signature"])
    payload = request.payload
    assert set(payload) == {"serviceUrl", "account", "date", "event", "data"}
    assert payload["account"] == "box"
    assert payload["event"] == "accountAdded"
    assert ENGINE_DATE.match(payload["date"])
    assert headers["x-ee-wh-attempts-made"] == "0"
    assert re.fullmatch(r"\d+s", headers["x-ee-wh-queued-time"])
    assert uuid.UUID(headers["x-ee-wh-event-id"])
    assert headers["x-ee-wh-id"]
    assert headers["content-type"] == "application/json"
    assert "x-emailapi-signature" not in headers


def test_it_refuses_a_wrong_ee_signature(alice, mail_user, allow_private_webhooks,
                                         webhook_receiver, start_dispatcher):
    receiver = webhook_receiver()
    subscribe(alice.client, receiver, ["accountAdded"], "emailengine")
    register(alice.tenant, mail_user)
    start_dispatcher()
    [request] = received(receiver, "accountAdded")
    assert not ee_signature_ok("whsec_other", request.body, request.headers["X-EE-Wh-Signature"])


def test_it_signs_standard_webhooks_verified_by_the_library(
        alice, mail_user, allow_private_webhooks, webhook_receiver, start_dispatcher):
    receiver = webhook_receiver()
    hook = subscribe(alice.client, receiver, ["accountAdded"], "standard")
    register(alice.tenant, mail_user)
    start_dispatcher()
    [request] = received(receiver, "accountAdded")
    verified = Webhook(hook["secret"]).verify(request.body, request.headers)
    assert verified["event"] == "accountAdded"
    assert request.headers["webhook-id"] == verified["id"]
    assert request.headers["webhook-signature"].startswith("v1,")


def test_standard_library_rejects_a_changed_body(alice, mail_user, allow_private_webhooks,
                                                 webhook_receiver, start_dispatcher):
    from standardwebhooks.webhooks import WebhookVerificationError

    receiver = webhook_receiver()
    hook = subscribe(alice.client, receiver, ["accountAdded"], "standard")
    register(alice.tenant, mail_user)
    start_dispatcher()
    [request] = received(receiver, "accountAdded")
    with pytest.raises(WebhookVerificationError):
        Webhook(hook["secret"]).verify(request.body + b" ", request.headers)


def test_it_refuses_an_unknown_format_and_changes_nothing(alice, allow_private_webhooks):
    answer = alice.client.post("/v1/webhooks", {"url": "http://127.0.0.1:9/h",
                                                "events": ["*"], "format": "zapier"},
                               format="json")
    assert answer.status_code == 400
    assert alice.client.get("/v1/webhooks").json()["webhooks"] == []


def test_emailengine_event_names_are_for_the_emailengine_format(alice, allow_private_webhooks):
    answer = alice.client.post("/v1/webhooks", {"url": "http://127.0.0.1:9/h",
                                                "events": ["messageMissing"]},
                               format="json")
    assert answer.status_code == 400
    assert "events" in str(answer.json())


def test_bounce_and_complaint_are_our_events_too(alice, allow_private_webhooks):
    for format_ in ("emailapi", "standard", "emailengine"):
        answer = alice.client.post("/v1/webhooks", {
            "url": "http://127.0.0.1:9/h", "events": ["messageBounce", "messageComplaint"],
            "format": format_}, format="json")
        assert answer.status_code == 200, answer.content
    feed = alice.client.get("/v1/changes?events=messageBounce,messageComplaint")
    assert feed.status_code == 200, feed.content
    types = alice.client.get("/v1/settings?eventTypes=true").json()["eventTypes"]
    assert types.count("messageBounce") == 1


def test_the_format_can_be_changed(alice, allow_private_webhooks):
    hook = alice.client.post("/v1/webhooks", {"url": "http://127.0.0.1:9/h",
                                              "events": ["*"]}, format="json").json()
    assert hook["format"] == "emailapi"
    changed = alice.client.put(f"/v1/webhooks/{hook['id']}", {"format": "standard"},
                               format="json")
    assert changed.json()["format"] == "standard"


# --- /v1/settings: the default webhook, EmailEngine's way -----------------------------------


def test_settings_make_the_default_emailengine_webhook(alice, mail_user, allow_private_webhooks,
                                                       webhook_receiver, start_dispatcher):
    receiver = webhook_receiver()
    answer = alice.client.post("/v1/settings", {
        "webhooksEnabled": True, "webhooks": receiver.url, "webhookEvents": ["accountAdded"],
        "webhooksCustomHeaders": [{"key": "X-Custom", "value": "abc"}],
        "serviceSecret": "a-secret-i-know", "serviceUrl": "https://ee.example.com/admin",
        "notifyText": True, "notifyTextSize": 1024}, format="json")
    assert answer.status_code == 200
    assert sorted(answer.json()["updated"]) == sorted([
        "webhooksEnabled", "webhooks", "webhookEvents", "webhooksCustomHeaders",
        "serviceSecret", "serviceUrl", "notifyText", "notifyTextSize"])
    register(alice.tenant, mail_user)
    start_dispatcher()
    [request] = received(receiver, "accountAdded")
    assert ee_signature_ok("a-secret-i-know", request.body, request.headers["X-EE-Wh-Signature"])
    assert request.payload["serviceUrl"] == "https://ee.example.com"
    assert request.headers["X-Custom"] == "abc"


def test_an_accounts_own_webhook_url_gets_emailengine_requests_signed_with_the_service_secret(
        alice, mail_user, allow_private_webhooks, webhook_receiver, start_dispatcher,
        imap_worker):
    """EmailEngine's per-account ``webhooks`` URL: its requests are EmailEngine's (body and
    ``X-EE-Wh-*`` headers) and signed with the tenant's ``serviceSecret``, as a receiver written
    for EmailEngine checks them."""
    receiver = webhook_receiver()
    assert alice.client.post("/v1/settings", {"serviceSecret": "the-service-secret"},
                             format="json").status_code == 200
    imap = mail_user.imap_settings(secure=False)
    imap["tls"] = {"rejectUnauthorized": False}
    answer = alice.client.post("/v1/account", {"account": "box", "imap": imap,
                                               "webhooks": receiver.url}, format="json")
    assert answer.status_code == 200, answer.content
    start_dispatcher()
    [request] = received(receiver, "accountInitialized")
    assert set(request.payload) >= {"serviceUrl", "account", "date", "event", "data"}
    assert request.payload["account"] == "box"
    assert ee_signature_ok("the-service-secret", request.body,
                           request.headers["X-EE-Wh-Signature"])
    assert "X-EmailAPI-Signature" not in request.headers


def test_a_service_secret_set_later_signs_the_accounts_own_webhook(
        alice, allow_private_webhooks, webhook_receiver):
    receiver = webhook_receiver()
    answer = alice.client.post("/v1/account", {
        "account": "box", "webhooks": receiver.url,
        "imap": {"host": "127.0.0.1", "port": 9, "auth": {"user": "u", "pass": "p"}}},
        format="json")
    assert answer.status_code == 200, answer.content
    alice.client.post("/v1/settings", {"serviceSecret": "set-afterwards"}, format="json")
    subscription = EmailAccount.objects.get(account_id="box").webhook_subscription
    assert alice.client.post(f"/v1/webhooks/{subscription}/test").json()["statusCode"] == 200
    [request] = receiver.accepted()
    assert ee_signature_ok("set-afterwards", request.body, request.headers["X-EE-Wh-Signature"])


def test_settings_answer_the_keys_asked_for(alice, allow_private_webhooks):
    alice.client.post("/v1/settings", {"webhooks": "http://127.0.0.1:9/h",
                                       "serviceSecret": "s3cret", "notifyHeaders": ["List-ID"],
                                       "webhooksCustomHeaders": [{"key": "Authorization",
                                                                  "value": "Bearer x"}]},
                      format="json")
    answer = alice.client.get("/v1/settings?webhooks=true&serviceSecret=true&notifyHeaders=true"
                              "&webhooksCustomHeaders=true&webhooksEnabled=true")
    assert answer.status_code == 200
    assert answer.json() == {"webhooks": "http://127.0.0.1:9/h", "serviceSecret": True,
                             "notifyHeaders": ["list-id"], "webhooksEnabled": False,
                             "webhooksCustomHeaders": [{"key": "Authorization",
                                                        "value": "******"}]}


def test_settings_list_event_types(alice):
    types = alice.client.get("/v1/settings?eventTypes=true").json()
    assert set(types) == {"eventTypes"}
    assert {"messageNew", "messageDeleted", "messageDeliveryError"} <= set(types["eventTypes"])


def test_the_default_webhook_is_a_listed_emailengine_subscription(alice,
                                                                   allow_private_webhooks):
    alice.client.post("/v1/settings", {"webhooks": "http://127.0.0.1:9/h",
                                       "webhooksEnabled": True}, format="json")
    [hook] = alice.client.get("/v1/webhooks").json()["webhooks"]
    assert hook["format"] == "emailengine"
    assert hook["enabled"] is True
    assert hook["events"] == ["*"]


def test_an_empty_webhooks_url_removes_the_default_webhook(alice, allow_private_webhooks):
    alice.client.post("/v1/settings", {"webhooks": "http://127.0.0.1:9/h"}, format="json")
    alice.client.post("/v1/settings", {"webhooks": ""}, format="json")
    assert alice.client.get("/v1/webhooks").json()["webhooks"] == []
    assert alice.client.get("/v1/settings?webhooks=true").json() == {"webhooks": None}


@pytest.mark.parametrize("body", [
    {"webhookEvents": ["noSuchEvent"]},
    {"notifyTextSize": "big"},
    {"webhooks": "ftp://example.com/x"},
    {"serviceUrl": "not a url"},
    {"webhooksCustomHeaders": [{"key": "X-EE-Wh-Signature", "value": "forged"}]},
    {"logLevel": "trace"},
])
def test_bad_settings_are_400_and_change_nothing(alice, body):
    before = alice.client.get("/v1/settings").json()
    answer = alice.client.post("/v1/settings", body, format="json")
    assert answer.status_code == 400
    assert alice.client.get("/v1/settings").json() == before


def test_an_unknown_settings_query_key_is_400(alice):
    assert alice.client.get("/v1/settings?noSuchKey=true").status_code == 400


def test_settings_are_per_tenant(alice, bob, allow_private_webhooks):
    alice.client.post("/v1/settings", {"webhooks": "http://127.0.0.1:9/h"}, format="json")
    assert bob.client.get("/v1/settings?webhooks=true").json() == {"webhooks": None}


# --- what the emailengine format carries -----------------------------------------------------


def engine_hook(client, receiver, **extra):
    answer = client.post("/v1/settings", {"webhooksEnabled": True, "webhooks": receiver.url,
                                          "serviceSecret": "ee-secret", **extra}, format="json")
    assert answer.status_code == 200, answer.content


def test_message_new_carries_emailengine_fields_text_and_headers(
        alice, mail_user, allow_private_webhooks, webhook_receiver, start_dispatcher,
        imap_worker):
    receiver = webhook_receiver()
    engine_hook(alice.client, receiver, webhookEvents=["messageNew", "accountInitialized"],
                notifyText=True, notifyTextSize=1000, notifyHeaders=["Subject", "X-Mailer"])
    account = register(alice.tenant, mail_user)
    start_dispatcher()
    wait_for(lambda: EmailAccount.objects.get(pk=account.pk).state == "connected", timeout=60)
    [initialized] = received(receiver, "accountInitialized")
    assert initialized.payload["data"]["initialized"] is True

    [uid] = seed.seed_mailbox(mail_user, messages=[seed.make_message(
        subject="Hello engine", body="Plain words here.\n",
        date=datetime(2024, 3, 5, 11, 30, tzinfo=timezone(timedelta(hours=2))))])
    [new] = received(receiver, "messageNew")
    assert ee_signature_ok("ee-secret", new.body, new.headers["X-EE-Wh-Signature"])
    payload = new.payload
    assert payload["path"] == "INBOX"
    assert payload["specialUse"] == "\\Inbox"
    data = payload["data"]
    assert data["uid"] == uid
    assert data["specialUse"] == "\\Inbox"
    assert data["messageSpecialUse"] == "\\Inbox"
    assert data["seemsLikeNew"] is True
    assert data["date"] == "2024-03-05T09:30:00.000Z"
    assert data["text"]["plain"].startswith("Plain words here.")
    assert data["headers"] == {"subject": ["Hello engine"]}
    assert ENGINE_DATE.match(payload["date"])


def test_the_first_sync_announces_each_folder_with_mailbox_new(
        alice, mail_user, allow_private_webhooks, webhook_receiver, start_dispatcher,
        imap_worker):
    receiver = webhook_receiver()
    subscribe(alice.client, receiver, ["mailboxNew"], "emailengine")
    account = register(alice.tenant, mail_user)
    start_dispatcher()
    wait_for(lambda: EmailAccount.objects.get(pk=account.pk).initialized_at is not None,
             timeout=60)
    folders = set(Folder.objects.filter(email_account=account).values_list("path", flat=True))
    announced = received(receiver, "mailboxNew", len(folders))
    paths = [request.payload["data"]["path"] for request in announced]
    assert sorted(paths) == sorted(folders)
    inbox = next(r.payload for r in announced if r.payload["path"] == "INBOX")
    assert inbox["data"]["specialUse"] == "\\Inbox"
    assert {r.payload["event"] for r in receiver.accepted()} == {"mailboxNew"}


def test_a_bounce_and_a_complaint_arrive_in_emailengine_format_after_their_message_new(
        alice, mail_user, allow_private_webhooks, webhook_receiver, start_dispatcher,
        imap_worker):
    receiver = webhook_receiver()
    engine_hook(alice.client, receiver, webhookEvents=[
        "messageNew", "messageBounce", "messageComplaint", "accountInitialized"])
    account = register(alice.tenant, mail_user)
    start_dispatcher()
    wait_for(lambda: EmailAccount.objects.get(pk=account.pk).state == "connected", timeout=60)
    received(receiver, "accountInitialized")

    seed.seed_mailbox(mail_user, messages=[mime_shapes.bounce(),
                                           mime_shapes.complaint("<sale-1@example.test>")])
    [bounce] = received(receiver, "messageBounce")
    [complaint] = received(receiver, "messageComplaint")
    news = received(receiver, "messageNew", count=2)
    assert ee_signature_ok("ee-secret", bounce.body, bounce.headers["X-EE-Wh-Signature"])
    assert set(bounce.payload) == {"serviceUrl", "account", "date", "event", "data"}
    by_subject = {q.payload["data"]["subject"]: q.payload["data"]["id"] for q in news}
    published = {(e.event, e.data.get("id") or e.data.get("bounceMessage")): e.seq
                 for e in Event.objects.filter(tenant=alice.tenant)}
    bounce_id = by_subject["Undelivered Mail Returned to Sender 0"]
    assert published["messageBounce", bounce_id] > published["messageNew", bounce_id]
    assert bounce.payload["data"] == {"bounceMessage": bounce_id, **mime_shapes.BOUNCE}
    data = complaint.payload["data"]
    assert data["complaintMessage"] == by_subject["FW: Spätsommer sale"]
    assert data["arf"]["originalRcptTo"] == ["erin@example.net"]
    assert data["headers"]["messageId"] == "<sale-1@example.test>"


def test_message_new_carries_attachment_content_with_notify_attachments(
        alice, mail_user, allow_private_webhooks, webhook_receiver, start_dispatcher,
        imap_worker):
    receiver = webhook_receiver()
    engine_hook(alice.client, receiver, webhookEvents=["messageNew"], notifyAttachments=True,
                notifyAttachmentSize=1000)
    small, large = b"small file body\n", bytes(range(256)) * 20
    account = register(alice.tenant, mail_user)
    start_dispatcher()
    wait_for(lambda: EmailAccount.objects.get(pk=account.pk).state == "connected", timeout=60)
    seed.seed_mailbox(mail_user, messages=[seed.make_message(
        subject="With files", attachments=[("small.txt", small, "text/plain"),
                                           ("large.bin", large, "application/octet-stream")])])
    [new] = received(receiver, "messageNew")
    by_name = {a["filename"]: a for a in new.payload["data"]["attachments"]}
    assert base64.b64decode(by_name["small.txt"]["content"]) == small
    assert "content" not in by_name["large.bin"]  # over notifyAttachmentSize
    settings = alice.client.get("/v1/settings?notifyAttachmentSize=true").json()
    assert settings == {"notifyAttachmentSize": 1000}


def test_message_new_leaves_text_out_without_notify_text(
        alice, mail_user, allow_private_webhooks, webhook_receiver, start_dispatcher,
        imap_worker):
    receiver = webhook_receiver()
    engine_hook(alice.client, receiver, webhookEvents=["messageNew"])
    account = register(alice.tenant, mail_user)
    start_dispatcher()
    wait_for(lambda: EmailAccount.objects.get(pk=account.pk).state == "connected", timeout=60)
    seed.seed_mailbox(mail_user, messages=[seed.make_message(subject="No text")])
    [new] = received(receiver, "messageNew")
    assert "plain" not in (new.payload["data"].get("text") or {})
    assert "headers" not in new.payload["data"]


def test_a_move_by_another_client_is_deleted_plus_new_in_emailengine_format(
        alice, mail_user, allow_private_webhooks, webhook_receiver, start_dispatcher,
        imap_worker):
    ours, engine = webhook_receiver(), webhook_receiver()
    subscribe(alice.client, ours, ["messageMoved"], "emailapi")
    subscribe(alice.client, engine, ["messageNew", "messageDeleted"], "emailengine")
    [uid] = seed.seed_mailbox(mail_user, messages=[seed.make_message(
        subject="Moving", date=datetime(2024, 3, 5, 11, 30, tzinfo=timezone(timedelta(hours=2))))])
    account = register(alice.tenant, mail_user)
    start_dispatcher()
    wait_for(lambda: EmailAccount.objects.get(pk=account.pk).state == "connected", timeout=60)
    with mail_user.imap_client() as other:
        other.select_folder("INBOX")
        other.move([uid], "Archive")
    [moved] = received(ours, "messageMoved")
    assert moved.payload["data"]["date"] == "2024-03-05T09:30:00.000Z"
    [deleted] = received(engine, "messageDeleted")
    [new] = received(engine, "messageNew")
    assert deleted.payload["path"] == "INBOX"
    assert deleted.payload["data"]["uid"] == uid
    assert new.payload["path"] == "Archive"
    assert new.payload["data"]["date"] == "2024-03-05T09:30:00.000Z"
    assert [r.payload["event"] for r in engine.accepted()] == ["messageDeleted", "messageNew"]
    assert deleted.headers["X-EE-Wh-Event-Id"] != new.headers["X-EE-Wh-Event-Id"]


def test_a_failed_send_is_message_delivery_error(alice, smtp_user, smtp_server,
                                                 allow_private_webhooks, webhook_receiver,
                                                 start_dispatcher):
    receiver = webhook_receiver()
    subscribe(alice.client, receiver, ["messageDeliveryError"], "emailengine")
    account = sending_account(alice.tenant, smtp_user, smtp_server)
    smtp_server.refuse_always("550 5.7.1 Relaying denied", stage="rcpt")
    entry = queue(account)
    assert sending.send_entry(entry.pk) == "failed"
    start_dispatcher()
    [error] = received(receiver, "messageDeliveryError")
    data = error.payload["data"]
    assert data["queueId"] == entry.queue_id
    assert data["smtpResponseCode"] == 550
    assert data["error"] == "550 5.7.1 Relaying denied"
    assert data["job"]["nextAttempt"] is False
    assert {r.payload["event"] for r in receiver.accepted()} == {"messageDeliveryError"}


def test_an_attempt_to_be_retried_is_message_delivery_error_with_its_next_attempt(
        alice, smtp_user, smtp_server, allow_private_webhooks, webhook_receiver,
        start_dispatcher):
    receiver = webhook_receiver()
    subscribe(alice.client, receiver, ["messageDeliveryError"], "emailengine")
    account = sending_account(alice.tenant, smtp_user, smtp_server)
    smtp_server.refuse_next(1, "451 4.3.0 Try again later")
    entry = queue(account)
    assert sending.send_entry(entry.pk) == "retry"
    start_dispatcher()
    [error] = received(receiver, "messageDeliveryError")
    data = error.payload["data"]
    assert data["queueId"] == entry.queue_id
    assert data["smtpResponseCode"] == 451
    assert data["job"]["attemptsMade"] == 1
    assert data["job"]["attempts"] == entry.max_attempts
    assert data["job"]["nextAttempt"].endswith("Z")


# --- /v1/changes: EmailEngine's state stream for EventSource clients -------------------------


@pytest.fixture
def web_server(settings):
    from tests.webhooks.stream_clients import Daphne

    daphne = Daphne(settings, EMAILAPI_STREAM_KEEPALIVE="1")
    yield daphne
    daphne.stop()


def next_state(stream, account: str, key: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        stream.wait_comment("still here")  # a keep-alive a second: the deadline is noticed
        stream.comments.clear()
        while stream._events:
            event = stream._events.popleft()
            seen.append(event["data"]["key"])
            if event["data"]["account"] == account and event["data"]["key"] == key:
                return event
    raise AssertionError(f"no {key!r} state within {timeout} s; saw {seen}")


def test_changes_streams_account_state_changes_to_an_event_source(
        alice, mail_user, web_server, imap_worker):
    from tests.webhooks.stream_clients import EventStream

    stream = EventStream(web_server.port, "/v1/changes",
                         {"Authorization": f"Bearer {alice.token}"})
    assert stream.status == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    stream.wait_comment("still here")  # open, and kept alive while nothing happens
    register(alice.tenant, mail_user)
    event = next_state(stream, "box", "connected")
    assert event["event"] == "message"
    assert event["data"] == {"account": "box", "type": "state", "key": "connected",
                             "payload": None}
    stream.close()


def test_changes_stream_carries_the_error_of_an_error_state(alice, mail_user, web_server,
                                                          imap_worker):
    from tests.webhooks.stream_clients import EventStream

    stream = EventStream(web_server.port, "/v1/changes",
                         {"Authorization": f"Bearer {alice.token}"})
    stream.wait_comment("emailapi change stream")
    imap = mail_user.imap_settings(secure=False)
    imap["auth"] = {**imap["auth"], "pass": "wrong"}
    imap["tls"] = {"rejectUnauthorized": False}
    services.register_account(alice.tenant, {"account": "box", "imap": imap})
    event = next_state(stream, "box", "authenticationError")
    payload = event["data"]["payload"]
    assert payload["serverResponseCode"] == "AUTHENTICATIONFAILED"
    assert payload["response"] == payload["error"]
    stream.close()


def test_changes_keeps_the_json_feed_for_json_clients(alice):
    answer = alice.client.get("/v1/changes", HTTP_ACCEPT="application/json")
    assert answer.status_code == 200
    assert set(answer.json()) == {"changes", "nextCursor", "hasMore"}


def test_changes_stream_needs_a_token(web_server):
    from tests.webhooks.stream_clients import EventStream

    stream = EventStream(web_server.port, "/v1/changes")
    assert stream.status == 401
    assert json.loads(stream.body())["statusCode"] == 401


def test_the_test_button_sends_an_emailengine_test_event(alice, allow_private_webhooks,
                                                         webhook_receiver):
    receiver = webhook_receiver()
    hook = subscribe(alice.client, receiver, ["*"], "emailengine")
    answer = alice.client.post(f"/v1/webhooks/{hook['id']}/test")
    assert answer.json()["statusCode"] == 200
    [request] = receiver.accepted()
    assert request.payload["event"] == "test"
    assert ee_signature_ok(hook["secret"], request.body, request.headers["X-EE-Wh-Signature"])


def test_the_test_button_signs_standard_webhooks(alice, allow_private_webhooks,
                                                 webhook_receiver):
    receiver = webhook_receiver()
    hook = subscribe(alice.client, receiver, ["*"], "standard")
    alice.client.post(f"/v1/webhooks/{hook['id']}/test")
    [request] = receiver.accepted()
    assert Webhook(hook["secret"]).verify(request.body, request.headers)["event"] == "test"
