"""Syncing a whole account: the folder list, then every folder.

The first pass indexes each folder's newest messages before any folder's older history, so a
large mailbox is listable everywhere within seconds while history fills in behind. When every
folder is complete for the first time, ``accountInitialized`` is recorded (once).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from accounts import state as account_state
from accounts.models import EmailAccount
from mailboxes import index_upkeep
from mailboxes.imap.session import ImapSession
from mailboxes.models import Folder, Message
from mailboxes.sync import index
from mailboxes.sync.folder import FolderResult, status_differs, sync_folder
from mailboxes.sync.moves import MoveTracker

logger = logging.getLogger(__name__)


@dataclass
class AccountResult:
    folders: int = 0
    new: int = 0
    updated: int = 0
    deleted: int = 0
    reset: bool = False  # a folder of the pass was reset (UIDVALIDITY changed)
    complete: bool = False
    # The account's folder rows as the pass read them, when it synced none (so they are
    # current): a caller about to read one again need not.
    rows: dict[str, Folder] | None = None

    @property
    def changed(self) -> bool:
        """The pass changed the index (as ``FolderResult.changed``, over its folders)."""
        return bool(self.new or self.updated or self.deleted or self.reset)


def sync_account(session: ImapSession, account: EmailAccount,
                 should_stop: Callable[[], bool] = lambda: False,
                 only_changed: bool = False, skip: frozenset[str] = frozenset(),
                 moves: MoveTracker | None = None,
                 backfill_batches: int | None = None,
                 list_status: bool = False) -> AccountResult:
    """Sync the folder list and the folders; ``only_changed`` skips folders whose STATUS
    matches the index (the periodic safety-net poll); ``skip`` names folders to leave out;
    ``moves`` lets a caller pair moves with folders it syncs itself in the same pass;
    ``backfill_batches`` caps the old history indexed per folder in this call (``complete``
    says whether any is left); ``list_status``: take the folders' STATUS with the folder list
    where the server can (``ImapSession.list_folders_and_status``; not with NOTIFY set)."""
    if moves is None:  # this pass owns its tracker: release its held events at the end
        own = MoveTracker()
        try:
            return sync_account(session, account, should_stop, only_changed, skip, own,
                                backfill_batches, list_status)
        finally:
            own.release()
    result = AccountResult()
    listings, statuses = (session.list_folders_and_status() if list_status
                          else (session.list_folders(), {}))
    folders = index.apply_folder_list(account, listings,
                                      notify=account.initialized_at is not None)
    selectable = [f for f in folders if not f.no_select and f.path not in skip]
    result.folders = len(selectable)
    first_pass = [f for f in selectable if f.synced_uidnext is None or f.backfill_below]
    new_folders = any(f.synced_uidnext is None for f in first_pass)
    synced = bool(first_pass)
    for folder in first_pass:  # newest page of every new folder first
        if should_stop():
            return result
        _add(result, sync_folder(session, folder, should_stop, backfill_batches=1, moves=moves))
    if account.initialized_at is None:
        _note_progress(account, selectable, recount=new_folders)
    for folder in selectable:
        if should_stop():
            return result
        # A STATUS taken with the list is as good as one taken now, except for a folder this
        # pass has just synced (changes since its sync count) or the selected one (RFC 3501
        # 6.3.10: STATUS on it need not be current).
        listed = None if folder in first_pass or folder.path == session.selected \
            else statuses.get(folder.path)
        if (only_changed or _just_completed(session, folder, first_pass)) \
                and not status_differs(session, folder, listed):
            continue
        synced = True
        _add(result, sync_folder(session, folder, should_stop, moves=moves,
                                 backfill_batches=backfill_batches))
    if synced or skip:
        result.complete = not Folder.objects.filter(
            email_account=account, no_select=False, backfill_below__gt=0).exists()
    else:
        # No folder synced: the rows apply_folder_list just read are current.
        result.complete = not any((f.backfill_below or 0) > 0 for f in selectable)
        result.rows = {f.path: f for f in folders}
    if result.complete and account.initialized_at is None:
        account_state.mark_initialized(account, lambda: {
            "folders": Folder.objects.filter(email_account=account).count(),
            "messages": Message.objects.filter(email_account=account).count(),
        })
        index_upkeep.refresh_statistics()
        account.refresh_from_db(fields=["initialized_at"])
    return result


def _just_completed(session: ImapSession, folder: Folder, first_pass: list[Folder]) -> bool:
    """A folder this pass's first loop has just indexed completely (a new account's folders
    are mostly empty or small): one STATUS tells whether anything changed since, instead of a
    second SELECT and sync. Not the selected folder (STATUS on it is discouraged, RFC 3501
    6.3.10): its sync costs no new SELECT."""
    return folder in first_pass and not folder.backfill_below and session.selected != folder.path


def _note_progress(account: EmailAccount, selectable: list[Folder], recount: bool) -> None:
    """The first index's ``{indexed, total}``, counted when folders were new to this pass or
    nothing was counted yet (a worker that took the account over): its batches add to it as
    they commit (``index.add_messages``), so the slices of history between IDLEs need no
    COUNT of a big mailbox each. The total is what the folders held when selected (EXISTS)."""
    if not recount and EmailAccount.objects.filter(pk=account.pk, index_total__gt=0).exists():
        return
    total = sum(folder.messages or 0 for folder in
                Folder.objects.filter(pk__in=[f.pk for f in selectable]).only("messages"))
    indexed = Message.objects.filter(email_account=account).count()
    account_state.note_index_progress(account.pk, indexed, total)


def _add(total: AccountResult, part: FolderResult) -> None:
    total.new += part.new
    total.updated += part.updated
    total.deleted += part.deleted
    total.reset |= part.reset
