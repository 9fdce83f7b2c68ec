"""First index of a big INBOX on PostgreSQL: the engine against imapclient and the raw socket.

Starts a private Dovecot (``tests.servers.dovecot``), fills one INBOX with N varied, realistic
messages (``bench/imap_fetch.py``'s MULTIAPPEND ``fill``, in a forked child so its message
bytes never count in this process's memory), makes one raw pass over the folder so Dovecot's
cache is equally warm for everyone, then in the same run measures:

* ours:  a fresh throwaway PostgreSQL database (``bench_engine_<pid>``, migrated, dropped at
         the end) and Redis DB 7 (flushed; ``--redis-db``). An ``ImapWorker`` already runs in a thread of this
         process, idle (as in production). The clock starts before
         ``accounts.services.register_account`` and stops when, polling the database:
         - first page: the 20 highest UIDs of INBOX are rows of ``Message`` (listable);
         - connected:  the account's state is ``connected`` (the engine enters IDLE only
                       after the first sync is complete, so this comes after the whole index);
         - whole:      all N rows are indexed and ``accountInitialized`` is in the outbox;
         - statistics: the message table's planner statistics are refreshed (the worker's
                       ANALYZE, or VACUUM ANALYZE, of ``index_upkeep``: after ``whole``,
                       since the index is complete and listable without it).
         The poll runs every ``--poll`` s (default 5 ms) until the first page, then every 20 ms
         (each poll is one or two indexed queries, ~1 ms; the figures are upper bounds by that
         much). Peak RSS of this process (which hosts the worker thread, Django and the poller)
         is read from VmHWM after resetting it just before registration.
* floor 1, imapclient: connect, log in, SELECT, SEARCH, then ``client.fetch(batch, [UID FLAGS
         INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE])`` over the whole folder in batches of
         ``--batch`` UIDs (default 1,000, the engine's batch);
* floor 2, raw:  the same commands (``UID FETCH <set> (UID FLAGS INTERNALDATE RFC822.SIZE
         ENVELOPE BODYSTRUCTURE)``) over a bare socket, reading whole answers without parsing
         (``imap_fetch.RawImap``).

The engine connects with ``secure: false`` and upgrades with STARTTLS (Dovecot offers it), so
each floor is run both over STARTTLS (the same transport; the headline ratios use these) and
plain. Floors are the best of ``--rounds``; ours is one run (it is a *first* index). One more
raw row fetches exactly the items the engine asks for (``fetch.meta_items``: header fields
in place of the ENVELOPE, and MODSEQ) to show what they cost the server.

``--run-states`` samples, from another process, which of ours' processes and threads could
run from the registration to ``whole`` (``bench/run_states.py``): where the stages' overlap is
lost on a machine of few cores.

Targets printed alongside: first page <= 1 s; whole <= 1.0x imapclient; moonshot <= 10x raw;
with ``--messages 100000``: peak RSS < 300 MB.

    .venv/bin/python bench/first_index.py [--messages 10000] [--batch 1000] [--rounds 3]
    .venv/bin/python bench/first_index.py --messages 100000     # the big one (~4 min)
"""

from __future__ import annotations

import argparse
import gc
import imaplib
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from imapclient.imapclient import join_message_ids  # noqa: E402

from bench import _engine, run_states  # noqa: E402
from bench.imap_fetch import CLASSIC_ITEMS, RawImap, batches, connect  # noqa: E402
from mailboxes.imap import fetch  # noqa: E402
from mailboxes.imap.client import MAX_LINE, tls_context  # noqa: E402
from tests.servers.dovecot import Dovecot, MailUser  # noqa: E402

REDIS_DB = 7
FIRST_PAGE = 20
READ_TIMEOUT = 300  # seconds a big folder's IMAP read may wait, ours and the floor's
CLASSIC = " ".join(CLASSIC_ITEMS)


# -- floors --------------------------------------------------------------------------------


