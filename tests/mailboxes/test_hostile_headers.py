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
# A multipart the server cannot split (an RFC 2231 boundary), with a Cc of 50 KB of quotes: the
# worker parses such a message while indexing it, and the email package's parse of that Cc
# took 17 s.
UNSPLIT = (b"From: ann@example.test\r\nTo: bob@example.test\r\nCc: " + b'"' * 50_000 + b"\r\n"
           b"Subject: unsplit\r\nMessage-ID: <unsplit@example.test>\r\n"
           b"Date: Mon, 2 Nov 2026 10:00:00 +0000\r\n"
           b"Content-Type: multipart/mixed; boundary*=''x\r\n\r\n"
           b"--x\r\nContent-Type: text/plain\r\n\r\nInside\r\n--x\r\n"
           b'Content-Type: application/pdf; name="r.pdf"\r\n\r\n%PDF\r\n--x--\r\n')


def _raw(name: str, to: str) -> bytes:
    return (f"From: ann@example.test\r\nTo: {to}\r\nSubject: {name}\r\n"
            f"Message-ID: <{name}@example.test>\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\n"
            "Content-Type: text/plain\r\n\r\nHello\r\n").encode()


@pytest.fixture
def inbox_messages():
    return {"nested": _raw("nested", NESTED), "quotes": _raw("quotes", QUOTES),
            "encoded": _raw("encoded", ENCODED),
            "many": _raw("many", "\r\nTo: ".join([MANY] * 12)),
            "8bit": _raw("8bit", "bob@example.test").replace(b"Subject: 8bit",
                                                               "Subject: Café".encode()),
            "unsplit": UNSPLIT}


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


@pytest.mark.django_db
def test_a_raw_8bit_field_is_shown_as_the_index_reads_it(synced):
    response = synced.client.get(f"/v1/account/box/message/{synced.id_of['8bit']}")
    assert response.json()["headers"]["subject"] == ["Café"]
    assert response.json()["subject"] == "Café"


@pytest.mark.django_db
def test_an_unsplittable_message_beyond_the_bounds_indexes_and_reads_as_text(synced):
    # ``synced`` asserted the first index complete: the worker's own parse of it is bounded.
    message = synced.client.get(f"/v1/account/box/message/{synced.id_of['unsplit']}").json()
    assert message["attachments"] == []
    assert message["text"]["plain"] == UNSPLIT.decode().replace("\r\n", "\n")
