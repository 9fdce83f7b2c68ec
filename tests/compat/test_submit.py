"""Sending as an EmailEngine client does it (issue 16): ``POST /v1/account/{a}/submit`` with
EmailEngine's request bodies and answers, against Dovecot and the recording SMTP server."""

from __future__ import annotations

import base64
import email
import email.policy
import re
from urllib.parse import urlsplit

import pytest
from django.test import override_settings

from mailboxes import idempotency
from tests.mailboxes.sending_helpers import sending_account, sync, work_send_queue
from tests.servers import seed
from tests.servers.tcp_proxy import TcpProxy

pytestmark = pytest.mark.django_db(transaction=True)

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

# The body of EmailEngine's documentation example for POST /v1/account/{account}/submit.
ME = {"name": "From Me", "address": "me@example.test"}
EXAMPLE = {
    "from": ME,
    "to": [{"name": "Nyan Cat", "address": "nyan.cat@example.test"}],
    "subject": "What a wonderful message!",
    "text": "Hello from myself!",
    "html": "<p>Hello from myself!</p>",
}


@pytest.fixture
def account(alice, smtp_user, smtp_server):
    return sending_account(alice.tenant, smtp_user, smtp_server)


@pytest.fixture
def original(alice, account, smtp_user):
    """A message in INBOX to reply to or forward, as its listing entry."""
    seed.seed_mailbox(smtp_user, messages=[seed.make_message(
        subject="Question", message_id="<original@example.test>",
        references="<root@example.test>", in_reply_to="<root@example.test>")])
    sync(account)
    [message] = alice.client.get("/v1/account/box/messages?path=INBOX").json()["messages"]
    return message


def _submit(client, body, **headers):
    return client.post("/v1/account/box/submit", body, format="json", **headers)


def test_submit_answers_200_queued_for_delivery(alice, account):
    response = _submit(alice.client, EXAMPLE)

    assert response.status_code == 200, response.json()
    assert response.json()["response"] == "Queued for delivery"


def test_submit_answers_message_id_queue_id_and_send_at_as_emailengine(alice, account):
    body = _submit(alice.client, EXAMPLE).json()

    assert re.match(r"^<[^<>@]+@[^<>]+>$", body["messageId"])
    assert isinstance(body["queueId"], str)
    assert ISO_MS.match(body["sendAt"]), body["sendAt"]
    assert "reference" not in body


def test_the_queued_message_is_sent(alice, account, smtp_server):
    body = _submit(alice.client, EXAMPLE).json()

    work_send_queue()
    received = smtp_server.wait_for_messages(1)[0]
    assert received.message["Message-ID"] == body["messageId"]
    assert received.rcpt_tos == ["nyan.cat@example.test"]


def test_prefer_respond_async_keeps_our_202(alice, account):
    response = _submit(alice.client, EXAMPLE, HTTP_PREFER="respond-async")

    assert response.status_code == 202
    assert response.json()["response"] == "Queued for delivery"


def test_a_found_reference_answers_success_true(alice, account, original):
    body = _submit(alice.client, {**EXAMPLE, "reference": {
        "message": original["id"], "action": "reply"}}).json()

    assert body["reference"] == {"message": original["id"], "success": True}


def test_reply_all_in_emailengine_spelling_is_accepted(alice, account, original):
    response = _submit(alice.client, {"text": "Thanks", "reference": {
        "message": original["id"], "action": "reply-all"}})

    assert response.status_code == 200, response.json()
    assert response.json()["reference"]["success"] is True


def test_a_missing_reference_with_ignore_missing_sends_and_answers_success_false(
        alice, account, smtp_server):
    body = _submit(alice.client, {**EXAMPLE, "reference": {
        "message": "AAAAAQAACnA", "action": "reply", "ignoreMissing": True}}).json()

    assert body["reference"] == {"message": "AAAAAQAACnA", "success": False,
                                 "error": "Referenced message was not found"}
    work_send_queue()
    assert smtp_server.wait_for_messages(1)[0].message["Subject"] == EXAMPLE["subject"]


