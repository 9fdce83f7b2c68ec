"""The processes the soak (``bench/soak.py``) runs and watches: ``manage.py serve`` in a
session of its own, its children by role, their memory, which of them holds which database
connection, and the faults done to them (``kill -9``, ``pg_terminate_backend`` storms).

Only processes the soak started are ever signalled: ``serve``'s process group (it is the
leader of a session of its own) and its direct children, each checked to be one before the
signal. Only sessions of the soak's own database are ever terminated.

Not a benchmark itself (``bench/run.py`` skips files starting with an underscore).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import _engine

ROOT = Path(__file__).resolve().parents[1]
BENCH_APP = "soak-bench"  # application_name of the soak's own sessions: never terminated
ROLES = ("web", "imapworker", "rqworker", "sendscheduler", "webhookdispatcher")


# -- serve ---------------------------------------------------------------------------------


def start_serve(env: dict, port: int, log: Path) -> subprocess.Popen:
    """``manage.py serve`` as ``make run`` starts it (one web process, the default), leader
    of its own session (so its whole group can be signalled without touching anything else)."""
    return subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--web-processes", "1"],
        cwd=ROOT, env={**os.environ, **env}, stdin=subprocess.DEVNULL, stdout=log.open("w"),
        stderr=subprocess.STDOUT, start_new_session=True)


def stop_serve(serve: subprocess.Popen, grace: float = 25.0) -> float | None:
    """SIGTERM to serve (it stops its children: SIGTERM, SIGKILL after its own 10 s), then
    SIGKILL to whatever of its group is left (an rq work-horse, a child that hung). Returns
    how long serve took to exit after the SIGTERM, None if it had to be killed."""
    started = time.monotonic()
    took = None
    if serve.poll() is None:
        try:
            serve.send_signal(signal.SIGTERM)
            serve.wait(timeout=grace)
            took = time.monotonic() - started
        except subprocess.TimeoutExpired:
            pass
    _signal_group(serve, signal.SIGKILL)
    try:
        serve.wait(timeout=10)
    except subprocess.TimeoutExpired:
        print(f"warning: serve (pid {serve.pid}) did not exit after SIGKILL", file=sys.stderr)
    return took


def _signal_group(serve: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(serve.pid, sig)  # start_new_session: pgid == serve's pid
    except (ProcessLookupError, PermissionError):
        pass


# -- the process tree ----------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, pgid) of a process, or None if it is gone (a zombie is gone: nothing reaps
    orphans in some containers)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return None if fields[0] in ("Z", "X") else (int(fields[1]), int(fields[2]))
    except (OSError, IndexError, ValueError):
        return None


def _started(pid: int) -> int | None:
    """The process's start time (clock ticks after boot): with the pid, it names one process
    even after pids are reused."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().decode("utf-8", "replace").split("\0")
    except OSError:
        return []


def role_of(argv: list[str]) -> str | None:
    if "daphne" in argv or "emailapi.server" in argv:
        return "web"
    for role in ROLES[1:]:
        if role in argv:
            return role
    return None


