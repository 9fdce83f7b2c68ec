"""An open stream ends when its caller no longer may read it.

A stream is authorised once, when it opens, and may then stay open for hours: a revoked API
token, a stopped tenant or a dashboard session signed out would otherwise go on receiving the
tenant's events (a new request is refused at once; an open stream never makes one). So the
caller is looked at again every so often while the stream runs, and a caller no longer valid
ends it; the client reconnects and is refused.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing

from webhooks.stream.hub import in_db_thread

logger = logging.getLogger(__name__)


class Validity:
    """Whether the caller still may read, asked at most once per ``every`` seconds. A check
    that fails for a database fault keeps the stream: the next one decides."""

    def __init__(self, still_valid: Callable[[], bool], every: float):
        self._still_valid, self._every = still_valid, every
        self._next = time.monotonic() + every

    async def holds(self) -> bool:
        if time.monotonic() < self._next:
            return True
        try:
            valid = await in_db_thread(self._still_valid)
        except Exception:  # noqa: BLE001 - a fault is not a revocation
            logger.warning("event stream: could not check the caller", exc_info=True)
            valid = True
        self._next = time.monotonic() + self._every
        return bool(valid)


async def while_valid(body: AsyncIterator[bytes], validity: Validity) -> AsyncIterator[bytes]:
    """Pass ``body`` on while ``validity`` holds (the body yields at least a keep-alive per
    ``STREAM_KEEPALIVE``, so a check is never late by more than that)."""
    async with aclosing(body):
        async for chunk in body:
            yield chunk
            if not await validity.holds():
                return
