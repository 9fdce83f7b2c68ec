"""Upkeep of the message index's table after bulk inserts: planner statistics, trigram lists.

The index writer (``mailboxes.sync.index``) tells this module how many rows it inserted; the
sync calls ``refresh_statistics`` when a folder's history is complete and when an account's
first sync ends. Nothing here changes a row.
"""

from __future__ import annotations

import time

from django.db import connection

from emailapi.lib import pgdeadline

REFRESH_AFTER_ROWS = 5000
MAINTENANCE_LIMIT = 1800  # seconds the VACUUM may take (emailapi.lib.pgdeadline.patience)

_analyzed_at = -60.0
_inserted_since = 0  # rows this process indexed since the last refresh


def note_inserted(count: int) -> None:
    """The index writer inserted ``count`` rows (so statistics may be stale sooner)."""
    global _inserted_since
    _inserted_since += count


def refresh_statistics() -> None:
    """After a bulk first index the planner still believes the table is tiny and sorts whole
    folders instead of walking the (folder, uid) index; ANALYZE (PostgreSQL, sampled, cheap)
    fixes that at once instead of whenever autovacuum gets to it. Outside a transaction it is
    VACUUM ANALYZE, which also marks the new pages all-visible, so that listing a deep page
    counts its offset in the (folder, uid) index alone (an index-only scan) instead of
    visiting every skipped row. At most once a minute, unless this process has inserted
    many rows since the last time."""
    global _analyzed_at, _inserted_since
    now = time.monotonic()
    if connection.vendor != "postgresql" or (
            now - _analyzed_at < 60 and _inserted_since < REFRESH_AFTER_ROWS):
        return
    _analyzed_at, _inserted_since = now, 0
    with connection.cursor() as cursor:
        if connection.in_atomic_block:
            cursor.execute("ANALYZE mailboxes_message")
            _clean_pending_lists(cursor)
            return
        # The VACUUM's time grows with the whole table (every tenant's mail), not with this
        # sync's work: it may take longer than a worker's statement limit.
        with pgdeadline.patience(cursor, MAINTENANCE_LIMIT):
            cursor.execute("VACUUM (ANALYZE) mailboxes_message")
            _clean_pending_lists(cursor)


def _clean_pending_lists(cursor) -> None:
    """Bulk inserts leave GIN (trigram) entries in a pending list that every search then
    scans linearly; merge it into the index now rather than at the next VACUUM."""
    cursor.execute("SELECT gin_clean_pending_list(c.oid) FROM pg_class c "
                   "WHERE c.relname LIKE 'message\\_%\\_trgm' AND c.relkind = 'i'")
