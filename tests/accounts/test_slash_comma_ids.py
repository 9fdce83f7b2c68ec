"""Account ids holding ``/`` or ``,``, as EmailEngine takes them: a ``/`` travels in a URL path
as ``%2F`` (``encodeURIComponent``) and stays inside its segment (``emailapi.api.path_ids``), so
``/v1/account/crm%2F42`` is the account ``crm/42`` on every route and never ``crm``'s; an id
with a comma is named whole in the stream's and the change feed's filter by ``account``.

The path tests go through ``emailapi.asgi.application`` (``tests.asgi_calls``): the test client
has no raw path, and the decoded path alone cannot tell ``a%2Fb`` from ``a/b``."""

from __future__ import annotations

import json
import re
from html import unescape
from urllib.parse import quote

import pytest

from accounts.models import EmailAccount
from emailapi.api.path_ids import MARK, IdConverter, mark_encoded_slashes
from mailboxes.sync.account import sync_account
from tests import asgi_calls
from tests.mailboxes.helpers import open_session
from tests.servers import seed
from tests.webhooks.stream_clients import Daphne
from webhooks import events, sequencer

# The application answers on threads of its own: their database connections must see what a
# test wrote, so the tests through it commit (``transaction=True``).
through_the_app = pytest.mark.django_db(transaction=True)


# --- the path, pure ---------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "path"), [
    (b"/v1/account/crm%2F42", f"/v1/account/crm{MARK}42"),
    (b"/v1/account/a%2fmessages", f"/v1/account/a{MARK}messages"),
    (b"/v1/account/crm%2F42/message/x", f"/v1/account/crm{MARK}42/message/x"),
    (b"/v1/account/x%252Fy/a%2F..", f"/v1/account/x%2Fy/a{MARK}.."),  # decoded once, as always
    (b"/v1/account/%C3%BC%2F%20", f"/v1/account/ü{MARK} "),
])
def test_an_encoded_slash_stays_inside_its_segment(raw, path):
    assert mark_encoded_slashes({"raw_path": raw, "path": "ignored"})["path"] == path


@pytest.mark.parametrize("raw", [b"/v1/account/x%252Fy", b"/v1/account/a/b", b""])
def test_a_path_without_an_encoded_slash_is_left_as_the_server_decoded_it(raw):
    scope = {"raw_path": raw, "path": "as decoded"}
    assert mark_encoded_slashes(scope) is scope


def test_the_converter_gives_the_id_and_writes_a_path_segment():
    converter = IdConverter()
    assert converter.to_python(f"crm{MARK}42") == "crm/42"
    assert converter.to_url("crm/42/x") == f"crm{MARK}42{MARK}x"
    assert converter.to_python(converter.to_url("a,b%2F/")) == "a,b%2F/"


# --- through the application ------------------------------------------------------------------

def _asgi(token: str | None, method: str, path: str, body: dict | None = None, query: str = "",
          cookie: str | None = None) -> tuple[int, dict, bytes]:
    from emailapi.asgi import application

    headers = [(b"content-type", b"application/json")]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    data = json.dumps(body).encode() if body is not None else b""

    async def main():
        return await asgi_calls.call(application, method, path, query, data, headers)

    return asgi_calls.run(main)


def _json(token, method, path, body=None, query=""):
    status, _, content = _asgi(token, method, path, body, query)
    return status, json.loads(content or b"null")


def _register(token: str, account_id: str, mail_user) -> None:
    imap = {**mail_user.imap_settings(secure=False), "tls": {"rejectUnauthorized": False}}
    status, body = _json(token, "POST", "/v1/account", {"account": account_id, "imap": imap,
                                                        "name": f"Name of {account_id}"})
    assert (status, body["account"]) == (200, account_id), body


def _synced(tenant, account_id: str) -> None:
    account = EmailAccount.objects.get(tenant=tenant, account_id=account_id)
    session = open_session(account)
    sync_account(session, account)
    session.client.logout()


def _in_path(account_id: str) -> str:
    return quote(account_id, safe="")  # as encodeURIComponent writes it, "/" as %2F


