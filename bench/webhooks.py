"""Webhook delivery: throughput to a fast local receiver, and APPEND-to-webhook latency.

Runs against a private Dovecot, a throwaway PostgreSQL database and Redis DB 7, with
``manage.py webhookdispatcher`` (and, for latency, ``manage.py imapworker``) as subprocesses,
exactly as ``make run`` starts them. Measured in the same run:

1. Throughput: ``--events`` events recorded over ``--lanes`` mailboxes in one commit; the clock
   runs from the commit until the receiver (``tests/servers/webhook_receiver.py``, threaded,
   answers 200 at once) has accepted them all. Floor: the same number of POSTs of the same
   payload size sent straight to the receiver by as many client threads as the dispatcher has
   delivery threads (``EMAILAPI_WEBHOOK_CONCURRENCY``): what the receiver itself can take.
   Target (issue 6): >= 500 deliveries/s on this 2-core machine.
2. Latency, ``--rounds`` rounds over ``--mailboxes`` mailboxes: another client APPENDs a message;
   from its tagged OK the clock runs until (a) a bare imapclient IDLE watcher on the same
   mailbox reads EXISTS (the floor; Dovecot delays IDLE notices by ~0.5 s) and (b) the
   receiver accepts the signed ``messageNew`` for that UID. Targets: p50 within 100 ms and p99
   within 500 ms of the floor's.

    .venv/bin/python bench/webhooks.py [--events 5000] [--lanes 100] [--mailboxes 20] [--rounds 40]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import _engine  # noqa: E402
from bench.idle_accounts import APPENDUID, Watcher  # noqa: E402
from tests.servers.dovecot import Dovecot  # noqa: E402
from tests.servers.fast_receiver import FastReceiver  # noqa: E402
from tests.servers.webhook_receiver import WebhookReceiver  # noqa: E402

REDIS_DB = 7


def start(command: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "manage.py", *command], cwd=ROOT,
                            env={**os.environ, **env}, stdout=log.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def floor_throughput(url: str, count: int, threads: int, body: bytes) -> float:
    """The receiver's own capacity: ``count`` POSTs from ``threads`` keep-alive clients."""
    import urllib3

    pool = urllib3.PoolManager(maxsize=threads)
    todo = iter(range(count))
    lock = threading.Lock()

    def run() -> None:
        while True:
            with lock:
                if next(todo, None) is None:
                    return
            pool.request("POST", url, body=body, headers={"Content-Type": "application/json"})

    started = time.perf_counter()
    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return count / (time.perf_counter() - started)


def check_order(arrivals, count: int) -> None:
    """Every event arrived, and within each lane (mailbox) in the order recorded."""
    last: dict[str, int] = {}
    seen = set()
    for arrival in arrivals:
        payload = json.loads(arrival.body)
        seen.add(payload["id"])
        lane, uid = payload["account"], payload["data"]["uid"]
        if uid < last.get(lane, -1):
            raise AssertionError(f"out of order in {lane}: {uid} after {last[lane]}")
        last[lane] = uid
    if len(seen) != count:
        raise AssertionError(f"{len(seen)} distinct events arrived of {count}")


def throughput(args, env, tenant, logs: Path) -> tuple[float, float]:
    from django.conf import settings
    from django.db import transaction

    from webhooks import events, subscriptions

    receiver = FastReceiver().start()
    subscriptions.create(tenant, {"url": receiver.url, "events": ["*"]})
    data = {"id": "x" * 16, "uid": 1, "path": "INBOX", "subject": "Throughput " * 8,
            "from": {"name": "Ann", "address": "ann@example.com"}, "flags": []}
    floor = floor_throughput(receiver.url, min(args.events, 3000),
                             settings.WEBHOOK_CONCURRENCY, json.dumps({"data": data}).encode())
    receiver.clear()
    dispatcher = start(["webhookdispatcher"], env, logs / "dispatcher-throughput.log")
    try:
        time.sleep(3)  # started and idle
        with transaction.atomic():
            for number in range(args.events):
                events.record(tenant, events.MESSAGE_NEW, f"lane-{number % args.lanes}",
                              {**data, "uid": number})
        committed = time.monotonic()
        arrivals = receiver.wait_count(args.events, timeout=600)
        ours = args.events / (arrivals[args.events - 1].at - committed)
        check_order(arrivals, args.events)
    finally:
        stop(dispatcher)
        receiver.stop()
    return ours, floor


