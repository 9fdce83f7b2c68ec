"""API tokens: generation, hashing and scopes (pure functions, no database).

A token is ``eapi_`` followed by 43 URL-safe characters (256 random bits). The prefix lets secret
scanners and humans recognise one. Only the SHA-256 of the whole token is stored: with 256 bits
of entropy a fast hash is enough (nothing to brute-force), it needs no key that could be lost or
rotated, and lookups stay a single indexed equality. The first 12 characters are kept in clear
so an operator can tell tokens apart in a list.
"""

from __future__ import annotations

import hashlib
import secrets

PREFIX = "eapi_"
DISPLAY_CHARS = 12

SCOPE_API = "api"
SCOPE_READ = "read"
SCOPE_METRICS = "metrics"
SCOPES = (SCOPE_API, SCOPE_READ, SCOPE_METRICS)


def generate() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def display_prefix(token: str) -> str:
    return token[:DISPLAY_CHARS]


def looks_like_token(value: str) -> bool:
    """Cheap shape check so garbage never costs a database query."""
    return value.startswith(PREFIX) and 20 <= len(value) <= 128 and value.isascii()


def parse_scopes(value: str | list[str]) -> list[str]:
    """Normalise ``"api,read"`` or ``["api"]`` to a sorted list; raise ValueError on unknown."""
    items = value.split(",") if isinstance(value, str) else list(value)
    scopes = sorted({item.strip() for item in items if item.strip()})
    unknown = [scope for scope in scopes if scope not in SCOPES]
    if unknown:
        raise ValueError(f"unknown scope(s): {', '.join(unknown)}; use {', '.join(SCOPES)}")
    if not scopes:
        raise ValueError("at least one scope is required")
    return scopes


def allows(scopes: list[str], *, write: bool, metrics: bool = False) -> bool:
    """Whether a token with ``scopes`` may make a request.

    ``api`` may do everything; ``read`` may only read (never write); ``metrics`` may only read
    metrics routes.
    """
    if SCOPE_API in scopes:
        return True
    if write:
        return False
    if metrics:
        return SCOPE_METRICS in scopes or SCOPE_READ in scopes
    return SCOPE_READ in scopes
