"""Uploading (``mailboxes.uploading``: compose, APPEND, index) against real Dovecot.

The appended message must be on the server with its flags, in the index at once (its id
resolves, the listing shows it), announced by one ``messageNew``, and not again by the
worker's next pass.
"""

from __future__ import annotations

import base64
from email import policy
from email.parser import BytesParser

import pytest

from emailapi.api.errors import status_of
from emailapi.lib.errors import DomainError
from mailboxes import folder_writes, listing, uploading
from mailboxes.command_pool import pool
from mailboxes.imap import append as imap_append
from mailboxes.imap import fetch
from mailboxes.models import Folder
from mailboxes.sync import index
from mailboxes.sync.account import sync_account
from tests.mailboxes.helpers import events_of
from tests.servers import seed

pytestmark = pytest.mark.django_db


@pytest.fixture
def inbox_messages():
    return [seed.make_message(
        subject="Lunch?", message_id="<orig-1@example.com>", from_="Ann <ann@example.com>",
        to="Box <box@example.test>", cc="Cy <cy@example.com>", body="Shall we?",
        attachments=[("menu.pdf", seed.tiny_pdf(), "application/pdf")])]


@pytest.fixture
def account_fields():
    return {"email": "box@example.test"}


def on_server(mail_user, path: str, uid: int) -> tuple[set[str], object]:
    with mail_user.imap_client() as other:
        other.select_folder(path, readonly=True)
        found = other.fetch([uid], ["FLAGS", "BODY.PEEK[]"])[uid]
    flags = {f.decode() for f in found[b"FLAGS"]} - {"\\Recent"}
    return flags, BytesParser(policy=policy.default).parsebytes(found[b"BODY[]"])


def test_raw_upload_is_on_the_server_in_the_index_and_announced_once(synced, mail_user):
    account, session = synced.account, synced.session
    raw = seed.make_message(subject="Draft one", message_id="<draft-1@example.test>")
    answer = uploading.upload(account, "Drafts", {"raw": raw}, ["\\Draft", "$Later"], None)
    assert answer["path"] == "Drafts"
    assert answer["uid"]
    assert answer["id"]
    assert answer["messageId"] == "<draft-1@example.test>"
    flags, message = on_server(mail_user, "Drafts", answer["uid"])
    assert flags == {"\\Draft", "$Later"}
    assert message["Subject"] == "Draft one"
    folder, row = listing.message_by_id(account, answer["id"])
    assert (folder.path, row.subject, set(row.flags)) == ("Drafts", "Draft one",
                                                          {"\\Draft", "$Later"})
    assert listing.page_of(folder, 0, 10, None)["total"] == 1
    assert (folder.messages, folder.unseen) == (1, 1), "an unseen upload counts as unseen"
    assert [e.data["id"] for e in events_of(account, "messageNew")] == [answer["id"]]
    sync_account(session, account)
    assert len(events_of(account, "messageNew")) == 1
    folder.refresh_from_db()
    assert (folder.messages, folder.unseen) == (1, 1)


def test_upload_into_a_folder_created_a_moment_ago_is_listed_at_once(synced):
    account, session = synced.account, synced.session
    folder_writes.create_folder(account, "Fresh")  # indexed, never synced: no UIDVALIDITY yet
    answer = uploading.upload(account, "Fresh", {"to": [{"address": "x@example.com"}],
                                                 "subject": "First", "text": "x"}, [], None)
    folder, row = listing.message_by_id(account, answer["id"])
    assert (folder.path, row.subject) == ("Fresh", "First")
    sync_account(session, account)  # the worker's first sync of Fresh: history, silently
    assert [e.data["subject"] for e in events_of(account, "messageNew")] == ["First"]
    assert listing.message_by_id(account, answer["id"])[1].subject == "First"


