"""What lets one worker hold 10,000 accounts: connects paced per server (a worker starting
with thousands of accounts does not stampede its server) and no faster than its pool syncs
the sessions they open (logged-in sessions waiting for a sync do not pile up on the server),
NOTIFY that can be turned off (so Dovecot can hibernate idle sessions), and per-connection
state kept small (capability lists shared between connections, no imaplib line log).
The figures are ``bench/worker_scale.py``'s.
"""

from __future__ import annotations

import sys
import time

import pytest

from mailboxes.imap import client, underlying
from mailboxes.imap.session import (
    ImapSession,
    idle_responses,
    input_waiting,
    park_reader,
    start_idle,
)
from mailboxes.worker import connect_budget
from mailboxes.worker import connection as connection_module
from mailboxes.worker.connect_budget import ConnectBudget
from mailboxes.worker.connection import PROVEN, AccountConnection, endpoint_of
from tests.mailboxes.helpers import DrivenWorker, events_of, held_back, open_session, register
from tests.servers import seed


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(connect_budget.time, "monotonic", fake)
    return fake


def due(count: int, endpoint, first_pk: int = 1):
    return [(pk, PROVEN, 0.0, endpoint) for pk in range(first_pk, first_pk + count)]


def start(budget: ConnectBudget, chosen, endpoint) -> None:
    for pk in chosen:
        budget.started(pk, endpoint, PROVEN)
        budget.finished(pk, answered=True)


def test_connects_to_one_server_start_at_the_rate_set(clock):
    budget = ConnectBudget(threads=16, per_second=3)
    a, b = ("a.example", 993), ("b.example", 993)
    budget.answers.update({a: True, b: True})  # servers that answered before
    first = budget.choose(due(10, a) + due(10, b, first_pk=100))
    assert sorted(pk < 100 for pk in first) == [False] * 3 + [True] * 3  # three per server
    start(budget, first, None)
    assert budget.choose(due(7, a, first_pk=50)) == []  # none left this second
    clock.now += 1.0
    assert len(budget.choose(due(7, a, first_pk=50))) == 3


def test_unused_seconds_save_up_at_most_one_second_of_connects(clock):
    budget = ConnectBudget(threads=64, per_second=4)
    server = ("a.example", 993)
    budget.answers[server] = True
    clock.now += 60.0
    assert len(budget.choose(due(40, server))) == 4


def test_no_pacing_when_the_rate_is_zero(clock):
    budget = ConnectBudget(threads=16, per_second=0)
    budget.answers[("a.example", 993)] = True
    assert len(budget.choose(due(40, ("a.example", 993)))) == 16


def test_connects_wait_while_sessions_wait_for_their_sync(clock):
    budget = ConnectBudget(threads=16, per_second=0, settle_limit=10)
    server = ("a.example", 993)
    budget.answers[server] = True
    assert len(budget.choose(due(40, server), settling=6)) == 4
    assert budget.choose(due(40, server), settling=10) == []
    budget.started(99, server, PROVEN)  # one in flight counts too
    assert len(budget.choose(due(40, server), settling=6)) == 3


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fast_worker_settings")
def test_a_worker_opens_no_more_sessions_than_its_pool_can_sync(alice, dovecot, settings,
                                                                  monkeypatch):
    """One pool thread and one connect thread: at most 1 + 2 x 1 = 3 connects in flight or
    logged in and waiting for their first sync; the rest wait until those idle."""
    settings.IMAP_LEASE_TTL = 60
    settings.IMAP_CONNECTS_PER_SECOND = 0
    accounts = [register(alice.tenant, dovecot.add_user(), f"box{i}") for i in range(6)]
    gate = held_back(monkeypatch, AccountConnection, "sync")
    worker = DrivenWorker(pool_size=1, connect_threads=1)

    def waiting() -> int:
        """Sessions logged in, not idling, not being opened."""
        return sum(s.conn.client is not None and s.registered is None
                   and pk not in worker.connects.in_flight for pk, s in worker.slots.items())

    peak = []
    looks = []
    original_started, original_choose = worker.connects.started, worker.connects.choose

    def note(pk, endpoint, health):
        peak.append(waiting() + len(worker.connects.in_flight) + 1)
        return original_started(pk, endpoint, health)

    def choose(due, settling=0, **kwargs):
        chosen = original_choose(due, settling, **kwargs)
        if waiting() == 3 and any(s.next_step == "connect" and not s.busy
                                  for s in worker.slots.values()):
            looks.append(len(chosen))  # connects were due, sessions were waiting
        return chosen

    monkeypatch.setattr(worker.connects, "started", note)
    monkeypatch.setattr(worker.connects, "choose", choose)
    try:
        worker.claim()
        worker.until(lambda: len(looks) >= 5)  # looked at the due connects, sessions waiting
        assert waiting() == 3
        assert set(looks) == {0}
        gate.set()
        worker.until(lambda: all(worker.idle(a.pk) for a in accounts), timeout=60)
    finally:
        gate.set()
        worker.shutdown()
    assert len(peak) == 6
    assert max(peak) <= 3


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fast_worker_settings")
def test_a_worker_paces_the_connects_of_the_accounts_it_takes(alice, dovecot, settings,
                                                              monkeypatch):
    settings.IMAP_LEASE_TTL = 60
    settings.IMAP_CONNECTS_PER_SECOND = 2
    accounts = [register(alice.tenant, dovecot.add_user(), f"box{i}") for i in range(6)]
    worker = DrivenWorker()
    started: list[float] = []
    original = worker.connects.started

    def note(pk, endpoint, health):
        started.append(connect_budget.time.monotonic())
        return original(pk, endpoint, health)

    monkeypatch.setattr(worker.connects, "started", note)
    try:
        worker.claim()
        worker.until(lambda: all(worker.idle(a.pk) for a in accounts), timeout=60)
        assert worker.wave_waiting == 0  # the wave is over (and logged)
    finally:
        worker.shutdown()
    # Two at once (one second's worth), then two a second: the sixth is two seconds later.
    assert started[5] - started[0] >= 1.9


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fast_worker_settings")
@pytest.mark.parametrize("notify", [True, False])
def test_notify_is_asked_for_only_when_the_setting_allows(alice, mail_user, settings, notify):
    settings.IMAP_LEASE_TTL = 60
    settings.IMAP_NOTIFY = notify
    account = register(alice.tenant, mail_user)
    worker = DrivenWorker()
    try:
        worker.claim()
        worker.until(lambda: worker.idle(account.pk))
        assert worker.slots[account.pk].conn.notifying is notify
    finally:
        worker.shutdown()


