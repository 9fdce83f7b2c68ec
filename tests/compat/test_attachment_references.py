"""EmailEngine's ``attachments[].reference`` and ``attachments[].encoding`` on submit and
upload, against Dovecot and the recording SMTP server: an attachment of a message the account
has, attached again by its id, its bytes read from the mail server when the request is
answered."""

from __future__ import annotations

import base64
from email import policy
from email.parser import BytesParser

import pytest

from accounts import services
from tests.mailboxes.helpers import server_subjects
from tests.mailboxes.sending_helpers import sending_account, sync, work_send_queue
from tests.servers import seed
from tests.servers.tcp_proxy import TcpProxy

pytestmark = pytest.mark.django_db(transaction=True)

ME = {"name": "From Me", "address": "me@example.test"}
# Binary, so that it travels base64 in the source message and must be decoded to match.
REPORT = seed.tiny_pdf()
SENT = {"from": ME, "to": [{"address": "eve@example.test"}], "subject": "The report",
        "text": "Attached."}
UNKNOWN = "AAAAAQAAAAEyAAAAAA"  # well-formed, names nothing of this account


def _report_message(subject: str = "Report") -> bytes:
    return seed.make_message(subject=subject,
                             attachments=[("report.pdf", REPORT, "application/pdf")])


def _attachment_id(client, subject: str = "Report", account: str = "box") -> str:
    """The id of the only attachment of the message with *subject*, as a client reads it."""
    messages = client.get(f"/v1/account/{account}/messages?path=INBOX").json()["messages"]
    [message] = [m for m in messages if m["subject"] == subject]
    [attachment] = message["attachments"]
    return attachment["id"]


@pytest.fixture
def account(alice, smtp_user, smtp_server):
    return sending_account(alice.tenant, smtp_user, smtp_server)


@pytest.fixture
def report(alice, account, smtp_user):
    """The id of report.pdf, attached to a message in the account's INBOX."""
    seed.seed_mailbox(smtp_user, messages=[_report_message()])
    sync(account)
    return _attachment_id(alice.client)


def _submit(client, attachments, **fields):
    return client.post("/v1/account/box/submit", {**SENT, "attachments": attachments, **fields},
                       format="json")


def _upload(client, attachments):
    return client.post("/v1/account/box/message", {
        "path": "Drafts", "from": ME, "subject": "Draft with report", "text": "Attached.",
        "attachments": attachments}, format="json")


def _attached(message) -> list[tuple[str | None, str, bytes]]:
    return [(part.get_filename(), part.get_content_type(), part.get_payload(decode=True))
            for part in message.iter_attachments()]


def _delivered(smtp_server):
    """The one message the SMTP server received once the send queue ran, parsed."""
    work_send_queue()
    [received] = smtp_server.wait_for_messages(1)
    return BytesParser(policy=policy.default).parsebytes(received.data)


def _queued(client) -> int:
    """Entries waiting in the outbox (the send queue is never run by the refusal tests)."""
    return client.get("/v1/outbox").json()["total"]


def _refused(response, status: int, field: str) -> list[str]:
    assert response.status_code == status, response.json()
    return response.json()["details"][field]


# --- sending --------------------------------------------------------------------------------


def test_a_referenced_attachment_is_sent_with_the_originals_bytes_name_and_type(
        alice, report, smtp_server):
    response = _submit(alice.client, [{"reference": report}])

    assert response.status_code == 200, response.json()
    assert _attached(_delivered(smtp_server)) == [("report.pdf", "application/pdf", REPORT)]


def test_a_given_filename_and_content_type_override_the_referenced_ones(alice, report, smtp_server):
    _submit(alice.client, [{"reference": report, "filename": "q3.bin",
                            "contentType": "application/octet-stream"}])

    assert _attached(_delivered(smtp_server)) == [("q3.bin", "application/octet-stream", REPORT)]


def test_the_message_is_composed_at_once_and_sent_after_its_source_is_deleted(
        alice, report, smtp_user, smtp_server):
    response = _submit(alice.client, [{"reference": report}])
    with smtp_user.imap_client() as other:
        other.select_folder("INBOX")
        other.delete_messages(other.search("ALL"))
        other.expunge()

    assert response.status_code == 200, response.json()
    assert _attached(_delivered(smtp_server)) == [("report.pdf", "application/pdf", REPORT)]


