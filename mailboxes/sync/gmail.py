"""Gmail's folder model: which folder's changes raise events on a Gmail account.

Gmail has labels, not folders; its IMAP shows each label as a folder, so one message appears
in INBOX, in ``[Gmail]/All Mail`` (special use ``\\All``: every message once, except Spam and
Trash) and in a folder per label (``Work``, ``[Gmail]/Sent Mail``, ``[Gmail]/Starred``,
``[Gmail]/Important``...). Every folder is still indexed (each lists its messages as the
server does), but only these raise message events on an account whose server offers
X-GM-EXT-1 and lists an ``\\All`` folder, so a message is announced once, not once per label:

- INBOX: everything in it;
- ``\\All``: the messages that are not in INBOX (no ``\\Inbox`` label): sent mail, archived
  mail, mail a filter kept out of the inbox; its ``labels`` say where Gmail shows it. A
  change of a message in both (flags, labels) is announced from INBOX; one that takes it
  out of INBOX or into it (the ``\\Inbox`` label deleted or added) is announced from both;
- ``\\Junk`` and ``\\Trash`` (not in All Mail): everything in them;
- any other folder (user labels, ``\\Sent``, ``\\Drafts``, ``\\Flagged``, ``\\Important``):
  indexed silently.

EmailEngine, likewise, watches INBOX and reports labels. Without an ``\\All`` folder (hidden
from IMAP in Gmail's settings) or on any other server, every folder announces its changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mailboxes.models import Folder

INBOX_LABEL = "\\Inbox"
# The folders of a Gmail account whose changes raise events (All Mail: see ``Announcing``).
ANNOUNCING_USES = frozenset({"\\Inbox", "\\All", "\\Junk", "\\Trash"})


@dataclass(frozen=True, slots=True)
class Announcing:
    """Which changes seen in one folder raise events: none (``folder``: False), all, or (All
    Mail) those of messages without the ``\\Inbox`` label before or after the change."""

    folder: bool = True
    unless_in_inbox: bool = False

    def speaks(self, *label_sets: Iterable[str] | None) -> bool:
        """Whether a change of a message with these labels (before, after) is announced."""
        if not self.folder:
            return False
        if not self.unless_in_inbox:
            return True
        return any(INBOX_LABEL not in (labels or ()) for labels in label_sets)


EVERY_CHANGE = Announcing()
SILENT = Announcing(folder=False)
OUTSIDE_INBOX = Announcing(unless_in_inbox=True)


def announcing_in(special_use: str, gmail: bool, has_all_mail: bool) -> Announcing:
    """The rule for a folder of this special use (a pure function of the folder model)."""
    if not (gmail and has_all_mail):
        return EVERY_CHANGE
    if special_use == "\\All":
        return OUTSIDE_INBOX
    return EVERY_CHANGE if special_use in ANNOUNCING_USES else SILENT


def announcing(folder: Folder, gmail: bool) -> Announcing:
    """The rule for *folder* of an account whose server does (``gmail``) or does not offer
    X-GM-EXT-1; one query (whether the account lists an All Mail folder) on Gmail only."""
    if not gmail:
        return EVERY_CHANGE
    has_all_mail = Folder.objects.filter(email_account_id=folder.email_account_id,
                                         special_use="\\All").exists()
    return announcing_in(folder.special_use, gmail, has_all_mail)
