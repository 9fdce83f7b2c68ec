"""One account's IMAP connection inside a worker, and the steps it goes through.

    connect ──► connecting ──► sync ──► syncing ──► connected (IDLE on the watched folder)
      ▲              │ auth failure: authenticationError (slow retry)
      │              │ network/TLS/timeout: connectError (backoff)
      └─── retry ◄───┘ lost connection while connected: disconnected (backoff)

    database or Redis down in the middle of a step: the session is kept, idling ("parked"),
    and ``sync`` runs again after ``store_backoff()``; nothing is logged out or recorded lost

Each step returns what the worker should do next: watch the socket (``Idle``, naming the
step its timer runs), wake it later (``Retry``), run ``sync`` (``Connected``) or forget it
(``Closed``). ``connect`` runs on the worker's connect threads and does nothing but open and
log in, each phase with its own deadline, so a hung server holds a connect thread for seconds
and never a sync thread; the other steps (``sync``, ``on_readable``, ``refresh``, ``close``)
run on the pool. The worker never runs two steps of one account at once, so the IMAP client
is only ever used by one thread at a time, and no socket is touched by the worker's selector
while a step owns it.

States are written only while this worker holds the account (``accounts.state``, fenced):
a worker that lost it to another never reports it ``connected``.
"""

from __future__ import annotations

import logging
import socket
import sys
import time
from dataclasses import dataclass, replace
from datetime import timedelta

import imapclient
from django.conf import settings
from django.db import close_old_connections, connections
from django.utils import timezone

from accounts import state as account_state
from accounts.credentials import CredentialsUnavailable
from accounts.models import EmailAccount
from accounts.oauth2 import refresh
from emailapi.lib import metrics
from emailapi.lib.backoff import Schedule
from emailapi.lib.wording import describe
from mailboxes import connection_settings
from mailboxes.imap import client as imap
from mailboxes.imap import underlying
from mailboxes.imap.session import (
    ImapSession,
    Notifications,
    idle_responses,
    input_waiting,
    read_notifications,
    start_idle,
)
from mailboxes.models import Folder
from mailboxes.sync import index
from mailboxes.sync.account import sync_account
from mailboxes.sync.folder import sync_folder
from mailboxes.sync.moves import MoveTracker
from mailboxes.worker import holders
from mailboxes.worker.faults import STORE_ERRORS
from mailboxes.worker.poll_schedule import PollSchedule
from webhooks import events

logger = logging.getLogger(__name__)
State = EmailAccount.State
# Batches (of 1,000 messages) of old history per folder indexed in one step, before the
# account goes back to IDLE and the pool to other accounts.
BACKFILL_SLICE = 5
# Account fields a session never reads (the API's and the dashboard's): not loaded into the
# row each connection keeps for its life (a worker holds 10,000). Read anyway, Django loads
# one when it is asked for.
SESSION_UNREAD = ("name", "email", "smtp", "last_error", "copy", "index_indexed",
                  "index_total", "path", "notify_from", "sync_from", "webhooks",
                  "webhook_subscription", "created_at", "updated_at")
# Account fields only opening the connection reads (the server's settings with their sealed
# secrets, the OAuth2 grant): dropped from the kept row once logged in, as deferred fields
# are (Django reads one again if anything asks; ``refresh_from_db()`` leaves it out). Their
# parsed JSON was the largest part of the row, ~0.8 KB of a worker's memory per account.
# ``ee_options`` holds the account's proxy (``accounts.mail_proxy``), read at every connect:
# loaded with the row rather than by a query of its own each time. The tenant's proxy (settings
# ``proxyUrl`` while ``proxyEnabled``), for an account without one, comes in the same statement
# (``for_session``'s ``tenant_proxy_row``), read afresh at each connect like the rest of the row,
# and dropped with these once logged in.
CONNECT_ONLY = ("imap", "oauth2", "ee_options")
# An OAuth2 grant revoked for good: wait for a new sign-in (it bumps config_version, which
# reconnects at once) rather than retry; a day is only a backstop.
REAUTH_WAIT = 86400.0


# --- When to try again (README "The IMAP engine"; the numbers are settings) ----------------
# Each wait doubles from the setting's first delay up to its cap, jittered by +-20 % so the
# accounts of a restarted server do not all reconnect in the same second. A connection that
# lived IMAP_RECONNECT_RESET_AFTER seconds starts the count again (this stops
# accept-then-drop loops).
JITTER = 0.2
# A lost connection is retried at once (half a second) the first time: a blip, not an outage.
LOST_FIRST_RETRY = 0.5
# A step that crashed (a bug: steps catch their own errors) runs again after this long.
CRASHED_STEP_RETRY = 5.0


