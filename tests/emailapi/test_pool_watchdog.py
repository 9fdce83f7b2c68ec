"""``serve`` replaces a web process whose database pool stays exhausted (``emailapi.watchdog``),
and only that one: two web processes share the port, one of them has its only connection held
(by a request waiting for our row lock), and it exits by itself and is restarted while the
other keeps serving. The supervisor says why in its log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import uuid

import pytest

from accounts.models import ApiToken
from tests.base import wait_for
from tests.emailapi.db_faults import TokenLock, database_url, get, sessions
from tests.servers.net import find_free_port

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _children(pid: int) -> set[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return {int(line) for line in found.stdout.split()}


def test_serve_restarts_the_web_process_whose_pool_stays_exhausted(alice, settings):
    name = f"emailapi-test-{uuid.uuid4().hex[:12]}"
    port = find_free_port()
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(DATABASE_URL=database_url(application_name=name), REDIS_URL=settings.REDIS_URL,
               EMAILAPI_SECRET=settings.EMAILAPI_SECRET, EMAILAPI_TOKEN_CACHE_SECONDS="0",
               EMAILAPI_REDIS_PREFIX=settings.EMAILAPI_REDIS_PREFIX,
               EMAILAPI_DB_POOL_SIZE="1", EMAILAPI_DB_POOL_WAIT="1",
               EMAILAPI_DB_POOL_WATCHDOG="3",
               # No statement limit: the held request waits on our lock however long the
               # watchdog takes on a busy machine.
               EMAILAPI_DB_QUERY_TIMEOUT="0")
    log = tempfile.TemporaryFile()
    serve = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--no-workers", "--web-processes", "2",
         "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=log,
        start_new_session=True)
    lock = None
    try:
        def both_up():
            children = _children(serve.pid)
            assert serve.poll() is None
            if len(children) != 2:
                return None
            try:
                return children if get(port, "/health", timeout=5)[0] == 200 else None
            except OSError:
                return None

        before = wait_for(both_up, timeout=60, interval=0.5)

        lock = TokenLock(ApiToken.objects.get(tenant=alice.tenant))
        held = []

        def held_request():
            try:
                held.append(get(port, "/v1/accounts", alice.token, timeout=120)[0])
            except OSError as exc:  # the process holding it is gone
                held.append(exc.__class__.__name__)

        threading.Thread(target=held_request, daemon=True).start()
        wait_for(lambda: sessions(name, waiting_on_lock=True) == 1, timeout=30)

        def replaced():
            children = _children(serve.pid)
            return children if len(children) == 2 and children != before else None

        after = wait_for(replaced, timeout=60, interval=0.5)
        assert len(before & after) == 1, "only the process with the exhausted pool is replaced"
        assert wait_for(lambda: held, timeout=30) == ["RemoteDisconnected"]
        # Both serve again, the lock still held: the new process has a pool of its own.
        for _ in range(6):
            assert wait_for(lambda: get(port, "/health", timeout=10)[0] == 200, timeout=30,
                            interval=0.5)
        log.seek(0)
        output = log.read().decode(errors="replace")
        assert "exited with code 75 (its database pool stayed exhausted)" in output, output
        assert "database pool exhausted for" in output, output
    finally:
        if lock is not None:
            lock.release()
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGINT)
            try:
                serve.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(serve.pid, signal.SIGKILL)
                serve.wait()
