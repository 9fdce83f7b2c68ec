"""EmailEngine's authentication server: credentials kept by the tenant, not by us.

A mailbox registered with ``imap.useAuthServer: true`` (or ``smtp.useAuthServer``) keeps no
password here. At every connection to its server (the worker's, an API command's, a send) we
ask the tenant's authentication server, as EmailEngine does::

    GET <authServer>?account=<account id>&proto=imap|smtp
    -> 200 {"user": "...", "pass": "..."}  or  {"user": "...", "accessToken": "..."}

An OAuth2 mailbox registered with ``oauth2.useAuthServer: true`` keeps no tokens: its app
gives the servers, and the server's ``accessToken`` is asked at every connection instead of
refreshing a token of ours (``access_token``).

``authServer`` is set through ``POST /v1/settings`` (``AuthServer``, sealed whole: a
``user:password@`` in it is sent as HTTP Basic, as EmailEngine does, and shown as ``******``).
The request goes through ``emailapi.lib.http``: its host is checked at every request and no
redirect is followed; an internal address is allowed only where the deployment allows it for
webhooks or the tenant for its mail servers. Whatever goes wrong is an ``AuthServerError`` in
our words (never the server's text), which the connection records as its ``lastError``.
What the server answers is checked before it reaches a protocol line: a user or password
holding a line break would otherwise end the LOGIN command and start another.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.utils import timezone

from accounts import crypto, mail_hosts
from accounts.credentials import MASK, CredentialsUnavailable, master_secrets
from accounts.models import AuthServer, EmailAccount, Tenant
from emailapi.lib import http, netguard, userinfo

TIMEOUT = 10.0  # seconds for the connection and each read; the whole request at most twice that
MAX_ANSWER = 64 * 1024
# What an answer may hold, as the account API takes it (``AuthSerializer``).
LIMITS = {"user": 512, "pass": 1024, "accessToken": 8192}


class AuthServerError(CredentialsUnavailable):
    """No credentials now. ``refused``: the server said no, or answered what cannot be used
    (a 4xx other than 408 and 429, a redirect, an answer without usable credentials, no
    server set): the account's state is ``authenticationError``, as EmailEngine has it.
    Otherwise the server is having a bad minute (unreachable, 408, 429, 5xx): a connection
    error, tried again."""

    code = "AuthServerError"
    response_code = "HTTPRequestError"  # EmailEngine's serverResponseCode for a refusal

    def __init__(self, message: str, refused: bool = True):
        super().__init__(message)
        self.refused = refused


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str | None
    access_token: str | None


def _context(tenant_id: int) -> str:
    return f"tenant:{tenant_id}/auth-server"


def url_of(tenant: Tenant | int) -> str | None:
    """The tenant's authentication server URL as set, its password in clear (None: not set)."""
    tenant_id = getattr(tenant, "pk", tenant)
    row = AuthServer.objects.filter(tenant_id=tenant_id).first()
    return crypto.open_secret(row.sealed_url, _context(tenant_id), master_secrets()) if row else None


def shown_url(tenant: Tenant | int) -> str | None:
    """The URL as the settings show it: a password as ``******``."""
    url = url_of(tenant)
    return None if url is None else userinfo.masked(url, MASK)


def allows_private(tenant: Tenant | None) -> bool:
    return settings.WEBHOOKS_ALLOW_PRIVATE or mail_hosts.allows_private(tenant)


def url_problem(tenant: Tenant, url: str) -> str | None:
    """Why ``url`` cannot be the tenant's authentication server, or None."""
    try:
        base, _ = userinfo.split(url)
        netguard.check_url(base, allows_private(tenant))
    except (netguard.UnsafeTarget, netguard.Unresolvable) as exc:
        return str(exc)
    return None


