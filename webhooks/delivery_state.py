"""Delivery rows: every change of their state, each in one short transaction or statement.

* ``fan_out`` turns published events (in ``seq`` order, after ``FanOutCursor``) into
  deliveries for the subscriptions that want them, advancing the cursor in the same commit.
* ``due_heads`` finds the lanes whose head may be attempted now; ``claim_run`` reads the
  lane's leading due deliveries under a row lock and claims the first (``pending`` ->
  ``delivering``, or a lapsed lease), so two dispatchers never send one delivery at once nor
  split a lane; ``advance`` records each success and claims the next delivery of the run in
  one statement. ``advance``/``record_failure`` are fenced on the claim (state
  ``delivering`` and the same ``attempts``), so a dispatcher that lost its claim changes
  nothing.
* ``record_failure`` schedules the retry (``WEBHOOK_RETRY_SCHEDULE``, +-20 % jitter), fails
  the delivery when the schedule is spent, and disables a subscription that has had no
  success for ``WEBHOOK_DISABLE_AFTER`` seconds (raising ``webhookDisabled``); ``recovered``
  ends the failure streak at the next success and makes the subscription's waiting retries
  due at once.
* ``prune`` deletes old delivery log rows and old published events.

Delivery is at least once: a dispatcher killed after the receiver answered but before
``advance`` committed sends that one delivery again once its lease lapses (one per lane at
most: only a lane's head is ever ``delivering``).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, Max, OuterRef
from django.utils import timezone

from emailapi.lib.backoff import Schedule
from emailapi.lib.http import TOTAL_TIMEOUTS
from emailapi.lib.rows import ModelColumns, bound_cursor, prepared_rows
from webhooks import events, sequencer
from webhooks.errors import DeliveryNotFound
from webhooks.group_commit import GroupCommit
from webhooks.models import ENGINE_SOURCES, Delivery, Event, FanOutCursor, WebhookSubscription
from webhooks.transport import Outcome

State = Delivery.State
OPEN = (State.PENDING, State.DELIVERING)
# How long a claim lasts: the longest one request may take (``emailapi.lib.http`` ends every
# request, however slowly its answer drips, within TOTAL_TIMEOUTS timeouts), with room to
# record it.
LEASE_MARGIN = 30


def lease_seconds() -> int:
    return TOTAL_TIMEOUTS * settings.WEBHOOK_TIMEOUT + LEASE_MARGIN


@contextmanager
def _atomic_relaxed():
    """A transaction whose commit does not wait for the WAL flush (PostgreSQL).

    Safe for delivery state only: a commit lost to a database crash means a delivery is
    created again from the fan-out cursor, or sent again, which at-least-once allows. (Never
    for publishing: a ``seq`` a stream client saw must not be handed out again; and any later
    synchronous commit flushes these ones too.) Saves an fsync per step on the hot path. The
    ``webhookdispatcher`` command's sessions commit this way throughout (so ``advance``, a
    single statement, needs no transaction around it).
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield


# --- fan-out ------------------------------------------------------------------------------


def fan_out(limit: int = 1000) -> int:
    """Create deliveries for up to ``limit`` published events; return how many events."""
    with _atomic_relaxed():
        cursor = FanOutCursor.objects.select_for_update().filter(pk=1).first()
        if cursor is None:  # first run; the row lock below serialises later ones
            FanOutCursor.objects.get_or_create(pk=1)
            cursor = FanOutCursor.objects.select_for_update().get(pk=1)
        seqs = list(Event.objects.filter(seq__gt=cursor.last_seq).order_by("seq")
                    .values_list("seq", flat=True)[:limit])
        if not seqs:
            return 0
        if connection.vendor == "postgresql":
            with connection.cursor() as sql:
                sql.execute(_FAN_OUT_SQL, {"after": cursor.last_seq, "upto": seqs[-1],
                                           "now": timezone.now()})
        else:
            _fan_out_rows(cursor.last_seq, seqs[-1])
        cursor.last_seq = seqs[-1]
        cursor.save(update_fields=["last_seq"])
    return len(seqs)


