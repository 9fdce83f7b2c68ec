"""Building an RFC 5322 message from EmailEngine's structured fields (or taking ``raw``).

Uploading a draft (``POST .../message``) and sending (``POST .../submit``) accept the same
JSON: ``from``, ``to``/``cc``/``bcc``, ``replyTo``, ``subject``, ``text``, ``html``,
``attachments``, ``headers``, ``messageId`` and ``reference``, or ``raw`` instead of all of
them. ``compose`` turns them into the bytes that go on the wire (CRLF line ends, 7-bit clean:
non-ASCII headers as RFC 2047 encoded words, bodies quoted-printable or base64), plus what
the caller needs besides: the Message-ID, the SMTP envelope and the referenced message.

The MIME tree is the smallest one that holds what was given::

    multipart/mixed                  (only with attachments)
      multipart/alternative          (only with both text and html)
        text/plain
        multipart/related            (only with inline images the html refers to by cid:)
          text/html
          image/png; Content-ID: <logo>
      application/pdf; attachment

A ``reference`` ({message, action: reply | replyAll | forward, inline}) names a message of
the index. A reply threads (In-Reply-To and References; a forward References only), is
addressed to the original's Reply-To or From (``replyAll``: plus its To and Cc, without
ourselves) unless recipients were given, and gets ``Re:`` before the original subject unless
a subject was given. ``inline`` quotes the original text; a forward that is not inline
attaches the original as message/rfc822. Loading the original is the only part that touches
the network (its text or source over the pooled IMAP connection); ``compose(load=...)``
takes a stand-in, so the composition itself is a pure function. A reference that is not
found is a 404, unless it says ``ignoreMissing``: then the message is built without it, and
``Composed.reference`` is None (submit and upload answer ``reference.success: false``).

Bcc: a message that is sent never carries a Bcc field, nor Resent-Bcc nor any other
``*-Bcc`` (``is_bcc_field``): Bcc and Resent-Bcc recipients get it through the envelope
only. An uploaded draft keeps them (``for_sending=False``), as EmailEngine does, so that the
draft can be sent later with its Bcc recipients.

The envelope, unless the caller gives one: for structured fields, every address of to, cc,
bcc and of Resent-To/Cc/Bcc fields in ``headers``; for a raw message, the recipients of its
newest Resent- block when it is being re-sent (RFC 5322 3.6.6, as ``sendmail -t`` and
Python's ``smtplib.send_message`` read it), else its To, Cc and Bcc.
"""

from __future__ import annotations

import email.header
import email.utils
import html as html_lib
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser

from accounts.models import EmailAccount
from mailboxes import listing
from mailboxes.command_pool import pool
from mailboxes.errors import (
    ComposeError,
    MessageNotDraft,
    MessageNotFound,
    NoRecipients,
    OriginalTooLarge,
    ReferenceMismatch,
    ReferenceNotFound,
)
from mailboxes.imap import parse, parts
from mailboxes.mime_rewrite import rewrite_html
from mailboxes.quote_dates import quote_date

# 7-bit clean output with CRLF: safe for SMTP servers without 8BITMIME and for APPEND.
# ``refold_source="none"``: a header set as it is (``_set_header``) or read from a message is
# written as it is, not folded into encoded words.
POLICY = policy.SMTP.clone(cte_type="7bit", refold_source="none")
MAX_LINE = 998  # RFC 5322 2.1.1
# The headers the structured fields set; ``headers`` may not set them a second time.
RESERVED_HEADERS = {
    "from": "from", "to": "to", "cc": "cc", "bcc": "bcc", "reply-to": "replyTo",
    "subject": "subject", "message-id": "messageId", "mime-version": None,
    "content-type": None, "content-transfer-encoding": None, "content-disposition": None,
}
FORWARD_SOURCE_LIMIT = 25 * 1024 * 1024  # an original larger than this is not attached
_HEADER_NAME = re.compile(r"^[!-9;-~]{1,76}$")  # RFC 5322 ftext: printable ASCII but ':'
# type/subtype of RFC 2045 token characters (RFC 6838's restricted names).
CONTENT_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}/"
                          r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$")
_BARE_LF = re.compile(rb"(?<!\r)\n")
_THREADABLE = re.compile(r"<[!-;=?-~]+>")
_REPLY_PREFIX = re.compile(r"^\s*(re|aw|sv|antw)\s*:", re.IGNORECASE)
_FORWARD_PREFIX = re.compile(r"^\s*(fwd?|wg|tr)\s*:", re.IGNORECASE)


