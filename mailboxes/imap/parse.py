"""Fast, forgiving parsing of IMAP FETCH responses into ``MessageMeta`` values.

Why not imapclient's parser: it lexes character by character in Python and builds rich objects
for every item, which makes indexing a large folder CPU-bound (seconds per 10,000 messages). Here
one pass in C (``_tokens.pyx``, compiled by ``make``) splits a response into tokens and builds the
nested lists; only the items indexing needs are then interpreted. ``python_parse_tokens``, a
compiled regex and a short loop, is the reference it is tested against and the fallback where
it was not built. ``make`` compiles this module too (Cython, the source as it is): plain Python
that must also run uncompiled (``mailboxes/imap/__init__.py``).

Why forgiving: real mail is full of broken headers (unknown charsets, raw 8-bit bytes, garbage
dates) and an index run must not stop at one bad message. Every public function here returns a
best-effort value instead of raising on malformed input.

Data model of a parsed response: an atom or string is ``bytes``, ``NIL`` is ``None``, a
parenthesised list is a ``list``; literals (``{n}``, ``{n+}``, ``~{n}``) are passed separately, as
imaplib delivers them, and stand in the text only as their ``{n}`` marker.

No Django here, and no I/O: see ``fetch.py`` for the commands.
"""

from __future__ import annotations

import binascii
import codecs
import email.utils
import mimetypes
import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any
from urllib.parse import unquote_to_bytes

from emailapi.lib.storable import whole_characters

from .types import Address, FlagChange, MessageMeta, Part

__all__ = [
    "parse_tokens",
    "parse_fetch",
    "imaplib_responses",
    "wire_responses",
    "literal_size",
    "message_meta",
    "as_int",
    "flag_change",
    "header_addresses",
    "ENVELOPE_HEADERS",
    "parse_bodystructure",
    "decode_header",
    "decode_bytes",
    "decode_charset",
    "text_codec",
    "decode_mailbox_name",
    "parse_date",
    "parse_internaldate",
    "normalize_message_id",
    "message_id_list",
    "SequenceSet",
    "expand_sequence_set",
]

# -- tokenizer -------------------------------------------------------------------------------

# One token: a paren, a quoted string (with \" and \\ escapes), a literal marker, or an atom.
# Atoms may carry a bracketed section with spaces and parens, e.g. BODY[HEADER.FIELDS (X)]<0>.
_TOKEN = re.compile(
    rb"""
      "[^"\\]*(?:\\.[^"\\]*)*"                 # quoted string, \" and \\ escapes
    | [()]
    | ~?\{\d+\+?\}                            # literal marker: {n}, {n+}, ~{n}
    | (?:[^\s()"{\[]|\[[^\]\r\n]*\])            # atom, possibly with [sections (a b)]
      [^\s()"{\[]*(?:\[[^\]\r\n]*\][^\s()"{\[]*)*
    """,
    re.S | re.X,
)
_UNESCAPE = re.compile(rb"\\(.)", re.S)
_OPEN, _CLOSE, _QUOTE, _BRACE, _TILDE = 40, 41, 34, 123, 126


def python_parse_tokens(text: bytes, literals: Sequence[bytes] = ()) -> list[Any]:
    """Parse IMAP response text into nested lists (see the module docstring for the model).

    Unbalanced parentheses are tolerated: a stray ``)`` is ignored, unclosed lists end at the end.
    A literal marker takes the next element of *literals* (``b""`` when they run out).
    """
    root: list[Any] = []
    current = root
    stack: list[list[Any]] = []
    pending = iter(literals)
    for token in _TOKEN.findall(text):
        first = token[0]
        if first == _OPEN:
            child: list[Any] = []
            current.append(child)
            stack.append(current)
            current = child
        elif first == _CLOSE:
            if stack:
                current = stack.pop()
        elif first == _QUOTE:
            token = token[1:-1]
            if b"\\" in token:
                token = _UNESCAPE.sub(rb"\1", token)
            current.append(token)
        elif first == _BRACE or (first == _TILDE and token[1:2] == b"{"):
            current.append(next(pending, b""))
        elif token == b"NIL":
            current.append(None)
        else:
            current.append(token)
    return root


try:  # the same tokens, in C: about a fifth of the time (built by `make`, see _tokens.pyx)
    from ._tokens import parse_tokens
except ImportError:
    parse_tokens = python_parse_tokens


def parse_fetch(text: bytes, literals: Sequence[bytes] = ()) -> tuple[int | None, dict[str, Any]]:
    """``(sequence number, items)`` of one FETCH response.

    *text* is the wire form ``* 12 FETCH (UID 7 ...)`` or imaplib's ``12 (UID 7 ...)``. Item names
    are upper-cased str (``"UID"``, ``"BODY[HEADER.FIELDS (REFERENCES)]"``); values are raw.
    """
    seq: int | None = None
    body: list[Any] | None = None
    for element in parse_tokens(text, literals):
        if isinstance(element, list):
            body = element
            break
        if seq is None and isinstance(element, bytes) and element.isdigit():
            seq = int(element)
    items: dict[str, Any] = {}
    if body:
        for index in range(0, len(body) - 1, 2):
            key = body[index]
            if isinstance(key, bytes):
                items[key.upper().decode("ascii", "replace")] = body[index + 1]
    return seq, items


