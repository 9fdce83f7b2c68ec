"""Recording events into the outbox (``webhooks.models.Event``).

Call ``record`` inside the transaction that makes the change the event describes. An event
recorded with ``hold`` waits unpublished until ``release_held`` (or ``HOLD_SECONDS``), so that
its writer can still ``withdraw`` it (``mailboxes.sync.moves``).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from emailapi.lib import metrics
from webhooks import sequencer
from webhooks.models import Event

ACCOUNT_ADDED = "accountAdded"
ACCOUNT_DELETED = "accountDeleted"
ACCOUNT_INITIALIZED = "accountInitialized"
AUTHENTICATION_ERROR = "authenticationError"
AUTHENTICATION_SUCCESS = "authenticationSuccess"
CONNECT_ERROR = "connectError"
MAILBOX_NEW = "mailboxNew"
MAILBOX_DELETED = "mailboxDeleted"
MAILBOX_RESET = "mailboxReset"
MESSAGE_NEW = "messageNew"
MESSAGE_UPDATED = "messageUpdated"
MESSAGE_DELETED = "messageDeleted"
MESSAGE_MOVED = "messageMoved"
MESSAGE_SENT = "messageSent"
MESSAGE_FAILED = "messageFailed"
# A send attempt failed and will be tried again (EmailEngine's name; the last failure is
# ``messageFailed``).
MESSAGE_DELIVERY_ERROR = "messageDeliveryError"
# A bounce (a delivery status notification) or an abuse report arrived in an INBOX
# (``mailboxes.feedback_reports``): recorded with its own ``messageNew``.
MESSAGE_BOUNCE = "messageBounce"
MESSAGE_COMPLAINT = "messageComplaint"
# A list message's recipient unsubscribed, or subscribed again (``mailboxes.unsubscribe``).
LIST_UNSUBSCRIBE = "listUnsubscribe"
LIST_SUBSCRIBE = "listSubscribe"
# A tracked message was opened (its image fetched) or one of its links followed
# (``mailboxes.tracking_events``).
TRACK_OPEN = "trackOpen"
TRACK_CLICK = "trackClick"
# A bulk export finished: its file can be downloaded, or it failed (``mailboxes.exports``).
EXPORT_COMPLETED = "exportCompleted"
EXPORT_FAILED = "exportFailed"
# Raised for the tenant when a webhook subscription is disabled after failing too long.
WEBHOOK_DISABLED = "webhookDisabled"

ALL = (ACCOUNT_ADDED, ACCOUNT_DELETED, ACCOUNT_INITIALIZED, AUTHENTICATION_ERROR,
       AUTHENTICATION_SUCCESS, CONNECT_ERROR, MAILBOX_NEW, MAILBOX_DELETED, MAILBOX_RESET,
       MESSAGE_NEW, MESSAGE_UPDATED, MESSAGE_DELETED, MESSAGE_MOVED,
       MESSAGE_SENT, MESSAGE_DELIVERY_ERROR, MESSAGE_FAILED, MESSAGE_BOUNCE, MESSAGE_COMPLAINT,
       LIST_UNSUBSCRIBE, LIST_SUBSCRIBE,
       TRACK_OPEN, TRACK_CLICK, EXPORT_COMPLETED, EXPORT_FAILED, WEBHOOK_DISABLED)


HOLD_SECONDS = 30  # longest a held event waits if the pass that held it never releases it


def record(tenant, event: str, account_id: str = "", data: dict[str, Any] | None = None,
           path: str = "", hold: bool = False, event_id: uuid.UUID | None = None,
           created_at: datetime | None = None) -> Event:
    """``tenant`` is a Tenant or its primary key. ``hold`` keeps the event unpublished until
    released (``mailboxes.sync.moves.MoveTracker.release``) or for ``HOLD_SECONDS``.

    ``event_id`` and ``created_at`` are for a writer that may record the same event twice
    (``mailboxes.tracking_spool``: once directly, once from the spool after a commit whose
    answer was lost): the id chosen before the first try makes a repeat a key conflict, and
    ``created_at`` is when it happened (the payload's ``date``) rather than when it was
    written. Publication order is ``seq``, given after commit (``webhooks.sequencer``), so an
    earlier ``created_at`` never puts an event before one already published."""
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    held_until = timezone.now() + timedelta(seconds=HOLD_SECONDS) if hold else None
    fields = {"id": event_id} if event_id is not None else {}
    if created_at is not None:
        fields["created_at"] = created_at
    row = Event.objects.create(tenant_id=tenant_id, account_id=account_id, event=event,
                               data=data or {}, path=path, held_until=held_until, **fields)
    metrics.events_recorded((event,))
    _ring_after_commit()
    return row


def record_many(tenant, rows: list[tuple[str, str, dict[str, Any], str]]) -> list[Event]:
    """Record (event, account_id, data, path) rows in one INSERT: a change seen on thousands of
    messages at once (all marked read) is one statement, not one per message."""
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    now = timezone.now()
    # Published in (created_at, id) order and ids are random: distinct times keep the rows'
    # order.
    created = Event.objects.bulk_create(
        [Event(tenant_id=tenant_id, event=event, account_id=account_id, data=data, path=path,
               created_at=now + timedelta(microseconds=number))
         for number, (event, account_id, data, path) in enumerate(rows)], batch_size=1000)
    if created:
        metrics.events_recorded(row[0] for row in rows)
        _ring_after_commit()
    return created


def release_held(pks: list) -> None:
    """Let the held events ``pks`` (those not dispatched yet) be published now; wake the publisher."""
    Event.objects.filter(pk__in=pks, dispatched_at__isnull=True).update(held_until=None)
    sequencer.ring_recorded()


def withdraw(pk) -> bool:
    """Delete the event ``pk`` unless it was already dispatched (then it stands: nothing said
    is taken back); return whether it was deleted."""
    deleted, _ = Event.objects.filter(pk=pk, dispatched_at__isnull=True).delete()
    return bool(deleted)


def _ring_after_commit() -> None:
    """Wake the publisher once the transaction commits (once per transaction, however many
    events it records: a sync pass may record thousands)."""
    if not any(func is sequencer.ring_recorded for _, func, _ in connection.run_on_commit):
        transaction.on_commit(sequencer.ring_recorded)