def test_a_dry_run_previews_the_referenced_attachment(alice, report):
    response = _submit(alice.client, [{"reference": report}], dryRun=True)

    preview = BytesParser(policy=policy.default).parsebytes(
        base64.b64decode(response.json()["preview"]))
    assert _attached(preview) == [("report.pdf", "application/pdf", REPORT)]


def test_content_wins_over_a_reference_given_with_it_as_in_emailengine(alice, report, smtp_server):
    _submit(alice.client, [{"reference": report, "filename": "mine.txt",
                            "content": base64.b64encode(b"mine").decode()}])

    assert _attached(_delivered(smtp_server)) == [("mine.txt", "text/plain", b"mine")]


@pytest.mark.parametrize("none", [False, None])
def test_a_reference_of_false_or_null_is_none(alice, account, none, smtp_server):
    response = _submit(alice.client, [{"filename": "a.txt", "reference": none,
                                       "content": base64.b64encode(b"abc").decode()}])

    assert response.status_code == 200, response.json()
    assert _attached(_delivered(smtp_server)) == [("a.txt", "text/plain", b"abc")]


def test_encoding_base64_is_accepted(alice, account, smtp_server):
    response = _submit(alice.client, [{"filename": "a.txt", "encoding": "base64",
                                       "content": base64.b64encode(b"abc").decode()}])

    assert response.status_code == 200, response.json()
    assert _attached(_delivered(smtp_server)) == [("a.txt", "text/plain", b"abc")]


# --- refusals: a clear 4xx, nothing queued --------------------------------------------------


def test_another_encoding_is_400_naming_the_field(alice, account):
    response = _submit(alice.client, [
        {"content": base64.b64encode(b"abc").decode()},
        {"content": "616263", "encoding": "hex"}])

    assert _refused(response, 400, "attachments.1.encoding") == ['"hex" is not a valid choice.']
    assert _queued(alice.client) == 0


@pytest.mark.parametrize("reference", ["not base64!", "x" * 257, 42, True, {"id": "x"}])
def test_a_malformed_reference_is_400_naming_the_field(alice, account, reference):
    response = _submit(alice.client, [{"reference": reference}])

    [problem] = _refused(response, 400, "attachments.0.reference")
    assert problem.startswith(("Must be an attachment id", "At most 256 characters"))
    assert _queued(alice.client) == 0


@pytest.mark.parametrize("none", [False, None])
def test_no_content_and_no_reference_is_400_content_required(alice, account, none):
    response = _submit(alice.client, [{"filename": "a.txt", "reference": none}])

    assert _refused(response, 400, "attachments.0.content") == [
        "This field is required (or give reference)"]
    assert _queued(alice.client) == 0


def _not_found(response, field: str = "attachments.0.reference") -> None:
    assert response.status_code == 404, response.json()
    body = response.json()
    assert (body["code"], body["emailapiCode"]) == ("ReferenceNotFound", "AttachmentNotFound")
    assert body["details"] == {field: ["Referenced attachment was not found"]}


def test_an_unknown_attachment_is_404_and_nothing_is_queued(alice, report):
    response = _submit(alice.client, [{"reference": report}, {"reference": UNKNOWN}])

    _not_found(response, "attachments.1.reference")
    assert _queued(alice.client) == 0


def test_a_message_id_is_not_an_attachment_id(alice, report):
    messages = alice.client.get("/v1/account/box/messages?path=INBOX").json()["messages"]

    _not_found(_submit(alice.client, [{"reference": messages[0]["id"]}]))


def test_an_attachment_whose_message_left_the_server_is_404(alice, report, smtp_user):
    with smtp_user.imap_client() as other:  # the index still lists it: no sync since
        other.select_folder("INBOX")
        other.delete_messages(other.search("ALL"))
        other.expunge()

    _not_found(_submit(alice.client, [{"reference": report}],
                       reference={"message": UNKNOWN, "ignoreMissing": True}))
    assert _queued(alice.client) == 0


def test_another_accounts_attachment_is_404(alice, account, smtp_server, dovecot):
    other_user = dovecot.add_user()
    seed.seed_mailbox(other_user, messages=[_report_message("Theirs")])
    sending_account(alice.tenant, other_user, smtp_server, "other")
    theirs = _attachment_id(alice.client, "Theirs", account="other")

    _not_found(_submit(alice.client, [{"reference": theirs}]))
    assert _queued(alice.client) == 0


