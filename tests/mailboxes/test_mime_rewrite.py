"""A raw message's HTML parts rewritten and nothing else (``mailboxes.mime_rewrite``): what
open and click tracking of a raw send stands on. Every message here is parsed back by the
email package to check what a mail client would read."""

from __future__ import annotations

import base64
import email
import quopri
import random
from email import policy

import pytest

from mailboxes.mime_rewrite import MAX_LINE, rewrite_html


def tag(html: str) -> str:
    return html.replace("</p>", "</p><!--seen-->")


def html_of(raw: bytes) -> list[str]:
    message = email.message_from_bytes(raw, policy=policy.default)
    return [part.get_content() for part in message.walk()
            if part.get_content_type() == "text/html"
            and part.get_content_disposition() != "attachment"]


HEAD = b"From: a@example.test\r\nTo: b@example.test\r\nSubject: Hi\r\nMIME-Version: 1.0\r\n"


def test_a_single_html_body_is_rewritten_and_the_headers_kept_byte_for_byte():
    raw = HEAD + b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>Hello</p>\r\n"
    out = rewrite_html(raw, tag)
    assert out == HEAD + (b"Content-Type: text/html; charset=utf-8\r\n\r\n"
                          b"<p>Hello</p><!--seen-->\r\n")


def test_nothing_to_change_gives_the_same_bytes():
    raw = HEAD + b"Content-Type: text/html\r\n\r\n<b>no paragraph</b>\r\n"
    assert rewrite_html(raw, tag) is raw
    plain = HEAD + b"\r\n<p>text/plain by default</p>\r\n"
    assert rewrite_html(plain, tag) == plain


def alternative(html_part: bytes, epilogue: bytes = b"") -> bytes:
    return (HEAD + b'Content-Type: multipart/alternative; boundary="b1"\r\n\r\n'
            b"This is a preamble.\r\n"
            b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n<p>plain stays</p>\r\n"
            b"--b1\r\n" + html_part + b"\r\n--b1--\r\n" + epilogue)


@pytest.mark.parametrize("encoding, body", [
    (b"quoted-printable", quopri.encodestring("<p>Grüße</p>\n".encode()).replace(b"\n", b"\r\n")),
    (b"base64", base64.encodebytes("<p>Grüße</p>\r\n".encode()).replace(b"\n", b"\r\n")),
    (b"8bit", "<p>Grüße</p>\r\n".encode()),
])
def test_each_transfer_encoding_is_read_and_written_back_the_same_way(encoding, body):
    part = (b"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: " + encoding
            + b"\r\n\r\n" + body)
    raw = alternative(part, epilogue=b"epilogue\r\n")
    out = rewrite_html(raw, tag)
    assert [h.replace("\r\n", "\n").strip() for h in html_of(out)] == ["<p>Grüße</p><!--seen-->"]
    message = email.message_from_bytes(out, policy=policy.default)
    [html_part] = [p for p in message.walk() if p.get_content_type() == "text/html"]
    assert html_part["Content-Transfer-Encoding"] == encoding.decode()
    assert out.startswith(raw.split(b"--b1\r\nContent-Type: text/html")[0])
    assert out.endswith(b"\r\n--b1--\r\nepilogue\r\n")
    assert b"<p>plain stays</p>" in out
    assert b"plain stays</p><!--seen-->" not in out


def test_an_html_attachment_and_an_attached_message_are_left_alone():
    attachment = (b"Content-Type: text/html\r\nContent-Disposition: attachment; "
                  b'filename="page.html"\r\n\r\n<p>attached</p>')
    forwarded = (b"Content-Type: message/rfc822\r\n\r\n" + HEAD
                 + b"Content-Type: text/html\r\n\r\n<p>forwarded</p>")
    raw = (HEAD + b'Content-Type: multipart/mixed; boundary="m"\r\n\r\n'
           b"--m\r\nContent-Type: text/html\r\n\r\n<p>mine</p>\r\n"
           b"--m\r\n" + attachment + b"\r\n--m\r\n" + forwarded + b"\r\n--m--\r\n")
    out = rewrite_html(raw, tag)
    assert out == raw.replace(b"<p>mine</p>", b"<p>mine</p><!--seen-->")


