"""Sending from an OAuth2 mailbox: AUTH with the access token, over XOAUTH2 where the server
offers it and the standard OAUTHBEARER (RFC 7628) where it offers only that. The aiosmtpd test
server judges tokens by asking the test OAuth2 provider (its introspection), so a token the
provider never issued is refused the way Gmail refuses one: a 334 JSON challenge, then 535.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from accounts import services
from mailboxes import connection_settings, sending, smtp
from mailboxes.models import OutboxEntry
from tests.accounts.test_auth_server import AuthHttpServer
from tests.mailboxes.sending_helpers import queue
from tests.servers.smtp import SmtpServer

pytestmark = pytest.mark.django_db(transaction=True)

SENDER = "sender@example.test"
BAD_TOKEN = "at-never-issued-by-the-provider-3f9c"


@pytest.fixture(scope="module")
def bearer_smtp(provider):
    server = SmtpServer().start()
    server.check_tokens_with(lambda token: provider.introspect(token).get("username"))
    yield server
    server.stop()


@pytest.fixture
def fresh_smtp(bearer_smtp):
    bearer_smtp.clear()
    bearer_smtp.logins.clear()
    return bearer_smtp


def _oauth_account(tenant, server: SmtpServer, token: str):
    """A mailbox signed in with OAuth2 whose stored access token is ``token`` (valid for an
    hour, so it is used as it is: no refresh, no app needed)."""
    expires = datetime.now(timezone.utc) + timedelta(hours=1)
    return services.register_account(tenant, {
        "account": "oauthsender", "email": SENDER, "copy": False,
        "smtp": {"host": server.host, "port": server.port, "secure": False,
                 "auth": {"user": SENDER}, "tls": {"rejectUnauthorized": False}},
        "oauth2": {"app": "smtp-test", "provider": "generic", "expires": expires.isoformat(),
                   "accessToken": token, "refreshToken": "rt-not-used-here"},
    })


@pytest.mark.parametrize("offered, used", [
    (("XOAUTH2",), "XOAUTH2"),
    (("OAUTHBEARER",), "OAUTHBEARER"),
    (("PLAIN", "LOGIN", "OAUTHBEARER"), "OAUTHBEARER"),
    (("OAUTHBEARER", "XOAUTH2"), "XOAUTH2"),
])
def test_it_sends_with_a_valid_token_over_the_offered_bearer_mechanism(
        alice, provider, fresh_smtp, offered, used):
    fresh_smtp.offer(*offered)
    token = provider._issue(SENDER)["access_token"]
    entry = queue(_oauth_account(alice.tenant, fresh_smtp, token))

    assert sending.send_entry(entry.pk) == "sent"
    [received] = fresh_smtp.wait_for_messages(1)
    assert received.auth_user == SENDER
    assert fresh_smtp.logins == [(used, SENDER, True)]


@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
def test_a_refused_token_is_a_permanent_auth_failure_that_never_shows_the_token(
        alice, fresh_smtp, settings, mechanism):
    settings.SEND_RETRY_SCHEDULE = [0, 0, 0]
    settings.SEND_AUTH_ATTEMPTS = 2
    fresh_smtp.offer(mechanism)
    entry = queue(_oauth_account(alice.tenant, fresh_smtp, BAD_TOKEN))

    with pytest.raises(sending.SendFailure) as caught:
        sending.transmit(entry)
    failure = caught.value
    assert failure.auth
    assert failure.permanent
    assert failure.code == smtp.SmtpAuthenticationFailed.code
    assert failure.response_code == 535
    assert fresh_smtp.logins == [(mechanism, SENDER, False)]
    assert BAD_TOKEN not in repr(failure.as_dict())

    # Through the job: an auth failure gets SEND_AUTH_ATTEMPTS tries, then fails for good.
    assert [sending.send_entry(entry.pk) for _ in range(3)] == ["retry", "failed", "skipped"]
    row = OutboxEntry.objects.get(pk=entry.pk)
    assert row.state == OutboxEntry.State.FAILED
    assert row.last_error["code"] == "AuthenticationFailed"
    assert row.last_error["responseCode"] == 535
    assert BAD_TOKEN not in repr(row.last_error)
    assert fresh_smtp.messages == []


def test_an_expired_token_is_refused_too(alice, provider, fresh_smtp):
    """The server asks the provider each time: a token it has expired no longer logs in."""
    fresh_smtp.offer("OAUTHBEARER")
    token = provider._issue(SENDER)["access_token"]
    settings_ = connection_settings.smtp_settings_from(
        {"host": fresh_smtp.host, "port": fresh_smtp.port, "secure": False,
         "auth": {"user": SENDER}, "tls": {"rejectUnauthorized": False}}, access_token=token)
    smtp.connect(settings_).quit()
    provider.expire_access_tokens()
    with pytest.raises(smtp.SmtpAuthenticationFailed) as caught:
        smtp.connect(settings_)
    assert caught.value.response_code == 535
    assert token not in str(caught.value)
    assert [ok for _, _, ok in fresh_smtp.logins] == [True, False]


def test_an_oauth2_mailbox_with_an_auth_server_sends_with_the_token_it_gives(
        alice, provider, fresh_smtp):
    """``oauth2.useAuthServer``: no token is kept; the send asks the authentication server
    (``proto=smtp``) and logs in with the token it gives."""
    auth_http = AuthHttpServer()
    try:
        assert alice.client.post("/v1/settings", {"authServer": auth_http.url()},
                                 format="json").status_code == 200
        fresh_smtp.offer("XOAUTH2")
        auth_http.answer = (200, {"user": SENDER,
                                  "accessToken": provider._issue(SENDER)["access_token"]})
        account = services.register_account(alice.tenant, {
            "account": "oauthsender", "email": SENDER, "copy": False,
            "smtp": {"host": fresh_smtp.host, "port": fresh_smtp.port, "secure": False,
                     "auth": {"user": SENDER}, "tls": {"rejectUnauthorized": False}},
            "oauth2": {"app": "smtp-test", "provider": "generic", "useAuthServer": True}})
        entry = queue(account)
        assert sending.send_entry(entry.pk) == "sent"
        assert fresh_smtp.logins == [("XOAUTH2", SENDER, True)]
        assert [r["query"]["proto"] for r in auth_http.requests] == [["smtp"]]
    finally:
        auth_http.stop()
