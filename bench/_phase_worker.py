"""``manage.py imapworker`` that adds up, per step of a reconnect, the CPU of the thread that
ran it (``time.thread_time()``), for ``bench/restart_cost.py --phases``.

A worker's 24 threads mostly wait for the interpreter or a socket, so a sampling profiler
(py-spy, ``perf``) says poorly what each step costs; the thread's own CPU clock does not count
those waits. Run from any checkout (``BENCH_PHASE_ROOT``: a baseline's worktree); at exit
(the bench stops the worker with SIGTERM) it writes ``BENCH_PHASES_OUT`` (JSON: each step's
total seconds and calls). Steps nest: "connect" includes "STARTTLS", and so on.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(os.environ.get("BENCH_PHASE_ROOT") or Path(__file__).resolve().parents[1])

# (module, attribute path, label): what is timed, in the order the report lists it.
STEPS = (
    ("mailboxes.worker.connection", "AccountConnection.connect", "connect (connect thread)"),
    ("accounts.models", "EmailAccount.for_session", "  account row"),
    ("mailboxes.connection_settings", "account_imap_settings", "  settings, credentials"),
    ("mailboxes.imap.client", "_open", "  TCP and greeting"),
    ("imapclient", "IMAPClient.starttls", "  STARTTLS"),
    ("mailboxes.imap.client", "_login", "  LOGIN"),
    ("mailboxes.worker.connection", "AccountConnection.sync", "sync and IDLE (pool thread)"),
    ("mailboxes.imap.session", "ImapSession.__init__", "  session (ENABLE)"),
    ("mailboxes.worker.connection", "AccountConnection._rows_if_poll_not_due",
     "  folder rows"),
    ("mailboxes.worker.connection", "AccountConnection._set_state", "  state writes"),
    ("mailboxes.imap.session", "ImapSession.select", "  EXAMINE"),
    ("mailboxes.worker.connection", "AccountConnection._start_idle", "  IDLE"),
    ("mailboxes.worker.imap_worker", "ImapWorker.step", "main loop"),
    ("mailboxes.worker.imap_worker", "ImapWorker._tick_turn", "  claim tick slices"),
)


def _timed(function, label: str, totals: dict, lock: threading.Lock):
    @functools.wraps(function)
    def timed(*args, **kwargs):
        started = time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            spent = time.thread_time() - started
            with lock:
                seconds, calls = totals.get(label, (0.0, 0))
                totals[label] = (seconds + spent, calls + 1)
    return timed


def install(totals: dict) -> None:
    """Wrap each step of ``STEPS`` (on its class, or in its module for a function its
    module's own code calls by name)."""
    import importlib

    lock = threading.Lock()
    for module_name, path, label in STEPS:
        owner = importlib.import_module(module_name)
        *outer, name = path.split(".")
        for part in outer:
            owner = getattr(owner, part)
        setattr(owner, name, _timed(getattr(owner, name), label, totals, lock))


def main() -> None:
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emailapi.settings")
    import django

    django.setup()
    totals: dict = {}
    install(totals)

    def write() -> None:
        with open(os.environ["BENCH_PHASES_OUT"], "w", encoding="utf-8") as fh:
            json.dump({label: totals.get(label, (0.0, 0)) for _, _, label in STEPS}, fh)

    atexit.register(write)
    from django.core.management import execute_from_command_line

    execute_from_command_line(["manage.py", *sys.argv[1:]])


if __name__ == "__main__":
    main()
