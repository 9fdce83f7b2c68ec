"""The worker's share of a new mail's latency, in ``/metrics``: how long a step waited for a
thread (by kind) and how long from reading an idling session's notice to its changes synced
and IDLE entered again. A failover bench saw the survivors' own new mail take seconds and could
not say whether the worker's pool or the server held it; an operator cannot either without
these."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from tests.mailboxes.helpers import claimed_and_idle, events_of, register
from tests.servers import seed

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("fast_worker_settings")]


def _value(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_wake_by_new_mail_is_timed_from_the_notice_to_idle_again(alice, dovecot, driven_worker):
    user = dovecot.add_user()
    account = register(alice.tenant, user, "timed")
    worker = driven_worker()
    connects = _value("emailapi_imap_step_wait_seconds_count", kind="connect")
    timers = _value("emailapi_imap_step_wait_seconds_count", kind="timer")
    claimed_and_idle(worker, [account])
    # Its connect waited for a connect thread, and the sync after it for a pool thread.
    assert _value("emailapi_imap_step_wait_seconds_count", kind="connect") == connects + 1
    assert _value("emailapi_imap_step_wait_seconds_count", kind="timer") >= timers + 1
    wakes = _value("emailapi_imap_wake_duration_seconds_count")
    waited = _value("emailapi_imap_step_wait_seconds_count", kind="wake")
    wake_seconds = _value("emailapi_imap_wake_duration_seconds_sum")
    seed.seed_mailbox(user, messages=[seed.make_message(subject="Timed")])
    worker.until(lambda: events_of(account, "messageNew") and worker.idle(account.pk))
    assert _value("emailapi_imap_wake_duration_seconds_count") == wakes + 1
    assert _value("emailapi_imap_step_wait_seconds_count", kind="wake") >= waited + 1
    took = _value("emailapi_imap_wake_duration_seconds_sum") - wake_seconds
    assert 0 < took < 60