def test_a_missing_reference_without_ignore_missing_is_404_and_queues_nothing(alice, account):
    response = _submit(alice.client, {**EXAMPLE, "reference": {
        "message": "AAAAAQAACnA", "action": "reply"}})

    assert response.status_code == 404
    assert response.json()["code"] == "ReferenceNotFound"
    assert alice.client.get("/v1/outbox").json()["total"] == 0


def test_a_forward_sets_references_and_no_in_reply_to(alice, account, original, smtp_server):
    _submit(alice.client, {"from": ME, "to": [{"address": "eve@example.test"}], "text": "FYI",
                           "reference": {"message": original["id"], "action": "forward"}})

    work_send_queue()
    received = smtp_server.wait_for_messages(1)[0].message
    assert received["References"] == "<root@example.test> <original@example.test>"
    assert received["In-Reply-To"] is None
    assert received["Subject"] == "Fwd: Question"


def test_a_reply_sets_in_reply_to_and_references(alice, account, original, smtp_server):
    _submit(alice.client, {"from": ME, "text": "Yes", "reference": {"message": original["id"],
                                                        "action": "reply"}})

    work_send_queue()
    received = smtp_server.wait_for_messages(1)[0].message
    assert received["In-Reply-To"] == "<original@example.test>"
    assert received["References"] == "<root@example.test> <original@example.test>"


