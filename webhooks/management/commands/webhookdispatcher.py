"""``manage.py webhookdispatcher``: publish outbox events and deliver webhooks
(``webhooks.dispatcher``). ``manage.py serve`` starts one; more (on other machines) are safe.
SIGTERM or SIGINT stops it after the attempts in flight (at most ``EMAILAPI_WEBHOOK_TIMEOUT``).
"""

import signal

from django.core.management.base import BaseCommand
from django.db import connection

from webhooks.dispatcher import Dispatcher


class Command(BaseCommand):
    help = "Publish outbox events and deliver them to webhook subscriptions."

    def add_arguments(self, parser):
        parser.add_argument("--concurrency", type=int, default=None,
                            help="Delivery threads (default EMAILAPI_WEBHOOK_CONCURRENCY)")

    def handle(self, *args, concurrency, **options):
        if connection.vendor == "postgresql":
            connection.settings_dict.setdefault("OPTIONS", {})["application_name"] = \
                "webhookdispatcher"
        dispatcher = Dispatcher(concurrency=concurrency)

        def stop(*_):
            dispatcher.stop.set()
            dispatcher.wake.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, stop)
        dispatcher.run()
