"""EmailEngine's webhook routes (``GET /v1/webhookRoutes``, ``GET
/v1/webhookRoutes/webhookRoute/{id}``), read from the tenant's webhook subscriptions.

In EmailEngine a route is a further destination with a JavaScript filter, made in its UI; here
the same thing is a subscription (``/v1/webhooks``). Every subscription of the tenant is a
route except the one ``/v1/settings`` manages (``EngineSettings.subscription``), which is
EmailEngine's main webhook, and those made from accounts' ``webhooks`` URLs
(``webhooks.account_webhooks``), EmailEngine's per-account webhooks: neither is a route there.
The fields, from the row:

    name, description  -> ``name`` (the URL's host when blank), ``description``
    url                -> ``targetUrl`` (a password already masked in it)
    sealed headers     -> ``customHeaders``, names only: values are masked as in /v1/settings
    deliveries         -> ``tcount``: the delivery rows kept for it
    failing / disabled -> ``webhookErrorFlag``: the reason, or the last failed attempt's error
    events, accounts   -> ``content.fn``: JavaScript equivalent to the filter (``filter_function``)

Read-only, as in EmailEngine's API; nothing here changes a subscription.
"""

from __future__ import annotations

import json
import uuid
from urllib.parse import urlsplit

from django.db.models import Case, CharField, Count, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Coalesce

from emailapi.lib.timestamps import utc_iso
from webhooks import account_webhooks, engine_settings, subscriptions
from webhooks.errors import WebhookRouteNotFound
from webhooks.models import Delivery, EngineSettings, WebhookSubscription


def filter_function(events: list[str], accounts: list[str]) -> str | None:
    """The body of an EmailEngine filter function (``payload`` in scope) that passes what a
    subscription with these ``events`` (``["*"]``: all) and ``accounts`` (empty: all) receives,
    or None when it takes everything (EmailEngine's "no filter set"). The lists are written as
    JSON with every non-ASCII character escaped, so any id makes valid JavaScript."""
    tests = []
    if "*" not in events:
        tests.append(f"{_js_list(events)}.includes(payload.event)")
    if accounts:
        tests.append(f"{_js_list(accounts)}.includes(payload.account)")
    return f"return {' && '.join(tests)};" if tests else None


def _js_list(values: list[str]) -> str:
    return json.dumps(list(values), separators=(",", ":"), ensure_ascii=True)


def _tenant_routes(tenant):
    settings_managed = EngineSettings.objects.filter(tenant=tenant, subscription__isnull=False) \
        .values("subscription")
    return subscriptions.tenant_subscriptions(tenant).exclude(pk__in=settings_managed) \
        .exclude(pk__in=account_webhooks.held_by_accounts(tenant))


def _annotated(rows):
    """Each row with ``tcount`` and ``last_failure`` in the same query (no query per route):
    correlated subqueries, the second run only for a subscription failing and not disabled
    (the only one whose flag needs it)."""
    deliveries = Delivery.objects.filter(subscription=OuterRef("pk")).order_by()
    count = deliveries.values("subscription").annotate(n=Count("pk")).values("n")
    last_error = deliveries.exclude(last_error="").order_by("-updated_at").values("last_error")[:1]
    return rows.annotate(
        tcount=Coalesce(Subquery(count), 0),
        last_failure=Case(When(Q(failing_since__isnull=False, disabled_reason=""),
                               then=Subquery(last_error)),
                          default=Value(""), output_field=CharField()))


def newest_first(tenant):
    """The tenant's routes, newest first as EmailEngine lists them, ready for ``entry``.
    Paging counts this queryset: the annotations are left out of the count."""
    return _annotated(_tenant_routes(tenant)).order_by("-created_at", "-id")


def find(tenant, route_id: str) -> WebhookSubscription:
    """The tenant's route of this id, ready for ``detail``; ``WebhookRouteNotFound`` for any
    other id (unknown, not a UUID, another tenant's, the settings' own)."""
    try:
        pk = uuid.UUID(route_id)
    except ValueError:
        raise WebhookRouteNotFound() from None
    found = _annotated(_tenant_routes(tenant).filter(pk=pk)).first()
    if found is None:
        raise WebhookRouteNotFound()
    return found


def error_flag(subscription: WebhookSubscription) -> dict[str, str] | None:
    """EmailEngine's ``webhookErrorFlag``: null while deliveries succeed, else why not. A
    subscription disabled automatically says why (its reason names the last error); one
    failing says the last failed attempt's error."""
    if subscription.disabled_reason:
        return {"message": subscription.disabled_reason}
    if subscription.failing_since is None:
        return None
    message = getattr(subscription, "last_failure", "") or \
        f"Deliveries have failed since {utc_iso(subscription.failing_since)}"
    return {"message": message}


def _name(subscription: WebhookSubscription) -> str:
    """EmailEngine requires a name: a subscription without one is called by its URL's host."""
    return subscription.name or urlsplit(subscription.url).hostname or subscription.url


def entry(subscription: WebhookSubscription) -> dict:
    """A route as ``GET /v1/webhookRoutes`` lists it (a row of ``newest_first`` or ``find``).
    EmailEngine's ``v`` (its version counter) is not there: there is no such counter."""
    return {
        "id": str(subscription.pk),
        "name": _name(subscription),
        "description": subscription.description,
        "created": utc_iso(subscription.created_at),
        "updated": utc_iso(subscription.updated_at),
        "enabled": subscription.enabled,
        "targetUrl": subscription.url,
        "tcount": subscription.tcount,
        "webhookErrorFlag": error_flag(subscription),
        "customHeaders": engine_settings.masked_headers(subscriptions.header_names(subscription)),
    }


def detail(subscription: WebhookSubscription) -> dict:
    """A route as ``GET /v1/webhookRoutes/webhookRoute/{id}`` shows it: ``entry`` and its
    ``content``. There is no mapping function here (payloads are sent as they are)."""
    return {**entry(subscription),
            "content": {"fn": filter_function(subscription.events, subscription.accounts),
                        "map": None}}
