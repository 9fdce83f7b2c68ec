"""Folder-level IMAP operations the sync engine needs, returning plain values.

``ImapSession`` wraps a logged-in ``imapclient.IMAPClient`` and knows the server's extensions:
it ENABLEs QRESYNC (which implies CONDSTORE) when offered, so SELECT reports HIGHESTMODSEQ and
FETCH can ask for changes since a modseq, with expunges reported as VANISHED. Folders are
opened read-only (EXAMINE) because indexing must never change a flag.

UIDs are only meaningful together with the UIDVALIDITY of the SELECT that produced them; the
caller compares ``SelectInfo.uidvalidity`` with what it stored before trusting any UID.
"""

from __future__ import annotations

import imaplib
import select
from dataclasses import dataclass, field

import imapclient
from imapclient import imap_utf7
from imapclient.imapclient import _parse_untagged_response

from emailapi.lib.storable import storable_text
from mailboxes.imap import fetch, parts, underlying
from mailboxes.imap.parse import imaplib_responses, parse_tokens

# RFC 5465: changes anywhere in the user's own folders arrive on the IDLE connection, as
# untagged STATUS for unselected folders and LIST for created/deleted/renamed ones.
NOTIFY_SET = ("NOTIFY SET (selected (MessageNew MessageExpunge FlagChange)) "
              "(personal (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange))")

# Untagged responses that say the selected folder's view changed (imaplib's keys).
_VIEW_CHANGES = ("EXISTS", "EXPUNGE", "VANISHED")

SPECIAL_USE = ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Important", "\\Junk", "\\Sent",
               "\\Trash")
# Servers without SPECIAL-USE: recognise the usual English names.
SPECIAL_USE_NAMES = {
    "sent": "\\Sent", "sent items": "\\Sent", "sent mail": "\\Sent", "sent messages": "\\Sent",
    "drafts": "\\Drafts", "trash": "\\Trash", "deleted items": "\\Trash",
    "deleted messages": "\\Trash", "junk": "\\Junk", "spam": "\\Junk", "junk e-mail": "\\Junk",
    "archive": "\\Archive", "archives": "\\Archive",
}


@dataclass(frozen=True, slots=True)
class FolderListing:
    path: str
    name: str
    delimiter: str
    parent_path: str
    flags: tuple[str, ...]
    special_use: str
    subscribed: bool
    no_select: bool


@dataclass(frozen=True, slots=True)
class SelectInfo:
    path: str
    uidvalidity: int
    uidnext: int
    exists: int
    highestmodseq: int | None


@dataclass(frozen=True, slots=True)
class FolderStatus:
    path: str
    uidvalidity: int | None
    uidnext: int | None
    messages: int
    unseen: int
    highestmodseq: int | None


