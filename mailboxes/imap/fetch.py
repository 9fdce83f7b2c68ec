"""Bulk FETCH / SEARCH commands for indexing, on an ``imapclient.IMAPClient``.

Why not ``IMAPClient.fetch``: its generic response parser dominates the cost of indexing a large
folder, it keeps every parsed response of a command in memory as rich objects, and (4.1.0) it
refuses sequence sets such as ``1:*`` because it filters results by integer ids. These functions
send the command through the client's own imaplib connection (same socket, same tag counter) and
read the answer themselves: each response is parsed as soon as it has arrived (``parse.py``), so
memory is bounded by the batch the caller asks for (fetch in batches of a few hundred UIDs).

Untagged responses that are not part of the answer (EXISTS, EXPUNGE, OK [...], ...) are handed
to imaplib's ``untagged_responses`` exactly as imaplib would store them, so nothing the caller
relies on elsewhere is lost. A ``* BYE`` raises ``imaplib.IMAP4.abort``; a tagged NO/BAD raises
``imaplib.IMAP4.error`` (imapclient's ``IMAPClientError``). After a socket error or an abort the
connection is in an unknown state and must be dropped, as with imaplib itself.

No Django here.
"""

from __future__ import annotations

import imaplib
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import imapclient

from . import parse, underlying
from .types import FlagChange, MessageMeta

__all__ = ["meta_items", "fetch_meta", "fetch_flags", "search_uids", "search_count", "BASE_META_ITEMS"]

# A message's envelope is read from its header fields (``parse.ENVELOPE_HEADERS``), not from
# the server's ENVELOPE: the same fields, read by our parser, for about 11 % less of Dovecot's
# CPU and a quarter fewer bytes a message (``parse._header_envelope`` says why).
BASE_META_ITEMS = (
    "UID FLAGS INTERNALDATE RFC822.SIZE BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS"
    f" ({' '.join(name.upper() for name in parse.ENVELOPE_HEADERS)} REFERENCES)]"
)
# Items a server may send on its own (flag and Gmail label updates); a response with nothing
# else is unsolicited.
_UNSOLICITED_ITEMS = frozenset({"UID", "FLAGS", "MODSEQ", "X-GM-LABELS"})

_SEQUENCE_SET = re.compile(r"[0-9*:,$]+\Z")
_FETCH = re.compile(rb"\* \d+ FETCH\b", re.I)
_UNTAGGED = re.compile(rb"\* (?:(\d+) )?([A-Za-z-]+)(?: (.*))?", re.S)
_RESPONSE_CODE = re.compile(rb"\[([A-Za-z-]+)(?: ([^\]]*))?\]")

OnUntagged = Callable[[list[bytes], list[bytes]], None]

# The most UIDs one command's answer may list (SEARCH, ESEARCH's ranges, VANISHED). A range
# is a few bytes for any number of UIDs: ``* ESEARCH (TAG "A5") UID ALL 1:2000000000``, one
# line, made a worker build a list of two billion numbers (tens of GB: the kernel killed it,
# and every tenant's sessions with it). A folder cannot list more UIDs than it holds
# messages: 8,388,608 is eight times the 1,000,000-message folder the bench indexes, more
# than any real folder we know of, and a few hundred MB to hold at most.
MAX_UIDS = 1 << 23


def meta_items(capabilities: Iterable[bytes | str]) -> str:
    """The FETCH item list for ``fetch_meta``, with the extensions the server advertises."""
    caps = {c.decode("ascii", "replace") if isinstance(c, bytes) else c for c in capabilities}
    caps = {c.upper() for c in caps}
    items = [BASE_META_ITEMS]
    if "CONDSTORE" in caps or "QRESYNC" in caps:
        items.append("MODSEQ")
    if "OBJECTID" in caps:
        items.append("EMAILID THREADID")
    if "X-GM-EXT-1" in caps:
        items.append("X-GM-MSGID X-GM-THRID X-GM-LABELS")
    return " ".join(items)


