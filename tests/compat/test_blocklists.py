"""EmailEngine's blocklists and list sends: ``/v1/blocklists`` and ``/v1/blocklist/{listId}``
with its bodies and answers, and ``listId`` on submit (skipped when blocked, else List-ID,
List-Unsubscribe and List-Unsubscribe-Post), composed and sent through the recording SMTP
server."""

from __future__ import annotations

import base64
import email
import email.policy
from urllib.parse import urlsplit

import pytest

from mailboxes.models import BlocklistEntry
from tests.mailboxes.helpers import register
from tests.mailboxes.sending_helpers import sending_account, work_send_queue
from webhooks.models import Event

pytestmark = pytest.mark.django_db

TO = [{"name": "Ann", "address": "Ann@Example.test"}]
LIST_SEND = {"from": {"address": "me@example.test"}, "to": TO, "subject": "News",
             "text": "Hello {{rcpt.name}}. Leave: {{{rcpt.unsubscribeUrl}}}",
             "html": "<a href=\"{{rcpt.unsubscribeUrl}}\">Leave</a>", "listId": "news"}


@pytest.fixture
def account(alice, smtp_user, smtp_server):
    smtp = {**smtp_server.smtp_settings(smtp_user.username, smtp_user.password),
            "tls": {"rejectUnauthorized": False}}
    return register(alice.tenant, smtp_user, "box", smtp=smtp, email="box@example.test")


def _block(client, recipient="ann@example.test", list_id="news", headers=None, **extra):
    return client.post(f"/v1/blocklist/{list_id}",
                       {"account": "box", "recipient": recipient, **extra}, format="json",
                       **(headers or {}))


def _preview(response) -> email.message.EmailMessage:
    assert response.status_code == 200, response.json()
    raw = base64.b64decode(response.json()["preview"])
    return email.message_from_bytes(raw, policy=email.policy.default)


def _unsubscribe_url(message) -> str:
    value = str(message["List-Unsubscribe"])
    assert (value[0], value[-1]) == ("<", ">"), value
    return value[1:-1]


def test_add_list_and_remove_answer_as_emailengine(alice, account):
    first = _block(alice.client, "Ann@Example.test", reason="bounced",
                   headers={"HTTP_USER_AGENT": "ops-script"})
    assert first.json() == {"success": True, "added": True}
    entry = BlocklistEntry.objects.get()
    assert (entry.reason, entry.user_agent, entry.remote_address) == (
        "bounced", "ops-script", "127.0.0.1")
    assert _block(alice.client, "ann@example.test").json() == {"success": True,
                                                               "added": False}
    _block(alice.client, "bo@example.test")
    _block(alice.client, "cy@example.test", list_id="alerts.example")

    lists = alice.client.get("/v1/blocklists").json()
    assert lists == {"total": 2, "page": 0, "pages": 1, "blocklists": [
        {"listId": "alerts.example", "count": 1}, {"listId": "news", "count": 2}]}

    page = alice.client.get("/v1/blocklist/news?pageSize=1").json()
    assert {k: page[k] for k in ("listId", "total", "page", "pages")} == {
        "listId": "news", "total": 2, "page": 0, "pages": 2}
    entry, = page["addresses"]
    assert entry["recipient"] == "ann@example.test"  # the latest entry's spelling
    assert (entry["account"], entry["source"], entry["reason"]) == ("box", "api", "block")
    assert entry["created"].endswith("Z")
    assert "messageId" not in entry
    assert alice.client.get("/v1/blocklist/news?page=1&pageSize=1").json()["addresses"][0][
        "recipient"] == "bo@example.test"

    gone = alice.client.delete("/v1/blocklist/news?recipient=ANN@example.test")
    assert gone.json() == {"deleted": True}
    assert alice.client.delete("/v1/blocklist/news?recipient=ann@example.test").json() == {
        "deleted": False}
    assert list(BlocklistEntry.objects.filter(list_id="news")
                .values_list("address", flat=True)) == ["bo@example.test"]


