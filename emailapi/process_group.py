"""Running the web server and the background workers as one supervised group (``make run``).

Each child is a plain subprocess. A child that exits while the group is running is reported on
stderr and restarted after a capped, growing delay (1 s, 2 s, 4 s ... 30 s; the delay resets once
a child has stayed up for a minute), so a crash is visible and never silently lost. SIGINT or
SIGTERM stops the group: every child gets SIGTERM, and SIGKILL after ``grace`` seconds. A web
process first finishes the requests it is serving, for at most ``emailapi.server.DRAIN_SECONDS``;
the workers finish their stop (leases released, a job in progress done) as they do alone.

A web process that is alive but useless (its database pool exhausted for good) is restarted
the same way: it exits by itself (``emailapi.watchdog``, exit code 75), because the
supervisor cannot check each web process's health from outside when several accept on one
shared socket (a request reaches whichever process the kernel picks). The exit code is
named in the log line, so the operator sees why.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from emailapi.lib import metrics
from emailapi.lib.backoff import Schedule

# 1 s, 2 s, 4 s ... 30 s before a crashed child starts again (no jitter: one machine's few
# children, each restarted on its own).
RESTART = Schedule(base=1.0, factor=2.0, cap=30.0)
STABLE_AFTER = 60.0
# Exit codes children use to say why they stopped (emailapi.watchdog.EXIT_POOL_EXHAUSTED).
EXIT_REASONS = {75: "its database pool stayed exhausted"}


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    failures: int = 0
    restart_at: float | None = None
    env: dict[str, str] = field(default_factory=dict)
    pass_fds: tuple[int, ...] = ()


def log(message: str) -> None:
    print(f"[serve] {message}", file=sys.stderr, flush=True)


class Supervisor:
    def __init__(self, children: list[Child], grace: float = 10.0):
        self.children = children
        self.grace = grace
        self.stopping = threading.Event()

    def start(self, child: Child) -> None:
        child.process = subprocess.Popen(child.argv, env={**os.environ, **child.env},
                                         pass_fds=child.pass_fds)
        child.started_at = time.monotonic()
        child.restart_at = None
        log(f"started {child.name} (pid {child.process.pid})")

    def check(self, child: Child) -> None:
        """Notice a dead child, report it and schedule or perform its restart."""
        now = time.monotonic()
        if child.process is None or child.restart_at is not None:
            if child.restart_at is not None and now >= child.restart_at:
                self.start(child)
            return
        code = child.process.poll()
        if code is None:
            return
        if now - child.started_at > STABLE_AFTER:
            child.failures = 0
        child.failures += 1
        metrics.process_exited(child.process.pid, child.env.get(metrics.MULTIPROC_ENV))
        delay = RESTART.delay(child.failures)
        reason = f" ({EXIT_REASONS[code]})" if code in EXIT_REASONS else ""
        log(f"{child.name} (pid {child.process.pid}) exited with code {code}{reason}; "
            f"restarting in {delay:g} s")
        child.process = None
        child.restart_at = now + delay

    def run(self) -> int:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stopping.set())
        for child in self.children:
            self.start(child)
        while not self.stopping.wait(0.5):
            for child in self.children:
                self.check(child)
        self.stop_all()
        return 0

    def stop_all(self) -> None:
        log("stopping")
        running = [c for c in self.children if c.process and c.process.poll() is None]
        for child in running:
            child.process.terminate()
        deadline = time.monotonic() + self.grace
        for child in running:
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log(f"{child.name} did not stop in {self.grace:g} s; killing it")
                child.process.kill()
                child.process.wait()
        log("stopped")
