"""The send scheduler outlives database and Redis outages: a real ``manage.py sendscheduler``
reaches PostgreSQL and Redis through loopback proxies (its outages are its own); after a storm
of terminated sessions, its database unreachable, then its Redis unreachable, then its
database failed over behind the same address (its connections stranded, silent for good), it
is still running and enqueues what became due meanwhile and after."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.db import connection

from mailboxes import sending
from tests.base import wait_for
from tests.mailboxes.sending_helpers import queue, sending_account
from tests.servers.tcp_proxy import TcpProxy

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


def _spawn(settings, db_port: int, redis_port: int, log) -> subprocess.Popen:
    db = connection.settings_dict
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(
        DATABASE_URL=f"postgres://{db['USER']}@127.0.0.1:{db_port}/{db['NAME']}",
        REDIS_URL=f"redis://127.0.0.1:{redis_port}{urlsplit(settings.REDIS_URL).path}",
        EMAILAPI_SECRET=settings.EMAILAPI_SECRET, EMAILAPI_SEND_SWEEP_INTERVAL="1",
        EMAILAPI_DB_WORKER_QUERY_TIMEOUT="2",
    )
    return subprocess.Popen([sys.executable, "manage.py", "sendscheduler"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _terminate_its_sessions() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                       "WHERE datname = current_database() "
                       "AND application_name = 'sendscheduler'")
        return cursor.fetchone()[0]


def test_the_send_scheduler_outlives_outages_and_enqueues_what_came_due(
        alice, smtp_user, smtp_server, settings, redis_db, tmp_path):
    account = sending_account(alice.tenant, smtp_user, smtp_server)
    db = connection.settings_dict
    redis_port = urlsplit(settings.REDIS_URL).port or 6379

    def enqueued(entry) -> bool:
        return sending._job_status(entry.queue_id, redis_db) == "queued"

    with TcpProxy(int(db["PORT"] or 5432), db["HOST"] or "127.0.0.1").start() as db_proxy, \
            TcpProxy(redis_port).start() as redis_proxy, \
            open(tmp_path / "scheduler.log", "wb") as log:
        scheduler = _spawn(settings, db_proxy.port, redis_proxy.port, log)

        def alive() -> None:
            if scheduler.poll() is not None:
                raise AssertionError(f"the scheduler exited ({scheduler.returncode}):\n"
                                     + Path(log.name).read_text(errors="replace")[-3000:])

        def fault_for(seconds: float) -> None:  # the outage's length, not a wait for anything
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                alive()
                time.sleep(0.2)

        try:
            first = queue(account, message_id="<first@example.test>")
            wait_for(lambda: enqueued(first), timeout=30)
            terminated = 0
            for _ in range(30):
                terminated += _terminate_its_sessions()
                fault_for(0.2)
            assert terminated, "the scheduler held no database session to terminate"
            db_proxy.cut()
            during_db = queue(account, message_id="<during-db@example.test>")
            fault_for(4)
            db_proxy.restore()
            redis_proxy.cut()
            during_redis = queue(account, message_id="<during-redis@example.test>")
            fault_for(4)
            redis_proxy.restore()
            wait_for(lambda: enqueued(during_redis), timeout=90)  # a connection of its own now
            db_proxy.strand()
            stranded = queue(account, message_id="<stranded@example.test>")
            after = queue(account, message_id="<after@example.test>")
            for entry in (during_db, stranded, after):
                wait_for(lambda entry=entry: enqueued(entry), timeout=90)
            assert db_proxy.held_bytes > 0, "the scheduler sent nothing on a stranded connection"
            alive()
        finally:
            if scheduler.poll() is None:
                os.killpg(scheduler.pid, signal.SIGKILL)
                scheduler.wait()
