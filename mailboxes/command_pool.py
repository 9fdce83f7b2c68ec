"""Short-lived IMAP command connections for API requests, pooled per account.

Reading a body, an attachment or running a search needs an IMAP round trip, but never on the
worker's idling connection (another process, and busy IDLEing). Each web process keeps a few
logged-in connections per account and reuses one for ``EMAILAPI_IMAP_COMMAND_IDLE`` seconds
after a request, so a burst of calls costs one login, not fifty. At most
``EMAILAPI_IMAP_COMMAND_CONNECTIONS`` are open per account at once; a request that finds them all
busy waits up to ``EMAILAPI_IMAP_COMMAND_TIMEOUT`` seconds, as does a login. A server that is
down or refuses the login answers ``503 MailboxUnavailable`` with the account's ``lastError``
within that bound, never a hung request.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import imapclient
from django.conf import settings

from accounts.auth_server import AuthServerError
from accounts.models import EmailAccount
from accounts.oauth2.refresh import TokenError
from emailapi.lib.wording import describe
from mailboxes import connection_settings
from mailboxes.errors import MailboxUnavailable, ServerRefused
from mailboxes.imap import client as imap
from mailboxes.imap import underlying
from mailboxes.imap.session import ImapSession

logger = logging.getLogger(__name__)


@dataclass
class _Pooled:
    session: ImapSession
    config_version: int
    last_used: float = field(default_factory=time.monotonic)


class _AccountPool:
    def __init__(self, size: int):
        self.idle: list[_Pooled] = []
        self.slots = threading.BoundedSemaphore(size)


class CommandPool:
    def __init__(self):
        self._lock = threading.Lock()
        self._accounts: dict[int, _AccountPool] = {}
        self._next_sweep = 0.0

    @contextmanager
    def session(self, account: EmailAccount) -> Iterator[ImapSession]:
        """A logged-in session for this account, exclusively the caller's until the block
        ends. A connection that failed inside the block is closed, not returned."""
        self._sweep()
        pool = self._pool(account.pk)
        timeout = settings.IMAP_COMMAND_TIMEOUT
        if not pool.slots.acquire(timeout=timeout):
            raise MailboxUnavailable(account, "too many requests are using this mailbox")
        pooled = None
        try:
            pooled = self._take_alive(pool, account) or self._open(account, timeout)
            try:
                yield pooled.session
            except (OSError, imapclient.exceptions.IMAPClientError, imap.ImapError) as exc:
                _close(pooled)
                pooled = None
                raise server_failure(account, exc) from None
            except BaseException:
                # The caller's own error (a 404, say) left the connection in a known state
                # only if no command was interrupted; a closed connection is the safe answer.
                if not _healthy(pooled):
                    _close(pooled)
                    pooled = None
                raise
        finally:
            if pooled is not None:
                pooled.last_used = time.monotonic()
                with self._lock:
                    pool.idle.append(pooled)
            pool.slots.release()

    def close_all(self) -> None:
        with self._lock:
            pools, self._accounts = list(self._accounts.values()), {}
        for pool in pools:
            for pooled in pool.idle:
                _close(pooled)

    def _sweep(self) -> None:
        """Log out connections idle too long, of any account (at most once a second)."""
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + 1.0
        expired = []
        with self._lock:
            for pool in self._accounts.values():
                keep = []
                for pooled in pool.idle:
                    (expired if now - pooled.last_used > settings.IMAP_COMMAND_IDLE
                     else keep).append(pooled)
                pool.idle = keep
        for pooled in expired:
            _close(pooled)

    def _pool(self, account_pk: int) -> _AccountPool:
        with self._lock:
            pool = self._accounts.get(account_pk)
            if pool is None:
                pool = self._accounts[account_pk] = _AccountPool(
                    settings.IMAP_COMMAND_CONNECTIONS)
            return pool

    def _take_alive(self, pool: _AccountPool, account: EmailAccount) -> _Pooled | None:
        """A pooled connection that still answers: one idle for more than a second is
        checked with a NOOP (servers and NAT boxes drop quiet connections), a dead one
        closed and the next tried."""
        while True:
            pooled = self._take(pool, account)
            if pooled is None:
                return None
            if not _healthy(pooled):
                _close(pooled)
                continue
            if time.monotonic() - pooled.last_used < 1.0:
                return pooled
            try:
                pooled.session.client.noop()
                return pooled
            except (OSError, imapclient.exceptions.IMAPClientError):
                _close(pooled)

    def _take(self, pool: _AccountPool, account: EmailAccount) -> _Pooled | None:
        """The most recently used connection that is fresh and of the account's current
        settings; the ones passed over are closed (``_sweep`` handles the rest)."""
        now = time.monotonic()
        passed_over = []
        found = None
        with self._lock:
            while pool.idle and found is None:
                pooled = pool.idle.pop()
                if (now - pooled.last_used > settings.IMAP_COMMAND_IDLE
                        or pooled.config_version != account.config_version):
                    passed_over.append(pooled)
                else:
                    found = pooled
        for pooled in passed_over:
            _close(pooled)
        return found

    def _open(self, account: EmailAccount, timeout: float) -> _Pooled:
        try:
            imap_settings = connection_settings.account_imap_settings(account)
        except TokenError as exc:  # an OAuth2 mailbox whose token cannot be had now
            raise MailboxUnavailable(account, f"no OAuth2 access token ({exc.code})",
                                     "AuthenticationFails") from None
        except AuthServerError as exc:  # useAuthServer: its server gave no credentials now
            raise MailboxUnavailable(account, f"no credentials ({exc})",
                                     "AuthenticationFails") from None
        if imap_settings is None:
            raise MailboxUnavailable(account, "no IMAP settings", "NotSyncing")
        imap_settings = dataclasses.replace(imap_settings, timeout=timeout)
        try:
            client = imap.connect(imap_settings)
        except imap.AuthenticationFailed as exc:
            raise MailboxUnavailable(account, f"authentication failed ({describe(exc)})",
                                     "AuthenticationFails") from None
        except imap.ImapError as exc:
            raise MailboxUnavailable(account, describe(exc), "ConnectionError") from None
        try:
            session = ImapSession(client)
        except (OSError, imapclient.exceptions.IMAPClientError) as exc:
            _close_client(client)
            raise MailboxUnavailable(account, describe(exc), "ConnectionError") from None
        return _Pooled(session, account.config_version)


def server_failure(account: EmailAccount, exc: BaseException) -> MailboxUnavailable | ServerRefused:
    """What a request is told when the server failed it mid-command (the services answer the
    refusals they expect inside the block themselves): a tagged NO or BAD, or an answer that
    cannot be read, is the server's failure (502 ``ServerRefused``); a connection lost, a
    timeout or an answer past its bounds means the server cannot be used now (503
    ``MailboxUnavailable``). Either in words, never the 500 of an unhandled exception."""
    # imapclient's ProtocolError (an unreadable answer) is an IMAPClientError, not an abort.
    if isinstance(exc, imapclient.exceptions.IMAPClientError) and not isinstance(
            exc, imapclient.exceptions.IMAPClientAbortError):
        return ServerRefused(f"The mail server failed the request: {describe(exc)}")
    return MailboxUnavailable(account, describe(exc), "ConnectionError")


def _healthy(pooled: _Pooled) -> bool:
    """No command left half-done, and the socket still open (``underlying.reusable``)."""
    return underlying.reusable(pooled.session.client)


def _close(pooled: _Pooled) -> None:
    _close_client(pooled.session.client)


def _close_client(client) -> None:
    try:
        client.logout()
    except Exception:  # noqa: BLE001 - already broken
        try:
            client.shutdown()
        except Exception:  # noqa: BLE001
            pass


pool = CommandPool()
