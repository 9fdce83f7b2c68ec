"""A sender's header fields that Python's email package cannot parse in bounded time or stack
(comments nested thousands deep: a RecursionError; 50 KB of quotes in an address list: 18 s),
against a real Dovecot: the message indexes, and reading it shows them decoded by our own
decoder (``parts.field_parse_bounded``), never a 500."""

from __future__ import annotations

import pytest

NESTED = "(" * 2000 + "x" + ")" * 2000 + " bob@example.test"
QUOTES = '"' * 50_000
ENCODED = "=?utf-8?q?Z=C3=BCrich?= " + '"' * 5000 + " <carl@example.test>"
# Twelve To fields, each within the bound, 22,800 characters together: past one message's
# budget of the email package's parses (8,192), the rest are shown by our decoder.
MANY = '"' * 1900


def _raw(name: str, to: str) -> bytes:
    return (f"From: ann@example.test\r\nTo: {to}\r\nSubject: {name}\r\n"
            f"Message-ID: <{name}@example.test>\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\n"
            "Content-Type: text/plain\r\n\r\nHello\r\n").encode()


@pytest.fixture
def inbox_messages():
    return {"nested": _raw("nested", NESTED), "quotes": _raw("quotes", QUOTES),
            "encoded": _raw("encoded", ENCODED),
            "many": _raw("many", "\r\nTo: ".join([MANY] * 12))}


@pytest.mark.django_db
def test_fields_the_email_package_cannot_parse_are_shown_decoded_by_ours(synced):
    shown = {}
    for name in ("nested", "quotes", "encoded"):
        response = synced.client.get(f"/v1/account/box/message/{synced.id_of[name]}")
        assert response.status_code == 200, (name, response.content[:300])
        shown[name] = response.json()["headers"]["to"]
    assert shown == {"nested": [NESTED], "quotes": [QUOTES],
                     "encoded": ["Zürich " + '"' * 5000 + " <carl@example.test>"]}


@pytest.mark.django_db
def test_past_a_messages_budget_fields_are_shown_decoded_by_ours(synced):
    response = synced.client.get(f"/v1/account/box/message/{synced.id_of['many']}")
    assert response.status_code == 200
    # The email package shows a To of quotes alone as "<>"; ours as it came.
    assert response.json()["headers"]["to"] == ["<>"] * 4 + [MANY] * 8
