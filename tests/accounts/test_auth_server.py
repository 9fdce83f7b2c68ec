"""EmailEngine's authentication server: a mailbox with ``useAuthServer`` keeps no password; its
credentials are asked of the tenant's ``authServer`` at every connection (the worker's, an API
command's, a send), through a real HTTP server on loopback and the real Dovecot and SMTP
servers."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from accounts import auth_server
from accounts.models import AuthServer, Credential, EmailAccount
from mailboxes import connection_settings, sending
from tests.accounts.oauth2_helpers import create_app
from tests.base import wait_for
from tests.mailboxes.helpers import events_of
from tests.mailboxes.sending_helpers import queue, sync
from tests.servers import seed


class AuthHttpServer:
    """Answers every GET with ``answer`` (status, JSON-able body) and records what it got."""

    def __init__(self):
        self.answer: tuple[int, object] = (500, {})
        self.requests: list[dict] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                parts = urlsplit(self.path)
                owner.requests.append({"path": parts.path, "query": parse_qs(parts.query),
                                       "authorization": self.headers.get("Authorization")})
                status, body = owner.answer
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, userinfo: str = "") -> str:
        return f"http://{userinfo}127.0.0.1:{self.port}/credentials?site=a"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def auth_http():
    server = AuthHttpServer()
    yield server
    server.stop()


def _set(client, url: str):
    return client.post("/v1/settings", {"authServer": url}, format="json")


def _register(alice, mail_user, **extra):
    imap = {**mail_user.imap_settings(secure=False), "tls": {"rejectUnauthorized": False},
            "useAuthServer": True}
    imap.pop("auth")
    response = alice.client.post("/v1/account", {"account": "box", "imap": imap, **extra},
                                 format="json")
    assert response.status_code == 200, response.content
    return EmailAccount.objects.get(tenant=alice.tenant, account_id="box")


# -- the answer ------------------------------------------------------------------------------

@pytest.mark.parametrize("body", [
    {"user": "u", "pass": "p"}, {"user": "u", "accessToken": "t"},
    {"user": "u", "pass": "p", "other": [1]},
])
def test_answers_that_give_credentials(body):
    given = auth_server.parse_answer(json.dumps(body).encode())
    assert (given.user, given.password, given.access_token) == (
        "u", body.get("pass"), body.get("accessToken"))


@pytest.mark.parametrize(("body", "says"), [
    (b"not json", "not a JSON object"), (b"[1]", "not a JSON object"),
    (b'{"user": "u"}', "no user with a pass"), (b'{"pass": "p"}', "no user with a pass"),
    (b'{"user": 7, "pass": "p"}', "user is not a string"),
    (b'{"user": "u", "pass": "p\\r\\nA1 LOGOUT"}', "pass contains a control character"),
    (b'{"user": "u\\u0000", "pass": "p"}', "user contains a control character"),
    (json.dumps({"user": "u", "pass": "p" * 1025}).encode(), "at most 1024"),
    (b"[" * 100_000, "not a JSON object"),
])
def test_answers_that_are_refused_say_why(body, says):
    with pytest.raises(auth_server.AuthServerError) as caught:
        auth_server.parse_answer(body)
    assert says in str(caught.value)
    assert caught.value.code == "AuthServerError"


# -- the setting -----------------------------------------------------------------------------

@pytest.mark.django_db
def test_the_setting_keeps_its_password_sealed_and_shows_it_masked(alice, bob, auth_http):
    response = _set(alice.client, auth_http.url("svc:s3cret%40x@"))
    assert response.json() == {"updated": ["authServer"]}
    row = AuthServer.objects.get(tenant=alice.tenant)
    assert "s3cret" not in row.sealed_url
    shown = alice.client.get("/v1/settings?authServer=true").json()
    assert shown == {"authServer": auth_http.url("svc:******@")}
    assert alice.client.get("/v1/settings").json()["authServer"] == auth_http.url("svc:******@")
    assert bob.client.get("/v1/settings?authServer=true").json() == {"authServer": None}

    # Written back masked (another path, same server): the password stays.
    _set(alice.client, auth_http.url("svc:******@").replace("/credentials", "/v2"))
    assert auth_server.url_of(alice.tenant) == auth_http.url("svc:s3cret%40x@").replace(
        "/credentials", "/v2")
    # Masked towards another server: the mask is all it gets.
    _set(alice.client, "http://svc:******@localhost:9/x")
    assert auth_server.url_of(alice.tenant) == "http://svc:******@localhost:9/x"
    assert _set(alice.client, "").json() == {"updated": ["authServer"]}
    assert not AuthServer.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["ftp://example.com/x", "http://", "not a url", "http://a b/"])
def test_a_bad_setting_is_refused_and_changes_nothing(alice, url):
    response = _set(alice.client, url)
    assert response.status_code == 400, response.content
    assert "authServer" in response.json()["details"]
    assert not AuthServer.objects.exists()


@pytest.mark.django_db
def test_an_internal_auth_server_is_refused_where_internal_addresses_are(alice, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    settings.EMAILAPI_MAIL_ALLOW_PRIVATE = False
    response = _set(alice.client, "http://127.0.0.1:1/credentials")
    assert response.status_code == 400, response.content
    assert not AuthServer.objects.exists()


# -- registration ------------------------------------------------------------------------------

@pytest.mark.django_db
def test_auth_may_be_left_out_only_with_use_auth_server(alice, mail_user, client):
    imap = {**mail_user.imap_settings(secure=False)}
    imap.pop("auth")
    refused = alice.client.post("/v1/account", {"account": "box", "imap": imap}, format="json")
    assert refused.status_code == 400
    assert "imap.auth" in refused.json()["details"]
    account = _register(alice, mail_user)
    assert not Credential.objects.filter(email_account=account).exists()
    shown = alice.client.get("/v1/account/box").json()["imap"]
    assert shown["useAuthServer"] is True
    assert "auth" not in shown
    verify = alice.client.post("/v1/verifyAccount", {"imap": imap | {"useAuthServer": True}},
                               format="json")
    assert verify.status_code == 400
    assert "imap.useAuthServer" in verify.json()["details"]

    from tests.dashboard.test_pages import member
    member(client, alice.tenant, "owner@alice.test", "owner")
    for page in ("/dashboard/mailboxes/box", "/dashboard/mailboxes/box/edit"):
        assert client.get(page).status_code == 200, page


# -- connections ------------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_sync_and_an_api_command_log_in_with_what_the_server_gives(alice, mail_user,
                                                                     auth_http):
    seed.seed_mailbox(mail_user, messages=[seed.make_message(subject="Asked for")])
    _set(alice.client, auth_http.url("svc:pw@"))
    account = _register(alice, mail_user)
    auth_http.answer = (200, {"user": mail_user.username, "pass": mail_user.password})
    sync(account)  # the worker's connection
    listing = alice.client.get("/v1/account/box/messages?path=INBOX").json()["messages"]
    assert [m["subject"] for m in listing] == ["Asked for"]
    source = alice.client.get(f"/v1/account/box/message/{listing[0]['id']}/source")
    assert source.status_code == 200  # an API command's connection
    assert b"Asked for" in b"".join(source.streaming_content)

    assert len(auth_http.requests) == 2
    for request in auth_http.requests:
        assert request["path"] == "/credentials"
        assert request["query"] == {"site": ["a"], "account": ["box"], "proto": ["imap"]}
        assert request["authorization"] == "Basic " + base64.b64encode(b"svc:pw").decode()


@pytest.mark.django_db
def test_an_api_command_without_credentials_is_a_503_in_words(alice, mail_user, auth_http):
    seed.seed_mailbox(mail_user, messages=[seed.make_message(subject="Asked for")])
    _set(alice.client, auth_http.url())
    account = _register(alice, mail_user)
    auth_http.answer = (200, {"user": mail_user.username, "pass": mail_user.password})
    sync(account)
    message = alice.client.get("/v1/account/box/messages?path=INBOX").json()["messages"][0]
    auth_http.answer = (503, {"error": "down for maintenance"})
    response = alice.client.get(f"/v1/account/box/message/{message['id']}/source")
    assert response.status_code == 503
    body = response.json()
    assert "authentication server answered HTTP 503" in body["message"]
    assert "maintenance" not in body["message"]


@pytest.mark.django_db(transaction=True)  # send_entry's own transactions, as in rq's worker
def test_a_send_logs_in_to_smtp_with_what_the_server_gives(alice, smtp_user, smtp_server,
                                                           auth_http):
    _set(alice.client, auth_http.url())
    smtp = {**smtp_server.smtp_settings("", ""), "useAuthServer": True,
            "tls": {"rejectUnauthorized": False}}
    smtp.pop("auth")
    account = _register(alice, smtp_user, smtp=smtp, email="box@example.test")
    auth_http.answer = (200, {"user": smtp_user.username, "pass": smtp_user.password})
    sync(account)
    entry = queue(account)
    assert sending.send_entry(entry.pk) == "sent"
    assert [m.auth_user for m in smtp_server.messages] == [smtp_user.username]
    # SMTP for the send, IMAP for the sync and the copy to Sent.
    assert {r["query"]["proto"][0] for r in auth_http.requests} == {"imap", "smtp"}

    auth_http.answer = (404, {})
    failed = queue(account, message_id="<second@example.test>")
    sending.send_entry(failed.pk)
    failed.refresh_from_db()
    assert failed.state != "sent"
    assert "authentication server answered HTTP 404" in json.dumps(failed.last_error)
    assert len(smtp_server.messages) == 1


def _state(account) -> tuple[str, dict]:
    row = EmailAccount.objects.get(pk=account.pk)
    return row.state, row.last_error or {}


def _reconnect(alice):
    assert alice.client.put("/v1/account/box/reconnect", {"reconnect": True},
                            format="json").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_the_worker_connects_with_it_and_records_why_it_cannot(alice, mail_user, auth_http,
                                                               imap_worker):
    """A server having a bad minute (5xx) is a connection error; one that answers what cannot
    be used is an authentication error, as in EmailEngine; good credentials connect."""
    _set(alice.client, auth_http.url())
    auth_http.answer = (503, {})
    account = _register(alice, mail_user)
    wait_for(lambda: _state(account)[0] == "connectError", timeout=30)
    error = _state(account)[1]
    assert error["code"] == "AuthServerError"
    assert "authentication server answered HTTP 503" in error["error"]

    auth_http.answer = (200, {"user": mail_user.username, "pass": "wrong\r\nA1 LOGOUT"})
    _reconnect(alice)
    wait_for(lambda: _state(account)[0] == "authenticationError", timeout=30)
    event = events_of(account, "authenticationError")[0]
    assert event.data["serverResponseCode"] == "HTTPRequestError"  # EmailEngine's
    error = _state(account)[1]
    assert "pass contains a control character" in error["error"]
    assert "wrong" not in json.dumps(error)

    auth_http.answer = (200, {"user": mail_user.username, "pass": mail_user.password})
    _reconnect(alice)
    wait_for(lambda: _state(account)[0] == "connected", timeout=30)
    assert {r["query"]["proto"][0] for r in auth_http.requests} == {"imap"}


# -- oauth2.useAuthServer ---------------------------------------------------------------------

def _oauth2_register(alice, app, user, **oauth2):
    return alice.client.post("/v1/account", {"account": "box", "oauth2": {
        "provider": app, "auth": {"user": user}, "useAuthServer": True, **oauth2}},
        format="json")


@pytest.mark.django_db
def test_an_oauth2_mailbox_logs_in_with_the_access_token_the_server_gives(
        alice, provider, oauth_dovecot, oauth_user, auth_http, allow_http):
    seed.seed_mailbox(oauth_user, messages=[seed.make_message(subject="Token from afar")])
    app = create_app(alice, provider, oauth_dovecot)
    _set(alice.client, auth_http.url())
    response = _oauth2_register(alice, app, oauth_user.username)
    assert response.status_code == 200, response.json()
    account = EmailAccount.objects.get(tenant=alice.tenant, account_id="box")
    assert not Credential.objects.filter(email_account=account).exists()
    shown = alice.client.get("/v1/account/box").json()["oauth2"]
    assert (shown["provider"], shown["useAuthServer"]) == (app, True)
    assert "accessToken" not in shown

    token = provider._issue(oauth_user.username)["access_token"]
    auth_http.answer = (200, {"user": oauth_user.username, "accessToken": token})
    sync(account)
    listing = alice.client.get("/v1/account/box/messages?path=INBOX").json()["messages"]
    assert [m["subject"] for m in listing] == ["Token from afar"]
    assert auth_http.requests[-1]["query"]["proto"] == ["imap"]
    assert provider.refresh_calls == 0  # no token of ours to refresh

    auth_http.answer = (200, {"user": oauth_user.username, "pass": "a password"})
    with pytest.raises(auth_server.AuthServerError, match="without an accessToken"):
        connection_settings.account_imap_settings(account)


@pytest.mark.parametrize(("oauth2", "field"), [
    ({"accessToken": "at-1"}, "oauth2.accessToken"),
    ({"refreshToken": "rt-1"}, "oauth2.refreshToken"),
    ({"authorize": True}, "oauth2.authorize"),
    ({"auth": None}, "oauth2.auth"),
])
def test_an_oauth2_mailbox_with_the_server_takes_no_tokens(alice, provider, oauth_dovecot,
                                                           allow_http, oauth2, field):
    app = create_app(alice, provider, oauth_dovecot)
    if oauth2.get("auth", "") is None:
        response = alice.client.post("/v1/account", {"account": "box", "oauth2": {
            "provider": app, "useAuthServer": True}}, format="json")
    else:
        response = _oauth2_register(alice, app, "u@example.test", **oauth2)
    assert response.status_code == 400, response.json()
    assert field in response.json()["details"]
    assert not EmailAccount.objects.filter(account_id="box").exists()


@pytest.mark.django_db
def test_through_the_tenants_proxy_the_servers_credentials_need_verified_tls(alice, mail_user,
                                                                              auth_http):
    """Credentials the authentication server gives were given by no person after the tenant's
    proxy was set: through it they go only over verified TLS (``secret_routes.tls_required``),
    and opening the settings says so rather than failing."""
    from mailboxes import connection_settings

    _set(alice.client, auth_http.url("svc:pw@"))
    account = _register(alice, mail_user)
    auth_http.answer = (200, {"user": mail_user.username, "pass": mail_user.password})
    proxied = alice.client.post("/v1/settings", {"proxyUrl": "socks5://127.0.0.1:1080",
                                                 "proxyEnabled": True}, format="json")
    assert proxied.status_code == 200, proxied.json()
    account = EmailAccount.objects.get(pk=account.pk)
    opened = connection_settings.account_imap_settings(account)
    assert opened.password == mail_user.password
    assert "TLS" in opened.tls_required
