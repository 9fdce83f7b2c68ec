"""The read API's content routes against real Dovecot: a message with its text and
attachments, headers, markAsSeen, the raw source, attachment downloads, and every 404/503."""

from __future__ import annotations

import time

import pytest

from mailboxes.sync.account import sync_account
from tests.mailboxes.helpers import events_of, open_session
from tests.servers import seed

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]


@pytest.fixture
def inbox_messages():
    return seed.build_named_messages()


def test_plain_message_with_text(alice, synced):
    ids = synced.id_of
    body = alice.client.get(f"/v1/account/box/message/{ids['plain']}").json()
    assert body["subject"] == seed.SUBJECTS["plain"]
    assert body["text"]["plain"].startswith("Hi Bob,")
    assert body["text"]["html"] is None
    assert body["text"]["hasMore"] is False
    assert body["attachments"] == []
    assert body["messageId"] == seed.MESSAGE_IDS["plain"]
    assert "headers" not in body


def test_alternative_text_types_and_max_bytes(alice, synced):
    ids = synced.id_of
    url = f"/v1/account/box/message/{ids['alternative']}"
    both = alice.client.get(url).json()["text"]
    assert "text part" in both["plain"]
    assert "<h1>This week</h1>" in both["html"]
    html = alice.client.get(url, {"textType": "html"}).json()["text"]
    assert html["plain"] is None
    assert "<b>part</b>" in html["html"]
    cut = alice.client.get(url, {"textType": "plain", "maxBytes": 9}).json()["text"]
    assert cut["plain"] == "This week"
    assert cut["hasMore"] is True
    for bad in ({"textType": "pdf"}, {"maxBytes": 0}, {"markAsSeen": "maybe"}, {"x": 1}):
        response = alice.client.get(url, bad)
        assert response.status_code == 400
        assert response.json()["code"] == "InputValidationError"


def test_unicode_and_malformed_messages_read_without_error(alice, synced):
    ids = synced.id_of
    unicode = alice.client.get(f"/v1/account/box/message/{ids['unicode']}").json()
    assert unicode["subject"] == seed.UNICODE_SUBJECT
    assert "日本語" in unicode["text"]["plain"]
    assert unicode["from"]["name"] == "Jörg Müller-Łukasiewicz"
    broken = alice.client.get(f"/v1/account/box/message/{ids['malformed']}?headers=true")
    assert broken.status_code == 200
    assert "Body with latin-1" in broken.json()["text"]["plain"]
    assert broken.json()["headers"]["message-id"] == [seed.MESSAGE_IDS["malformed"]]


def test_attachments_listed_and_downloaded_with_rfc6266_name(alice, synced):
    ids = synced.id_of
    body = alice.client.get(f"/v1/account/box/message/{ids['attachments']}").json()
    assert "Anbei die Rechnung" in body["text"]["plain"]
    files = {a["filename"]: a for a in body["attachments"]}
    pdf, png = files[seed.PDF_FILENAME], files[seed.IMAGE_FILENAME]
    assert pdf["contentType"] == "application/pdf"
    assert pdf["inline"] is False
    assert png["contentId"]
    assert png["inline"] is True
    response = alice.client.get(f"/v1/account/box/attachment/{pdf['id']}")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert b"".join(response.streaming_content) == seed.tiny_pdf()
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=utf-8''Rechnung%20M%C3%A4rz%202024.pdf" in disposition
    image = alice.client.get(f"/v1/account/box/attachment/{png['id']}")
    assert b"".join(image.streaming_content) == seed.tiny_png()


def test_raw_source_is_the_message_as_appended(alice, synced):
    ids, named = synced.id_of, synced.seeded
    response = alice.client.get(f"/v1/account/box/message/{ids['attachments']}/source")
    assert response.status_code == 200
    assert response["Content-Type"] == "message/rfc822"
    raw = b"".join(response.streaming_content)
    assert raw.replace(b"\r\n", b"\n") == named["attachments"].replace(b"\r\n", b"\n")
    assert int(response["Content-Length"]) == len(raw)


