"""Message content on demand: sections, streamed downloads, text bodies and small-message parsing.

The index knows each message's parts from BODYSTRUCTURE (part number, type, transfer encoding,
charset), so content is fetched by section number and only when asked for:

- ``fetch_section`` - one section (``"1.2"``, ``"HEADER"``, ``""`` = the whole message), raw bytes,
  optionally only its first *max_bytes*.
- ``stream_section`` - a section (or the raw source) as successive partial fetches
  ``BODY.PEEK[<section>]<offset.chunk>``: memory is bounded by *chunk* whatever the message size,
  and each chunk is a complete command, so a consumer may stop at any point and the connection
  stays usable.
- ``decode_stream`` - incremental Content-Transfer-Encoding decoding (base64, quoted-printable)
  of such chunks; ``decode_transfer`` / ``decode_text`` do the same for one blob, then the charset.
- ``fetch_text`` - the text/plain and text/html bodies, decoded to ``str``.
- ``parse_message`` - a full MIME parse of a *small* message held in memory (stdlib ``email``).

Every fetch uses ``BODY.PEEK``: reading never sets ``\\Seen``. A UID the server does not answer
for (expunged, or never existed) raises ``MessageNotFound``. Decoding never raises on bad input:
real mail has broken base64, unknown charsets and missing boundaries, and a reader must still get
a best-effort text.

No Django here.
"""

from __future__ import annotations

import binascii
import codecs
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email import policy
from email.message import Message
from email.parser import BytesParser
from functools import lru_cache
from itertools import islice
from typing import Any

import imapclient

from emailapi.lib.storable import whole_characters

from . import fetch, parse, underlying
from .types import Part

__all__ = [
    "MessageNotFound",
    "DEFAULT_CHUNK",
    "fetch_section",
    "fetch_sections",
    "fetch_sections_of",
    "stream_section",
    "source_size",
    "decode_stream",
    "decoded_sizes",
    "decode_transfer",
    "decode_text",
    "charset_codec",
    "fetch_text",
    "TEXT_TYPES",
    "ParsedAttachment",
    "ParsedMessage",
    "parse_message",
    "email_package_bounded",
    "field_parse_bounded",
    "structured_field",
    "header_text",
    "raw_header_text",
    "comment_depth",
    "is_unsplit",
    "local_attachments",
    "local_part",
]

DEFAULT_CHUNK = 1 << 20
TEXT_TYPES = ("plain", "html", "*")


class MessageNotFound(LookupError):
    """The server sent no FETCH data for the UID: it was expunged or never existed."""

    def __init__(self, uid: int):
        super().__init__(f"message UID {uid} not found")
        self.uid = uid


# -- fetching --------------------------------------------------------------------------------

# A section spec (RFC 3501): part numbers, then optionally HEADER / TEXT / MIME / HEADER.FIELDS.
_PART_NUMBER = r"[1-9][0-9]*(?:\.[1-9][0-9]*)*"
_TEXT_SPEC = r"(?:HEADER|TEXT|HEADER\.FIELDS(?:\.NOT)? \([\x21-\x27\x2a-\x7e ]*\))"
_SECTION = re.compile(
    rf"(?:{_PART_NUMBER}(?:\.(?:{_TEXT_SPEC}|MIME))?|{_TEXT_SPEC})?\Z", re.I | re.A
)


def fetch_section(
    client: imapclient.IMAPClient, uid: int, section: str, max_bytes: int | None = None
) -> bytes:
    """``UID FETCH uid (BODY.PEEK[section]<0.max_bytes>)``: the section's raw (still
    transfer-encoded) bytes, at most *max_bytes* of them. An empty or nonexistent section of an
    existing message gives ``b""``; a missing message raises ``MessageNotFound``."""
    _check(uid, section)
    if max_bytes is not None and max_bytes < 0:
        raise ValueError("max_bytes must be >= 0")
    partial = "" if max_bytes is None else f"<0.{max_bytes}>"
    items = _fetch_one(client, uid, f"BODY.PEEK[{section}]{partial}")
    return _body(items, section)


def fetch_sections(
    client: imapclient.IMAPClient, uid: int, sections: Mapping[str, int | None]
) -> dict[str, bytes]:
    """Several sections of one message in one ``UID FETCH`` (section -> at most that many
    bytes, or None: all), each as ``fetch_section`` gives it; a missing message raises
    ``MessageNotFound``."""
    _check_sections([uid], sections)
    if not sections:
        return {}
    items = _fetch_one(client, uid, _items(sections))
    return {section: _body(items, section) for section in sections}


def fetch_sections_of(
    client: imapclient.IMAPClient, uids: Sequence[int], sections: Mapping[str, int | None]
) -> dict[int, dict[str, bytes]]:
    """The same sections of several messages in one ``UID FETCH uid,uid,...`` (uid -> what
    ``fetch_sections`` gives for it). A message the server gives no data for (expunged) is
    left out. A server that says one of them was expunged meanwhile without saying which
    (RFC 5530 ``EXPUNGEISSUED``: Dovecot's NIL data, or a NO for the command, RFC 2180
    4.1.2) has each fetched alone."""
    _check_sections(uids, sections)
    if not sections or not uids:
        return {}
    answered, expunge_issued = _fetch_many(client, uids, _items(sections))
    if expunge_issued:
        found = {}
        for uid in uids:
            try:
                found[uid] = fetch_sections(client, uid, sections)
            except MessageNotFound:
                continue
        return found
    return {uid: {section: _body(items, section) for section in sections}
            for uid, items in answered.items()}