def _engine_sources_sql() -> str:
    """``ENGINE_SOURCES`` as SQL: an emailengine subscription asking for one of EmailEngine's
    names also receives our events that carry it (one table for this and ``wants``)."""
    asked_by: dict[str, list[str]] = {}
    for name, sources in ENGINE_SOURCES.items():
        for source in sources:
            asked_by.setdefault(source, []).append(name)
    quoted = [name for names in asked_by.values() for name in names] + list(asked_by)
    assert all(name.isalnum() for name in quoted), "event names go into the SQL as literals"
    return " OR ".join(
        f"(e.event = '{source}' AND s.events ?| array[{', '.join(repr(n) for n in names)}])"
        for source, names in asked_by.items())


# The deliveries of the events in a seq range, in one statement: loading the events (their
# data too) and creating a model per delivery cost the dispatcher's loop more CPU than
# sending them. The filter is ``WebhookSubscription.wants`` in SQL.
_FAN_OUT_SQL = f"""
    INSERT INTO {Delivery._meta.db_table} (id, subscription_id, event_id, account_id, seq, state,
        attempts, last_error, last_response, next_attempt_at, created_at, updated_at)
    SELECT gen_random_uuid(), s.id, e.id, e.account_id, e.seq, 'pending', 0, '', '',
        %(now)s, %(now)s, %(now)s
    FROM {Event._meta.db_table} AS e
    JOIN {WebhookSubscription._meta.db_table} AS s ON s.tenant_id = e.tenant_id AND s.enabled
    WHERE e.seq > %(after)s AND e.seq <= %(upto)s
      AND (s.events ? '*' OR s.events ? e.event
           OR (s.format = 'emailengine' AND ({_engine_sources_sql()})))
      AND (s.accounts = '[]'::jsonb OR s.accounts ? e.account_id)
    ON CONFLICT DO NOTHING
"""


def _fan_out_rows(after: int, upto: int) -> None:
    """``_FAN_OUT_SQL`` for other databases (SQLite, for ``make run``)."""
    batch = list(Event.objects.filter(seq__gt=after, seq__lte=upto).defer("data"))
    wanted: dict[int, list[WebhookSubscription]] = {}
    for subscription in WebhookSubscription.objects.filter(
            enabled=True, tenant_id__in={event.tenant_id for event in batch}):
        wanted.setdefault(subscription.tenant_id, []).append(subscription)
    now = timezone.now()
    rows = [Delivery(subscription=subscription, event=event, account_id=event.account_id,
                     seq=event.seq, next_attempt_at=now, created_at=now, updated_at=now)
            for event in batch for subscription in wanted.get(event.tenant_id, ())
            if subscription.wants(event)]
    Delivery.objects.bulk_create(rows, batch_size=500, ignore_conflicts=True)


# --- lanes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Head:
    delivery_id: object
    subscription_id: object
    account: str
    failing: bool
    due_at: datetime


def _open_heads():
    earlier = Delivery.objects.filter(subscription=OuterRef("subscription"),
                                      account_id=OuterRef("account_id"), state__in=OPEN,
                                      seq__lt=OuterRef("seq"))
    return (Delivery.objects.filter(state__in=OPEN, subscription__enabled=True)
            .exclude(Exists(earlier)))


