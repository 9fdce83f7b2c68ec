"""OAuth2 mailboxes end to end, without the internet: a test provider (authorize, token,
introspection on loopback), a Dovecot that checks bearer tokens through its introspection, a
generic OAuth2 app pointing at both, and the hosted connect link clicked through with plain
HTTP requests. The worker's connection steps run in the test thread against the real servers.
"""

from __future__ import annotations

import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from accounts import credentials, mail_proxy
from accounts.models import Credential, EmailAccount
from accounts.oauth2 import links, refresh
from mailboxes.models import Message
from mailboxes.worker.connection import AccountConnection, Idle, Retry
from tests.accounts.oauth2_helpers import (
    connect_through_link,
    create_app,
    local,
    make_link,
    provider_sign_in,
)
from tests.mailboxes.helpers import events_of
from tests.servers import seed
from webhooks import account_webhooks, subscriptions
from webhooks.models import WebhookSubscription

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("allow_http")]


def _connect(alice, client, provider, oauth_dovecot, oauth_user, account="oauthbox"):
    app = create_app(alice, provider, oauth_dovecot)
    link = make_link(alice, account=account, expectedEmail=oauth_user.username, type=app)
    done = connect_through_link(client, link)
    assert done.status_code == 302, done.content
    return app, EmailAccount.objects.get(tenant=alice.tenant, account_id=account), done["Location"]


def _start(account) -> tuple[AccountConnection, object]:
    conn = AccountConnection(account.pk, threading.Event())
    return conn, conn.start()


def test_the_hosted_link_creates_a_mailbox_that_syncs_over_xoauth2(
        alice, client, provider, oauth_dovecot, oauth_user):
    seed.seed_mailbox(oauth_user, messages=seed.build_messages()[:3])
    app, account, target = _connect(alice, client, provider, oauth_dovecot, oauth_user)

    parts = urlsplit(target)
    assert target.startswith("https://app.example.test/connected?")
    assert parse_qs(parts.query) == {"from": ["test"], "account": ["oauthbox"],
                                     "state": ["new"]}
    assert account.email == oauth_user.username
    assert account.oauth2["app"] == app
    assert "accessToken" not in account.oauth2
    assert account.imap["auth"] == {"user": oauth_user.username}
    names = set(Credential.objects.filter(email_account=account).values_list("name", flat=True))
    assert names == {"oauth2.accessToken", "oauth2.refreshToken"}
    assert len(events_of(account, "accountAdded")) == 1

    before = provider.introspections
    conn, outcome = _start(account)
    try:
        assert isinstance(outcome, Idle), EmailAccount.objects.get(pk=account.pk).last_error
        assert EmailAccount.objects.get(pk=account.pk).state == "connected"
        assert Message.objects.filter(email_account=account).count() == 3
        assert provider.introspections > before  # Dovecot checked our bearer token
        assert provider.refresh_calls == 0  # a fresh token is used as it is
    finally:
        conn.close()


def test_a_link_made_without_a_type_lets_the_user_choose_and_sign_in_with_an_app(
        alice, bob, client, provider, oauth_dovecot, oauth_user):
    """EmailEngine's ``type`` is optional: the page then offers the password form and a
    sign-in button for each of the tenant's apps; the button chosen signs in with that app.
    Another tenant's app cannot be chosen through the link."""
    other = create_app(bob, provider, oauth_dovecot)
    app = create_app(alice, provider, oauth_dovecot)
    link = make_link(alice, account="chosen", expectedEmail=oauth_user.username)
    page = client.get(local(link)).content.decode()
    assert 'id="connect-form"' in page  # the password form
    hrefs = dict(re.findall(r'id="sign-in-([^"]+)"[^>]*href="([^"]+)"', page))
    assert list(hrefs) == [app]
    foreign = client.get(hrefs[app].replace("&amp;", "&").replace(f"app={app}", f"app={other}"))
    assert foreign.status_code == 400
    start = client.get(hrefs[app].replace("&amp;", "&"))
    assert start.status_code == 302, start.content
    done = client.get(local(provider_sign_in(start["Location"])))
    assert done.status_code == 302, done.content
    account = EmailAccount.objects.get(tenant=alice.tenant, account_id="chosen")
    assert account.oauth2["app"] == app


