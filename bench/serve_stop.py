"""How long ``manage.py serve`` (what ``make run`` starts) takes to stop on SIGTERM.

For this tree, and each ``--compare`` checkout (e.g. the old main), ``--rounds`` times over,
alternating: the whole group on a throwaway SQLite database (in a temporary directory) and the
Redis DB ``--redis-db`` (a test slot's own DB while it runs no tests; the group writes rq's keys
and its own under a prefix of this run), left with what a running server has open (a
kept-alive connection idle after a request, a live event stream); then SIGTERM to serve, and for
each process the seconds until it is gone and the CPU seconds it used meanwhile (``/proc``).

Floor: a bare daphne (``bench/_hello_asgi.py``, one process, no Django) stopped the same way.

    .venv/bin/python bench/serve_stop.py [--compare ../base-checkout] [--rounds 3]
        [--no-workers] [--redis-db 11]
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.servers.net import find_free_port  # noqa: E402

REDIS_DB = 11  # EMAILAPI_TEST_SLOT=1's first DB (tests/settings.py)
STARTUP = 300.0
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """utime+stime, or None once the process is gone (or a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None if fields[0] == "Z" else (int(fields[11]) + int(fields[12])) / TICK


def get(port: int, path: str, headers: dict | None = None, conn=None):
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    response.read()
    return conn, response.status


def wait_up(port: int, process: subprocess.Popen, path: str) -> None:
    deadline = time.monotonic() + STARTUP
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with code {process.returncode}")
        try:
            conn, status = get(port, path)
            conn.close()
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not come up")


def stop_and_time(pids: dict[int, str], process: subprocess.Popen) -> dict[str, tuple]:
    """SIGTERM to ``process``; per name: (seconds until gone, CPU seconds used meanwhile)."""
    before = {pid: cpu_seconds(pid) or 0.0 for pid in pids}
    last = dict(before)
    gone: dict[str, tuple] = {}
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    while len(gone) < len(pids):
        for pid, name in pids.items():
            if name in gone:
                continue
            used = cpu_seconds(pid)
            if used is None:
                gone[name] = (time.monotonic() - started, last[pid] - before[pid])
            else:
                last[pid] = used
        process.poll()
        time.sleep(0.01)
    process.wait()
    return gone


class Checkout:
    def __init__(self, name: str, root: Path, workdir: Path, redis_db: int):
        self.name, self.root = name, root
        slug = re.sub(r"\W+", "-", name)
        self.env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        self.env.update(DATABASE_URL=f"sqlite:///{workdir / slug}.sqlite3",
                        EMAILAPI_VAR_DIR=str(workdir / f"var-{slug}"),
                        REDIS_URL=f"redis://127.0.0.1:6379/{redis_db}",
                        EMAILAPI_REDIS_PREFIX=f"bench-serve-stop-{os.getpid()}",
                        EMAILAPI_SECRET="bench-serve-stop-secret-0123456789",
                        PYTHONDONTWRITEBYTECODE="1")
        self.log = workdir / f"{slug}.log"

    def manage(self, *argv: str) -> str:
        return subprocess.run([sys.executable, "manage.py", *argv], cwd=self.root, env=self.env,
                              capture_output=True, text=True, check=True, timeout=600).stdout

    def prepare(self) -> None:
        self.manage("migrate", "-v0")
        self.token = self.manage("create_tenant", "Bench").strip().splitlines()[-1]

    def round(self, no_workers: bool) -> dict[str, tuple]:
        port = find_free_port()
        self.log.write_bytes(b"")
        with self.log.open("ab") as output:
            process = subprocess.Popen(
                [sys.executable, "manage.py", "serve", "--port", str(port),
                 *(["--no-workers"] if no_workers else [])],
                cwd=self.root, env=self.env, stdout=output, stderr=output,
                start_new_session=True)
        kept = stream = None
        try:
            wait_up(port, process, "/health")
            auth = {"Authorization": f"Bearer {self.token}"}
            kept, status = get(port, "/v1/accounts", auth)
            assert status == 200, status
            stream = socket.create_connection(("127.0.0.1", port), timeout=60)
            stream.sendall(b"GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: "
                           b"text/event-stream\r\nAuthorization: Bearer %s\r\n\r\n"
                           % self.token.encode())
            assert stream.recv(100).startswith(b"HTTP/1.1 200"), "no stream"
            started = re.findall(r"started (\S+) \(pid (\d+)\)", self.log.read_text())
            pids = {process.pid: "serve", **{int(pid): name for name, pid in started}}
            return stop_and_time(pids, process)
        finally:
            for conn in (kept, stream):
                if conn is not None:
                    conn.close()
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def floor_round() -> dict[str, tuple]:
    port = find_free_port()
    process = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p",
                                str(port), "bench._hello_asgi:app"], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_up(port, process, "/")
        kept, _ = get(port, "/")
        try:
            return stop_and_time({process.pid: "daphne"}, process)
        finally:
            kept.close()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def row(name: str, times: dict[str, tuple]) -> str:
    slowest = max(times, key=lambda n: times[n][0])
    total_cpu = sum(cpu for _, cpu in times.values())
    return (f"{name:<28.28}{len(times):>6}{times.get('serve', times[slowest])[0]:>9.2f}"
            f"{slowest:>20}{times[slowest][0]:>7.2f}{total_cpu:>9.2f}"
            f"{os.getloadavg()[0]:>7.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--compare", type=Path, action="append", default=[])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-workers", action="store_true", help="serve --no-workers")
    parser.add_argument("--redis-db", type=int, default=REDIS_DB)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-serve-stop-") as workdir:
        checkouts = [Checkout("this tree", ROOT, Path(workdir), args.redis_db)]
        checkouts += [Checkout(path.resolve().name, path.resolve(), Path(workdir),
                               args.redis_db) for path in args.compare]
        for checkout in checkouts:
            checkout.prepare()
        print(f"{'server':<28}{'procs':>6}{'stop s':>9}{'slowest':>20}{'s':>7}"
              f"{'cpu s':>9}{'load':>7}")
        for _ in range(args.rounds):
            print(row("floor: bare daphne", floor_round()), flush=True)
            for checkout in checkouts:
                times = checkout.round(args.no_workers)
                print(row(checkout.name, times), flush=True)
                print("    " + "  ".join(f"{name} {secs:.2f}s/{cpu:.2f}cpu"
                                         for name, (secs, cpu) in sorted(times.items())),
                      flush=True)


if __name__ == "__main__":
    main()