def fetch_meta(
    client: imapclient.IMAPClient, uid_set: str, items: str | None = None
) -> list[MessageMeta]:
    """``UID FETCH <uid_set> (<items>)`` parsed into ``MessageMeta``, in the server's order.

    *uid_set* is any IMAP set (``1:*``, ``100:200``, ``5,7,9``); *items* defaults to
    ``meta_items(client.capabilities())``. A message is returned only if its UID lies in
    *uid_set* (``*`` read as unbounded, so ``51:*`` never yields UID 50) and the server sent a
    requested item beyond UID/FLAGS/MODSEQ for it. Unsolicited flag updates (another session's
    changes, sent in the middle of the answer) are ignored for other messages and merged into a
    requested one, the latest FLAGS winning - including the ones without a UID that servers send
    when QRESYNC is off, matched by their sequence number to this command's own responses.
    Each message's ``seq`` is the sequence number its response came with (None when an
    EXPUNGE or VANISHED in the answer may have renumbered it).
    """
    if not _checked(uid_set):
        return []
    collector = _Collector(underlying.connection(client), parse.SequenceSet(uid_set))
    _run(underlying.connection(client), f"UID FETCH {uid_set} ({items or meta_items(client.capabilities())})",
         collector.on_untagged)
    metas = (parse.message_meta(f) for f in collector.found.values()
             if not _UNSOLICITED_ITEMS.issuperset(f))
    metas = [meta for meta in metas if meta is not None]
    for meta in metas:
        meta.seq = collector.seq_of_uid.get(meta.uid)
    return metas


def fetch_flags(
    client: imapclient.IMAPClient,
    uid_set: str,
    changedsince: int | None = None,
    vanished: bool = False,
    labels: bool = False,
) -> tuple[list[FlagChange], list[int]]:
    """Current flags of *uid_set*, optionally only those changed since a MODSEQ.

    Sends ``UID FETCH <set> (UID FLAGS [MODSEQ]) [(CHANGEDSINCE n [VANISHED])]``; MODSEQ is asked
    for when the server has CONDSTORE. Returns ``(changes, vanished_uids)``: one ``FlagChange`` per
    UID in *uid_set* (unsolicited updates are handled as in ``fetch_meta``), and the UIDs the
    server reported expunged, sorted: ``* VANISHED (EARLIER)`` answers to the VANISHED modifier,
    live ``* VANISHED`` notifications during the command, and any VANISHED imaplib had queued
    from earlier commands (popped, so each is reported once, whatever set it was asked for).

    ``labels=True`` (Gmail, X-GM-EXT-1) fetches X-GM-LABELS with the flags: a label change
    moves a message's MODSEQ as a flag change does, so both are found by one FETCH.

    ``vanished=True`` needs *changedsince* and QRESYNC enabled on this connection: the caller
    does ``client.enable("QRESYNC")`` before selecting the folder (imapclient refuses ENABLE once
    a folder is selected); without it servers answer BAD.
    """
    if vanished and changedsince is None:
        raise ValueError("VANISHED needs CHANGEDSINCE (RFC 7162)")
    gone = _pop_queued_vanished(underlying.connection(client))
    if not _checked(uid_set):
        return [], sorted(set(gone))
    condstore = changedsince is not None or client.has_capability("CONDSTORE")
    command = (f"UID FETCH {uid_set} (UID FLAGS{' MODSEQ' if condstore else ''}"
               f"{' X-GM-LABELS' if labels else ''})")
    if changedsince is not None:
        command += f" (CHANGEDSINCE {int(changedsince)}{' VANISHED' if vanished else ''})"
    collector = _Collector(underlying.connection(client), parse.SequenceSet(uid_set), vanished=gone)
    _run(underlying.connection(client), command, collector.on_untagged)
    changes = (parse.flag_change(fetched) for fetched in collector.found.values())
    return [change for change in changes if change is not None], sorted(set(gone))


