"""Gmail's labels, ids and folder model against hoodiecrow-imap (tests/servers/hoodiecrow.py).

Hoodiecrow offers X-GM-EXT-1's X-GM-MSGID and FETCH/STORE of X-GM-LABELS, CONDSTORE and
SPECIAL-USE; it refuses X-GM-THRID, X-GM-RAW and SEARCH X-GM-LABELS, and has none of Gmail's
side effects (a label stored is not a folder copy; All Mail is whatever the test put there).
So the Gmail account here is seeded in Gmail's shape: INBOX, ``[Gmail]/All Mail`` holding
every message once (its inbox messages labelled ``\\Inbox``, with the same X-GM-MSGID), a
label folder and the special-use folders; what Gmail would do by itself, the test does as
another client. What hoodiecrow cannot show is tested in tests/mailboxes/test_gmail_pure.py
(command building and parsing) and against Dovecot (the 400s elsewhere).
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from accounts import services
from mailboxes.command_pool import pool
from mailboxes.models import Message
from mailboxes.sync.account import sync_account
from tests.mailboxes.helpers import events_of, open_session
from tests.servers import seed
from tests.servers.hoodiecrow import PASSWORD, USER, Hoodiecrow
from webhooks.engine_format import EngineRenderer
from webhooks.models import WebhookSubscription

pytestmark = [pytest.mark.django_db]

BOX = "/v1/account/gmail"
FIRST_ID = 1278455344230334865  # Gmail's documented sample X-GM-MSGID


def gmail_message(subject: str, msgid: int, labels=(), flags=()) -> dict:
    return {"raw": seed.make_message(subject=subject).decode(), "flags": list(flags),
            "X-GM-MSGID": str(msgid), "X-GM-LABELS": list(labels)}


def gmail_storage() -> dict:
    """Two inbox messages (one also labelled Work), one archived message labelled Work and
    one sent message: INBOX, All Mail (each once), Work and Sent Mail, as Gmail shows them."""
    inbox = [gmail_message("In the inbox", FIRST_ID, ["\\Inbox"]),
             gmail_message("Inbox and Work", FIRST_ID + 1, ["\\Inbox", "Work"])]
    archived = gmail_message("Archived, Work", FIRST_ID + 2, ["Work"])
    sent = gmail_message("Sent by me", FIRST_ID + 3, ["\\Sent"], flags=["\\Seen"])
    return {
        "INBOX": {"messages": inbox},
        "": {"separator": "/", "folders": {
            "Work": {"messages": [inbox[1], archived]},
            "[Gmail]": {"flags": ["\\Noselect"], "folders": {
                "All Mail": {"special-use": "\\All", "messages": [*inbox, archived, sent]},
                "Sent Mail": {"special-use": "\\Sent", "messages": [sent]},
                "Important": {"special-use": "\\Important"},
                "Starred": {"special-use": "\\Flagged"},
                "Spam": {"special-use": "\\Junk"},
                "Trash": {"special-use": "\\Trash"},
            }},
        }},
    }


@pytest.fixture
def hoodiecrow():
    server = Hoodiecrow(storage=gmail_storage()).start()
    yield server
    server.stop()


@pytest.fixture
def gmail(alice, hoodiecrow):
    """Alice's account ``gmail`` on the hoodiecrow server, indexed by a first sync."""
    account = services.register_account(alice.tenant, {"account": "gmail", "imap": {
        "host": "127.0.0.1", "port": hoodiecrow.port, "secure": False,
        "auth": {"user": USER, "pass": PASSWORD}}})
    session = open_session(account)
    assert sync_account(session, account).complete
    yield account, session
    try:
        session.client.logout()
    except Exception:  # noqa: BLE001 - the server may be gone already
        pass
    pool.close_all()


def listing(client, path: str) -> dict[str, dict]:
    response = client.get(f"{BOX}/messages", {"path": path, "pageSize": 100})
    assert response.status_code == 200, response.json()
    return {m["subject"]: m for m in response.json()["messages"]}


def other_client(hoodiecrow, folder: str):
    client = hoodiecrow.client()
    client.select_folder(folder)
    return client


def uid_of(client, subject: str) -> int:
    found = client.fetch(client.search("ALL"), ["ENVELOPE"])
    return next(uid for uid, data in found.items()
                if data[b"ENVELOPE"].subject.decode() == subject)


def message_events(account, kind: str) -> list:
    return [e for e in events_of(account, kind)]


# --- labels and ids in the index ---------------------------------------------------------


def test_listings_show_labels_and_x_gm_msgid_as_email_id(alice, gmail):
    inbox = listing(alice.client, "INBOX")

    assert inbox["Inbox and Work"]["labels"] == ["\\Inbox", "Work"]
    assert inbox["In the inbox"]["emailId"] == str(FIRST_ID)


