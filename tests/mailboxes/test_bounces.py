"""Bounces and abuse reports arriving in a real Dovecot INBOX: the sync reads their report
parts, records ``messageBounce`` / ``messageComplaint`` after their ``messageNew``, keeps the
bounces, and the original message shows them (EmailEngine's ``bounces``)."""

from __future__ import annotations

import re

import pytest

from accounts import services
from accounts.models import EmailAccount
from mailboxes import feedback_reports, uploading
from mailboxes.models import Bounce, Folder, Message
from mailboxes.sync.account import sync_account
from mailboxes.sync.folder import sync_folder
from tests.base import statements_naming
from tests.mailboxes import mime_shapes
from tests.mailboxes.helpers import events_of, open_session, register
from tests.servers import seed

pytestmark = pytest.mark.django_db

ORIGINAL_ID = mime_shapes.BOUNCE["messageId"]  # the original of mime_shapes.bounce()
ENGINE_DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
# A FETCH of reports' parts (``parts.fetch_sections_of``): the metadata FETCH asks for FLAGS
# first.
REPORT_FETCH = re.compile(rb"UID FETCH [0-9,]+ \(BODY\.PEEK\[[0-9]")


@pytest.fixture
def inbox_messages():
    return {"original": seed.make_message(subject="Lunch?", message_id=ORIGINAL_ID),
            "other": seed.make_message(subject="Other")}


def arrive(synced, mail_user, raw: bytes, folder: str = "INBOX") -> int:
    """APPEND ``raw`` to ``folder`` as another client, and sync that folder."""
    [uid] = seed.seed_mailbox(mail_user, folder=folder, messages=[raw])
    row = Folder.objects.get(email_account=synced.account, path=folder)
    sync_folder(synced.session, row)
    return uid


def message_id_of(account, uid: int, path: str = "INBOX") -> str:
    [event] = [e for e in events_of(account, "messageNew") if e.data["uid"] == uid
               and e.data["path"] == path]
    return event.data["id"]


def test_a_dsn_raises_message_bounce_after_its_message_new(synced, mail_user):
    uid = arrive(synced, mail_user, mime_shapes.bounce())
    events = events_of(synced.account, "messageNew", "messageBounce", "messageComplaint")
    assert [e.event for e in events] == ["messageNew", "messageBounce"]
    new, bounce = events
    assert new.data["uid"] == uid
    assert new.data["isBounce"] is True  # EmailEngine marks the bounce's own messageNew
    assert new.data["relatedMessageId"] == ORIGINAL_ID
    assert bounce.path == ""  # EmailEngine's bounce names no folder
    assert bounce.data == {"bounceMessage": new.data["id"], **mime_shapes.BOUNCE}


def test_the_original_shows_its_bounces(synced, mail_user):
    uid = arrive(synced, mail_user, mime_shapes.bounce())
    original_id = synced.ids[0]
    answer = synced.client.get(f"/v1/account/box/message/{original_id}")
    assert answer.status_code == 200, answer.content
    [bounce] = answer.json()["bounces"]
    assert ENGINE_DATE.match(bounce.pop("date"))
    assert bounce == {"message": message_id_of(synced.account, uid),
                      "recipient": "nobody@example.test", "action": "failed",
                      "response": {"message": "550 5.1.1 User unknown", "status": "5.1.1"}}
    other = synced.client.get(f"/v1/account/box/message/{synced.ids[1]}").json()
    assert "bounces" not in other


def _bounced(messages: list[dict]) -> dict[str, int]:
    return {message["messageId"]: len(message["bounces"]) for message in messages
            if "bounces" in message}


def test_listings_and_searches_show_each_messages_bounces_as_emailengines_do(synced, mail_user):
    """EmailEngine describes a message the same way in a listing, a search and a read: its
    ``bounces`` come along everywhere, once the account has any."""
    arrive(synced, mail_user, mime_shapes.bounce())
    for _ in range(2):  # the second from the memo of listed rows, which keeps no bounces
        listed = synced.client.get("/v1/account/box/messages?path=INBOX").json()["messages"]
        assert _bounced(listed) == {ORIGINAL_ID: 1}
    [original] = [m for m in listed if m["messageId"] == ORIGINAL_ID]
    assert original["bounces"][0]["recipient"] == "nobody@example.test"
    # A folder whose history is still being indexed is listed through the ORM: the same.
    Folder.objects.filter(email_account=synced.account, path="INBOX").update(backfill_below=1)
    listed = synced.client.get("/v1/account/box/messages?path=INBOX").json()["messages"]
    assert _bounced(listed) == {ORIGINAL_ID: 1}
    for source in ("index", "imap"):
        found = synced.client.post(f"/v1/account/box/search?path=INBOX&source={source}",
                                   {"search": {"subject": "Lunch"}}, format="json").json()
        assert _bounced(found["messages"]) == {ORIGINAL_ID: 1}, source
    everywhere = synced.client.post("/v1/account/box/search?source=index",
                                    {"search": {"subject": "Lunch"}}, format="json").json()
    assert _bounced(everywhere["messages"]) == {ORIGINAL_ID: 1}