class RawStartTls(RawImap):
    """``RawImap`` upgraded with STARTTLS before login, as the engine's connections are."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext):
        super().__init__(host, port)
        self.command(b"STARTTLS")
        self.sock = context.wrap_socket(self.sock, server_hostname=host)


def raw_pass(user: MailUser, uid_sets: list[str], items: str, tls: bool) -> int:
    """Connect, log in, EXAMINE, SEARCH, fetch every batch unparsed; returns bytes read."""
    raw = (RawStartTls(user.host, user.imap_port, tls_context(False)) if tls
           else RawImap(user.host, user.imap_port))
    raw.login(user)
    raw.command(b"EXAMINE INBOX")
    total = len(raw.command(b"UID SEARCH ALL"))
    for uid_set in uid_sets:
        total += len(raw.command(f"UID FETCH {uid_set} ({items})".encode()))
    raw.close()
    return total


def imapclient_pass(user: MailUser, batch: int, tls: bool) -> int:
    """Connect, log in, SELECT, SEARCH, ``fetch`` every batch; returns messages fetched."""
    if tls:
        # A maildir of 1,000,000 messages: a session's first FETCH waited ~20 s (Dovecot
        # reading its 41 MB uidlist) before its first byte.
        client = user.imap_client(starttls=True, timeout=READ_TIMEOUT)
        client.normalise_times = False
        client.select_folder("INBOX", readonly=True)
    else:
        client = connect(user)
    # imaplib refuses lines over 1,000,000 bytes, and SEARCH ALL's answer at 1,000,000
    # messages is 6.9 MB: a plain imapclient program must raise that limit, as ours does.
    imaplib._MAXLINE = max(imaplib._MAXLINE, MAX_LINE)
    uids = client.search("ALL")
    count = sum(len(client.fetch(group, CLASSIC_ITEMS)) for group in batches(uids, batch))
    client.logout()
    return count


def measure_floors(user: MailUser, uids: list[int], batch: int, rounds: int,
                   engine_items: str, dovecot: int, all_floors: bool = True,
                   raw_floor: bool = True) -> dict[str, float]:
    uid_sets = [join_message_ids(group).decode() for group in batches(uids, batch)]
    runs = {
        "imapclient (STARTTLS)": lambda: imapclient_pass(user, batch, tls=True),
        "raw (STARTTLS)": lambda: raw_pass(user, uid_sets, CLASSIC, tls=True),
        "imapclient (plain)": lambda: imapclient_pass(user, batch, tls=False),
        "raw (plain)": lambda: raw_pass(user, uid_sets, CLASSIC, tls=False),
        "raw, engine's items (STARTTLS)": lambda: raw_pass(user, uid_sets, engine_items, True),
    }
    if not all_floors:  # the headline pair only (a 1,000,000-message pass takes minutes)
        runs = {name: run for name, run in runs.items() if name.endswith("(STARTTLS)")
                and not name.startswith("raw, ")}
    if not raw_floor:
        runs = {name: run for name, run in runs.items() if not name.startswith("raw")}
    best = {name: float("inf") for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            gc.collect()
            server_cpu = _engine.tree_cpu(dovecot)
            started, cpu = time.perf_counter(), time.process_time()
            result = run()
            elapsed = time.perf_counter() - started
            if elapsed < best[name]:  # the best round's CPU, this process's and Dovecot's
                best[f"cpu: {name}"] = time.process_time() - cpu
                best[f"dovecot cpu: {name}"] = _engine.tree_cpu(dovecot) - server_cpu
            best[name] = min(best[name], elapsed)
            if name.startswith("imapclient") and result != len(uids):
                raise AssertionError(f"{name} fetched {result} messages, expected {len(uids)}")
    return best


# -- ours ----------------------------------------------------------------------------------


class RssSampler(threading.Thread):
    """Samples this process's VmRSS every 50 ms (VmHWM gives the true peak; this gives when),
    and with ``names`` notes the name of each thread by its native id (for ``--run-states``:
    the worker's history threads come and go with each slice of history)."""

    def __init__(self, names: bool = False):
        super().__init__(daemon=True)
        self.done = threading.Event()
        self.samples: list[tuple[float, int]] = []
        self.names = names
        self.thread_names: dict[int, str] = {}

    def run(self) -> None:
        while not self.done.wait(0.05):
            self.samples.append((time.perf_counter(), _engine.status_kib("VmRSS")))
            if self.names:
                self.thread_names.update((thread.native_id, thread.name)
                                         for thread in threading.enumerate())


def run_ours(user: MailUser, expected: int, top_uids: list[int], poll: float,
             pool_size: int | None, timeout: float, dovecot: int,
             sample_states: bool = False) -> dict[str, float]:
    from django.db.models import Max

    from accounts import services
    from accounts.models import EmailAccount
    from mailboxes.models import Message
    from mailboxes.worker.imap_worker import ImapWorker
    from webhooks.models import Event

    tenant = services.create_tenant("Bench first index")
    worker = ImapWorker(worker_id="bench-first-index", pool_size=pool_size)
    thread = threading.Thread(target=worker.run, name="imapworker", daemon=True)
    thread.start()
    # The worker is idle and listening for "added" before the clock starts (as in production).
    _engine.wait_for_subscriber()
    time.sleep(0.2)
    imap_settings = user.imap_settings(secure=False)
    imap_settings["tls"] = {"rejectUnauthorized": False}
    gc.collect()
    figures: dict[str, float] = {"rss_before_mib": _engine.reset_peak_rss() / 1024}
    sampler = RssSampler(names=sample_states)
    sampler.start()
    marks: dict[str, float] = {}
    backends_before = backend_cpu()
    dovecot_before = _engine.tree_cpu(dovecot)
    states = RunStates() if sample_states else None
    cpu_started = time.process_time()
    started = time.perf_counter()
    account = services.register_account(tenant, {"account": "bench", "imap": imap_settings})
    marks["registered"] = time.perf_counter()
    inbox = Message.objects.filter(folder__email_account=account, folder__path="INBOX")
    try:
        deadline = started + timeout
        poll_cpu = 0.0  # this thread's own CPU, polling: not the engine's
        while len(marks) < 5:
            poll_started = time.thread_time()
            if time.perf_counter() > deadline:
                raise TimeoutError(f"first index not done after {timeout:.0f} s: {marks}")
            if "first page" not in marks:
                if inbox.filter(uid__in=top_uids).count() == len(top_uids):
                    marks["first page"] = time.perf_counter()
            if "connected" not in marks:
                state = EmailAccount.objects.filter(pk=account.pk).values_list("state", flat=True)
                if state[0] == EmailAccount.State.CONNECTED:
                    marks["connected"] = time.perf_counter()
            if "whole" not in marks and "first page" in marks:
                # The cheap indexed look-up first: counting N rows every 20 ms would load
                # the 2-core machine the engine runs on.
                if Event.objects.filter(account_id=account.account_id,
                                        event="accountInitialized").exists() \
                        and inbox.count() >= expected:
                    marks["whole"] = time.perf_counter()
                    figures["cpu_whole"] = time.process_time() - cpu_started
                    figures["poll_cpu_whole"] = poll_cpu + time.thread_time() - poll_started
                    figures["db_cpu_whole"] = sum(
                        cpu - backends_before.get(pid, 0.0) for pid, cpu in backend_cpu().items())
                    figures["dovecot_cpu_whole"] = _engine.tree_cpu(dovecot) - dovecot_before
                    if states is not None:
                        figures["run_states"] = states.stop()
            if "whole" in marks and "statistics" not in marks and statistics_refreshed():
                marks["statistics"] = time.perf_counter()
            poll_cpu += time.thread_time() - poll_started
            time.sleep(poll if "first page" not in marks else max(poll, 0.02))
    finally:
        if states is not None:
            states.stop()
        sampler.done.set()
        sampler.join()
        figures["peak_rss_mib"] = _engine.status_kib("VmHWM") / 1024
        if "run_states" in figures:
            figures["thread_names"] = sampler.thread_names
        worker.stop.set()
        thread.join(timeout=60)
    figures.update({name: at - started for name, at in marks.items()})
    figures["rss_after_mib"] = _engine.status_kib("VmRSS") / 1024
    top = inbox.aggregate(top=Max("uid"))["top"]
    assert top == top_uids[-1], (top, top_uids[-1])
    if sampler.samples:
        peak_at, _ = max(sampler.samples, key=lambda sample: sample[1])
        figures["peak_at_s"] = peak_at - started
    return figures


class RunStates:
    """``bench/run_states.py`` sampling this process's threads, Dovecot's ``imap`` and
    ``imap-login`` processes and PostgreSQL's, from a process of its own, from now until
    ``stop``."""

    def __init__(self):
        self.out = os.path.join(tempfile.mkdtemp(prefix="bench-run-states-"), "states.json")
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "run_states.py"), "--pid", str(os.getpid()),
             "--comm", "imap", "--comm", "imap-login", "--comm", "postgres", "--out", self.out])
        self.states: dict | None = None

    def stop(self) -> dict | None:
        if self.states is None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            with open(self.out, encoding="utf-8") as fh:
                self.states = json.load(fh)
            shutil.rmtree(os.path.dirname(self.out), ignore_errors=True)
        return self.states


