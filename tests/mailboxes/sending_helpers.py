"""Helpers for the sending tests: an account on Dovecot + the recording SMTP server, synced so
its Sent folder is in the index; a raw message; entries queued straight into the outbox;
real database faults (sessions of the test database ended by PostgreSQL) at chosen points."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable

import psycopg
from django.db import connection
from rq import SimpleWorker

from mailboxes import outbox, sending
from mailboxes.models import OutboxEntry
from mailboxes.sync.account import sync_account
from tests.mailboxes.helpers import open_session, register
from tests.servers import seed


def sending_account(tenant, user, smtp_server, account_id: str = "box", verify_tls: bool = False,
                    **extra):
    """``verify_tls``: the account checks both servers' certificates (which verify only with
    the ``trusted_certificates`` fixture)."""
    smtp = smtp_server.smtp_settings(user.username, user.password)
    smtp["tls"] = {"rejectUnauthorized": verify_tls}
    account = register(tenant, user, account_id, verify_tls, smtp=smtp,
                       email=f"{user.username}@example.test", **extra)
    sync(account)
    return account


def sync(account) -> None:
    session = open_session(account)
    try:
        sync_account(session, account)
    finally:
        session.client.logout()


def raw_message(subject: str = "Hello from the outbox", **kwargs) -> bytes:
    kwargs.setdefault("to", "Bob <bob@example.test>")
    kwargs.setdefault("from_", "Me <me@example.test>")
    return seed.make_message(subject=subject, **kwargs)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def queue(account, raw: bytes | None = None, **kwargs) -> OutboxEntry:
    """An entry as submit stores it (no job enqueued: tests call ``send_entry`` themselves)."""
    raw = raw or raw_message()
    kwargs.setdefault("envelope", {"from": "me@example.test", "to": ["bob@example.test"]})
    kwargs.setdefault("message_id", "<outbox-test@example.test>")
    kwargs.setdefault("subject", "Hello from the outbox")
    return outbox.submit(account, raw=raw, **kwargs)


def work_send_queue() -> None:
    """Run the ``send`` rq queue for real, in this process, until it is empty."""
    queue_ = sending._queue()
    SimpleWorker([queue_], connection=queue_.connection).work(burst=True)


# --- database faults ----------------------------------------------------------------------


def backend_pid(django_connection) -> int:
    """The PostgreSQL backend serving a Django connection (``connections["default"]`` of the
    thread that uses it) right now."""
    return django_connection.connection.info.backend_pid


class SessionKiller:
    """Ends sessions of the test database with ``pg_terminate_backend``, as an operator or a
    failover would: the next statement on such a session fails for real (no mock). It uses a
    connection of its own and only ever touches this test database's sessions."""

    def __init__(self):
        settings = connection.settings_dict
        self.database = settings["NAME"]
        self._conn = psycopg.connect(
            host=settings["HOST"] or None, port=settings["PORT"] or None,
            user=settings["USER"] or None, password=settings["PASSWORD"] or None,
            dbname=self.database, autocommit=True)
        self._lock = threading.Lock()
        self.killed: list[int] = []

    def kill(self, pid: int) -> None:
        """End session *pid* and wait (up to 10 s) until it is gone."""
        with self._lock:
            self._conn.execute(
                "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
                "WHERE pid = %s AND datname = %s", [pid, self.database])
            self.killed.append(pid)

    def close(self) -> None:
        self._conn.close()


class KillBeforeQueries:
    """A Django execute wrapper (``connection.execute_wrapper(...)``): once ``armed`` is set,
    counts the statements the connection runs and ends its session just before each one
    ``chosen(number, sql)`` picks, so that statement meets a dead connection."""

    def __init__(self, killer: SessionKiller, chosen: Callable[[int, str], bool]):
        self.killer = killer
        self.chosen = chosen
        self.armed = threading.Event()
        self.count = 0
        self.kills = 0

    def __call__(self, execute, sql, params, many, context):
        if self.armed.is_set():
            number, self.count = self.count, self.count + 1
            if self.chosen(number, sql):
                self.kills += 1
                self.killer.kill(backend_pid(context["connection"]))
        return execute(sql, params, many, context)
