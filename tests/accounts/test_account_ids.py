"""Account ids are any text EmailEngine would take, less what a URL path segment or a comma
list cannot carry: one with colons, spaces, ``?``, ``#``, ``%`` and letters of any script
works through the real web server, percent-encoded in the path as ``encodeURIComponent``
writes it, from registration to deletion."""

from __future__ import annotations

import http.client
import json
from urllib.parse import quote

import pytest
from django.utils.html import escape

from accounts.api.serializers import id_problem
from accounts.models import EmailAccount
from mailboxes.sync.account import sync_account
from tests.mailboxes.helpers import open_session
from tests.servers import seed
from tests.webhooks.stream_clients import Daphne
from webhooks import sequencer

ODD_ID = "crm:42 Müller|büro?#%&+;=~'\"(x)*!$@[é]\\日本"


@pytest.mark.parametrize("value", ["crm:42", "John Smith", "ü", "日本", "a|b", "50%", "a?b#c",
                                   "...", ".a", "\\", "x" * 256, "👍🏽",
                                   "crm/42", "a,b", "/", ",", "a/..", "./a", "%2F"])
def test_ids_that_are_fine(value):
    assert id_problem(value) is None


@pytest.mark.parametrize(("value", "says"), [
    ("a\x1fb", "U+001F"), ("", "1-256 characters"),
    ("x" * 257, "1-256 characters"), (".", "cannot be . or .."), ("..", "cannot be . or .."),
    ("a\tb", "U+0009"), ("a\x7fb", "U+007F"), ("a\u202eb", "U+202E"), ("a\u200bb", "U+200B"),
    ("a\u2028b", "U+2028"), ("a\ud800b", "U+D800"), ("a\x85b", "U+0085"),
])
def test_ids_that_are_refused_say_why(value, says):
    assert says in id_problem(value)


class Http:
    def __init__(self, port: int, token: str):
        self.port, self.token = port, token

    def __call__(self, method: str, path: str, body: dict | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=None if body is None else json.dumps(body),
                         headers={"Authorization": f"Bearer {self.token}",
                                  "Content-Type": "application/json"})
            response = conn.getresponse()
            return response.status, json.loads(response.read() or b"null")
        finally:
            conn.close()


@pytest.mark.django_db(transaction=True)
def test_an_id_of_any_text_works_through_the_web_server(alice, mail_user, settings):
    seed.seed_mailbox(mail_user, messages=[seed.make_message(subject="For the odd id")])
    imap = {**mail_user.imap_settings(secure=False), "tls": {"rejectUnauthorized": False}}
    web = Daphne(settings)
    try:
        api = Http(web.port, alice.token)
        status, body = api("POST", "/v1/account", {"account": f"  {ODD_ID} ", "imap": imap})
        assert (status, body["account"]) == (200, ODD_ID), body  # trimmed, as EmailEngine does
        account = EmailAccount.objects.get(tenant=alice.tenant)
        assert account.account_id == ODD_ID
        session = open_session(account)
        sync_account(session, account)
        session.client.logout()

        path = f"/v1/account/{quote(ODD_ID, safe='')}"
        status, body = api("GET", path)
        assert (status, body["account"]) == (200, ODD_ID), body
        status, body = api("GET", f"{path}/messages?path=INBOX")
        assert status == 200, body
        assert [m["subject"] for m in body["messages"]] == ["For the odd id"]
        status, body = api("GET", f"{path}/message/{body['messages'][0]['id']}")
        assert (status, body["subject"]) == (200, "For the odd id"), body
        status, body = api("GET", f"/v1/accounts?query={quote('Müller|büro', safe='')}")
        assert [a["account"] for a in body["accounts"]] == [ODD_ID], body
        sequencer.publish_pending()  # the dispatcher's part: the feed shows published events
        status, body = api("GET", f"/v1/changes?accounts={quote(ODD_ID, safe='')}&limit=100")
        assert status == 200, body
        assert {c["account"] for c in body["changes"]} == {ODD_ID}, body
        assert "accountAdded" in {c["event"] for c in body["changes"]}

        status, body = api("DELETE", path)
        assert status == 200, body
        assert api("GET", path)[0] == 404
        assert not EmailAccount.objects.filter(tenant=alice.tenant).exists()
    finally:
        web.stop()


@pytest.mark.django_db
def test_the_dashboard_links_to_a_mailbox_with_an_odd_id(client, alice, mail_user):
    from tests.dashboard.test_pages import member

    imap = {**mail_user.imap_settings(secure=False), "tls": {"rejectUnauthorized": False}}
    assert alice.client.post("/v1/account", {"account": ODD_ID, "imap": imap},
                             format="json").status_code == 200
    member(client, alice.tenant, "owner@alice.test", "owner")
    listing = client.get("/dashboard/mailboxes").content.decode()
    href = "/dashboard/mailboxes/" + quote(ODD_ID, safe="!$&'()*+,;=/~:@")  # as reverse() writes
    assert f'href="{escape(href)}"' in listing, listing
    detail = client.get(f"/dashboard/mailboxes/{quote(ODD_ID, safe='')}")
    assert detail.status_code == 200
    assert "Müller|büro" in detail.content.decode()
