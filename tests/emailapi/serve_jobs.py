"""Jobs the ``serve`` tests enqueue for its rq worker (importable there: it runs from the
project root)."""

from __future__ import annotations

import time

import redis


def sleep_marked(redis_url: str, key: str, seconds: float) -> None:
    """Say the job's body is running (``key`` in Redis), then work for ``seconds``."""
    redis.Redis.from_url(redis_url).set(key, "1", ex=600)
    time.sleep(seconds)
