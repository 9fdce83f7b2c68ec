"""The cyclic garbage collector in a worker that holds thousands of sessions.

A full collection walks every object the collector tracks, and holds the GIL while it does:
every thread of the worker (the loop that hands a readable socket to the pool, the pool
threads that sync) stands still until it ends. A worker holding 10,000 accounts tracks a few
million objects (sessions, TLS wrappers, account rows, timers), nearly all of which live
as long as their session, so each full collection is a pause of a second or more spent
proving again that they are alive.

Once a connect wave is over, ``settle`` collects once and then freezes what survived
(``gc.freeze``): those objects leave the collector's generations, later collections walk
only what came after, and reference counting still frees frozen objects that are dropped.
What freezing costs is cyclic garbage among frozen objects (an account dropped after the
wave whose objects refer to each other), which stays until the next ``settle`` thaws
everything first (``gc.unfreeze``) and collects it.

``PauseLog`` times each collection, so a pause that would cost new-mail latency shows in the
worker's log with its length.
"""

from __future__ import annotations

import gc
import logging
import time

logger = logging.getLogger(__name__)
# A collection at least this long is logged (seconds): longer than the new-mail latency a
# worker is meant to add to the server's own.
LOGGED_PAUSE = 0.1


class PauseLog:
    """A ``gc.callbacks`` entry: times collections and keeps the long ones for ``take_long``.

    It logs nothing itself: a collection starts in whichever thread allocates, possibly in
    the middle of a log handler's write."""

    def __init__(self, logged: float = LOGGED_PAUSE):
        self.logged = logged
        self.started = 0.0
        self.full = 0  # full collections seen
        self.full_seconds = 0.0
        self.longest = 0.0
        self.long: list[tuple[int, float]] = []  # (generation, seconds) not taken yet

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self.started = time.perf_counter()
            return
        took = time.perf_counter() - self.started
        self.longest = max(self.longest, took)
        generation = info.get("generation", -1)
        if generation == 2:
            self.full += 1
            self.full_seconds += took
        if took >= self.logged and len(self.long) < 100:
            self.long.append((generation, took))

    def take_long(self) -> list[tuple[int, float]]:
        """The long collections since the last call."""
        long, self.long = self.long, []
        return long

    def log_long(self) -> None:
        for generation, took in self.take_long():
            logger.info("garbage collection of generation %s paused every thread for %.0f ms "
                        "(%d objects frozen)", generation, took * 1000, gc.get_freeze_count())


_PAUSES = PauseLog()


def watch() -> PauseLog:
    """Time every collection of this process (once; later calls return the same log)."""
    if _PAUSES not in gc.callbacks:
        gc.callbacks.append(_PAUSES)
    return _PAUSES


def settle() -> int:
    """After a connect wave: collect the garbage of the wave (what was frozen before
    included), then freeze what is left. Returns how many objects are frozen now."""
    started = time.perf_counter()
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    logger.info("froze %d long-lived objects out of the garbage collector's walks in %.0f ms",
                frozen, (time.perf_counter() - started) * 1000)
    return frozen