def test_a_listing_of_an_account_without_bounces_asks_nothing_of_them(synced):
    with statements_naming(Bounce._meta.db_table) as asked:
        listed = synced.client.get("/v1/account/box/messages?path=INBOX").json()["messages"]
        synced.client.post("/v1/account/box/search?path=INBOX&source=index",
                           {"search": {"subject": "Lunch"}}, format="json")
    assert len(listed) == 2
    assert asked == []


def test_reading_a_message_of_an_account_without_bounces_asks_nothing_of_them(synced, mail_user):
    """The account's ``has_bounces`` spares every message read the query of its bounces (it
    cost a quarter of a read's time) until the account's first bounce, and then asks."""
    def read() -> tuple[dict, list[str]]:
        with statements_naming(Bounce._meta.db_table) as asked:
            answer = synced.client.get(f"/v1/account/box/message/{synced.ids[0]}")
        assert answer.status_code == 200, answer.content
        return answer.json(), asked

    answer, asked = read()
    assert "bounces" not in answer
    assert asked == []
    assert not EmailAccount.objects.get(pk=synced.account.pk).has_bounces
    arrive(synced, mail_user, mime_shapes.bounce())
    assert EmailAccount.objects.get(pk=synced.account.pk).has_bounces
    answer, asked = read()
    assert len(answer["bounces"]) == 1
    assert len(asked) == 1


def test_a_postfix_dsn_reports_its_failed_recipient_from_the_attached_original(
        synced, mail_user):
    arrive(synced, mail_user, mime_shapes.postfix_bounce(ORIGINAL_ID))
    [bounce] = events_of(synced.account, "messageBounce")
    assert bounce.data["recipient"] == "carol@example.net"  # dave's was a delay: no bounce
    assert bounce.data["queueId"] == "4Q7Z1X2Y3Z"
    assert bounce.data["mta"] == "mx.example.net"
    assert bounce.data["messageId"] == ORIGINAL_ID
    assert bounce.data["messageHeaders"]["subject"] == ["Quarterly numbers"]
    [row] = Bounce.objects.filter(email_account=synced.account)
    assert row.message_id == ORIGINAL_ID
    assert row.response_status == "5.1.1"


def test_an_abuse_report_raises_message_complaint(synced, mail_user):
    uid = arrive(synced, mail_user, mime_shapes.complaint(ORIGINAL_ID))
    events = events_of(synced.account, "messageNew", "messageBounce", "messageComplaint")
    assert [e.event for e in events] == ["messageNew", "messageComplaint"]
    complaint = events[1].data
    assert events[0].data["isComplaint"] is True
    assert events[0].data["relatedMessageId"] == ORIGINAL_ID
    assert complaint["complaintMessage"] == message_id_of(synced.account, uid)
    assert complaint["arf"]["feedbackType"] == "abuse"
    assert complaint["arf"]["originalRcptTo"] == ["erin@example.net"]
    assert complaint["arf"]["arrivalDate"] == "2024-03-04T09:30:00.000Z"
    assert complaint["headers"] == {"messageId": ORIGINAL_ID, "from": "alice@example.test",
                                    "to": ["erin@example.net"], "subject": "Spätsommer sale",
                                    "date": "2024-03-04T09:29:00.000Z"}
    assert not Bounce.objects.filter(email_account=synced.account).exists()


def test_a_qmail_text_bounce_is_recognised(synced, mail_user):
    arrive(synced, mail_user, mime_shapes.qmail_bounce())
    [bounce] = events_of(synced.account, "messageBounce")
    assert bounce.data["recipient"] == "frank@example.net"
    assert bounce.data["messageId"] == "<minutes-1@example.test>"
    assert bounce.data["response"]["status"] == "5.1.1"


def test_an_ordinary_message_sends_no_further_command(synced, mail_user, imap_commands):
    arrive(synced, mail_user, seed.make_message(subject="Plain", attachments=[
        ("a.pdf", b"%PDF-1.4 x", "application/pdf")]))
    [new] = events_of(synced.account, "messageNew")
    assert "isBounce" not in new.data
    assert not [c for c in imap_commands if REPORT_FETCH.search(c)]


