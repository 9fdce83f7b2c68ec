"""Our ``emailengine``-format requests against EmailEngine's own payloads
(``lib/payload-examples-webhooks.json``, its folder events as ``lib/mailbox.js`` sends them and
its request headers as ``workers/webhooks.js`` builds them): folder changes made by another
client on Dovecot, synced by our real sync code, delivered by the real dispatcher to a real
receiver."""

from __future__ import annotations

import pytest

from mailboxes import sending
from mailboxes.models import Folder
from mailboxes.sync.account import sync_account
from mailboxes.sync.folder import sync_folder
from tests.compat.test_webhooks import received, subscribe
from tests.mailboxes.helpers import register
from tests.mailboxes.sending_helpers import queue, sending_account
from tests.servers import seed
from tests.webhooks import conftest as webhook_fixtures

allow_private_webhooks = webhook_fixtures.allow_private_webhooks
webhook_receiver = webhook_fixtures.webhook_receiver
start_dispatcher = webhook_fixtures.start_dispatcher

pytestmark = pytest.mark.django_db(transaction=True)

FOLDER_EVENTS = ["mailboxNew", "mailboxDeleted", "mailboxReset"]


def test_folder_events_name_their_folder_in_the_envelope_and_no_special_use_is_false(
        synced, mail_user, allow_private_webhooks, webhook_receiver, start_dispatcher):
    """EmailEngine's envelope has the folder's ``path`` (and ``specialUse`` when it has one)
    for folder events as for message events; ``data.specialUse`` is ``false`` for a folder
    without one."""
    receiver, ours = webhook_receiver(), webhook_receiver()
    _subscribe_both(synced, receiver, ours)
    with mail_user.imap_client() as other:
        other.create_folder("Projects")
    sync_account(synced.session, synced.account)
    with mail_user.imap_client() as other:
        other.delete_folder("Projects")
    sync_account(synced.session, synced.account)
    start_dispatcher()
    [gone] = received(receiver, "mailboxDeleted")
    [new] = [r for r in received(receiver, "mailboxNew")
             if r.payload["data"]["path"] == "Projects"]
    for request in (new, gone):
        payload = request.payload
        assert list(payload) == ["serviceUrl", "account", "date", "path", "event", "data"]
        assert payload["path"] == "Projects"
        assert payload["data"]["specialUse"] is False
    [our_new] = [r for r in received(ours, "mailboxNew")
                 if r.payload["data"]["path"] == "Projects"]
    assert "path" not in our_new.payload  # our format is unchanged
    assert our_new.payload["data"]["specialUse"] is None


def test_a_uidvalidity_change_is_mailbox_reset_with_emailengines_reason(
        synced, mail_user, allow_private_webhooks, webhook_receiver, start_dispatcher):
    receiver, ours = webhook_receiver(), webhook_receiver()
    _subscribe_both(synced, receiver, ours)
    with mail_user.imap_client() as other:
        other.create_folder("Work")
    seed.seed_mailbox(mail_user, folder="Work", messages=[seed.make_message(subject="old")])
    sync_account(synced.session, synced.account)
    work = Folder.objects.get(email_account=synced.account, path="Work")
    old_validity = work.uidvalidity
    with mail_user.imap_client() as other:
        other.delete_folder("Work")
        other.create_folder("Work")
    seed.seed_mailbox(mail_user, folder="Work", messages=[seed.make_message(subject="new")])
    assert sync_folder(synced.session, work).reset
    start_dispatcher()
    [reset] = received(receiver, "mailboxReset")
    payload = reset.payload
    assert payload["path"] == "Work"
    assert "specialUse" not in payload
    data = payload["data"]
    assert data["reason"] == "uidValidityChange"
    assert data["prevUidValidity"] == str(old_validity)
    assert data["uidValidity"] != data["prevUidValidity"]
    assert data["specialUse"] is False
    [our_reset] = received(ours, "mailboxReset")
    assert our_reset.payload["data"]["reason"] == "uidvalidity"


