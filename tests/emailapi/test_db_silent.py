"""A database that keeps its connections open and says nothing, seen through the real web
server (daphne on the test database, through a loopback proxy that holds or strands its
bytes): each request answers 503 within the statement limit and its grace, never hangs with
its pooled connection; a statement stuck on a lock is cancelled by the server within the
limit, with nothing of it written; and a server that failed over behind the same address (the
old connections left silent for good) costs requests only until their deadline.

The limit is ``EMAILAPI_DB_QUERY_TIMEOUT`` (2 s here), the grace ``pgdeadline.GRACE``.
"""

from __future__ import annotations

import json
import threading

import pytest
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

from accounts.models import ApiToken
from emailapi.lib import pgdeadline
from tests.base import wait_for
from tests.emailapi.db_faults import SESSION_COOKIE, TokenLock, database_url, get
from tests.servers.tcp_proxy import TcpProxy
from tests.webhooks.stream_clients import Daphne

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = 2
# The limit and the grace, and room for a busy machine; a request that hung would take the
# client's whole timeout (60 s).
ANSWERED_WITHIN = LIMIT + pgdeadline.GRACE + 15
OPERATOR_TOKEN = "operator-scrape-token-silent-db-0123"
TOO_SLOW = {"statusCode": 503, "error": "Service Unavailable",
            "message": "The database did not answer in time. Retry shortly",
            "code": "ServiceUnavailable", "emailapiCode": "ServiceUnavailable"}


@pytest.fixture
def proxied_web(settings):
    proxy = TcpProxy(int(connection.settings_dict["PORT"] or 5432)).start()
    web = Daphne(settings, DATABASE_URL=database_url(port=proxy.port),
                 EMAILAPI_DB_QUERY_TIMEOUT=str(LIMIT), EMAILAPI_DB_POOL_WAIT="2",
                 EMAILAPI_METRICS_TOKEN=OPERATOR_TOKEN)
    try:
        yield proxy, web
    finally:
        proxy.release()
        web.stop()
        proxy.stop()


def _given_up(web) -> float:
    status, _, body, _ = get(web.port, "/metrics", OPERATOR_TOKEN)
    assert status == 200, body
    return sum(sample.value for family in text_string_to_metric_families(body.decode())
               for sample in family.samples
               if sample.name == "emailapi_db_answers_given_up_total")


def _backends(application_name: str) -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                       "AND application_name = %s", [application_name])
        return {row[0] for row in cursor.fetchall()}


def test_a_silent_database_is_503_within_the_limit_and_its_grace(alice, proxied_web):
    proxy, web = proxied_web
    assert get(web.port, "/v1/accounts", alice.token)[0] == 200
    proxy.hold()

    results: list = []
    threads = [threading.Thread(target=lambda: results.append(
        get(web.port, "/v1/accounts", alice.token))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(results) == 4
    for status, headers, body, took in results:
        assert status == 503, body
        assert took < ANSWERED_WITHIN, f"answered after {took:.1f} s"
        assert headers["Retry-After"]
        assert b"Traceback" not in body
    # The request that took the pooled connection waited for the database itself; the others
    # found no connection free. Each says which.
    messages = sorted(json.loads(result[2])["message"] for result in results)
    assert TOO_SLOW["message"] in messages, messages
    assert proxy.held_bytes > 0  # the request did reach the proxy, and went no further

    status, _, body, took = get(web.port, "/health")
    assert status == 503
    assert took < ANSWERED_WITHIN
    assert json.loads(body)["database"]["ok"] is False

    status, _, body, _ = get(web.port, "/dashboard", cookie=SESSION_COOKIE)
    assert status == 503
    assert b"Temporarily unavailable" in body

    proxy.release()
    # The silent connection was closed, not handed to the next request.
    wait_for(lambda: get(web.port, "/v1/accounts", alice.token)[0] == 200, timeout=60,
             interval=0.5)
    assert get(web.port, "/health")[0] == 200
    # Operators see it: each wait given up is counted.
    assert _given_up(web) >= 1


def test_a_statement_waiting_on_a_lock_is_cancelled_by_the_server(alice, settings):
    """The token's ``last_used_at`` write waits on our row lock: the server cancels it at the
    limit (the client's deadline, later, is not what ends it: the same backend serves the
    next request), and the write does not happen."""
    name = "emailapi-silent-lock"
    web = Daphne(settings, DATABASE_URL=database_url(application_name=name),
                 EMAILAPI_DB_QUERY_TIMEOUT=str(LIMIT), EMAILAPI_DB_POOL_SIZE="1",
                 EMAILAPI_METRICS_TOKEN=OPERATOR_TOKEN)
    try:
        assert get(web.port, "/health")[0] == 200
        before = _backends(name)
        assert len(before) == 1
        token = ApiToken.objects.get(tenant=alice.tenant)
        lock = TokenLock(token)
        try:
            status, _, body, took = get(web.port, "/v1/accounts", alice.token)
        finally:
            lock.release()
        assert status == 503, body
        assert json.loads(body) == TOO_SLOW
        assert took < ANSWERED_WITHIN, f"answered after {took:.1f} s"
        assert ApiToken.objects.get(pk=token.pk).last_used_at is None

        assert get(web.port, "/v1/accounts", alice.token)[0] == 200
        assert _backends(name) == before
        assert _given_up(web) == 0  # the server's cancellation: nothing given up
        assert ApiToken.objects.get(pk=token.pk).last_used_at is not None
    finally:
        web.stop()


def test_connections_left_silent_for_good_cost_requests_only_until_their_deadline(
        alice, proxied_web):
    """A failover behind the same address: the pooled connections never hear from their
    server again, new ones reach the new one. Requests answer, never hang, and the process
    is serving again without anything being restored."""
    proxy, web = proxied_web
    assert get(web.port, "/v1/accounts", alice.token)[0] == 200
    proxy.strand()

    answers: list = []

    def serving() -> bool:
        status, _, body, took = get(web.port, "/v1/accounts", alice.token)
        answers.append((status, took))
        assert status in (200, 503), body
        return status == 200

    wait_for(serving, timeout=90, interval=0.2)
    assert max(took for _, took in answers) < ANSWERED_WITHIN, answers
    assert proxy.held_bytes > 0, "no request was sent on a stranded connection"
    assert _given_up(web) >= 1
