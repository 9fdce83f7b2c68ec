"""Mail changed on real Dovecot by another client, watched by a real IMAP worker, reaches a
loopback receiver as signed webhooks: messageNew, messageUpdated (flags added/deleted),
messageDeleted."""

from __future__ import annotations

import pytest

from accounts.models import EmailAccount
from tests.base import wait_for
from tests.mailboxes.helpers import register
from tests.servers import seed
from webhooks import signing

pytestmark = pytest.mark.django_db(transaction=True)


def received(receiver, event: str, count: int = 1, timeout: float = 60.0):
    return receiver.wait_for(
        lambda r: len(found := [q for q in r.accepted() if q.payload["event"] == event]) >= count
        and found, timeout)


def test_mail_changes_on_the_server_arrive_as_signed_webhooks(
        alice, mail_user, allow_private_webhooks, webhook_receiver, start_dispatcher,
        imap_worker):
    receiver = webhook_receiver()
    hook = alice.client.post("/v1/webhooks", {
        "url": receiver.url, "events": ["messageNew", "messageUpdated", "messageDeleted"],
        "accounts": ["box"]}, format="json").json()
    account = register(alice.tenant, mail_user)
    start_dispatcher()
    wait_for(lambda: EmailAccount.objects.get(pk=account.pk).state == "connected", timeout=60)

    [uid] = seed.seed_mailbox(mail_user, messages=[seed.make_message(subject="Hello hooks")])
    [new] = received(receiver, "messageNew")
    headers = new.headers
    assert signing.verify(hook["secret"], headers["X-EmailAPI-Timestamp"], new.body,
                          headers["X-EmailAPI-Signature"])
    assert headers["X-EmailAPI-Event"] == "messageNew"
    payload = new.payload
    assert payload["account"] == "box"
    assert payload["event"] == "messageNew"
    assert payload["data"]["uid"] == uid
    assert payload["data"]["subject"] == "Hello hooks"
    assert payload["data"]["path"] == "INBOX"
    assert payload["data"]["id"]
    assert {"from", "to", "date", "flags", "messageId"} <= set(payload["data"])

    with mail_user.imap_client() as other:
        other.select_folder("INBOX")
        other.add_flags([uid], [b"\\Flagged"])
    [updated] = received(receiver, "messageUpdated")
    assert updated.payload["data"]["changes"]["flags"]["added"] == ["\\Flagged"]
    assert updated.payload["data"]["changes"]["flags"]["deleted"] == []
    with mail_user.imap_client() as other:
        other.select_folder("INBOX")
        other.remove_flags([uid], [b"\\Flagged"])
    second = received(receiver, "messageUpdated", 2)[1]
    assert second.payload["data"]["changes"]["flags"]["deleted"] == ["\\Flagged"]

    with mail_user.imap_client() as other:
        other.select_folder("INBOX")
        other.delete_messages([uid])
        other.expunge()
    [deleted] = received(receiver, "messageDeleted")
    assert deleted.payload["data"]["uid"] == uid
    assert deleted.payload["data"]["path"] == "INBOX"
    assert deleted.payload["data"]["id"] == payload["data"]["id"]
    seqs = [q.payload["seq"] for q in receiver.accepted()]
    assert seqs == sorted(seqs)
    for request in receiver.accepted():
        assert signing.verify(hook["secret"], request.headers["X-EmailAPI-Timestamp"],
                              request.body, request.headers["X-EmailAPI-Signature"])