def children(parent: int) -> dict[int, str]:
    """Direct children of ``parent`` by pid, with their role."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        stat = _stat(pid)
        if stat and stat[0] == parent:
            role = role_of(_cmdline(pid))
            if role:
                found[pid] = role
    return found


def descendants(root: int) -> set[int]:
    """``root`` and every process below it (rq's work-horses too)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat:
                parents[int(entry)] = stat[0]
    found, frontier = {root}, [root]
    while frontier:
        current = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == current and pid not in found:
                found.add(pid)
                frontier.append(pid)
    return found


def rss_kib(pid: int) -> int | None:
    try:
        return _engine.status_kib("VmRSS", pid)
    except (OSError, LookupError):
        return None


@dataclass
class Exit:
    """A child of serve that went away: by the soak's hand (``ours``) or not."""

    at: float  # time.time() when it was noticed (or killed)
    role: str
    pid: int
    ours: bool


@dataclass
class ProcessMonitor:
    """Watches serve's children twice a second: which pid holds each role, when one goes
    away, and every role's RSS over time."""

    serve: subprocess.Popen
    interval: float = 0.5
    current: dict[str, int] = field(default_factory=dict)
    seen: dict[int, int] = field(default_factory=dict)  # every pid once below serve -> start
    exits: list[Exit] = field(default_factory=list)
    peak_kib: dict[str, int] = field(default_factory=dict)
    killed: set[int] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _halt: threading.Event = field(default_factory=threading.Event)

    def start(self) -> ProcessMonitor:
        self.sample()
        threading.Thread(target=self._run, daemon=True, name="process-monitor").start()
        return self

    def stop(self) -> None:
        self._halt.set()

    def _run(self) -> None:
        while not self._halt.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        now = time.time()
        for pid in descendants(self.serve.pid):
            if pid not in self.seen:
                self.seen[pid] = _started(pid)
        found = {role: pid for pid, role in children(self.serve.pid).items()}
        with self._lock:
            for role, pid in list(self.current.items()):
                if found.get(role) != pid:  # gone (a zombie has no cmdline, so no role)
                    self.exits.append(Exit(now, role, pid, pid in self.killed))
                    del self.current[role]
            for role, pid in found.items():
                self.current.setdefault(role, pid)
        for role, pid in found.items():
            kib = rss_kib(pid)
            if kib:
                self.peak_kib[role] = max(self.peak_kib.get(role, 0), kib)

    def orphans(self) -> dict[int, str]:
        """Processes once below serve, alive, and below it no more: children of a child that
        was killed (rq's work-horse, in a process group of its own; its scheduler process),
        reparented to init. pid -> command line."""
        tree = descendants(self.serve.pid)
        return {pid: " ".join(_cmdline(pid))[:120] for pid, started in list(self.seen.items())
                if pid not in tree and started is not None and _started(pid) == started
                and _stat(pid) is not None}

    def kill_orphans(self) -> None:
        """SIGKILL what ``orphans`` finds (the soak started them, through serve)."""
        for pid in self.orphans():
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def pid(self, role: str) -> int | None:
        with self._lock:
            return self.current.get(role)

    def rss(self) -> dict[str, dict]:
        """Every role's pid and RSS now (serve itself too)."""
        with self._lock:
            roles = dict(self.current)
        roles["serve"] = self.serve.pid
        return {role: {"pid": pid, "rss_kib": rss_kib(pid)} for role, pid in roles.items()}

    def kill(self, role: str) -> int | None:
        """``kill -9`` the child holding ``role``, after checking it is serve's child."""
        pid = self.pid(role)
        if pid is None:
            return None
        stat = _stat(pid)
        if stat is None or stat[0] != self.serve.pid or role_of(_cmdline(pid)) != role:
            return None
        with self._lock:
            self.killed.add(pid)
        os.kill(pid, signal.SIGKILL)
        return pid

    def deaths(self, role: str) -> list[float]:
        with self._lock:
            return [e.at for e in self.exits if e.role == role]


EXITED = re.compile(r"\[serve\] (\S+) \(pid (\d+)\) exited with code (-?\d+)")
KILLED_AT_STOP = re.compile(r"\[serve\] (\S+) did not stop in")


def exit_codes(log: Path) -> dict[int, int]:
    """pid -> exit code, from serve's own report of each child that exited."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return {}
    return {int(m.group(2)): int(m.group(3)) for m in EXITED.finditer(text)}


def killed_at_stop(log: Path) -> list[str]:
    """The children serve had to SIGKILL when it was stopped."""
    try:
        return KILLED_AT_STOP.findall(log.read_text(errors="replace"))
    except OSError:
        return []


# -- the database --------------------------------------------------------------------------


class Database:
    """One autocommit session of the soak's own (``application_name`` soak-bench, which the
    storms spare), reopened after any error."""

    def __init__(self, url: str):
        self.url = url
        self._conn = None
        self._lock = threading.Lock()

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        import psycopg

        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._conn is None or self._conn.closed:
                        self._conn = psycopg.connect(self.url, autocommit=True,
                                                     application_name=BENCH_APP, connect_timeout=5)
                    return self._conn.execute(sql, params).fetchall()
                except psycopg.Error:
                    self.close_locked()
                    if attempt == 2:
                        raise
        return []

    def close_locked(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - it is being thrown away
                pass
            self._conn = None

    def close(self) -> None:
        with self._lock:
            self.close_locked()


def _socket_inodes(pids: set[int]) -> dict[int, int]:
    """socket inode -> pid, for the sockets these processes hold open."""
    owners = {}
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                owners[int(target[8:-1])] = pid
    return owners


def _local_port_inodes() -> dict[int, int]:
    """local TCP port -> socket inode (IPv4 and IPv6)."""
    ports = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as fh:
                next(fh)
                for line in fh:
                    fields = line.split()
                    ports[int(fields[1].rsplit(":", 1)[1], 16)] = int(fields[9])
        except OSError:
            continue
    return ports


def connections_by_process(db: Database, admin_db: str, serve: subprocess.Popen,
                           stray: dict[int, str]) -> dict:
    """The soak database's sessions (ours excepted) by the serve process holding each, and
    by state: which pool holds what. Sessions are matched to processes by their client port
    and the socket inodes each process holds, so no ``application_name`` is needed; ``stray``
    (``ProcessMonitor.orphans``) are looked at too."""
    rows = db.query(
        "SELECT client_port, coalesce(state, ''), application_name, backend_start "
        "FROM pg_stat_activity "
        "WHERE datname = %s AND pid <> pg_backend_pid() AND application_name <> %s",
        (admin_db, BENCH_APP))
    tree = descendants(serve.pid)
    roles = {pid: role_of(_cmdline(pid)) or "serve" for pid in tree}
    for pid in stray:
        roles[pid] = f"orphan {role_of(_cmdline(pid)) or pid}"
    owners, ports = _socket_inodes(set(roles)), _local_port_inodes()
    result: dict[str, dict[str, int]] = {}
    for client_port, state, app, began in rows:
        inode = ports.get(client_port or -1, -1)
        pid = owners.get(inode)
        who = roles.get(pid) or _stranger(inode, app, began)
        counts = result.setdefault(who, {})
        counts[state or "unknown"] = counts.get(state or "unknown", 0) + 1
    return result


def _stranger(inode: int, app: str, began) -> str:
    """Name the holder of a session no serve process holds: any process with the socket,
    else the session's application_name and start (its client may be gone)."""
    if inode != -1:
        for entry in os.listdir("/proc"):
            if entry.isdigit() and inode in _socket_inodes({int(entry)}):
                return f"other: pid {entry} {' '.join(_cmdline(int(entry)))[:60]}"
    since = f", since {began:%H:%M:%S}" if began else ""
    return f"other: {app or 'no name'}, client gone{since}"


class Storm:
    """``pg_terminate_backend`` of every session of the soak's database (its own monitoring
    session excepted) every ``interval`` seconds for ``seconds``: the database restarting
    under the processes, again and again."""

    def __init__(self, admin_url: str, db_name: str, seconds: float, interval: float = 0.5):
        self.admin_url, self.db_name = admin_url, db_name
        self.seconds, self.interval = seconds, interval
        self.terminated = 0
        self.started = self.ended = 0.0

    def run(self) -> Storm:
        import psycopg

        self.started = time.time()
        deadline = time.monotonic() + self.seconds
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            while time.monotonic() < deadline:
                row = conn.execute(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM "
                    "pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid() "
                    "AND application_name <> %s", (self.db_name, BENCH_APP)).fetchone()
                self.terminated += row[0]
                time.sleep(self.interval)
        self.ended = time.time()
        return self
