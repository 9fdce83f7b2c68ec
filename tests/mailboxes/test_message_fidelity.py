"""Issue 17, items 1-7, against real Dovecot through the API: each with a message shaped like
the real-world case (``tests.mailboxes.mime_shapes``): parts that vanished, sizes that were
estimates, inline text with a filename, ``Content-Type: text``, an RFC 2231 boundary,
x-uuencode, and the addresses Dovecot's ENVELOPE loses or mangles."""

from __future__ import annotations

import hashlib

import pytest

from mailboxes.imap import parts
from tests.mailboxes import mime_shapes as shapes

pytestmark = [pytest.mark.django_db]

UU_DATA = bytes(range(256)) * 20 + b"tail"
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40
CSV = "Menge;Preis;Bemerkung\r\n3;4,50 €;Grüße = gut\r\n".encode() * 30 + b"ende  \r\n"


@pytest.fixture
def inbox_messages():
    return {
        "invite": shapes.calendar_invite("REQUEST")[0],
        "cancel": shapes.calendar_only("CANCEL")[0],
        "bounce": shapes.bounce(),
        "enriched": shapes.other_text_types(),
        "inline_text": shapes.inline_text_with_filename(),
        "bare_text": shapes.bare_text(),
        "rfc2231": shapes.rfc2231_boundary(),
        "rfc2231_file": shapes.rfc2231_with_attachment(PDF, "behind.pdf"),
        "uuencoded": shapes.uuencoded(UU_DATA, "report.pdf"),
        "sizes": shapes.attachments([
            ("application/pdf", "rechnung.pdf", PDF, "base64"),
            ("text/csv; charset=utf-8", "daten.csv", CSV, "quoted-printable"),
        ]),
        "addresses": shapes.odd_addresses(),
    }


def _message(synced, name: str, **query) -> dict:
    response = synced.client.get(f"/v1/account/box/message/{synced.id_of[name]}", query)
    assert response.status_code == 200, response.content
    return response.json()


def _listed(synced, name: str) -> dict:
    return next(m for m in synced.listing() if m["uid"] == synced.uid_of[name])


def _download(synced, entry: dict) -> bytes:
    response = synced.client.get(f"/v1/account/box/attachment/{entry['id']}")
    assert response.status_code == 200, response.content
    return b"".join(response.streaming_content)


def test_calendar_parts_are_attachments_with_their_method(synced):
    """Item 1: an Outlook invite's text/calendar part (no filename, no Content-ID), and an
    invite that is nothing but that part, are attachments with EmailEngine's ``method``."""
    _, ics = shapes.calendar_invite("REQUEST")
    invite = _message(synced, "invite")
    assert invite["text"]["plain"] == "Einladung: Quartalsplanung\n"
    [calendar] = invite["attachments"]
    assert calendar["contentType"] == "text/calendar"
    assert calendar["method"] == "REQUEST"
    assert _download(synced, calendar) == ics
    assert _listed(synced, "invite")["hasAttachments"] is True
    _, cancel_ics = shapes.calendar_only("CANCEL")
    [only] = _message(synced, "cancel")["attachments"]
    assert only["method"] == "CANCEL"
    assert _download(synced, only) == cancel_ics
    assert _listed(synced, "cancel")["attachments"][0]["method"] == "CANCEL"


def test_bounce_parts_are_attachments(synced):
    """Item 1: a bounce's message/delivery-status and text/rfc822-headers are attachments."""
    bounce = _message(synced, "bounce")
    assert bounce["text"]["plain"] == "Delivery to nobody@example.test failed.\n"
    kinds = {a["contentType"]: a for a in bounce["attachments"]}
    assert sorted(kinds) == ["message/delivery-status", "text/rfc822-headers"]
    assert _download(synced, kinds["message/delivery-status"]) == shapes.DELIVERY_STATUS
    assert _download(synced, kinds["text/rfc822-headers"]) == shapes.RFC822_HEADERS
    assert "method" not in kinds["text/rfc822-headers"]
    assert _listed(synced, "bounce")["hasAttachments"] is True


def test_other_text_types_are_attachments(synced):
    """Item 1: text/enriched, text/watch-html, text/x-* beside the body are attachments."""
    message = _message(synced, "enriched")
    assert message["text"]["plain"] == "Plain body\n"
    assert message["text"]["html"] == "<p>HTML body</p>\n"
    kinds = {a["contentType"]: a for a in message["attachments"]}
    assert sorted(kinds) == ["text/enriched", "text/watch-html", "text/x-vcard"]
    assert _download(synced, kinds["text/enriched"]) == shapes.ENRICHED
    assert _download(synced, kinds["text/watch-html"]) == shapes.WATCH_HTML
    assert _download(synced, kinds["text/x-vcard"]) == shapes.VCARD


