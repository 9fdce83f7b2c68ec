"""``manage.py webhookdispatcher`` as a real process: killed with SIGKILL while deliveries
are pending, Redis flushed, a new process started: every event still arrives, in order per
mailbox; SIGTERM stops it cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from tests.webhooks.test_webhook_delivery import by_account_in_order, record_many, subscribe
from webhooks.models import Delivery

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


def _spawn(settings) -> subprocess.Popen:
    db = connection.settings_dict
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        REDIS_URL=settings.REDIS_URL, EMAILAPI_SECRET=settings.EMAILAPI_SECRET,
        EMAILAPI_REDIS_PREFIX=settings.EMAILAPI_REDIS_PREFIX, WEBHOOKS_ALLOW_PRIVATE="true",
        EMAILAPI_WEBHOOK_RETRY_SCHEDULE="0,1", EMAILAPI_WEBHOOK_TIMEOUT="2",
    )
    return subprocess.Popen([sys.executable, "manage.py", "webhookdispatcher"], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)


def test_killed_dispatcher_and_flushed_redis_lose_no_event(
        alice, settings, allow_private_webhooks, webhook_receiver, redis_db):
    receiver = webhook_receiver()
    receiver.fail_next(10_000)
    subscribe(alice, receiver.url)
    first = _spawn(settings)
    second = None
    try:
        record_many(alice.tenant, ["a", "b"], 3)
        receiver.wait_for(lambda r: len(r.requests) >= 3, timeout=20)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
        redis_db.flushall()
        # The killed process may have held a claim: it lapses after its lease.
        Delivery.objects.filter(state="delivering").update(
            lease_until=timezone.now() - timedelta(seconds=1))
        with receiver._lock:
            receiver._failures.clear()
        record_many(alice.tenant, ["a", "c"], 2)
        second = _spawn(settings)
        receiver.wait_for(lambda r: len({q.payload["id"] for q in r.accepted()}) == 10,
                          timeout=30)
        lanes = by_account_in_order(receiver.accepted())
        assert {account: len(seqs) for account, seqs in lanes.items()} == {"a": 5, "b": 3, "c": 2}
        assert all(seqs == sorted(seqs) for seqs in lanes.values())
        second.send_signal(signal.SIGTERM)
        assert second.wait(15) == 0, second.stderr.read().decode()[-2000:]
    finally:
        for process in (first, second):
            if process and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
