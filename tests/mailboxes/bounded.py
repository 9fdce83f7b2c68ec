"""A call on hostile input, bounded (a pure parser's, a client's against a hostile server): it
runs in a thread of its own, and the test fails when it has not finished well within ``WITHIN``
seconds. The inputs are sized so that a
linear parser takes milliseconds on them (far below the bound even on a busy two-core machine)
and a quadratic one minutes."""

from __future__ import annotations

import threading
import time

WITHIN = 10.0


def finishes(work, within: float = WITHIN, cleanup=None):
    """``work()``'s answer (or what it raised), failing the test when it ran longer than
    ``within`` seconds. The time is measured as well as the thread's end: a regular expression
    that backtracks holds the interpreter until it is done, so ``join`` comes back late, not
    early. ``cleanup`` runs in the thread once ``work`` is done (a database connection of the
    thread's, closed)."""
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc
        finally:
            if cleanup is not None:
                cleanup()

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)  # one still stuck does not hold pytest
    thread.start()
    thread.join(within)
    elapsed = time.monotonic() - started
    assert not thread.is_alive(), f"still running after {within} s"
    assert elapsed < within, f"took {elapsed:.1f} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