def latency(args, env, server, tenant, logs: Path) -> tuple[list[float], list[float]]:
    from accounts import services
    from accounts.models import EmailAccount
    from tests.servers import seed
    from webhooks import subscriptions

    receiver = WebhookReceiver().start()
    subscriptions.create(tenant, {"url": receiver.url, "events": ["messageNew"]})
    users = [server.add_user() for _ in range(args.mailboxes)]
    for number, user in enumerate(users):
        imap = user.imap_settings(secure=False)
        imap["tls"] = {"rejectUnauthorized": False}
        services.register_account(tenant, {"account": f"box{number}", "imap": imap})
    worker = start(["imapworker", "--worker-id", "bench-webhooks"], env, logs / "worker.log")
    dispatcher = start(["webhookdispatcher"], env, logs / "dispatcher-latency.log")
    floors, ours = [], []
    try:
        _engine.wait_for(lambda: EmailAccount.objects.filter(
            tenant=tenant, state="connected").count() == args.mailboxes, timeout=120)
        time.sleep(2)
        rng = random.Random(6)
        for number in range(args.rounds):
            index = rng.randrange(len(users))
            user, account = users[index], f"box{index}"
            watcher = Watcher(user)
            appender = user.imap_client()
            watcher.start()
            try:
                response = appender.append("INBOX", seed.make_message(
                    subject=f"Latency {number}"))
                # The receiver stamps arrivals with time.monotonic, the watcher with
                # time.perf_counter: take both now.
                appended, appended_perf = time.monotonic(), time.perf_counter()
                uid = int(APPENDUID.search(response).group(1))

                def arrived(r, account=account, uid=uid):
                    return [q for q in r.accepted() if q.payload["account"] == account
                            and q.payload["data"].get("uid") == uid]

                ours.append(receiver.wait_for(arrived, timeout=30)[0].at - appended)
                watcher.join(timeout=30)
                if watcher.seen_at is None:
                    raise TimeoutError(f"the watcher saw no EXISTS for {account}")
                floors.append(watcher.seen_at - appended_perf)
            finally:
                watcher.close()
                appender.logout()
            time.sleep(rng.uniform(0.05, 0.25))
    finally:
        stop(dispatcher)
        stop(worker)
        receiver.stop()
    return floors, ours


def settings_concurrency() -> int:
    from django.conf import settings

    return settings.WEBHOOK_CONCURRENCY


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--lanes", type=int, default=100)
    parser.add_argument("--mailboxes", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--only", choices=("throughput", "latency"),
                        help="run one part only")
    args = parser.parse_args()
    logs = ROOT / "var" / "bench-webhooks"
    logs.mkdir(parents=True, exist_ok=True)
    server = Dovecot().start()
    try:
        with _engine.throwaway_database(f"bench_hooks_{os.getpid()}", REDIS_DB) as env:
            env = {**env, "WEBHOOKS_ALLOW_PRIVATE": "true"}
            os.environ["WEBHOOKS_ALLOW_PRIVATE"] = "true"
            _engine.setup_django()
            from accounts import services

            if args.only in (None, "throughput"):
                ours, floor = throughput(args, env, services.create_tenant("Throughput"), logs)
                print(f"\nthroughput: {ours:.0f} deliveries/s over {args.lanes} lanes "
                      f"({args.events} events, all arrived, in order per lane); "
                      f"{settings_concurrency()} urllib3 client threads POSTing straight to the "
                      f"receiver: {floor:.0f}/s (target >= 500/s)")
            if args.only == "throughput":
                return
            floors, latencies = latency(args, env, server, services.create_tenant("Latency"),
                                        logs)
    finally:
        server.stop()
    p = _engine.percentile
    print(f"latency over {len(latencies)} APPENDs to {args.mailboxes} mailboxes, ms:")
    print(f"  floor (bare IDLE watcher sees EXISTS): p50 {p(floors, .5) * 1000:.0f}  "
          f"p99 {p(floors, .99) * 1000:.0f}")
    print(f"  ours (signed messageNew accepted):    p50 {p(latencies, .5) * 1000:.0f}  "
          f"p99 {p(latencies, .99) * 1000:.0f}")
    print(f"  difference: p50 {(p(latencies, .5) - p(floors, .5)) * 1000:+.0f} ms "
          f"(target <= +100), p99 {(p(latencies, .99) - p(floors, .99)) * 1000:+.0f} ms "
          f"(target <= +500)")


if __name__ == "__main__":
    main()
