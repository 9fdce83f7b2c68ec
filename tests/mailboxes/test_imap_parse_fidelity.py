"""Issue 17's parser rules on Dovecot's own answers (recorded from the test Dovecot), without a
server: which leaves are body text and which attachments, an unsplit multipart, uuencoded
parts, and the address headers Dovecot's ENVELOPE loses or mangles, read right from the header
fields (an ENVELOPE item in a response is not read)."""

from __future__ import annotations

import binascii
import re
from email import policy
from email.parser import BytesParser

import pytest

from mailboxes.imap import parse, parts
from mailboxes.imap.types import Address, Part
from tests.mailboxes import mime_shapes
from tests.mailboxes.test_imap_parse import FIELD_NAMES, fields, meta_of


def structure(text: bytes):
    return parse.parse_bodystructure(parse.parse_tokens(text)[0])


def test_content_type_text_without_subtype_is_text_plain():
    # Dovecot's answer for "Content-Type: text": an empty subtype.
    attachments, texts = structure(
        b'("text" "" ("charset" "us-ascii") NIL NIL "7bit" 7 1 NIL NIL NIL NIL)')
    assert attachments == []
    assert texts == [Part("1", "text/plain", 7, encoding="7bit", charset="us-ascii")]


def test_an_unsplit_multipart_is_one_text_part_read_locally():
    # Dovecot's answer for boundary*=''abc: the boundary unread, one empty part.
    attachments, texts = structure(
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL) '
        b'"alternative" ("boundary*" "\'\'abc") NIL NIL NIL)')
    assert attachments == []
    assert texts == [Part("", "multipart/alternative", 0)]


def test_a_split_multipart_with_an_rfc2231_boundary_is_read_as_usual():
    """A server that decodes RFC 2231 splits the body: its parts are used as they are."""
    attachments, texts = structure(
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 12 1 NIL NIL NIL NIL)'
        b'("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 20 1 NIL NIL NIL NIL) '
        b'"alternative" ("boundary*" "\'\'abc") NIL NIL NIL)')
    assert [part.part for part in texts] == ["1", "2"]
    single_empty_with_boundary = structure(
        b'(("text" "plain" NIL NIL NIL "7bit" 0 0 NIL NIL NIL NIL) "mixed" ("boundary" "b") '
        b'NIL NIL NIL)')
    assert single_empty_with_boundary[1][0].part == "1"


def test_uuencoded_parts_are_attachments_typed_by_their_name():
    attachments, texts = structure(
        b'(("text" "" ("charset" "us-ascii") NIL NIL "7bit" 10 0 NIL NIL NIL NIL)'
        b'("application" "octet-stream" ("name" "f.pdf") NIL NIL "x-uuencode" 30 NIL NIL NIL '
        b'NIL)("text" "plain" NIL NIL NIL "x-uuencode" 30 2 NIL NIL NIL NIL) "mixed" '
        b'("boundary" "abc") NIL NIL NIL))')
    assert [part.part for part in texts] == ["1"]
    assert [(part.part, part.content_type) for part in attachments] == [
        ("2", "application/pdf"), ("3", "text/plain")]


def test_other_text_and_message_parts_are_attachments():
    attachments, texts = structure(
        b'(("text" "plain" NIL NIL NIL "7bit" 5 1 NIL NIL NIL NIL)'
        b'("message" "delivery-status" NIL NIL NIL "7bit" 200 NIL NIL NIL NIL)'
        b'("text" "rfc822-headers" NIL NIL NIL "7bit" 90 3 NIL NIL NIL NIL)'
        b'("text" "calendar" ("method" "cancel") NIL NIL "base64" 400 6 NIL NIL NIL NIL)'
        b'("text" "plain" NIL NIL NIL "7bit" 5 1 NIL ("attachment" NIL) NIL NIL)'
        b'("text" "html" NIL NIL NIL "7bit" 5 1 NIL ("inline" ("filename" "a.html")) NIL NIL) '
        b'"report" ("boundary" "b") NIL NIL NIL)')
    assert [part.part for part in texts] == ["1", "6"]
    assert [(part.content_type, part.method) for part in attachments] == [
        ("message/delivery-status", None), ("text/rfc822-headers", None),
        ("text/calendar", "CANCEL"), ("text/plain", None)]


