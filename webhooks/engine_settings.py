"""EmailEngine's settings (``GET/POST /v1/settings``): a tenant's default webhook and what its
events carry.

    webhooks, webhooksEnabled, webhookEvents,   -> the default subscription (format emailengine),
    webhooksCustomHeaders, serviceSecret           there while ``webhooks`` is a URL
    notifyText, notifyTextSize, notifyHeaders,  -> what its messageNew carries
    notifyAttachments, notifyAttachmentSize,
    notifyWebSafeHtml, notifyCalendarEvents
    inboxNewOnly                                -> no messageNew outside the Inbox for it and
                                                   the accounts' own webhook URLs
    serviceUrl                                  -> every emailengine payload's ``serviceUrl``
                                                   (and where a send's links point)
    trackOpens, trackClicks                     -> a send's tracking when it says none
                                                   (``mailboxes.tracking.wanted``)
    proxyUrl, proxyEnabled                      -> the proxy of the tenant's accounts
                                                   that have none (``accounts.mail_proxy``)

``serviceSecret`` also signs the subscriptions made from accounts' own ``webhooks`` URLs, as
EmailEngine signs every webhook with it.

The ``EngineSettings`` row is the truth; ``apply`` makes the default subscription follow it
after every change (a change made to that subscription through ``/v1/webhooks`` lasts until
the next settings change of the same key). Secrets are never read back: ``serviceSecret`` and
the custom header values are shown as set / ``"******"``, as EmailEngine does, and the
password of a ``webhooks`` URL's ``user:password@`` is sealed apart, the URL kept and shown
with ``******`` in its place (written back so, it keeps the password: see
``subscriptions.url_and_password``); ``proxyUrl``'s likewise, by ``accounts.mail_proxy``,
which owns the proxy. A change of the tenant's proxy reconnects its accounts that have none
of their own, so they take the new route.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts import crypto, mail_proxy
from accounts.credentials import MASK, master_secrets
from accounts.models import EmailAccount
from emailapi.lib import userinfo
from webhooks import subscriptions
from webhooks.models import EngineSettings, WebhookSubscription

KEYS = ("webhooksEnabled", "webhooks", "webhookEvents", "webhooksCustomHeaders", "notifyText",
        "notifyTextSize", "notifyHeaders", "notifyAttachments", "notifyAttachmentSize", "serviceUrl",
        "serviceSecret", "trackOpens", "trackClicks", "proxyUrl", "proxyEnabled", "inboxNewOnly",
        "notifyWebSafeHtml", "notifyCalendarEvents")
# Where each key lives on the row (the webhook keys are also applied to the subscription).
# ``webhooks`` and ``proxyUrl`` are not: their passwords are sealed apart.
_COLUMNS = {"webhooksEnabled": "webhooks_enabled",
            "webhookEvents": "webhook_events", "notifyText": "notify_text",
            "notifyTextSize": "notify_text_size", "notifyHeaders": "notify_headers",
            "notifyAttachments": "notify_attachments",
            "notifyAttachmentSize": "notify_attachment_size", "serviceUrl": "service_url",
            "trackOpens": "track_opens", "trackClicks": "track_clicks",
            "proxyEnabled": "proxy_enabled", "inboxNewOnly": "inbox_new_only",
            "notifyWebSafeHtml": "notify_web_safe_html",
            "notifyCalendarEvents": "notify_calendar_events"}
_SUBSCRIPTION_KEYS = {"webhooksEnabled", "webhooks", "webhookEvents", "webhooksCustomHeaders",
                      "serviceSecret"}


def _context(row: EngineSettings, name: str) -> str:
    return f"tenant:{row.tenant_id}/engine-settings/{name}"


def _seal(row: EngineSettings, name: str, value: str) -> str:
    return crypto.seal(value, _context(row, name), settings.EMAILAPI_SECRET)


def _open(row: EngineSettings, name: str, sealed: str) -> str:
    return crypto.open_secret(sealed, _context(row, name), master_secrets())


def headers_of(row: EngineSettings) -> dict[str, str]:
    return json.loads(_open(row, "headers", row.sealed_headers)) if row.sealed_headers else {}


def _url_password(row: EngineSettings) -> str | None:
    return _open(row, "url-password", row.sealed_webhooks_password) \
        if row.sealed_webhooks_password else None


def _set_url(row: EngineSettings, url: str) -> None:
    """``webhooks``: the URL kept with its password masked, the password sealed (the mask
    written back keeps the stored one, for the same server only)."""
    shown, password = subscriptions.url_and_password(url, row.webhooks_url, _url_password(row),
                                                     "webhooks")
    row.webhooks_url = shown
    row.sealed_webhooks_password = "" if password is None else _seal(row, "url-password",
                                                                      password)


def _full_url(row: EngineSettings) -> str:
    """``webhooks`` as the client wrote it, password and all: what the default subscription
    is given (it seals the password under its own context)."""
    password = _url_password(row)
    return row.webhooks_url if password is None else userinfo.with_password(row.webhooks_url,
                                                                            password)


def service_secret(tenant_id: int) -> str | None:
    """The tenant's ``serviceSecret``, if one is set: the key of every subscription made
    from EmailEngine's keys (the default one and each account's own URL)."""
    row = EngineSettings.objects.filter(tenant_id=tenant_id).first()
    return _open(row, "secret", row.sealed_service_secret) \
        if row is not None and row.sealed_service_secret else None


def masked_headers(names) -> list[dict[str, str]]:
    """Custom headers as EmailEngine shows them (``webhooksCustomHeaders``, a webhook route's
    ``customHeaders``): each name with the mask for its value, a secret never read back."""
    return [{"key": name, "value": MASK} for name in names]


def of(tenant) -> EngineSettings:
    """The tenant's row, or unsaved defaults."""
    return EngineSettings.objects.filter(tenant=tenant).first() or EngineSettings(tenant=tenant)


