"""A worker killed with SIGKILL: another worker resumes its accounts, and every message that
arrived around the kill is announced exactly once.

The victim is a real ``manage.py imapworker`` subprocess on the test database (a thread cannot
be SIGKILLed); the survivor runs in a thread of the test process.
"""

from __future__ import annotations

import signal
import time

import pytest

from tests.mailboxes.helpers import TTL, counted, events_of, register
from tests.mailboxes.test_worker import state_of, wait_for
from tests.servers import seed

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.sqlite
def test_sigkilled_worker_accounts_resume_elsewhere_without_loss_or_repeat(
        alice, mail_user, settings, start_worker, spawn_worker):
    settings.IMAP_LEASE_TTL, settings.IMAP_CLAIM_INTERVAL = TTL, 1
    account = register(alice.tenant, mail_user)
    victim = spawn_worker("victim")
    wait_for(lambda: state_of(account) == "connected", timeout=30)
    survivor = start_worker(worker_id="survivor")
    assert survivor.leases.holder(account.pk) == "victim"

    before = [f"before kill {i}" for i in range(3)]
    seed.seed_mailbox(mail_user, messages=[seed.make_message(subject=s) for s in before])
    wait_for(lambda: len(events_of(account, "messageNew")) == 3)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    after = [f"after kill {i}" for i in range(3)]
    seed.seed_mailbox(mail_user, messages=[seed.make_message(subject=s) for s in after])

    wait_for(lambda: account.pk in survivor.slots, timeout=TTL + 10)
    wait_for(lambda: len(events_of(account, "messageNew")) >= 6, timeout=20)
    wait_for(lambda: state_of(account) == "connected")
    assert survivor.leases.holder(account.pk) == "survivor"
    subjects = sorted(e.data["subject"] for e in events_of(account, "messageNew"))
    assert subjects == sorted(before + after)


def test_a_killed_worker_is_found_gone_long_before_its_leases_run_out(
        alice, mail_user, settings, start_worker, spawn_worker):
    """Redis drops a killed worker's presence subscription at once: the survivor takes the
    account after ``IMAP_WORKER_GONE_AFTER``, not the 60 s its lease still had to run, and
    leaves it alone while the other lives."""
    account, victim, survivor = _victim_seen_by_survivor(
        alice, mail_user, settings, start_worker, spawn_worker, ttl=60, interval=1, gone_after=2)
    ticks = counted(survivor, "_tick")
    wait_for(lambda: len(ticks) >= 4)  # over 3 s of looks while the victim lives
    assert account.pk not in survivor.slots
    assert survivor.leases.holder(account.pk) == "victim"

    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    killed = time.monotonic()
    seed.seed_mailbox(mail_user, messages=[seed.make_message(subject="after kill")])
    wait_for(lambda: account.pk in survivor.slots, timeout=30)
    # Renewed at most a tick before the kill, the victim's lease had 59 s or more to run: the
    # survivor did not wait for it (about GONE_AFTER and a tick on an idle machine).
    assert time.monotonic() - killed < 50
    assert survivor.leases.holder(account.pk) == "survivor"
    wait_for(lambda: [e.data["subject"] for e in events_of(account, "messageNew")]
             == ["after kill"], timeout=20)
    wait_for(lambda: state_of(account) == "connected")


def test_a_worker_found_gone_between_ticks_is_claimed_without_waiting_for_the_next(
        alice, mail_user, settings, start_worker, spawn_worker):
    """The survivor looks at the others' presence twice a second, not only on its claim tick:
    with ticks a minute apart, the killed worker's account is taken about
    ``IMAP_WORKER_GONE_AFTER`` after the kill, by a tick started for it."""
    account, victim, survivor = _victim_seen_by_survivor(
        alice, mail_user, settings, start_worker, spawn_worker, ttl=120, interval=60,
        gone_after=1)
    ticks = counted(survivor, "_tick")  # after the first tick, which saw the victim
    assert survivor.leases.holder(account.pk) == "victim"

    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    killed = time.monotonic()
    wait_for(lambda: account.pk in survivor.slots and ticks, timeout=40)
    # The next regular tick was 60 s after the first: this one was started by the look.
    assert time.monotonic() - killed < 40
    assert ticks == ["_tick"]
    wait_for(lambda: state_of(account) == "connected")
    assert survivor.leases.holder(account.pk) == "survivor"


def _victim_seen_by_survivor(alice, mail_user, settings, start_worker, spawn_worker, ttl: int,
                             interval: int, gone_after: int):
    """An account held by a worker subprocess (``victim``, to be killed) and a worker thread
    (``survivor``) whose claim tick has seen the victim among the live workers."""
    settings.IMAP_LEASE_TTL, settings.IMAP_CLAIM_INTERVAL = ttl, interval
    settings.IMAP_WORKER_GONE_AFTER = gone_after
    account = register(alice.tenant, mail_user)
    victim = spawn_worker("victim", ttl=ttl)
    wait_for(lambda: state_of(account) == "connected", timeout=30)
    survivor = start_worker(worker_id="survivor")
    wait_for(lambda: "victim" in survivor.workers)
    return account, victim, survivor
