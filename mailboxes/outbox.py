"""The outbox: messages submitted for sending, and every change of their state.

Each function that changes an entry is one short ``transaction.atomic()`` that updates the row
and records the event the change implies (``messageSent``, ``messageFailed``) in the same
commit, so an event is never raised for a change that did not happen, nor lost for one that
did. None of them touches the network; ``mailboxes.sending`` calls them around its SMTP work.

Claims are fenced: ``claim`` bumps ``attempts`` and every later transition of that attempt
only applies while the row is still ``sending`` with that same ``attempts``. A job that lost
its claim (its lease lapsed and another job took the entry) therefore changes nothing.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import replace
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts import crypto
from accounts.credentials import MASK, master_secrets
from accounts.errors import AccountNotFound
from accounts.models import EmailAccount
from emailapi.lib import tunnels, userinfo
from emailapi.lib.backoff import Schedule
from mailboxes.errors import QueueEntryNotCancellable, QueueEntryNotFound
from mailboxes.models import OutboxEntry
from webhooks import events

logger = logging.getLogger(__name__)

State = OutboxEntry.State
PENDING = (State.QUEUED, State.SENDING)


def default_attempts() -> int:
    """The first try plus one retry per delay of the schedule."""
    return len(settings.SEND_RETRY_SCHEDULE) + 1


def retry_schedule() -> Schedule:
    """``EMAILAPI_SEND_RETRY_SCHEDULE``, its last delay repeating, no jitter."""
    return Schedule(steps=tuple(settings.SEND_RETRY_SCHEDULE))


def retry_delay(attempts_made: int) -> timedelta:
    """Wait before the next try after ``attempts_made`` failed ones (the last delay repeats)."""
    return timedelta(seconds=retry_schedule().delay(attempts_made))


def new_queue_id() -> str:
    return secrets.token_hex(10)


# --- submitting and finding -------------------------------------------------------------


def submit(account: EmailAccount, *, raw: bytes, envelope: dict, message_id: str, subject: str,
           send_at: datetime | None = None, reference: dict | None = None,
           copy: bool | None = None, delivery_attempts: int | None = None,
           gateway: str = "", sent_path: str = "", dsn: dict | None = None,
           local_address: str = "", proxy: str = "", on_due=None) -> OutboxEntry:
    """Store a composed message as a queued entry. ``on_due(entry)`` runs after the commit
    when the entry is due now (the caller enqueues its job); later ones wait for the sweep.
    ``gateway``: the tenant's SMTP gateway it goes through ("" for the account's server);
    ``sent_path``: the folder its copy goes to ("" for the Sent folder); ``dsn``: the
    delivery status notifications to ask for (RFC 3461); ``local_address``: the IP address
    asked to send from, a hint (``mailboxes.local_address``; "" for none); ``proxy``: the
    proxy URL this send goes through instead of the account's ("" for the account's), already
    checked (``tunnels.parse``): kept masked, its password sealed (``proxy_of``)."""
    now = timezone.now()
    queue_id = new_queue_id()
    shown_proxy, sealed_proxy_password = _kept_proxy(proxy, account.tenant_id, queue_id)
    send_at = max(send_at or now, now)
    with transaction.atomic():
        # The account's row held while the entry goes in: a delete running meanwhile either
        # finished (nothing is queued: 404) or waits and takes the new entry with it.
        if not EmailAccount.objects.filter(pk=account.pk).select_for_update(no_key=True).exists():
            raise AccountNotFound(account.account_id)
        entry = OutboxEntry.objects.create(
            tenant_id=account.tenant_id, email_account=account, queue_id=queue_id, raw=raw,
            envelope=envelope, message_id=message_id, subject=subject, reference=reference,
            copy=copy, gateway=gateway, sent_path=sent_path, dsn=dsn or None,
            local_address=local_address, proxy=shown_proxy,
            sealed_proxy_password=sealed_proxy_password,
            max_attempts=delivery_attempts or default_attempts(),
            send_at=send_at,
            next_attempt_at=send_at, created_at=now, updated_at=now,
        )
    if on_due is not None and send_at <= now:
        transaction.on_commit(lambda: on_due(entry))
    return entry


def _proxy_context(tenant_id: int, queue_id: str) -> str:
    return f"tenant:{tenant_id}/outbox:{queue_id}/proxy.pass"


def _kept_proxy(url: str, tenant_id: int, queue_id: str) -> tuple[str, str]:
    """A send's proxy URL as it is kept: masked, and its password sealed ("" for none)."""
    if not url:
        return "", ""
    password = tunnels.parse(url).password
    if password is None:
        return url, ""
    return (userinfo.masked(url, MASK),
            crypto.seal(password, _proxy_context(tenant_id, queue_id), settings.EMAILAPI_SECRET))


