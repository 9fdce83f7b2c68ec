"""What one reconnect costs, and who pays it: restarts of one worker against a held rig.

The failover goal (issue 19: a killed worker's accounts connected again by the others
within the lease TTL + 30 s) is a reconnect rate, and on a 2-core machine that shares its
cores with Dovecot and PostgreSQL a rate is a CPU budget: 5,000 accounts in 30 s leaves
12 ms of the whole machine per account. This measures where those milliseconds go.

``bench/worker_scale.py --hold FILE`` builds the rig (Dovecot with imap-hibernate, N
accounts registered and indexed, no worker running) and waits; this script then starts
one ``manage.py imapworker`` per variant, waits until every account is ``connected`` by it,
and reports per account: the worker's user and system CPU, Dovecot's (its process tree,
processes that ended during the restart included: the master's reaped children), and
PostgreSQL's, and the whole machine's busy time (``/proc/stat``), then stops the worker and
waits for Dovecot's ``imap`` processes to settle before the next one. Variants alternate
(``--repeat``), so a change and its baseline see the same machine.

    .venv/bin/python bench/worker_scale.py --accounts 2000 --rounds 0 --no-baseline \\
        --seed-workers 2 --connects-per-second 1000 --hold /tmp/rig.json &
    git worktree add /tmp/base HEAD~1
    .venv/bin/python bench/restart_cost.py /tmp/rig.json --variant base@/tmp/base: \\
        --variant change: --repeat 2
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import _engine  # noqa: E402


def imap_processes(dovecot: int) -> int:
    procs = _engine.processes()
    return sum(1 for pid in _engine.process_tree(dovecot, procs)
               if procs.get(pid, ("",))[0] == "imap")


def connected(worker_id: str, since) -> int:
    from accounts.models import EmailAccount

    return EmailAccount.objects.filter(
        state=EmailAccount.State.CONNECTED, state_changed_at__gte=since,
        holder__worker_id=worker_id, holder__released_at__isnull=True).count()


def restart(rig: dict, name: str, root: str, env: dict[str, str], extra: list[str], n: int,
            run: int, linger: float = 0.0, phases: bool = False) -> dict:
    from django.utils import timezone

    dovecot = rig["dovecot_pid"]
    limit = max(20, n // 100)
    _engine.wait_for(lambda: imap_processes(dovecot) <= limit, timeout=600, interval=1.0,
                     what="Dovecot's imap processes to settle")
    time.sleep(2.0)
    worker_id = f"cost-{name}-{run}"
    postmaster = _engine.postmaster_pid()
    since = timezone.now()
    cpu = _engine.tree_cpu
    d0, p0, (m0, s0) = cpu(dovecot), cpu(postmaster), _engine.machine_times()
    started = time.perf_counter()
    program = ["manage.py"]
    if phases:  # the same worker, its steps timed (bench/_phase_worker.py)
        program = [str(ROOT / "bench" / "_phase_worker.py")]
        env = {**env, "BENCH_PHASE_ROOT": str(Path(root).resolve()),
               "BENCH_PHASES_OUT": str(Path(tempfile.gettempdir()) / f"{worker_id}.json")}
    proc = subprocess.Popen(
        [sys.executable, *program, "imapworker", "--worker-id", worker_id, *extra],
        cwd=root, env={**os.environ, **rig["env"], **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        while connected(worker_id, since) < n:
            if proc.poll() is not None:
                raise RuntimeError(f"worker {worker_id} exited ({proc.returncode})")
            if time.perf_counter() - started > 1800:
                raise TimeoutError(f"{worker_id}: not all connected in 30 minutes")
            time.sleep(0.25)
        took = time.perf_counter() - started
        user, system = _engine.own_cpu(proc.pid)
        m1, s1 = _engine.machine_times()
        figures = {"variant": name, "s": took, "worker_user": user, "worker_sys": system,
                   "dovecot": cpu(dovecot) - d0, "postgres": cpu(postmaster) - p0,
                   "machine": m1 - m0, "stolen": (s1 - s0) / took,
                   "load": os.getloadavg()[0]}
        if linger:
            # What follows the reconnects (hibernations, and whatever a variant put off), by
            # the whole machine's time: the same window for every variant.
            m1 = _engine.machine_busy()
            time.sleep(linger)
            figures["after"], figures["linger"] = _engine.machine_busy() - m1, linger
    finally:
        _engine.stop_group(proc, signal.SIGTERM, 120)
    if phases:
        # Written as the worker exits: its stop (logging every session out) is in the main
        # loop's figure, not in the reconnect's steps.
        with open(env["BENCH_PHASES_OUT"], encoding="utf-8") as fh:
            figures["phases"] = json.load(fh)
        os.remove(env["BENCH_PHASES_OUT"])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rig", help="the file bench/worker_scale.py --hold wrote")
    parser.add_argument("--variant", action="append", default=[],
                        metavar="NAME[@TREE]:K=V,K=V[--ARGS]",
                        help="a worker to restart with (repeatable): its environment, after "
                             "'--' its own arguments, and after '@' another checkout to run "
                             "it from (a baseline: `git worktree add DIR COMMIT`)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--linger", type=float, default=0.0, metavar="S",
                        help="keep each worker S seconds after all are connected and report "
                             "the whole machine's CPU in that window per account (work a "
                             "variant puts off until after its reconnects)")
    parser.add_argument("--phases", action="store_true",
                        help="run each worker through bench/_phase_worker.py and report the "
                             "CPU of each step of a reconnect, by the thread that ran it")
    parser.add_argument("--release", action="store_true",
                        help="delete the rig file at the end (worker_scale.py goes on)")
    args = parser.parse_args()
    with open(args.rig, encoding="utf-8") as fh:
        rig = json.load(fh)
    os.environ.update(rig["env"])
    _engine.setup_django()
    from accounts.models import EmailAccount

    n = EmailAccount.objects.count()
    variants = []
    for spec in args.variant or ["default:"]:
        name, _, rest = spec.partition(":")
        name, _, root = name.partition("@")
        settings_, _, extra = rest.partition("--")
        env = dict(kv.split("=", 1) for kv in settings_.split(",") if kv.strip())
        variants.append((name, root or rig["root"], env, extra.split()))
    rows = []
    for run in range(args.repeat):
        for name, root, env, extra in variants:
            row = restart(rig, name, root, env, extra, n, run, args.linger, args.phases)
            rows.append(row)
            print(_line(row, n), flush=True)
            for label, (seconds, calls) in row.get("phases", {}).items():
                print(f"    {label:<30} {seconds * 1000 / n:6.3f} ms per account "
                      f"({calls} calls)", flush=True)
    print(f"\n{n} accounts; CPU in ms per account (machine: all cores busy, every process; "
          "stolen: cores the hypervisor took meanwhile, not counted as busy)")
    for row in rows:
        print(_line(row, n))
    if args.release:
        os.remove(args.rig)


def _line(row: dict, n: int) -> str:
    per = 1000 / n
    return (f"{row['variant']:>14}: {row['s']:6.1f} s ({n / row['s']:5.1f}/s)  worker "
            f"{row['worker_user'] * per:5.1f} user + {row['worker_sys'] * per:5.1f} sys  "
            f"dovecot {row['dovecot'] * per:5.1f}  postgres {row['postgres'] * per:5.1f}  "
            f"machine {row['machine'] * per:5.1f}  load {row['load']:.1f}  "
            f"stolen {row['stolen']:.2f} cores"
            + (f"  then {row['after'] * per:5.1f} in the next {row['linger']:.0f} s" if "after" in row
               else ""))


if __name__ == "__main__":
    main()
