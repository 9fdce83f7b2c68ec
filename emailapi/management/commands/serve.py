"""``manage.py serve``: web server and background workers in the foreground (``make run``).

Refuses to start, with one clear line and exit code 1, when Redis or the database cannot be
reached, rather than letting every child crash with a traceback.
"""

from __future__ import annotations

import os
import socket
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from emailapi.lib import metrics
from emailapi.lib.redis import get_redis
from emailapi.process_group import Child, Supervisor

# A web process serves a request on one core at a time (Python), so one per core pays: on 2
# cores two processes serve about twice the requests of one (bench/read_api.py). More than a
# few would each hold a database pool (EMAILAPI_DB_POOL_SIZE connections) for little gain
# next to the workers on the same machine: the default stops at this many.
MAX_DEFAULT_WEB_PROCESSES = 4
# rq runs each job in the worker process itself (see ``worker_children``), and a second stop
# signal does not cut it short (emailapi/rq_worker.py).
RQ_WORKER_CLASS = "emailapi.rq_worker.WarmStopWorker"


def default_web_processes() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_DEFAULT_WEB_PROCESSES))


def worker_children(python: str, dispatchers: int = 1) -> list[Child]:
    """The background processes: one IMAP worker, two rq workers (exports apart), the send
    scheduler and ``dispatchers`` webhook dispatchers (several are safe: publishing is locked,
    fan-out serialised, lanes claimed under row locks)."""
    manage = str(settings.BASE_DIR / "manage.py")
    children = [Child("imapworker", [python, manage, "imapworker"])]
    # No --with-scheduler: nothing is enqueued for later (sendscheduler sweeps due
    # sends), and rq's scheduler is a forked child that outlives a killed worker.
    # SimpleWorker: each job runs in this one process, not a fork per job, so the
    # job's metrics (events of sends) reach the scrape like every other process's.
    # The send job starts with close_old_connections, as a fork's would have fresh
    # ones; a killed worker loses only its job, which the sweep hands out again.
    # Exports have an rq worker of their own: one export may run for hours, and a SimpleWorker
    # runs one job at a time, so on the same worker it would hold up every send meanwhile.
    children.append(Child("rqworker", [python, manage, "rqworker",
                                       "--worker-class", RQ_WORKER_CLASS,
                                       *[q for q in settings.RQ_QUEUES if q != "export"]]))
    children.append(Child("rqworker-export", [python, manage, "rqworker",
                                              "--worker-class", RQ_WORKER_CLASS, "export"]))
    children.append(Child("sendscheduler", [python, manage, "sendscheduler"]))
    # Publish events (the live stream and change feed wait on it) and deliver webhooks
    # from their own thread pools (webhooks/dispatcher.py says why not rq).
    children += [Child("webhookdispatcher" + (str(n) if n > 1 else ""),
                       [python, manage, "webhookdispatcher"])
                 for n in range(1, dispatchers + 1)]
    return children


class Command(BaseCommand):
    help = "Run the ASGI web server and the background workers as one supervised group."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
        parser.add_argument("--no-workers", action="store_true",
                            help="Start only the web server")
        parser.add_argument("--webhook-dispatchers", type=int,
                            default=settings.WEBHOOK_DISPATCHERS,
                            help="webhookdispatcher processes (default "
                                 "EMAILAPI_WEBHOOK_DISPATCHERS, 1)")
        parser.add_argument("--web-processes", type=int,
                            default=int(os.environ.get("EMAILAPI_WEB_PROCESSES", "0") or 0)
                            or default_web_processes(),
                            help="daphne processes sharing the port (default: one per core "
                                 f"this process may use, at most {MAX_DEFAULT_WEB_PROCESSES})")

    def handle(self, *args, host, port, no_workers, web_processes, webhook_dispatchers,
               **options):
        self.preflight()
        python = sys.executable
        children = self.web_children(python, host, port, max(1, web_processes))
        if not no_workers:
            children += worker_children(python, max(1, webhook_dispatchers))
        self.share_metrics(children)
        self.stdout.write(f"emailapi on http://{host}:{port}/ (docs at /docs); Ctrl-C stops")
        sys.exit(Supervisor(children).run())

    def web_children(self, python: str, host: str, port: int, count: int) -> list[Child]:
        """One daphne on host:port, or several accepting on one socket opened here (the
        kernel spreads connections over them): Python serves a request on one core only.

        daphne runs as ``emailapi.server``: body limits while bodies arrive, forwarding
        headers believed only from EMAILAPI_TRUSTED_PROXIES, an access log without tokens."""
        server, app = [python, "-m", "emailapi.server"], "emailapi.asgi:application"
        if count == 1:
            return [Child("web", [*server, "-b", host, "-p", str(port), app])]
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((host, port))
        except OSError as exc:
            raise CommandError(f"Cannot listen on {host}:{port}: {exc.strerror}") from None
        listener.listen(1024)
        listener.set_inheritable(True)
        self._listener = listener  # kept open (and inherited) for as long as we run
        fd = listener.fileno()
        return [Child(f"web{n}", [*server, "--fd", str(fd), app], pass_fds=(fd,))
                for n in range(1, count + 1)]

    @staticmethod
    def share_metrics(children: list[Child]) -> None:
        """prometheus_client's multiprocess mode (``emailapi.lib.metrics``): every child
        writes its metrics under EMAILAPI_METRICS_DIR, emptied now, and any web process's
        ``/metrics`` sums them (``rqworker`` too: it runs its jobs in its own process)."""
        shared = settings.EMAILAPI_METRICS_DIR
        metrics.prepare_dir(shared)
        for child in children:
            child.env[metrics.MULTIPROC_ENV] = str(shared)

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