def _check_sections(uids: Sequence[int], sections: Mapping[str, int | None]) -> None:
    for uid in uids:
        _check_uid(uid)
    for section, limit in sections.items():
        _check_section(section)
        if limit is not None and limit < 0:
            raise ValueError("max_bytes must be >= 0")


def stream_section(
    client: imapclient.IMAPClient, uid: int, section: str, chunk: int = DEFAULT_CHUNK
) -> Iterator[bytes]:
    """The raw bytes of *section* (``""``: the whole message source) in chunks of *chunk* bytes.

    The first chunk is fetched at once, so a missing message raises ``MessageNotFound`` here and
    not in the middle of a response the caller has started sending; later chunks are fetched as
    the iterator is consumed, until the server returns a short one. If the message disappears
    mid-way, ``MessageNotFound`` is raised from the iterator (never a silently truncated file).
    """
    _check(uid, section)
    if chunk < 1:
        raise ValueError("chunk must be >= 1")
    first = _fetch_range(client, uid, section, 0, chunk)
    return _rest_of_stream(client, uid, section, chunk, first)


def _rest_of_stream(
    client: imapclient.IMAPClient, uid: int, section: str, chunk: int, data: bytes
) -> Iterator[bytes]:
    offset = 0
    while True:
        if data:
            yield data
        if len(data) < chunk:
            return
        offset += len(data)
        data = b""  # drop the reference before the next read: one chunk in memory at a time
        data = _fetch_range(client, uid, section, offset, chunk)


def source_size(client: imapclient.IMAPClient, uid: int) -> int | None:
    """RFC822.SIZE of the message (the length of its raw source); ``None`` if it is missing."""
    _check(uid, "")
    try:
        items = _fetch_one(client, uid, "RFC822.SIZE")
    except MessageNotFound:
        return None
    return parse.as_int(items.get("RFC822.SIZE"))


def _check(uid: int, section: str) -> None:
    _check_uid(uid)
    _check_section(section)


def _check_uid(uid: int) -> None:
    if not isinstance(uid, int) or isinstance(uid, bool) or uid < 1:
        raise ValueError(f"not a UID: {uid!r}")


def _check_section(section: str) -> None:
    if not isinstance(section, str) or not _SECTION.match(section):
        raise ValueError(f"not an IMAP section: {section[:100]!r}")


def _fetch_range(client: imapclient.IMAPClient, uid: int, section: str, offset: int,
                 length: int) -> bytes:
    items = _fetch_one(client, uid, f"BODY.PEEK[{section}]<{offset}.{length}>")
    return _body(items, section)


_EXPUNGE_ISSUED = b"[EXPUNGEISSUED]"


def _fetch_one(client: imapclient.IMAPClient, uid: int, items: str) -> dict[str, Any]:
    """Send ``UID FETCH <uid> (<items>)`` and return the items the server sent for *uid*."""
    answered, expunge_issued = _fetch_many(client, [uid], items)
    if uid not in answered or expunge_issued:
        raise MessageNotFound(uid)
    return answered[uid]


def _fetch_many(client: imapclient.IMAPClient, uids: Sequence[int],
                items: str) -> tuple[dict[int, dict[str, Any]], bool]:
    """Send ``UID FETCH <uid>,<uid>... (<items>)``: the items the server sent for each of
    *uids* it answered for, and whether it said one of them was expunged meanwhile.

    FETCH responses for other messages (unsolicited flag updates) are ignored, other untagged
    responses are filed with imaplib as usual (``fetch._stash``).
    """
    imap = underlying.connection(client)
    wanted = set(uids)
    found: dict[int, dict[str, Any]] = {}
    answered: set[int] = set()

    def on_untagged(texts: list[bytes], literals: list[bytes]) -> None:
        if not fetch._FETCH.match(texts[0]):
            fetch._stash(imap, texts, literals)
            return
        _, got = parse.parse_fetch(b" ".join(texts), literals)
        uid = parse.as_int(got.get("UID"))
        if uid in wanted:
            # a flag update sent on its own is not an answer (the message may be gone)
            if not fetch._UNSOLICITED_ITEMS.issuperset(got):
                answered.add(uid)
            found.setdefault(uid, {}).update(got)

    uid_set = ",".join(str(uid) for uid in uids)
    try:
        done = fetch._run(imap, f"UID FETCH {uid_set} ({items})", on_untagged)
    except imap.error as exc:  # RFC 2180 4.1.2: a server may answer NO for an expunged message
        if _EXPUNGE_ISSUED in str(exc).upper().encode("ascii", "replace"):
            return {}, True
        raise
    # Expunged by another session but not yet reported to this one: Dovecot answers with NIL
    # data and OK [EXPUNGEISSUED] (RFC 5530), others with no FETCH at all.
    return ({uid: found[uid] for uid in uids if uid in answered},
            done.upper().startswith(_EXPUNGE_ISSUED))


def _body(items: Mapping[str, Any], section: str) -> bytes:
    """The value of ``BODY[<section>]`` (with or without ``<origin>``) in parsed FETCH items."""
    value = items.get(_body_key(items, section))
    return value if isinstance(value, bytes) else b""


