"""A worker killed with SIGKILL: another worker resumes its accounts, and every message that
arrived around the kill is announced exactly once.

The victim is a real ``manage.py imapworker`` subprocess on the test database (a thread cannot
be SIGKILLed); the survivor runs in a thread of the test process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.db import connection

from mailboxes.worker.imap_worker import ImapWorker
from tests.mailboxes.helpers import events_of, register
from tests.mailboxes.test_worker import state_of, wait_for
from tests.servers import seed

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]
TTL = 4


def _spawn_worker(settings, worker_id: str) -> subprocess.Popen:
    db = connection.settings_dict
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        REDIS_URL=settings.REDIS_URL, EMAILAPI_SECRET=settings.EMAILAPI_SECRET,
        EMAILAPI_LEASE_TTL=str(TTL), EMAILAPI_CLAIM_INTERVAL="1",
    )
    return subprocess.Popen(
        [sys.executable, "manage.py", "imapworker", "--worker-id", worker_id], cwd=ROOT,
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def test_sigkilled_worker_accounts_resume_elsewhere_without_loss_or_repeat(
        alice, mail_user, settings):
    settings.IMAP_LEASE_TTL, settings.IMAP_CLAIM_INTERVAL = TTL, 1
    account = register(alice.tenant, mail_user)
    victim = _spawn_worker(settings, "victim")
    survivor = None
    thread = None
    try:
        wait_for(lambda: state_of(account) == "connected", timeout=30)
        survivor = ImapWorker(worker_id="survivor")
        assert survivor.leases.holder(account.pk) == "victim"
        thread = threading.Thread(target=survivor.run, daemon=True)
        thread.start()

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
    finally:
        if victim.poll() is None:
            os.killpg(victim.pid, signal.SIGKILL)
            victim.wait()
        if survivor is not None:
            survivor.stop.set()
        if thread is not None:
            thread.join(timeout=30)
