"""``manage.py webhookdispatcher`` as a real process: killed with SIGKILL while deliveries
are pending, Redis flushed, a new process started: every event still arrives, in order per
mailbox; SIGTERM stops it cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from django.db import connection, transaction
from django.utils import timezone

from tests.base import wait_for as wait_until
from tests.servers.fast_receiver import FastReceiver
from tests.servers.tcp_proxy import TcpProxy
from tests.webhooks.test_webhook_delivery import by_account_in_order, record_many, subscribe
from webhooks import events, sequencer
from webhooks.models import Delivery

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


def _spawn(settings, log: Path, **overrides: str) -> subprocess.Popen:
    """Start ``manage.py webhookdispatcher``; its output goes to ``log`` (a pipe nobody reads
    would fill up and block the process at its next log line)."""
    db = connection.settings_dict
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        REDIS_URL=settings.REDIS_URL, EMAILAPI_SECRET=settings.EMAILAPI_SECRET,
        EMAILAPI_REDIS_PREFIX=settings.EMAILAPI_REDIS_PREFIX, WEBHOOKS_ALLOW_PRIVATE="true",
        EMAILAPI_WEBHOOK_RETRY_SCHEDULE="0,1", EMAILAPI_WEBHOOK_TIMEOUT="2",
    )
    env.update(overrides)
    with log.open("ab") as output:
        return subprocess.Popen([sys.executable, "manage.py", "webhookdispatcher"],
                                cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _dispatcher_sessions() -> int:
    """Database sessions of webhookdispatcher processes on this test database."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND application_name = 'webhookdispatcher'")
        return cursor.fetchone()[0]


def test_killed_dispatcher_and_flushed_redis_lose_no_event(
        alice, settings, allow_private_webhooks, webhook_receiver, redis_db, tmp_path):
    receiver = webhook_receiver()
    receiver.fail_next(10_000)
    subscribe(alice, receiver.url)
    log = tmp_path / "dispatcher.log"
    first = _spawn(settings, log)
    second = None
    try:
        record_many(alice.tenant, ["a", "b"], 3)
        receiver.wait_for(lambda r: len(r.requests) >= 3, timeout=60)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
        wait_until(lambda: not _dispatcher_sessions(), timeout=30)  # its last statement ran
        redis_db.flushdb()
        # The killed process may have held a claim: it lapses after its lease.
        Delivery.objects.filter(state="delivering").update(
            lease_until=timezone.now() - timedelta(seconds=1))
        with receiver._lock:
            receiver._failures.clear()
        record_many(alice.tenant, ["a", "c"], 2)
        second = _spawn(settings, log)
        receiver.wait_for(lambda r: len({q.payload["id"] for q in r.accepted()}) == 10,
                          timeout=60)
        lanes = by_account_in_order(receiver.accepted())
        assert {account: len(seqs) for account, seqs in lanes.items()} == {"a": 5, "b": 3, "c": 2}
        assert all(seqs == sorted(seqs) for seqs in lanes.values())
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0, log.read_text()[-2000:]
    finally:
        for process in (first, second):
            if process and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


