"""Hosted connect links: signed (a changed ``data`` or ``sig`` is refused), time-limited,
single-use; the IMAP password form tests the servers before saving; ``expectedEmail``
refuses another address; and no secret or token shows up in a response, page or log line."""

from __future__ import annotations

import base64
import json
import logging
import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from accounts import credentials
from accounts.models import Credential, EmailAccount
from tests.accounts.oauth2_helpers import (
    REDIRECT,
    connect_through_link,
    create_app,
    local,
    make_link,
    provider_sign_in,
)
from webhooks.models import Event

pytestmark = pytest.mark.django_db


def _query(url: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_link_requests_are_validated(alice, bob):
    api = alice.client
    for body, code in (
        ({"type": "gmail", "redirectUrl": REDIRECT}, "OAuth2AppNotFound"),  # no gmail app
        ({"type": "imap", "redirectUrl": "javascript:alert(1)"}, "InputValidationError"),
        ({"type": "imap"}, "InputValidationError"),
        ({"type": "imap", "redirectUrl": REDIRECT, "account": ".."}, "InputValidationError"),
        ({"type": "imap", "redirectUrl": REDIRECT, "extra": 1}, "InputValidationError"),
    ):
        response = api.post("/v1/authentication/form", body, format="json")
        assert response.status_code == 400, body
        assert response.json()["code"] == code, body
    bob.client.post("/v1/oauth2", {"app": "bobs", "provider": "gmail", "clientId": "x",
                                   "clientSecret": "y"}, format="json")
    response = api.post("/v1/authentication/form",
                        {"type": "bobs", "redirectUrl": REDIRECT}, format="json")
    assert response.json()["code"] == "OAuth2AppNotFound"  # another tenant's app: unknown
    url = make_link(alice, type="imap", email="ann@gmail.com")
    assert url.startswith("http://testserver/connect?data=")
    assert "&sig=" in url


def test_a_changed_data_or_sig_is_refused(alice, client):
    url = make_link(alice, type="imap", account="mine")
    query = _query(url)
    payload = json.loads(base64.urlsafe_b64decode(query["data"] + "=="))
    payload["account"] = "theirs"
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    for data, sig in ((forged, query["sig"]), (query["data"], query["sig"][:-2] + "AA"),
                      (query["data"], ""), ("", "")):
        page = client.get("/connect", {"data": data, "sig": sig})
        assert page.status_code == 400
        assert b'id="error"' in page.content
        assert client.get("/connect/oauth2/start", {"data": data, "sig": sig}).status_code == 400
    assert client.get(local(url)).status_code == 200


def test_an_expired_link_is_refused(alice, client, settings):
    settings.EMAILAPI_CONNECT_LINK_TTL = -1
    page = client.get(local(make_link(alice, type="imap")))
    assert page.status_code == 410
    assert b"expired" in page.content


@pytest.mark.django_db(transaction=True)
def test_the_password_form_tests_the_servers_then_saves_once(alice, client, mail_user):
    url = make_link(alice, type="imap", account="pw", email=mail_user.username, name="PW")
    page = client.get(local(url))
    assert page.status_code == 200
    assert b'name="password"' in page.content
    form = {"email": mail_user.username, "password": "wrong-password", "imap_host": "127.0.0.1",
            "imap_port": mail_user.imap_port, "allow_untrusted": "on"}
    refused = client.post(local(url), form)
    assert refused.status_code == 400
    assert b'id="errors"' in refused.content
    assert b"wrong-password" not in refused.content
    assert not EmailAccount.objects.filter(account_id="pw").exists()

    done = client.post(local(url), {**form, "password": mail_user.password})
    assert done.status_code == 302, done.content
    assert _query(done["Location"]) == {"from": "test", "account": "pw", "state": "new"}
    account = EmailAccount.objects.get(tenant=alice.tenant, account_id="pw")
    assert credentials.get_credential(account, "imap.pass") == mail_user.password
    assert account.oauth2 is None
    assert account.name == "PW"
    assert Event.objects.filter(account_id="pw", event="accountAdded").count() == 1
    again = client.post(local(url), {**form, "password": mail_user.password})
    assert again.status_code == 410
    assert b"already used" in again.content
    assert client.get(local(url)).status_code == 410


@pytest.mark.django_db(transaction=True)
def test_a_links_account_settings_are_saved_with_the_account_and_not_readable_in_it(
        alice, client, mail_user):
    """EmailEngine's ``path``, ``notifyFrom`` and ``subconnections`` on
    ``/v1/authentication/form``: the account the link makes has them; the link carries them
    sealed (it is in the end user's hands)."""
    url = make_link(alice, type="imap", account="pw", path=["INBOX", "Work"],
                    notifyFrom="2025-01-02T03:04:05Z", subconnections=["Work"])
    carried = base64.urlsafe_b64decode(_query(url)["data"] + "==").decode()
    assert "Work" not in carried
    form = {"email": mail_user.username, "password": mail_user.password,
            "imap_host": "127.0.0.1", "imap_port": mail_user.imap_port, "allow_untrusted": "on"}

    done = client.post(local(url), form)

    assert done.status_code == 302, done.content
    shown = alice.client.get("/v1/account/pw").json()
    assert (shown["path"], shown["subconnections"]) == (["INBOX", "Work"], ["Work"])
    assert datetime.fromisoformat(shown["notifyFrom"]) == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_settings_too_long_for_a_link_are_a_400_naming_path(alice):
    response = alice.client.post("/v1/authentication/form", {
        "type": "imap", "redirectUrl": REDIRECT,
        "path": [f"Folder {n} " + "x" * 60 for n in range(100)]}, format="json")
    assert response.status_code == 400, response.json()
    assert "path" in response.json()["details"]


@pytest.mark.usefixtures("allow_http")
def test_a_sign_in_as_another_address_is_refused_and_the_link_stays_usable(
        alice, client, provider, oauth_dovecot, oauth_user):
    app = create_app(alice, provider, oauth_dovecot)
    url = make_link(alice, type=app, account="exp", expectedEmail=oauth_user.username)
    provider.sign_in_as = "someone-else@example.test"
    refused = connect_through_link(client, url)
    assert refused.status_code == 400
    assert b"someone-else@example.test" in refused.content
    assert not EmailAccount.objects.filter(account_id="exp").exists()
    provider.sign_in_as = oauth_user.username
    assert connect_through_link(client, url).status_code == 302


@pytest.mark.usefixtures("allow_http")
def test_a_finished_oauth2_link_and_its_callback_cannot_be_replayed(
        alice, client, provider, oauth_dovecot, oauth_user):
    app = create_app(alice, provider, oauth_dovecot)
    url = make_link(alice, type=app)
    page = client.get(local(url))
    start = re.search(r'id="sign-in"[^>]*href="([^"]+)"', page.content.decode()).group(1)
    first = client.get(start.replace("&amp;", "&"))
    second = client.get(start.replace("&amp;", "&"))  # two tabs: two sign-ins started
    assert client.get(local(provider_sign_in(first["Location"]))).status_code == 302
    callback = local(provider_sign_in(second["Location"]))
    late = client.get(callback)
    assert late.status_code == 400
    assert b"already used" in late.content
    assert client.get(callback).status_code == 400  # the state is gone as well
    assert client.get(local(url)).status_code == 410
    assert EmailAccount.objects.filter(tenant=alice.tenant).count() == 1
    declined = client.get("/connect/oauth2/callback?error=access_denied&state=x")
    assert declined.status_code == 400
    assert b"access_denied" in declined.content


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("allow_http")
def test_no_secret_or_token_appears_in_responses_pages_events_or_logs(
        alice, client, provider, oauth_dovecot, oauth_user, caplog, settings):
    from mailboxes.worker.connection import AccountConnection

    caplog.set_level(logging.DEBUG)
    app = create_app(alice, provider, oauth_dovecot)
    url = make_link(alice, type=app, account="leak")
    seen = [client.get(local(url)).content.decode()]
    done = connect_through_link(client, url)
    seen.append(done["Location"])
    account = EmailAccount.objects.get(account_id="leak")
    settings.EMAILAPI_OAUTH2_REFRESH_MARGIN = 7200  # refresh on connect
    conn = AccountConnection(account.pk, __import__("threading").Event())
    conn.start()
    conn.close()
    provider.revoke_refresh_tokens()
    provider.expire_access_tokens()
    conn.start()  # invalid_grant: state, lastError and event are written
    api = alice.client
    for path in ("/v1/oauth2", f"/v1/oauth2/{app}", "/v1/account/leak", "/v1/accounts",
                 "/v1/changes"):
        response = api.get(path)
        assert response.status_code == 200, path
        seen.append(response.content.decode())
    seen.append(json.dumps(list(Event.objects.values("data"))))
    seen.append(json.dumps(list(EmailAccount.objects.values("imap", "smtp", "oauth2",
                                                            "last_error"))))
    seen.append(caplog.text)
    seen += list(Credential.objects.values_list("sealed", flat=True))
    secrets_ = [provider.client_secret, *provider.issued_tokens]
    assert len(provider.issued_tokens) >= 4
    for text in seen:
        for secret in secrets_:
            assert secret not in text
