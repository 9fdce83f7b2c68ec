"""The check a pooled PostgreSQL connection passes before the pool hands it out.

psycopg's ``ConnectionPool.check_connection`` sends an empty query: a round trip to the server
for every request, about as dear as a listing's own query. A connection the server (or a proxy)
ended while it sat in the pool is ended with bytes on its socket (the server's FATAL message,
then end of file), so an idle connection whose socket has nothing to read, and that was seen
alive a moment ago, is alive: ``check`` looks at the socket (one ``poll``, no round trip) and
sends the empty query only when there is something to read there, when the connection has not
been checked for ``FULL_CHECK_AFTER`` seconds, or when libpq already knows it is bad. A dead
connection then fails the check, and the pool replaces it; so does one whose server does not
answer the empty query within ``CHECK_WAIT`` seconds (``emailapi.lib.pgdeadline``), rather than
holding the request that asked for it as long as a statement may take.
"""

from __future__ import annotations

import select
import time
import weakref

from psycopg import pq
from psycopg_pool import ConnectionPool

from emailapi.lib import pgdeadline

FULL_CHECK_AFTER = 10.0  # seconds: a connection idle longer gets the round trip anyway
CHECK_WAIT = 5.0  # seconds for the empty query's answer (any live server answers at once)
_checked: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # connection -> monotonic


def check(conn) -> None:
    """Raise if ``conn`` is unusable (the pool then discards it); cheap when it is fine."""
    now = time.monotonic()
    last = _checked.get(conn)
    if last is None or now - last > FULL_CHECK_AFTER or _suspect(conn):
        with pgdeadline.answer_within(CHECK_WAIT):
            ConnectionPool.check_connection(conn)
    _checked[conn] = now


def _suspect(conn) -> bool:
    """Whether the idle connection shows a sign of trouble without asking the server."""
    pgconn = conn.pgconn
    if conn.closed or pgconn.status != pq.ConnStatus.OK:
        return True
    if pgconn.transaction_status != pq.TransactionStatus.IDLE:
        return True
    poller = select.poll()
    poller.register(pgconn.socket, select.POLLIN | select.POLLPRI | select.POLLERR
                    | select.POLLHUP)
    return bool(poller.poll(0))