def test_bulk_delete_answers_moved_destination(alice, account, smtp_user):
    seed.seed_mailbox(smtp_user, messages=[seed.make_message(subject="Old news")])
    sync(account)

    response = alice.client.put("/v1/account/box/messages/delete?path=INBOX",
                                {"search": {"subject": "Old news"}}, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["deleted"] is False
    assert body["moved"]["destination"] == "Trash"
    assert isinstance(body["moved"]["idMap"], list)


@pytest.fixture
def draft(alice, account):
    """A draft uploaded as EmailEngine's documentation does it, and its upload answer."""
    response = alice.client.post("/v1/account/box/message", {
        "path": "Drafts", "flags": ["\\Draft"], "from": ME,
        "to": [{"name": "Draft Recipient", "address": "bob@example.test"}],
        "bcc": [{"address": "hidden@example.test"}],
        "subject": "Draft submit", "text": "Draft body", "html": "<p>Draft body</p>",
        "messageId": "<draft-submit@example.test>"}, format="json")
    assert response.status_code == 200, response.json()
    return response.json()


def _submit_draft(client, message_id, body=None, **headers):
    return client.post(f"/v1/account/box/message/{message_id}/submit", body or {},
                       format="json", **headers)


def test_submitting_a_draft_answers_queued_with_the_drafts_message_id(alice, draft):
    response = _submit_draft(alice.client, draft["id"])

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["response"] == "Queued for delivery"
    assert body["messageId"] == "<draft-submit@example.test>"
    assert isinstance(body["queueId"], str)
    assert ISO_MS.match(body["sendAt"])


def test_a_submitted_draft_is_sent_copied_to_sent_and_removed(alice, draft, smtp_server):
    _submit_draft(alice.client, draft["id"])

    work_send_queue()
    received = smtp_server.wait_for_messages(1)[0]
    assert received.message["Subject"] == "Draft submit"
    assert received.rcpt_tos == ["bob@example.test", "hidden@example.test"]
    assert received.message["Bcc"] is None
    drafts = alice.client.get("/v1/account/box/messages?path=Drafts").json()["messages"]
    assert drafts == []
    sent = alice.client.get("/v1/account/box/messages?path=\\Sent").json()["messages"]
    assert [m["messageId"] for m in sent] == ["<draft-submit@example.test>"]


def test_the_draft_submit_takes_emailengines_delivery_options(alice, draft):
    response = _submit_draft(alice.client, draft["id"], {
        "envelope": {"from": "me@example.test", "to": ["eve@example.test"]},
        "sendAt": "2099-01-01T00:00:00Z", "copy": False, "deliveryAttempts": 3})

    assert response.json()["sendAt"] == "2099-01-01T00:00:00.000Z"
    entry = alice.client.get(f"/v1/outbox/{response.json()['queueId']}").json()
    assert entry["envelope"] == {"from": "me@example.test", "to": ["eve@example.test"]}


def test_submitting_a_message_that_is_not_a_draft_is_400_message_not_draft(
        alice, account, original):
    response = _submit_draft(alice.client, original["id"])

    assert response.status_code == 400
    assert response.json()["code"] == "MessageNotDraft"


def test_submitting_an_unknown_message_is_404_message_not_found(alice, account):
    response = _submit_draft(alice.client, "AAAAYwAAAAE")

    assert response.status_code == 404
    assert response.json()["code"] == "MessageNotFound"


def test_a_reference_message_id_that_matches_is_sent(alice, account, original):
    response = _submit(alice.client, {**EXAMPLE, "reference": {
        "message": original["id"], "messageId": "<original@example.test>"}})

    assert response.status_code == 200, response.json()
    assert response.json()["reference"]["success"] is True


def test_a_reference_message_id_that_differs_is_404_even_with_ignore_missing(
        alice, account, original):
    response = _submit(alice.client, {**EXAMPLE, "reference": {
        "message": original["id"], "messageId": "<other@example.test>",
        "ignoreMissing": True}})

    assert response.status_code == 404
    assert alice.client.get("/v1/outbox").json()["total"] == 0


@pytest.fixture
def with_attachment(alice, account, smtp_user):
    seed.seed_mailbox(smtp_user, messages=[seed.make_message(
        subject="Report", message_id="<report@example.test>",
        attachments=[("report.pdf", b"%PDF-1.4 report", "application/pdf")])])
    sync(account)
    [message] = alice.client.get("/v1/account/box/messages?path=INBOX").json()["messages"]
    return message


def _forward(client, message, **reference):
    return _submit(client, {"from": ME, "to": [{"address": "eve@example.test"}],
                            "text": "FYI", "reference": {"message": message["id"],
                                                         "action": "forward", **reference}})


def _attached(received):
    """The top-level attachments (not those inside an attached message)."""
    top = received.get_payload() if received.is_multipart() else []
    return [(part.get_filename(), part.get_content_type(), part.get_payload(decode=True))
            for part in top if part.get_content_disposition() == "attachment"]


def test_forward_attachments_true_attaches_the_originals_attachments(
        alice, with_attachment, smtp_server):
    _forward(alice.client, with_attachment, forwardAttachments=True)

    work_send_queue()
    received = smtp_server.wait_for_messages(1)[0].message
    assert _attached(received) == [("report.pdf", "application/pdf", b"%PDF-1.4 report")]


def test_forward_attachments_false_attaches_nothing(alice, with_attachment, smtp_server):
    _forward(alice.client, with_attachment, forwardAttachments=False)

    work_send_queue()
    assert _attached(smtp_server.wait_for_messages(1)[0].message) == []


def test_a_forward_without_forward_attachments_attaches_the_original_as_ours(
        alice, with_attachment, smtp_server):
    _forward(alice.client, with_attachment)

    work_send_queue()
    received = smtp_server.wait_for_messages(1)[0].message
    assert [t for _, t, _ in _attached(received)] == ["message/rfc822"]


def _nested(levels: int, text: bytes) -> bytes:
    """A message of ``levels`` multipart/mixed inside each other around one text part."""
    opening = b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (n, n)
                       for n in range(levels))
    closing = b"".join(b"\r\n--b%d--\r\n" % n for n in reversed(range(levels)))
    return (b"Subject: Deep\r\nMessage-ID: <deep@example.test>\r\nMIME-Version: 1.0\r\n"
            + opening + b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + text + closing)


@pytest.mark.parametrize("text", [b"hello", b"h\xc3\xa9llo"], ids=["ascii", "8bit"])
def test_a_forward_of_a_message_nested_2000_deep_attaches_it_as_it_came(
        alice, account, smtp_user, smtp_server, text):
    # The email package parses and writes one level per recursion: a sender's 2,000 levels
    # were a RecursionError and a 500 when the recipient forwarded the message.
    source = _nested(2000, text)
    seed.seed_mailbox(smtp_user, messages=[source])
    sync(account)
    [message] = alice.client.get("/v1/account/box/messages?path=INBOX").json()["messages"]

    response = _forward(alice.client, message)

    assert response.status_code == 200, response.json()
    work_send_queue()
    data = smtp_server.wait_for_messages(1)[0].data
    assert data.isascii()  # still 7-bit clean
    if text.isascii():  # as message/rfc822, byte for byte (parsing it here would recurse)
        assert b"Content-Type: message/rfc822" in data
        assert source in data
    else:  # as bytes, base64: message/rfc822 may not be base64 encoded
        assert _attached(email.message_from_bytes(data, policy=email.policy.default)) == [
            ("Deep.eml", "application/octet-stream", source)]


