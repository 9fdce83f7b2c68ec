"""Where a first index's CPU goes in this process, per message, stage by stage, and what
PostgreSQL spends on each row's COPY.

Starts a private Dovecot (``tests.servers.dovecot``), fills its INBOX with N of
``bench/imap_fetch.py``'s varied messages, captures the engine's own ``UID FETCH`` answer
(``fetch.meta_items``) over a bare socket once, then times each stage of the index writer on
those bytes, the cyclic collector paused as in a first index (``gc`` off), the best of
``--rounds``:

* tokens:        ``parse.parse_fetch`` of each response (the tokenizer, compiled or not);
* message_meta:  ``parse.message_meta``, and its parts (header block, the envelope from the
                 header fields and its addresses, BODYSTRUCTURE, dates, References); where
                 ``_meta`` was built the whole is its compiled form, and the envelope line
                 times ``parse``'s own ``_header_envelope``, which ``_meta`` does inline;
* row:           ``index._row_values`` (the column values of a new row);
* COPY values:   the values in column order, JSON columns as text (``index._insert``'s loop);
* COPY format:   psycopg's text formatting of those values (no server);
* COPY row:      the same line written in one pass by ``emailapi.lib.copy_text`` (what the
                 index writer does for new mail where it was built), in place of the two
                 above;
* row_lines:     a history row's ids (``index._ids``) and its COPY line written straight from
                 the message by ``mailboxes.sync.row_lines`` (what a first index does where
                 it was built), in place of the row and its COPY row;
* server:        PostgreSQL's CPU (its backend's ``/proc`` stat) per row COPYed and
                 committed in batches of 1,000 into a throwaway database migrated like
                 production (``bench_stages_<pid>``, dropped at the end), with every index.

With ``--postgres-split`` the server's share is split too: the same rows COPYed into copies of
the message table (``CREATE TABLE ... (LIKE ... INCLUDING ALL)``: its indexes, none of its
foreign keys) without the trigram indexes, with one trigram index over the three columns
instead of three, and with the JSON columns nobody queries by (all but flags and labels) as
``json`` rather than ``jsonb``; each against the plain copy, rounds alternating.

Whether ``parse`` runs compiled is printed first: the figures of the compiled build and of the
Python fallback differ by about 1.6x.

    .venv/bin/python bench/index_stages.py [--messages 5000] [--rounds 7] [--postgres-split]
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import _engine  # noqa: E402
from bench.imap_fetch import RawImap, fill  # noqa: E402
from mailboxes.imap import fetch, parse  # noqa: E402
from tests.servers.dovecot import Dovecot  # noqa: E402

BATCH = 1000


def capture(count: int) -> bytes:
    """The engine's FETCH answer for ``count`` fresh messages, as the server sent it."""
    server = Dovecot().start()
    try:
        user = server.add_user()
        fill(user, count)
        raw = RawImap(user.host, user.imap_port)
        raw.login(user)
        capabilities = raw.command(b"CAPABILITY").split(b"\r\n")[0].split()[2:]
        raw.command(b"SELECT INBOX")
        items = fetch.meta_items(capabilities)
        answer = raw.command(b"UID FETCH 1:* (" + items.encode() + b")")
        raw.close()
        return answer
    finally:
        server.stop()


def best_per_message(run: Callable[[], object], count: int, rounds: int) -> float:
    """Microseconds per message of the fastest of ``rounds`` runs, the collector paused."""
    best = float("inf")
    for _ in range(rounds):
        gc.disable()
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
        gc.enable()
    return best / count * 1e6


