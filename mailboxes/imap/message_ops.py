"""Changing messages on the server: flags, copy, move and expunge by UID (no Django here).

Every operation takes UIDs in batches (``BATCH``) so that a bulk change of thousands of
messages costs one round trip per batch, and reports what the server says happened (the new
flags from the untagged FETCH of a non-silent STORE; the new UIDs from UIDPLUS ``COPYUID``), so
the caller can update the index to match without guessing.

Flags travel as IMAP atoms, which cannot be quoted: ``check_flags`` refuses anything but a
system flag or a keyword of atom characters before a byte is sent, so no input can inject
IMAP syntax. Gmail labels (X-GM-LABELS) are quoted strings in modified UTF-7, as folder
names are: ``check_labels`` refuses only what a quoted string cannot carry.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import imapclient

from mailboxes.imap import underlying

BATCH = 1000

SYSTEM_FLAGS = {"\\seen": "\\Seen", "\\answered": "\\Answered", "\\flagged": "\\Flagged",
                "\\deleted": "\\Deleted", "\\draft": "\\Draft"}
# RFC 3501 atom: no ( ) { SP CTL % * " \ ] and, for a keyword, no leading backslash.
_KEYWORD = re.compile(r"^[!#$&'+,\-./0-9:;<=>?@A-Z\[^_`a-z|}~]{1,128}$")
_COPYUID = re.compile(rb"\[COPYUID (\d+) ([0-9:,]+) ([0-9:,]+)\]", re.IGNORECASE)


class WriteError(Exception):
    """The server refused a change (text of its answer in the message)."""


class FolderMissing(WriteError):
    """The destination folder does not exist on the server (``[TRYCREATE]`` or NO)."""


class BadFlag(ValueError):
    def __init__(self, flag: object):
        super().__init__(f"not a valid IMAP flag: {str(flag)[:80]!r}")
        self.flag = flag


def check_flags(flags: Iterable[object]) -> list[str]:
    """Flags as the server spells them (``\\seen`` -> ``\\Seen``); BadFlag for anything
    that is not a system flag or a keyword atom (CR, LF, space, quotes, parentheses...)."""
    out: list[str] = []
    for flag in flags:
        if not isinstance(flag, str):
            raise BadFlag(flag)
        if flag.startswith("\\"):
            canonical = SYSTEM_FLAGS.get(flag.lower())
            if canonical is None:
                raise BadFlag(flag)
            flag = canonical
        elif not _KEYWORD.match(flag):
            raise BadFlag(flag)
        if flag not in out:
            out.append(flag)
    return out


class BadLabel(ValueError):
    def __init__(self, label: object, reason: str = "not a valid Gmail label"):
        super().__init__(f"{reason}: {str(label)[:80]!r}")
        self.label = label


MAX_LABEL = 225  # Gmail's longest label name (characters)
# Gmail's system labels are spelt with a backslash (\Inbox, \Important, \Starred...).
_SYSTEM_LABEL = re.compile(r"\\[A-Za-z]{1,64}\Z")


def check_labels(labels: Iterable[object]) -> list[str]:
    """Labels as they are stored (a user label, or a ``\\System`` label); BadLabel for an
    empty one, a control character (CR, LF, NUL...) or a backslash that does not start a
    system label's name."""
    out: list[str] = []
    for label in labels:
        if not isinstance(label, str) or not label or len(label) > MAX_LABEL:
            raise BadLabel(label)
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in label):
            raise BadLabel(label, "a label cannot contain control characters")
        if "\\" in label and not _SYSTEM_LABEL.match(label):
            raise BadLabel(label, "a backslash only starts a system label such as \\Important")
        if label not in out:
            out.append(label)
    return out


def batches(uids: Sequence[int], size: int = BATCH) -> Iterator[list[int]]:
    ordered = sorted(set(uids))
    for start in range(0, len(ordered), size):
        yield ordered[start:start + size]


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _flags_of(response: dict) -> dict[int, tuple[str, ...]]:
    """Flags per UID as the index keeps them: without per-session ``\\Recent``
    (as ``parse._flags`` does for FETCH)."""
    return {int(uid): tuple(_text(f) for f in flags if _text(f).lower() != "\\recent")
            for uid, flags in response.items()}


def store_flags(client: imapclient.IMAPClient, uids: Sequence[int], add: Sequence[str] = (),
                remove: Sequence[str] = (), replace: Sequence[str] | None = None,
                ) -> dict[int, tuple[str, ...]]:
    """UID STORE on the selected (read-write) folder, one command per change and batch.

    Returns the flags the server reports afterwards per UID; a UID missing from the answer
    no longer exists (expunged meanwhile) and was not touched. Flags must have passed
    ``check_flags``."""
    result: dict[int, tuple[str, ...]] = {}
    for batch in batches(uids):
        try:
            if replace is not None:
                result.update(_flags_of(client.set_flags(batch, list(replace), silent=False)))
                continue
            if add:
                result.update(_flags_of(client.add_flags(batch, list(add), silent=False)))
            if remove:
                result.update(_flags_of(client.remove_flags(batch, list(remove),
                                                            silent=False)))
        except imapclient.exceptions.IMAPClientError as exc:
            raise WriteError(str(exc)) from None
    return result


