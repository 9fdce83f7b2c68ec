"""The event outbox: every event is a row written in the same transaction as the change.

Writers (account registration, the sync engine, the send outbox) call
``webhooks.events.record`` inside their own ``transaction.atomic()``; the dispatcher then gives
each committed event its place in the order (``webhooks.sequencer``) and a ``Delivery`` row per
interested subscription (``webhooks.delivery_state``). Because the row commits or rolls back
with the change itself, a crash can never lose an event nor announce a change that did not
happen. Redis is not involved here.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class Event(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="events")
    # The account id string, not a foreign key: ``accountDeleted`` must outlive the account.
    account_id = models.CharField(max_length=256, blank=True, default="")
    event = models.CharField(max_length=64)
    path = models.CharField(max_length=1024, blank=True, default="")
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    # Set together by ``webhooks.sequencer.publish_pending``: the event's place in the one
    # order every reader (webhook delivery, live stream, change feed) follows. Unset while
    # the event may still be withdrawn (``mailboxes.sync.moves``).
    dispatched_at = models.DateTimeField(null=True, blank=True)
    seq = models.BigIntegerField(null=True, blank=True, unique=True)
    # Not published before this time: one half of a possible move, held while the sync pass
    # that recorded it may still pair it with the other half (``mailboxes.sync.moves``).
    # The pass releases it at its end; a pass that died releases it by this timeout.
    held_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            # For quickly finding what the dispatcher still has to send.
            models.Index(
                fields=["created_at"],
                name="event_undispatched",
                condition=models.Q(dispatched_at__isnull=True),
            ),
            models.Index(fields=["tenant", "account_id", "created_at"], name="event_by_account"),
            models.Index(fields=["tenant", "seq"], name="event_tenant_seq"),
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.account_id} {self.id}"


FORMATS = [("emailapi", "emailapi"), ("emailengine", "emailengine"), ("standard", "standard")]


# EmailEngine event name -> our events that also carry it (``webhooks.payloads.engine_events``).
ENGINE_SOURCES = {
    "messageNew": ("messageMoved",),
    "messageDeleted": ("messageMoved",),
    "messageDeliveryError": ("messageFailed",),
    "mailboxNew": ("accountInitialized",),
}


class WebhookSubscription(models.Model):
    """Where a tenant wants its events POSTed, and which ones.

    The signing secret, the custom request headers (which often carry credentials, e.g.
    ``Authorization``) and the password of a ``user:password@`` URL are sealed with
    ``accounts.crypto`` and never returned by the API: the secret is shown once, at creation
    and on rotation; headers only by name; ``url`` holds the URL with ``******`` for its
    password (``webhooks.url_userinfo``), so what is stored in clear is what may be shown.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE,
                               related_name="webhook_subscriptions")
    # The tenant's words for it (optional; EmailEngine's webhook routes have a name and a
    # description, ``webhooks.routes``).
    name = models.CharField(max_length=256, blank=True, default="")
    description = models.CharField(max_length=1024, blank=True, default="")
    url = models.CharField(max_length=2048)  # the password of its user:password@ masked
    events = models.JSONField(default=list)  # event names, or ["*"] for every event
    accounts = models.JSONField(default=list)  # account ids; empty = every account
    sealed_headers = models.TextField(blank=True, default="")
    sealed_secret = models.TextField()
    # The password of ``url``'s ``user:password@``, sent as HTTP Basic ("" without one).
    sealed_url_password = models.TextField(blank=True, default="")
    enabled = models.BooleanField(default=True)
    # The request's shape: ours, EmailEngine's, or Standard Webhooks' (``webhooks.payloads``,
    # ``webhooks.signed_request``).
    format = models.CharField(max_length=16, choices=FORMATS, default="emailapi")
    # Set at the first failed attempt of a streak, cleared by any success: a subscription
    # failing for WEBHOOK_DISABLE_AFTER seconds is disabled with ``disabled_reason``.
    failing_since = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=1024, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["tenant", "created_at"], name="webhook_by_tenant")]

    def wants(self, event: Event) -> bool:
        """Does this subscription receive ``event``? (An account filter excludes events that
        belong to no account.)"""
        if "*" not in self.events and event.event not in self.events and not (
                self.format == "emailengine" and event.event in self._engine_sources()):
            return False
        return not self.accounts or event.account_id in self.accounts

    def _engine_sources(self) -> set[str]:
        """Our events that EmailEngine's names in ``events`` ask for too (``_FAN_OUT_SQL``)."""
        return {source for name, sources in ENGINE_SOURCES.items() if name in self.events
                for source in sources}

    def __str__(self) -> str:
        return f"{self.url} ({self.id})"


