"""Database and Redis outages never stop an IMAP worker, nor log out its mailboxes.

A real ``manage.py imapworker`` subprocess holds three accounts idling on Dovecot. It reaches
PostgreSQL and Redis through loopback proxies (``tests.servers.tcp_proxy``), so its outages are
its own: the suite's servers stay up for everyone else. Then, with mail arriving throughout:

1. a storm of ``pg_terminate_backend`` of its sessions (this test database's only);
2. its database unreachable for a while;
3. its Redis unreachable for longer than the lease TTL.

And its database failing over behind the same address: the connections it holds never hear
from their server again while new ones are answered; it gives each up at its deadline
(``EMAILAPI_DB_WORKER_QUERY_TIMEOUT`` and ``pgdeadline.GRACE``) and goes on.

After the storm the worker is still running, each mailbox is still on the session it logged in
with at the start (Dovecot logged exactly one login per user), and every message delivered
before, during and after is announced by exactly one ``messageNew``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.db import connection

from accounts.models import EmailAccount
from tests.base import wait_for
from tests.mailboxes.helpers import events_of, register
from tests.servers import seed
from tests.servers.tcp_proxy import TcpProxy

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]
TTL = 4


def _spawn_worker(settings, db_port: int, redis_port: int, log, **env_overrides: str
                  ) -> subprocess.Popen:
    db = connection.settings_dict
    redis_url = urlsplit(settings.REDIS_URL)
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(
        DATABASE_URL=f"postgres://{db['USER']}@127.0.0.1:{db_port}/{db['NAME']}",
        REDIS_URL=f"redis://127.0.0.1:{redis_port}{redis_url.path}",
        EMAILAPI_SECRET=settings.EMAILAPI_SECRET,
        EMAILAPI_LEASE_TTL=str(TTL), EMAILAPI_CLAIM_INTERVAL="1",
    )
    env.update(env_overrides)
    return subprocess.Popen(
        [sys.executable, "manage.py", "imapworker", "--worker-id", "weathered"], cwd=ROOT,
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


@contextmanager
def _running_worker(settings, db_port: int, redis_port: int, log, **env_overrides: str):
    """A worker (``_spawn_worker``), killed with its group on the way out if still running."""
    worker = _spawn_worker(settings, db_port, redis_port, log, **env_overrides)
    try:
        yield worker
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def _db_proxy() -> TcpProxy:
    db = connection.settings_dict
    return TcpProxy(int(db["PORT"] or 5432), db["HOST"] or "127.0.0.1").start()


def _mailboxes(alice, dovecot, count: int) -> tuple[list, list[EmailAccount]]:
    users = [dovecot.add_user() for _ in range(count)]
    return users, [register(alice.tenant, user, f"box{i}") for i, user in enumerate(users)]


def _all_connected(worker: subprocess.Popen, log, accounts) -> bool:
    assert worker.poll() is None, _died(worker, log)
    return all(EmailAccount.objects.get(pk=a.pk).state == "connected" for a in accounts)


def _terminate_worker_sessions() -> int:
    """End the worker's database sessions: this test database's, named ``imapworker``."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND application_name = 'imapworker' "
                       "AND pid <> pg_backend_pid()")
        return cursor.fetchone()[0]


def _logins(dovecot, user) -> int:
    return dovecot.read_log().count(f"Login: user=<{user.username}>")


def _deliver(dovecot, users, subject: str) -> None:
    for user in users:
        dovecot.deliver_to_maildir(user, seed.make_message(subject=subject))


