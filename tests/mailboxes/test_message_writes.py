"""Changing one message through the API against real Dovecot: flags, move, copy, delete.

Each test checks the server (another client looks), the index (the next GET), and the
outbox: one event per change, and none more after the worker's own sync of the same change.
"""

from __future__ import annotations

import pytest

from mailboxes.sync.account import sync_account
from tests.mailboxes.helpers import events_of, server_subjects
from tests.servers import seed

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]

BOX = "/v1/account/box"


@pytest.fixture
def inbox_messages():
    return [seed.make_message(subject=f"Message {n}") for n in range(3)]


def server_flags(mail_user, folder: str, uid: int) -> set[str]:
    with mail_user.imap_client() as other:
        other.select_folder(folder, readonly=True)
        found = other.get_flags([uid])
    return {f.decode() for f in found.get(uid, ())} - {"\\Recent"}


def event_kinds(account) -> list[str]:
    return [e.event for e in events_of(account) if e.event.startswith("message")]


def test_flags_add_and_delete_reach_server_index_and_outbox_once(alice, synced, mail_user):
    account, session, ids, uids = (synced.account, synced.session, synced.ids,
                                  synced.uids)
    response = alice.client.put(f"{BOX}/message/{ids[0]}",
                                {"flags": {"add": ["\\Seen", "\\Flagged", "$Work"]}},
                                format="json")
    assert response.status_code == 200, response.json()
    assert response.json() == {"flags": {"add": True}}
    assert server_flags(mail_user, "INBOX", uids[0]) >= {"\\Seen", "\\Flagged", "$Work"}
    row = alice.client.get(f"{BOX}/messages?path=INBOX").json()["messages"]
    first = next(m for m in row if m["id"] == ids[0])
    assert first["unseen"] is False
    assert first["flagged"] is True
    assert "$Work" in first["flags"]
    response = alice.client.put(f"{BOX}/message/{ids[0]}",
                                {"flags": {"delete": ["\\Flagged"]}}, format="json")
    assert response.json() == {"flags": {"delete": True}}
    sync_account(session, account)  # the worker sees the same changes on the server
    updates = events_of(account, "messageUpdated")
    assert [u.data["changes"]["flags"]["added"] for u in updates] == \
        [sorted(["\\Seen", "\\Flagged", "$Work"]), []]
    assert updates[1].data["changes"]["flags"]["deleted"] == ["\\Flagged"]


def test_bad_flags_are_refused_and_change_nothing(alice, synced, mail_user):
    ids, uids = synced.ids, synced.uids
    for flags in ({"add": ["bad flag"]}, {"add": ["x\r\nA1 LOGOUT"]}, {"add": ["(x"]},
                  {"add": ["\\Recent"]}, {"add": [1]}, {"set": ["a"], "add": ["b"]},
                  {"add": ['"q"']}, {"add": ["{5}"]}):
        response = alice.client.put(f"{BOX}/message/{ids[0]}", {"flags": flags}, format="json")
        assert response.status_code == 400, (flags, response.json())
    assert alice.client.put(f"{BOX}/message/{ids[0]}", {}, format="json").status_code == 400
    assert server_flags(mail_user, "INBOX", uids[0]) == set()


def test_labels_on_a_server_without_them_are_a_400(alice, synced):
    ids = synced.ids
    response = alice.client.put(f"{BOX}/message/{ids[0]}", {"labels": {"add": ["x"]}},
                                format="json")
    assert response.status_code == 400
    assert response.json()["emailapiCode"] == "LabelsUnsupported"


def test_move_returns_the_new_id_and_raises_one_message_moved(alice, synced, mail_user):
    account, session, ids = synced.account, synced.session, synced.ids
    response = alice.client.put(f"{BOX}/message/{ids[1]}/move", {"path": "Archive"},
                                format="json")
    assert response.status_code == 200, response.json()
    moved = response.json()
    assert moved["path"] == "Archive"
    assert moved["uid"]
    assert moved["id"] != ids[1]
    assert server_subjects(mail_user, "Archive") == ["Message 1"]
    assert server_subjects(mail_user, "INBOX") == ["Message 0", "Message 2"]
    archive = alice.client.get(f"{BOX}/messages?path=Archive").json()
    assert [m["id"] for m in archive["messages"]] == [moved["id"]]
    assert archive["total"] == 1
    inbox = alice.client.get(f"{BOX}/messages?path=INBOX").json()
    assert ids[1] not in [m["id"] for m in inbox["messages"]]
    assert inbox["total"] == 2
    assert alice.client.get(f"{BOX}/message/{ids[1]}").status_code == 404
    assert alice.client.get(f"{BOX}/message/{moved['id']}").json()["subject"] == "Message 1"
    sync_account(session, account)
    assert event_kinds(account) == ["messageMoved"]
    event = events_of(account, "messageMoved")[0].data
    assert event["source"]["id"] == ids[1]
    assert event["destination"]["id"] == moved["id"]