# The lane heads on PostgreSQL: a skip scan of ``delivery_open_lane`` (one index descent per
# lane, to its lowest open seq), so a pass costs the number of lanes, not of open deliveries.
# The ORM's NOT EXISTS form let the planner, with no statistics yet on a table just filled by
# a burst of events, pick a nested-loop anti join over every pair of open rows: 140 ms of
# database CPU per pass at 5,000 open deliveries, growing with their square, during which
# the dispatcher's loop started no lane.
_HEADS_SQL = f"""
    WITH RECURSIVE lanes AS (
        (SELECT d.subscription_id, d.account_id, d.seq, d.id, d.state, d.next_attempt_at,
                d.lease_until
         FROM {Delivery._meta.db_table} AS d
         WHERE d.state IN ('pending', 'delivering')
         ORDER BY d.subscription_id, d.account_id, d.seq LIMIT 1)
        UNION ALL
        SELECT n.* FROM lanes AS l CROSS JOIN LATERAL (
            SELECT d.subscription_id, d.account_id, d.seq, d.id, d.state, d.next_attempt_at,
                   d.lease_until
            FROM {Delivery._meta.db_table} AS d
            WHERE d.state IN ('pending', 'delivering')
              AND (d.subscription_id, d.account_id) > (l.subscription_id, l.account_id)
            ORDER BY d.subscription_id, d.account_id, d.seq LIMIT 1) AS n
    )
    SELECT l.id, l.subscription_id, l.account_id, l.state, l.next_attempt_at, l.lease_until,
           s.failing_since
    FROM lanes AS l
    JOIN {WebhookSubscription._meta.db_table} AS s ON s.id = l.subscription_id AND s.enabled
    ORDER BY l.next_attempt_at LIMIT %(limit)s
"""


def due_heads(now: datetime, limit: int = 1000) -> tuple[list[Head], datetime | None]:
    """The lane heads that may be attempted now, oldest due first, and when the next one
    not yet due becomes due (``None`` if none waits)."""
    heads = []
    next_due = None
    if connection.vendor == "postgresql":
        rows = prepared_rows(_HEADS_SQL, {"limit": limit})
    else:
        rows = (_open_heads().order_by("next_attempt_at")
                .values_list("id", "subscription_id", "account_id", "state", "next_attempt_at",
                             "lease_until", "subscription__failing_since")[:limit])
    for pk, subscription_id, account, state, next_at, lease_until, failing in rows:
        due_at = next_at if state == State.PENDING else (lease_until or now)
        if due_at <= now:
            heads.append(Head(pk, subscription_id, account, failing is not None, due_at))
        elif next_due is None or due_at < next_due:
            next_due = due_at
    return heads, next_due


RUN_LENGTH = 50


def _claimable(delivery: Delivery, now: datetime) -> bool:
    if delivery.state == State.PENDING:
        return delivery.next_attempt_at <= now
    return delivery.lease_until is not None and delivery.lease_until < now


def lease_until(now: datetime) -> datetime:
    return now + timedelta(seconds=lease_seconds())


def claim_run(subscription_id, account: str, limit: int = RUN_LENGTH,
              now: datetime | None = None) -> list[Delivery]:
    """Read the lane's leading open deliveries that are due, in seq order (with their
    subscription and event), and claim the first for its attempt (``delivering``, its
    ``attempts`` counted, a lease); ``advance`` claims each next one as its predecessor is
    recorded delivered.

    The run stops at the first delivery not due (a retry waiting, another dispatcher's live
    claim): nothing may overtake it. The lane's first rows are locked while the run is
    chosen, so two dispatchers never split a lane between them; afterwards the lane's head is
    always the claimed delivery, so nobody else starts on it. Only one delivery of a lane is
    ever ``delivering``: a dispatcher killed at any moment leaves at most that one sent but
    unrecorded (it is sent again once its lease lapses), and an attempt is counted only when
    its request is about to go out.
    """
    now = now or timezone.now()
    with _atomic_relaxed():
        subscription = WebhookSubscription.objects.filter(pk=subscription_id,
                                                          enabled=True).first()
        if subscription is None:
            return []
        rows = _lane_rows(subscription_id, account, limit)
        run = []
        for delivery in rows:
            if not _claimable(delivery, now):
                break
            delivery.subscription = subscription  # one object for the run, not one per row
            run.append(delivery)
        if not run:
            return []
        head = run[0]
        head.lease_until = lease_until(now)
        _claim_head(head, now)
    head.state = State.DELIVERING
    head.attempts += 1
    return run


# The columns a run is sent with; the rest (the outcome of earlier attempts, which can be a
# 2 KB excerpt, and the event's bookkeeping) are left deferred.
_RUN_DELIVERY = ("last_status_code", "last_error", "response_time_ms", "last_response",
                 "updated_at")