@pytest.fixture
def crm(alice, dovecot):
    """Alice's ``crm/42`` (one message) beside ``crm`` and ``42`` (two each), synced."""
    for account_id, subjects in (("crm/42", ["For crm/42"]), ("crm", ["For crm", "Also crm"]),
                                 ("42", ["For 42", "Also 42"])):
        user = dovecot.add_user()
        seed.seed_mailbox(user, messages=[seed.make_message(subject=s) for s in subjects])
        _register(alice.token, account_id, user)
        _synced(alice.tenant, account_id)
    sequencer.publish_pending()  # the dispatcher's part: the feed shows published events
    return alice


@through_the_app
def test_every_route_of_an_id_with_a_slash_reaches_that_account_only(crm):
    token, path = crm.token, f"/v1/account/{_in_path('crm/42')}"
    status, body = _json(token, "GET", path)
    assert (status, body["account"], body["name"]) == (200, "crm/42", "Name of crm/42"), body
    status, body = _json(token, "GET", f"{path}/messages", query="path=INBOX")
    assert status == 200, body
    assert [m["subject"] for m in body["messages"]] == ["For crm/42"]
    message_id = body["messages"][0]["id"]
    status, body = _json(token, "GET", f"{path}/message/{message_id}")
    assert (status, body["subject"]) == (200, "For crm/42"), body
    status, body = _json(token, "GET", f"{path}/mailboxes")
    assert status == 200, body
    assert [m["messages"] for m in body["mailboxes"] if m["path"] == "INBOX"] == [1]
    status, body = _json(token, "POST", f"{path}/submit", {
        "from": {"address": "me@example.test"}, "to": [{"address": "you@example.test"}],
        "subject": "Dry", "text": "Run", "dryRun": True})
    assert (status, body.get("response")) == (200, "Dry run"), body
    status, body = _json(token, "GET", f"{path}/changes")
    assert status == 200, body
    assert {c["account"] for c in body["changes"]} == {"crm/42"}, body
    status, headers, _ = _asgi(token, "GET", f"/v1/logs/{_in_path('crm/42')}")
    assert (status, headers["content-type"].split(";")[0]) == (200, "text/plain")
    assert _asgi(token, "GET", f"/v1/logs/{_in_path('crm/43')}")[0] == 404

    status, made = _json(token, "POST", "/v1/token", {"description": "crm/42 only",
                                                      "account": "crm/42"})
    assert status == 200, made
    status, body = _json(token, "GET", f"/v1/tokens/account/{_in_path('crm/42')}")
    assert status == 200, body
    assert [t["account"] for t in body["tokens"]] == ["crm/42"]
    assert _json(token, "GET", f"/v1/tokens/account/{_in_path('crm')}")[1]["tokens"] == []
    limited = made["token"]
    assert _json(limited, "GET", path)[0] == 200
    assert _json(limited, "GET", "/v1/account/crm")[0] == 403

    status, body = _json(token, "DELETE", path)
    assert (status, body) == (200, {"account": "crm/42", "deleted": True}), body
    assert _json(token, "GET", path)[0] == 404
    left = EmailAccount.objects.filter(tenant=crm.tenant).values_list("account_id", flat=True)
    assert sorted(left) == ["42", "crm"]


@through_the_app
def test_an_encoded_slash_never_names_a_route_of_the_id_before_it(alice, mail_user):
    for account_id in ("a", "a/messages", "x%2Fy"):
        _register(alice.token, account_id, mail_user)
    status, body = _json(alice.token, "GET", "/v1/account/a%2Fmessages")
    assert (status, body["account"]) == (200, "a/messages"), body
    status, body = _json(alice.token, "GET", "/v1/account/a%2fmessages")
    assert (status, body["account"]) == (200, "a/messages"), body
    status, body = _json(alice.token, "GET", "/v1/account/x%252Fy")  # the text %2F, encoded
    assert (status, body["account"]) == (200, "x%2Fy"), body
    status, body = _json(alice.token, "GET", "/v1/account/x%2Fy")  # x/y: nobody's
    assert (status, body["code"]) == (404, "AccountNotFound"), body
    status, body = _json(alice.token, "GET", "/v1/account/a/messages%2Fx")
    assert (status, body["code"]) == (404, "RouteNotFound"), body
    assert body["message"] == "No route for GET /v1/account/a/messages%2Fx"