@pytest.mark.parametrize("chunk", [1, 2, 7, 61, 62, 1000])
def test_uudecoding_streams_as_python_email_decodes(chunk):
    data = bytes(range(256)) * 3 + b"end"
    raw = mime_shapes.uuencoded(data, "f.bin")
    part = BytesParser(policy=policy.default).parsebytes(raw).get_payload()[1]
    encoded = part.get_payload().encode("ascii")
    pieces = [encoded[i:i + chunk] for i in range(0, len(encoded), chunk)]
    assert b"".join(parts.decode_stream(iter(pieces), "x-uuencode")) == data
    assert part.get_payload(decode=True) == data
    assert parts.decode_transfer(b"no begin line\r\n", "x-uuencode") == b"no begin line\r\n"
    broken = b"begin 644 f\r\n" + binascii.b2a_uu(b"abc").rstrip(b"\n") + b"garbage\r\nend\r\n"
    assert parts.decode_transfer(broken, "uuencode") == b"abc"


# The address headers of mime_shapes.odd_addresses that Dovecot's ENVELOPE mangles, and its
# ENVELOPE for them (recorded): To read as one address "Mikel@Lindsaar", a placeholder mailbox
# and domain for Cc, the Bcc group as an address at SYNTAX_ERROR; its From and subject are not
# these headers' (there are none), so reading it at all would show.
ODD_HEADERS = (
    b"To: Mikel@Lindsaar <raasdnil@gmail.com>, b@x.test, c@x.test\r\n"
    b"Cc: Big Bug bb@bug.com\r\nBcc: <Undisclosed-Recipient:@mailman.enron.com;>\r\n\r\n"
)
ODD_ENVELOPE = (
    b'(NIL "t" ((NIL NIL "a" "x.test")) ((NIL NIL "a" "x.test")) ((NIL NIL "a" "x.test")) '
    b'((NIL NIL "Mikel" "Lindsaar")) (("Big Bug bb" NIL "MISSING_MAILBOX" "MISSING_DOMAIN")) '
    b'((NIL NIL "Undisclosed-Recipient" "SYNTAX_ERROR")) NIL NIL)'
)


def _response(headers: bytes | None, envelope: bytes | None = None, *, envelope_last: bool = False):
    """One FETCH response: the UID, the header fields' literal (if any) and an ENVELOPE item
    (if any), before the literal or after it."""
    items = [b"UID 5"]
    if headers is not None:
        items.append(fields(headers))
    if envelope is not None:
        items.insert(len(items) if envelope_last else 1, b"ENVELOPE " + envelope)
    return b"* 1 FETCH (" + b" ".join(items) + b")\r\n"


def _header_fields_of(raw: bytes) -> bytes:
    """The header-fields literal a server answers for *raw*: its lines of the engine's fields
    (``FIELD_NAMES``, folds kept) in the message's order, then the empty line."""
    head = raw.split(b"\r\n\r\n", 1)[0] + b"\r\n"
    lines = re.findall(rb"(?m)^[^ \t\r\n][^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*", head)
    return b"".join(line for line in lines if line.split(b":", 1)[0].upper() in FIELD_NAMES) + b"\r\n"


def test_the_addresses_the_envelope_mangles_are_read_right_from_the_header_fields():
    meta = meta_of(_response(ODD_HEADERS))
    assert meta.to == [Address("Mikel@Lindsaar", "raasdnil@gmail.com"),
                       Address("", "b@x.test"), Address("", "c@x.test")]
    assert meta.cc == [Address("Big Bug", "bb@bug.com")]
    assert meta.bcc == []
    assert meta.from_ == []
    assert meta.sender == []
    assert meta.reply_to == []
    assert meta.subject == ""