_RUN_EVENT = ("dispatched_at", "held_until")


@lru_cache(maxsize=1)
def _run_columns() -> tuple[ModelColumns, ModelColumns, str]:
    deliveries = ModelColumns(Delivery, "d", _RUN_DELIVERY)
    events_ = ModelColumns(Event, "e", _RUN_EVENT)
    # The state is a literal list here: it is what lets the planner use the partial index of
    # open lanes (``delivery_open_lane``).
    sql = f"""
        SELECT {deliveries.select}, {events_.select}
        FROM {Delivery._meta.db_table} AS d
        JOIN {Event._meta.db_table} AS e ON e.id = d.event_id
        WHERE d.subscription_id = %(subscription)s AND d.account_id = %(account)s
          AND d.state IN ('pending', 'delivering')
        ORDER BY d.seq LIMIT %(limit)s
        FOR UPDATE OF d
    """
    return deliveries, events_, sql


_CLAIM_SQL = f"""
    UPDATE {Delivery._meta.db_table}
    SET state = 'delivering', attempts = attempts + 1, updated_at = %(now)s,
        lease_until = %(lease)s
    WHERE id = %(id)s
"""


def _claim_head(head: Delivery, now: datetime) -> None:
    """``head`` (locked by ``_lane_rows``) is being attempted: ``delivering`` until its lease."""
    if connection.vendor != "postgresql":
        Delivery.objects.filter(pk=head.pk).update(
            state=State.DELIVERING, attempts=F("attempts") + 1, updated_at=now,
            lease_until=head.lease_until)
        return
    with bound_cursor() as cursor:
        cursor.execute(_CLAIM_SQL, {"now": now, "lease": head.lease_until, "id": head.pk},
                       prepare=True)


def _lane_rows(subscription_id, account: str, limit: int) -> list[Delivery]:
    """The lane's first ``limit`` open deliveries in seq order, with their events, locked. On
    PostgreSQL by a prepared statement of the columns a run needs: a run is read for every
    ``RUN_LENGTH`` deliveries sent, and the queryset's compilation, its other columns and the
    related object machinery were about a third of the dispatcher's CPU."""
    if connection.vendor != "postgresql":
        return list(Delivery.objects.filter(subscription_id=subscription_id, account_id=account,
                                            state__in=OPEN)
                    .select_related("event").select_for_update(of=("self",))
                    .order_by("seq")[:limit])
    deliveries, events_, sql = _run_columns()
    split = len(deliveries)
    out = []
    for row in prepared_rows(sql, {"subscription": subscription_id, "account": account,
                                   "limit": limit}):
        delivery = deliveries.instance(row[:split])
        delivery.event = events_.instance(row[split:])
        out.append(delivery)
    return out