def test_forward_attachments_on_a_reply_is_400(alice, account, original):
    response = _submit(alice.client, {**EXAMPLE, "reference": {
        "message": original["id"], "action": "reply", "forwardAttachments": True}})

    assert response.status_code == 400


def test_a_repeated_idempotency_key_gets_the_first_answer_and_sends_once(
        alice, account, redis_db):
    first = _submit(alice.client, EXAMPLE, HTTP_IDEMPOTENCY_KEY="submit-12345")
    again = _submit(alice.client, EXAMPLE, HTTP_IDEMPOTENCY_KEY="submit-12345")

    assert first.json()["idempotency"] == {"key": "submit-12345", "status": "MISS"}
    assert again.json()["idempotency"] == {"key": "submit-12345", "status": "HIT"}
    assert again.json()["queueId"] == first.json()["queueId"]
    assert alice.client.get("/v1/outbox").json()["total"] == 1


def test_another_idempotency_key_sends_again(alice, account, redis_db):
    _submit(alice.client, EXAMPLE, HTTP_IDEMPOTENCY_KEY="one")
    _submit(alice.client, EXAMPLE, HTTP_IDEMPOTENCY_KEY="two")

    assert alice.client.get("/v1/outbox").json()["total"] == 2


def test_a_key_whose_first_request_is_in_progress_is_409(alice, account, redis_db):
    assert idempotency.begin(alice.tenant.pk, "box", "busy") is None

    response = _submit(alice.client, EXAMPLE, HTTP_IDEMPOTENCY_KEY="busy")

    assert response.status_code == 409
    assert response.json()["code"] == "IdempotencyKeyInUse"


def test_a_refused_request_frees_its_idempotency_key(alice, account, redis_db):
    refused = _submit(alice.client, {**EXAMPLE, "reference": {"message": "AAAAAQAACnA"}},
                      HTTP_IDEMPOTENCY_KEY="retry-me")
    retried = _submit(alice.client, EXAMPLE, HTTP_IDEMPOTENCY_KEY="retry-me")

    assert refused.status_code == 404
    assert retried.json()["idempotency"]["status"] == "MISS"


def test_the_draft_submit_takes_an_idempotency_key(alice, draft, redis_db):
    first = _submit_draft(alice.client, draft["id"], HTTP_IDEMPOTENCY_KEY="draft-1")
    again = _submit_draft(alice.client, draft["id"], HTTP_IDEMPOTENCY_KEY="draft-1")

    assert again.json()["idempotency"]["status"] == "HIT"
    assert again.json()["queueId"] == first.json()["queueId"]


def test_a_dry_run_answers_the_preview_and_queues_nothing(alice, account):
    response = _submit(alice.client, {**EXAMPLE, "dryRun": True})

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["response"] == "Dry run"
    preview = base64.b64decode(body["preview"])
    assert f"Message-ID: {body['messageId']}".encode() in preview
    assert "queueId" not in body
    assert alice.client.get("/v1/outbox").json()["total"] == 0


def test_copy_null_as_in_emailengines_example_follows_the_account(alice, account):
    response = _submit(alice.client, {**EXAMPLE, "copy": None})

    assert response.status_code == 200, response.json()


def test_with_redis_unreachable_a_submit_with_a_key_is_503_and_sends_nothing(
        alice, account, settings):
    with TcpProxy(urlsplit(settings.REDIS_URL).port or 6379) as proxy:
        proxy.cut()
        real, settings.REDIS_URL = settings.REDIS_URL, f"redis://127.0.0.1:{proxy.port}/0"
        response = _submit(alice.client, EXAMPLE, HTTP_IDEMPOTENCY_KEY="no-redis")
        settings.REDIS_URL = real

    assert response.status_code == 503
    assert alice.client.get("/v1/outbox").json()["total"] == 0