@through_the_app
def test_the_web_server_hands_over_an_encoded_slash_as_sent(alice, mail_user, settings):
    from tests.accounts.test_account_ids import Http

    web = Daphne(settings)
    try:
        api = Http(web.port, alice.token)
        imap = {**mail_user.imap_settings(secure=False), "tls": {"rejectUnauthorized": False}}
        for account_id in ("a", "a/messages"):
            status, body = api("POST", "/v1/account", {"account": account_id, "imap": imap})
            assert (status, body["account"]) == (200, account_id), body
        status, body = api("GET", "/v1/account/a%2Fmessages")
        assert (status, body["account"]) == (200, "a/messages"), body
        assert api("DELETE", "/v1/account/a%2Fmessages") == (200, {"account": "a/messages",
                                                                   "deleted": True})
        assert api("GET", "/v1/account/a")[0] == 200
    finally:
        web.stop()


@through_the_app
def test_another_tenant_reaches_nothing_of_an_id_with_a_slash(alice, bob, mail_user):
    _register(alice.token, "crm/42", mail_user)
    status, body = _json(bob.token, "GET", f"/v1/account/{_in_path('crm/42')}")
    assert (status, body["code"]) == (404, "AccountNotFound"), body
    assert _json(bob.token, "DELETE", f"/v1/account/{_in_path('crm/42')}")[0] == 404
    assert _json(bob.token, "GET", f"/v1/account/{_in_path('crm/42')}/changes")[0] == 404
    assert EmailAccount.objects.filter(tenant=alice.tenant, account_id="crm/42").exists()


@through_the_app
def test_an_id_with_a_comma_is_named_whole_in_the_feed_and_the_stream(alice, mail_user):
    for account_id in ("a,b", "a", "b"):
        _register(alice.token, account_id, mail_user)
    for account_id in ("a,b", "a", "b", "c"):
        events.record(alice.tenant, events.MESSAGE_NEW, account_id, {"of": account_id})
    sequencer.publish_pending()

    def accounts_of(query: str) -> list[str]:
        status, body = _json(alice.token, "GET", "/v1/changes", query=query)
        assert status == 200, body
        return sorted({c["account"] for c in body["changes"] if c["event"] == "messageNew"})

    assert accounts_of("account=a,b") == ["a,b"]
    assert accounts_of("account=a%2Cb&account=c") == ["a,b", "c"]
    assert accounts_of("account=a,b&accounts=b,c") == ["a,b", "b", "c"]
    assert accounts_of("accounts=a,b") == ["a", "b"]  # the comma list is still a list
    status, body = _json(alice.token, "GET", f"/v1/account/{_in_path('a,b')}/changes")
    assert {c["account"] for c in body["changes"]} == {"a,b"}, body
    assert _json(alice.token, "GET", "/v1/changes", query="account=")[0] == 400

    streamed = alice.client.get("/v1/stream?once=true&since=0&account=a,b")
    assert streamed.status_code == 200
    sent = [json.loads(line[len("data: "):]) for line in streamed.content.decode().splitlines()
            if line.startswith("data: ")]
    assert {event["account"] for event in sent} == {"a,b"}, sent


@through_the_app
def test_the_dashboard_opens_a_mailbox_whose_id_holds_a_slash(client, crm):
    from tests.dashboard.test_pages import member

    member(client, crm.tenant, "owner@alice.test", "owner")
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    status, _, listing = _asgi(None, "GET", "/dashboard/mailboxes", cookie=cookie)
    assert status == 200
    hrefs = {unescape(h) for h in re.findall(r'href="(/dashboard/mailboxes/[^"]*)"', listing.decode())}
    assert "/dashboard/mailboxes/crm%1F42" in hrefs, hrefs  # reverse() writes the mark
    for href in ("/dashboard/mailboxes/crm%1F42", "/dashboard/mailboxes/crm%2F42"):
        status, _, page = _asgi(None, "GET", href, cookie=cookie)
        assert status == 200, href
        assert "Name of crm/42" in page.decode()
    status, _, page = _asgi(None, "GET", "/dashboard/mailboxes/crm%2F42/mail", cookie=cookie)
    assert status == 200
    assert "For crm/42" in page.decode()
    assert "For crm<" not in page.decode()
