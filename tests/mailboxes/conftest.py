"""Fixtures of the mailbox tests."""

from __future__ import annotations

import imaplib

import pytest

from tests.mailboxes.sending_helpers import sending_account


@pytest.fixture
def imap_commands(monkeypatch):
    """The IMAP commands every client of this process sends (observed, not altered)."""
    sent: list[bytes] = []
    original = imaplib.IMAP4.send

    def send(self, data):
        sent.append(bytes(data))
        return original(self, data)

    monkeypatch.setattr(imaplib.IMAP4, "send", send)
    return sent


@pytest.fixture
def account(alice, smtp_user, smtp_server):
    """Alice's account ``box`` on a Dovecot user that the test SMTP server also accepts,
    synced (the sending tests' mailbox)."""
    return sending_account(alice.tenant, smtp_user, smtp_server)
