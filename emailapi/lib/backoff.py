"""How long to wait before the next retry (pure): one ``Schedule`` for every retry loop.

Used for IMAP reconnects (``mailboxes.worker.connection``), send retries
(``mailboxes.outbox``), recording a send's outcome (``mailboxes.sending``), the send sweep
(``sendscheduler``), the stream hub's database and Redis retries (``webhooks.stream.hub``),
webhook delivery retries (``webhooks.delivery_state``, ``webhooks.dispatcher``) and the
restarts of ``serve``'s children (``emailapi.process_group``), so each states its numbers, not
its arithmetic.

A schedule is either a curve, ``base`` growing by ``factor`` per retry up to ``cap`` (network
trouble: quick at first, then patient), or a list of ``steps`` whose last one repeats (an
operator's setting such as ``EMAILAPI_WEBHOOK_RETRY_SCHEDULE``). ``first``, when set, is the
exact wait before the first retry, and the curve or list starts at the second (a connection
that drops once comes back at once). ``jitter`` spreads each delay by up to +-that fraction,
so many clients failing together (accounts after a server restart, lanes to one receiver) do
not all retry in the same second.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    base: float = 1.0
    factor: float = 2.0
    cap: float = math.inf
    steps: tuple[float, ...] = ()
    first: float | None = None
    jitter: float = 0.0

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1 = the first retry; below 1
        counts as 1)."""
        if self.first is not None:
            if retry <= 1:
                return self.first
            retry -= 1
        raw = self.plain(retry)
        if not self.jitter:
            return raw
        return max(0.0, raw * (rng or random).uniform(1 - self.jitter, 1 + self.jitter))

    def plain(self, retry: int) -> float:
        """The delay before retry ``retry`` of the curve or list, without ``first`` and
        jitter."""
        retry = max(retry, 1)
        if self.steps:
            return self.steps[min(retry, len(self.steps)) - 1]
        return min(self.cap, self.base * self.factor ** (retry - 1))
