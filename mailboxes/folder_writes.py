"""Creating, renaming and deleting folders, and uploading (APPEND) messages, through the API.

The server is changed first; then the index mirrors the server's new folder list at once
(``index.apply_folder_list``, which raises ``mailboxNew``/``mailboxDeleted``) and an uploaded
message is indexed under the UID that APPENDUID reports (``messageNew``). The worker's later
pass over the same state finds nothing new to say.

A rename is what the worker's own LIST diff would make of it: the old folder is deleted and
the new one created (``mailboxDeleted`` + ``mailboxNew``); the renamed folder's messages are
indexed again under it (quietly, as history) and their ids change, as ids carry the folder.
"""

from __future__ import annotations

import imapclient
from django.db import IntegrityError
from rest_framework import status

from accounts.models import EmailAccount
from emailapi.api.errors import ApiError
from mailboxes import listing
from mailboxes.command_pool import pool
from mailboxes.imap import changes, fetch
from mailboxes.models import Folder
from mailboxes.sync import index


class FolderExists(ApiError):
    def __init__(self, path: str):
        super().__init__(f"Mailbox {path!r} already exists", "MailboxExists",
                         status.HTTP_409_CONFLICT)


def delimiter_of(account: EmailAccount) -> str:
    row = Folder.objects.filter(account=account).exclude(delimiter="").first()
    return row.delimiter if row else "/"


def joined_path(account: EmailAccount, path: str | list[str]) -> str:
    if isinstance(path, str):
        return path
    delimiter = delimiter_of(account)
    for part in path:
        if not part or delimiter in part:
            raise ApiError(f"Not a folder name: {part!r}", "InputValidationError",
                           details={"path": [f"Each part must be non-empty and without "
                                             f"{delimiter!r}"]})
    return delimiter.join(path)


def _mirror(account: EmailAccount, session) -> None:
    session.selected, session.writable = None, False
    index.apply_folder_list(account, session.list_folders(), notify=True)


def create_folder(account: EmailAccount, path: str | list[str]) -> dict:
    full = joined_path(account, path)
    if any(c in full for c in "\r\n\0") or not full.strip():
        raise ApiError("Not a folder path", "InputValidationError", details={"path": ["Invalid"]})
    with pool.session(account) as session:
        if session.client.folder_exists(full):
            raise FolderExists(full)
        try:
            session.client.create_folder(full)
        except imapclient.exceptions.IMAPClientError as exc:
            raise ApiError(f"The server refused to create {full!r}: {exc}", "ServerRefused",
                           status.HTTP_400_BAD_REQUEST) from None
        _mirror(account, session)
    return {"path": full, "created": True}


def rename_folder(account: EmailAccount, path: str, new_path: str | list[str]) -> dict:
    folder = listing.folder_for_path(account, path)
    target = joined_path(account, new_path)
    if folder.path.upper() == "INBOX":
        raise ApiError("INBOX cannot be renamed", "InputValidationError")
    with pool.session(account) as session:
        if session.client.folder_exists(target):
            raise FolderExists(target)
        try:
            session.client.rename_folder(folder.path, target)
        except imapclient.exceptions.IMAPClientError as exc:
            raise ApiError(f"The server refused the rename: {exc}", "ServerRefused") from None
        _mirror(account, session)
    return {"path": folder.path, "newPath": target, "renamed": True}


def delete_folder(account: EmailAccount, path: str) -> dict:
    folder = listing.folder_for_path(account, path)
    if folder.path.upper() == "INBOX":
        raise ApiError("INBOX cannot be deleted", "InputValidationError")
    with pool.session(account) as session:
        try:
            session.client.delete_folder(folder.path)
        except imapclient.exceptions.IMAPClientError as exc:
            raise ApiError(f"The server refused to delete {folder.path!r}: {exc}",
                           "ServerRefused") from None
        _mirror(account, session)
    return {"path": folder.path, "deleted": True}


def upload(account: EmailAccount, path: str, raw: bytes, flags: list[str],
           message_id: str | None) -> dict:
    """APPEND, then index the new UID at once (one ``messageNew``)."""
    folder = listing.folder_for_path(account, path)
    try:
        flags = changes.check_flags(flags)
    except changes.BadFlag as exc:
        raise ApiError(str(exc), "InvalidFlag") from None
    with pool.session(account) as session:
        untagged = session.client._imap.untagged_responses
        untagged.pop("APPENDUID", None)
        try:
            session.client.append(folder.path, raw, flags=flags)
        except imapclient.exceptions.IMAPClientError as exc:
            if "TRYCREATE" in str(exc).upper():
                raise listing.MailboxNotFound(folder.path) from None
            raise ApiError(f"The server refused the message: {exc}", "ServerRefused") from None
        found = untagged.pop("APPENDUID", [])
        uid = int(found[-1].split()[1]) if found else None
        if uid is not None:
            info = session.select(folder.path)
            if info.uidvalidity == folder.uidvalidity:
                metas = fetch.fetch_meta(session.client, str(uid))
                try:
                    index.add_messages(folder, metas, notify=True)
                except IntegrityError:
                    pass  # the worker indexed it this very moment: its row, its event
    return {"id": index.message_id_for(folder, uid) if uid else None, "path": folder.path,
            "uid": uid, "messageId": message_id}