def test_the_first_syncs_folders_say_false_for_no_special_use(
        synced, mail_user, allow_private_webhooks, webhook_receiver, start_dispatcher):
    """The ``mailboxNew`` of each folder before ``accountInitialized`` (the ``synced``
    fixture's first sync raised it): INBOX has ``\\Inbox`` in the envelope and the data, a
    folder without a special use ``false`` in the data and nothing in the envelope."""
    receiver = webhook_receiver()
    answer = synced.client.post("/v1/webhooks", {"url": receiver.url, "events": ["mailboxNew"],
                                                 "format": "emailengine"}, format="json")
    assert answer.status_code == 200, answer.content
    with mail_user.imap_client() as other:
        other.create_folder("Plain")
    sync_account(synced.session, synced.account)
    start_dispatcher()
    count = Folder.objects.filter(email_account=synced.account).count()
    announced = received(receiver, "mailboxNew", count)
    inbox = next(r.payload for r in announced if r.payload["path"] == "INBOX")
    assert inbox["specialUse"] == "\\Inbox"
    assert inbox["data"]["specialUse"] == "\\Inbox"
    plain = next(r.payload for r in announced if r.payload["path"] == "Plain")
    assert "specialUse" not in plain
    assert plain["data"]["specialUse"] is False


def _subscribe_both(synced, engine_receiver, our_receiver) -> None:
    for receiver, format_ in ((engine_receiver, "emailengine"), (our_receiver, "emailapi")):
        answer = synced.client.post("/v1/webhooks", {"url": receiver.url,
                                                     "events": FOLDER_EVENTS,
                                                     "format": format_}, format="json")
        assert answer.status_code == 200, answer.content


def test_a_custom_route_is_named_in_x_ee_wh_custom_route_and_the_default_routes_are_not(
        alice, allow_private_webhooks, webhook_receiver, start_dispatcher):
    """EmailEngine names the route of a route's delivery (``X-EE-Wh-Custom-Route``), never
    its default webhook's or an account's own URL's. Our routes are the subscriptions
    ``GET /v1/webhookRoutes`` lists."""
    route, default, own = webhook_receiver(), webhook_receiver(), webhook_receiver()
    hook = subscribe(alice.client, route, ["accountAdded"], "emailengine")
    answer = alice.client.post("/v1/settings", {"webhooksEnabled": True, "webhooks": default.url,
                                                "webhookEvents": ["accountAdded"]},
                               format="json")
    assert answer.status_code == 200, answer.content
    answer = alice.client.post("/v1/account", {
        "account": "box", "webhooks": own.url,
        "imap": {"host": "127.0.0.1", "port": 9, "auth": {"user": "u", "pass": "p"}}},
        format="json")
    assert answer.status_code == 200, answer.content
    start_dispatcher()
    [routed] = received(route, "accountAdded")
    [listed] = alice.client.get("/v1/webhookRoutes").json()["webhooks"]
    assert routed.headers["X-EE-Wh-Custom-Route"] == hook["id"] == listed["id"]
    for receiver in (default, own):
        [request] = received(receiver, "accountAdded")
        assert "X-EE-Wh-Custom-Route" not in request.headers
    assert alice.client.post(f"/v1/webhooks/{hook['id']}/test").json()["statusCode"] == 200
    [tested] = received(route, "test")
    assert tested.headers["X-EE-Wh-Custom-Route"] == hook["id"]


# --- messageDeliveryError's errorCode and smtpCommand (nodemailer's, as EmailEngine's) -------


@pytest.mark.parametrize(("stage", "command", "code"), [
    ("rcpt", "RCPT TO", "EENVELOPE"), ("data", "DATA", "EMESSAGE")])