def proxy_of(entry: OutboxEntry) -> tunnels.Proxy | None:
    """The proxy the entry's send asked for, its password opened; None when it asked for
    none (the account's applies). ``crypto.DecryptionError`` when the password cannot be
    opened (the key it was sealed with is gone)."""
    if not entry.proxy:
        return None
    proxy = tunnels.parse(entry.proxy)
    if entry.sealed_proxy_password:
        password = crypto.open_secret(entry.sealed_proxy_password,
                                      _proxy_context(entry.tenant_id, entry.queue_id),
                                      master_secrets())
        proxy = replace(proxy, password=password)
    return proxy


def tenant_entries(tenant, state: str | None = None, account: str | None = None):
    """The tenant's entries, oldest first: by default the ones not yet finished."""
    rows = OutboxEntry.objects.filter(tenant=tenant).select_related("email_account")
    rows = rows.filter(state=state) if state else rows.filter(state__in=PENDING)
    if account:
        rows = rows.filter(email_account__account_id=account)
    return rows.defer("raw").order_by("created_at", "id")


def tenant_entry(tenant, queue_id: str) -> OutboxEntry:
    entry = (OutboxEntry.objects.filter(tenant=tenant, queue_id=queue_id)
             .select_related("email_account").defer("raw").first())
    if entry is None:
        raise QueueEntryNotFound(queue_id)
    return entry


def due_entries(now: datetime | None = None, limit: int = 500) -> list[tuple[int, str, bool]]:
    """``(pk, queue_id, lapsed)`` of entries a job should try now: queued ones whose time has
    come, and (``lapsed``) ones left ``sending`` by a job that died: its lease ran out."""
    now = now or timezone.now()
    rows = OutboxEntry.objects.filter(
        Q(state=State.QUEUED, next_attempt_at__lte=now)
        | Q(state=State.SENDING, lease_until__lt=now))
    return [(pk, queue_id, state == State.SENDING) for pk, queue_id, state in
            rows.order_by("next_attempt_at").values_list("pk", "queue_id", "state")[:limit]]


# --- the life of an attempt ---------------------------------------------------------------


def claim(entry_id: int, now: datetime | None = None) -> OutboxEntry | None:
    """Take the entry for one attempt, or None if it is not due, already taken or finished.

    ``skip_locked``: a second job racing for the same row does not wait; it finds nothing.
    An entry whose last allowed attempt was interrupted (the job died while ``sending``) is
    failed here rather than tried beyond its ``deliveryAttempts``."""
    now = now or timezone.now()
    with transaction.atomic():
        entry = (OutboxEntry.objects.select_for_update(skip_locked=True)
                 .filter(Q(state=State.QUEUED, next_attempt_at__lte=now)
                         | Q(state=State.SENDING, lease_until__lt=now), pk=entry_id)
                 .select_related("email_account", "email_account__tenant").first())
        if entry is None:
            return None
        if entry.state == State.SENDING and entry.attempts >= entry.max_attempts:
            _fail(entry, {"error": "The last attempt was interrupted before the server's "
                                   "answer was recorded; the message may have been sent",
                          "code": "Interrupted"}, now)
            return None
        entry.state = State.SENDING
        entry.attempts += 1
        entry.lease_until = now + timedelta(seconds=settings.SEND_LEASE)
        entry.updated_at = now
        entry.save(update_fields=["state", "attempts", "lease_until", "updated_at"])
    return entry


def _claimed(entry: OutboxEntry):
    """The row, still held by this attempt, locked for the transition."""
    return (OutboxEntry.objects.select_for_update()
            .filter(pk=entry.pk, state=State.SENDING, attempts=entry.attempts))


def _lost(entry: OutboxEntry, outcome: str) -> bool:
    logger.warning("outbox %s: attempt %d lost its claim before recording %s",
                   entry.queue_id, entry.attempts, outcome)
    return False


# What ``sentCopy`` says between ``mark_sent`` and ``finish``, and for good if the job stops
# in between (killed, or the database gone for longer than it retries).
COPY_PENDING = {"error": "The copy in Sent is not recorded yet: it is being stored, or the "
                         "job sending the message stopped before it was"}


