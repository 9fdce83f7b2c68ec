"""Group commit (``webhooks.group_commit``, ``delivery_state.advance``): rows submitted while a
statement is in flight go together in the next one, each caller gets its own row's answer (or
its statement's error) and returns only after its row was written; and one statement of many
lanes' rows records and claims each lane on its own terms. Real PostgreSQL for the latter."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import close_old_connections, connection
from django.utils import timezone

from tests.webhooks.test_delivery_runs import OK, states
from tests.webhooks.test_webhook_delivery import record_many, subscribe
from webhooks import delivery_state, sequencer
from webhooks.group_commit import GroupCommit
from webhooks.models import Delivery


class HeldWriter:
    """``write_many`` whose first statement waits until ``release``; records every batch."""

    def __init__(self, fail_on=None):
        self.batches: list[list] = []
        self.first_started = threading.Event()
        self.released = threading.Event()
        self.fail_on = fail_on

    def __call__(self, rows):
        self.batches.append(list(rows))
        if len(self.batches) == 1:
            self.first_started.set()
            assert self.released.wait(30)
        if self.fail_on in rows:
            raise RuntimeError("statement failed")
        return [row * 10 for row in rows]


def wait_until(predicate, timeout=30.0):
    """Poll ``predicate`` (a queue length, which nothing signals) until it holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def test_rows_arriving_while_a_statement_is_in_flight_share_the_next_one():
    writer = HeldWriter()
    group = GroupCommit(writer, writers=1)
    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(group.submit, 1)
        assert writer.first_started.wait(30)
        later = [pool.submit(group.submit, row) for row in (2, 3, 4, 5, 6)]
        wait_until(lambda: len(group._queue) == 5)
        assert not any(future.done() for future in later)  # none returns before its write
        writer.released.set()
        assert first.result(30) == 10
        assert [future.result(30) for future in later] == [20, 30, 40, 50, 60]
    assert writer.batches[0] == [1]
    assert sorted(writer.batches[1]) == [2, 3, 4, 5, 6]  # one statement for all five
    assert group.statements == 2
    assert group.submit(7) == 70  # alone again: written at once, by its own thread
    assert writer.batches[-1] == [7]


def test_a_failed_statement_fails_its_own_rows_only_and_writing_goes_on():
    writer = HeldWriter(fail_on=3)
    group = GroupCommit(writer, limit=2, writers=1)
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(group.submit, 1)
        assert writer.first_started.wait(30)
        later = [pool.submit(group.submit, row) for row in (2, 3, 4)]
        wait_until(lambda: len(group._queue) == 3)
        writer.released.set()
        assert first.result(30) == 10
        outcomes = []
        for future in later:
            try:
                outcomes.append(future.result(30))
            except RuntimeError:
                outcomes.append("failed")
    # At most two rows a statement: (2, 3) failed together, 4 went on in a statement of its own.
    assert writer.batches[1:] == [[2, 3], [4]]
    assert outcomes == ["failed", "failed", 40]
    assert group.submit(5) == 50  # nobody was left holding the writer's part


def test_a_second_writer_goes_on_while_a_statement_hangs_and_the_third_row_waits():
    writer = HeldWriter()
    group = GroupCommit(writer, writers=2)
    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(group.submit, 1)
        assert writer.first_started.wait(30)
        assert group.submit(2) == 20  # a second statement while the first is in flight
        group._writing += 1  # as if that second writer were still busy
        third = pool.submit(group.submit, 3)
        wait_until(lambda: len(group._queue) == 1)
        assert not third.done()
        group._writing -= 1
        writer.released.set()
        assert (first.result(30), third.result(30)) == (10, 30)
    assert writer.batches == [[1], [2], [3]]
    assert group._writing == 0


@pytest.fixture
def lanes(alice, allow_private_webhooks):
    """Three deliveries in each of lanes (hook, "a"), (hook, "b"), (hook, "c")."""
    hook = subscribe(alice, "http://127.0.0.1:9/hook")
    record_many(alice.tenant, ["a", "b", "c"], 3)
    sequencer.publish_pending()
    delivery_state.fan_out()
    return hook["id"]


@pytest.mark.django_db(transaction=True)
def test_one_statement_records_and_claims_each_lane_on_its_own_terms(lanes):
    runs = {account: delivery_state.claim_run(lanes, account) for account in "abc"}
    # Lane c's claim lapsed and was taken over: its stale row must change nothing.
    Delivery.objects.filter(subscription_id=lanes, account_id="c").update(
        lease_until=timezone.now() - timedelta(seconds=1))
    assert len(delivery_state.claim_run(lanes, "c")) == 3
    now = timezone.now()
    lease = delivery_state.lease_until(now)

    def row(sent, following):
        return (sent.pk, sent.attempts, 200, "ok", 3, following.pk if following else None,
                following.attempts if following else 0, lease, sent.subscription_id, now)

    answers = delivery_state._write_advances([
        row(runs["a"][0], runs["a"][1]),  # recorded, next claimed
        row(runs["b"][0], None),  # recorded, the end of its run
        row(runs["c"][0], runs["c"][1]),  # not ours any more
    ])
    assert answers == [(True, True), (True, False), (False, False)]
    assert states(lanes, "a") == [("delivered", 1), ("delivering", 1), ("pending", 0)]
    assert states(lanes, "b") == [("delivered", 1), ("pending", 0), ("pending", 0)]
    assert states(lanes, "c") == [("delivering", 2), ("pending", 0), ("pending", 0)]
    # The same rows again, as after a lost answer: a's finds its own earlier claim by lease.
    again = delivery_state._write_advances([row(runs["a"][0], runs["a"][1])])
    assert again == [(False, True)]


@pytest.mark.django_db(transaction=True)
def test_lanes_advancing_from_many_threads_each_get_their_own_answer(alice,
                                                                     allow_private_webhooks):
    hook = subscribe(alice, "http://127.0.0.1:9/hook")["id"]
    accounts = [f"lane-{number}" for number in range(8)]
    record_many(alice.tenant, accounts, 6)
    sequencer.publish_pending()
    delivery_state.fan_out()
    before = delivery_state.ADVANCES.statements

    def walk(account):
        close_old_connections()
        try:
            run = delivery_state.claim_run(hook, account)
            results = [delivery_state.advance(sent, OK, following)
                       for sent, following in zip(run, [*run[1:], None], strict=True)]
            return len(run), results
        finally:
            connection.close()

    with ThreadPoolExecutor(8) as pool:
        walked = list(pool.map(walk, accounts))
    assert walked == [(6, [True] * 6)] * 8
    for account in accounts:
        assert states(hook, account) == [("delivered", 1)] * 6
    assert delivery_state.ADVANCES.statements > before  # they went through the group