def search_uids(client: imapclient.IMAPClient, criteria: str = "ALL") -> list[int]:
    """``UID SEARCH <criteria>`` as a sorted list of UIDs.

    With ESEARCH the server is asked for ``RETURN (ALL)``, whose compact ranges keep the answer
    small for large folders (a plain SEARCH answer is one line with every UID, and imaplib
    refuses lines over 1 MB). *criteria* is raw IMAP search syntax, already quoted by the caller,
    and ASCII unless UTF8=ACCEPT is enabled.
    """
    imap = underlying.connection(client)
    uids: list[int] = []
    if client.has_capability("ESEARCH"):
        tag = _send(imap, f"UID SEARCH RETURN (ALL) {criteria}")

        def on_esearch(texts: list[bytes], literals: list[bytes]) -> None:
            if texts[0][:10].upper() == b"* ESEARCH ":
                uids.extend(_esearch_uids(b" ".join(texts), literals, tag, MAX_UIDS - len(uids)))
            else:
                _stash(imap, texts, literals)

        _finish(imap, tag, "UID SEARCH", on_esearch)
    else:

        def on_search(texts: list[bytes], literals: list[bytes]) -> None:
            if texts[0][:9].upper() == b"* SEARCH ":
                uids.extend(search_line_uids(texts[0], MAX_UIDS - len(uids)))
            elif texts[0].upper() != b"* SEARCH":
                _stash(imap, texts, literals)

        _run(imap, f"UID SEARCH {criteria}", on_search)
    return sorted(set(uids))


def search_count(client: imapclient.IMAPClient, criteria: str = "ALL") -> int:
    """How many messages ``UID SEARCH <criteria>`` finds.

    With ESEARCH only the number is asked for (``RETURN (COUNT)``): the ranges of a criterion
    such as UNSEEN in a big folder read at random are one line of megabytes (1,000,000
    messages: several MB), to be parsed into a list only to be counted.
    """
    if not client.has_capability("ESEARCH"):
        return len(search_uids(client, criteria))
    imap = underlying.connection(client)
    tag = _send(imap, f"UID SEARCH RETURN (COUNT) {criteria}")
    found: list[int] = []

    def on_esearch(texts: list[bytes], literals: list[bytes]) -> None:
        if texts[0][:10].upper() == b"* ESEARCH ":
            count = _esearch_value(b" ".join(texts), literals, tag, b"COUNT")
            if count is not None:
                found.append(int(count))
        else:
            _stash(imap, texts, literals)

    _finish(imap, tag, "UID SEARCH", on_esearch)
    return found[0] if found else 0  # RFC 4731: COUNT may be left out when it is 0


def command(client: imapclient.IMAPClient, text: str) -> bytes:
    """Send a command imapclient has no method for (``NOTIFY SET ...``); untagged answers
    are stashed in imaplib's ``untagged_responses`` as usual. Returns the tagged OK text."""
    imap = underlying.connection(client)
    return _run(imap, text, lambda texts, literals: _stash(imap, texts, literals))


def command_collecting(client: imapclient.IMAPClient, text: str,
                       kinds: frozenset[str]) -> dict[str, list[list]]:
    """``command``, with the untagged responses of ``kinds`` (``LIST``, ``STATUS``...) handed
    back instead of stashed: for each kind, each response as imaplib would have stored it (what
    ``parse_response`` reads), in the order they came. Other kinds are stashed as usual."""
    imap = underlying.connection(client)
    found: dict[str, list[list]] = {kind: [] for kind in kinds}

    def collect(texts: list[bytes], literals: list[bytes]) -> None:
        match = _UNTAGGED.match(texts[0])
        name = match.group(2).upper().decode("ascii") if match else ""
        if name not in found:
            _stash(imap, texts, literals)
            return
        found[name].append(_pieces(match, texts, literals))

    _run(imap, text, collect)
    return found


# -- response plumbing -----------------------------------------------------------------------


def _checked(uid_set: str) -> bool:
    """False for an empty set; ValueError for anything but an IMAP sequence set."""
    if not uid_set:
        return False
    if not _SEQUENCE_SET.match(uid_set):
        raise ValueError(f"not an IMAP sequence set: {uid_set[:100]!r}")
    return True


