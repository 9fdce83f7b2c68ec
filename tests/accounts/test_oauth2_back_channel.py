"""OAuth2 back-channel requests (token, refresh, revocation; the generic flow and
social-core's backends alike) never follow a redirect, never show what a provider or an
internal server answered, and connect to the address that was checked.

Against real loopback servers: the test provider (authorize page and token endpoint), a
"redirector" answering every request with a redirect to an "internal" server, and that
internal server, which answers with what an internal metadata service would hold."""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from accounts.models import EmailAccount, OAuth2App
from accounts.oauth2 import flow, revoke, social
from emailapi.lib import netguard
from tests.accounts.oauth2_helpers import connect_through_link, create_app, make_link
from tests.base import wait_for
from tests.servers.hostile_http import drip, once
from tests.servers.net import LOOPBACK

pytestmark = pytest.mark.django_db

SECRET = "INTERNAL-METADATA: role=admin key=AKIA-Do-Not-Show"


class _Server:
    """A loopback HTTP server answering every request with ``answer(handler)``'s
    (status, headers, body); requests are recorded."""

    def __init__(self, answer):
        self.requests: list[tuple[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                server.requests.append((self.command, self.path))
                status, headers, body = answer(self)
                self.send_response(status)
                for key, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _any

        self.httpd = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.httpd.server_address[1]}"

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _secret_json(status: int):
    body = json.dumps({"error": SECRET, "error_description": SECRET,
                       "access_token": None}).encode()
    return lambda handler: (status, {"Content-Type": "application/json"}, body)


def _secret_text(status: int):
    return lambda handler: (status, {"Content-Type": "text/plain"}, SECRET.encode())


def _deep_json(status: int):
    """JSON nested 100,000 deep, as deep as the decoder could be driven."""
    body = b"[" * 100_000 + b"]" * 100_000
    return lambda handler: (status, {"Content-Type": "application/json"}, body)


@pytest.fixture
def internal():
    server = _Server(_secret_json(400))
    yield server
    server.stop()


@pytest.fixture(params=[302, 307])
def redirector(request, internal):
    """Redirects every request to the internal server (307 keeps the POST and its body)."""
    target = internal.url + "/latest/meta-data"
    server = _Server(lambda handler: (request.param, {"Location": target}, b""))
    yield server
    server.stop()


def _app(tenant_fixture, provider_name, provider, dovecot, token_url) -> OAuth2App:
    if provider_name == "generic":
        app_id = create_app(tenant_fixture, provider, dovecot, tokenUrl=token_url)
        return OAuth2App.objects.get(tenant=tenant_fixture.tenant, app_id=app_id)
    body = {"app": f"{provider_name}-app", "provider": provider_name,
            "clientId": provider.client_id, "clientSecret": provider.client_secret,
            "authorizeUrl": provider.authorize_url, "tokenUrl": token_url}
    response = tenant_fixture.client.post("/v1/oauth2", body, format="json")
    assert response.status_code == 200, response.json()
    return OAuth2App.objects.get(tenant=tenant_fixture.tenant, app_id=body["app"])


PROVIDERS = ["generic", "gmail", "yahoo"]


@pytest.mark.usefixtures("allow_http")
@pytest.mark.parametrize("provider_name", PROVIDERS)
def test_a_redirecting_token_endpoint_is_not_followed_and_nothing_leaks_to_the_page(
        alice, client, provider, dovecot, redirector, internal, provider_name):
    provider.sign_in_as = "ann@example.com"
    app = _app(alice, provider_name, provider, dovecot, redirector.url + "/token")
    link = make_link(alice, account="box", type=app.app_id)

    page = connect_through_link(client, link)

    assert page.status_code == 400
    text = page.content.decode()
    assert "INTERNAL-METADATA" not in text
    assert "AKIA" not in text
    assert "redirect" in text  # says what happened, in our words
    assert internal.requests == []
    assert len(redirector.requests) == 1
    assert not EmailAccount.objects.filter(tenant=alice.tenant, account_id="box").exists()


@pytest.mark.usefixtures("allow_http")
@pytest.mark.parametrize("provider_name", PROVIDERS)
@pytest.mark.parametrize("answer", [_secret_json(400), _secret_json(200), _secret_text(500),
                                    _secret_text(200), _secret_text(401), _deep_json(200),
                                    _deep_json(400)])
def test_what_a_token_endpoint_answers_is_never_shown(
        alice, client, provider, dovecot, provider_name, answer):
    server = _Server(answer)
    try:
        provider.sign_in_as = "ann@example.com"
        app = _app(alice, provider_name, provider, dovecot, server.url + "/token")
        link = make_link(alice, account="box", type=app.app_id)
        page = connect_through_link(client, link)
    finally:
        server.stop()
    assert page.status_code == 400
    assert len(server.requests) == 1
    assert "INTERNAL-METADATA" not in page.content.decode()


@pytest.mark.usefixtures("allow_http")
@pytest.mark.parametrize("provider_name", PROVIDERS)
def test_refresh_and_revocation_do_not_follow_redirects_either(
        alice, provider, dovecot, redirector, internal, provider_name):
    app = _app(alice, provider_name, provider, dovecot, redirector.url + "/token")
    with pytest.raises(flow.OAuth2Error) as refresh:
        social.refresh_tokens(app, "rt-something", allow_http=True)
    with pytest.raises(flow.OAuth2Error) as revocation:
        flow.post_form(redirector.url + "/revoke", {"token": "rt-something"}, allow_http=True)
    for error in (refresh.value, revocation.value):
        assert "INTERNAL-METADATA" not in str(error)
        assert "redirect" in str(error)
        assert not isinstance(error, flow.InvalidGrant)  # the grant is not known to be gone
    assert internal.requests == []
    assert len(redirector.requests) == 2


@pytest.mark.usefixtures("allow_http")
def test_a_revocation_that_answers_with_a_redirect_fails_quietly(
        alice, client, provider, dovecot, redirector, internal, caplog):
    app = _app(alice, "generic", provider, dovecot, provider.token_url)
    link = make_link(alice, account="box", type=app.app_id, expectedEmail="ann@example.com")
    provider.sign_in_as = "ann@example.com"
    assert connect_through_link(client, link).status_code == 302
    account = EmailAccount.objects.get(tenant=alice.tenant, account_id="box")
    OAuth2App.objects.filter(pk=app.pk).update(token_url=redirector.url + "/token")

    assert revoke.revoke_grant(account) == revoke.FAILED
    assert internal.requests == []
    assert all("INTERNAL-METADATA" not in r.getMessage() for r in caplog.records)


# --- DNS cannot move a request: it goes to the address that was checked -------------------


@pytest.fixture
def rebinding(monkeypatch):
    """``idp.test`` answers 127.0.0.2 (taken here for a public address) until ``arm()``,
    then once more 127.0.0.2, then 127.0.0.1 (internal): a name rebinding between the check
    and the connection. Both addresses listen on one port; 127.0.0.2 accepts (and hangs up),
    127.0.0.1 only queues, so ``reached_internal()`` tells whether anything connected."""
    for _ in range(20):
        public = socket.socket()
        public.bind(("127.0.0.2", 0))
        port = public.getsockname()[1]
        inner = socket.socket()
        try:
            inner.bind(("127.0.0.1", port))
            break
        except OSError:
            public.close()
            inner.close()
    public.listen(8)
    inner.listen(8)
    inner.setblocking(False)
    accepted: list = []

    def serve():
        while True:
            try:
                conn, _ = public.accept()
            except OSError:
                return
            accepted.append(conn)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()

    def reached_internal() -> bool:
        try:
            inner.accept()[0].close()
        except BlockingIOError:
            return False
        return True

    real_lookup, real_forbidden = socket.getaddrinfo, netguard.is_forbidden
    state = {"armed": False, "after": 0}

    def getaddrinfo(host, port_, *args, **kwargs):
        if host != "idp.test":
            return real_lookup(host, port_, *args, **kwargs)
        if state["armed"]:
            state["after"] += 1
        address = "127.0.0.1" if state["after"] > 1 else "127.0.0.2"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port_))]

    def is_forbidden(address):
        return address != ipaddress.ip_address("127.0.0.2") and real_forbidden(address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(netguard, "is_forbidden", is_forbidden)
    yield type("Rebinding", (), {
        "url": f"https://idp.test:{port}/token", "accepted": accepted,
        "arm": staticmethod(lambda: state.update(armed=True)),
        "reached_internal": staticmethod(reached_internal)})
    public.close()
    inner.close()


@pytest.mark.parametrize("provider_name", PROVIDERS)
def test_a_token_request_connects_to_the_checked_address_not_a_rebound_one(
        alice, provider, dovecot, rebinding, provider_name, settings):
    settings.EMAILAPI_OAUTH2_ALLOW_HTTP = True  # the test provider's authorize URL is http
    app = _app(alice, provider_name, provider, dovecot, rebinding.url)
    settings.EMAILAPI_OAUTH2_ALLOW_HTTP = False  # the token URL is checked from here on
    rebinding.arm()
    with pytest.raises(flow.OAuth2Error) as caught:
        social.refresh_tokens(app, "rt-something", allow_http=False)
    assert not rebinding.reached_internal()
    # Either the request went to the checked address (no TLS there: unreachable), or a
    # second check (social-core's backends are checked before they start) saw the rebound
    # address and refused it; never a connection to an address nobody checked.
    if caught.value.code == "ProviderUnreachable":
        wait_for(lambda: rebinding.accepted)
    else:
        assert caught.value.code == "InvalidEndpoint"
        assert not rebinding.accepted


def test_a_token_endpoint_with_a_malformed_status_line_is_unreachable_in_words(hostile_http):
    """``2²0`` passed the status line's digit check, then int() raised ValueError out of
    the back channel: a 500 on the connect page, a refresh failing with no words."""
    server = hostile_http(once("HTTP/1.1 2²0 OK\r\nContent-Length: 2\r\n\r\n{}".encode("latin-1")))
    with pytest.raises(flow.OAuth2Error) as caught:
        flow.refresh_tokens(server.url("/token"), "client", "client-secret", "rt-x",
                            allow_http=True)
    assert caught.value.code == "ProviderUnreachable"
    assert str(caught.value) == "Cannot reach the provider: The server's answer is not HTTP"


def test_a_token_endpoint_dripping_its_answer_is_given_up_at_the_deadline(hostile_http):
    """One byte every 0.1 s never trips the 0.5 s read timeout; the answer would take 30 s."""
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 300\r\n\r\n"
    server = hostile_http(drip(b" " * 300, 0.1, first=head))
    with pytest.raises(flow.OAuth2Error) as caught:
        flow.post_form(server.url("/token"), {"grant_type": "refresh_token"}, allow_http=True,
                       timeout=0.5)
    assert caught.value.code == "ProviderUnreachable"
    assert str(caught.value) == "Cannot reach the provider: Timed out waiting for the answer"
    server.wait_for(lambda exchanges: exchanges[0].hung_up_at)
