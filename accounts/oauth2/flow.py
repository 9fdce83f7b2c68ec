"""The OAuth2 authorization-code flow with PKCE, and the refresh grant (RFC 6749, RFC 7636).

Written out for the ``generic`` provider, which social-auth has no backend for. Gmail,
Outlook and Yahoo sign-ins go through social-auth's backends (``social.py``), which reuse the
pieces here: PKCE, the token URL guard, and the token answer read into ``Tokens``.

Two back-channel requests to the provider's token endpoint, both form posts with the client
credentials in the body (``client_secret_post``, which Google, Microsoft and Yahoo accept):

    authorize (browser) ──code──► exchange_code ──► Tokens(access, refresh, expires, email)
    Tokens.refresh ──────────────► refresh_tokens ──► Tokens (or InvalidGrant: reauthorize)

Every back-channel request (these two, revocation, and social-core's own requests, see
``social.py``) goes through ``send``: the token URL's host is resolved and checked, the
connection goes to the checked address (``emailapi.lib.http``), redirects are never
followed, and the answer is read up to ``MAX_RESPONSE`` bytes.

Errors are our words: never a token, a code or the client secret, and never text the server
answered (a misdirected request may reach a server whose answer is secret, such as a cloud
metadata service). Of a refusal only a standard OAuth2 error code is kept (``ERROR_WORDS``).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode, urlsplit

from emailapi.lib import http as pinned_http
from emailapi.lib import jsondepth, netguard

TIMEOUT = 15.0
MAX_RESPONSE = 256 * 1024
# A token answer and an id_token's claims are flat objects; an answer nested deeper is refused
# before it is decoded (emailapi.lib.jsondepth says why).
MAX_DEPTH = 8

# The error codes of RFC 6749 5.2 (and RFC 6750 3.1, RFC 7009 2.2.1) and what each means to
# whoever connects a mailbox. A refusal shows its code only when it is one of these: any
# other text in an answer is the server's, and is never shown.
ERROR_WORDS = {
    "invalid_request": "the request was not accepted",
    "invalid_client": "the app's client id or secret was not accepted",
    "invalid_grant": "the sign-in is no longer valid (expired, used or revoked)",
    "unauthorized_client": "the app may not use this kind of sign-in",
    "unsupported_grant_type": "the provider does not offer this kind of sign-in",
    "invalid_scope": "the app asked for access the provider does not grant",
    "access_denied": "access was denied",
    "server_error": "the provider had an internal error",
    "temporarily_unavailable": "the provider is temporarily unavailable",
    "invalid_token": "the token is not valid",
    "unsupported_token_type": "the provider cannot revoke this kind of token",
}


class OAuth2Error(Exception):
    """The provider refused or could not be reached; ``code`` is its OAuth2 error code."""

    def __init__(self, message: str, code: str = "OAuth2Error"):
        super().__init__(message)
        self.code = code


class InvalidGrant(OAuth2Error):
    """The code or refresh token is no longer valid (revoked, expired, password changed):
    only a new sign-in helps, retrying never does."""


def unusable_answer() -> OAuth2Error:
    """A 2xx answer that cannot be read as a token answer."""
    return OAuth2Error("The provider's answer is not usable", "InvalidTokenResponse")


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
    webhooks (``EMAILAPI_OAUTH2_ALLOW_HTTP`` lifts both rules, for on-premise providers).
    ``send`` checks again, at the connection itself."""
    try:
        netguard.check_url(url, allow_private=False)
    except (netguard.UnsafeTarget, netguard.Unresolvable) as exc:
        raise _unusable(exc) from None


def _unusable(exc: Exception) -> OAuth2Error:
    if isinstance(exc, netguard.UnsafeTarget):
        return OAuth2Error(f"The provider URL is not allowed: {exc}", "InvalidEndpoint")
    return OAuth2Error(f"Cannot reach the provider: {exc}", "ProviderUnreachable")


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
    """One back-channel POST of ``form`` (token, refresh and revocation requests alike);
    return the start of a 2xx answer. Anything else is ``answer_error``; no answer is
    ``ProviderUnreachable``."""
    check_endpoint(url, allow_http)
    answer = send("POST", url, urlencode(form).encode(),
                  {"Content-Type": "application/x-www-form-urlencoded"}, allow_http, timeout)
    if 200 <= answer.status < 300:
        return answer.body
    raise answer_error(answer)


def send(method: str, url: str, body: bytes | None, headers: dict[str, str],
         allow_http: bool, timeout: float = TIMEOUT) -> pinned_http.Answer:
    """One back-channel request, whatever its answer (the caller judges it): to the address
    the host was checked at (not inside our network unless ``allow_http``), no redirect
    followed, at most ``MAX_RESPONSE`` bytes read."""
    try:
        return pinned_http.request(method, url, body, {"Accept": "application/json", **headers},
                                   timeout=timeout, allow_private=allow_http,
                                   max_bytes=MAX_RESPONSE)
    except (netguard.UnsafeTarget, netguard.Unresolvable) as exc:
        raise _unusable(exc) from None
    except pinned_http.RequestFailed as exc:
        raise OAuth2Error(f"Cannot reach the provider: {exc}", "ProviderUnreachable") from None


def answer_error(answer: pinned_http.Answer) -> OAuth2Error:
    """A non-2xx answer as our error: a redirect is named as such (never followed), a
    refusal by its standard OAuth2 error code; the answer's text is never repeated."""
    if 300 <= answer.status < 400:
        return OAuth2Error(f"The provider answered with a redirect (HTTP {answer.status}), "
                           "which is not followed", f"HTTP{answer.status}")
    return refused(_json(answer.body).get("error"), status=answer.status)


def _token_request(url: str, form: dict, allow_http: bool) -> Tokens:
    return tokens_from(_json(post_form(url, form, allow_http)))


def refused(code, *, invalid_grant: bool | None = None, status: int | None = None) \
        -> OAuth2Error:
    """The provider's refusal as our error: a standard OAuth2 error code and what it means
    (``ERROR_WORDS``), or only the HTTP status when the answer has no standard code.
    Never the answer's own text, which could be anything (see the module doc)."""
    if isinstance(code, str) and code in ERROR_WORDS:
        grant_gone = code == "invalid_grant" if invalid_grant is None else invalid_grant
        return (InvalidGrant if grant_gone else OAuth2Error)(
            f"The provider refused: {code} ({ERROR_WORDS[code]})", code)
    if status is None:
        return OAuth2Error("The provider refused, without a standard OAuth2 error",
                           "OAuth2Error")
    return OAuth2Error(f"The provider answered HTTP {status}, without a standard OAuth2 error",
                       f"HTTP{status}")


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
        value = jsondepth.loads(raw or b"{}", MAX_DEPTH)
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
        claims = jsondepth.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)),
                                 MAX_DEPTH)
    except ValueError:
        return ""
    if not isinstance(claims, dict):
        return ""
    for key in ("email", "preferred_username", "upn"):
        value = claims.get(key)
        if isinstance(value, str) and "@" in value:
            return value.strip()
    return ""
