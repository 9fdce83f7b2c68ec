"""API request throughput through the real web server, against its own floor.

Starts ``manage.py serve --no-workers`` (daphne) on PostgreSQL (database ``emailapi_bench``,
recreated each run) with one tenant holding 1,000 registered mailboxes, then drives each route
with C keep-alive clients for a fixed time and reports requests/s, p50 and p99. The floor is
``GET /health`` (one ``SELECT 1`` and one Redis ``PING``, no authentication) in the same run, so
the ratios show what token authentication, tenant scoping and serialization cost.

    .venv/bin/python bench/api_requests.py [--seconds 5] [--clients 8]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB = "emailapi_bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def recreate_database() -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")


def seed(accounts: int) -> str:
    import django

    django.setup()
    from django.core.management import call_command

    from accounts import services

    call_command("migrate", verbosity=0)
    tenant = services.create_tenant("Bench")
    _, token = services.issue_token(tenant, "bench", ["api"])
    for index in range(accounts):
        services.register_account(tenant, {
            "account": f"box-{index:05d}", "name": f"Box {index}", "email": f"b{index}@example.com",
            "imap": {"host": "imap.example.com", "port": 993, "secure": True,
                     "auth": {"user": f"b{index}@example.com", "pass": "secret"}},
        })
    return token


def drive(port: int, path: str, token: str | None, seconds: float, clients: int) -> dict:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    def client() -> None:
        nonlocal errors
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine, bad = [], 0
        while time.monotonic() < deadline:
            started = time.perf_counter()
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            mine.append(time.perf_counter() - started)
            bad += response.status != 200
        conn.close()
        with lock:
            latencies.extend(mine)
            errors += bad

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    latencies.sort()
    return {"path": path, "requests": len(latencies), "errors": errors,
            "rps": len(latencies) / elapsed,
            "p50_ms": statistics.median(latencies) * 1000,
            "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--accounts", type=int, default=1000)
    args = parser.parse_args()

    os.environ.update(DATABASE_URL=f"{PG}/{DB}", DJANGO_SETTINGS_MODULE="emailapi.settings",
                      EMAILAPI_SECRET=os.environ.get("EMAILAPI_SECRET", "bench-secret-0123456789"),
                      EMAILAPI_RATE_LIMIT="0", LOG_LEVEL="WARNING",
                      # seeding registers made-up hosts: no DNS lookup per mailbox
                      EMAILAPI_MAIL_ALLOW_PRIVATE="true")
    recreate_database()
    token = seed(args.accounts)
    port = free_port()
    server = subprocess.Popen([sys.executable, "manage.py", "serve", "--no-workers",
                               "--port", str(port)], cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        routes = [("/health", None), ("/v1/accounts?pageSize=20", token),
                  ("/v1/accounts?pageSize=100&page=5", token), ("/v1/account/box-00500", token)]
        drive(port, "/health", None, 1.0, args.clients)  # warm-up
        results = [drive(port, path, tok, args.seconds, args.clients) for path, tok in routes]
    finally:
        os.killpg(server.pid, signal.SIGINT)
        server.wait(timeout=30)
    floor = results[0]["rps"]
    print(f"{'route':40} {'req/s':>8} {'x floor':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for row in results:
        print(f"{row['path']:40} {row['rps']:8.0f} {row['rps'] / floor:8.2f} "
              f"{row['p50_ms']:8.1f} {row['p99_ms']:8.1f} {row['errors']:7d}")
    print(json.dumps({"clients": args.clients, "seconds": args.seconds,
                      "accounts": args.accounts, "results": results}))


if __name__ == "__main__":
    main()
