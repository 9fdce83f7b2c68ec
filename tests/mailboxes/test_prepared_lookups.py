"""The hot lookups written as fixed prepared statements (``emailapi.lib.rows``) give what the
ORM gives: every field of the account, folder and message, converted alike (JSON, dates,
booleans, nulls), on PostgreSQL and on SQLite, and a miss is still the right 404."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from accounts.errors import AccountNotFound
from accounts.models import EmailAccount
from mailboxes import listing
from mailboxes.errors import MailboxNotFound, MessageNotFound
from mailboxes.models import Folder, Message
from tests.mailboxes.helpers import synced_inbox

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]


def _fields(instance) -> dict:
    return {field.attname: getattr(instance, field.attname)
            for field in instance._meta.concrete_fields}


@pytest.fixture
def stored(alice, mail_user):
    inbox = synced_inbox(alice.tenant, mail_user)
    Folder.objects.filter(pk=inbox.pk).update(special_use="\\Inbox", list_flags=["\\HasNoChildren"],
                                              last_synced_at=datetime(2026, 1, 2, 3, 4, 5,
                                                                      tzinfo=timezone.utc))
    sent = Folder.objects.create(email_account=inbox.email_account, path="Sent Items",
                                 name="Sent Items", number=2, special_use="\\Sent")
    message = Message.objects.create(
        email_account=inbox.email_account, folder=inbox, uid=42, flags=["\\Seen", "$Work"],
        labels=[], modseq=None, internal_date=datetime(2026, 5, 6, 7, 8, 9, tzinfo=timezone.utc),
        size=1234, subject="Ünïcode subject", from_address={"name": "Ann", "address": "a@x.test"},
        sender=None, to=[{"name": "", "address": "b@x.test"}], date=None,
        message_id="<m1@x.test>", references=["<r1@x.test>"], has_attachments=True,
        attachments=[{"part": "2", "size": 10}], email_id="E1", thread_id="T1",
        text_parts=[{"part": "1", "contentType": "text/plain", "size": 5}])
    return inbox.email_account, Folder.objects.get(pk=inbox.pk), sent, message


def test_an_account_by_tenant_and_id_is_the_orms_row(alice, bob, stored):
    account, *_ = stored
    found = EmailAccount.of_tenant(alice.tenant, account.account_id)
    assert type(found) is EmailAccount
    assert found._state.adding is False
    assert _fields(found) == _fields(EmailAccount.objects.get(pk=account.pk))
    assert EmailAccount.of_tenant(bob.tenant, account.account_id) is None
    assert EmailAccount.of_tenant(alice.tenant, "nobody") is None


def test_a_message_with_its_folder_is_the_orms_row(stored):
    account, inbox, _, message = stored
    folder, row = listing._row(account, inbox.number, 42, "shown")
    assert _fields(row) == _fields(Message.objects.get(pk=message.pk))
    assert _fields(folder) == _fields(inbox)
    assert row.folder is folder
    assert folder.email_account is account
    assert row.flags == ["\\Seen", "$Work"]
    assert row.sender is None
    assert row.has_attachments is True
    with pytest.raises(MessageNotFound):
        listing._row(account, inbox.number, 43, "shown")


def test_a_folder_by_path_inbox_or_special_use_is_the_orms_row(alice, bob, stored):
    account, inbox, sent, _ = stored
    for path, expected in (("INBOX", inbox), ("inbox", inbox), ("Sent Items", sent),
                           ("\\sent", sent), ("\\Inbox", inbox)):
        found = listing.tenant_folder(alice.tenant, account.account_id, path)
        assert _fields(found) == _fields(Folder.objects.get(pk=expected.pk)), path
        assert _fields(found.email_account) == _fields(EmailAccount.objects.get(pk=account.pk))
    bare = listing.tenant_folder(alice.tenant, account.account_id, "Sent Items",
                                 with_account=False)
    assert bare.pk == sent.pk
    assert bare.email_account_id == account.pk
    with pytest.raises(MailboxNotFound):
        listing.tenant_folder(alice.tenant, account.account_id, "sent items")
    with pytest.raises(AccountNotFound):
        listing.tenant_folder(bob.tenant, account.account_id, "INBOX")


def test_a_search_page_is_summarised_like_a_listing(alice, stored):
    _, inbox, _, _ = stored
    listed = listing.tenant_page(alice.tenant, inbox.email_account.account_id, "INBOX", 0, 20,
                                 None)["messages"]
    found = listing.summaries(inbox, [42, 99])
    assert list(found) == [42]
    assert found[42] == listed[0]
    assert listing.summaries(inbox, []) == {}
