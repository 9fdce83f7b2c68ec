"""Creating, renaming and deleting folders through the API (EmailEngine's mailbox routes).

Each change is made on the server first (``mailboxes.imap.folder_ops`` over a pooled command
connection), then mirrored in the index at once, so the next ``GET .../mailboxes`` shows it,
with the ``mailboxNew``/``mailboxDeleted`` events the worker's LIST would raise, once.

Paths: a list of segments (``["Parent", "Child"]``) is joined with the server's hierarchy
delimiter; a string is taken as the full path. Creating a folder that already exists is not
an error: the answer says ``created: false``, as EmailEngine's does.

A rename keeps the folder's rows and number, so messages keep their ids and stay listable
under the new path at once; the events are still ``mailboxDeleted`` (old path) and
``mailboxNew`` (new path), one per renamed folder (subfolders move with their parent on the
server, and in the index).
"""

from __future__ import annotations

from accounts.models import EmailAccount
from emailapi.lib.errors import DomainError
from emailapi.lib.wording import describe
from mailboxes import errors, listing
from mailboxes.command_pool import pool
from mailboxes.imap import folder_ops
from mailboxes.models import Folder
from mailboxes.sync import index


def _error(exc: folder_ops.WriteError, path: str) -> DomainError:
    """The server's refusal as a domain error naming the folder: not found, a conflict,
    refused for good (the request's fault) or for a reason of the server's own."""
    if isinstance(exc, folder_ops.FolderMissing):
        return errors.MailboxNotFound(path)
    if isinstance(exc, folder_ops.FolderExists):
        return errors.MailboxExists(str(exc))
    if isinstance(exc, folder_ops.FolderHasChildren):
        return errors.MailboxHasChildren(str(exc))
    if isinstance(exc, folder_ops.FolderInUse):
        return errors.MailboxInUse(str(exc))
    if isinstance(exc, folder_ops.FolderRefused):
        return errors.FolderChangeRefused(f"The server refused: {describe(exc)}")
    return errors.ServerRefused(f"The server refused: {describe(exc)}")


def _known_delimiter(account: EmailAccount) -> str | None:
    return (Folder.objects.filter(email_account=account).exclude(delimiter="")
            .values_list("delimiter", flat=True).first())


def joined(account: EmailAccount, session, path: str | list[str]) -> str:
    """A path from segments (with the delimiter the index knows, else the server's)."""
    if isinstance(path, str):
        return path
    delim = _known_delimiter(account) or folder_ops.delimiter(session.client)
    return delim.join(path)


def _resolved(account: EmailAccount, path: str) -> str:
    """A special-use name (``\\Trash``) as the path of that folder; other paths as given."""
    return listing.folder_for_path(account, path).path if path.startswith("\\") else path


def _ancestors(path: str, delim: str) -> list[str]:
    """``A/B/C`` -> ``[A, A/B, A/B/C]``: the server may have created the parents too."""
    if not delim:
        return [path]
    segments = path.split(delim)
    return [delim.join(segments[:n]) for n in range(1, len(segments) + 1)]


def _check_not_inbox(path: str, what: str) -> None:
    if path.upper() == "INBOX":
        raise errors.InboxProtected(what)


def create_folder(account: EmailAccount, path: str | list[str]) -> dict:
    with pool.session(account) as session:
        path = joined(account, session, path)
        delim = _known_delimiter(account) or folder_ops.delimiter(session.client)
        # CREATE "A/" makes "A" (RFC 3501: a trailing delimiter only says children will
        # follow), which is the folder to subscribe to, list and answer with.
        path = (path.rstrip(delim) or path) if delim else path
        created = True
        try:
            folder_ops.create(session.client, path)
        except folder_ops.FolderExists:
            created = False
        except folder_ops.WriteError as exc:
            raise _error(exc, path) from None
        if created:
            try:
                folder_ops.subscribe(session.client, path)
            except folder_ops.WriteError as exc:
                raise _error(exc, path) from None
        found = folder_ops.listings(session, _ancestors(path, delim))
    index.record_folders_present(account, found)
    return {"path": path, "created": created}


def rename_folder(account: EmailAccount, path: str | list[str],
                  new_path: str | list[str]) -> dict:
    with pool.session(account) as session:
        path = _resolved(account, joined(account, session, path))
        new_path = joined(account, session, new_path)
        _check_not_inbox(path, "renamed")
        delim = _known_delimiter(account) or folder_ops.delimiter(session.client)
        if delim and new_path.startswith(path + delim):
            raise errors.MailboxUnderItself(path, new_path)
        folder_ops.release(session, [path], delim)
        try:
            folder_ops.rename(session.client, path, new_path)
        except folder_ops.WriteError as exc:
            raise _error(exc, path) from None
        found = folder_ops.listings(session, _ancestors(new_path, delim),
                                    with_children_of=new_path)
    index.record_folder_renamed(account, path, new_path, found)
    return {"path": path, "newPath": new_path, "renamed": True}


def set_subscription(account: EmailAccount, path: str | list[str], subscribed: bool) -> dict:
    """EmailEngine's ``PUT .../mailbox`` with ``subscribed`` and no ``newPath``."""
    with pool.session(account) as session:
        path = _resolved(account, joined(account, session, path))
        if not folder_ops.listings(session, [path]):
            raise errors.MailboxNotFound(path)
        try:
            folder_ops.subscribe(session.client, path, subscribed)
        except folder_ops.WriteError as exc:
            raise _error(exc, path) from None
    folder = Folder.objects.filter(email_account=account, path=path).first()
    if folder is not None:
        index.set_subscribed(folder, subscribed)
    return {"path": path, "subscribed": subscribed}


def delete_folder(account: EmailAccount, path: str) -> dict:
    path = _resolved(account, path)
    _check_not_inbox(path, "deleted")
    with pool.session(account) as session:
        delim = _known_delimiter(account) or ""
        folder_ops.release(session, [path], delim)
        try:
            folder_ops.delete(session.client, path)
        except folder_ops.WriteError as exc:
            raise _error(exc, path) from None
    index.record_folder_deleted(account, path)
    return {"path": path, "deleted": True}
