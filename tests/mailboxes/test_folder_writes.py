"""Folders and uploads through the API against real Dovecot: create (delimiter-aware),
rename, delete (never INBOX), APPEND of raw and structured messages, events once."""

from __future__ import annotations

import base64
import email
from email import policy

import pytest

from mailboxes.command_pool import pool
from mailboxes.sync.account import sync_account
from tests.mailboxes.helpers import events_of, open_session, register
from tests.servers import seed

pytestmark = pytest.mark.django_db

BOX = "/v1/account/box"


@pytest.fixture
def synced(alice, mail_user):
    uids = seed.seed_mailbox(mail_user, messages=[seed.make_message(
        subject="Original", message_id="<orig-1@example.com>", from_="Ann <ann@example.com>",
        to="Box <box@example.test>, Carl <carl@example.com>")])
    account = register(alice.tenant, mail_user, email="box@example.test")
    session = open_session(account)
    sync_account(session, account)
    original = alice.client.get(f"{BOX}/messages?path=INBOX").json()["messages"][0]["id"]
    yield account, session, original, uids
    session.client.logout()
    pool.close_all()


def server_folders(mail_user) -> set[str]:
    with mail_user.imap_client() as other:
        return {name for _, _, name in other.list_folders()}


def test_create_rename_delete_with_events_once(alice, synced, mail_user):
    account, session, _, _ = synced
    created = alice.client.post(f"{BOX}/mailbox", {"path": ["Projects", "Alpha"]},
                                format="json")
    assert created.status_code == 200, created.json()
    assert created.json() == {"path": "Projects/Alpha", "created": True}
    assert "Projects/Alpha" in server_folders(mail_user)
    paths = {m["path"] for m in alice.client.get(f"{BOX}/mailboxes").json()["mailboxes"]}
    assert "Projects/Alpha" in paths
    again = alice.client.post(f"{BOX}/mailbox", {"path": "Projects/Alpha"}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "MailboxExists"
    renamed = alice.client.put(f"{BOX}/mailbox", {"path": "Projects/Alpha",
                                                  "newPath": "Projects/Beta"}, format="json")
    assert renamed.json() == {"path": "Projects/Alpha", "newPath": "Projects/Beta",
                              "renamed": True}
    assert "Projects/Beta" in server_folders(mail_user)
    deleted = alice.client.delete(f"{BOX}/mailbox?path=Projects/Beta")
    assert deleted.json() == {"path": "Projects/Beta", "deleted": True}
    assert "Projects/Beta" not in server_folders(mail_user)
    sync_account(session, account)
    kinds = [e.event for e in events_of(account, "mailboxNew", "mailboxDeleted")]
    # Projects (the parent Dovecot creates too) and Alpha new; Alpha gone, Beta new; Beta gone.
    assert kinds.count("mailboxDeleted") == 2 and "Projects/Beta" in [
        e.data["path"] for e in events_of(account, "mailboxNew")]
    assert len([e for e in events_of(account, "mailboxNew")
                if e.data["path"] == "Projects/Alpha"]) == 1


def test_folder_errors(alice, bob, synced, mail_user):
    cases = [
        (lambda: alice.client.delete(f"{BOX}/mailbox?path=INBOX"), 400),
        (lambda: alice.client.delete(f"{BOX}/mailbox?path=Nope"), 404),
        (lambda: alice.client.put(f"{BOX}/mailbox", {"path": "Nope", "newPath": "X"},
                                  format="json"), 404),
        (lambda: alice.client.post(f"{BOX}/mailbox", {"path": ["a/b"]}, format="json"), 400),
        (lambda: alice.client.post(f"{BOX}/mailbox", {"path": ""}, format="json"), 400),
        (lambda: alice.client.post(f"{BOX}/mailbox", {"path": 5}, format="json"), 400),
        (lambda: bob.client.post(f"{BOX}/mailbox", {"path": "Bobs"}, format="json"), 404),
    ]
    for call, expected in cases:
        response = call()
        assert response.status_code == expected, response.json()
    assert "Bobs" not in server_folders(mail_user) and "INBOX" in server_folders(mail_user)


def test_upload_raw_is_indexed_at_once_with_one_message_new(alice, synced, mail_user):
    account, session, _, _ = synced
    raw = seed.make_message(subject="Draft one")
    response = alice.client.post(f"{BOX}/message", {
        "path": "Drafts", "flags": ["\\Draft", "\\Seen"],
        "raw": base64.b64encode(raw).decode()}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["path"] == "Drafts" and body["uid"] and body["id"]
    drafts = alice.client.get(f"{BOX}/messages?path=Drafts").json()["messages"]
    assert [m["subject"] for m in drafts] == ["Draft one"] and drafts[0]["draft"] is True
    sync_account(session, account)
    assert len(events_of(account, "messageNew")) == 1
    assert alice.client.post(f"{BOX}/message", {"path": "Nope", "raw": "eA=="},
                             format="json").status_code == 404


def test_upload_structured_reply_threads_under_the_original(alice, synced, mail_user):
    _, _, original, _ = synced
    response = alice.client.post(f"{BOX}/message", {
        "path": "Drafts", "text": "Thanks, Ann — will do.",
        "reference": {"message": original, "action": "replyAll", "inline": True},
        "attachments": [{"filename": "notes ü.txt", "contentType": "text/plain",
                         "content": base64.b64encode(b"hello").decode()}]}, format="json")
    assert response.status_code == 200, response.json()
    with mail_user.imap_client() as other:
        other.select_folder("Drafts", readonly=True)
        raw = other.fetch(other.search("ALL"), ["RFC822"]).popitem()[1][b"RFC822"]
    message = email.message_from_bytes(raw, policy=policy.default)
    assert message["Subject"] == "Re: Original"
    assert message["In-Reply-To"] == "<orig-1@example.com>"
    assert "<orig-1@example.com>" in message["References"]
    assert message["To"].addresses[0].addr_spec == "ann@example.com"
    assert [a.addr_spec for a in message["Cc"].addresses] == ["carl@example.com"]
    text = message.get_body(("plain",)).get_content()
    assert text.startswith("Thanks, Ann — will do.") and "\n> " in text
    assert [p.get_filename() for p in message.iter_attachments()] == ["notes ü.txt"]


def test_upload_refuses_bad_input_and_stores_nothing(alice, synced, mail_user):
    for body in ({"path": "Drafts", "raw": "%%%"}, {"path": "Drafts"} | {"raw": "eA==",
                 "subject": "both"}, {"path": "Drafts", "subject": "a\r\nBcc: x@y.z"},
                 {"path": "Drafts", "headers": {"X-A\r\nB": "v"}},
                 {"path": "Drafts", "to": [{"address": "not-an-address"}]},
                 {"path": "Drafts", "flags": ["bad flag"], "raw": "eA=="}):
        response = alice.client.post(f"{BOX}/message", body, format="json")
        assert response.status_code == 400, (body, response.json())
    with mail_user.imap_client() as other:
        other.select_folder("Drafts", readonly=True)
        assert other.search("ALL") == []