def _labels_of(response: dict | None) -> dict[int, tuple[str, ...]]:
    return {int(uid): tuple(_text(label) for label in labels)
            for uid, labels in (response or {}).items()}


def store_labels(client: imapclient.IMAPClient, uids: Sequence[int], add: Sequence[str] = (),
                 remove: Sequence[str] = (), replace: Sequence[str] | None = None,
                 ) -> dict[int, tuple[str, ...]]:
    """Gmail's ``UID STORE <uids> [+|-]X-GM-LABELS (...)`` on the selected (read-write)
    folder, one command per change and batch; the labels the server reports afterwards per
    UID (decoded from modified UTF-7). Labels must have passed ``check_labels``."""
    result: dict[int, tuple[str, ...]] = {}
    for batch in batches(uids):
        try:
            if replace is not None:
                result.update(_labels_of(client.set_gmail_labels(batch, list(replace))))
                continue
            if add:
                result.update(_labels_of(client.add_gmail_labels(batch, list(add))))
            if remove:
                result.update(_labels_of(client.remove_gmail_labels(batch, list(remove))))
        except imapclient.exceptions.IMAPClientError as exc:
            raise WriteError(str(exc)) from None
    return result


@dataclass
class Transfer:
    """What a COPY or MOVE did: source UID -> new UID in the destination (empty when the
    server has no UIDPLUS), and the destination's UIDVALIDITY."""

    uid_map: dict[int, int] = field(default_factory=dict)
    uidvalidity: int | None = None


def _parse_set(text: bytes) -> list[int]:
    out: list[int] = []
    for part in text.split(b","):
        low, _, high = part.partition(b":")
        first, last = int(low), int(high or low)
        step = 1 if last >= first else -1
        out.extend(range(first, last + step, step))
    return out


def _merge_copyuid(transfer: Transfer, data: bytes | None) -> None:
    if not data:
        return
    found = _COPYUID.search(data if data.startswith(b"[") else b"[COPYUID " + data + b"]")
    if not found:
        return
    transfer.uidvalidity = int(found.group(1))
    transfer.uid_map.update(zip(_parse_set(found.group(2)), _parse_set(found.group(3)),
                                strict=False))


def _refused(exc: Exception, destination: str) -> WriteError:
    text = str(exc)
    if "TRYCREATE" in text.upper() or "doesn't exist" in text or "not exist" in text.lower():
        return FolderMissing(f"Mailbox {destination!r} does not exist")
    return WriteError(text)


def _transferred(client: imapclient.IMAPClient, command, batch: list[int], destination: str,
                 transfer: Transfer) -> None:
    """Run ``command(batch, destination)`` and merge its ``COPYUID`` (imaplib files the
    response code of a tagged or untagged OK under that name)."""
    untagged = underlying.untagged_responses(client)
    untagged.pop("COPYUID", None)
    try:
        command(batch, destination)
    except imapclient.exceptions.IMAPClientError as exc:
        raise _refused(exc, destination) from None
    for data in untagged.pop("COPYUID", []):
        _merge_copyuid(transfer, data)


def copy(client: imapclient.IMAPClient, uids: Sequence[int], destination: str) -> Transfer:
    """UID COPY in batches; the new UIDs from each ``OK [COPYUID ...]``."""
    transfer = Transfer()
    for batch in batches(uids):
        _transferred(client, client.copy, batch, destination, transfer)
    return transfer


def move(client: imapclient.IMAPClient, uids: Sequence[int], destination: str,
         use_move: bool | None = None) -> Transfer:
    """Move UIDs to *destination*: ``UID MOVE`` where the server has MOVE, else COPY, then
    ``STORE +FLAGS \\Deleted`` and ``UID EXPUNGE`` of exactly those UIDs (never a bare
    EXPUNGE, which would also remove other messages someone marked \\Deleted).

    Whatever happens, a message is never lost: the fallback copies before it deletes, so an
    interruption between the two leaves it in both folders, never in neither."""
    if use_move is None:
        use_move = client.has_capability("MOVE")
    if not use_move and not client.has_capability("UIDPLUS"):
        raise WriteError("The server has neither MOVE nor UIDPLUS: moving would expunge "
                         "other deleted messages too")
    transfer = Transfer()
    for batch in batches(uids):
        if use_move:
            _transferred(client, client.move, batch, destination, transfer)
            continue
        copied = Transfer()
        _transferred(client, client.copy, batch, destination, copied)
        transfer.uid_map.update(copied.uid_map)
        transfer.uidvalidity = copied.uidvalidity or transfer.uidvalidity
        expunge(client, sorted(copied.uid_map))  # only what was copied
    return transfer


def expunge(client: imapclient.IMAPClient, uids: Sequence[int]) -> None:
    """``STORE +FLAGS.SILENT \\Deleted`` then ``UID EXPUNGE`` of exactly these UIDs."""
    if not client.has_capability("UIDPLUS"):
        raise WriteError("The server has no UIDPLUS: expunging one message would expunge "
                         "every message marked \\Deleted")
    for batch in batches(uids):
        try:
            client.add_flags(batch, ["\\Deleted"], silent=True)
            client.uid_expunge(batch)
        except imapclient.exceptions.IMAPClientError as exc:
            raise WriteError(str(exc)) from None
