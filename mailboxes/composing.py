"""Building an RFC 5322 message from EmailEngine-style structured fields.

Uploads (APPEND) and sends (submit) both accept, instead of a ready ``raw`` message:
``from``, ``to``/``cc``/``bcc``/``replyTo`` ({name, address}), ``subject``, ``text``,
``html``, ``attachments`` (base64 ``content``, ``filename``, ``contentType``, ``cid`` for
inline images), extra ``headers``, ``messageId``, and ``reference`` to an indexed message:
``reply``/``replyAll`` set In-Reply-To and References, a ``Re:`` subject and the recipients,
and with ``inline`` quote the original text; ``forward`` makes a ``Fwd:`` subject and either
quotes the original (``inline``) or attaches it as ``message/rfc822``.

The standard library's ``email`` package does the encoding (RFC 2047 words for non-ASCII
names and subjects, RFC 2231 filenames, base64 bodies); header values pass through its
folding, and CR/LF in them are refused before, so no field can add a header of its own.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from email import policy
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from django.utils import timezone

from accounts.models import EmailAccount
from emailapi.api.errors import ApiError
from mailboxes import listing

SMTP_POLICY = policy.SMTP.clone(max_line_length=998)


class BadField(ApiError):
    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}", "InputValidationError",
                         details={field: [message]})


def _address(value: dict | None, field: str) -> Address | None:
    if not value:
        return None
    name, address = value.get("name") or "", value.get("address") or ""
    if any(c in name + address for c in "\r\n\0"):
        raise BadField(field, "Line breaks are not allowed")
    try:
        return Address(display_name=name, addr_spec=address)
    except (ValueError, IndexError, HeaderParseError) as exc:
        raise BadField(field, f"Not a valid address ({exc})") from None


def _own_address(account: EmailAccount) -> Address:
    """The account's own name and address (no From at all if its address is unusable)."""
    try:
        return Address(display_name=account.name or "", addr_spec=account.email or "")
    except (ValueError, IndexError, HeaderParseError):
        return Address()


def _addresses(values: list[dict] | None, field: str) -> list[Address]:
    return [a for a in (_address(v, field) for v in values or []) if a is not None]


def _clean(value: str, field: str) -> str:
    if any(c in value for c in "\r\n\0"):
        raise BadField(field, "Line breaks are not allowed")
    return value


def build(account: EmailAccount, fields: dict, keep_bcc: bool = True) -> tuple[bytes, str]:
    """The message bytes (CRLF) and its Message-ID (with brackets)."""
    message = EmailMessage(policy=SMTP_POLICY)
    sender = _address(fields.get("from"), "from") or _own_address(account)
    reference = _reference(account, fields.get("reference"))
    subject = fields.get("subject")
    to, cc = _addresses(fields.get("to"), "to"), _addresses(fields.get("cc"), "cc")
    if reference is not None:
        subject = subject if subject is not None else reference.subject
        if reference.action in ("reply", "replyAll") and not to:
            to, cc = reference.recipients(account, sender)
    if sender.username:
        message["From"] = sender
    if to:
        message["To"] = to
    if cc:
        message["Cc"] = cc
    bcc = _addresses(fields.get("bcc"), "bcc")
    if bcc and keep_bcc:
        message["Bcc"] = bcc
    reply_to = _addresses(fields.get("replyTo"), "replyTo")
    if reply_to:
        message["Reply-To"] = reply_to
    message["Subject"] = _clean(subject or "", "subject")
    message["Date"] = format_datetime(timezone.now())
    message_id = fields.get("messageId") or make_msgid(
        idstring=uuid.uuid4().hex[:12], domain=(sender.domain or "emailapi.local"))
    message["Message-ID"] = _clean(message_id, "messageId")
    if reference is not None and reference.action in ("reply", "replyAll"):
        message["In-Reply-To"] = reference.message_id
        message["References"] = " ".join(reference.references)
    for name, value in (fields.get("headers") or {}).items():
        if not name or any(c in name for c in ":\r\n\0 ") or not name.isascii():
            raise BadField("headers", f"Not a header name: {name[:60]!r}")
        message[name] = _clean(str(value), f"headers.{name}")
    _body(message, fields, reference)
    _attachments(message, fields.get("attachments") or [], reference)
    return message.as_bytes(policy=SMTP_POLICY), message_id


