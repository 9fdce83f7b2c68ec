"""Plain values the IMAP layer hands to the rest of the application.

Why separate: the parser (``parse.py``) and the command helpers (``fetch.py``) both produce these,
and callers (indexing, webhooks) consume them without knowing anything about IMAP wire syntax.
They are slotted dataclasses because an index run creates one per message, tens of thousands at
a time, and slots keep each instance small and attribute access fast. No Django here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["Address", "Part", "MessageMeta", "FlagChange"]


@dataclass(slots=True)
class Address:
    """One mailbox of an address header; ``name`` is decoded (RFC 2047), possibly ``""``."""

    name: str
    address: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "address": self.address}


@dataclass(slots=True)
class Part:
    """A leaf MIME part from BODYSTRUCTURE.

    ``part`` is the IMAP part number ("1", "2.1", ...) usable in ``BODY[<part>]``. ``size`` is the
    encoded (transfer) size the server reports. ``content_id`` has no angle brackets, as used in
    ``cid:`` URLs. ``disposition``, ``encoding`` and ``charset`` are lower-case or ``None``.
    ``embedded``: the part is inside a multipart/related (an image the HTML shows).
    ``method``: a text/calendar part's iTIP method (``REQUEST``, ``CANCEL``...), as EmailEngine
    reports it. A body text part whose ``content_type`` is ``multipart/*`` (``part`` ``""``)
    stands for a multipart the server could not split (no usable boundary): its text is read by
    parsing the message's source locally (``parts.fetch_text``).
    """

    part: str
    content_type: str
    size: int
    filename: str | None = None
    content_id: str | None = None
    disposition: str | None = None
    encoding: str | None = None
    charset: str | None = None
    embedded: bool = False
    method: str | None = None


@dataclass(slots=True)
class MessageMeta:
    """Everything indexing needs about one message, from a single FETCH, without its body.

    ``flags`` never include ``\\Recent`` (per-session state, not a flag of the message).
    ``internal_date`` is aware and in UTC; ``date`` (the Date header) keeps its own offset.
    ``message_id``, ``in_reply_to`` and ``references`` keep their angle brackets.
    ``text_parts`` are the text/plain and text/html parts that are the message's own body;
    ``attachments`` are the other leaf parts (inline CID images included, parts inside an attached
    message/rfc822 excluded: the message/rfc822 part itself is listed instead).
    """

    uid: int
    flags: tuple[str, ...] = ()
    internal_date: datetime | None = None
    size: int = 0
    modseq: int | None = None
    subject: str = ""
    from_: list[Address] = field(default_factory=list)
    sender: list[Address] = field(default_factory=list)
    reply_to: list[Address] = field(default_factory=list)
    to: list[Address] = field(default_factory=list)
    cc: list[Address] = field(default_factory=list)
    bcc: list[Address] = field(default_factory=list)
    date: datetime | None = None
    message_id: str | None = None
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    has_attachments: bool = False
    attachments: list[Part] = field(default_factory=list)
    text_parts: list[Part] = field(default_factory=list)
    email_id: str | None = None
    thread_id: str | None = None
    gm_msgid: int | None = None
    gm_thrid: int | None = None
    labels: tuple[str, ...] = ()
    # The message's sequence number in the FETCH that read it (``fetch.fetch_meta``): valid
    # in that session's view at that moment only, so it takes no part in comparisons.
    seq: int | None = field(default=None, compare=False)


@dataclass(slots=True)
class FlagChange:
    """The current flags of one message (and its MODSEQ when the server has CONDSTORE);
    ``labels``: its Gmail labels (X-GM-LABELS) when they were fetched too, else ``None``.
    ``flags`` is ``None`` only for a change of labels alone (the API's label STORE)."""

    uid: int
    flags: tuple[str, ...] | None
    modseq: int | None = None
    labels: tuple[str, ...] | None = None
