"""Bounces and complaints among new mail: which messages are reports, which of their parts to
read, and what those parts say (EmailEngine's ``messageBounce`` and ``messageComplaint``).

A delivery status notification (RFC 3464: ``multipart/report; report-type=delivery-status``)
carries a ``message/delivery-status`` part: a block of fields about the message, then one block
per recipient (``Final-Recipient``, ``Action``, ``Status``, ``Diagnostic-Code``...), and the
original's headers (``text/rfc822-headers``) or the whole original (``message/rfc822``). An abuse
report (ARF, RFC 5965: ``report-type=feedback-report``) carries a ``message/feedback-report``
part (``Feedback-Type``, ``User-Agent``, ``Original-Rcpt-To``...) and the original (or its
headers). Old MTAs (qmail, Postfix without DSN) bounce in plain text from ``MAILER-DAEMON``
instead; the commonest of those shapes is read from the text too (``text_bounces``).

The rule (``sections_to_read``) looks only at what the index already fetched for every message
(BODYSTRUCTURE's parts, the From address and the Subject): an ordinary message is no candidate
and costs nothing more. A candidate's report parts are read, each cut at a few dozen KiB
(``PART_LIMIT``), and handed to ``read_report``, which returns the events' data.

What EmailEngine (``lib/bounce-detect.js``, ``lib/arf-detect.js``) fills, and how, is kept:
the same keys, the address type split off (``rfc822; a@b`` is ``a@b``), the MTA lower-cased,
camelCased ARF fields and the original's headers as ``{name: [values]}``. Pure: no Django, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

from emailapi.lib.timestamps import utc_iso
from mailboxes.imap.parse import normalize_message_id

__all__ = ["Section", "Report", "sections_to_read", "read_report", "header_fields",
           "delivery_status", "feedback_report", "text_bounces", "PART_LIMIT", "MAX_BOUNCES"]

PART_LIMIT = 64 * 1024  # bytes read of each report part: fields and headers fit many times over
MAX_FIELDS = 1000  # fields kept of one block: a hostile report does not grow without bound
MAX_VALUE = 4096  # characters kept of one field's value
# Failed recipients announced of one report, each its own messageBounce carrying the
# original's headers: a DSN for a mailing to a thousand addresses is not a thousand events.
MAX_BOUNCES = 50

DELIVERY_STATUS = "message/delivery-status"
FEEDBACK_REPORT = "message/feedback-report"
ORIGINAL_MESSAGE = "message/rfc822"
# The original's headers alone: RFC 3462's type, a singular form some reporters write, and
# ARF's older spelling.
HEADER_TYPES = frozenset({"text/rfc822-headers", "text/rfc822-header", "message/rfc822-headers"})

# Roles of the parts a report is read from.
STATUS = "status"
FEEDBACK = "feedback"
HEADERS = "headers"
TEXT = "text"

# Who sends a plain-text bounce (EmailEngine's ``mightBeABounce``).
_DAEMON_NAME = re.compile(r"Mail Delivery System|Mail Delivery Subsystem|Internet Mail Delivery",
                          re.I)
_DAEMON_ADDRESS = re.compile(r"^(?:mailer-daemon|postmaster)@", re.I)


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
    ``bounceMessage``), or a complaint (``messageComplaint``'s without ``complaintMessage``)."""

    bounces: list[dict[str, Any]] = field(default_factory=list)
    complaint: dict[str, Any] | None = None

    def __bool__(self) -> bool:
        return bool(self.bounces or self.complaint)


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
        return [_section(status, STATUS), *_original(attachments)]
    if _hotmail_complaint(from_, subject) and any(_original(attachments)):
        return list(_original(attachments))
    if _from_daemon(from_):
        plain = next((p for p in text_parts if p.content_type == "text/plain" and p.part), None)
        if plain is not None:
            return [_section(plain, TEXT), *_original(attachments)]
    return []


def _section(part: Any, role: str) -> Section:
    return Section(part.part, role, PART_LIMIT, part.encoding)


