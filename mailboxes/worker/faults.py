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