def test_another_tenants_attachment_is_404(alice, account, outsider):
    seed.seed_mailbox(outsider.mail_user, messages=[_report_message("Outsider's report")])
    sync(outsider.account)
    theirs = _attachment_id(outsider.client, "Outsider's report")  # its account is "box" too

    _not_found(_submit(alice.client, [{"reference": theirs}]))
    assert _queued(alice.client) == 0


def test_referenced_attachments_count_toward_the_body_limit_as_their_content_would(
        alice, account, smtp_user, settings):
    small, large = b"s" * 1500, b"L" * 3000  # base64: 2000 and 4000 bytes
    seed.seed_mailbox(smtp_user, messages=[
        seed.make_message(subject="Small", attachments=[("s.bin", small, "application/x-s")]),
        seed.make_message(subject="Large", attachments=[("l.bin", large, "application/x-l")])])
    sync(account)
    small_id, large_id = _attachment_id(alice.client, "Small"), _attachment_id(alice.client, "Large")
    settings.EMAILAPI_MAX_BODY_SIZE = 4096  # the request itself is about 300 bytes
    # One IMAP connection: each refused read, left part-way, must have given it back.
    settings.IMAP_COMMAND_CONNECTIONS, settings.IMAP_COMMAND_TIMEOUT = 1, 3

    refused = _submit(alice.client, [{"reference": large_id}])
    assert refused.json()["code"] == "MessageTooLarge"
    assert _refused(refused, 400, "attachments.0.reference")[0].startswith(
        "The referenced attachments make the request larger than the 4096 bytes allowed")
    both = _submit(alice.client, [{"reference": small_id}, {"reference": small_id}])
    assert _refused(both, 400, "attachments.1.reference")
    assert _queued(alice.client) == 0
    assert _submit(alice.client, [{"reference": small_id}]).status_code == 200


def test_with_the_mail_server_down_a_reference_is_503_and_nothing_is_queued(
        alice, smtp_user, smtp_server, settings):
    settings.IMAP_COMMAND_TIMEOUT = 2
    seed.seed_mailbox(smtp_user, messages=[_report_message()])
    with TcpProxy(smtp_user.imap_port) as proxy:
        imap = {**smtp_user.imap_settings(), "port": proxy.port,
                "tls": {"rejectUnauthorized": False}}
        smtp = {**smtp_server.smtp_settings(smtp_user.username, smtp_user.password),
                "tls": {"rejectUnauthorized": False}}
        sync(services.register_account(alice.tenant, {"account": "box", "imap": imap,
                                                      "smtp": smtp}))
        report = _attachment_id(alice.client)
        proxy.cut()

        response = _submit(alice.client, [{"reference": report}])

    assert response.status_code == 503, response.json()
    assert response.json()["emailapiCode"] == "MailboxUnavailable"
    assert _queued(alice.client) == 0


# --- uploading ------------------------------------------------------------------------------


def _on_server(mail_user, path: str, uid: int):
    with mail_user.imap_client() as other:
        other.select_folder(path, readonly=True)
        raw = other.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"]
    return BytesParser(policy=policy.default).parsebytes(raw)


def test_an_upload_with_a_reference_appends_the_attachment(alice, report, smtp_user):
    response = _upload(alice.client, [{"reference": report, "filename": "copy.pdf"}])

    assert response.status_code == 200, response.json()
    appended = _on_server(smtp_user, "Drafts", response.json()["uid"])
    assert _attached(appended) == [("copy.pdf", "application/pdf", REPORT)]
    detail = alice.client.get(f"/v1/account/box/message/{response.json()['id']}").json()
    assert [a["filename"] for a in detail["attachments"]] == ["copy.pdf"]


def test_an_upload_with_an_unknown_reference_is_404_and_appends_nothing(
        alice, report, smtp_user, outsider):
    seed.seed_mailbox(outsider.mail_user, messages=[_report_message("Outsider's report")])
    sync(outsider.account)
    theirs = _attachment_id(outsider.client, "Outsider's report")

    for reference in (UNKNOWN, theirs):
        _not_found(_upload(alice.client, [{"reference": reference}]))
    assert server_subjects(smtp_user, "Drafts") == []


def test_an_upload_takes_encoding_base64_and_refuses_another(alice, account):
    content = base64.b64encode(b"abc").decode()

    assert _upload(alice.client, [{"content": content, "encoding": "base64"}]).status_code == 200
    refused = _upload(alice.client, [{"content": content, "encoding": "binary"}])
    assert _refused(refused, 400, "attachments.0.encoding") == [
        '"binary" is not a valid choice.']
