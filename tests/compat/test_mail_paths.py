"""EmailEngine's ``imap.sentMailPath``, ``trashMailPath`` and the like: the folder the account's
settings name takes that special use in the index, whatever Dovecot's SPECIAL-USE says, and
what looks the use up (a delete to Trash, the folder listing) finds it
(``mailboxes.special_use``)."""

from __future__ import annotations

import pytest

from accounts.models import EmailAccount
from mailboxes.sync.account import sync_account
from tests.mailboxes.helpers import open_session, server_subjects
from tests.servers import seed

pytestmark = [pytest.mark.django_db]

BOX = "/v1/account/box"


def _sync(account_id: str = "box") -> None:
    account = EmailAccount.objects.get(account_id=account_id)
    session = open_session(account)
    try:
        assert sync_account(session, account).complete
    finally:
        session.client.logout()


@pytest.fixture
def chosen(alice, mail_user):
    seed.seed_mailbox(mail_user, messages=[seed.make_message(subject=f"Message {n}")
                                           for n in range(2)])
    with mail_user.imap_client() as other:
        other.create_folder("Bin")
        other.create_folder("Outgoing")
        other.append("Trash", seed.make_message(subject="In Dovecot's Trash"))
    imap = {**mail_user.imap_settings(secure=False), "tls": {"rejectUnauthorized": False},
            "sentMailPath": "Outgoing", "trashMailPath": "Bin", "junkMailPath": "Not there"}
    response = alice.client.post("/v1/account", {"account": "box", "imap": imap}, format="json")
    assert response.status_code == 200, response.json()
    _sync()
    return alice


def _uses(alice) -> dict[str, tuple]:
    listed = alice.client.get(f"{BOX}/mailboxes").json()["mailboxes"]
    return {m["path"]: (m["specialUse"], m["specialUseSource"]) for m in listed}


def test_the_chosen_folders_take_their_special_use_from_the_servers(chosen):
    uses = _uses(chosen)
    assert uses["Outgoing"] == ("\\Sent", "user")
    assert uses["Bin"] == ("\\Trash", "user")
    assert uses["Sent"] == (None, None)
    assert uses["Trash"] == (None, None)
    assert uses["Junk"] == ("\\Junk", "extension")  # the chosen path is not on the server
    shown = chosen.client.get(BOX).json()["imap"]
    assert (shown["sentMailPath"], shown["trashMailPath"]) == ("Outgoing", "Bin")


def test_a_delete_moves_to_the_chosen_trash(chosen, mail_user):
    messages = chosen.client.get(f"{BOX}/messages", {"path": "INBOX"}).json()["messages"]
    response = chosen.client.delete(f"{BOX}/message/{messages[0]['id']}")
    assert response.status_code == 200, response.json()
    assert response.json()["moved"]["destination"] == "Bin"
    assert server_subjects(mail_user, "Bin") == [messages[0]["subject"]]
    assert server_subjects(mail_user, "Trash") == ["In Dovecot's Trash"]


def test_a_path_given_as_special_use_finds_the_chosen_folder(chosen):
    listed = chosen.client.get(f"{BOX}/messages", {"path": "\\Trash"})
    assert listed.status_code == 200, listed.json()
    assert listed.json()["messages"] == []  # Bin, empty: not Dovecot's Trash


def test_unsetting_a_choice_gives_the_server_its_special_use_back(chosen):
    response = chosen.client.put(BOX, {"imap": {"sentMailPath": None}}, format="json")
    assert response.status_code == 200, response.json()
    assert "sentMailPath" not in chosen.client.get(BOX).json()["imap"]
    _sync()
    uses = _uses(chosen)
    assert uses["Sent"] == ("\\Sent", "extension")
    assert uses["Outgoing"] == (None, None)
    assert uses["Bin"] == ("\\Trash", "user")


def test_a_mail_path_must_be_a_string(alice):
    from tests.base import account_payload
    body = account_payload()
    body["imap"]["sentMailPath"] = 5
    response = alice.client.post("/v1/account", body, format="json")
    assert response.status_code == 400
    assert "imap.sentMailPath" in response.json()["details"]


def test_a_deleted_chosen_trash_gives_the_servers_trash_its_use_back(chosen, mail_user):
    """A delete must still move to a Trash (a found Trash is what keeps it from expunging)."""
    assert chosen.client.delete(f"{BOX}/mailbox?path=Bin").status_code == 200
    assert _uses(chosen)["Trash"] == ("\\Trash", "extension")
    messages = chosen.client.get(f"{BOX}/messages", {"path": "INBOX"}).json()["messages"]
    response = chosen.client.delete(f"{BOX}/message/{messages[0]['id']}")
    assert response.json()["moved"]["destination"] == "Trash", response.json()
    assert messages[0]["subject"] in server_subjects(mail_user, "Trash")


def test_a_renamed_chosen_sent_gives_the_servers_sent_its_use_back(chosen):
    response = chosen.client.put(f"{BOX}/mailbox", {"path": "Outgoing", "newPath": "Out2"},
                                 format="json")
    assert response.status_code == 200, response.json()
    uses = _uses(chosen)
    assert uses["Sent"] == ("\\Sent", "extension")
    assert uses["Out2"] == (None, None)


def test_a_chosen_folder_created_later_takes_the_use_alone(alice, mail_user):
    imap = {**mail_user.imap_settings(secure=False), "tls": {"rejectUnauthorized": False},
            "trashMailPath": "Later"}
    alice.client.post("/v1/account", {"account": "box", "imap": imap}, format="json")
    _sync()
    assert _uses(alice)["Trash"] == ("\\Trash", "extension")  # Later is not there yet
    assert alice.client.post(f"{BOX}/mailbox", {"path": "Later"},
                             format="json").status_code == 200
    trash = [path for path, (use, _) in _uses(alice).items() if use == "\\Trash"]
    assert trash == ["Later"]


@pytest.mark.parametrize("imap, field", [
    ({"trashMailPath": "INBOX"}, "imap.trashMailPath"),
    ({"sentMailPath": "\\Sent"}, "imap.sentMailPath"),
    ({"sentMailPath": "Box", "draftsMailPath": "Box"}, "imap.draftsMailPath"),
    ({"junkMailPath": "a\x01b"}, "imap.junkMailPath"),
])
def test_mail_paths_that_cannot_be_are_refused(alice, imap, field):
    from tests.base import account_payload
    body = account_payload()
    body["imap"].update(imap)
    response = alice.client.post("/v1/account", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["details"], response.json()
    assert not EmailAccount.objects.exists()
