"""Folder create/rename/delete (``mailboxes.folder_writes``) against real Dovecot.

Each test looks at the server (another client lists), the index (what ``GET .../mailboxes``
reads) and the events: one per change, and none more after the worker's own pass over the
same server state.
"""

from __future__ import annotations

import base64

import pytest

from emailapi.api.errors import status_of
from emailapi.lib.errors import DomainError
from mailboxes import folder_writes as folders
from mailboxes import listing, uploading
from mailboxes.models import Folder
from mailboxes.sync.account import sync_account
from tests.mailboxes.helpers import events_of
from tests.servers import seed

pytestmark = pytest.mark.django_db


@pytest.fixture
def inbox_messages():
    return [seed.make_message(subject="Hello")]


@pytest.fixture
def account_fields():
    return {"email": "box@example.test"}


def server_folders(mail_user) -> set[str]:
    with mail_user.imap_client() as other:
        return {name for _, _, name in other.list_folders()}


def indexed(account) -> set[str]:
    return set(Folder.objects.filter(email_account=account).values_list("path", flat=True))


def mailbox_events(account) -> list[tuple[str, str]]:
    return [(e.event, e.data["path"]) for e in events_of(account, "mailboxNew",
                                                         "mailboxDeleted")]


def test_create_joins_segments_indexes_parents_and_raises_mailbox_new_once(synced, mail_user):
    account, session = synced.account, synced.session
    answer = folders.create_folder(account, ["Projects", "Größe 2026"])
    assert answer == {"path": "Projects/Größe 2026", "created": True}
    assert {"Projects", "Projects/Größe 2026"} <= server_folders(mail_user)
    assert {"Projects", "Projects/Größe 2026"} <= indexed(account)
    child = Folder.objects.get(email_account=account, path="Projects/Größe 2026")
    assert (child.name, child.parent_path, child.subscribed) == ("Größe 2026", "Projects", True)
    assert mailbox_events(account) == [("mailboxNew", "Projects"),
                                       ("mailboxNew", "Projects/Größe 2026")]
    again = folders.create_folder(account, "Projects/Größe 2026")
    assert again == {"path": "Projects/Größe 2026", "created": False}  # as EmailEngine
    sync_account(session, account)  # the worker lists the same folders: nothing new to say
    assert len(mailbox_events(account)) == 2


def test_rename_moves_children_keeps_message_ids_and_raises_each_event_once(synced, mail_user):
    account, session = synced.account, synced.session
    folders.create_folder(account, ["Old", "Sub"])
    uploaded = uploading.upload(account, "Old/Sub", {"raw": seed.make_message(subject="Kept")},
                                [], None)  # leaves Old/Sub selected on the pooled connection
    before = len(mailbox_events(account))
    answer = folders.rename_folder(account, "Old", ["New"])
    assert answer == {"path": "Old", "newPath": "New", "renamed": True}
    names = server_folders(mail_user)
    assert {"New", "New/Sub"} <= names
    assert not {"Old", "Old/Sub"} & names
    assert {"New", "New/Sub"} <= indexed(account)
    assert not {"Old", "Old/Sub"} & indexed(account)
    folder, row = listing.message_by_id(account, uploaded["id"])  # same id, new path
    assert (folder.path, row.subject) == ("New/Sub", "Kept")
    assert sorted(mailbox_events(account)[before:]) == sorted([
        ("mailboxDeleted", "Old"), ("mailboxNew", "New"),
        ("mailboxDeleted", "Old/Sub"), ("mailboxNew", "New/Sub")])
    events_before_sync = len(events_of(account))
    sync_account(session, account)
    assert [e.event for e in events_of(account)[events_before_sync:]
            if e.event.startswith(("mailbox", "message"))] == []


def test_rename_refusals_change_nothing(synced, mail_user):
    account = synced.account
    folders.create_folder(account, "Taken")
    folders.create_folder(account, "Mine")
    before = server_folders(mail_user), len(events_of(account))
    cases = [("INBOX", "Other", 400, "InboxProtected"), ("Mine", "Taken", 409, "MailboxExists"),
             ("Mine", "Mine/Sub", 400, "MailboxUnderItself"),
             ("Nope", "Other", 404, "MailboxNotFound")]
    for path, new_path, status, code in cases:
        with pytest.raises(DomainError) as caught:
            folders.rename_folder(account, path, new_path)
        assert (status_of(caught.value), caught.value.code) == (status, code), path
    assert "'Nope'" in caught.value.message
    assert (server_folders(mail_user), len(events_of(account))) == before