def server_cpu_per_row(values: list[list], sql: str) -> float:
    """PostgreSQL's CPU (its backend's user + system time) per row, COPYed in batches that
    each commit, as ``index.add_messages`` does."""
    from django.db import connection, transaction

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    before = sum(_engine.own_cpu(pid))
    for start in range(0, len(values), BATCH):
        with transaction.atomic(), connection.cursor() as cursor, \
                cursor.cursor.copy(sql) as copy:
            for row in values[start:start + BATCH]:
                copy.write_row(row)
    return (sum(_engine.own_cpu(pid)) - before) / len(values) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--postgres-split", action="store_true",
                        help="PostgreSQL's CPU per row on variants of the message table")
    args = parser.parse_args()

    answer = capture(args.messages)
    responses = [(text, literals) for text, literals in parse.wire_responses(answer)
                 if text.startswith(b"* ") and b" FETCH " in text[:24]]
    count = len(responses)
    print(f"parse: {'compiled' if parse.__file__.endswith('.so') else 'Python'}; "
          f"{count:,} messages, {len(answer) / count:,.0f} bytes each on the wire")

    with _engine.throwaway_database(f"bench_stages_{os.getpid()}", redis_db=6):
        _engine.setup_django()
        from django.db import connection, models

        from accounts.models import EmailAccount, Tenant
        from mailboxes.models import Folder, Message
        from mailboxes.sync import index

        def timed(label: str, run: Callable[[], object]) -> None:
            print(f"{label:34s} {best_per_message(run, count, args.rounds):7.1f} us")

        items = [parse.parse_fetch(text, literals)[1] for text, literals in responses]
        metas = [parse.message_meta(entry) for entry in items]
        headers = [parse._header_block(entry) for entry in items]
        timed("tokens (parse_fetch)", lambda: [parse.parse_fetch(t, lit) for t, lit in responses])
        timed("message_meta", lambda: [parse.message_meta(entry) for entry in items])
        timed("  header block", lambda: [parse._header_block(entry) for entry in items])
        timed("  envelope (header fields)", lambda: [parse._header_envelope(h) for h in headers])
        for label in ("from", "to", "cc"):
            timed(f"    {label} addresses", lambda name=label: [
                parse.header_addresses(h[name]) for h in headers if name in h])
        timed("  BODYSTRUCTURE", lambda: [parse.parse_bodystructure(entry.get("BODYSTRUCTURE"))
                                          for entry in items])
        timed("  INTERNALDATE", lambda: [parse.parse_internaldate(entry.get("INTERNALDATE"))
                                         for entry in items])
        timed("  References", lambda: [parse.message_id_list(h.get("references"))
                                       for h in headers])

        tenant = Tenant.objects.create(name="stages")
        account = EmailAccount.objects.create(tenant=tenant, account_id="stages")
        folder = Folder.objects.create(email_account=account, path="INBOX", name="INBOX",
                                       number=1)
        now = datetime.now(timezone.utc)
        rows = [index._row_values(folder, meta, {}, now) for meta in metas]
        timed("row (_row_values)", lambda: [index._row_values(folder, meta, {}, now)
                                            for meta in metas])
        fields = [f for f in Message._meta.concrete_fields if not f.primary_key]
        attnames = [f.attname for f in fields]
        as_json = {f.attname for f in fields if isinstance(f, models.JSONField)}

        def copy_values() -> list[list]:
            return [[index._json_text(row[name]) if name in as_json else row[name]
                     for name in attnames] for row in rows]
        values = copy_values()
        timed("COPY values", copy_values)
        from psycopg._copy_base import TextFormatter
        from psycopg.adapt import Transformer

        with connection.cursor() as cursor:
            formatter = TextFormatter(Transformer(cursor.cursor))
            timed("COPY format (psycopg)", lambda: [formatter.write_row(row) for row in values])
        try:
            from emailapi.lib import copy_text
        except ImportError:  # a tree before it
            copy_text = None
        if copy_text is not None and copy_text.compiled:
            names, json = tuple(attnames), tuple(name in as_json for name in attnames)
            timed("COPY row (copy_text, both above)", lambda: [copy_text.row(row, names, json)
                                                              for row in rows])
        from mailboxes.sync import row_lines

        codes = row_lines.plan(tuple(attnames))
        if codes is not None:
            timed("row's ids and COPY line (row_lines)", lambda: [
                row_lines.line(codes, meta, account.pk, folder.pk, *index._ids(meta, {}), now)
                for meta in metas])
        columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
        copy_rounds(values, columns, {"PostgreSQL CPU per row (COPY)": Message._meta.db_table},
                    rounds=3)
        if args.postgres_split:
            postgres_split(values, fields, columns, connection, Message._meta.db_table)


_uid_shifts = itertools.count(1)


def copy_rounds(values: list[list], columns: str, tables: dict[str, str], rounds: int) -> None:
    """Print PostgreSQL's CPU per row COPYed into each of ``tables`` (label: table), emptied
    before each round, the tables alternating within a round; the best round and all."""
    from django.db import connection

    figures: dict[str, list[float]] = {label: [] for label in tables}
    for _ in range(rounds):
        for label, table in tables.items():
            with connection.cursor() as cursor:
                cursor.execute(f"DELETE FROM {table}")
            uid_shift = next(_uid_shifts) * 10 ** 7  # fresh keys: no dead index entries in the way
            shifted = [[*row[:2], row[2] + uid_shift, *row[3:]] for row in values]
            figures[label].append(server_cpu_per_row(
                shifted, f"COPY {table} ({columns}) FROM STDIN"))
    for label, runs in figures.items():
        print(f"{label:38s} {min(runs):7.1f} us "
              f"(rounds: {', '.join(f'{value:.1f}' for value in runs)})")


# Copies of the message table, each with one thing changed (see the module doc).
SPLIT_TABLES = {
    "a copy (no foreign keys)": [],
    "a copy without trigram indexes": ["DROP_TRIGRAM"],
    "a copy, one trigram index for three": [
        "DROP_TRIGRAM",
        "CREATE INDEX {table}_one_trgm ON {table} USING gin "
        "((upper(subject) || ' ' || from_text || ' ' || to_text) gin_trgm_ops)"],
    "a copy, JSON columns json": ["JSON"],
}


def postgres_split(values: list[list], fields, columns: str, connection, messages: str) -> None:
    """PostgreSQL's CPU per row COPYed into the message table ``messages`` (what its foreign
    keys cost, against the copies) and each of ``SPLIT_TABLES``, alternating over five rounds."""
    from django.db import models

    quote = connection.ops.quote_name
    queried = {"flags", "labels"}  # the JSON columns a listing filters by (jsonb operators)
    tables = {"  the message table": messages}
    with connection.cursor() as cursor:
        for number, (label, steps) in enumerate(SPLIT_TABLES.items()):
            table = f"split_{number}"
            cursor.execute(f"CREATE TABLE {table} (LIKE {messages} INCLUDING ALL)")
            for step in steps:
                if step == "DROP_TRIGRAM":
                    cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s "
                                   "AND indexdef LIKE '%%gin_trgm_ops%%'", [table])
                    for (name,) in cursor.fetchall():
                        cursor.execute(f"DROP INDEX {quote(name)}")
                elif step == "JSON":
                    for field in fields:
                        if isinstance(field, models.JSONField) and field.column not in queried:
                            column = quote(field.column)
                            cursor.execute(f"ALTER TABLE {table} ALTER COLUMN {column} "
                                           f"TYPE json USING {column}::json")
                else:
                    cursor.execute(step.format(table=table))
            tables[f"  {label}"] = table
    copy_rounds(values, columns, tables, rounds=5)


if __name__ == "__main__":
    main()
