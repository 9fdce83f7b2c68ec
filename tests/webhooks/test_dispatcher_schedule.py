"""Which lanes a dispatcher pass starts (``Dispatcher.schedule``): a healthy subscription gets
half the pool, and the threads no other subscription's lane wants, those lanes for one run
each; a failing one gets one thread. Real PostgreSQL; the pool only notes what it is given."""

from __future__ import annotations

import pytest

from tests.webhooks.test_webhook_delivery import record_many, subscribe
from webhooks import delivery_state, sequencer
from webhooks.dispatcher import Dispatcher
from webhooks.models import WebhookSubscription

pytestmark = pytest.mark.django_db(transaction=True)


class NotingPool:
    def __init__(self):
        self.started = []

    def submit(self, function, lane, one_run=False):
        self.started.append((str(lane[0]), lane[1], one_run))

    def shutdown(self, **_):
        pass


def dispatcher_noting_lanes(concurrency: int) -> Dispatcher:
    dispatcher = Dispatcher(concurrency=concurrency)
    dispatcher.pool.shutdown()
    dispatcher.pool = NotingPool()
    return dispatcher


def published():
    sequencer.publish_pending()
    delivery_state.fan_out()


def test_a_lone_healthy_subscription_may_use_the_whole_pool_one_run_at_a_time(
        alice, allow_private_webhooks):
    hook = subscribe(alice, "http://127.0.0.1:9/hook")["id"]
    record_many(alice.tenant, ["a", "b", "c", "d", "e"], 2)
    published()
    dispatcher = dispatcher_noting_lanes(4)
    dispatcher.schedule()
    started = dispatcher.pool.started
    assert len(started) == 4
    assert {sub for sub, _, _ in started} == {hook}
    # Its half of the pool runs lanes to their end; the rest one run each.
    assert sorted(one_run for _, _, one_run in started) == [False, False, True, True]


def test_with_another_subscription_waiting_a_healthy_one_keeps_to_its_half(
        alice, allow_private_webhooks):
    first = subscribe(alice, "http://127.0.0.1:9/first")["id"]
    second = subscribe(alice, "http://127.0.0.1:9/second")["id"]
    record_many(alice.tenant, ["a", "b", "c"], 2)
    published()
    dispatcher = dispatcher_noting_lanes(4)
    dispatcher.schedule()
    started = dispatcher.pool.started
    assert sorted(sub for sub, _, _ in started) == sorted([first, first, second, second])
    assert not any(one_run for _, _, one_run in started)


def test_a_failing_subscription_gets_one_thread_even_alone(alice, allow_private_webhooks):
    from django.utils import timezone

    hook = subscribe(alice, "http://127.0.0.1:9/hook")["id"]
    record_many(alice.tenant, ["a", "b", "c"], 1)
    published()
    WebhookSubscription.objects.filter(pk=hook).update(failing_since=timezone.now())
    dispatcher = dispatcher_noting_lanes(4)
    dispatcher.schedule()
    assert len(dispatcher.pool.started) == 1