def crlf(raw: bytes) -> bytes:
    """CRLF line ends, as SMTP's DATA and IMAP's APPEND require (smtplib sends bytes as
    they are)."""
    return _BARE_LF.sub(b"\r\n", raw)


@dataclass(frozen=True)
class ReferenceTarget:
    """The message a reply or forward refers to: enough to flag it \\Answered afterwards."""

    message: str        # its API id
    action: str         # "reply" | "replyAll" | "forward"
    folder_id: int
    path: str
    uid: int
    message_id: str     # its Message-ID header, with angle brackets ("" if it had none)


@dataclass
class Original:
    """What composing needs of the referenced message (``load_original`` fills it)."""

    target: ReferenceTarget
    subject: str = ""
    from_: dict | None = None
    reply_to: list[dict] = field(default_factory=list)
    to: list[dict] = field(default_factory=list)
    cc: list[dict] = field(default_factory=list)
    date: datetime | None = None
    references: list[str] = field(default_factory=list)
    text: str | None = None     # plain text, for quoting
    html: str | None = None
    source: bytes | None = None  # the whole message, for a forward as attachment
    attachments: list[dict] = field(default_factory=list)  # forwardAttachments: API shape


@dataclass
class Composed:
    raw: bytes                # the message bytes (CRLF line ends)
    message_id: str           # with angle brackets
    envelope_from: str        # bare address
    envelope_to: list[str]    # bare addresses: to+cc+bcc unless an explicit envelope overrides
    subject: str
    reference: ReferenceTarget | None = None


Loader = Callable[[EmailAccount, dict, bool, bool], Original]
HtmlFilter = Callable[[str, str], str]  # (html, Message-ID) -> html


def compose(account: EmailAccount, fields: dict, envelope: dict | None = None, *,
            for_sending: bool = True, load: Loader | None = None,
            html_filter: HtmlFilter | None = None) -> Composed:
    """The message *fields* describe (validated by ``MessageFieldsSerializer``: ``raw`` and
    attachment contents as bytes). ``for_sending`` drops Bcc from the headers, gives a raw
    message a Message-ID when it lacks one, and refuses a message without recipients.
    ``html_filter(html, message_id)`` rewrites the HTML body as it goes out (quoted original
    and preview text included: open and click tracking, ``mailboxes.tracking``); in a raw
    message, each HTML part and nothing else (``mailboxes.mime_rewrite``)."""
    reference = fields.get("reference")
    original = None
    if reference:
        inline = bool(reference.get("inline"))
        wants_source = reference.get("action") == "forward" and not inline \
            and "raw" not in fields and reference.get("forwardAttachments") is None
        original = _original_unless_ignored(
            load or load_original, account, reference, inline and "raw" not in fields,
            wants_source)
    if "raw" in fields:
        composed = _from_raw(account, fields["raw"], envelope, for_sending)
        if html_filter is not None:
            message_id = composed.message_id
            composed.raw = rewrite_html(composed.raw, lambda html: html_filter(html, message_id))
    else:
        composed = _from_fields(account, fields, original, envelope, for_sending, html_filter)
    composed.reference = original.target if original else None
    if for_sending and not composed.envelope_to:
        raise NoRecipients("envelope.to", "The message has no recipients: give to/cc/bcc or "
                           "envelope.to")
    return composed


def _original_unless_ignored(load: Loader, account: EmailAccount, reference: dict,
                             with_text: bool, with_source: bool) -> Original | None:
    """The referenced message; None when it is not found and the reference says
    ``ignoreMissing`` (EmailEngine's: the message is built as if no reference were given,
    and the caller's answer says ``reference.success: false``). A ``messageId`` that does
    not match is a 404 whatever ``ignoreMissing`` says, as in EmailEngine: the message is
    there, it is not the one the caller meant."""
    try:
        return load(account, reference, with_text, with_source)
    except ReferenceMismatch:
        raise
    except ReferenceNotFound:
        if not reference.get("ignoreMissing"):
            raise
        return None


# --- structured fields ------------------------------------------------------------------------