def test_tokens_registered_through_the_api_make_a_mailbox_that_syncs_over_xoauth2(
        alice, provider, oauth_dovecot, oauth_user):
    """EmailEngine's ``POST /v1/account`` with ``oauth2`` (tokens the caller got itself): the
    app's servers, the tokens sealed and never shown, and the worker signs in with them."""
    seed.seed_mailbox(oauth_user, messages=seed.build_messages()[:2])
    app = create_app(alice, provider, oauth_dovecot)
    tokens = provider._issue(oauth_user.username)
    answer = alice.client.post("/v1/account", {
        "account": "apibox", "name": "Registered with tokens",
        "oauth2": {"provider": app, "auth": {"user": oauth_user.username},
                   "accessToken": tokens["access_token"], "refreshToken": tokens["refresh_token"],
                   "expires": "2099-01-01T00:00:00Z"}}, format="json")
    assert answer.json() == {"account": "apibox", "state": "new"}
    account = EmailAccount.objects.get(account_id="apibox")
    assert account.email == oauth_user.username
    assert account.imap["host"] == oauth_dovecot.host
    names = set(Credential.objects.filter(email_account=account).values_list("name", flat=True))
    assert names == {"oauth2.accessToken", "oauth2.refreshToken"}
    shown = alice.client.get("/v1/account/apibox").json()
    assert tokens["access_token"] not in str(shown)
    assert tokens["refresh_token"] not in str(shown)
    assert shown["oauth2"]["provider"] == app
    conn, outcome = _start(account)
    try:
        assert isinstance(outcome, Idle), EmailAccount.objects.get(pk=account.pk).last_error
        assert Message.objects.filter(email_account=account).count() == 2
        assert provider.refresh_calls == 0  # the given access token was used as it is
    finally:
        conn.close()


def test_authorize_true_answers_the_providers_page_and_the_sign_in_registers_the_mailbox(
        alice, client, provider, oauth_dovecot, oauth_user):
    """EmailEngine's ``oauth2.authorize``: nothing is registered until the user signs in at
    the provider; then the mailbox is, as through a connect link, and the browser goes to
    ``redirectUrl``."""
    app = create_app(alice, provider, oauth_dovecot)
    answer = alice.client.post("/v1/account", {
        "account": "authz", "name": "Authorized", "expectedEmail": oauth_user.username,
        "oauth2": {"provider": app, "authorize": True,
                   "redirectUrl": "https://app.example.test/back?x=1"}}, format="json")
    assert answer.status_code == 200, answer.json()
    assert set(answer.json()) == {"redirect"}
    assert answer.json()["redirect"].startswith(provider.base_url)
    assert not EmailAccount.objects.filter(account_id="authz").exists()
    done = client.get(local(provider_sign_in(answer.json()["redirect"])))
    assert done.status_code == 302, done.content
    assert parse_qs(urlsplit(done["Location"]).query) == {
        "x": ["1"], "account": ["authz"], "state": ["new"]}
    account = EmailAccount.objects.get(tenant=alice.tenant, account_id="authz")
    assert (account.name, account.email, account.oauth2["app"]) == (
        "Authorized", oauth_user.username, app)
    assert alice.client.get("/v1/account/authz").json()["expectedEmail"] == \
        oauth_user.username.lower()