@pytest.mark.django_db
def test_sessions_to_one_server_share_what_they_keep_alike(alice, dovecot):
    """Capability lists, fetch item strings and socket timeouts: one object per server, not
    one per session (a worker holds thousands of sessions, mostly to a few servers)."""
    first = open_session(register(alice.tenant, dovecot.add_user(), "one"))
    second = open_session(register(alice.tenant, dovecot.add_user(), "two"))
    try:
        assert first.capabilities is second.capabilities
        assert first.client.capabilities() is second.client.capabilities()
        assert "IDLE" in first.capabilities
        assert first.meta_items is second.meta_items
        assert first.client._timeout is second.client._timeout
    finally:
        first.client.logout()
        second.client.logout()


@pytest.mark.django_db
def test_a_connection_keeps_no_log_of_its_lines(alice, mail_user):
    session: ImapSession = open_session(register(alice.tenant, mail_user))
    try:
        session.select("INBOX")
        assert not getattr(underlying.connection(session.client), "_cmd_log", None)
    finally:
        session.client.logout()


@pytest.fixture
def one_idling(alice, mail_user, settings):
    """A worker (driven by the test) holding one account, idling: (worker, account)."""
    settings.IMAP_LEASE_TTL = 60
    account = register(alice.tenant, mail_user)
    worker = DrivenWorker()
    try:
        worker.claim()
        worker.until(lambda: worker.idle(account.pk))
        yield worker, account
    finally:
        worker.shutdown()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fast_worker_settings")
def test_an_idling_connection_keeps_no_connect_settings_and_reads_them_again(one_idling,
                                                                             mail_user):
    worker, account = one_idling
    kept = worker.slots[account.pk].conn.account
    assert {"imap", "oauth2"} <= kept.get_deferred_fields()
    # The first login's event still names the user (read again for it).
    [event] = events_of(account, "authenticationSuccess")
    assert event.data["user"] == mail_user.username
    assert kept.imap["auth"]["user"] == mail_user.username  # read again when asked


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fast_worker_settings")
def test_an_idling_connection_lets_go_of_its_account_row_and_mail_needs_no_read_of_it(
        one_idling, mail_user, monkeypatch):
    """A kept row is about 1 KiB of each of 10,000 sessions: dropped while the session idles.
    New mail is synced and announced and the session idles again without reading the row
    (its watched folder was kept); a step that needs the row reads it again."""
    worker, account = one_idling
    conn = worker.slots[account.pk].conn
    assert conn._account is None
    assert conn.has_account()
    reads = []
    original = connection_module._session_row

    def counted_read(pk):
        reads.append(pk)
        return original(pk)

    monkeypatch.setattr(connection_module, "_session_row", counted_read)
    seed.seed_mailbox(mail_user, messages=[seed.make_message(subject="Wakes the session")])
    worker.until(lambda: events_of(account, "messageNew"), timeout=60)
    worker.until(lambda: worker.idle(account.pk), timeout=60)
    assert reads == []  # not a query for the row per wake
    assert conn.account.pk == account.pk  # read again when asked
    assert reads == [account.pk]
    account.refresh_from_db()
    assert account.state == "connected"