def test_delete_of_the_selected_folder_indexes_it_gone_with_one_event(synced, mail_user):
    account, session = synced.account, synced.session
    folders.create_folder(account, "Scratch")
    uploading.upload(account, "Scratch", {"raw": seed.make_message(subject="Bye")}, [], None)
    assert listing.page_of(Folder.objects.get(email_account=account, path="Scratch"), 0, 10,
                           None)["total"] == 1
    assert folders.delete_folder(account, "Scratch") == {"path": "Scratch", "deleted": True}
    assert "Scratch" not in server_folders(mail_user)
    assert "Scratch" not in indexed(account)
    assert mailbox_events(account)[-1] == ("mailboxDeleted", "Scratch")
    count = len(events_of(account))
    uploading.upload(account, "Drafts", {"raw": seed.make_message()}, [], None)  # pool is fine
    sync_account(session, account)
    assert [e.event for e in events_of(account)[count:]] == ["messageNew"]


def test_delete_refusals_change_nothing(synced, mail_user):
    account = synced.account
    folders.create_folder(account, ["Parent", "Child"])
    before = server_folders(mail_user), len(events_of(account))
    cases = [("INBOX", 400, "InboxProtected"), ("inbox", 400, "InboxProtected"),
             ("Nope", 404, "MailboxNotFound"), ("Parent", 409, "MailboxHasChildren")]
    for path, status, code in cases:
        with pytest.raises(DomainError) as caught:
            folders.delete_folder(account, path)
        assert (status_of(caught.value), caught.value.code) == (status, code), path
    assert (server_folders(mail_user), len(events_of(account))) == before
    assert {"Parent", "Parent/Child"} <= indexed(account)


def test_subscription_changes_reach_server_and_index(synced, mail_user):
    account = synced.account
    folders.create_folder(account, "Quiet")
    assert folders.set_subscription(account, "Quiet", False) == {"path": "Quiet",
                                                                 "subscribed": False}
    with mail_user.imap_client() as other:
        assert "Quiet" not in {name for _, _, name in other.list_sub_folders()}
    assert Folder.objects.get(email_account=account, path="Quiet").subscribed is False
    with pytest.raises(DomainError) as caught:
        folders.set_subscription(account, "Nope", True)
    assert status_of(caught.value) == 404


# --- the routes ---------------------------------------------------------------------------

BOX = "/v1/account/box"


def test_the_routes_answer_emailengine_shapes_and_json_errors(alice, bob, synced, mail_user):
    account = synced.account
    api = alice.client
    created = api.post(f"{BOX}/mailbox", {"path": ["Work", "2026"]}, format="json")
    assert (created.status_code, created.json()) == (200, {"path": "Work/2026",
                                                           "created": True})
    listed = {m["path"] for m in api.get(f"{BOX}/mailboxes").json()["mailboxes"]}
    assert {"Work", "Work/2026"} <= listed  # read-your-writes
    renamed = api.put(f"{BOX}/mailbox", {"path": "Work/2026", "newPath": "Work/Done"},
                      format="json")
    assert renamed.json() == {"path": "Work/2026", "newPath": "Work/Done", "renamed": True}
    unsubscribed = api.put(f"{BOX}/mailbox", {"path": "Work/Done", "subscribed": False},
                           format="json")
    assert unsubscribed.json() == {"path": "Work/Done", "subscribed": False}
    deleted = api.delete(f"{BOX}/mailbox?path=Work/Done")
    assert deleted.json() == {"path": "Work/Done", "deleted": True}
    before = server_folders(mail_user), len(events_of(account))
    refusals = [
        (api.post, {"path": []}, 400), (api.post, {"path": "a*b"}, 400),
        (api.post, {"path": ["a", ""]}, 400), (api.post, {"path": "x\r\ny"}, 400),
        (api.post, {"path": 5}, 400), (api.post, {"path": "X", "extra": 1}, 400),
        (api.put, {"path": "Work"}, 400), (api.put, {"path": "INBOX", "newPath": "X"}, 400),
        (api.put, {"path": "Nope", "newPath": "X"}, 404),
        (bob.client.post, {"path": "Bobs"}, 404),
    ]
    for method, body, status in refusals:
        response = method(f"{BOX}/mailbox", body, format="json")
        assert response.status_code == status, (body, response.json())
        assert set(response.json()) >= {"statusCode", "error", "message", "code"}
    for query, status in (("?path=INBOX", 400), ("?path=Nope", 404), ("", 400)):
        response = api.delete(f"{BOX}/mailbox{query}")
        assert response.status_code == status
        assert response.json()["statusCode"] == status
    assert bob.client.delete(f"{BOX}/mailbox?path=Work").status_code == 404
    assert (server_folders(mail_user), len(events_of(account))) == before


