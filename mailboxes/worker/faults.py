"""Faults of the stores a worker depends on (PostgreSQL, Redis), told apart from faults of
the mail server.

A database that is restarting, a storm of terminated sessions, a full connection pool or a
Redis outage says nothing about an IMAP session: the worker keeps the session idling, waits
(``backoff.STORE``) and runs the interrupted sync again. Logging out every account because the
database blinked would cost every mailbox a reconnect and its server a login storm.
"""

from __future__ import annotations

import psycopg
import redis
from django.db import Error as DjangoDatabaseError

# Django wraps driver errors raised while executing; psycopg's own (a pool timeout while
# connecting, an error while closing) may surface unwrapped.
STORE_ERRORS: tuple[type[BaseException], ...] = (
    DjangoDatabaseError, psycopg.Error, redis.exceptions.RedisError)


def bound_pool_wait(settings_dict: dict, seconds: float = 5.0) -> None:
    """For a long-running command, before its first query: a thread waits at most a few
    seconds for a pooled database connection, then treats the database as down (and backs
    off) instead of blocking for the pool's full timeout."""
    pool = (settings_dict.get("OPTIONS") or {}).get("pool")
    if isinstance(pool, dict):
        pool["timeout"] = min(float(pool.get("timeout", seconds)), seconds)
