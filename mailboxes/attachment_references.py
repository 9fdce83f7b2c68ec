"""Attachments taken from messages the account already has (EmailEngine's
``attachments[].reference``), for a message being uploaded or sent.

An entry ``{"reference": <attachment id>}`` (an id from a message's ``attachments[].id``) is
replaced by the attachment's decoded bytes, read from the mail server through the attachment
download (``reading.attachment_content``) while the request is being answered: a queued send
holds the whole message, so it goes out even if the source message is deleted meanwhile. Its
``filename`` and ``contentType`` are the referenced attachment's unless the entry gives its own.
An entry with ``content`` keeps it and reads nothing, as EmailEngine does (its reference is
only used when there is no content).

Ids are checked as the download route checks them: an id of another account, or of another
tenant's, does not decode for this account (``mailboxes.ids``), so it is "not found" like an
unknown one. A message gone from the server is not found either. The server being down is the
pool's ``MailboxUnavailable``.

Size: a referenced attachment counts as the content it replaces would have, base64 in the
request body: the request's own size plus the base64 size of every referenced attachment may
not pass the body limit (``room`` is what the request left of it).
"""

from __future__ import annotations

from django.conf import settings

from accounts.models import EmailAccount
from mailboxes import compose, reading
from mailboxes.errors import (
    AttachmentNotFound,
    MessageNotFound,
    OriginalTooLarge,
    ReferencedAttachmentNotFound,
)


def with_contents(account: EmailAccount, fields: dict, room: int | None = None) -> dict:
    """The message *fields* (``MessageFieldsSerializer``'s) with their referenced
    attachments' contents, ready for ``compose.compose`` (the same *fields* when none)."""
    attachments = fields.get("attachments") or []
    if not any(_referenced(attachment) for attachment in attachments):
        return fields
    return {**fields, "attachments": resolve(account, attachments, room)}


def resolve(account: EmailAccount, attachments: list[dict], room: int | None = None) -> list[dict]:
    """*attachments* with each reference replaced by the content it names, in order.

    *room*: bytes the referenced attachments may take as base64 (default: the whole body
    limit, for a caller that is not a request)."""
    room = settings.EMAILAPI_MAX_BODY_SIZE if room is None else room
    resolved = []
    for number, attachment in enumerate(attachments):
        if not _referenced(attachment):
            resolved.append({k: v for k, v in attachment.items() if k != "reference"})
            continue
        taken = _referenced_entry(account, attachment, f"attachments.{number}.reference", room)
        room -= base64_size(len(taken["content"]))
        resolved.append(taken)
    return resolved


def base64_size(length: int) -> int:
    """How long ``length`` bytes are in base64 (padded, no line breaks), as a request
    carries content."""
    return (length + 2) // 3 * 4


def _referenced(attachment: dict) -> bool:
    return "content" not in attachment and bool(attachment.get("reference"))


def _referenced_entry(account: EmailAccount, attachment: dict, field_name: str, room: int) -> dict:
    """The entry with the referenced attachment's bytes as its content, and its filename and
    type unless the entry has its own."""
    attachment_id = attachment["reference"]
    max_bytes = max(room, 0) // 4 * 3
    try:
        download, content = reading.attachment_content(account, attachment_id, max_bytes)
    except (AttachmentNotFound, MessageNotFound):  # unknown, foreign, or gone from the server
        raise ReferencedAttachmentNotFound(field_name, attachment_id) from None
    if len(content) > max_bytes:
        raise OriginalTooLarge(field_name, "The referenced attachments make the request "
                               f"larger than the {settings.EMAILAPI_MAX_BODY_SIZE} bytes allowed "
                               "(each counts as its content in base64 would)")
    taken = {k: v for k, v in attachment.items() if k != "reference"}
    taken["content"] = content
    if not attachment.get("filename"):
        taken["filename"] = compose.one_line(download.filename or "") or None
    taken.setdefault("contentType", compose.attachable_type(download.content_type))
    return taken
