"""The database connection pool as a web process sees it: a short wait, and the words for why
a request could not be served.

Every PostgreSQL connection of a process comes from one psycopg pool (``emailapi.env``). A web
request that finds no free connection must not hang for the pool's long default and then
fail with a 500: it waits ``EMAILAPI_DB_POOL_WAIT`` seconds (``use_web_wait``, called by the web
entry point ``emailapi.asgi``) and answers ``503 ServiceUnavailable`` with ``Retry-After``.
Background workers keep the long wait: no client is waiting for them, and a worker thread
failing instead of waiting a little would only retry later.

Two faults look alike from inside a request (no connection came): the pool is exhausted (every
connection is held, perhaps leaked) or the database cannot be reached (the pool cannot open
one). They call for different remedies (restart this process, or fix the database), so
``/health`` and the watchdog (``emailapi.watchdog``) tell them apart with the pool's own
statistics and, when in doubt, one direct short connection attempt that bypasses the pool.
"""

from __future__ import annotations

import psycopg
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connections
from psycopg_pool import PoolTimeout

from emailapi.lib import pgcheck, pgdeadline

EXHAUSTED = "pool exhausted"
UNREACHABLE = "unreachable"
TOO_SLOW = "too slow"  # a statement ran past its limit, or the server did not answer at all
CONNECT_TIMEOUT = 2  # seconds for a direct connection attempt (libpq's minimum is 2)
STORE_WAIT = 5  # seconds a long-running command's thread waits for a pooled connection


def pool(alias: str = "default"):
    """The process's psycopg pool of ``alias``, opened; None without one (SQLite)."""
    connection = connections[alias]
    if connection.vendor != "postgresql":
        return None
    shared = connection.pool
    if shared is not None:
        shared.open()  # idempotent; Django opens it on the first connection otherwise
    return shared


def use_web_wait() -> None:
    """Make requests of this process wait at most ``DB_POOL_WAIT`` seconds for a connection,
    and ``DB_QUERY_TIMEOUT`` for a statement (``emailapi.lib.pgdeadline``)."""
    set_wait(settings.DB_POOL_WAIT)
    bound_statements(settings.DB_QUERY_TIMEOUT)


def use_worker_waits() -> None:
    """A long-running worker's waits: ``STORE_WAIT`` for a connection (``set_wait``) and
    ``DB_WORKER_QUERY_TIMEOUT`` for a statement."""
    set_wait(STORE_WAIT)
    bound_statements(settings.DB_WORKER_QUERY_TIMEOUT)


def bound_statements(seconds: float) -> None:
    """Have the server cancel this process's statements after ``seconds`` and the process
    give up a server silent ``pgdeadline.GRACE`` seconds longer (``emailapi.lib.pgdeadline``;
    0: no bound). The server's part is a startup option (``add_startup_option``): call this at
    start-up."""
    pgdeadline.set_limit(seconds)
    if seconds:
        add_startup_option(pgdeadline.startup_option(seconds))


def add_startup_option(option: str) -> None:
    """Add ``option`` (``-c name=value``) to libpq's ``options`` of the connections this
    process opens from now on: on the pool options, for a pool not created yet, and on an
    existing pool's."""
    for options, existing in _pools():
        options["options"] = f"{options.get('options', '')} {option}".strip()
        if existing is not None:
            existing.kwargs["options"] = f"{existing.kwargs.get('options', '')} {option}".strip()


def set_wait(seconds: float) -> None:
    """Make this process wait at most ``seconds`` for a pooled connection: on the pool options,
    for a pool not created yet, and on an existing pool. Long-running commands use a few
    seconds too (``STORE_WAIT``): a thread that gets no connection treats the database as down
    and backs off rather than blocking for the pool's full default."""
    for options, existing in _pools():
        options["pool"]["timeout"] = seconds  # the dict every thread's wrapper shares
        if existing is not None:
            existing.timeout = seconds


def _pools():
    """Each pooled database's connection options (the dict every thread's wrapper shares)
    and its pool if one was created already (None before)."""
    for alias in connections:
        wrapper = connections[alias]
        options = wrapper.settings_dict.get("OPTIONS", {})
        if isinstance(options.get("pool"), dict):  # PostgreSQL; SQLite has no pool
            yield options, getattr(type(wrapper), "_connection_pools", {}).get(alias)


def stats(shared) -> dict:
    """Size, idle and busy connections, and requests waiting for one."""
    measures = shared.get_stats()
    size, idle = measures.get("pool_size", 0), measures.get("pool_available", 0)
    return {"max": measures.get("pool_max", 0), "size": size, "idle": idle,
            "busy": max(0, size - idle), "waiting": measures.get("requests_waiting", 0)}


def reachable(shared) -> bool:
    """Whether the database accepts a new connection right now, bypassing the pool."""
    kwargs = {**shared.kwargs, "connect_timeout": CONNECT_TIMEOUT}
    try:
        with psycopg.Connection.connect(shared.conninfo, **kwargs) as direct:
            direct.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def probe(wait: float) -> dict:
    """``{"ok": True, "pool": ...}`` when a connection answers within ``wait`` seconds;
    otherwise ``{"ok": False, "error": "pool exhausted" | "unreachable", ...}``."""
    shared = pool()
    if shared is None:
        return _probe_without_pool()
    before = stats(shared)  # taken first: our own connection is not "busy" in it
    try:
        conn = shared.getconn(timeout=wait)
    except PoolTimeout:
        error = EXHAUSTED if reachable(shared) else UNREACHABLE
        return {"ok": False, "error": error, "pool": before}
    except psycopg.Error:
        return {"ok": False, "error": UNREACHABLE, "pool": before}
    try:
        # Not a statement's patience: any server that is there answers at once.
        with pgdeadline.answer_within(pgcheck.CHECK_WAIT):
            conn.execute("SELECT 1")
    except psycopg.Error:
        return {"ok": False, "error": UNREACHABLE, "pool": before}
    finally:
        shared.putconn(conn)
    return {"ok": True, "pool": before}


def _probe_without_pool() -> dict:
    connection = connections["default"]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return {"ok": True}
    except DatabaseError:
        return {"ok": False, "error": UNREACHABLE}


def unavailable_reason(exc: BaseException) -> str | None:
    """``EXHAUSTED``, ``UNREACHABLE`` or ``TOO_SLOW`` when ``exc`` means the database could
    not serve this request (no connection in time, connection lost or refused, no answer
    within the statement limit of ``emailapi.lib.pgdeadline``); None for any other error (a
    bug, a constraint), which stays a 500.

    Django wraps driver errors (``django.db.utils.OperationalError`` from
    ``psycopg.OperationalError``, ``PoolTimeout`` included) and keeps the original as the
    cause; SQLite's "database is locked" is an ``OperationalError`` too, and as transient."""
    if not isinstance(exc, (OperationalError, InterfaceError, psycopg.OperationalError,
                            psycopg.InterfaceError)):
        return None
    if any(isinstance(e, (pgdeadline.DatabaseSilent, psycopg.errors.QueryCanceled))
           for e in (exc, exc.__cause__)):
        return TOO_SLOW
    if isinstance(exc, PoolTimeout) or isinstance(exc.__cause__, PoolTimeout):
        shared = pool()
        if shared is not None:
            current = stats(shared)
            if current["size"] >= current["max"] and current["idle"] == 0:
                return EXHAUSTED
    return UNREACHABLE