def _body(message: EmailMessage, fields: dict, reference) -> None:
    text, html = fields.get("text"), fields.get("html")
    if reference is not None and reference.inline:
        quoted = reference.quoted()
        text = f"{text or ''}\n\n{quoted}" if text or not html else text
        if html:
            html = f"{html}<blockquote>{_escape(reference.original_text)}</blockquote>"
    if text is None and html is None:
        text = ""
    if text is not None:
        message.set_content(text)
    if html is not None:
        if text is None:
            message.set_content(html, subtype="html")
        else:
            message.add_alternative(html, subtype="html")


def _escape(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("\n", "<br>"))


def _attachments(message: EmailMessage, attachments: list[dict], reference) -> None:
    inline = [a for a in attachments if a.get("cid")]
    if inline and message.get_content_type() == "multipart/alternative":
        html_part = message.get_payload()[-1]
        for item in inline:
            maintype, subtype = _type(item)
            html_part.add_related(_content(item), maintype=maintype, subtype=subtype,
                                  cid=f"<{item['cid'].strip('<>')}>",
                                  filename=item.get("filename"))
        attachments = [a for a in attachments if not a.get("cid")]
    for item in attachments:
        maintype, subtype = _type(item)
        disposition = item.get("contentDisposition") or ("inline" if item.get("cid")
                                                         else "attachment")
        message.add_attachment(_content(item), maintype=maintype, subtype=subtype,
                               filename=item.get("filename"), disposition=disposition,
                               cid=f"<{item['cid'].strip('<>')}>" if item.get("cid") else None)
    if reference is not None and reference.action == "forward" and not reference.inline:
        message.add_attachment(_as_message(reference.source()), filename="forwarded.eml")


def _as_message(raw: bytes):
    from email.parser import BytesParser

    return BytesParser(policy=policy.default).parsebytes(raw)


def _type(item: dict) -> tuple[str, str]:
    content_type = item.get("contentType") or "application/octet-stream"
    maintype, _, subtype = content_type.partition("/")
    if not maintype or not subtype or any(c in content_type for c in "\r\n;\0 "):
        raise BadField("attachments", f"Not a content type: {content_type[:60]!r}")
    return maintype.lower(), subtype.lower()


def _content(item: dict) -> bytes:
    try:
        return base64.b64decode(item.get("content") or "", validate=True)
    except (ValueError, TypeError):
        raise BadField("attachments", "content is not valid base64") from None


# --- references -----------------------------------------------------------------------------


@dataclass
class _Reference:
    account: EmailAccount
    id: str
    action: str
    inline: bool
    row: object
    folder: object

    @property
    def message_id(self) -> str:
        return self.row.message_id

    @property
    def references(self) -> list[str]:
        found = [*self.row.references[-20:]]
        if self.row.message_id and self.row.message_id not in found:
            found.append(self.row.message_id)
        return found

    @property
    def subject(self) -> str:
        original = self.row.subject or ""
        prefix = "Fwd: " if self.action == "forward" else "Re: "
        return original if original.lower().startswith(prefix.lower()) else prefix + original

    def recipients(self, account: EmailAccount, sender: Address) -> tuple[list, list]:
        mine = {(sender.addr_spec if sender.username else "").lower(),
                (account.email or "").lower()} - {""}
        first = (self.row.reply_to or [None])[0] or self.row.from_address
        to = _addresses([first] if first else [], "reference")
        cc: list[Address] = []
        if self.action == "replyAll":
            seen = {a.addr_spec.lower() for a in to} | mine
            for person in [*self.row.to, *self.row.cc]:
                address = (person or {}).get("address", "")
                if address and address.lower() not in seen:
                    seen.add(address.lower())
                    cc.extend(_addresses([person], "reference"))
        return to, cc

    @property
    def original_text(self) -> str:
        from mailboxes import reading

        detail = reading.message_detail(self.account, self.id, "plain", 256 * 1024,
                                        False, False)
        return (detail["text"].get("plain") or "").strip()

    def quoted(self) -> str:
        sender = (self.row.from_address or {}).get("address", "")
        lines = "\n".join(f"> {line}" for line in self.original_text.splitlines())
        return f"{sender} wrote:\n{lines}" if sender else lines

    def source(self) -> bytes:
        from mailboxes import reading

        download = reading.source_download(self.account, self.id)
        return b"".join(download.chunks())


def _reference(account: EmailAccount, data: dict | None) -> _Reference | None:
    if not data:
        return None
    folder, row = listing.message_by_id(account, data["message"])
    return _Reference(account, data["message"], data.get("action") or "reply",
                      bool(data.get("inline")), row, folder)
