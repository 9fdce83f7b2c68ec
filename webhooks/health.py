"""How a webhook subscription is doing, for the dashboard: its deliveries of the last day
(delivered, failed, still retrying), the failure rate, the next attempt, and the account ids
it names that the tenant has no mailbox for (a typo delivers nothing, silently).

Read-only: delivery state changes only in ``webhooks.delivery_state``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Min, Q
from django.utils import timezone

from accounts.models import EmailAccount
from webhooks.models import Delivery, WebhookSubscription

State = Delivery.State
WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Health:
    status: str  # "disabled", "failing" (a failure streak is on) or "healthy"
    delivered: int  # in the last WINDOW
    failed: int
    retrying: int  # pending after a failed attempt
    waiting: int  # pending, not tried yet
    next_attempt_at: datetime | None
    failing_since: datetime | None

    @property
    def attempted(self) -> int:
        return self.delivered + self.failed + self.retrying

    @property
    def failure_rate(self) -> int | None:
        """Percent of the last day's attempted deliveries that failed or are retrying."""
        if not self.attempted:
            return None
        return round(100 * (self.failed + self.retrying) / self.attempted)


def status_of(subscription: WebhookSubscription) -> str:
    if not subscription.enabled:
        return "disabled"
    return "failing" if subscription.failing_since else "healthy"


def health_of(subscription: WebhookSubscription, now: datetime | None = None) -> Health:
    since = (now or timezone.now()) - WINDOW
    rows = Delivery.objects.filter(subscription=subscription)
    counts = rows.filter(created_at__gte=since).aggregate(
        delivered=Count("id", filter=Q(state=State.DELIVERED)),
        failed=Count("id", filter=Q(state=State.FAILED)),
        retrying=Count("id", filter=Q(state__in=[State.PENDING, State.DELIVERING],
                                      attempts__gt=0)),
        waiting=Count("id", filter=Q(state=State.PENDING, attempts=0)))
    # A lane's later rows wait behind its head: a retrying head's time is the next attempt.
    pending = rows.filter(state=State.PENDING)
    next_at = (pending.filter(attempts__gt=0).aggregate(at=Min("next_attempt_at"))["at"]
               or pending.aggregate(at=Min("next_attempt_at"))["at"])
    return Health(status=status_of(subscription), next_attempt_at=next_at,
                  failing_since=subscription.failing_since, **counts)


def unknown_accounts(subscription: WebhookSubscription) -> list[str]:
    """The account ids the subscription filters on that name no mailbox of its tenant."""
    if not subscription.accounts:
        return []
    known = set(EmailAccount.objects.filter(tenant_id=subscription.tenant_id,
                                            account_id__in=subscription.accounts)
                .values_list("account_id", flat=True))
    return [account for account in subscription.accounts if account not in known]
