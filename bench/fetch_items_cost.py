"""What each FETCH item list costs Dovecot: raw passes over N uncached messages, alternating.

A first index runs on the same cores as the mail server in the benches, and Dovecot spends
more CPU on the engine's FETCH than on the classic six items of the imapclient floor
(``bench/first_index.py`` reports both). This says which item does it: a private Dovecot with
``mail_never_cache_fields = *`` (every FETCH parses the message files, as for a first index),
N maildir messages (``bench/imap_fetch.py``'s shapes), then ``--rounds`` rounds in which each
variant reads the whole folder over a plain socket in batches of 1,000 UIDs, unparsed
(``first_index.raw_pass``). Per variant: Dovecot's CPU (its process tree, 10 ms ticks, read
once the pass's session has ended) per message, the median round's and each round's, the
best wall time and the bytes a message.

    .venv/bin/python bench/fetch_items_cost.py [--messages 20000] [--rounds 3]

The bench's messages have short headers (no Received or DKIM lines), so a variant that fetches
the whole header is cheaper here than it would be on real mail.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from imapclient.imapclient import join_message_ids  # noqa: E402

from bench import _engine  # noqa: E402
from bench.first_index import CLASSIC, raw_pass  # noqa: E402
from bench.imap_fetch import batches, connect  # noqa: E402
from bench.restart_cost import imap_processes  # noqa: E402
from mailboxes.imap import fetch  # noqa: E402
from tests.servers.dovecot import Dovecot  # noqa: E402

# The engine's items before its envelope came from the header fields: the server's ENVELOPE,
# with the address headers beside it.
BEFORE = ("UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE"
          " BODY.PEEK[HEADER.FIELDS (REFERENCES FROM SENDER REPLY-TO TO CC BCC)]")


def variants(engine: str) -> dict[str, str]:
    """Item lists to compare, named; ``engine`` is ``fetch.meta_items`` for this server."""
    fields = engine[engine.index("BODY.PEEK[HEADER.FIELDS"):engine.index(")]") + 2]
    return {
        "classic six (the floor's)": CLASSIC,
        "classic + HEADER.FIELDS (REFERENCES)": f"{CLASSIC} BODY.PEEK[HEADER.FIELDS (REFERENCES)]",
        "engine's": engine,
        "engine's, header fields first": engine.replace(f" {fields}", "").replace(
            "UID FLAGS", f"UID {fields} FLAGS"),
        "engine's, whole header for the fields": engine.replace(fields, "BODY.PEEK[HEADER]"),
        "engine's before: ENVELOPE and the address headers": BEFORE + engine[
            engine.index(")]") + 2:],
    }


def settled_cpu(dovecot: int, sessions_before: int) -> float:
    """Dovecot's CPU once the pass's ``imap`` process has ended and been reaped (read before,
    a process that ends between two readings drops its time from both)."""
    _engine.wait_for(lambda: imap_processes(dovecot) <= sessions_before, timeout=10,
                     what="the pass's imap process to end")
    return _engine.tree_cpu(dovecot)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with Dovecot(extra_config="mail_never_cache_fields = *\n") as server:
        user = server.add_user()
        _engine.fill_maildir_in_child(server, user, args.messages)
        _engine.scan_maildir(user)
        client = connect(user)
        uids = fetch.search_uids(client)
        engine = fetch.meta_items(client.capabilities())
        client.logout()
        uid_sets = [join_message_ids(group).decode() for group in batches(uids, 1000)]
        os.sync()  # the seeded files' write-back is not charged to the first variant
        lists = variants(engine)
        cpu: dict[str, list[float]] = {name: [] for name in lists}
        wall: dict[str, float] = {}
        size: dict[str, int] = {}
        for _ in range(args.rounds):
            for name, items in lists.items():
                sessions = imap_processes(server._proc.pid)
                before = settled_cpu(server._proc.pid, sessions)
                started = time.perf_counter()
                size[name] = raw_pass(user, uid_sets, items, tls=False)
                wall[name] = min(wall.get(name, float("inf")), time.perf_counter() - started)
                cpu[name].append(settled_cpu(server._proc.pid, sessions) - before)
    print(f"{len(uids):,} uncached messages, engine's items: {engine}")
    for name, runs in cpu.items():
        print(f"{name:48s} Dovecot {statistics.median(runs) / len(uids) * 1e6:6.1f} us/message "
              f"(rounds: {', '.join(f'{value:.2f}' for value in runs)} s), "
              f"wall {wall[name]:.2f} s, {size[name] / len(uids):.0f} bytes/message")


if __name__ == "__main__":
    main()
