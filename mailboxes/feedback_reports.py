"""Bounces and complaints among new mail: which messages are reports, which of their parts to
read, and what those parts say (EmailEngine's ``messageBounce``, ``messageComplaint`` and a
DSN's ``deliveryReport``).

A delivery status notification (RFC 3464: ``multipart/report; report-type=delivery-status``)
carries a ``message/delivery-status`` part: a block of fields about the message, then one block
per recipient (``Final-Recipient``, ``Action``, ``Status``, ``Diagnostic-Code``...), and the
original's headers (``text/rfc822-headers``) or the whole original (``message/rfc822``; Zoho
writes its headers indented in a ``text/rfc822`` part). An abuse report (ARF, RFC 5965:
``report-type=feedback-report``) carries a ``message/feedback-report`` part (``Feedback-Type``,
``User-Agent``, ``Original-Rcpt-To``...) and the original (or its headers). Other bounces are
plain text (qmail, Exim, Postfix without DSN, old Gmail, Amazon WorkMail...), read from their
text and their own header by ``mailboxes.text_bounces``.

The rule (``sections_to_read``) looks only at what the index already fetched for every message
(BODYSTRUCTURE's parts, the From address and the Subject), as EmailEngine's
``looksLikeABounce`` does: an ordinary message is no candidate and costs nothing more. A
candidate's report parts are read, each cut at a few dozen KiB (``PART_LIMIT``), and handed to
``read_report``, which returns the events' data.

What EmailEngine (``lib/bounce-detect.js``, ``lib/arf-detect.js``) fills, and how, is kept:
the same keys, the address type split off (``rfc822; a@b`` is ``a@b``), the MTA lower-cased,
camelCased ARF fields and the original's headers as ``{name: [values]}``. Pure: no Django, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.utils import getaddresses
from typing import Any

from mailboxes.report_fields import (
    MAX_FIELDS,
    MAX_VALUE,
    camel,
    delivery_report,
    delivery_status,
    first,
    header_fields,
    iso,
    message_id,
)
from mailboxes.text_bounces import text_bounces

__all__ = ["Section", "Report", "sections_to_read", "read_report", "header_fields",
           "delivery_status", "feedback_report", "text_bounces", "PART_LIMIT", "MAX_BOUNCES",
           "MAX_FIELDS", "MAX_VALUE"]

PART_LIMIT = 64 * 1024  # bytes read of each report part: fields and headers fit many times over
# Failed recipients announced of one report, each its own messageBounce carrying the
# original's headers: a DSN for a mailing to a thousand addresses is not a thousand events.
MAX_BOUNCES = 50

DELIVERY_STATUS = "message/delivery-status"
FEEDBACK_REPORT = "message/feedback-report"
ORIGINAL_MESSAGE = "message/rfc822"
# The original's headers alone: RFC 3462's type, a singular form some reporters write, and
# ARF's older spelling.
HEADER_TYPES = frozenset({"text/rfc822-headers", "text/rfc822-header", "message/rfc822-headers"})
# Zoho's original: its headers as the text of a ``text/rfc822`` part, each line indented.
QUOTED_ORIGINAL = "text/rfc822"
# The report's own header (the message's ``HEADER`` section).
TOP_SECTION = "HEADER"

# Roles of the parts a report is read from.
STATUS = "status"
FEEDBACK = "feedback"
HEADERS = "headers"
TEXT = "text"
QUOTED = "quoted"  # Zoho's indented headers of the original
TOP = "top"  # the report's own header
# The report's own header, when only Exchange's subject ("Undeliverable: ...") made it a
# candidate: EmailEngine reads it as a bounce only with an ``Auto-Submitted`` header.
TOP_GATED = "top-gated"

# A DSN's deliveryReport is published for these actions (EmailEngine's ``applyDeliveryReport``:
# a failure is a bounce instead).
_REPORTED_ACTION = re.compile(r"delivered|delayed", re.I)

# Who sends a plain-text bounce, and what it is called (EmailEngine's ``looksLikeABounce``).
_DAEMON_NAME = re.compile(r"Mail Delivery System|Mail Delivery Subsystem|Internet Mail Delivery|"
                          r"Mailer[- ]?Daemon|NDR Administrator", re.I)
_DAEMON_ADDRESS = re.compile(r"mailer-?daemon@|postmaster@|^mailer-?daemon$", re.I)
_EXCHANGE_SUBJECT = re.compile(r"Undeliverable:")
_RETURNED_SUBJECT = re.compile(r"Undeliver|Failed|Returned|Failure|Error", re.I)
_BOUNCE_SUBJECT = re.compile(r"^Undeliverable\s+Message$|Mail delivery failed|"
                             r"Delivery Status Notification|Returned mail|Failure Notice|"
                             r"error sending your mail", re.I)


@dataclass(frozen=True, slots=True)
class Section:
    """One part to read: its IMAP section (``"2"``, ``"3.HEADER"``), its role, at most how many
    bytes, and its transfer encoding (to decode what was read)."""

    section: str
    role: str
    limit: int = PART_LIMIT
    encoding: str | None = None


@dataclass(slots=True)
class Report:
    """What a report said: one bounce per failed recipient (``messageBounce``'s data without
    ``bounceMessage``), or a complaint (``messageComplaint``'s without ``complaintMessage``);
    and a DSN reporting a delivery or a delay, its ``deliveryReport`` (for its ``messageNew``)."""

    bounces: list[dict[str, Any]] = field(default_factory=list)
    complaint: dict[str, Any] | None = None
    delivery_report: dict[str, Any] | None = None

    def __bool__(self) -> bool:
        return bool(self.bounces or self.complaint or self.delivery_report)


# --- the rule ---------------------------------------------------------------------------------


def sections_to_read(attachments: Sequence[Any], text_parts: Sequence[Any], from_: Sequence[Any],
                     subject: str) -> list[Section]:
    """The parts to read of a new message (its ``Part``s and From addresses as indexed), or
    ``[]`` when it is no report: the case of nearly every message, decided without I/O."""
    status = feedback = None
    for part in attachments:  # most messages have none; a report a handful
        if part.content_type == FEEDBACK_REPORT and feedback is None:
            feedback = part
        elif part.content_type == DELIVERY_STATUS and status is None:
            status = part
    if feedback is not None:
        return [_section(feedback, FEEDBACK), *_original(attachments)]
    if status is not None:
        return [_section(status, STATUS), *_original(attachments, quoted=True)]
    if _hotmail_complaint(from_, subject) and any(_original(attachments)):
        return list(_original(attachments))
    top = _bounce_candidate(attachments, from_, subject)
    if top:
        plain = next((p for p in text_parts if p.content_type == "text/plain" and p.part), None)
        if plain is not None:
            return [_section(plain, TEXT), Section(TOP_SECTION, top), *_original(attachments)]
    return []


def _section(part: Any, role: str) -> Section:
    return Section(part.part, role, PART_LIMIT, part.encoding)


def _original(attachments: Sequence[Any], quoted: bool = False) -> list[Section]:
    """The original's headers: a headers part as it is, else an attached message's header
    (``<part>.HEADER``: its body is never read), else (``quoted``: a DSN's) Zoho's quoted
    headers, with the report's own header that says whether Zoho sent it."""
    for part in attachments:
        if part.content_type in HEADER_TYPES:
            return [_section(part, HEADERS)]
    for part in attachments:
        if part.content_type == ORIGINAL_MESSAGE:
            return [Section(f"{part.part}.HEADER", HEADERS, PART_LIMIT, None)]
    for part in attachments if quoted else ():
        if part.content_type == QUOTED_ORIGINAL:
            return [_section(part, QUOTED), Section(TOP_SECTION, TOP)]
    return []


def _from_daemon(from_: Sequence[Any]) -> bool:
    return any(_DAEMON_NAME.search(a.name or "") or _DAEMON_ADDRESS.search(a.address or "")
               for a in from_)


def _bounce_candidate(attachments: Sequence[Any], from_: Sequence[Any],
                      subject: str) -> str | None:
    """Whether a message without a DSN part may be a plain-text bounce (EmailEngine's
    ``looksLikeABounce``): the role its own header is read in (``TOP``, or ``TOP_GATED``
    when only Exchange's subject says so), or None."""
    subject = subject or ""
    if _from_daemon(from_) or _BOUNCE_SUBJECT.search(subject):
        return TOP
    if _RETURNED_SUBJECT.search(subject) and \
            any(part.content_type == ORIGINAL_MESSAGE for part in attachments):
        return TOP
    return TOP_GATED if _EXCHANGE_SUBJECT.match(subject) else None


def _hotmail_complaint(from_: Sequence[Any], subject: str) -> bool:
    """Hotmail's complaints are no ARF: a message from ``staff@hotmail.com`` with the original
    attached (EmailEngine's ``mightBeAComplaint``)."""
    return any((a.address or "").lower() == "staff@hotmail.com" for a in from_) and \
        "complaint" in (subject or "").lower()


# --- reading ----------------------------------------------------------------------------------


def read_report(read: Mapping[str, str], from_: Sequence[Any] = ()) -> Report:
    """The report in the parts read (role -> decoded text); an empty ``Report`` when they hold
    none EmailEngine would announce (a bounce needs its recipient, its action and the
    original's Message-ID; a complaint its recipient; a deliveryReport a DSN whose recipient
    was delivered or delayed). A recipient reported twice is one bounce (its first block), and
    at most ``MAX_BOUNCES`` are kept, in the report's order."""
    top = header_fields(read.get(TOP) or read.get(TOP_GATED) or "")
    headers = header_fields(read[HEADERS]) if HEADERS in read else None
    if headers is None and QUOTED in read and _from_zoho(from_, top):
        headers = _quoted_headers(read[QUOTED])
    if FEEDBACK in read or (HEADERS in read and STATUS not in read and TEXT not in read):
        complaint = feedback_report(read.get(FEEDBACK, ""), read.get(HEADERS), from_)
        return Report(complaint=complaint if complaint["arf"].get("originalRcptTo") else None)
    delivery = None
    if STATUS in read:
        bounces = delivery_status(read[STATUS])
        delivery = _delivery_report(read[STATUS])
    elif TEXT in read and (TOP_GATED not in read or "auto-submitted" in top):
        bounces = text_bounces(read[TEXT], top)
    else:
        return Report()
    original_id = message_id(first(headers, "message-id"))
    kept: dict[str, dict[str, Any]] = {}
    for bounce in bounces:
        if original_id:  # the original's own header wins over X-Original-Message-ID
            bounce["messageId"] = original_id
        # The original's headers as read, else those quoted in a plain-text bounce's text.
        bounce["messageHeaders"] = headers if headers is not None else \
            bounce.get("messageHeaders")
        if bounce.get("recipient") and bounce.get("messageId") and \
                (bounce.get("action") or "").strip().lower() == "failed":
            kept.setdefault(bounce["recipient"].lower(), bounce)
            if len(kept) >= MAX_BOUNCES:
                break
    return Report(bounces=list(kept.values()), delivery_report=delivery)


def _delivery_report(status: str) -> dict[str, Any] | None:
    """The status part as EmailEngine's ``deliveryReport``, when it reports a delivery or a
    delay (its first recipient's action: a report's other recipients do not make one)."""
    report = delivery_report(status)
    action = report.get("action")
    return report if isinstance(action, str) and _REPORTED_ACTION.match(action) else None


def _from_zoho(from_: Sequence[Any], top: Mapping[str, list[str]]) -> bool:
    """Zoho sent it (EmailEngine reads a ``text/rfc822`` part only from Zoho): its From, its
    ``X-Mailer`` or its ``User-Agent`` says so."""
    said = [a.address or "" for a in from_] + top.get("x-mailer", []) + top.get("user-agent", [])
    return any("zoho" in value.lower() for value in said)


_INDENT = re.compile(r"^ (?=[^ ])", re.M)
_LOOKS_LIKE_HEADERS = re.compile(r"^[ \t]*(?:Received|Message-ID|Date|From):", re.I | re.M)


def _quoted_headers(text: str) -> dict[str, list[str]] | None:
    """Zoho's quoted original: header lines each indented by a space (a deeper indent is a
    folded line), read once unindented; None unless they name the original's Message-ID."""
    text = _INDENT.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    if not _LOOKS_LIKE_HEADERS.search(text):
        return None
    fields = header_fields(text)
    return fields if fields.get("message-id") else None


# --- complaints ---------------------------------------------------------------------------------

# Fields kept as one string (EmailEngine's ARF_SINGLE); every other field is a list.
_ARF_SINGLE = frozenset({
    "feedback-type", "user-agent", "version", "original-envelope-id", "original-mail-from",
    "abuse-type", "arrival-date", "received-date", "reporting-mta", "source-ip", "source",
    "subscription-link", "incidents"})


def feedback_report(report_text: str, original_headers: str | None,
                    from_: Sequence[Any] = ()) -> dict[str, Any]:
    """``{"arf": {...}, "headers": {...}}`` of an abuse report, camelCased as EmailEngine
    sends them: ``arf`` the ``message/feedback-report`` fields (``originalRcptTo`` a list,
    ``arrivalDate`` ISO), ``headers`` the original's ``messageId``, ``from``, ``to``, ``cc``,
    ``bcc``, ``subject`` and ``date``."""
    arf: dict[str, Any] = {}
    for key, values in header_fields(report_text).items():
        values = [v for v in values if v]
        if not values:
            continue
        value: Any = ",".join(values) if key in _ARF_SINGLE else values
        if key == "original-mail-from":
            value = value.strip().strip("<>").strip()
        elif key in ("arrival-date", "received-date"):
            key, value = "arrival-date", iso(value)
            if value is None:
                continue
        arf[key] = value
    headers: dict[str, Any] = {}
    return_path = None
    if original_headers is not None:
        fields = header_fields(original_headers)
        extra = [address for _, address in getaddresses(fields.get("x-hmxmroriginalrecipient", []))
                 if address and address not in arf.get("original-rcpt-to", [])]
        arf["original-rcpt-to"] = [*arf.get("original-rcpt-to", []), *extra]
        return_path = next((a for _, a in reversed(getaddresses(fields.get("return-path", [])))
                            if a), None)
        _set_last(headers, "message-id", fields.get("message-id"))
        if "source-ip" not in arf:
            _set_last(arf, "source-ip", fields.get("x-sender-ip"))
        arrival = fields.get("x-ms-exchange-crosstenant-originalarrivaltime")
        if arrival and "arrival-date" not in arf and iso(arrival[-1]):
            arf["arrival-date"] = iso(arrival[-1])
        _original_header_fields(headers, fields)
    if any((a.address or "").lower() == "staff@hotmail.com" for a in from_) and \
            "source" not in arf:
        arf = {"source": "Hotmail", "feedback-type": "abuse", "abuse-type": "complaint",
               **({"original-mail-from": return_path} if return_path else {}), **arf}
    return {"arf": camel(arf), "headers": camel(headers)}


def _set_last(target: dict[str, Any], key: str, values: list[str] | None) -> None:
    if values and values[-1] and key not in target:
        target[key] = values[-1]


def _original_header_fields(headers: dict[str, Any], fields: Mapping[str, list[str]]) -> None:
    for name in ("from", "to", "cc", "bcc", "subject", "date"):
        lines = [value for value in fields.get(name, []) if value]
        if not lines:
            continue
        if name == "date":
            value = iso(lines[-1])
        elif name == "subject":
            value = _decoded(lines[-1]).strip() or None
        else:
            addresses = [address for _, address in getaddresses(lines) if address]
            value = (addresses[-1] if name == "from" else addresses) if addresses else None
        if value is not None:
            headers.setdefault(name, value)


def _decoded(value: str) -> str:
    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError, UnicodeError):
        return value