def _from_fields(account: EmailAccount, fields: dict, original: Original | None,
                 envelope: dict | None, for_sending: bool,
                 html_filter: HtmlFilter | None = None) -> Composed:
    action = original.target.action if original else None
    sender = fields.get("from") or {"name": account.name, "address": account.email}
    if not sender.get("address"):
        raise ComposeError("from", "No sender: give from.address (the account has no email)")
    to, cc, bcc = fields.get("to") or [], fields.get("cc") or [], fields.get("bcc") or []
    if original and action in ("reply", "replyAll") and not (to or cc):
        to, cc = reply_recipients(original, action, {account.email, sender["address"]})
    subject = fields.get("subject")
    if subject is None:
        subject = reply_subject(original.subject, action) if original else ""

    message = EmailMessage(policy=POLICY)
    message["From"] = _address("from", sender)
    for name, key, values in (("Reply-To", "replyTo", fields.get("replyTo") or []),
                              ("To", "to", to), ("Cc", "cc", cc),
                              ("Bcc", "bcc", [] if for_sending else bcc)):
        if values:
            message[name] = tuple(_address(f"{key}[{n}]", v) for n, v in enumerate(values))
    if subject:
        message["Subject"] = subject
    message["Date"] = email.utils.format_datetime(datetime.now(timezone.utc))
    message_id = message_id_header(fields.get("messageId"), sender["address"])
    message["Message-ID"] = message_id
    if original and _threadable(original.target.message_id):
        # A reply answers the original (In-Reply-To); a reply and a forward both continue
        # its thread (References), as EmailEngine does.
        if action in ("reply", "replyAll"):
            message["In-Reply-To"] = original.target.message_id
        message["References"] = " ".join(list(dict.fromkeys(
            [*filter(_threadable, original.references[-20:]), original.target.message_id])))
    _extra_headers(message, fields.get("headers") or {})

    text, html = fields.get("text"), fields.get("html")
    if original and original.target.action and fields.get("reference", {}).get("inline"):
        text, html = _quoted(original, text, html, _quote_when(original, account, fields))
    if html is not None and fields.get("previewText"):
        html = with_preview(html, fields["previewText"])
    if html is not None and html_filter is not None:
        html = html_filter(html, message_id)
    _body(message, text, html,
          [*(fields.get("attachments") or []), *(original.attachments if original else [])])
    if original and action == "forward" and original.source is not None:
        _attach_message(message, original.source, _eml_name(original.subject))

    _one_mime_version(message)
    if for_sending:
        for name in {name for name in message.keys() if is_bcc_field(name)}:
            del message[name]
    raw = message.as_bytes(policy=POLICY)
    recipients = [a["address"] for a in [*to, *cc, *bcc]] + [
        address for name, value in (fields.get("headers") or {}).items()
        if name.lower() in RESENT_RECIPIENTS for address in _address_list([value])]
    return Composed(raw=raw, message_id=message_id,
                    envelope_from=(envelope or {}).get("from") or _bare(sender["address"]),
                    envelope_to=_unique((envelope or {}).get("to") or
                                        [_bare(a) for a in recipients]),
                    subject=subject)


def _threadable(message_id: str | None) -> bool:
    """Whether a Message-ID of the original can go into a reply's In-Reply-To or References:
    ``<...>`` of printable ASCII. A sender's may be anything (control characters, non-ASCII,
    no brackets), which the email package cannot fold into a header (a 500 on the reply)."""
    return bool(message_id) and _THREADABLE.fullmatch(message_id) is not None


def has_line_break(text: str) -> bool:
    """Whether ``text`` holds NUL or anything the email package takes for a line break: CR
    and LF, but also U+2028, U+0085, form feed... (``str.splitlines``), which it refuses in a
    header value as it does CR/LF."""
    return "\0" in text or len(f"x{text}x".splitlines()) > 1


def one_line(text: str) -> str:
    """``text`` with NUL and each line break ``has_line_break`` finds turned into a space: a
    sender's Subject or display name (``=?utf-8?q?a=0D=0Ab?=`` decodes to a CR LF), carried
    into a reply's headers, where the email package refuses them."""
    if not has_line_break(text):
        return text
    return " ".join(f"x{text.replace(chr(0), ' ')}x".splitlines())[1:-1]


def _address(field_name: str, value: dict) -> Address:
    name, address = value.get("name") or "", value.get("address") or ""
    if has_line_break(name + address):
        raise ComposeError(field_name, "Line breaks are not allowed")
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise ComposeError(field_name, f"Not an email address: {address!r}")
    try:
        return Address(display_name=name, username=local, domain=_ascii_domain(domain))
    except (ValueError, TypeError, IndexError) as exc:
        raise ComposeError(field_name, f"Not an email address: {exc}") from None