def literal_size(line: bytes) -> int | None:
    """The size of the literal announced at the end of *line* (``{n}``, ``{n+}``, ``~{n}``)."""
    if not line.endswith(b"}"):
        return None
    start = line.rfind(b"{")
    digits = line[start + 1 : -1].rstrip(b"+") if start >= 0 else b""
    return int(digits) if digits.isdigit() else None


def imaplib_responses(data: Iterable[Any]) -> Iterator[tuple[bytes, list[bytes]]]:
    """Regroup imaplib's response list into ``(text, literals)``, one per response.

    imaplib stores a response with literals as ``(text_before, literal)`` tuples followed by the
    trailing text as plain bytes, so a plain-bytes element ends each response.
    """
    texts: list[bytes] = []
    literals: list[bytes] = []
    for element in data:
        if isinstance(element, tuple):
            texts.append(element[0])
            literals.append(element[1])
        elif isinstance(element, bytes):
            texts.append(element)
            yield b" ".join(texts), literals
            texts, literals = [], []
    if texts:
        yield b" ".join(texts), literals


def wire_responses(raw: bytes) -> Iterator[tuple[bytes, list[bytes]]]:
    """Split raw server bytes (CRLF lines, literals inline) into ``(text, literals)`` responses."""
    pos, end = 0, len(raw)
    while pos < end:
        texts: list[bytes] = []
        literals: list[bytes] = []
        while True:
            eol = raw.find(b"\r\n", pos)
            line, pos = (raw[pos:], end) if eol < 0 else (raw[pos:eol], eol + 2)
            texts.append(line)
            size = literal_size(line)
            if size is None or pos >= end:
                break
            literals.append(raw[pos : pos + size])
            pos += size
        yield b" ".join(texts), literals


# -- scalar helpers --------------------------------------------------------------------------


def as_int(value: Any) -> int | None:
    """A number item (``b"42"``, or ``[b"42"]`` as in ``MODSEQ (42)``); ``None`` otherwise."""
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, bytes) and value.isdigit():
        return int(value)
    return None


def _lower(value: Any) -> str | None:
    """A BODYSTRUCTURE type, subtype, transfer encoding or disposition, lower-cased; ``None``
    when it is missing or not an RFC 2045 token: a server's (or a sender's, through it) control
    characters, spaces or a CR LF sent in a literal are no media type, and a type goes out as
    a download's Content-Type header (which a CR LF would split, and Django refuses: a 500)."""
    if isinstance(value, bytes) and value and _MIME_TOKEN.fullmatch(value):
        return value.decode("ascii").lower()
    return None


def _atom(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, bytes) and value:
        return value.decode("ascii", "replace")
    return None


def _get(node: Sequence[Any], index: int) -> Any:
    return node[index] if len(node) > index else None


# -- text decoding ---------------------------------------------------------------------------

_FOLD = re.compile(rb"\r?\n(?=[ \t])")
_NEWLINE = re.compile(rb"[\r\n]+")
_ENCODED_WORD = re.compile(rb"=\?([^?\s]*)\?([QqBb])\?([^?]*)\?=")
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")
# An RFC 2045 token: printable ASCII but space and tspecials.
_MIME_TOKEN = re.compile(rb"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+")

# Labels mailers use that Python lacks or maps to a narrower table than mail really uses
# (shared by header decoding here and body decoding in ``parts``).
MAIL_CHARSET_ALIASES = {
    "iso-8859-1": "cp1252",  # what every browser and mailer does (WHATWG)
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "iso-8859-8-i": "iso-8859-8",
    "shift-jis": "cp932",
    "shift_jis": "cp932",
    "x-sjis": "cp932",
    "windows-874": "cp874",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
    "utf8": "utf-8",
}

# Labels that Python does not know, or knows by a narrower table than mailers really use.
_CHARSET_ALIASES = {
    "": None,
    "ascii": None,  # mailers label UTF-8 or Latin-1 text "us-ascii": sniff instead
    "us-ascii": None,
    "x-unknown": None,
    "unknown": None,
    "unknown-8bit": None,
    "x-user-defined": None,
    "default": None,
    **MAIL_CHARSET_ALIASES,
}


