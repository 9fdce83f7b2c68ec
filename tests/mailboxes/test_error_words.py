"""Errors shown to users are words: a mailbox's ``lastError``, its events and verifyAccount
never show a Python bytes repr, database text, or a foreign service's banner.

Against the real Dovecot, SMTP server and PostgreSQL; the worker's connection steps run in the
test thread (the database is used transactionally so they see committed rows)."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from accounts import services
from emailapi.lib import wording
from tests.mailboxes.helpers import connect_once, events_of, register
from tests.servers import seed

pytestmark = pytest.mark.django_db(transaction=True)



def _assert_words(text: str):
    assert isinstance(text, str)
    assert text
    assert "b'" not in text, text
    assert 'b"' not in text, text


def test_a_wrong_password_reads_as_the_servers_words_in_last_error_events_and_verify(
        alice, mail_user):
    account = register(alice.tenant, mail_user)
    services.update_account(account, {"imap": {"auth": {"pass": "wrong-password"}}})

    row = connect_once(account)

    assert row.state == "authenticationError"
    [event] = events_of(account, "authenticationError")
    shown = alice.client.get(f"/v1/account/{account.account_id}").json()["lastError"]
    imap = {**mail_user.imap_settings(secure=False), "tls": {"rejectUnauthorized": False}}
    imap["auth"] = {**imap["auth"], "pass": "wrong-password"}
    verified = alice.client.post("/v1/verifyAccount", {"imap": imap}, format="json").json()
    texts = [row.last_error["error"], row.last_error["serverResponse"], shown["error"],
             event.data["response"], verified["imap"]["reason"],
             verified["imap"]["serverResponse"]]
    for text in texts:
        _assert_words(text)
        assert text == "[AUTHENTICATIONFAILED] Authentication failed."
    assert "wrong-password" not in json.dumps([row.last_error, event.data, verified])


@pytest.fixture
def one_subject_per_mailbox():
    """A unique index the sync will break (two messages with one subject): a real
    IntegrityError from PostgreSQL in the middle of a sync."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE UNIQUE INDEX test_one_subject_per_mailbox "
                       "ON mailboxes_message (email_account_id, subject)")
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX IF EXISTS test_one_subject_per_mailbox")


@pytest.mark.usefixtures("one_subject_per_mailbox")
def test_a_database_error_during_sync_is_not_shown(alice, mail_user):
    seed.seed_mailbox(mail_user, messages=[seed.make_message(subject="Same"),
                                           seed.make_message(subject="Same")])
    account = register(alice.tenant, mail_user)

    row = connect_once(account)

    assert row.state == "disconnected"
    assert row.last_error["error"] == wording.DATABASE_ERROR
    shown = json.dumps(alice.client.get(f"/v1/account/{account.account_id}").json())
    for internal in ("duplicate key", "violates", "unique constraint", "test_one_subject",
                     "mailboxes_message", "Same"):
        assert internal not in shown


# --- the wording function itself (pure) ---------------------------------------------------


@pytest.mark.parametrize("given, words", [
    ("b'[AUTHENTICATIONFAILED] Authentication failed.'",
     "[AUTHENTICATIONFAILED] Authentication failed."),
    ("select failed: b\"[NONEXISTENT] Mailbox doesn't exist: X\"",
     "select failed: [NONEXISTENT] Mailbox doesn't exist: X"),
    (b"NO [ALERT] Caf\xc3\xa9 closed\r\n", "NO [ALERT] Café closed"),
    (b"NO Latin-1 \xe9t\xe9", "NO Latin-1 été"),
    ("b'line\\r\\nforged: yes'", "line forged: yes"),
])
@pytest.mark.django_db(transaction=False)
def test_server_text_is_decoded_and_cleaned(given, words):
    assert wording.server_text(given) == words


@pytest.mark.parametrize("line, kind", [
    (b"220 internal.example ESMTP Postfix\r\n", "an SMTP (or FTP) greeting"),
    (b"* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n", "an IMAP greeting"),
    (b"SSH-2.0-OpenSSH_9.2\r\n", "an SSH banner"),
    (b"HTTP/1.1 400 Bad Request\r\n", "an HTTP answer"),
    (b"+OK POP3 ready\r\n", "a POP3 greeting"),
    (b"\x15\x03\x03\x00\x02\x02\x46", "TLS data (this port expects TLS from the start)"),
    (b"", "no answer (the connection was closed)"),
])
@pytest.mark.django_db(transaction=False)
def test_a_banner_is_named_by_its_kind(line, kind):
    assert wording.answer_kind(line) == kind


@pytest.mark.django_db(transaction=False)
def test_every_kind_of_exception_gets_words():
    import imaplib
    import socket

    import psycopg
    from django.db import IntegrityError, OperationalError

    from mailboxes.imap.folder_ops import WriteError

    words = wording.describe
    assert words(IntegrityError('duplicate key value violates unique constraint "x"')) == \
        wording.DATABASE_ERROR
    assert words(OperationalError("server closed the connection")) == wording.DATABASE_ERROR
    assert words(psycopg.errors.UniqueViolation("duplicate key")) == wording.DATABASE_ERROR
    assert words(WriteError("b'[CANNOT] Not on this folder'")) == "[CANNOT] Not on this folder"
    assert words(imaplib.IMAP4.error("select failed: b'[NONEXISTENT] No X'")) == \
        "IMAP error: select failed: [NONEXISTENT] No X"
    assert words(socket.timeout("timed out")) == "Timed out waiting for the server"
    assert words(ConnectionResetError(104, "Connection reset by peer")) == \
        "Connection error: Connection reset by peer"
    assert words(KeyError("uid")) == "Internal error (KeyError)"