def test_a_report_sends_one_fetch_of_its_parts(synced, mail_user, imap_commands):
    arrive(synced, mail_user, mime_shapes.postfix_bounce(ORIGINAL_ID))
    [command] = [c for c in imap_commands if REPORT_FETCH.search(c)]
    assert b"BODY.PEEK[2]<0.65536>" in command
    assert b"BODY.PEEK[3.HEADER]<0.65536>" in command
    assert b"BODY.PEEK[1]" not in command  # the human text is not read


def test_the_reports_of_a_batch_are_read_in_one_fetch(synced, mail_user, imap_commands):
    """Two DSNs of one shape arriving together: one round trip for both, not one each."""
    uids = seed.seed_mailbox(mail_user, messages=[mime_shapes.bounce(1), mime_shapes.bounce(2)])
    sync_folder(synced.session, Folder.objects.get(email_account=synced.account, path="INBOX"))
    [command] = [c for c in imap_commands if REPORT_FETCH.search(c)]
    assert command.split(b" ")[3] == b"%d,%d" % tuple(uids)
    bounces = events_of(synced.account, "messageBounce")
    assert sorted(b.data["bounceMessage"] for b in bounces) == sorted(
        message_id_of(synced.account, uid) for uid in uids)


def test_a_report_outside_the_inbox_is_not_read(synced, mail_user):
    with mail_user.imap_client() as other:
        other.create_folder("Reports")
    sync_account(synced.session, synced.account)
    arrive(synced, mail_user, mime_shapes.bounce(), folder="Reports")
    assert len(events_of(synced.account, "messageNew")) == 1
    assert not events_of(synced.account, "messageBounce")


def test_a_bounce_filed_as_junk_is_read_as_emailengine_reads_it(synced, mail_user):
    """A spam filter files many a bounce in Junk, where EmailEngine looks for them too."""
    uid = arrive(synced, mail_user, mime_shapes.bounce(), folder="Junk")
    [bounce] = events_of(synced.account, "messageBounce")
    assert bounce.data == {"bounceMessage": message_id_of(synced.account, uid, "Junk"),
                           **mime_shapes.BOUNCE}
    assert Bounce.objects.filter(email_account=synced.account).count() == 1


def test_a_bounce_moved_into_junk_is_one_message_moved_and_one_bounce(synced, mail_user):
    uid = arrive(synced, mail_user, mime_shapes.bounce())
    bounces = list(Bounce.objects.filter(email_account=synced.account).values())
    with mail_user.imap_client() as other:
        other.select_folder("INBOX")
        other.move([uid], "Junk")
    sync_account(synced.session, synced.account)
    moved = events_of(synced.account, "messageMoved")
    assert [(e.data["source"]["path"], e.data["path"]) for e in moved] == [("INBOX", "Junk")]
    assert len(events_of(synced.account, "messageBounce")) == 1
    assert len(events_of(synced.account, "messageNew")) == 1
    assert list(Bounce.objects.filter(email_account=synced.account).values()) == bounces


def test_a_bounce_never_shows_on_another_tenants_message(synced, mail_user, bob, dovecot):
    user = dovecot.add_user()
    seed.seed_mailbox(user, messages=[seed.make_message(subject="Lunch?",
                                                        message_id=ORIGINAL_ID)])
    theirs = register(bob.tenant, user)
    session = open_session(theirs)
    try:
        sync_account(session, theirs)
    finally:
        session.client.logout()
    arrive(synced, mail_user, mime_shapes.bounce())
    assert Bounce.objects.filter(message_id=ORIGINAL_ID).count() == 1
    [row] = Message.objects.filter(email_account=theirs)
    listed = bob.client.get("/v1/account/box/messages?path=INBOX").json()["messages"]
    answer = bob.client.get(f"/v1/account/box/message/{listed[0]['id']}")
    assert answer.status_code == 200
    assert answer.json()["messageId"] == row.message_id
    assert "bounces" not in answer.json()


def test_the_bounces_go_with_the_account(synced, mail_user):
    arrive(synced, mail_user, mime_shapes.bounce())
    assert Bounce.objects.filter(email_account=synced.account).exists()
    services.delete_account(synced.account)
    assert not Bounce.objects.filter(message_id=ORIGINAL_ID).exists()


