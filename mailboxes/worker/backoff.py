"""Reconnect delays: exponential, capped, with jitter (pure).

Jitter spreads the reconnects of many accounts after a server restart so they do not all
hammer it in the same second. Authentication failures use a slower schedule: retrying a wrong
password quickly helps nobody and may get the account locked by the provider.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    base: float
    factor: float
    cap: float
    jitter: float = 0.2  # +/- this fraction

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``failures`` (1 = first retry)."""
        raw = min(self.cap, self.base * self.factor ** max(0, failures - 1))
        spread = (rng or random).uniform(-self.jitter, self.jitter)
        return max(0.0, raw * (1 + spread))


# 1 s, 2 s, 4 s ... capped at 5 minutes: network trouble and server restarts.
CONNECT = Schedule(base=1.0, factor=2.0, cap=300.0)
# 1 min, 2 min, 4 min ... capped at 1 hour: wrong credentials need a human.
AUTHENTICATION = Schedule(base=60.0, factor=2.0, cap=3600.0)
# 1 s, 2 s, 4 s ... capped at 30 s: the database or Redis is unreachable. Short, because
# nothing is wrong with the mailbox: its sync resumes as soon as the store answers again.
STORE = Schedule(base=1.0, factor=2.0, cap=30.0)
