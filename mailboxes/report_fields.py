"""The field blocks reports are made of, read as EmailEngine reads them: header blocks
(``header_fields``), a ``message/delivery-status`` body as bounces (``delivery_status``) and as
EmailEngine's ``deliveryReport`` (``delivery_report``).

A DSN's status body (RFC 3464) is header blocks separated by empty lines: one block about the
message (Reporting-MTA, Arrival-Date, X-Postfix-Queue-ID...), then one per recipient
(Final-Recipient, Action, Status, Diagnostic-Code...). Amazon WorkMail writes the same blocks in
its plain-text "Technical report", so the plain-text reader (``mailboxes.text_bounces``) uses
these too.

Bounded: every value is cut at ``MAX_VALUE`` characters and a block at ``MAX_FIELDS`` fields;
the callers hand in text already cut (``feedback_reports.PART_LIMIT``). Pure: no Django, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from emailapi.lib.timestamps import utc_iso
from mailboxes.imap.parse import normalize_message_id

__all__ = ["header_fields", "blocks", "first", "message_id", "typed", "delivery_status",
           "delivery_report", "iso", "camel", "MAX_FIELDS", "MAX_VALUE"]

MAX_FIELDS = 1000  # fields kept of one block: a hostile report does not grow without bound
MAX_VALUE = 4096  # characters kept of one field's value

# A value that starts with a type token: ``rfc822; a@b``, ``dns; mx.example``, ``smtp; 550 ...``
# (a semicolon later in prose is no type).
_TYPED = re.compile(r"[^\s;]+;")
# Names a JavaScript reader of the payload would take for Object.prototype's own members:
# EmailEngine drops them from deliveryReport (no DSN field is named so).
_PROTOTYPE_NAMES = frozenset({
    "__proto__", "constructor", "hasOwnProperty", "isPrototypeOf", "propertyIsEnumerable",
    "toLocaleString", "toString", "valueOf", "__defineGetter__", "__defineSetter__",
    "__lookupGetter__", "__lookupSetter__"})


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


def blocks(text: str) -> list[dict[str, list[str]]]:
    """The non-empty header blocks of a status body, in order."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    found = (header_fields(block) for block in re.split(r"\n[ \t]*\n", text)[:MAX_FIELDS])
    return [block for block in found if block]


def first(fields: Mapping[str, list[str]] | None, name: str) -> str | None:
    values = (fields or {}).get(name)
    return values[0].strip() if values and values[0].strip() else None


def message_id(value: str | None) -> str | None:
    """The first ``<id>`` of a Message-ID value, as the index keeps a message's, so that a
    bounce finds its original: by the index's own rule (``parse.normalize_message_id``, the
    compiled one where ``make`` built it), on the value as UTF-8, which it reads back
    unchanged. A copy of the rule for ``str`` would drift from it (Unicode whitespace is
    whitespace to ``str``'s ``\\s``, not to the index's)."""
    if not value:
        return None
    return normalize_message_id(value.encode("utf-8", "replace"))


def typed(value: str) -> tuple[str | None, str]:
    """``rfc822; a@b`` -> ``("rfc822", "a@b")``; a value without a type -> ``(None, value)``."""
    label, semicolon, rest = value.partition(";")
    if not semicolon:
        return None, value.strip()
    return label.strip(), rest.strip()


def _is_recipient(block: Mapping[str, list[str]]) -> bool:
    return "final-recipient" in block or "original-recipient" in block


def delivery_status(text: str) -> list[dict[str, Any]]:
    """Each recipient a ``message/delivery-status`` body reports on, as EmailEngine's bounce
    (``recipient``, ``action``, ``response{source, message, status}``, ``mta``, ``queueId``,
    ``messageId``), the per-message fields (Reporting-MTA, X-Postfix-Queue-Id...) with each."""
    found = blocks(text)
    if not found:
        return []
    recipients = [b for b in found if _is_recipient(b)]
    per_message: dict[str, list[str]] = {}
    for block in found:
        if not _is_recipient(block):
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
    recipient = first(fields, "final-recipient") or first(fields, "original-recipient")
    if recipient:
        bounce["recipient"] = typed(recipient)[1]
    if first(fields, "action"):
        bounce["action"] = first(fields, "action")
    diagnostic = first(fields, "diagnostic-code")
    if diagnostic:
        source, message = typed(diagnostic)
        bounce["response"] = {**({"source": source} if source else {}), "message": message}
    if first(fields, "status"):
        bounce.setdefault("response", {})["status"] = first(fields, "status")
    mta = first(fields, "remote-mta") or first(fields, "reporting-mta")
    if mta:
        bounce["mta"] = typed(mta)[1].lower()
    if first(fields, "x-postfix-queue-id"):
        bounce["queueId"] = first(fields, "x-postfix-queue-id")
    if message_id(first(fields, "x-original-message-id")):
        bounce["messageId"] = message_id(first(fields, "x-original-message-id"))
    return bounce


def delivery_report(text: str) -> dict[str, Any]:
    """A status body as EmailEngine's ``deliveryReport``: the per-message fields and the first
    recipient's (the one a report describes: others' blocks are left out, so that a recipient
    is never paired with another's diagnostic), each field's last value, keys camelCased;
    a value with a type token as ``{"label", "value"}`` (``Final-Recipient: rfc822; a@b`` ->
    ``{"label": "rfc822", "value": "a@b"}``), ``arrivalDate`` as ISO when it is a date."""
    found = blocks(text)
    reported = next((block for block in found if _is_recipient(block)), None)
    merged: dict[str, list[str]] = {}
    for block in found:
        if block is not reported and _is_recipient(block):
            continue
        for key, values in block.items():
            merged.setdefault(key, []).extend(values)
    report: dict[str, Any] = {}
    for key, values in merged.items():
        name = _camel_key(key)
        if name in _PROTOTYPE_NAMES:
            continue
        value = values[-1].strip()
        if _TYPED.match(value):
            label, rest = typed(value)
            report[name] = {"label": label, "value": rest}
        elif key == "arrival-date":
            report[name] = iso(value) or value
        else:
            report[name] = value
    return report


def iso(value: str) -> str | None:
    """A date field as ISO (UTC, milliseconds, Z), or None if it is no date."""
    try:
        return utc_iso(parsedate_to_datetime(value.strip()))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _camel_key(key: str) -> str:
    return re.sub(r"-(.)", lambda m: m.group(1).upper(), key)


def camel(values: dict[str, Any]) -> dict[str, Any]:
    """The keys of ``values`` camelCased (``feedback-type`` -> ``feedbackType``)."""
    return {_camel_key(key): value for key, value in values.items()}
