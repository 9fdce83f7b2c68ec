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

Targets printed alongside: listing p50 <= 10 ms and >= 150 requests/s with 10
clients; full message p50 <= 20 ms; IMAP search p50 within 15 ms of the bare SEARCH; index
search p50 <= 15 ms. EmailEngine on this machine: listing p50 88-98 ms and 10-15 requests/s,
full message p50 75-81 ms, subject search p50 152-176 ms (its IMAP SEARCH alone 40-64 ms).

    .venv/bin/python bench/read_api.py [--messages 10000] [--requests 200] [--clients 10]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
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

REDIS_DB = 5
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

    def __init__(self, port: int, token: str):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        self.conn.request(method, path, body=json.dumps(body) if body is not None else None,
                          headers=self.headers)
        response = self.conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:300]!r}")
        return json.loads(data)


def start_web(env: dict, port: int, processes: int = 1) -> subprocess.Popen:
    """``manage.py serve --no-workers`` (daphne, ``processes`` of them on one socket)."""
    process = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--no-workers", "--port", str(port),
         "--web-processes", str(processes)], cwd=ROOT, env={**os.environ, **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("web server did not start")


def throughput(port: int, token: str, clients: int, seconds: float, pages: int) -> float:
    done = [0] * clients
    stop = time.monotonic() + seconds

    def run(slot: int) -> None:
        client = Http(port, token)
        rng = random.Random(slot)
        while time.monotonic() < stop:
            client.call("GET", f"/v1/account/bench/messages?path=INBOX&pageSize=20"
                               f"&page={rng.randrange(pages)}")
            done[slot] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--web-processes", type=int, default=2,
                        help="daphne processes (manage.py serve --web-processes)")
    args = parser.parse_args()

    db_name = f"bench_read_{os.getpid()}"
    dovecot = Dovecot().start()
    try:
        user = dovecot.add_user()
        seeded = _engine.fill_in_child(user, args.messages)
        print(f"seeded {args.messages} messages in {seeded:.1f} s")
        with _engine.throwaway_database(db_name, REDIS_DB) as env:
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

    port = find_free_port()
    web = start_web(env, port, args.web_processes)
    try:
        api = Http(port, token)
        floor = user.imap_client()
        floor.select_folder("INBOX", readonly=True)
        all_uids = sorted(r[0] for r in rows)
        for _ in range(20):  # warm up both sides
            api.call("GET", "/v1/account/bench/messages?path=INBOX&pageSize=20")
            api.call("GET", f"/v1/account/bench/message/{ids[0]}")
            floor.fetch(all_uids[-20:], ["ENVELOPE", "FLAGS"])

        page_of = iter(rng.randrange(pages) for _ in range(10 * args.requests))
        listing = timed(lambda: api.call(
            "GET", f"/v1/account/bench/messages?path=INBOX&pageSize=20&page={next(page_of)}"),
            args.requests)
        floor_pages = iter(rng.randrange(pages) for _ in range(10 * args.requests))

        def floor_list():
            start = len(all_uids) - 20 * next(floor_pages) - 20
            floor.fetch(all_uids[max(0, start):start + 20], ["ENVELOPE", "FLAGS", "RFC822.SIZE"])

        listing_floor = timed(floor_list, args.requests)
        rps = throughput(port, token, args.clients, args.seconds, pages)

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
        web.terminate()
        web.wait(timeout=10)

    print(f"\n{args.messages} messages; {args.requests} requests each; search {TERM!r} matches "
          f"{matched}; {args.clients} clients for {args.seconds:.0f} s\n")
    print(f"{'':<16}{'p50 ms':>9}{'p99 ms':>9}{'floor p50':>11}{'floor p99':>11}  target")
    for name, ours, floor_values, target in (
            ("listing", listing, listing_floor, "p50 <= 10 ms"),
            ("full message", message, message_floor, "p50 <= 20 ms"),
            ("IMAP search", search, search_floor, "p50 <= floor + 15 ms"),
            ("index search", index_search, None, "p50 <= 15 ms")):
        floor_text = (f"{p(floor_values, .5):>11.1f}{p(floor_values, .99):>11.1f}"
                      if floor_values else f"{'-':>11}{'-':>11}")
        print(f"{name:<16}{p(ours, .5):>9.1f}{p(ours, .99):>9.1f}{floor_text}  {target}")
    print(f"\nlisting throughput: {rps:.0f} requests/s with {args.clients} clients, "
          f"{args.web_processes} web processes "
          f"(target >= 150; EmailEngine 10-15)")
    print(f"IMAP search overhead over bare SEARCH: "
          f"{p(search, .5) - p(search_floor, .5):+.1f} ms at p50")


if __name__ == "__main__":
    main()