def _original(attachments: Sequence[Any]) -> list[Section]:
    """The original's headers: a headers part as it is, else an attached message's header
    (``<part>.HEADER``: its body is never read)."""
    for part in attachments:
        if part.content_type in HEADER_TYPES:
            return [_section(part, HEADERS)]
    for part in attachments:
        if part.content_type == ORIGINAL_MESSAGE:
            return [Section(f"{part.part}.HEADER", HEADERS, PART_LIMIT, None)]
    return []


def _from_daemon(from_: Sequence[Any]) -> bool:
    return any(_DAEMON_NAME.search(a.name or "") or _DAEMON_ADDRESS.match(a.address or "")
               for a in from_)


def _hotmail_complaint(from_: Sequence[Any], subject: str) -> bool:
    """Hotmail's complaints are no ARF: a message from ``staff@hotmail.com`` with the original
    attached (EmailEngine's ``mightBeAComplaint``)."""
    return any((a.address or "").lower() == "staff@hotmail.com" for a in from_) and \
        "complaint" in (subject or "").lower()


# --- reading ----------------------------------------------------------------------------------


def read_report(read: Mapping[str, str], from_: Sequence[Any] = ()) -> Report:
    """The report in the parts read (role -> decoded text); an empty ``Report`` when they hold
    none EmailEngine would announce (a bounce needs its recipient, its action and the
    original's Message-ID; a complaint its recipient). A recipient reported twice is one
    bounce (its first block), and at most ``MAX_BOUNCES`` are kept, in the report's order."""
    headers = header_fields(read[HEADERS]) if HEADERS in read else None
    if FEEDBACK in read or (HEADERS in read and STATUS not in read and TEXT not in read):
        complaint = feedback_report(read.get(FEEDBACK, ""), read.get(HEADERS), from_)
        return Report(complaint=complaint if complaint["arf"].get("originalRcptTo") else None)
    if STATUS in read:
        bounces = delivery_status(read[STATUS])
    elif TEXT in read:
        bounces = text_bounces(read[TEXT])
    else:
        return Report()
    original_id = _message_id(_first(headers, "message-id"))
    kept: dict[str, dict[str, Any]] = {}
    for bounce in bounces:
        if original_id:  # the original's own header wins over X-Original-Message-ID
            bounce["messageId"] = original_id
        bounce["messageHeaders"] = headers
        if bounce.get("recipient") and bounce.get("messageId") and \
                (bounce.get("action") or "").lower() == "failed":
            kept.setdefault(bounce["recipient"].lower(), bounce)
            if len(kept) >= MAX_BOUNCES:
                break
    return Report(bounces=list(kept.values()))


def header_fields(text: str) -> dict[str, list[str]]:
    """A header block as ``{lower-case name: [values]}``, folded lines joined, up to the first
    empty line (libmime's ``decodeHeaders``, which EmailEngine's payloads are made with)."""
    fields: dict[str, list[str]] = {}
    name = None
    count = 0
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line.strip():
            if name is not None or count:
                break
            continue
        if line[0] in " \t":
            if name is not None:
                values = fields[name]
                values[-1] = (values[-1] + " " + line.strip())[:MAX_VALUE]
            continue
        key, colon, value = line.partition(":")
        key = key.strip().lower()
        if not colon or not key or count >= MAX_FIELDS:
            name = None
            continue
        count += 1
        name = key
        fields.setdefault(key, []).append(value.strip()[:MAX_VALUE])
    return fields


def _blocks(text: str) -> list[dict[str, list[str]]]:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    blocks = (header_fields(block) for block in re.split(r"\n[ \t]*\n", text)[:MAX_FIELDS])
    return [block for block in blocks if block]


def _first(fields: Mapping[str, list[str]] | None, name: str) -> str | None:
    values = (fields or {}).get(name)
    return values[0].strip() if values and values[0].strip() else None