def test_accounts_on_one_server_share_its_endpoint():
    first = endpoint_of({"host": "IMAP.example.com", "port": 993})
    second = endpoint_of({"host": "imap.example.com", "port": "993"})
    assert first is second


@pytest.mark.django_db
def test_an_idling_session_keeps_no_last_line(alice, mail_user):
    session: ImapSession = open_session(register(alice.tenant, mail_user))
    try:
        session.select("INBOX")
        start_idle(session.client)
        assert underlying.connection(session.client).mo is None
        assert underlying.connection(session.client).first_line == b""  # nor its greeting
        assert underlying.connection(session.client).welcome == b""  # nor imaplib's copy
        session.client.idle_done()
    finally:
        session.client.logout()


@pytest.mark.django_db
def test_an_idling_session_lets_go_of_its_read_buffer_until_the_server_speaks(
        alice, mail_user):
    """The reader (1 KiB buffer and two objects) is dropped while a session idles, but never
    while it holds bytes not read yet; the server's words are read whole through a new one."""
    session: ImapSession = open_session(register(alice.tenant, mail_user))
    appender = mail_user.imap_client()
    try:
        session.select("INBOX")
        imap = underlying.connection(session.client)
        assert start_idle(session.client) is False
        assert imap._file is client._PARKED
        # Looking at what is buffered (the worker does after every IDLE) keeps it parked.
        assert input_waiting(session.client, buffered_only=True) is False
        assert imap._file is client._PARKED
        appender.append("INBOX", seed.make_message(subject="Wakes the reader"))
        deadline = time.monotonic() + 30
        while not input_waiting(session.client):
            assert time.monotonic() < deadline, "the server announced nothing"
            time.sleep(0.05)
        assert imap.file.peek(1)  # the announcement, now in a new reader's buffer
        assert park_reader(session.client) is False  # kept: it holds bytes
        assert imap._file is not client._PARKED
        responses = idle_responses(session.client)
        assert (1, b"EXISTS") in responses
        assert imap._file is client._PARKED  # read whole, and let go of again
        session.client.idle_done()
        assert session.client.noop()  # the session goes on
    finally:
        appender.logout()
        session.client.logout()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fast_worker_settings")
def test_the_sessions_a_worker_holds_idling_keep_no_read_buffer(alice, dovecot, settings):
    """The worker looks for bytes already buffered as each session starts idling: that look
    used to make each a new reader (about 1.3 KiB per account, all 10,000 of them)."""
    settings.IMAP_LEASE_TTL = 60
    accounts = [register(alice.tenant, dovecot.add_user(), f"box{i}") for i in range(3)]
    worker = DrivenWorker()
    try:
        worker.claim()
        worker.until(lambda: all(worker.idle(a.pk) for a in accounts), timeout=60)
        readers = [underlying.connection(worker.slots[a.pk].conn.client)._file
                   for a in accounts]
    finally:
        worker.shutdown()
    assert readers == [client._PARKED] * len(accounts)


@pytest.mark.django_db
def test_a_connection_sets_only_the_attribute_names_its_class_was_taught(alice, mail_user):
    """Names outside ``CONNECTION_ATTRIBUTES`` would give every connection of a worker, whose
    connections are opened sixteen at a time, a dict of its own (``attribute_names``)."""
    session: ImapSession = open_session(register(alice.tenant, mail_user))
    try:
        session.select("INBOX")
        start_idle(session.client)
        session.client.idle_done()
        session.client.noop()
        imap = underlying.connection(session.client)
        assert set(vars(imap)) <= set(client.CONNECTION_ATTRIBUTES)
    finally:
        session.client.logout()


@pytest.mark.django_db
def test_a_connection_keeps_its_attributes_in_the_compact_shared_table(alice, mail_user):
    """Python keeps an instance's attributes in a table shared by its class while the class's
    instances use at most 30 names between them (0.3 KB a connection, not 1.6)."""
    session: ImapSession = open_session(register(alice.tenant, mail_user))
    try:
        session.select("INBOX")
        start_idle(session.client)
        assert sys.getsizeof(vars(underlying.connection(session.client))) < 600
        session.client.idle_done()
    finally:
        session.client.logout()
