"""Webhook subscriptions: creating, changing and deleting them, and their sealed secrets.

The signing secret, the custom headers and the password of a ``user:password@`` URL are
sealed with ``accounts.crypto`` under a context naming the tenant and the subscription, so a
sealed value copied onto another row does not open. The secret is returned only by ``create``
and ``rotate_secret``; headers and the URL's password never.

A URL's password (EmailEngine sends the userinfo as HTTP Basic: ``request_target``) is kept
apart from the URL: the row's ``url`` has ``credentials.MASK`` in its place
(``https://user:******@host/``), so everything that shows a URL (answers, listings, the
dashboard, ``webhookDisabled``) shows it masked without knowing it has to. A client that reads
a subscription and writes it back sends the mask, which keeps the stored password, but only
for the server it was given for (``url_and_password``).
"""

from __future__ import annotations

import base64
import json
import secrets

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts import crypto, plans
from accounts.credentials import MASK, master_secrets, without_password
from emailapi.lib import userinfo
from emailapi.lib.existing import save_existing
from webhooks.errors import WebhookNotFound, WebhookPasswordNeeded
from webhooks.models import Delivery, WebhookSubscription

SECRET_PREFIX = "whsec_"


def _context(subscription: WebhookSubscription, name: str) -> str:
    return f"tenant:{subscription.tenant_id}/webhook:{subscription.pk}/{name}"


def _seal(subscription: WebhookSubscription, name: str, value: str) -> str:
    return crypto.seal(value, _context(subscription, name), settings.EMAILAPI_SECRET)


def secret_of(subscription: WebhookSubscription) -> str:
    return crypto.open_secret(subscription.sealed_secret, _context(subscription, "secret"),
                              master_secrets())


def headers_of(subscription: WebhookSubscription) -> dict[str, str]:
    if not subscription.sealed_headers:
        return {}
    return json.loads(crypto.open_secret(subscription.sealed_headers,
                                         _context(subscription, "headers"), master_secrets()))


def header_names(subscription: WebhookSubscription) -> list[str]:
    return sorted(headers_of(subscription))


def _set_headers(subscription: WebhookSubscription, headers: dict[str, str]) -> None:
    subscription.sealed_headers = (_seal(subscription, "headers", json.dumps(headers))
                                   if headers else "")


def url_password_of(subscription: WebhookSubscription) -> str | None:
    """The password of the URL's userinfo (None when it has none)."""
    if not subscription.sealed_url_password:
        return None
    return crypto.open_secret(subscription.sealed_url_password,
                              _context(subscription, "url-password"), master_secrets())


def url_and_password(url: str, stored_url: str, stored_password: str | None,
                     field: str) -> tuple[str, str | None]:
    """``url`` as a client wrote it, as it is kept: the URL with its password masked, and the
    password to seal (None without one). The mask written back stands for ``stored_password``
    while the server is the one of ``stored_url``; elsewhere, or with nothing stored, it is
    refused (``WebhookPasswordNeeded`` naming ``field``): a password goes to no other server.
    The URL is already checked (``transport.check_url``)."""
    _, given = userinfo.split(url)
    if given is None or given.written_password != MASK:
        return without_password(url), given.password if given else None
    if stored_password is None:
        raise WebhookPasswordNeeded(field, moved=False)
    if userinfo.destination(url) != userinfo.destination(stored_url):
        raise WebhookPasswordNeeded(field, moved=True)
    return without_password(url), stored_password


def _set_url(subscription: WebhookSubscription, url: str) -> None:
    shown, password = url_and_password(url, subscription.url, url_password_of(subscription),
                                       "url")
    subscription.url = shown
    subscription.sealed_url_password = ("" if password is None else
                                        _seal(subscription, "url-password", password))


def request_target(subscription: WebhookSubscription) -> tuple[str, dict[str, str]]:
    """Where the subscription's requests go (its URL without userinfo) and the HTTP Basic
    ``Authorization`` header its userinfo makes (none without one), as EmailEngine sends it."""
    bare, given = userinfo.split(subscription.url)
    if given is None:
        return bare, {}
    password = url_password_of(subscription) if given.password is not None else None
    return bare, userinfo.basic_authorization(given.user, password)


