"""A web process ends itself when its database pool stays exhausted, to be started afresh.

A pool whose connections never come back (a leak, a thread stuck for good) leaves the process
alive but useless: every request waits and answers 503, ``/health`` says ``pool exhausted``,
and nothing inside the process can take the lost connections back. A new process can.

Why the process watches itself rather than being watched: ``serve --web-processes N`` runs
several web processes accepting on one shared socket, so a health request from the
supervisor reaches whichever process the kernel picks and cannot tell which one is broken;
a health port or pipe per process would be a second server to run in each. The process
alone knows its own pool, so it checks it (``dbpool.probe``, the same check as ``/health``)
every few seconds and, once it has found it exhausted for ``EMAILAPI_DB_POOL_WATCHDOG``
seconds without a break, logs why and exits with ``EXIT_POOL_EXHAUSTED``. ``serve``'s
supervisor restarts it like any child that exits (and so would systemd or Kubernetes).

A database that cannot be reached is not this process's fault: new processes would find it
down as well, and a restart loop would only add connection attempts to a struggling server.
The watchdog waits such an outage out (each request answers 503 meanwhile).
"""

from __future__ import annotations

import logging
import os
import threading
import time

from django.conf import settings

from emailapi.lib import dbpool

logger = logging.getLogger(__name__)

EXIT_POOL_EXHAUSTED = 75  # EX_TEMPFAIL: try again (a fresh process will)

_started = False
_lock = threading.Lock()


def start() -> threading.Thread | None:
    """Start this process's watchdog once, if it is on (``DB_POOL_WATCHDOG`` > 0) and the
    database is pooled (PostgreSQL)."""
    global _started
    patience = settings.DB_POOL_WATCHDOG
    # Django's PostgreSQL backend or ours (emailapi.lib.postgres): pooled.
    if patience <= 0 or "postgres" not in settings.DATABASES["default"]["ENGINE"]:
        return None
    with _lock:
        if _started:
            return None
        _started = True
    thread = threading.Thread(target=watch, args=(patience,), name="db-pool-watchdog",
                              daemon=True)
    thread.start()
    return thread


def watch(patience: float, exit=os._exit) -> None:
    """Check the pool every few seconds; ``exit`` once it stays exhausted for ``patience``
    seconds. Never raises: a watchdog that dies would watch nothing."""
    interval = max(0.5, min(5.0, patience / 4))
    exhausted_since = None
    while True:
        time.sleep(interval)
        try:
            state = dbpool.probe(wait=settings.DB_POOL_WAIT)
        except Exception:  # noqa: BLE001 - keep watching
            logger.exception("database pool check failed")
            continue
        if state["ok"] or state.get("error") != dbpool.EXHAUSTED:
            exhausted_since = None
            continue
        now = time.monotonic()
        exhausted_since = exhausted_since or now
        if now - exhausted_since >= patience:
            logger.critical(
                "database pool exhausted for %d s (%s) while the database accepts "
                "connections: exiting so that a fresh process takes over",
                round(now - exhausted_since), state.get("pool"))
            exit(EXIT_POOL_EXHAUSTED)
            return
