"""The web server's database faults as tests stage them: a database URL for a web server
started by the test (through a proxy, or named by ``application_name``), a plain HTTP GET
that times itself, a session cookie that makes a request ask the database, and a row lock
that holds a request's pooled connection (``TokenLock``), and how many sessions a web server
named by ``application_name`` holds (``sessions``)."""

from __future__ import annotations

import http.client
import time
from urllib.parse import urlencode

import psycopg
from django.db import connection

from accounts.models import ApiToken

SESSION_COOKIE = "sessionid=" + "a1b2c3d4" * 4  # looks valid, so loading it asks the database


def database_url(port: int | None = None, **options: str) -> str:
    db = connection.settings_dict
    return (f"postgres://{db['USER']}@{db['HOST']}:{port or db['PORT']}/{db['NAME']}"
            f"?{urlencode(options)}")


def get(port: int, path: str, token: str | None = None, cookie: str | None = None,
         timeout: float = 60) -> tuple[int, dict, bytes, float]:
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if cookie:
        headers["Cookie"] = cookie
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    started = time.monotonic()
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        return response.status, dict(response.getheaders()), body, time.monotonic() - started
    finally:
        conn.close()


def sessions(application_name: str, waiting_on_lock: bool = False) -> int:
    query = ("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
             "AND application_name = %s")
    if waiting_on_lock:
        query += " AND wait_event_type = 'Lock'"
    with connection.cursor() as cursor:
        cursor.execute(query, [application_name])
        return cursor.fetchone()[0]


class TokenLock:
    """Our transaction holding the row lock of ``token``, with its ``last_used_at`` cleared so
    that the next requests with it write it (and wait for us)."""

    def __init__(self, token: ApiToken):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=None)
        db = connection.settings_dict
        self.conn = psycopg.connect(dbname=db["NAME"], user=db["USER"], host=db["HOST"],
                                    port=db["PORT"] or 5432, application_name="test-lock")
        self.conn.execute("SELECT 1 FROM accounts_apitoken WHERE id = %s FOR UPDATE",
                          [token.pk])

    def release(self) -> None:
        self.conn.rollback()
        self.conn.close()