_TABLE = Delivery._meta.db_table
# PostgreSQL, in one round trip, for each row of ``advance``'s: ``sent`` delivered (if still
# ours) and, only then, ``following`` claimed (if still pending and its subscription
# enabled). For each row in order: whether ``sent`` was recorded, and whether ``following``
# is ours, also when an earlier try of this very row committed but its answer was lost
# (``following`` then carries our lease, to the microsecond: the last EXISTS reads the rows
# as they were before this statement). ``following`` goes as text: a batch of rows without
# one would otherwise be an array of NULLs of no known type. The arrays but ``response`` go
# as literals (``_array``), typed by the casts here, so a custom plan still knows how many
# rows each statement has (and looks each up by key).
# The states are compared with columns of ``input``, not literals: a literal state made the
# planner find the rows through an index on state (``delivery_open_lane``'s predicate), whose
# entries for every dead row version of a claim it then read, thousands per statement, rather
# than look each row up by its key.
_ADVANCE_SQL = f"""
    WITH input AS MATERIALIZED (
        SELECT t.*, 'delivering'::text AS busy, 'pending'::text AS waiting
        FROM unnest(%(sent)s::uuid[], %(sent_attempts)s::int[], %(status)s::int[],
                    %(response)s::text[], %(ms)s::int[], %(following)s::text[],
                    %(following_attempts)s::int[], %(lease)s::timestamptz[],
                    %(subscription)s::uuid[], %(now)s::timestamptz[])
            WITH ORDINALITY AS t(sent, sent_attempts, status, response, ms, following,
                                 following_attempts, lease, subscription, now, n)
    ), done AS (
        UPDATE {_TABLE} AS d
        SET state = 'delivered', last_status_code = i.status, last_error = '',
            last_response = i.response, response_time_ms = i.ms, lease_until = NULL,
            updated_at = i.now
        FROM input AS i
        WHERE d.id = i.sent AND d.state = i.busy AND d.attempts = i.sent_attempts
        RETURNING d.id
    ), claimed AS (
        UPDATE {_TABLE} AS d
        SET state = 'delivering', attempts = d.attempts + 1, lease_until = i.lease,
            updated_at = i.now
        FROM input AS i
        WHERE d.id = i.following::uuid AND d.state = i.waiting
          AND d.attempts = i.following_attempts AND d.next_attempt_at <= i.now
          AND i.sent IN (SELECT id FROM done)
          AND EXISTS (SELECT 1 FROM {WebhookSubscription._meta.db_table} AS s
                      WHERE s.id = i.subscription AND s.enabled)
        RETURNING d.id
    )
    SELECT i.sent IN (SELECT id FROM done),
           i.following IS NOT NULL AND (i.following::uuid IN (SELECT id FROM claimed)
               OR EXISTS (SELECT 1 FROM {_TABLE} AS d WHERE d.id = i.following::uuid
                          AND d.state = i.busy AND d.lease_until = i.lease))
    FROM input AS i ORDER BY i.n
"""


def advance(sent: Delivery, outcome: Outcome, following: Delivery | None = None,
            lease: datetime | None = None) -> bool:
    """Record ``sent`` delivered and claim ``following`` (the next of its run) for its
    attempt; return whether ``following`` is now ours to send (without one: whether ``sent``
    was still ours to record). Nothing changes for a dispatcher whose claim lapsed and was
    taken over. ``lease`` (``lease_until(now)``) lets a retry of the same call after a lost
    answer find its own earlier success. This runs once per delivery sent: on PostgreSQL it
    is one row of a statement shared with the other lanes' threads advancing meanwhile
    (``ADVANCES``); it returns once that statement has committed."""
    now = timezone.now()
    lease = lease or lease_until(now)
    excerpt = response_excerpt(outcome.body)
    if connection.vendor == "postgresql":
        row = (sent.pk, sent.attempts, outcome.status_code, excerpt, outcome.duration_ms,
               following.pk if following else None, following.attempts if following else 0,
               lease, sent.subscription_id, now)
        # Inside a transaction the row must be written on this thread's own connection.
        write = _write_advances if connection.in_atomic_block else None
        recorded, ours = write([row])[0] if write else ADVANCES.submit(row)
        if following is None:
            return recorded
    else:
        delivered = {"state": State.DELIVERED, "last_status_code": outcome.status_code,
                     "last_error": "", "last_response": excerpt,
                     "response_time_ms": outcome.duration_ms, "lease_until": None,
                     "updated_at": now}
        if following is None:
            return _fenced(sent).update(**delivered) == 1
        with transaction.atomic():
            ours = bool(_fenced(sent).update(**delivered)) and bool(Delivery.objects.filter(
                pk=following.pk, state=State.PENDING, attempts=following.attempts,
                next_attempt_at__lte=now, subscription__enabled=True).update(
                state=State.DELIVERING, attempts=F("attempts") + 1, lease_until=lease,
                updated_at=now))
            ours = ours or Delivery.objects.filter(pk=following.pk, state=State.DELIVERING,
                                                   lease_until=lease).exists()
    if ours:
        following.state = State.DELIVERING
        following.attempts += 1
        following.lease_until = lease
    return ours