def test_the_same_message_has_the_same_email_id_in_every_folder(alice, gmail):
    ids = {path: listing(alice.client, path)["Inbox and Work"]["emailId"]
           for path in ("INBOX", "Work", "[Gmail]/All Mail")}

    assert set(ids.values()) == {str(FIRST_ID + 1)}


def test_get_message_shows_its_labels(alice, gmail):
    message_id = listing(alice.client, "[Gmail]/All Mail")["Archived, Work"]["id"]

    response = alice.client.get(f"{BOX}/message/{message_id}")

    assert response.json()["labels"] == ["Work", "\\All"]  # hoodiecrow adds its folder's


def test_a_sent_message_in_all_mail_has_the_sent_special_use_from_its_label(alice, gmail):
    sent = listing(alice.client, "[Gmail]/All Mail")["Sent by me"]

    assert sent["messageSpecialUse"] == "\\Sent"


def test_hoodiecrow_refuses_x_gm_thrid_so_the_session_fetches_without_it(gmail, imap_commands):
    account, session = gmail
    session.select("INBOX")

    session.fetch_meta("1:*")

    assert b"X-GM-THRID" not in imap_commands[-1]
    assert "X-GM-THRID" not in session.meta_items


def test_without_x_gm_thrid_the_thread_id_is_computed(gmail):
    account, _ = gmail
    row = Message.objects.get(email_account=account, folder__path="INBOX",
                              subject="In the inbox")

    assert row.thread_id  # from the headers, as on a server without thread ids


# --- label changes seen by the sync ---------------------------------------------------------


def test_a_label_added_elsewhere_raises_message_updated_with_changes_labels(
        alice, gmail, hoodiecrow):
    account, session = gmail
    other = other_client(hoodiecrow, "INBOX")
    other.add_gmail_labels([uid_of(other, "In the inbox")], ["Clients/Acme"])

    sync_account(session, account)

    updates = message_events(account, "messageUpdated")
    assert [u.data["changes"] for u in updates] == [{"labels": {
        "added": ["Clients/Acme"], "deleted": [], "value": ["\\Inbox", "Clients/Acme"]}}]


def test_the_changed_labels_are_listed(alice, gmail, hoodiecrow):
    account, session = gmail
    other = other_client(hoodiecrow, "INBOX")
    other.remove_gmail_labels([uid_of(other, "Inbox and Work")], ["Work"])

    sync_account(session, account)

    assert listing(alice.client, "INBOX")["Inbox and Work"]["labels"] == ["\\Inbox"]


def test_a_label_change_without_condstore_is_found_by_the_full_compare(gmail, hoodiecrow):
    account, session = gmail
    session.capabilities -= {"CONDSTORE"}  # as a server without it: compare everything
    other = other_client(hoodiecrow, "INBOX")
    other.add_gmail_labels([uid_of(other, "In the inbox")], ["Later"])

    sync_account(session, account)

    updates = message_events(account, "messageUpdated")
    assert [u.data["changes"]["labels"]["added"] for u in updates] == [["Later"]]


def test_a_label_change_of_an_inbox_message_is_announced_once_not_again_from_all_mail(
        gmail, hoodiecrow):
    account, session = gmail
    for folder in ("INBOX", "[Gmail]/All Mail"):  # Gmail changes both views of it
        other = other_client(hoodiecrow, folder)
        other.add_gmail_labels([uid_of(other, "Inbox and Work")], ["\\Important"])

    sync_account(session, account)

    assert [u.data["path"] for u in message_events(account, "messageUpdated")] == ["INBOX"]


# --- label writes through the API -----------------------------------------------------------


def test_put_labels_add_reaches_the_server_the_index_and_one_event(alice, gmail, hoodiecrow):
    account, session = gmail
    message_id = listing(alice.client, "INBOX")["In the inbox"]["id"]

    response = alice.client.put(f"{BOX}/message/{message_id}",
                                {"labels": {"add": ["Work", "\\Important", "Ça va"]}},
                                format="json")

    assert response.json() == {"labels": {"add": True}}
    other = other_client(hoodiecrow, "INBOX")
    stored = other.get_gmail_labels([uid_of(other, "In the inbox")])
    assert set(next(iter(stored.values()))) == {"\\Inbox", "Work", "\\Important", "Ça va"}
    assert listing(alice.client, "INBOX")["In the inbox"]["labels"] == \
        ["\\Inbox", "Work", "\\Important", "Ça va"]
    sync_account(session, account)  # the worker sees the same change: nothing more
    assert [u.data["changes"]["labels"]["added"]
            for u in message_events(account, "messageUpdated")] == \
        [sorted(["Work", "\\Important", "Ça va"])]