def test_a_dispatcher_killed_mid_run_sends_again_only_what_was_in_flight(
        alice, settings, allow_private_webhooks, tmp_path):
    """SIGKILL while lanes are being delivered at full speed: the next dispatcher sends again
    at most the one delivery per lane whose request was out, and ``attempts`` counts the
    requests the receiver got (give or take that one)."""
    receiver = FastReceiver().start()
    subscribe(alice, receiver.url)
    lanes = [f"box{n}" for n in range(16)]
    with transaction.atomic():
        recorded = events.record_many(alice.tenant, [
            (events.MESSAGE_NEW, lane, {"uid": uid}, "INBOX")
            for uid in range(100) for lane in lanes])
    log = tmp_path / "dispatcher.log"
    # A request timing out on a busy machine is a failed attempt, rightly sent again: only
    # the kill may cause repeats here.
    patient = {"EMAILAPI_WEBHOOK_TIMEOUT": "60"}
    first = _spawn(settings, log, **patient)
    second = None
    try:
        receiver.wait_count(300, timeout=120)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
        # A statement the process sent just before it died still runs to its end in its
        # server session (a delivery recorded, the next one claimed): look once it is gone.
        wait_until(lambda: not _dispatcher_sessions(), timeout=30)
        assert len(receiver.arrivals) < len(recorded), "killed too late to tell anything"
        in_flight = dict(Delivery.objects.filter(state="delivering")
                         .values_list("event_id", "account_id"))
        # What the killed process had claimed is sent again once its lease lapses.
        Delivery.objects.filter(state="delivering").update(
            lease_until=timezone.now() - timedelta(seconds=1))
        second = _spawn(settings, log, **patient)
        try:
            arrivals = receiver.wait_for(lambda got: len(
                {arrival.headers["x-emailapi-event-id"] for arrival in got}) == len(recorded)
                and got, timeout=120)
        except AssertionError as missing:
            stuck = list(Delivery.objects.exclude(state="delivered").order_by("account_id", "seq")
                         .values("account_id", "seq", "state", "attempts", "lease_until",
                                 "next_attempt_at", "last_error")[:5])
            raise AssertionError(f"{missing}; first undelivered: {stuck}") from None
        wait_until(lambda: not Delivery.objects.exclude(state="delivered").exists(),
                   timeout=60)
        lane_of = {str(event.id): event.account_id for event in recorded}
        requests = Counter(arrival.headers["x-emailapi-event-id"] for arrival in arrivals)
        sent_twice = [event_id for event_id, count in requests.items() if count > 1]
        assert max(requests.values()) <= 2
        assert max(Counter(lane_of[event_id] for event_id in sent_twice).values(),
                   default=0) <= 1, f"{len(sent_twice)} events sent twice"
        attempts = {str(event_id): count for event_id, count in
                    Delivery.objects.values_list("event_id", "attempts")}
        # Off by one only where the kill came between claiming a delivery for its request and
        # the request going out: counted, never received.
        miscounted = [event_id for event_id in attempts
                      if attempts[event_id] != requests[event_id]]
        assert all(attempts[event_id] == requests[event_id] + 1 for event_id in miscounted)
        assert len(miscounted) + len(sent_twice) <= len(in_flight)
        assert {str(event_id) for event_id in in_flight} >= {*miscounted, *sent_twice}
        assert len(in_flight) == len(set(in_flight.values())) <= len(lanes)
        lanes_seen: dict[str, list[int]] = {}
        for arrival in arrivals:
            payload = json.loads(arrival.body)
            lanes_seen.setdefault(payload["account"], []).append(payload["data"]["uid"])
        assert all(uids == sorted(uids) for uids in lanes_seen.values())
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0, log.read_text()[-2000:]
    finally:
        receiver.stop()
        for process in (first, second):
            if process and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


def _terminate_dispatcher_sessions(stop: threading.Event, interval: float) -> int:
    """Until ``stop``: end every session the dispatcher holds on this test database (never any
    other database's), as a failover or an operator would; return how many were ended."""
    db = connection.settings_dict
    ended = 0
    with psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"],
                         autocommit=True) as admin:
        while not stop.wait(interval):
            ended += admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name = 'webhookdispatcher'"
            ).fetchone()[0]
    return ended


