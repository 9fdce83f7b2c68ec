"""A mail server that takes longer than the connect timeouts to answer a command after login
is waited for, not given up on: the first index of a huge folder must get through.

Found by the 1,000,000-message bench: Dovecot's first FETCH of a session on such a folder took
~20 s before its first byte, and the worker read every answer after login with the 15 s
``EMAILAPI_VERIFY_TIMEOUT``: it timed out, reconnected and asked again, forever, and the
account was never indexed. Here Dovecot stands behind a proxy that holds its answer to each
session's first ``UID FETCH`` (the slow one of a cold folder), with the connect timeouts
shorter than that hold.
"""

from __future__ import annotations

import socket
import threading

import pytest

from accounts import services
from accounts.models import EmailAccount
from mailboxes.models import Message
from tests.base import wait_for
from tests.mailboxes.helpers import register
from tests.servers import seed
from tests.servers.net import LOOPBACK, hang_up

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("fast_worker_settings")]

SHORT = 2  # seconds: the connect/login timeouts (EMAILAPI_VERIFY_TIMEOUT) in these tests
HOLD = 3 * SHORT  # seconds the proxy holds the answer to a session's first UID FETCH


class SlowFetchProxy:
    """Between the worker and Dovecot: holds the server's answer to each connection's first
    ``UID FETCH`` for ``hold`` seconds (None: until ``stop``), as a server reading a huge
    folder's index for the first time does. It hides STARTTLS from the capabilities, so that
    the session stays plain text and the proxy can see the commands. Threads only."""

    def __init__(self, target_port: int, hold: float | None):
        self.target = (LOOPBACK, target_port)
        self.hold = hold
        self.accepted = 0
        self.held = 0  # answers held so far
        self._listener = socket.create_server((LOOPBACK, 0))
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        hang_up([self._listener, *self._sockets])

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                return
            server.settimeout(None)
            self.accepted += 1
            self._sockets += [client, server]
            fetch_sent = threading.Event()
            threading.Thread(target=self._requests, args=(client, server, fetch_sent),
                             daemon=True).start()
            threading.Thread(target=self._answers, args=(server, client, fetch_sent),
                             daemon=True).start()

    def _requests(self, source, sink, fetch_sent: threading.Event) -> None:
        try:
            while data := source.recv(65536):
                if b" UID FETCH " in data.upper():
                    fetch_sent.set()  # before the server can have it
                sink.sendall(data)
        except OSError:
            pass

    def _answers(self, source, sink, fetch_sent: threading.Event) -> None:
        held = False
        try:
            while data := source.recv(65536):
                if fetch_sent.is_set() and not held:
                    held = True
                    self.held += 1
                    if self._stop.wait(self.hold):
                        return
                sink.sendall(data.replace(b" STARTTLS", b""))
        except OSError:
            pass


@pytest.fixture
def slow_fetch(dovecot):
    proxies = []

    def make(hold: float | None) -> SlowFetchProxy:
        proxies.append(SlowFetchProxy(dovecot.imap_port, hold))
        return proxies[-1]

    yield make
    for proxy in proxies:
        proxy.stop()


def _register(tenant, user, port: int) -> EmailAccount:
    return services.register_account(tenant, {"account": "big", "imap": {
        "host": LOOPBACK, "port": port, "secure": False,
        "auth": {"user": user.username, "pass": user.password}}})


def test_a_first_fetch_slower_than_the_connect_timeouts_is_waited_for(
        alice, mail_user, slow_fetch, start_worker, settings):
    """Before the fix this account never got past its first FETCH: read timeout == login
    timeout, so it reconnected every ``SHORT`` seconds and asked again."""
    settings.EMAILAPI_VERIFY_TIMEOUT = SHORT
    uids = seed.seed_mailbox(mail_user, messages=[seed.make_message(subject=f"m{i}")
                                                  for i in range(5)])
    proxy = slow_fetch(HOLD)
    account = _register(alice.tenant, mail_user, proxy.port)
    start_worker()

    def indexed():
        row = EmailAccount.objects.get(pk=account.pk)
        return (row.state == "connected" and row.initialized_at is not None
                and Message.objects.filter(email_account=account).count() == len(uids))

    wait_for(indexed, timeout=60)
    assert proxy.held >= 1  # the slow answer was waited for, not bypassed