def _session_row(account_pk: int) -> EmailAccount | None:
    """The account's row as a session keeps it (no field it never reads, nor those only
    opening the connection reads), read again after the session let go of it."""
    return EmailAccount.for_session(account_pk, SESSION_UNREAD + CONNECT_ONLY)


def _wanted_folder(account: EmailAccount) -> str:
    """The folder the account asks to IDLE on (its first ``watch_folders`` entry)."""
    return (account.watch_folders or ["INBOX"])[0]


def _forget(account: EmailAccount, fields: tuple[str, ...]) -> None:
    """Drop loaded field values from ``account``: they become deferred fields."""
    for name in fields:
        account.__dict__.pop(name, None)


def connect_backoff() -> Schedule:
    """A connect failed (network, TLS, timeout): 1 s, 2 s, 4 s ... 5 minutes by default."""
    return Schedule(base=float(settings.IMAP_RECONNECT_DELAY),
                    cap=float(settings.IMAP_RECONNECT_MAX_DELAY), jitter=JITTER)


def lost_backoff() -> Schedule:
    """A live connection broke: once at once, then as a failed connect."""
    return replace(connect_backoff(), first=LOST_FIRST_RETRY)


def auth_backoff() -> Schedule:
    """The login was refused: 1 min, 2 min ... 1 hour by default. Wrong credentials need a
    human, and retrying them quickly may get the account locked by the provider."""
    return Schedule(base=float(settings.IMAP_AUTH_RETRY_DELAY),
                    cap=float(settings.IMAP_AUTH_RETRY_MAX_DELAY), jitter=JITTER)


def _retry_at(delay: float) -> str:
    """When the retry after ``delay`` seconds happens, for ``lastError.nextRetry`` (the
    dashboard shows it)."""
    return (timezone.now() + timedelta(seconds=delay)).isoformat().replace("+00:00", "Z")


def store_backoff() -> Schedule:
    """The database or Redis is unreachable: 1 s, 2 s ... 30 s by default. Short, because
    nothing is wrong with the mailbox: its sync resumes as soon as the store answers."""
    return Schedule(base=float(settings.IMAP_STORE_RETRY_DELAY),
                    cap=float(settings.IMAP_STORE_RETRY_MAX_DELAY), jitter=JITTER)


# How an account's past connects went, best first: the order in which connects are tried
# after a worker (re)starts, and whether a connect counts against the suspect lane.
PROVEN, UNKNOWN, FAILING = 0, 1, 2


@dataclass
class Idle:
    sock: socket.socket
    wake_at: float
    step: str = "refresh"  # what the timer runs


@dataclass
class Retry:
    wake_at: float
    step: str = "connect"


@dataclass
class Connected:
    """Logged in: the pool syncs next."""


@dataclass
class Closed:
    pass


def endpoint_of(imap_settings: dict | None) -> tuple[str, int] | None:
    """The (host, port) an account connects to, or None."""
    try:
        endpoint = str(imap_settings["host"]).lower(), int(imap_settings["port"])
    except (KeyError, TypeError, ValueError):
        return None
    return underlying.shared(endpoint)  # one tuple per server, not per account


