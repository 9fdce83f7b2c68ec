"""The one table of listing fields (``mailboxes.message_fields``) agrees with every copy of a
message: the index row the sync writes, the columns the one-query listing selects, the shape
the API and events show, and the serializer the OpenAPI document is built from."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from accounts.models import EmailAccount
from mailboxes import listing, message_fields
from mailboxes.api.serializers import MessageSummarySerializer
from mailboxes.imap.types import Address, MessageMeta
from mailboxes.models import Folder, Message
from mailboxes.sync import index

pytestmark = pytest.mark.django_db

NAMES = [field.name for field in message_fields.FIELDS]


def _meta(uid: int, **overrides) -> MessageMeta:
    values = dict(
        uid=uid, flags=("\\Seen", "\\Flagged"), labels=("Work",), size=1234,
        internal_date=datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc),
        date=datetime(2024, 5, 1, 11, 59, tzinfo=timezone.utc), subject=f"Hello {uid}",
        from_=[Address("Ann", "ann@example.com")], sender=[Address("Bot", "bot@example.com")],
        reply_to=[Address("", "reply@example.com")], to=[Address("Bo", "bo@example.com")],
        cc=[Address("Cy", "cy@example.com")], bcc=[], message_id=f"<m{uid}@example.com>",
        in_reply_to="<m0@example.com>", references=["<m0@example.com>"], has_attachments=True,
        email_id=f"E{uid}", thread_id="T1")
    values.update(overrides)
    return MessageMeta(**values)


@pytest.fixture
def inbox(alice) -> Folder:
    account = EmailAccount.objects.create(tenant=alice.tenant, account_id="fields",
                                          imap={"host": "imap.example.test", "port": 993})
    folder = Folder.objects.create(email_account=account, path="INBOX", name="INBOX", number=1,
                                   uidvalidity=7, uidnext=10, synced_uidnext=10,
                                   backfill_below=0, messages=2)
    index.add_messages(folder, [_meta(3), _meta(4, message_id=None, in_reply_to=None,
                                                 from_=[], sender=[], date=None,
                                                 email_id=None, thread_id=None)],
                       notify=False)
    return folder


def test_the_shape_is_the_table_in_order(inbox):
    row = Message.objects.get(folder=inbox, uid=3)
    assert list(message_fields.summary(inbox, row)) == NAMES


def test_the_documented_serializer_is_the_table_in_order():
    assert list(MessageSummarySerializer().fields) == NAMES


def test_the_listing_reads_every_column_the_shape_shows():
    shown = {field.column for field in message_fields.FIELDS if field.column}
    shown |= {column for field in message_fields.FIELDS for column in field.reads}
    assert set(message_fields.COLUMNS) == shown
    concrete = {f.attname for f in Message._meta.concrete_fields}
    assert set(message_fields.COLUMNS) <= concrete
    assert not set(message_fields.COLUMNS) & set(listing.LISTING_DEFERRED)


def test_the_index_row_fills_every_column(inbox):
    row = index._row_values(inbox, _meta(9), {}, datetime.now(timezone.utc))
    columns = {f.attname for f in Message._meta.concrete_fields if not f.primary_key}
    assert set(row) == columns


def test_the_one_query_listing_shows_what_the_orm_listing_shows(alice, inbox):
    one_query = listing.tenant_page(alice.tenant, "fields", "INBOX", 0, 20, None)
    orm = listing.page_of(inbox, 0, 20, None)
    assert one_query["messages"] == orm["messages"]
    assert [m["uid"] for m in one_query["messages"]] == [4, 3]


def test_the_serializer_accepts_what_the_shape_shows(alice, inbox):
    for shown in listing.tenant_page(alice.tenant, "fields", "INBOX", 0, 20, None)["messages"]:
        serializer = MessageSummarySerializer(data=shown)
        assert serializer.is_valid(), serializer.errors


def test_the_shape_of_a_full_row(inbox):
    shown = message_fields.summary(inbox, Message.objects.get(folder=inbox, uid=3))
    assert shown["from"] == {"name": "Ann", "address": "ann@example.com"}
    assert shown["date"] == "2024-05-01T11:59:00.000Z"
    assert (shown["unseen"], shown["flagged"], shown["answered"]) == (False, True, False)
    assert (shown["emailId"], shown["threadId"]) == ("E3", "T1")
    assert shown["messageId"] == "<m3@example.com>"


def test_the_shape_of_a_sparse_row(inbox):
    shown = message_fields.summary(inbox, Message.objects.get(folder=inbox, uid=4))
    assert shown["from"] is None
    assert shown["sender"] is None
    assert shown["date"] == "2024-05-01T12:00:00.000Z"  # no Date header: INTERNALDATE
    assert shown["messageId"] is None
    assert shown["inReplyTo"] is None
