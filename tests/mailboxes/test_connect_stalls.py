"""The connect budget's stall gate: two connects to one server waiting longer than
``STALL_AFTER`` hold back further connects to it only while that server has not answered
any connect for as long (hung), not while it keeps answering slowly (a loaded machine)."""

from __future__ import annotations

import pytest

from mailboxes.worker import connect_budget
from mailboxes.worker.connect_budget import STALL_AFTER, ConnectBudget
from mailboxes.worker.connection import PROVEN
from tests.mailboxes.test_worker_scale import Clock, due

SERVER = ("imap.example", 993)


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(connect_budget.time, "monotonic", fake)
    return fake


def started(budget: ConnectBudget, pks) -> None:
    for pk in pks:
        budget.started(pk, SERVER, PROVEN)


def test_two_stalled_connects_to_a_silent_server_hold_back_the_rest(clock):
    budget = ConnectBudget(threads=16)
    started(budget, [1, 2])
    clock.now += STALL_AFTER + 0.5
    assert budget.choose(due(10, SERVER, first_pk=3)) == []


def test_a_server_that_keeps_answering_is_slow_not_hung(clock):
    budget = ConnectBudget(threads=16)
    started(budget, [1, 2, 3])
    clock.now += STALL_AFTER + 0.5
    budget.finished(3, answered=True)  # 1 and 2 are slow, but the server answers
    assert len(budget.choose(due(10, SERVER, first_pk=4))) == 10


def test_the_gate_closes_again_once_the_server_stops_answering(clock):
    budget = ConnectBudget(threads=16)
    started(budget, [1, 2, 3])
    budget.finished(3, answered=True)
    clock.now += STALL_AFTER + 0.5
    assert budget.choose(due(10, SERVER, first_pk=4)) == []
