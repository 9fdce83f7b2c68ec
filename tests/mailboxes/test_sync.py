"""The sync layer against real Dovecot: first index, then every kind of change, as events."""

from __future__ import annotations

import pytest

from mailboxes.models import Folder, Message
from mailboxes.sync.account import sync_account
from mailboxes.sync.folder import sync_folder
from tests.mailboxes.helpers import events_of, open_session, register
from tests.servers import seed

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]


def test_first_sync_indexes_history_silently(synced):
    account, uids = synced.account, synced.uids
    inbox = Folder.objects.get(email_account=account, path="INBOX")
    rows = {m.uid: m for m in Message.objects.filter(folder=inbox)}
    assert sorted(rows) == sorted(uids)
    subjects = {m.subject for m in rows.values()}
    assert seed.UNICODE_SUBJECT in subjects
    assert not events_of(account, "messageNew", "mailboxNew")
    initialized = events_of(account, "accountInitialized")
    assert len(initialized) == 1
    assert initialized[0].data["messages"] == 6
    uses = dict(Folder.objects.filter(email_account=account).values_list("path", "special_use"))
    assert uses["INBOX"] == "\\Inbox"
    assert uses["Sent"] == "\\Sent"
    assert uses["Trash"] == "\\Trash"
    assert inbox.messages == 6
    assert inbox.uidvalidity
    assert inbox.backfill_below == 0


def test_index_holds_envelope_threads_and_attachments(synced):
    account = synced.account
    by_mid = {m.message_id: m for m in Message.objects.filter(email_account=account)}
    reply = by_mid[seed.MESSAGE_IDS["reply"]]
    original = by_mid[seed.MESSAGE_IDS["plain"]]
    assert reply.in_reply_to == seed.MESSAGE_IDS["plain"]
    assert reply.thread_id == original.thread_id
    assert by_mid[seed.MESSAGE_IDS["unicode"]].thread_id != original.thread_id
    with_files = by_mid[seed.MESSAGE_IDS["attachments"]]
    assert with_files.has_attachments
    assert {a["filename"] for a in with_files.attachments} >= {seed.PDF_FILENAME}
    assert not original.has_attachments
    assert original.from_address["address"]
    assert all(m.email_id for m in by_mid.values())
    assert len({m.email_id for m in by_mid.values()}) == 6


def test_a_new_message_raises_message_new_once(synced, mail_user):
    account, session = synced.account, synced.session
    [uid] = seed.seed_mailbox(mail_user, messages=[seed.make_message(subject="Fresh news")])
    inbox = Folder.objects.get(email_account=account, path="INBOX")
    assert sync_folder(session, inbox).new == 1
    assert sync_folder(session, Folder.objects.get(pk=inbox.pk)).new == 0
    [event] = events_of(account, "messageNew")
    assert event.data["uid"] == uid
    assert event.data["subject"] == "Fresh news"
    assert event.data["path"] == "INBOX"
    assert event.data["id"]
    assert Message.objects.filter(folder=inbox, uid=uid).count() == 1


def test_flag_changes_by_another_client_raise_message_updated(synced, mail_user):
    account, session, uids = synced.account, synced.session, synced.uids
    with mail_user.imap_client() as other:
        other.select_folder("INBOX")
        other.add_flags([uids[0]], [b"\\Seen", b"\\Flagged"])
    inbox = Folder.objects.get(email_account=account, path="INBOX")
    assert sync_folder(session, inbox).updated == 1
    [event] = events_of(account, "messageUpdated")
    assert event.data["uid"] == uids[0]
    assert set(event.data["changes"]["flags"]["added"]) == {"\\Seen", "\\Flagged"}
    assert event.data["changes"]["flags"]["deleted"] == []
    assert set(Message.objects.get(folder=inbox, uid=uids[0]).flags) >= {"\\Seen", "\\Flagged"}


def test_expunge_by_another_client_raises_message_deleted(synced, mail_user):
    account, session, uids = synced.account, synced.session, synced.uids
    with mail_user.imap_client() as other:
        other.select_folder("INBOX")
        other.delete_messages([uids[1]])
        other.expunge()
    inbox = Folder.objects.get(email_account=account, path="INBOX")
    assert sync_folder(session, inbox).deleted == 1
    [event] = events_of(account, "messageDeleted")
    assert event.data["uid"] == uids[1]
    assert event.data["path"] == "INBOX"
    assert not Message.objects.filter(folder=inbox, uid=uids[1]).exists()


def test_new_and_deleted_folders(synced, mail_user):
    account, session = synced.account, synced.session
    with mail_user.imap_client() as other:
        other.create_folder("Old")
    sync_account(session, account)
    assert [e.data["path"] for e in events_of(account, "mailboxNew")] == ["Old"]
    with mail_user.imap_client() as other:
        other.create_folder("Projects")
        other.delete_folder("Old")
    sync_account(session, account)
    new = events_of(account, "mailboxNew")[-1]
    [gone] = events_of(account, "mailboxDeleted")
    assert new.data["path"] == "Projects"
    assert gone.data["path"] == "Old"
    assert not Folder.objects.filter(email_account=account, path="Old").exists()