def _body_key(items: Mapping[str, Any], section: str) -> str | None:
    wanted = f"BODY[{section.upper()}]"
    bodies = [key for key in items if key.startswith("BODY[")]
    for key in bodies:
        if key == wanted or key.startswith(wanted + "<"):
            return key
    # Servers may respell HEADER.FIELDS lists; with a single body item there is no ambiguity.
    return bodies[0] if len(bodies) == 1 else None


# -- transfer encodings ----------------------------------------------------------------------

_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
# Everything but the alphabet and "=": line breaks, whitespace and garbage are dropped.
_B64_JUNK = bytes(byte for byte in range(256) if byte not in _B64_ALPHABET + b"=")
_QP_TRAILING_SPACE = re.compile(rb"[ \t]+(\r?\n)")
_QP_INCOMPLETE = re.compile(rb"=[0-9A-Fa-f]?\r?\Z")
_QP_LONG_LINE = 1 << 16


class _Base64Decoder:
    """Decodes base64 across arbitrary chunk boundaries; never raises.

    Only alphabet characters count. Up to three are carried to the next chunk so that only whole
    4-character quanta are decoded. A ``=`` ends the current quantum (bits of an incomplete
    quantum are padded; a lone sixth-bit character is dropped) and decoding goes on after it, so
    concatenated base64 blobs decode fully rather than stopping at the first padding.
    """

    def __init__(self) -> None:
        self._carry = b""

    def decode(self, data: bytes) -> bytes:
        cleaned = data.translate(None, _B64_JUNK)
        if self._carry:
            cleaned = self._carry + cleaned
        if b"=" not in cleaned:
            cut = len(cleaned) - len(cleaned) % 4
            self._carry = cleaned[cut:]
            return binascii.a2b_base64(memoryview(cleaned)[:cut]) if cut else b""
        *complete, last = cleaned.split(b"=")
        out = [_b64_final(segment) for segment in complete]
        cut = len(last) - len(last) % 4
        self._carry = last[cut:]
        out.append(binascii.a2b_base64(last[:cut]) if cut else b"")
        return b"".join(out)

    def flush(self, final: bool = True) -> bytes:
        carry, self._carry = self._carry, b""
        return _b64_final(carry) if final else b""