def _str(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class ImapSession:
    def __init__(self, client: imapclient.IMAPClient):
        self.client = client
        # Shared between all sessions to servers with the same capabilities (a worker holds
        # thousands of sessions, mostly to a few servers).
        self.capabilities = underlying.shared_names(
            frozenset(_str(c).upper() for c in client.capabilities()))
        underlying.share_capabilities(client)
        self.qresync = False
        if "QRESYNC" in self.capabilities:
            self.client.enable("QRESYNC")
            self.qresync = True
        elif "CONDSTORE" in self.capabilities and "ENABLE" in self.capabilities:
            self.client.enable("CONDSTORE")
        self.selected: str | None = None
        self.writable = False  # the selected folder was opened with SELECT, not EXAMINE
        # The FETCH items of ``fetch_meta``; X-GM-THRID leaves it if the server refuses it.
        self.meta_items = underlying.shared(fetch.meta_items(self.capabilities))

    @property
    def condstore(self) -> bool:
        return "CONDSTORE" in self.capabilities or self.qresync

    @property
    def notify(self) -> bool:
        return "NOTIFY" in self.capabilities

    def notify_set(self) -> None:
        fetch.command(self.client, NOTIFY_SET)

    def queued_notifications(self) -> "Notifications":
        """STATUS/LIST notices that arrived during other commands (imaplib queued them)."""
        queued = underlying.untagged_responses(self.client)
        found = Notifications()
        for raw in queued.pop("STATUS", []):
            if isinstance(raw, bytes):
                try:
                    parsed = underlying.parse_response([raw])
                except Exception:  # noqa: BLE001 - a notice we cannot read: the poll covers it
                    continue
                if parsed:
                    found.paths.add(_folder_name(parsed[0]))
        if queued.pop("LIST", None):
            found.folders_changed = True
        return found

    def fetch_meta(self, uid_set: str) -> list:
        """``fetch.fetch_meta`` of *uid_set* in the selected folder with this server's items.

        Gmail's X-GM-EXT-1 documents X-GM-THRID, but a server may advertise the capability
        without it (hoodiecrow-imap, the test suite's Gmail stand-in, answers BAD): then the
        FETCH is sent again without it, once, and this session leaves it out from then on
        (threadId is computed from the headers instead, as on any other server)."""
        try:
            metas = fetch.fetch_meta(self.client, uid_set, self.meta_items)
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error:
            if " X-GM-THRID" not in self.meta_items:
                raise
            self.meta_items = self.meta_items.replace(" X-GM-THRID", "")
            metas = fetch.fetch_meta(self.client, uid_set, self.meta_items)
        for meta in metas:
            if parts.is_unsplit(meta.text_parts) and meta.size <= parts.LOCAL_PARSE_LIMIT:
                self._add_local_attachments(meta)
        return metas

    def _add_local_attachments(self, meta) -> None:
        """A body the server could not split (e.g. an RFC 2231-encoded boundary) shows no
        attachments in BODYSTRUCTURE: they are found by parsing the source here, one FETCH
        for each such message (they are rare)."""
        try:
            meta.attachments = parts.local_attachments(self.client, meta.uid)
        except parts.MessageNotFound:
            return  # expunged meanwhile: its row goes with the next sync
        meta.has_attachments = bool(meta.attachments)

    @property
    def gmail(self) -> bool:
        """Gmail's IMAP extensions (X-GM-EXT-1: labels, X-GM-MSGID, X-GM-RAW)."""
        return "X-GM-EXT-1" in self.capabilities

    def has(self, capability: str) -> bool:
        return capability.upper() in self.capabilities

    def list_folders(self) -> list[FolderListing]:
        subscribed = {name for _, _, name in self.client.list_sub_folders()}
        return [_listing(tuple(_str(f) for f in flags), delimiter, _str(name), subscribed)
                for flags, delimiter, name in self.client.list_folders() if _nameable(_str(name))]

    def list_folders_and_status(self) -> tuple[list[FolderListing], dict[str, FolderStatus]]:
        """The folder list and each folder's STATUS in one command where the server has
        LIST-STATUS (RFC 5819) and LIST-EXTENDED (RFC 5258, for ``RETURN (SUBSCRIBED)``):
        a worker restart then costs each account one round trip instead of LSUB, LIST and a
        STATUS per folder (which were half of a restarted account's sync). Elsewhere
        ``list_folders()`` and no statuses: the caller asks for each folder's. Not for a
        session with NOTIFY set: its STATUS notices would mix with the answers."""
        if not (self.has("LIST-STATUS") and self.has("LIST-EXTENDED")):
            return self.list_folders(), {}
        # CHILDREN and SPECIAL-USE: the flags a plain LIST gives (asked for any return
        # option, a server gives only those asked for).
        returns = "SUBSCRIBED CHILDREN" + (" SPECIAL-USE" if self.has("SPECIAL-USE") else "")
        found = fetch.command_collecting(
            self.client,
            f'LIST "" "*" RETURN ({returns} STATUS ({" ".join(self._status_items())}))',
            frozenset({"LIST", "STATUS"}))
        listings = []
        for data in found["LIST"]:
            raw_flags, delimiter, name = _tokens(data)[:3]
            flags = tuple(_str(f) for f in raw_flags)
            path = _folder_name(name)
            if not _nameable(path):
                continue
            subscribed = {path} if any(f.lower() == "\\subscribed" for f in flags) else set()
            listings.append(_listing(tuple(f for f in flags if f.lower() != "\\subscribed"),
                                     delimiter, path, subscribed))
        statuses = {}
        for data in found["STATUS"]:
            name, items = _tokens(data)[:2]
            path = _folder_name(name)
            statuses[path] = _folder_status(path, dict(zip(items[::2], items[1::2],
                                                           strict=True)))
        return listings, statuses

    def select(self, path: str) -> SelectInfo:
        response = self.client.select_folder(path, readonly=True)
        self.selected, self.writable = path, False
        modseq = response.get(b"HIGHESTMODSEQ")
        return SelectInfo(
            path=path,
            uidvalidity=int(response[b"UIDVALIDITY"]),
            uidnext=int(response.get(b"UIDNEXT") or 1),
            exists=int(response.get(b"EXISTS") or 0),
            highestmodseq=int(modseq) if modseq is not None and self.condstore else None,
        )

    def open(self, path: str, refresh: bool = True) -> bool:
        """Make *path* the selected folder for reading; True if it already was.

        A pooled connection that has it selected needs no new SELECT (13 ms on a 10,000-message
        Dovecot folder). ``refresh`` sends a NOOP so that messages that arrived since are
        visible (what a search needs); a fetch by UID can skip it and retry with
        ``refresh=True`` if the UID turns out unknown: Dovecot flushes its cache on NOOP after
        a fetch, which costs ~12 ms, 25 times the fetch itself."""
        if self.selected == path:
            if refresh:
                self.client.noop()
            return True
        self.select(path)
        return False

    def open_writable(self, path: str) -> None:
        """Select *path* read-write (for STORE, MOVE, EXPUNGE) unless it already is."""
        if self.selected != path or not self.writable:
            self.client.select_folder(path, readonly=False)
            self.selected, self.writable = path, True

    def run_current(self, path: str, command):
        """Run ``command()`` (a SEARCH, say) on *path* as the server holds it now, without
        the NOOP that ``open(refresh=True)`` would send first (12-15 ms on Dovecot: it
        flushes caches). A freshly selected folder is current; on a reused selection, the
        server reports any change to its view (EXISTS, EXPUNGE, VANISHED) at the end of the
        command, and only then is the command run again on the new view. The command pool
        NOOPs any connection idle for more than a second before handing it out, so servers
        that report changes only on NOOP are at most a second behind."""
        if not self.open(path, refresh=False):
            return command()
        untagged = underlying.untagged_responses(self.client)
        for kind in _VIEW_CHANGES:
            untagged.pop(kind, None)
        result = command()
        if any(kind in untagged for kind in _VIEW_CHANGES):
            result = command()
        return result

    def status(self, path: str) -> FolderStatus:
        return _folder_status(path, self.client.folder_status(path, self._status_items()))

    def _status_items(self) -> list[str]:
        items = ["MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN"]
        if self.condstore:
            items.append("HIGHESTMODSEQ")
        return items

    def storage_quota(self) -> tuple[int, int] | None:
        """The mailbox's storage quota (RFC 9208 ``GETQUOTAROOT INBOX``) as bytes used and
        bytes allowed; None when the server has no QUOTA or sets no STORAGE limit."""
        if not self.has("QUOTA"):
            return None
        _roots, quotas = self.client.get_quota_root("INBOX")
        for quota in quotas:
            if _str(quota.resource).upper() == "STORAGE" and quota.limit:
                return int(quota.usage) * 1024, int(quota.limit) * 1024  # units of 1024 octets
        return None

    def unseen_count(self) -> int:
        # ESEARCH's COUNT: one number, not the ranges (megabytes at 1,000,000 messages).
        return fetch.search_count(self.client, "UNSEEN")


@dataclass
class Notifications:
    """What unsolicited responses said changed: folders by path, or the folder list."""

    paths: set[str] = field(default_factory=set)
    folders_changed: bool = False
    selected_changed: bool = False

    @property
    def any(self) -> bool:
        """Whether anything changed at all (``* OK Still here`` keepalives say nothing)."""
        return bool(self.paths) or self.folders_changed or self.selected_changed

    def merge(self, other: "Notifications") -> "Notifications":
        self.paths |= other.paths
        self.folders_changed = self.folders_changed or other.folders_changed
        self.selected_changed = self.selected_changed or other.selected_changed
        return self


def start_idle(client: imapclient.IMAPClient) -> bool:
    """Send IDLE and wait for the server's continuation; True when untagged data (``* 5
    EXISTS``) came before it.

    RFC 3501 lets a server send untagged responses at any time, and Dovecot reports changes
    made since the last command right as IDLE starts. ``IMAPClient.idle`` takes anything
    but the continuation as a protocol error, which cost the session (a logout and a login)
    whenever mail arrived while a sync was interrupted. The caller syncs at once on True."""
    imap = underlying.connection(client)
    tag = imap._command("IDLE")
    client._idle_tag = tag
    early = False
    while imap._get_response() is not None:
        if imap.tagged_commands.get(tag):
            typ, data = imap.tagged_commands.pop(tag)
            raise imaplib.IMAP4.error(f"IDLE refused: {typ} {_str(data[0] if data else '')}")
        early = True
    started = getattr(imap, "idle_started", None)  # the engine's client: no answer deadline
    if started is not None:
        started()
    imap.untagged_responses.clear()
    # imaplib keeps its last regex match (and so the last line read) until the next line: a
    # session idles for minutes to hours, and every line is matched afresh before it is used.
    imap.mo = None
    if not early:
        park_reader(client)
    return early


def park_reader(client: imapclient.IMAPClient) -> bool:
    """Let go of the client's read buffer while it idles (the next read makes a new one),
    unless it holds bytes not read yet. Returns whether it did."""
    park = getattr(underlying.connection(client), "park_reader", None)  # the engine's client
    if park is None or input_waiting(client, buffered_only=True):
        return False
    park()
    return True


def idle_responses(client: imapclient.IMAPClient) -> list:
    """What the server has sent during IDLE, parsed as ``IMAPClient.idle_check`` does, each
    line read whole.

    ``idle_check`` reads until the socket would block, in non-blocking mode. On a TLS socket a
    line split across two TLS records then loses its first half (the TLS layer's "want read"
    is not a would-block to Python's buffered reader, which drops what it had gathered), and
    the rest reads as a protocol violation: a needless reconnect. Here a line is only read
    once input is known to be waiting, in blocking mode (bounded by the read timeout), so the
    rest of a line that has begun is simply waited for. An end of stream ends the list (the
    caller's DONE then finds the server gone).

    The session is still idling afterwards, with nothing left to read: the reader the read
    made is let go of again (``park_reader``), as ``start_idle`` does. Servers send keepalives
    to every idling session (Dovecot's ``* OK Still here`` every 2 minutes), and the worker
    goes back to idling after one without a command."""
    responses = []
    while len(responses) < MAX_IDLE_RESPONSES and input_waiting(client):
        try:
            line = underlying.read_line(client)
        except imaplib.IMAP4.abort as exc:
            if "EOF" in str(exc):
                break
            raise
        responses.append(_parse_untagged_response(line))
    park_reader(client)
    return responses


# The most ``idle_responses`` reads at once. A server that sends without end while we idle
# kept it reading for ever, its list growing with every line: the caller now gets these,
# finds more waiting, and ends the IDLE, whose DONE has the bounds of any command
# (``client.AnswerTooLong``, ``client.MAX_KEPT``). Real notices come a few at a time; a
# thousand is a flood, or a burst the sync that follows reads from the folder anyway.
MAX_IDLE_RESPONSES = 1000


def input_waiting(client: imapclient.IMAPClient, buffered_only: bool = False) -> bool:
    """Whether anything from the server is waiting to be read: in the client's read buffer,
    the TLS layer's, or (unless ``buffered_only``) on the socket."""
    sock = client.socket()
    if hasattr(sock, "pending") and sock.pending():
        return True
    reader = underlying.read_buffer(client)
    peek = getattr(reader, "peek", None)
    if peek is not None:
        original = sock.gettimeout()
        sock.setblocking(False)
        try:
            if peek(1):
                return True
        except (BlockingIOError, OSError, ValueError):
            pass
        finally:
            sock.settimeout(original)
    if buffered_only:
        return False
    try:
        # poll, not select: select refuses descriptors above 1023, and a worker holding
        # thousands of sessions has them (every read of an IDLE then waited for its timeout).
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True  # closed under us: reading says how


def read_notifications(responses) -> Notifications:
    """Sort responses ``IMAPClient.idle_check`` returned (pure): ``(b'STATUS', name, (...))``
    names a changed unselected folder, ``(b'LIST', flags, delimiter, name)`` a changed folder
    list, and anything else (``(n, b'EXISTS')``, FETCH, EXPUNGE, VANISHED) the selected one."""
    found = Notifications()
    for response in responses:
        if not isinstance(response, tuple) or not response:
            continue
        kind = response[0]
        if kind == b"STATUS" and len(response) >= 2:
            found.paths.add(_folder_name(response[1]))
        elif kind == b"LIST":
            found.folders_changed = True
        elif kind in (b"OK", b"NO", b"BAD", b"BYE", b"CAPABILITY"):
            continue
        else:
            found.selected_changed = True
    return found


def _listing(flags: tuple[str, ...], delimiter, path: str, subscribed: set[str]) -> FolderListing:
    delimiter = _str(delimiter) if delimiter else ""
    parent, _, leaf = path.rpartition(delimiter) if delimiter else ("", "", path)
    return FolderListing(
        path=path, name=leaf or path, delimiter=delimiter, parent_path=parent,
        flags=flags, special_use=special_use_of(path, flags),
        subscribed=path in subscribed or path.upper() == "INBOX",
        no_select=any(f.lower() in ("\\noselect", "\\nonexistent") for f in flags),
    )


def _tokens(data: list) -> list:
    """One untagged response as imaplib stores it, parsed: atoms and strings as bytes, NIL
    as None, lists as lists (``parse.parse_tokens``). imapclient's parser lexes character
    by character, and at a worker restart the LIST-STATUS answer of every account (a dozen
    lines each) was most of its sync's CPU."""
    text, literals = next(imaplib_responses(data), (b"", []))
    return parse_tokens(text, literals)


def _folder_status(path: str, response: dict) -> FolderStatus:
    """A STATUS answer (``{b"MESSAGES": b"3", ...}``; numbers as bytes or ints)."""
    response = {_str(key).upper(): value for key, value in response.items()}
    modseq = response.get("HIGHESTMODSEQ")
    return FolderStatus(
        path=path,
        uidvalidity=int(response["UIDVALIDITY"]) if "UIDVALIDITY" in response else None,
        uidnext=int(response["UIDNEXT"]) if "UIDNEXT" in response else None,
        messages=int(response.get("MESSAGES") or 0),
        unseen=int(response.get("UNSEEN") or 0),
        highestmodseq=int(modseq) if modseq is not None else None,
    )


def _nameable(path: str) -> bool:
    """Whether a folder the server listed can be named back to it and stored: not a name
    holding NUL (no IMAP string may) or a lone surrogate (modified UTF-7 of half a pair,
    ``&2AA-``), which PostgreSQL cannot store; every sync of such a server's account failed
    on it. Such a folder is left out of the listing, as if the server had not listed it."""
    return storable_text(path) is path


def _folder_name(raw) -> str:
    if isinstance(raw, bytes):
        return imap_utf7.decode(raw)
    return str(raw)


def special_use_of(path: str, flags: tuple[str, ...]) -> str:
    if path.upper() == "INBOX":
        return "\\Inbox"
    for flag in flags:
        for use in SPECIAL_USE:
            if flag.lower() == use.lower():
                return use
    leaf = path.rsplit("/", 1)[-1].rsplit(".", 1)[-1].lower()
    return SPECIAL_USE_NAMES.get(leaf, "")
