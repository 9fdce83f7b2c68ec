"""Webhook delivery: throughput to a fast local receiver, and APPEND-to-webhook latency.

Runs against a private Dovecot (limits raised for the sessions), a throwaway PostgreSQL
database and Redis DB 7, with ``manage.py webhookdispatcher`` and ``manage.py imapworker`` as
subprocesses, exactly as ``make run`` starts them. Measured in the same run:

1. Throughput: ``--events`` events recorded over ``--lanes`` mailboxes in one commit (delivered by
   ``--dispatchers`` webhookdispatcher processes, 1 by default); the clock
   runs from the commit until the receiver (``tests/servers/fast_receiver.py``: asyncio,
   keep-alive, answers 200 at once) has them all; every event must arrive, in order per lane.
   For scale: as many urllib3 client threads as the dispatcher has delivery threads POSTing
   the same payload straight to the receiver. Target: >= 500 deliveries/s. ``--compare DIR``
   runs another checkout's dispatchers too (the tree before a change, with the same
   migrations), ``--throughput-rounds`` times each, in turn, on the same database and
   receiver code: the machine's noise moves both alike.
2. Latency: ``--mailboxes`` mailboxes appended to and ``--idle`` more idling, all held by
   ``--workers`` imapworker processes; measured once every first sync is done and the workers
   are quiet. ``--rounds`` APPENDs to INBOX, ``--parallel`` in flight (each thread on its own
   mailboxes): from APPEND's tagged OK the clock runs until (a) a bare imapclient IDLE watcher
   on the same folder reads EXISTS (the floor; Dovecot delays IDLE notices by ~0.5 s) and (b)
   the receiver accepts the signed ``messageNew`` for that UID. Targets: p50 within 100 ms and
   p99 within 500 ms of the floor's. Then ``--folder-rounds`` APPENDs to Sent the same way:
   target p50 within 1 s of INBOX's. Rounds over 1 s are listed with where the time went.

Needs ``fs.inotify.max_user_instances`` above the session count (``--raise-inotify``, root),
or Dovecot falls back to polling once a second and the floor is meaningless.

    .venv/bin/python bench/webhooks.py --raise-inotify            # the issue's scenario, ~8 min
    .venv/bin/python bench/webhooks.py --only latency --idle 50 --mailboxes 10 --rounds 40
    .venv/bin/python bench/webhooks.py --only throughput --dispatchers 2 --events 10000 \
        --compare ../base-checkout --throughput-rounds 3
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
from bench.idle_accounts import (  # noqa: E402
    APPENDUID,
    INOTIFY_LIMIT,
    Watcher,
    cpu_seconds,
    raise_fd_limit,
)
from tests.servers.dovecot import Dovecot  # noqa: E402
from tests.servers.fast_receiver import FastReceiver  # noqa: E402

REDIS_DB = 7
SLOW = 1.0  # s: rounds slower than this are listed


def start(command: list[str], env: dict, log: Path, tree: Path = ROOT) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "manage.py", *command], cwd=tree,
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


def throughput(args, env, tenant, logs: Path, tree: Path = ROOT) -> dict:
    """One throughput run with the dispatchers of ``tree`` (this checkout or a ``--compare``
    one, on the same database: it must have the same migrations)."""
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
    dispatchers = [start(["webhookdispatcher"], env, logs / f"dispatcher-throughput-{n}.log",
                         tree) for n in range(args.dispatchers)]
    try:
        time.sleep(3 + args.dispatchers)  # started and idle
        with transaction.atomic():
            for number in range(args.events):
                events.record(tenant, events.MESSAGE_NEW, f"lane-{number % args.lanes}",
                              {**data, "uid": number})
        pids = [dispatcher.pid for dispatcher in dispatchers]
        cpu_before = sum(cpu_seconds(pid) for pid in pids)
        database_before = database_cpu()
        receiver_before, machine_before = own_cpu(), machine_cpu()
        committed = time.monotonic()
        arrivals = receiver.wait_count(args.events, timeout=600)
        elapsed = arrivals[args.events - 1].at - committed
        ours = args.events / elapsed
        cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
        database = sum(database_cpu().get(pid, 0.0) - before
                       for pid, before in database_before.items())
        database += sum(cpu for pid, cpu in database_cpu().items() if pid not in database_before)
        received = own_cpu() - receiver_before
        busy, total = (after - before for after, before in zip(machine_cpu(), machine_before,
                                                                  strict=True))
        check_order(arrivals, args.events)
    finally:
        for dispatcher in dispatchers:
            stop(dispatcher)
        receiver.stop()
    per = 1000 / args.events
    load = os.getloadavg()[0]
    print(f"{tree}: dispatcher CPU ({args.dispatchers} processes): {cpu * per:.2f} ms per "
          f"delivery; PostgreSQL backends "
          f"{database * per:.2f} ms; bench process (receiver) {received * per:.2f} ms; "
          f"machine busy {busy / total:.0%} of {os.cpu_count()} cores meanwhile "
          f"(load average {load:.1f})", flush=True)
    return {"tree": tree, "ours": ours, "floor": floor, "cpu": cpu * per,
            "database": database * per, "load": load}


def database_cpu() -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend connected to this database (and its
    autovacuum workers), by pid."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        pids = [pid for (pid,) in cursor.fetchall()]
    out = {}
    for pid in pids:
        try:
            out[pid] = cpu_seconds(pid)
        except OSError:  # ended meanwhile
            pass
    return out


def own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of all cores so far (/proc/stat)."""
    with open("/proc/stat", encoding="ascii") as handle:
        fields = [int(x) for x in handle.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return float(sum(fields) - idle), float(sum(fields))


class TimedReceiver(FastReceiver):
    """Notes when each ``messageNew`` arrives, by (account, path, uid)."""

    def __init__(self):
        super().__init__()
        self.arrived_at: dict[tuple, float] = {}

    def _arrived(self, arrival) -> None:
        data = json.loads(arrival.body)
        key = (data["account"], data.get("path") or data["data"].get("path"),
               data["data"].get("uid"))
        with self._changed:
            self.arrived_at.setdefault(key, arrival.at)
            self._changed.notify_all()

    def wait_key(self, key: tuple, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        with self._changed:
            while key not in self.arrived_at:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no messageNew webhook for {key}")
                self._changed.wait(left)
            return self.arrived_at[key]


def describe_slow(offset: float, account: str, folder: str, uid: int, total: float,
                  appended_wall: float, load: float) -> str:
    from mailboxes.models import Message
    from webhooks.models import Delivery, Event

    row = Event.objects.filter(account_id=account, event="messageNew", path=folder,
                               data__uid=uid).values("pk", "created_at", "dispatched_at").first()
    indexed = Message.objects.filter(email_account__account_id=account, folder__path=folder,
                                     uid=uid).exists()
    stages = f"no event row (indexed: {indexed})"
    if row:
        recorded = row["created_at"].timestamp() - appended_wall
        published = (row["dispatched_at"].timestamp() - appended_wall
                     if row["dispatched_at"] else float("nan"))
        delivery = list(Delivery.objects.filter(event_id=row["pk"]).values_list(
            "state", "attempts", "last_error"))
        stages = (f"recorded +{recorded * 1000:.0f} ms, published +{published * 1000:.0f} ms, "
                  f"deliveries {delivery}")
    return (f"{offset:6.1f} s  {account}/{folder} uid {uid}: {total * 1000:.0f} ms; "
            f"{stages}; load average {load:.1f}")


DUMPS = {"left": 3, "pids": []}
DUMPS_LOCK = threading.Lock()


def wait_or_dump(receiver: TimedReceiver, key: tuple) -> float:
    """Wait for the webhook; with ``--dump-stalls``, a wait past 2 s prints the workers'
    stacks (py-spy dump) while they are late, up to three times."""
    try:
        return receiver.wait_key(key, timeout=2.0 if DUMPS["pids"] else 60)
    except TimeoutError:
        if not DUMPS["pids"]:
            raise
    with DUMPS_LOCK:
        if DUMPS["left"] > 0:
            DUMPS["left"] -= 1
            for pid in DUMPS["pids"]:
                dump = subprocess.run([str(Path(sys.executable).parent / "py-spy"), "dump",
                                       "--pid", str(pid)], capture_output=True, text=True)
                print(f"--- {key} late; py-spy dump of {pid}:\n{dump.stdout}{dump.stderr}",
                      flush=True)
    return receiver.wait_key(key, timeout=58)


def append_rounds(users, receiver: TimedReceiver, folder: str, rounds: int, parallel: int,
                  seed_number: int) -> tuple[list[float], list[float]]:
    """``rounds`` APPENDs to ``folder``, ``parallel`` at a time, each to a mailbox no other
    thread touches meanwhile; return (floor latencies, webhook latencies) in seconds."""
    from tests.servers import seed

    floors, ours, failures, slow = [], [], [], []
    lock = threading.Lock()
    began = time.monotonic()

    def run(thread: int) -> None:
        rng = random.Random(seed_number + thread)
        mine = [(i, u) for i, u in enumerate(users) if i % parallel == thread]
        for number in range(thread, rounds, parallel):
            index, user = rng.choice(mine)
            watcher = Watcher(user, folder)
            appender = user.imap_client()
            watcher.start()
            try:
                response = appender.append(folder, seed.make_message(
                    subject=f"Latency {folder} {number}"))
                # The receiver stamps arrivals with time.monotonic, the watcher with
                # time.perf_counter: take both now.
                appended, appended_perf = time.monotonic(), time.perf_counter()
                uid = int(APPENDUID.search(response).group(1))
                at = wait_or_dump(receiver, (f"box{index}", folder, uid))
                watcher.join(timeout=30)
                if watcher.seen_at is None:
                    raise TimeoutError(f"the watcher saw no EXISTS in box{index}/{folder}")
                with lock:
                    ours.append(at - appended)
                    floors.append(watcher.seen_at - appended_perf)
                    if at - appended > SLOW and len(slow) < 20:
                        slow.append((appended - began, f"box{index}", folder, uid,
                                     at - appended, time.time() - (time.monotonic() - appended),
                                     os.getloadavg()[0]))
            except Exception as exc:  # noqa: BLE001 - reported after the run
                failures.append(repr(exc))
                if isinstance(exc, TimeoutError) and "uid" in locals():
                    failures.append(describe_slow(
                        appended - began, f"box{index}", folder, uid, time.monotonic() - appended,
                        time.time() - (time.monotonic() - appended), os.getloadavg()[0]))
                return
            finally:
                watcher.close()
                appender.logout()
            time.sleep(rng.uniform(0.05, 0.25))

    threads = [threading.Thread(target=run, args=(t,)) for t in range(parallel)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError("rounds failed:\n  " + "\n  ".join(failures))
    if slow:
        print(f"{folder}: webhooks later than {SLOW:.0f} s after the APPEND (first 20): time "
              "into the rounds, mailbox, uid, total, and how long after the APPEND the engine "
              "recorded the event and the dispatcher published it:", flush=True)
        for line in sorted(slow):
            print("  " + describe_slow(*line), flush=True)
    return floors, ours


def wait_quiet(pids: list[int], below: float = 0.05, window: float = 2.0,
               timeout: float = 120.0) -> float:
    """Wait until the processes together use less than ``below`` of a core over ``window``
    seconds; return the last share measured."""
    deadline = time.monotonic() + timeout
    while True:
        before = sum(cpu_seconds(pid) for pid in pids)
        time.sleep(window)
        share = (sum(cpu_seconds(pid) for pid in pids) - before) / window
        if share < below or time.monotonic() > deadline:
            return share


def latency(args, env, server, tenant, logs: Path) -> dict[str, tuple[list, list]]:
    from django.db import transaction

    from accounts import services
    from accounts.models import EmailAccount
    from webhooks import subscriptions

    receiver = TimedReceiver().start()
    subscriptions.create(tenant, {"url": receiver.url, "events": ["messageNew"]})
    users = [server.add_user() for _ in range(args.mailboxes)]
    idle = [server.add_user() for _ in range(args.idle)]
    with transaction.atomic():
        for prefix, group in (("box", users), ("idle-", idle)):
            for number, user in enumerate(group):
                imap = user.imap_settings(secure=False)
                imap["tls"] = {"rejectUnauthorized": False}
                services.register_account(tenant, {"account": f"{prefix}{number}",
                                                   "imap": imap})
    total = args.mailboxes + args.idle
    started = time.monotonic()
    workers = [start(["imapworker", "--worker-id", f"bench-webhooks-{n}"], env,
                     logs / f"worker-{n}.log") for n in range(args.workers)]
    dispatcher = start(["webhookdispatcher"], env, logs / "dispatcher-latency.log")
    results = {}
    try:
        _engine.wait_for(lambda: EmailAccount.objects.filter(
            tenant=tenant, state="connected").count() == total, timeout=600)
        print(f"{total} mailboxes connected in {time.monotonic() - started:.1f} s "
              f"({args.workers} imapworker processes)", flush=True)
        # Idling means settled: every first sync done and the workers quiet.
        _engine.wait_for(lambda: not EmailAccount.objects.filter(
            tenant=tenant, initialized_at__isnull=True).exists(), timeout=600)
        settled = wait_quiet([worker.pid for worker in workers])
        if args.dump_stalls:
            DUMPS["pids"] = [worker.pid for worker in workers]
        print(f"all synced and the workers quiet {time.monotonic() - started:.1f} s after "
              f"the start (last 2 s: {settled:.0%} of a core)", flush=True)
        results["INBOX"] = append_rounds(users, receiver, "INBOX", args.rounds, args.parallel, 6)
        if args.folder_rounds:
            results["Sent"] = append_rounds(users, receiver, "Sent", args.folder_rounds,
                                            args.parallel, 7)
    finally:
        stop(dispatcher)
        for worker in workers:
            stop(worker)
        receiver.stop()
    return results


def settings_concurrency() -> int:
    from django.conf import settings

    return settings.WEBHOOK_CONCURRENCY


def report_throughput(args, runs: list[dict]) -> None:
    print(f"\nthroughput over {args.lanes} lanes ({args.events} events each run, all arrived, "
          f"in order per lane), {args.dispatchers} dispatcher processes; floor: "
          f"{settings_concurrency()} urllib3 client threads POSTing straight to the receiver "
          f"(target >= 500/s):")
    print(f"{'tree':<34} {'per s':>7} {'floor':>7} {'ratio':>6} {'cpu ms':>7} {'db ms':>6} "
          f"{'load':>5}")
    for run in runs:
        print(f"{str(run['tree']):<34} {run['ours']:7.0f} {run['floor']:7.0f} "
              f"{run['ours'] / run['floor']:6.2f} {run['cpu']:7.2f} {run['database']:6.2f} "
              f"{run['load']:5.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--lanes", type=int, default=100)
    parser.add_argument("--dispatchers", type=int, default=1,
                        help="webhookdispatcher processes for the throughput part")
    parser.add_argument("--mailboxes", type=int, default=100, help="mailboxes appended to")
    parser.add_argument("--idle", type=int, default=1000, help="idling mailboxes besides")
    parser.add_argument("--rounds", type=int, default=1000, help="APPENDs to INBOX")
    parser.add_argument("--folder-rounds", type=int, default=200, help="APPENDs to Sent")
    parser.add_argument("--parallel", type=int, default=10, help="APPENDs in flight")
    parser.add_argument("--workers", type=int, default=1, help="imapworker processes")
    parser.add_argument("--dump-stalls", action="store_true",
                        help="py-spy dump the workers when a webhook is 2 s late")
    parser.add_argument("--raise-inotify", action="store_true",
                        help="raise fs.inotify.max_user_instances for the run (root)")
    parser.add_argument("--only", choices=("throughput", "latency"),
                        help="run one part only")
    parser.add_argument("--compare", type=Path, action="append", default=[],
                        help="another checkout (same migrations) whose dispatchers are run in "
                             "turn with this tree's, on the same database")
    parser.add_argument("--throughput-rounds", type=int, default=1,
                        help="throughput runs of each tree, taken in turn")
    parser.add_argument("--redis-db", type=int, default=REDIS_DB,
                        help="Redis DB to use and flush (keep off the test suite's DBs)")
    args = parser.parse_args()
    logs = ROOT / "var" / "bench-webhooks"
    logs.mkdir(parents=True, exist_ok=True)
    raise_fd_limit()
    sessions = args.mailboxes + args.idle + 2 * args.parallel
    with open(INOTIFY_LIMIT, encoding="ascii") as handle:
        original_inotify = int(handle.read())
    if args.raise_inotify and original_inotify < 2 * sessions + 1024:
        with open(INOTIFY_LIMIT, "w", encoding="ascii") as handle:
            handle.write(str(2 * sessions + 1024))
    server = Dovecot(extra_config=_engine.dovecot_limits(sessions), startup_timeout=30).start()
    try:
        with _engine.throwaway_database(f"bench_hooks_{os.getpid()}", args.redis_db) as env:
            env = {**env, "WEBHOOKS_ALLOW_PRIVATE": "true"}
            os.environ["WEBHOOKS_ALLOW_PRIVATE"] = "true"
            _engine.setup_django()
            from accounts import services

            if args.only in (None, "throughput"):
                runs = []
                for round_ in range(args.throughput_rounds):
                    for tree in [ROOT, *args.compare]:
                        runs.append(throughput(args, env, services.create_tenant(
                            f"Throughput {round_} {tree}"), logs, tree))
                report_throughput(args, runs)
            if args.only == "throughput":
                return
            results = latency(args, env, server, services.create_tenant("Latency"), logs)
        inotify = server.read_log().count("Inotify instance limit")
    finally:
        server.stop()
        if args.raise_inotify:
            with open(INOTIFY_LIMIT, "w", encoding="ascii") as handle:
                handle.write(str(original_inotify))
    p = _engine.percentile
    print(f"\nlatency, APPEND's OK to the signed messageNew accepted, {args.mailboxes} mailboxes "
          f"appended to, {args.idle} more idling, {args.parallel} APPENDs in flight, ms:")
    for folder, (floors, latencies) in results.items():
        print(f"  {folder} over {len(latencies)} APPENDs:")
        print(f"    floor (bare IDLE watcher sees EXISTS): p50 {p(floors, .5) * 1000:.0f}  "
              f"p99 {p(floors, .99) * 1000:.0f}")
        print(f"    ours (webhook accepted):              p50 {p(latencies, .5) * 1000:.0f}  "
              f"p99 {p(latencies, .99) * 1000:.0f}  max {max(latencies) * 1000:.0f}")
        print(f"    difference: p50 {(p(latencies, .5) - p(floors, .5)) * 1000:+.0f} ms "
              f"(target <= +100), p99 {(p(latencies, .99) - p(floors, .99)) * 1000:+.0f} ms "
              f"(target <= +500)")
    if "Sent" in results:
        gap = p(results["Sent"][1], .5) - p(results["INBOX"][1], .5)
        print(f"  Sent vs INBOX webhook p50: {gap * 1000:+.0f} ms (target <= +1000)")
    if inotify:
        print(f"\nDovecot logged {inotify} 'Inotify instance limit' warnings: sessions beyond "
              "fs.inotify.max_user_instances poll every second, so these latencies measure "
              "Dovecot's polling (try --raise-inotify)")


if __name__ == "__main__":
    main()