class Delivery(models.Model):
    """One event owed to one subscription, and the story of its attempts.

    Deliveries of one (subscription, account) form a *lane*, delivered strictly in ``seq``
    order: only the lane's lowest open row (its head) is ever attempted, so a failing head
    holds back its own lane and nothing else. All delivery state lives here; Redis only wakes
    the dispatcher, so losing Redis loses no delivery.

        pending --claim--> delivering --2xx--> delivered
           ^                    |
           +---- failure -------+--- schedule exhausted / webhook disabled ---> failed
    """

    class State(models.TextChoices):
        PENDING = "pending"
        DELIVERING = "delivering"
        DELIVERED = "delivered"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No index of its own: the three below lead with it. Every index costs a write on each
    # of a delivery's two updates (claimed, delivered; neither can be HOT, ``state`` being
    # indexed), the dispatcher's main cost in the database.
    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE,
                                     related_name="deliveries", db_index=False)
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    # Copies of the event's account and seq: the lane key and its order, in one table.
    account_id = models.CharField(max_length=256, blank=True, default="")
    seq = models.BigIntegerField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.IntegerField(default=0)
    last_status_code = models.IntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=1024, blank=True, default="")
    response_time_ms = models.IntegerField(null=True, blank=True)
    # The start of the receiver's last answer (RESPONSE_EXCERPT characters), for the log.
    last_response = models.TextField(blank=True, default="")
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # While ``delivering``: a dispatcher that died mid-attempt loses its claim at this time.
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["subscription", "event"], name="delivery_once"),
        ]
        indexes = [
            # Lane heads: the open rows of a lane in order.
            models.Index(fields=["subscription", "account_id", "seq"], name="delivery_open_lane",
                         condition=models.Q(state__in=["pending", "delivering"])),
            models.Index(fields=["subscription", "created_at"], name="delivery_log"),
            # Pruning: finished rows only, so claiming a delivery writes no entry here; and
            # no index leads with ``state``, which the planner took for ``advance``'s
            # lookups while it still held every claim's dead entry.
            models.Index(fields=["updated_at"], name="delivery_finished",
                         condition=models.Q(state__in=["delivered", "failed"])),
        ]

    def __str__(self) -> str:
        return f"{self.subscription_id} {self.event_id} {self.state}"


class FanOutCursor(models.Model):
    """The highest event ``seq`` already turned into deliveries (one row). Kept in the
    database, in the same transaction as the deliveries it created, so a restart neither
    skips nor repeats an event."""

    last_seq = models.BigIntegerField(default=0)


class EngineSettings(models.Model):
    """A tenant's EmailEngine-style settings (``GET/POST /v1/settings``,
    ``webhooks.engine_settings``).

    The webhook keys (``webhooks``, ``webhooksEnabled``, ``webhookEvents``,
    ``webhooksCustomHeaders``, ``serviceSecret``) are kept here and applied to
    ``subscription``, the tenant's default subscription (format ``emailengine``), which exists
    while ``webhooks`` is a URL. The ``notify*`` keys shape what ``webhooks.engine_format`` puts
    in that subscription's ``messageNew`` (``inboxNewOnly`` also filters the messageNew of the
    accounts' own webhook URLs, EmailEngine's default route too); ``serviceUrl`` is every
    ``emailengine`` subscription's envelope field (and where a send's links point); ``trackOpens`` and
    ``trackClicks`` are sends' defaults; ``proxyUrl`` with ``proxyEnabled`` is the proxy of
    the tenant's mail connections that name none. Secrets are sealed like a subscription's.
    """

    tenant = models.OneToOneField("accounts.Tenant", on_delete=models.CASCADE,
                                  related_name="engine_settings")
    subscription = models.ForeignKey(WebhookSubscription, null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="+")
    webhooks_enabled = models.BooleanField(default=False)
    webhooks_url = models.CharField(max_length=2048, blank=True, default="")  # password masked
    sealed_webhooks_password = models.TextField(blank=True, default="")  # ``webhooks_url``'s
    webhook_events = models.JSONField(default=list)  # EmailEngine's names; empty = all
    sealed_headers = models.TextField(blank=True, default="")
    sealed_service_secret = models.TextField(blank=True, default="")
    service_url = models.CharField(max_length=2048, blank=True, default="")
    notify_text = models.BooleanField(default=False)
    notify_text_size = models.IntegerField(null=True, blank=True)
    notify_headers = models.JSONField(default=list)
    notify_attachments = models.BooleanField(default=False)
    notify_attachment_size = models.IntegerField(null=True, blank=True)
    # EmailEngine's inboxNewOnly: messageNew only for mail in the Inbox, on the default route
    # (this subscription and the accounts' own webhook URLs); notifyWebSafeHtml: messageNew's
    # text.html web-safe; notifyCalendarEvents: messageNew's calendarEvents.
    inbox_new_only = models.BooleanField(default=False)
    notify_web_safe_html = models.BooleanField(default=False)
    notify_calendar_events = models.BooleanField(default=False)
    # A send's trackOpens / trackClicks when it gives none (``mailboxes.tracking.wanted``);
    # null: never set, so the send's ``trackingEnabled`` decides, as in EmailEngine.
    track_opens = models.BooleanField(null=True, blank=True)
    track_clicks = models.BooleanField(null=True, blank=True)
    # EmailEngine's proxyUrl / proxyEnabled: the proxy the tenant's accounts without one of
    # their own connect through (``accounts.mail_proxy``). The URL is kept with its password
    # masked, the password sealed apart, as ``webhooks_url``'s.
    proxy_url = models.CharField(max_length=2048, blank=True, default="")
    sealed_proxy_password = models.TextField(blank=True, default="")
    proxy_enabled = models.BooleanField(default=False)
    # When the route through it last changed (set, moved, enabled): an account's password or
    # token stored before then goes through it only over TLS that verifies the server's
    # certificate (``accounts.secret_routes``). Null: no route set since this was kept.
    proxy_route_set_at = models.DateTimeField(null=True, blank=True)