class _Collector:
    """Gathers one command's FETCH responses by UID (see ``fetch_meta`` for the rules).

    A response without a UID is attributed through the sequence numbers this command's own
    responses paired with UIDs; an EXPUNGE or live VANISHED renumbers messages, so that pairing
    is then forgotten. With *vanished* given, VANISHED responses are collected there instead of
    being filed with imaplib.
    """

    def __init__(self, imap: Any, wanted: parse.SequenceSet, vanished: list[int] | None = None):
        self.imap = imap
        self.wanted = wanted
        self.vanished = vanished
        self.found: dict[int, dict[str, Any]] = {}
        self.uid_of_seq: dict[int, int] = {}
        self.seq_of_uid: dict[int, int] = {}  # forgotten with the pairing (see above)

    def on_untagged(self, texts: list[bytes], literals: list[bytes]) -> None:
        if _FETCH.match(texts[0]):
            self._fetched(*parse.parse_fetch(b" ".join(texts), literals))
            return
        head = texts[0][2:12].upper().split(b" ", 2)  # "* VANISHED ..." or "* 5 EXPUNGE"
        if head[0] == b"VANISHED" or head[1:2] == [b"EXPUNGE"]:
            self.uid_of_seq.clear()
            self.seq_of_uid.clear()
        if self.vanished is not None and head[0] == b"VANISHED":
            self.vanished.extend(_vanished_uids(texts[0][11:], MAX_UIDS - len(self.vanished)))
        else:
            _stash(self.imap, texts, literals)

    def _fetched(self, seq: int | None, items: dict[str, Any]) -> None:
        uid = parse.as_int(items.get("UID"))
        if uid is None:
            uid = self.uid_of_seq.get(seq) if seq is not None else None
            if uid is None:
                return
            items["UID"] = b"%d" % uid
        elif seq is not None:
            self.uid_of_seq[seq] = uid
            self.seq_of_uid[uid] = seq
        if uid not in self.wanted:
            return
        if uid in self.found:
            self.found[uid].update(items)
        else:
            self.found[uid] = items


def _esearch_uids(text: bytes, literals: Sequence[bytes], tag: bytes, room: int) -> list[int]:
    """UIDs of ``* ESEARCH (TAG "A5") UID ALL 1:3,7`` when it answers *tag*."""
    value = _esearch_value(text, literals, tag, b"ALL")
    return _expanded(value, room) if value is not None else []


def _expanded(text: bytes, room: int) -> list[int]:
    """``parse.expand_sequence_set``, once the numbers it would give are counted (with its
    rules for each item) and found to be at most *room*: else ``imaplib.IMAP4.abort``."""
    count = 0
    for item in text.decode("ascii", "replace").strip().split(","):
        low, colon, high = item.strip().partition(":")
        low, high = low.strip(), high.strip() if colon else low.strip()
        if low.isdigit() and high.isdigit():
            count += abs(int(high) - int(low)) + 1
    _check_room(count, room)
    return parse.expand_sequence_set(text)


def search_line_uids(line: bytes, room: int) -> list[int]:
    """UIDs of a plain ``* SEARCH 3 7 9`` line, at most *room* of them (else an abort)."""
    words = line[9:].split()
    _check_room(len(words), room)
    return [int(n) for n in words if n.isdigit()]


def _check_room(count: int, room: int) -> None:
    if count > room:
        raise imaplib.IMAP4.abort(f"the server listed more than {MAX_UIDS:,} UIDs in one "
                                  "answer, more than any folder holds")


def _esearch_value(text: bytes, literals: Sequence[bytes], tag: bytes, name: bytes) -> bytes | None:
    """The value after *name* (``ALL``, ``COUNT``) in an ESEARCH response answering *tag*;
    None when it answers another command (NOTIFY or CONTEXT updates) or has no such item."""
    tree = parse.parse_tokens(text, literals)
    correlator = next((node for node in tree if isinstance(node, list)), None)
    if correlator and len(correlator) >= 2 and correlator[1] != tag:
        return None
    words = [node for node in tree if not isinstance(node, list)]
    for index, word in enumerate(words[:-1]):
        if isinstance(word, bytes) and word.upper() == name and isinstance(words[index + 1], bytes):
            return words[index + 1]
    return None


def _vanished_uids(rest: bytes, room: int) -> list[int]:
    """UIDs of a VANISHED response after the word VANISHED: ``(EARLIER) 1:5,8`` or ``7``."""
    rest = rest.strip()
    if rest[:1] == b"(":
        rest = rest.partition(b")")[2]
    return _expanded(rest.strip(), room)


