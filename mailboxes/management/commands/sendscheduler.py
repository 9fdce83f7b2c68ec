"""``manage.py sendscheduler``: the outbox sweep (``mailboxes.sending.enqueue_due``) in a loop.

Every ``EMAILAPI_SEND_SWEEP_INTERVAL`` seconds it enqueues an rq job for each outbox entry that
is due and has none: ``sendAt`` reached, a retry's delay passed, a job lost to a Redis flush,
or an entry left ``sending`` by a killed job. ``manage.py serve`` starts one; more are harmless
(a duplicate job finds its entry already claimed). SIGTERM or SIGINT stops it between sweeps.
"""

import logging
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections, connection

from mailboxes.sending import enqueue_due

logger = logging.getLogger("mailboxes.sending")


class Command(BaseCommand):
    help = "Enqueue outbox entries that are due (scheduled sends, retries, lost jobs)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="One sweep, then exit")

    def handle(self, *args, once, **options):
        if connection.vendor == "postgresql":
            connection.settings_dict.setdefault("OPTIONS", {})["application_name"] = "sendscheduler"
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        while True:
            self.sweep()
            if once or stop.wait(settings.SEND_SWEEP_INTERVAL):
                return

    def sweep(self) -> int:
        """One pass; a database or Redis outage is logged and tried again next time."""
        close_old_connections()
        try:
            count = enqueue_due()
        except Exception as exc:  # noqa: BLE001 - keep sweeping once the outage ends
            logger.warning("outbox sweep failed: %s", exc)
            return 0
        if count:
            logger.info("outbox sweep enqueued %d entries", count)
        return count