def test_a_command_never_answered_is_named_and_its_retries_back_off(
        alice, mail_user, slow_fetch, driven_worker, settings):
    """A server silent on FETCH for good: the account says so in words, and tries again
    ever more slowly, although each try outlives ``IMAP_RECONNECT_RESET_AFTER`` (a
    connection that never got to IDLE does not restart the waits from the beginning)."""
    settings.IMAP_READ_TIMEOUT = SHORT
    settings.IMAP_RECONNECT_RESET_AFTER = 1
    seed.seed_mailbox(mail_user, messages=[seed.make_message(subject="m")])
    proxy = slow_fetch(None)
    account = _register(alice.tenant, mail_user, proxy.port)
    worker = driven_worker()
    worker.claim()

    def third_failure_recorded():
        row = EmailAccount.objects.get(pk=account.pk)
        return worker.slots[account.pk].conn.failures >= 3 and row.state == "disconnected" \
            and row

    row = worker.until(third_failure_recorded, timeout=60)
    assert row.last_error["error"] == f"The server did not answer UID FETCH within {SHORT} s"
    assert row.last_error["code"] == "CommandTimeout"
    assert proxy.held >= 3
    assert (LOOPBACK, proxy.port) in worker.slow_endpoints


def test_a_server_silent_on_commands_gets_only_the_slow_lane(
        alice, dovecot, mail_user, slow_fetch, driven_worker, settings):
    """Accounts on a server that logs in and then never answers FETCH, more of them than the
    worker has timer threads: once one has timed out, they hold at most the slow lane's
    threads at once, and an account on a healthy server syncs beside them."""
    settings.IMAP_READ_TIMEOUT = SHORT
    seed.seed_mailbox(mail_user, messages=[seed.make_message(subject="m")])
    proxy = slow_fetch(None)
    silent = [services.register_account(alice.tenant, {"account": f"silent{i}", "imap": {
        "host": LOOPBACK, "port": proxy.port, "secure": False,
        "auth": {"user": mail_user.username, "pass": mail_user.password}}}) for i in range(4)]
    worker = driven_worker(pool_size=4)  # 2 timer threads, 1 of them the slow lane
    assert (worker.max_timer_steps, worker.max_slow_steps) == (2, 1)
    worker.claim()
    pks = {a.pk for a in silent}
    worker.until(lambda: all(worker.slots[pk].conn.failures for pk in pks), timeout=60)

    healthy_user = dovecot.add_user()
    seed.seed_mailbox(healthy_user, messages=[seed.make_message(subject="fine")])
    healthy = register(alice.tenant, healthy_user, "healthy")
    worker.claim()
    most = 0

    def healthy_connected():
        nonlocal most
        most = max(most, sum(worker.slots[pk].busy and worker.slots[pk].next_step != "connect"
                             for pk in pks))
        return (EmailAccount.objects.get(pk=healthy.pk).state == "connected"
                and worker.idle(healthy.pk))

    worker.until(healthy_connected, timeout=60)
    assert most <= worker.max_slow_steps
    assert Message.objects.filter(email_account=healthy).count() == 1


def test_a_stopping_worker_does_not_wait_out_a_slow_command(
        alice, mail_user, slow_fetch, settings):
    """A step waiting up to ``IMAP_READ_TIMEOUT`` on a silent server is ended once the
    worker's stop has given it its grace, not waited for."""
    from mailboxes.worker.imap_worker import ImapWorker

    settings.IMAP_READ_TIMEOUT = 3600
    seed.seed_mailbox(mail_user, messages=[seed.make_message(subject="m")])
    proxy = slow_fetch(None)
    _register(alice.tenant, mail_user, proxy.port)
    worker = ImapWorker()
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: proxy.held >= 1, timeout=30)  # the FETCH is waiting on the server
    finally:
        worker.stop.set()
        thread.join(timeout=120)
    assert not thread.is_alive(), "the worker waited for the silent server"
