"""A message as listings, searches and events show it: one table of fields drives every copy.

``FIELDS`` is the one list. From it come:

- the columns a new index row gets from a parsed message (``stored_values``, used by the
  index writer ``mailboxes.sync.index``);
- the columns a listing reads (``COLUMNS``: the one-query listing SQL and the index search
  select exactly these, so a field cannot be shown without being read);
- the message shape of the API and of ``messageNew``/``messageMoved`` events (``summary``);
- the documented serializer of the OpenAPI document (``mailboxes.api.serializers`` builds
  ``MessageSummarySerializer`` from ``kind`` and ``null``).

Adding a field to listings: the model column and its migration, the line of the FETCH parser
that fills ``MessageMeta``, and one row here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from emailapi.lib.timestamps import utc_iso
from mailboxes import ids

# What a value is, for the documented serializer.
STRING = "string"
TEXT = "text"  # a string that may be empty
INTEGER = "integer"
BOOLEAN = "boolean"
DATETIME = "datetime"
STRINGS = "strings"
ADDRESS = "address"  # {"name", "address"}
ADDRESSES = "addresses"
TEXT_INFO = "text_info"  # {"id", "encodedSize": {"plain"?, "html"?}}
ATTACHMENTS = "attachments"  # [{"id", "contentType", "encodedSize", "embedded", ...}]


@dataclass(frozen=True)
class MessageField:
    name: str  # the key in the API's and the events' message
    kind: str
    show: Callable[[Any, Any], Any]  # (folder, row) -> the shown value
    column: str | None = None  # the Message column the field is kept in, if it has its own
    reads: tuple[str, ...] = ()  # further columns ``show`` reads
    # The column's value in a new index row, from the parsed ``MessageMeta``; None where the
    # index writer computes it (ids that need the batch's threads).
    store: Callable[[Any], Any] | None = None
    null: bool = False


def iso(value: datetime | None) -> str | None:
    """A timestamp as the API shows it (``emailapi.lib.timestamps``: UTC, milliseconds, Z)."""
    # In UTC whatever offset the message's Date header had (a row made from a parsed header,
    # as for messageNew/messageMoved, keeps that offset until it is stored).
    return utc_iso(value) if value else None


def _column(name: str, column: str, kind: str, store: Callable[[Any], Any] | None,
            null: bool = False, empty_is_none: bool = False) -> MessageField:
    """A field that shows its own column as it is (or ``None`` for an empty string, with
    ``empty_is_none``: ids and headers the message may lack)."""
    if empty_is_none:
        def show(folder, row):
            return getattr(row, column) or None
    else:
        def show(folder, row):
            return getattr(row, column)
    return MessageField(name, kind, show, column=column, store=store,
                        null=null or empty_is_none)


def _first_address(attr: str) -> Callable[[Any], dict | None]:
    def store(meta):
        addresses = getattr(meta, attr)
        return addresses[0].as_dict() if addresses else None
    return store


def _addresses(attr: str) -> Callable[[Any], list[dict]]:
    return lambda meta: [a.as_dict() for a in getattr(meta, attr)]


def _has_flag(flag: str, name: str, present: bool = True) -> MessageField:
    if present:
        def show(folder, row):
            return flag in row.flags
    else:
        def show(folder, row):
            return flag not in row.flags
    return MessageField(name, BOOLEAN, show, reads=("flags",))


# EmailEngine's order: the first special use of these that the folder (or a Gmail label) has.
MESSAGE_SPECIAL_USES = ("\\Junk", "\\Sent", "\\Trash", "\\Inbox", "\\Drafts")


def message_special_use(folder, row) -> str | None:
    if folder.special_use in MESSAGE_SPECIAL_USES:
        return folder.special_use
    return next((tag for tag in MESSAGE_SPECIAL_USES if tag in (row.labels or ())), None)


def text_info(folder, row) -> dict:
    """EmailEngine's ``text``: the id of the message's text bodies (``GET .../text/{id}``)
    and the encoded size of each kind it has."""
    sizes: dict[str, int] = {}
    for part in row.text_parts:
        kind = (part.get("contentType") or "text/plain").lower().partition("/")[2]
        if kind in ("plain", "html"):
            sizes[kind] = sizes.get(kind, 0) + (part.get("size") or 0)
    return {"id": ids.text_id(ids.key(), folder.email_account_id, folder.number, row.uid),
            "encodedSize": sizes}


def attachment_entries(folder, row) -> list[dict]:
    """EmailEngine's attachment entries. ``contentId`` keeps its angle brackets as the header
    has them (strip them to match a ``cid:`` URL); ``embedded``: inside a multipart/related
    (rows indexed before that was recorded: has a Content-ID); ``encodedInMessage`` is
    always false, since parts inside an attached message are not listed (the attached
    message is, as one part); ``method``: a calendar part's iTIP method, only where there is
    one (EmailEngine leaves it out otherwise). ``size`` (ours) is an estimate here, from
    BODYSTRUCTURE alone (a base64 part's 3/4 of ``encodedSize``, others' ``encodedSize``);
    the message route replaces it with the exact decoded size (``reading.message_detail``)."""
    key = ids.key()
    out = []
    for part in row.attachments:
        encoding = (part.get("encoding") or "").lower()
        size = part.get("size") or 0
        content_id = part.get("contentId")
        embedded = bool(part.get("embedded", bool(content_id)))
        disposition = part.get("disposition") or ""
        out.append({
            "id": ids.attachment_id(key, folder.email_account_id, folder.number, row.uid,
                                    part["part"]),
            "contentType": part.get("contentType"),
            "encodedSize": size,
            "size": (size * 3) // 4 if encoding == "base64" else size,
            "filename": part.get("filename"),
            "contentId": f"<{content_id}>" if content_id else None,
            "embedded": embedded,
            "inline": disposition == "inline" or (not disposition and embedded),
            "encodedInMessage": False,
        })
        if part.get("method"):
            out[-1]["method"] = part["method"]
    return out


def stored_message_id(meta) -> str:
    """The Message-ID a new row keeps: at most 998 characters (a header line's limit); the
    index writer threads the batch's later messages by it."""
    return (meta.message_id or "")[:998]


FIELDS: tuple[MessageField, ...] = (
    MessageField("id", STRING, lambda folder, row: ids.message_id_for(folder, row.uid),
                 reads=("uid",)),
    _column("uid", "uid", INTEGER, lambda meta: meta.uid),
    MessageField("path", STRING, lambda folder, row: folder.path),
    _column("emailId", "email_id", STRING, None, empty_is_none=True),
    _column("threadId", "thread_id", STRING, None, empty_is_none=True),
    MessageField("date", DATETIME, lambda folder, row: iso(row.date or row.internal_date),
                 column="date", reads=("internal_date",), store=lambda meta: meta.date,
                 null=True),
    MessageField("flags", STRINGS, lambda folder, row: list(row.flags), column="flags",
                 store=lambda meta: list(meta.flags)),
    MessageField("labels", STRINGS, lambda folder, row: list(row.labels), column="labels",
                 store=lambda meta: list(meta.labels)),
    _has_flag("\\Seen", "unseen", present=False),
    _has_flag("\\Flagged", "flagged"),
    _has_flag("\\Answered", "answered"),
    _has_flag("\\Draft", "draft"),
    _column("size", "size", INTEGER, lambda meta: meta.size),
    _column("subject", "subject", TEXT, lambda meta: meta.subject),
    _column("from", "from_address", ADDRESS, _first_address("from_"), null=True),
    _column("sender", "sender", ADDRESS, _first_address("sender"), null=True),
    _column("replyTo", "reply_to", ADDRESSES, _addresses("reply_to")),
    _column("to", "to", ADDRESSES, _addresses("to")),
    _column("cc", "cc", ADDRESSES, _addresses("cc")),
    _column("bcc", "bcc", ADDRESSES, _addresses("bcc")),
    _column("messageId", "message_id", STRING, stored_message_id, empty_is_none=True),
    _column("inReplyTo", "in_reply_to", STRING, lambda meta: (meta.in_reply_to or "")[:998],
            empty_is_none=True),
    _column("hasAttachments", "has_attachments", BOOLEAN, lambda meta: meta.has_attachments),
    MessageField("messageSpecialUse", STRING, message_special_use, reads=("labels",),
                 null=True),
    MessageField("text", TEXT_INFO, text_info, reads=("uid", "text_parts")),
    MessageField("attachments", ATTACHMENTS, attachment_entries, reads=("uid", "attachments")),
)


def _columns() -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for field in FIELDS:
        for column in ((field.column,) if field.column else ()) + field.reads:
            seen.setdefault(column)
    return tuple(seen)


# The Message columns ``summary`` reads: what a listing selects.
COLUMNS = _columns()

_SHOWN = tuple((field.name, field.show) for field in FIELDS)
_STORED = tuple((field.column, field.store) for field in FIELDS if field.store is not None)


def summary(folder, row) -> dict:
    """A message as the API lists it and ``messageNew`` carries it. ``row``: a ``Message`` or
    anything with its ``COLUMNS`` as attributes (a listing's raw row)."""
    return {name: show(folder, row) for name, show in _SHOWN}


def stored_values(meta) -> dict:
    """The columns of a new index row that the table owns, from a parsed ``MessageMeta``."""
    return {column: store(meta) for column, store in _STORED}
