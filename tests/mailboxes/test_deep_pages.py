"""Deep listing pages (``?page=N``) found through the per-block UID counts (``UidBlock``), which
the database keeps in step with every insert (COPY included) and delete of messages.

The rows are written by the index writer itself (``mailboxes.sync.index``) into a folder that
looks fully synced, with gaps, expunges and late arrivals in several UID blocks; every page is
compared with the ordinary path (an ORM offset) and with the UIDs worked out here."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import Count
from django.test.utils import CaptureQueriesContext

from mailboxes import listing
from mailboxes.imap.types import MessageMeta
from mailboxes.models import Folder, Message, UidBlock
from mailboxes.sync import index
from tests.base import ON_SQLITE
from tests.mailboxes.helpers import synced_inbox

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]

BLOCK = UidBlock.BLOCK_SIZE


@pytest.fixture
def folder(alice, mail_user) -> Folder:
    return synced_inbox(alice.tenant, mail_user)


def index_uids(folder: Folder, uids) -> None:
    uids = sorted(uids)
    for start in range(0, len(uids), 1000):
        index.add_messages(folder, [MessageMeta(uid=uid, subject=f"m{uid}")
                                    for uid in uids[start:start + 1000]], notify=False)
    _counts_now(folder)


def _counts_now(folder: Folder) -> None:
    top = max(Message.objects.filter(folder=folder).values_list("uid", flat=True), default=0)
    count = Message.objects.filter(folder=folder).count()
    Folder.objects.filter(pk=folder.pk).update(messages=count, uidnext=top + 1,
                                               synced_uidnext=top + 1)


def block_counts(folder: Folder) -> dict[int, int]:
    return {row.block: row.messages for row in UidBlock.objects.filter(folder=folder)
            if row.messages}


def expected_blocks(folder: Folder) -> dict[int, int]:
    counts: dict[int, int] = {}
    for uid in Message.objects.filter(folder=folder).values_list("uid", flat=True):
        counts[uid // BLOCK] = counts.get(uid // BLOCK, 0) + 1
    return counts


def check_pages(alice, folder: Folder, page_size: int) -> None:
    newest_first = sorted(Message.objects.filter(folder=folder).values_list("uid", flat=True),
                          reverse=True)
    pages = -(-len(newest_first) // page_size)
    for page in [0, 1, *range(max(0, pages - 40), pages + 1)]:
        with CaptureQueriesContext(connection) as queries:
            fast = listing.tenant_page(alice.tenant, "box", "INBOX", page, page_size, None)
        want = newest_first[page * page_size:(page + 1) * page_size]
        assert [m["uid"] for m in fast["messages"]] == want, page
        folder_row = Folder.objects.get(pk=folder.pk)
        assert fast == listing.page_of(folder_row, page, page_size, None), page
        if want:
            assert len(queries) == 1, page
        if want and page * page_size >= listing.DEEP_OFFSET and not ON_SQLITE:
            assert UidBlock._meta.db_table in queries[0]["sql"], page


def test_deep_pages_match_the_plain_offset_through_inserts_and_deletes(alice, folder):
    # Four blocks, the second one sparse, the last one partly filled.
    index_uids(folder, [*range(1, BLOCK), *range(BLOCK, 2 * BLOCK, 5),
                        *range(2 * BLOCK, 3 * BLOCK + 300)])
    if not ON_SQLITE:
        assert block_counts(folder) == expected_blocks(folder)
    check_pages(alice, folder, 20)

    # Expunges across blocks (a whole block goes), then late arrivals into an old gap.
    index.remove_messages(folder, [*range(3, BLOCK, 7), *range(BLOCK, 2 * BLOCK)])
    index_uids(folder, range(BLOCK + 2, 2 * BLOCK, 5))
    _counts_now(folder)
    if not ON_SQLITE:
        assert block_counts(folder) == expected_blocks(folder)
    check_pages(alice, folder, 20)
    check_pages(alice, folder, 7)


def test_a_page_past_the_end_is_empty_and_cursors_still_walk(alice, folder):
    index_uids(folder, range(1, 3 * BLOCK))
    total = 3 * BLOCK - 1
    past = listing.tenant_page(alice.tenant, "box", "INBOX", total // 20 + 1, 20, None)
    assert past["messages"] == []
    deep = listing.tenant_page(alice.tenant, "box", "INBOX", total // 20 - 2, 20, None)
    walked, cursor = [m["uid"] for m in deep["messages"]], deep["nextPageCursor"]
    while cursor:
        page = listing.tenant_page(alice.tenant, "box", "INBOX", 0, 20, cursor)
        walked += [m["uid"] for m in page["messages"]]
        cursor = page["nextPageCursor"]
    assert walked == list(range(total - (total // 20 - 2) * 20, 0, -1))


@pytest.mark.skipif(ON_SQLITE, reason="the counts are kept by PostgreSQL triggers")
def test_block_counts_follow_every_writer(alice, folder):
    index_uids(folder, range(1, 2 * BLOCK + 10))
    other = Folder.objects.create(email_account=folder.email_account, path="Archive",
                                  name="Archive", number=2, uidvalidity=9)
    index.record_transfer(folder, other, {uid: uid for uid in range(5, 50)}, keep_source=False)
    assert block_counts(folder) == expected_blocks(folder)
    assert block_counts(other) == {0: 45}
    Message.objects.filter(folder=folder, uid__gte=BLOCK).delete()
    assert block_counts(folder) == expected_blocks(folder)
    other.delete()
    assert not UidBlock.objects.filter(folder_id=other.pk).exists()
    grouped = (Message.objects.filter(folder=folder).values("folder")
               .annotate(n=Count("id")).values_list("n", flat=True))
    assert sum(block_counts(folder).values()) == grouped[0]