def test_a_bounce_uploaded_into_the_inbox_is_announced_once(synced):
    answer = uploading.upload(synced.account, "INBOX", {"raw": mime_shapes.bounce()}, [], None)
    [bounce] = events_of(synced.account, "messageBounce")
    assert bounce.data["bounceMessage"] == answer["id"]
    sync_account(synced.session, synced.account)  # the worker finds it indexed: no second
    assert len(events_of(synced.account, "messageBounce")) == 1
    assert Bounce.objects.filter(email_account=synced.account).count() == 1


def test_a_nul_in_a_report_is_stored_as_a_replacement_character(synced, mail_user):
    """A report's parts are the sender's bytes: a NUL (base64, so the server keeps it) in the
    original's Message-ID and the diagnostic must not fail the batch's transaction."""
    status = mime_shapes.DELIVERY_STATUS.replace(b"User unknown", b"User\x00unknown")
    headers = mime_shapes.RFC822_HEADERS.replace(b"<lunch-1@", b"<lu\x00nch-1@")
    body = mime_shapes.multipart("report", [
        mime_shapes.leaf("text/plain", b"Undelivered.\r\n"),
        mime_shapes.leaf("message/delivery-status", status, "base64"),
        mime_shapes.leaf("text/rfc822-headers", headers, "base64"),
    ], "nul-dsn")
    uid = arrive(synced, mail_user, mime_shapes.message(
        body, "Undelivered Mail", sender="MAILER-DAEMON <postmaster@example.test>"))
    [new] = [e for e in events_of(synced.account, "messageNew") if e.data["uid"] == uid]
    assert new.data["relatedMessageId"] == "<lu\ufffdnch-1@example.test>"
    [bounce] = events_of(synced.account, "messageBounce")
    assert bounce.data["response"]["message"] == "550 5.1.1 User\ufffdunknown"
    [row] = Bounce.objects.filter(email_account=synced.account)
    assert row.message_id == "<lu\ufffdnch-1@example.test>"


def test_a_report_that_cannot_be_read_still_gets_its_message_new(synced, mail_user,
                                                                 monkeypatch):
    """A fault of the report reader (a shape nobody foresaw) loses that report's events, never
    the batch: the pass would be retried, fail again, and stop the mail behind it."""
    def broken(read, from_=()):
        raise RuntimeError("a shape nobody foresaw")

    monkeypatch.setattr(feedback_reports, "read_report", broken)
    uid = arrive(synced, mail_user, mime_shapes.bounce())
    assert [e.data["uid"] for e in events_of(synced.account, "messageNew")] == [uid]
    assert not events_of(synced.account, "messageBounce")


def test_a_bounce_moved_back_into_the_inbox_is_one_message_moved(synced, mail_user):
    """A pass syncs the INBOX first (``sync_account``, as the worker's connect-time and backfill
    passes run it), so a bounce moved back into it by another client is seen arriving before
    it is seen leaving Archive: its report is read again, and its held messageBounce and
    Bounce rows must go with the withdrawn messageNew, for one messageMoved."""
    uid = arrive(synced, mail_user, mime_shapes.bounce())
    with mail_user.imap_client() as other:
        other.select_folder("INBOX")
        other.move([uid], "Archive")
    sync_account(synced.session, synced.account)
    assert len(events_of(synced.account, "messageMoved")) == 1
    bounces = list(Bounce.objects.filter(email_account=synced.account).values())
    with mail_user.imap_client() as other:
        other.select_folder("Archive")
        other.move(other.search(), "INBOX")
    sync_account(synced.session, synced.account)
    moved = events_of(synced.account, "messageMoved")
    assert [(e.data["source"]["path"], e.data["path"]) for e in moved] == [
        ("INBOX", "Archive"), ("Archive", "INBOX")]
    assert len(events_of(synced.account, "messageBounce")) == 1
    assert len(events_of(synced.account, "messageNew")) == 1
    assert list(Bounce.objects.filter(email_account=synced.account).values()) == bounces


# --- deliveryReport -------------------------------------------------------------------------------


def test_a_delivered_dsn_carries_emailengines_delivery_report_on_its_message_new(synced, mail_user):
    uid = arrive(synced, mail_user, mime_shapes.postfix_notice(ORIGINAL_ID))
    [new] = events_of(synced.account, "messageNew")
    assert new.data["uid"] == uid
    assert new.data["deliveryReport"] == mime_shapes.DELIVERY_REPORT
    assert "isBounce" not in new.data
    assert not events_of(synced.account, "messageBounce")
    assert not Bounce.objects.filter(email_account=synced.account).exists()
    # EmailEngine reads it on arrival only: a read of the message has none.
    answer = synced.client.get(f"/v1/account/box/message/{new.data['id']}")
    assert answer.status_code == 200, answer.content
    assert "deliveryReport" not in answer.json()