def _ascii_domain(domain: str) -> str:
    """An internationalised domain in its ASCII (punycode) form, valid in any header."""
    if domain.isascii():
        return domain
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(f"invalid domain {domain!r}") from None


def _bare(address: str) -> str:
    local, _, domain = address.rpartition("@")
    try:
        return f"{local}@{_ascii_domain(domain)}"
    except ValueError:
        return address


def _unique(addresses: list[str]) -> list[str]:
    seen, out = set(), []
    for address in addresses:
        if address.lower() not in seen:
            seen.add(address.lower())
            out.append(address)
    return out


def message_id_header(given: str | None, sender: str) -> str:
    if given:
        value = given.strip()
        value = value if value.startswith("<") else f"<{value}>"
        if not re.fullmatch(r"<[!-;=?-~]+@[!-;=?-~]+>", value):
            raise ComposeError("messageId", "Must look like <local@domain> (ASCII, no spaces)")
        return value
    domain = sender.rpartition("@")[2]
    try:
        domain = _ascii_domain(domain)
    except ValueError:
        domain = "emailapi.invalid"
    return f"<{uuid.uuid4()}@{domain or 'emailapi.invalid'}>"


def check_header(name: str, value: str) -> str | None:
    """Why an extra header cannot be used as given, or None when it can (no CR/LF
    injection: a value with a line break could add headers or end the header block)."""
    if not _HEADER_NAME.match(name):
        return "Not a valid header name"
    if name.lower() in RESERVED_HEADERS:
        use = RESERVED_HEADERS[name.lower()]
        return f"Set by the field {use!r}" if use else "Set by the message structure"
    if has_line_break(value):
        return "Line breaks are not allowed in a header value"
    if len(value) > 4000:
        return "Longer than 4000 characters"
    if parts.comment_depth(value) > parts.MAX_COMMENT_DEPTH and parts.structured_field(name):
        return f"Comments (parentheses) nested deeper than {parts.MAX_COMMENT_DEPTH} levels"
    return None


def _extra_headers(message: EmailMessage, headers: dict) -> None:
    for name, value in headers.items():
        problem = check_header(name, value)
        if problem:
            raise ComposeError(f"headers.{name}", problem)
        if name in message:  # a caller's In-Reply-To or References wins over the reference's
            del message[name]
        _set_header(message, name, value)


def _set_header(message: EmailMessage, name: str, value: str) -> None:
    """Folding cannot break a word longer than a line (a URL: ``List-Unsubscribe``'s), and
    the email package then writes the whole value as encoded words, which no reader of a
    URL or an id decodes: such an ASCII value goes as it is, on one line (up to the 998
    characters RFC 5322 allows). Others are folded as usual."""
    words = value.split()
    if (value.isascii() and words and len(name) + 2 + len(value) <= MAX_LINE
            and len(name) + 2 + max(len(word) for word in words) > POLICY.max_line_length):
        message.set_raw(name, value)
    else:
        message[name] = value


def _body(message: EmailMessage, text: str | None, html: str | None,
          attachments: list[dict]) -> None:
    related = [a for a in attachments if html and a.get("cid") and
               f"cid:{a['cid']}" in html and a.get("contentDisposition") != "attachment"]
    if text is not None:
        message.set_content(text)
    if html is not None:
        if text is not None:
            message.add_alternative(html, subtype="html")
        else:
            message.set_content(html, subtype="html")
    if text is None and html is None and not attachments:
        message.set_content("")
    if related:
        html_part = message.get_payload()[1] if message.is_multipart() else message
        for attachment in related:
            maintype, subtype = _content_type(attachment)
            html_part.add_related(attachment["content"], maintype, subtype,
                                  cid=f"<{attachment['cid']}>",
                                  filename=attachment.get("filename") or None,
                                  disposition="inline")
    for number, attachment in enumerate(attachments):
        if any(attachment is r for r in related):
            continue
        maintype, subtype = _content_type(attachment)
        if (maintype, subtype) == ("message", "rfc822"):
            _attach_message(message, attachment["content"], attachment.get("filename"))
            continue
        if maintype in ("multipart", "message"):
            raise ComposeError(f"attachments[{number}].contentType",
                               "multipart/* and message/* (but message/rfc822) cannot be "
                               "attached as content")
        message.add_attachment(
            attachment["content"], maintype, subtype,
            filename=attachment.get("filename") or None,
            disposition=attachment.get("contentDisposition") or
            ("inline" if attachment.get("cid") else "attachment"),
            cid=f"<{attachment['cid']}>" if attachment.get("cid") else None)


