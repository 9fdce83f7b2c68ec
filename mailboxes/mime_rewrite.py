"""The HTML parts of a caller's own MIME message rewritten, every other byte left as it was.

A raw message (``submit`` with ``raw``) is the caller's: its headers, its other parts, their
encodings and boundaries are sent exactly as given. Open and click tracking (EmailEngine tracks
raw messages too, ``lib/add-trackers.js``) needs only the ``text/html`` bodies changed, so this
walks the MIME tree over the bytes themselves, not through a parse-and-serialize round trip that
would refold headers and re-encode parts: each ``text/html`` leaf that is not an attachment is
decoded (its transfer encoding, its charset), given to ``rewrite``, and encoded back the same
way. Only when the new text has a line a 7bit or 8bit part may not carry (over 998 octets, as
long tracking links make) does that part become quoted-printable, its
``Content-Transfer-Encoding`` field changed with it.

A part this cannot read (an unknown charset, bytes its charset does not decode, a multipart
without a boundary, nesting past ``MAX_DEPTH``) is left untouched: the message goes out as the
caller wrote it, untracked there. Attached messages (``message/rfc822``) are not the sender's
HTML and are never rewritten. Pure: bytes in, bytes out.
"""

from __future__ import annotations

import base64
import binascii
import quopri
import re
from collections.abc import Callable
from email import policy
from email.parser import BytesParser

MAX_DEPTH = 20  # multipart nesting followed; deeper parts are left as they are
MAX_LINE = 998  # RFC 5322 2.1.1: octets a line may hold, CRLF excluded
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_CTE_FIELD = re.compile(rb"^content-transfer-encoding[ \t]*:.*(?:\r?\n[ \t].*)*\r?\n",
                        re.IGNORECASE | re.MULTILINE)

Rewrite = Callable[[str], str]


def rewrite_html(raw: bytes, rewrite: Rewrite) -> bytes:
    """``raw`` with each HTML body (not an attachment) replaced by ``rewrite(html)``."""
    return _entity(raw, rewrite, 0)


def _entity(raw: bytes, rewrite: Rewrite, depth: int) -> bytes:
    end = _HEADER_END.search(raw)
    if end is None or raw.startswith((b"\r\n", b"\n")):  # no body, or no header (text/plain)
        return raw
    head, body = raw[:end.end()], raw[end.end():]
    fields = BytesParser(policy=policy.compat32).parsebytes(head, headersonly=True)
    kind = fields.get_content_type()
    if kind.startswith("multipart/"):
        boundary = fields.get_boundary()
        if not boundary or depth >= MAX_DEPTH:
            return raw
        return head + _multipart(body, boundary.encode("ascii", "replace"), rewrite, depth)
    if kind != "text/html" or fields.get_content_disposition() == "attachment":
        return raw
    changed = _html_body(fields, head, body, rewrite)
    return raw if changed is None else changed[0] + changed[1]


def _multipart(body: bytes, boundary: bytes, rewrite: Rewrite, depth: int) -> bytes:
    """``body`` with each part between its delimiter lines rewritten; the delimiters, the
    preamble and the epilogue as they were."""
    delimiter = re.compile(rb"(?:^|\r?\n)--" + re.escape(boundary) + rb"(--)?[ \t]*(?:\r?\n|$)")
    pieces, start = [], None
    position = 0
    for match in delimiter.finditer(body):
        if start is not None:
            part = body[start:match.start()]
            pieces.append(body[position:start])
            pieces.append(_entity(part, rewrite, depth + 1))
            position = match.start()
        if match.group(1):  # the close delimiter: the rest is the epilogue
            start = None
            break
        start = match.end()
    if start is not None:  # no close delimiter: the last part runs to the end
        pieces.append(body[position:start])
        pieces.append(_entity(body[start:], rewrite, depth + 1))
        position = len(body)
    pieces.append(body[position:])
    return b"".join(pieces)


def _html_body(fields, head: bytes, body: bytes, rewrite: Rewrite) -> tuple[bytes, bytes] | None:
    """The part's head and body after ``rewrite``, or None to leave the part as it is. The
    text is given to ``rewrite`` with LF line ends and goes back with CRLF."""
    encoding = str(fields.get("Content-Transfer-Encoding") or "7bit").strip().lower()
    charset = fields.get_content_charset() or "us-ascii"
    try:
        if "\n".encode(charset) != b"\n":  # UTF-16 and the like: lines are not bytes
            return None
        octets = _decoded(body, encoding)
        if octets is None:
            return None
        text = octets.decode(charset).replace("\r\n", "\n")
        new = rewrite(text)
        if new == text:
            return None
        lines = new.encode(charset)
    except (LookupError, UnicodeError, ValueError, binascii.Error):
        return None
    if encoding == "base64":
        return head, base64.encodebytes(lines.replace(b"\n", b"\r\n")).replace(b"\n", b"\r\n")
    if encoding == "quoted-printable":
        return head, _quoted_printable(lines)
    fits = all(len(line) <= MAX_LINE for line in lines.split(b"\n"))
    if fits and (encoding != "7bit" or lines.isascii()):
        return head, lines.replace(b"\n", b"\r\n")
    return _with_encoding(head, b"quoted-printable"), _quoted_printable(lines)


def _decoded(body: bytes, encoding: str) -> bytes | None:
    if encoding == "base64":
        return base64.b64decode(b"".join(body.split()), validate=True)
    if encoding == "quoted-printable":
        return quopri.decodestring(body.replace(b"\r\n", b"\n"))
    if encoding in ("7bit", "8bit", "binary"):
        return body
    return None  # an encoding we do not know: not ours to touch


def _quoted_printable(octets: bytes) -> bytes:
    """Quoted-printable with CRLF line ends (``quopri`` writes LF; a CR of the text goes as
    ``=0D``)."""
    return quopri.encodestring(octets).replace(b"\n", b"\r\n")


def _with_encoding(head: bytes, encoding: bytes) -> bytes:
    """``head`` whose ``Content-Transfer-Encoding`` says ``encoding``: the field replaced where
    it was, else added last."""
    field = b"Content-Transfer-Encoding: " + encoding + b"\r\n"
    if _CTE_FIELD.search(head):
        return _CTE_FIELD.sub(lambda _: field, head, count=1)
    fields_end = _HEADER_END.search(head).start()
    return head[:fields_end] + b"\r\n" + field + b"\r\n"
