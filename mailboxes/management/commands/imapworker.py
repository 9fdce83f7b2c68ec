"""``manage.py imapworker``: hold many accounts' IMAP connections (see mailboxes.worker).

Run as many as you like, on any machines sharing DATABASE_URL and REDIS_URL: accounts spread
over them through Redis leases. SIGTERM or SIGINT logs every account out and releases its
lease before exiting. A database or Redis outage never ends it (see mailboxes.worker).
"""

import resource
import signal

from django.core.management.base import BaseCommand
from django.db import connection

from emailapi.lib import dbpool
from mailboxes.worker import memory
from mailboxes.worker.imap_worker import ImapWorker


class Command(BaseCommand):
    help = "Keep registered mailboxes connected (IDLE) and their index in sync."

    def add_arguments(self, parser):
        parser.add_argument("--max-accounts", type=int, default=None)
        parser.add_argument("--pool-size", type=int, default=None)
        parser.add_argument("--connect-threads", type=int, default=None)
        parser.add_argument("--worker-id", default=None)

    def handle(self, *args, max_accounts, pool_size, connect_threads, worker_id, **options):
        if connection.vendor == "postgresql":
            connection.settings_dict.setdefault("OPTIONS", {})["application_name"] = "imapworker"
            dbpool.use_worker_waits()
        _raise_open_files_limit()
        memory.limit_arenas()  # before the worker's threads start
        worker = ImapWorker(worker_id=worker_id, max_accounts=max_accounts, pool_size=pool_size,
                            connect_threads=connect_threads)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: worker.stop.set())
        worker.run()


def _raise_open_files_limit() -> None:
    """Each account holds a socket; the usual soft limit of 1,024 descriptors would cap a
    worker below a thousand accounts. Raise the soft limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = 65536 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass

