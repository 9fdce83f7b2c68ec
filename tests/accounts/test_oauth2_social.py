"""Gmail, Outlook and Yahoo sign-ins go through social-auth's backends, with each tenant's own
app: the authorize URL each backend builds, a code exchange and a refresh by the backend
against the loopback provider (a Gmail/Outlook/Yahoo app whose URLs point at it), and errors
that carry no secret."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from urllib.parse import parse_qs, urlsplit

import pytest
from social_core.backends.google import GoogleOAuth2
from social_core.backends.microsoft import MicrosoftOAuth2
from social_core.backends.yahoo import YahooOAuth2
from social_core.exceptions import SocialAuthBaseException

from accounts import credentials
from accounts.models import EmailAccount, OAuth2App
from accounts.oauth2 import connect, flow, social
from emailapi.lib.redis import get_redis
from tests.accounts.oauth2_helpers import connect_through_link, make_link
from tests.servers.oauth2 import OAuth2Server

pytestmark = pytest.mark.django_db

REDIRECT_URI = "https://svc.example/connect/oauth2/callback"

# provider: (authorize host and path, the scopes in order, extra authorize parameters,
#            the social-core backend class that must build it)
EXPECTED = {
    "gmail": ("accounts.google.com/o/oauth2/v2/auth",
              ["https://mail.google.com/", "openid", "email"],
              {"access_type": "offline", "prompt": "consent"}, GoogleOAuth2),
    "outlook": ("login.microsoftonline.com/common/oauth2/v2.0/authorize",
                ["https://outlook.office.com/IMAP.AccessAsUser.All",
                 "https://outlook.office.com/SMTP.Send", "offline_access", "openid", "email"],
                {"prompt": "select_account"}, MicrosoftOAuth2),
    "yahoo": ("api.login.yahoo.com/oauth2/request_auth", ["mail-w", "openid", "email"], {},
              YahooOAuth2),
}


def _app(tenant_fixture, provider_name: str, client_id: str, **fields) -> OAuth2App:
    body = {"app": f"{provider_name}-app", "provider": provider_name, "clientId": client_id,
            "clientSecret": "Client-Secret-" + client_id, **fields}
    response = tenant_fixture.client.post("/v1/oauth2", body, format="json")
    assert response.status_code == 200, response.json()
    return OAuth2App.objects.get(tenant=tenant_fixture.tenant, app_id=body["app"])


def _local_app(tenant_fixture, provider_name: str, provider: OAuth2Server, **fields):
    """A Gmail/Outlook/Yahoo app of the loopback provider's client, with its URLs."""
    fields = {"clientSecret": provider.client_secret, "authorizeUrl": provider.authorize_url,
              "tokenUrl": provider.token_url, **fields}
    return _app(tenant_fixture, provider_name, provider.client_id, **fields)


def _start(tenant_fixture, app: OAuth2App, **link) -> tuple[str, dict, dict]:
    """Through connect.start_oauth2: (scheme://host/path, query, the attempt kept in Redis)."""
    url = make_link(tenant_fixture, type=app.app_id, **link)
    signed = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    target = connect.start_oauth2(signed["data"], signed["sig"], "https://svc.example")
    parts = urlsplit(target)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    raw = get_redis().get(connect._state_key(query.get("state", "")))
    return f"{parts.scheme}://{parts.netloc}{parts.path}", query, json.loads(raw or "{}")


@pytest.mark.parametrize("provider_name", sorted(EXPECTED))
def test_it_builds_each_providers_authorize_url_through_its_social_backend(
        alice, provider_name, monkeypatch):
    where, scopes, extra, backend_class = EXPECTED[provider_name]
    built = []
    original = social._AppBackend.auth_url

    def spy(self):
        built.append(type(self))
        return original(self)

    monkeypatch.setattr(social._AppBackend, "auth_url", spy)
    app = _app(alice, provider_name, f"{provider_name}-client-1")
    base, query, attempt = _start(alice, app, expectedEmail="ann+news@example.com")

    assert len(built) == 1
    assert issubclass(built[0], backend_class)
    assert base == f"https://{where}"
    assert query["client_id"] == f"{provider_name}-client-1"
    assert query["redirect_uri"] == REDIRECT_URI == attempt["redirectUri"]
    assert query["scope"].split() == scopes  # not the backend's defaults (profile, User.Read)
    assert query["response_type"] == "code"
    assert query["login_hint"] == "ann+news@example.com"
    for key, value in extra.items():
        assert query[key] == value
    # Our state (the Redis key of the attempt) and our PKCE, checked against the verifier.
    assert attempt["app"] == app.app_id
    assert len(query["state"]) >= 32
    digest = hashlib.sha256(attempt["verifier"].encode()).digest()
    assert query["code_challenge"] == base64.urlsafe_b64encode(digest).decode().rstrip("=")
    assert query["code_challenge_method"] == "S256"
    assert "redirect_state" not in query
    assert "client_secret" not in query