def _pop_queued_vanished(imap: Any) -> list[int]:
    uids: list[int] = []
    for data in imap.untagged_responses.pop("VANISHED", None) or ():
        if isinstance(data, bytes):
            uids.extend(_vanished_uids(data, MAX_UIDS - len(uids)))
    return uids


def _run(imap: Any, command: str, on_untagged: OnUntagged) -> bytes:
    """Send *command*, feed each untagged response to *on_untagged*, return the tagged OK text."""
    return _finish(imap, _send(imap, command), " ".join(command.split(" ", 2)[:2]), on_untagged)


def _send(imap: Any, command: str) -> bytes:
    """Send *command* under a fresh tag from imaplib's own counter (no clash with imapclient's).

    ``imap.send``/``readline``/``read`` are imaplib's documented I/O methods, so plain sockets,
    implicit TLS and STARTTLS all work.
    """
    if "\r" in command or "\n" in command:
        raise ValueError("an IMAP command cannot contain CR or LF")
    data = command.encode(imap._encoding)
    tag = imap._new_tag()
    try:
        imap.send(tag + b" " + data + b"\r\n")
    except BaseException:
        imap.tagged_commands.pop(tag, None)
        raise
    return tag


def _finish(imap: Any, tag: bytes, name: str, on_untagged: OnUntagged) -> bytes:
    try:
        return _read_until_tagged(imap, tag, name, on_untagged)
    finally:
        imap.tagged_commands.pop(tag, None)


def _read_until_tagged(imap: Any, tag: bytes, name: str, on_untagged: OnUntagged) -> bytes:
    readline, read = imap.readline, imap.read
    tagged = tag + b" "
    while True:
        line = _line(imap, readline())
        if line[:2] == b"* ":
            texts, literals = [line], []
            size = parse.literal_size(line)
            while size is not None:
                literal = read(size)
                if len(literal) != size:
                    raise imap.abort("socket error: EOF inside a literal")
                literals.append(literal)
                line = _line(imap, readline())
                texts.append(line)
                size = parse.literal_size(line)
            if texts[0][:6].upper() == b"* BYE ":
                _stash(imap, texts, literals)
                raise imap.abort(texts[0][6:].decode("utf-8", "replace"))
            on_untagged(texts, literals)
        elif line.startswith(tagged):
            status, _, text = line[len(tagged) :].partition(b" ")
            if status.upper() == b"OK":
                return text
            reason = text.decode("utf-8", "replace")
            raise imap.error(f"{name} failed: {status.decode('ascii', 'replace')} {reason}")
        else:
            raise imap.abort(f"unexpected response: {line[:200]!r}")


def _line(imap: Any, line: bytes) -> bytes:
    if not line:
        raise imap.abort("socket error: EOF")
    if not line.endswith(b"\r\n"):
        raise imap.abort(f"socket error: unterminated line: {line[:200]!r}")
    return line[:-2]


def _stash(imap: Any, texts: list[bytes], literals: list[bytes]) -> None:
    """Store an untagged response in ``imap.untagged_responses`` the way imaplib does."""
    match = _UNTAGGED.match(texts[0])
    if not match:
        return
    name = match.group(2).upper().decode("ascii")
    pieces = _pieces(match, texts, literals)
    for piece in pieces:
        imap._append_untagged(name, piece)
    if name in ("OK", "NO", "BAD"):
        code = _RESPONSE_CODE.match(pieces[0][0] if literals else pieces[0])
        if code:
            imap._append_untagged(code.group(1).upper().decode("ascii"), code.group(2) or b"")


def _pieces(match: re.Match, texts: list[bytes], literals: list[bytes]) -> list:
    """An untagged response's data the way imaplib stores it: ``(text, literal)`` for each
    literal, then the text after the last (``b""`` if none)."""
    number, _, rest = match.groups()
    first = b" ".join(part for part in (number, rest) if part is not None)
    pieces = [first, *texts[1:]]
    return [*((pieces[index], literal) for index, literal in enumerate(literals)),
            pieces[len(literals)] if len(pieces) > len(literals) else b""]
