"""How long a process waits for PostgreSQL to answer, so that a database gone silent fails
like a database gone away.

A database that refuses connections or drops them is an outage every process already
handles (a web request answers 503, a worker backs off and tries again). One that keeps its
connections open and says nothing is worse: a server stuck on its disk, a proxy wedged in
front of it, a primary that failed over to a standby behind the same address while the old
connections' packets go nowhere (the kernel gives up on them only after ~15 minutes). psycopg
waits for an answer without end, so a web request waited until the client left, keeping its
pooled connection, and a worker's thread waited with it while new mail piled up.

Two bounds, per process (``set_limit``; none unless a process sets one, so management
commands such as ``migrate`` keep the server's own):

- the server's ``statement_timeout`` is the limit, asked for when each connection starts
  (``startup_option``, in libpq's ``options``; ``emailapi.lib.dbpool`` adds it): a statement
  that runs or waits for a lock that long is cancelled by the server itself, with nothing of
  it kept, and the connection stays usable. A startup option rather than a ``SET`` after
  connecting: behind PgBouncer in transaction mode a ``SET`` would stay on whichever server
  connection ran it, for other clients' statements; PgBouncer passes the option on or, told
  to ignore ``options``, drops it, and the client's deadline still holds;
- a client-side deadline ``GRACE`` seconds later on every wait for an answer
  (``DeadlineConnection.wait``): when even the cancellation does not come the server is not
  answering at all, so the connection is closed (the pool then discards it), the caller
  gets ``DatabaseSilent``, an ``OperationalError`` like a lost connection's, and
  ``emailapi_db_answers_given_up_total`` counts it.

The web's limit (30 s) is far above what its work takes: deleting an account's 1,000,000
messages is one statement of 1-2 s here. A check that the server answers at all gets a few
seconds instead (``answer_within``); maintenance whose time grows with the whole table (the
index's ``VACUUM``) gets longer (``patience``).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager, suppress

import psycopg
from psycopg import errors
from psycopg.connection import _WAIT_INTERVAL  # psycopg's own default, kept

from emailapi.lib import metrics

GRACE = 5.0  # seconds the client waits beyond the server's statement_timeout

_process_limit: float | None = None
_local = threading.local()  # .deadline: a thread's own, within ``answer_within``


class DatabaseSilent(psycopg.OperationalError):
    """The database sent nothing within the deadline; the connection has been closed."""


def set_limit(seconds: float | None) -> None:
    """Bound this process's statements to ``seconds`` (None or 0: no bound). Applies to
    connections the pool opens afterwards, so call it at start-up, before any query."""
    global _process_limit
    _process_limit = seconds or None


def deadline() -> float | None:
    """Seconds the calling thread waits for any one answer before giving the server up."""
    own = getattr(_local, "deadline", None)
    if own is not None:
        return own
    return None if _process_limit is None else _process_limit + GRACE


@contextmanager
def answer_within(seconds: float):
    """Wait at most ``seconds`` for each answer in this block (a check that the server
    answers at all needs no statement's patience)."""
    previous = getattr(_local, "deadline", None)
    _local.deadline = seconds
    try:
        yield
    finally:
        _local.deadline = previous


@contextmanager
def patience(cursor, seconds: float):
    """Let the statements of this block on ``cursor`` (outside a transaction) run up to
    ``seconds``, on the server and in the client; the connection's own limit afterwards. Not
    unbounded: a server gone silent meanwhile is still given up."""
    if _process_limit is None:  # nothing to lengthen
        yield
        return
    cursor.execute(f"SET statement_timeout = {_milliseconds(seconds)}")
    try:
        with answer_within(seconds + GRACE):
            yield
    except BaseException:
        # The block's error is the one to tell; a connection it broke is discarded anyway.
        with suppress(Exception):
            cursor.execute("RESET statement_timeout")
        raise
    cursor.execute("RESET statement_timeout")  # back to the startup option's value


def startup_option(seconds: float) -> str:
    """The libpq ``options`` entry that makes the server cancel statements after ``seconds``."""
    return f"-c statement_timeout={_milliseconds(seconds)}"


def _milliseconds(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class DeadlineConnection(psycopg.Connection):
    """psycopg's connection whose every wait for the server ends within the limit plus
    ``GRACE`` (every statement, commit and row fetch goes through ``wait``)."""

    def wait(self, gen, interval=_WAIT_INTERVAL, timeout=None):
        bound = deadline()
        if timeout is not None or bound is None:  # the caller's own timeout, or no bound
            return super().wait(gen, interval, timeout)
        try:
            return super().wait(gen, interval, bound)
        except errors._WaitTimeout:
            # The server may still be working on the statement, or not be there at all: the
            # connection is in an unknown state and must not be used again.
            self.pgconn.finish()
            metrics.db_answer_given_up()
            raise DatabaseSilent(
                f"the database did not answer within {bound:g} seconds") from None