def set_url(tenant: Tenant, url: str) -> None:
    """Set (or with ``""`` remove) the tenant's authentication server. The mask written back
    as the password keeps the stored one while the URL's server is the same (scheme, host,
    port); elsewhere it is taken as written: a password never goes to another server."""
    if not url:
        AuthServer.objects.filter(tenant=tenant).delete()
        return
    _, given = userinfo.split(url)
    stored = url_of(tenant)
    if given is not None and given.written_password == MASK and stored is not None:
        _, kept = userinfo.split(stored)
        same_server = userinfo.destination(stored) == userinfo.destination(url)
        if kept is not None and kept.password is not None and same_server:
            url = userinfo.with_password(url, kept.password)
    AuthServer.objects.update_or_create(tenant=tenant, defaults={
        "sealed_url": crypto.seal(url, _context(tenant.pk), settings.EMAILAPI_SECRET),
        "updated_at": timezone.now()})


def uses_it(section: dict | None) -> bool:
    """Whether a mailbox's ``imap``/``smtp`` section takes its credentials from the server,
    or its ``oauth2`` its access token."""
    return bool(section and section.get("useAuthServer"))


def access_token(account: EmailAccount, proto: str) -> str:
    """An ``oauth2.useAuthServer`` mailbox's access token for ``proto``: the server's
    ``accessToken`` (its ``user`` is not used: the mailbox is the one registered, as
    EmailEngine's ``auth.user``). An answer with a password and no token is refused."""
    given = credentials(account, proto)
    if not given.access_token:
        raise AuthServerError("The authentication server answered without an accessToken, "
                              "which an OAuth2 mailbox logs in with")
    return given.access_token


def credentials(account: EmailAccount, proto: str) -> Credentials:
    """The credentials the tenant's authentication server gives ``account`` for ``proto``
    (``imap`` or ``smtp``); ``AuthServerError`` when none can be had now."""
    url = url_of(account.tenant_id)
    if url is None:
        raise AuthServerError("The mailbox uses an authentication server and none is set "
                              "(authServer in /v1/settings)")
    try:
        base, given = userinfo.split(url)
        headers = {"Accept": "application/json",
                   **(userinfo.basic_authorization(given.user, given.password) if given else {})}
        answer = http.request("GET", _with_query(base, account.account_id, proto), None,
                              headers, timeout=TIMEOUT,
                              allow_private=allows_private(account.tenant),
                              max_bytes=MAX_ANSWER)
    except (netguard.UnsafeTarget, netguard.Unresolvable) as exc:
        raise AuthServerError(f"The authentication server cannot be used: {exc}") from None
    except http.RequestFailed as exc:
        raise AuthServerError(f"Cannot reach the authentication server: {exc}",
                              refused=False) from None
    if 300 <= answer.status < 400:
        raise AuthServerError(f"The authentication server answered with a redirect (HTTP "
                              f"{answer.status}), which is not followed")
    if not 200 <= answer.status < 300:
        raise AuthServerError(f"The authentication server answered HTTP {answer.status}",
                              refused=answer.status < 500 and answer.status not in (408, 429))
    return parse_answer(answer.body)


def _with_query(url: str, account_id: str, proto: str) -> str:
    """``url`` with ``account`` and ``proto`` set in its query (others it has are kept)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k not in ("account", "proto")]
    query += [("account", account_id), ("proto", proto)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def parse_answer(body: bytes) -> Credentials:
    """An answer's credentials: a JSON object with a ``user`` and a ``pass`` or an
    ``accessToken``, strings of at most the account API's lengths, without control
    characters."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        raise AuthServerError("The authentication server's answer is not a JSON object")
    for key, limit in LIMITS.items():
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > limit:
            raise AuthServerError(f"The authentication server's {key} is not a string of at "
                                  f"most {limit} characters")
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
            raise AuthServerError(f"The authentication server's {key} contains a control "
                                  "character")
    if not data.get("user") or not (data.get("pass") or data.get("accessToken")):
        raise AuthServerError("The authentication server's answer has no user with a pass or "
                              "an accessToken")
    return Credentials(data["user"], data.get("pass") or None, data.get("accessToken") or None)