def test_uidvalidity_change_reindexes_and_raises_mailbox_reset(synced, mail_user):
    account, session = synced.account, synced.session
    with mail_user.imap_client() as other:
        other.create_folder("Work")
    seed.seed_mailbox(mail_user, folder="Work", messages=[seed.make_message(subject="old")])
    sync_account(session, account)
    work = Folder.objects.get(email_account=account, path="Work")
    old_number, old_validity = work.number, work.uidvalidity
    with mail_user.imap_client() as other:
        other.delete_folder("Work")
        other.create_folder("Work")
    seed.seed_mailbox(mail_user, folder="Work", messages=[seed.make_message(subject="new")])
    result = sync_folder(session, work)
    assert result.reset
    work.refresh_from_db()
    assert work.uidvalidity != old_validity
    assert work.number != old_number
    assert [m.subject for m in Message.objects.filter(folder=work)] == ["new"]
    [reset] = events_of(account, "mailboxReset")
    assert reset.data["path"] == "Work"
    assert reset.data["prevUidValidity"] == str(old_validity)
    assert not events_of(account, "messageNew")


def test_history_fills_in_newest_first_in_batches(alice, mail_user, monkeypatch):
    from mailboxes.sync import folder as folder_sync

    monkeypatch.setattr(folder_sync, "FIRST_BATCH", 3)
    monkeypatch.setattr(folder_sync, "BATCH", 4)
    messages = [seed.make_message(subject=f"m{i}") for i in range(10)]
    uids = seed.seed_mailbox(mail_user, messages=messages)
    account = register(alice.tenant, mail_user)
    session = open_session(account)
    inbox_listing = [f for f in session.list_folders() if f.path == "INBOX"]
    from mailboxes.sync import index

    [inbox] = [f for f in index.apply_folder_list(account, inbox_listing, notify=False)]
    sync_folder(session, inbox, backfill_batches=1)
    first = sorted(Message.objects.filter(folder=inbox).values_list("uid", flat=True))
    assert first == sorted(uids)[-3:]  # the newest page first
    inbox.refresh_from_db()
    assert inbox.backfill_below == sorted(uids)[-3]
    sync_folder(session, inbox)
    assert sorted(Message.objects.filter(folder=inbox).values_list("uid", flat=True)) == uids
    inbox.refresh_from_db()
    assert inbox.backfill_below == 0
    session.client.logout()


def test_a_move_by_another_client_is_one_message_moved(synced, mail_user):
    account, session, uids = synced.account, synced.session, synced.uids
    assert Folder.objects.filter(email_account=account, path="Archive").exists()
    before = Message.objects.get(folder__email_account=account, folder__path="INBOX", uid=uids[0])
    with mail_user.imap_client() as other:
        other.select_folder("INBOX")
        other.move([uids[0]], "Archive")
    sync_account(session, account)
    assert not events_of(account, "messageDeleted", "messageNew")
    [moved] = events_of(account, "messageMoved")
    assert moved.data["source"]["path"] == "INBOX"
    assert moved.data["source"]["uid"] == uids[0]
    assert moved.data["path"] == "Archive"
    assert moved.data["destination"]["path"] == "Archive"
    assert moved.data["emailId"] == before.email_id
    assert moved.data["id"] != moved.data["source"]["id"]
    after = Message.objects.get(folder__email_account=account, folder__path="Archive")
    assert after.email_id == before.email_id
    assert after.subject == before.subject


def test_a_move_stays_one_message_moved_while_the_publisher_runs_mid_pass(
        synced, mail_user, monkeypatch):
    """The publisher runs between the two halves of a move (as the dispatcher may at any
    moment): the first half is held, so it can still be withdrawn for one messageMoved; an
    unpaired half is published once the pass releases it."""
    from mailboxes.sync import folder as folder_sync
    from webhooks import sequencer
    from webhooks.models import Event

    account, session, uids = synced.account, synced.session, synced.uids
    sequencer.publish_pending()  # what the first sync recorded
    with mail_user.imap_client() as other:
        other.select_folder("INBOX")
        other.move([uids[0]], "Archive")
        other.add_flags([uids[1]], [b"\\Deleted"])
        other.expunge()  # a plain delete: a half with no partner
    published_mid_pass = []
    real_sync_folder = folder_sync.sync_folder

    def sync_then_publish(*args, **kwargs):
        result = real_sync_folder(*args, **kwargs)
        sequencer.publish_pending()
        published_mid_pass.extend(Event.objects.filter(
            account_id=account.account_id, seq__isnull=False,
            event__in=["messageDeleted", "messageNew"]).values_list("event", flat=True))
        return result

    monkeypatch.setattr("mailboxes.sync.account.sync_folder", sync_then_publish)
    sync_account(session, account)
    assert published_mid_pass == []  # the halves were held while the pass ran
    sequencer.publish_pending()
    published = list(Event.objects.filter(account_id=account.account_id, seq__isnull=False,
                                          event__startswith="message").order_by("seq"))
    assert sorted(e.event for e in published) == ["messageDeleted", "messageMoved"]
    assert not Event.objects.filter(account_id=account.account_id, dispatched_at__isnull=True).exists()


def test_a_held_half_is_published_after_its_timeout_even_if_never_released(alice):
    from datetime import timedelta

    from django.utils import timezone

    from webhooks import events, sequencer

    held = events.record(alice.tenant, events.MESSAGE_DELETED, "box", {"uid": 1}, hold=True)
    assert sequencer.publish_pending() == 0
    type(held).objects.filter(pk=held.pk).update(held_until=timezone.now() - timedelta(seconds=1))
    assert sequencer.publish_pending() == 1
