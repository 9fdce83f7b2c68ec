"""APPEND: storing a message the caller built into a folder (no Django here).

The server tells the new message's UID only with UIDPLUS (RFC 4315): the tagged
``OK [APPENDUID <uidvalidity> <uid>]``. The UID is what lets the caller index the message at
once (read-your-writes) instead of waiting for the worker to find it; without UIDPLUS the
caller gets ``None`` and may look the message up by its Message-ID (``find_by_message_id``).

A folder that does not exist is refused with ``[TRYCREATE]`` (RFC 3501) or a plain NO;
both become ``FolderMissing``, which callers map to a 404 naming the folder, so a typo in a
path never silently creates a folder.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import imapclient

from mailboxes.imap import fetch
from mailboxes.imap.message_ops import FolderMissing, WriteError, check_flags

__all__ = ["Appended", "FolderMissing", "WriteError", "append", "append_message",
           "find_by_message_id"]

_APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d+)\]", re.IGNORECASE)
_MISSING = ("TRYCREATE", "NONEXISTENT", "DOESN'T EXIST", "DOES NOT EXIST", "NOT EXIST",
            "UNKNOWN MAILBOX", "NO SUCH MAILBOX")


@dataclass(frozen=True)
class Appended:
    """Where the server put the message: both None when it did not say (no UIDPLUS)."""

    uidvalidity: int | None
    uid: int | None


def append_message(client: imapclient.IMAPClient, path: str, raw: bytes,
                   flags: Sequence[str] = (), internal_date: datetime | None = None) -> Appended:
    """APPEND *raw* to *path* with *flags* (checked atoms: nothing can inject IMAP syntax)
    and the INTERNALDATE *internal_date* (the server's clock when None)."""
    flag_atoms = [flag.encode() for flag in check_flags(flags)]
    try:
        response = client.append(path, raw, flags=flag_atoms, msg_time=internal_date)
    except imapclient.exceptions.IMAPClientError as exc:
        raise refused(exc, path) from None
    return parse_appenduid(response)


def append(client: imapclient.IMAPClient, path: str, raw: bytes, flags: Sequence[str] = (),
           internal_date: datetime | None = None) -> int | None:
    """APPEND and return the new UID, or None when the server gave none (no UIDPLUS)."""
    return append_message(client, path, raw, flags, internal_date).uid


def parse_appenduid(response) -> Appended:
    """``[APPENDUID v uid]`` from the tagged response text (bytes or str) or ``Appended(None,
    None)``. A multi-message APPEND answers a UID set; a single APPEND a single UID."""
    if isinstance(response, str):
        response = response.encode()
    found = _APPENDUID.search(response or b"")
    if not found:
        return Appended(None, None)
    return Appended(int(found.group(1)), int(found.group(2)))


def refused(exc: Exception, path: str) -> WriteError:
    """The server's NO as ``FolderMissing`` (the folder is not there) or ``WriteError``."""
    text = str(exc)
    if any(marker in text.upper() for marker in _MISSING):
        return FolderMissing(f"Mailbox {path!r} does not exist")
    return WriteError(text)


def find_by_message_id(client: imapclient.IMAPClient, message_id: str,
                       above: int = 0) -> int | None:
    """The highest UID of the selected folder whose Message-ID header is *message_id* and
    whose UID is above *above* (a server without UIDPLUS: the message just appended)."""
    if not message_id or not message_id.isascii() or any(c in message_id for c in '\r\n"\\'):
        return None
    uids = [uid for uid in fetch.search_uids(client, f'HEADER Message-ID "{message_id}"')
            if uid > above]
    return max(uids) if uids else None
