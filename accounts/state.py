"""A mailbox account's connection state: the one place that writes it.

``EmailAccount.state`` is what the API and the dashboard show about a mailbox. Workers write
it as they connect, sync and fail; the OAuth2 refresh writes ``authenticationError`` when a
grant is refused; pausing and resuming (by the user, or by the tenant's plan) write
``paused`` and ``init``::

      paused <------------- pause (from any state)
        | resume
        v
       init
        | a worker claims the account
        v
    connecting <---------------- retry, with backoff --------------+
     |  |  |                                                       |
     |  |  +-- login refused ------> authenticationError ----------+
     |  +----- TCP/TLS failed -----> connectError -----------------+
     v                                                             |
    syncing   (first sync, or the index is behind)                 |
     |                                                             |
     v                                                             |
    connected -- connection lost, or no live worker holds it --> disconnected

``connecting`` goes straight to ``connected`` when the index is up to date; ``syncing`` breaks
off to ``disconnected`` (or an error) as ``connected`` does; a refused OAuth2 grant
(``accounts.oauth2.refresh``) sets ``authenticationError`` from any state.

``connecting``, ``syncing`` and ``connected`` are only true while a live worker holds the
account; once nobody does, ``mailboxes.worker.holders`` shows them ``disconnected`` and has
``disconnect_unheld`` write it down.

A worker's write is *fenced*: it passes ``fence``, a check run inside the write's transaction
that says whether the worker still holds the account (and locks that answer until the commit);
a state written alone takes a fence that offers it (``condition``) into its one UPDATE.
Nothing is written when it fails, so a worker that lost the account never reports it; and a
fenced write never overwrites ``paused``, so a worker finishing a step cannot undo a pause.

Every write records its event (``authenticationError``, ``accountInitialized``...) in the same
transaction, so a state and its event commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.db.models.functions import Greatest
from django.utils import timezone

from accounts.models import EmailAccount
from emailapi.lib.rows import prepared_rows
from emailapi.lib.wording import response_code, server_text
from webhooks import events

State = EmailAccount.State
# The states only true while a live worker holds the account.
ACTIVE = (State.CONNECTING, State.SYNCING, State.CONNECTED)


def set_state(account: EmailAccount, state: str, error: dict | None = None,
              event: str | None = None, event_data: dict | None = None,
              fence: Callable[[], bool] | None = None, **fields) -> bool:
    """Change the account's connection state (and record ``event`` with it, atomically).

    ``fence``: for a worker's write, whether the worker still holds the account (see the
    module doc); when it says no, or the account is paused, nothing is written and False is
    returned. A state alone (no event, error or field) with a fence that has a ``condition``
    (``mailboxes.worker.holders.Fence``) is one UPDATE carrying that condition. ``error``
    becomes ``last_error`` with the time added; ``fields`` are written too."""
    now = timezone.now()
    values = {"state": state, "state_changed_at": now, **fields}
    if error is not None:
        values["last_error"] = {**error, "time": now.isoformat().replace("+00:00", "Z")}
    unpaused = fence is not None and state != State.PAUSED
    condition = getattr(fence, "condition", None)
    if not fields and error is None and not event and (fence is None or condition):
        # The state alone: one statement, the fence its condition (no transaction to open).
        written = _write_state(account.pk, state, now, unpaused,
                               condition() if condition else None)
        if not written and fence is not None:
            return False
    else:
        with transaction.atomic():
            if fence is not None and not fence():
                return False
            if fields or error is not None:
                rows = EmailAccount.objects.filter(pk=account.pk)
                written = (rows.filter(paused=False) if unpaused else rows).update(**values)
            else:
                written = _write_state(account.pk, state, now, unpaused)
            if not written and fence is not None:
                return False
            if event:
                events.record(account.tenant_id, event, account.account_id, event_data or {})
    for key, value in values.items():
        setattr(account, key, value)
    return True


def _write_state(pk: int, state: str, at: datetime, unpaused: bool,
                 condition: tuple[str, list] | None = None) -> bool:
    """``set_state``'s write of a state alone (what a worker records as each account
    connects) as a fixed, prepared statement: the ORM's compilation of it cost more than
    PostgreSQL's answer, thousands of times in a worker's restart. ``condition``: the
    fence's, as SQL and its parameters (see ``set_state``)."""
    table = EmailAccount._meta.db_table
    sql = f"UPDATE {table} SET state = %s, state_changed_at = %s WHERE id = %s"
    params = [str(state), connection.ops.adapt_datetimefield_value(at), pk]
    if unpaused:
        sql += " AND paused = %s"
        params.append(False)
    if condition is not None:
        sql += f" AND {condition[0]}"
        params.extend(condition[1])
    return bool(prepared_rows(sql + " RETURNING id", params))


def mark_initialized(account: EmailAccount, counts: Callable[[], dict]) -> bool:
    """The first full sync finished: stamp ``initialized_at`` and raise ``accountInitialized``
    once (with ``counts()``: what the index holds; its ``messages`` ends the progress too).
    Returns whether this call did it."""
    with transaction.atomic():
        rows = EmailAccount.objects.filter(pk=account.pk, initialized_at__isnull=True)
        counted = counts() if rows.exists() else None
        updated = counted is not None and rows.update(
            initialized_at=timezone.now(), index_indexed=counted.get("messages", 0),
            index_total=counted.get("messages", 0))
        if updated:
            events.record(account.tenant_id, events.ACCOUNT_INITIALIZED, account.account_id,
                          {"account": account.account_id, **counted})
    return bool(updated)


