"""Who holds which account, as the database knows it, and what that says about ``state``.

The Redis lease (``mailboxes.worker.leases``) decides which worker serves an account. The
database keeps a copy, so that the account's ``state`` can be trusted:

- every worker renews one ``WorkerHeartbeat`` row per claim tick (alive until ``expires_at``);
- right after taking a lease, a worker writes the account's ``AccountHolder`` row naming
  itself; giving an account up marks the row released;
- a worker records a state only while the row still names it (``accounts.state.set_state``
  with ``Fence(worker_id, pk)``):
  a worker that lost an account cannot report it ``connected``;
- an account is *held* while its row is not released and its worker's heartbeat is live.
  A ``connecting``, ``syncing`` or ``connected`` account that is not held is really
  ``disconnected``: reads show that at once (``apply_live_state``, ``state_filter``), and live
  workers write it down (``sweep``), with ``stateChanged`` the moment the hold lapsed.

    claimed ──► held (heartbeat renewed) ──┬─ released (pause, rebalance, stop) ──► not held
                                           └─ worker dies: heartbeat lapses ─────► not held
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import BooleanField, Case, Q, Value, When
from django.utils import timezone

from accounts import state as account_state
from accounts.models import EmailAccount
from emailapi.lib.rows import locking, prepared_rows
from mailboxes.models import AccountHolder, WorkerHeartbeat

State = EmailAccount.State
# States only a live holder can vouch for.
# Heartbeats of workers gone this long are deleted by the sweep.
FORGET_AFTER = timedelta(days=1)


def beat(worker_id: str, ttl: float) -> None:
    """This worker is alive for ``ttl`` more seconds."""
    expires = timezone.now() + timedelta(seconds=ttl)
    if not WorkerHeartbeat.objects.filter(worker_id=worker_id).update(expires_at=expires):
        WorkerHeartbeat.objects.bulk_create(
            [WorkerHeartbeat(worker_id=worker_id, expires_at=expires)], update_conflicts=True,
            unique_fields=["worker_id"], update_fields=["expires_at"])


def retire(worker_id: str) -> None:
    """A graceful stop: everything this worker held is released now."""
    now = timezone.now()
    with transaction.atomic():
        AccountHolder.objects.filter(worker_id=worker_id, released_at__isnull=True) \
            .update(released_at=now)
        WorkerHeartbeat.objects.filter(worker_id=worker_id).update(expires_at=now)


def claim(worker_id: str, pks: Iterable[int]) -> None:
    """Record that this worker now holds ``pks`` (it has just taken their leases)."""
    now = timezone.now()
    rows = [AccountHolder(email_account_id=pk, worker_id=worker_id, since=now, released_at=None)
            for pk in pks]
    if rows:
        AccountHolder.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=["email_account"],
            update_fields=["worker", "since", "released_at"])


def record_connecting(worker_id: str, pks: Iterable[int]) -> set[int]:
    """``connecting`` for accounts this worker has just taken, in one statement for all of
    them (a worker starting with 10,000 accounts wrote it 10,000 times, one transaction each,
    a sixth of its CPU until all were connected). Fenced as ``accounts.state.set_state`` is:
    only accounts whose row names this worker, locked until the write commits, and not
    paused. Returns the accounts written."""
    with transaction.atomic():
        mine = list(AccountHolder.objects.select_for_update()
                    .filter(email_account_id__in=list(pks), worker_id=worker_id,
                            released_at__isnull=True)
                    .values_list("email_account_id", flat=True))
        return account_state.set_states(EmailAccount.objects.filter(pk__in=mine),
                                        State.CONNECTING)


def release(worker_id: str, pk: int) -> None:
    """This worker gave the account up (only if it still held it)."""
    AccountHolder.objects.filter(email_account_id=pk, worker_id=worker_id,
                                 released_at__isnull=True).update(released_at=timezone.now())


def held_by(worker_id: str) -> list[int]:
    """The accounts whose row names ``worker_id`` and is not released."""
    return list(AccountHolder.objects.filter(worker_id=worker_id, released_at__isnull=True)
                .values_list("email_account_id", flat=True))


def still_holds(worker_id: str, pk: int, lock: bool = False) -> bool:
    """Whether the row names this worker; ``lock`` (inside a transaction) keeps a takeover
    from committing until the caller's transaction ends, so the check holds for its writes."""
    # A fixed, prepared statement (emailapi.lib.rows): every state a worker records asks
    # this first, thousands of times in a restart.
    sql = f"SELECT 1 FROM {_holds()}"
    return bool(prepared_rows(locking(sql) if lock else sql, [pk, worker_id]))


def _holds() -> str:
    """The holder row of an account (``%s``) naming a worker (``%s``), not released."""
    return (f"{AccountHolder._meta.db_table} WHERE email_account_id = %s AND worker_id = %s "
            f"AND released_at IS NULL")


class Fence:
    """For ``accounts.state.set_state(fence=)``: this worker still holds the account.

    Called inside the write's transaction, it checks the holder row and locks it until the
    commit. A state written alone (no event, no other field: what a worker records as each
    account connects) takes the same check into its one UPDATE instead (``condition``): the
    row lock then lasts as long as that statement's own transaction, and the write costs one
    round trip rather than four (BEGIN, the check, the UPDATE, COMMIT)."""

    __slots__ = ("worker_id", "pk")

    def __init__(self, worker_id: str, pk: int):
        self.worker_id, self.pk = worker_id, pk

    def __call__(self) -> bool:
        return still_holds(self.worker_id, self.pk, lock=True)

    def condition(self) -> tuple[str, list]:
        """The check as a condition of another statement (``EXISTS (...)``) and its
        parameters: the holder row is locked as the call locks it, and a takeover that
        commits first makes it false."""
        return f"EXISTS ({locking('SELECT 1 FROM ' + _holds())})", [self.pk, self.worker_id]


