"""``manage.py`` with tracemalloc on, for ``bench/worker_scale.py --trace-worker``: the
Python-side share of a worker's memory per account, by the lines that allocated it.

A snapshot is taken once Django and the worker's modules are loaded (before any account);
SIGUSR1 writes the difference to the snapshot then into ``BENCH_TRACE_OUT`` (JSON: total
bytes and blocks, and the top lines). tracemalloc's own bookkeeping (tens of bytes per block)
inflates the process's RSS: a traced worker's RSS is not the figure to quote.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    tracemalloc.start(int(os.environ.get("BENCH_TRACE_FRAMES", "1")))
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emailapi.settings")
    import django

    django.setup()
    import mailboxes.management.commands.imapworker  # noqa: F401 - loaded before the snapshot
    import mailboxes.worker.imap_worker  # noqa: F401

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
    from django.core.management import execute_from_command_line

    execute_from_command_line(["manage.py", *sys.argv[1:]])


if __name__ == "__main__":
    main()
