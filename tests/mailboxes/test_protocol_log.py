"""The per-account IMAP/SMTP log (EmailEngine's ``logs``): off by default, kept in Redis with
every secret redacted, served at ``GET /v1/logs/{account}`` to the account's tenant only.

Logins for real, against Dovecot (a password, then an OAuth2 token) and aiosmtpd (AUTH PLAIN,
AUTH LOGIN, XOAUTH2); then every value of every Redis key is searched for the secrets, in
clear and in the base64 forms the SASL exchanges carry them in."""

from __future__ import annotations

import base64
import json
from dataclasses import replace

import pytest

from accounts import services
from mailboxes import connection_settings, protocol_log, smtp
from mailboxes.imap import client as imap
from tests.mailboxes.helpers import register
from tests.servers.smtp import PASSWORD_MECHANISMS


def every_redis_value(redis_db) -> list[bytes]:
    values = []
    for key in redis_db.scan_iter(count=1000):
        kind = redis_db.type(key)
        if kind == b"list":
            values += redis_db.lrange(key, 0, -1)
        elif kind == b"string":
            values.append(redis_db.get(key))
        elif kind == b"hash":
            values += list(redis_db.hgetall(key).values())
        elif kind in (b"set", b"zset"):
            values += list(redis_db.smembers(key) if kind == b"set"
                           else redis_db.zrange(key, 0, -1))
    return values


def forms_of(user: str, secret: str) -> list[bytes]:
    """The secret as it may travel: itself, base64 alone, in SASL PLAIN, XOAUTH2, OAUTHBEARER."""
    blobs = [f"\0{user}\0{secret}", f"user={user}\x01auth=Bearer {secret}\x01\x01",
             secret]
    return [secret.encode()] + [base64.b64encode(blob.encode()) for blob in blobs]


def assert_nowhere(redis_db, user: str, *secrets: str) -> None:
    values = every_redis_value(redis_db)
    assert values, "nothing was logged at all"
    for secret in secrets:
        for form in forms_of(user, secret):
            leaked = [value for value in values if form in value]
            assert not leaked, (secret, leaked[:2])


def messages_of(account) -> list[str]:
    return [entry["msg"] for entry in protocol_log.read(account.pk)]


def imap_session(account) -> None:
    client = imap.connect(connection_settings.account_imap_settings(account))
    client.select_folder("INBOX")
    client.logout()


# --- redaction, line by line (pure) -----------------------------------------------------------


def test_imap_login_and_authenticate_payloads_are_hidden():
    redactor = protocol_log.ImapRedactor(("hunter2-pass",))
    assert redactor.client(b'a1 LOGIN "me@example.com" "hunter2-pass"\r\n') == ["a1 LOGIN ***"]
    assert redactor.server(b"a1 OK Logged in\r\n") == (["a1 OK Logged in"], True)
    assert redactor.client(b"a2 AUTHENTICATE XOAUTH2\r\n") == ["a2 AUTHENTICATE XOAUTH2 ***"]
    assert redactor.server(b"+ eyJzdGF0dXMiOiI0MDEifQ==\r\n") == (["+ ***"], True)
    assert redactor.client(b"dXNlcj1tZQFhdXRoPUJlYXJlciB0b2sBAQ==") == ["***"]
    assert redactor.client(b"\r\n") == []
    assert redactor.server(b"a2 NO [AUTHENTICATIONFAILED] failed\r\n")[0] == [
        "a2 NO [AUTHENTICATIONFAILED] failed"]
    assert redactor.client(b"a3 SELECT INBOX\r\n") == ["a3 SELECT INBOX"]


def test_imap_literals_are_logged_by_size_and_known_secrets_anywhere_are_hidden():
    redactor = protocol_log.ImapRedactor(("hunter2-pass",))
    assert redactor.client(b'a4 APPEND "Sent" {11}\r\n') == ['a4 APPEND "Sent" {11}']
    assert redactor.client(b"Hello world") == ["[11 bytes]"]
    assert redactor.client(b"a5 ID (\"x\" \"hunter2-pass\")\r\n") == ['a5 ID ("x" "***")']


def test_smtp_auth_exchanges_and_message_bodies_are_hidden():
    redactor = protocol_log.SmtpRedactor()
    assert redactor.client(b"AUTH LOGIN bWVAZXhhbXBsZS5jb20=\r\n") == ["AUTH LOGIN ***"]
    assert redactor.server(b"334 UGFzc3dvcmQ6") == (["334 ***"], True)
    assert redactor.client(b"aHVudGVyMg==\r\n") == ["***"]
    assert redactor.server(b"235 2.7.0 Authentication successful") == (
        ["235 2.7.0 Authentication successful"], True)
    assert redactor.client(b"mail FROM:<me@example.com>\r\n") == ["mail FROM:<me@example.com>"]
    assert redactor.server(b"354 End data with <CR><LF>.<CR><LF>")[0] == [
        "354 End data with <CR><LF>.<CR><LF>"]
    assert redactor.client(b"Subject: secret plans\r\n\r\nbody\r\n.\r\n") == [
        "[message, 34 bytes]"]


# --- for real ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_is_off_by_default(alice, mail_user, redis_db):
    account = register(alice.tenant, mail_user)
    assert account.logs is False
    imap_session(account)
    assert redis_db.exists(protocol_log.key(account.pk)) == 0
    response = alice.client.get("/v1/logs/box")
    assert response.status_code == 200
    assert response.content == b""