def _one_mime_version(message: EmailMessage) -> None:
    """MIME-Version once, at the top: the email package also stamps every part it creates
    (harmless, but noise to every reader of the source)."""
    for part in message.walk():
        if part is not message:
            del part["MIME-Version"]
    if "MIME-Version" not in message:
        message["MIME-Version"] = "1.0"


def _content_type(attachment: dict) -> tuple[str, str]:
    content_type = attachment.get("contentType") or _guess(attachment.get("filename"))
    maintype, _, subtype = content_type.lower().partition("/")
    return maintype, subtype


def _guess(filename: str | None) -> str:
    import mimetypes

    return (mimetypes.guess_type(filename or "")[0] if filename else None) or \
        "application/octet-stream"


_LINE_END = re.compile(rb"\r?\n")


def _attach_message(message: EmailMessage, raw: bytes, filename: str | None) -> None:
    """Attach a whole message as message/rfc822 (a forward of the original, say). An
    empty body is made first so the attachment is not mistaken for the message itself.

    An ASCII message goes as it came, byte for byte but its line ends made CRLF (7bit; nothing
    to parse, and signatures over it stay valid). One with 8-bit data goes written again 7-bit
    clean (``_seven_bit``), as the output must be, when that can be done; else it goes base64
    as application/octet-stream (message/rfc822 may not be base64, RFC 2046 5.2.1)."""
    if not message.get_content_type() or message.get_payload() is None:
        message.set_content("")
    seven_bit = raw if raw.isascii() else _seven_bit(raw)
    if seven_bit is None:
        message.add_attachment(raw, "application", "octet-stream",
                               filename=filename or "message.eml")
        return
    part = EmailMessage(policy=POLICY)
    part["Content-Type"] = "message/rfc822"
    part["Content-Transfer-Encoding"] = "7bit"
    if filename:
        part.add_header("Content-Disposition", "attachment", filename=filename)
    else:
        part["Content-Disposition"] = "attachment"
    # Written as it is (the payload is not a Message), so its line ends are the wire's here.
    part.set_payload(_LINE_END.sub(b"\r\n", seven_bit).decode("ascii"))
    if message.get_content_type() != "multipart/mixed":
        message.make_mixed()
    message.attach(part)


def _seven_bit(raw: bytes) -> bytes | None:
    """An 8-bit message parsed and written again 7-bit clean (its 8-bit parts re-encoded), or
    None when the email package cannot: parsing it is unbounded (``parts.
    email_package_bounded``), or writing fails on what a sender put in it (a text part that
    decodes to a character its own charset cannot encode again, say: ISO-2022-JP and the
    U+FFFD its bad bytes became), which would otherwise fail the whole forward."""
    if not parts.email_package_bounded(raw):
        return None
    try:
        written = BytesParser(policy=POLICY).parsebytes(raw).as_bytes(policy=POLICY)
    except Exception:  # noqa: BLE001 - any fault of the email package on a stranger's message
        return None
    return written if written.isascii() else None


def _eml_name(subject: str) -> str:
    name = re.sub(r"[\\/:*?\"<>|\r\n\t]+", " ", subject or "").strip()[:100]
    return f"{name or 'message'}.eml"


# --- replies and forwards ---------------------------------------------------------------------


def reply_subject(subject: str, action: str | None) -> str:
    """``Re: subject`` for a reply, ``Fwd: subject`` for a forward; no second prefix; on one
    line."""
    subject = one_line(subject or "")
    if action == "forward":
        return subject if _FORWARD_PREFIX.match(subject) else f"Fwd: {subject}".rstrip()
    return subject if _REPLY_PREFIX.match(subject) else f"Re: {subject}".rstrip()


