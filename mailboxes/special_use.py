"""Special-use folders the mailbox's owner names: EmailEngine's ``imap.sentMailPath``,
``draftsMailPath``, ``junkMailPath``, ``trashMailPath`` and ``archiveMailPath``.

A server says which folder is Sent, Drafts, Junk, Trash or Archive with SPECIAL-USE
attributes, or a usual name says it (``mailboxes.imap.session``); some servers say it wrongly
or not at all. A path named here takes that special use in the index, and whatever folder the
server gave it loses it, so everything that looks a special use up there (a sent copy, a
delete to Trash, ``path: "\\Sent"``, ``messageSpecialUse``) finds the chosen folder; the
folder listing says ``specialUseSource: "user"`` for it, as EmailEngine does. A path the
server does not list changes nothing until it does, and a chosen folder deleted or renamed
gives the server's folder its use back at once (``mailboxes.sync.index`` settles the uses after
every folder change made through the API, not only at the next LIST): a delete must never find
no Trash and expunge.

The choice is part of the account's IMAP settings: changing it is a settings change, so the
worker reconnects and lists the folders again with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from mailboxes.imap.session import FolderListing, special_use_of

# The settings key for each special use that can be chosen.
SETTINGS = {"sentMailPath": "\\Sent", "draftsMailPath": "\\Drafts", "junkMailPath": "\\Junk",
            "trashMailPath": "\\Trash", "archiveMailPath": "\\Archive"}


def chosen(imap: dict | None) -> dict[str, str]:
    """Path -> special use, as the IMAP settings name them (empty: the server's own)."""
    return {imap[key]: use for key, use in SETTINGS.items() if (imap or {}).get(key)}


def settled(imap: dict | None, folders: Sequence[tuple[str, Sequence[str]]]) -> dict[str, str]:
    """Path -> special use of each of ``folders`` (the account's, as ``(path, LIST flags)``):
    the server's, but a chosen path takes its use and the folder the server gave that use loses
    it, as long as the chosen path is among them; otherwise the server's stands."""
    by_path = chosen(imap)
    present = {path for path, _flags in folders}
    taken = {use for path, use in by_path.items() if path in present}
    out = {}
    for path, flags in folders:
        server = special_use_of(path, tuple(flags))
        out[path] = by_path.get(path) or ("" if server in taken else server)
    return out


def applied(imap: dict | None, listings: Sequence[FolderListing]) -> list[FolderListing]:
    """``listings`` (a whole LIST) with the special uses ``settled`` gives them."""
    if not chosen(imap):
        return list(listings)
    uses = settled(imap, [(listing.path, listing.flags) for listing in listings])
    return [listing if listing.special_use == uses[listing.path]
            else replace(listing, special_use=uses[listing.path]) for listing in listings]
