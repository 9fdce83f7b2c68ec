"""The message table's indexes: none that a longer one already serves, and every lookup by a
foreign key (the account's and the folder's rows, the cascades and PostgreSQL's own key checks
when one is deleted) still has an index to walk."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from mailboxes.models import Message
from tests.base import ON_SQLITE

pytestmark = pytest.mark.django_db


@pytest.mark.sqlite
def test_no_index_of_the_message_table_is_the_start_of_another():
    """An index on columns that lead a longer index costs every insert and its bytes for
    lookups the longer one serves (the foreign keys' own indexes were two such)."""
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, Message._meta.db_table)
    # Unique constraints are indexes too (SQLite's introspection lists them apart).
    indexes = {name: tuple(info["columns"]) for name, info in found.items()
               if (info["index"] or info["unique"]) and not info["primary_key"]
               and info["columns"] and None not in info["columns"]}
    assert len(indexes) >= 5, found
    covered = sorted(
        (name, columns, longer) for name, columns in indexes.items()
        for other, longer in indexes.items()
        if other != name and len(longer) > len(columns) and longer[:len(columns)] == columns
        and not found[name]["unique"])
    assert covered == []


@pytest.mark.skipif(ON_SQLITE, reason="PostgreSQL's plans")
@pytest.mark.parametrize("column", ["email_account_id", "folder_id"])
def test_a_lookup_by_a_foreign_key_walks_an_index(column):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan TO off")
        cursor.execute(f'EXPLAIN SELECT 1 FROM "mailboxes_message" WHERE "{column}" = 42')
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index" in plan, plan
    assert "Seq Scan" not in plan, plan


@pytest.mark.skipif(ON_SQLITE, reason="PostgreSQL's plans")
def test_known_threads_probe_the_message_id_index_even_without_statistics(alice, mail_user):
    """A batch's replies look up the threads of messages already indexed. With no statistics
    that know the account's message ids (a table never analyzed, or an account newer than
    the last ANALYZE: every first index), ``message_id IN (...)`` of a few dozen ids was
    planned as a read of all the account's rows, which grew with every batch; each id must
    be one probe of ``message_by_message_id``, and the answer must be the same."""
    from mailboxes.imap.types import MessageMeta
    from mailboxes.sync import index
    from tests.mailboxes.helpers import synced_inbox

    folder = synced_inbox(alice.tenant, mail_user)
    table = Message._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        # No ANALYZE or VACUUM may run on the table until the test's transaction ends (this
        # lock mode conflicts with theirs, not with other sessions' writes): they would bring
        # back what is forgotten below.
        cursor.execute(f"LOCK TABLE {table} IN SHARE UPDATE EXCLUSIVE MODE")
        # Forget the table's column statistics and its size as last measured: a table never
        # analyzed (all rolled back with the test's transaction). The size counts too: the
        # table as earlier tests leave it (emptied and vacuumed: 0 rows in 1 page) makes the
        # account's other index look as cheap, and this test failed twice in full runs so.
        cursor.execute("DELETE FROM pg_statistic WHERE starelid = %s::regclass", [table])
        cursor.execute("UPDATE pg_class SET reltuples = -1, relpages = 0, relallvisible = 0"
                       " WHERE oid = %s::regclass", [table])
        cursor.execute(
            f"INSERT INTO {table} (email_account_id, folder_id, uid, flags, labels, size,"
            " subject, reply_to, \"to\", cc, bcc, message_id, in_reply_to, \"references\","
            " has_attachments, attachments, text_parts, from_text, to_text, cc_text, bcc_text,"
            " email_id, thread_id, indexed_at)"
            " SELECT %s, %s, n, '[]', '[]', 100, 'subject', '[]', '[]', '[]', '[]',"
            " '<m' || n || '@x.test>', '', '[]', false, '[]', '[]', '', '', '', '', 'e' || n,"
            " 't' || (n / 3), now() FROM generate_series(1, 40000) AS n",
            [folder.email_account_id, folder.pk])
        wanted = [f"<m{n}@x.test>" for n in (5, 3000, 39999)] + \
            [f"<absent-{n}@x.test>" for n in range(57)]
        metas = [MessageMeta(uid=1, in_reply_to=mid, references=[]) for mid in wanted]
        assert index._known_threads(folder.email_account_id, metas) == {
            "<m5@x.test>": "t1", "<m3000@x.test>": "t1000", "<m39999@x.test>": "t13333"}

        cursor.execute("EXPLAIN (ANALYZE, COSTS OFF) " + index._KNOWN_THREADS_SQL,
                       [folder.email_account_id, wanted])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index Scan using message_by_message_id" in plan, plan
    assert "Bitmap" not in plan, plan
    assert "Seq Scan on mailboxes_message" not in plan, plan
    assert "Rows Removed by Filter" not in plan, plan


@pytest.mark.sqlite
def test_deleting_an_account_deletes_its_messages_without_a_key_in_the_database(alice, mail_user):
    """The message table keeps no constraint on the account (only on the folder): Django's
    cascade still takes an account's messages with it."""
    from accounts import services
    from tests.mailboxes.helpers import synced_inbox

    folder = synced_inbox(alice.tenant, mail_user)
    Message.objects.create(email_account_id=folder.email_account_id, folder=folder, uid=1)
    services.delete_account(folder.email_account)
    assert not Message.objects.filter(email_account_id=folder.email_account_id).exists()
    assert not Message.objects.filter(folder_id=folder.pk).exists()


@pytest.mark.skipif(ON_SQLITE, reason="PostgreSQL's constraint check")
def test_a_message_of_a_folder_that_is_gone_is_refused(alice, mail_user):
    """The folder's key is the one left: the database refuses a row whose folder is gone (a
    first index committing into a folder just deleted), which also holds it to an account."""
    from django.db import IntegrityError

    from tests.mailboxes.helpers import synced_inbox

    folder = synced_inbox(alice.tenant, mail_user)
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        Message.objects.create(email_account_id=folder.email_account_id,
                               folder_id=folder.pk + 1000, uid=1)
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
