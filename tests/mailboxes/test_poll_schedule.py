"""A new session keeps its account's poll schedule (``mailboxes.worker.poll_schedule``): an
account whose folders were all polled less than a poll interval ago, by this connection or by
the worker that held it before, syncs only its watched folder before IDLE; the others wait for
their poll as they would in an idling session. A poll that is due, settings changed since, an
index that is not whole, or an explicit reconnect poll every folder at once."""

from __future__ import annotations

import threading
import time
from urllib.parse import urlsplit

import pytest
import redis

from accounts.models import EmailAccount
from emailapi.lib.redis import get_redis
from mailboxes.flush import flush_index
from mailboxes.models import Folder, Message
from mailboxes.worker.connection import AccountConnection, Idle
from mailboxes.worker.poll_schedule import PollSchedule
from tests.mailboxes.helpers import register
from tests.servers import seed
from tests.servers.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("fast_worker_settings")]


@pytest.fixture
def account(alice, mail_user):
    """Indexed once: INBOX and a subscribed Archive, one message each."""
    seed.seed_mailbox(mail_user, messages=[seed.make_message(subject="Inbox one")])
    seed.seed_mailbox(mail_user, "Archive", messages=[seed.make_message(subject="Old")])
    client = mail_user.imap_client()
    try:
        client.subscribe_folder("Archive")
    finally:
        client.logout()
    return register(alice.tenant, mail_user)


def _subjects(account, path: str) -> set[str]:
    return set(Message.objects.filter(email_account=account, folder__path=path)
               .values_list("subject", flat=True))


def _mail_meanwhile(mail_user) -> None:
    seed.seed_mailbox(mail_user, messages=[seed.make_message(subject="Inbox two")])
    seed.seed_mailbox(mail_user, "Archive", messages=[seed.make_message(subject="Archived")])


def _listed(commands: list[bytes]) -> int:
    """LIST commands sent (the poll of every folder is a LIST-STATUS)."""
    return sum(1 for c in commands if b" " in c and c.split(b" ", 2)[1].upper() == b"LIST")


def _idle_in(worker, account) -> None:
    worker.claim()
    worker.until(lambda: worker.idle(account.pk)
                 and EmailAccount.objects.get(pk=account.pk).state == "connected")


def _handed_over(driven_worker, account, meanwhile=lambda: None):
    """A first worker indexes the account and stops gracefully (its polls are recorded);
    ``meanwhile`` runs while no worker holds it (what it announces reaches none); returns a
    second worker, which has not claimed yet."""
    first = driven_worker(worker_id="polls-first")
    _idle_in(first, account)
    first.shutdown()
    meanwhile()
    return driven_worker(worker_id="polls-second")


def test_a_reconnect_within_the_poll_interval_syncs_only_the_watched_folder(
        account, mail_user, imap_commands):
    conn = AccountConnection(account.pk, threading.Event())
    try:
        assert isinstance(conn.start(), Idle)  # the first index polls every folder
        _mail_meanwhile(mail_user)
        imap_commands.clear()
        assert isinstance(conn.start(), Idle)  # connection lost and opened again
        assert _listed(imap_commands) == 0
        assert _subjects(account, "INBOX") == {"Inbox one", "Inbox two"}
        assert _subjects(account, "Archive") == {"Old"}  # until its poll is due

        conn.last_poll -= 60  # the interval (fast_worker_settings) has passed
        assert isinstance(conn.start(), Idle)
        assert _listed(imap_commands) == 1
        assert _subjects(account, "Archive") == {"Old", "Archived"}
    finally:
        conn.close()


