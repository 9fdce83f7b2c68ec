"""``POST /v1/account/{account}/submit`` and the outbox routes, end to end: the API queues, the
real rq queue and worker send through the real SMTP server, Dovecot gets the Sent copy."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest

from mailboxes.models import Message, OutboxEntry
from tests.mailboxes.helpers import events_of
from tests.mailboxes.sending_helpers import (
    b64,
    raw_message,
    sync,
    work_send_queue,
)
from tests.servers import seed

pytestmark = pytest.mark.django_db(transaction=True)


def _field_names(headers: bytes) -> list[bytes]:
    """The field names of a header block (its values, a random Message-ID say, may hold
    "bcc")."""
    return re.findall(rb"^([^\s:]+):", headers, re.M)


def _submit(client, body, account_id="box"):
    return client.post(f"/v1/account/{account_id}/submit", body, format="json")


def test_a_plain_send_arrives_with_its_headers_and_envelope_and_lands_in_sent(
        alice, account, smtp_server):
    raw = raw_message(subject="Lunch?", to="Bob <bob@example.test>", cc="carol@example.test",
                      headers={"Bcc": "dave@example.test"})

    response = _submit(alice.client, {"raw": b64(raw)})

    assert response.status_code == 200, response.json()
    body = response.json()
    assert set(body) == {"response", "queueId", "messageId", "sendAt"}
    work_send_queue()
    received = smtp_server.wait_for_messages(1)[0]
    assert received.mail_from == "me@example.test"
    assert received.rcpt_tos == ["bob@example.test", "carol@example.test", "dave@example.test"]
    message = received.message
    assert message["Subject"] == "Lunch?"
    assert message["Message-ID"] == body["messageId"]
    assert message["Bcc"] is None, "Bcc recipients get the mail, not the header"
    assert "this is a test message" in message.get_content()

    listed = alice.client.get("/v1/account/box/messages?path=\\Sent").json()["messages"]
    assert [m["messageId"] for m in listed] == [body["messageId"]]
    entry = alice.client.get(f"/v1/outbox/{body['queueId']}").json()
    assert entry["state"] == "sent"
    assert entry["progress"] == {"status": "submitted", "response": entry["response"],
                                 "messageId": body["messageId"],
                                 "originalMessageId": body["messageId"]}
    assert entry["response"].startswith("250 ")
    assert entry["nextAttempt"] is None
    assert entry["attemptsMade"] == 1
    assert entry["sentCopy"]["id"] == listed[0]["id"]
    [sent] = events_of(account, "messageSent")
    assert sent.data["queueId"] == body["queueId"]
    assert sent.data["envelope"] == {"from": "me@example.test", "to": received.rcpt_tos}


def test_a_message_without_message_id_gets_one_and_envelope_overrides_headers(
        alice, account, smtp_server):
    raw = b"From: me@example.test\r\nTo: bob@example.test\r\nSubject: Hi\r\n\r\nBody\r\n"

    response = _submit(alice.client, {"raw": b64(raw), "copy": False, "envelope": {
        "from": "bounces@example.test", "to": ["eve@example.test"]}})

    work_send_queue()
    received = smtp_server.wait_for_messages(1)[0]
    assert received.mail_from == "bounces@example.test"
    assert received.rcpt_tos == ["eve@example.test"]
    assert received.message["Message-ID"] == response.json()["messageId"]
    assert received.message["Message-ID"].endswith("@example.test>")
    assert not Message.objects.filter(folder__special_use="\\Sent").exists()


def test_a_reply_flags_the_original_answered(alice, account, smtp_user, smtp_server):
    original_id = "<original@example.test>"
    seed.seed_mailbox(smtp_user, messages=[seed.make_message(subject="Question",
                                                             message_id=original_id)])
    sync(account)
    [original] = alice.client.get("/v1/account/box/messages?path=INBOX").json()["messages"]
    assert not original["answered"]
    reply = raw_message(subject="Re: Question", in_reply_to=original_id,
                        references=original_id)

    response = _submit(alice.client, {"raw": b64(reply), "reference": {
        "message": original["id"], "action": "reply"}})

    assert response.status_code == 200
    work_send_queue()
    received = smtp_server.wait_for_messages(1)[0].message
    assert received["In-Reply-To"] == original_id
    assert received["References"] == original_id
    detail = alice.client.get(f"/v1/account/box/message/{original['id']}").json()
    assert detail["answered"]
    assert "\\Answered" in detail["flags"]
    client = smtp_user.imap_client()
    try:
        client.select_folder("INBOX", readonly=True)
        flags = client.get_flags([original["uid"]])[original["uid"]]
    finally:
        client.logout()
    assert b"\\Answered" in flags, "the server has the flag, not only the index"
    [updated] = events_of(account, "messageUpdated")
    assert updated.data["changes"]["flags"]["added"] == ["\\Answered"]
    sent_copy = Message.objects.get(folder__special_use="\\Sent")
    assert sent_copy.thread_id == Message.objects.get(folder__path="INBOX").thread_id


def test_send_at_is_returned_and_the_entry_waits_in_the_outbox(alice, account, smtp_server):
    response = _submit(alice.client, {"raw": b64(raw_message()),
                                      "sendAt": "2099-01-01T10:00:00Z", "deliveryAttempts": 2})

    assert response.json()["sendAt"] == "2099-01-01T10:00:00.000Z"
    work_send_queue()
    assert smtp_server.messages == []
    listed = alice.client.get("/v1/outbox").json()
    assert listed["total"] == 1
    assert listed["pages"] == 1
    [item] = listed["messages"]
    assert item["queueId"] == response.json()["queueId"]
    assert item["account"] == "box"
    assert item["state"] == "queued"
    assert item["scheduled"] == item["nextAttempt"] == "2099-01-01T10:00:00Z"
    assert item["deliveryAttempts"] == 2
    assert item["attemptsMade"] == 0
    assert item["envelope"] == {"from": "me@example.test", "to": ["bob@example.test"]}
    assert item["subject"] == "Hello from the outbox"


def test_cancel_removes_a_queued_send_and_refuses_twice(alice, account, smtp_server):
    queue_id = _submit(alice.client, {"raw": b64(raw_message()),
                                      "sendAt": "2099-01-01T10:00:00Z"}).json()["queueId"]

    response = alice.client.delete(f"/v1/outbox/{queue_id}")

    assert response.status_code == 200
    assert response.json() == {"deleted": True}
    again = alice.client.delete(f"/v1/outbox/{queue_id}")
    assert again.status_code == 409
    assert again.json()["code"] == "QueueEntryNotCancellable"
    assert alice.client.get("/v1/outbox").json()["total"] == 0
    cancelled = alice.client.get("/v1/outbox?state=cancelled").json()["messages"]
    assert [m["queueId"] for m in cancelled] == [queue_id]
    OutboxEntry.objects.filter(queue_id=queue_id).update(send_at="2000-01-01T00:00:00Z",
                                                         next_attempt_at="2000-01-01T00:00:00Z")
    from mailboxes.sending import enqueue_due

    assert enqueue_due() == 0
    assert smtp_server.messages == []


def test_the_outbox_pages(alice, account):
    for _ in range(3):
        _submit(alice.client, {"raw": b64(raw_message()), "sendAt": "2099-01-01T10:00:00Z"})

    page = alice.client.get("/v1/outbox?page=1&pageSize=2").json()

    assert page["total"] == 3
    assert page["pages"] == 2
    assert page["page"] == 1
    assert len(page["messages"]) == 1
    assert alice.client.get("/v1/outbox?account=other").json()["total"] == 0


@pytest.mark.parametrize("body,field", [
    ({}, "raw"),
    ({"raw": "not base64!"}, "raw"),
    ({"raw": ""}, "raw"),
    ({"raw": b64(b"x"), "sendAt": "tomorrow"}, "sendAt"),
    ({"raw": b64(b"x"), "deliveryAttempts": -1}, "deliveryAttempts"),
    ({"raw": b64(b"x"), "copy": "yes"}, "copy"),
    ({"raw": b64(b"x"), "envelope": {"to": ["not an address"]}}, "envelope.to"),
    ({"raw": b64(b"x"), "reference": {"message": "m", "action": "archive"}},
     "reference.action"),
    ({"raw": b64(b"x"), "bogus": 1}, "bogus"),
])
def test_bad_input_is_a_400_and_queues_nothing(alice, account, body, field):
    response = _submit(alice.client, body)

    assert response.status_code == 400
    error = response.json()
    assert error["code"] == "InputValidationError"
    assert error["statusCode"] == 400
    assert any(key.startswith(field) for key in error["details"]), error
    assert not OutboxEntry.objects.exists()


def test_a_message_without_recipients_is_a_400(alice, account):
    raw = b"From: me@example.test\r\nSubject: To nobody\r\n\r\nBody\r\n"

    response = _submit(alice.client, {"raw": b64(raw)})

    assert response.status_code == 400
    assert response.json()["code"] == "NoRecipients"
    assert not OutboxEntry.objects.exists()


def test_another_tenant_sees_and_touches_nothing(alice, bob, account, smtp_server):
    queue_id = _submit(alice.client, {"raw": b64(raw_message()),
                                      "sendAt": "2099-01-01T10:00:00Z"}).json()["queueId"]

    assert _submit(bob.client, {"raw": b64(raw_message())}).status_code == 404
    assert bob.client.get(f"/v1/outbox/{queue_id}").status_code == 404
    deleted = bob.client.delete(f"/v1/outbox/{queue_id}")
    assert deleted.status_code == 404
    assert deleted.json()["code"] == "QueueEntryNotFound"
    assert bob.client.get("/v1/outbox").json()["total"] == 0
    assert OutboxEntry.objects.get().state == "queued"


def test_a_read_token_can_list_but_not_submit(alice, account):
    reader = alice.client_with("read")
    assert reader.get("/v1/outbox").status_code == 200
    assert _submit(reader, {"raw": b64(raw_message())}).status_code == 403


def test_the_account_copy_setting(alice):
    from tests.base import account_payload

    assert alice.client.post("/v1/account", account_payload(copy=False),
                             format="json").status_code == 200
    assert alice.client.get("/v1/account/sales").json()["copy"] is False
    alice.client.put("/v1/account/sales", {"copy": True}, format="json")
    assert alice.client.get("/v1/account/sales").json()["copy"] is True
    other = alice.client.post("/v1/account", account_payload("other"), format="json")
    assert other.status_code == 200
    assert alice.client.get("/v1/account/other").json()["copy"] is True


def test_a_raw_send_strips_folded_bcc_adds_a_message_id_and_falls_back_to_the_login():
    from accounts.models import EmailAccount
    from mailboxes import compose

    account = EmailAccount(email="", smtp={"auth": {"user": "login@example.test"}})
    raw = (b"To: a@example.test\nBcc: b@example.test,\n c@example.test\n"
           b"Subject: =?utf-8?q?h=C3=A9?=\n\nBcc: stays in the body\n")

    composed = compose.compose(account, {"raw": raw}, None, for_sending=True)

    assert composed.envelope_from == "login@example.test"
    assert composed.envelope_to == ["a@example.test", "b@example.test", "c@example.test"]
    assert composed.subject == "hé"
    assert composed.raw == (
        f"Message-ID: {composed.message_id}\r\n".encode()
        + b"To: a@example.test\r\nSubject: =?utf-8?q?h=C3=A9?=\r\n\r\nBcc: stays in the body\r\n")
    assert composed.message_id.endswith("@example.test>")


def test_a_structured_reply_threads_quotes_and_flags_the_original(
        alice, account, smtp_user, smtp_server):
    """Structured fields (no raw): the composer sets In-Reply-To/References, the Re: subject
    and the recipient from the original; the original is flagged \\Answered after sending."""
    original_id = "<question-2@example.test>"
    seed.seed_mailbox(smtp_user, messages=[seed.make_message(
        subject="Budget", message_id=original_id, from_="Ann <ann@example.test>",
        body="Can you check the numbers?")])
    sync(account)
    [original] = alice.client.get("/v1/account/box/messages?path=INBOX").json()["messages"]

    response = _submit(alice.client, {
        "from": {"name": "Me", "address": "me@example.test"},
        "text": "Checked: all fine.", "bcc": [{"address": "audit@example.test"}],
        "reference": {"message": original["id"], "action": "reply", "inline": True}})

    assert response.status_code == 200, response.json()
    work_send_queue()
    received = smtp_server.wait_for_messages(1)[0]
    message = received.message
    assert message["Subject"] == "Re: Budget"
    assert message["In-Reply-To"] == original_id
    assert message["References"] == original_id
    assert message["Bcc"] is None
    assert sorted(received.rcpt_tos) == ["ann@example.test", "audit@example.test"]
    text = message.get_body(("plain",)).get_content()
    assert text.startswith("Checked: all fine.")
    assert "> Can you check the numbers?" in text
    detail = alice.client.get(f"/v1/account/box/message/{original['id']}").json()
    assert detail["answered"]
    sent_copy = Message.objects.get(folder__special_use="\\Sent")
    assert sent_copy.thread_id == Message.objects.get(folder__path="INBOX").thread_id


def test_an_inline_reply_dates_its_quote_in_the_requests_locale_else_the_accounts(
        alice, account, smtp_user, smtp_server):
    """EmailEngine's ``locale`` and ``tz``: the date of the quoted original, in the request's
    language and time zone, else in those the account was registered with."""
    seed.seed_mailbox(smtp_user, messages=[seed.make_message(
        subject="Plan", message_id="<plan@example.test>", from_="Ann <ann@example.test>",
        date=datetime(2026, 3, 1, 21, 15, tzinfo=timezone.utc), body="Sunday?")])
    sync(account)
    [original] = alice.client.get("/v1/account/box/messages?path=INBOX").json()["messages"]
    reply = {"from": {"address": "me@example.test"}, "text": "Yes",
             "reference": {"message": original["id"], "inline": True}}

    assert _submit(alice.client, {**reply, "locale": "de", "tz": "Europe/Berlin"}).status_code == 200
    updated = alice.client.put("/v1/account/box", {"locale": "en-GB", "tz": "Asia/Tokyo"},
                               format="json")
    assert updated.status_code == 200, updated.json()
    assert _submit(alice.client, reply).status_code == 200
    work_send_queue()

    quoted = [next(line for line in received.message.get_body(("plain",)).get_content()
                   .splitlines() if line.startswith("On "))
              for received in smtp_server.wait_for_messages(2)]
    assert sorted(quoted) == ["On Mon, 2 Mar 2026, 6:15, Ann <ann@example.test> wrote:",
                              "On So., 1. März 2026, 22:15, Ann <ann@example.test> wrote:"]


def test_structured_and_raw_together_or_neither_are_refused(alice, account):
    for body in ({"raw": b64(b"x"), "subject": "both"}, {"sendAt": "2099-01-01T00:00:00Z"}):
        response = _submit(alice.client, body)
        assert response.status_code == 400, response.json()
    assert not OutboxEntry.objects.exists()


def test_a_resent_message_goes_to_its_resent_recipients_without_any_bcc_header(
        alice, account, smtp_server):
    """A raw message that is being re-sent (RFC 5322 3.6.6): its newest Resent- block names
    the recipients (as ``sendmail -t`` and smtplib read it), and no ``*-Bcc`` field (Bcc,
    Resent-Bcc, folded or not, nor any X-...-Bcc) leaves with it."""
    raw = (b"Resent-From: me@example.test\r\nResent-Date: Mon, 2 Jun 2025 10:00:00 +0000\r\n"
           b"Resent-To: carol@example.test\r\nResent-Bcc: dave@example.test,\r\n"
           b" erin@example.test\r\nReceived: from earlier by mx.example.test\r\n"
           b"Resent-From: old@example.test\r\nResent-To: old-recipient@example.test\r\n"
           b"From: ann@example.test\r\nTo: bob@example.test\r\nBcc: frank@example.test\r\n"
           b"X-Original-Bcc: grace@example.test\r\nSubject: Minutes\r\n\r\n"
           b"Resent-Bcc: this body line stays\r\n")

    response = _submit(alice.client, {"raw": b64(raw)})

    assert response.status_code == 200, response.json()
    work_send_queue()
    received = smtp_server.wait_for_messages(1)[0]
    assert received.mail_from == "me@example.test"
    assert received.rcpt_tos == ["carol@example.test", "dave@example.test", "erin@example.test"]
    headers = received.data.split(b"\r\n\r\n", 1)[0].lower()
    assert not [name for name in _field_names(headers) if b"bcc" in name]
    assert b"dave@" not in headers
    assert b"grace@" not in headers
    assert received.message["Resent-To"] == "carol@example.test"
    assert received.data.endswith(b"\r\n\r\nResent-Bcc: this body line stays\r\n")
    [copy] = Message.objects.filter(folder__special_use="\\Sent")
    assert copy.bcc == [], "the Sent copy is the message that was sent"


def test_a_composed_message_drops_every_bcc_field_and_keeps_those_recipients(
        alice, account, smtp_server):
    response = _submit(alice.client, {
        "from": {"address": "me@example.test"}, "to": [{"address": "bob@example.test"}],
        "bcc": [{"address": "carol@example.test"}],
        "subject": "Plans", "text": "See you",
        "headers": {"Resent-Bcc": "dave@example.test", "X-Archive-Bcc": "erin@example.test"}})

    assert response.status_code == 200, response.json()
    work_send_queue()
    received = smtp_server.wait_for_messages(1)[0]
    assert sorted(received.rcpt_tos) == ["bob@example.test", "carol@example.test",
                                         "dave@example.test"]
    headers = received.data.split(b"\r\n\r\n", 1)[0].lower()
    assert not [name for name in _field_names(headers) if b"bcc" in name]
    assert b"carol@" not in headers
    assert b"erin@" not in headers
    assert received.message["Subject"] == "Plans"


def test_the_sent_copy_counts_in_its_folder_at_once_and_once(alice, account, smtp_server):
    """The copy in Sent is indexed by the send job; the folder's counters move with it, so
    a listing's ``total`` and the mailbox list agree with what is listed before the worker's
    next sync, and that sync neither counts it twice nor announces it again."""
    for subject in ("First", "Second"):
        _submit(alice.client, {"raw": b64(raw_message(subject=subject))})
        work_send_queue()

    listing = alice.client.get("/v1/account/box/messages?path=\\Sent").json()
    assert [m["subject"] for m in listing["messages"]] == ["Second", "First"]
    assert listing["total"] == 2
    assert listing["pages"] == 1
    mailboxes = alice.client.get("/v1/account/box/mailboxes").json()["mailboxes"]
    [sent] = [m for m in mailboxes if m["specialUse"] == "\\Sent"]
    assert (sent["messages"], sent["unseen"]) == (2, 0)
    sync(account)
    assert alice.client.get("/v1/account/box/messages?path=\\Sent").json()["total"] == 2
    assert len(events_of(account, "messageNew")) == 2


def test_sent_mail_path_puts_the_copy_in_that_folder(alice, account, smtp_server, smtp_user):
    from tests.mailboxes.helpers import server_subjects

    response = _submit(alice.client, {"raw": b64(raw_message(subject="Filed away")),
                                      "sentMailPath": "Archive"})
    assert response.status_code == 200, response.json()
    work_send_queue()
    smtp_server.wait_for_messages(1)
    entry = alice.client.get(f"/v1/outbox/{response.json()['queueId']}").json()
    assert entry["sentCopy"]["path"] == "Archive", entry
    assert server_subjects(smtp_user, "Archive") == ["Filed away"]
    assert server_subjects(smtp_user, "Sent") == []


def test_sent_mail_path_may_name_a_special_use(alice, account, smtp_server, smtp_user):
    from tests.mailboxes.helpers import server_subjects

    response = _submit(alice.client, {"raw": b64(raw_message(subject="To drafts")),
                                      "sentMailPath": "\\Drafts"})
    work_send_queue()
    smtp_server.wait_for_messages(1)
    assert alice.client.get(f"/v1/outbox/{response.json()['queueId']}").json()[
        "sentCopy"]["path"] == "Drafts"
    assert server_subjects(smtp_user, "Drafts") == ["To drafts"]


def test_an_unknown_sent_mail_path_is_404_and_queues_nothing(alice, account):
    response = _submit(alice.client, {"raw": b64(raw_message()), "sentMailPath": "Nowhere"})
    assert (response.status_code, response.json()["code"]) == (404, "FolderNotFound")
    assert not OutboxEntry.objects.exists()


def test_a_refused_send_shows_emailengines_progress_error_and_no_next_attempt(
        alice, account, smtp_server):
    smtp_server.refuse_always("550 5.7.1 Relaying denied", stage="rcpt")
    queue_id = _submit(alice.client, {"raw": b64(raw_message())}).json()["queueId"]
    work_send_queue()

    entry = alice.client.get(f"/v1/outbox/{queue_id}").json()

    assert entry["state"] == "failed"
    assert entry["progress"] == {"status": "error", "error": {
        "message": "550 5.7.1 Relaying denied", "code": "SmtpRefused", "statusCode": 550}}
    assert entry["nextAttempt"] is False
    assert entry["lastError"] == {"error": "550 5.7.1 Relaying denied", "code": "SmtpRefused",
                                  "responseCode": 550}
    listed = alice.client.get("/v1/outbox?state=failed").json()["messages"]
    assert [item["progress"] for item in listed] == [entry["progress"]]


def test_a_deferred_send_waiting_for_its_retry_shows_the_error_and_when(
        alice, account, smtp_server):
    smtp_server.refuse_always("451 4.3.0 Try again later", stage="rcpt")
    queue_id = _submit(alice.client, {"raw": b64(raw_message())}).json()["queueId"]
    work_send_queue()

    entry = alice.client.get(f"/v1/outbox/{queue_id}").json()

    assert entry["state"] == "queued"
    assert entry["progress"]["status"] == "queued"
    assert entry["progress"]["error"]["statusCode"] == 451
    next_attempt = datetime.fromisoformat(entry["nextAttempt"].replace("Z", "+00:00"))
    assert next_attempt > datetime.now(timezone.utc)
    assert entry["gateway"] is None
    assert entry["localAddress"] is None
    assert entry["proxy"] is None


def test_a_cancelled_entry_has_no_next_attempt(alice, account, smtp_server):
    queue_id = _submit(alice.client, {"raw": b64(raw_message()),
                                      "sendAt": "2099-01-01T10:00:00Z"}).json()["queueId"]
    alice.client.delete(f"/v1/outbox/{queue_id}")

    entry = alice.client.get(f"/v1/outbox/{queue_id}").json()

    assert entry["progress"] == {"status": "cancelled"}
    assert entry["nextAttempt"] is False