def test_a_list_without_addresses_is_not_found(alice, account):
    for response in (alice.client.get("/v1/blocklist/news"),
                     alice.client.delete("/v1/blocklist/news?recipient=a@example.test")):
        assert response.status_code == 404
        assert response.json()["code"] == "BlocklistNotFound"


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/v1/blocklist/bad_list", {"account": "box", "recipient": "a@example.test"}, "listId"),
    ("/v1/blocklist/-news", {"account": "box", "recipient": "a@example.test"}, "listId"),
    ("/v1/blocklist/news", {"account": "box", "recipient": "not an address"}, "recipient"),
    ("/v1/blocklist/news", {"recipient": "a@example.test"}, "account"),
    ("/v1/blocklist/news", {"account": "box", "recipient": "a@example.test", "x": 1}, "x"),
])
def test_bad_additions_are_refused_and_store_nothing(alice, account, path, body, field):
    response = alice.client.post(path, body, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["details"]
    assert not BlocklistEntry.objects.exists()


def test_an_unknown_account_is_404_and_stores_nothing(alice, account):
    response = alice.client.post("/v1/blocklist/news", {"account": "nobody",
                                                        "recipient": "a@example.test"},
                                 format="json")
    assert response.json()["code"] == "AccountNotFound"
    assert not BlocklistEntry.objects.exists()


def test_another_tenant_sees_and_touches_none_of_them(alice, bob, account):
    _block(alice.client)
    assert bob.client.get("/v1/blocklists").json()["total"] == 0
    assert bob.client.get("/v1/blocklist/news").status_code == 404
    assert bob.client.delete("/v1/blocklist/news?recipient=ann@example.test").status_code == 404
    assert BlocklistEntry.objects.filter(tenant=alice.tenant).count() == 1


# -- listId on submit ------------------------------------------------------------------------

def test_a_list_send_carries_the_list_headers_and_renders_its_recipient(alice, account):
    message = _preview(alice.client.post("/v1/account/box/submit",
                                         {**LIST_SEND, "dryRun": True}, format="json"))
    assert message["List-ID"] == "<news.testserver>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = _unsubscribe_url(message)
    assert url.startswith("http://testserver/unsubscribe?data=")
    text = message.get_body(("plain",)).get_content()
    assert "Hello Ann." in text
    assert url in text  # {{{ }}}: as it is
    html = message.get_body(("html",)).get_content()
    assert f'<a href="{url.replace("&", "&amp;").replace("=", "&#x3D;")}">' in html  # {{ }}
    assert message["Message-ID"].endswith("@example.test>")


def test_the_unsubscribe_link_is_written_on_one_line(alice, account):
    response = alice.client.post("/v1/account/box/submit", {**LIST_SEND, "dryRun": True},
                                 format="json")
    raw = base64.b64decode(response.json()["preview"])
    line, = [line for line in raw.split(b"\r\n") if line.startswith(b"List-Unsubscribe:")]
    assert b"=?" not in line  # not encoded words
    assert line.decode().split(": ", 1)[1].startswith("<http://testserver/unsubscribe?")


def test_a_blocked_recipient_is_skipped_and_nothing_is_queued(alice, account):
    _block(alice.client, reason="bounced")
    response = alice.client.post("/v1/account/box/submit", LIST_SEND, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["skipped"] == {"reason": "bounced", "listId": "news"}
    assert "queueId" not in body
    assert alice.client.get("/v1/outbox").json()["total"] == 0
    other_list = alice.client.post("/v1/account/box/submit", {**LIST_SEND, "listId": "other"},
                                   format="json").json()
    assert other_list["queueId"]


def test_a_mail_merge_skips_its_blocked_entries_alone(alice, account):
    _block(alice.client, "bo@example.test")
    body = alice.client.post("/v1/account/box/submit", {
        **{k: v for k, v in LIST_SEND.items() if k != "to"},
        "mailMerge": [{"to": TO[0]}, {"to": {"address": "bo@example.test"}}]},
        format="json").json()
    sent, skipped = body["mailMerge"]
    assert (sent["success"], bool(sent["queueId"])) == (True, True)
    assert skipped == {"success": True, "to": {"address": "bo@example.test"},
                       "skipped": {"reason": "block", "listId": "news"}}
    entries = alice.client.get("/v1/outbox").json()["messages"]
    assert [e["envelope"]["to"] for e in entries] == [["Ann@Example.test"]]


def test_a_mail_merge_reads_its_lists_entries_once(alice, account):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _block(alice.client, "r1@example.test")
    merge = [{"to": {"address": f"R{n}@example.test"}} for n in range(5)]
    with CaptureQueriesContext(connection) as queries:
        body = alice.client.post("/v1/account/box/submit", {
            **{k: v for k, v in LIST_SEND.items() if k != "to"}, "mailMerge": merge},
            format="json").json()
    assert [bool(r.get("skipped")) for r in body["mailMerge"]] == [False, True, False, False,
                                                                  False]
    reads = [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().startswith("SELECT")]
    assert sum(BlocklistEntry._meta.db_table in sql for sql in reads) == 1


@pytest.mark.parametrize(("extra", "field"), [
    ({"to": TO * 2}, "listId"),
    ({"cc": [{"address": "c@example.test"}]}, "listId"),
    ({"listId": "news letter"}, "listId"),
    ({"listId": "a" * 300}, "listId"),
])
def test_what_a_list_send_does_not_take_is_refused(alice, account, extra, field):
    response = alice.client.post("/v1/account/box/submit", {**LIST_SEND, **extra},
                                 format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["details"]
    assert alice.client.get("/v1/outbox").json()["total"] == 0


def test_a_raw_list_send_is_refused(alice, account):
    raw = base64.b64encode(b"To: a@example.test\r\nSubject: x\r\n\r\nx").decode()
    response = alice.client.post("/v1/account/box/submit", {"raw": raw, "listId": "news"},
                                 format="json")
    assert response.status_code == 400
    assert "listId" in response.json()["details"]


@pytest.mark.django_db(transaction=True)  # the send queue's own transactions, as in rq
def test_the_sent_messages_one_click_unsubscribe_blocks_the_next_send(
        alice, client, smtp_user, smtp_server):
    sending_account(alice.tenant, smtp_user, smtp_server)
    queued = alice.client.post("/v1/account/box/submit", LIST_SEND, format="json").json()
    work_send_queue()
    received = smtp_server.wait_for_messages(1)[0].message
    assert received["List-ID"] == "<news.testserver>"
    url = urlsplit(_unsubscribe_url(received))
    answer = client.post(f"{url.path}?{url.query}", {"List-Unsubscribe": "One-Click"},
                         HTTP_USER_AGENT="MailClient/1.0", REMOTE_ADDR="127.0.0.9")
    assert answer.status_code == 200, answer.content

    entry = BlocklistEntry.objects.get(tenant=alice.tenant, list_id="news")
    assert (entry.address, entry.source, entry.reason, entry.message_id) == (
        "ann@example.test", "one-click", "unsubscribe", queued["messageId"])
    event = Event.objects.get(tenant=alice.tenant, event="listUnsubscribe")
    assert event.data == {"recipient": "Ann@Example.test", "messageId": queued["messageId"],
                          "listId": "news", "remoteAddress": "127.0.0.9",
                          "userAgent": "MailClient/1.0"}
    again = alice.client.post("/v1/account/box/submit", LIST_SEND, format="json").json()
    assert again["skipped"] == {"reason": "unsubscribe", "listId": "news"}
