"""``manage.py webhookdispatcher``: publish outbox events and deliver webhooks
(``webhooks.dispatcher``). ``manage.py serve`` starts one; more (on other machines) are safe.
SIGTERM or SIGINT stops it after the requests in flight (each ends within twice
``EMAILAPI_WEBHOOK_TIMEOUT``, however slowly its answer comes: ``emailapi.lib.http``).
"""

import signal

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection

from emailapi.lib import dbpool
from webhooks.dispatcher import Dispatcher


class Command(BaseCommand):
    help = "Publish outbox events and deliver them to webhook subscriptions."

    def add_arguments(self, parser):
        parser.add_argument("--concurrency", type=int, default=None,
                            help="Delivery threads (default EMAILAPI_WEBHOOK_CONCURRENCY)")

    def handle(self, *args, concurrency, **options):
        if connection.vendor == "postgresql":
            db_options = connection.settings_dict.setdefault("OPTIONS", {})
            db_options["application_name"] = "webhookdispatcher"
            # Delivery state is committed without waiting for the WAL flush: one write per
            # delivery sent, each an fsync otherwise. A commit lost to a database crash means
            # a delivery sent again, which at-least-once allows; publishing asks for a flushed
            # commit itself (``sequencer.publish_pending``).
            dbpool.add_startup_option("-c synchronous_commit=off")
            # A lane's thread keeps its connection for the run (its claims and outcomes), and
            # the loop needs one, the tracking spool's drain another: a smaller pool would
            # leave threads waiting for connections (then ending their lanes) instead of
            # delivering.
            pool = db_options.get("pool")
            if isinstance(pool, dict):
                threads = concurrency or settings.WEBHOOK_CONCURRENCY
                db_options["pool"] = {**pool,
                                      "max_size": max(pool.get("max_size", 0), threads + 3)}
            # Its own pool wait stays long (a lane waits for a connection rather than end).
            dbpool.bound_statements(settings.DB_WORKER_QUERY_TIMEOUT)
        dispatcher = Dispatcher(concurrency=concurrency)

        def stop(*_):
            dispatcher.stop.set()
            dispatcher.wake.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, stop)
        dispatcher.run()