def _write_advances(rows) -> list[tuple[bool, bool]]:
    """``_ADVANCE_SQL`` for ``rows`` (``advance``'s tuples) on this thread's connection: for
    each, (``sent`` recorded, ``following`` ours)."""
    columns = list(zip(*rows, strict=True))
    rows = prepared_rows(_ADVANCE_SQL, {
        "sent": _array(columns[0]), "sent_attempts": _array(columns[1]),
        "status": _array(columns[2]), "response": list(columns[3]),
        "ms": _array(columns[4]), "following": _array(columns[5]),
        "following_attempts": _array(columns[6]), "lease": _array(columns[7]),
        "subscription": _array(columns[8]), "now": _array(columns[9])})
    return [(bool(recorded), bool(ours)) for recorded, ours in rows]


def _array(values) -> str:
    """A PostgreSQL array literal of UUIDs, integers or aware datetimes (none of which
    writes a character an unquoted element may not hold), ``None`` as NULL; the statement
    casts it. psycopg's typed arrays dump each element in Python: several times the CPU of
    the rest of the write, for each statement."""
    return "{" + ",".join(
        "NULL" if value is None else value.isoformat() if isinstance(value, datetime)
        else str(value) for value in values) + "}"


ADVANCES = GroupCommit(_write_advances)


def _fenced(delivery: Delivery):
    return Delivery.objects.filter(pk=delivery.pk, state=State.DELIVERING,
                                   attempts=delivery.attempts)


def recovered(subscription_id, now: datetime | None = None) -> int:
    """After a success: end the subscription's failure streak and make its deliveries that
    wait for a retry due now (the receiver answers again; each lane's own backoff could leave
    it waiting for hours). Return how many were made due (0 if it was not failing)."""
    now = now or timezone.now()
    with _atomic_relaxed():
        if not WebhookSubscription.objects.filter(
                pk=subscription_id, failing_since__isnull=False).update(failing_since=None):
            return 0
        return Delivery.objects.filter(subscription_id=subscription_id, state=State.PENDING,
                                       next_attempt_at__gt=now).update(next_attempt_at=now)


RESPONSE_EXCERPT = 2048


def response_excerpt(body: bytes) -> str:
    """What the log keeps of a receiver's answer: its start, as text. A NUL (which no
    PostgreSQL text may hold: the outcome could not be written down, and the delivery would
    be sent again and again) is shown as U+FFFD, like any byte that is not UTF-8."""
    text = body[:RESPONSE_EXCERPT * 4].decode("utf-8", "replace")[:RESPONSE_EXCERPT]
    return text.replace("\x00", "\ufffd")


def retry_schedule() -> Schedule:
    """``EMAILAPI_WEBHOOK_RETRY_SCHEDULE``, its last delay repeating, each delay jittered
    +-20 % so many lanes failing together do not retry in lockstep."""
    return Schedule(steps=tuple(settings.WEBHOOK_RETRY_SCHEDULE), jitter=0.2)


def retry_delay(attempts_made: int) -> float:
    """Seconds before the next attempt after ``attempts_made`` failed ones."""
    return retry_schedule().delay(attempts_made)


def record_failure(delivery: Delivery, outcome: Outcome) -> bool:
    """Schedule the retry or fail the delivery; disable a subscription failing too long."""
    now = timezone.now()
    spent = delivery.attempts > len(settings.WEBHOOK_RETRY_SCHEDULE)
    with _atomic_relaxed():
        done = _fenced(delivery).update(
            state=State.FAILED if spent else State.PENDING,
            last_status_code=outcome.status_code, last_error=(outcome.error or "")[:1024],
            last_response=response_excerpt(outcome.body), response_time_ms=outcome.duration_ms,
            lease_until=None, updated_at=now,
            next_attempt_at=now + timedelta(seconds=0 if spent else retry_delay(delivery.attempts)))
        if not done:
            return False
        WebhookSubscription.objects.filter(pk=delivery.subscription_id,
                                           failing_since__isnull=True).update(failing_since=now)
        subscription = WebhookSubscription.objects.select_for_update().get(
            pk=delivery.subscription_id)
        limit = now - timedelta(seconds=settings.WEBHOOK_DISABLE_AFTER)
        if subscription.enabled and subscription.failing_since <= limit:
            _disable(subscription, outcome, now)
    return True