def test_a_delayed_dsn_carries_its_delivery_report(synced, mail_user):
    arrive(synced, mail_user, mime_shapes.postfix_notice(ORIGINAL_ID, mime_shapes.DELAYED))
    [new] = events_of(synced.account, "messageNew")
    assert new.data["deliveryReport"]["action"] == "delayed"
    assert new.data["deliveryReport"]["status"] == "4.4.1"
    assert not events_of(synced.account, "messageBounce")


def test_a_bounces_message_new_carries_no_delivery_report(synced, mail_user):
    arrive(synced, mail_user, mime_shapes.bounce())
    [new] = events_of(synced.account, "messageNew")
    assert new.data["isBounce"] is True
    assert "deliveryReport" not in new.data


# --- the provider plain-text shapes ---------------------------------------------------------------


def test_exims_plain_text_bounce_is_recognised_from_its_text_and_header(synced, mail_user,
                                                                       imap_commands):
    arrive(synced, mail_user, mime_shapes.exim_bounce(ORIGINAL_ID))
    [bounce] = events_of(synced.account, "messageBounce")
    assert bounce.data["recipient"] == "judy@example.net"  # named by X-Failed-Recipients
    assert bounce.data["messageId"] == ORIGINAL_ID
    assert bounce.data["response"]["status"] == "5.1.1"
    assert bounce.data["messageHeaders"]["subject"] == ["Invoice 42"]
    [command] = [c for c in imap_commands if REPORT_FETCH.search(c)]
    assert b"BODY.PEEK[HEADER]<0.65536>" in command  # its header read with its text, at once
    original = synced.client.get(f"/v1/account/box/message/{synced.ids[0]}").json()
    assert [b["recipient"] for b in original["bounces"]] == ["judy@example.net"]


def test_exims_delay_warning_is_no_bounce(synced, mail_user):
    arrive(synced, mail_user, mime_shapes.exim_delay_warning(ORIGINAL_ID))
    assert len(events_of(synced.account, "messageNew")) == 1
    assert not events_of(synced.account, "messageBounce")


def test_workmails_bounce_is_recognised(synced, mail_user):
    arrive(synced, mail_user, mime_shapes.workmail_bounce(ORIGINAL_ID))
    [bounce] = events_of(synced.account, "messageBounce")
    assert bounce.data["recipient"] == "liam@example.net"
    assert bounce.data["mta"] == "a2-75.smtp-out.eu-west-1.amazonses.com"
    assert bounce.data["response"]["status"] == "5.1.1"  # read from quoted-printable text
    assert bounce.data["messageId"] == ORIGINAL_ID  # the attached original's header


def test_zohos_bounce_is_recognised(synced, mail_user):
    arrive(synced, mail_user, mime_shapes.zoho_bounce(ORIGINAL_ID))
    [bounce] = events_of(synced.account, "messageBounce")
    assert bounce.data["recipient"] == "mia@example.net"
    assert bounce.data["messageId"] == ORIGINAL_ID
    assert bounce.data["messageHeaders"]["subject"] == ["Newsletter"]


# --- bounces on messageNew ------------------------------------------------------------------------


def test_a_new_message_whose_message_id_has_bounces_carries_them(synced, mail_user):
    """EmailEngine describes a new message as it does a read one: with its recorded bounces
    (a copy of a bounced message arriving later, say)."""
    arrive(synced, mail_user, mime_shapes.bounce())
    uid = arrive(synced, mail_user, seed.make_message(subject="Lunch? (copy)",
                                                      message_id=ORIGINAL_ID))
    [new] = [e for e in events_of(synced.account, "messageNew") if e.data["uid"] == uid]
    [bounce] = new.data["bounces"]
    assert bounce["recipient"] == "nobody@example.test"
    assert ENGINE_DATE.match(bounce["date"])
    other = arrive(synced, mail_user, seed.make_message(subject="Other"))
    [new] = [e for e in events_of(synced.account, "messageNew") if e.data["uid"] == other]
    assert "bounces" not in new.data


def test_new_mail_of_an_account_without_bounces_asks_nothing_of_them(synced, mail_user):
    with statements_naming(Bounce._meta.db_table) as asked:
        arrive(synced, mail_user, seed.make_message(subject="Plain", message_id=ORIGINAL_ID))
    assert len(events_of(synced.account, "messageNew")) == 1
    assert asked == []