def test_put_labels_delete_and_set(alice, gmail):
    message_id = listing(alice.client, "INBOX")["Inbox and Work"]["id"]

    deleted = alice.client.put(f"{BOX}/message/{message_id}",
                               {"labels": {"delete": ["Work"]}}, format="json")
    after_delete = listing(alice.client, "INBOX")["Inbox and Work"]["labels"]
    replaced = alice.client.put(f"{BOX}/message/{message_id}",
                                {"labels": {"set": ["\\Inbox", "Receipts"]}}, format="json")

    assert (deleted.json(), after_delete) == ({"labels": {"delete": True}}, ["\\Inbox"])
    assert replaced.json() == {"labels": {"set": True}}
    assert listing(alice.client, "INBOX")["Inbox and Work"]["labels"] == ["\\Inbox", "Receipts"]


def test_put_flags_and_labels_together(alice, gmail):
    message_id = listing(alice.client, "INBOX")["In the inbox"]["id"]

    response = alice.client.put(f"{BOX}/message/{message_id}",
                                {"flags": {"add": ["\\Seen"]}, "labels": {"add": ["Work"]}},
                                format="json")

    assert response.json() == {"flags": {"add": True}, "labels": {"add": True}}
    shown = listing(alice.client, "INBOX")["In the inbox"]
    assert (shown["unseen"], shown["labels"]) == (False, ["\\Inbox", "Work"])


@pytest.mark.parametrize("labels", [{"add": ["a\r\nA1 LOGOUT"]}, {"add": [""]},
                                    {"add": ["\\not a system label"]}, {"add": [["nested"]]},
                                    {"set": ["a"], "add": ["b"]}, {"add": ["x" * 226]}])
def test_bad_labels_are_refused_and_change_nothing(alice, gmail, hoodiecrow, labels):
    message_id = listing(alice.client, "INBOX")["In the inbox"]["id"]

    response = alice.client.put(f"{BOX}/message/{message_id}", {"labels": labels},
                                format="json")

    assert response.status_code == 400, response.json()
    other = other_client(hoodiecrow, "INBOX")
    assert other.get_gmail_labels([uid_of(other, "In the inbox")]) == \
        {uid_of(other, "In the inbox"): ["\\Inbox"]}


