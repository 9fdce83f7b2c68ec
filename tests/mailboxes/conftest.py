"""Fixtures of the mailbox tests."""

from __future__ import annotations

import imaplib

import pytest


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