def test_a_refusal_is_eenvelope_or_emessage_with_its_smtp_command(
        alice, smtp_user, smtp_server, allow_private_webhooks, webhook_receiver,
        start_dispatcher, stage, command, code):
    """A receiver written for EmailEngine tells a refused address from a refused message by
    ``errorCode`` (nodemailer's ``EENVELOPE``/``EMESSAGE``) and ``smtpCommand``; our own
    format keeps our code and names the command too."""
    engine, ours = webhook_receiver(), webhook_receiver()
    subscribe(alice.client, engine, ["messageDeliveryError"], "emailengine")
    subscribe(alice.client, ours, ["messageFailed"], "emailapi")
    account = sending_account(alice.tenant, smtp_user, smtp_server)
    smtp_server.refuse_always("550 5.7.1 Refused here", stage=stage)
    entry = queue(account)
    assert sending.send_entry(entry.pk) == "failed"
    start_dispatcher()
    [error] = received(engine, "messageDeliveryError")
    data = error.payload["data"]
    assert data["errorCode"] == code
    assert data["smtpCommand"] == command
    assert data["smtpResponseCode"] == 550
    assert data["job"]["id"] == entry.queue_id
    [failed] = received(ours, "messageFailed")
    assert failed.payload["data"]["code"] == "SmtpRefused"
    assert failed.payload["data"]["command"] == command


def test_a_server_that_cannot_be_reached_is_econnection(alice, smtp_user, allow_private_webhooks,
                                                         webhook_receiver, start_dispatcher):
    receiver = webhook_receiver()
    subscribe(alice.client, receiver, ["messageDeliveryError"], "emailengine")
    account = register(alice.tenant, smtp_user, smtp={
        "host": "127.0.0.1", "port": 9, "secure": False,  # discard: nothing listens
        "auth": {"user": smtp_user.username, "pass": smtp_user.password}})
    entry = queue(account)
    assert sending.send_entry(entry.pk) == "retry"
    start_dispatcher()
    [error] = received(receiver, "messageDeliveryError")
    data = error.payload["data"]
    assert data["errorCode"] == "ECONNECTION"
    assert data["smtpCommand"] == "CONN"
    assert data["job"]["nextAttempt"].endswith("Z")


# --- messageNew: what a message lacks is absent, as in EmailEngine's -----------------------


def test_message_new_leaves_out_what_the_message_lacks(alice, mail_user, allow_private_webhooks,
                                                        webhook_receiver, start_dispatcher,
                                                        imap_worker):
    engine, ours = webhook_receiver(), webhook_receiver()
    subscribe(alice.client, engine, ["messageNew", "accountInitialized"], "emailengine")
    subscribe(alice.client, ours, ["messageNew"], "emailapi")
    register(alice.tenant, mail_user)
    start_dispatcher()
    received(engine, "accountInitialized")
    seed.seed_mailbox(mail_user, messages=[
        seed.make_message(subject="Bare", attachments=[("a.txt", b"hello\n", "text/plain")]),
        seed.make_message(subject="Full", cc="Carl <carl@example.test>",
                          in_reply_to="<earlier@example.test>")])
    by_subject = {r.payload["data"]["subject"]: r.payload["data"]
                  for r in received(engine, "messageNew", 2)}
    bare, full = by_subject["Bare"], by_subject["Full"]
    for key in ("cc", "bcc", "inReplyTo"):
        assert key not in bare, key
    [attachment] = bare["attachments"]
    assert attachment["filename"] == "a.txt"
    assert "contentId" not in attachment
    assert full["cc"] == [{"name": "Carl", "address": "carl@example.test"}]
    assert full["inReplyTo"] == "<earlier@example.test>"
    ours_bare = next(r.payload["data"] for r in received(ours, "messageNew", 2)
                     if r.payload["data"]["subject"] == "Bare")
    assert ours_bare["cc"] == []  # our format is unchanged
    assert ours_bare["inReplyTo"] is None
    assert ours_bare["attachments"][0]["contentId"] is None
