"""``expectedEmail`` on an account (EmailEngine's identity pin): connect links for a pinned
account sign in only as that address, a link's own ``expectedEmail`` wins and pins the account,
and for OAuth2 only the provider's word counts (``accounts.identity``)."""

from __future__ import annotations

import pytest

from accounts.models import EmailAccount
from tests.accounts.oauth2_helpers import connect_through_link, create_app, local, make_link
from tests.base import account_payload

pytestmark = pytest.mark.django_db


def _pin(alice, account: str) -> str | None:
    return alice.client.get(f"/v1/account/{account}").json()["expectedEmail"]


def test_an_account_keeps_echoes_and_clears_its_pin(alice):
    body = account_payload(expectedEmail="  Sales@Example.COM ")
    assert alice.client.post("/v1/account", body, format="json").status_code == 200
    assert _pin(alice, "sales") == "sales@example.com"
    assert alice.client.put("/v1/account/sales", {"name": "x"}, format="json").status_code == 200
    assert _pin(alice, "sales") == "sales@example.com"  # kept until changed
    assert alice.client.put("/v1/account/sales", {"expectedEmail": None},
                            format="json").status_code == 200
    assert _pin(alice, "sales") is None
    assert alice.client.put("/v1/account/sales", {"expectedEmail": "other@example.com"},
                            format="json").status_code == 200
    assert _pin(alice, "sales") == "other@example.com"
    assert alice.client.put("/v1/account/sales", {"expectedEmail": ""},
                            format="json").status_code == 200
    assert _pin(alice, "sales") is None


def test_a_bad_pin_is_refused_and_changes_nothing(alice):
    alice.client.post("/v1/account", account_payload(), format="json")
    response = alice.client.put("/v1/account/sales", {"expectedEmail": "not an address"},
                                format="json")
    assert response.status_code == 400
    assert "expectedEmail" in response.json()["details"]
    assert _pin(alice, "sales") is None


@pytest.mark.usefixtures("allow_http")
def test_a_link_for_a_pinned_account_refuses_another_oauth2_sign_in(
        alice, client, provider, oauth_dovecot, oauth_user):
    app = create_app(alice, provider, oauth_dovecot)
    alice.client.post("/v1/account", account_payload("pinned", expectedEmail=oauth_user.username),
                      format="json")
    url = make_link(alice, type=app, account="pinned")  # no expectedEmail: the pin applies
    provider.sign_in_as = "someone-else@example.test"
    refused = connect_through_link(client, url)
    assert refused.status_code == 400
    assert f"this link is for {oauth_user.username}".encode() in refused.content
    assert EmailAccount.objects.get(account_id="pinned").oauth2 is None  # nothing saved
    provider.sign_in_as = oauth_user.username
    assert connect_through_link(client, url).status_code == 302
    assert EmailAccount.objects.get(account_id="pinned").oauth2["provider"]


@pytest.mark.usefixtures("allow_http")
def test_a_links_own_expectation_wins_and_pins_the_account(
        alice, client, provider, oauth_dovecot, oauth_user):
    app = create_app(alice, provider, oauth_dovecot)
    alice.client.post("/v1/account", account_payload("moving", expectedEmail="old@example.test"),
                      format="json")
    url = make_link(alice, type=app, account="moving", expectedEmail=oauth_user.username)
    assert connect_through_link(client, url).status_code == 302
    assert _pin(alice, "moving") == oauth_user.username.lower()
    fresh = make_link(alice, type=app, account="new-one", expectedEmail=oauth_user.username)
    assert connect_through_link(client, fresh).status_code == 302
    assert _pin(alice, "new-one") == oauth_user.username.lower()


@pytest.mark.usefixtures("allow_http")
def test_only_the_providers_word_counts_against_an_expectation(
        alice, client, provider, oauth_dovecot, oauth_user):
    app = create_app(alice, provider, oauth_dovecot)
    url = make_link(alice, type=app, account="quiet", email=oauth_user.username,
                    expectedEmail=oauth_user.username)
    provider.sign_in_as = ""  # the provider names nobody; the link's email is only a hint
    refused = connect_through_link(client, url)
    assert refused.status_code == 400
    assert b"did not say which address signed in" in refused.content
    assert not EmailAccount.objects.filter(account_id="quiet").exists()


@pytest.mark.django_db(transaction=True)
def test_the_password_form_of_a_pinned_account_takes_only_that_address(alice, client, mail_user):
    alice.client.post("/v1/account", account_payload("form", expectedEmail="ann@example.test"),
                      format="json")
    url = make_link(alice, type="imap", account="form")
    page = client.get(local(url))
    assert b'value="ann@example.test"' in page.content  # prefilled with the pinned address
    form = {"email": "bob@example.test", "user": mail_user.username,
            "password": mail_user.password, "imap_host": "127.0.0.1",
            "imap_port": mail_user.imap_port, "allow_untrusted": "on"}
    refused = client.post(local(url), form)  # good credentials, another address
    assert refused.status_code == 400
    assert b"this link is for ann@example.test" in refused.content
    assert EmailAccount.objects.get(account_id="form").email == "sales@example.com"
    done = client.post(local(url), {**form, "email": "Ann@Example.test"})
    assert done.status_code == 302, done.content
    assert EmailAccount.objects.get(account_id="form").email == "Ann@Example.test"