# --- the first index's progress ------------------------------------------------------------
#
# ``state`` says whether a worker is connected; while the first index runs (``initialized_at``
# null) the account also carries ``{indexed, total}``, so a client sees how far it is: the
# worker goes ``connected`` as soon as the newest page of every folder is listable, and old
# history fills in behind. ``accountInitialized`` (``mark_initialized``) ends it. Informative
# only, so unfenced: a write after the account was initialized changes nothing.


def note_index_progress(account_pk: int, indexed: int, total: int) -> None:
    """Where the first index stands (set at the start of a first-sync pass)."""
    EmailAccount.objects.filter(pk=account_pk, initialized_at__isnull=True).update(
        index_indexed=indexed, index_total=max(total, indexed))


def add_index_progress(account_pk: int, indexed: int) -> None:
    """``indexed`` more messages of history are in the index (one batch of the first index)."""
    if indexed:
        EmailAccount.objects.filter(pk=account_pk, initialized_at__isnull=True).update(
            index_indexed=F("index_indexed") + indexed,
            index_total=Greatest(F("index_total"), F("index_indexed") + indexed))


def pause(account: EmailAccount) -> None:
    """The user paused the mailbox: no worker serves it until it is resumed."""
    now = timezone.now()
    EmailAccount.objects.filter(pk=account.pk).update(
        paused=True, state=State.PAUSED, state_changed_at=now)
    account.paused, account.state, account.state_changed_at = True, State.PAUSED, now


def resume(account: EmailAccount) -> None:
    """The user resumed a paused mailbox: it starts over from ``init`` (a send-only one is
    ``unset`` again: no worker will take it)."""
    now = timezone.now()
    if account.paused:
        to = State.INIT if account.imap else State.UNSET
        EmailAccount.objects.filter(pk=account.pk).update(
            paused=False, state=to, state_changed_at=now)
        account.paused, account.state, account.state_changed_at = False, to, now


def pause_all(pks: Iterable[int]) -> None:
    """The tenant stopped (its plan): its mailboxes show ``paused``; their own ``paused``
    flag, the user's choice, is left alone."""
    EmailAccount.objects.filter(pk__in=list(pks)).update(
        state=State.PAUSED, state_changed_at=timezone.now())


def resume_all(pks: Iterable[int]) -> None:
    """The tenant started again: those of its mailboxes that show ``paused`` start over."""
    paused = EmailAccount.objects.filter(pk__in=list(pks), state=State.PAUSED)
    now = timezone.now()
    paused.filter(imap__isnull=True).update(state=State.UNSET, state_changed_at=now)
    paused.update(state=State.INIT, state_changed_at=now)


def disconnect_unheld(accounts: QuerySet, since: datetime) -> int:
    """``accounts`` (the caller's selection of accounts no live worker holds, which the UPDATE
    checks again) show ``disconnected`` since ``since``, where they still show an active
    state. Returns how many changed."""
    return accounts.filter(state__in=ACTIVE).update(state=State.DISCONNECTED,
                                                    state_changed_at=since)


def set_states(accounts: QuerySet, state: str) -> set[int]:
    """``state`` for many accounts in one statement (a worker's wave of freshly taken
    accounts), fenced by the caller's ``accounts`` (inside its transaction) as ``set_state``
    is by its ``fence``; a paused account is left alone. Returns the accounts written."""
    written = set(accounts.filter(paused=False).values_list("pk", flat=True))
    EmailAccount.objects.filter(pk__in=written).update(state=state,
                                                       state_changed_at=timezone.now())
    return written


def restore(accounts: QuerySet, state: str) -> None:
    """A worker back from a database outage writes again the real ``state`` of ``accounts``
    (those it still holds); a pause made meanwhile stays."""
    accounts.filter(paused=False).exclude(state=state).update(state=state,
                                                              state_changed_at=timezone.now())


# States in which the connection works again: an earlier error is history, not news.
WORKING = (State.SYNCING, State.CONNECTED)


def shown_error(state: str, last_error) -> dict | None:
    """What a page says about ``last_error`` (``{error, code, time, nextRetry}`` as the
    worker writes it): the error in words, when it happened and when the next try is, as
    ``{"error", "code", "time", "nextRetry"}`` (times as datetimes or None); None while the
    mailbox is working again (``WORKING``) or has no error."""
    if not last_error or state in WORKING:
        return None
    if not isinstance(last_error, dict):
        return {"error": str(last_error), "code": "", "time": None, "nextRetry": None}
    return {"error": str(last_error.get("error") or last_error.get("response")
                         or last_error.get("code") or "Unknown error"),
            "code": str(last_error.get("code") or ""),
            "time": _parsed(last_error.get("time")),
            "nextRetry": None if last_error.get("reauthRequired")
            else _parsed(last_error.get("nextRetry"))}


def _parsed(value) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def engine_error(last_error) -> dict | None:
    """``lastError`` as the API and the change stream show it: ours (``error``, ``code``,
    ``time``) with EmailEngine's ``response`` (the error in words) and ``serverResponseCode``
    beside them, so that a client written for EmailEngine finds ``lastError.response``. The
    code is the server's own response code where its answer carried one
    (``AUTHENTICATIONFAILED``), ``AUTHENTICATIONFAILED`` for a refused login without one (as
    the ``authenticationError`` event says), else ours (``ConnectionRefused``, ...)."""
    if not last_error:
        return None
    if not isinstance(last_error, dict):
        last_error = {"error": str(last_error)}
    code = str(last_error.get("code") or "")
    coded = response_code(server_text(last_error.get("serverResponse")))
    server_code = coded[0] if coded else (
        "AUTHENTICATIONFAILED" if code == "AuthenticationFailed" else code)
    return {**last_error, "response": str(last_error.get("error") or code or "Unknown error"),
            "serverResponseCode": server_code}
