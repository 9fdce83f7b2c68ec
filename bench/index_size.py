"""PostgreSQL and Redis bytes per indexed message, per event and per account: the sizing
figures of the README's "Running at scale" ("Sizing at a glance").

Starts a private Dovecot, fills one INBOX with N varied messages (``imap_fetch.fill``), and
in a throwaway PostgreSQL database (``bench_size_<pid>``, dropped at the end):

1. registers K accounts that are never synced and reads ``pg_total_relation_size`` (table,
   TOAST and indexes) of the account tables before and after: bytes per registered account;
2. with ``logs: true`` on one more account, indexes the INBOX (``sync_account``, as the
   worker's first sync) and reads the index tables: bytes per indexed message (the folder
   rows are counted with the account);
3. appends M more messages and syncs again, which records a ``messageNew`` each: bytes per
   event in the outbox (kept ``EMAILAPI_EVENT_RETENTION_DAYS``);
4. folders: too few rows here for their table's size to mean anything (one page is 8 KiB),
   so their average row as stored (``pg_column_size``) is given instead;
5. Redis: ``MEMORY USAGE`` of that account's protocol log over its lines;
6. Redis per held account: a worker's lease (``Leases.acquire_many``, with a worker id of the
   worker's own shape) and poll record (``PollSchedule``) for each of the K accounts, as
   ``MEMORY USAGE`` of each key and as the server's ``used_memory`` growth over them, which
   also counts Redis's table of expiry times and hash slots (meaningful on a private Redis:
   ``BENCH_REDIS=redis://127.0.0.1:6391``, say).

Sizes are as PostgreSQL has them after the writes (no VACUUM FULL: what a running system
holds), so they include the free space in pages.

    .venv/bin/python bench/index_size.py [--messages 5000] [--accounts 200] [--new 500]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import _engine  # noqa: E402
from bench.imap_fetch import fill  # noqa: E402
from tests.servers.dovecot import Dovecot  # noqa: E402

ACCOUNT_TABLES = ("accounts_emailaccount", "accounts_credential")
INDEX_TABLES = ("mailboxes_message",)
EVENT_TABLES = ("webhooks_event",)


def sizes(tables) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        total = 0
        for table in tables:
            cursor.execute("SELECT pg_total_relation_size(%s)", [table])
            total += cursor.fetchone()[0]
    return total


def row_bytes(table: str) -> float:
    """The average row of ``table`` as stored (``pg_column_size``), without page or index
    overhead: for tables too small here for their size to mean anything."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT avg(pg_column_size(t.*)) FROM {table} t")  # noqa: S608
        return float(cursor.fetchone()[0] or 0)


def imap_fields(user) -> dict:
    settings = user.imap_settings(secure=False)
    settings["tls"] = {"rejectUnauthorized": False}
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--new", type=int, default=500)
    parser.add_argument("--redis-db", type=int, default=5)
    args = parser.parse_args()

    with Dovecot() as server:
        user = server.add_user()
        _engine.fill_in_child(user, args.messages)
        with _engine.throwaway_database(f"bench_size_{os.getpid()}", args.redis_db):
            _engine.setup_django()
            from accounts import services
            from accounts.models import Tenant
            from mailboxes import connection_settings, protocol_log
            from mailboxes.imap import client as imap
            from mailboxes.imap.session import ImapSession
            from mailboxes.models import Folder, Message
            from mailboxes.sync.account import sync_account
            from webhooks.models import Event

            tenant = services.create_tenant("Sizing")
            before = sizes(ACCOUNT_TABLES)
            for n in range(args.accounts):
                services.register_account(tenant, {
                    "account": f"idle-{n}", "email": f"idle-{n}@example.test",
                    "imap": {**imap_fields(user), "auth": {"user": f"idle-{n}@example.test",
                                                           "pass": f"password-{n:06d}"}}})
            per_account = (sizes(ACCOUNT_TABLES) - before) / args.accounts

            account = services.register_account(tenant, {"account": "big", "logs": True,
                                                         "imap": imap_fields(user)})
            before_index = sizes(INDEX_TABLES)
            session = ImapSession(imap.connect(connection_settings.account_imap_settings(account)))
            assert sync_account(session, account).complete
            indexed = Message.objects.filter(email_account=account).count()
            per_message = (sizes(INDEX_TABLES) - before_index) / indexed
            folders = Folder.objects.filter(email_account=account).count()
            per_folder = row_bytes("mailboxes_folder")

            fill(user, args.new)
            before_events = sizes(EVENT_TABLES)
            account.refresh_from_db()
            # Every folder synced: a STATUS of the selected INBOX (``only_changed``) need not
            # show mail another connection appended (RFC 3501 6.3.10), and Dovecot's does not.
            sync_account(session, account)
            session.client.logout()
            recorded = Event.objects.filter(tenant=tenant, event="messageNew").count()
            per_event = (sizes(EVENT_TABLES) - before_events) / max(1, recorded)

            from emailapi.lib.redis import get_redis
            redis = get_redis()
            key = protocol_log.key(account.pk)
            lines = redis.llen(key)
            per_line = (redis.memory_usage(key) or 0) / max(1, lines)
            _ = Tenant  # the tenant row itself is one per customer, not per mailbox
            held = held_account_bytes(redis, list(tenant.email_accounts.exclude(
                pk=account.pk).values_list("pk", flat=True)))

    print(f"PostgreSQL, pg_total_relation_size (table + TOAST + indexes), {indexed:,} messages")
    print(f"  per registered account ({args.accounts} accounts, "
          f"{', '.join(ACCOUNT_TABLES)}): {per_account:,.0f} B")
    print(f"  per folder (mailboxes_folder, average row of {folders}, pg_column_size, "
          f"no index): {per_folder:,.0f} B")
    print(f"  per indexed message (mailboxes_message): {per_message:,.0f} B")
    print(f"  per recorded event (webhooks_event, {recorded} messageNew): {per_event:,.0f} B")
    print(f"Redis: protocol log, {lines:,} lines: {per_line:,.0f} B per line")
    print(f"Redis per held account ({args.accounts} accounts): lease {held['lease']:,.0f} B, "
          f"poll record {held['poll']:,.0f} B (MEMORY USAGE); the server's used_memory "
          f"grew {held['server']:,.0f} B per account for both")


def held_account_bytes(redis, pks: list[int]) -> dict[str, float]:
    """Redis bytes of what a worker keeps per held account: its lease and its poll record."""
    import time

    from mailboxes.worker.imap_worker import new_worker_id
    from mailboxes.worker.leases import Leases
    from mailboxes.worker.poll_schedule import PollSchedule

    leases, polls = Leases(redis, new_worker_id(), 60), PollSchedule(redis)
    before = redis.info("memory")["used_memory"]
    assert len(list(leases.acquire_many(pks, len(pks)))) == len(pks)
    now = time.monotonic()
    for pk in pks:
        polls.note(pk, 1, now, 900.0)
    polls.flush()
    grown = redis.info("memory")["used_memory"] - before
    count = max(1, len(pks))
    return {"lease": sum(redis.memory_usage(leases.key(pk)) or 0 for pk in pks) / count,
            "poll": sum(redis.memory_usage(polls.key(pk)) or 0 for pk in pks) / count,
            "server": grown / count}


if __name__ == "__main__":
    main()