def reply_recipients(original: Original, action: str,
                     selves: set[str]) -> tuple[list[dict], list[dict]]:
    """To and Cc of a reply: the original's Reply-To, else its From (our own message: its
    To); ``replyAll`` copies its other To and Cc recipients, never ourselves twice."""
    own = {s.lower() for s in selves if s}
    sender = original.from_ or {}
    if original.reply_to:
        to = list(original.reply_to)
    elif sender.get("address", "").lower() in own and original.to:
        to = list(original.to)
    else:
        to = [sender] if sender.get("address") else []
    cc: list[dict] = []
    if action == "replyAll":
        taken = {(a.get("address") or "").lower() for a in to} | own
        for address in [*original.to, *original.cc]:
            key = (address.get("address") or "").lower()
            if key and key not in taken:
                taken.add(key)
                cc.append(address)
    return ([_plain(a) for a in to if _usable(a)], [_plain(a) for a in cc if _usable(a)])


def _usable(address: dict) -> bool:
    """Whether a recipient of the original can be one of the reply: an address no header can
    carry (a sender's control character in it) is left out, not a 400 the caller cannot mend."""
    return bool(address.get("address")) and not has_line_break(address["address"])


def _plain(address: dict) -> dict:
    return {"name": one_line(address.get("name") or ""), "address": address["address"]}


def _who(address: dict | None) -> str:
    if not address:
        return "unknown sender"
    name, mail = address.get("name"), address.get("address")
    return f"{name} <{mail}>" if name else (mail or "unknown sender")


# A tag, for the text of an HTML-only original: no "<" inside, so a run of "<" without a ">"
# (a sender's 1 MB of them) costs one pass, not one scan to the end for each.
_TAG = re.compile(r"<[^<>]*>")


# No "<" inside either: with ``[^>]*`` each "<body" of a text without ">" (an inline reply
# quotes the original's HTML, a sender's) scanned to its end, 200 KB of them 4 s.
_BODY_OPEN = re.compile(r"<body\b[^<>]*>", re.IGNORECASE)
_HIDDEN = ("display:none;font-size:1px;line-height:1px;max-height:0;max-width:0;opacity:0;"
           "overflow:hidden;mso-hide:all")


def with_preview(html: str, preview: str) -> str:
    """EmailEngine's ``previewText``: the line an inbox shows after the subject, first in the
    HTML body (after ``<body>``, or at the start of a fragment) and hidden when the message is
    opened."""
    block = f'<div style="{_HIDDEN}">{html_lib.escape(preview)}</div>'
    opening = _BODY_OPEN.search(html)
    at = opening.end() if opening else 0
    return html[:at] + block + html[at:]


def _quote_when(original: Original, account: EmailAccount, fields: dict) -> str:
    """The original's date as the quote shows it: in the request's ``locale`` and ``tz``, else
    the account's (EmailEngine's order; ``mailboxes.quote_dates``)."""
    if not original.date:
        return "an unknown date"
    options = account.ee_options or {}
    return quote_date(original.date, fields.get("locale") or options.get("locale"),
                      fields.get("tz") or options.get("tz"))


def _quoted(original: Original, text: str | None, html: str | None, when: str):
    """The new text and html with the original quoted below them (a reply: ``> `` lines and
    a blockquote; a forward: the forwarded header block), its date written as ``when``."""
    source_text = original.text
    if source_text is None and original.html is not None:
        source_text = _TAG.sub("", original.html)
    source_text = (source_text or "").rstrip("\n")
    if original.target.action == "forward":
        intro = ["---------- Forwarded message ---------", f"From: {_who(original.from_)}",
                 f"Date: {when}", f"Subject: {original.subject}",
                 f"To: {', '.join(_who(a) for a in original.to)}"]
        quote_text = "\n".join(intro) + "\n\n" + source_text
        quote_html = ("<div>" + "<br>".join(html_lib.escape(line) for line in intro) +
                      "</div><br>" + _original_html(original))
    else:
        intro = f"On {when}, {_who(original.from_)} wrote:"
        quote_text = intro + "\n" + "\n".join(
            f"> {line}" if line else ">" for line in source_text.split("\n"))
        quote_html = (f"<div>{html_lib.escape(intro)}</div><blockquote type=\"cite\" "
                      f"style=\"margin:0 0 0 .8ex;border-left:1px solid #ccc;"
                      f"padding-left:1ex\">{_original_html(original)}</blockquote>")
    new_text = new_html = None
    if text is not None or html is None:
        new_text = (text + "\n\n" if text else "") + quote_text + "\n"
    if html is not None:
        new_html = html + "<br><br>" + quote_html
    return new_text, new_html


def _original_html(original: Original) -> str:
    if original.html is not None:
        return original.html
    return html_lib.escape(original.text or "").replace("\n", "<br>")


# --- raw --------------------------------------------------------------------------------------


