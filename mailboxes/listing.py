"""Reading the index: folders, message pages and cursors, message lookup by id.

Everything here answers from PostgreSQL alone (no IMAP round trip), which is what makes a
listing cost milliseconds. Message ids are checked against the account they are used with, and
resolve through the folder's current number, so an id minted before a UIDVALIDITY change, for
another account, or mangled, is a clean 404.
"""

from __future__ import annotations

import base64
import binascii
import json
import math

from django.db.models import QuerySet
from rest_framework import status

from accounts.models import EmailAccount
from emailapi.api.errors import ApiError, NotFoundError
from mailboxes import ids
from mailboxes.models import Folder, Message
from mailboxes.sync import index


class MailboxNotFound(NotFoundError):
    def __init__(self, path: str):
        super().__init__(f"Mailbox {path!r} not found", "MailboxNotFound")


class MessageNotFound(NotFoundError):
    def __init__(self, message: str = "Message not found"):
        super().__init__(message, "MessageNotFound")


class InvalidCursor(ApiError):
    def __init__(self):
        super().__init__("Invalid or expired cursor", "InvalidCursor", status.HTTP_400_BAD_REQUEST)


def folder_for_path(account: EmailAccount, path: str) -> Folder:
    """A folder by path, or by special use (``\\Sent``, ``\\Trash``...) as EmailEngine allows."""
    return _folder_in(Folder.objects.filter(account=account), path)


def tenant_folder(tenant, account_id: str, path: str) -> Folder:
    """Account and folder in one query (the hot path of listings); on a miss, says which
    one is missing (the account first: another tenant's account is not found either)."""
    folders = Folder.objects.select_related("account").filter(
        account__tenant=tenant, account__account=account_id)
    try:
        return _folder_in(folders, path)
    except MailboxNotFound:
        account = EmailAccount.objects.filter(tenant=tenant, account=account_id).first()
        if account is None:
            raise NotFoundError(f"Account {account_id!r} not found", "AccountNotFound") from None
        raise


def _folder_in(folders: QuerySet, path: str) -> Folder:
    if path.startswith("\\"):
        folder = folders.filter(special_use__iexact=path).order_by("path").first()
    elif path.upper() == "INBOX":
        folder = folders.filter(path__iexact="INBOX").first()
    else:
        folder = folders.filter(path=path).first()
    if folder is None:
        raise MailboxNotFound(path)
    return folder


def folder_summary(folder: Folder) -> dict:
    return {
        "path": folder.path, "name": folder.name, "delimiter": folder.delimiter or None,
        "parentPath": folder.parent_path or None, "specialUse": folder.special_use or None,
        "subscribed": folder.subscribed, "noSelect": folder.no_select,
        "messages": folder.messages, "unseen": folder.unseen,
        "uidValidity": str(folder.uidvalidity) if folder.uidvalidity else None,
        "uidNext": folder.uidnext, "highestModseq": folder.highestmodseq,
        "syncedAt": index._iso(folder.last_synced_at),
    }


def folders_of(account: EmailAccount) -> list[Folder]:
    return sorted(Folder.objects.filter(account=account),
                  key=lambda f: (f.special_use != "\\Inbox", f.path.lower()))


# --- message pages --------------------------------------------------------------------------


# Columns a listing never shows: left in the database, not decoded per row.
LISTING_DEFERRED = ("attachments", "text_parts", "references", "from_text", "to_text",
                    "cc_text", "bcc_text", "indexed_at")


def newest_first(folder: Folder) -> QuerySet:
    return Message.objects.filter(folder=folder).order_by("-uid").defer(*LISTING_DEFERRED)


def page_of(folder: Folder, page: int, page_size: int, cursor: str | None) -> dict:
    """One page, newest first. ``page`` is an offset (EmailEngine's); ``cursor`` continues
    below the last UID of the previous page, so arrivals and expunges between requests neither
    repeat nor skip a message.

    The page is read with one extra row (is there a next page?). The total is the folder's
    message count as the last sync saw it (EXISTS, what EmailEngine reports too) once its
    history is indexed, else a COUNT of the rows indexed so far.
    """
    rows = newest_first(folder)
    if cursor:
        rows = rows.filter(uid__lt=decode_cursor(cursor, folder))
        page, start = 0, 0
    else:
        start = page * page_size
    complete = folder.synced_uidnext is not None and not folder.backfill_below
    total = folder.messages if complete else Message.objects.filter(folder=folder).count()
    fetched = list(rows[start:start + page_size + 1]) if cursor or start < total else []
    more, items = len(fetched) > page_size, fetched[:page_size]
    return {
        "total": total,
        "page": page,
        "pages": max(1, math.ceil(total / page_size)),
        "nextPageCursor": encode_cursor(folder, items[-1].uid) if more else None,
        "messages": [index.message_summary(folder, row) for row in items],
    }


def encode_cursor(folder: Folder, below_uid: int) -> str:
    raw = json.dumps([folder.number, folder.uidvalidity or 0, below_uid]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, folder: Folder) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        number, validity, below = json.loads(raw)
    except (ValueError, TypeError, binascii.Error):
        raise InvalidCursor() from None
    if (not all(isinstance(v, int) and not isinstance(v, bool) for v in (number, validity, below))
            or number != folder.number or validity != (folder.uidvalidity or 0) or below < 1):
        raise InvalidCursor()
    return below


# --- single messages ------------------------------------------------------------------------


def message_by_id(account: EmailAccount, message_id: str) -> tuple[Folder, Message]:
    try:
        ref = ids.parse_message_id(index.ids_key(), account.pk, message_id)
    except ids.InvalidId:
        raise MessageNotFound(f"Message {message_id!r} not found") from None
    return _row(account, ref.folder_number, ref.uid, message_id)


def attachment_by_id(account: EmailAccount, attachment_id: str) -> tuple[Folder, Message, dict]:
    try:
        ref = ids.parse_attachment_id(index.ids_key(), account.pk, attachment_id)
    except ids.InvalidId:
        raise NotFoundError(f"Attachment {attachment_id!r} not found",
                            "AttachmentNotFound") from None
    folder, row = _row(account, ref.folder_number, ref.uid, attachment_id)
    for part in [*row.attachments, *row.text_parts]:
        if part.get("part") == ref.part:
            return folder, row, part
    raise NotFoundError(f"Attachment {attachment_id!r} not found", "AttachmentNotFound")


def _row(account: EmailAccount, number: int, uid: int, shown: str) -> tuple[Folder, Message]:
    folder = Folder.objects.filter(account=account, number=number).first()
    row = Message.objects.filter(folder=folder, uid=uid).first() if folder else None
    if row is None:
        raise MessageNotFound(f"Message {shown!r} not found")
    return folder, row


def message_attachments(account: EmailAccount, folder: Folder, row: Message) -> list[dict]:
    """EmailEngine's attachment entries; ``size`` of a base64 part is estimated (3/4)."""
    out = []
    for part in row.attachments:
        encoding = (part.get("encoding") or "").lower()
        size = part.get("size") or 0
        out.append({
            "id": ids.attachment_id(index.ids_key(), account.pk, folder.number, row.uid,
                                    part["part"]),
            "filename": part.get("filename"), "contentType": part.get("contentType"),
            "encodedSize": size,
            "size": (size * 3) // 4 if encoding == "base64" else size,
            "contentId": part.get("contentId"),
            "inline": (part.get("disposition") or "") == "inline",
        })
    return out
