"""Bounces written in plain text, without a ``message/delivery-status`` part: what EmailEngine's
``bounceDetect`` reads from a bounce's text and its own header (``lib/bounce-detect.js``).

MTAs without DSN and some providers write the failure for people only: Postfix without DSN
(``<a@b>: host mx[192.0.2.1] said: 550 ...``), qmail (a ``<a@b>:`` block), Exim (the failed
addresses listed after "The following address(es) failed:", with ``X-Failed-Recipients`` in the
header), old Gmail ("Delivery to the following recipient failed permanently:" and "Technical
details of permanent failure:"), Amazon WorkMail (a DSN's fields as text after "Technical
report:", the header saying ``X-Mailer: Amazon WorkMail``), and a few more phrasings
(Exchange's "The following recipients were affected:", mail.ru's "The reason for the
problem:", KDDI's "Could not be delivered to:", Verizon's "Error: ... Invalid", James's
"RCPT TO:"). Each rule fills what the earlier ones left open, in EmailEngine's order, so the
same text gives the same recipient, response and MTA.

A notice of a delay has the same shapes; it is no bounce (EmailEngine's wording rules:
"WARNING MESSAGE ONLY", "will keep trying", or a 4.x.x reply without "given up"...).

Every pattern is bounded (no unbounded repetition that can rescan the text from each start)
and runs over at most ``TEXT_LIMIT`` characters: a hostile text costs a few passes over 50,000
characters. Pure: no Django, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mailboxes.report_fields import MAX_VALUE, delivery_status, header_fields, message_id

__all__ = ["text_bounces", "TEXT_LIMIT"]

TEXT_LIMIT = 50_000  # characters the patterns run over (EmailEngine's MAX_TEXT_LENGTH)

_ADDRESS = r"[^<>@\s]{1,256}@[^<>\s]{1,256}"
_TOKEN_AFTER = re.compile(r"\s{0,1000}(\S{1,1000})")
_PARAGRAPH_END = re.compile(r"\n[ \t]*\n")
_ENHANCED = re.compile(r"[45]\d{2}[\s-](\d{1,3}\.\d{1,3}\.\d{1,3})[\s-]")
_QMAIL_STATUS = re.compile(r"\(#(\d{1,3}\.\d{1,3}\.\d{1,3})\)")
_ANY_STATUS = re.compile(r"(\d{1,3}\.\d{1,3}\.\d{1,3})")

# Postfix without DSN and its look-alikes:
#   <user@example.com>: host mx.example.com[192.0.2.1] said: 550 5.1.1 No such user (in reply
#       to RCPT TO command)
_HOST_SAID = re.compile(rf"<({_ADDRESS})>:\s{{0,100}}host\s{{1,100}}([a-z0-9._-]{{1,256}})"
                        r"\s{0,100}(?:\[([^\]]{0,256})\])?\s{1,100}said:", re.I)
_DELIVERY_FAILED = re.compile(r"Delivery[^:]{0,100}failed[^:]{0,50}:", re.I)
_RECIPIENTS_AFFECTED = re.compile(r"The following recipients were affected:", re.I)
# A reply at the start of a line: "550 5.1.1 ...", "550-5.7.1 ..." (old Gmail, Exim).
_REPLY_LINE = re.compile(r"^[ \t]{0,100}[45]\d{2}[\s-](\d{1,3}\.\d{1,3}\.\d{1,3})[\s-]", re.M)
# qmail: "<user@example.com>:" then the reply on the lines after it.
_QMAIL_BLOCK = re.compile(rf"\n<({_ADDRESS})>:\s{{1,100}}")
_UNDELIVERABLE_TO = re.compile(rf"The following message to <({_ADDRESS})> was undeliverable")
_GMAIL_FAILED = re.compile(
    r"Delivery to the following recipients? failed permanently:\s{1,1000}"
    r"([^\s@]{1,256}@\S{1,256})", re.I)
_GMAIL_DETAILS = re.compile(r"Technical details of (?:permanent )?failure:\s{0,1000}",
                            re.I)
_GMAIL_DETAILS_END = re.compile(r"\n\n|-{3,}|Original message", re.I)
_REASON = re.compile(r"The reason for the problem:[ \t]{0,100}\r?\n(\d{1,3}\.\d{1,3}\.\d{1,3})"
                     r"\s{1,100}")
_COULD_NOT_DELIVER_TO = re.compile(
    rf"Your message could not be delivered to the following address:\s{{1,100}}<({_ADDRESS})>")
_REMOTE_HOST_SAID = re.compile(r"Remote host said:[ \t]{0,100}([^\n]{0,4096})")
_EXIM_FAILED = re.compile(r"The following address\(?es\)? failed:", re.I)
_KDDI = re.compile(r"Could not be delivered to:\s{0,100}<?([^\s<>]{1,256}@[^\s<>]{1,256})>?",
                   re.I)
_PERMANENT_ERRORS = re.compile(
    r"returned permanent errors?:\s{0,100}<?([^\s<>,]{1,256}@[^\s<>,]{1,256})>?", re.I)
_MOBILE_ERROR = re.compile(r"Message could not be delivered|"
                           r"Error:[^\n]{0,256}?(?:Invalid|No valid|not taken)[^\n]{0,512}",
                           re.I)
_RCPT_TO = re.compile(r"RCPT TO:\s{0,100}<?([^\s<>]{1,256}@[^\s<>]{1,256})>?", re.I)
_ANY_REPLY = re.compile(r"\b(5[0-5]\d)\s{0,100}[-:]\s{0,100}([^\n]{10,100})")
_EMBEDDED_HEADERS = re.compile(r"^(?:Received|Return-Path):", re.I | re.M)

# A notice of a delay, not a failure (Sendmail's "WARNING MESSAGE ONLY", qmail's retries).
_DELAY = re.compile(r"WARNING MESSAGE ONLY|DO NOT NEED TO RESEND|has not yet been delivered|"
                    r"will keep trying|delivery attempts will continue|"
                    r"delivery (?:is|has been) delayed", re.I)
_GAVE_UP = re.compile(r"permanent error|given up|not going to try again|retry timeout exceeded|"
                      r"will not be retried|could not be delivered", re.I)
_TEMPORARY_REPLY = re.compile(r"4\d\d[\s-]")

WORKMAIL = "Amazon WorkMail"
WORKMAIL_TOPIC = "Undelivered Mail Returned to Sender"
WORKMAIL_MARKER = "Technical report:"


@dataclass(slots=True)
class _Found:
    """What the rules have read so far; a rule fills only what is still open."""

    text: str
    recipient: str | None = None
    action: str | None = None
    response: dict[str, str] = field(default_factory=dict)
    mta: str | None = None

    def fail(self, recipient: str | None = None, message: str | None = None,
             status: str | None = None) -> None:
        """A rule's finding: the recipient, the reply and its status where still open, and
        ``failed`` (every rule that reads a reply claims a failure, as EmailEngine's do)."""
        self.recipient = self.recipient or recipient
        if message is not None:
            self.action = self.action or "failed"
            self.response.setdefault("message", message[:MAX_VALUE])
        if status and "status" not in self.response:
            self.response["status"] = status

    @property
    def message(self) -> str | None:
        return self.response.get("message")


def text_bounces(text: str, top: Mapping[str, list[str]] | None = None) -> list[dict[str, Any]]:
    """The failed recipients of a plain-text bounce (``text``: its text/plain body; ``top``:
    its own header, as ``report_fields.header_fields`` reads it, when it was read): one
    bounce, or each one of an Amazon WorkMail technical report; ``[]`` for text in none of the
    shapes, or a delay notice. A bounce carries the Message-ID of the original's headers
    quoted in the text (and those headers as ``messageHeaders``) when there are any."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")[:TEXT_LIMIT]
    top = top or {}
    workmail = _workmail(text, top)
    if workmail:
        return workmail
    found = _Found(text, recipient=_failed_recipient(top))
    for rule in _RULES:
        rule(found)
    if found.action == "failed" and _delay_notice(text, found.response):
        return []
    if not found.recipient or not found.action:
        return []
    bounce: dict[str, Any] = {"recipient": found.recipient[:998], "action": found.action}
    if found.response:
        bounce["response"] = found.response
    if found.mta:
        bounce["mta"] = found.mta
    _embedded_original(text, bounce)
    return [bounce]


def _failed_recipient(top: Mapping[str, list[str]]) -> str | None:
    """The first address of ``X-Failed-Recipients`` (Exim's, and Exchange's), a list split
    on commas and spaces."""
    for value in top.get("x-failed-recipients", []):
        for address in re.split(r"[,\s]+", value):
            if address.strip():
                return address.strip()
    return None


def _workmail(text: str, top: Mapping[str, list[str]]) -> list[dict[str, Any]]:
    """Amazon WorkMail's bounce: a multipart/mixed whose text ends in "Technical report:" and
    a DSN's fields, as text; its header names it (``X-Mailer``, ``Thread-Topic``)."""
    mailer = (top.get("x-mailer") or [""])[0].strip()
    topic = (top.get("thread-topic") or [""])[0].strip()
    if mailer != WORKMAIL or topic != WORKMAIL_TOPIC or WORKMAIL_MARKER not in text:
        return []
    report = text[text.index(WORKMAIL_MARKER) + len(WORKMAIL_MARKER):].strip()
    bounces = [bounce for bounce in delivery_status(report) if bounce.get("recipient")]
    for bounce in bounces:
        _embedded_original(text, bounce)
    return bounces


def _paragraph(text: str, start: int, end_search: int | None = None) -> str:
    """The text from ``start`` to the end of its paragraph (an empty line, searched from
    ``end_search``), whitespace runs made one space."""
    end = _PARAGRAPH_END.search(text, start if end_search is None else end_search)
    return " ".join(text[start:end.start() if end else len(text)].split())


def _enhanced(message: str) -> str | None:
    status = _ENHANCED.search(message + " ")
    return status.group(1) if status else None


def _host_said(found: _Found) -> None:
    if found.recipient and found.message:
        return
    said = _HOST_SAID.search(found.text)
    if said:
        message = _paragraph(found.text, said.end())
        found.fail(said.group(1), message, _enhanced(message))
        found.mta = found.mta or said.group(2).lower()


def _token_after(text: str, position: int) -> str | None:
    token = _TOKEN_AFTER.match(text, position)
    return token.group(1) if token and "@" in token.group(1) else None


def _delivery_failed(found: _Found) -> None:
    """"Delivery to the following recipient failed permanently:" and its look-alikes, the
    address on the next line."""
    for pattern in (_DELIVERY_FAILED, _RECIPIENTS_AFFECTED):
        if found.recipient:
            return
        heading = pattern.search(found.text)
        if heading:
            found.recipient = _token_after(found.text, heading.end())


def _reply_line(found: _Found) -> None:
    """A reply with an enhanced status at the start of a line, to the end of its paragraph."""
    if found.message:
        return
    reply = _REPLY_LINE.search(found.text)
    if reply:
        message = _paragraph(found.text, reply.start(), reply.end())
        found.fail(message=message, status=_enhanced(message))


def _qmail_block(found: _Found) -> None:
    if found.recipient and found.message:
        return
    text = "\n" + found.text
    block = _QMAIL_BLOCK.search(text)
    if block:
        message = _paragraph(text, block.end())
        qmail = _QMAIL_STATUS.search(message)
        found.fail(block.group(1), message, _enhanced(message) or (qmail.group(1) if qmail else None))


def _undeliverable_to(found: _Found) -> None:
    if not found.recipient:
        named = _UNDELIVERABLE_TO.search(found.text)
        if named:
            found.recipient = named.group(1)


def _old_gmail(found: _Found) -> None:
    """Gmail's bounce before 2015: the address after "failed permanently:", the reason after
    "Technical details of permanent failure:" up to an empty line or the original."""
    if found.action and found.message:
        return
    failed = _GMAIL_FAILED.search(found.text)
    if not failed:
        return
    found.recipient = found.recipient or failed.group(1).strip()
    found.action = found.action or "failed"
    details = _GMAIL_DETAILS.search(found.text)
    end = _GMAIL_DETAILS_END.search(found.text, details.end() + 1) if details else None
    if end:  # the reason runs to an empty line, a dashed line or the original
        reason = found.text[details.end():end.start()]
        if reason.strip():
            status = _ANY_STATUS.search(reason)
            found.fail(message=" ".join(reason.split()), status=status.group(1) if status else None)


def _reason_for_the_problem(found: _Found) -> None:
    if found.message:
        return
    reason = _REASON.search(found.text)
    if reason:
        status = reason.group(1)
        found.fail(message=f"{status} {_paragraph(found.text, reason.end())}", status=status)


def _remote_host_said(found: _Found) -> None:
    if found.recipient or found.message:
        return
    named = _COULD_NOT_DELIVER_TO.search(found.text)
    if named:
        found.recipient = named.group(1)
        said = _REMOTE_HOST_SAID.search(found.text)
        if said:
            found.response.setdefault("message", " ".join(said.group(1).split())[:MAX_VALUE])


def _exim(found: _Found) -> None:
    """Exim's "The following address(es) failed:": the indented lines under the failed
    address (named by ``X-Failed-Recipients``) are the reason."""
    if not found.recipient or found.message or not _EXIM_FAILED.search(found.text):
        return
    for paragraph in _PARAGRAPH_END.split(found.text):
        if found.recipient not in paragraph:
            continue
        lines = paragraph.split("\n")
        start = next((n for n, line in enumerate(lines) if found.recipient in line), len(lines)) + 1
        reason = []
        for line in lines[start:]:
            if not line.strip() or not re.match(r"\s{2}", line):
                break
            reason.append(line.strip())
        if reason:
            found.fail(message=" ".join(" ".join(reason).split()))
            return


def _named_recipient(pattern: re.Pattern) -> Callable[[_Found], None]:
    """A rule naming the failed recipient and claiming the failure (KDDI's "Could not be
    delivered to:", "returned permanent errors:")."""
    def rule(found: _Found) -> None:
        if not found.recipient:
            named = pattern.search(found.text)
            if named:
                found.recipient = named.group(1).strip()
                found.action = found.action or "failed"
    return rule


def _mobile_error(found: _Found) -> None:
    if not found.message:
        error = _MOBILE_ERROR.search(found.text)
        if error:
            found.fail(message=" ".join(error.group(0).split()))


def _rcpt_to(found: _Found) -> None:
    if not found.recipient:
        named = _RCPT_TO.search(found.text)
        if named:
            found.recipient = named.group(1).strip()


def _any_reply(found: _Found) -> None:
    """The last resort: a 5xx reply anywhere ("550 - Requested action not taken: ...")."""
    if found.message:
        return
    reply = _ANY_REPLY.search(found.text)
    if reply:
        status = _ANY_STATUS.search(reply.group(2))
        found.fail(message=f"{reply.group(1)} {reply.group(2).strip()}",
                   status=status.group(1) if status else None)


_RULES: tuple[Callable[[_Found], None], ...] = (
    _host_said, _delivery_failed, _reply_line, _qmail_block, _undeliverable_to, _old_gmail,
    _reason_for_the_problem, _remote_host_said, _exim, _named_recipient(_KDDI),
    _named_recipient(_PERMANENT_ERRORS), _mobile_error, _rcpt_to, _any_reply)


def _delay_notice(text: str, response: Mapping[str, str]) -> bool:
    """A notice of a delay: its wording, or a temporary (4.x.x) reply from an MTA that has not
    given up (a final bounce often quotes the last temporary reply, then says it gave up)."""
    if _DELAY.search(text):
        return True
    temporary = (response.get("status") or "").startswith("4.") or \
        bool(_TEMPORARY_REPLY.match(response.get("message") or ""))
    return temporary and not _GAVE_UP.search(text)


def _embedded_original(text: str, bounce: dict[str, Any]) -> None:
    """The original's Message-ID from its headers quoted in the text (from its first
    ``Received:`` or ``Return-Path:`` line), and those headers as ``messageHeaders``."""
    if bounce.get("messageId"):
        return
    embedded = _EMBEDDED_HEADERS.search(text)
    if embedded:
        fields = header_fields(text[embedded.start():])
        original = message_id((fields.get("message-id") or [None])[0])
        if original:
            bounce["messageId"] = original
            bounce["messageHeaders"] = fields
