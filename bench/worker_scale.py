"""Thousands of idling accounts per IMAP worker: memory, connect time, new-mail latency, and a
worker killed among several (issue 19, "10,000 mailboxes in one worker").

Dovecot runs with its own settings for the size (``bench/dovecot-scale.conf``: process and
client limits, imap-hibernate for idle sessions), and this process raises its descriptor
limit (soft and hard, root) before starting it, so Dovecot and the workers inherit it. Every
account is on that Dovecot, over STARTTLS (``secure: false`` upgrades, as the engine does).
PostgreSQL: a throwaway database (``bench_engine_<pid>``); Redis: ``BENCH_REDIS`` (run a
private one: ``redis-server --port 6391 --save ""``), DB 6, flushed.

``single`` (default), one ``manage.py imapworker``, in one run:

1. **floor, memory**: a bare Python process holding N imapclient connections, STARTTLS, login,
   EXAMINE INBOX, IDLE (``bench/idle_accounts.py``'s baseline); its RSS growth / N. Taken last,
   once the worker is stopped and Dovecot's ``imap`` processes are back to a few (``--floor
   after``); ``--floor during`` holds them during the registration and first index instead
   (their closing then lands on Dovecot while the worker connects). Every phase that connects
   waits for Dovecot to settle first;
2. **empty worker**: its RSS once it listens for account changes, before any account exists;
3. **first start**: N accounts registered (one transaction); seconds from the commit until
   all are ``connected`` (each indexed for the first time);
4. **restart**: SIGTERM (every account logs out), a new worker: seconds from its process start
   until all N are ``connected`` by it. Connects are paced (``EMAILAPI_IMAP_CONNECTS_PER_SECOND``
   per server), so this is at least N / rate;
5. **memory**: the restarted worker's RSS after ``--settle`` s, minus the empty worker's, / N;
   VmHWM (the connect storm's peak) and its threads;
6. **new-mail latency**, ``--rounds`` rounds: APPEND to a random account, clock from the
   tagged OK to (floor) a bare STARTTLS IDLE watcher's ``* n EXISTS`` and (ours) the committed
   ``messageNew`` row (polled every 2 ms). p50 and p99 of both, and the differences;
7. Dovecot: its processes' total RSS and how many sessions are hibernated.

``--heap-worker`` runs the empty and the restarted worker through ``bench/_traced_worker.py``
without tracemalloc and splits the memory figure: glibc's heap in use and free, pymalloc's
objects, free blocks, empty pools and arenas, per account above the empty worker's.

``failover``: ``--workers`` workers share N accounts; once all are connected, a feeder APPENDs
messages with unique Message-IDs to random accounts (``--rate`` per second) and one worker is
killed with SIGKILL. Reported: how long until every account it held is ``connected`` again by
another worker (target: lease TTL + 30 s), the CPU per account connected again of the
survivors, Dovecot (in all and by service: ``imap``, ``imap-login``, ``imap-hibernate``...),
PostgreSQL and the whole machine, less the quiet rate before the kill, the new-mail latency
of the survivors' own accounts during the recovery (what the others' customers see meanwhile)
and the survivors' loop turns logged as busy in it (sockets left unread), and, once the feeder
stopped and the outbox is
quiet, the ``messageNew`` events counted by Message-ID: lost (none) and repeated (none). Each
message not announced is listed with its account (and whether the killed worker held it), its
UID, when it was appended against the kill, the account's holder and state since when, and
whether its row was indexed at all. ``--idle-recheck 0`` runs the workers without the recheck
into the IDLE that catches what Dovecot's imap-hibernate never reports (``bench/idle_misses.py``
shows that without a worker).

    .venv/bin/python bench/worker_scale.py --accounts 1000 --rounds 30
    .venv/bin/python bench/worker_scale.py --accounts 10000 --rounds 100
    .venv/bin/python bench/worker_scale.py failover --accounts 20000 --workers 4
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import resource
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import _engine  # noqa: E402
from bench.idle_accounts import (  # noqa: E402
    INOTIFY_LIMIT,
    cpu_seconds,
    measure_latency,
)

REDIS_DB = 6
FD_LIMIT = 262144
CONF = ROOT / "bench" / "dovecot-scale.conf"


def raise_limits() -> int:
    """Descriptors for N sessions on both ends (root may raise the hard limit)."""
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))
    except (ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def dovecot_config(sessions: int, hibernate_timeout: str) -> str:
    return string.Template(CONF.read_text(encoding="utf-8")).substitute(
        hibernate_timeout=hibernate_timeout, process_limit=sessions + 2000,
        client_limit=2 * sessions + 2000, auth_client_limit=3 * (sessions + 2000) + 1000)


def worker_env(args) -> dict[str, str]:
    """What the workers run with (beyond the database and Redis): see the report."""
    return {
        "EMAILAPI_IMAP_NOTIFY": "false" if args.no_notify else "true",
        "EMAILAPI_POLL_INTERVAL": str(args.poll_interval),
        "EMAILAPI_IMAP_CONNECTS_PER_SECOND": str(args.connects_per_second),
        "EMAILAPI_MAX_ACCOUNTS_PER_WORKER": str(max(args.accounts, 10000)),
        "EMAILAPI_LEASE_TTL": str(args.lease_ttl),
        "EMAILAPI_WORKER_GONE_AFTER": str(args.gone_after),
        "EMAILAPI_IDLE_RECHECK": str(args.idle_recheck),
        "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "INFO"),
    }


class Worker:
    def __init__(self, env: dict[str, str], worker_id: str, log_dir: str,
                 extra: tuple[str, ...] = (), program: str = "manage.py"):
        self.worker_id = worker_id
        self.metrics_dir = env.get("PROMETHEUS_MULTIPROC_DIR")  # its metrics' files, if any
        self.log_path = os.path.join(log_dir, f"{worker_id}.log")
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, program, "imapworker", "--worker-id", worker_id, *extra],
            cwd=ROOT,
            env={**os.environ, **env}, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def status(self, field: str) -> int:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.worker_id} exited ({self.proc.returncode}):\n"
                               f"{self.tail()}")
        return _engine.status_kib(field, self.proc.pid)

    def tail(self, lines: int = 20) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as fh:
            return "".join(fh.readlines()[-lines:])

    def wave_line(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as fh:
            lines = [line.strip() for line in fh if "accounts taken are connected" in line]
        return lines[-1] if lines else ""

    def stop(self, sig=signal.SIGTERM, timeout: float = 120.0) -> float:
        took = _engine.stop_group(self.proc, sig, timeout)
        self.log.close()
        return took


def _register_slice(tenant_pk: int, users, start: int, prefix: str) -> None:
    import django

    django.setup()  # a spawned child: the environment names the database
    from django.db import connections, transaction

    from accounts import services
    from accounts.models import Tenant

    tenant = Tenant.objects.get(pk=tenant_pk)
    with transaction.atomic():
        for index, user in enumerate(users, start):
            settings = user.imap_settings(secure=False)
            settings["tls"] = {"rejectUnauthorized": False}
            services.register_account(tenant, {"account": f"{prefix}-{index:05d}",
                                               "imap": settings})
    connections.close_all()


def register_all(users, prefix: str = "scale", processes: int = 4) -> object:
    """N accounts in one tenant, registered by ``processes`` children (one transaction
    each; spawned, not forked: the parent's pooled database connections stay its own)."""
    import multiprocessing

    from django.db import connections

    from accounts import services

    tenant = services.create_tenant("Bench scale")
    connections.close_all()
    size = -(-len(users) // processes)
    context = multiprocessing.get_context("spawn")
    children = [context.Process(target=_register_slice,
                                args=(tenant.pk, users[i:i + size], i, prefix))
                for i in range(0, len(users), size)]
    for child in children:
        child.start()
    for child in children:
        child.join()
        if child.exitcode != 0:
            raise RuntimeError(f"registering failed (exit code {child.exitcode})")
    return tenant


def connected_by(worker_ids: list[str] | None, since, pks=None) -> int:
    from accounts.models import EmailAccount

    rows = EmailAccount.objects.filter(state=EmailAccount.State.CONNECTED,
                                       holder__released_at__isnull=True)
    if since is not None:
        rows = rows.filter(state_changed_at__gte=since)
    if worker_ids is not None:
        rows = rows.filter(holder__worker_id__in=worker_ids)
    if pks is not None:
        rows = rows.filter(pk__in=pks)
    return rows.count()


def wait_connected(count: int, workers: list[Worker], since=None, pks=None,
                   timeout: float = 1800.0, clock: float | None = None,
                   label: str = "", server=None) -> float:
    """Seconds from ``clock`` (default: now) until ``count`` accounts are connected by one of
    ``workers`` (state changed at or after ``since``)."""
    clock = clock or time.perf_counter()
    ids = [w.worker_id for w in workers]
    last = -1
    next_print = time.perf_counter() + 30
    stolen_at = (time.perf_counter(), _engine.machine_stolen())
    while True:
        asked = time.perf_counter()
        done = connected_by(ids, since, pks)
        now = time.perf_counter()
        # The count is the bench's own load on PostgreSQL, which the workers measured need:
        # at 20,000 accounts four a second took a sixth of a core on a slow machine. Asked
        # at most a fifth of the time.
        pause = max(0.25, 4 * (now - asked))
        if done >= count:
            return now - clock
        if now - clock > timeout:
            raise TimeoutError(f"{label}: {done}/{count} connected after {timeout:.0f} s")
        for w in workers:
            w.status("VmRSS")  # raises if it died
        if now >= next_print and done != last:
            dovecot = ""
            if server is not None:
                dv = dovecot_usage(server)
                dovecot = (f"; Dovecot {dv['imap_processes']} imap processes, "
                           f"{dv['rss_kib'] / 1024:.0f} MiB")
            stolen = _engine.machine_stolen()
            print(f"  {label}: {done}/{count} connected after {now - clock:.0f} s"
                  f"{dovecot}; load {os.getloadavg()[0]:.1f}; stolen "
                  f"{(stolen - stolen_at[1]) / (now - stolen_at[0]):.2f} cores", flush=True)
            last, next_print, stolen_at = done, now + 30, (now, stolen)
        time.sleep(pause)


def wait_subscribers(count: int) -> None:
    """Until ``count`` workers listen for account changes."""
    from emailapi.lib.redis import get_redis

    channel = _engine.account_changes_channel()
    _engine.wait_for(lambda: get_redis().pubsub_numsub(channel)[0][1] >= count, timeout=600,
                     what=f"{count} workers' subscriptions")
    time.sleep(2.0)  # their first claim tick (nothing to claim yet) is done


def dovecot_usage(server) -> dict:
    """Total RSS of the Dovecot instance's processes, and its imap processes (sessions not
    hibernated)."""
    procs = _engine.processes()
    tree = _engine.process_tree(server._proc.pid, procs)
    total = 0
    for pid in tree:
        try:
            total += _engine.status_kib("VmRSS", pid)
        except (OSError, LookupError):
            pass
    imap = sum(1 for pid in tree if procs.get(pid, ("",))[0] == "imap")
    return {"rss_kib": total, "imap_processes": imap, "processes": len(tree)}


def wait_dovecot_settled(server, n: int, timeout: float = 600.0) -> dict:
    """Until Dovecot's ``imap`` processes (sessions not hibernated, and processes still
    logging a session out) are back to a few: a phase started while the last one's sessions
    are still closing would measure Dovecot's storm, not itself."""
    limit = max(20, n // 100)
    started = time.perf_counter()
    usage = dovecot_usage(server)
    while usage["imap_processes"] > limit and time.perf_counter() - started < timeout:
        time.sleep(1.0)
        usage = dovecot_usage(server)
    waited = time.perf_counter() - started
    print(f"Dovecot settled: {usage['imap_processes']} imap processes (limit {limit}) after "
          f"{waited:.0f} s; load {os.getloadavg()[0]:.1f}", flush=True)
    return {**usage, "waited_s": waited}


def percentile(values, fraction):
    return _engine.percentile(values, fraction) if values else float("nan")


# -- the floor: a bare process holding N STARTTLS IDLE sessions -------------------------------


def floor_child(users_file: str, threads: int) -> None:
    """Runs in the child: report 'ready', open N sessions (``threads`` at a time: one after
    another would take longer than the rest of the bench on a loaded machine), report
    'idling', wait."""
    from concurrent.futures import ThreadPoolExecutor

    from imapclient import IMAPClient

    from bench.idle_accounts import no_verify_context, raise_fd_limit

    raise_fd_limit()
    with open(users_file, encoding="utf-8") as fh:
        spec = json.load(fh)
    context = no_verify_context()
    pool = ThreadPoolExecutor(max_workers=threads)
    list(pool.map(lambda x: x, range(threads * 4)))  # the threads exist before 'before'
    import gc

    gc.collect()
    print("ready", flush=True)
    sys.stdin.readline()

    def open_one(user):
        # A loaded machine (the first index runs meanwhile) may time a session out: try
        # again, so one slow login does not end the floor's 10,000 sessions.
        for attempt in range(5):
            client = None
            try:
                client = IMAPClient(spec["host"], port=spec["port"], ssl=False, timeout=120)
                client.starttls(context)
                client.login(*user)
                client.select_folder("INBOX", readonly=True)
                client.idle()
                return client
            except Exception as exc:  # noqa: BLE001 - retried, then reported
                print(f"floor: {user[0]} attempt {attempt + 1}: {exc!r}", file=sys.stderr,
                      flush=True)
                if client is not None:
                    with contextlib.suppress(Exception):
                        client.shutdown()
                time.sleep(1.0 + attempt)
        raise RuntimeError(f"floor: {user[0]} could not connect")

    started = time.perf_counter()
    clients = list(pool.map(open_one, spec["users"]))
    elapsed = time.perf_counter() - started
    gc.collect()
    print(f"idling {elapsed:.3f} {len(clients)}", flush=True)
    sys.stdin.readline()
    os._exit(0)


class Floor(threading.Thread):
    """``run_floor`` in the background (it only needs memory figures, not a quiet machine)."""

    def __init__(self, users_file: str, count: int, settle: float):
        super().__init__(daemon=True)
        self.args = (users_file, count, settle)
        self.result: dict | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = run_floor(*self.args)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            self.error = exc

    def figures(self) -> dict:
        self.join()
        if self.error is not None:
            raise self.error
        return self.result


def run_floor(users_file: str, count: int, settle: float, threads: int = 16) -> dict:
    # One malloc arena, as a single-threaded process has: the threads only save time (one
    # connection after another takes longer than the rest of the run on a loaded machine),
    # and per-thread arenas would add their own slack to the floor.
    floor = _engine.idle_rss_of_child(
        [sys.executable, __file__, "--floor-child", users_file, "--floor-threads", str(threads)],
        count, settle, pause=0.5, env={**os.environ, "MALLOC_ARENA_MAX": "1"}, wait=60)
    return {**floor, "threads": threads}


# -- single -----------------------------------------------------------------------------------


def run_single(args, server, users, workdir) -> dict:
    n = args.accounts
    out: dict = {"n": n}
    users_file = out["users_file"] = os.path.join(workdir, "users.json")
    with open(users_file, "w", encoding="utf-8") as fh:
        json.dump({"host": server.host, "port": server.imap_port,
                   "users": [[u.username, u.password] for u in users]}, fh)
    floor = None
    if not args.no_baseline and args.floor == "during":
        # Measured while the accounts are registered and indexed (only its memory counts).
        floor = Floor(users_file, n, args.settle)
        floor.start()
    env_extra = worker_env(args)
    workers: list[Worker] = []
    with _engine.throwaway_database(f"bench_engine_{os.getpid()}", REDIS_DB) as env:
        env = {**env, **env_extra}
        _engine.setup_django()
        from django.utils import timezone

        try:
            # The empty worker: Django set up, worker constructed, nothing to hold.
            heap_env = {"BENCH_TRACE_FRAMES": "0",
                        "BENCH_HEAP_OUT": os.path.join(workdir, "heap-empty.json")}
            empty = Worker({**env, **heap_env} if args.heap_worker else env, "scale-empty",
                           workdir, (),
                           "bench/_traced_worker.py" if args.heap_worker else "manage.py")
            workers.append(empty)
            _engine.wait_for_subscriber(timeout=300)
            time.sleep(3.0)
            out["empty_kib"] = empty.status("VmRSS")
            if args.heap_worker:
                out["heap_empty"] = read_heap(empty, heap_env["BENCH_HEAP_OUT"])
            empty.stop()
            print(f"empty worker: {out['empty_kib'] / 1024:.1f} MiB", flush=True)

            if not args.seed_workers:
                # --seed-workers 0: the measured worker's first start, each account's first
                # index included (a setup too slow at 10,000 on a loaded machine otherwise).
                return _first_start(args, out, env, server, users, workdir, workers, n, floor)
            # First index, by --seed-workers workers at once (it is not what is measured);
            # they listen before the accounts exist, so each claims its share as they come.
            # Their database pool covers their pool threads (a sync holds its connection
            # between round trips) and the main loop, so lease renewals never wait on it.
            seed_env = {**env, "EMAILAPI_DB_POOL_SIZE": str(args.seed_db_pool)}
            seeders = [Worker(seed_env, f"scale-seed{i}", workdir,
                              ("--pool-size", str(args.seed_pool_size),
                               "--connect-threads", str(args.seed_connect_threads)))
                       for i in range(args.seed_workers)]
            workers += seeders
            wait_subscribers(len(seeders))
            started = time.perf_counter()
            tenant = register_all(users, processes=args.register_processes)
            registered = time.perf_counter()
            out["register_s"] = registered - started
            print(f"registered {n} accounts in {out['register_s']:.0f} s", flush=True)
            out["first_s"] = wait_connected(n, seeders, clock=registered, label="first index")
            print(f"first index: all {n} connected {out['first_s']:.0f} s after the "
                  f"registration, by {args.seed_workers} workers", flush=True)
            for seeder in seeders:
                seeder.stop()
            if floor is not None:
                try:
                    out["floor"] = floor.figures()
                except Exception as exc:  # noqa: BLE001 - the rest of the run still counts
                    print(f"floor failed: {exc}", flush=True)
                    floor = None
            if floor is not None:
                print(f"floor: bare STARTTLS IDLE {out['floor']['per_conn_kib']:.1f} "
                      f"KiB/connection, connected in {out['floor']['connect_s']:.0f} s "
                      f"(16 threads)", flush=True)

            if args.hold:
                hold(args.hold, env, server, users_file)
            out["dovecot_before"] = wait_dovecot_settled(server, n)
            since = timezone.now()
            extra = ()
            if args.pool_size:
                extra += ("--pool-size", str(args.pool_size))
            if args.connect_threads:
                extra += ("--connect-threads", str(args.connect_threads))
            trace_env = {}
            if args.trace_worker:
                trace_env = {"BENCH_TRACE_OUT": os.path.join(workdir, "trace.json")}
            elif args.heap_worker:
                trace_env = {"BENCH_TRACE_FRAMES": "0"}
            if args.trace_worker or args.heap_worker:
                trace_env["BENCH_HEAP_OUT"] = os.path.join(workdir, "heap.json")
            worker = Worker({**env, **trace_env}, "scale-restart", workdir, extra,
                            "bench/_traced_worker.py" if trace_env else "manage.py")
            workers.append(worker)
            out["restart_s"] = wait_connected(n, [worker], since=since, clock=worker.started,
                                              label="one worker, restart", server=server)
            out["restart_cpu_s"] = cpu_seconds(worker.pid)
            print(f"restart: all {n} connected {out['restart_s']:.0f} s after the worker "
                  f"started", flush=True)
            time.sleep(args.settle)
            out["after_kib"] = worker.status("VmRSS")
            out["hwm_kib"] = worker.status("VmHWM")
            out["threads"] = _engine.status_kib("Threads", worker.pid)
            out["restart_wave"] = worker.wave_line()
            out["dovecot"] = dovecot_usage(server)
            print(f"worker RSS {out['after_kib'] / 1024:.1f} MiB = "
                  f"{(out['after_kib'] - out['empty_kib']) / n:.1f} KiB/account above empty",
                  flush=True)
            if "BENCH_HEAP_OUT" in trace_env:
                out["heap"] = print_heap(worker, trace_env["BENCH_HEAP_OUT"], n, out)
            if args.trace_worker:
                print_trace(worker, trace_env["BENCH_TRACE_OUT"], n)
            if args.idle_window:
                c0, t0 = cpu_seconds(worker.pid), time.perf_counter()
                time.sleep(args.idle_window)
                out["idle_cpu"] = (cpu_seconds(worker.pid) - c0) / (time.perf_counter() - t0)
            if args.rounds:
                c0, t0 = cpu_seconds(worker.pid), time.perf_counter()
                out["floors"], out["ours"] = measure_latency(
                    users, [f"scale-{i:05d}" for i in range(n)], tenant.pk,
                    env["DATABASE_URL"], args.rounds, 0.002, timeout=60.0)
                out["latency_cpu"] = (cpu_seconds(worker.pid) - c0) / (
                    time.perf_counter() - t0)
            out["after_rounds_kib"] = worker.status("VmRSS")
            out["stop_s"] = worker.stop()
            floor_after(args, out, server, n)
        finally:
            for w in workers:
                if w.proc.poll() is None:
                    w.stop(signal.SIGKILL, timeout=10)
    return out


def print_heap(worker: Worker, path: str, n: int, out: dict) -> dict:
    """``--heap-worker``: the restarted worker's RSS split into glibc's heap (in use, free
    inside it) and pymalloc's (objects, free blocks, empty pools), per account
    (``bench/_traced_worker.py``, SIGUSR2)."""
    heap = read_heap(worker, path)
    empty = out.get("heap_empty", {})
    print("heap of the restarted worker, and above the empty worker's per account "
          "(pymalloc's arenas are outside glibc's figures):", flush=True)
    for label, key in (("RSS", "rss"), ("glibc: in use (small + mmapped blocks)", "in_use"),
                       ("glibc: free inside its arenas", "fordblks"),
                       ("pymalloc: objects", "py_allocated"),
                       ("pymalloc: free blocks in used pools", "py_available"),
                       ("pymalloc: empty pools in kept arenas", "py_unused_pools"),
                       ("pymalloc: arenas kept (1 MiB each)", "py_arena_bytes")):
        value = heap.get(key, 0)
        print(f"  {label:<44}{value / 2**20:>9.1f} MiB"
              f"{(value - empty.get(key, 0)) / 1024 / n:>8.2f} KiB/account", flush=True)
    conns = heap.get("connections", {})
    print(f"  IMAP connections alive: {conns.get('alive')}, holding a read buffer: "
          f"{conns.get('holding_a_reader')} (buffered readers in the process: "
          f"{conns.get('buffered_readers')})", flush=True)
    later = sorted(set(heap.get("modules", ())) - set(empty.get("modules", ())))
    if empty:
        print(f"  modules loaded after the empty worker was measured: {len(later)}: "
              + " ".join(later), flush=True)
    return heap


def read_heap(worker: Worker, path: str) -> dict:
    """The heap report a ``bench/_traced_worker.py`` worker writes on SIGUSR2, with its RSS."""
    os.kill(worker.pid, signal.SIGUSR2)
    _engine.wait_for(lambda: os.path.exists(path) and os.path.getsize(path) > 0, timeout=120,
                     what="the worker's heap report")
    time.sleep(1.0)  # written whole
    with open(path, encoding="utf-8") as fh:
        heap = json.load(fh)
    heap["rss"] = worker.status("VmRSS") * 1024
    heap["in_use"] = heap["uordblks"] + heap["hblkhd"]
    heap["py_arena_bytes"] = heap.get("py_arenas", 0) * 2**20
    return heap


def print_trace(worker: Worker, path: str, n: int) -> None:
    """``--trace-worker``: the Python objects the worker gained since its modules were loaded,
    per account, by the lines that allocated them (``bench/_traced_worker.py``)."""
    os.kill(worker.pid, signal.SIGUSR1)
    deadline = time.monotonic() + 300
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(2.0)  # written whole (a large snapshot takes a moment)
    with open(path, encoding="utf-8") as fh:
        trace = json.load(fh)
    print(f"traced: Python objects {trace['size'] / n:.0f} B/account "
          f"({trace['count'] / n:.1f} blocks); RSS of a traced worker includes tracemalloc's "
          f"own bookkeeping", flush=True)
    for name, size, count in trace["lines"][:40]:
        print(f"  {size / n:8.0f} B {count / n:6.2f} blocks  {name.replace(str(ROOT) + '/', '')}")
    print("  by file:")
    for name, size in trace["files"][:20]:
        print(f"  {size / n:8.0f} B  {name.replace(str(ROOT) + '/', '')}")


def hold(path: str, env: dict[str, str], server, users_file: str) -> None:
    """``--hold``: the rig indexed and no worker running; describe it in ``path`` (the
    workers' environment, Dovecot's master pid, the users) and wait until that file is
    deleted, so restarts can be tried by hand against it (``bench/restart_cost.py``)."""
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({"env": env, "dovecot_pid": server._proc.pid, "users_file": users_file,
                   "root": str(ROOT)}, fh)
    print(f"holding: the rig is described in {path}; delete it to go on", flush=True)
    while os.path.exists(path):
        time.sleep(1.0)


def _first_start(args, out, env, server, users, workdir, workers, n, floor) -> dict:
    """The measured worker listens before the accounts exist and takes them as they are
    registered: ``restart_s`` is then from its process start (each account's first index
    included, and the registration's time, reported apart)."""
    extra = ()
    if args.pool_size:
        extra += ("--pool-size", str(args.pool_size))
    if args.connect_threads:
        extra += ("--connect-threads", str(args.connect_threads))
    out["dovecot_before"] = wait_dovecot_settled(server, n)
    worker = Worker(env, "scale-first", workdir, extra)
    workers.append(worker)
    wait_subscribers(1)
    started = time.perf_counter()
    tenant = register_all(users, processes=args.register_processes)
    registered = time.perf_counter()
    out["register_s"] = registered - started
    out["first_s"] = float("nan")
    print(f"registered {n} accounts in {out['register_s']:.0f} s", flush=True)
    out["restart_s"] = wait_connected(n, [worker], clock=worker.started,
                                      label="one worker, first start", server=server)
    out["after_registration_s"] = time.perf_counter() - registered
    out["restart_cpu_s"] = cpu_seconds(worker.pid)
    print(f"first start: all {n} connected {out['restart_s']:.0f} s after the worker started, "
          f"{out['after_registration_s']:.0f} s after the registration ended", flush=True)
    out["first_start"] = True
    if floor is not None:
        try:
            out["floor"] = floor.figures()
            print(f"floor: bare STARTTLS IDLE {out['floor']['per_conn_kib']:.1f} KiB/connection, "
                  f"connected in {out['floor']['connect_s']:.0f} s", flush=True)
        except Exception as exc:  # noqa: BLE001 - the rest of the run still counts
            print(f"floor failed: {exc}", flush=True)
    _measure_worker(args, out, env, server, users, worker, tenant, n)
    floor_after(args, out, server, n)
    return out


def floor_after(args, out, server, n) -> None:
    """``--floor after``: the bare floor once the worker is gone and Dovecot has let its
    sessions go, so neither's connect storm (nor the floor's 10,000 sessions closing at once,
    each woken from imap-hibernate to log out) lands on the other."""
    if args.no_baseline or args.floor != "after":
        return
    out["dovecot_before_floor"] = wait_dovecot_settled(server, n)
    try:
        out["floor"] = run_floor(out["users_file"], n, args.settle)
        out["floor_after"] = True
        print(f"floor (after the worker): bare STARTTLS IDLE "
              f"{out['floor']['per_conn_kib']:.1f} KiB/connection, connected in "
              f"{out['floor']['connect_s']:.0f} s", flush=True)
    except Exception as exc:  # noqa: BLE001 - the rest of the run still counts
        print(f"floor failed: {exc}", flush=True)


def _measure_worker(args, out, env, server, users, worker, tenant, n) -> None:
    time.sleep(args.settle)
    out["after_kib"] = worker.status("VmRSS")
    out["hwm_kib"] = worker.status("VmHWM")
    out["threads"] = _engine.status_kib("Threads", worker.pid)
    out["restart_wave"] = worker.wave_line()
    out["dovecot"] = dovecot_usage(server)
    print(f"worker RSS {out['after_kib'] / 1024:.1f} MiB = "
          f"{(out['after_kib'] - out['empty_kib']) / n:.1f} KiB/account above empty",
          flush=True)
    if args.rounds:
        c0, t0 = cpu_seconds(worker.pid), time.perf_counter()
        out["floors"], out["ours"] = measure_latency(
            users, [f"scale-{i:05d}" for i in range(n)], tenant.pk,
            env["DATABASE_URL"], args.rounds, 0.002, timeout=60.0)
        out["latency_cpu"] = (cpu_seconds(worker.pid) - c0) / (time.perf_counter() - t0)
        f50 = percentile(out["floors"], 0.5) * 1000
        o50 = percentile(out["ours"], 0.5) * 1000
        print(f"latency p50 floor {f50:.0f} ms, ours {o50:.0f} ms; p99 floor "
              f"{percentile(out['floors'], 0.99) * 1000:.0f} ms, ours "
              f"{percentile(out['ours'], 0.99) * 1000:.0f} ms", flush=True)
    out["after_rounds_kib"] = worker.status("VmRSS")
    out["stop_s"] = worker.stop()


def report_single(args, out, inotify_warnings: int) -> None:
    n = out["n"]
    print()
    print(f"== {n} idling accounts, one worker, STARTTLS; load average at the end "
          f"{os.getloadavg()[0]:.1f} (2 cores, shared)")
    print(f"worker settings: {' '.join(f'{k}={v}' for k, v in worker_env(args).items())}; "
          f"measured worker --pool-size {args.pool_size or 'default'} --connect-threads "
          f"{args.connect_threads or 'default'}")
    floor = out.get("floor")
    per = (out["after_kib"] - out["empty_kib"]) / n
    print(f"{'memory':<58}{'MiB':>8}{'KiB/acct':>10}")
    if floor:
        print(f"{'floor: bare process, empty':<58}{floor['before_kib'] / 1024:>8.1f}")
        print(f"{'floor: bare process, N STARTTLS IDLE imapclient sessions':<58}"
              f"{floor['after_kib'] / 1024:>8.1f}{floor['per_conn_kib']:>10.1f}")
    print(f"{'worker: empty':<58}{out['empty_kib'] / 1024:>8.1f}")
    print(f"{'worker: N idling, after a restart':<58}{out['after_kib'] / 1024:>8.1f}"
          f"{per:>10.1f}   target <= 25 KB (25,000 B = 24.4 KiB): "
          f"{'met' if per * 1024 <= 25000 else 'MISSED'}")
    print(f"{'worker: after the latency rounds':<58}{out['after_rounds_kib'] / 1024:>8.1f}"
          f"{(out['after_rounds_kib'] - out['empty_kib']) / n:>10.1f}")
    print(f"{'worker: peak (VmHWM) of the restart':<58}{out['hwm_kib'] / 1024:>8.1f}"
          f"   threads {out['threads']}")
    if floor:
        print(f"worker KiB/account / floor KiB/connection = {per / floor['per_conn_kib']:.2f}")
    dv = out["dovecot"]
    print(f"Dovecot: {dv['rss_kib'] / 1024:.0f} MiB RSS in {dv['processes']} processes "
          f"({dv['imap_processes']} imap processes: sessions not hibernated)"
          )
    print()
    print(f"{'connect':<58}{'s':>8}{'acct/s':>10}")
    if floor:
        when = "after the worker" if out.get("floor_after") else "during the indexing"
        print(f"{'floor: bare, 16 threads, ' + when:<58}"
              f"{floor['connect_s']:>8.0f}{n / floor['connect_s']:>10.0f}")
    print(f"{f'registration ({args.register_processes} processes, one transaction each)':<58}"
          f"{out['register_s']:>8.0f}{n / out['register_s']:>10.0f}")
    print(f"{'first index by ' + str(args.seed_workers) + ' workers (not a goal)':<58}"
          f"{out['first_s']:>8.0f}{n / out['first_s']:>10.0f}")
    print(f"  seed workers: --pool-size {args.seed_pool_size} --connect-threads "
          f"{args.seed_connect_threads}, EMAILAPI_DB_POOL_SIZE={args.seed_db_pool}; from the "
          f"end of the registration")
    start = ("worker first start (first index): process start -> all connected"
             if out.get("first_start") else "worker restart: process start -> all connected")
    print(f"{start:<58}{out['restart_s']:>8.0f}"
          f"{n / out['restart_s']:>10.0f}   target <= 300 s: "
          f"{'met' if out['restart_s'] <= 300 else 'MISSED'}")
    print(f"  worker's own log: {out['restart_wave'] or '(no line)'}")
    print(f"{'worker restart: CPU (user+sys) to connect all':<58}{out['restart_cpu_s']:>8.0f}"
          f"   = {out['restart_cpu_s'] / n * 1000:.1f} ms per account")
    print(f"graceful stop of the worker (every account logs out): {out['stop_s']:.0f} s")
    if "idle_cpu" in out:
        print(f"worker CPU while all idle: {out['idle_cpu'] * 100:.1f} % of a core over "
              f"{args.idle_window:.0f} s")
    ours, floors = out.get("ours"), out.get("floors")
    if ours:
        f50, f99 = percentile(floors, 0.5), percentile(floors, 0.99)
        o50, o99 = percentile(ours, 0.5), percentile(ours, 0.99)
        print()
        print(f"new-mail latency, {len(ours)} rounds, ms   (worker CPU meanwhile "
              f"{out['latency_cpu'] * 100:.0f} % of a core)")
        print(f"{'':<8}{'p50':>8}{'p99':>8}{'max':>8}")
        for name, values in (("floor", floors), ("ours", ours)):
            print(f"{name:<8}{percentile(values, 0.5) * 1000:>8.0f}"
                  f"{percentile(values, 0.99) * 1000:>8.0f}{max(values) * 1000:>8.0f}")
        print(f"p50 ours - floor = {(o50 - f50) * 1000:.0f} ms (target <= 50: "
              f"{'met' if o50 - f50 <= 0.05 else 'MISSED'}); p99 ours - floor = "
              f"{(o99 - f99) * 1000:.0f} ms (target <= 250: "
              f"{'met' if o99 - f99 <= 0.25 else 'MISSED'})")
    if inotify_warnings:
        print(f"Dovecot logged {inotify_warnings} inotify-limit warnings: latencies are its "
              f"1 s polling")


# -- failover ---------------------------------------------------------------------------------


class Feeder(threading.Thread):
    """APPENDs messages with unique Message-IDs to random accounts at ``rate`` a second."""

    def __init__(self, users, rate: float):
        super().__init__(daemon=True)
        self.users, self.rate = users, rate
        self.sent: list[str] = []
        # Message-ID -> (account index, wall-clock time of the tagged OK, APPENDUID's UID)
        self.where: dict[str, tuple[int, float, int | None]] = {}
        self.failed = 0
        self.halt = threading.Event()

    def run(self) -> None:
        from tests.servers import seed

        rng = random.Random(19)
        clients: dict[int, object] = {}
        interval = 1.0 / self.rate
        next_at = time.perf_counter()
        while not self.halt.is_set():
            index = rng.randrange(len(self.users))
            message_id = f"<scale-{uuid.uuid4().hex}@bench.invalid>"
            raw = seed.make_message(subject="failover", body="Hello!\n", message_id=message_id)
            try:
                client = clients.get(index)
                if client is None:
                    client = clients[index] = self.users[index].imap_client()
                answer = client.append("INBOX", raw)
                self.sent.append(message_id)
                self.where[message_id] = (index, time.time(), _appended_uid(answer))
            except Exception:  # noqa: BLE001 - counted; the message may or may not exist
                self.failed += 1
                clients.pop(index, None)
            next_at += interval
            self.halt.wait(max(0.0, next_at - time.perf_counter()))
        for client in clients.values():
            try:
                client.logout()
            except Exception:  # noqa: BLE001
                pass


def _appended_uid(answer) -> int | None:
    """The UID of an APPEND's ``[APPENDUID <validity> <uid>]`` (UIDPLUS), if given."""
    text = answer.decode(errors="replace") if isinstance(answer, bytes) else str(answer)
    parts = text.split("APPENDUID", 1)[-1].split("]", 1)[0].split() if "APPENDUID" in text \
        else []
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None


def run_failover(args, server, users, workdir) -> dict:
    n, count = args.accounts, args.workers
    out: dict = {"n": n, "workers": count}
    with _engine.throwaway_database(f"bench_engine_{os.getpid()}", REDIS_DB) as env:
        env = {**env, **worker_env(args)}
        _engine.setup_django()
        # Each worker shares its metrics through a directory of its own (prometheus_client's
        # multiprocess files), read by ``worker_histograms`` without a scrape.
        workers = []
        for i in range(count):
            metrics_dir = os.path.join(workdir, f"metrics-{i}")
            os.makedirs(metrics_dir, exist_ok=True)
            workers.append(Worker({**env, "PROMETHEUS_MULTIPROC_DIR": metrics_dir},
                                  f"scale-w{i}", workdir))
        try:
            wait_subscribers(count)
            started = time.perf_counter()
            register_all(users)
            out["registered_at"] = time.perf_counter()
            print(f"registered {n} accounts in {out['registered_at'] - started:.0f} s",
                  flush=True)
            return _failover(args, out, users, workers, n, count, server._proc.pid)
        finally:
            for w in workers:
                if w.proc.poll() is None:
                    w.stop(signal.SIGKILL, timeout=10)


def _failover(args, out, users, workers, n, count, dovecot: int) -> dict:
    from django.db.models import Count
    from django.utils import timezone

    from accounts.models import EmailAccount
    from mailboxes.worker import holders

    # The first index is not what is measured: at 20,000 on a slow machine it took over
    # the default 30 minutes (8 accounts a second).
    out["start_s"] = wait_connected(n, workers, clock=out["registered_at"],
                                    label=f"{count} workers, first index",
                                    timeout=max(1800.0, n * 0.25))
    print(f"{count} workers: all {n} connected {out['start_s']:.0f} s after the registration",
          flush=True)
    # Let the shares settle (rebalancing moves accounts between workers at first).
    time.sleep(args.settle)
    for w in workers:
        w.status("VmRSS")
    out["rss_mib"] = [w.status("VmRSS") / 1024 for w in workers]
    feeder = Feeder(users, args.rate)
    feeder.start()
    victim, survivors = workers[0], workers[1:]
    postmaster = _engine.postmaster_pid()
    quiet = cpu_now(survivors, dovecot, postmaster)  # the 5 s before the kill: the quiet rate
    time.sleep(5.0)
    held = holders.held_by(victim.worker_id)
    out["victim_held"] = len(held)
    killed_at = timezone.now()
    clock = time.perf_counter()
    out["kill_after_registration_s"] = clock - out["registered_at"]
    at_kill = cpu_now(survivors, dovecot, postmaster)
    histograms_at_kill = worker_histograms(survivors)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.proc.wait()
    victim.log.close()
    try:
        out["recover_s"] = wait_connected(len(held), survivors, since=killed_at, pks=held,
                                          clock=clock, label="after kill -9",
                                          timeout=args.recover_timeout)
        out["cpu"] = recovery_cpu(quiet, at_kill, cpu_now(survivors, dovecot, postmaster),
                                  len(held))
        out["wakes"] = histogram_quantiles(histograms_at_kill, worker_histograms(survivors))
        out["first_taken_s"], out["all_taken_s"] = taken_after(killed_at, held)
        out["curve"] = recovery_curve(killed_at, held)
        print(f"kill -9: {len(held)} accounts connected again by the others "
              f"{out['recover_s']:.0f} s after the kill", flush=True)
    except TimeoutError:
        out["recover_s"] = float("inf")
        out["recovered"] = connected_by([w.worker_id for w in survivors], killed_at, held)
        print(f"kill -9: only {out['recovered']} of {len(held)} connected again after "
              f"{args.recover_timeout:.0f} s", flush=True)
    time.sleep(args.feed_after)
    feeder.halt.set()
    feeder.join(timeout=30)
    out["sent"], out["append_failed"] = len(feeder.sent), feeder.failed
    # Quiet: every appended message announced (or the deadline).
    wanted = set(feeder.sent)
    deadline = time.perf_counter() + 180
    seen: dict[str, tuple[int, float]] = {}
    while time.perf_counter() < deadline:
        seen = message_ids_seen()
        if wanted <= set(seen):
            break
        time.sleep(1.0)
    time.sleep(5.0)
    seen = message_ids_seen()
    out["lost"] = len(wanted - set(seen))
    out["unannounced"] = [unannounced(mid, feeder.where[mid], killed_at, held)
                          for mid in sorted(wanted - set(seen), key=lambda m: feeder.where[m][1])]
    out["repeated"] = sum(c - 1 for mid, (c, _) in seen.items() if mid in wanted and c > 1)
    if out["recover_s"] != float("inf"):
        out["bystanders"] = bystander_latency(feeder.where, seen, killed_at, out["recover_s"],
                                              held)
        out["stalls"] = loop_stalls(survivors, killed_at, out["recover_s"])
    out["foreign"] = len(set(seen) - wanted)
    out["states"] = dict(EmailAccount.objects.values_list("state").annotate(
        n=Count("id")).values_list("state", "n"))
    for w in survivors:
        w.stop()
    return out


def taken_after(killed_at, held: list[int]) -> tuple[float, float]:
    """Seconds from the kill until the first and the last of ``held`` was taken by another
    worker (its holder row's ``since``): how long finding the dead worker took, apart from
    connecting its accounts again."""
    from django.db.models import Max, Min

    from mailboxes.models import AccountHolder

    span = AccountHolder.objects.filter(email_account_id__in=held, since__gte=killed_at) \
        .aggregate(first=Min("since"), last=Max("since"))
    return ((span["first"] - killed_at).total_seconds(),
            (span["last"] - killed_at).total_seconds())


def recovery_curve(killed_at, held: list[int]) -> dict:
    """When ``held`` went ``connected`` again, in seconds after the kill: the quantiles
    of all of them, and for each survivor how many it took and when its last connected. A
    long tail (a few accounts retried after a failed connect) or one survivor behind the
    others is a different fault from a machine short of CPU."""
    from accounts.models import EmailAccount
    from mailboxes.models import AccountHolder

    at = dict(EmailAccount.objects.filter(pk__in=held, state="connected").values_list(
        "pk", "state_changed_at"))
    kill = killed_at.timestamp()
    after = sorted(t.timestamp() - kill for t in at.values())
    by_worker: dict[str, list[float]] = {}
    for pk, worker_id in AccountHolder.objects.filter(email_account_id__in=list(at)) \
            .values_list("email_account_id", "worker_id"):
        by_worker.setdefault(worker_id, []).append(at[pk].timestamp() - kill)
    return {
        "quantiles": {q: percentile(after, q) for q in (0.5, 0.9, 0.99, 0.999, 1.0)}
        if after else {},
        "by_worker": {w: (len(ts), max(ts)) for w, ts in sorted(by_worker.items())},
    }


def cpu_now(workers, dovecot: int, postmaster: int) -> dict[str, float]:
    """CPU seconds so far: the workers' (each process, all its threads), Dovecot's and
    PostgreSQL's trees (children that ended included), the machine's busy time and the time
    the hypervisor took from it (``_engine.machine_times``)."""
    by_service = _engine.tree_cpu_by_name(dovecot)
    busy, stolen = _engine.machine_times()
    return {"workers": sum(sum(_engine.own_cpu(w.pid)) for w in workers),
            "dovecot": sum(by_service.values()), "postgres": _engine.tree_cpu(postmaster),
            "machine": busy, "stolen": stolen, "at": time.perf_counter(),
            **{f"dovecot:{name}": cpu for name, cpu in by_service.items()}}


def recovery_cpu(quiet: dict, at_kill: dict, recovered: dict, n: int) -> dict[str, float]:
    """Milliseconds per account connected again, by whom: the CPU from the kill to the
    last reconnect, less what the same processes spent at the rate of the quiet seconds
    before the kill (idling sessions, the feeder's mail), over ``n``; with that quiet rate
    in cores, and the cores the hypervisor took during the recovery and before it."""
    quiet_s = at_kill["at"] - quiet["at"]
    window_s = recovered["at"] - at_kill["at"]
    out = {}
    services = sorted({k for k in recovered if k.startswith("dovecot:")})
    for key in ("workers", "dovecot", "postgres", "machine", *services):
        rate = (at_kill.get(key, 0.0) - quiet.get(key, 0.0)) / quiet_s
        out[key] = (recovered[key] - at_kill.get(key, 0.0) - rate * window_s) * 1000 / n
        out[f"quiet_{key}"] = rate
    # Cores the hypervisor took (not a cost of ours: a machine with less to give).
    out["stolen_cores"] = (recovered["stolen"] - at_kill["stolen"]) / window_s
    out["quiet_stolen_cores"] = (at_kill["stolen"] - quiet["stolen"]) / quiet_s
    return out


def unannounced(message_id: str, where, killed_at, held: list[int]) -> dict:
    """What the index knows of a message no ``messageNew`` announced: its account (and
    whether the killed worker held it), when it was appended against the kill and the
    account's last holder change, and whether its row was indexed at all."""
    from accounts.models import EmailAccount
    from mailboxes.models import AccountHolder, Folder, Message

    index, appended, uid = where
    account = EmailAccount.objects.get(account_id=f"scale-{index:05d}")
    row = Message.objects.filter(email_account=account, message_id=message_id).first()
    holder = AccountHolder.objects.filter(email_account=account).first()
    inbox = Folder.objects.filter(email_account=account, path="INBOX").first()
    kill = killed_at.timestamp()
    return {
        "message_id": message_id, "account": account.account_id, "pk": account.pk,
        "victims": account.pk in held, "uid": uid,
        "appended_after_kill_s": round(appended - kill, 2),
        "holder": holder.worker_id if holder else None,
        "held_since_after_kill_s": round(holder.since.timestamp() - kill, 2) if holder else None,
        "state": account.state,
        "state_changed_after_kill_s": round(account.state_changed_at.timestamp() - kill, 2),
        "indexed": row is not None,
        "indexed_after_kill_s": round(row.indexed_at.timestamp() - kill, 2) if row else None,
        "inbox": {"synced_uidnext": inbox.synced_uidnext, "uidnext": inbox.uidnext,
                  "messages": inbox.messages} if inbox else None,
    }


def bystander_latency(where: dict, seen: dict, killed_at, recover_s: float,
                      held: list[int]) -> dict:
    """New-mail latency (APPEND's tagged OK to the ``messageNew`` row) of the messages
    appended during the recovery to accounts the survivors held all along: what the others'
    customers see while a dead worker's accounts are being taken and connected. A survivor
    whose loop is busy (a claim tick, a wave of results) leaves their sockets unread.
    ``seen``: ``message_ids_seen()``."""
    from accounts.models import EmailAccount

    kill = killed_at.timestamp()
    taken = set(EmailAccount.objects.filter(pk__in=held).values_list("account_id", flat=True))
    appended = {mid: at for mid, (index, at, _) in where.items()
                if 0 <= at - kill <= recover_s and f"scale-{index:05d}" not in taken}
    ms = sorted((seen[mid][1] - at) * 1000 for mid, at in appended.items() if mid in seen)
    return {"count": len(ms), "unrecorded": len(appended) - len(ms),
            **({"p50": percentile(ms, 0.5), "p90": percentile(ms, 0.9),
                "p99": percentile(ms, 0.99), "max": ms[-1]} if ms else {})}


WAKE_SERIES = {"emailapi_imap_wake_duration_seconds": "notice to synced and idle again",
               "emailapi_imap_step_wait_seconds": "waiting for a thread"}


def worker_histograms(workers) -> dict[str, dict[float, float]]:
    """The workers' wake histograms (``WAKE_SERIES``; the step waits of kind ``wake`` only),
    cumulative bucket counts by upper bound, summed over the workers, read from their metrics
    directories."""
    from prometheus_client import CollectorRegistry, multiprocess

    found: dict[str, dict[float, float]] = {name: {} for name in WAKE_SERIES}
    for w in workers:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=w.metrics_dir)
        for family in registry.collect():
            if family.name not in found:
                continue
            for sample in family.samples:
                if not sample.name.endswith("_bucket") or sample.labels.get("kind", "wake") != "wake":
                    continue
                bound = float(sample.labels["le"])
                found[family.name][bound] = found[family.name].get(bound, 0.0) + sample.value
    return found


def histogram_quantiles(before: dict, after: dict) -> dict[str, dict]:
    """Per series of ``WAKE_SERIES``: how many were observed between the two readings, and the
    bucket bound under which 50, 90 and 99 % of them fell (a bound, not an interpolation)."""
    result = {}
    for name in WAKE_SERIES:
        bounds = sorted(after[name])
        counts = [after[name][b] - before[name].get(b, 0.0) for b in bounds]
        total = counts[-1] if counts else 0.0
        quantiles = {}
        for q in (0.5, 0.9, 0.99):
            quantiles[q] = next((b for b, c in zip(bounds, counts, strict=True)
                                 if total and c >= q * total), float("inf"))
        result[name] = {"count": int(total), **quantiles}
    return result


STALL = re.compile(r"^(\S+ \S+) .*the loop was busy (\d+) ms \(claim tick (\d+) ms(?:: ([^)]+))?\)")


def loop_stalls(survivors, killed_at, recover_s: float) -> dict:
    """The survivors' loop turns logged as busy (``LOOP_STALL``: sockets left unread) from
    the kill to the end of the recovery: how many, the longest, their sum, how much of that
    the claim tick took, and by which of its slices (a worker that names them). From the
    workers' logs (``%(asctime)s``, this machine's time)."""
    from datetime import datetime

    start = killed_at.timestamp()
    turns = []
    for worker in survivors:
        with open(worker.log_path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                match = STALL.match(line)
                if not match:
                    continue
                at = datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
                if start <= at <= start + recover_s:
                    turns.append((int(match[2]), int(match[3]), match[4]))
    slices: dict[str, list[int]] = {}
    for _, tick, name in turns:
        if tick and name:
            slices.setdefault(name, []).append(tick)
    return {"turns": len(turns), "longest_ms": max((b for b, _, _ in turns), default=0),
            "busy_s": sum(b for b, _, _ in turns) / 1000,
            "tick_s": sum(t for _, t, _ in turns) / 1000,
            "slices": {name: (len(ms), max(ms), sum(ms) / 1000) for name, ms in
                       sorted(slices.items(), key=lambda kv: -sum(kv[1]))}}


def message_ids_seen() -> dict[str, tuple[int, float]]:
    """Each Message-ID announced by ``messageNew``: how many times, and when first (the
    event row's time, a Unix timestamp)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT data->>'messageId', count(*), min(created_at) FROM webhooks_event "
                       "WHERE event = 'messageNew' GROUP BY 1")
        return {mid: (count, first.timestamp()) for mid, count, first in cursor.fetchall()
                if mid}


def report_failover(args, out) -> None:
    print()
    print(f"== {out['n']} accounts over {out['workers']} workers, STARTTLS; one killed -9; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"worker settings: {' '.join(f'{k}={v}' for k, v in worker_env(args).items())}")
    print(f"all connected (first index) {out['start_s']:.0f} s after the registration; RSS MiB: "
          + ", ".join(f"{r:.0f}" for r in out["rss_mib"]))
    target = args.lease_ttl + 30
    recovered = (f"all connected again by the others {out['recover_s']:.1f} s after the kill"
                 if "recovered" not in out else
                 f"{out['recovered']} connected again {args.recover_timeout:.0f} s after it")
    print(f"killed worker held {out['victim_held']} accounts; {recovered} (target lease TTL "
          f"{args.lease_ttl} s + 30 s = {target} s: "
          f"{'met' if out['recover_s'] <= target else 'MISSED'})")
    overlap = out["kill_after_registration_s"] + min(out["recover_s"], args.recover_timeout) \
        - args.poll_interval
    if overlap > 0:
        # Accounts are first indexed from the registration on, and each polls every folder an
        # interval after: a wave of polls (wakes of hibernated sessions) inside the window.
        print(f"the safety-net polls of the accounts indexed first came due during the "
              f"recovery (the kill came {out['kill_after_registration_s']:.0f} s after the "
              f"registration; EMAILAPI_POLL_INTERVAL {args.poll_interval} s): its last "
              f"{overlap:.0f} s shared the machine with them")
    if "first_taken_s" in out:
        how = "presence" if 0 < args.gone_after < args.lease_ttl else "leases only"
        print(f"taken by the others: the first {out['first_taken_s']:.1f} s after the kill, "
              f"the last {out['all_taken_s']:.1f} s (EMAILAPI_WORKER_GONE_AFTER "
              f"{args.gone_after}: {how})")
    if out.get("curve", {}).get("quantiles"):
        curve = out["curve"]
        print("connected again, seconds after the kill: " + ", ".join(
            f"{'all' if q == 1.0 else f'{q * 100:g} %'} {t:.1f}"
            for q, t in curve["quantiles"].items()))
        print("  by survivor (accounts, last connected): " + ", ".join(
            f"{w} {n} at {t:.1f} s" for w, (n, t) in curve["by_worker"].items()))
    if "cpu" in out:
        cpu = out["cpu"]
        print(f"CPU per account connected again, less the quiet rate before the kill: survivors "
              f"{cpu['workers']:.1f} ms, Dovecot {cpu['dovecot']:.1f}, PostgreSQL "
              f"{cpu['postgres']:.1f}, whole machine {cpu['machine']:.1f} (quiet: machine "
              f"{cpu['quiet_machine']:.2f} cores busy, survivors {cpu['quiet_workers']:.2f})")
        print(f"  taken by the hypervisor (steal): {cpu['stolen_cores']:.2f} of the "
              f"{os.cpu_count()} cores during the recovery, {cpu['quiet_stolen_cores']:.2f} "
              "in the quiet seconds before the kill")
        print("  Dovecot's by service (ms per account; 'ended': processes reaped meanwhile): "
              + ", ".join(f"{key.split(':', 1)[1]} {value:.2f}"
                          for key, value in sorted(cpu.items(), key=lambda kv: -kv[1])
                          if key.startswith("dovecot:") and abs(value) >= 0.05))
    print(f"messages appended meanwhile: {out['sent']} (append failures {out['append_failed']});"
          f" messageNew by Message-ID: lost {out['lost']}, repeated {out['repeated']}")
    if out.get("bystanders", {}).get("count"):
        by = out["bystanders"]
        print(f"new mail to the survivors' own accounts during the recovery ({by['count']} "
              f"messages, {by['unrecorded']} not announced by its end): p50 {by['p50']:.0f} ms, "
              f"p90 {by['p90']:.0f}, p99 {by['p99']:.0f}, max {by['max']:.0f}")
    for name, label in WAKE_SERIES.items():
        wake = out.get("wakes", {}).get(name)
        if wake and wake["count"]:
            print(f"  survivors' wakes by new mail, {label} ({wake['count']}; "
                  f"{name.removeprefix('emailapi_')}): 50 % within {wake[0.5]:g} s, "
                  f"90 % within {wake[0.9]:g} s, 99 % within {wake[0.99]:g} s")
    if "stalls" in out:
        from mailboxes.worker.imap_worker import LOOP_STALL

        st = out["stalls"]
        print(f"survivors' loop turns busy over {LOOP_STALL * 1000:.0f} ms during the recovery: "
              f"{st['turns']}, longest {st['longest_ms']} ms, {st['busy_s']:.1f} s in all, "
              f"{st['tick_s']:.1f} s of it in claim ticks")
        if st.get("slices"):
            print("  by slice of the tick (turns, longest ms, seconds): " + ", ".join(
                f"{name} {n}, {longest}, {total:.1f}"
                for name, (n, longest, total) in st["slices"].items()))
    print(f"states at the end: {out['states']}")
    for item in out.get("unannounced", []):
        print(f"  unannounced: {json.dumps(item)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", nargs="?", default="single", choices=("single", "failover"))
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--settle", type=float, default=10.0)
    parser.add_argument("--idle-window", type=float, default=0.0)
    parser.add_argument("--rate", type=float, default=5.0, help="failover: appends per second")
    parser.add_argument("--feed-after", type=float, default=20.0,
                        help="failover: seconds the feeder goes on after recovery")
    parser.add_argument("--lease-ttl", type=int, default=20)
    parser.add_argument("--gone-after", type=int, default=5,
                        help="EMAILAPI_WORKER_GONE_AFTER of the workers (0: leases only)")
    parser.add_argument("--recover-timeout", type=float, default=600.0,
                        help="failover: give up waiting for the reconnects after this long")
    parser.add_argument("--connects-per-second", type=int, default=50)
    parser.add_argument("--poll-interval", type=int, default=900,
                        help="EMAILAPI_POLL_INTERVAL of the workers (STATUS safety net)")
    parser.add_argument("--idle-recheck", type=int, default=15,
                        help="EMAILAPI_IDLE_RECHECK of the workers (0: no recheck after a "
                             "change; Dovecot's hibernation may then hide one until the poll)")
    parser.add_argument("--notify", dest="no_notify", action="store_false",
                        help="let workers use NOTIFY (Dovecot then cannot hibernate them)")
    parser.add_argument("--hibernate-timeout", default="5s")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--floor", choices=("after", "during"), default="after",
                        help="single: when the bare floor holds its N sessions: after the "
                             "worker is measured and stopped (default), or during the "
                             "registration and first index (the earlier runs' way; at 10,000 "
                             "its sessions closing flood Dovecot while the worker connects)")
    parser.add_argument("--seed-workers", type=int, default=4,
                        help="single: workers that index the new accounts before the measured "
                             "worker starts")
    parser.add_argument("--seed-pool-size", type=int, default=8)
    parser.add_argument("--seed-connect-threads", type=int, default=4)
    parser.add_argument("--register-processes", type=int, default=4,
                        help="single: processes registering the accounts (each one transaction; "
                             "they wait on database round trips more than on the CPU)")
    parser.add_argument("--seed-db-pool", type=int, default=12,
                        help="single: the seed workers' EMAILAPI_DB_POOL_SIZE (PostgreSQL's "
                             "max_connections bounds seed workers x this)")
    parser.add_argument("--pool-size", type=int, default=None,
                        help="single: the measured worker's --pool-size (default: the setting)")
    parser.add_argument("--connect-threads", type=int, default=None,
                        help="single: the measured worker's --connect-threads")
    parser.add_argument("--heap-worker", action="store_true",
                        help="single: report the restarted worker's heap (glibc in use and "
                             "free, pymalloc objects, free blocks and empty pools)")
    parser.add_argument("--trace-worker", action="store_true",
                        help="single: the restarted worker runs with tracemalloc and reports "
                             "its Python objects per account by line (its RSS is then "
                             "inflated by tracemalloc: not a memory figure)")
    parser.add_argument("--hold", metavar="FILE",
                        help="single: once the first index is done and the seed workers are "
                             "stopped, describe the rig in FILE and wait until it is deleted")
    parser.add_argument("--keep-logs", metavar="DIR",
                        help="copy the workers' logs into DIR at the end")
    parser.add_argument("--floor-child", metavar="USERS_FILE", help=argparse.SUPPRESS)
    parser.add_argument("--floor-threads", type=int, default=16, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor_child:
        floor_child(args.floor_child, args.floor_threads)
        return
    # SIGTERM ends the run through its finally blocks (workers stopped, database dropped).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    from tests.servers.dovecot import Dovecot

    fds = raise_limits()
    n = args.accounts
    with open(INOTIFY_LIMIT, encoding="ascii") as fh:
        original = int(fh.read())
    wanted = 2 * n + 4096
    if original < wanted:
        with open(INOTIFY_LIMIT, "w", encoding="ascii") as fh:
            fh.write(str(wanted))
    workdir = tempfile.mkdtemp(prefix="bench-scale-")
    print(f"descriptor limit {fds}; fs.inotify.max_user_instances "
          f"{max(original, wanted)}", flush=True)
    try:
        sessions = n * (1 if args.mode == "failover" else 2)
        # One passwd-file: Dovecot's auth keeps each file it read open (20,000 users would
        # take every descriptor it may have).
        with Dovecot(extra_config=dovecot_config(sessions, args.hibernate_timeout),
                     startup_timeout=60, single_passwd_file=True) as server:
            started = time.perf_counter()
            users = [server.add_user() for _ in range(n)]
            server.wait_users_loaded()
            print(f"{n} Dovecot users in {time.perf_counter() - started:.1f} s", flush=True)
            if args.mode == "single":
                out = run_single(args, server, users, workdir)
            else:
                out = run_failover(args, server, users, workdir)
            log = server.read_log()
            inotify = log.count("Inotify instance limit")
            problems = [line for line in log.splitlines()
                        if ("Error" in line or "Fatal" in line or "Panic" in line)]
    finally:
        with open(INOTIFY_LIMIT, encoding="ascii") as fh:
            if int(fh.read()) == wanted and original < wanted:
                with open(INOTIFY_LIMIT, "w", encoding="ascii") as out_fh:
                    out_fh.write(str(original))
        if args.keep_logs:
            os.makedirs(args.keep_logs, exist_ok=True)
            for name in os.listdir(workdir):
                if name.endswith(".log"):
                    shutil.copy(os.path.join(workdir, name), args.keep_logs)
        shutil.rmtree(workdir, ignore_errors=True)
    if args.mode == "single":
        report_single(args, out, inotify)
    else:
        report_failover(args, out)
    if problems:
        print(f"\nDovecot logged {len(problems)} errors, e.g.:")
        for line in problems[:5]:
            print("  " + line[:200])


if __name__ == "__main__":
    main()