def mark_sent(entry: OutboxEntry, response: str, rejected: dict[str, str],
              copy_pending: bool = False, network_routing: dict | None = None) -> bool:
    """The server accepted DATA: ``sent``, the content dropped, and one ``messageSent``.
    False if the claim was lost (another attempt owns the entry and records its own outcome).

    The content goes now, not after the Sent copy: the message is out, and a job that stops
    from here on must not leave it behind (the job still holds it in memory for the copy).
    ``copy_pending``: a Sent copy is to follow, and ``sentCopy`` says so until ``finish``.
    ``network_routing``: the local address the attempt went out from (``networkRouting``,
    ``mailboxes.local_address.Route``), None when there is nothing to say.

    Safe to call again after a database fault: when this attempt's own commit went through
    but its answer was lost, the entry is found ``sent`` with this attempt's number (no other
    attempt can have it: a new claim counts one more) and True is returned, no second event."""
    now = timezone.now()
    with transaction.atomic():
        if not _claimed(entry).update(state=State.SENT, response=response, sent_at=now,
                                      lease_until=None, raw=b"",
                                      sent_copy=COPY_PENDING if copy_pending else None,
                                      updated_at=now):
            if not OutboxEntry.objects.filter(pk=entry.pk, state=State.SENT,
                                              attempts=entry.attempts).exists():
                return _lost(entry, "sent")
        else:
            data = {"queueId": entry.queue_id, "messageId": entry.message_id,
                    "response": response, "envelope": entry.envelope}
            if rejected:
                data["rejected"] = rejected
            if network_routing:
                data["networkRouting"] = network_routing
            events.record(entry.tenant_id, events.MESSAGE_SENT, entry.email_account.account_id, data)
    entry.state, entry.response, entry.sent_at = State.SENT, response, now
    return True


def mark_retry(entry: OutboxEntry, error: dict, delay: timedelta,
               network_routing: dict | None = None) -> bool:
    """A transient failure: back to ``queued`` until ``delay`` has passed. ``network_routing``
    as ``mark_sent``'s."""
    now = timezone.now()
    with transaction.atomic():
        if not _claimed(entry).update(state=State.QUEUED, last_error=error, lease_until=None,
                                      next_attempt_at=now + delay, updated_at=now):
            return _lost(entry, "a retry")
        events.record(entry.tenant_id, events.MESSAGE_DELIVERY_ERROR,
                      entry.email_account.account_id, {
                          **_failure_data(entry, error, network_routing),
                          "attempts": entry.max_attempts,
                          "nextAttempt": (now + delay).isoformat()})
    entry.state, entry.last_error, entry.next_attempt_at = State.QUEUED, error, now + delay
    return True


def mark_failed(entry: OutboxEntry, error: dict, network_routing: dict | None = None) -> bool:
    """A permanent failure or the last attempt: ``failed`` (kept) and one ``messageFailed``.
    ``network_routing`` as ``mark_sent``'s."""
    now = timezone.now()
    with transaction.atomic():
        if not _claimed(entry).exists():
            return _lost(entry, "a failure")
        _fail(entry, error, now, network_routing)
    return True


def _fail(entry: OutboxEntry, error: dict, now: datetime,
          network_routing: dict | None = None) -> None:
    OutboxEntry.objects.filter(pk=entry.pk).update(
        state=State.FAILED, last_error=error, lease_until=None, updated_at=now)
    events.record(entry.tenant_id, events.MESSAGE_FAILED, entry.email_account.account_id,
                  _failure_data(entry, error, network_routing))
    entry.state, entry.last_error = State.FAILED, error


def _failure_data(entry: OutboxEntry, error: dict, network_routing: dict | None) -> dict:
    """What ``messageDeliveryError`` and ``messageFailed`` say about a failed attempt."""
    data = {"queueId": entry.queue_id, "messageId": entry.message_id,
            "error": error.get("error"), "code": error.get("code"),
            "responseCode": error.get("responseCode"), "envelope": entry.envelope,
            "attemptsMade": entry.attempts}
    if error.get("command"):
        data["command"] = error["command"]
    if network_routing:
        data["networkRouting"] = network_routing
    return data


def finish(entry: OutboxEntry, sent_copy: dict | None) -> None:
    """After the Sent copy: note where it went (or, in words, why it is not there or not
    indexed). Idempotent, like every step after the server accepted the message."""
    OutboxEntry.objects.filter(pk=entry.pk, state=State.SENT).update(
        sent_copy=sent_copy, raw=b"", updated_at=timezone.now())
    entry.sent_copy = sent_copy


def cancel(entry: OutboxEntry) -> None:
    """``queued`` → ``cancelled``; an entry being sent, or finished, cannot be (409); one
    gone meanwhile (its account deleted since the caller found it) is not found (404)."""
    with transaction.atomic():
        current = OutboxEntry.objects.select_for_update().filter(pk=entry.pk).first()
        if current is None:
            raise QueueEntryNotFound(entry.queue_id)
        if current.state != State.QUEUED:
            raise QueueEntryNotCancellable(entry.queue_id, current.state)
        current.state, current.lease_until = State.CANCELLED, None
        current.raw, current.updated_at = b"", timezone.now()
        current.save(update_fields=["state", "lease_until", "raw", "updated_at"])
    entry.state = State.CANCELLED
