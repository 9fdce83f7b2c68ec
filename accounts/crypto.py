"""Authenticated encryption of stored secrets (mailbox passwords, OAuth2 tokens).

A secret is sealed with AES-256-GCM under a key derived (HKDF-SHA256) from ``EMAILAPI_SECRET``.
The *context* (e.g. ``"tenant:7/account:sales/imap.pass"``) is bound in as associated data, so a
ciphertext copied onto another tenant's row, or from the SMTP slot into the IMAP slot, fails to
open instead of decrypting. The database alone therefore never reveals a credential.

Stored form: ``v1.<key id>.<base64url(nonce || ciphertext+tag)>``. The key id lets a later
key rotation tell which secret sealed a value; ``open_secret`` tries every key it is given.
"""

from __future__ import annotations

import base64
import hashlib
import os
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = "v1"
NONCE_BYTES = 12


class DecryptionError(Exception):
    """The value was not sealed by any known key for this context (or was tampered with)."""


@lru_cache(maxsize=8)
def derive_key(master_secret: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"emailapi", info=b"credential encryption v1"
    ).derive(master_secret.encode())


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"key id\0" + key).hexdigest()[:8]


def seal(plaintext: str, context: str, master_secret: str) -> str:
    key = derive_key(master_secret)
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), context.encode())
    blob = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
    return f"{VERSION}.{key_id(key)}.{blob}"


def open_secret(stored: str, context: str, master_secrets: list[str]) -> str:
    try:
        version, kid, blob = stored.split(".", 2)
    except ValueError:
        raise DecryptionError("not a sealed value") from None
    if version != VERSION:
        raise DecryptionError(f"unknown format {version!r}")
    raw = base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4))
    nonce, sealed = raw[:NONCE_BYTES], raw[NONCE_BYTES:]
    for master in master_secrets:
        key = derive_key(master)
        if key_id(key) != kid:
            continue
        try:
            return AESGCM(key).decrypt(nonce, sealed, context.encode()).decode()
        except InvalidTag:
            raise DecryptionError("ciphertext does not match its context or was altered") from None
    raise DecryptionError("sealed with a key that is not configured")