def test_structured_reply_draft_threads_and_keeps_bcc(synced, mail_user, alice):
    account = synced.account
    original = alice.client.get("/v1/account/box/messages?path=INBOX").json()["messages"][0]
    answer = uploading.upload(account, "Drafts", {
        "reference": {"message": original["id"], "action": "reply", "inline": True},
        "text": "Sure.", "bcc": [{"address": "hidden@example.com"}]}, ["\\Draft"], None)
    _, message = on_server(mail_user, "Drafts", answer["uid"])
    assert message["In-Reply-To"] == "<orig-1@example.com>"
    assert message["Subject"] == "Re: Lunch?"
    assert [a.addr_spec for a in message["To"].addresses] == ["ann@example.com"]
    assert message["Bcc"].addresses[0].addr_spec == "hidden@example.com"
    assert "> Shall we?" in message.get_body(("plain",)).get_content()
    row = listing.message_by_id(account, answer["id"])[1]
    assert row.thread_id == listing.message_by_id(account, original["id"])[1].thread_id


def test_unknown_folder_or_bad_flag_is_refused_and_nothing_is_stored(synced, mail_user):
    account = synced.account
    raw = {"raw": seed.make_message(subject="Nowhere")}
    with pytest.raises(DomainError) as caught:
        uploading.upload(account, "Nope", raw, [], None)
    assert status_of(caught.value) == 404
    assert "'Nope'" in caught.value.message
    with pytest.raises(DomainError) as caught:
        uploading.upload(account, "Drafts", raw, ["bad flag"], None)
    assert status_of(caught.value) == 400
    with pytest.raises(DomainError) as caught:
        uploading.upload(account, "Drafts", {"to": [{"address": "x@example.com"}],
                                             "headers": {"From": "evil@example.com"}}, [], None)
    assert status_of(caught.value) == 400
    with mail_user.imap_client() as other:
        other.select_folder("Drafts", readonly=True)
        assert other.search("ALL") == []
    assert not events_of(account, "messageNew")


def test_a_folder_gone_on_the_server_is_a_404_naming_it(synced, mail_user):
    account = synced.account
    folder_writes.create_folder(account, "Gone")
    with mail_user.imap_client() as other:
        other.delete_folder("Gone")  # another client, before the worker noticed
    with pytest.raises(DomainError) as caught:
        uploading.upload(account, "Gone", {"raw": seed.make_message()}, [], None)
    assert status_of(caught.value) == 404
    assert "'Gone'" in caught.value.message


def test_indexing_an_append_twice_raises_one_event(synced):
    """The worker may index the UID between our APPEND and our index write: either order
    gives one row and one messageNew."""
    account, session = synced.account, synced.session
    with pool.session(account) as pooled:
        appended = imap_append.append_message(pooled.client, "Drafts", seed.make_message())
        pooled.open("Drafts")
        (meta,) = fetch.fetch_meta(pooled.client, str(appended.uid))
    folder = Folder.objects.get(email_account=account, path="Drafts")
    assert index.record_append(folder, meta) is True
    assert index.record_append(folder, meta) is False
    assert len(events_of(account, "messageNew")) == 1
    assert appended.uidvalidity == session.status("Drafts").uidvalidity


# --- the reference, as EmailEngine's upload takes it (the same as submit's) -----------------

UNKNOWN = "AAAAAQAACnA"  # a well-formed message id this account does not have


def _upload(client, body: dict):
    return client.post("/v1/account/box/message", {"path": "Drafts", **body}, format="json")


def _original_id(client) -> str:
    return client.get("/v1/account/box/messages?path=INBOX").json()["messages"][0]["id"]


def _drafts_on_server(mail_user) -> list[int]:
    with mail_user.imap_client() as other:
        other.select_folder("Drafts", readonly=True)
        return other.search("ALL")


def test_reply_all_in_emailengine_spelling_and_any_case_is_a_reply_all_draft(synced, mail_user):
    original = _original_id(synced.client)
    response = _upload(synced.client, {"text": "All of you", "reference": {
        "message": original, "action": "Reply-All", "threadId": "19a1b2c3d4e5f6a7",
        "messageId": "<orig-1@example.com>"}})
    assert response.status_code == 200, response.json()
    answer = response.json()
    assert answer["reference"] == {"message": original, "success": True}
    _, message = on_server(mail_user, "Drafts", answer["uid"])
    assert message["In-Reply-To"] == "<orig-1@example.com>"
    assert [a.addr_spec for a in message["To"].addresses] == ["ann@example.com"]
    assert [a.addr_spec for a in message["Cc"].addresses] == ["cy@example.com"]


