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