def test_authorize_carries_the_accounts_other_settings_sealed_through_the_sign_in(
        alice, client, provider, oauth_dovecot, oauth_user, redis_db, settings):
    """EmailEngine keeps the whole registration of an ``oauth2.authorize`` request and saves
    it once the user has signed in: so do we, sealed meanwhile (a proxy's and a webhook's
    passwords are among it), with the account's own webhook subscription made as ``POST
    /v1/account`` makes it."""
    settings.WEBHOOKS_ALLOW_PRIVATE = True  # the receiver's address: loopback
    app = create_app(alice, provider, oauth_dovecot)
    answer = alice.client.post("/v1/account", {
        "account": "authz", "path": ["INBOX", "Archive"], "copy": False, "logs": True,
        "notifyFrom": "2025-01-02T03:04:05.000Z", "locale": "de", "tz": "Europe/Berlin",
        "proxy": "socks5://proxyuser:Pr0xy-s3cret@127.0.0.1:1080",
        "webhooks": "http://hookuser:H00k-s3cret@127.0.0.1:9/in",
        "webhooksCustomHeaders": [{"key": "X-Token", "value": "H3ader-s3cret"}],
        "oauth2": {"provider": app, "authorize": True}}, format="json")
    assert answer.status_code == 200, answer.json()
    assert not EmailAccount.objects.filter(account_id="authz").exists()
    [state_key] = redis_db.keys("*connect-state:*")  # the link waits there for the sign-in
    attempt = json.loads(redis_db.get(state_key))
    held = json.dumps(links.read(attempt["data"], attempt["sig"]))
    assert "settings" in held
    for secret in ("Pr0xy-s3cret", "H00k-s3cret", "H3ader-s3cret", "Europe/Berlin"):
        assert secret not in held  # sealed

    done = client.get(local(provider_sign_in(answer.json()["redirect"])))

    assert done.status_code == 302, done.content
    shown = alice.client.get("/v1/account/authz").json()
    assert (shown["path"], shown["copy"], shown["logs"]) == (["INBOX", "Archive"], False, True)
    assert datetime.fromisoformat(shown["notifyFrom"]) == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert (shown["locale"], shown["tz"]) == ("de", "Europe/Berlin")
    assert shown["proxy"] == "socks5://proxyuser:******@127.0.0.1:1080"
    account = EmailAccount.objects.get(account_id="authz")
    assert account.oauth2["app"] == app
    assert mail_proxy.account_proxy(account).password == "Pr0xy-s3cret"
    subscription = WebhookSubscription.objects.get(pk=account.webhook_subscription)
    assert subscription is not None
    assert subscriptions.url_password_of(subscription) == "H00k-s3cret"
    assert subscriptions.headers_of(subscription) == {"X-Token": "H3ader-s3cret"}


