"""Hung IMAP servers against healthy ones: how soon is every healthy account connected after a
worker starts, with 100 accounts on servers that hang? (Target: within 30 s.)

Starts a private Dovecot (limits raised for N sessions) with ``--healthy`` users, and two hung
loopback servers (``tests/servers/hung_imap.py``): one accepts and never greets, the other
greets and never answers the login. ``--hung`` accounts point at them, half each. Everything
runs on a throwaway PostgreSQL database and Redis DB 4; the worker is a real
``manage.py imapworker`` with the default settings (phase timeouts, connect threads).

Three starts are timed, each from the moment the worker process is started until every
healthy account is ``connected`` (by that worker; the database is polled every 100 ms):

1. **cold**: the accounts were just registered; nothing is known about any server;
2. **restart**: SIGTERM (every account logs out, leases are released), then a new worker:
   it knows from the database which accounts connected before and which failed;
3. **after kill -9**: the worker is killed, a new one starts; it can only claim the accounts
   once the dead worker's leases lapse (``EMAILAPI_LEASE_TTL``, 20 s by default);
4. **floor**: the hung accounts are paused, and a graceful restart is timed again: the same
   machine at the same moment without hung servers, so "restart - floor" is what the hung
   accounts cost the healthy ones.

For each: time to the first, half, 90 % and all healthy accounts connected, and how many hung
accounts had failed by then. The old worker needed 3 min 21 s after a restart with 13 hung
accounts.

    .venv/bin/python bench/hung_accounts.py [--healthy 1000] [--hung 100] [--raise-inotify]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import _engine  # noqa: E402
from bench.idle_accounts import INOTIFY_LIMIT, cpu_seconds, raise_fd_limit  # noqa: E402

REDIS_DB = 4
TARGET = 30.0


class Worker:
    """``manage.py imapworker`` in its own session, its output to a log file."""

    def __init__(self, env: dict[str, str], worker_id: str, log_path: str):
        self.worker_id = worker_id
        self.log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.log_path = log_path
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "imapworker", "--worker-id", worker_id], cwd=ROOT,
            env={**os.environ, **env}, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)

    def alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"the worker exited ({self.proc.returncode}):\n{self.tail()}")

    def tail(self, lines: int = 20) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as fh:
            return "".join(fh.readlines()[-lines:])

    def stop(self, sig=signal.SIGTERM, timeout: float = 60.0) -> float:
        took = _engine.stop_group(self.proc, sig, timeout)
        self.log.close()
        return took


def register(tenant, users, hung_servers, hung: int) -> tuple[list[int], list[int]]:
    from django.db import transaction

    from accounts import services

    healthy, broken = [], []
    with transaction.atomic():
        for index, user in enumerate(users):
            settings = user.imap_settings(secure=False)
            settings["tls"] = {"rejectUnauthorized": False}
            healthy.append(services.register_account(
                tenant, {"account": f"ok-{index:05d}", "imap": settings}).pk)
        for index in range(hung):
            server = hung_servers[index % len(hung_servers)]
            broken.append(services.register_account(tenant, {
                "account": f"hung-{server.mode}-{index:04d}",
                "imap": {"host": server.host, "port": server.port, "secure": False,
                         "auth": {"user": f"hung{index}", "pass": "secret"}}}).pk)
    return healthy, broken


def watch(worker: Worker, healthy: list[int], broken: list[int], since, timeout: float,
          wall_start: float) -> dict:
    """Poll until every healthy account is connected (by this run's worker)."""
    from accounts.models import EmailAccount

    marks: dict[str, float] = {}
    total = len(healthy)
    while True:
        now = time.monotonic()
        connected = EmailAccount.objects.filter(
            pk__in=healthy, state=EmailAccount.State.CONNECTED, state_changed_at__gte=since,
            holder__worker_id=worker.worker_id, holder__released_at__isnull=True).count()
        for name, share in (("first", 1 / total), ("half", 0.5), ("90%", 0.9), ("all", 1.0)):
            if name not in marks and connected >= share * total:
                marks[name] = now - wall_start
        if connected >= total:
            marks["hung failed"] = EmailAccount.objects.filter(
                pk__in=broken, state=EmailAccount.State.CONNECT_ERROR,
                state_changed_at__gte=since).count()
            marks["cpu"] = cpu_seconds(worker.proc.pid)
            return marks
        if now - wall_start > timeout:
            raise TimeoutError(f"{connected}/{total} healthy connected after {timeout:.0f} s"
                               f"\n{worker.tail()}")
        worker.alive()
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--healthy", type=int, default=1000)
    parser.add_argument("--hung", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--raise-inotify", action="store_true",
                        help="raise fs.inotify.max_user_instances for the run (root)")
    args = parser.parse_args()

    from tests.servers.dovecot import Dovecot
    from tests.servers.hung_imap import HungImapServer

    raise_fd_limit()
    with open(INOTIFY_LIMIT, encoding="ascii") as fh:
        original_inotify = int(fh.read())
    if args.raise_inotify and original_inotify < 2 * args.healthy + 1024:
        with open(INOTIFY_LIMIT, "w", encoding="ascii") as fh:
            fh.write(str(2 * args.healthy + 1024))
    workdir = tempfile.mkdtemp(prefix="bench-hung-")
    log_path = os.path.join(workdir, "worker.log")
    results: dict[str, dict] = {}
    worker = None
    try:
        with Dovecot(extra_config=_engine.dovecot_limits(args.healthy), startup_timeout=30) \
                as server, HungImapServer("silent") as silent, HungImapServer("greet") as greet:
            users = [server.add_user() for _ in range(args.healthy)]
            with _engine.throwaway_database(f"bench_hung_{os.getpid()}", REDIS_DB) as env:
                _engine.setup_django()
                from django.utils import timezone

                from accounts import services

                tenant = services.create_tenant("Bench hung accounts")
                healthy, broken = register(tenant, users, [silent, greet], args.hung)
                print(f"{len(healthy)} healthy accounts on Dovecot, {len(broken)} on hung "
                      f"servers (half silent, half hanging at LOGIN)", flush=True)
                for number, (name, how) in enumerate((("cold", None),
                                                      ("restart", signal.SIGTERM),
                                                      ("after kill -9", signal.SIGKILL),
                                                      ("floor", signal.SIGTERM))):
                    if name == "floor":
                        from accounts.models import EmailAccount

                        EmailAccount.objects.filter(pk__in=broken).update(
                            paused=True, state=EmailAccount.State.PAUSED)
                    if worker is not None:
                        stopped_in = worker.stop(how)
                        print(f"previous worker stopped ({how.name}) in {stopped_in:.1f} s",
                              flush=True)
                    since = timezone.now()
                    wall_start = time.monotonic()
                    worker = Worker(env, f"bench-hung-{number}", log_path)
                    results[name] = watch(worker, healthy, broken, since, args.timeout,
                                          wall_start)
                    print(f"{name}: all {len(healthy)} healthy connected "
                          f"{results[name]['all']:.1f} s after the worker started", flush=True)
                worker.stop(signal.SIGTERM)
                worker = None
    finally:
        if worker is not None:
            worker.stop(signal.SIGKILL)
        if args.raise_inotify and original_inotify < 2 * args.healthy + 1024:
            with open(INOTIFY_LIMIT, "w", encoding="ascii") as fh:
                fh.write(str(original_inotify))
    report(args, results)


def report(args, results: dict[str, dict]) -> None:
    from django.conf import settings

    print()
    print(f"{args.healthy} healthy + {args.hung} hung accounts, one worker; phase timeouts "
          f"connect/greeting/TLS/login {settings.IMAP_CONNECT_TIMEOUT}/"
          f"{settings.IMAP_GREETING_TIMEOUT}/{settings.IMAP_TLS_TIMEOUT}/"
          f"{settings.IMAP_LOGIN_TIMEOUT} s, {settings.IMAP_CONNECT_THREADS} connect threads, "
          f"lease TTL {settings.IMAP_LEASE_TTL} s")
    print("seconds from the worker's start until N healthy accounts are connected:")
    print(f"{'start':<16}{'first':>8}{'half':>8}{'90%':>8}{'all':>8}{'hung failed':>13}"
          f"{'CPU s':>8}   target: all within {TARGET:.0f} s")
    for name, marks in results.items():
        met = "met" if marks["all"] <= TARGET else "MISSED"
        if name == "after kill -9":
            met += f" (includes waiting up to {settings.IMAP_LEASE_TTL} s for the dead " \
                   "worker's leases to lapse)"
        elif name == "floor":
            met = "(hung accounts paused: the same restart without them)"
        print(f"{name:<16}{marks['first']:>8.1f}{marks['half']:>8.1f}{marks['90%']:>8.1f}"
              f"{marks['all']:>8.1f}{marks['hung failed']:>13}{marks['cpu']:>8.1f}   {met}")
    if "floor" in results and "restart" in results:
        cost = results["restart"]["all"] - results["floor"]["all"]
        print(f"the hung accounts cost the healthy ones {cost:+.1f} s on a restart "
              f"(restart - floor, same run)")
    print(f"(CPU s: the worker's CPU time from its start until all were connected; "
          f"load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
