"""``DELETE /v1/account/{account}?revoke=true`` ends the OAuth2 grant at the provider (RFC 7009)
before the mailbox and its tokens go; ``GET`` shows the ``oauth2`` block without a secret.

The mailbox is connected for real through the hosted link against the loopback test provider,
whose ``/revoke`` invalidates the refresh token: afterwards its token endpoint refuses it.
"""

from __future__ import annotations

import json
import logging

import pytest

from accounts import credentials
from accounts.models import EmailAccount, OAuth2App
from accounts.oauth2 import flow, revoke
from tests.accounts.oauth2_helpers import connect_through_link, create_app, make_link
from tests.servers.net import LOOPBACK, find_free_port

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("allow_http")]


@pytest.fixture
def connected(alice, client, provider, oauth_dovecot, oauth_user):
    """(app id, account, its refresh token) for a mailbox signed in through the link."""
    app = create_app(alice, provider, oauth_dovecot)
    link = make_link(alice, account="oauthbox", expectedEmail=oauth_user.username, type=app)
    assert connect_through_link(client, link).status_code == 302
    account = EmailAccount.objects.get(tenant=alice.tenant, account_id="oauthbox")
    return app, account, credentials.get_credential(account, "oauth2.refreshToken")


def _refresh(provider, refresh_token: str) -> flow.Tokens:
    return flow.refresh_tokens(provider.token_url, provider.client_id, provider.client_secret,
                               refresh_token, allow_http=True)


def _no_secret_in(text: str, provider) -> None:
    for secret in [*provider.issued_tokens, provider.client_secret]:
        assert secret not in text


def test_delete_with_revoke_ends_the_grant_at_the_provider(alice, provider, connected, caplog):
    _, account, refresh_token = connected
    _refresh(provider, refresh_token)  # the grant works before
    before = provider.revocations

    with caplog.at_level(logging.DEBUG):
        response = alice.client.delete("/v1/account/oauthbox?revoke=true")
    assert response.status_code == 200, response.json()
    assert response.json() == {"account": "oauthbox", "deleted": True}
    assert not EmailAccount.objects.filter(pk=account.pk).exists()
    assert provider.revocations == before + 1
    with pytest.raises(flow.InvalidGrant):
        _refresh(provider, refresh_token)
    assert "revoked" in caplog.text
    _no_secret_in(caplog.text + response.content.decode(), provider)


@pytest.mark.parametrize("query", ["", "?revoke=false", "?revoke=0"])
def test_delete_without_revoke_leaves_the_grant(alice, provider, connected, query):
    _, _, refresh_token = connected
    before = provider.revocations
    assert alice.client.delete(f"/v1/account/oauthbox{query}").status_code == 200
    assert provider.revocations == before
    assert _refresh(provider, refresh_token).access_token


def test_an_unreachable_provider_does_not_stop_the_delete(alice, provider, connected, caplog):
    """Best effort: the revocation fails (nothing listens at the app's URLs now), is logged
    without the token, and the mailbox is deleted all the same."""
    app, account, refresh_token = connected
    dead = f"http://{LOOPBACK}:{find_free_port(LOOPBACK)}/oauth2/token"
    assert alice.client.put(f"/v1/oauth2/{app}", {"tokenUrl": dead},
                            format="json").status_code == 200

    with caplog.at_level(logging.INFO):
        response = alice.client.delete("/v1/account/oauthbox?revoke=true")
    assert response.status_code == 200
    assert not EmailAccount.objects.filter(pk=account.pk).exists()
    assert "revoking the OAuth2 grant" in caplog.text
    assert "failed" in caplog.text
    _no_secret_in(caplog.text, provider)
    assert _refresh(provider, refresh_token).access_token  # the real grant was never touched


def test_revoke_on_a_password_mailbox_just_deletes(alice):
    body = {"account": "plain", "imap": {"host": "imap.example.test", "port": 993,
                                         "secure": True, "auth": {"user": "u", "pass": "p"}}}
    assert alice.client.post("/v1/account", body, format="json").status_code == 200
    assert alice.client.get("/v1/account/plain").json()["oauth2"] is None
    assert alice.client.delete("/v1/account/plain?revoke=true").status_code == 200
    assert not EmailAccount.objects.filter(account_id="plain").exists()


@pytest.mark.parametrize("value", ["maybe", "2", "yes%20please", "true,false"])
def test_a_bad_revoke_value_is_a_400_and_deletes_nothing(alice, value):
    body = {"account": "plain", "imap": {"host": "imap.example.test", "port": 993,
                                         "secure": True, "auth": {"user": "u", "pass": "p"}}}
    alice.client.post("/v1/account", body, format="json")
    response = alice.client.delete(f"/v1/account/plain?revoke={value}")
    assert response.status_code == 400
    error = response.json()
    assert set(error) >= {"statusCode", "error", "message", "code"}
    assert error["statusCode"] == 400
    assert "revoke" in json.dumps(error)
    assert EmailAccount.objects.filter(account_id="plain").exists()


def test_get_shows_the_oauth2_block_and_no_token_or_secret(alice, provider, connected,
                                                           oauth_user):
    app, account, _ = connected
    response = alice.client.get("/v1/account/oauthbox")
    assert response.status_code == 200
    block = response.json()["oauth2"]
    assert block == {"provider": app, "auth": {"user": oauth_user.username},
                     "expires": account.oauth2["expires"], "scopes": ["mail", "openid", "email"],
                     "scope": ["mail", "openid", "email"],  # EmailEngine's spelling
                     "accessToken": "******", "refreshToken": "******"}  # EmailEngine's mask
    _no_secret_in(response.content.decode(), provider)


def test_revocation_urls_by_provider():
    def app(provider, token_url=""):
        return OAuth2App(provider=provider, token_url=token_url)

    assert revoke.revocation_url(app("gmail")) == "https://oauth2.googleapis.com/revoke"
    assert revoke.revocation_url(app("outlook")) is None
    assert revoke.revocation_url(app("yahoo")) is None
    assert revoke.revocation_url(app("generic", "https://idp.example/o/token?x=1")) == \
        "https://idp.example/o/revoke"
