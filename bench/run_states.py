"""Which of a pipeline's processes can run, sampled: where a first index loses the overlap of
its stages on a machine of few cores.

A first index is three processes working on one stream: Dovecot sends the FETCH answers, the
engine's process reads and interprets them on one thread and writes rows on another, and a
PostgreSQL backend inserts them. On two cores, whenever only one of them can run, a core is
idle. CPU seconds per process (what ``bench/first_index.py`` reports) cannot say when that
happens or which thread the others wait for; this samples every thread's scheduler state
(``R`` in ``/proc/<pid>/task/<tid>/stat``: running or waiting for a core) every few
milliseconds and counts each combination, and per thread of the measured process how often it
could run, and how often it was the only thing that could.

Run it as its own process (sampling from a thread of the measured process would take the
interpreter's lock from the threads it measures): ``bench/first_index.py --run-states`` starts
it for the engine's run. Standalone, until SIGTERM or ``--seconds``:

    .venv/bin/python bench/run_states.py --pid PID --comm imap --comm imap-login \
        --comm postgres --out FILE

Each ``--comm`` names processes (by their command name) that are counted as one kind, found
again every second (Dovecot's ``imap`` and ``imap-login`` processes, PostgreSQL's
backends); the threads of ``--pid`` count as ``ours``. JSON written to ``--out`` (or
printed): ``samples``; ``combos``, how many samples had at least one runnable thread of each
kind named and none of the others (``"imap+ours"``; ``ours`` counts threads, so ``ours*2``
is two of them); ``threads``, tid: ``[runnable, alone]`` sample counts.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _engine  # noqa: E402


def _runnable(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            stat = fh.read()
    except OSError:
        return False
    return stat[stat.rindex(b")") + 2:stat.rindex(b")") + 3] == b"R"


def sample(pid: int, comms: set[str], interval: float, seconds: float | None,
           stopping: list | None = None) -> dict:
    """Samples until ``seconds`` have passed, the process ends, or ``stopping`` is not
    empty (``main``'s SIGTERM handler appends to it)."""
    stopping = [] if stopping is None else stopping
    combos: Counter = Counter()
    threads: dict[int, list[int]] = {}
    samples = 0
    others: list[tuple[str, int]] = []
    tids: list[int] = []
    refreshed = 0.0
    end = None if seconds is None else time.monotonic() + seconds
    while not stopping and (end is None or time.monotonic() < end):
        now = time.monotonic()
        if now - refreshed >= 1.0:  # new processes and threads: a second is soon enough
            others = [(name, other) for other, (name, _, _) in _engine.processes().items()
                      if name in comms]
            try:
                tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
            except OSError:
                break  # the measured process ended
            refreshed = now
        running = [tid for tid in tids if _runnable(f"/proc/{pid}/task/{tid}/stat")]
        kinds = Counter(kind for kind, other in others if _runnable(f"/proc/{other}/stat"))
        if running:
            kinds["ours"] = len(running)
        combos["+".join(f"{kind}*{n}" if n > 1 and kind == "ours" else kind
                        for kind, n in sorted(kinds.items())) or "none"] += 1
        for tid in running:
            counts = threads.setdefault(tid, [0, 0])
            counts[0] += 1
            counts[1] += len(running) == 1 and len(kinds) == 1
        samples += 1
        time.sleep(interval)
    return {"samples": samples, "combos": dict(combos), "threads": threads}


def summary(states: dict, names: dict[int, str]) -> list[str]:
    """Lines for a report: the commonest combinations, then the measured process's threads
    that could run most (named where the caller knows the native id's thread)."""
    total = states["samples"] or 1
    lines = [f"  {100 * n / total:5.1f} %  {combo}"
             for combo, n in sorted(states["combos"].items(), key=lambda item: -item[1])[:10]]
    by_name: dict[str, list[int]] = {}
    for tid, (running, alone) in states["threads"].items():
        counts = by_name.setdefault(names.get(int(tid), "a thread that ended"), [0, 0])
        counts[0] += running
        counts[1] += alone
    for name, (running, alone) in sorted(by_name.items(), key=lambda item: -item[1][0])[:6]:
        lines.append(f"  thread {name}: could run {100 * running / total:.1f} % of the samples, "
                     f"the only thing that could {100 * alone / total:.1f} %")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pid", type=int, required=True, help="the measured process")
    parser.add_argument("--comm", action="append", default=[],
                        help="command name of other processes to count (repeat)")
    parser.add_argument("--interval", type=float, default=0.005)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    stopping: list = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    states = sample(args.pid, set(args.comm), args.interval, args.seconds, stopping)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(states, fh)
    else:
        json.dump(states, sys.stdout)


if __name__ == "__main__":
    main()