def _from_raw(account: EmailAccount, raw: bytes, envelope: dict | None,
              for_sending: bool) -> Composed:
    """A caller's own message: line ends made CRLF; for sending, a Message-ID added when
    it has none and every ``*-Bcc`` field dropped; nothing else changes. A message being
    re-sent goes from and to its newest Resent- block's addresses."""
    raw = crlf(raw)
    headers = BytesParser(policy=policy.compat32).parsebytes(raw, headersonly=True)
    envelope = envelope or {}
    resent = newest_resent_block(headers.items())
    resent_sender = _addresses(resent, "resent-sender") or _addresses(resent, "resent-from")
    sender = (envelope.get("from") or (resent_sender[0] if resent_sender else "")
              or first_header_address(headers, "Sender", "From")
              or account.email or login_address(account))
    recipients = (_addresses(resent, *RESENT_RECIPIENTS)
                  or header_addresses(headers, "To", "Cc", "Bcc"))
    message_id = (headers.get("Message-ID") or "").strip()
    if for_sending:
        if not message_id:
            message_id = message_id_header(None, sender or "")
            raw = f"Message-ID: {message_id}\r\n".encode() + raw
        raw = without_fields(raw, is_bcc_field)
    return Composed(raw=raw, message_id=message_id, envelope_from=sender or "",
                    envelope_to=_unique(envelope.get("to") or recipients),
                    subject=decoded_header(headers.get("Subject") or ""))


RESENT_RECIPIENTS = ("resent-to", "resent-cc", "resent-bcc")


def is_bcc_field(name: str | bytes) -> bool:
    """Bcc, Resent-Bcc and any other ``*-Bcc`` field: hidden recipients, never sent."""
    name = (name.decode("ascii", "replace") if isinstance(name, bytes) else name)
    name = name.strip().lower()
    return name == "bcc" or name.endswith("-bcc")


def newest_resent_block(fields) -> list[tuple[str, str]]:
    """The Resent- fields the last re-sender added, from ``(name, value)`` pairs in header
    order. Each re-sender prepends a block, so it is the first run of Resent- fields from
    the top; it ends at any other field (trace fields separate blocks) or at a name it
    already has (two blocks side by side)."""
    block: list[tuple[str, str]] = []
    for name, value in fields:
        lower = name.lower()
        if not lower.startswith("resent-"):
            if block:
                break
            continue
        if any(seen.lower() == lower for seen, _ in block):
            break
        block.append((name, str(value)))
    return block


def _addresses(fields: list[tuple[str, str]], *names: str) -> list[str]:
    return _address_list(value for name, value in fields if name.lower() in names)


def _address_list(values: Iterable[str]) -> list[str]:
    """The addresses (with an ``@``) of address header values, read as the index reads them
    (``parse.header_addresses``, which walks nested comments in a loop: the email package's
    ``getaddresses`` recurses into them, and ``To: ((((...`` was a RecursionError)."""
    return [found.address for value in values
            for found in parse.header_addresses(str(value).encode("utf-8", "surrogateescape"))
            if "@" in found.address]


def login_address(account: EmailAccount) -> str:
    """The SMTP login when it is an address: the last resort for MAIL FROM."""
    user = ((account.smtp or {}).get("auth") or {}).get("user") or ""
    return user if "@" in user else ""


def header_addresses(headers, *names: str) -> list[str]:
    return _address_list(value for name in names for value in headers.get_all(name) or [])


def first_header_address(headers, *names: str) -> str:
    for name in names:
        found = header_addresses(headers, name)
        if found:
            return found[0]
    return ""


def decoded_header(value) -> str:
    try:
        return str(email.header.make_header(email.header.decode_header(str(value))))
    except Exception:  # noqa: BLE001 - a malformed encoded word: keep the text as given
        return str(value)