def _message_id(value: str | None) -> str | None:
    """The first ``<id>`` of a Message-ID value, as the index keeps a message's, so that a
    bounce finds its original: by the index's own rule (``parse.normalize_message_id``, the
    compiled one where ``make`` built it), on the value as UTF-8, which it reads back
    unchanged. A copy of the rule for ``str`` would drift from it (Unicode whitespace is
    whitespace to ``str``'s ``\\s``, not to the index's)."""
    if not value:
        return None
    return normalize_message_id(value.encode("utf-8", "replace"))


def _typed(value: str) -> tuple[str | None, str]:
    """``rfc822; a@b`` -> ``("rfc822", "a@b")``; a value without a type -> ``(None, value)``."""
    label, semicolon, rest = value.partition(";")
    if not semicolon:
        return None, value.strip()
    return label.strip(), rest.strip()


def delivery_status(text: str) -> list[dict[str, Any]]:
    """Each recipient a ``message/delivery-status`` body reports on, as EmailEngine's bounce
    (``recipient``, ``action``, ``response{source, message, status}``, ``mta``, ``queueId``,
    ``messageId``), the per-message fields (Reporting-MTA, X-Postfix-Queue-Id...) with each."""
    blocks = _blocks(text)
    if not blocks:
        return []
    recipients = [b for b in blocks if "final-recipient" in b or "original-recipient" in b]
    per_message: dict[str, list[str]] = {}
    for block in blocks:
        if not any(block is recipient for recipient in recipients):
            for key, values in block.items():
                per_message.setdefault(key, []).extend(values)
    bounces = []
    for recipient in recipients or [{}]:
        # A field in both is read from the per-message block first, as EmailEngine merges them.
        fields = dict(recipient)
        for key, values in per_message.items():
            fields[key] = values + recipient.get(key, [])
        bounces.append(_bounce(fields))
    return bounces


def _bounce(fields: Mapping[str, list[str]]) -> dict[str, Any]:
    bounce: dict[str, Any] = {}
    recipient = _first(fields, "final-recipient") or _first(fields, "original-recipient")
    if recipient:
        bounce["recipient"] = _typed(recipient)[1]
    if _first(fields, "action"):
        bounce["action"] = _first(fields, "action")
    diagnostic = _first(fields, "diagnostic-code")
    if diagnostic:
        source, message = _typed(diagnostic)
        bounce["response"] = {**({"source": source} if source else {}), "message": message}
    if _first(fields, "status"):
        bounce.setdefault("response", {})["status"] = _first(fields, "status")
    mta = _first(fields, "remote-mta") or _first(fields, "reporting-mta")
    if mta:
        bounce["mta"] = _typed(mta)[1].lower()
    if _first(fields, "x-postfix-queue-id"):
        bounce["queueId"] = _first(fields, "x-postfix-queue-id")
    if _message_id(_first(fields, "x-original-message-id")):
        bounce["messageId"] = _message_id(_first(fields, "x-original-message-id"))
    return bounce


# --- plain-text bounces -------------------------------------------------------------------------

_TEXT_LIMIT = 50_000  # characters the patterns run over (EmailEngine's MAX_TEXT_LENGTH)
# Postfix without DSN and its look-alikes:
#   <user@example.com>: host mx.example.com[192.0.2.1] said: 550 5.1.1 No such user (in reply
#       to RCPT TO command)
_HOST_SAID = re.compile(r"<([^<>@\s]{1,256}@[^<>\s]{1,256})>:\s*host\s+([a-z0-9._-]+)\s*"
                        r"(?:\[([^\]]+)\])?\s+said:", re.I)
# qmail: "<user@example.com>:" then the reply on the lines after it.
_QMAIL_BLOCK = re.compile(r"\n<([^<>@\s]{1,256}@[^<>\s]{1,256})>:[\s]{1,100}")
_PARAGRAPH_END = re.compile(r"\n[ \t]*\n")
_ENHANCED = re.compile(r"[45]\d{2}[\s-](\d+\.\d+\.\d+)[\s-]")
_QMAIL_STATUS = re.compile(r"\(#(\d+\.\d+\.\d+)\)")
# A notice of a delay, not a failure (Sendmail's "WARNING MESSAGE ONLY", qmail's retries).
_DELAY = re.compile(r"WARNING MESSAGE ONLY|DO NOT NEED TO RESEND|has not yet been delivered|"
                    r"will keep trying|delivery attempts will continue|"
                    r"delivery (?:is|has been) delayed", re.I)