def restore(worker_id: str, states: dict[int, str], read_at: datetime) -> None:
    """After this worker could not reach the database for longer than its heartbeat lasts,
    others may have found it dead and written its accounts ``disconnected``: record again
    that it holds them (unless another worker took one meanwhile) and their real states.

    ``states`` were read from the worker's connections at ``read_at``, while their steps go
    on: a state a step recorded after that (``connected`` once its sync ended) is newer than
    what was read, and stays (written over, the account would read ``syncing`` while idling
    until its next change)."""
    now = timezone.now()
    present = set(EmailAccount.objects.filter(pk__in=list(states)).values_list("pk", flat=True))
    AccountHolder.objects.bulk_create(
        [AccountHolder(email_account_id=pk, worker_id=worker_id, since=now) for pk in present],
        ignore_conflicts=True)
    AccountHolder.objects.filter(email_account_id__in=present, worker_id=worker_id) \
        .update(released_at=None)
    by_state: dict[str, list[int]] = defaultdict(list)
    for pk, state in states.items():
        if pk in present and state:
            by_state[state].append(pk)
    for state, pks in by_state.items():
        account_state.restore(EmailAccount.objects.filter(
            pk__in=pks, holder__worker_id=worker_id, state_changed_at__lt=read_at), state)


def held(now: datetime | None = None) -> Q:
    """Accounts held by a live worker, as joins (an account has at most one holder row, a
    holder one heartbeat). Not ``Exists``: PostgreSQL planned ``NOT EXISTS`` (the state
    filters, the sweep) as a nested loop over every account and holder whenever its
    statistics lagged behind the tables, seconds at 10,000 accounts."""
    return Q(holder__released_at__isnull=True,
             holder__worker__expires_at__gt=now or timezone.now())


def state_filter(state: str, now: datetime | None = None) -> Q:
    """Accounts whose *shown* state is ``state`` (see ``apply_live_state``)."""
    live = held(now)
    if state in account_state.ACTIVE:
        return Q(state=state) & Q(live)
    if state == State.DISCONNECTED:
        return Q(state=state) | (Q(state__in=account_state.ACTIVE) & ~Q(live))
    return Q(state=state)


def apply_live_state(accounts: Iterable[EmailAccount], now: datetime | None = None) -> None:
    """Correct, in memory, the state of accounts no live worker holds: ``disconnected`` since
    the hold lapsed (one query for all of them)."""
    now = now or timezone.now()
    suspects = {a.pk: a for a in accounts if a.state in account_state.ACTIVE}
    if not suspects:
        return
    holders = {pk: (released, expires) for pk, released, expires in
               AccountHolder.objects.filter(email_account_id__in=list(suspects))
               .values_list("email_account_id", "released_at", "worker__expires_at")}
    for pk, account in suspects.items():
        released, expires = holders.get(pk, (None, None))
        if released is None and expires is not None and expires > now:
            continue
        lapsed = released or expires
        account.state = State.DISCONNECTED
        if lapsed is not None and lapsed > account.state_changed_at:
            account.state_changed_at = lapsed


def sweep(now: datetime | None = None) -> int:
    """Write down what ``apply_live_state`` shows: accounts left active by a worker that is
    gone (or that let them go) become ``disconnected``. Returns how many changed.

    Run by live workers; an account another worker claims meanwhile is left alone (the
    condition is checked again by the UPDATE itself)."""
    now = now or timezone.now()
    # Which active accounts are held is decided from one join (left joins, the held ones
    # filtered out by a CASE on the joined row), not with ``exclude(held(now))``: PostgreSQL
    # planned that anti-join as a nested loop over every (account, holder) pair whenever its
    # statistics lagged behind the tables (a new deployment, a wave of registrations): 3 s
    # at 10,000 accounts, every ``IMAP_LEASE_TTL / 2`` on the worker loop's thread, while no
    # mail was handed on. Only the unheld rows come back: reading every active account's
    # three timestamps into Python to skip the held ones cost each worker 360-430 ms of its
    # loop thread per sweep at 20,000 accounts (against 3 ms), in every worker, every 10 s.
    is_held = Case(When(held(now), then=Value(True)), default=Value(False),
                   output_field=BooleanField())
    unheld = (EmailAccount.objects.filter(state__in=account_state.ACTIVE).order_by()
              .alias(is_held=is_held).filter(is_held=False)
              .values_list("pk", "state_changed_at", "holder__released_at",
                           "holder__worker__expires_at"))
    by_time: dict[datetime, list[int]] = defaultdict(list)
    for pk, changed, released, expires in unheld:
        lapsed = released or expires or now
        by_time[max(changed, min(lapsed, now))].append(pk)
    count = 0
    for when, pks in by_time.items():
        count += account_state.disconnect_unheld(
            EmailAccount.objects.filter(pk__in=pks).exclude(held(now)), when)
    WorkerHeartbeat.objects.filter(expires_at__lt=now - FORGET_AFTER).delete()
    return count
