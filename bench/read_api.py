"""The read API through the real web server against the same work done directly on Dovecot.

Fills one INBOX with N realistic messages (``imap_fetch.fill``), indexes it into a throwaway
PostgreSQL database (``sync_account``), starts daphne (``emailapi.asgi``) as a subprocess on
that database, and measures in the same run, each over ``--requests`` requests after a warm-up:

* listing:      ``GET /messages?path=INBOX&pageSize=20&page=<random>`` sequentially (p50, p99),
                and requests/s with ``--clients`` clients on keep-alive connections;
                floor: imapclient ``UID FETCH`` of 20 envelopes+flags on a held connection;
* full message: ``GET /message/{id}`` of random messages (text from the server);
                floor: imapclient ``UID FETCH (BODY.PEEK[TEXT])`` of the same messages;
* IMAP search:  ``POST /search?path=INBOX`` ``{"search": {"subject": <term>}}``;
                floor: imapclient ``UID SEARCH SUBJECT <term>`` on a held connection;
* index search: the same with ``source=index`` (subject trigram index, no IMAP).

Then the speed of the web tier itself (issue 19), for each server in turn, ``--rounds`` times
over, all on the same database:

* **floor**: a bare ASGI hello (``bench/_hello_asgi.py``) under daphne, in as many processes as
  the server measured next: what daphne and this load generator cost at that moment;
* **this tree** (and, with ``--compare DIR``, another checkout such as the old main, started
  from DIR the same way): ``manage.py serve --no-workers`` with ``make run``'s defaults (its own
  default web process count unless ``--web-processes`` is given);

each measured as: listing p50/p99 from one client; listing requests/s, p50 and p99 with
``--clients`` clients for ``--seconds``, and the web processes' CPU time per request over that
(``/proc`` utime+stime deltas of every process under the server, divided by requests); and
``GET /message/{id}?textType=*`` p50/p99 from one client.

Targets printed alongside: listing p50 <= 5 ms and >= 300 requests/s with 10 clients, CPU per
listing <= 3 ms; full message p50 <= 8 ms; IMAP search p50 within 15 ms of the bare SEARCH;
index search p50 <= 15 ms. EmailEngine on this machine: listing p50 88-98 ms and 10-15
requests/s, full message p50 75-81 ms, subject search p50 152-176 ms (its IMAP SEARCH alone
40-64 ms).

    .venv/bin/python bench/read_api.py [--messages 10000] [--requests 200] [--clients 10]
        [--compare ../base-checkout [--compare ../other]] [--rounds 2] [--redis-db 5]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import _engine  # noqa: E402
from tests.servers.dovecot import Dovecot  # noqa: E402
from tests.servers.net import find_free_port  # noqa: E402

REDIS_DB = 5  # --redis-db: a test slot's own DB (tests/settings.py) while it runs no tests
TERM = "Invoice"


def timed(fn, count: int) -> list[float]:
    out = []
    for _ in range(count):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def p(values: list[float], q: float) -> float:
    return _engine.percentile(values, q)


class Http:
    """One keep-alive HTTP/1.1 connection to the web server."""

    def __init__(self, port: int, token: str | None):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        self.conn.request(method, path, body=json.dumps(body) if body is not None else None,
                          headers=self.headers)
        response = self.conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:300]!r}")
        return json.loads(data)


def start_web(env: dict, port: int, processes: int | None = None,
              root: Path = ROOT, timeout: float = 120) -> subprocess.Popen:
    """``manage.py serve --no-workers`` of the checkout at ``root`` (daphne, ``processes`` of
    them on one socket; the command's own default without it)."""
    extra = ["--web-processes", str(processes)] if processes else []
    process = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--no-workers", "--port", str(port), *extra],
        cwd=root, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    wait_ready(port, "/health", process, timeout)
    return process


def wait_ready(port: int, path: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"web server exited with code {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("web server did not start")


def start_hello(port: int, processes: int) -> list[subprocess.Popen]:
    """The floor: ``processes`` daphnes serving ``bench._hello_asgi`` on one shared socket,
    as ``manage.py serve`` shares its socket."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(1024)
    fd = listener.fileno()
    children = [subprocess.Popen([sys.executable, "-m", "daphne", "--fd", str(fd),
                                  "bench._hello_asgi:app"], cwd=ROOT, pass_fds=(fd,),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for _ in range(processes)]
    listener.close()
    for child in children:
        wait_ready(port, "/", child, 60)
    return children


def descendants(pid: int) -> list[int]:
    """Every process under ``pid`` (not ``pid`` itself), from ``/proc``."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            for task in os.listdir(f"/proc/{parent}/task"):
                with open(f"/proc/{parent}/task/{task}/children", encoding="ascii") as fh:
                    kids = [int(k) for k in fh.read().split()]
                found.extend(kids)
                todo.extend(kids)
        except OSError:
            continue
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time these processes have used so far."""
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def load(port: int, token: str | None, path_of, clients: int, seconds: float,
         pids: list[int]) -> dict:
    """``clients`` keep-alive clients for ``seconds``: requests/s, p50/p99 and the CPU time
    ``pids`` spent per request."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    stop = time.monotonic() + seconds

    def run(slot: int) -> None:
        client = Http(port, token)
        rng = random.Random(slot)
        mine = latencies[slot]
        while time.monotonic() < stop:
            path = path_of(rng)
            started = time.perf_counter()
            client.call("GET", path)
            mine.append((time.perf_counter() - started) * 1000)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    cpu_before, started = cpu_seconds(pids), time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed, cpu = time.monotonic() - started, cpu_seconds(pids) - cpu_before
    values = [v for mine in latencies for v in mine]
    return {"rps": len(values) / elapsed, "p50": p(values, .5), "p99": p(values, .99),
            "cpu_ms": 1000 * cpu / max(1, len(values)), "requests": len(values)}


def speed(name: str, port: int, token: str | None, pids: list[int], args, pages: int,
          ids: list[str]) -> dict:
    """The web tier's figures for one server: sequential listing, loaded listing with CPU
    per request, sequential full message. The floor (no token) answers every path alike."""
    def listing_path(rng) -> str:
        return (f"/v1/account/bench/messages?path=INBOX&pageSize=20&page={rng.randrange(pages)}"
                if token else "/")

    api = Http(port, token)
    rng = random.Random(7)
    for _ in range(20):  # warm up: first requests import, connect, fill caches
        api.call("GET", listing_path(rng))
    sequential = timed(lambda: api.call("GET", listing_path(rng)), args.requests)
    loaded = load(port, token, listing_path, args.clients, args.seconds, pids)
    id_iter = iter(ids * 2)
    message = timed(lambda: api.call(
        "GET", f"/v1/account/bench/message/{next(id_iter)}?textType=*" if token else "/"),
        args.requests)
    return {"name": name, "processes": len(pids), "listing": sequential, "loaded": loaded,
            "message": message, "load": os.getloadavg()[0]}


HEADER = (f"{'server':<34}{'proc':>5}{'list p50':>9}{'p99':>7}{'req/s':>7}{'p50@C':>7}"
          f"{'p99@C':>7}{'cpu/req':>8}{'msg p50':>8}{'p99':>7}{'load':>6}")


def print_row(r: dict, flush: bool = True) -> None:
    """One server's row; printed as soon as it is measured too (a later failure keeps it)."""
    loaded = r["loaded"]
    print(f"{r['name']:<34.34}{r['processes']:>5}{p(r['listing'], .5):>9.2f}"
          f"{p(r['listing'], .99):>7.1f}{loaded['rps']:>7.0f}{loaded['p50']:>7.1f}"
          f"{loaded['p99']:>7.1f}{loaded['cpu_ms']:>8.2f}{p(r['message'], .5):>8.2f}"
          f"{p(r['message'], .99):>7.1f}{r['load']:>6.1f}", flush=flush)


def stop(process: subprocess.Popen, patience: float = 120) -> None:
    """Terminate and wait; a server slow to exit on a loaded machine (``serve`` gives each
    child 10 s before killing it) is killed rather than ending the run and its figures."""
    process.terminate()
    try:
        process.wait(timeout=patience)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--web-processes", type=int, default=None,
                        help="daphne processes (manage.py serve --web-processes); default: "
                             "the command's own default, what make run starts")
    parser.add_argument("--compare", type=Path, action="append", default=[],
                        help="another checkout (e.g. the old main) measured the same way; "
                             "may be given more than once")
    parser.add_argument("--rounds", type=int, default=1,
                        help="times the speed section measures each server, alternating")
    parser.add_argument("--only-speed", action="store_true",
                        help="skip the IMAP-floor comparisons and searches")
    parser.add_argument("--redis-db", type=int, default=REDIS_DB)
    args = parser.parse_args()

    db_name = f"bench_read_{os.getpid()}"
    dovecot = Dovecot().start()
    try:
        user = dovecot.add_user()
        seeded = _engine.fill_in_child(user, args.messages)
        print(f"seeded {args.messages} messages in {seeded:.1f} s")
        with _engine.throwaway_database(db_name, args.redis_db) as env:
            _engine.setup_django()
            run(args, dovecot, user, env)
    finally:
        dovecot.stop()


def run(args, dovecot, user, env) -> None:
    from accounts import services
    from mailboxes import connection_settings
    from mailboxes.ids import message_id_for
    from mailboxes.imap import client as imap
    from mailboxes.imap.session import ImapSession
    from mailboxes.models import Message
    from mailboxes.sync.account import sync_account

    tenant = services.create_tenant("Bench")
    _, token = services.issue_token(tenant, "bench", ["api"])
    settings = user.imap_settings(secure=False)
    settings["tls"] = {"rejectUnauthorized": False}
    account = services.register_account(tenant, {"account": "bench", "imap": settings})
    session = ImapSession(imap.connect(connection_settings.account_imap_settings(account)))
    started = time.perf_counter()
    sync_account(session, account)
    session.client.logout()
    print(f"indexed in {time.perf_counter() - started:.1f} s")
    rows = list(Message.objects.filter(email_account=account).select_related("folder")
                .values_list("uid", "folder__number"))
    inbox = Message.objects.filter(email_account=account).first().folder
    rng = random.Random(1)
    sample = [rng.choice(rows)[0] for _ in range(args.requests)]
    ids = [message_id_for(inbox, uid) for uid in sample]
    pages = max(1, len(rows) // 20)

    if not args.only_speed:
        imap_comparison(args, env, user, token, rows, sample, ids, pages)

    trees = [("this tree", ROOT)] + [(f"{other}", other) for other in args.compare]
    results = []
    print(HEADER, flush=True)
    for _ in range(args.rounds):
        for name, root in trees:
            port = find_free_port()
            web = start_web(env, port, args.web_processes, root)
            try:
                pids = descendants(web.pid)
                results.append(speed(name, port, token, pids, args, pages, ids))
                print_row(results[-1])
            finally:
                stop(web)
            port = find_free_port()
            hello = start_hello(port, len(pids))
            try:
                results.append(speed(f"floor ({len(pids)} daphne hello)", port, None,
                                     [h.pid for h in hello], args, pages, ids))
                print_row(results[-1])
            finally:
                for child in hello:
                    child.terminate()
                for child in hello:
                    stop(child)

    print(f"\nweb tier: {args.messages} messages, {args.requests} sequential requests, "
          f"{args.clients} clients for {args.seconds:g} s; ms")
    print(HEADER)
    for r in results:
        print_row(r, flush=False)
    print("targets: list p50 <= 5 ms, >= 300 req/s with 10 clients, cpu/req <= 3 ms; "
          "message p50 <= 8 ms. (floor rows: the same requests answered by a bare ASGI "
          "hello; 'msg' there is the same hello)")


def imap_comparison(args, env, user, token, rows, sample, ids, pages) -> None:
    """This tree's read routes against the same work done directly on Dovecot."""
    port = find_free_port()
    web = start_web(env, port, args.web_processes)
    try:
        processes = len(descendants(web.pid))
        api = Http(port, token)
        floor = user.imap_client()
        floor.select_folder("INBOX", readonly=True)
        all_uids = sorted(r[0] for r in rows)
        for _ in range(20):  # warm up both sides
            api.call("GET", "/v1/account/bench/messages?path=INBOX&pageSize=20")
            api.call("GET", f"/v1/account/bench/message/{ids[0]}")
            floor.fetch(all_uids[-20:], ["ENVELOPE", "FLAGS"])
        rng = random.Random(1)
        page_of = iter(rng.randrange(pages) for _ in range(10 * args.requests))
        listing = timed(lambda: api.call(
            "GET", f"/v1/account/bench/messages?path=INBOX&pageSize=20&page={next(page_of)}"),
            args.requests)
        floor_pages = iter(rng.randrange(pages) for _ in range(10 * args.requests))

        def floor_list():
            start = len(all_uids) - 20 * next(floor_pages) - 20
            floor.fetch(all_uids[max(0, start):start + 20], ["ENVELOPE", "FLAGS", "RFC822.SIZE"])

        listing_floor = timed(floor_list, args.requests)
        rps = load(port, token, lambda r: f"/v1/account/bench/messages?path=INBOX&pageSize=20"
                                          f"&page={r.randrange(pages)}",
                   args.clients, args.seconds, [])["rps"]

        id_iter, uid_iter = iter(ids * 2), iter(sample * 2)
        message = timed(lambda: api.call("GET", f"/v1/account/bench/message/{next(id_iter)}"),
                        args.requests)
        message_floor = timed(lambda: floor.fetch([next(uid_iter)], ["BODY.PEEK[TEXT]"]),
                              args.requests)

        body = {"search": {"subject": TERM}}
        search = timed(lambda: api.call("POST", "/v1/account/bench/search?path=INBOX", body),
                       args.requests)
        search_floor = timed(lambda: floor.search(["SUBJECT", TERM]), args.requests)
        index_search = timed(lambda: api.call(
            "POST", "/v1/account/bench/search?source=index&path=INBOX", body), args.requests)
        matched = api.call("POST", "/v1/account/bench/search?source=index&path=INBOX",
                           body)["total"]
        floor.logout()
    finally:
        stop(web)

    print(f"\n{args.messages} messages; {args.requests} requests each; search {TERM!r} matches "
          f"{matched}; {args.clients} clients for {args.seconds:.0f} s\n")
    print(f"{'':<16}{'p50 ms':>9}{'p99 ms':>9}{'floor p50':>11}{'floor p99':>11}  target")
    for name, ours, floor_values, target in (
            ("listing", listing, listing_floor, "p50 <= 5 ms"),
            ("full message", message, message_floor, "p50 <= 8 ms"),
            ("IMAP search", search, search_floor, "p50 <= floor + 15 ms"),
            ("index search", index_search, None, "p50 <= 15 ms")):
        floor_text = (f"{p(floor_values, .5):>11.1f}{p(floor_values, .99):>11.1f}"
                      if floor_values else f"{'-':>11}{'-':>11}")
        print(f"{name:<16}{p(ours, .5):>9.1f}{p(ours, .99):>9.1f}{floor_text}  {target}")
    print(f"\nlisting throughput: {rps:.0f} requests/s with {args.clients} clients, "
          f"{processes} web processes (target >= 300; EmailEngine 10-15)")
    print(f"IMAP search overhead over bare SEARCH: "
          f"{p(search, .5) - p(search_floor, .5):+.1f} ms at p50")


if __name__ == "__main__":
    main()