def _new_secret(subscription: WebhookSubscription) -> str:
    # Standard base64 of 32 random bytes: the key Standard Webhooks libraries decode.
    secret = SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()
    subscription.sealed_secret = _seal(subscription, "secret", secret)
    return secret


def tenant_subscriptions(tenant):
    return WebhookSubscription.objects.filter(tenant=tenant).order_by("created_at", "id")


def create(tenant, data: dict) -> tuple[WebhookSubscription, str]:
    """Return the new subscription and its secret (the only time it is shown, with rotation).
    A URL with the mask for its password is refused (``WebhookPasswordNeeded``: there is no
    stored one). A stopped tenant (expired trial, suspended) is refused (``TrialExpired``,
    ``TenantSuspended``): nothing of it runs, so nothing new is set up either."""
    plans.check_api_access(tenant)
    subscription = WebhookSubscription(
        tenant=tenant, events=data["events"], accounts=data.get("accounts") or [],
        enabled=data.get("enabled", True), format=data.get("format") or "emailapi",
        name=data.get("name") or "", description=data.get("description") or "",
    )
    _set_url(subscription, data["url"])
    _set_headers(subscription, data.get("headers") or {})
    secret = _new_secret(subscription)
    subscription.save()
    return subscription, secret


def update(subscription: WebhookSubscription, data: dict) -> WebhookSubscription:
    """Apply the given fields. Enabling a subscription (again) starts a fresh failure streak.
    A URL with the mask for its password keeps the stored one (``url_and_password``)."""
    if "url" in data:
        _set_url(subscription, data["url"])
    for field in ("events", "format"):
        if field in data:
            setattr(subscription, field, data[field])
    for field in ("name", "description"):  # null clears, as ""
        if field in data:
            setattr(subscription, field, data[field] or "")
    if "accounts" in data:
        subscription.accounts = data["accounts"] or []
    if "headers" in data:
        _set_headers(subscription, data["headers"] or {})
    if "enabled" in data:
        if data["enabled"] and not subscription.enabled:
            subscription.failing_since = None
            subscription.disabled_reason = ""
        subscription.enabled = data["enabled"]
    subscription.updated_at = timezone.now()
    if not save_existing(subscription):  # deleted meanwhile: never brought back
        raise WebhookNotFound()
    return subscription


def rotate_secret(subscription: WebhookSubscription) -> str:
    """A new secret takes effect for the next attempt; deliveries already in flight were
    signed with the old one."""
    secret = _new_secret(subscription)
    subscription.updated_at = timezone.now()
    if not save_existing(subscription, ["sealed_secret", "updated_at"]):
        raise WebhookNotFound()
    return secret


def set_secret(subscription: WebhookSubscription, secret: str) -> None:
    """Sign with ``secret`` from the next attempt on (EmailEngine's ``serviceSecret`` setting)."""
    subscription.sealed_secret = _seal(subscription, "secret", secret)
    subscription.updated_at = timezone.now()
    if not save_existing(subscription, ["sealed_secret", "updated_at"]):
        raise WebhookNotFound()


def remove_headers(subscription: WebhookSubscription, names: list[str]) -> list[str]:
    """Stop sending the custom headers ``names`` (any case); returns the names removed."""
    headers = headers_of(subscription)
    wanted = {name.lower() for name in names}
    removed = sorted(name for name in headers if name.lower() in wanted)
    if removed:
        _set_headers(subscription, {k: v for k, v in headers.items() if k not in removed})
        subscription.updated_at = timezone.now()
        if not save_existing(subscription, ["sealed_headers", "updated_at"]):
            raise WebhookNotFound()
    return removed


def delete(subscription: WebhookSubscription) -> bool:
    """Its deliveries go with it (a delivery in flight finds its row gone and changes
    nothing). False when it was gone already (a concurrent delete came first)."""
    with transaction.atomic():
        Delivery.objects.filter(subscription=subscription).delete()
        deleted, _ = WebhookSubscription.objects.filter(pk=subscription.pk).delete()
    return bool(deleted)