def decode_bytes(data: bytes) -> str:
    """Undeclared 8-bit text: UTF-8 when valid, else Windows-1252, else Latin-1."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


# Codecs that are not charsets (or never decode anything) although Python calls them text
# codecs, by the names ``codecs.lookup`` gives them: a sender's ``=?unicode_escape?q?=5Cx00?=``
# or ``charset=unicode_escape`` must not run Python's escape decoder on mail.
_NOT_CHARSETS = frozenset({
    "undefined", "idna", "punycode", "unicode-escape", "raw-unicode-escape", "mbcs", "oem",
})


def text_codec(name: str) -> str | None:
    """The Python codec a (lower-cased, de-aliased) charset *name* names, or None when Python
    has none or only one that is no charset ("base64", "zlib", "rot13", "unicode_escape"...).
    The one rule for headers here and bodies in ``parts``, which differ only in their aliases
    and in what stands for "none"."""
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError, TypeError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_CHARSETS:
        return None
    return info.name


@lru_cache(maxsize=512)
def _codec(charset: str) -> str | None:
    name = charset.strip().strip("\"'").lower()
    name = _CHARSET_ALIASES.get(name, name)
    return text_codec(name) if name else None


def decode_charset(data: bytes, charset: str | bytes | None) -> str:
    """Decode *data* in a declared *charset*, tolerating unknown labels and mislabelled bytes
    (and never answering a lone surrogate: ``storable.whole_characters``)."""
    if isinstance(charset, bytes):
        charset = charset.decode("ascii", "replace")
    codec = _codec(charset) if charset else None
    if codec is None:
        return decode_bytes(data)
    try:
        return whole_characters(data.decode(codec))
    except UnicodeDecodeError:
        if codec != "utf-8":  # mislabelled UTF-8 is usually Latin-1: sniff instead
            try:
                return whole_characters(data.decode(codec, "replace"))
            except UnicodeError:
                pass
    except UnicodeError:
        pass
    return decode_bytes(data)


def _b_decode(text: bytes) -> bytes:
    text = _NOT_BASE64.sub(b"", text)
    if len(text) % 4 == 1:
        text = text[:-1]
    try:
        return binascii.a2b_base64(text + b"=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return b""


def _word_bytes(encoding: bytes, text: bytes) -> bytes:
    if encoding in (b"B", b"b"):
        return _b_decode(text)
    return binascii.a2b_qp(text, header=True)


def _unfold(value: bytes) -> bytes:
    return _NEWLINE.sub(b"", _FOLD.sub(b"", value))


def decode_header(value: Any) -> str:
    """Decode a header value: RFC 2047 encoded-words (B and Q) and raw 8-bit bytes.

    Whitespace between adjacent encoded-words is dropped and adjacent words in one charset are
    joined before decoding, so a multi-byte character split across two words survives.
    """
    if not isinstance(value, bytes) or not value:
        return ""
    if value.isascii() and b"=?" not in value and b"\n" not in value and b"\r" not in value:
        return value.decode("ascii")
    if b"\n" in value or b"\r" in value:
        value = _unfold(value)
    if b"=?" not in value:
        return decode_bytes(value)
    out: list[str] = []
    run: list[bytes] = []
    run_charset = b""
    pos = 0
    for match in _ENCODED_WORD.finditer(value):
        gap = value[pos : match.start()]
        if gap and not (run and gap.isspace()):
            _flush_words(out, run, run_charset)
            out.append(decode_bytes(gap))
        charset = match.group(1).split(b"*", 1)[0].lower()
        if run and charset != run_charset:
            _flush_words(out, run, run_charset)
        run_charset = charset
        run.append(_word_bytes(match.group(2), match.group(3)))
        pos = match.end()
    _flush_words(out, run, run_charset)
    if pos < len(value):
        out.append(decode_bytes(value[pos:]))
    return "".join(out)


def _flush_words(out: list[str], run: list[bytes], charset: bytes) -> None:
    if run:
        out.append(decode_charset(b"".join(run), charset))
        run.clear()


_MODIFIED_BASE64 = re.compile(rb"&([A-Za-z0-9+,]*)-")


def decode_mailbox_name(value: bytes) -> str:
    """Decode a mailbox name or Gmail label (RFC 3501 modified UTF-7; UTF-8 if the server sent it)."""
    if b"&" not in value:
        return decode_bytes(value)

    def replace(match: re.Match[bytes]) -> bytes:
        text = match.group(1)
        if not text:
            return b"&"
        text = text.replace(b",", b"/")
        try:
            raw = binascii.a2b_base64(text + b"=" * (-len(text) % 4))
            return raw.decode("utf-16-be").encode("utf-8")
        except (binascii.Error, ValueError):
            return match.group(0)

    return decode_bytes(_MODIFIED_BASE64.sub(replace, value))


# -- dates -----------------------------------------------------------------------------------

_MONTHS = {
    name: number
    for number, name in enumerate(
        (b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov", b"dec"),
        start=1,
    )
}
# The common RFC 5322 shape, optional weekday, numeric zone: "Mon, 4 Mar 2024 09:30:00 +0000".
_DATE = re.compile(
    rb"\s*(?:[A-Za-z]+,?\s*)?(\d{1,2})\s+([A-Za-z]{3})[A-Za-z]*\.?\s+(\d{4})\s+"
    rb"(\d{1,2}):(\d{1,2})(?::(\d{1,2}))?\s*([+-])(\d\d)(\d\d)(?:\s|$|\()"
)
_INTERNALDATE = re.compile(
    rb"\s*(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d{1,2}):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)"
)


@lru_cache(maxsize=256)
def _zone(minutes: int) -> timezone:
    return timezone.utc if minutes == 0 else timezone(timedelta(minutes=minutes))


# A Date's year must leave room for its offset: in year 1 or 9999 an offset can put the instant
# outside what a datetime holds (``Mon, 1 Jan 0001 00:00:00 +1400``), and converting it to UTC
# (the API's timestamps, PostgreSQL's reads) raised OverflowError: the message's new-mail event
# failed its folder's sync on every retry. No real mail is dated there (``_headers._aware``
# keeps the same bound).
_YEARS = range(2, 9999)


def _aware(parts: Sequence[bytes], sign: bytes, hours: bytes, minutes: bytes) -> datetime | None:
    """A datetime from (day, month name, year, hour, minute, second) and a +hhmm offset."""
    month = _MONTHS.get(parts[1].lower())
    if month is None or int(parts[2]) not in _YEARS:
        return None
    offset = int(hours) * 60 + int(minutes)
    if offset >= 24 * 60:
        offset = 0
    try:
        return datetime(
            int(parts[2]), month, int(parts[0]), int(parts[3]), int(parts[4]),
            min(int(parts[5] or 0), 59), tzinfo=_zone(-offset if sign == b"-" else offset),
        )
    except ValueError:
        return None


def parse_date(value: Any) -> datetime | None:
    """An aware datetime from a Date header (obsolete forms too); ``None`` for garbage.

    The offset in the header is kept; unknown zones (and ``-0000``) are read as UTC.
    """
    if isinstance(value, bytes):
        match = _DATE.match(value)
        if match:
            groups = match.groups()
            return _aware(groups[:6], groups[6], groups[7], groups[8])
        value = value.decode("latin-1")
    if not isinstance(value, str) or not value.strip():
        return None
    return _parse_date_slow(value)


def _parse_date_slow(text: str) -> datetime | None:
    try:
        parsed = email.utils.parsedate_tz(text)
    except (TypeError, ValueError, IndexError):
        parsed = None
    if parsed is None:
        try:
            result = datetime.fromisoformat(text.strip())
        except ValueError:
            return None
        if result.year not in _YEARS:
            return None
        return result if result.tzinfo else result.replace(tzinfo=timezone.utc)
    if parsed[0] not in _YEARS:
        return None
    offset = parsed[9] or 0
    if abs(offset) >= 86400:
        offset = 0
    try:
        return datetime(*parsed[:5], min(parsed[5], 59), tzinfo=_zone(offset // 60))
    except (ValueError, TypeError, OverflowError):
        return None


def parse_internaldate(value: Any) -> datetime | None:
    """INTERNALDATE (``"17-Jul-1996 02:44:25 -0700"``) as an aware UTC datetime."""
    if not isinstance(value, bytes):
        return None
    match = _INTERNALDATE.match(value)
    if not match:
        return None
    groups = match.groups()
    result = _aware(groups[:6], groups[6], groups[7], groups[8])
    try:
        return result.astimezone(timezone.utc) if result else None
    except OverflowError:  # year 1 with a positive offset
        return None


# -- message ids -----------------------------------------------------------------------------

_MESSAGE_ID = re.compile(rb"<[^<>]*>")
_SPACE = re.compile(rb"\s+")


def normalize_message_id(value: Any) -> str | None:
    """The first ``<id>`` in a header value, angle brackets kept; else the stripped text."""
    if not isinstance(value, bytes):
        return None
    match = _MESSAGE_ID.search(value)
    text = _SPACE.sub(b"", match.group(0) if match else value)
    return decode_bytes(text) if text and text != b"<>" else None


def message_id_list(value: Any) -> list[str]:
    """All message ids of a References / In-Reply-To value, in order, without duplicates."""
    if not isinstance(value, bytes):
        return []
    found = _MESSAGE_ID.findall(value) or value.split()
    seen: dict[str, None] = {}
    for raw in found:
        text = decode_bytes(_SPACE.sub(b"", raw))
        if text and text != "<>":
            seen.setdefault(text, None)
    return list(seen)


def _header_fields(block: Any) -> dict[str, bytes]:
    """Header name (lower-case) → unfolded value, from a ``BODY[HEADER.FIELDS (...)]`` block."""
    if not isinstance(block, bytes) or b":" not in block:
        return {}
    fields: dict[str, bytes] = {}
    for line in _FOLD.sub(b"", block).split(b"\n"):
        name, colon, value = line.partition(b":")
        if colon and name.strip():
            fields.setdefault(name.strip().lower().decode("ascii", "replace"), value.strip())
    return fields


# -- envelope --------------------------------------------------------------------------------

# The header fields a message's envelope is read from (``fetch.BASE_META_ITEMS``,
# ``_header_envelope``).
ENVELOPE_HEADERS = ("date", "subject", "from", "sender", "reply-to", "to", "cc", "bcc",
                    "in-reply-to", "message-id")


# One piece of an address header but a comment (``_address_tokens``): a quoted string, an
# angle address, a separator, or a run of anything else.
_ADDRESS_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|<[^>]*>?|[,:;]|[^",:;<(]+', re.S)


def _address_tokens(text: str) -> list[str]:
    """The pieces of an address header (``_ADDRESS_TOKEN``), each comment one piece with the
    comments nested in it (RFC 5322: ``a@b (Name (team) here)`` is named ``Name (team)
    here``, as Dovecot reads it); a backslash escapes any character, and an unclosed comment
    runs to the end."""
    tokens = []
    start, n = 0, len(text)
    while start < n:
        if text[start] == "(":
            end, depth = start + 1, 1
            while end < n and depth:
                if text[end] == "\\":
                    end += 1
                elif text[end] == "(":
                    depth += 1
                elif text[end] == ")":
                    depth -= 1
                end += 1
            end = min(end, n)
        else:
            end = _ADDRESS_TOKEN.match(text, start).end()
        tokens.append(text[start:end])
        start = end
    return tokens


def header_addresses(value: bytes) -> list[Address]:
    """The addresses of a raw address header, read as mail clients read it (nodemailer's
    addressparser): split at commas outside quotes, comments and angle brackets; in each, the
    angle address (or else the word with an ``@``) is the address and the rest the name
    (a comment when there is nothing else), RFC 2047 and 8-bit names decoded. Groups give
    their members; an empty group (``undisclosed-recipients:;``, also inside angle brackets)
    gives nothing."""
    text = decode_bytes(_unfold(value))
    result: list[Address] = []
    current: list[str] = []
    for token in _address_tokens(text):
        if token == ",":
            _add_header_address(current, result)
            current = []
        elif token == ":" and not any(piece.startswith("<") for piece in current):
            current = []  # a group's name
        elif token == ";":
            _add_header_address(current, result)
            current = []
        else:
            current.append(token)
    _add_header_address(current, result)
    return result


def _add_header_address(tokens: list[str], result: list[Address]) -> None:
    angle = [token for token in tokens if token.startswith("<")]
    comments = [token[1:].removesuffix(")").strip() for token in tokens if token.startswith("(")]
    words = [token for token in tokens if not token.startswith(("<", "("))]
    if angle:
        address = angle[-1][1:].removesuffix(">").strip()
        if ":" in address and (address.endswith(";") or "@" not in address.partition(":")[2]):
            return  # a group inside angle brackets: <Undisclosed-Recipient:@host;>
        address = address.rpartition(":")[2].strip()  # an obsolete route: <@a,@b:x@y>
        name = " ".join(_unquote(word) for word in words).strip()
    else:
        pieces = [piece for word in words for piece in
                  ([word] if word.startswith('"') else word.split())]
        at = next((i for i in range(len(pieces) - 1, -1, -1) if "@" in pieces[i]
                   and not pieces[i].startswith('"')), None)
        if at is None:
            if len(pieces) == 1 and not pieces[0].startswith('"'):
                address, name = pieces[0], ""  # a bare local part
            else:
                address, name = "", " ".join(_unquote(piece) for piece in pieces)
        else:
            address = pieces[at]
            name = " ".join(_unquote(piece) for piece in pieces[:at] + pieces[at + 1:])
    name = name.strip() or " ".join(comment for comment in comments if comment)
    if address or name:
        result.append(Address(decode_header(name.encode("utf-8")) if name else "",
                              address.strip()))


def _unquote(word: str) -> str:
    word = word.strip()
    if word.startswith('"'):
        return re.sub(r"\\(.)", r"\1", word[1:].removesuffix('"'))
    return word


def _header_envelope(headers: Mapping[str, bytes]) -> dict[str, Any]:
    """The envelope's fields read from the header fields (``ENVELOPE_HEADERS``) as a server
    builds its ENVELOPE: each value the first of its name, the subject's white space made one
    space a run as Dovecot sends it (``subject_for_humans``), the addresses read as mail
    clients read them (``header_addresses``), Sender and Reply-To the From addresses where
    there is no such header (RFC 3501; an empty one stays empty, as in Dovecot's).

    Why not the server's ENVELOPE: it costs Dovecot about 11 % of its CPU for the engine's
    FETCH and a quarter of the bytes this process reads and tokenizes, for fields the header
    block carries anyway; and the server's parser loses or mangles some addresses (a
    placeholder for a missing domain, ``Mikel@Lindsaar <a@b>`` read as one address).
    ``tests/mailboxes/test_imap_envelope_headers.py`` holds the two readings equal against
    Dovecot and lists where they part."""
    raw_from = headers.get("from")
    parsed_from = header_addresses(raw_from) if raw_from is not None else []
    return {
        "date": parse_date(headers.get("date")),
        "subject": decode_header(subject_for_humans(headers.get("subject"))),
        "from_": parsed_from,
        "sender": _or_from(headers.get("sender"), parsed_from),
        "reply_to": _or_from(headers.get("reply-to"), parsed_from),
        "to": _header_list(headers.get("to")),
        "cc": _header_list(headers.get("cc")),
        "bcc": _header_list(headers.get("bcc")),
        "in_reply_to": normalize_message_id(headers.get("in-reply-to")),
        "message_id": normalize_message_id(headers.get("message-id")),
    }


def _header_list(value: bytes | None) -> list[Address]:
    return header_addresses(value) if value is not None else []


def _or_from(value: bytes | None, parsed_from: list[Address]) -> list[Address]:
    if value is None:
        return [Address(address.name, address.address) for address in parsed_from]
    return header_addresses(value)


_LWSP = re.compile(rb"[ \t\r\n]+")


def subject_for_humans(value: bytes | None) -> bytes | None:
    """A raw Subject as Dovecot puts it in an ENVELOPE (``imap_append_string_for_humans``):
    each run of spaces, tabs and line ends one space, none at either end. Folded subjects are
    common, and a tab fold would otherwise show."""
    if value is None:
        return None
    return _LWSP.sub(b" ", value).strip(b" ")


# -- bodystructure ---------------------------------------------------------------------------

_BODY_TEXT_TYPES = ("text/plain", "text/html")
_MAX_DEPTH = 64
# Content-Transfer-Encodings of uuencoded parts (as Python's ``email`` reads them).
UU_ENCODINGS = frozenset({"x-uuencode", "uuencode", "uue", "x-uue"})
# Declared types that say nothing of a uuencoded file: its name tells its type.
_UU_GENERIC_TYPES = frozenset({
    "application/octet-stream", "text/plain", "application/x-uuencode", "text/x-uuencode",
    "application/uuencode", "application/x-uue",
})


class _Degenerate(Exception):
    """A multipart the server could not split: no usable ``boundary`` (an RFC 2231-encoded
    ``boundary*=''...``, which Dovecot does not decode, shows as one empty text part)."""


def parse_bodystructure(node: Any) -> tuple[list[Part], list[Part]]:
    """``(attachments, text_parts)`` of a BODYSTRUCTURE, with RFC 3501 part numbers.

    A text/plain or text/html leaf (``Content-Type: text`` with no subtype is text/plain, RFC
    2045) is body text unless its disposition is ``attachment`` or it is uuencoded: an
    ``inline`` one with a filename is body text, as mailparser and EmailEngine read it. Every
    other leaf is an attachment: message/* (delivery-status, rfc822-headers...), text/calendar
    (with its ``method``), text/enriched and other text/* parts, anything not text; one with a
    Content-ID and no disposition gets ``inline``. Attached messages are not descended into.

    A multipart the server could not split (see ``_Degenerate``) makes the text parts one
    ``multipart/*`` part numbered ``""``: the text is then read by parsing the source locally.
    """
    attachments: list[Part] = []
    texts: list[Part] = []
    if isinstance(node, list) and node:
        if isinstance(node[0], list):
            try:
                _walk_multipart(node, "", attachments, texts, 0, False)
            except _Degenerate as exc:
                texts = [Part(part="", content_type=f"multipart/{exc.args[0]}", size=0)]
        else:
            _leaf(node, "1", attachments, texts)
    return attachments, texts


def _walk_multipart(
    node: list[Any], prefix: str, attachments: list[Part], texts: list[Part], depth: int,
    related: bool,
) -> None:
    """*related*: the node is inside a multipart/related (its leaves are ``embedded``)."""
    if depth > _MAX_DEPTH:
        return
    position = next((i for i, item in enumerate(node) if not isinstance(item, list)), len(node))
    subtype = _lower(_get(node, position)) or "mixed"
    if _unsplit(node, position):
        raise _Degenerate(subtype)
    related = related or subtype == "related"
    number = 0
    for child in node:
        if not isinstance(child, list):
            break  # the multipart subtype follows the parts
        number += 1
        if not child:
            continue
        if isinstance(child[0], list):
            _walk_multipart(child, f"{prefix}{number}.", attachments, texts, depth + 1,
                            related)
        else:
            _leaf(child, f"{prefix}{number}", attachments, texts, related)


def _unsplit(node: list[Any], position: int) -> bool:
    """The multipart has parameters but no plain ``boundary`` among them, and one empty part:
    what a server shows for a body it could not split."""
    params = _get(node, position + 1)
    if position != 1 or not isinstance(params, list) or not isinstance(node[0], list):
        return False
    keys = {key.lower() for key in params[::2] if isinstance(key, bytes)}
    child = node[0]
    return b"boundary" not in keys and not isinstance(_get(child, 0), list) and (
        as_int(_get(child, 6)) == 0)


def _leaf(node: list[Any], number: str, attachments: list[Part], texts: list[Part],
          related: bool = False) -> None:
    main = _lower(node[0]) or "application"
    subtype = _lower(_get(node, 1)) or ("plain" if main == "text" else "octet-stream")
    content_type = f"{main}/{subtype}"
    params = _params(_get(node, 2))
    is_message = main == "message" and isinstance(_get(node, 7), list)
    extension = 10 if is_message else 8 if main == "text" else 7
    disposition, disposition_params = _disposition(_get(node, extension + 1))
    filename = disposition_params.get("filename") or params.get("name") or None
    encoding = _lower(_get(node, 5))
    uuencoded = encoding in UU_ENCODINGS
    if uuencoded and content_type in _UU_GENERIC_TYPES and filename:
        content_type = mimetypes.guess_type(filename, strict=False)[0] or content_type
    part = Part(
        part=number,
        content_type=content_type,
        size=as_int(_get(node, 6)) or 0,
        filename=filename,
        content_id=_content_id(_get(node, 3)),
        disposition=disposition,
        encoding=encoding,
        charset=(params.get("charset") or "").lower() or None,
        embedded=related,
        method=(params.get("method") or "").strip().upper() or None
        if content_type == "text/calendar" else None,
    )
    if content_type in _BODY_TEXT_TYPES and disposition != "attachment" and not uuencoded:
        texts.append(part)
        return
    if part.disposition is None and part.content_id:
        part.disposition = "inline"
    attachments.append(part)


def _content_id(value: Any) -> str | None:
    if not isinstance(value, bytes):
        return None
    text = decode_bytes(value).strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    return text or None


def _disposition(value: Any) -> tuple[str | None, dict[str, str]]:
    if isinstance(value, list) and value:
        return _lower(value[0]), _params(_get(value, 1))
    return _lower(value), {}


def _params(value: Any) -> dict[str, str]:
    """A body parameter list as a dict, RFC 2231 continuations and charsets merged and decoded."""
    if not isinstance(value, list):
        return {}
    result: dict[str, str] = {}
    extended: dict[str, list[tuple[int, bool, bytes]]] = {}
    for index in range(0, len(value) - 1, 2):
        key, raw = value[index], value[index + 1]
        if not isinstance(key, bytes) or not isinstance(raw, bytes):
            continue
        name, star, section = key.decode("ascii", "replace").lower().partition("*")
        if star:
            position = section.rstrip("*")
            encoded = section.endswith("*") or not section
            entry = (int(position) if position.isdigit() else 0, encoded, raw)
            extended.setdefault(name, []).append(entry)
        else:
            result.setdefault(name, decode_header(raw))
    for name, segments in extended.items():
        result[name] = _join_rfc2231(segments)
    return result


def _join_rfc2231(segments: list[tuple[int, bool, bytes]]) -> str:
    segments.sort(key=lambda segment: segment[0])
    charset = b""
    chunks = []
    for position, (_, encoded, raw) in enumerate(segments):
        if encoded:
            if position == 0 and raw.count(b"'") >= 2:
                charset, _language, raw = raw.split(b"'", 2)
            chunks.append(unquote_to_bytes(raw))
        else:
            chunks.append(raw)
    return decode_charset(b"".join(chunks), charset)


# -- whole responses -------------------------------------------------------------------------


def _flags(value: Any) -> tuple[str, ...]:
    """Flags as str, without ``\\Recent``: that is per-session state (the first session to see
    a message gets it), not a flag of the message, and IMAP4rev2 dropped it; keeping it would
    make the flags of one message differ from one connection to the next."""
    if not isinstance(value, list):
        return ()
    return tuple(
        flag.decode("ascii", "replace") for flag in value
        if isinstance(flag, bytes) and flag.lower() != b"\\recent"
    )


def _labels(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(decode_mailbox_name(label) for label in value if isinstance(label, bytes))


def _header_block(items: Mapping[str, Any]) -> dict[str, bytes]:
    """The fields of the first BODY[HEADER.FIELDS (...)] item (References, In-Reply-To)."""
    for key, value in items.items():
        if key.startswith("BODY[HEADER"):
            return _header_fields(value)
    return {}


def _best_effort(function: Any, value: Any, default: Any) -> Any:
    try:
        return function(value)
    except Exception:  # noqa: BLE001 - a malformed message must not stop an index run
        return default


def message_meta(items: Mapping[str, Any]) -> MessageMeta | None:
    """Build a ``MessageMeta`` from ``parse_fetch`` items; ``None`` without a UID."""
    uid = as_int(items.get("UID"))
    if uid is None:
        return None
    headers = _best_effort(_header_block, items, {})
    envelope = _best_effort(_header_envelope, headers, {})
    structure = items.get("BODYSTRUCTURE", items.get("BODY"))
    attachments, texts = _best_effort(parse_bodystructure, structure, ([], []))
    in_reply_to = envelope.get("in_reply_to")
    if in_reply_to is None and "in-reply-to" in headers:
        in_reply_to = normalize_message_id(headers["in-reply-to"])
    return MessageMeta(
        uid=uid,
        flags=_flags(items.get("FLAGS")),
        internal_date=parse_internaldate(items.get("INTERNALDATE")),
        size=as_int(items.get("RFC822.SIZE")) or 0,
        modseq=as_int(items.get("MODSEQ")),
        subject=envelope.get("subject", ""),
        from_=envelope.get("from_", []),
        sender=envelope.get("sender", []),
        reply_to=envelope.get("reply_to", []),
        to=envelope.get("to", []),
        cc=envelope.get("cc", []),
        bcc=envelope.get("bcc", []),
        date=envelope.get("date"),
        message_id=envelope.get("message_id"),
        in_reply_to=in_reply_to,
        references=message_id_list(headers.get("references")),
        has_attachments=bool(attachments),
        attachments=attachments,
        text_parts=texts,
        email_id=_atom(items.get("EMAILID")),
        thread_id=_atom(items.get("THREADID")),
        gm_msgid=as_int(items.get("X-GM-MSGID")),
        gm_thrid=as_int(items.get("X-GM-THRID")),
        labels=_labels(items.get("X-GM-LABELS")),
    )


def flag_change(items: Mapping[str, Any]) -> FlagChange | None:
    """A ``FlagChange`` from ``parse_fetch`` items; ``None`` without UID or FLAGS."""
    uid = as_int(items.get("UID"))
    if uid is None or "FLAGS" not in items:
        return None
    labels = _labels(items["X-GM-LABELS"]) if "X-GM-LABELS" in items else None
    return FlagChange(uid=uid, flags=_flags(items["FLAGS"]), modseq=as_int(items.get("MODSEQ")),
                      labels=labels)


# -- sequence sets ---------------------------------------------------------------------------

_UNBOUNDED = 1 << 63


class SequenceSet:
    """Membership test for an IMAP sequence set (``1:5,8,10:*``) without expanding it.

    ``*`` is read as "no upper bound", so ``51:*`` does not contain 50 even though a server
    answers ``UID FETCH 51:*`` with the highest UID when that is 50 (RFC 3501). A set that cannot
    be parsed (``$``, garbage) contains everything.
    """

    __slots__ = ("_starts", "_ends", "everything")

    def __init__(self, text: str):
        ranges = _ranges(text)
        self.everything = ranges is None
        merged: list[tuple[int, int]] = []
        for low, high in sorted(ranges or ()):
            if merged and low <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], high))
            else:
                merged.append((low, high))
        self._starts = [low for low, _ in merged]
        self._ends = [high for _, high in merged]

    def __contains__(self, number: int) -> bool:
        if self.everything:
            return True
        index = bisect_right(self._starts, number) - 1
        return index >= 0 and number <= self._ends[index]


def _ranges(text: str) -> list[tuple[int, int]] | None:
    ranges = []
    for item in text.strip().split(","):
        low_text, colon, high_text = item.strip().partition(":")
        bounds = [_bound(low_text), _bound(high_text) if colon else None]
        if bounds[0] is None or (colon and bounds[1] is None):
            return None
        low, high = bounds[0], bounds[1] if colon else bounds[0]
        if low == _UNBOUNDED and high == _UNBOUNDED:
            return None  # a bare "*": the highest number, which only the server knows
        ranges.append((min(low, high), max(low, high)))
    return ranges


def _bound(text: str) -> int | None:
    text = text.strip()
    if text == "*":
        return _UNBOUNDED
    return int(text) if text.isdigit() else None


def expand_sequence_set(text: str | bytes) -> list[int]:
    """Every number of a concrete sequence set (``1:3,7`` → ``[1, 2, 3, 7]``); ``*`` is skipped."""
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    numbers: list[int] = []
    for item in text.strip().split(","):
        low_text, colon, high_text = item.strip().partition(":")
        low, high = _bound(low_text), _bound(high_text) if colon else _bound(low_text)
        if low is None or high is None or _UNBOUNDED in (low, high):
            continue
        numbers.extend(range(min(low, high), max(low, high) + 1))
    return numbers


# -- compiled --------------------------------------------------------------------------------

# The Python functions above are the reference (and the fallback where nothing was built);
# ``make`` compiles the same rules for header values into ``_headers.pyx``, which
# ``tests/mailboxes/test_imap_headers.py`` holds to the same results.
python_decode_header = decode_header
python_header_fields = _header_fields
python_normalize_message_id = normalize_message_id
python_message_id_list = message_id_list
python_parse_date = parse_date
python_parse_internaldate = parse_internaldate
python_header_addresses = header_addresses
python_parse_bodystructure = parse_bodystructure

try:
    from . import _headers
except ImportError:
    _headers = None
else:
    _headers.bind(decode_bytes=decode_bytes,
                  decode_charset=decode_charset, parse_date=parse_date,
                  parse_internaldate=parse_internaldate, zone=_zone, utc=timezone.utc)
    decode_header = _headers.decode_header
    _header_fields = _headers.header_fields
    normalize_message_id = _headers.normalize_message_id
    message_id_list = _headers.message_id_list
    parse_date = _headers.parse_date
    parse_internaldate = _headers.parse_internaldate
    header_addresses = _headers.header_addresses

python_message_meta = message_meta
python_parse_fetch = parse_fetch

try:
    from . import _meta
except ImportError:
    _meta = None
else:
    _meta.bind(decode_header=decode_header, decode_bytes=decode_bytes,
               join_rfc2231=_join_rfc2231, guess_type=mimetypes.guess_type,
               degenerate=_Degenerate, uu_encodings=UU_ENCODINGS,
               uu_generic_types=_UU_GENERIC_TYPES, max_depth=_MAX_DEPTH,
               header_fields=_header_fields, header_addresses=header_addresses,
               subject_for_humans=subject_for_humans,
               parse_date=parse_date, parse_internaldate=parse_internaldate,
               normalize_message_id=normalize_message_id, message_id_list=message_id_list,
               labels=_labels, parse_tokens=parse_tokens, mime_token=_MIME_TOKEN)
    parse_fetch = _meta.parse_fetch
    parse_bodystructure = _meta.parse_bodystructure
    message_meta = _meta.message_meta