def backend_cpu() -> dict[int, float]:
    """CPU seconds (user + system) of each PostgreSQL backend serving this database now
    (``/proc``: the server runs on this machine). Backends that end before the next look are
    missed, so the database's share is a lower bound."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                       " AND pid <> pg_backend_pid()")
        pids = [row[0] for row in cursor.fetchall()]
    ticks = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
                fields = fh.read().rpartition(")")[2].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return out


def statistics_refreshed() -> bool:
    """Whether the message table has been (VACUUM) ANALYZEd in this throwaway database."""
    from django.db import connection

    from mailboxes.models import Message

    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(last_vacuum, last_analyze) IS NOT NULL"
                       " FROM pg_stat_user_tables WHERE relname = %s",
                       [Message._meta.db_table])
        row = cursor.fetchone()
    return bool(row and row[0])


# -- afterwards: what the index costs in PostgreSQL, and its deepest pages ------------------


def postgres_sizing() -> dict[str, float]:
    """Bytes per indexed message: the message table with its indexes and TOAST
    (``pg_total_relation_size``), and every table of the database together."""
    from django.db import connection

    from mailboxes.models import Message

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE " + Message._meta.db_table)
        cursor.execute(f"SELECT (SELECT count(*) FROM {Message._meta.db_table}),"
                       " pg_total_relation_size(%s), pg_relation_size(%s),"
                       " pg_indexes_size(%s), pg_database_size(current_database())",
                       [Message._meta.db_table] * 3)
        count, total, heap, indexes, database = cursor.fetchone()
    return {"messages": count, "total": total, "heap": heap, "indexes": indexes,
            "database": database}


def start_web(env: dict[str, str], port: int, timeout: float = 180.0):
    """``manage.py serve --no-workers`` (daphne, one process), waited for as long as a loaded
    machine needs to start it."""
    import http.client
    import subprocess

    process = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--no-workers", "--port", str(port)],
        cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return process
        except OSError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.5)
    process.kill()
    raise RuntimeError("the web server did not start")


def deep_pages(env: dict[str, str], requests: int) -> dict[str, list[float]]:
    """``GET /messages`` through the real web server (daphne, one process): the first page
    (the floor), random pages among the last 10 (``page=N``), and the pages after those by
    ``cursor`` (each ``nextPageCursor`` followed down to the oldest message)."""
    import random
    import subprocess

    from accounts import services
    from accounts.models import Tenant
    from bench.read_api import Http
    from tests.servers.net import find_free_port

    _, token = services.issue_token(Tenant.objects.get(), "bench deep pages", ["api"])
    port = find_free_port()
    web = start_web(env, port)
    base = "/v1/account/bench/messages?path=INBOX&pageSize=20"
    try:
        api = Http(port, token)
        pages = api.call("GET", base)["pages"]
        rng = random.Random(1)

        def timed(path_of) -> list[float]:
            out = []
            for _ in range(requests):
                path = path_of()
                started = time.perf_counter()
                answer = api.call("GET", path)
                out.append((time.perf_counter() - started) * 1000)
                cursors.append(answer.get("nextPageCursor"))
            return out

        cursors: list[str | None] = []
        for _ in range(20):  # warm up
            api.call("GET", base)
            api.call("GET", f"{base}&page={pages - 1}")
        first = timed(lambda: base)
        cursors.clear()
        deep = timed(lambda: f"{base}&page={pages - 1 - rng.randrange(min(10, pages))}")
        starts = [c for c in cursors if c] or [None]
        cursor_at = iter(starts * requests)
        by_cursor = timed(lambda: f"{base}&cursor={next(cursor_at)}")
    finally:
        web.terminate()
        try:
            web.wait(timeout=30)
        except subprocess.TimeoutExpired:  # a loaded machine: do not lose the figures
            web.kill()
            web.wait()
    return {"pages": pages, "first page": first, "deep page=N": deep, "deep cursor": by_cursor}


# -- report --------------------------------------------------------------------------------


def report(args, seeded_s: float, ours: dict[str, float], floors: dict[str, float]) -> None:
    imapclient_tls = floors["imapclient (STARTTLS)"]
    raw_tls = floors.get("raw (STARTTLS)", float("nan"))
    imapclient_plain = floors.get("imapclient (plain)", float("nan"))
    raw_plain = floors.get("raw (plain)", float("nan"))
    whole = ours["whole"]
    print()
    cache = "Dovecot caches nothing" if args.no_dovecot_cache else "Dovecot cache warm"
    print(f"INBOX of {args.messages:,} messages (seeded in {seeded_s:.1f} s, {cache}), "
          f"floors: batches of {args.batch} UIDs, best of {args.rounds}")
    print(f"{'what':<44}{'seconds':>10}{'msg/s':>10}")
    for name, seconds, rate in [
            ("ours: registered", ours["registered"], False),
            ("ours: first page (20 newest listable)", ours["first page"], False),
            ("ours: whole folder + accountInitialized", whole, True),
            ("ours: state connected (IDLE)", ours["connected"], False),
            ("ours: planner statistics refreshed", ours["statistics"], False),
            *((f"floor: {name}", seconds, True) for name, seconds in floors.items()
              if "cpu: " not in name)]:
        per_second = f"{args.messages / seconds:>10.0f}" if rate else ""
        print(f"{name:<44}{seconds:>10.3f}{per_second}")
    print()
    print(f"{'ratio':<44}{'value':>8}   target")
    rows = [
        ("first page, seconds", ours["first page"], "<= 1 s", ours["first page"] <= 1.0),
        ("whole / imapclient (STARTTLS)", whole / imapclient_tls, "<= 0.5x",
         whole <= 0.5 * imapclient_tls),
        ("whole / raw (STARTTLS)", whole / raw_tls, "<= 10x (moonshot)",
         None if raw_tls != raw_tls else whole <= 10 * raw_tls),
        ("whole / imapclient (plain)", whole / imapclient_plain, "", None),
        ("whole / raw (plain)", whole / raw_plain, "", None),
        ("connected / imapclient (STARTTLS)", ours["connected"] / imapclient_tls, "", None),
    ]
    for name, value, target, met in rows:
        verdict = "" if met is None else ("  met" if met else "  MISSED")
        print(f"{name:<44}{value:>8.2f}   {target}{verdict}")
    if "cpu_whole" in ours and "cpu: imapclient (STARTTLS)" in floors:
        # CPU seconds depend far less on what else the machine runs than wall time does.
        floor_cpu = floors["cpu: imapclient (STARTTLS)"]
        engine_cpu = ours["cpu_whole"] - ours["poll_cpu_whole"]
        ours_cpu = engine_cpu + ours["db_cpu_whole"]
        print(f"CPU seconds to whole: ours {engine_cpu:.1f} in this process (less the poller's "
              f"{ours['poll_cpu_whole']:.1f}) + {ours['db_cpu_whole']:.1f} in PostgreSQL = "
              f"{ours_cpu:.1f}; "
              f"imapclient floor {floor_cpu:.1f} (best round); ratio "
              f"{ours_cpu / floor_cpu:.2f}x (Dovecot's CPU in neither)")
        print(f"Dovecot's CPU seconds (its process tree) meanwhile: ours "
              f"{ours['dovecot_cpu_whole']:.1f}, the imapclient floor "
              f"{floors['dovecot cpu: imapclient (STARTTLS)']:.1f}; all three of ours "
              f"{ours_cpu + ours['dovecot_cpu_whole']:.1f} against the floor's two "
              f"{floor_cpu + floors['dovecot cpu: imapclient (STARTTLS)']:.1f}, on "
              f"{os.cpu_count()} cores")
        others = [f"{name[len('dovecot cpu: '):]} {seconds:.2f}" for name, seconds in floors.items()
                  if name.startswith("dovecot cpu: raw")]
        if others:  # what each item list costs the server, without a parser in the way
            print(f"Dovecot's CPU seconds in the raw floors' best rounds: {'; '.join(others)}")
    print()
    peak = ours["peak_rss_mib"]
    print(f"bench process RSS (Django + idle worker + poller) before registering: "
          f"{ours['rss_before_mib']:.0f} MiB")
    print(f"peak RSS while indexing (VmHWM): {peak:.0f} MiB "
          f"(+{peak - ours['rss_before_mib']:.0f} MiB, at ~{ours.get('peak_at_s', 0):.1f} s); "
          f"after: {ours['rss_after_mib']:.0f} MiB   target < 300 MB "
          f"{'met' if peak * 1.048576 < 300 else 'MISSED'}")


def report_after(sizing: dict[str, float], listing: dict | None) -> None:
    count = sizing["messages"]
    print()
    print(f"PostgreSQL after indexing {count:,} messages (VACUUM ANALYZE first): message table "
          f"with indexes and TOAST {sizing['total'] / 2**20:.0f} MiB = "
          f"{sizing['total'] / count:.0f} bytes/message (heap {sizing['heap'] / count:.0f}, "
          f"indexes {sizing['indexes'] / count:.0f}); whole database "
          f"{sizing['database'] / 2**20:.0f} MiB = {sizing['database'] / count:.0f} bytes/message")
    if listing is None:
        return
    print(f"GET /messages (daphne, 1 process, pageSize=20, {listing['pages']:,} pages), ms:")
    print(f"{'which':<28}{'p50':>8}{'p90':>8}{'p99':>8}   target")
    for name in ("first page", "deep page=N", "deep cursor"):
        times = listing[name]
        p50 = _engine.percentile(times, 0.5)
        target = "" if name == "first page" else \
            f"p50 < 10 ms {'met' if p50 < 10 else 'MISSED'}"
        print(f"{name:<28}{p50:>8.2f}{_engine.percentile(times, 0.9):>8.2f}"
              f"{_engine.percentile(times, 0.99):>8.2f}   {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=1000, help="UIDs per FETCH in the floors")
    parser.add_argument("--rounds", type=int, default=None,
                        help="floor rounds, best kept (default 3, or 1 above 20,000 messages)")
    parser.add_argument("--poll", type=float, default=0.005, help="database poll interval, s")
    parser.add_argument("--pool-size", type=int, default=None, help="ImapWorker pool threads")
    parser.add_argument("--timeout", type=float, default=7200.0)
    parser.add_argument("--seed", choices=["append", "maildir"], default=None,
                        help="MULTIAPPEND, or maildir files written straight into Dovecot's "
                             "store (default above 20,000 messages)")
    parser.add_argument("--no-dovecot-cache", action="store_true",
                        help="Dovecot caches nothing (mail_never_cache_fields = *): every "
                             "FETCH parses the message files, for ours and the floors alike "
                             "(needed above ~800,000 messages, see main)")
    parser.add_argument("--no-raw-floor", action="store_true",
                        help="the imapclient floor only (a raw pass over 1,000,000 uncached "
                             "messages takes as long as the imapclient one)")
    parser.add_argument("--all-floors", action="store_true",
                        help="plain-socket floors too (default up to 20,000 messages)")
    parser.add_argument("--profile-only", action="store_true",
                        help="ours only: no floors, no listing (for py-spy)")
    parser.add_argument("--run-states", action="store_true",
                        help="sample which of ours' processes and threads could run (while "
                             "indexing, from another process: bench/run_states.py)")
    parser.add_argument("--requests", type=int, default=200, help="deep-page listings timed")
    parser.add_argument("--redis-db", type=int, default=REDIS_DB,
                        help=f"Redis DB flushed and used by ours (default {REDIS_DB}); parallel "
                             "runs each need their own")
    args = parser.parse_args()
    big = args.messages > 20_000
    if big:  # the floor's read timeout, given to ours too (its default is 120 s)
        os.environ.setdefault("EMAILAPI_IMAP_READ_TIMEOUT", str(READ_TIMEOUT))
    args.rounds = args.rounds or (1 if big else 3)
    args.seed = args.seed or ("maildir" if big else "append")
    args.all_floors = args.all_floors or not big

    # A big folder's index and cache files are mapped into the imap process: Dovecot's
    # default 256 MB address-space limit is too small for 1,000,000 messages. Dovecot's cache
    # file cannot pass 1 GB (mail_cache_max_size), ~1.2 KB a message here: beyond ~800,000
    # messages it is purged again and again (a 1,000-message FETCH then took 10 s instead of
    # 5 ms), so ``--no-dovecot-cache`` has it parse every message from its file for everyone
    # alike, and there is nothing to warm.
    extra = "default_vsz_limit = 4G\n" if big else ""
    if args.no_dovecot_cache:
        extra += "mail_never_cache_fields = *\n"
    with Dovecot(extra_config=extra) as server:
        user = server.add_user()
        if args.seed == "maildir":
            seeded_s = _engine.fill_maildir_in_child(server, user, args.messages)
            print(f"wrote {args.messages:,} maildir files in {seeded_s:.1f} s", flush=True)
            # Dovecot first scans the new files when a session selects the folder (minutes
            # at 1,000,000): done here, with a long timeout, before anything is timed.
            scanned_s = _engine.scan_maildir(user)
            print(f"Dovecot indexed the maildir in {scanned_s:.1f} s", flush=True)
        else:
            seeded_s = _engine.fill_in_child(user, args.messages)
            print(f"appended {args.messages:,} messages in {seeded_s:.1f} s", flush=True)
        client = connect(user)
        uids = fetch.search_uids(client)
        engine_items = fetch.meta_items(client.capabilities())
        client.logout()
        assert len(uids) == args.messages, len(uids)
        if not args.no_dovecot_cache:
            # Warm Dovecot's cache (the floor's ENVELOPE, our header fields, BODYSTRUCTURE)
            # for everyone alike.
            uid_sets = [join_message_ids(group).decode()
                        for group in batches(uids, args.batch)]
            started = time.perf_counter()
            raw_pass(user, uid_sets, f"{engine_items} ENVELOPE", tls=False)
            print(f"raw warm-up pass (engine's items and ENVELOPE: {engine_items}) in "
                  f"{time.perf_counter() - started:.1f} s", flush=True)
            del uid_sets

        # The seeding leaves gigabytes of written files in the page cache at 1,000,000
        # messages: flushed here, untimed, instead of by the kernel while the first of the
        # runs (ours) takes its time, competing for the cores and the disk.
        started = time.perf_counter()
        os.sync()
        print(f"seeded files flushed to disk in {time.perf_counter() - started:.1f} s",
              flush=True)
        with _engine.throwaway_database(f"bench_engine_{os.getpid()}", args.redis_db) as env:
            _engine.setup_django()
            ours = run_ours(user, args.messages, uids[-FIRST_PAGE:], args.poll, args.pool_size,
                            args.timeout, server._proc.pid, args.run_states)
            print(f"ours: whole folder in {ours['whole']:.2f} s", flush=True)
            states, names = ours.pop("run_states", None), ours.pop("thread_names", {})
            print(f"ours: {ours}", flush=True)
            if states:
                print(f"ours: what could run, of {states['samples']:,} samples from the "
                      "registration to whole (ours: this process's threads; imap: Dovecot's "
                      "session; imap-login: its TLS relay; postgres: PostgreSQL's "
                      "processes):", flush=True)
                for line in run_states.summary(states, names):
                    print(line, flush=True)
            if args.profile_only:
                return
            sizing = postgres_sizing()
            print(f"sizing: {sizing}", flush=True)
            try:
                listing = deep_pages(env, args.requests)
                report_after(sizing, listing)
            except RuntimeError as exc:  # keep the index figures whatever happens here
                print(f"deep pages not measured: {exc}", flush=True)
                listing = None
        floors = measure_floors(user, uids, args.batch, args.rounds, engine_items, server._proc.pid,
                                args.all_floors, not args.no_raw_floor)
    report(args, seeded_s, ours, floors)
    report_after(sizing, listing)


if __name__ == "__main__":
    main()
