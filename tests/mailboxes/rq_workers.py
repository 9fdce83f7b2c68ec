"""A real ``manage.py rqworker`` process on the test database and Redis DB, for the tests that
kill one in the middle of a job (a send, an export)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

from emailapi.management.commands.serve import RQ_WORKER_CLASS
from tests.mailboxes.helpers import ROOT


def spawn_rqworker(settings, queue: str) -> subprocess.Popen:
    """A burst worker of ``queue`` in a session of its own (``os.killpg`` of its pid kills it).
    It is serve's worker class, whose job runs in the worker process itself: rq's default forks
    a work horse into a process group of its own (``os.setpgrp``), which that kill misses."""
    db = connection.settings_dict
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
               REDIS_URL=settings.REDIS_URL, EMAILAPI_SECRET=settings.EMAILAPI_SECRET)
    return subprocess.Popen(
        [sys.executable, "manage.py", "rqworker", "--worker-class", RQ_WORKER_CLASS, queue,
         "--burst"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


@contextmanager
def rqworker(settings, queue: str) -> Iterator[subprocess.Popen]:
    """``spawn_rqworker``, killed on the way out if the test did not kill it itself."""
    worker = spawn_rqworker(settings, queue)
    try:
        yield worker
    finally:
        if worker.poll() is None:
            kill(worker)


def kill(worker: subprocess.Popen) -> None:
    """SIGKILL the worker's whole session (the job in it included) and reap it."""
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)
