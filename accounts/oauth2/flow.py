"""The OAuth2 authorization-code flow with PKCE, and the refresh grant (RFC 6749, RFC 7636).

Written out for the ``generic`` provider, which social-auth has no backend for. Gmail,
Outlook and Yahoo sign-ins go through social-auth's backends (``social.py``), which reuse the
pieces here: PKCE, the token URL guard, and the token answer read into ``Tokens``.

Two back-channel requests to the provider's token endpoint, both form posts with the client
credentials in the body (``client_secret_post``, which Google, Microsoft and Yahoo accept):

    authorize (browser) ──code──► exchange_code ──► Tokens(access, refresh, expires, email)
    Tokens.refresh ──────────────► refresh_tokens ──► Tokens (or InvalidGrant: reauthorize)

Errors never carry a token, a code or the client secret: only the provider's ``error`` code
and description, which are safe to store and show.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode, urlsplit

TIMEOUT = 15.0
MAX_RESPONSE = 256 * 1024


class OAuth2Error(Exception):
    """The provider refused or could not be reached; ``code`` is its OAuth2 error code."""

    def __init__(self, message: str, code: str = "OAuth2Error"):
        super().__init__(message)
        self.code = code


class InvalidGrant(OAuth2Error):
    """The code or refresh token is no longer valid (revoked, expired, password changed):
    only a new sign-in helps, retrying never does."""


@dataclass(frozen=True)
class Tokens:
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires: datetime
    scope: str = ""
    email: str = ""


def pkce_pair() -> tuple[str, str]:
    """(verifier, S256 challenge): the code is useless to whoever intercepts it without the
    verifier, which never leaves this service."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.decode().rstrip("=")


def check_endpoint(url: str, allow_http: bool) -> None:
    """Token endpoints get the client secret: https only, unless the deployment allows plain
    http (a provider on loopback in tests or on-premise)."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise OAuth2Error("Not an http(s) URL", "InvalidEndpoint")
    if parts.scheme == "http" and not allow_http:
        raise OAuth2Error("The provider URL must use https", "InvalidEndpoint")


def guard_endpoint(url: str, allow_http: bool) -> None:
    """Both checks a token URL passes before any secret is sent to it."""
    check_endpoint(url, allow_http)
    if not allow_http:
        _refuse_internal(url)


def _refuse_internal(url: str) -> None:
    """A tenant chooses a ``generic`` app's token URL, and we POST secrets to it: a host
    resolving to a loopback, private, link-local or metadata address is refused, as for
    webhooks (``EMAILAPI_OAUTH2_ALLOW_HTTP`` lifts both rules, for on-premise providers)."""
    from webhooks import urlguard

    try:
        urlguard.resolve(urlguard.parse(url), allow_private=False)
    except urlguard.UnsafeURL as exc:
        raise OAuth2Error(f"The provider URL is not allowed: {exc}", "InvalidEndpoint") \
            from None
    except urlguard.Unresolvable as exc:
        raise OAuth2Error(f"Cannot reach the provider: {exc}", "ProviderUnreachable") \
            from None


def exchange_code(token_url: str, client_id: str, client_secret: str, code: str,
                  redirect_uri: str, verifier: str, allow_http: bool = False) -> Tokens:
    return _token_request(token_url, {
        "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
        "code_verifier": verifier, "client_id": client_id, "client_secret": client_secret,
    }, allow_http)


def refresh_tokens(token_url: str, client_id: str, client_secret: str, refresh_token: str,
                   allow_http: bool = False) -> Tokens:
    tokens = _token_request(token_url, {
        "grant_type": "refresh_token", "refresh_token": refresh_token,
        "client_id": client_id, "client_secret": client_secret,
    }, allow_http)
    return keeping(tokens, refresh_token)


def keeping(tokens: Tokens, refresh_token: str) -> Tokens:
    """A refresh answer without a refresh token: the old one stays valid (most providers
    rotate it only sometimes, and then send the new one)."""
    return tokens if tokens.refresh_token is not None else replace(tokens,
                                                                    refresh_token=refresh_token)


def post_form(url: str, form: dict, allow_http: bool, timeout: float = TIMEOUT) -> bytes:
    """One back-channel POST of ``form`` (token, refresh and revocation requests alike) to a
    URL that passed ``guard_endpoint``; return the start of the answer. A non-2xx answer is
    ``refused`` with the provider's OAuth2 error code, no answer is ``ProviderUnreachable``."""
    guard_endpoint(url, allow_http)
    request = urllib.request.Request(
        url, data=urlencode(form).encode(), method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded",
                 "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.read(MAX_RESPONSE)
    except urllib.error.HTTPError as exc:
        body = _json(exc.read(MAX_RESPONSE))
        raise refused(body.get("error") or f"HTTP{exc.code}", body.get("error_description"),
                      body.get("error") == "invalid_grant") from None
    except (urllib.error.URLError, socket.timeout, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise OAuth2Error(f"Cannot reach the provider: {reason}", "ProviderUnreachable") \
            from None


def _token_request(url: str, form: dict, allow_http: bool) -> Tokens:
    return tokens_from(_json(post_form(url, form, allow_http)))


def refused(code, description, invalid_grant: bool) -> OAuth2Error:
    """The provider's refusal as our error: its OAuth2 error code and description only, which
    never echo what we sent (code, verifier, secret, refresh token)."""
    code = str(code)[:64]
    description = str(description or "")[:300]
    message = f"The provider refused: {code}" + (f" ({description})" if description else "")
    return (InvalidGrant if invalid_grant else OAuth2Error)(message, code)


def tokens_from(body: dict) -> Tokens:
    """A token endpoint's JSON answer (RFC 6749 5.1) as ``Tokens``; the address, if any, comes
    from the OpenID id_token that answer carries."""
    access = body.get("access_token")
    if not isinstance(access, str) or not access:
        raise OAuth2Error("The provider's answer has no access token", "InvalidTokenResponse")
    try:
        lifetime = int(body.get("expires_in") or 3600)
    except (TypeError, ValueError):
        lifetime = 3600
    refresh = body.get("refresh_token")
    return Tokens(
        access_token=access,
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
        expires=datetime.now(timezone.utc) + timedelta(seconds=lifetime),
        scope=str(body.get("scope") or ""),
        email=id_token_email(body.get("id_token")),
    )


def _json(raw: bytes) -> dict:
    try:
        value = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def id_token_email(id_token) -> str:
    """The address in an OpenID id_token (``email``, else Microsoft's ``preferred_username``).

    The signature is not checked: the token came straight from the provider's token endpoint
    over the back channel we opened ourselves, which OpenID Connect Core 3.1.3.7 allows to
    stand in for it (TLS server authentication)."""
    if not isinstance(id_token, str) or id_token.count(".") != 2:
        return ""
    payload = id_token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:
        return ""
    if not isinstance(claims, dict):
        return ""
    for key in ("email", "preferred_username", "upn"):
        value = claims.get(key)
        if isinstance(value, str) and "@" in value:
            return value.strip()
    return ""
