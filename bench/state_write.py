"""What a worker's fenced state write costs: the state alone in one UPDATE that carries the
holder check (``holders.Fence.condition``) against the same write in a transaction of its own
(BEGIN, the check locking the holder row, the UPDATE, COMMIT), which is how a fence given as a
plain callable is still run.

A worker records each account's state as it connects (``connected``, ``syncing``...): a
failover or a restart does it thousands of times, on a machine whose two cores are the
reconnects' budget. Per write: wall time, this process's CPU and its PostgreSQL backend's,
the two ways alternating (``--rounds``) on a throwaway database.

    .venv/bin/python bench/state_write.py [--writes 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import _engine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writes", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with _engine.throwaway_database(f"bench_state_{os.getpid()}", redis_db=6):
        _engine.setup_django()
        from django.db import connection

        from accounts import state as account_state
        from accounts.models import EmailAccount, Tenant
        from mailboxes.worker import holders

        tenant = Tenant.objects.create(name="state")
        account = EmailAccount.objects.create(tenant=tenant, account_id="state")
        holders.beat("w1", 3600)
        holders.claim("w1", [account.pk])
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend = cursor.fetchone()[0]
        fence = holders.Fence("w1", account.pk)
        ways = {
            "one statement": lambda: fence,
            "transaction": lambda: (lambda: fence()),  # a plain callable: the old way
        }
        states = (EmailAccount.State.CONNECTING, EmailAccount.State.CONNECTED)
        for round_ in range(args.rounds):
            for name, make in ways.items():
                way_fence = make()
                wall, cpu, db = time.perf_counter(), time.process_time(), _engine.own_cpu(backend)
                for number in range(args.writes):
                    assert account_state.set_state(account, states[number % 2], fence=way_fence)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                db = sum(_engine.own_cpu(backend)) - sum(db)
                print(f"round {round_ + 1} {name:14s} per write: {wall / args.writes * 1e3:.3f} ms "
                      f"wall, {cpu / args.writes * 1e3:.3f} ms this process, "
                      f"{db / args.writes * 1e3:.3f} ms PostgreSQL", flush=True)


if __name__ == "__main__":
    main()