def test_the_odd_addresses_message_is_read_right_from_its_header_fields():
    meta = meta_of(_response(_header_fields_of(mime_shapes.odd_addresses())))
    assert meta.from_ == [Address("Jörg Müller", "joerg@example.test")]
    assert meta.sender == [Address("Jörg Müller", "joerg@example.test")]  # no Sender: From's
    assert meta.reply_to == [Address("Operations Desk", "ops@example.test")]
    assert meta.to == [Address("Mikel@Lindsaar", "raasdnil@example.test"),
                       Address("Bob", "bob@example.test"), Address("", "carol@example.test")]
    assert meta.cc == [Address("Big Bug", "bb@bug.example.test")]
    assert meta.bcc == []
    assert meta.subject == "Addresses 0"
    assert meta.date is not None
    assert meta.date.isoformat() == "2024-03-04T09:30:00+00:00"
    assert meta.message_id is not None
    assert meta.message_id.startswith("<shape-0-")


@pytest.mark.parametrize("envelope_last", [False, True])
@pytest.mark.parametrize("headers", ["odd headers", "odd message"])
def test_a_stray_envelope_changes_nothing(headers, envelope_last):
    """Dovecot's mangled ENVELOPE beside the header fields: the meta is that of the response
    without it, in the compiled parser and in its Python reference."""
    block = ODD_HEADERS if headers == "odd headers" else _header_fields_of(mime_shapes.odd_addresses())
    with_envelope = _response(block, ODD_ENVELOPE, envelope_last=envelope_last)
    assert b"ENVELOPE (NIL" in with_envelope
    assert meta_of(with_envelope) == meta_of(_response(block))
    (text, literals), = parse.wire_responses(with_envelope)
    _, items = parse.parse_fetch(text, literals)
    assert "ENVELOPE" in items
    assert parse.python_message_meta(items) == meta_of(_response(block))


def test_names_in_the_header_fields_are_decoded():
    """Encoded words (UTF-8 and another charset), raw 8-bit names (Latin-1 and UTF-8), quoted
    names with a comma, and an encoded subject."""
    headers = (b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= aus =?iso-8859-1?q?K=F6ln?=\r\n"
               b"From: J\xf6rg <j@x.test>\r\n"
               b"Sender: =?utf-8?q?J=C3=B6rg_M=C3=BCller?= <jm@x.test>\r\n"
               b"Reply-To: =?iso-8859-1?q?Caf=E9?= <c@x.test>\r\n"
               b"To: \"Smith, J\" <s@x.test>, t@x.test\r\n"
               b"Cc: \xe6\x9d\x8e <li@x.test>, =?utf-8?b?5p2O5bCP6b6N?= <l@x.test>\r\n\r\n")
    meta = meta_of(_response(headers))
    assert meta.subject == "Grüße aus Köln"
    assert meta.from_ == [Address("Jörg", "j@x.test")]
    assert meta.sender == [Address("Jörg Müller", "jm@x.test")]
    assert meta.reply_to == [Address("Café", "c@x.test")]
    assert meta.to == [Address("Smith, J", "s@x.test"), Address("", "t@x.test")]
    assert meta.cc == [Address("李", "li@x.test"), Address("李小龍", "l@x.test")]


@pytest.mark.parametrize(("header", "expected"), [
    (b"=?utf-8?q?J=C3=B6rg_M=C3=BCller?= <j@x>", [Address("Jörg Müller", "j@x")]),
    ("Jörg <j@x>".encode(), [Address("Jörg", "j@x")]),
    ("J\xf6rg <j@x>".encode("latin-1"), [Address("Jörg", "j@x")]),
    (b"ops@x (Operations Desk)", [Address("Operations Desk", "ops@x")]),
    (b'"a@b, c" <a@b>, d@e', [Address("a@b, c", "a@b"), Address("", "d@e")]),
    (b"Team: a@x, b@y;, c@z", [Address("", "a@x"), Address("", "b@y"), Address("", "c@z")]),
    (b"undisclosed-recipients:;", []),
    (b"<@r1,@r2:x@y>", [Address("", "x@y")]),
    (b"bob", [Address("", "bob")]),
])
def test_header_addresses(header, expected):
    assert parse.header_addresses(header) == expected
