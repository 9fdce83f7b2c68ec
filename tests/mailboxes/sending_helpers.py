"""Helpers for the sending tests: an account on Dovecot + the recording SMTP server, synced so
its Sent folder is in the index; a raw message; entries queued straight into the outbox."""

from __future__ import annotations

import base64

from rq import SimpleWorker

from mailboxes import outbox, sending
from mailboxes.models import OutboxEntry
from mailboxes.sync.account import sync_account
from tests.mailboxes.helpers import open_session, register
from tests.servers import seed


def sending_account(tenant, user, smtp_server, account_id: str = "box", **extra):
    smtp = smtp_server.smtp_settings(user.username, user.password)
    smtp["tls"] = {"rejectUnauthorized": False}
    account = register(tenant, user, account_id, smtp=smtp, email=f"{user.username}@example.test",
                       **extra)
    sync(account)
    return account


def sync(account) -> None:
    session = open_session(account)
    try:
        sync_account(session, account)
    finally:
        session.client.logout()


def raw_message(subject: str = "Hello from the outbox", **kwargs) -> bytes:
    kwargs.setdefault("to", "Bob <bob@example.test>")
    kwargs.setdefault("from_", "Me <me@example.test>")
    return seed.make_message(subject=subject, **kwargs)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def queue(account, raw: bytes | None = None, **kwargs) -> OutboxEntry:
    """An entry as submit stores it (no job enqueued: tests call ``send_entry`` themselves)."""
    raw = raw or raw_message()
    kwargs.setdefault("envelope", {"from": "me@example.test", "to": ["bob@example.test"]})
    kwargs.setdefault("message_id", "<outbox-test@example.test>")
    kwargs.setdefault("subject", "Hello from the outbox")
    return outbox.submit(account, raw=raw, **kwargs)


def work_send_queue() -> None:
    """Run the ``send`` rq queue for real, in this process, until it is empty."""
    queue_ = sending._queue()
    SimpleWorker([queue_], connection=queue_.connection).work(burst=True)
