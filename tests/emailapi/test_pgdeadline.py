"""``emailapi.lib.pgdeadline`` on real PostgreSQL connections (no Django pool): the client's
deadline on a server gone silent (a loopback proxy holding its bytes), the server's own limit,
and the patience that maintenance gets. The process limit is set for each test and put back."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.db import connection

from emailapi.lib import pgdeadline
from tests.servers.tcp_proxy import TcpProxy


@pytest.fixture
def limit():
    """Set this process's limit (seconds) for the test; none again afterwards."""
    yield pgdeadline.set_limit
    pgdeadline.set_limit(None)


def _connect(port: int | None = None, seconds: float | None = None) -> psycopg.Connection:
    db = connection.settings_dict
    options = {"options": pgdeadline.startup_option(seconds)} if seconds else {}
    return pgdeadline.DeadlineConnection.connect(
        host=db["HOST"] or "127.0.0.1", port=port or db["PORT"] or 5432, user=db["USER"],
        dbname="postgres", autocommit=True, connect_timeout=10, **options)


def test_a_silent_server_is_given_up_after_the_limit_and_its_grace(limit, monkeypatch):
    monkeypatch.setattr(pgdeadline, "GRACE", 0.5)
    limit(0.5)
    with TcpProxy(int(connection.settings_dict["PORT"] or 5432)) as proxy:
        conn = _connect(proxy.port)
        assert conn.execute("SELECT 1").fetchone() == (1,)
        proxy.hold()
        started = time.monotonic()
        with pytest.raises(pgdeadline.DatabaseSilent, match="did not answer within 1 seconds"):
            conn.execute("SELECT 1")
        assert time.monotonic() - started < 30  # 1 s, on a busy machine
        assert conn.closed  # never used again: the pool discards it
        proxy.release()


def test_answer_within_bounds_a_wait_even_without_a_process_limit():
    with TcpProxy(int(connection.settings_dict["PORT"] or 5432)) as proxy:
        conn = _connect(proxy.port)
        proxy.hold()
        with pgdeadline.answer_within(0.5), pytest.raises(pgdeadline.DatabaseSilent):
            conn.execute("SELECT 1")
        proxy.release()


def test_the_server_cancels_a_statement_at_the_limit_and_the_connection_stays(limit):
    limit(1)
    with _connect(seconds=1) as conn:
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute("SELECT pg_sleep(3)")
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_patience_lets_maintenance_run_past_the_limit_and_then_ends(limit):
    limit(1)
    with _connect(seconds=1) as conn:
        with pgdeadline.patience(conn, 10):
            conn.execute("SELECT pg_sleep(1.5)")  # past the limit, within the patience
        assert conn.execute("SHOW statement_timeout").fetchone() == ("1s",)
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute("SELECT pg_sleep(3)")


def test_patience_changes_nothing_in_a_process_without_a_limit():
    with _connect() as conn:
        before = conn.execute("SHOW statement_timeout").fetchone()
        with pgdeadline.patience(conn, 10):
            assert conn.execute("SHOW statement_timeout").fetchone() == before


def test_an_error_in_patience_is_the_one_raised_and_the_limit_comes_back(limit):
    limit(1)
    with _connect(seconds=1) as conn:
        with pytest.raises(psycopg.errors.DivisionByZero), pgdeadline.patience(conn, 10):
            conn.execute("SELECT 1 / 0")
        assert conn.execute("SHOW statement_timeout").fetchone() == ("1s",)
        assert pgdeadline.deadline() == 1 + pgdeadline.GRACE


def test_a_server_gone_silent_in_patience_is_still_given_up(limit, monkeypatch):
    monkeypatch.setattr(pgdeadline, "GRACE", 0.5)
    limit(0.5)
    with TcpProxy(int(connection.settings_dict["PORT"] or 5432)) as proxy:
        conn = _connect(proxy.port, seconds=0.5)
        with pytest.raises(pgdeadline.DatabaseSilent), pgdeadline.patience(conn, 1):
            proxy.hold()
            conn.execute("SELECT 1")
        assert conn.closed
        assert pgdeadline.deadline() == 1.0  # the process's own again
        proxy.release()