def _end_sessions(ports: list[int]) -> None:
    """End this test database's server sessions whose clients are these local ports."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND client_port = ANY(%s)", [ports])


def _subscribers(redis_db, channel: str) -> int:
    return dict(redis_db.pubsub_numsub(channel)).get(channel.encode(), 0)


def test_a_dispatcher_rides_out_database_session_storms_and_a_redis_outage(
        alice, settings, allow_private_webhooks, webhook_receiver, redis_db, tmp_path):
    """Sessions terminated every 50 ms for 6 s, then Redis gone for 4 s, then both at once:
    the process stays up, and every event (recorded before, during and after) arrives promptly
    once the trouble ends, in order per mailbox, without being sent twice (but for an attempt
    whose answer could not be recorded)."""
    receiver = webhook_receiver()
    subscribe(alice, receiver.url)
    redis_port = int(settings.REDIS_URL.rsplit(":", 1)[1].split("/")[0])
    proxy = TcpProxy(redis_port).start()
    redis_url = f"redis://127.0.0.1:{proxy.port}/{settings.REDIS_URL.rsplit('/', 1)[1]}"
    # A delivery left claimed by a failed write would wait 90 s for its lease to lapse.
    log = tmp_path / "dispatcher.log"
    dispatcher = _spawn(settings, log, REDIS_URL=redis_url, EMAILAPI_WEBHOOK_TIMEOUT="30")
    lanes = ["a", "b", "c", "d"]
    recorded = len(record_many(alice.tenant, lanes, 2))
    try:
        receiver.wait_accepted(recorded, timeout=60)
        doorbell = sequencer.new_events_channel()
        wait_until(lambda: _subscribers(redis_db, doorbell) == 1, timeout=60)

        def trouble(seconds: float, database: bool, redis: bool) -> None:
            nonlocal recorded
            stop = threading.Event()
            storm = threading.Thread(target=_terminate_dispatcher_sessions, args=(stop, 0.05))
            if database:
                storm.start()
            if redis:
                proxy.cut()
            try:
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    recorded += len(record_many(alice.tenant, lanes, 1))
                    time.sleep(0.5)  # events recorded throughout the trouble
            finally:
                stop.set()
                if database:
                    storm.join()
                proxy.restore()

        trouble(6, database=True, redis=False)
        trouble(4, database=False, redis=True)
        trouble(4, database=True, redis=True)
        recorded += len(record_many(alice.tenant, lanes, 2))
        # Well within the 90 s a claim left behind would take to lapse.
        receiver.wait_for(lambda r: len({q.payload["id"] for q in r.accepted()}) == recorded,
                          timeout=45)
        assert dispatcher.poll() is None, log.read_text()[-3000:]
        delivered = by_account_in_order(receiver.accepted())
        assert all(seqs == sorted(seqs) for seqs in delivered.values())
        sent = [q.payload["id"] for q in receiver.requests]
        assert len(sent) - len(set(sent)) <= len(lanes)
        wait_until(lambda: _subscribers(redis_db, doorbell) == 1, timeout=60)
        wait_until(lambda: not Delivery.objects.exclude(state="delivered").exists(), timeout=60)
        dispatcher.send_signal(signal.SIGTERM)
        assert dispatcher.wait(60) == 0
    finally:
        proxy.stop()
        if dispatcher.poll() is None:
            os.killpg(dispatcher.pid, signal.SIGKILL)
            dispatcher.wait(10)


def test_a_dispatcher_goes_on_after_its_database_fails_over_behind_the_same_address(
        alice, settings, allow_private_webhooks, webhook_receiver, tmp_path):
    """Its connections stranded (silent for good; new ones answered): each statement on one
    is given up within the bound (``EMAILAPI_DB_WORKER_QUERY_TIMEOUT`` and the grace), and
    every event recorded afterwards arrives, in order per mailbox, without anything restored.
    Without the bound its loop and lanes waited on the stranded connections for good."""
    receiver = webhook_receiver()
    subscribe(alice, receiver.url)
    db = connection.settings_dict
    proxy = TcpProxy(int(db["PORT"] or 5432), db["HOST"] or "127.0.0.1").start()
    log = tmp_path / "dispatcher.log"
    dispatcher = _spawn(
        settings, log, EMAILAPI_DB_WORKER_QUERY_TIMEOUT="2",
        DATABASE_URL=f"postgres://{db['USER']}@127.0.0.1:{proxy.port}/{db['NAME']}")
    lanes = ["a", "b"]
    recorded = len(record_many(alice.tenant, lanes, 2))
    try:
        receiver.wait_accepted(recorded, timeout=60)
        proxy.strand()
        # The old primary is gone, and its sessions' locks with it: the server side of each
        # stranded connection ends (its client still hears nothing). Left alive, a session
        # stranded inside a transaction kept its row locks for good, and every later pass
        # waited on them until its statement timeout (a red make test, one run in several).
        _end_sessions(proxy.upstream_ports())
        recorded += len(record_many(alice.tenant, lanes, 2))
        # A delivery whose outcome was written on a stranded connection is sent again once
        # its claim lapses (2 x the 2 s webhook timeout + 30 s): within this wait too.
        receiver.wait_for(lambda r: len({q.payload["id"] for q in r.accepted()}) == recorded,
                          timeout=120)
        assert proxy.held_bytes > 0, "the dispatcher sent nothing on a stranded connection"
        assert dispatcher.poll() is None, log.read_text()[-3000:]
        delivered = by_account_in_order(receiver.accepted())
        assert all(seqs == sorted(seqs) for seqs in delivered.values()), delivered
    finally:
        proxy.stop()
        if dispatcher.poll() is None:
            os.killpg(dispatcher.pid, signal.SIGKILL)
            dispatcher.wait(10)


def test_two_dispatchers_deliver_every_event_once_in_order_per_mailbox(
        alice, settings, allow_private_webhooks, webhook_receiver, tmp_path):
    """Two processes at once, as the README advises for 2,000 deliveries/s on two cores:
    with nothing failing, every event reaches the receiver exactly once (at-least-once
    resends only after a crash or a lapsed claim), each mailbox's in ``seq`` order."""
    receiver = webhook_receiver()
    subscribe(alice, receiver.url)
    log = tmp_path / "dispatchers.log"
    dispatchers = [_spawn(settings, log), _spawn(settings, log)]
    try:
        wait_until(lambda: _dispatcher_sessions() >= 2, timeout=60)
        accounts = [f"box{n}" for n in range(12)]
        record_many(alice.tenant, accounts, 25)
        receiver.wait_for(lambda r: len({q.payload["id"] for q in r.accepted()}) == 300,
                          timeout=120)
        received = Counter(q.payload["id"] for q in receiver.accepted())
        assert [count for count in received.values() if count != 1] == []
        lanes = by_account_in_order(receiver.accepted())
        assert {account: len(seqs) for account, seqs in lanes.items()} == dict.fromkeys(
            accounts, 25)
        assert [a for a, seqs in lanes.items() if seqs != sorted(seqs)] == []
    finally:
        for process in dispatchers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in dispatchers:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
