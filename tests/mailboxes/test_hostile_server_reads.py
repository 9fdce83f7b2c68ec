"""An API read that a broken or hostile IMAP server fails mid-command is answered in words: a
503 ``MailboxUnavailable`` when the server cannot be used now (its answer trickled past the
deadline, a literal beyond the cap, a BYE, the connection dropped mid-answer), a 502
``ServerRefused`` when it failed the command (a tagged NO or BAD, an answer that cannot be
read). Each was a 500: the command pool dropped the connection and let the protocol's own
exception through to the view.

The account is registered at ``HostileImapServer`` (which logs anyone in and answers FETCH
badly) and its INBOX row and message are written to the index directly: the server's own
FETCH could not index them.
"""

from __future__ import annotations

import html
import json

import pytest
from django.test import Client

from accounts import services
from accounts.models import Membership, User
from mailboxes import ids
from mailboxes.imap.types import MessageMeta, Part
from mailboxes.models import Folder
from mailboxes.sync import index
from tests.servers.hostile_imap import HostileImapServer, huge_literal, lines, trickle

pytestmark = [pytest.mark.django_db]

UNAVAILABLE, REFUSED = (503, "MailboxUnavailable"), (502, "ServerRefused")
ANSWERS = {
    "trickled past the deadline": (trickle(b"* 1 FETCH (UID 1 BODY[1] {5}\r\nhello)\r\n"), 0.05,
                                   UNAVAILABLE, "did not finish its answer"),
    "a literal beyond the cap": (huge_literal(1 << 40, 1 << 16), 0.0, UNAVAILABLE,
                                 "more than the 268,435,456 allowed"),
    "BYE": (lines(b"* BYE going away now\r\n"), 0.0, UNAVAILABLE, "going away now"),
    "dropped mid-literal": (lambda tag: iter([b"* 1 FETCH (UID 1 BODY[1] {50}\r\nshort"]), 0.0,
                            UNAVAILABLE, "not available"),
    "NO": (lines(tagged=b"NO [SERVERBUG] broken store"), 0.0, REFUSED, "broken store"),
    "BAD": (lines(tagged=b"BAD what"), 0.0, REFUSED, "BAD what"),
}
ROUTES = {"detail": "/v1/account/evil/message/{id}?textType=*",
          "source": "/v1/account/evil/message/{id}/source",
          "attachment": "/v1/account/evil/attachment/{attachment}"}
PAGES = {"message page": "/dashboard/mailboxes/evil/messages/{id}",
         "attachment download": "/dashboard/mailboxes/evil/attachments/{attachment}"}


@pytest.fixture
def evil(alice, settings, request):
    """Alice's account ``evil`` at a hostile server answering FETCH as the test's ``answer``
    says, with one message indexed."""
    settings.IMAP_COMMAND_TIMEOUT = 0.5  # an answer's deadline is ten times that
    settings.IMAP_COMMAND_CONNECTIONS = 1  # a connection kept after a failure: the next waits
    answer, pace, *_ = ANSWERS[request.param]
    with HostileImapServer(b"FETCH", answer, pace=pace) as server:
        account = services.register_account(alice.tenant, {"account": "evil", "imap": {
            "host": "127.0.0.1", "port": server.port, "secure": False,
            "auth": {"user": "u", "pass": "p"}}})
        folder = Folder.objects.create(email_account=account, path="INBOX", name="INBOX",
                                       number=1, uidvalidity=7, uidnext=2, synced_uidnext=2,
                                       backfill_below=0, messages=1)
        index.add_messages(folder, [MessageMeta(
            uid=1, subject="s", message_id="<m@example.test>", has_attachments=True,
            text_parts=[Part("1", "text/plain", 10)],
            attachments=[Part("2", "application/pdf", 10, "a.pdf", encoding="base64")])],
            notify=False)
        yield folder


def _answer(client, path: str) -> tuple[int, str, dict]:
    response = client.get(path)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response.status_code, response.headers.get("Content-Type"), body


@pytest.mark.parametrize("evil", list(ANSWERS), indirect=True)
@pytest.mark.parametrize("route", list(ROUTES))
def test_a_read_the_server_fails_is_answered_in_words(alice, evil, route, request):
    _, _, (status, code), words = ANSWERS[request.node.callspec.params["evil"]]
    message = ids.message_id_for(evil, 1)
    attachment = ids.attachment_id(ids.key(), evil.email_account_id, evil.number, 1, "2")
    path = ROUTES[route].format(id=message, attachment=attachment)
    client = alice.client
    client.raise_request_exception = False

    # Twice: the failed connection was given up, so the second read has one to use (a slot
    # kept by the first would make it wait, then answer "too many requests").
    for _ in range(2):
        answered, kind, body = _answer(client, path)
        assert (answered, kind) == (status, "application/json"), body
        error = json.loads(body)
        assert error["emailapiCode"] == code
        assert words in error["message"], error["message"]


@pytest.mark.parametrize("evil", ["trickled past the deadline", "BYE", "NO"], indirect=True)
@pytest.mark.parametrize("page", list(PAGES))
def test_the_dashboard_shows_a_read_the_server_fails_as_its_error(alice, evil, page, request):
    _, _, (status, _), words = ANSWERS[request.node.callspec.params["evil"]]
    owner = User.objects.create_user(email="owner@alice.test", password="Correct-Horse-Battery-9")
    Membership.objects.create(tenant=alice.tenant, user=owner, role="owner")
    browser = Client(raise_request_exception=False)
    browser.force_login(owner)
    path = PAGES[page].format(id=ids.message_id_for(evil, 1), attachment=ids.attachment_id(
        ids.key(), evil.email_account_id, evil.number, 1, "2"))

    answered, kind, body = _answer(browser, path)
    assert (answered, kind) == (status, "text/html; charset=utf-8")
    assert words in html.unescape(body.decode())