def test_reading_never_sets_seen_unless_asked(alice, synced, mail_user):
    account, ids, uids = synced.account, synced.id_of, synced.uid_of
    alice.client.get(f"/v1/account/box/message/{ids['plain']}")
    alice.client.get(f"/v1/account/box/message/{ids['plain']}/source")
    with mail_user.imap_client() as other:
        other.select_folder("INBOX", readonly=True)
        assert b"\\Seen" not in other.get_flags([uids["plain"]])[uids["plain"]]
    body = alice.client.get(f"/v1/account/box/message/{ids['plain']}?markAsSeen=true").json()
    assert "\\Seen" in body["flags"]
    assert body["unseen"] is False
    with mail_user.imap_client() as other:
        other.select_folder("INBOX", readonly=True)
        assert b"\\Seen" in other.get_flags([uids["plain"]])[uids["plain"]]
    listed = alice.client.get("/v1/account/box/messages?path=INBOX&pageSize=100").json()
    assert next(m for m in listed["messages"] if m["id"] == ids["plain"])["unseen"] is False
    [event] = events_of(account, "messageUpdated")
    assert event.data["changes"]["flags"]["added"] == ["\\Seen"]


def test_missing_malformed_and_foreign_ids_are_404(alice, outsider, synced, mail_user):
    ids, uids = synced.id_of, synced.uid_of
    with mail_user.imap_client() as other:
        other.select_folder("INBOX")
        other.delete_messages([uids["reply"]])
        other.expunge()
    for url in (f"/v1/account/box/message/{ids['reply']}",
                f"/v1/account/box/message/{ids['reply']}/source",
                "/v1/account/box/message/not-an-id",
                "/v1/account/box/message/AAAAAAAAAAAAAAAA",
                "/v1/account/box/attachment/not-an-id",
                f"/v1/account/box/attachment/{ids['plain']}"):
        response = alice.client.get(url)
        assert response.status_code == 404, url
        assert response.json()["code"] in ("MessageNotFound", "AttachmentNotFound"), url
    for url in (f"/v1/account/box/message/{ids['plain']}",
                f"/v1/account/box/message/{ids['plain']}/source"):
        foreign = outsider.client.get(url)  # its own account is "box" too
        assert foreign.status_code == 404, url
        assert foreign.json()["code"] == "MessageNotFound", url


def test_a_server_that_is_down_is_a_prompt_503(alice, settings):
    from accounts import services

    settings.IMAP_COMMAND_TIMEOUT = 2
    services.register_account(alice.tenant, {"account": "dead", "imap": {
        "host": "127.0.0.1", "port": 9, "secure": False,
        "auth": {"user": "u", "pass": "p"}}})
    started = time.monotonic()
    response = alice.client.get("/v1/account/dead/mailboxes?counters=true")
    assert response.status_code == 503
    assert time.monotonic() - started < 5
    body = response.json()
    assert body["emailapiCode"] == "MailboxUnavailable"
    assert body["statusCode"] == 503
    assert "state" in body["details"]


def test_a_message_newer_than_the_pooled_connection_is_found(alice, synced, mail_user):
    """The pooled connection skips a NOOP before fetching by UID; a UID it has not seen yet
    must make it look again, not answer 404."""
    account, ids = synced.account, synced.id_of
    assert alice.client.get(f"/v1/account/box/message/{ids['plain']}").status_code == 200
    [uid] = seed.seed_mailbox(mail_user, messages=[seed.make_message(subject="Just in")])
    session = open_session(account)
    sync_account(session, account)
    session.client.logout()
    listed = alice.client.get("/v1/account/box/messages?path=INBOX&pageSize=1").json()
    assert listed["messages"][0]["uid"] == uid
    fresh = listed["messages"][0]["id"]
    response = alice.client.get(f"/v1/account/box/message/{fresh}")
    assert response.status_code == 200
    assert response.json()["subject"] == "Just in"
    source = alice.client.get(f"/v1/account/box/message/{fresh}/source")
    assert b"Just in" in b"".join(source.streaming_content)
