"""CPU the request-metrics middleware (``emailapi/api/request_metrics.py``) adds per request,
against its floor in the same run.

The floor is the async middleware chain without it: an ``await`` of a view stand-in that
returns a ready response. The measured chain is the same with ``request_metrics`` in front
(two clock reads, the labels' child looked up, one histogram ``observe``, the pool check),
on a request resolved to a real ``/v1`` route. Both run in-process (one process, as under
``make test``) and in ``prometheus_client``'s multiprocess mode (``serve``: the histogram is
an mmap'ed file), each in a child process started with the right environment, N requests
each, best of 5 rounds (the machine is shared: the best round is the least disturbed).

    .venv/bin/python bench/metrics_middleware.py [--requests 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(requests: int) -> dict:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emailapi.settings")
    os.environ.setdefault("EMAILAPI_SECRET", "bench-secret-0123456789abcdef")
    import django

    django.setup()
    from django.http import HttpResponse
    from django.test import RequestFactory
    from django.urls import resolve

    from emailapi.api.request_metrics import request_metrics

    response = HttpResponse(b"{}", content_type="application/json")

    async def view(request):
        return response

    request = RequestFactory().get("/v1/account/box/messages")
    request.resolver_match = resolve("/v1/account/box/messages")
    timed = request_metrics(view)

    async def run(chain) -> float:
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(requests):
                await chain(request)
            best = min(best, time.perf_counter() - started)
        return best / requests

    async def both():
        return await run(view), await run(timed)

    floor, with_metrics = asyncio.run(both())
    return {"floor_us": floor * 1e6, "with_us": with_metrics * 1e6,
            "added_us": (with_metrics - floor) * 1e6}


def child(mode: str, requests: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    with tempfile.TemporaryDirectory() as shared:
        if mode == "multiprocess":
            env["PROMETHEUS_MULTIPROC_DIR"] = shared
        out = subprocess.run([sys.executable, __file__, "--child", "--requests", str(requests)],
                             env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.requests)))
        return
    print(f"request-metrics middleware, {args.requests} requests per round, best of 5")
    print(f"{'mode':<14}{'floor us/req':>14}{'with us/req':>14}{'added us/req':>14}")
    for mode in ("in-process", "multiprocess"):
        figures = child(mode, args.requests)
        print(f"{mode:<14}{figures['floor_us']:>14.2f}{figures['with_us']:>14.2f}"
              f"{figures['added_us']:>14.2f}")


if __name__ == "__main__":
    main()
