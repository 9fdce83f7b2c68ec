"""EmailEngine's settings that shape or filter ``messageNew`` (``inboxNewOnly``,
``notifyWebSafeHtml``, ``notifyCalendarEvents``) and its ``isAutoReply``: ``/v1/settings``
round trips, then real deliveries to a receiver, the real dispatcher and worker, Dovecot for
mail, each setting on and off."""

from __future__ import annotations

import pytest

from accounts.models import EmailAccount
from tests.base import statements_naming, wait_for
from tests.compat.test_webhooks import engine_hook, received, subscribe
from tests.mailboxes import mime_shapes
from tests.mailboxes.helpers import register
from tests.servers import seed
from tests.webhooks import conftest as webhook_fixtures
from webhooks import engine_format
from webhooks.models import Delivery, EngineSettings, Event, WebhookSubscription

allow_private_webhooks = webhook_fixtures.allow_private_webhooks
webhook_receiver = webhook_fixtures.webhook_receiver
start_dispatcher = webhook_fixtures.start_dispatcher

pytestmark = pytest.mark.django_db(transaction=True)

KEYS = ("inboxNewOnly", "notifyWebSafeHtml", "notifyCalendarEvents")
FOLD = '<details class="ee-collapsed-thread"><summary class="ee-collapsed-thread-toggle">'
QUOTED = "Let's meet tomorrow at 10am in the big room, bring the numbers please. " * 3


# --- /v1/settings ---------------------------------------------------------------------------


def test_the_keys_are_off_until_set_and_read_back_as_set(alice):
    query = "&".join(f"{key}=true" for key in KEYS)
    assert alice.client.get(f"/v1/settings?{query}").json() == dict.fromkeys(KEYS, False)
    answer = alice.client.post("/v1/settings", dict.fromkeys(KEYS, True), format="json")
    assert answer.status_code == 200, answer.content
    assert sorted(answer.json()["updated"]) == sorted(KEYS)
    assert alice.client.get(f"/v1/settings?{query}").json() == dict.fromkeys(KEYS, True)
    alice.client.post("/v1/settings", {"notifyCalendarEvents": False}, format="json")
    assert alice.client.get("/v1/settings").json()["notifyCalendarEvents"] is False


@pytest.mark.parametrize("key", KEYS)
def test_a_bad_value_is_400_naming_the_key_and_changes_nothing(alice, key):
    before = alice.client.get("/v1/settings").json()
    answer = alice.client.post("/v1/settings", {key: "sometimes", "notifyText": True},
                               format="json")
    assert answer.status_code == 400
    assert key in answer.content.decode()
    assert alice.client.get("/v1/settings").json() == before


def test_inbox_new_only_is_for_the_default_route_only(alice, allow_private_webhooks):
    """EmailEngine's default route: the settings' URL and the accounts' own URLs, not the
    custom routes (our other subscriptions)."""
    alice.client.post("/v1/settings", {"webhooks": "http://127.0.0.1:9/default",
                                       "inboxNewOnly": True}, format="json")
    answer = alice.client.post("/v1/account", {
        "account": "own", "webhooks": "http://127.0.0.1:9/own",
        "imap": {"host": "127.0.0.1", "port": 9, "auth": {"user": "u", "pass": "p"}}},
        format="json")
    assert answer.status_code == 200, answer.content
    route = alice.client.post("/v1/webhooks", {"url": "http://127.0.0.1:9/route",
                                               "events": ["messageNew"],
                                               "format": "emailengine"}, format="json")
    assert route.status_code == 200, route.content
    default = EngineSettings.objects.get(tenant=alice.tenant).subscription
    own = WebhookSubscription.objects.get(
        pk=EmailAccount.objects.get(account_id="own").webhook_subscription)
    custom = WebhookSubscription.objects.get(pk=route.json()["id"])
    assert engine_format.EngineRenderer(default).inbox_only() is True
    assert engine_format.EngineRenderer(own).inbox_only() is True
    assert engine_format.EngineRenderer(custom).inbox_only() is False