def test_upload_route_stores_raw_and_structured_and_refuses_bad_input(alice, bob, synced):
    account = synced.account
    api = alice.client
    raw = base64.b64encode(seed.make_message(subject="Raw draft")).decode()
    stored = api.post(f"{BOX}/message", {"path": "Drafts", "raw": raw, "flags": ["\\Draft"]},
                      format="json")
    assert stored.status_code == 200, stored.json()
    assert set(stored.json()) == {"id", "path", "uid", "uidValidity", "messageId",
                                  "seq"}
    detail = api.get(f"{BOX}/message/{stored.json()['id']}").json()
    assert detail["subject"] == "Raw draft"
    assert detail["draft"] is True
    built = api.post(f"{BOX}/message", {"path": "\\Drafts", "subject": "Built",
                                        "to": [{"name": "Zoë", "address": "z@example.com"}],
                                        "html": "<b>hi</b>"}, format="json")
    assert built.status_code == 200
    assert built.json()["path"] == "Drafts"
    assert api.get(f"{BOX}/message/{built.json()['id']}").json()["to"][0]["name"] == "Zoë"
    count = len(events_of(account))
    refusals = [
        ({"path": "Nope", "raw": raw}, 404), ({"path": "Drafts"}, 400),
        ({"path": "Drafts", "raw": "%%%"}, 400), ({"path": "Drafts", "raw": raw, "text": "x"}, 400),
        ({"path": "Drafts", "text": "x", "headers": {"From": "e@example.com"}}, 400),
        ({"path": "Drafts", "text": "x", "headers": {"X-A": "a\r\nBcc: v@example.com"}}, 400),
        ({"path": "Drafts", "raw": raw, "flags": ["bad flag"]}, 400),
        ({"path": "Drafts", "reference": {"message": "AAAA"}, "text": "x"}, 404),
    ]
    for body, status in refusals:
        response = api.post(f"{BOX}/message", body, format="json")
        assert response.status_code == status, (body, response.json())
        assert response.json()["statusCode"] == status
    assert bob.client.post(f"{BOX}/message", {"path": "Drafts", "raw": raw},
                           format="json").status_code == 404
    assert len(events_of(account)) == count


def test_a_delete_path_with_a_line_break_is_refused_before_it_reaches_the_server(
        alice, synced, mail_user):
    """Dovecot's NO to ``DELETE "a&AA0ACg-b"`` echoes the name decoded, CR LF and all, so the
    text after the line break arrived as a line of its own: read as the answer to the next
    command on that pooled connection (``EAPI8 OK ...`` would have passed for one), a delete
    of an existing folder answered 502 while the server had deleted it."""
    api = alice.client
    assert api.post(f"{BOX}/mailbox", {"path": "Kept"}, format="json").status_code == 200
    for path in ("a%0D%0Ab", "a%0Ab", "a%0Db"):
        refused = api.delete(f"{BOX}/mailbox?path={path}")
        assert refused.status_code == 400, refused.json()
        assert refused.json()["code"] == "InputValidationError"
        assert "path" in refused.json()["details"]
    deleted = api.delete(f"{BOX}/mailbox?path=Kept")
    assert deleted.status_code == 200, deleted.json()
    assert "Kept" not in server_folders(mail_user)
    assert "Kept" not in indexed(synced.account)


def test_a_new_folder_cannot_take_a_special_use_name(alice, synced, mail_user):
    """Every route reads a path starting with a backslash as a special use (``\\Trash`` is
    the Trash folder), so a folder created under such a name could never be named again: a
    delete of ``\\Trash`` deleted the real Trash, with its mail, and ``\\Nope`` was a 404 for
    good. Creating or renaming to one is refused, and nothing reaches the server."""
    api = alice.client
    before = server_folders(mail_user)
    attempts = [(api.post, {"path": "\\Trash"}), (api.post, {"path": "\\Nope"}),
                (api.post, {"path": ["\\Nope", "Child"]}),
                (api.put, {"path": "Trash", "newPath": "\\Archive"})]
    for method, body in attempts:
        response = method(f"{BOX}/mailbox", body, format="json")
        assert response.status_code == 400, (body, response.json())
        assert response.json()["code"] == "InputValidationError"
    assert server_folders(mail_user) == before
