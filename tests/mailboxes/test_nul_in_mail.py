"""A sender's NUL, against a real Dovecot: an encoded word ``=?utf-8?q?a=00b?=`` in a Subject or
a name, or an RFC 2231 filename ``f%00.txt``, decodes to text PostgreSQL cannot store. Any
sender could put one in a message to anyone, and it made the COPY of the message's whole batch
fail on every retry: a first index stopped at it for ever, and new mail behind it was never
indexed or announced. The message is indexed with U+FFFD in place of the NUL, and so is
everything after it, in history and as new mail (``emailapi.lib.storable``)."""

from __future__ import annotations

import pytest

from emailapi.lib.storable import storable, storable_text, unstorable
from mailboxes.imap.types import FlagChange
from mailboxes.models import Folder, Message
from mailboxes.sync import index
from mailboxes.sync.folder import sync_folder
from tests.mailboxes.helpers import events_of
from tests.servers import seed

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]


def _raw(name: str) -> bytes:
    return (f"From: =?utf-8?q?Mal=00lory?= <mallory@example.test>\r\nTo: bob@example.test\r\n"
            f"Subject: =?utf-8?q?{name}=00here?=\r\nMessage-ID: <{name}@example.test>\r\n"
            "Date: Mon, 2 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
            "Hello\r\n--b\r\nContent-Type: application/pdf\r\n"
            "Content-Disposition: attachment; filename*=utf-8''f%00.pdf\r\n\r\n%PDF\r\n--b--\r\n"
            ).encode()


# UTF-7 of half a surrogate pair, in the Subject and in the text: Python decodes it to a lone
# surrogate, which UTF-8 cannot encode.
HALF_PAIR = (b"From: ann@example.test\r\nTo: bob@example.test\r\nSubject: =?utf-7?q?x+2AA-y?=\r\n"
             b"Message-ID: <half@example.test>\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\n"
             b"Content-Type: text/plain; charset=utf-7\r\n\r\nhi +2AA- there\r\n")


@pytest.fixture
def inbox_messages():
    return {"before": seed.make_message(subject="Before"), "nul": _raw("history"),
            "after": seed.make_message(subject="After"), "half": HALF_PAIR}


def test_a_nul_in_history_is_stored_as_a_replacement_and_the_rest_indexed(synced):
    rows = {row.uid: row for row in Message.objects.filter(email_account=synced.account)}
    assert sorted(rows) == sorted(synced.uids)
    nul = rows[synced.uid_of["nul"]]
    assert nul.subject == "history\ufffdhere"
    assert nul.from_address["name"] == "Mal\ufffdlory"
    assert [part["filename"] for part in nul.attachments] == ["f\ufffd.pdf"]
    listed = {m["uid"]: m for m in synced.listing()}
    assert listed[synced.uid_of["nul"]]["subject"] == "history\ufffdhere"
    assert listed[synced.uid_of["after"]]["subject"] == "After"


def test_new_mail_with_a_nul_is_announced_and_so_is_the_mail_after_it(synced, mail_user):
    uids = seed.seed_mailbox(mail_user, messages=[_raw("fresh"), seed.make_message(subject="Next")])
    inbox = Folder.objects.get(email_account=synced.account, path="INBOX")
    assert sync_folder(synced.session, inbox).new == 2
    announced = {event.data["uid"]: event.data for event in events_of(synced.account, "messageNew")}
    assert sorted(announced) == uids
    assert announced[uids[0]]["subject"] == "fresh\ufffdhere"
    assert announced[uids[0]]["from"]["name"] == "Mal\ufffdlory"
    assert announced[uids[1]]["subject"] == "Next"


def test_half_a_surrogate_pair_reads_as_a_replacement(synced):
    """The index stores U+FFFD for it; the detail's text and headers, decoded from the server
    at each read, hold the lone surrogate itself, and the API's JSON writes it as U+FFFD (it
    was a 500: no UTF-8 for it)."""
    listed = {m["uid"]: m for m in synced.listing()}
    message = listed[synced.uid_of["half"]]
    assert message["subject"] == "x\ufffdy"
    response = synced.client.get(f"/v1/account/box/message/{message['id']}?textType=*")
    assert response.status_code == 200
    assert response.json()["text"]["plain"].startswith("hi \ufffd there")


@pytest.mark.parametrize(("text", "stored"), [
    ("plain", "plain"), ("café", "café"), ("a\x00b", "a\ufffdb"), ("a\ud800b", "a\ufffdb"),
    ("\x00\udfff\x00", "\ufffd" * 3), ("", ""),
])
def test_storable_text_replaces_only_what_cannot_be_stored(text, stored):
    assert storable_text(text) == stored
    assert unstorable(text) is (text != stored)


def test_storable_rebuilds_containers_and_leaves_other_values():
    value = {"a": ["x\x00", ("y", 1)], "b\x00": None, "c": 2.5}
    assert unstorable(value)
    assert storable(value) == {"a": ["x\ufffd", ("y", 1)], "b\ufffd": None, "c": 2.5}
    assert not unstorable(storable(value))
    assert not unstorable({"a": ["x", ("y", 1)], "b": None})


def test_a_servers_keyword_with_a_nul_is_stored_as_a_replacement(synced):
    """A server's flags are no sender's, but a broken one sending a keyword with NUL failed
    every sync of the account at the UPDATE; it is stored as text is, and announced."""
    inbox = Folder.objects.get(email_account=synced.account, path="INBOX")
    uid = synced.uid_of["after"]
    assert index.apply_flag_changes(inbox, [FlagChange(uid, ("\\Seen", "bad\x00word"))]) == 1
    assert Message.objects.get(folder=inbox, uid=uid).flags == ["\\Seen", "bad\ufffdword"]
    [event] = events_of(synced.account, "messageUpdated")
    assert event.data["changes"]["flags"]["added"] == ["\\Seen", "bad\ufffdword"]