def _fault_for(seconds: float, worker: subprocess.Popen, log) -> None:
    """Keep a fault on for ``seconds`` (the outage's length, not a wait for anything),
    failing early if the worker died."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert worker.poll() is None, _died(worker, log)
        time.sleep(0.2)


def _died(worker: subprocess.Popen, log) -> str:
    worker.wait(timeout=5)
    return f"the worker exited ({worker.returncode}):\n{_tail(log)}"


def _tail(log) -> str:
    return Path(log.name).read_text(errors="replace")[-4000:]


def test_outages_of_database_and_redis_keep_the_worker_and_its_sessions(
        alice, dovecot, settings, tmp_path):
    users, accounts = _mailboxes(alice, dovecot, 3)
    redis_port = urlsplit(settings.REDIS_URL).port or 6379
    with _db_proxy() as db_proxy, TcpProxy(redis_port).start() as redis_proxy, \
            open(tmp_path / "worker.log", "wb") as log, \
            _running_worker(settings, db_proxy.port, redis_proxy.port, log) as worker:
        def all_connected():
            return _all_connected(worker, log, accounts)

        wait_for(all_connected, timeout=60)
        assert [_logins(dovecot, user) for user in users] == [1, 1, 1]
        subjects = []

        # 1. a storm of terminated database sessions, with mail arriving meanwhile
        terminated = 0
        for round_ in range(40):
            terminated += _terminate_worker_sessions()
            if round_ % 8 == 0:
                subjects.append(f"storm {round_}")
                _deliver(dovecot, users, subjects[-1])
            _fault_for(0.2, worker, log)
        assert terminated, "the worker held no database session to terminate"

        # 2. the database unreachable
        db_proxy.cut()
        subjects.append("database down")
        _deliver(dovecot, users, subjects[-1])
        _fault_for(8, worker, log)
        db_proxy.restore()

        # 3. Redis unreachable for longer than a lease lasts
        redis_proxy.cut()
        subjects.append("redis down")
        _deliver(dovecot, users, subjects[-1])
        _fault_for(TTL + 4, worker, log)
        redis_proxy.restore()

        subjects.append("after the storm")
        _deliver(dovecot, users, subjects[-1])
        for account in accounts:
            wait_for(lambda account=account: len(events_of(account, "messageNew"))
                     >= len(subjects), timeout=60)
        wait_for(all_connected, timeout=30)
        assert worker.poll() is None, _died(worker, log)
        for account in accounts:
            got = sorted(e.data["subject"] for e in events_of(account, "messageNew"))
            assert got == sorted(subjects), account.account_id
        assert [_logins(dovecot, user) for user in users] == [1, 1, 1], \
            f"a mailbox was logged out and in again; the worker said:\n{_tail(log)}"


def test_a_database_silent_for_good_costs_the_worker_only_its_deadline(
        alice, dovecot, settings, tmp_path):
    users, accounts = _mailboxes(alice, dovecot, 2)
    redis_port = urlsplit(settings.REDIS_URL).port or 6379
    with _db_proxy() as db_proxy, open(tmp_path / "worker.log", "wb") as log, \
            _running_worker(settings, db_proxy.port, redis_port, log,
                            EMAILAPI_DB_WORKER_QUERY_TIMEOUT="2") as worker:
        def announced(count: int) -> bool:
            assert worker.poll() is None, _died(worker, log)
            return all(len(events_of(a, "messageNew")) >= count for a in accounts)

        wait_for(lambda: _all_connected(worker, log, accounts), timeout=60)
        _deliver(dovecot, users, "before")
        wait_for(lambda: announced(1), timeout=60)

        db_proxy.strand()
        _deliver(dovecot, users, "after the failover")
        # Without a deadline the worker's threads would wait on their stranded connections
        # for as long as the kernel keeps them (~15 minutes).
        wait_for(lambda: announced(2), timeout=90)
        assert db_proxy.held_bytes > 0, "the worker sent nothing on a stranded connection"
        for account in accounts:
            got = sorted(e.data["subject"] for e in events_of(account, "messageNew"))
            assert got == ["after the failover", "before"], account.account_id
        wait_for(lambda: _all_connected(worker, log, accounts), timeout=30)
        assert [_logins(dovecot, user) for user in users] == [1, 1], \
            f"a mailbox was logged out and in again; the worker said:\n{_tail(log)}"
