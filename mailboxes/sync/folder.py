"""Bringing one folder of the index up to date with the server.

    SELECT ──► UIDVALIDITY changed? ──yes──► reset (mailboxReset), then first sync
                     │ no
                     ▼
          never synced? ──yes──► first sync: index history newest first, silently
                     │ no
                     ▼
          incremental: new UIDs (≥ synced_uidnext) ─► messageNew
                       (and in INBOX, after a report's: messageBounce, messageComplaint)
                       flags and Gmail labels (CHANGEDSINCE modseq, else full compare)
                         ─► messageUpdated
                       expunges (VANISHED, else UID compare) ─► messageDeleted
          then: back-fill older history left by an interrupted first sync

On a Gmail account, which folders' changes raise events is ``mailboxes.sync.gmail``'s rule.

Every step commits through ``mailboxes.sync.index`` with its cursor, so a worker killed
mid-way resumes from the last batch. Memory stays bounded by the batch size whatever the
folder's size: UIDs are listed (integers only), then fetched a batch at a time.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.utils import timezone

from emailapi.lib import metrics
from mailboxes import index_upkeep
from mailboxes.imap import fetch
from mailboxes.imap.search import imap_date
from mailboxes.imap.session import FolderStatus, ImapSession, SelectInfo
from mailboxes.models import Folder
from mailboxes.sync import gmail, index, reports
from mailboxes.sync.moves import MoveTracker

logger = logging.getLogger(__name__)

FIRST_BATCH = 50  # small, so the newest page is listable at once
BATCH = 1000
PREFETCH_DEPTH = 2  # history batches fetched ahead of the one being written
FLAG_BATCH = 5000  # UIDs per flag comparison round trip (servers without CONDSTORE)


@dataclass
class FolderResult:
    new: int = 0
    updated: int = 0
    deleted: int = 0
    backfilled: int = 0
    reset: bool = False
    errors: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """The pass changed the index (new, changed or removed messages, or a reset)."""
        return bool(self.new or self.updated or self.deleted or self.reset)


@metrics.timed_sync_pass
def sync_folder(session: ImapSession, folder: Folder,
                should_stop: Callable[[], bool] = lambda: False,
                backfill_batches: int | None = None,
                moves: MoveTracker | None = None) -> FolderResult:
    """Sync one folder; ``backfill_batches`` caps how much old history this call indexes;
    ``moves`` pairs departures and arrivals across the folders of one account pass."""
    result = FolderResult()
    info = session.select(folder.path)
    if folder.uidvalidity is not None and info.uidvalidity != folder.uidvalidity:
        folder = index.reset_folder(folder, info)
        result.reset = True
    if folder.synced_uidnext is None:
        folder = index.start_folder(folder, info)
        if not info.exists:
            return result  # empty: complete, its counters written by start_folder
    else:
        _incremental(session, folder, info, result, moves,
                     gmail.announcing(folder, session.gmail))
    result.backfilled = _backfill(session, folder, should_stop, backfill_batches)
    _refresh_counters(session, folder, info)
    return result


def _incremental(session: ImapSession, folder: Folder, info: SelectInfo,
                 result: FolderResult, moves: MoveTracker | None,
                 announcing: gmail.Announcing) -> None:
    # 1. new messages: everything from the last UIDNEXT we indexed up to now.
    if info.uidnext > folder.synced_uidnext:
        start = folder.synced_uidnext
        for batch in _chunks(_uids_from(session, start), BATCH):
            metas = session.fetch_meta(_uid_set(batch))
            rows = index.add_messages(folder, metas, notify=True, moves=moves,
                                      announcing=announcing,
                                      reports=reports.read_reports(session, folder, metas))
            result.new += len(rows)
        index.update_folder(folder, synced_uidnext=info.uidnext)
    # 2. flag changes and expunges among what we had.
    if session.condstore and folder.synced_modseq and info.highestmodseq:
        if info.highestmodseq != folder.synced_modseq:
            changes, vanished = fetch.fetch_flags(
                session.client, f"1:{max(folder.synced_uidnext - 1, 1)}",
                changedsince=folder.synced_modseq, vanished=session.qresync,
                labels=session.gmail)
            result.updated += index.apply_flag_changes(folder, changes, announcing=announcing)
            if vanished:
                result.deleted += index.remove_messages(folder, vanished, moves=moves,
                                                        announcing=announcing)
        index.update_folder(folder, synced_modseq=info.highestmodseq)
        if not session.qresync:
            result.deleted += _compare_uids(session, folder, moves, announcing)
    else:
        result.deleted += _compare_uids(session, folder, moves, announcing)
        result.updated += _compare_flags(session, folder, announcing)
    # Safety net: a count mismatch means an expunge slipped past (e.g. VANISHED lost).
    if session.qresync and _indexed_count(folder) > info.exists:
        result.deleted += _compare_uids(session, folder, moves, announcing)


def _backfill(session: ImapSession, folder: Folder, should_stop: Callable[[], bool],
              max_batches: int | None) -> int:
    """Index history below ``backfill_below``, newest first, one committed batch at a time.

    The next batches are fetched (on a helper thread) while the current one is written, so the
    server's and the database's time overlap; the IMAP connection is only ever used by that
    thread meanwhile, and every batch still commits with its own cursor. Two batches ahead,
    not one: a commit that stalls (a busy database) then no longer leaves the fetching idle,
    nor a slow answer the writer."""
    if not folder.backfill_below:
        return 0
    below = folder.backfill_below
    criteria = f"UID 1:{below - 1}"
    sync_from = index.sync_from(folder)
    if sync_from is not None:  # EmailEngine's syncFrom: no history from before that day
        criteria += f" SINCE {imap_date(sync_from.date())}"
    uids = [u for u in fetch.search_uids(session.client, criteria) if u < below] \
        if below > 1 else []
    plan = []  # the batches this call may do, newest first
    size = FIRST_BATCH
    while uids and (max_batches is None or len(plan) < max_batches):
        plan.append(uids[-size:])
        uids = uids[:-size]
        size = BATCH
    done = 0
    first_index = index.first_index_running(folder)
    with _collector_paused(), \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch") as prefetch:
        def fetch_batch(batch: list[int]):
            return prefetch.submit(session.fetch_meta, _uid_set(batch))

        pending = deque(fetch_batch(batch) for batch in plan[:PREFETCH_DEPTH])
        for number, batch in enumerate(plan):
            metas = pending.popleft().result()
            stop = should_stop()
            if not stop and number + PREFETCH_DEPTH < len(plan):
                pending.append(fetch_batch(plan[number + PREFETCH_DEPTH]))
            more_below = number + 1 < len(plan) or bool(uids)
            index.add_messages(folder, metas, notify=False, first_index=first_index,
                               cursor={"backfill_below": batch[0] if more_below else 0})
            done += len(metas)
            if stop:  # what is in flight is fetched and dropped (the pool waits for it)
                return done
    if not uids and folder.backfill_below:  # nothing left below (or never was)
        index.update_folder(folder, backfill_below=0)
    if done and not folder.backfill_below and not first_index:
        # History complete: many new rows since the last look. In an account's first index
        # the sync refreshes once, after ``accountInitialized`` (``sync_account``): VACUUM
        # ANALYZE and merging the trigram indexes' pending lists were ~29 % of a loaded
        # 20,000-message first index (py-spy), and nothing waits on them to list the folder.
        index_upkeep.refresh_statistics()
    return done


@contextlib.contextmanager
def _collector_paused():
    """History batches allocate millions of short-lived, acyclic objects (freed by reference
    counting anyway); the cyclic collector's passes over them cost ~10 % of a first index.
    Paused for the backfill only: tuning it for the whole worker instead gives a 1,000-account
    worker multi-second latency spikes."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def status_differs(session: ImapSession, folder: Folder,
                   status: FolderStatus | None = None) -> bool:
    """Cheap check (one STATUS, unless ``status`` was taken already) whether a folder that is
    not selected has changed. A folder never synced, or with history left to index, always
    needs its sync: no STATUS is asked for it (one round trip per pass, for every pass of a
    first index)."""
    if folder.synced_uidnext is None or folder.backfill_below:
        return True
    status = status or session.status(folder.path)
    return (status.uidvalidity != folder.uidvalidity or status.uidnext != folder.uidnext
            or status.messages != folder.messages
            or (status.highestmodseq is not None and status.highestmodseq != folder.highestmodseq)
            or status.unseen != folder.unseen)


