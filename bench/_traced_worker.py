"""``manage.py`` with tracemalloc on, for ``bench/worker_scale.py --trace-worker``: the
Python-side share of a worker's memory per account, by the lines that allocated it.

A snapshot is taken once Django and the worker's modules are loaded (before any account);
SIGUSR1 writes the difference to the snapshot then into ``BENCH_TRACE_OUT`` (JSON: total
bytes and blocks, and the top lines). tracemalloc's own bookkeeping (tens of bytes per block)
inflates the process's RSS: a traced worker's RSS is not the figure to quote.

``BENCH_TRACE_FRAMES=0`` runs without tracemalloc (the RSS is then the worker's own), and
SIGUSR2 writes where the heap is into ``BENCH_HEAP_OUT`` (JSON): glibc's ``mallinfo2`` (bytes
in use, free inside its arenas, and in big blocks of their own) and pymalloc's own accounting
(``sys._debugmallocstats``: bytes in objects, in free blocks of used pools, in empty pools of
arenas it keeps), so a worker's RSS can be split into what is live and what is slack; and the
modules loaded by then.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import tempfile
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def heap_report() -> dict:
    """glibc's and pymalloc's accounts of the heap, in bytes."""
    from bench import _engine  # ROOT is on the path by now (``main``)

    out: dict = _engine.mallinfo2()
    # sys._debugmallocstats writes to the C stderr: lend it a file for the call.
    with tempfile.TemporaryFile() as fh:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(fh.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        fh.seek(0)
        text = fh.read().decode("ascii", "replace")
    for label, key in (("bytes in allocated blocks", "py_allocated"),
                       ("bytes in available blocks", "py_available"),
                       ("bytes lost to pool headers", "py_pool_headers"),
                       ("bytes lost to quantization", "py_quantization"),
                       ("bytes lost to arena alignment", "py_arena_alignment"),
                       ("arenas allocated current", "py_arenas")):
        found = re.search(r"# " + re.escape(label) + r"\s*=\s*([\d,]+)", text)
        if found:
            out[key] = int(found.group(1).replace(",", ""))
    unused = re.search(r"\d+ unused pools \* \d+ bytes\s*=\s*([\d,]+)", text)
    out["py_unused_pools"] = int(unused.group(1).replace(",", "")) if unused else 0
    out["modules"] = sorted(sys.modules)
    out["connections"] = _connections()
    return out


def _connections() -> dict:
    """The engine's IMAP connections alive, and how many hold a read buffer (an idling one
    should not: ``park_reader``)."""
    import gc

    from mailboxes.imap import client

    frozen = gc.get_freeze_count()
    gc.unfreeze()  # frozen objects are not in get_objects(); frozen again below
    try:
        objects = gc.get_objects()
        conns = [o for o in objects if type(o).__name__ == "_PhasedIMAP4"]
        readers = sum(type(o).__name__ == "BufferedReader" for o in objects)
    finally:
        if frozen:
            gc.freeze()
    held = [c for c in conns if c.__dict__.get("_file") not in (None, client._PARKED)]
    return {"alive": len(conns), "holding_a_reader": len(held), "buffered_readers": readers}


def main() -> None:
    frames = int(os.environ.get("BENCH_TRACE_FRAMES", "1"))
    if frames:
        tracemalloc.start(frames)
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emailapi.settings")
    import django

    django.setup()
    import mailboxes.management.commands.imapworker  # noqa: F401 - loaded before the snapshot
    import mailboxes.worker.imap_worker  # noqa: F401

    def heap(*_) -> None:
        with open(os.environ["BENCH_HEAP_OUT"], "w", encoding="utf-8") as fh:
            json.dump(heap_report(), fh)

    signal.signal(signal.SIGUSR2, heap)
    if not frames:
        _run()
        return
    first = tracemalloc.take_snapshot()
    out = os.environ["BENCH_TRACE_OUT"]

    def dump(*_) -> None:
        stats = tracemalloc.take_snapshot().compare_to(first, "lineno")
        by_file: dict[str, int] = {}
        for s in stats:
            name = s.traceback[0].filename
            by_file[name] = by_file.get(name, 0) + s.size_diff
        with open(out, "w", encoding="utf-8") as fh:
            json.dump({"size": sum(s.size_diff for s in stats),
                       "count": sum(s.count_diff for s in stats),
                       "lines": [(f"{s.traceback[0].filename}:{s.traceback[0].lineno}",
                                  s.size_diff, s.count_diff) for s in stats[:60]],
                       "files": sorted(by_file.items(), key=lambda kv: -kv[1])[:30]}, fh)

    signal.signal(signal.SIGUSR1, dump)
    _run()


def _run() -> None:
    from django.core.management import execute_from_command_line

    execute_from_command_line(["manage.py", *sys.argv[1:]])


if __name__ == "__main__":
    main()