_GAVE_UP = re.compile(r"permanent error|given up|not going to try again|retry timeout exceeded|"
                      r"will not be retried|could not be delivered", re.I)
_EMBEDDED_HEADERS = re.compile(r"^(?:Received|Return-Path):", re.I | re.M)


def text_bounces(text: str) -> list[dict[str, Any]]:
    """The failed recipient of a plain-text bounce in the two shapes most MTAs without DSN
    write (``<a@b>: host X said: ...`` and qmail's ``<a@b>:`` block), with the Message-ID of
    the original's headers quoted in the text; ``[]`` for anything else, or a delay notice."""
    text = text.replace("\r\n", "\n")[:_TEXT_LIMIT]
    bounce: dict[str, Any] = {}
    said = _HOST_SAID.search(text)
    block = None if said else _QMAIL_BLOCK.search("\n" + text)
    if said:
        message = _paragraph(text, said.end())
        bounce = {"recipient": said.group(1), "action": "failed", "response": {"message": message},
                  "mta": said.group(2).lower()}
    elif block:
        message = _paragraph("\n" + text, block.end())
        bounce = {"recipient": block.group(1), "action": "failed",
                  "response": {"message": message}}
    else:
        return []
    status = _ENHANCED.search(message + " ") or _QMAIL_STATUS.search(message)
    if status:
        bounce["response"]["status"] = status.group(1)
    if _delay_notice(text, bounce["response"]):
        return []
    embedded = _EMBEDDED_HEADERS.search(text)
    if embedded:
        message_id = _message_id(_first(header_fields(text[embedded.start():]), "message-id"))
        if message_id:
            bounce["messageId"] = message_id
    return [bounce]


def _paragraph(text: str, start: int) -> str:
    end = _PARAGRAPH_END.search(text, start)
    return " ".join(text[start:end.start() if end else len(text)].split())[:MAX_VALUE]


def _delay_notice(text: str, response: Mapping[str, str]) -> bool:
    if _DELAY.search(text):
        return True
    temporary = (response.get("status") or "").startswith("4.") or \
        bool(re.match(r"4\d\d[\s-]", response.get("message") or ""))
    return temporary and not _GAVE_UP.search(text)


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
            key, value = "arrival-date", _iso(value)
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
        if arrival and "arrival-date" not in arf and _iso(arrival[-1]):
            arf["arrival-date"] = _iso(arrival[-1])
        _original_header_fields(headers, fields)
    if any((a.address or "").lower() == "staff@hotmail.com" for a in from_) and \
            "source" not in arf:
        arf = {"source": "Hotmail", "feedback-type": "abuse", "abuse-type": "complaint",
               **({"original-mail-from": return_path} if return_path else {}), **arf}
    return {"arf": _camel(arf), "headers": _camel(headers)}


def _set_last(target: dict[str, Any], key: str, values: list[str] | None) -> None:
    if values and values[-1] and key not in target:
        target[key] = values[-1]


def _original_header_fields(headers: dict[str, Any], fields: Mapping[str, list[str]]) -> None:
    for name in ("from", "to", "cc", "bcc", "subject", "date"):
        lines = [value for value in fields.get(name, []) if value]
        if not lines:
            continue
        if name == "date":
            value = _iso(lines[-1])
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


def _iso(value: str) -> str | None:
    """A date field as ISO (UTC, milliseconds, Z), or None if it is no date."""
    try:
        return utc_iso(parsedate_to_datetime(value.strip()))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _camel(values: dict[str, Any]) -> dict[str, Any]:
    return {re.sub(r"-(.)", lambda m: m.group(1).upper(), key): value
            for key, value in values.items()}
