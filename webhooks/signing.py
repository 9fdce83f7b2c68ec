"""Webhook signatures: ``X-EmailAPI-Signature: sha256=<hex HMAC-SHA256 of "timestamp.body">``.

The timestamp is signed together with the body so a receiver can refuse replays of an old
request (compare ``X-EmailAPI-Timestamp`` with its clock) without trusting an unsigned header.
Pure functions: receivers' verification code can be checked against ``verify`` in tests.
"""

from __future__ import annotations

import hashlib
import hmac


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def verify(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    """What a receiver does: recompute and compare in constant time."""
    return hmac.compare_digest(signature(secret, timestamp, body), header)