def test_the_worker_taking_an_account_over_keeps_its_poll_schedule(
        account, mail_user, driven_worker, imap_commands):
    second = _handed_over(driven_worker, account)
    left = get_redis().pttl(PollSchedule.key(account.pk)) / 1000
    assert 50 < left <= 60
    _mail_meanwhile(mail_user)
    imap_commands.clear()
    _idle_in(second, account)
    assert _listed(imap_commands) == 0
    assert _subjects(account, "INBOX") == {"Inbox one", "Inbox two"}
    assert _subjects(account, "Archive") == {"Old"}
    # Its next poll is due when the first worker's would have been.
    conn = second.slots[account.pk].conn
    assert conn.last_poll + 60 - time.monotonic() == pytest.approx(left, abs=5)

    second.sync_now(account.pk)  # the poll, as when due
    second.until(lambda: _subjects(account, "Archive") == {"Old", "Archived"})


@pytest.mark.parametrize("change", ["record lost", "settings changed", "index flushed",
                                    "history left"])
def test_an_account_polls_as_it_connects_when_its_schedule_cannot_be_trusted(
        account, mail_user, driven_worker, imap_commands, change):
    def meanwhile():
        if change == "record lost":  # Redis restarted, or the first worker was killed
            get_redis().delete(PollSchedule.key(account.pk))
        elif change == "settings changed":
            EmailAccount.objects.filter(pk=account.pk).update(config_version=7)
        elif change == "index flushed":
            flush_index(account)
        else:  # a folder reset (UIDVALIDITY) being indexed again when its worker stopped
            Folder.objects.filter(email_account=account, path="Archive").update(backfill_below=1)
        _mail_meanwhile(mail_user)

    second = _handed_over(driven_worker, account, meanwhile)
    imap_commands.clear()
    _idle_in(second, account)
    assert _listed(imap_commands) == 1
    assert _subjects(account, "Archive") == {"Old", "Archived"}
    assert _subjects(account, "INBOX") == {"Inbox one", "Inbox two"}


def test_accounts_taken_while_redis_does_not_answer_poll_as_they_connect(
        account, mail_user, driven_worker, settings, imap_commands):
    """The schedule is a cache: unreadable, the accounts taken poll at once (and the claim
    goes on: the leases may be on a Redis that answers)."""
    second = _handed_over(driven_worker, account, lambda: _mail_meanwhile(mail_user))
    url = urlsplit(settings.REDIS_URL)
    with TcpProxy(url.port or 6379).start() as proxy:
        second.worker.polls = PollSchedule(redis.Redis.from_url(
            f"redis://127.0.0.1:{proxy.port}{url.path}", socket_timeout=2))
        proxy.cut()
        imap_commands.clear()
        _idle_in(second, account)
    assert _listed(imap_commands) == 1
    assert _subjects(account, "Archive") == {"Old", "Archived"}


def test_a_reconnect_asked_for_polls_every_folder(account, mail_user, driven_worker,
                                                  imap_commands):
    worker = driven_worker(worker_id="polls-asked")
    _idle_in(worker, account)
    _mail_meanwhile(mail_user)
    imap_commands.clear()
    worker.reconnect(account.pk)  # PUT .../reconnect, or new settings
    worker.until(lambda: _subjects(account, "Archive") == {"Old", "Archived"})
    assert _listed(imap_commands) == 1


def test_polls_are_recorded_to_expire_when_the_next_is_due():
    polls = PollSchedule(get_redis())
    pks = [990101, 990102, 990103]
    now = time.monotonic()
    try:
        polls.note(990101, 3, now - 20, 60)
        polls.note(990102, 1, now - 70, 60)  # due already: not written
        polls.note(990101, 4, now - 10, 60)  # the later poll of the same account wins
        polls.note(990103, 2, now - 70, 300)  # NOTIFY: polled every 5 minutes, due in 230 s
        assert polls.flush() == 2
        assert polls.flush() == 0  # written once
        found = polls.due_in(pks, chunk=2)
        assert sorted(found) == [990101, 990103]
        version, due_in = found[990101]
        assert version == 4
        assert due_in == pytest.approx(50, abs=2)
        assert found[990103][1] == pytest.approx(230, abs=2)
    finally:
        get_redis().delete(*[PollSchedule.key(pk) for pk in pks])
