"""EmailEngine's submit and upload bodies that its schema allows and ours once refused (the
schema diff of /tmp/ee-schema-diff), sent as its clients send them, against Dovecot and the
recording SMTP server."""

from __future__ import annotations

import pytest

from tests.compat.test_submit import EXAMPLE, ME, _submit
from tests.mailboxes.sending_helpers import sending_account, sync, work_send_queue
from tests.servers import seed

pytestmark = pytest.mark.django_db(transaction=True)

THREAD_ID = "1694936993596975454"  # EmailEngine's example: a Gmail API thread id


@pytest.fixture
def account(alice, smtp_user, smtp_server):
    return sending_account(alice.tenant, smtp_user, smtp_server)


@pytest.fixture
def original(alice, account, smtp_user):
    """A message in INBOX to reply to or forward, as its listing entry."""
    seed.seed_mailbox(smtp_user, messages=[seed.make_message(
        subject="Question", message_id="<original@example.test>")])
    sync(account)
    [message] = alice.client.get("/v1/account/box/messages?path=INBOX").json()["messages"]
    return message


def _upload(client, body):
    return client.post("/v1/account/box/message", {"path": "Drafts", **body}, format="json")


def _uploaded(client, answer) -> dict:
    return client.get(f"/v1/account/box/message/{answer['id']}").json()


# --- reference.threadId: accepted and ignored ---------------------------------------------


def test_submit_takes_a_reference_thread_id_and_replies_as_without_it(alice, account, original,
                                                                      smtp_server):
    response = _submit(alice.client, {"from": ME, "text": "Yes", "reference": {
        "message": original["id"], "action": "reply", "threadId": THREAD_ID}})

    assert response.status_code == 200, response.json()
    assert response.json()["reference"] == {"message": original["id"], "success": True}
    work_send_queue()
    assert smtp_server.wait_for_messages(1)[0].message["In-Reply-To"] == "<original@example.test>"


def test_upload_takes_a_reference_thread_id_and_threads_the_draft(alice, account, original):
    response = _upload(alice.client, {"text": "Draft reply", "reference": {
        "message": original["id"], "action": "reply", "threadId": THREAD_ID}})

    assert response.status_code == 200, response.json()
    assert _uploaded(alice.client, response.json())["inReplyTo"] == "<original@example.test>"


def test_a_thread_id_that_is_not_a_string_is_400_and_queues_nothing(alice, account, original):
    response = _submit(alice.client, {**EXAMPLE, "reference": {
        "message": original["id"], "action": "reply", "threadId": {"id": 1}}})

    assert response.status_code == 400
    assert "reference.threadId" in response.json()["details"], response.json()
    assert alice.client.get("/v1/outbox").json()["total"] == 0


# --- case folding: what EmailEngine's Joi lower-cases before validating --------------------

PIXEL = "R0lGODlhAQABAAAAACw="  # any bytes will do: base64 of a GIF header


@pytest.mark.parametrize("action", ["Reply", "REPLY-ALL", "Forward"])
def test_submit_takes_the_reference_action_in_any_case(alice, account, original, action):
    response = _submit(alice.client, {**EXAMPLE, "reference": {
        "message": original["id"], "action": action}})

    assert response.status_code == 200, response.json()
    assert response.json()["reference"]["success"] is True


def test_a_capitalised_reply_all_is_sent_as_a_reply_all(alice, account, original, smtp_server):
    _submit(alice.client, {"from": ME, "text": "All of you", "reference": {
        "message": original["id"], "action": "Reply-All"}})

    work_send_queue()
    received = smtp_server.wait_for_messages(1)[0].message
    assert received["In-Reply-To"] == "<original@example.test>"
    assert received["Subject"] == "Re: Question"


def test_a_capitalised_forward_is_sent_as_a_forward(alice, account, original, smtp_server):
    _submit(alice.client, {"from": ME, "to": [{"address": "eve@example.test"}], "text": "FYI",
                           "reference": {"message": original["id"], "action": "FORWARD"}})

    work_send_queue()
    received = smtp_server.wait_for_messages(1)[0].message
    assert received["Subject"] == "Fwd: Question"
    assert received["In-Reply-To"] is None


def test_upload_takes_the_reference_action_in_any_case(alice, account, original):
    response = _upload(alice.client, {"text": "Draft", "reference": {
        "message": original["id"], "action": "REPLY"}})

    assert response.status_code == 200, response.json()
    assert _uploaded(alice.client, response.json())["inReplyTo"] == "<original@example.test>"


def test_an_unknown_action_in_any_case_is_still_400(alice, account, original):
    response = _submit(alice.client, {**EXAMPLE, "reference": {
        "message": original["id"], "action": "Archive"}})

    assert response.status_code == 400
    assert "reference.action" in response.json()["details"], response.json()


def test_attachment_disposition_and_type_in_capitals_are_taken_lower_cased(alice, account,
                                                                           smtp_server):
    response = _submit(alice.client, {**EXAMPLE, "attachments": [{
        "filename": "pixel.gif", "content": PIXEL, "contentType": "IMAGE/GIF",
        "contentDisposition": "INLINE", "cid": "pixel@example.test"}]})

    assert response.status_code == 200, response.json()
    work_send_queue()
    received = smtp_server.wait_for_messages(1)[0].message
    [part] = [part for part in received.walk() if part.get_filename() == "pixel.gif"]
    assert part.get_content_type() == "image/gif"
    assert part.get_content_disposition() == "inline"


def test_upload_takes_an_attachment_disposition_in_capitals(alice, account):
    response = _upload(alice.client, {"text": "Draft", "attachments": [{
        "filename": "a.txt", "content": "aGVsbG8=", "contentType": "Text/Plain",
        "contentDisposition": "Attachment"}]})

    assert response.status_code == 200, response.json()
    [attachment] = _uploaded(alice.client, response.json())["attachments"]
    assert attachment["contentType"] == "text/plain"


# --- a draft submit with a JSON null body --------------------------------------------------


@pytest.fixture
def draft(alice, account):
    response = _upload(alice.client, {
        "flags": ["\\Draft"], "from": ME, "to": [{"address": "bob@example.test"}],
        "subject": "Null body", "text": "Draft body", "messageId": "<null-body@example.test>"})
    assert response.status_code == 200, response.json()
    return response.json()


def _submit_draft_raw(client, message_id, raw: str):
    return client.post(f"/v1/account/box/message/{message_id}/submit", raw,
                       content_type="application/json")


def test_a_draft_submit_with_a_null_body_is_sent_as_with_an_empty_one(alice, draft, smtp_server):
    response = _submit_draft_raw(alice.client, draft["id"], "null")

    assert response.status_code == 200, response.json()
    assert response.json()["messageId"] == "<null-body@example.test>"
    work_send_queue()
    received = smtp_server.wait_for_messages(1)[0]
    assert received.message["Subject"] == "Null body"
    assert received.rcpt_tos == ["bob@example.test"]


@pytest.mark.parametrize("raw", ["[]", "\"send\"", "false"])
def test_a_draft_submit_body_of_another_type_is_still_400(alice, draft, raw):
    response = _submit_draft_raw(alice.client, draft["id"], raw)

    assert response.status_code == 400
    assert alice.client.get("/v1/outbox").json()["total"] == 0
