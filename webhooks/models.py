"""The event outbox: every event is a row written in the same transaction as the change.

Writers (account registration now, the sync engine later) call ``webhooks.events.record``
inside their own ``transaction.atomic()``; a dispatcher (issue 6) later moves undispatched rows
to delivery jobs. Because the row commits or rolls back with the change itself, a crash can
never lose an event nor announce a change that did not happen. Redis is not involved here.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class Event(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="events")
    # The account id string, not a foreign key: ``accountDeleted`` must outlive the account.
    account = models.CharField(max_length=256, blank=True, default="")
    event = models.CharField(max_length=64)
    path = models.CharField(max_length=1024, blank=True, default="")
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    # Set together by ``webhooks.sequencer.publish_pending``: the event's place in the one
    # order every reader (webhook delivery, live stream, change feed) follows. Unset while
    # the event may still be withdrawn (``mailboxes.sync.moves``).
    dispatched_at = models.DateTimeField(null=True, blank=True)
    seq = models.BigIntegerField(null=True, blank=True, unique=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            # For quickly finding what the dispatcher still has to send.
            models.Index(
                fields=["created_at"],
                name="event_undispatched",
                condition=models.Q(dispatched_at__isnull=True),
            ),
            models.Index(fields=["tenant", "account", "created_at"], name="event_by_account"),
            models.Index(fields=["tenant", "seq"], name="event_tenant_seq"),
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.account} {self.id}"
