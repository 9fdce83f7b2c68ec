"""Shared plumbing for the engine benchmarks (``first_index.py``, ``idle_accounts.py``).

Not a benchmark itself: ``bench/run.py`` skips files whose name starts with an underscore.

* a throwaway PostgreSQL database per run (``bench_engine_<pid>``), created before Django is
  set up and dropped ``WITH (FORCE)`` at the end whatever happened;
* a Redis DB of its own, flushed at start and at the end. The test suite takes DBs 15 down to
  8 (one per pytest-xdist worker, ``tests/settings.py``), so the benches use 7 and 6;
* Django on that database (``migrate`` into it), the same environment variables a
  ``manage.py`` subprocess needs (so a worker subprocess decrypts the credentials the bench
  sealed: same ``EMAILAPI_SECRET``);
* memory figures from ``/proc/<pid>/status`` (VmRSS, VmHWM) and resetting the peak mark;
* seeding a big INBOX with ``bench/imap_fetch.py``'s MULTIAPPEND ``fill`` in a forked child,
  so the hundreds of MB of message bytes it builds never inflate this process's RSS.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
REDIS_BASE = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379")
SECRET = os.environ.get("EMAILAPI_SECRET", "bench-secret-0123456789-engine")


def environment(db_name: str, redis_db: int) -> dict[str, str]:
    """Set (and return) the variables Django and ``manage.py`` subprocesses read."""
    values = {
        "DATABASE_URL": f"{PG}/{db_name}",
        "REDIS_URL": f"{REDIS_BASE.rstrip('/')}/{redis_db}",
        "DJANGO_SETTINGS_MODULE": "emailapi.settings",
        "EMAILAPI_SECRET": SECRET,
        "EMAILAPI_RATE_LIMIT": "0",
        # The bench's Dovecot is on loopback, which mailboxes may only use when allowed.
        "EMAILAPI_MAIL_ALLOW_PRIVATE": "true",
        # Pub/sub channels ignore the Redis DB number: keep our worker off others' channels.
        "EMAILAPI_REDIS_PREFIX": f"bench-{db_name}",
        "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
    }
    os.environ.update(values)
    return values


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(sql)


@contextlib.contextmanager
def throwaway_database(name: str, redis_db: int) -> Iterator[dict[str, str]]:
    """Create the database, point the environment at it, flush the Redis DB; undo it all."""
    env = environment(name, redis_db)
    _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    _admin(f"CREATE DATABASE {name}")
    flush_redis(env["REDIS_URL"])
    try:
        yield env
    finally:
        _close_django_connections()
        try:
            _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        except Exception as exc:  # noqa: BLE001 - report, do not mask the real error
            print(f"warning: could not drop database {name}: {exc}", file=sys.stderr)
        flush_redis(env["REDIS_URL"])


def flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()


def setup_django() -> None:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _close_django_connections() -> None:
    if "django.db" not in sys.modules:
        return
    from django.db import connections

    try:
        connections.close_all()
        for conn in connections.all(initialized_only=True):
            close_pool = getattr(conn, "close_pool", None)
            if close_pool is not None:
                close_pool()
    except Exception:  # noqa: BLE001 - the database is dropped WITH (FORCE) anyway
        pass


def account_changes_channel() -> str:
    """The pub/sub channel account changes are announced on (after ``django.setup()``)."""
    try:
        from accounts.announcements import account_changes_channel as channel
    except ImportError:  # a tree from before accounts/announcements.py
        from accounts import services

        if hasattr(services, "account_changes_channel"):
            return services.account_changes_channel()
        return services.ACCOUNT_CHANGES_CHANNEL
    return channel()


def wait_for_subscriber(timeout: float = 10.0) -> None:
    """Until a worker listens for account changes (an "added" then claims it at once)."""
    from emailapi.lib.redis import get_redis

    channel = account_changes_channel()
    wait_for(lambda: get_redis().pubsub_numsub(channel)[0][1], timeout=timeout,
             what="a worker's pub/sub subscription")


# -- memory --------------------------------------------------------------------------------


def processes() -> dict[int, tuple[str, int, list[int]]]:
    """Every process: pid -> (name, parent pid, [utime, stime, cutime, cstime] in ticks)."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                text = fh.read()
        except OSError:
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        out[int(entry)] = (name, int(fields[1]), [int(f) for f in fields[11:15]])
    return out