def _b64_final(segment: bytes) -> bytes:
    """Decode alphabet-only *segment* as the end of a base64 run (padding added as needed)."""
    if len(segment) % 4 == 1:
        segment = segment[:-1]
    try:
        return binascii.a2b_base64(segment + b"=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        return b""


class _QuotedPrintableDecoder:
    """Decodes quoted-printable across chunk boundaries.

    Whole lines are decoded (trailing transport whitespace removed, RFC 2045 rule 3), the
    incomplete last line is carried. A pathological line longer than 64 KiB is cut early, where
    no ``=XX`` escape, soft break or trailing whitespace can be split, so memory stays bounded.
    Invalid escapes such as ``=ZZ`` are kept literally.
    """

    def __init__(self) -> None:
        self._carry = b""

    def decode(self, data: bytes) -> bytes:
        if self._carry:
            data = self._carry + data
        cut = data.rfind(b"\n") + 1
        if not cut and len(data) > _QP_LONG_LINE:
            cut = _qp_safe_cut(data)
        self._carry = data[cut:]
        return _qp(data[:cut]) if cut else b""

    def flush(self, final: bool = True) -> bytes:
        carry, self._carry = self._carry, b""
        if not final:
            carry = _QP_INCOMPLETE.sub(b"", carry)
        return _qp(carry)


def _qp(block: bytes) -> bytes:
    return binascii.a2b_qp(_QP_TRAILING_SPACE.sub(rb"\1", block))


def _qp_safe_cut(data: bytes) -> int:
    cut = len(data)
    while cut > len(data) - 1024 and (data[cut - 1] in b" \t\r" or b"=" in data[cut - 2 : cut]):
        cut -= 1
    return cut


class _UUDecoder:
    """Decodes a uuencoded part (``x-uuencode``) across chunk boundaries, as Python's ``email``
    does: the lines between ``begin <octal mode> <name>`` and ``end``, each with
    ``binascii.a2b_uu`` (a line too long for its length byte is cut, as ``uu`` does). Text
    before ``begin`` is dropped; a part with no ``begin`` line at all is passed through. Only
    the incomplete last line is carried (and text before ``begin`` until it is found, at most
    64 KiB of it: beyond that the part is taken as not uuencoded)."""

    def __init__(self) -> None:
        self._carry = b""
        self._state = "before"  # "body", "after", or "raw" (no begin line: passed through)
        self._skipped = b""

    def decode(self, data: bytes) -> bytes:
        if self._state == "raw":
            return data
        data = self._carry + data
        cut = data.rfind(b"\n") + 1
        self._carry = data[cut:]
        out = self._lines(data[:cut])
        if self._state == "before" and len(self._skipped) + len(self._carry) > _QP_LONG_LINE:
            self._state = "raw"
            out, self._skipped, self._carry = self._skipped + self._carry, b"", b""
        return out

    def _lines(self, block: bytes) -> bytes:
        out = []
        for line in block.splitlines(keepends=True):
            if self._state == "before":
                self._skipped += line
                fields = line.split(b" ", 2)
                if line[:5] == b"begin" and len(fields) == 3 and fields[0] == b"begin":
                    try:
                        int(fields[1], 8)
                    except ValueError:
                        continue
                    self._state, self._skipped = "body", b""
            elif self._state == "body":
                if line.strip(b" \t\r\n\f") == b"end":
                    self._state = "after"
                else:
                    out.append(_uu_line(line))
        return b"".join(out)

    def flush(self, final: bool = True) -> bytes:
        carry, self._carry = self._carry, b""
        out = self._lines(carry) if carry and (final or self._state != "body") else b""
        if self._state == "before" and final:  # never began: the part as it is
            out, self._skipped = self._skipped, b""
        return out


def _uu_line(line: bytes) -> bytes:
    try:
        return binascii.a2b_uu(line)
    except binascii.Error:  # broken encoders (Fredrik Lundh's workaround, as in ``uu``)
        try:
            return binascii.a2b_uu(line[:(((line[0] - 32) & 63) * 4 + 5) // 3])
        except (binascii.Error, IndexError):
            return b""


def _transfer_decoder(
    encoding: str | None,
) -> _Base64Decoder | _QuotedPrintableDecoder | _UUDecoder | None:
    name = (encoding or "").strip().strip("\"'").lower()
    if name == "base64":
        return _Base64Decoder()
    if name == "quoted-printable":
        return _QuotedPrintableDecoder()
    if name in parse.UU_ENCODINGS:
        return _UUDecoder()
    return None  # 7bit, 8bit, binary, and unknown encodings pass through


def decode_stream(chunks: Iterable[bytes], encoding: str | None) -> Iterator[bytes]:
    """Undo the Content-Transfer-Encoding of *chunks* incrementally (one chunk in memory)."""
    decoder = _transfer_decoder(encoding)
    if decoder is None:
        yield from chunks
        return
    for chunk in chunks:
        out = decoder.decode(chunk)
        if out:
            yield out
    tail = decoder.flush()
    if tail:
        yield tail


def decode_transfer(data: bytes, encoding: str | None, final: bool = True) -> bytes:
    """Undo the Content-Transfer-Encoding of a whole blob. ``final=False`` means *data* was cut
    short (a partial fetch): an incomplete trailing quantum or ``=X`` escape is dropped."""
    decoder = _transfer_decoder(encoding)
    if decoder is None:
        return data
    return decoder.decode(data) + decoder.flush(final)


# Encoded parts up to this many bytes in all are measured from one FETCH (held in memory at
# once); larger ones are streamed, one chunk at a time.
SIZES_IN_ONE_FETCH = 4 * 1024 * 1024


def decoded_sizes(
    client: imapclient.IMAPClient, uid: int, sections: Mapping[str, tuple[str | None, int]],
    fetched: Mapping[str, bytes] | None = None,
) -> dict[str, int]:
    """The exact decoded size of each part, by section, of those in *sections* (section →
    ``(Content-Transfer-Encoding, encoded size)``) that are encoded (base64,
    quoted-printable, uuencode): each decoded here, so the size is what a download gives.
    Parts up to ``SIZES_IN_ONE_FETCH`` bytes together (``sizes_fetched_whole``) come in one
    command, or from *fetched* (their raw bytes, fetched with something else); larger ones
    are streamed. (Not the server's ``BINARY.SIZE``: Dovecot's is an estimate for base64, 3/4
    of the encoded size.) A missing message raises ``MessageNotFound``."""
    fetched = fetched or {}
    whole = sizes_fetched_whole(sections)
    sizes: dict[str, int] = {}
    for section, (encoding, _) in sections.items():
        _check(uid, section)
        if _transfer_decoder(encoding) is not None and section not in whole:
            sizes[section] = sum(len(chunk) for chunk in decode_stream(
                stream_section(client, uid, section), encoding))
    missing = [section for section in whole if section not in fetched]
    if missing:
        items = _fetch_one(client, uid, " ".join(f"BODY.PEEK[{s}]" for s in missing))
        fetched = {**fetched, **{section: _body(items, section) for section in missing}}
    for section in whole:
        sizes[section] = len(decode_transfer(fetched[section], sections[section][0]))
    return sizes


def sizes_fetched_whole(sections: Mapping[str, tuple[str | None, int]]) -> list[str]:
    """The sections ``decoded_sizes`` reads whole in one command: the encoded ones, in
    order, while their encoded sizes add up to at most ``SIZES_IN_ONE_FETCH``."""
    whole: list[str] = []
    budget = SIZES_IN_ONE_FETCH
    for section, (encoding, encoded_size) in sections.items():
        if _transfer_decoder(encoding) is not None and encoded_size <= budget:
            budget -= encoded_size
            whole.append(section)
    return whole


# -- charsets --------------------------------------------------------------------------------

# Labels mailers use that Python lacks, or knows by a narrower table than mail really uses.
_CHARSET_ALIASES = {
    "us-ascii": "utf-8",  # "ascii" mail often carries UTF-8; UTF-8 is a superset anyway
    "ascii": "utf-8",
    "ansi_x3.4-1968": "utf-8",
    **parse.MAIL_CHARSET_ALIASES,
}
# Tried in order when strict decoding in the declared codec fails, before replacing errors.
_FALLBACKS = {
    "iso2022_jp": ("iso2022_jp_ext", "iso2022_jp_2", "iso2022_jp_3"),
    "cp1252": ("latin-1",),
}


@lru_cache(maxsize=256)
def charset_codec(charset: str | None) -> str:
    """The Python codec for a MIME charset label; ``"utf-8"`` for missing or unknown ones, and
    for codecs that are no charsets (``parse.text_codec``)."""
    name = (charset or "").strip().strip("\"'").lower()
    name = _CHARSET_ALIASES.get(name, name)
    return (parse.text_codec(name) if name else None) or "utf-8"


def decode_text(data: bytes, charset: str | None, final: bool = True) -> str:
    """Decode body text in its declared *charset*; never raises.

    Bytes invalid in the charset become U+FFFD (after trying close relatives, e.g. ISO-2022-JP
    with Microsoft's extensions), as does a lone surrogate a charset decoded to (UTF-7's
    ``+2AA-``: ``storable.whole_characters``). ``final=False`` means *data* was cut short: a
    multi-byte character split at the end is dropped instead of replaced.
    """
    codec = charset_codec(charset)
    for name in (codec, *_FALLBACKS.get(codec, ())):
        try:
            return whole_characters(codecs.getincrementaldecoder(name)("strict").decode(data, final))
        except UnicodeError:
            continue
        except Exception:  # noqa: BLE001 - a broken codec must not break reading
            break
    try:
        return whole_characters(codecs.getincrementaldecoder(codec)("replace").decode(data, final))
    except Exception:  # noqa: BLE001
        return data.decode("utf-8", "replace")


# -- text bodies -----------------------------------------------------------------------------


def fetch_text(
    client: imapclient.IMAPClient,
    uid: int,
    text_parts: Sequence[Mapping[str, Any] | Part],
    text_type: str = "*",
    max_bytes: int | None = None,
) -> dict[str, Any]:
    """``fetch_text_and`` without further sections: the text bodies alone."""
    return fetch_text_and(client, uid, text_parts, text_type, max_bytes, {})[0]


def fetch_text_and(
    client: imapclient.IMAPClient,
    uid: int,
    text_parts: Sequence[Mapping[str, Any] | Part],
    text_type: str,
    max_bytes: int | None,
    also: Mapping[str, int | None],
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """``fetch_text``'s answer and the raw bytes of the sections *also* names (section → at
    most that many bytes, or None: all), as ``fetch_section`` gives them: in the text's own
    FETCH where there is one (one round trip for a whole message), else in a command of
    their own."""
    for section, limit in also.items():
        _check(uid, section)
        if limit is not None and limit < 0:
            raise ValueError("max_bytes must be >= 0")
    fetched: dict[str, Any] = {}
    text = _fetch_text(client, uid, text_parts, text_type, max_bytes, also, fetched)
    if not also:
        return text, {}
    if not fetched:
        fetched = _fetch_one(client, uid, _items(also))
    return text, {section: _body(fetched, section) for section in also}


def _items(sections: Mapping[str, int | None]) -> str:
    return " ".join(f"BODY.PEEK[{section}]" + ("" if limit is None else f"<0.{limit}>")
                    for section, limit in sections.items())


def _fetch_text(
    client: imapclient.IMAPClient,
    uid: int,
    text_parts: Sequence[Mapping[str, Any] | Part],
    text_type: str,
    max_bytes: int | None,
    also: Mapping[str, int | None],
    fetched: dict[str, Any],
) -> dict[str, Any]:
    """The message's text bodies: ``{"plain": str | None, "html": str | None, "hasMore": bool}``.

    *text_parts* are the index's part records (``{"part", "contentType", "encoding",
    "charset", ...}`` dicts, or ``Part`` values). *text_type* is ``"plain"``, ``"html"`` or
    ``"*"``; the type not asked for is ``None``, as is a type the message lacks. Only the needed
    parts are fetched, in one command, each at most *max_bytes* of encoded content; ``hasMore``
    tells that at least one was cut. Several parts of one type are joined with a newline. Line
    endings are ``\\n``.

    With no *text_parts* (a message indexed without a usable structure), the structure is
    fetched from the server; a non-multipart message's body is its part ``"1"`` (RFC 3501).
    """
    if text_type not in TEXT_TYPES:
        raise ValueError(f"text_type must be one of {TEXT_TYPES}, not {text_type!r}")
    if max_bytes is not None and max_bytes < 0:
        raise ValueError("max_bytes must be >= 0")
    if any(_unsplit(part) for part in text_parts):
        return _text_parsed_locally(client, uid, text_type, max_bytes)
    records = [_text_record(part) for part in text_parts]
    checked = not records
    if checked:
        records = _text_records_from_server(client, uid)
        if any(record[1] is None for record in records):
            return _text_parsed_locally(client, uid, text_type, max_bytes)
    kinds = ("plain", "html") if text_type == "*" else (text_type,)
    wanted = [record for record in records if record[1] in kinds]
    result: dict[str, Any] = {"plain": None, "html": None, "hasMore": False}
    if not wanted:
        if not checked:  # nothing to read, but a missing message must still raise
            _fetch_one(client, uid, "RFC822.SIZE")
        return result
    for record in wanted:
        _check(uid, record[0])
    partial = "" if max_bytes is None else f"<0.{max_bytes + 1}>"  # one more: was it cut?
    sections = dict.fromkeys(record[0] for record in wanted)
    command = " ".join(f"BODY.PEEK[{s}]{partial}" for s in sections)
    # The further sections ride along, unless one is also a text part (two answers for one
    # section could not be told apart): then they come in a command of their own.
    together = also and not set(also) & {section.upper() for section in sections}
    items = _fetch_one(client, uid, f"{command} {_items(also)}" if together else command)
    if together:
        fetched.update(items)
    texts: dict[str, list[str]] = {kind: [] for kind in kinds}
    for section, kind, encoding, charset in wanted:
        raw = _body(items, section)
        cut = max_bytes is not None and len(raw) > max_bytes
        if cut:
            raw = raw[:max_bytes]
            result["hasMore"] = True
        text = decode_text(decode_transfer(raw, encoding, final=not cut), charset, final=not cut)
        if cut and text.endswith("\r"):  # the cut fell inside a CRLF
            text = text[:-1]
        texts[kind].append(text.replace("\r\n", "\n"))
    for kind, found in texts.items():
        if found:
            result[kind] = "\n".join(found)
    return result


# The largest source read to parse a message locally for its text (``_text_parsed_locally``).
LOCAL_PARSE_LIMIT = 32 * 1024 * 1024


def _unsplit(part: Mapping[str, Any] | Part) -> bool:
    """The text part stands for a multipart the server could not split (``parse``)."""
    content_type = part.content_type if isinstance(part, Part) else part.get("contentType")
    return (content_type or "").lower().startswith("multipart/")


def _text_parsed_locally(client: imapclient.IMAPClient, uid: int, text_type: str,
                         max_bytes: int | None) -> dict[str, Any]:
    """The text bodies of a message the server could not split (no usable boundary, e.g. an
    RFC 2231-encoded one): its source fetched once (at most ``LOCAL_PARSE_LIMIT`` bytes) and
    parsed here; *max_bytes* cuts each text at that many UTF-8 bytes."""
    parsed = parse_message(fetch_section(client, uid, "", max_bytes=LOCAL_PARSE_LIMIT))
    result: dict[str, Any] = {"plain": None, "html": None, "hasMore": False}
    for kind in ("plain", "html") if text_type == "*" else (text_type,):
        text = getattr(parsed, kind)
        if text is not None and max_bytes is not None and len(text.encode()) > max_bytes:
            text = text.encode()[:max_bytes].decode("utf-8", "ignore")
            result["hasMore"] = True
        result[kind] = text
    return result


def is_unsplit(text_parts: Iterable[Mapping[str, Any] | Part]) -> bool:
    """The message's body is a multipart the server could not split (``parse``): its parts
    are only known by parsing its source here."""
    return any(_unsplit(part) for part in text_parts)


def local_attachments(client: imapclient.IMAPClient, uid: int) -> list[Part]:
    """The attachments of a message the server could not split, from its source parsed here
    (at most ``LOCAL_PARSE_LIMIT`` bytes: callers skip larger messages). Their ``part``
    numbers are the local parse's, ``size`` the decoded size, and ``encoding`` ``None``:
    the server cannot serve such a section, so ``local_part`` gives the content."""
    parsed = parse_message(fetch_section(client, uid, "", max_bytes=LOCAL_PARSE_LIMIT))
    return [Part(part=a.part, content_type=a.content_type, size=a.size, filename=a.filename,
                 content_id=a.content_id, disposition=a.disposition)
            for a in parsed.attachments]


def local_part(client: imapclient.IMAPClient, uid: int, section: str) -> bytes | None:
    """The decoded content of attachment *section* of a message the server could not split
    (``local_attachments`` numbered it); ``None`` if the parse finds no such attachment."""
    parsed = parse_message(fetch_section(client, uid, "", max_bytes=LOCAL_PARSE_LIMIT))
    return next((a.content for a in parsed.attachments if a.part == section), None)


def _text_record(
    part: Mapping[str, Any] | Part,
) -> tuple[str, str | None, str | None, str | None]:
    """``(section, "plain" | "html" | other, encoding, charset)`` of an index part record;
    ``None`` for the kind of a multipart the server could not split."""
    if _unsplit(part):
        return "", None, None, None
    if isinstance(part, Part):
        section, content_type = part.part, part.content_type
        encoding, charset = part.encoding, part.charset
    else:
        section, content_type = str(part.get("part") or "1"), part.get("contentType")
        encoding, charset = part.get("encoding"), part.get("charset")
    subtype = (content_type or "text/plain").lower().partition("/")[2]
    return section, subtype, encoding, charset


def _text_records_from_server(
    client: imapclient.IMAPClient, uid: int
) -> list[tuple[str, str | None, str | None, str | None]]:
    structure = _fetch_one(client, uid, "BODYSTRUCTURE").get("BODYSTRUCTURE")
    if not isinstance(structure, list) or not structure:
        return [("TEXT", "plain", None, None)]  # no usable structure: read the body as text
    try:
        _, texts = parse.parse_bodystructure(structure)
    except Exception:  # noqa: BLE001 - parse is forgiving; this is belt and braces
        texts = []
    return [_text_record(part) for part in texts]


# -- whole small messages --------------------------------------------------------------------

_BODY_TEXT_TYPES = ("text/plain", "text/html")
_MAX_DEPTH = 64

# What the email package may be given to parse (and to write again): it descends one nesting
# level per recursion (a sender can nest thousands: a RecursionError), and its parse of a
# structured header field (addresses, dates, Content-Type...) grows with the square of the
# field's length (50 KB of quotes took 16 s in a To field, 46 s in a Content-Type) and recurses
# into the field's comments. Containers (multipart/*, message/*) bound the depth; structured
# fields are measured folded lines and all, every part's (a body line that looks like one
# counts too: it errs only towards not parsing). Unstructured fields cost time in proportion
# to their length. The worst a sender can make of it grows with the largest field times their
# total (a Content-Type is parsed again at each look): fields of quotes in every part took 2.4 s
# with 4 KB and 32 KB, 1.35 s with 2 KB and 16 KB, 0.36 s with these.
_MAX_CONTAINERS = _MAX_DEPTH
MAX_STRUCTURED_FIELD = 2048
MAX_COMMENT_DEPTH = 32
MAX_STRUCTURED_FIELDS = 8 * 1024
_CONTAINER = re.compile(rb"^content-type[ \t]*:[ \t]*(?:\r?\n[ \t]+)?\"?(?:multipart|message)/",
                        re.IGNORECASE | re.MULTILINE)
# The fields the email package parses (its header registry's, but the unstructured ones).
STRUCTURED_FIELDS = frozenset({
    "to", "from", "cc", "bcc", "reply-to", "sender", "resent-from", "resent-to", "resent-cc",
    "resent-bcc", "resent-sender", "resent-date", "date", "orig-date", "message-id",
    "mime-version", "content-type", "content-disposition", "content-transfer-encoding"})
_STRUCTURED_FIELD = re.compile(
    rb"^(?:" + b"|".join(re.escape(name.encode()) for name in sorted(STRUCTURED_FIELDS))
    + rb")[ \t]*:[^\n]*(?:\n[ \t][^\n]*)*", re.IGNORECASE | re.MULTILINE)


def email_package_bounded(raw: bytes) -> bool:
    """Whether the email package can parse ``raw`` (and write it again) in bounded time and
    stack: at most ``_MAX_CONTAINERS`` containers, every structured field within
    ``field_parse_bounded`` and ``MAX_STRUCTURED_FIELDS`` bytes of them in all."""
    if sum(1 for _ in islice(_CONTAINER.finditer(raw), _MAX_CONTAINERS + 1)) > _MAX_CONTAINERS:
        return False
    total = 0
    for match in _STRUCTURED_FIELD.finditer(raw):
        total += match.end() - match.start()
        if total > MAX_STRUCTURED_FIELDS or not field_parse_bounded(
                match.group().decode("latin-1")):
            return False
    return True


def structured_field(name: str) -> bool:
    """Whether the email package parses a field of this name (addresses, dates, ids...)."""
    return name.strip().lower() in STRUCTURED_FIELDS


def field_parse_bounded(value: str) -> bool:
    """Whether the email package can parse one header field's ``value`` in bounded time and
    stack: at most ``MAX_STRUCTURED_FIELD`` characters, comments at most
    ``MAX_COMMENT_DEPTH`` deep."""
    return len(value) <= MAX_STRUCTURED_FIELD and comment_depth(value) <= MAX_COMMENT_DEPTH


def comment_depth(value: str) -> int:
    """How deep ``value``'s parentheses nest, or an upper bound when that is at most
    ``MAX_COMMENT_DEPTH`` (backslash escapes skipped; a parenthesis in a quoted string counts
    too, erring only towards not parsing)."""
    if value.count("(") <= MAX_COMMENT_DEPTH:
        return value.count("(")  # the common case costs one count
    depth = deepest = 0
    escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif char == ")":
            depth = max(depth - 1, 0)
    return deepest


@dataclass(slots=True)
class ParsedAttachment:
    """A non-body leaf of a parsed message. ``part`` is its IMAP section number, ``size`` the
    decoded size, ``content`` the decoded bytes (for message/rfc822: the attached message)."""

    part: str
    content_type: str
    size: int
    filename: str | None = None
    content_id: str | None = None
    disposition: str | None = None
    inline: bool = False
    content: bytes = field(default=b"", repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The API shape (like the index's part records), without the content."""
        return {"part": self.part, "contentType": self.content_type, "size": self.size,
                "filename": self.filename, "contentId": self.content_id,
                "disposition": self.disposition, "inline": self.inline}


@dataclass(slots=True)
class ParsedMessage:
    """A message parsed by ``parse_message``: decoded headers in order, body texts, attachments."""

    headers: list[dict[str, str]] = field(default_factory=list)
    plain: str | None = None
    html: str | None = None
    attachments: list[ParsedAttachment] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"headers": self.headers, "text": {"plain": self.plain, "html": self.html},
                "attachments": [attachment.as_dict() for attachment in self.attachments]}


def parse_message(raw: bytes, section: str = "") -> ParsedMessage:
    """Parse a whole message held in memory (only for small ones: see ``stream_section``).

    Body text and attachments are told apart by the same rule as the index
    (``parse.parse_bodystructure``), and part numbers are IMAP section numbers, so an
    attachment found here has the number the index gives it. A message/rfc822 part is listed as
    one attachment and not descended into; to look inside, fetch its section and call
    ``parse_message(raw, section=<its number>)`` so the inner numbers come out as ``"3.1"``...
    Malformed input never raises: a multipart without a usable boundary is read as text, and
    so is a message the email package could not parse in bounded time
    (``email_package_bounded``).
    """
    parsed = ParsedMessage()
    message = _email_message(raw)
    if message is None:
        parsed.plain = decode_text(raw, None).replace("\r\n", "\n")
        return parsed
    parsed.headers = [{"key": key, "value": value} for key, value in _headers(message)]
    texts: dict[str, list[str]] = {"plain": [], "html": []}
    _walk(message, None, f"{section}." if section else "", parsed.attachments, texts, 0)
    parsed.plain = "\n".join(texts["plain"]) if texts["plain"] else None
    parsed.html = "\n".join(texts["html"]) if texts["html"] else None
    return parsed


def _email_message(raw: bytes) -> Message | None:
    """``raw`` parsed by the email package, or None where it could not be (in bounded time)."""
    if not email_package_bounded(raw):
        return None
    try:
        return BytesParser(policy=policy.default).parsebytes(raw)
    except Exception:  # noqa: BLE001 - the parser records defects; this is belt and braces
        return None


def _headers(message: Message) -> Iterator[tuple[str, str]]:
    for key, raw in message.raw_items():
        yield key, header_text(key, raw)


def header_text(name: str, raw: Any) -> str:
    """A header field as shown, from its raw value as the email package splits it: decoded by
    the email package (RFC 2047, addresses and dates as it renders them) where that is
    bounded (``field_parse_bounded``) and the value is ASCII, else ``raw_header_text``."""
    if isinstance(raw, str) and raw.isascii() and field_parse_bounded(raw):
        try:
            return str(policy.default.header_fetch_parse(name, raw))
        except Exception:  # noqa: BLE001 - the email package chokes on some garbage
            pass
    return raw_header_text(raw)


def raw_header_text(raw: Any) -> str:
    """A header field as it came, unfolded, its RFC 2047 words decoded and raw 8-bit bytes
    sniffed as ``parse`` does (one linear pass, whatever the field holds)."""
    data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""
    return parse.decode_header(data)


def _walk(node: Message, number: str | None, prefix: str, attachments: list[ParsedAttachment],
          texts: dict[str, list[str]], depth: int) -> None:
    """Collect leaves; *number* is the node's section (``None`` for the top-level message)."""
    if depth > _MAX_DEPTH:
        return
    content_type = _safe(node.get_content_type, "text/plain")
    if node.is_multipart() and not content_type.startswith("message/"):
        base = f"{number}." if number else prefix
        for index, child in enumerate(node.get_payload(), start=1):
            if isinstance(child, Message):
                _walk(child, f"{base}{index}", prefix, attachments, texts, depth + 1)
        return
    _leaf(node, number or f"{prefix}1", content_type, attachments, texts)


def _leaf(node: Message, number: str, content_type: str, attachments: list[ParsedAttachment],
          texts: dict[str, list[str]]) -> None:
    """The index's rule (``parse.parse_bodystructure``): text/plain and text/html are body
    text unless ``attachment`` or uuencoded; every other leaf is an attachment."""
    main = content_type.partition("/")[0]
    if main == "multipart":  # no usable boundary: the email package leaves the body as text
        content_type, main = "text/plain", "text"
    disposition = _safe(node.get_content_disposition, None)
    filename = _filename(node)
    content_id = _content_id(_safe(lambda: node.get("Content-ID"), None))
    encoding = str(_safe(lambda: node.get("Content-Transfer-Encoding", ""), "")).strip().lower()
    if content_type in _BODY_TEXT_TYPES and disposition != "attachment" and (
        encoding not in parse.UU_ENCODINGS
    ):
        data = _content(node, main)
        charset = _safe(node.get_content_charset, None)
        texts[content_type[5:]].append(decode_text(data, charset).replace("\r\n", "\n"))
        return
    if disposition is None and content_id:
        disposition = "inline"
    data = _content(node, main)
    attachments.append(ParsedAttachment(
        part=number, content_type=content_type, size=len(data), filename=filename,
        content_id=content_id, disposition=disposition, inline=disposition == "inline",
        content=data,
    ))


def _content(node: Message, main: str) -> bytes:
    """Decoded payload bytes; for message/* the embedded message(s) as bytes."""
    try:
        if main == "message" and node.is_multipart():
            return b"".join(
                sub.as_bytes(policy=policy.compat32) for sub in node.get_payload()
                if isinstance(sub, Message)
            )
        data = node.get_payload(decode=True)
    except Exception:  # noqa: BLE001 - broken encodings: give what can be given
        return b""
    return data if isinstance(data, bytes) else b""


def _filename(node: Message) -> str | None:
    """Content-Disposition filename or Content-Type name: RFC 2231 (by the email package) and
    RFC 2047 encoded-words (not standard in parameters, but what many mailers send)."""
    name = _safe(node.get_filename, None)
    if not isinstance(name, str):
        return None
    if "\ufffd" in name:  # raw 8-bit bytes, which the email package replaces: read them again
        name = _raw_filename(node) or name
    if "=?" in name:
        name = parse.decode_header(name.encode("utf-8", "surrogateescape"))
    elif not name.isascii():  # raw 8-bit bytes in the header: surrogate-escaped by the parser
        name = parse.decode_bytes(name.encode("utf-8", "surrogateescape"))
    return name.strip() or None


_RAW_PARAM = re.compile(r'(?:^|;)\s*(filename|name)\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]+)', re.I)


def _raw_filename(node: Message) -> str | None:
    """The filename/name parameter from the raw header (surrogate-escaped 8-bit bytes)."""
    found: dict[str, str] = {}
    for key, raw in node.raw_items():
        if key.lower() in ("content-disposition", "content-type") and isinstance(raw, str):
            for match in _RAW_PARAM.finditer(raw):
                found.setdefault(match.group(1).lower(), match.group(2))
    value = found.get("filename") or found.get("name")
    if not value:
        return None
    if value.startswith('"'):
        value = re.sub(r"\\(.)", r"\1", value[1:-1])
    return parse.decode_bytes(value.encode("utf-8", "surrogateescape"))


def _content_id(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    return text or None


def _safe(function: Any, default: Any) -> Any:
    try:
        return function()
    except Exception:  # noqa: BLE001 - one bad header must not stop the parse
        return default
