"""Opaque message and attachment ids, and the key they are signed with.

A message id names a message in one folder of one account: base64url of the folder's
per-account number (uint32), the UID (uint32) and a 4-byte HMAC tag over the account, folder
number and UID. The tag makes an id from another account, a guessed or a mangled id fail to
decode (a 404), instead of silently naming some other message. A folder gets a new number when
its UIDVALIDITY changes, so ids minted under the old UIDs stop resolving rather than point to a
different message. An attachment id is the message id's 12 bytes plus the MIME part number.

The tag's key (``key()``) is derived from ``EMAILAPI_SECRET``; everything else here is a pure
function of its arguments.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import struct
from dataclasses import dataclass

from django.conf import settings

TAG_BYTES = 4
PART_RE = re.compile(rb"^[0-9]+(\.[0-9]+)*$")


class InvalidId(ValueError):
    """Malformed, tampered with, or minted for another account."""


@dataclass(frozen=True)
class MessageRef:
    folder_number: int
    uid: int


@dataclass(frozen=True)
class AttachmentRef:
    folder_number: int
    uid: int
    part: str


def key() -> bytes:
    """The key message and attachment ids are tagged with (changes with the secret)."""
    return _key(settings.EMAILAPI_SECRET)


@functools.lru_cache(maxsize=4)
def _key(secret: str) -> bytes:
    return hashlib.sha256(b"emailapi message ids\0" + secret.encode()).digest()


def message_id_for(folder, uid: int) -> str:
    """The id of message ``uid`` in ``folder`` (a ``Folder``: its account and number)."""
    return message_id(key(), folder.email_account_id, folder.number, uid)


def _tag(key: bytes, account_pk: int, body: bytes) -> bytes:
    """HMAC-SHA256 of the account and ``body``, cut to ``TAG_BYTES``. Computed from the key's
    two padded SHA-256 states, hashed once (``_pads``) and copied per tag: the same digest as
    ``hmac.new``, without its per-call key setup (four times dearer, and every listed message
    has two or more ids)."""
    inner, outer = _pads(key)
    inner, outer = inner.copy(), outer.copy()
    inner.update(struct.pack(">Q", account_pk) + body)
    outer.update(inner.digest())
    return outer.digest()[:TAG_BYTES]


_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


@functools.lru_cache(maxsize=4)
def _pads(key: bytes):
    """RFC 2104's inner and outer hash states of ``key`` (SHA-256: 64-byte blocks)."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    return hashlib.sha256(key.translate(_IPAD)), hashlib.sha256(key.translate(_OPAD))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    if not text or len(text) > 200 or not re.fullmatch(r"[A-Za-z0-9_-]+", text):
        raise InvalidId("not an id")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        raise InvalidId("not an id") from None


def message_id(key: bytes, account_pk: int, folder_number: int, uid: int) -> str:
    body = struct.pack(">II", folder_number, uid)
    return _b64(body + _tag(key, account_pk, body))


def parse_message_id(key: bytes, account_pk: int, value: str) -> MessageRef:
    raw = _unb64(value)
    if len(raw) != 8 + TAG_BYTES:
        raise InvalidId("wrong length")
    body, tag = raw[:8], raw[8:]
    if not hmac.compare_digest(tag, _tag(key, account_pk, body)):
        raise InvalidId("not an id of this account")
    folder_number, uid = struct.unpack(">II", body)
    return MessageRef(folder_number, uid)


def attachment_id(key: bytes, account_pk: int, folder_number: int, uid: int, part: str) -> str:
    body = struct.pack(">II", folder_number, uid) + part.encode("ascii")
    return _b64(body + _tag(key, account_pk, body))


def parse_attachment_id(key: bytes, account_pk: int, value: str) -> AttachmentRef:
    raw = _unb64(value)
    if len(raw) < 9 + TAG_BYTES:
        raise InvalidId("wrong length")
    body, tag = raw[:-TAG_BYTES], raw[-TAG_BYTES:]
    part = body[8:]
    if not PART_RE.match(part):
        raise InvalidId("bad part number")
    if not hmac.compare_digest(tag, _tag(key, account_pk, body)):
        raise InvalidId("not an id of this account")
    folder_number, uid = struct.unpack(">II", body[:8])
    return AttachmentRef(folder_number, uid, part.decode("ascii"))


# A text id (EmailEngine's ``text.id``) names a message's text bodies: the message id's body
# with this marker, so it never decodes as a message or an attachment id (a part number is
# digits and dots).
TEXT_MARKER = b"text"


def text_id(key: bytes, account_pk: int, folder_number: int, uid: int) -> str:
    body = struct.pack(">II", folder_number, uid) + TEXT_MARKER
    return _b64(body + _tag(key, account_pk, body))


def parse_text_id(key: bytes, account_pk: int, value: str) -> MessageRef:
    raw = _unb64(value)
    if len(raw) != 8 + len(TEXT_MARKER) + TAG_BYTES or raw[8:-TAG_BYTES] != TEXT_MARKER:
        raise InvalidId("not a text id")
    body, tag = raw[:-TAG_BYTES], raw[-TAG_BYTES:]
    if not hmac.compare_digest(tag, _tag(key, account_pk, body)):
        raise InvalidId("not an id of this account")
    folder_number, uid = struct.unpack(">II", body[:8])
    return MessageRef(folder_number, uid)


def is_emailengine_message_id(value: str) -> bool:
    """Whether *value* has the form of an EmailEngine IMAP message id (base64url of 8 bytes:
    mailbox number and UID), which names nothing here."""
    try:
        return len(_unb64(value)) == 8
    except InvalidId:
        return False