def test_bulk_update_of_labels(alice, gmail, hoodiecrow):
    account, _ = gmail
    response = alice.client.put(f"{BOX}/messages?path=INBOX",
                                {"search": {"unseen": True}, "update": {
                                    "labels": {"add": ["Reviewed"]}}}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json() == {"labels": {"add": True}, "matched": 2, "updated": 2,
                               "changed": 2}
    assert {subject: m["labels"][-1] for subject, m in listing(alice.client, "INBOX").items()} \
        == {"In the inbox": "Reviewed", "Inbox and Work": "Reviewed"}
    assert len(message_events(account, "messageUpdated")) == 2


# --- search by labels -------------------------------------------------------------------------


def test_index_search_by_labels(alice, gmail):
    query = urlencode({"path": "[Gmail]/All Mail", "source": "index"})
    response = alice.client.post(f"{BOX}/search?{query}",
                                 {"search": {"labels": {"has": ["Work"], "not": ["\\Inbox"]}}},
                                 format="json")

    assert response.status_code == 200, response.json()
    assert [m["subject"] for m in response.json()["messages"]] == ["Archived, Work"]


def test_imap_search_by_labels_goes_to_gmail_as_x_gm_labels(alice, gmail, imap_commands):
    # Hoodiecrow cannot search X-GM-LABELS (Gmail can): its refusal is a 400 with its words,
    # and the command shows the search reached the server as Gmail's key.
    response = alice.client.post(f"{BOX}/search?path=INBOX",
                                 {"search": {"labels": {"has": ["Work"]}}}, format="json")

    assert (response.status_code, response.json()["code"]) == (400, "SearchRefused")
    assert any(b'X-GM-LABELS "Work"' in command for command in imap_commands)


def test_gmail_raw_goes_to_gmail_as_x_gm_raw(alice, gmail, imap_commands):
    response = alice.client.post(f"{BOX}/search?path=INBOX",
                                 {"search": {"gmailRaw": "has:attachment in:unread"}},
                                 format="json")

    assert (response.status_code, response.json()["code"]) == (400, "SearchRefused")
    assert any(b'X-GM-RAW "has:attachment in:unread"' in command for command in imap_commands)


# --- Gmail's folder model ---------------------------------------------------------------------


def test_mailboxes_show_gmail_special_uses(alice, gmail):
    response = alice.client.get(f"{BOX}/mailboxes")
    uses = {m["path"]: m["specialUse"] for m in response.json()["mailboxes"]}

    assert {path: uses[path] for path in ("[Gmail]/All Mail", "[Gmail]/Important",
                                          "[Gmail]/Starred")} == \
        {"[Gmail]/All Mail": "\\All", "[Gmail]/Important": "\\Important",
         "[Gmail]/Starred": "\\Flagged"}


def deliver(hoodiecrow, subject: str, labels: list[str]) -> None:
    """What Gmail does with new mail: one message in All Mail with its labels, and a copy in
    INBOX (with \\Inbox) and in each user label's folder."""
    raw = seed.make_message(subject=subject)
    client = hoodiecrow.client()
    for folder in (["INBOX"] if "\\Inbox" in labels else []) + \
            [label for label in labels if not label.startswith("\\")]:
        client.append(folder, raw)
    client.select_folder("[Gmail]/All Mail")
    client.append("[Gmail]/All Mail", raw)
    uid = max(client.search("ALL"))
    client.set_gmail_labels([uid], labels)
    client.logout()


def test_new_inbox_mail_with_a_label_is_announced_once_from_inbox(gmail, hoodiecrow):
    account, session = gmail
    deliver(hoodiecrow, "New, labelled Work", ["\\Inbox", "Work"])

    sync_account(session, account)

    news = message_events(account, "messageNew")
    assert [(e.data["subject"], e.data["path"]) for e in news] == \
        [("New, labelled Work", "INBOX")]


def test_new_mail_that_skips_the_inbox_is_announced_from_all_mail_with_its_labels(
        gmail, hoodiecrow):
    account, session = gmail
    deliver(hoodiecrow, "Filtered to Work", ["Work"])

    sync_account(session, account)

    news = message_events(account, "messageNew")
    assert [(e.data["path"], e.data["labels"]) for e in news] == \
        [("[Gmail]/All Mail", ["Work"])]


def test_every_copy_is_still_indexed_and_listed(alice, gmail, hoodiecrow):
    account, session = gmail
    deliver(hoodiecrow, "New, labelled Work", ["\\Inbox", "Work"])

    sync_account(session, account)

    assert [("New, labelled Work" in listing(alice.client, path))
            for path in ("INBOX", "Work", "[Gmail]/All Mail")] == [True, True, True]


def test_archiving_deletes_from_inbox_and_announces_the_label_change_from_all_mail(
        gmail, hoodiecrow):
    account, session = gmail
    inbox = other_client(hoodiecrow, "INBOX")
    inbox.delete_messages([uid_of(inbox, "In the inbox")])
    inbox.expunge()
    every = other_client(hoodiecrow, "[Gmail]/All Mail")
    every.remove_gmail_labels([uid_of(every, "In the inbox")], ["\\Inbox"])

    sync_account(session, account)

    assert [(e.event, e.data["path"]) for e in events_of(account) if e.event.startswith(
        "message")] == [("messageDeleted", "INBOX"), ("messageUpdated", "[Gmail]/All Mail")]


def test_emailengine_webhooks_carry_labels_and_the_labels_special_use(alice, gmail, hoodiecrow):
    account, session = gmail
    deliver(hoodiecrow, "Sent from the web", ["\\Sent"])
    sync_account(session, account)
    [event] = message_events(account, "messageNew")
    subscription = WebhookSubscription.objects.create(
        tenant=alice.tenant, url="http://127.0.0.1:9/h", events=["*"], format="emailengine",
        sealed_secret="")

    [payload] = EngineRenderer(subscription).payloads(event)

    data = payload["data"]
    assert (data["labels"], data["messageSpecialUse"], data["seemsLikeNew"]) == \
        (["\\Sent"], "\\Sent", False)


def test_a_gmail_message_is_not_taken_for_seen_before_because_of_its_own_copies(
        alice, gmail, hoodiecrow):
    account, session = gmail
    raw = seed.make_message(subject="Filed in two labels", message_id="<two@labels.example>")
    client = hoodiecrow.client()
    client.select_folder("[Gmail]/All Mail")
    client.append("[Gmail]/All Mail", raw)
    client.set_gmail_labels([max(client.search("ALL"))], ["Work"])
    client.append("Work", raw)
    client.logout()
    sync_account(session, account)
    [event] = message_events(account, "messageNew")
    # Gmail gives every copy the same X-GM-MSGID; hoodiecrow numbers each anew: as Gmail.
    Message.objects.filter(email_account=account, subject="Filed in two labels").update(
        email_id=event.data["emailId"])
    subscription = WebhookSubscription.objects.create(
        tenant=alice.tenant, url="http://127.0.0.1:9/h", events=["*"], format="emailengine",
        sealed_secret="")

    [payload] = EngineRenderer(subscription).payloads(event)

    assert payload["data"]["seemsLikeNew"] is True