class AccountConnection:
    # 10,000 of these live in one worker: no per-instance dict (``__dict__`` stays for tests
    # that wrap a method on one instance; it is only made when used).
    __slots__ = ("account_pk", "stop_flag", "worker_id", "health", "endpoint", "client",
                 "session", "_account", "account_let_go", "state", "config_version",
                 "failures", "store_failures",
                 "parked", "answered", "idling", "login_recorded", "connected_at", "idle_since",
                 "idle_wake_at", "news_at_idle", "last_poll", "polled_version", "schedule",
                 "watched", "dropping", "notifying", "backfill_pending", "slow", "watch_wanted",
                 "woken_at", "__dict__")

    def __init__(self, account_pk: int, stop_flag, worker_id: str | None = None,
                 health: int = UNKNOWN, endpoint: tuple[str, int] | None = None,
                 schedule: PollSchedule | None = None):
        self.account_pk = account_pk
        self.stop_flag = stop_flag  # threading.Event of the whole worker
        # Fences state writes (None: unfenced, for tests driving a connection by hand).
        self.worker_id = worker_id
        self.health = health
        self.endpoint = endpoint
        self.client: imapclient.IMAPClient | None = None
        self.session: ImapSession | None = None
        self._account: EmailAccount | None = None
        self.account_let_go = False  # the row was dropped as the session idled: read again
        # The row's first watched folder, kept when the row is let go of: the IDLE that
        # follows each wake needs only this of it (not a query for the whole row).
        self.watch_wanted = "INBOX"
        self.state: str | None = None  # the last state this connection recorded (or meant to)
        self.config_version = 0
        self.failures = 0
        self.store_failures = 0  # database/Redis failures in a row
        self.parked = False  # idling while the database or Redis is down; sync when back
        self.answered: bool | None = None  # did the server answer the last connect at all
        self.idling = False  # the session is in IDLE
        self.login_recorded = False
        self.connected_at = 0.0
        self.idle_since = 0.0
        self.woken_at = 0.0  # the worker read the idling socket (``emailapi_imap_wake_...``)
        self.idle_wake_at = 0.0
        self.news_at_idle = False
        # The last poll of every folder (``time.monotonic()``), and the settings version it was
        # made with: a new session polls at once only when the next is due (see
        # ``poll_schedule``). Never, or with other settings: due.
        self.last_poll = float("-inf")
        self.polled_version: int | None = None
        self.schedule = schedule  # the worker's record of polls, for the next holder
        self.watched = "INBOX"
        self.dropping = False
        self.notifying = False
        self.backfill_pending = False
        # When a try last ended with the server silent on a slow command (``CommandTimedOut``),
        # if no sync has got through since (else 0.0): the worker's syncs of it take the slow
        # lane.
        self.slow = 0.0

    @property
    def account(self) -> EmailAccount | None:
        """The account's row (None: gone). An idling session lets go of it
        (``_let_go_of_account``) and the next step that asks reads it again: a worker holds
        thousands of sessions, and a kept row is about 1 KiB of each."""
        if self._account is None and self.account_let_go:
            row = _session_row(self.account_pk)  # may raise: then still let go of
            self._account, self.account_let_go = row, False
        return self._account

    @account.setter
    def account(self, value: EmailAccount | None) -> None:
        self._account, self.account_let_go = value, False

    def has_account(self) -> bool:
        """Whether a row was read (kept, or let go of while idling), without reading it."""
        return self._account is not None or self.account_let_go

    def _let_go_of_account(self) -> None:
        if self._account is not None:
            self.watch_wanted = sys.intern(_wanted_folder(self._account))
            self._account, self.account_let_go = None, True

    # --- steps (run on pool threads) ------------------------------------------------------

    def connect(self):
        """Connect-thread step: load the account, open the connection and log in. No database
        connection is held while waiting on the mail server."""
        self._close_client()
        self.answered = None
        try:
            close_old_connections()
            account = EmailAccount.for_session(self.account_pk, SESSION_UNREAD,
                                               with_tenant=True)
            if account is None or account.paused or self.dropping:
                return Closed()
            self.account = account
            self.config_version = account.config_version
            if self.polled_version != account.config_version:
                self.last_poll = float("-inf")  # polled with other settings: poll now
            self.endpoint = endpoint_of(account.imap)
            try:
                settings_ = connection_settings.account_imap_settings(account)
            except refresh.ReauthRequired:
                # refresh.py recorded it; only a new sign-in (config_version bump) helps.
                return Retry(time.monotonic() + REAUTH_WAIT)
            except CredentialsUnavailable as exc:  # OAuth2 token, authentication server
                return self._credentials_failed(exc)
            if settings_ is None:
                return Closed()
            if self.state != State.CONNECTING:  # else recorded when taken, nothing since
                self._set_state(State.CONNECTING)
        except STORE_ERRORS as exc:
            return self._store_down(exc)
        except Exception as exc:  # noqa: BLE001 - any failure: back off and retry
            self.health = FAILING
            return self._lost(exc)
        finally:
            connections.close_all()
        try:
            self.client = self._connect(account, settings_)
        except refresh.ReauthRequired:
            return Retry(time.monotonic() + REAUTH_WAIT)
        except imap.AuthenticationFailed as exc:
            self.answered = True
            return self._auth_failed(exc)
        except imap.ImapError as exc:
            self.answered = exc.reached
            return self._connect_failed(exc)
        except CredentialsUnavailable as exc:
            return self._credentials_failed(exc)
        except STORE_ERRORS as exc:  # refreshing an OAuth2 token needs both
            return self._store_down(exc)
        except Exception as exc:  # noqa: BLE001
            self.health = FAILING
            return self._lost(exc)
        finally:
            connections.close_all()
        metrics.imap_connect("ok")
        self.health, self.answered = PROVEN, True
        # The tenant row was only needed to open the connection (its address policy); not
        # kept for the session's life (read again if ever needed).
        EmailAccount.tenant.field.delete_cached_value(account)
        _forget(account, CONNECT_ONLY + ("tenant_proxy_row",))
        self.login_recorded = False
        self.connected_at = time.monotonic()
        return Connected()

    def sync(self):
        """Pool step after login, and again once the database is back after it interrupted
        a step: sync everything, then enter IDLE."""
        close_old_connections()
        try:
            if self.parked:
                self._end_idle()  # raises if the server went away meanwhile
            if self.session is None:
                self.session = ImapSession(self.client)
                self.notifying = False
            if not self.login_recorded:
                self._connected()
            quick = self._known_to_index()
            if self.state != State.CONNECTED and not quick:
                self._set_state(State.SYNCING)
            rows = self._rows_if_poll_not_due() if quick else None
            if rows is None:
                polled_at = time.monotonic()
                result = sync_account(self.session, self.account, self._should_stop,
                                      only_changed=quick, backfill_batches=BACKFILL_SLICE,
                                      list_status=not self.notifying)
                self.backfill_pending = not result.complete
                rows = result.rows
                self._polled(polled_at)
            if not self.notifying:
                self._ask_for_notifications()
            if self._should_stop():
                return self._finish_close()
            self._set_state(State.CONNECTED)
            self.parked, self.store_failures = False, 0
            return self._enter_idle(rows=rows)
        except STORE_ERRORS as exc:
            return self._park(exc)
        except Exception as exc:  # noqa: BLE001 - any failure: back off and retry
            return self._lost(exc)
        finally:
            connections.close_all()

    def start(self):
        """``connect`` then ``sync`` on this thread (for tests and tools; the worker runs
        them on different threads)."""
        outcome = self.connect()
        return self.sync() if isinstance(outcome, Connected) else outcome

    def on_readable(self):
        """The server said something during IDLE: read it, sync what it names (the watched
        folder, and with NOTIFY any other folder or the folder list), re-IDLE."""
        close_old_connections()
        try:
            responses = idle_responses(self.client)
            if any(r and r[0] == b"BYE" for r in responses if isinstance(r, tuple)):
                raise ConnectionError("server said BYE")
            if self.parked:
                # Waiting for the database: the ``sync`` its timer runs finds every change.
                if not responses:
                    self._end_idle()  # woken with nothing to read: gone? DONE tells
                    self._start_idle()
                return Idle(self.client.socket(), self.idle_wake_at, step="sync")
            notes = read_notifications(responses)
            if responses and not notes.any and not self._should_stop() \
                    and not self.has_buffered_input():
                # A keepalive (Dovecot says "* OK Still here" every 2 minutes to every IDLE,
                # to all sessions from one address at once): nothing changed, so go on
                # idling. Syncing here would cost every idle account a DONE, two SELECTs and a
                # sync pass, in waves that delay real new mail by seconds at 1,000 accounts.
                # Only when a keepalive was read (woken with nothing to read is the server gone:
                # DONE finds out) and nothing is left unread: ``idle_check`` polls the socket,
                # so lines already in the read buffer would never be seen (DONE reads them).
                return Idle(self.client.socket(), self.idle_wake_at)
            _, more = self._end_idle()
            if self._should_stop():
                return self._finish_close()
            self._sync_changes(notes.merge(read_notifications(more)))
            idle = self._enter_idle(recheck=True)  # the server said the folder changed
            if self.woken_at:
                metrics.imap_wake_synced(time.monotonic() - self.woken_at)
            return idle
        except STORE_ERRORS as exc:
            return self._park(exc)
        except Exception as exc:  # noqa: BLE001
            return self._lost(exc)
        finally:
            connections.close_all()

    def refresh(self):
        """Timer: re-issue IDLE before the server's 30-minute limit, and poll the other
        folders with STATUS as a safety net for changes IDLE cannot see."""
        close_old_connections()
        try:
            _, more = self._end_idle()
            if self._should_stop():
                return self._finish_close()
            notes = read_notifications(more)
            if time.monotonic() - self.last_poll >= self._poll_interval():
                notes.folders_changed = True  # the safety net: STATUS every folder
            changed = self._sync_changes(notes)
            if self.backfill_pending:
                self._backfill_slice()
            return self._enter_idle(recheck=changed)
        except STORE_ERRORS as exc:
            return self._park(exc)
        except Exception as exc:  # noqa: BLE001
            return self._lost(exc)
        finally:
            connections.close_all()

    def close(self):
        """Log out cleanly (graceful stop, pause, delete, rebalancing)."""
        try:
            return self._finish_close()
        finally:
            connections.close_all()

    def has_buffered_input(self) -> bool:
        """Bytes already read into imaplib's buffer (or the TLS layer) never wake a
        selector."""
        return self.client is not None and input_waiting(self.client, buffered_only=True)

    # --- helpers --------------------------------------------------------------------------

    def _should_stop(self) -> bool:
        return self.stop_flag.is_set() or self.dropping

    def _known_to_index(self) -> bool:
        """Whether a reconnect may sync only the folders whose STATUS differs from the index:
        once the account is fully indexed, on servers where HIGHESTMODSEQ (CONDSTORE) moves
        with every change, flags included. A worker restart then costs each mailbox one STATUS
        per folder instead of a SELECT, a search and four writes per folder (and such a
        catch-up is short enough to go from ``connecting`` straight to ``connected``)."""
        return self.account.initialized_at is not None and self.session.condstore

    def _backfill_slice(self) -> None:
        """Index the next slice of old history (BACKFILL_SLICE batches per folder), between
        two IDLEs: new mail keeps being announced, and other accounts get the pool in turn,
        while a 100,000-message mailbox fills in."""
        result = sync_account(self.session, self.account, self._should_stop, only_changed=True,
                              backfill_batches=BACKFILL_SLICE)
        self.backfill_pending = not result.complete

    def _rows_if_poll_not_due(self) -> dict[str, Folder] | None:
        """A new session of an account fully indexed, whose last poll of every folder (by this
        connection, or by the worker that held it before: ``poll_schedule``) was less than a
        poll interval ago: its folder rows, so that it syncs only the watched folder before
        IDLE and polls the others when due. None when it must poll now: the poll is due, or
        the index is not whole (no rows: flushed; a folder never synced, or with history
        left to index; the watched folder unknown)."""
        if time.monotonic() - self.last_poll >= self._poll_interval():
            return None
        rows = {folder.path: folder for folder in index.folder_rows(self.account_pk)}
        if any(not f.no_select and (f.synced_uidnext is None or f.backfill_below)
               for f in rows.values()):
            return None
        if self._watched_folder() not in rows:
            return None
        self.backfill_pending = False
        return rows

    def next_poll_in(self, config_version: int, seconds: float) -> None:
        """Another worker polled every folder with these settings, and the next poll is due in
        ``seconds`` (``PollSchedule.due_in``): go on with its schedule."""
        self.polled_version = config_version
        self.last_poll = time.monotonic() + seconds - self._poll_interval()

    def _polled(self, at: float) -> None:
        """Every folder was polled (the poll started at ``at``): the next is due an interval
        after it, here and, once the worker records it, in whichever worker holds the account
        next."""
        self.last_poll, self.polled_version = at, self.config_version
        if self.schedule is not None:
            self.schedule.note(self.account_pk, self.config_version, at, self._poll_interval())

    def _poll_interval(self) -> float:
        """The safety-net STATUS poll; with NOTIFY it only has to catch what NOTIFY missed,
        so it runs 5 times less often (at 1,000 accounts the poll is most of the idle CPU)."""
        factor = settings.IMAP_NOTIFY_POLL_FACTOR if self.notifying else 1
        return settings.IMAP_POLL_INTERVAL * factor

    def _ask_for_notifications(self) -> None:
        """NOTIFY (RFC 5465) where offered: other folders' changes then wake IDLE too. A
        server that refuses it, or a worker told not to ask (``IMAP_NOTIFY``: Dovecot cannot
        hibernate a session with NOTIFY), leaves us on the periodic STATUS poll alone."""
        self.notifying = False
        if self.session.notify and settings.IMAP_NOTIFY:
            try:
                self.session.notify_set()
                self.notifying = True
            except imapclient.exceptions.IMAPClientError as exc:
                logger.info("account %s: NOTIFY refused (%s); polling", self.account_pk, exc)

    def _sync_changes(self, notes: Notifications) -> bool:
        """One sync pass over what changed (one MoveTracker, so a move between two folders
        seen together is one messageMoved). ``folders_changed`` means: re-list folders and
        STATUS each (the safety-net poll does this too). Returns whether the index changed."""
        moves = MoveTracker()
        try:
            return self._sync_pass(notes, moves)
        finally:
            moves.release()  # the halves no partner claimed can be published now

    def _sync_pass(self, notes: Notifications, moves: MoveTracker) -> bool:
        others = notes.paths - {self.watched}
        changed = False
        if notes.folders_changed or (others and others - self._known_paths()):
            self.account.refresh_from_db()
            polled_at = time.monotonic()
            result = sync_account(self.session, self.account, self._should_stop,
                                  only_changed=True, skip=frozenset({self.watched}), moves=moves)
            changed = result.changed
            self._polled(polled_at)
        else:
            for folder in Folder.objects.filter(email_account_id=self.account_pk, path__in=others):
                if self._should_stop():
                    return changed
                changed |= sync_folder(self.session, folder, self._should_stop,
                                       moves=moves).changed
        return self._sync_watched(moves) or changed

    def _watched_folder(self) -> str:
        """The account's chosen IDLE folder while it exists on the server, else INBOX. A
        special-use name (``\\Sent``, as EmailEngine's ``path`` may give) names its folder."""
        row = self._account  # not read again for this: ``watch_wanted`` kept its answer
        wanted = _wanted_folder(row) if row is not None else self.watch_wanted
        if wanted.startswith("\\"):
            return Folder.objects.filter(
                email_account_id=self.account_pk, special_use__iexact=wanted, no_select=False,
            ).values_list("path", flat=True).first() or "INBOX"
        if wanted != "INBOX" and not Folder.objects.filter(
                email_account_id=self.account_pk, path=wanted, no_select=False).exists():
            return "INBOX"
        return wanted

    def _known_paths(self) -> set[str]:
        return set(Folder.objects.filter(email_account_id=self.account_pk).values_list("path",
                                                                                 flat=True))

    def _sync_watched(self, moves: MoveTracker | None = None) -> bool:
        folder = Folder.objects.filter(email_account_id=self.account_pk, path=self.watched).first()
        return folder is not None and sync_folder(self.session, folder, self._should_stop,
                                                  moves=moves).changed

    def _enter_idle(self, recheck: bool = False, rows: dict[str, Folder] | None = None):
        """SELECT the watched folder, catch up with what that view shows, and IDLE.

        ``recheck``: the folder just changed. Then the watched folder is synced once more
        ``IMAP_IDLE_RECHECK`` seconds into the IDLE, unless something wakes it first.
        Dovecot's imap-hibernate loses a change that lands in the half second before it takes
        the idling session over (``imap_hibernate_timeout`` after IDLE began): the session is
        hibernated and says nothing until the mailbox changes again, so the message would wait
        for the next safety-net poll. Mail comes in bursts, so that half second is most often
        hit right after a change; a recheck that finds nothing asks for no further one (its
        own IDLE, like one after a connect or a poll, is left to the poll: checking every IDLE
        would be a poll every ``IMAP_IDLE_RECHECK`` seconds).

        ``rows``: the account's folder rows, current (a sync pass that changed none read them
        just before): the watched one is not read again."""
        watched = self._watched_folder()
        self.watched = watched
        info = self.session.select(watched)
        queued = self.session.queued_notifications()
        if queued.paths - {watched} or queued.folders_changed:
            # Notices that came in during the sync itself: act on them before waiting.
            self._sync_changes(queued)
            info = self.session.select(watched)
            rows = None
        # IDLE reports what changed after this SELECT; whatever changed between the last
        # sync of the folder and this SELECT is already in the SELECT's own view and would
        # never be announced. So the view must match the index before we wait.
        for _ in range(3):
            folder = rows.get(watched) if rows is not None else Folder.objects.filter(
                email_account_id=self.account_pk, path=watched).first()
            rows = None  # a second look follows a sync of the folder: read it again
            if folder is None or _in_step(folder, info):
                break
            recheck |= sync_folder(self.session, folder, self._should_stop).changed
            info = self.session.select(watched)
        self._start_idle()
        self._let_go_of_account()
        self.idle_since = time.monotonic()
        self.slow = 0.0
        next_poll = self.last_poll + self._poll_interval()
        wake_at = min(self.idle_since + settings.IMAP_IDLE_RENEW, next_poll)
        if recheck and settings.IMAP_IDLE_RECHECK:
            wake_at = min(wake_at, self.idle_since + settings.IMAP_IDLE_RECHECK)
        if self.backfill_pending or self.news_at_idle:
            wake_at = self.idle_since  # news, or the next slice, as soon as the pool gets to it
        self.idle_wake_at = wake_at
        return Idle(self.client.socket(), wake_at)

    def _connect(self, account: EmailAccount, settings_: imap.ImapSettings):
        """Log in; an OAuth2 token the server refuses is refreshed once and tried again (it
        may have been revoked or expired early, before the time we stored)."""
        try:
            return imap.connect(_for_sync(settings_))
        except imap.AuthenticationFailed:
            if not account.oauth2:
                raise
        return imap.connect(_for_sync(
            connection_settings.account_imap_settings(account, force_refresh=True)))

    def _start_idle(self) -> None:
        """IDLE. A change the server reported as IDLE started (``news_at_idle``) is synced by
        the next ``refresh``, which ``_enter_idle`` then runs at once."""
        self.news_at_idle = start_idle(self.client)
        self.idling = True

    def _end_idle(self):
        self.idling = False
        return self.client.idle_done()

    def _set_state(self, state: str, **fields) -> bool:
        """Record a state, only while this worker holds the account (see the module doc)."""
        self.state = state
        account = self.account
        if account is None:  # deleted since the session read it
            return False
        fence = holders.Fence(self.worker_id, self.account_pk) \
            if self.worker_id is not None else None
        return account_state.set_state(account, state, fence=fence, **fields)

    def _record(self, state: str, **fields) -> None:
        """``_set_state`` on a path that goes on whether or not the database answers."""
        try:
            self._set_state(state, **fields)
        except STORE_ERRORS as exc:
            logger.warning("account %s: could not record %s: %s", self.account_pk, state, exc)

    def _connected(self) -> None:
        """Login worked: end failure streaks, raising authenticationSuccess once."""
        account = self.account
        first = account.initialized_at is None and account.state == State.CONNECTING
        if account.auth_failing_since or account.connect_failing_since or first:
            user = ((account.imap or {}).get("auth") or {}).get("user", "")  # read again
            _forget(account, CONNECT_ONLY)
            self._set_state(State.CONNECTING, auth_failing_since=None,
                            connect_failing_since=None, last_error=None,
                            event=events.AUTHENTICATION_SUCCESS, event_data={"user": user})
        self.login_recorded = True

    def _credentials_failed(self, exc: CredentialsUnavailable):
        """No credentials to log in with: refused by their source (an authentication server
        that said no) is an authentication error, anything else a connection error."""
        if getattr(exc, "refused", False):
            return self._auth_failed(exc)
        return self._connect_failed(exc)

    def _auth_failed(self, exc: imap.ImapError | CredentialsUnavailable):
        account = self.account
        streak_starts = account.auth_failing_since is None
        self.health = FAILING
        self.failures += 1
        delay = auth_backoff().delay(self.failures)
        self._record(
            State.AUTHENTICATION_ERROR,
            error={"error": describe(exc), "code": exc.code,
                   "serverResponse": getattr(exc, "server_response", None),
                   "nextRetry": _retry_at(delay)},
            auth_failing_since=account.auth_failing_since or timezone.now(),
            event=events.AUTHENTICATION_ERROR if streak_starts else None,
            event_data={"response": describe(exc), "serverResponseCode": getattr(
                exc, "response_code", "AUTHENTICATIONFAILED")},
        )
        metrics.imap_reconnect("auth_error")
        return Retry(time.monotonic() + delay)

    def _connect_failed(self, exc: imap.ImapError):
        account = self.account
        streak_starts = account.connect_failing_since is None
        self.health = FAILING
        self.failures += 1
        delay = connect_backoff().delay(self.failures)
        self._record(
            State.CONNECT_ERROR,
            error={"error": describe(exc), "code": exc.code, "nextRetry": _retry_at(delay)},
            connect_failing_since=account.connect_failing_since or timezone.now(),
            event=events.CONNECT_ERROR if streak_starts else None,
            event_data={"response": describe(exc), "serverResponseCode": exc.code},
        )
        metrics.imap_reconnect("connect_error")
        return Retry(time.monotonic() + delay)

    def _store_down(self, exc: Exception):
        """The database or Redis failed before there was a session to keep: try the connect
        again once it may be back (not a failure of the mailbox: nothing is recorded)."""
        self._close_client()
        self.store_failures += 1
        delay = store_backoff().delay(self.store_failures)
        logger.warning("account %s: database or Redis unavailable (%s); connecting in %.0f s",
                       self.account_pk, exc, delay)
        return Retry(time.monotonic() + delay)

    def _park(self, exc: Exception):
        """The database or Redis failed in the middle of a step. The IMAP session is fine:
        keep it idling and run ``sync`` again after a pause. Nothing is lost: the index and its
        cursors only move when a batch commits, so that sync finds whatever this step could
        not record, and announces it then."""
        self.store_failures += 1
        delay = store_backoff().delay(self.store_failures)
        logger.warning("account %s: database or Redis unavailable (%s); session kept, "
                       "syncing again in %.0f s", self.account_pk, exc, delay)
        if self.client is None or self._should_stop():
            return self._lost(exc)
        try:
            if not self.idling:
                self._start_idle()
        except Exception as imap_exc:  # noqa: BLE001 - the session broke too
            return self._lost(imap_exc)
        self.parked = True
        self.idle_wake_at = time.monotonic() + delay
        return Idle(self.client.socket(), self.idle_wake_at, step="sync")

    def _lost(self, exc: Exception):
        """The connection broke (or a step failed): record it and retry with backoff.

        A connection that lived ``IMAP_RECONNECT_RESET_AFTER`` seconds starts the waits from
        the beginning, but only if it got as far as IDLE: one that spent its life waiting on
        a command (a slow first FETCH timing out after ``IMAP_READ_TIMEOUT``, longer than that)
        is a failure like any other, and its retries back off."""
        if (self.connected_at and self.idle_since >= self.connected_at
                and time.monotonic() - self.connected_at > settings.IMAP_RECONNECT_RESET_AFTER):
            self.failures = 0
        self.failures += 1
        timed_out = isinstance(exc, imap.CommandTimedOut)
        if timed_out and exc.slow:
            self.slow = time.monotonic()
        logger.info("account %s: connection lost: %s", self.account_pk, exc,
                    exc_info=not isinstance(exc, (OSError, imapclient.exceptions.IMAPClientError,
                                                  ConnectionError)))
        self._close_client()
        if self._should_stop():
            return Closed()
        delay = lost_backoff().delay(self.failures)
        if self.has_account():
            try:
                self._set_state(State.DISCONNECTED,
                                error={"error": describe(exc),
                                       "code": "CommandTimeout" if timed_out else "ConnectionLost",
                                       "nextRetry": _retry_at(delay)})
            except Exception:  # noqa: BLE001 - the database may be what failed
                logger.exception("account %s: could not record state", self.account_pk)
        metrics.imap_reconnect("lost")
        return Retry(time.monotonic() + delay)

    def _finish_close(self):
        if self.client is not None:
            try:
                if self.idling:
                    self._end_idle()
            except Exception:  # noqa: BLE001 - already gone
                pass
            try:
                self.client.logout()
            except Exception:  # noqa: BLE001
                pass
        self._close_client()
        return Closed()

    def abort(self) -> None:
        """From another thread (the worker stopping): end the connection under the step that
        is reading from it, which then fails at once instead of waiting out its timeout."""
        client = self.client
        if client is None:
            return
        try:
            client.socket().shutdown(socket.SHUT_RDWR)
        except Exception:  # noqa: BLE001 - closed meanwhile
            pass

    def _close_client(self) -> None:
        if self.client is not None:
            try:
                self.client.shutdown()
            except Exception:  # noqa: BLE001
                pass
        self.client = None
        self.session = None
        self.parked = self.idling = False


def _for_sync(settings_: imap.ImapSettings) -> imap.ImapSettings:
    """A worker's connection: opened within the short timeouts (a dead server is found in
    seconds), then patient with the commands that work through a big folder
    (``IMAP_READ_TIMEOUT``): a first index must not time out on a slow first FETCH."""
    return replace(settings_, read_timeout=float(settings.IMAP_READ_TIMEOUT))


def _in_step(folder: Folder, info) -> bool:
    """Whether a fresh SELECT shows nothing the index has not seen (new UIDs, expunges, or,
    with CONDSTORE, flag changes)."""
    if folder.synced_uidnext is None or folder.uidvalidity != info.uidvalidity:
        return False
    if info.uidnext != folder.synced_uidnext or info.exists != folder.messages:
        return False
    return info.highestmodseq is None or info.highestmodseq == folder.synced_modseq