@pytest.mark.parametrize("in_one_fetch", [parts.SIZES_IN_ONE_FETCH, 0])
def test_sizes_are_exact_on_the_message_and_estimates_in_listings(synced, monkeypatch,
                                                                 in_one_fetch):
    """Item 2: ``GET message/{id}`` gives the decoded size, exactly the bytes the attachment
    route returns (parts measured from one FETCH, or streamed); a listing gives the encoded
    size and an estimate."""
    monkeypatch.setattr(parts, "SIZES_IN_ONE_FETCH", in_one_fetch)
    message = _message(synced, "sizes")
    files = {a["filename"]: a for a in message["attachments"]}
    for name, content in (("rechnung.pdf", PDF), ("daten.csv", CSV)):
        downloaded = _download(synced, files[name])
        assert downloaded == content
        assert files[name]["size"] == len(content)
    listed = {a["filename"]: a for a in _listed(synced, "sizes")["attachments"]}
    assert listed["daten.csv"]["encodedSize"] > len(CSV)  # QP: the encoded size
    assert listed["rechnung.pdf"]["size"] == listed["rechnung.pdf"]["encodedSize"] * 3 // 4
    assert listed["rechnung.pdf"]["encodedSize"] == files["rechnung.pdf"]["encodedSize"]


def test_inline_text_with_a_filename_is_the_body(synced):
    """Item 3: ``inline; filename=msg.txt`` text is the body, not an attachment."""
    message = _message(synced, "inline_text")
    assert message["text"]["plain"] == "Grüße aus dem Büro\n"
    assert message["attachments"] == []
    assert _listed(synced, "inline_text")["hasAttachments"] is False


def test_content_type_text_without_subtype_is_plain_text(synced):
    """Item 4: ``Content-Type: text`` is text/plain (RFC 2045), not an attachment."""
    message = _message(synced, "bare_text")
    assert message["text"]["plain"] == "Just text, no subtype.\n"
    assert message["attachments"] == []
    assert _listed(synced, "bare_text")["text"]["encodedSize"]["plain"] > 0


def test_rfc2231_boundary_is_read_locally(synced, imap_commands):
    """Item 5: Dovecot shows one empty part for an RFC 2231-encoded boundary; the text is
    read by parsing the source, fetched once."""
    message = _message(synced, "rfc2231")
    assert message["text"]["plain"] == "The plain text behind an RFC 2231 boundary.\n"
    assert message["text"]["html"] == "<p>The HTML behind it.</p>\n"
    sources = [c for c in imap_commands if b"BODY.PEEK[]" in c]
    assert len(sources) == 1
    text_id = message["text"]["id"]
    cut = synced.client.get(f"/v1/account/box/text/{text_id}",
                            {"textType": "plain", "maxBytes": 8}).json()
    assert cut["plain"] == "The plai"
    assert cut["hasMore"] is True


def test_rfc2231_boundary_attachment_is_listed_and_downloads(synced):
    """Item 5, attachments: the server cannot split the body, so BODYSTRUCTURE shows no file;
    the index finds it by parsing the source, and the download parses it out again."""
    listed = _listed(synced, "rfc2231_file")
    assert listed["hasAttachments"] is True
    [entry] = listed["attachments"]
    assert entry["filename"] == "behind.pdf"
    assert entry["contentType"] == "application/pdf"
    message = _message(synced, "rfc2231_file")
    assert message["text"]["plain"] == "The file behind an RFC 2231 boundary.\n"
    [attachment] = message["attachments"]
    assert attachment["size"] == len(PDF)
    assert _download(synced, attachment) == PDF


def test_uuencoded_attachment_is_served_decoded_with_its_type(synced):
    """Item 6: an x-uuencode part downloads as the file, typed by its name."""
    message = _message(synced, "uuencoded")
    [attachment] = message["attachments"]
    assert attachment["contentType"] == "application/pdf"
    assert attachment["size"] == len(UU_DATA)
    response = synced.client.get(f"/v1/account/box/attachment/{attachment['id']}")
    assert response["Content-Type"] == "application/pdf"
    data = b"".join(response.streaming_content)
    assert hashlib.sha256(data).hexdigest() == hashlib.sha256(UU_DATA).hexdigest()


def test_addresses_the_envelope_mangles_are_read_from_the_header(synced):
    """Item 7: a name with ``@`` before two more recipients, an address without angle
    brackets after a name, an empty group in angle brackets (Dovecot's SYNTAX_ERROR); the
    names that were right stay right (RFC 2047, comments)."""
    for message in (_message(synced, "addresses"), _listed(synced, "addresses")):
        assert message["to"] == [
            {"name": "Mikel@Lindsaar", "address": "raasdnil@example.test"},
            {"name": "Bob", "address": "bob@example.test"},
            {"name": "", "address": "carol@example.test"},
        ]
        assert message["cc"] == [{"name": "Big Bug", "address": "bb@bug.example.test"}]
        assert message["bcc"] == []
        assert message["from"] == {"name": "Jörg Müller", "address": "joerg@example.test"}
        assert message["replyTo"] == [{"name": "Operations Desk",
                                       "address": "ops@example.test"}]