def process_tree(root: int, procs: dict | None = None) -> list[int]:
    """``root`` and its descendants among ``procs`` (default: every process now)."""
    procs = procs if procs is not None else processes()
    children: dict[int, list[int]] = {}
    for pid, (_, ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    tree, stack = [], [root]
    while stack:
        pid = stack.pop()
        tree.append(pid)
        stack.extend(children.get(pid, []))
    return tree


TICK = os.sysconf("SC_CLK_TCK")


def tree_cpu(root: int) -> float:
    """CPU seconds of ``root`` and its descendants, children that ended included (each
    parent's cutime/cstime holds the children it reaped)."""
    return sum(tree_cpu_by_name(root).values())


def tree_cpu_by_name(root: int) -> dict[str, float]:
    """``tree_cpu`` split by process name (Dovecot's services: ``imap-login``, ``imap``,
    ``imap-hibernate``, ``auth``, ``anvil``...); the children that ended count under
    ``ended`` (their parent reaped them, so their names are gone). A process that ends
    between two readings moves its time from its name to ``ended``: compare the total, or
    names that stay up."""
    procs = processes()
    out: dict[str, float] = {}
    for pid in process_tree(root, procs):
        if pid in procs:
            name, _, (utime, stime, cutime, cstime) = procs[pid]
            out[name] = out.get(name, 0.0) + (utime + stime) / TICK
            out["ended"] = out.get("ended", 0.0) + (cutime + cstime) / TICK
    return out


def machine_times(text: str | None = None) -> tuple[float, float]:
    """Seconds so far of all cores running this machine's work (user, nice, system, irq,
    softirq), and stolen: time the virtual machine's cores were ready to run and the
    hypervisor ran something else (``steal``; seen here at 3-45 % of both cores). Stolen time
    is not work done here: counted as busy, as it once was, it inflated every "whole machine
    per ..." figure by whatever the host took at the time. ``guest`` is already in ``user``.
    ``text``: the contents of ``/proc/stat`` (read when not given)."""
    if text is None:
        with open("/proc/stat", encoding="ascii") as fh:
            text = fh.readline()
    values = [int(v) for v in text.split("\n", 1)[0].split()[1:]] + [0] * 10
    user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
    return (user + nice + system + irq + softirq) / TICK, steal / TICK


def machine_busy() -> float:
    """Seconds of all cores running this machine's work so far (``machine_times``)."""
    return machine_times()[0]


def machine_stolen() -> float:
    """Seconds of all cores taken by the hypervisor so far (``machine_times``)."""
    return machine_times()[1]


def postmaster_pid() -> int:
    procs = processes()
    return min(pid for pid, (name, ppid, _) in procs.items()
               if name == "postgres" and procs.get(ppid, ("",))[0] != "postgres")


def own_cpu(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of one process (all its threads) so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def status_kib(field: str, pid: int | str = "self") -> int:
    """A ``VmRSS``/``VmHWM``-style field of ``/proc/<pid>/status``, in KiB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise LookupError(field)


def reset_peak_rss(pid: int | str = "self") -> int:
    """Reset the kernel's peak-RSS mark (VmHWM, Linux >= 4.0); return the current RSS."""
    with open(f"/proc/{pid}/clear_refs", "w", encoding="ascii") as fh:
        fh.write("5")
    return status_kib("VmRSS", pid)


# -- seeding -------------------------------------------------------------------------------


def _fill(user, count: int) -> None:
    from bench.imap_fetch import fill

    fill(user, count)


def fill_in_child(user, count: int) -> float:
    """``imap_fetch.fill`` (MULTIAPPEND, 500 messages per round trip) in a forked child;
    returns the seconds it took."""
    started = time.perf_counter()
    child = multiprocessing.get_context("fork").Process(target=_fill, args=(user, count))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise RuntimeError(f"seeding failed (exit code {child.exitcode})")
    return time.perf_counter() - started


# -- waiting -------------------------------------------------------------------------------


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.05,
             what: str = "") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what or predicate}")


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


def dovecot_limits(sessions: int) -> str:
    """Dovecot configuration that lets ``sessions`` IMAP sessions (and as many again for
    baselines and watchers) run at once from one address."""
    return f"""
default_process_limit = {2 * sessions + 200}
default_client_limit = {4 * sessions + 1000}
service imap {{
  process_limit = {2 * sessions + 200}
}}
service anvil {{
  client_limit = {4 * sessions + 1000}
}}
service auth {{
  client_limit = {4 * sessions + 1000}
}}
protocol imap {{
  mail_max_userip_connections = 100
}}
"""