def test_a_missing_reference_with_ignore_missing_is_stored_and_answered_success_false(
        synced, mail_user):
    response = _upload(synced.client, {"subject": "Orphan", "text": "x", "to": [
        {"address": "x@example.com"}], "reference": {"message": UNKNOWN, "ignoreMissing": True}})
    assert response.status_code == 200, response.json()
    answer = response.json()
    assert answer["reference"] == {"message": UNKNOWN, "success": False,
                                   "error": "Referenced message was not found"}
    _, message = on_server(mail_user, "Drafts", answer["uid"])
    assert message["Subject"] == "Orphan"
    assert message["In-Reply-To"] is None


def test_a_missing_reference_without_ignore_missing_is_404_and_stores_nothing(synced, mail_user):
    response = _upload(synced.client, {"text": "x", "reference": {"message": UNKNOWN}})
    assert response.status_code == 404
    assert response.json()["code"] == "ReferenceNotFound"
    assert _drafts_on_server(mail_user) == []
    assert not events_of(synced.account, "messageNew")


def test_a_message_id_that_does_not_match_is_404_even_with_ignore_missing(synced, mail_user):
    response = _upload(synced.client, {"text": "x", "reference": {
        "message": _original_id(synced.client), "messageId": "<other@example.com>",
        "ignoreMissing": True}})
    assert response.status_code == 404
    assert "does not match" in response.json()["message"]
    assert _drafts_on_server(mail_user) == []


def test_forward_attachments_puts_the_originals_attachments_in_the_draft(synced, mail_user):
    response = _upload(synced.client, {"to": [{"address": "eve@example.com"}], "text": "FYI",
                                       "reference": {"message": _original_id(synced.client),
                                                     "action": "forward",
                                                     "forwardAttachments": True}})
    assert response.status_code == 200, response.json()
    _, message = on_server(mail_user, "Drafts", response.json()["uid"])
    assert message["Subject"] == "Fwd: Lunch?"
    assert [part.get_filename() for part in message.iter_attachments()] == ["menu.pdf"]
    assert next(message.iter_attachments()).get_content() == seed.tiny_pdf()


def test_forward_attachments_with_a_reply_is_400_and_stores_nothing(synced, mail_user):
    response = _upload(synced.client, {"text": "x", "reference": {
        "message": _original_id(synced.client), "action": "reply", "forwardAttachments": True}})
    assert response.status_code == 400
    assert response.json()["details"] == {"reference.forwardAttachments": ["Only for action forward"]}
    assert _drafts_on_server(mail_user) == []


def test_an_upload_without_a_reference_answers_none(synced):
    response = _upload(synced.client, {"raw": base64.b64encode(seed.make_message()).decode()})
    assert response.status_code == 200, response.json()
    assert "reference" not in response.json()


def _seq_on_server(mail_user, path: str, uid: int) -> list[int]:
    with mail_user.imap_client() as other:
        other.select_folder(path, readonly=True)
        other.use_uid = False
        return other.search(["UID", str(uid)])


def test_the_answer_carries_the_sequence_number_the_server_gives_the_message(synced, mail_user):
    raw = base64.b64encode(seed.make_message()).decode()
    first = _upload(synced.client, {"raw": raw}).json()
    second = _upload(synced.client, {"raw": raw}).json()
    assert (first["seq"], second["seq"]) == (1, 2)
    with mail_user.imap_client() as other:  # another client removes the first
        other.select_folder("Drafts")
        other.delete_messages([first["uid"]])
        other.expunge()
    third = _upload(synced.client, {"raw": raw}).json()
    assert [third["seq"]] == _seq_on_server(mail_user, "Drafts", third["uid"]) == [2]
