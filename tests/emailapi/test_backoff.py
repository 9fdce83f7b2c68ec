"""The one backoff ``Schedule`` gives each of its users the delays it had before it was shared:
each test writes out the former arithmetic and compares (pure: no database, no Redis)."""

from __future__ import annotations

import random

import pytest

from emailapi import process_group
from emailapi.lib.backoff import Schedule
from mailboxes import outbox, sending
from mailboxes.management.commands import sendscheduler
from mailboxes.worker import connection
from webhooks import delivery_state, dispatcher
from webhooks.stream import hub

RETRIES = range(0, 16)


def former_curve(base: float, factor: float, cap: float, failures: int,
                 rng: random.Random, jitter: float = 0.2) -> float:
    """``mailboxes/worker/backoff.py``'s ``Schedule.delay`` before the move."""
    raw = min(cap, base * factor ** max(0, failures - 1))
    return max(0.0, raw * (1 + rng.uniform(-jitter, jitter)))


def same_draws(new, old, retries=RETRIES):
    """Both sides draw their jitter from generators seeded alike, so they must agree."""
    for n in retries:
        assert new(n, random.Random(n)) == pytest.approx(old(n, random.Random(n)), rel=1e-12), n


def test_a_curve_doubles_up_to_its_cap_and_a_list_repeats_its_last_step():
    assert [Schedule(base=1.0, cap=30.0).delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert [Schedule(steps=(10, 30)).delay(n) for n in (0, 1, 2, 3, 9)] == [10, 10, 30, 30, 30]
    assert [Schedule(steps=(10, 30), first=0.5).delay(n) for n in (1, 2, 3, 4)] == [0.5, 10, 30, 30]


def test_jitter_stays_within_its_fraction():
    schedule = Schedule(steps=(100,), jitter=0.2)
    delays = [schedule.delay(1, random.Random(seed)) for seed in range(200)]
    assert min(delays) >= 80
    assert max(delays) <= 120
    assert len(set(delays)) > 100


def test_reconnect_after_a_failed_connect_is_as_before():
    """1 s doubling to 5 minutes, +-20 %."""
    assert [connection.connect_backoff().plain(n) for n in range(1, 12)] == [
        1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    same_draws(lambda n, rng: connection.connect_backoff().delay(n, rng),
               lambda n, rng: former_curve(1.0, 2.0, 300.0, n, rng))


def test_reconnect_after_a_refused_login_is_as_before():
    """1 minute doubling to 1 hour, +-20 %."""
    same_draws(lambda n, rng: connection.auth_backoff().delay(n, rng),
               lambda n, rng: former_curve(60.0, 2.0, 3600.0, n, rng))


def test_retry_after_a_store_fault_is_as_before():
    """1 s doubling to 30 s, +-20 %."""
    same_draws(lambda n, rng: connection.store_backoff().delay(n, rng),
               lambda n, rng: former_curve(1.0, 2.0, 30.0, n, rng))


def test_reconnect_after_a_lost_connection_is_as_before():
    """``_lost``: half a second the first time, then the connect curve one retry behind."""
    def former(failures, rng):
        return 0.5 if failures == 1 else former_curve(1.0, 2.0, 300.0, failures - 1, rng)

    same_draws(lambda n, rng: connection.lost_backoff().delay(n, rng), former,
               retries=range(1, 16))


def test_the_reconnect_numbers_are_settings(settings):
    settings.IMAP_RECONNECT_DELAY, settings.IMAP_RECONNECT_MAX_DELAY = 3, 10
    assert [connection.connect_backoff().plain(n) for n in range(1, 5)] == [3, 6, 10, 10]
    assert connection.lost_backoff().delay(1) == 0.5


def test_a_crashed_worker_step_runs_again_after_five_seconds():
    assert connection.CRASHED_STEP_RETRY == 5.0


def test_the_dispatchers_outage_backoff_is_as_before():
    """0.25 s doubling to 5 s, +-20 %."""
    same_draws(lambda n, rng: dispatcher.OUTAGE.delay(n, rng),
               lambda n, rng: former_curve(0.25, 2.0, 5.0, n, rng))


def test_send_retries_are_as_before(settings):
    """The setting's list, its last delay repeating, no jitter."""
    def former(attempts_made):
        schedule = settings.SEND_RETRY_SCHEDULE
        return schedule[min(max(attempts_made, 1), len(schedule)) - 1]

    for n in RETRIES:
        assert outbox.retry_delay(n).total_seconds() == former(n), n
    assert [outbox.retry_delay(n).total_seconds() for n in range(1, 9)] == [
        10, 30, 120, 600, 1800, 3600, 7200, 7200]


def test_webhook_retries_are_as_before(settings):
    """The setting's list, its last delay repeating, each jittered +-20 % by ``random``."""
    def former(attempts_made):
        schedule = settings.WEBHOOK_RETRY_SCHEDULE
        base = schedule[min(max(attempts_made, 1), len(schedule)) - 1]
        return base * random.uniform(0.8, 1.2)

    for n in RETRIES:
        random.seed(n)
        new = delivery_state.retry_delay(n)
        random.seed(n)
        assert new == former(n), n
    assert [delivery_state.retry_schedule().plain(n) for n in range(1, 14)] == [
        10, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 14400, 21600, 21600, 21600]


def test_serve_restarts_are_as_before():
    """``min(30, 2 ** (failures - 1))``: 1 s, 2 s, 4 s ... 30 s, no jitter."""
    for failures in range(1, 16):
        assert process_group.RESTART.delay(failures) == min(30.0, 2.0 ** (failures - 1)), failures


def test_recording_a_sends_outcome_retries_as_before():
    former, pause = [], 0.05
    for _ in range(10):
        former.append(pause)
        pause = min(pause * 2, 5.0)
    assert [sending.RECORD_RETRY.delay(n) for n in range(1, 11)] == pytest.approx(former)


def test_the_send_sweeps_pause_is_as_before():
    interval = 2.0
    pauses = Schedule(base=interval, factor=2.0, cap=sendscheduler.MAX_PAUSE)
    assert [pauses.delay(failures + 1) for failures in range(8)] == [
        min(sendscheduler.MAX_PAUSE, interval * 2 ** failures) for failures in range(8)]


def test_the_stream_hubs_retries_are_as_before():
    assert [hub.DB_RETRY.delay(failures) for failures in range(1, 8)] == [
        min(hub.RETRY_MAX, 2 ** (failures - 1)) for failures in range(1, 8)]
    former, pause = [], 0.5
    for _ in range(10):
        former.append(pause)
        pause = min(pause * 2, 30)
    assert [hub.DOORBELL_RETRY.delay(n) for n in range(1, 11)] == former