def test_nested_multiparts_are_followed():
    raw = (HEAD + b'Content-Type: multipart/mixed; boundary="outer"\r\n\r\n'
           b'--outer\r\nContent-Type: multipart/related; boundary="inner"\r\n\r\n'
           b"--inner\r\nContent-Type: text/html\r\n\r\n<p>deep</p>\r\n--inner--\r\n"
           b"\r\n--outer--\r\n")
    assert rewrite_html(raw, tag) == raw.replace(b"<p>deep</p>", b"<p>deep</p><!--seen-->")


def test_a_line_too_long_for_7bit_makes_the_part_quoted_printable():
    part = b"Content-Type: text/html\r\nContent-Transfer-Encoding: 7bit\r\n\r\n<p>x</p>"
    raw = alternative(part)
    out = rewrite_html(raw, lambda html: html.replace("x", "y" * 3000))
    assert all(len(line) <= MAX_LINE for line in out.split(b"\r\n"))
    assert html_of(out) == ["<p>" + "y" * 3000 + "</p>"]
    assert b"Content-Transfer-Encoding: quoted-printable\r\n" in out
    assert b"Content-Transfer-Encoding: 7bit" not in out
    without_field = alternative(b"Content-Type: text/html\r\n\r\n<p>x</p>")
    out = rewrite_html(without_field, lambda html: html.replace("x", "y" * 3000))
    assert html_of(out) == ["<p>" + "y" * 3000 + "</p>"]


@pytest.mark.parametrize("part", [
    b"Content-Type: text/html; charset=x-no-such-charset\r\n\r\n<p>x</p>",
    b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>\xff\xfe</p>",
    b"Content-Type: text/html; charset=utf-16\r\n\r\n" + "<p>x</p>".encode("utf-16"),
    b"Content-Type: text/html\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n<p>x</p>",
    b"Content-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n!!not base64!!",
])
def test_a_part_it_cannot_read_is_sent_as_it_was(part):
    raw = alternative(part)
    assert rewrite_html(raw, tag) == raw


def test_a_multipart_without_its_close_delimiter_still_has_its_parts_read():
    raw = (HEAD + b'Content-Type: multipart/alternative; boundary="b"\r\n\r\n'
           b"--b\r\nContent-Type: text/html\r\n\r\n<p>cut</p>\r\n")
    assert rewrite_html(raw, tag) == raw.replace(b"<p>cut</p>", b"<p>cut</p><!--seen-->")


@pytest.mark.parametrize(("levels", "followed"), [(5, True), (40, False)])
def test_nesting_past_the_bound_is_left_alone(levels, followed):
    raw = b"Content-Type: text/html\r\n\r\n<p>deepest</p>"
    for level in range(levels):
        raw = (f'Content-Type: multipart/mixed; boundary="n{level}"\r\n\r\n--n{level}\r\n'
               .encode() + raw + f"\r\n--n{level}--\r\n".encode())
    raw = HEAD + raw
    expected = raw.replace(b"<p>deepest</p>", b"<p>deepest</p><!--seen-->") if followed else raw
    assert rewrite_html(raw, tag) == expected


def test_a_header_with_8bit_bytes_is_read_as_an_unknown_encoding():
    # The email package hands such a field back as a Header object, not a str.
    raw = alternative(b"Content-Type: text/html\r\nContent-Transfer-Encoding: quo\xc7ted\r\n\r\n"
                      b"<p>x</p>")
    assert rewrite_html(raw, tag) == raw


def test_mangled_messages_never_raise():
    """A sender's raw message is anything: mangle one a few thousand ways (seeded, so a
    failure repeats) and rewrite each."""
    base = alternative(b"Content-Type: text/html; charset=iso-8859-1\r\n"
                       b"Content-Transfer-Encoding: quoted-printable\r\n\r\n<p>Gr=FC=DFe</p>")
    pieces = [b"\r\n", b"--b1", b"--", b'Content-Type: multipart/mixed; boundary="b1"\r\n',
              b"charset=", b"=", b"\x00", b"\xff", b"base64", b"text/html", b";", b'"',
              b"\r\n\r\n", b"Content-Transfer-Encoding: base64\r\n", b'boundary="\xc3\xa9"']
    chance = random.Random(19)
    for _ in range(3000):
        data = bytearray(base)
        for _ in range(chance.randint(1, 6)):
            at = chance.randint(0, len(data))
            roll = chance.random()
            if roll < 0.4:
                data[at:at] = chance.choice(pieces)
            elif roll < 0.7:
                del data[at:at + chance.randint(1, 10)]
            else:
                data[at:at] = bytes([chance.randint(0, 255)])
        assert isinstance(rewrite_html(bytes(data), tag), bytes)
