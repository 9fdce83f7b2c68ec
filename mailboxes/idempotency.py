"""``Idempotency-Key`` on the two submit routes, as EmailEngine has it: the first request with a
key is processed and its answer kept for 24 hours; a repeat within that window gets the kept
answer (``idempotency.status: "HIT"``) and sends nothing. A repeat while the first is still
being processed is refused (409 ``IdempotencyKeyInUse``) rather than sent twice.

Kept in Redis (coordination, not the source of truth: the outbox entry is in PostgreSQL). A
key is scoped to the tenant and the account. Redis unreachable when the request starts is a
503 before anything is queued (the API's error handler), never a send without the guard the
caller asked for.
"""

from __future__ import annotations

import hashlib
import json
import logging

import redis

from emailapi.lib.redis import get_redis
from mailboxes.errors import IdempotencyKeyInUse

logger = logging.getLogger(__name__)

WINDOW = 24 * 3600   # how long an answer is kept, as EmailEngine's day buckets
PENDING_TTL = 300    # a request that died between begin and finish frees its key after this
PENDING = b"pending"
MAX_KEY = 1024


def clean_key(value: str | None) -> str | None:
    """The header's key as EmailEngine reads it: surrounding quotes and spaces dropped; an
    empty one is no key."""
    if value is None:
        return None
    value = value.strip().strip('"').strip()
    return value or None


def _name(tenant_id: int, account_id: str, key: str) -> str:
    digest = hashlib.sha256(f"{account_id}\0{key}".encode()).hexdigest()
    return f"emailapi:idempotency:{tenant_id}:{digest}"


def begin(tenant_id: int, account_id: str, key: str) -> dict | None:
    """None: this request owns the key and goes on (a MISS). A dict: the kept answer of an
    earlier request with the key (a HIT)."""
    client = get_redis()
    name = _name(tenant_id, account_id, key)
    if client.set(name, PENDING, nx=True, ex=PENDING_TTL):
        return None
    kept = client.get(name)
    if kept is None:  # expired between the two calls: try once more
        if client.set(name, PENDING, nx=True, ex=PENDING_TTL):
            return None
        kept = client.get(name)
    if kept is None or kept == PENDING:
        raise IdempotencyKeyInUse(key)
    return json.loads(kept)


def finish(tenant_id: int, account_id: str, key: str, answer: dict) -> None:
    """Keep the answer for the rest of the window. The message is queued by now, so Redis
    failing here does not fail the request (its answer is true): it is logged, and the key
    stays pending until ``PENDING_TTL`` lapses."""
    try:
        get_redis().set(_name(tenant_id, account_id, key), json.dumps(answer), ex=WINDOW)
    except redis.RedisError as exc:
        logger.warning("idempotency: the answer for queue entry %s was not kept: %s",
                       answer.get("queueId"), type(exc).__name__)


def abandon(tenant_id: int, account_id: str, key: str) -> None:
    """The request failed before anything was queued: the key is free again."""
    get_redis().delete(_name(tenant_id, account_id, key))