def _write_maildir(cur: str, count: int, uid: int, gid: int) -> None:
    """In a forked child running as Dovecot's mail user: ``count`` message files in ``cur``,
    named as Dovecot names them (``,S=<size>`` spares it a stat, ``:2,<flags>`` the flags),
    mtimes spread over the years (a maildir message's INTERNALDATE)."""
    from bench.imap_fetch import PLACEHOLDER, templates

    shapes = templates()  # before dropping root: it imports modules root's Python owns
    os.setgid(gid)
    os.setuid(uid)
    flag_choices = ["S", "", "FS", "S", "RS"]
    start = 1_704_067_200  # 2024-01-01
    for number in range(count):
        raw = shapes[number % len(shapes)].replace(PLACEHOLDER, str(number).encode(), 1)
        stamp = start + 17 * 60 * number
        path = os.path.join(
            cur, f"{stamp}.M{number}P1.bench,S={len(raw)}:2,{flag_choices[number % 5]}")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, raw)
        finally:
            os.close(fd)
        os.utime(path, (stamp, stamp))


def fill_maildir_in_child(server, user, count: int) -> float:
    """Fill ``user``'s INBOX by writing maildir files straight into the store of the bench's
    own Dovecot (1,000,000 APPENDs would take hours; files take about a minute), as its mail
    user, in a forked child. Dovecot assigns the UIDs when it next looks at the folder.
    Returns the seconds it took (writing only)."""
    import pwd

    client = user.imap_client()
    client.select_folder("INBOX")  # creates the Maildir
    client.logout()
    cur = os.path.join(server.base_dir, "mail", user.username, "Maildir", "cur")
    mail = pwd.getpwnam("dovecot")
    started = time.perf_counter()
    child = multiprocessing.get_context("fork").Process(
        target=_write_maildir, args=(cur, count, mail.pw_uid, mail.pw_gid))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise RuntimeError(f"writing the maildir failed (exit code {child.exitcode})")
    return time.perf_counter() - started


def scan_maildir(user, timeout: float = 3600.0) -> float:
    """Have Dovecot index the files written by ``fill_maildir_in_child`` (it assigns their
    UIDs on the first SELECT, which takes minutes at 1,000,000 files) in a session with a
    long timeout; the bench's other sessions keep their short ones. Returns the seconds."""
    from imapclient import IMAPClient

    started = time.perf_counter()
    client = IMAPClient(user.host, port=user.imap_port, ssl=False, timeout=timeout)
    client.login(user.username, user.password)
    client.select_folder("INBOX", readonly=True)
    client.folder_status("INBOX", ["MESSAGES", "UIDNEXT"])
    client.logout()
    return time.perf_counter() - started


def idle_rss_of_child(argv: list[str], count: int, settle: float, pause: float = 0.2,
                      env: dict[str, str] | None = None, wait: float = 30.0) -> dict:
    """Memory a floor process gains by opening ``count`` idle connections: the child (run as
    ``argv``) prints ``ready``, connects on ``go``, prints ``idling <seconds>`` and exits on
    ``quit``; its RSS is read before and ``settle`` seconds after."""
    import subprocess
    child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             cwd=ROOT, env=env)
    try:
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError("the floor process failed to start")
        time.sleep(pause)
        before = status_kib("VmRSS", child.pid)
        child.stdin.write("go\n")
        child.stdin.flush()
        line = child.stdout.readline().split()
        if not line or line[0] != "idling":
            raise RuntimeError("the floor process failed while connecting")
        time.sleep(settle)
        after = status_kib("VmRSS", child.pid)
        child.stdin.write("quit\n")
        child.stdin.flush()
        child.wait(timeout=wait)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return {"before_kib": before, "after_kib": after, "per_conn_kib": (after - before) / count,
            "connect_s": float(line[1])}


def stop_group(proc, sig: int, timeout: float) -> float:
    """Signal a process's whole group, wait (SIGKILL after ``timeout``); seconds it took."""
    import signal
    import subprocess
    started = time.monotonic()
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return time.monotonic() - started


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def mallinfo2() -> dict[str, int]:
    """glibc's account of this process's heap (``mallinfo2``), in bytes; empty where the C
    library has none."""
    libc = ctypes.CDLL("libc.so.6")
    try:
        libc.mallinfo2.restype = _Mallinfo2
    except AttributeError:
        return {}
    info = libc.mallinfo2()
    return {name: getattr(info, name) for name, _ in _Mallinfo2._fields_}