@pytest.mark.django_db
def test_a_password_login_is_logged_without_the_password(alice, mail_user, redis_db):
    account = register(alice.tenant, mail_user, logs=True)
    imap_session(account)
    lines = messages_of(account)
    assert any(line.endswith(" LOGIN ***") for line in lines)
    assert any(" SELECT " in line for line in lines)
    assert any(line.startswith("* OK") for line in lines)  # the greeting
    assert_nowhere(redis_db, mail_user.username, mail_user.password)


@pytest.mark.django_db
def test_a_non_ascii_password_over_authenticate_plain_is_hidden(alice, dovecot, redis_db):
    user = dovecot.add_user(password="pässwörd-" + "x" * 8)
    account = register(alice.tenant, user, logs=True)
    imap_session(account)
    assert any("AUTHENTICATE PLAIN ***" in line for line in messages_of(account))
    assert_nowhere(redis_db, user.username, user.password)


@pytest.mark.django_db
def test_an_oauth2_token_is_never_stored(alice, oauth_user, provider, redis_db):
    account = register(alice.tenant, oauth_user, logs=True)
    token = provider._issue(oauth_user.username)["access_token"]
    settings_ = replace(connection_settings.account_imap_settings(account), password=None,
                        access_token=token,
                        protocol_log=protocol_log.opener(account.pk, "imap", (token,)))
    client = imap.connect(settings_)  # XOAUTH2 or OAUTHBEARER, whichever Dovecot offers
    client.select_folder("INBOX")
    client.logout()
    lines = messages_of(account)
    assert any(" AUTHENTICATE " in line and line.endswith(" ***") for line in lines)
    assert any(" SELECT " in line for line in lines)
    assert_nowhere(redis_db, oauth_user.username, token)


@pytest.fixture
def smtp_offer_restored(smtp_server):
    """The session's SMTP server with its AUTH offer and token check put back after the test:
    the other tests that share it expect PLAIN and LOGIN."""
    yield smtp_server
    smtp_server.offer(*PASSWORD_MECHANISMS)
    smtp_server.check_tokens_with(None)


@pytest.mark.django_db
@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_smtp_auth_and_the_message_are_not_stored(alice, smtp_offer_restored, smtp_user,
                                                  redis_db, mechanism):
    smtp_server = smtp_offer_restored
    smtp_server.offer(mechanism)
    account = register(alice.tenant, smtp_user, logs=True,
                       smtp={**smtp_server.smtp_settings(smtp_user.username, smtp_user.password),
                             "tls": {"rejectUnauthorized": False}})
    client = smtp.connect(connection_settings.account_smtp_settings(account))
    client.sendmail(smtp_user.username, [smtp_user.username],
                    b"Subject: quarterly secret\r\n\r\nThe body nobody logs.\r\n")
    client.quit()
    lines = messages_of(account)
    assert f"AUTH {mechanism} ***" in lines
    assert any(line.startswith("[message, ") for line in lines)
    assert not any("quarterly secret" in line for line in lines)
    assert_nowhere(redis_db, smtp_user.username, smtp_user.password)


@pytest.mark.django_db
def test_an_smtp_bearer_token_is_not_stored(alice, smtp_offer_restored, smtp_user, redis_db):
    smtp_server = smtp_offer_restored
    token = "at-smtp-" + "k" * 24
    smtp_server.offer("XOAUTH2")
    smtp_server.check_tokens_with(lambda given: smtp_user.username if given == token else None)
    account = register(alice.tenant, smtp_user, logs=True,
                       smtp={**smtp_server.smtp_settings(smtp_user.username, ""),
                             "auth": {"user": smtp_user.username, "accessToken": token},
                             "tls": {"rejectUnauthorized": False}})
    client = smtp.connect(connection_settings.account_smtp_settings(account))
    client.quit()
    assert "AUTH XOAUTH2 ***" in messages_of(account)
    assert_nowhere(redis_db, smtp_user.username, token)


@pytest.mark.django_db
def test_the_log_is_capped_and_expires(alice, mail_user, redis_db, settings):
    settings.EMAILAPI_ACCOUNT_LOG_LINES = 10
    settings.EMAILAPI_ACCOUNT_LOG_TTL = 120
    account = register(alice.tenant, mail_user, logs=True)
    imap_session(account)
    imap_session(account)
    assert redis_db.llen(protocol_log.key(account.pk)) == 10
    assert 0 < redis_db.ttl(protocol_log.key(account.pk)) <= 120


@pytest.mark.django_db
def test_the_api_serves_it_to_its_tenant_only(alice, bob, mail_user):
    account = register(alice.tenant, mail_user)
    response = alice.client.put("/v1/account/box", {"logs": True}, format="json")
    assert response.status_code == 200
    account.refresh_from_db()
    assert account.logs is True
    imap_session(account)
    response = alice.client.get("/v1/logs/box")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    entries = [json.loads(line) for line in response.content.decode().splitlines()]
    assert {entry["proto"] for entry in entries} == {"imap"}
    assert {entry["src"] for entry in entries} == {"c", "s"}
    assert bob.client.get("/v1/logs/box").status_code == 404
    assert alice.client.get("/v1/logs/nobody").json()["code"] == "AccountNotFound"
    turning_on_again = services.update_account(account, {"logs": True})
    assert turning_on_again.config_version == account.config_version  # no change, no reconnect
