"""Does every APPEND wake the IDLE session of its mailbox? A floor for the failover bench's
"messages never announced", with no worker, database or Redis in the way.

N bare STARTTLS sessions (imapclient, one thread each) on the scale bench's Dovecot
(``bench/dovecot-scale.conf``, imap-hibernate after ``--hibernate-timeout``) do what an
engine's session does with its INBOX: EXAMINE, IDLE; on any untagged response but a
keepalive, DONE, EXAMINE, ``UID SEARCH ALL`` (the highest UID seen), EXAMINE, IDLE again. A
feeder APPENDs to random mailboxes at ``--rate`` a second for ``--seconds``; then, after
``--grace`` seconds, every appended UID that its session never saw is a miss, reported with
when it was appended and when that session last went back to IDLE.

    .venv/bin/python bench/idle_misses.py --accounts 400 --rate 10 --seconds 60
    .venv/bin/python bench/idle_misses.py --accounts 400 --hibernate-timeout 30min
"""

from __future__ import annotations

import argparse
import random
import re
import select
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.idle_accounts import no_verify_context  # noqa: E402
from bench.worker_scale import INOTIFY_LIMIT, dovecot_config, raise_limits  # noqa: E402

APPENDUID = re.compile(rb"APPENDUID \d+ (\d+)")


class Session(threading.Thread):
    def __init__(self, server, user, halt: threading.Event):
        super().__init__(daemon=True)
        self.server, self.user, self.halt = server, user, halt
        self.seen = 0  # highest UID a search after a wake-up found
        self.idled_at: list[float] = []  # when IDLE was (re)entered
        self.wakes = 0
        self.ready = threading.Event()
        self.error: str | None = None

    def run(self) -> None:
        from imapclient import IMAPClient

        from mailboxes.imap.session import idle_responses, start_idle

        try:
            client = IMAPClient(self.server.host, port=self.server.imap_port, ssl=False,
                                timeout=60)
            client.starttls(no_verify_context())
            client.login(self.user.username, self.user.password)
            client.capabilities()  # cached: idle_done() asks for them, and not during IDLE
            client.select_folder("INBOX", readonly=True)
            early = start_idle(client)
            self.idled_at.append(time.time())
            self.ready.set()
            while not self.halt.is_set():
                if not early:
                    readable, _, _ = select.select([client.socket()], [], [], 1.0)
                    if not readable and not client.socket().pending():
                        continue
                    responses = idle_responses(client)
                    if responses and all(isinstance(r, tuple) and r and r[0] == b"OK"
                                         for r in responses):
                        continue  # "* OK Still here"
                self.wakes += 1
                client.idle_done()
                client.select_folder("INBOX", readonly=True)
                uids = client.search("ALL")
                self.seen = max([self.seen, *uids])
                client.select_folder("INBOX", readonly=True)
                early = start_idle(client)
                self.idled_at.append(time.time())
        except Exception as exc:  # noqa: BLE001 - reported
            self.error = f"{type(exc).__name__}: {exc}"
            self.ready.set()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=400)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--grace", type=float, default=20.0)
    parser.add_argument("--hibernate-timeout", default="5s")
    args = parser.parse_args()

    from tests.servers import seed
    from tests.servers.dovecot import Dovecot

    raise_limits()
    n = args.accounts
    with open(INOTIFY_LIMIT, encoding="ascii") as fh:
        original = int(fh.read())
    wanted = 2 * n + 4096
    if original < wanted:
        with open(INOTIFY_LIMIT, "w", encoding="ascii") as fh:
            fh.write(str(wanted))
    try:
        with Dovecot(extra_config=dovecot_config(n, args.hibernate_timeout),
                     startup_timeout=60) as server:
            users = [server.add_user() for _ in range(n)]
            halt = threading.Event()
            sessions = [Session(server, u, halt) for u in users]
            for s in sessions:
                s.start()
            for s in sessions:
                s.ready.wait(120)
            errors = [s.error for s in sessions if s.error]
            print(f"{n} sessions idling ({len(errors)} failed)", flush=True)
            time.sleep(10)  # hibernated by now (with a short timeout)
            rng = random.Random(19)
            appended: list[tuple[int, int, float]] = []
            clients: dict[int, object] = {}
            started = time.perf_counter()
            next_at = started
            while time.perf_counter() - started < args.seconds:
                index = rng.randrange(n)
                client = clients.get(index) or users[index].imap_client()
                clients[index] = client
                answer = client.append("INBOX", seed.make_message(subject="miss?"))
                found = APPENDUID.search(answer if isinstance(answer, bytes) else b"")
                appended.append((index, int(found.group(1)) if found else -1, time.time()))
                next_at += 1.0 / args.rate
                time.sleep(max(0.0, next_at - time.perf_counter()))
            time.sleep(args.grace)
            halt.set()
            misses = [(i, uid, at) for i, uid, at in appended if sessions[i].seen < uid]
            print(f"appended {len(appended)} to {len({a[0] for a in appended})} mailboxes; "
                  f"hibernate timeout {args.hibernate_timeout}; missed by their IDLE: "
                  f"{len(misses)}")
            for i, uid, at in misses:
                s = sessions[i]
                before = [round(t - at, 2) for t in s.idled_at if t <= at + 5][-2:]
                print(f"  mailbox {i} uid {uid}: session saw up to {s.seen}, woke {s.wakes} "
                      f"times; IDLE (re)entered at {before} s from the append; error "
                      f"{s.error}")
            for client in clients.values():
                try:
                    client.logout()
                except Exception:  # noqa: BLE001
                    pass
    finally:
        if original < wanted:
            with open(INOTIFY_LIMIT, "w", encoding="ascii") as fh:
                fh.write(str(original))


if __name__ == "__main__":
    main()
