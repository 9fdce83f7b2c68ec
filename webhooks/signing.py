"""Webhook signatures, one per subscription format.

``emailapi``: ``X-EmailAPI-Signature: sha256=<hex HMAC-SHA256 of "timestamp.body">``.

The timestamp is signed together with the body so a receiver can refuse replays of an old
request (compare ``X-EmailAPI-Timestamp`` with its clock) without trusting an unsigned header.
``emailengine``: EmailEngine's ``X-EE-Wh-Signature`` (the body alone). ``standard``: the
Standard Webhooks spec (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``).
Pure functions: receivers' verification code can be checked against ``verify`` in tests.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def verify(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    """What a receiver does: recompute and compare in constant time."""
    return hmac.compare_digest(signature(secret, timestamp, body), header)


def engine_signature(secret: str, body: bytes) -> str:
    """EmailEngine's ``X-EE-Wh-Signature``: base64url (unpadded) HMAC-SHA256 of the body, keyed
    with the secret's text."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def standard_key(secret: str) -> bytes:
    """The Standard Webhooks key of a ``whsec_<base64>`` secret: the base64-decoded bytes. (A
    secret that is not valid base64, made before such secrets were, keys with its text.)"""
    encoded = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return secret.encode()


def standard_signature(secret: str, message_id: str, timestamp: str, body: bytes) -> str:
    """Standard Webhooks' ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of
    "id.timestamp.body">``."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(standard_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()
