"""Creating, renaming and deleting folders on the server (no Django here).

The server's NO carries an RFC 5530 response code that says why (``[ALREADYEXISTS]``,
``[NONEXISTENT]``, ``[CANNOT]``, ``[INUSE]``); ``refused`` turns it into one of the
``FolderError`` kinds below, so the API can answer 409, 404 or 400 instead of a generic
failure. Servers that answer without a code (Dovecot's "Mailbox has children") are matched
by their text.

After a change the caller needs the folder as LIST shows it (flags, special use, delimiter)
to mirror it in the index exactly as the worker's next LIST would: ``listings`` asks the
server for just those paths, never the whole folder list.

Renaming or deleting the folder a pooled connection has selected would leave it selected
under a name that no longer exists; ``release`` unselects it first.
"""

from __future__ import annotations

from collections.abc import Iterable

import imapclient

from mailboxes.imap.message_ops import FolderMissing, WriteError
from mailboxes.imap.session import FolderListing, ImapSession, _str, special_use_of

__all__ = ["FolderExists", "FolderHasChildren", "FolderInUse", "FolderMissing",
           "FolderRefused", "WriteError", "create", "delete", "delimiter", "listings",
           "release", "rename", "subscribe"]

WILDCARDS = "*%"  # LIST wildcards: never part of a folder name we create or look up


class FolderExists(WriteError):
    """``[ALREADYEXISTS]``: a folder of that name is already there."""


class FolderHasChildren(WriteError):
    """DELETE of a folder with subfolders, which the server refuses."""


class FolderInUse(WriteError):
    """``[INUSE]``: another session holds the folder; try again later."""


class FolderRefused(WriteError):
    """``[CANNOT]`` and the like: the server will never do this (rename INBOX, a bad name)."""


def refused(exc: Exception, path: str) -> WriteError:
    text = str(exc)
    upper = text.upper()
    if "[ALREADYEXISTS]" in upper or "ALREADY EXISTS" in upper:
        return FolderExists(f"Mailbox {path!r} already exists")
    if any(m in upper for m in ("[NONEXISTENT]", "[TRYCREATE]", "DOESN'T EXIST",
                                "DOES NOT EXIST", "NO SUCH MAILBOX", "UNKNOWN MAILBOX")):
        return FolderMissing(f"Mailbox {path!r} does not exist")
    if "HAS CHILDREN" in upper or "[HASCHILDREN]" in upper:
        return FolderHasChildren(f"Mailbox {path!r} has subfolders: delete them first")
    if "[INUSE]" in upper:
        return FolderInUse(f"Mailbox {path!r} is in use: {_reason(text)}")
    if any(m in upper for m in ("[CANNOT]", "[NOPERM]", "[LIMIT]", "[OVERQUOTA]")):
        return FolderRefused(_reason(text))
    return WriteError(_reason(text))


def _reason(text: str) -> str:
    """The server's words without imapclient's ``create failed:`` prefix."""
    return text.split(" failed: ", 1)[-1].strip()


def _run(command, path: str):
    try:
        return command()
    except imapclient.exceptions.IMAPClientError as exc:
        raise refused(exc, path) from None


def delimiter(client: imapclient.IMAPClient) -> str:
    """The hierarchy delimiter (``LIST "" ""``); "/" when the server has no hierarchy."""
    found = _run(lambda: client.list_folders("", ""), "")
    for _flags, delim, _name in found:
        if delim:
            return _str(delim)
    return "/"


def create(client: imapclient.IMAPClient, path: str) -> None:
    _run(lambda: client.create_folder(path), path)


def rename(client: imapclient.IMAPClient, path: str, new_path: str) -> None:
    try:
        client.rename_folder(path, new_path)
    except imapclient.exceptions.IMAPClientError as exc:
        error = refused(exc, path)
        if isinstance(error, FolderExists):
            error = FolderExists(f"Mailbox {new_path!r} already exists")
        raise error from None


def delete(client: imapclient.IMAPClient, path: str) -> None:
    _run(lambda: client.delete_folder(path), path)


def subscribe(client: imapclient.IMAPClient, path: str, subscribed: bool = True) -> None:
    if subscribed:
        _run(lambda: client.subscribe_folder(path), path)
    else:
        _run(lambda: client.unsubscribe_folder(path), path)


def release(session: ImapSession, paths: Iterable[str], delim: str) -> None:
    """Unselect the session's folder if it is one of *paths* or below one of them."""
    selected = session.selected
    if selected is None:
        return
    if not any(selected == p or (delim and selected.startswith(p + delim)) for p in paths):
        return
    if session.has("UNSELECT"):
        session.client.unselect_folder()
    else:
        session.client.select_folder("INBOX", readonly=True)
    session.selected, session.writable = None, False


def listings(session: ImapSession, paths: Iterable[str],
             with_children_of: str | None = None) -> list[FolderListing]:
    """The folders of *paths* that exist, as ``ImapSession.list_folders`` describes them,
    plus (``with_children_of``) every folder below that one."""
    client = session.client
    wanted: list[tuple[str, str]] = [("", p) for p in paths if not _has_wildcard(p)]
    if with_children_of is not None and not _has_wildcard(with_children_of):
        delim = delimiter(client)
        wanted.append(("", f"{with_children_of}{delim}*"))
    found: dict[str, tuple] = {}
    subscribed: set[str] = set()
    for directory, pattern in wanted:
        for flags, delim, name in client.list_folders(directory, pattern):
            found[_str(name)] = (flags, delim)
        subscribed |= {_str(name) for _, _, name in client.list_sub_folders(directory, pattern)}
    out = []
    for path, (flags, delim) in found.items():
        flags = tuple(_str(f) for f in flags)
        delim = _str(delim) if delim else ""
        parent, _, leaf = path.rpartition(delim) if delim else ("", "", path)
        out.append(FolderListing(
            path=path, name=leaf or path, delimiter=delim, parent_path=parent, flags=flags,
            special_use=special_use_of(path, flags),
            subscribed=path in subscribed or path.upper() == "INBOX",
            no_select=any(f.lower() in ("\\noselect", "\\nonexistent") for f in flags)))
    return out


def _has_wildcard(path: str) -> bool:
    return any(c in path for c in WILDCARDS)
