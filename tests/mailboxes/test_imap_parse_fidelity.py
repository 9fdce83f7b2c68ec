"""Issue 17's parser rules on Dovecot's own answers (recorded from the test Dovecot), without a
server: which leaves are body text and which attachments, an unsplit multipart, uuencoded
parts, and the addresses an ENVELOPE loses or mangles, read from the header."""

from __future__ import annotations

import binascii
from email import policy
from email.parser import BytesParser

import pytest

from mailboxes.imap import parse, parts
from mailboxes.imap.types import Address, Part
from tests.mailboxes import mime_shapes
from tests.mailboxes.test_imap_parse import meta_of


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


# Dovecot's ENVELOPE (recorded) for the headers of mime_shapes.odd_addresses and for To.
ODD_HEADERS = (
    b"To: Mikel@Lindsaar <raasdnil@gmail.com>, b@x.test, c@x.test\r\n"
    b"Cc: Big Bug bb@bug.com\r\nBcc: <Undisclosed-Recipient:@mailman.enron.com;>\r\n\r\n"
)
ODD_ENVELOPE = (
    b'(NIL "t" ((NIL NIL "a" "x.test")) ((NIL NIL "a" "x.test")) ((NIL NIL "a" "x.test")) '
    b'((NIL NIL "Mikel" "Lindsaar")) (("Big Bug bb" NIL "MISSING_MAILBOX" "MISSING_DOMAIN")) '
    b'((NIL NIL "Undisclosed-Recipient" "SYNTAX_ERROR")) NIL NIL)'
)


def _fetched(envelope: bytes, headers: bytes | None):
    block = b"" if headers is None else (
        b" BODY[HEADER.FIELDS (REFERENCES FROM SENDER REPLY-TO TO CC BCC)] {%d}\r\n%s"
        % (len(headers), headers))
    return meta_of(b"* 1 FETCH (UID 5 ENVELOPE " + envelope + block + b")\r\n")


def test_addresses_the_envelope_mangles_come_from_the_header():
    meta = _fetched(ODD_ENVELOPE, ODD_HEADERS)
    assert meta.to == [Address("Mikel@Lindsaar", "raasdnil@gmail.com"),
                       Address("", "b@x.test"), Address("", "c@x.test")]
    assert meta.cc == [Address("Big Bug", "bb@bug.com")]
    assert meta.bcc == []
    assert meta.from_ == [Address("", "a@x.test")]


def test_without_the_header_the_syntax_error_placeholder_is_filtered():
    meta = _fetched(ODD_ENVELOPE, None)
    assert meta.bcc == [Address("", "Undisclosed-Recipient")]
    assert meta.to == [Address("", "Mikel@Lindsaar")]


def test_a_sound_envelope_is_kept_as_it_is():
    """The header is only read where the ENVELOPE is suspect: names decoded from it stay."""
    envelope = (b'(NIL "t" (("=?utf-8?q?J=C3=B6rg?=" NIL "j" "x.test")) NIL NIL '
                b'(("Smith, J" NIL "s" "x.test")(NIL NIL "t" "x.test")) NIL NIL NIL NIL)')
    headers = b"From: J\xf6rg <j@x.test>\r\nTo: \"Smith, J\" <s@x.test>, t@x.test\r\n\r\n"
    meta = _fetched(envelope, headers)
    assert meta.from_ == [Address("Jörg", "j@x.test")]
    assert meta.to == [Address("Smith, J", "s@x.test"), Address("", "t@x.test")]


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
