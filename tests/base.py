"""Test helpers: tenants with API clients, the account payloads tests register, and the SQL a
piece of work runs."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import connection
from rest_framework.test import APIClient

from accounts import services
from accounts.models import Tenant


@dataclass
class TenantFixture:
    tenant: Tenant
    token: str
    client: APIClient

    def client_with(self, *scopes: str) -> APIClient:
        """A client authenticated with a new token of this tenant with only ``scopes``."""
        _, raw = services.issue_token(self.tenant, "-".join(scopes), list(scopes))
        return api_client(raw)


@dataclass
class OutsiderFixture(TenantFixture):
    """A tenant with a mailbox of its own (the ``outsider`` fixture)."""

    account: object  # accounts.models.EmailAccount, id "box"
    mail_user: object  # its Dovecot user


def api_client(token: str | None = None) -> APIClient:
    client = APIClient()
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def make_tenant(name: str, scopes: tuple[str, ...] = ("api",)) -> TenantFixture:
    tenant = services.create_tenant(name)
    _, raw = services.issue_token(tenant, "test", list(scopes))
    return TenantFixture(tenant=tenant, token=raw, client=api_client(raw))


def account_payload(account: str = "sales", **overrides) -> dict:
    """A valid ``POST /v1/account`` body (servers need not exist: registration does not connect)."""
    body = {
        "account": account,
        "name": "Sales",
        "email": "sales@example.com",
        "imap": {"host": "imap.example.com", "port": 993, "secure": True,
                 "auth": {"user": "sales@example.com", "pass": "imap-Secret-123"}},
        "smtp": {"host": "smtp.example.com", "port": 465, "secure": True,
                 "auth": {"user": "sales@example.com", "pass": "smtp-Secret-456"}},
    }
    body.update(overrides)
    return body


# The run is on SQLite (``EMAILAPI_TEST_DATABASE=sqlite``, see tests/settings.py).
ON_SQLITE = os.environ.get("EMAILAPI_TEST_DATABASE", "").lower() == "sqlite"


# The machines the suite runs on are shared and often busy (a load average of 14 on two
# cores has been seen): a wait's ``timeout`` is what it should take on an idle machine, and
# it is stretched by this factor. A condition met early still returns at once.
TIMEOUT_FACTOR = float(os.environ.get("EMAILAPI_TEST_TIMEOUT_FACTOR", "3"))


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.05):
    """Poll ``predicate`` until it returns something truthy (returned), or fail the test
    after ``timeout`` seconds times ``TIMEOUT_FACTOR``."""
    deadline = time.monotonic() + timeout * TIMEOUT_FACTOR
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {getattr(predicate, '__name__', predicate)}")


def stop_process(process: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL if it has not exited after ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def statements_naming(text: str) -> Iterator[list[str]]:
    """The SQL statements this thread's database connection runs meanwhile that name ``text``
    (a table, a column): a list that fills as they run, for tests of what a path asks."""
    seen: list[str] = []

    def wrapper(execute, sql, params, many, context):
        if text in sql:
            seen.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield seen


def side_connection(application_name: str):
    """A PostgreSQL session of its own on the test database, beside Django's: it holds a row or
    table lock while a test's real requests queue on it, so that a race is certain rather than
    likely. The caller rolls it back and closes it."""
    import psycopg

    db = connection.settings_dict
    return psycopg.connect(dbname=db["NAME"], user=db["USER"], password=db.get("PASSWORD") or None,
                           host=db["HOST"], port=db["PORT"] or 5432,
                           application_name=application_name)


def sessions_waiting_on_a_lock() -> int:
    """Other sessions of the test database now waiting for a lock (requests queued behind a
    ``side_connection``'s)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")
        return cursor.fetchone()[0]


def queued_behind(lock, calls: list) -> list:
    """What each of ``calls`` returns, each run in a thread of its own (closing its own
    database connection) while ``lock`` (a ``side_connection`` holding a lock) is held: each
    started once the ones before it wait on the lock, so they reach it in order; then the lock
    is let go (rolled back, closed) and the threads finish. A race made certain."""
    import threading

    results: list = [None] * len(calls)

    def run(number: int, call) -> None:
        try:
            results[number] = call()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(number, call))
               for number, call in enumerate(calls)]
    try:
        for waiting, thread in enumerate(threads, start=1):
            thread.start()
            wait_for(lambda waiting=waiting: sessions_waiting_on_a_lock() >= waiting, timeout=10)
    finally:
        lock.rollback()
        lock.close()
        for thread in threads:
            thread.join(timeout=60)
    return results
