"""EmailEngine's per-account webhook URL (the account's ``webhooks`` field) as a subscription.

EmailEngine sends an account's events to its own URL instead of the global one. Here that URL
becomes an ordinary subscription of every event of that one account, made, changed and removed
with the account's field; ``EmailAccount.webhook_subscription`` remembers which one it is, so
the API's subscriptions stay the one mechanism (signing, retries, delivery history). It is made
in EmailEngine's format and signed with the tenant's ``serviceSecret`` when one is set
(``webhooks.engine_settings``), so the receiver an EmailEngine client wrote for it verifies it
unchanged.

A URL's ``user:password@`` is sent as HTTP Basic; its password lives sealed in the
subscription only: the account's ``webhooks`` column keeps the URL with the mask in its place
(``accounts.services``), and the mask written back keeps the password for the same server
(``check_url``, then ``subscriptions.url_and_password``).
"""

from __future__ import annotations

from django.db import transaction

from accounts.credentials import MASK  # a header value as GET shows it; written back, kept
from accounts.errors import AccountNotFound
from accounts.models import EmailAccount
from webhooks import engine_settings, subscriptions
from webhooks.models import WebhookSubscription


def held_by_accounts(tenant):
    """The ids of the tenant's subscriptions that are accounts' own ``webhooks`` URLs (a
    queryset, for ``pk__in``): EmailEngine's per-account webhook, not one of its routes."""
    return EmailAccount.objects.filter(tenant=tenant, webhook_subscription__isnull=False) \
        .values("webhook_subscription")


def _subscription_of(email_account: EmailAccount) -> WebhookSubscription | None:
    if not email_account.webhook_subscription:
        return None
    return WebhookSubscription.objects.filter(
        tenant_id=email_account.tenant_id, pk=email_account.webhook_subscription).first()


def check_url(email_account: EmailAccount | None, url: str) -> None:
    """Refuse (``WebhookPasswordNeeded``, naming ``webhooks``) a URL for the account (None: a
    new one) that has the mask for its password where no stored password may stand in. Called
    before the account is saved with it, so a refused URL changes nothing."""
    subscription = _subscription_of(email_account) if email_account is not None else None
    stored = (subscription.url, subscriptions.url_password_of(subscription)) \
        if subscription is not None else ("", None)
    subscriptions.url_and_password(url, *stored, "webhooks")


def check_headers_change(email_account: EmailAccount) -> None:
    """Before new custom headers (``webhooksCustomHeaders`` without ``webhooks``) are saved:
    an account whose subscription is gone (deleted through ``/v1/webhooks``) gets a new one
    from its ``webhooks`` URL, which cannot be made when that URL's password went with the
    old subscription (``WebhookPasswordNeeded``, naming ``webhooks``)."""
    if email_account.webhooks and _subscription_of(email_account) is None:
        check_url(None, email_account.webhooks)


def follow_account_webhook(email_account: EmailAccount, headers: dict[str, str] | None = None,
                           url: str | None = None) -> WebhookSubscription | None:
    """Make the account's subscription match its ``webhooks`` URL: create it, point it at a
    new URL, or delete it when the URL was cleared. ``url`` is that URL as the client gave it
    (None: not given): the account keeps it with its password masked, so the password comes
    from here (``check_url`` first). ``headers`` (EmailEngine's ``webhooksCustomHeaders``;
    None: unchanged) become the subscription's custom headers. Returns the subscription, if
    any."""
    with transaction.atomic():
        locked = EmailAccount.objects.select_for_update().filter(pk=email_account.pk).first()
        if locked is None:  # deleted meanwhile: no subscription for an account that is gone
            raise AccountNotFound(email_account.account_id)
        email_account = locked
        subscription = _subscription_of(email_account)
        if not email_account.webhooks:
            if subscription is not None:
                subscriptions.delete(subscription)
            if email_account.webhook_subscription:
                email_account.webhook_subscription = None
                email_account.save(update_fields=["webhook_subscription"])
            return None
        # Not given: a subscription there keeps its own URL (and the password sealed with
        # it); one made anew takes the account's (``check_url`` refused a masked one first).
        wanted = {"accounts": [email_account.account_id]}
        if url is not None or subscription is None:
            wanted["url"] = email_account.webhooks if url is None else url
        if headers is not None:
            old = subscriptions.headers_of(subscription) if subscription is not None else {}
            wanted["headers"] = {name: old.get(name, "") if value == MASK else value
                                 for name, value in headers.items()}
        if subscription is None:
            subscription, _secret = subscriptions.create(
                email_account.tenant, {**wanted, "events": ["*"], "format": "emailengine"})
            secret = engine_settings.service_secret(email_account.tenant_id)
            if secret:
                subscriptions.set_secret(subscription, secret)
            email_account.webhook_subscription = subscription.pk
            email_account.save(update_fields=["webhook_subscription"])
        elif headers is not None or url is not None \
                or subscription.accounts != wanted["accounts"]:
            subscriptions.update(subscription, wanted)
        return subscription


def header_names_of(email_account: EmailAccount) -> list[str]:
    """The names of the custom headers of the account's own subscription."""
    subscription = _subscription_of(email_account)
    return subscriptions.header_names(subscription) if subscription is not None else []


def drop_account_webhook(email_account: EmailAccount) -> None:
    """Delete the subscription made from the account's URL (the account is being deleted)."""
    subscription = _subscription_of(email_account)
    if subscription is not None:
        subscriptions.delete(subscription)
