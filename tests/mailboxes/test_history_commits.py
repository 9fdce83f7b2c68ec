"""How the index writer commits: a batch of silent history (a first index's backfill) commits
without waiting for the WAL flush, since it raises no event and carries its own cursor; new
mail, which raises events, and any caller's own transaction keep PostgreSQL's durable commit."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from mailboxes.imap.types import MessageMeta
from mailboxes.models import Folder, Message
from mailboxes.sync import index
from tests.base import ON_SQLITE
from tests.mailboxes.helpers import synced_inbox

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.skipif(ON_SQLITE, reason="synchronous_commit is PostgreSQL's")]

LAZY = "synchronous_commit TO OFF"


@pytest.fixture
def folder(alice, mail_user) -> Folder:
    return synced_inbox(alice.tenant, mail_user)


def _metas(*uids: int) -> list[MessageMeta]:
    return [MessageMeta(uid=uid, subject=f"m{uid}", message_id=f"<m{uid}@example.test>")
            for uid in uids]


def _sent(queries: CaptureQueriesContext) -> str:
    return "\n".join(query["sql"] for query in queries.captured_queries)


def _setting() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


def test_it_commits_silent_history_without_waiting_for_the_flush(folder):
    with CaptureQueriesContext(connection) as queries:
        index.add_messages(folder, _metas(1, 2, 3), notify=False,
                           cursor={"backfill_below": 1})
    assert LAZY in _sent(queries)
    # Rows and cursor committed together, and the setting ended with that transaction.
    assert sorted(Message.objects.filter(folder=folder).values_list("uid", flat=True)) == [1, 2, 3]
    assert Folder.objects.get(pk=folder.pk).backfill_below == 1
    assert _setting() == "on"


def test_it_commits_new_mail_durably(folder):
    with CaptureQueriesContext(connection) as queries:
        rows = index.add_messages(folder, _metas(4), notify=True)
    assert [row.uid for row in rows] == [4]
    assert LAZY not in _sent(queries)


def test_it_leaves_a_callers_own_transaction_durable(folder):
    with transaction.atomic():
        index.add_messages(folder, _metas(5), notify=False)
        assert _setting() == "on"
    assert Message.objects.filter(folder=folder, uid=5).exists()