def test_a_webhook_that_cannot_be_made_after_the_sign_in_still_lets_the_user_through(
        alice, client, provider, oauth_dovecot, oauth_user, settings, monkeypatch, caplog):
    """The account is saved and the link spent when its webhook subscription is made: a
    failure then is logged, and the browser still goes on with the saved account."""
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    app = create_app(alice, provider, oauth_dovecot)
    answer = alice.client.post("/v1/account", {
        "account": "authz", "webhooks": "http://127.0.0.1:9/in",
        "oauth2": {"provider": app, "authorize": True,
                   "redirectUrl": "https://app.example.test/back"}}, format="json")

    def broken(*args, **kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr(account_webhooks, "follow_account_webhook", broken)
    done = client.get(local(provider_sign_in(answer.json()["redirect"])))

    assert done.status_code == 302, done.content
    assert done["Location"].startswith("https://app.example.test/back?")
    assert EmailAccount.objects.get(account_id="authz").webhooks == "http://127.0.0.1:9/in"
    assert "its webhook subscription was not made" in caplog.text


def test_authorize_refuses_a_masked_webhook_password_before_the_sign_in(
        alice, provider, oauth_dovecot, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    app = create_app(alice, provider, oauth_dovecot)
    answer = alice.client.post("/v1/account", {
        "account": "authz", "webhooks": "http://hookuser:******@127.0.0.1:9/in",
        "oauth2": {"provider": app, "authorize": True}}, format="json")
    assert answer.status_code == 400, answer.json()
    assert "webhooks" in answer.json()["details"]


@pytest.mark.parametrize("body,field", [
    ({"imap": {"host": "imap.example.test", "port": 993, "auth": {"user": "u", "pass": "p"}}}, "imap"),
    ({"smtp": {"host": "smtp.example.test", "port": 465, "auth": {"user": "u", "pass": "p"}}}, "smtp"),
    ({"oauth2": {"refreshToken": "rt"}}, "oauth2.refreshToken"),
    ({"oauth2": {"redirectUrl": "javascript:alert(1)"}}, "oauth2.redirectUrl"),
    ({"oauth2": {"authorize": False, "redirectUrl": "https://app.example.test/"}},
     "oauth2.redirectUrl"),
])
def test_authorize_refuses_servers_tokens_and_bad_redirects(alice, provider, oauth_dovecot, body, field):
    app = create_app(alice, provider, oauth_dovecot)
    oauth2 = {"provider": app, "authorize": True, "auth": {"user": "u@example.test"},
              **body.pop("oauth2", {})}
    answer = alice.client.post("/v1/account", {"account": "authz", "oauth2": oauth2, **body},
                               format="json")
    assert answer.status_code == 400, answer.json()
    assert field in answer.json()["details"], answer.json()
    assert not EmailAccount.objects.filter(account_id="authz").exists()


def test_authorize_refuses_now_what_the_registration_would_refuse(
        alice, provider, oauth_dovecot):
    """An existing id with upsert=false (409), a plan with no room (403): answered before the
    user is sent to sign in, and nothing changes."""
    from accounts.models import Tenant
    from tests.base import account_payload

    app = create_app(alice, provider, oauth_dovecot)
    alice.client.post("/v1/account", account_payload("taken"), format="json")
    body = {"oauth2": {"provider": app, "authorize": True}}
    taken = alice.client.post("/v1/account?upsert=false", {"account": "taken", **body},
                              format="json")
    assert (taken.status_code, taken.json()["code"]) == (409, "AlreadyExists")
    assert alice.client.post("/v1/account", {"account": "taken", **body},
                             format="json").status_code == 200  # upsert: signs it in again
    Tenant.objects.filter(pk=alice.tenant.pk).update(max_mailboxes=1)
    full = alice.client.post("/v1/account", {"account": "new-one", **body}, format="json")
    assert (full.status_code, full.json()["code"]) == (403, "PlanLimit")
    assert EmailAccount.objects.get(account_id="taken").oauth2 is None


def test_authorize_with_an_unknown_app_is_refused(alice):
    answer = alice.client.post("/v1/account", {
        "account": "authz", "oauth2": {"provider": "nope", "authorize": True}}, format="json")
    assert (answer.status_code, answer.json()["emailapiCode"]) == (400, "OAuth2AppNotFound")


@pytest.mark.parametrize("oauth2,code", [
    ({"provider": "no-such-app", "auth": {"user": "u@example.test"}, "refreshToken": "rt"},
     (400, "OAuth2AppNotFound")),  # a body naming what is not there, as a link's type
    ({"provider": "APP", "auth": {"user": "u@example.test"}}, (400, "InputValidationError")),
    ({"provider": "APP", "refreshToken": "rt"}, (400, "InputValidationError")),
])
def test_a_bad_oauth2_registration_is_refused_and_registers_nothing(
        alice, provider, oauth_dovecot, oauth2, code):
    app = create_app(alice, provider, oauth_dovecot)
    oauth2 = {**oauth2, "provider": app} if oauth2["provider"] == "APP" else oauth2
    answer = alice.client.post("/v1/account", {"account": "apibox", "oauth2": oauth2},
                               format="json")
    body = answer.json()  # our code; EmailEngine's, where it has one, is "code"
    assert (answer.status_code, body.get("emailapiCode") or body["code"]) == code, body
    assert not EmailAccount.objects.filter(account_id="apibox").exists()


def test_an_expiring_token_is_refreshed_before_login_and_no_mail_is_missed(
        alice, client, provider, oauth_dovecot, oauth_user, settings):
    _, account, _ = _connect(alice, client, provider, oauth_dovecot, oauth_user)
    conn, outcome = _start(account)
    assert isinstance(outcome, Idle)
    conn.close()
    [uid] = seed.seed_mailbox(oauth_user, messages=[seed.make_message(subject="While away")])

    provider.expire_access_tokens()  # an hour passes: the old token is dead at the server
    settings.EMAILAPI_OAUTH2_REFRESH_MARGIN = 7200  # ...and by our clock it is due
    old = credentials.get_credential(account, "oauth2.accessToken")
    conn, outcome = _start(account)
    try:
        assert isinstance(outcome, Idle), EmailAccount.objects.get(pk=account.pk).last_error
        assert provider.refresh_calls == 1
        assert credentials.get_credential(account, "oauth2.accessToken") != old
        new = events_of(account, "messageNew")
        assert [(e.data["uid"], e.data["subject"]) for e in new] == [(uid, "While away")]
        assert not events_of(account, "authenticationError")
    finally:
        conn.close()


def test_a_token_the_server_refuses_early_is_refreshed_once_and_login_retried(
        alice, client, provider, oauth_dovecot, oauth_user):
    _, account, _ = _connect(alice, client, provider, oauth_dovecot, oauth_user)
    provider.expire_access_tokens()  # revoked early; our stored expiry still says fine
    conn, outcome = _start(account)
    try:
        assert isinstance(outcome, Idle), EmailAccount.objects.get(pk=account.pk).last_error
        assert provider.refresh_calls == 1
    finally:
        conn.close()


def test_concurrent_refreshes_ask_the_provider_once(
        alice, client, provider, oauth_dovecot, oauth_user, settings):
    _, account, _ = _connect(alice, client, provider, oauth_dovecot, oauth_user)
    settings.EMAILAPI_OAUTH2_REFRESH_MARGIN = 3599 + 1800  # due now, fresh after one refresh
    provider.access_ttl = 7200
    calls_before = provider.refresh_calls

    def get_token(_):
        from django.db import connections

        try:
            return refresh.access_token(EmailAccount.objects.get(pk=account.pk))
        finally:
            connections.close_all()

    with ThreadPoolExecutor(6) as pool:
        tokens = set(pool.map(get_token, range(6)))
    assert provider.refresh_calls - calls_before == 1
    assert len(tokens) == 1


def test_a_revoked_grant_needs_a_new_sign_in_and_a_new_link_restores_the_mailbox(
        alice, client, provider, oauth_dovecot, oauth_user):
    app, account, _ = _connect(alice, client, provider, oauth_dovecot, oauth_user)
    conn, outcome = _start(account)
    assert isinstance(outcome, Idle)
    conn.close()

    provider.revoke_refresh_tokens()
    provider.expire_access_tokens()
    conn, outcome = _start(account)
    assert isinstance(outcome, Retry)
    assert outcome.wake_at - time.monotonic() > 3600
    row = EmailAccount.objects.get(pk=account.pk)
    assert row.state == "authenticationError"
    assert row.last_error["reauthRequired"] is True
    assert row.oauth2["reauthRequired"] is True
    [event] = events_of(account, "authenticationError")
    assert event.data["reauthRequired"] is True
    calls = provider.refresh_calls

    outcome = conn.start()  # retrying asks nobody and raises nothing new
    assert isinstance(outcome, Retry)
    assert provider.refresh_calls == calls
    assert len(events_of(account, "authenticationError")) == 1
    assert alice.client.get("/v1/account/oauthbox").json()["state"] == "authenticationError"
    from mailboxes.command_pool import pool

    pool.close_all()  # a read needing a new connection cannot get a token: 503, not a 500
    search = alice.client.post("/v1/account/oauthbox/search?path=INBOX",
                               {"search": {"seen": False}}, format="json")
    assert search.status_code == 503
    assert search.json()["emailapiCode"] == "MailboxUnavailable"
    assert "ReauthRequired" in search.json()["message"]

    link = make_link(alice, account="oauthbox", type=app)
    done = connect_through_link(client, link)
    assert parse_qs(urlsplit(done["Location"]).query)["state"] == ["existing"]
    row = EmailAccount.objects.get(pk=account.pk)
    assert "reauthRequired" not in row.oauth2
    assert row.config_version > account.config_version
    conn, outcome = _start(row)
    try:
        assert isinstance(outcome, Idle)
        assert EmailAccount.objects.get(pk=account.pk).state == "connected"
        assert len(events_of(account, "authenticationSuccess")) == 2
        assert len(events_of(account, "accountAdded")) == 1
    finally:
        conn.close()


@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER", None])
def test_both_bearer_mechanisms_log_in_to_dovecot(provider, oauth_dovecot, oauth_user, mechanism):
    """XOAUTH2 (Gmail, Outlook) and the standard OAUTHBEARER (RFC 7628) both reach the
    oauth2 passdb; by default XOAUTH2 is used where offered."""
    import ssl

    import imapclient

    from mailboxes.imap.client import bearer_login

    def fresh():
        client = imapclient.IMAPClient(oauth_user.host, port=oauth_user.imap_port, ssl=False)
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        client.starttls(context)
        return client

    token = provider._issue(oauth_user.username)["access_token"]
    client = fresh()
    try:
        bearer_login(client, oauth_user.username, token, mechanism)
        assert client.select_folder("INBOX")[b"EXISTS"] >= 0
    finally:
        client.logout()
    refused = fresh()
    try:
        with pytest.raises(imapclient.exceptions.LoginError):
            bearer_login(refused, oauth_user.username, "at-not-issued", mechanism)
    finally:
        refused.shutdown()