def test_copy_keeps_the_source_and_raises_one_message_new(alice, synced, mail_user):
    account, session, ids = synced.account, synced.session, synced.ids
    response = alice.client.put(f"{BOX}/message/{ids[2]}/copy", {"path": "\\Archive"},
                                format="json")
    assert response.status_code == 200, response.json()
    assert server_subjects(mail_user, "Archive") == ["Message 2"]
    assert server_subjects(mail_user, "INBOX") == ["Message 0", "Message 1", "Message 2"]
    sync_account(session, account)
    assert event_kinds(account) == ["messageNew"]
    assert events_of(account, "messageNew")[0].data["id"] == response.json()["id"]


def test_move_to_a_missing_folder_is_a_404_naming_it(alice, synced, mail_user):
    ids = synced.ids
    response = alice.client.put(f"{BOX}/message/{ids[0]}/move", {"path": "Nowhere/Deep"},
                                format="json")
    assert response.status_code == 404
    assert "Nowhere/Deep" in response.json()["message"]
    assert server_subjects(mail_user, "INBOX") == ["Message 0", "Message 1", "Message 2"]


def test_move_to_a_folder_deleted_on_the_server_is_a_404(alice, synced, mail_user):
    """The index still lists the folder; the server's NO [TRYCREATE] is the truth."""
    account, session, ids = synced.account, synced.session, synced.ids
    with mail_user.imap_client() as other:
        other.create_folder("Projects")
    sync_account(session, account)
    with mail_user.imap_client() as other:
        other.delete_folder("Projects")
    response = alice.client.put(f"{BOX}/message/{ids[0]}/move", {"path": "Projects"},
                                format="json")
    assert response.status_code == 404
    assert response.json()["emailapiCode"] == "MailboxNotFound"
    assert server_subjects(mail_user, "INBOX") == ["Message 0", "Message 1", "Message 2"]


def test_delete_moves_to_trash_then_force_expunges(alice, synced, mail_user):
    account, session, ids = synced.account, synced.session, synced.ids
    response = alice.client.delete(f"{BOX}/message/{ids[0]}")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["deleted"] is False
    assert body["moved"]["destination"] == "Trash"
    assert server_subjects(mail_user, "Trash") == ["Message 0"]
    in_trash = body["moved"]["message"]
    second = alice.client.delete(f"{BOX}/message/{in_trash}")  # already in Trash: expunge
    assert second.json() == {"deleted": True}
    assert server_subjects(mail_user, "Trash") == []
    forced = alice.client.delete(f"{BOX}/message/{ids[1]}?force=true")
    assert forced.json() == {"deleted": True}
    assert server_subjects(mail_user, "INBOX") == ["Message 2"]
    assert alice.client.get(f"{BOX}/messages?path=INBOX").json()["total"] == 1
    sync_account(session, account)
    assert sorted(event_kinds(account)) == ["messageDeleted", "messageDeleted", "messageMoved"]


def test_a_message_that_vanished_meanwhile_is_a_404_and_nothing_else_changes(
        alice, synced, mail_user):
    ids, uids = synced.ids, synced.uids
    with mail_user.imap_client() as other:  # another client expunges it first
        other.select_folder("INBOX")
        other.add_flags([uids[0]], [b"\\Deleted"])
        other.expunge()
    for call in (lambda: alice.client.put(f"{BOX}/message/{ids[0]}",
                                          {"flags": {"add": ["\\Seen"]}}, format="json"),
                 lambda: alice.client.put(f"{BOX}/message/{ids[0]}/move",
                                          {"path": "Archive"}, format="json"),
                 lambda: alice.client.delete(f"{BOX}/message/{ids[0]}?force=true")):
        response = call()
        assert response.status_code == 404, response.json()
    assert server_subjects(mail_user, "INBOX") == ["Message 1", "Message 2"]
    assert server_subjects(mail_user, "Archive") == []
    assert server_flags(mail_user, "INBOX", uids[1]) == set()


def test_another_tenant_cannot_change_anything(outsider, synced, mail_user):
    """The outsider's own account is also called ``box``: Alice's ids are not found in it."""
    ids = synced.ids
    other = outsider.client
    assert other.put(f"{BOX}/message/{ids[0]}", {"flags": {"add": ["\\Seen"]}},
                     format="json").status_code == 404
    assert other.put(f"{BOX}/message/{ids[0]}/move", {"path": "Archive"},
                     format="json").status_code == 404
    assert other.delete(f"{BOX}/message/{ids[0]}").status_code == 404
    bulk = other.put(f"{BOX}/messages?path=INBOX", {"ids": ids, "update": {
        "flags": {"add": ["\\Seen"]}}}, format="json")
    assert bulk.status_code == 400
    assert bulk.json()["code"] == "MessageNotInMailbox"
    assert server_subjects(mail_user, "INBOX") == ["Message 0", "Message 1", "Message 2"]
    assert server_flags(mail_user, "INBOX", synced.uids[0]) == set()
    assert server_subjects(outsider.mail_user, "INBOX") == ["Outsider's own"]