def test_inbox_new_only_asks_nothing_of_a_run_without_message_new(alice, allow_private_webhooks):
    """Whether a subscription is an account's own is asked at its first messageNew, not at
    every delivery run (a run is often one event)."""
    alice.client.post("/v1/settings", {"webhooks": "http://127.0.0.1:9/default",
                                       "inboxNewOnly": True}, format="json")
    route = alice.client.post("/v1/webhooks", {"url": "http://127.0.0.1:9/route",
                                               "events": ["messageNew"],
                                               "format": "emailengine"}, format="json")
    assert route.status_code == 200, route.content
    custom = WebhookSubscription.objects.get(pk=route.json()["id"])
    with statements_naming(EmailAccount._meta.db_table) as asked:
        renderer = engine_format.EngineRenderer(custom)
    assert asked == []
    with statements_naming(EmailAccount._meta.db_table) as asked:
        assert renderer.inbox_only() is False
        assert renderer.inbox_only() is False
    assert len(asked) == 1


# --- deliveries -----------------------------------------------------------------------------


def connected(alice, mail_user, start_dispatcher) -> EmailAccount:
    account = register(alice.tenant, mail_user)
    start_dispatcher()
    wait_for(lambda: EmailAccount.objects.get(pk=account.pk).state == "connected", timeout=60)
    return account


def subjects(receiver) -> list[str]:
    return sorted(r.payload["data"]["subject"] for r in receiver.accepted()
                  if r.payload["event"] == "messageNew")


@pytest.mark.parametrize("inbox_only", [True, False])
def test_inbox_new_only_keeps_other_folders_new_mail_from_the_default_webhook(
        alice, mail_user, allow_private_webhooks, webhook_receiver, start_dispatcher,
        imap_worker, inbox_only):
    default, route = webhook_receiver(), webhook_receiver()
    engine_hook(alice.client, default, webhookEvents=["messageNew"], inboxNewOnly=inbox_only)
    subscribe(alice.client, route, ["messageNew"], "emailengine")
    connected(alice, mail_user, start_dispatcher)
    seed.seed_mailbox(mail_user, "Archive", [seed.make_message(subject="Archived")])
    seed.seed_mailbox(mail_user, "INBOX", [seed.make_message(subject="Inboxed")])
    received(route, "messageNew", 2)  # the other subscription gets both
    assert subjects(route) == ["Archived", "Inboxed"]
    subscription = EngineSettings.objects.get(tenant=alice.tenant).subscription_id
    wait_for(lambda: Delivery.objects.filter(
        subscription_id=subscription, event__event="messageNew",
        state=Delivery.State.DELIVERED).count() == 2, timeout=60)
    assert subjects(default) == (["Inboxed"] if inbox_only else ["Archived", "Inboxed"])
    # The event itself is kept, for the stream and every other subscription.
    assert Event.objects.filter(event="messageNew", path="Archive").count() == 1


@pytest.mark.parametrize("web_safe", [True, False])
def test_notify_web_safe_html_sanitises_and_folds_message_new_html(
        alice, mail_user, allow_private_webhooks, webhook_receiver, start_dispatcher,
        imap_worker, web_safe):
    receiver = webhook_receiver()
    engine_hook(alice.client, receiver, webhookEvents=["messageNew"], notifyText=True,
                notifyWebSafeHtml=web_safe)
    connected(alice, mail_user, start_dispatcher)
    html = ('<div onclick="steal()">Works for me.<script>alert(1)</script></div>'
            '<div class="gmail_quote">On Monday Jane wrote:<blockquote class="gmail_quote">'
            f'{QUOTED}</blockquote></div>')
    seed.seed_mailbox(mail_user, messages=[seed.make_message(
        subject="Re: Meeting", body="Works for me.\n", html=html)])
    [new] = received(receiver, "messageNew")
    text = new.payload["data"]["text"]
    assert text["plain"].startswith("Works for me.")
    if web_safe:
        assert text["webSafe"] is True
        assert "<script>" not in text["html"]
        assert "onclick" not in text["html"]
        assert FOLD in text["html"]
    else:
        assert "webSafe" not in text
        assert "<script>alert(1)</script>" in text["html"]


