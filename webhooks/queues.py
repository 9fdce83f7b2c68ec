"""EmailEngine's queue counters (``GET /v1/settings/queue/{queue}``), read from our own tables.

EmailEngine keeps its work in BullMQ queues and counts their Redis lists. Ours is in PostgreSQL:
``notify`` is the tenant's webhook deliveries (``webhooks.models.Delivery``), ``submit`` its
outbox (``mailboxes.models.OutboxEntry``). Only unfinished rows are counted, through the indexes
that already serve the dispatcher and the outbox listing (a partial index on open deliveries per
subscription; the outbox's ``(tenant, state, ...)``), one query per queue. ``documents`` is
EmailEngine's Document Store queue: there is none here, so it is always empty.

What the four numbers mean here:

- ``active``: being worked on now (a delivery or a send claimed under a lease still running);
- ``delayed``: due later (a retry's backoff, a ``sendAt`` in the future);
- ``waiting``: due now, waiting for a dispatcher or sender (a claim whose lease lapsed, its
  process gone, is waiting again: the sweep hands it out anew);
- ``paused``: always 0, as nothing pauses these queues (see ``PauseUnsupported``).
"""

from __future__ import annotations

from django.db.models import Count, Q
from django.utils import timezone

from emailapi.lib.errors import Invalid, Unimplemented
from mailboxes.models import OutboxEntry
from webhooks.models import Delivery

NOTIFY, SUBMIT, DOCUMENTS = "notify", "submit", "documents"
QUEUES = (NOTIFY, SUBMIT, DOCUMENTS)


class UnknownQueue(Invalid):
    code = "UnknownQueue"
    ee_code = "InputValidationError"

    def __init__(self, queue: str):
        super().__init__(f"Unknown queue {queue[:64]!r}: use one of {', '.join(QUEUES)}",
                         {"queue": [f"Use one of {', '.join(QUEUES)}"]})


class PauseUnsupported(Unimplemented):
    """Pausing would have to hold back every sender or dispatcher of the tenant's lane and
    survive their restarts; not built. Resuming (``paused: false``) is accepted: nothing is
    ever paused."""

    code = "NotImplemented"
    message = ("Pausing a queue is not supported here: deliveries and sends go on. Pause a "
               "webhook (PUT /v1/webhooks/{webhook} with enabled: false) or an account "
               "(PUT /v1/account/{account}/pause) instead")


def check_queue(queue: str) -> str:
    if queue not in QUEUES:
        raise UnknownQueue(queue)
    return queue


def counts(tenant, queue: str) -> dict[str, int]:
    """``{active, delayed, paused, waiting}`` of the tenant's ``queue``."""
    check_queue(queue)
    if queue == NOTIFY:
        return _count(Delivery.objects.filter(
            subscription__tenant=tenant,
            state__in=[Delivery.State.PENDING, Delivery.State.DELIVERING]),
            Delivery.State.PENDING, Delivery.State.DELIVERING)
    if queue == SUBMIT:
        return _count(OutboxEntry.objects.filter(
            tenant=tenant, state__in=[OutboxEntry.State.QUEUED, OutboxEntry.State.SENDING]),
            OutboxEntry.State.QUEUED, OutboxEntry.State.SENDING)
    return {"active": 0, "delayed": 0, "paused": 0, "waiting": 0}


def _count(open_rows, waiting_state: str, claimed_state: str) -> dict[str, int]:
    """One aggregate over the open rows (both tables share the shape: a state waiting for its
    ``next_attempt_at``, a claimed state held until ``lease_until``)."""
    now = timezone.now()
    running = Q(state=claimed_state, lease_until__gt=now)
    lapsed = Q(state=claimed_state) & ~Q(lease_until__gt=now)
    found = open_rows.aggregate(
        active=Count("pk", filter=running),
        delayed=Count("pk", filter=Q(state=waiting_state, next_attempt_at__gt=now)),
        waiting=Count("pk", filter=Q(state=waiting_state, next_attempt_at__lte=now) | lapsed))
    return {"active": found["active"], "delayed": found["delayed"], "paused": 0,
            "waiting": found["waiting"]}
