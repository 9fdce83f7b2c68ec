"""A few seconds' memory of authenticated tokens, per process.

Every API request authenticates its token; on the hot read paths (a listing costs about 3 ms)
the token query would be a third of the work. A token seen within the last
``EMAILAPI_TOKEN_CACHE_SECONDS`` (default 5) is taken from here. The price is bounded and
documented: a token revoked (or a tenant suspended) through another process keeps working for
at most that long; revocation through this process takes effect at once (``forget``).
"""

from __future__ import annotations

import threading
import time

from django.conf import settings

_entries: dict[str, tuple[float, object]] = {}
_lock = threading.Lock()
_LIMIT = 10_000  # tokens remembered at most; the oldest half is dropped beyond it


def get(token_hash: str):
    entry = _entries.get(token_hash)
    if entry is None or entry[0] < time.monotonic():
        return None
    return entry[1]


def put(token_hash: str, token) -> None:
    seconds = settings.EMAILAPI_TOKEN_CACHE_SECONDS
    if seconds <= 0:
        return
    with _lock:
        if len(_entries) >= _LIMIT:
            for key in sorted(_entries, key=lambda k: _entries[k][0])[:_LIMIT // 2]:
                del _entries[key]
        _entries[token_hash] = (time.monotonic() + seconds, token)


def forget(token_hash: str) -> None:
    with _lock:
        _entries.pop(token_hash, None)


def clear() -> None:
    with _lock:
        _entries.clear()