def _disable(subscription: WebhookSubscription, outcome: Outcome, now: datetime) -> None:
    """Stop piling up deliveries nobody accepts: the backlog fails, new events are no longer
    fanned out to it, and the tenant hears of it through ``webhookDisabled``."""
    reason = (f"Every delivery failed since {subscription.failing_since.isoformat()}; "
              f"last error: {outcome.error}")[:1024]
    subscription.enabled = False
    subscription.disabled_reason = reason
    subscription.updated_at = now
    subscription.save(update_fields=["enabled", "disabled_reason", "updated_at"])
    Delivery.objects.filter(subscription=subscription, state=State.PENDING).update(
        state=State.FAILED, last_error="Webhook disabled", updated_at=now)
    events.record(subscription.tenant_id, events.WEBHOOK_DISABLED, data={
        "webhook": str(subscription.pk), "url": subscription.url, "reason": reason,
        "failingSince": subscription.failing_since.isoformat(),
    })


def retry(delivery: Delivery) -> Delivery:
    """Send one delivery again as soon as possible (``POST .../retry``). It keeps its seq, so
    it goes before later open deliveries of its lane: the lane stays in order."""
    now = timezone.now()
    with transaction.atomic():
        changed = (Delivery.objects.filter(pk=delivery.pk).exclude(state=State.DELIVERING)
                   .update(state=State.PENDING, attempts=0, next_attempt_at=now,
                           lease_until=None, updated_at=now))
        if changed:
            transaction.on_commit(_ring)
    fresh = Delivery.objects.filter(pk=delivery.pk).select_related("event").first()
    if fresh is None:  # its webhook was deleted meanwhile, and the delivery with it
        raise DeliveryNotFound()
    return fresh


def retry_now(delivery: Delivery) -> bool:
    """A pending delivery waiting for its next retry is attempted now instead (its attempts
    and place in the lane stay). False when it is no longer pending."""
    now = timezone.now()
    with transaction.atomic():
        changed = Delivery.objects.filter(pk=delivery.pk, state=State.PENDING).update(
            next_attempt_at=now, updated_at=now)
        if changed:
            transaction.on_commit(_ring)
    return bool(changed)


def _ring() -> None:
    sequencer.ring_recorded()


# --- pruning ------------------------------------------------------------------------------


def prune(now: datetime | None = None, batch: int = 5000) -> tuple[int, int]:
    """Delete up to ``batch`` finished deliveries past ``WEBHOOK_DELIVERY_RETENTION_DAYS`` and
    published events past ``EVENT_RETENTION_DAYS`` that no open delivery still owes and that
    are already fanned out. Return (deliveries, events) deleted."""
    now = now or timezone.now()
    old_rows = Delivery.objects.filter(
        state__in=(State.DELIVERED, State.FAILED),
        updated_at__lt=now - timedelta(days=settings.WEBHOOK_DELIVERY_RETENTION_DAYS))
    deliveries, _ = Delivery.objects.filter(
        pk__in=list(old_rows.values_list("pk", flat=True)[:batch])).delete()
    fanned = FanOutCursor.objects.filter(pk=1).values_list("last_seq", flat=True).first() or 0
    owed = Delivery.objects.filter(event=OuterRef("pk"), state__in=OPEN)
    # The newest published event is always kept: the sequencer numbers on from the highest
    # seq left, and cursors held by clients must never see numbers reused.
    newest = Event.objects.aggregate(top=Max("seq"))["top"] or 0
    old_events = (Event.objects.filter(
        seq__lte=min(fanned, newest - 1),
        dispatched_at__lt=now - timedelta(days=settings.EVENT_RETENTION_DAYS))
        .exclude(Exists(owed)))
    pks = list(old_events.values_list("pk", flat=True)[:batch])
    with transaction.atomic():
        Delivery.objects.filter(event_id__in=pks).delete()
        removed, _ = Event.objects.filter(pk__in=pks).delete()
    return deliveries, removed