def test_delivery_attempts_0_is_one_try_as_emailengine(alice, account):
    response = _submit(alice.client, {**EXAMPLE, "deliveryAttempts": 0,
                                      "sendAt": "2099-01-01T00:00:00Z"})

    entry = alice.client.get(f"/v1/outbox/{response.json()['queueId']}").json()
    assert entry["deliveryAttempts"] == 1
    assert entry["attempts"] == 1  # EmailEngine's name for it


def test_a_single_address_and_a_single_envelope_recipient_are_taken_as_lists(
        alice, account, smtp_server):
    response = _submit(alice.client, {**EXAMPLE, "to": {"address": "nyan.cat@example.test"},
                                      "envelope": {"from": "me@example.test",
                                                   "to": "eve@example.test"}})

    assert response.status_code == 200, response.json()
    work_send_queue()
    assert smtp_server.wait_for_messages(1)[0].rcpt_tos == ["eve@example.test"]


def test_emailengines_query_parameters_are_accepted(alice, account):
    response = alice.client.post("/v1/account/box/submit?documentStore=false"
                                 "&useStructuredFormat=false", EXAMPLE, format="json")

    assert response.status_code == 200, response.json()


def _html_of(preview_b64: str) -> str:
    message = email.message_from_bytes(base64.b64decode(preview_b64), policy=email.policy.default)
    return message.get_body(preferencelist=("html",)).get_content()


def test_preview_text_comes_first_in_the_html_body_hidden(alice, account):
    response = _submit(alice.client, {
        "to": [{"address": "bob@example.test"}], "subject": "Hi", "text": "Plain",
        "html": "<html><body class=\"x\"><p>Hello</p></body></html>",
        "previewText": "Sale <ends> today", "dryRun": True})

    assert response.status_code == 200, response.json()
    html = _html_of(response.json()["preview"])
    assert re.search(r'<body class="x"><div style="display:none;[^"]*">Sale &lt;ends&gt; today'
                     r'</div><p>Hello</p>', html), html


def test_preview_text_needs_html_and_not_raw(alice, account):
    for body, field in (({"to": [{"address": "b@example.test"}], "text": "x",
                          "previewText": "p"}, "previewText"),
                        ({"raw": base64.b64encode(b"Subject: x\r\n\r\nx\r\n").decode(),
                          "previewText": "p"}, "previewText")):
        response = _submit(alice.client, {**body, "dryRun": True})
        assert response.status_code == 400, response.json()
        assert field in response.json()["details"], response.json()


def test_a_proxy_that_is_not_a_proxy_url_is_400_naming_it_and_queues_nothing(alice, account):
    # a proxy URL is taken (tests/mailboxes/test_smtp_proxy.py sends through one)
    response = _submit(alice.client, {**EXAMPLE, "proxy": "https://u:Pr0xy-pw@proxy.example"})

    assert response.status_code == 400, response.json()
    assert "proxy" in response.json()["details"]
    assert "Pr0xy-pw" not in response.content.decode()
    assert alice.client.get("/v1/outbox").json()["total"] == 0


@override_settings(EMAILAPI_SMTP_LOCAL_ADDRESSES=[])
def test_local_address_is_taken_as_emailengine_takes_it(alice, account, smtp_server):
    # A hint (see tests/mailboxes/test_local_address.py): unlisted, the OS chooses.
    response = _submit(alice.client, {**EXAMPLE, "localAddress": "127.0.0.9"})

    assert response.status_code == 200, response.json()
    work_send_queue()
    assert smtp_server.wait_for_messages(1)[0].peer == "127.0.0.1"


def test_a_dry_run_with_local_address_answers_the_same_preview_and_queues_nothing(
        alice, account):
    body = {"to": EXAMPLE["to"], "subject": "Same", "text": "Hello", "dryRun": True,
            "messageId": "<same@example.test>"}  # one part: no random boundary
    plain = _submit(alice.client, body).json()
    hinted = _submit(alice.client, {**body, "localAddress": "127.0.0.2"}).json()

    assert hinted["response"] == "Dry run"
    assert base64.b64decode(hinted["preview"]).split(b"\r\n\r\n", 1)[1] == \
        base64.b64decode(plain["preview"]).split(b"\r\n\r\n", 1)[1]
    assert alice.client.get("/v1/outbox").json()["total"] == 0
