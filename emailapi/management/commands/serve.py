"""``manage.py serve``: web server and background workers in the foreground (``make run``).

Refuses to start, with one clear line and exit code 1, when Redis or the database cannot be
reached, rather than letting every child crash with a traceback.
"""

from __future__ import annotations

import os
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from emailapi.redis import get_redis
from emailapi.supervisor import Child, Supervisor


class Command(BaseCommand):
    help = "Run the ASGI web server and the background workers as one supervised group."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
        parser.add_argument("--no-workers", action="store_true",
                            help="Start only the web server")

    def handle(self, *args, host, port, no_workers, **options):
        self.preflight()
        python = sys.executable
        manage = str(settings.BASE_DIR / "manage.py")
        children = [Child("web", [python, "-m", "daphne", "-b", host, "-p", str(port),
                                  "--proxy-headers", "emailapi.asgi:application"])]
        if not no_workers:
            children.append(Child("imapworker", [python, manage, "imapworker"]))
            children.append(Child("rqworker", [python, manage, "rqworker", "--with-scheduler",
                                               *settings.RQ_QUEUES]))
        self.stdout.write(f"emailapi on http://{host}:{port}/ (docs at /docs); Ctrl-C stops")
        sys.exit(Supervisor(children).run())

    def preflight(self) -> None:
        try:
            get_redis().ping()
        except Exception as exc:  # noqa: BLE001 - any failure means "cannot start"
            raise CommandError(
                f"Redis is not reachable at {settings.REDIS_URL} ({exc}); "
                "start Redis or set REDIS_URL"
            ) from None
        try:
            connection.ensure_connection()
        except Exception as exc:  # noqa: BLE001
            raise CommandError(f"The database is not reachable ({exc}); check DATABASE_URL") from None