def read(tenant, keys: list[str] | None = None) -> dict:
    """The values of ``keys`` (all when none), as EmailEngine's ``GET /v1/settings`` shows them."""
    row = of(tenant)
    values = {key: getattr(row, column) for key, column in _COLUMNS.items()}
    values["webhooks"] = row.webhooks_url or None
    values["serviceUrl"] = row.service_url or None
    values["proxyUrl"] = row.proxy_url or None  # its password masked
    values["webhookEvents"] = row.webhook_events or ["*"]
    values["webhooksCustomHeaders"] = masked_headers(headers_of(row))
    values["serviceSecret"] = bool(row.sealed_service_secret or row.subscription_id)
    return {key: values[key] for key in (KEYS if keys is None else keys)}


def update(tenant, data: dict) -> list[str]:
    """Store the given keys (already validated) and apply them; return their names."""
    with transaction.atomic():
        row, _ = EngineSettings.objects.select_for_update().get_or_create(tenant=tenant)
        route_before = _proxy_route(row)
        for key, value in data.items():
            if key in _COLUMNS:
                setattr(row, _COLUMNS[key], value if value is not None else
                        EngineSettings._meta.get_field(_COLUMNS[key]).get_default())
        if "webhooks" in data:
            _set_url(row, data["webhooks"] or "")
        proxy_changed = "proxyUrl" in data and mail_proxy.set_tenant_proxy(row, data["proxyUrl"])
        if "webhooksCustomHeaders" in data:
            headers = data["webhooksCustomHeaders"]
            row.sealed_headers = _seal(row, "headers", json.dumps(headers)) if headers else ""
        if data.get("serviceSecret"):
            row.sealed_service_secret = _seal(row, "secret", data["serviceSecret"])
        if _SUBSCRIPTION_KEYS & set(data):
            _apply(row, set(data))
        if data.get("serviceSecret"):
            for subscription in _account_subscriptions(tenant):
                subscriptions.set_secret(subscription, data["serviceSecret"])
        if route_before != _proxy_route(row) and _proxy_route(row):
            # secrets stored before now go through it only over verified TLS
            # (``accounts.secret_routes``): they were not given knowing this route
            row.proxy_route_set_at = timezone.now()
        row.save()
        if route_before != _proxy_route(row) or (proxy_changed and row.proxy_enabled):
            mail_proxy.reroute_accounts_without_own(tenant.pk)
    return list(data)


def _proxy_route(row: EngineSettings) -> str:
    """The proxy the tenant's accounts without their own take ("" for none)."""
    return row.proxy_url if row.proxy_enabled else ""


def _account_subscriptions(tenant):
    """The subscriptions made from the tenant's accounts' own ``webhooks`` URLs
    (``webhooks.account_webhooks``)."""
    made = EmailAccount.objects.filter(tenant=tenant, webhook_subscription__isnull=False) \
        .values_list("webhook_subscription", flat=True)
    return WebhookSubscription.objects.filter(tenant=tenant, pk__in=list(made))


def _apply(row: EngineSettings, changed: set[str]) -> None:
    """Make the default subscription follow the row: created when ``webhooks`` becomes a URL,
    deleted (with its pending deliveries) when it becomes empty."""
    current = WebhookSubscription.objects.filter(pk=row.subscription_id).first() \
        if row.subscription_id else None
    if not row.webhooks_url:
        if current is not None:
            subscriptions.delete(current)
        row.subscription = None
        return
    fields = {"url": _full_url(row), "events": row.webhook_events or ["*"],
              "enabled": row.webhooks_enabled, "headers": headers_of(row),
              "format": "emailengine"}
    secret = _open(row, "secret", row.sealed_service_secret) \
        if row.sealed_service_secret else None
    if current is None:
        current, _ = subscriptions.create(row.tenant, fields)
        if secret:
            subscriptions.set_secret(current, secret)
    else:
        keep = {"url": "webhooks", "events": "webhookEvents", "enabled": "webhooksEnabled",
                "headers": "webhooksCustomHeaders"}
        subscriptions.update(current, {name: fields[name] for name, key in keep.items()
                                       if key in changed})
        if secret and "serviceSecret" in changed:
            subscriptions.set_secret(current, secret)
    row.subscription = current
