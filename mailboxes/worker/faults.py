"""Faults of the stores a worker depends on (PostgreSQL, Redis), told apart from faults of
the mail server.

A database that is restarting, a storm of terminated sessions, a full connection pool or a
Redis outage says nothing about an IMAP session: the worker keeps the session idling, waits
(``connection.store_backoff()``) and runs the interrupted sync again. Logging out every
account because the database blinked would cost every mailbox a reconnect and its server a
login storm.
"""

from __future__ import annotations

import psycopg
import redis
from django.db import InterfaceError, OperationalError

# Outages only: the database gone, restarting, its session terminated, no pooled connection
# in time (``PoolTimeout`` is an ``OperationalError``). Django wraps driver errors raised
# while executing; psycopg's own (an error while connecting or closing) may surface
# unwrapped. An ``IntegrityError`` or a ``ProgrammingError`` is not an outage: waiting would
# only repeat it, so it is a failed step like any other (recorded in words, retried later).
STORE_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError,
    redis.exceptions.RedisError)
