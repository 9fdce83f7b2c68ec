"""Special-use folders the mailbox's owner names: EmailEngine's ``imap.sentMailPath``,
``draftsMailPath``, ``junkMailPath``, ``trashMailPath`` and ``archiveMailPath``.

A server says which folder is Sent, Drafts, Junk, Trash or Archive with SPECIAL-USE
attributes, or a usual name says it (``mailboxes.imap.session``); some servers say it wrongly
or not at all. A path named here takes that special use in the index, and whatever folder the
server gave it loses it, so everything that looks a special use up there (a sent copy, a
delete to Trash, ``path: "\\Sent"``, ``messageSpecialUse``) finds the chosen folder; the
folder listing says ``specialUseSource: "user"`` for it, as EmailEngine does. A path the
server does not list changes nothing until it does.

The choice is part of the account's IMAP settings: changing it is a settings change, so the
worker reconnects and lists the folders again with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from mailboxes.imap.session import FolderListing

# The settings key for each special use that can be chosen.
SETTINGS = {"sentMailPath": "\\Sent", "draftsMailPath": "\\Drafts", "junkMailPath": "\\Junk",
            "trashMailPath": "\\Trash", "archiveMailPath": "\\Archive"}


def chosen(imap: dict | None) -> dict[str, str]:
    """Path -> special use, as the IMAP settings name them (empty: the server's own)."""
    return {imap[key]: use for key, use in SETTINGS.items() if (imap or {}).get(key)}


def applied(imap: dict | None, listings: Sequence[FolderListing]) -> list[FolderListing]:
    """``listings`` with the chosen special uses: a chosen path takes its use, and another
    folder the server gave that use loses it (when the chosen path is among ``listings``)."""
    by_path = chosen(imap)
    if not by_path:
        return list(listings)
    listed = {listing.path for listing in listings}
    taken = {use for path, use in by_path.items() if path in listed}
    out = []
    for listing in listings:
        use = by_path.get(listing.path)
        if use is None and listing.special_use in taken:
            use = ""
        out.append(listing if use is None else replace(listing, special_use=use))
    return out