def _compare_uids(session: ImapSession, folder: Folder, moves: MoveTracker | None,
                  announcing: gmail.Announcing = gmail.EVERY_CHANGE) -> int:
    """Expunges without QRESYNC: whatever we index below synced_uidnext the server lacks."""
    on_server = set(fetch.search_uids(session.client, "ALL"))
    gone = [uid for uid in index.indexed_uids(folder)
            if uid not in on_server and uid < (folder.synced_uidnext or 0)]
    return index.remove_messages(folder, gone, moves=moves, announcing=announcing) \
        if gone else 0


def _compare_flags(session: ImapSession, folder: Folder,
                   announcing: gmail.Announcing = gmail.EVERY_CHANGE) -> int:
    """Flag (and Gmail label) changes without CONDSTORE: fetch every flag and compare, one
    UID range at a time (memory stays bounded by the batch, not the folder)."""
    if not folder.synced_uidnext or folder.synced_uidnext <= 1:
        return 0
    changed = 0
    for low in range(1, folder.synced_uidnext, FLAG_BATCH):
        high = min(low + FLAG_BATCH, folder.synced_uidnext) - 1
        changes, _ = fetch.fetch_flags(session.client, f"{low}:{high}", labels=session.gmail)
        changes = [c for c in changes if low <= c.uid <= high]
        if not changes:
            continue
        stored = index.indexed_flags(folder, low, high, labels=session.gmail)
        differing = [c for c in changes if c.uid in stored and (
            set(c.flags) != set(stored[c.uid][0])
            or (c.labels is not None and set(c.labels) != set(stored[c.uid][1])))]
        if differing:
            changed += index.apply_flag_changes(folder, differing, announcing=announcing)
    return changed


def _refresh_counters(session: ImapSession, folder: Folder, info: SelectInfo) -> None:
    index.update_folder(
        folder, uidnext=info.uidnext, highestmodseq=info.highestmodseq, messages=info.exists,
        unseen=session.unseen_count() if info.exists else 0, last_synced_at=timezone.now(),
    )


def _indexed_count(folder: Folder) -> int:
    return folder.message_rows.count()


def _uids_from(session: ImapSession, start: int) -> list[int]:
    # "n:*" also matches the highest UID when it is below n, so filter.
    return [uid for uid in fetch.search_uids(session.client, f"UID {start}:*") if uid >= start]


def _chunks(items: list[int], size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _uid_set(uids: list[int]) -> str:
    """Compact ``1:5,8,10:12`` form of sorted or unsorted UIDs."""
    uids = sorted(uids)
    ranges, start, prev = [], None, None
    for uid in uids:
        if start is None:
            start = prev = uid
        elif uid == prev + 1:
            prev = uid
        else:
            ranges.append(f"{start}:{prev}" if start != prev else str(start))
            start = prev = uid
    if start is not None:
        ranges.append(f"{start}:{prev}" if start != prev else str(start))
    return ",".join(ranges)
