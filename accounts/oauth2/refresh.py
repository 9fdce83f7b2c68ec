"""Live access tokens for OAuth2 mailboxes: refreshed before they expire, once for everyone.

Access tokens last about an hour. Whoever needs one (an IMAP worker connecting, the API's
command connections, the SMTP sender) calls ``access_token``; when the stored token expires
within ``EMAILAPI_OAUTH2_REFRESH_MARGIN`` seconds it is refreshed first. Many processes may
ask at once, and some providers rotate refresh tokens (the old one dies on use), so a refresh
runs under a Redis lock per account: the winner refreshes and stores the new tokens sealed;
the others wait for the lock and read what it stored. The refresh grant itself goes through
the app's social-auth backend (``social.refresh_tokens``; ``flow.py`` for ``generic`` apps).

A refresh refused with ``invalid_grant`` (revoked, password changed, consent withdrawn) cannot
succeed by retrying: the account goes to ``authenticationError`` with one
``authenticationError`` event carrying ``reauthRequired: true``, the flag is kept on the
account, and nobody asks the provider again until the user signs in through a new connect
link (which replaces the tokens and clears the flag).
"""

from __future__ import annotations

import logging
import secrets
import time
from datetime import datetime, timedelta, timezone

from django.conf import settings
from django.db import transaction
from django.utils import timezone as dj_timezone

from accounts.credentials import CredentialsUnavailable, get_credential, set_credential
from accounts.models import EmailAccount
from accounts.oauth2 import flow, registered_apps, social
from accounts.state import set_state
from emailapi.lib.redis import get_redis
from emailapi.lib.wording import describe
from webhooks import events

logger = logging.getLogger(__name__)
LOCK_SECONDS = 30
WAIT_SECONDS = 20.0
_RELEASE = ("if redis.call('get', KEYS[1]) == ARGV[1] then "
            "return redis.call('del', KEYS[1]) else return 0 end")


class TokenError(CredentialsUnavailable):
    """No access token can be had now; ``code`` is the machine code for ``lastError``."""

    code = "OAuth2Error"


class ReauthRequired(TokenError):
    """The grant is gone: the user must sign in again through a new connect link."""

    code = "ReauthRequired"


class TokenUnavailable(TokenError):
    """A transient failure (provider unreachable, 5xx, lock not released): retry later."""


def access_token(account: EmailAccount, force: bool = False) -> str:
    """A usable access token for ``account``; ``force`` refreshes even a fresh-looking one
    (the server refused it)."""
    info = _oauth2_of(account)
    if info.get("reauthRequired"):
        raise ReauthRequired("The mailbox must be connected again (OAuth2 grant revoked)")
    seen = get_credential(account, "oauth2.accessToken")
    if seen and not force and not _expiring(info):
        return seen
    key = f"{settings.EMAILAPI_REDIS_PREFIX}:oauth2-refresh:{account.pk}"
    owner = secrets.token_hex(8)
    redis = get_redis()
    deadline = time.monotonic() + WAIT_SECONDS
    while not redis.set(key, owner, nx=True, ex=LOCK_SECONDS):
        if time.monotonic() > deadline:
            raise TokenUnavailable("Timed out waiting for another process's token refresh")
        time.sleep(0.1)
    try:
        # Re-read under the lock: another process may have refreshed while we waited.
        info = _oauth2_of(account)
        current = get_credential(account, "oauth2.accessToken")
        if info.get("reauthRequired"):
            raise ReauthRequired("The mailbox must be connected again (OAuth2 grant revoked)")
        if current and not _expiring(info) and (not force or current != seen):
            return current
        return _refresh(account, info)
    finally:
        redis.eval(_RELEASE, 1, key, owner)


def _oauth2_of(account: EmailAccount) -> dict:
    info = EmailAccount.objects.filter(pk=account.pk).values_list("oauth2", flat=True).first()
    account.oauth2 = info
    return info or {}


def _expiring(info: dict) -> bool:
    try:
        expires = datetime.fromisoformat(info["expires"])
    except (KeyError, TypeError, ValueError):
        return True
    margin = timedelta(seconds=settings.EMAILAPI_OAUTH2_REFRESH_MARGIN)
    return expires - margin <= datetime.now(timezone.utc)


def _refresh(account: EmailAccount, info: dict) -> str:
    app = registered_apps.app_of(account)
    refresh_token = get_credential(account, "oauth2.refreshToken")
    if app is None or not refresh_token:
        _require_reauth(account, info, "The OAuth2 app or refresh token is gone", "NoGrant")
    try:
        tokens = social.refresh_tokens(app, refresh_token, settings.EMAILAPI_OAUTH2_ALLOW_HTTP)
    except flow.InvalidGrant as exc:
        _require_reauth(account, info, describe(exc), exc.code)
    except flow.OAuth2Error as exc:
        logger.warning("account %s: token refresh failed: %s", account.pk, exc)
        raise TokenUnavailable(describe(exc)) from None
    with transaction.atomic():
        set_credential(account, "oauth2.accessToken", tokens.access_token, given=False)
        if tokens.refresh_token != refresh_token:
            set_credential(account, "oauth2.refreshToken", tokens.refresh_token, given=False)
        new_info = {**info, "expires": tokens.expires.isoformat()}
        EmailAccount.objects.filter(pk=account.pk).update(oauth2=new_info)
    account.oauth2 = new_info
    logger.info("account %s: access token refreshed", account.pk)
    return tokens.access_token


def _require_reauth(account: EmailAccount, info: dict, message: str, code: str):
    """Flag the account, set authenticationError and raise the event once (accounts.state)."""
    logger.warning("account %s: OAuth2 grant refused (%s); reauthorization required",
                   account.pk, code)
    fresh = EmailAccount.objects.select_related("tenant").get(pk=account.pk)
    set_state(
        fresh, EmailAccount.State.AUTHENTICATION_ERROR,
        error={"error": message, "code": "ReauthRequired", "reauthRequired": True},
        auth_failing_since=fresh.auth_failing_since or dj_timezone.now(),
        oauth2={**info, "reauthRequired": True},
        event=events.AUTHENTICATION_ERROR,
        event_data={"response": message, "serverResponseCode": code, "reauthRequired": True},
    )
    account.oauth2 = {**info, "reauthRequired": True}
    raise ReauthRequired(message)