def test_two_tenants_get_their_own_apps_client_id_from_the_same_backend(
        alice, bob, settings):
    settings.SOCIAL_AUTH_GOOGLE_OAUTH2_KEY = "the-deployments-key"  # never used
    alices = _app(alice, "gmail", "alice-client.apps.googleusercontent.com")
    bobs = _app(bob, "gmail", "bob-client.apps.googleusercontent.com",
                redirectUrl="https://bob.example/cb?tenant=bob&x=1")
    seen = []
    for fixture, app in ((alice, alices), (bob, bobs), (alice, alices)):
        _, query, _ = _start(fixture, app)
        seen.append((query["client_id"], query["redirect_uri"]))
    assert seen == [("alice-client.apps.googleusercontent.com", REDIRECT_URI),
                    ("bob-client.apps.googleusercontent.com",
                     "https://bob.example/cb?tenant=bob&x=1"),
                    ("alice-client.apps.googleusercontent.com", REDIRECT_URI)]


@pytest.mark.usefixtures("allow_http")
@pytest.mark.parametrize("provider_name", sorted(EXPECTED))
def test_a_code_exchange_through_the_backend_stores_the_mailboxs_tokens(
        alice, client, provider, provider_name, monkeypatch):
    def not_flow(*args, **kwargs):
        raise AssertionError("the generic flow was used")

    monkeypatch.setattr(flow, "exchange_code", not_flow)
    provider.sign_in_as = f"ann.{provider_name}@example.com"
    basic_before, issued_before = provider.basic_auth_requests, len(provider.issued_tokens)
    app = _local_app(alice, provider_name, provider)
    link = make_link(alice, account="box", expectedEmail=provider.sign_in_as, type=app.app_id)

    done = connect_through_link(client, link)

    assert done.status_code == 302, done.content
    account = EmailAccount.objects.get(tenant=alice.tenant, account_id="box")
    assert account.email == provider.sign_in_as  # from the id_token of the token answer
    assert account.oauth2["provider"] == provider_name
    assert account.oauth2["app"] == app.app_id
    access, refresh = provider.issued_tokens[issued_before:]
    assert credentials.get_credential(account, "oauth2.accessToken") == access
    assert credentials.get_credential(account, "oauth2.refreshToken") == refresh
    # Yahoo's backend sends the client credentials in HTTP Basic; the others in the form.
    assert provider.basic_auth_requests - basic_before == (provider_name == "yahoo")


@pytest.mark.usefixtures("allow_http")
@pytest.mark.parametrize("provider_name", sorted(EXPECTED))
def test_a_refresh_through_the_backend_keeps_the_refresh_token_and_reports_a_revoked_grant(
        alice, provider, provider_name):
    provider.sign_in_as = "ann@example.com"
    app = _local_app(alice, provider_name, provider)
    refresh = provider._issue("ann@example.com")["refresh_token"]
    calls = provider.refresh_calls

    tokens = social.refresh_tokens(app, refresh, allow_http=True)

    assert provider.refresh_calls == calls + 1
    assert tokens.access_token == provider.issued_tokens[-2]
    assert tokens.refresh_token == refresh
    assert tokens.email == "ann@example.com"
    provider.revoke_refresh_tokens()
    with pytest.raises(flow.InvalidGrant) as caught:
        social.refresh_tokens(app, refresh, allow_http=True)
    assert caught.value.code == "invalid_grant"
    assert refresh not in str(caught.value)


@pytest.mark.usefixtures("allow_http")
def test_no_secret_code_or_verifier_appears_in_errors_or_logs(alice, provider, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = _local_app(alice, "gmail", provider, clientSecret="Wrong-Secret-xyz")
    args = dict(code="code-Do-Not-Show", state="st", redirect_uri=REDIRECT_URI,
                verifier="Verifier-Do-Not-Show", allow_http=True)
    with pytest.raises(flow.OAuth2Error) as refused:
        social.exchange_code(wrong, **args)
    assert refused.value.code == "invalid_client"

    gone = _app(alice, "outlook", "c1", clientSecret="Other-Secret-abc",
                tokenUrl="http://127.0.0.1:9/token")
    with pytest.raises(flow.OAuth2Error) as unreachable:
        social.exchange_code(gone, **args)
    assert unreachable.value.code == "ProviderUnreachable"

    texts = [str(refused.value), str(unreachable.value),
             *(record.getMessage() for record in caplog.records)]
    for text in texts:
        for secret in ("Wrong-Secret-xyz", "Other-Secret-abc", "code-Do-Not-Show",
                       "Verifier-Do-Not-Show"):
            assert secret not in text


@pytest.mark.parametrize("url", ["https://127.0.0.1:9/token", "https://10.1.2.3/token"])
def test_a_token_url_inside_our_network_is_refused_before_the_backend_sends_anything(
        alice, url, monkeypatch):
    def no_request(*args, **kwargs):
        raise AssertionError("a request was sent")

    monkeypatch.setattr(social.GoogleAppBackend, "request", no_request)
    app = _app(alice, "gmail", "c2", tokenUrl=url)
    with pytest.raises(flow.OAuth2Error) as caught:
        social.exchange_code(app, "code", "st", REDIRECT_URI, "verifier", allow_http=False)
    assert caught.value.code == "InvalidEndpoint"


def test_the_backend_refuses_a_callback_for_another_state(alice):
    app = _app(alice, "yahoo", "c3")
    backend = social.backend_for(app, REDIRECT_URI, "our-state",
                                 data={"code": "c", "state": "their-state"}, verifier="v")
    with pytest.raises(SocialAuthBaseException) as caught:
        backend.auth_complete()
    assert caught.value.code == "state_mismatch"
