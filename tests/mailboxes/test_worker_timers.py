"""The worker's timers: a heap of when each account's next step is due, instead of a look at
every held account every 50 ms (at 10,000 accounts that look was most of the loop thread's
time during a restart). Each ``set`` fires once, at the time last set; a timer set again or
cancelled leaves a stale entry that never fires. And the connect budget's look at the due
connects ends once every server they name is held back, instead of going through thousands of
connects of a server whose pace is spent."""

from __future__ import annotations

import random

import pytest

from mailboxes.worker import connect_budget, timers
from mailboxes.worker.connect_budget import ConnectBudget
from mailboxes.worker.connection import FAILING, PROVEN, UNKNOWN
from mailboxes.worker.timers import Timers
from tests.mailboxes.test_worker_scale import Clock, due


def test_due_timers_fire_earliest_first():
    clock = Timers()
    clock.set(1, 30.0)
    clock.set(2, 10.0)
    clock.set(3, 20.0)
    assert clock.pop_due(25.0) == [2, 3]


def test_a_timer_fires_once():
    clock = Timers()
    clock.set(1, 10.0)
    clock.pop_due(10.0)
    assert clock.pop_due(99.0) == []


def test_a_timer_set_again_fires_only_at_its_new_time():
    clock = Timers()
    clock.set(1, 10.0)
    clock.set(1, 50.0)  # the entry for 10.0 is stale now
    assert clock.pop_due(20.0) == []


def test_a_timer_brought_forward_fires_once():
    clock = Timers()
    clock.set(1, 50.0)
    clock.set(1, 10.0)
    assert clock.pop_due(60.0) == [1]


def test_a_cancelled_timer_never_fires():
    clock = Timers()
    clock.set(1, 10.0)
    clock.cancel(1)
    assert clock.pop_due(60.0) == []


def test_the_next_time_skips_stale_entries():
    clock = Timers()
    clock.set(1, 10.0)
    clock.set(2, 40.0)
    clock.set(1, 30.0)
    assert clock.next_at() == 30.0


def test_no_next_time_without_timers():
    clock = Timers()
    clock.set(1, 10.0)
    clock.cancel(1)
    assert clock.next_at() is None


def test_stale_entries_are_compacted_away():
    clock = Timers()
    for at in range(5 * timers.COMPACT_SLACK):
        clock.set(7, float(at))  # one account, set again and again
    assert len(clock._heap) <= 2 + timers.COMPACT_SLACK


def test_random_sets_and_cancels_fire_each_live_timer_once_at_its_last_time():
    """Against a plain dict of what each account's timer is: the heap fires exactly the live
    timers that are due, each once, and never a replaced or cancelled one."""
    rng = random.Random(19)
    clock, model = Timers(), {}
    now = 0.0
    fired: list[int] = []
    expected: list[int] = []
    for _ in range(20000):
        pk = rng.randrange(300)
        roll = rng.random()
        if roll < 0.6:
            at = now + rng.uniform(0, 5)
            clock.set(pk, at)
            model[pk] = at
        elif roll < 0.7:
            clock.cancel(pk)
            model.pop(pk, None)
        else:
            now += rng.uniform(0, 1)
            fired += sorted(clock.pop_due(now))
            due_now = sorted(p for p, at in model.items() if at <= now)
            expected += due_now
            for p in due_now:
                del model[p]
    assert fired == expected


@pytest.fixture
def budget_clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(connect_budget.time, "monotonic", fake)
    return fake


class Counted:
    """An iterable that counts how many items were taken from it."""

    def __init__(self, items):
        self.items, self.taken = items, 0

    def __iter__(self):
        for item in self.items:
            self.taken += 1
            yield item


def test_a_look_at_due_connects_ends_once_every_server_is_held_back(budget_clock):
    budget = ConnectBudget(threads=16, per_second=3)
    server = ("a.example", 993)
    budget.answers[server] = True
    budget.choose(due(3, server, first_pk=90000))  # this second's pace spent
    waiting = Counted(due(10000, server))
    budget.choose(waiting, endpoints=1, ranked=True)
    assert waiting.taken <= 2  # the one that found the pace spent, and the next


def test_the_ranked_look_chooses_what_the_full_look_chooses(budget_clock):
    """The same connects, whether the budget sorts them or is handed them in its order (and
    told how many servers they name)."""
    rng = random.Random(5)
    servers = [("a.example", 993), ("b.example", 993), ("c.example", 993), None]
    items = [(pk, rng.choice((PROVEN, UNKNOWN, FAILING)), rng.uniform(0, 10),
              rng.choice(servers)) for pk in range(400)]
    first, second = ConnectBudget(threads=16, per_second=5), ConnectBudget(threads=16,
                                                                           per_second=5)
    for budget in (first, second):
        budget.answers.update({servers[0]: True, servers[1]: False})
    full = first.choose(items)
    ranked = second.choose(second.rank(items), endpoints=len(set(servers)), ranked=True)
    assert ranked == full
