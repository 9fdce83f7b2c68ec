"""The hot lookups written as fixed prepared statements (``emailapi.lib.rows``) give what the
ORM gives: every field of the account, folder and message, converted alike (JSON, dates,
booleans, nulls), on PostgreSQL and on SQLite, and a miss is still the right 404. So do a
worker's reads and writes at each connect (its account row, the credentials, the folder
rows a sync pass locks, the state it records)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from django.db import transaction
from django.utils import timezone as django_timezone

from accounts import mail_proxy
from accounts import state as account_state
from accounts.credentials import get_credential, get_credentials, set_credential
from accounts.errors import AccountNotFound
from accounts.models import EmailAccount
from mailboxes import listing
from mailboxes.errors import MailboxNotFound, MessageNotFound
from mailboxes.models import Folder, Message
from mailboxes.sync import index
from tests.mailboxes.helpers import synced_inbox
from webhooks.models import EngineSettings

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


def test_a_workers_session_row_is_the_orms_deferred_row_with_its_tenant(
        alice, stored, django_assert_num_queries):
    """What a worker reads at each connect (``EmailAccount.for_session``): the fields it
    reads as the ORM has them, the rest deferred as ``defer()`` leaves them, the tenant
    joined in (no second query when the address policy asks for it)."""
    account, *_ = stored
    leave_out = ("name", "email", "webhooks", "created_at")
    with django_assert_num_queries(1):
        found = EmailAccount.for_session(account.pk, leave_out, with_tenant=True)
        tenant = found.tenant
    orm = EmailAccount.objects.select_related("tenant").defer(*leave_out).get(pk=account.pk)
    assert found.get_deferred_fields() == orm.get_deferred_fields() == set(leave_out)
    loaded = {f.attname for f in EmailAccount._meta.concrete_fields} - set(leave_out)
    assert {k: getattr(found, k) for k in loaded} == {k: getattr(orm, k) for k in loaded}
    assert _fields(tenant) == _fields(orm.tenant)
    assert tenant.pk == alice.tenant.pk
    bare = EmailAccount.for_session(account.pk, leave_out)
    assert bare.get_deferred_fields() == set(leave_out)
    assert not EmailAccount.tenant.field.is_cached(bare)
    assert bare.name == account.name  # a deferred field is still read when asked for
    assert EmailAccount.for_session(account.pk + 1000, leave_out, with_tenant=True) is None


def test_a_workers_session_row_carries_the_tenants_proxy_so_connecting_reads_nothing_more(
        alice, stored, django_assert_num_queries):
    """The tenant's proxy (settings proxyUrl while proxyEnabled) comes with the session row,
    so a connect of an account without a proxy of its own asks nothing more of PostgreSQL."""
    account, *_ = stored
    leave_out = ("name", "email", "webhooks", "created_at")
    found = EmailAccount.for_session(account.pk, leave_out, with_tenant=True)
    assert found.tenant_proxy_row is None
    with django_assert_num_queries(0):
        assert mail_proxy.connection_proxy(found) is None
    row, _ = EngineSettings.objects.get_or_create(tenant=alice.tenant)
    mail_proxy.set_tenant_proxy(row, "socks5://relay:s3cret@192.0.2.7:1080")
    row.proxy_enabled = True
    row.save()
    found = EmailAccount.for_session(account.pk, leave_out, with_tenant=True)
    with django_assert_num_queries(0):
        proxy = mail_proxy.connection_proxy(found)
    assert (proxy.host, proxy.port, proxy.user, proxy.password) == (
        "192.0.2.7", 1080, "relay", "s3cret")
    EngineSettings.objects.filter(pk=row.pk).update(proxy_enabled=False)
    found = EmailAccount.for_session(account.pk, leave_out, with_tenant=True)
    assert mail_proxy.connection_proxy(found) is None


def test_two_credentials_open_in_one_query(stored, django_assert_num_queries):
    account, *_ = stored
    set_credential(account, "imap.accessToken", "token-1")
    with django_assert_num_queries(1):
        opened = get_credentials(account, "imap.pass", "imap.accessToken")
    assert opened == (get_credential(account, "imap.pass"), "token-1")
    assert opened[0]  # register() stored the password
    assert get_credentials(account, "smtp.pass", "smtp.accessToken") == (None, None)


def test_the_folder_rows_a_sync_pass_locks_are_the_orms_rows(stored):
    account, inbox, sent, _ = stored
    with transaction.atomic():
        rows = sorted(index._locked_folders(account.pk), key=lambda f: f.pk)
    assert [_fields(f) for f in rows] == [_fields(Folder.objects.get(pk=f.pk))
                                          for f in (inbox, sent)]
    assert index._locked_folders(account.pk + 1000) == []


def test_a_state_written_alone_is_written_as_the_orm_would(stored):
    """``set_state`` of a state alone goes through one fixed statement: a fenced write still
    leaves a paused account paused and says so, an unfenced one writes."""
    account, *_ = stored
    assert account_state.set_state(account, EmailAccount.State.CONNECTED)
    row = EmailAccount.objects.get(pk=account.pk)
    assert (row.state, row.state_changed_at) == ("connected", account.state_changed_at)
    EmailAccount.objects.filter(pk=account.pk).update(paused=True, state="paused")
    assert not account_state.set_state(account, EmailAccount.State.CONNECTED,
                                       fence=lambda: True)
    assert EmailAccount.objects.get(pk=account.pk).state == "paused"
    assert not account_state.set_state(account, EmailAccount.State.PAUSED, fence=lambda: False)
    assert account_state.set_state(account, EmailAccount.State.PAUSED, fence=lambda: True)


def test_a_connect_through_the_tenants_proxy_reads_the_secret_and_when_it_was_given_at_once(
        alice, stored, django_assert_num_queries):
    """Through the tenant's proxy a connect also needs when the password was given
    (``accounts.secret_routes``): read with the password in the one prepared credential
    statement, not by a second (ORM-compiled) query at every connect."""
    from accounts import secret_routes
    from mailboxes import connection_settings

    account, *_ = stored
    row, _ = EngineSettings.objects.get_or_create(tenant=alice.tenant)
    mail_proxy.set_tenant_proxy(row, "socks5://relay:s3cret@192.0.2.7:1080")
    row.proxy_enabled = True
    row.proxy_route_set_at = django_timezone.now()  # after the password was given
    row.save()
    leave_out = ("name", "email", "webhooks", "created_at")
    found = EmailAccount.for_session(account.pk, leave_out, with_tenant=True)
    with django_assert_num_queries(1):
        opened = connection_settings.account_imap_settings(found)
    assert opened.password == get_credential(account, "imap.pass")
    assert opened.tls_required == secret_routes.tls_required(found, "imap")
    assert opened.tls_required is not None