@pytest.mark.parametrize("calendar", [True, False])
def test_notify_calendar_events_carries_the_invites_events(
        alice, mail_user, allow_private_webhooks, webhook_receiver, start_dispatcher,
        imap_worker, calendar):
    receiver = webhook_receiver()
    engine_hook(alice.client, receiver, webhookEvents=["messageNew"],
                notifyCalendarEvents=calendar)
    connected(alice, mail_user, start_dispatcher)
    raw, _ics = mime_shapes.calendar_invite("REQUEST", 5)
    seed.seed_mailbox(mail_user, messages=[raw])
    [new] = received(receiver, "messageNew")
    data = new.payload["data"]
    if not calendar:
        assert "calendarEvents" not in data
        return
    [part] = [a for a in data["attachments"] if a["contentType"] == "text/calendar"]
    [event] = data["calendarEvents"]
    assert event["eventId"] == "evt-5@example.test"
    assert event["attachment"] == part["id"]
    assert event["method"] == "REQUEST"
    assert event["summary"] == "Quartalsplanung Q2 – Raum 4"
    assert event["startDate"] == "2024-03-05T10:00:00.000Z"
    assert event["filename"] == "invite.ics"
    assert "content" not in part  # notifyAttachments is off: only the event carries it


def test_message_new_says_is_auto_reply_by_subject_and_by_headers_when_read(
        alice, mail_user, allow_private_webhooks, webhook_receiver, start_dispatcher,
        imap_worker):
    plain, reading = webhook_receiver(), webhook_receiver()
    engine_hook(alice.client, reading, webhookEvents=["messageNew"], notifyText=True)
    subscribe(alice.client, plain, ["messageNew"], "emailengine")
    connected(alice, mail_user, start_dispatcher)
    seed.seed_mailbox(mail_user, messages=[
        seed.make_message(subject="Automatic reply: Lunch?"),
        seed.make_message(subject="Away", headers={"Auto-Submitted": "auto-replied"}),
        seed.make_message(subject="Lunch?")])
    flagged = {}
    for receiver, name in ((reading, "reading"), (plain, "plain")):
        requests = received(receiver, "messageNew", 3)
        flagged[name] = sorted(r.payload["data"]["subject"] for r in requests
                               if r.payload["data"].get("isAutoReply") is True)
    assert flagged["reading"] == ["Automatic reply: Lunch?", "Away"]
    # Without notifyText/notifyHeaders the message is not read: the subject decides alone.
    assert flagged["plain"] == ["Automatic reply: Lunch?"]


def test_a_calendar_part_that_breaks_the_parser_leaves_only_calendar_events_out(
        alice, mail_user, allow_private_webhooks, webhook_receiver, start_dispatcher,
        imap_worker, monkeypatch):
    """Raised out of the event's shaping, it would make the dispatcher retry the run forever
    (no attempt counted), holding up the account's lane: the event goes out without it."""
    def broken(parts):
        raise OverflowError("date value out of range")

    monkeypatch.setattr(engine_format.calendar_events, "calendar_events", broken)
    receiver = webhook_receiver()
    engine_hook(alice.client, receiver, webhookEvents=["messageNew"], notifyCalendarEvents=True)
    connected(alice, mail_user, start_dispatcher)
    raw, _ics = mime_shapes.calendar_invite("REQUEST", 6)
    seed.seed_mailbox(mail_user, messages=[raw, seed.make_message(subject="After it")])
    requests = received(receiver, "messageNew", 2)
    data = {r.payload["data"]["subject"]: r.payload["data"] for r in requests}
    assert "After it" in data
    [invite] = [value for subject, value in data.items() if subject != "After it"]
    assert "calendarEvents" not in invite
    assert any(a["contentType"] == "text/calendar" for a in invite["attachments"])