def without_fields(raw: bytes, unwanted: Callable[[bytes], bool]) -> bytes:
    """*raw* without the fields of its header block whose name is *unwanted* (with their
    folded lines)."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    kept, skipping = [], False
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            if not skipping:
                kept.append(line)
            continue
        skipping = unwanted(line.split(b":", 1)[0])
        if not skipping:
            kept.append(line)
    return b"\r\n".join(kept) + sep + body


# --- loading the referenced message (the network part) ----------------------------------------


def load_original(account: EmailAccount, reference: dict, with_text: bool,
                  with_source: bool) -> Original:
    """The referenced message from the index, and from the server its text (to quote) or
    its source (to attach) when asked. 404 ``ReferenceNotFound`` when the id is unknown or
    the server no longer has the message, or when the reference names a ``messageId`` the
    message does not have."""
    try:
        folder, row = listing.message_by_id(account, reference["message"])
    except MessageNotFound as exc:
        raise ReferenceNotFound(exc.message) from None
    if reference.get("messageId") and reference["messageId"] != row.message_id:
        raise ReferenceMismatch()
    target = ReferenceTarget(message=reference["message"],
                             action=reference.get("action") or "reply", folder_id=folder.pk,
                             path=folder.path, uid=row.uid, message_id=row.message_id or "")
    original = Original(target=target, subject=row.subject or "", from_=row.from_address,
                        reply_to=list(row.reply_to or []), to=list(row.to or []),
                        cc=list(row.cc or []), date=row.date or row.internal_date,
                        references=list(row.references or []))
    with_attachments = bool(reference.get("action") == "forward"
                            and reference.get("forwardAttachments") and row.attachments)
    if with_source and row.size > FORWARD_SOURCE_LIMIT or with_attachments and sum(
            part.get("size") or 0 for part in row.attachments) > FORWARD_SOURCE_LIMIT:
        raise OriginalTooLarge("reference.message", "The original is too large to attach")
    if not (with_text or with_source or with_attachments):
        return original
    with pool.session(account) as session:
        session.open(folder.path, refresh=True)
        try:
            if with_text:
                text = parts.fetch_text(session.client, row.uid, list(row.text_parts), "*",
                                        1024 * 1024)
                original.text, original.html = text["plain"], text["html"]
            if with_source:
                original.source = parts.fetch_section(session.client, row.uid, "",
                                                      max_bytes=FORWARD_SOURCE_LIMIT)
            if with_attachments:
                original.attachments = [
                    _forwarded(part, parts.decode_transfer(
                        parts.fetch_section(session.client, row.uid, part["part"],
                                            max_bytes=FORWARD_SOURCE_LIMIT),
                        part.get("encoding")), bool(reference.get("inline")))
                    for part in row.attachments]
        except parts.MessageNotFound:
            raise ReferenceNotFound(
                f"Message {reference['message']!r} not found") from None
    return original


def _forwarded(part: dict, content: bytes, inline: bool) -> dict:
    """An attachment of the original as an attachment of the forward (EmailEngine's
    ``forwardAttachments``): its inline images keep their Content-ID when the original is
    quoted inline, so the quoted HTML still shows them."""
    content_type = attachable_type(part.get("contentType"))
    is_inline = part.get("disposition") == "inline"
    cid = (part.get("contentId") or "").strip().strip("<>")
    return {"filename": part.get("filename"), "content": content, "contentType": content_type,
            "contentDisposition": "inline" if is_inline else "attachment",
            "cid": cid if inline and is_inline and cid else None}


def attachable_type(content_type: str | None) -> str:
    """The type a part of a stranger's message is attached again with: its own, but
    application/octet-stream for a container (multipart/*, message/* but message/rfc822: the
    email package cannot attach those as bytes) and for anything that is not type/subtype of
    token characters (a sender's, which the header could not carry)."""
    content_type = (content_type or "").lower()
    if not CONTENT_TYPE.fullmatch(content_type):
        return "application/octet-stream"
    if content_type.split("/")[0] in ("multipart", "message") and content_type != "message/rfc822":
        return "application/octet-stream"
    return content_type


def load_draft(account: EmailAccount, message_id: str) -> bytes:
    """The source of a stored draft, to send as it is (``message/{id}/submit``): a message
    of the Drafts folder or one flagged \\Draft (400 ``MessageNotDraft`` otherwise), read
    from the server (404 when the id is unknown or the server no longer has it)."""
    folder, row = listing.message_by_id(account, message_id)
    if folder.special_use != "\\Drafts" and "\\Draft" not in (row.flags or []):
        raise MessageNotDraft(message_id)
    if row.size > FORWARD_SOURCE_LIMIT:
        raise OriginalTooLarge("message", "The draft is too large to send")
    with pool.session(account) as session:
        session.open(folder.path, refresh=True)
        try:
            return parts.fetch_section(session.client, row.uid, "",
                                       max_bytes=FORWARD_SOURCE_LIMIT)
        except parts.MessageNotFound:
            raise MessageNotFound(f"Message {message_id!r} not found") from None
