"""Listing rows already turned into their summary, remembered per process.

A listing reads twenty-odd rows and turns each into the message shape of the API
(``message_fields.summary``): ten JSON columns parsed, dates formatted, two or more signed ids
per row. That conversion was most of a listing's CPU time (issue 19), and clients list the
same pages over and over (polling the newest page, paging back and forth).

The summary is a pure function of the row's column values, four fields of its folder and the
id key (``ids.key()``), so those, exactly as the database gave them, are the memo's key: a row
whose flags, labels or anything else changed has other values and misses; a renamed folder
has another path. Nothing is ever stale, and nothing needs to be told of a change. Entries are
shared between requests and must not be changed by the caller (the listing only renders
them).

Bounded: ``LIMIT`` rows per process (about 7 KB each with their key: under 30 MB); past it
the older half is dropped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from mailboxes import ids

LIMIT = 4_000
_entries: dict[tuple, dict] = {}
_lock = threading.Lock()


def summary(folder, values: tuple, convert: Callable[[tuple], dict]) -> dict:
    """The summary of the row whose listing columns are ``values`` in ``folder``, made by
    ``convert(values)`` unless remembered."""
    key = (ids.key(), folder.email_account_id, folder.number, folder.path, folder.special_use,
           values)
    try:
        found = _entries.get(key)
    except TypeError:  # a value that cannot be a key (none expected): not remembered
        return convert(values)
    if found is None:
        found = convert(values)
        with _lock:
            if len(_entries) >= LIMIT:
                for old in list(_entries)[:LIMIT // 2]:
                    del _entries[old]
            _entries[key] = found
    return found


def clear() -> None:
    with _lock:
        _entries.clear()
