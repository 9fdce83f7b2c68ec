"""A database that cannot serve a request, seen through the real web server (daphne on the
test database): an exhausted pool and an outage are ``503 ServiceUnavailable`` with
``Retry-After`` within the pool wait (never a 20 s hang or a 500), ``/health`` tells the two
apart, and connections the server ended while idle cost no request.

Connections are held by holding a row lock: a request whose token was never used updates the
token's ``last_used_at``, and waits for our lock with its pooled connection. An outage is a
loopback proxy in front of PostgreSQL taken down (the suite's PostgreSQL stays up for
everyone else). Sessions are told apart by ``application_name``; only those of this test's
web server, in this test database, are ever terminated.
"""

from __future__ import annotations

import json
import threading
import uuid

import pytest
from django.db import connection

from accounts.models import ApiToken
from tests.base import wait_for
from tests.emailapi.db_faults import SESSION_COOKIE, TokenLock, database_url, get, sessions
from tests.servers.tcp_proxy import TcpProxy
from tests.webhooks.stream_clients import Daphne

pytestmark = pytest.mark.django_db(transaction=True)



def _in_background(port: int, path: str, token: str, count: int) -> tuple[list, list]:
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(get(port, path, token)))
               for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads, results


def test_an_exhausted_pool_answers_503_within_the_wait(alice, settings):
    name = f"emailapi-test-{uuid.uuid4().hex[:12]}"
    # No statement limit: the held requests wait on our lock for as long as the test takes
    # (test_db_silent.py has the limit).
    web = Daphne(settings, DATABASE_URL=database_url(application_name=name),
                 EMAILAPI_DB_POOL_SIZE="2", EMAILAPI_DB_POOL_WAIT="2",
                 EMAILAPI_DB_QUERY_TIMEOUT="0")
    try:
        lock = TokenLock(ApiToken.objects.get(tenant=alice.tenant))
        try:
            threads, held = _in_background(web.port, "/v1/accounts", alice.token, 2)
            wait_for(lambda: sessions(name, waiting_on_lock=True) == 2, timeout=30)

            # Its first query is the token's (no token cache here): authentication answers
            # 503 too.
            status, headers, body, took = get(web.port, "/v1/accounts", alice.token)
            assert status == 503, body
            assert json.loads(body) == {
                "statusCode": 503, "error": "Service Unavailable",
                "message": "The service is busy: no database connection was free in time. "
                           "Retry shortly",
                "code": "ServiceUnavailable", "emailapiCode": "ServiceUnavailable"}
            assert headers["Retry-After"] == "2"
            assert took < 10, f"answered after {took:.1f} s"  # the 2 s wait, on a busy machine

            status, _, body, _ = get(web.port, "/health")
            database = json.loads(body)["database"]
            assert status == 503
            assert database["ok"] is False
            assert database["error"] == "pool exhausted"
            assert database["pool"]["busy"] == database["pool"]["max"] == 2

            status, headers, body, _ = get(web.port, "/dashboard", cookie=SESSION_COOKIE)
            assert status == 503
            assert b"Temporarily unavailable" in body
            assert headers["Content-Type"].startswith("text/html")
            assert "Retry-After" in headers
        finally:
            lock.release()
        for thread in threads:
            thread.join(timeout=30)
        assert [result[0] for result in held] == [200, 200]
        assert get(web.port, "/v1/accounts", alice.token)[0] == 200
        assert get(web.port, "/health")[0] == 200
    finally:
        web.stop()


def test_a_database_outage_is_503_and_health_says_unreachable(alice, settings):
    proxy = TcpProxy(int(connection.settings_dict["PORT"] or 5432)).start()
    web = Daphne(settings, DATABASE_URL=database_url(port=proxy.port),
                 EMAILAPI_DB_POOL_WAIT="2")
    try:
        assert get(web.port, "/v1/accounts", alice.token)[0] == 200
        proxy.cut()

        status, headers, body, took = get(web.port, "/v1/accounts", alice.token)
        assert status == 503, body
        assert json.loads(body) == {"statusCode": 503, "error": "Service Unavailable",
                                    "message": "The database is not available. Retry shortly",
                                    "code": "ServiceUnavailable",
                                    "emailapiCode": "ServiceUnavailable"}
        assert headers["Retry-After"] == "5"
        assert took < 10, f"answered after {took:.1f} s"

        status, _, body, _ = get(web.port, "/health")
        assert status == 503
        assert json.loads(body)["database"]["error"] == "unreachable"

        status, _, body, _ = get(web.port, "/dashboard", cookie=SESSION_COOKIE)
        assert status == 503
        assert b"Temporarily unavailable" in body
        assert b"OperationalError" not in body
        assert b"Traceback" not in body

        proxy.restore()
        wait_for(lambda: get(web.port, "/v1/accounts", alice.token)[0] == 200, timeout=30,
                 interval=0.5)
        assert get(web.port, "/health")[0] == 200
    finally:
        web.stop()
        proxy.stop()


def test_sessions_ended_by_the_server_cost_no_request(alice, settings):
    """A storm of ``pg_terminate_backend`` on the web server's idle pooled connections: each
    is found dead when taken from the pool and replaced, so no request fails with it."""
    name = f"emailapi-test-{uuid.uuid4().hex[:12]}"
    web = Daphne(settings, DATABASE_URL=database_url(application_name=name),
                 EMAILAPI_DB_POOL_WAIT="10", EMAILAPI_DB_QUERY_TIMEOUT="0")
    try:
        # Three requests held at once make the pool open three connections.
        lock = TokenLock(ApiToken.objects.get(tenant=alice.tenant))
        try:
            threads, held = _in_background(web.port, "/v1/accounts", alice.token, 3)
            wait_for(lambda: sessions(name, waiting_on_lock=True) == 3, timeout=30)
        finally:
            lock.release()
        for thread in threads:
            thread.join(timeout=30)
        assert [result[0] for result in held] == [200, 200, 200]

        with connection.cursor() as cursor:
            cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND application_name = %s",
                           [name])
            assert cursor.fetchone()[0] >= 3
        wait_for(lambda: sessions(name) == 0, timeout=30)

        statuses = [get(web.port, "/v1/accounts", alice.token)[0] for _ in range(10)]
        assert statuses == [200] * 10
    finally:
        web.stop()
