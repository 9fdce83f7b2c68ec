"""Indexing fetch speed: ``fetch_meta`` against imapclient and against the raw socket floor.

Starts a private Dovecot (``tests.servers.dovecot``), appends N varied, realistic messages with
MULTIAPPEND + LITERAL+ (one round trip per 500 messages), then in the same run times, over the
whole folder in batches of 500 UIDs:

* raw:        the same ``UID FETCH`` over a bare socket, reading the whole answer, no parsing;
* imapclient: ``client.fetch(batch, [...])`` with the six classic items (the stated baseline),
              and again with exactly the items ``fetch_meta`` asks for;
* ours:       ``mailboxes.imap.fetch.fetch_meta``;
* engine:     the same over the worker's own connection (``mailboxes.imap.client.connect``: its
              read deadlines and the bounds on a hostile server's answers), and
  engine-unbounded: that connection with those bounds' checks switched off (the answer's
              deadline and the kept-bytes count), to show what the bounds cost in the same run.

Each is run ``--rounds`` times after a raw warm-up pass (so Dovecot's cache is hot for all) and
the best time is reported, plus the ratios and memory: process peak-RSS growth over the first
pass of each method (the kernel's high-water mark is reset before it via /proc/self/clear_refs)
and the peak Python heap of one pass (tracemalloc, untimed).

    .venv/bin/python bench/imap_fetch.py [--messages 10000] [--batch 500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gc
import imaplib
import re
import resource
import socket
import sys
import time
import tracemalloc
from collections.abc import Callable
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from imapclient import IMAPClient  # noqa: E402
from imapclient.imapclient import join_message_ids  # noqa: E402

from mailboxes.imap import client as engine  # noqa: E402
from mailboxes.imap import fetch  # noqa: E402
from tests.servers import seed  # noqa: E402
from tests.servers.dovecot import Dovecot, MailUser  # noqa: E402

CLASSIC_ITEMS = ["UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE"]
APPEND_CHUNK = 500
PLACEHOLDER = b"@@N@@"


# -- realistic mail ----------------------------------------------------------------------------


def templates() -> list[bytes]:
    """~50 message shapes; each has a Message-ID placeholder replaced per copy."""
    shapes: list[bytes] = []
    base = datetime(2024, 1, 1, 8, 0, tzinfo=timezone.utc)
    people = [
        "Alice Example <alice@example.test>", "Jörg Müller <joerg@example.test>",
        "李小龍 <li@example.test>", "\"O'Brien, Pat\" <pat@example.test>", "news@example.test",
    ]
    subjects = [
        "Quarterly report", "Grüße aus Köln", "日本語の件名テスト", "Re: lunch? 🍕",
        "Fwd: [list] A very long subject line that goes on and on to make folding happen in headers",
        "Rechnung März", "Meeting notes", "Ça va ? Très bien", "Invoice #4711", "Status update",
    ]
    for index in range(44):
        shape = index % 6
        kwargs = dict(
            subject=subjects[index % len(subjects)],
            from_=people[index % len(people)],
            to=[people[(index + 1) % len(people)], people[(index + 2) % len(people)]],
            date=base + timedelta(hours=index * 7),
            message_id=f"<bench-{index}-{PLACEHOLDER.decode()}@{seed.DOMAIN}>",
            body=("Hello,\n\n" + "Some body text line.\n" * (3 + index * 5)),
        )
        if shape == 1:
            kwargs["html"] = "<html><body>" + "<p>HTML paragraph</p>" * (2 + index) + "</body></html>"
        elif shape == 2:
            kwargs["attachments"] = [(f"Anhang {index} – Übersicht.pdf", seed.tiny_pdf(), "application/pdf")]
        elif shape == 3:
            refs = [f"<thread-{index}-{n}@{seed.DOMAIN}>" for n in range(1 + index % 9)]
            kwargs.update(in_reply_to=refs[-1], references=refs, cc="Team <team@example.test>")
        elif shape == 5:  # a busy thread on a mailing list: many recipients, long References
            names = ["Alice", "Jörg Müller", "李小龍", "O'Brien, Pat", "Zoë"]
            kwargs["cc"] = [f'"{names[n % len(names)]} {n}" <member{n}@list.example.test>'
                            for n in range(4 + index % 20)]
            refs = [f"<list-{index}-{n}@{seed.DOMAIN}>" for n in range(5 + index % 15)]
            kwargs.update(in_reply_to=refs[-1], references=refs, html="<p>reply</p>")
        elif shape == 4:
            kwargs["html"] = "<p>photo</p>"
            kwargs["attachments"] = [
                ("grüße.png", seed.tiny_png(), "image/png"),
                ("notes.txt", b"plain attachment\n" * 20, "text/plain"),
            ]
        shapes.append(seed.make_message(**kwargs))
    for raw in seed.build_messages():
        shapes.append(raw.replace(b"@rig.example.test>", b"-" + PLACEHOLDER + b"@rig.example.test>", 1))
    return shapes


def messages(count: int) -> list[bytes]:
    shapes = templates()
    return [shapes[n % len(shapes)].replace(PLACEHOLDER, str(n).encode(), 1) for n in range(count)]


# -- a bare IMAP socket (the floor) ------------------------------------------------------------


class RawImap:
    """Just enough IMAP over a socket to log in, select, and read whole answers unparsed."""

    def __init__(self, host: str, port: int):
        self.sock = socket.create_connection((host, port), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.tagnum = 0
        self.buffer = bytearray()
        self._read_until(b"\r\n")

    def _receive(self) -> None:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buffer += chunk

    def _read_until(self, marker: bytes, start: int = 0) -> int:
        while (found := self.buffer.find(marker, start)) < 0:
            start = max(start, len(self.buffer) - len(marker))
            self._receive()
        return found

    def _tagged_line(self, tag: bytes) -> int:
        """Offset of the tagged completion line (a response is all lines before it)."""
        marker, start = b"\r\n" + tag + b" ", 0
        while True:
            if self.buffer.startswith(tag + b" "):
                return 0
            found = self.buffer.find(marker, start)
            if found >= 0:
                return found + 2
            start = max(0, len(self.buffer) - len(marker))
            self._receive()

    def command(self, text: bytes) -> bytes:
        """Send one command; return its whole answer (bytes up to and including the tagged line)."""
        self.tagnum += 1
        tag = b"R%d" % self.tagnum
        self.buffer.clear()
        self.sock.sendall(tag + b" " + text + b"\r\n")
        at = self._tagged_line(tag)
        end = self._read_until(b"\r\n", at) + 2
        answer = bytes(self.buffer[:end])
        if not answer[at + len(tag) + 1 :].startswith(b"OK"):
            raise RuntimeError(answer[at:end].decode("utf-8", "replace"))
        return answer

    def login(self, user: MailUser) -> None:
        self.command(b'LOGIN "%s" "%s"' % (user.username.encode(), user.password.encode()))

    def multiappend(self, folder: str, entries: list[tuple[bytes, bytes, datetime]]) -> None:
        """One APPEND of many messages: (raw, flags, internal date) each, as LITERAL+."""
        parts = [b"APPEND " + folder.encode()]
        for raw, flags, when in entries:
            stamp = when.strftime("%d-%b-%Y %H:%M:%S %z").encode()
            parts.append(b' (%s) "%s" {%d+}\r\n%s' % (flags, stamp, len(raw), raw))
        self.command(b"".join(parts))

    def close(self) -> None:
        try:
            self.command(b"LOGOUT")
        except (OSError, RuntimeError):
            pass
        self.sock.close()


def fill(user: MailUser, count: int) -> None:
    flag_choices = [b"\\Seen", b"", b"\\Seen \\Flagged", b"\\Seen $Forwarded", b"\\Answered \\Seen"]
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    entries = [
        (raw, flag_choices[n % len(flag_choices)], start + timedelta(minutes=17 * n))
        for n, raw in enumerate(messages(count))
    ]
    raw = RawImap(user.host, user.imap_port)
    raw.login(user)
    for first in range(0, count, APPEND_CHUNK):
        raw.multiappend("INBOX", entries[first : first + APPEND_CHUNK])
    raw.close()


# -- measurements ------------------------------------------------------------------------------


def batches(uids: list[int], size: int) -> list[list[int]]:
    return [uids[start : start + size] for start in range(0, len(uids), size)]


def connect(user: MailUser) -> IMAPClient:
    client = user.imap_client()
    client.normalise_times = False
    client.select_folder("INBOX", readonly=True)
    return client


def runners(user: MailUser, groups: list[list[int]]) -> dict[str, Callable[[], int]]:
    sets = [join_message_ids(group).decode() for group in groups]
    ours_client, theirs_client = connect(user), connect(user)
    items = fetch.meta_items(ours_client.capabilities())
    item_list = re.findall(r"\S+\[[^\]]*\]|\S+", items)  # BODY.PEEK[... (...)] is one item
    raw = RawImap(user.host, user.imap_port)
    raw.login(user)
    raw.command(b"EXAMINE INBOX")

    def run_raw() -> int:
        return sum(len(raw.command(f"UID FETCH {uid_set} ({items})".encode())) for uid_set in sets)

    def run_imapclient_classic() -> int:
        return sum(len(theirs_client.fetch(group, CLASSIC_ITEMS)) for group in groups)

    def run_imapclient_same() -> int:
        return sum(len(theirs_client.fetch(group, item_list)) for group in groups)

    def run_ours() -> int:
        return sum(len(fetch.fetch_meta(ours_client, uid_set, items)) for uid_set in sets)

    engine_client = engine_connect(user)

    def run_engine() -> int:
        return sum(len(fetch.fetch_meta(engine_client, uid_set, items)) for uid_set in sets)

    def run_engine_unbounded() -> int:
        with bounds_off():
            return run_engine()

    print(f"items: {items}")
    return {
        "ours": run_ours,
        "engine": run_engine,
        "engine-unbounded": run_engine_unbounded,
        "raw": run_raw,
        "imapclient": run_imapclient_classic,
        "imapclient-same-items": run_imapclient_same,
    }


def engine_connect(user: MailUser) -> IMAPClient:
    """The worker's kind of connection (plain, on loopback), INBOX examined."""
    client = engine.connect(engine.ImapSettings(
        host=user.host, port=user.imap_port, secure=False, user=user.username,
        password=user.password, tls_verify=False, allow_private=True, timeout=15,
        read_timeout=120))
    client.select_folder("INBOX", readonly=True)
    return client


