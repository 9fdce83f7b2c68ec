"""Revoking an OAuth2 mailbox's grant at its provider (RFC 7009), for
``DELETE /v1/account/{account}?revoke=true``.

Why: deleting the mailbox here forgets our tokens, but the provider still lists our app as
allowed to read the user's mail until the user removes it by hand. Revoking the refresh token
ends the grant itself (Google then kills its access tokens too).

Best effort: one POST with a short timeout, before the account and its sealed tokens are
deleted. Any failure (provider down, refused, no endpoint) is logged and the delete goes on:
a mailbox must stay deletable whatever its provider does. Neither a token nor the client
secret ever reaches a log line or an exception message.

Where: Google has a revocation endpoint. Microsoft and Yahoo publish none (users withdraw
consent on their account pages), so nothing is sent for them. A ``generic`` app has no
revocation URL of its own (``OAuth2App`` has no such field), so the token URL's sibling
``revoke`` is tried (``https://idp.example/oauth2/token`` -> ``.../oauth2/revoke``), the
common layout; a provider without it answers 404 and the delete goes on.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings

from accounts.credentials import get_credential
from accounts.models import EmailAccount, OAuth2App
from accounts.oauth2 import flow, presets, registered_apps

logger = logging.getLogger(__name__)

TIMEOUT = 5.0
REVOCATION_URLS = {presets.GMAIL: "https://oauth2.googleapis.com/revoke"}
NO_REVOCATION = (presets.OUTLOOK, presets.YAHOO)

REVOKED, SKIPPED, FAILED = "revoked", "skipped", "failed"


def revocation_url(app: OAuth2App) -> str | None:
    """Where ``app``'s grants are revoked, or None where the provider offers no endpoint."""
    if app.provider in REVOCATION_URLS:
        return REVOCATION_URLS[app.provider]
    if app.provider in NO_REVOCATION:
        return None
    token_url = registered_apps.endpoints(app).token_url
    if not token_url:
        return None
    parts = urlsplit(token_url)
    path = parts.path.rsplit("/", 1)[0] + "/revoke"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def revoke_grant(account: EmailAccount) -> str:
    """Revoke ``account``'s OAuth2 grant; return ``revoked``, ``skipped`` (not OAuth2, no
    token, no endpoint) or ``failed`` (logged). Never raises for the provider's sake."""
    app = registered_apps.app_of(account)
    if app is None:
        return SKIPPED
    url = revocation_url(app)
    token = get_credential(account, "oauth2.refreshToken")
    hint = "refresh_token"
    if not token:
        token, hint = get_credential(account, "oauth2.accessToken"), "access_token"
    if url is None or not token:
        logger.info("account %s: no OAuth2 grant to revoke at %s", account.pk, app.provider)
        return SKIPPED
    form = {"token": token, "token_type_hint": hint}
    # RFC 7009 2.1 authenticates the client; Google documents a request with the token alone.
    if app.provider != presets.GMAIL:
        form.update(client_id=app.client_id, client_secret=registered_apps.client_secret(app))
    try:
        # RFC 7009: 200 means revoked (or already invalid, which is as good). The URL is
        # checked like a token URL (https, not inside our network): it gets the secret too.
        flow.post_form(url, form, settings.EMAILAPI_OAUTH2_ALLOW_HTTP, timeout=TIMEOUT)
    except flow.OAuth2Error as exc:  # its messages carry no token (flow.refused)
        logger.warning("account %s: revoking the OAuth2 grant at %s failed: %s",
                       account.pk, urlsplit(url).hostname, exc)
        return FAILED
    logger.info("account %s: OAuth2 grant revoked at %s", account.pk, urlsplit(url).hostname)
    return REVOKED
