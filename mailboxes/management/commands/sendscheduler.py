"""``manage.py sendscheduler``: the outbox sweep (``mailboxes.sending.enqueue_due``) in a loop.

Every ``EMAILAPI_SEND_SWEEP_INTERVAL`` seconds it enqueues an rq job for each outbox entry that
is due and has none: ``sendAt`` reached, a retry's delay passed, a job lost to a Redis flush,
or an entry left ``sending`` by a killed job. Each pass also keeps the bulk exports
(``mailboxes.exports.sweep``): it deletes expired ones with their files, fails a
``processing`` one whose worker died, and enqueues again a queued one whose job was lost.
``manage.py serve`` starts one; more are harmless
(a duplicate job finds its entry already claimed). SIGTERM or SIGINT stops it between sweeps.

A database or Redis outage never ends it: a sweep that fails is logged and tried again after a
pause that doubles with each failure in a row (up to 30 s); nothing is lost meanwhile,
since what is due stays due in PostgreSQL.
"""

import logging
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections, connection, connections

from emailapi.lib import dbpool, metrics
from emailapi.lib.backoff import Schedule
from mailboxes import exports
from mailboxes.sending import enqueue_due

logger = logging.getLogger("mailboxes.sending")
MAX_PAUSE = 30.0


class Command(BaseCommand):
    help = "Enqueue outbox entries that are due (scheduled sends, retries, lost jobs)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="One sweep, then exit")

    def handle(self, *args, once, **options):
        if connection.vendor == "postgresql":
            connection.settings_dict.setdefault("OPTIONS", {})["application_name"] = "sendscheduler"
            dbpool.use_worker_waits()
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        # The sweep interval after a good sweep, doubling after each failed one up to MAX_PAUSE.
        pauses = Schedule(base=float(settings.SEND_SWEEP_INTERVAL), factor=2.0, cap=MAX_PAUSE)
        failures = 0
        while True:
            failures = 0 if self.sweep() is not None else failures + 1
            if once or stop.wait(pauses.delay(failures + 1)):
                return

    def sweep(self) -> int | None:
        """One pass: how many entries it enqueued, or None when the database or Redis failed
        (logged; the caller waits longer before the next)."""
        try:
            close_old_connections()
            count = enqueue_due()
            metrics.outbox_swept(count)
            kept = exports.sweep()
        except Exception as exc:  # noqa: BLE001 - keep sweeping once the outage ends
            logger.warning("outbox sweep failed: %s", exc)
            try:
                connections.close_all()  # never reuse a broken connection
            except Exception:  # noqa: BLE001
                pass
            return None
        if count:
            logger.info("outbox sweep enqueued %d entries", count)
        if any(kept.values()):
            logger.info("export sweep: %(expired)d expired, %(stale)d stale, "
                        "%(requeued)d enqueued again", kept)
        return count