@contextmanager
def bounds_off():
    """The engine's connection without the answer's deadline and the kept-bytes count: what
    each read and each kept response did before those bounds."""
    check, append = engine._Phases.check_answer, engine._PhasedIMAP4._append_untagged
    engine._Phases.check_answer = lambda self, sock: None
    engine._PhasedIMAP4._append_untagged = imaplib.IMAP4._append_untagged
    try:
        yield
    finally:
        engine._Phases.check_answer, engine._PhasedIMAP4._append_untagged = check, append


def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise LookupError(field)


def reset_peak_rss() -> int:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0) and return the current RSS in KiB."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return _status_kib("VmRSS")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def peak_rss_kib() -> int:
    try:
        return _status_kib("VmHWM")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def heap_peak(run: Callable[[], int]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def measure(run_by_name: dict[str, Callable[[], int]], rounds: int, expected: int) -> None:
    run_by_name["raw"]()  # warm-up: Dovecot caches BODYSTRUCTURE etc. on first use
    best = {name: float("inf") for name in run_by_name}
    rss_growth: dict[str, int] = {}
    for round_number in range(rounds):
        for name, run in run_by_name.items():
            gc.collect()
            before = reset_peak_rss()
            start = time.perf_counter()
            result = run()
            best[name] = min(best[name], time.perf_counter() - start)
            if round_number == 0:
                rss_growth[name] = peak_rss_kib() - before
            if name != "raw" and result != expected:
                raise AssertionError(f"{name} returned {result} messages, expected {expected}")
    peaks = {name: heap_peak(run) for name, run in run_by_name.items()}
    print(f"{'method':<24}{'best s':>9}{'peak RSS +MiB':>15}{'heap peak MiB':>15}")
    for name in run_by_name:
        print(f"{name:<24}{best[name]:>9.3f}{rss_growth[name] / 1024:>15.1f}{peaks[name] / 2**20:>15.1f}")
    print(f"ours / imapclient            = {best['ours'] / best['imapclient']:.3f}")
    print(f"ours / imapclient-same-items = {best['ours'] / best['imapclient-same-items']:.3f}")
    print(f"ours / raw                   = {best['ours'] / best['raw']:.2f}")
    print(f"engine / engine-unbounded    = {best['engine'] / best['engine-unbounded']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with Dovecot() as server:
        user = server.add_user()
        started = time.perf_counter()
        fill(user, args.messages)
        print(f"appended {args.messages} messages in {time.perf_counter() - started:.1f} s")
        client = connect(user)
        uids = fetch.search_uids(client)
        client.logout()
        assert len(uids) == args.messages, len(uids)
        groups = batches(uids, args.batch)
        print(f"{len(groups)} batches of up to {args.batch} UIDs, best of {args.rounds} rounds")
        measure(runners(user, groups), args.rounds, args.messages)


if __name__ == "__main__":
    main()
