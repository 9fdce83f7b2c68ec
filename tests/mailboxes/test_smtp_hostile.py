"""A hostile or broken SMTP server (the tenant's own) against the SMTP layer, the send job and
verifyAccount, each on a real loopback server that follows a script
(``tests.servers.scripted_smtp``): replies that never end (a flood of continuation lines, a
byte at a time), a session slower than its lease allows, bytes no database text can hold, a
line too long, STARTTLS offered then refused. Every attempt ends, in words, and a message the
server took is recorded once."""

from __future__ import annotations

import pytest
from django.db import connection

from mailboxes import sending, smtp, verify
from mailboxes.models import OutboxEntry
from tests.mailboxes.bounded import finishes
from tests.mailboxes.sending_helpers import queue, sending_account
from tests.servers.scripted_smtp import ScriptedSmtpServer, delayed, flood, trickle

State = OutboxEntry.State
TIMEOUT = 2  # each reply's wait in these tests (EMAILAPI_VERIFY_TIMEOUT)
WITHIN = 20  # an attempt still running after this long is held by the server


@pytest.fixture
def scripted():
    """Start ``ScriptedSmtpServer(**script)``s; each is stopped at the end of the test (which
    also frees a client still held by one)."""
    servers: list[ScriptedSmtpServer] = []

    def start(**script) -> ScriptedSmtpServer:
        servers.append(ScriptedSmtpServer(**script).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def short_replies(settings):
    settings.EMAILAPI_VERIFY_TIMEOUT = TIMEOUT


def _in_thread(work, within: float = WITHIN):
    """``work()`` bounded (``bounded.finishes``), its thread's database connection closed
    (looked up in that thread: ``connection`` is per thread)."""
    return finishes(work, within, cleanup=lambda: connection.close())


def _settings(server: ScriptedSmtpServer) -> smtp.SmtpSettings:
    return smtp.SmtpSettings(host=server.host, port=server.port, secure=False, user="user",
                             password="secret", timeout=TIMEOUT, allow_private=True)


def _refusal_of(server: ScriptedSmtpServer) -> smtp.SmtpError:
    with pytest.raises(smtp.SmtpError) as raised:
        smtp.connect(_settings(server))
    return raised.value


def _in_words(text: str) -> None:
    assert "b'" not in text
    assert "\x00" not in text
    assert "\x1b" not in text
    assert len(text) <= 400


# --- the SMTP layer ---------------------------------------------------------------------


def test_a_flood_of_continuation_lines_is_cut_off_in_words(scripted):
    """smtplib reads ``250-...`` lines for as long as they come: the process's memory grew
    without bound. The reply is cut off past its bound and the connection closed."""
    server = scripted(ehlo=flood())

    error = _in_thread(lambda: _refusal_of(server))
    assert type(error).__name__ == "SmtpProtocolError"
    assert str(error).startswith("The SMTP server's answer ran past ")
    assert server.wait_for(lambda s: s.disconnects == 1, timeout=10)


def test_a_greeting_trickled_a_byte_at_a_time_ends_within_the_timeout(scripted):
    """A socket timeout is per read: a server showing a byte every 0.2 s never tripped it."""
    server = scripted(greeting=trickle(b"220-slow\r\n"))

    error = _in_thread(lambda: _refusal_of(server))
    assert type(error).__name__ == "SmtpTimeout"
    assert str(error) == f"The SMTP server did not finish its answer within {TIMEOUT} s"
    assert server.wait_for(lambda s: s.disconnects == 1, timeout=10)


# --- the send job -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("stage", "answer", "code"), [
    ("ehlo", flood(), "ProtocolError"),
    ("message", flood(), "ProtocolError"),
    ("greeting", trickle(b"220-slow\r\n"), "Timeout"),
    ("ehlo", trickle(), "Timeout"),
    ("message", trickle(), "Timeout"),
    ("message", b"250 " + b"x" * 9000 + b"\r\n", "ProtocolError"),
], ids=["ehlo-flood", "data-flood", "greeting-trickle", "ehlo-trickle", "data-trickle",
        "data-line-too-long"])
def test_an_answer_that_never_ends_is_a_retry_in_words(
        alice, smtp_user, scripted, short_replies, stage, answer, code):
    """Each attempt ends within the reply's timeout or bound and is tried again later: never
    held for ever, never failed as if the server had refused (smtplib's own "500 Line too
    long." read as the server's permanent 5xx)."""
    server = scripted(**{stage: answer})
    entry = queue(sending_account(alice.tenant, smtp_user, server))

    assert _in_thread(lambda: sending.send_entry(entry.pk)) == "retry"

    entry.refresh_from_db()
    assert entry.state == State.QUEUED
    assert entry.last_error["code"] == code
    _in_words(entry.last_error["error"])
    assert server.wait_for(lambda s: s.disconnects == 1, timeout=10)


@pytest.mark.django_db(transaction=True)
def test_a_quit_answered_a_byte_at_a_time_still_records_the_send(
        alice, smtp_user, scripted, short_replies):
    server = scripted(quit=trickle(b"221-bye\r\n"))
    entry = queue(sending_account(alice.tenant, smtp_user, server))

    assert _in_thread(lambda: sending.send_entry(entry.pk)) == "sent"

    entry.refresh_from_db()
    assert entry.state == State.SENT
    assert len(server.messages) == 1


@pytest.mark.django_db(transaction=True)
def test_a_nul_in_the_answer_to_data_is_recorded_in_words_and_sent_once(
        alice, smtp_user, scripted, short_replies):
    """PostgreSQL holds no NUL in text: ``mark_sent`` failed after the server had taken the
    message, and the entry, left ``sending``, was sent again after its lease."""
    server = scripted(message=b"250 2.0.0 queued \x00 as \x1b[31mX\r\n")
    entry = queue(sending_account(alice.tenant, smtp_user, server))

    assert _in_thread(lambda: sending.send_entry(entry.pk)) == "sent"

    entry.refresh_from_db()
    assert entry.state == State.SENT
    assert entry.response == "250 2.0.0 queued as [31mX"
    assert len(server.messages) == 1


@pytest.mark.django_db(transaction=True)
def test_refusals_full_of_control_bytes_fail_the_entry_in_words(
        alice, smtp_user, scripted, short_replies):
    refusal = b"550-5.1.1 \x00 no such user \x07\r\n" * 200 + b"550 5.1.1 unknown\r\n"
    server = scripted(rcpt=refusal)
    entry = queue(sending_account(alice.tenant, smtp_user, server))

    assert _in_thread(lambda: sending.send_entry(entry.pk)) == "failed"

    entry.refresh_from_db()
    assert entry.state == State.FAILED
    assert entry.last_error["responseCode"] == 550
    assert entry.last_error["error"].startswith("550 5.1.1 no such user 5.1.1 no such user")
    _in_words(entry.last_error["error"])


@pytest.mark.django_db(transaction=True)
def test_a_session_slower_than_its_lease_allows_ends_in_words(
        alice, smtp_user, scripted, short_replies, settings):
    """Every RCPT answered just within the reply's timeout: 30 recipients would hold the job
    past the rq timeout (the lease less 30 s), after which a message the server took is never
    recorded and goes out again. The session ends ``LEASE_MARGIN + SMTP_RESERVE`` before
    the lease: with a 70 s lease, after 5 s."""
    settings.SEND_LEASE = 70
    server = scripted(rcpt=delayed(1.0, b"250 2.1.5 Ok\r\n"))
    account = sending_account(alice.tenant, smtp_user, server)
    entry = queue(account, envelope={"from": "me@example.test",
                                     "to": [f"r{n}@example.test" for n in range(30)]})

    assert _in_thread(lambda: sending.send_entry(entry.pk), within=15) == "retry"

    entry.refresh_from_db()
    assert entry.last_error["code"] == "Timeout"
    assert entry.last_error["error"] == "The SMTP session took longer than the 5 s allowed for it"
    assert server.messages == []


@pytest.mark.django_db(transaction=True)
def test_a_large_message_over_a_slow_link_is_not_cut_off_by_one_timeout(
        alice, smtp_user, scripted, short_replies):
    """A plain socket's ``sendall`` times the whole message: 12 MB to a server reading 2 MB/s
    failed after the 2 s timeout every time. Each piece has the timeout now."""
    server = scripted(read_rate=2 * 1024 * 1024)
    raw = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 12_000
    entry = queue(sending_account(alice.tenant, smtp_user, server), raw=raw, copy=False)

    assert _in_thread(lambda: sending.send_entry(entry.pk), within=60) == "sent"

    [received] = server.messages
    assert len(received) == len(raw)


# --- verifyAccount ----------------------------------------------------------------------


@pytest.mark.django_db
def test_verify_says_in_words_that_starttls_was_offered_then_refused(alice, scripted):
    """smtplib raises the refusal as its own exception, which the check did not expect: the
    request answered 500."""
    server = scripted(ehlo=b"250-scripted.test\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n")
    response = alice.client.post("/v1/verifyAccount", {"smtp": server.smtp_settings()},
                                 format="json")

    assert response.status_code == 200
    answer = response.json()["smtp"]
    assert answer["success"] is False
    assert answer["code"] == "ETLS"
    assert answer["error"] == "The server refused STARTTLS: 454 4.7.0 TLS not available"


@pytest.mark.parametrize("answer", [flood(), trickle()], ids=["flood", "trickle"])
def test_a_verify_check_past_its_wait_lets_the_server_go(scripted, answer):
    """verifyAccount stops waiting for a check after its timeout but leaves the thread: on a
    server that never ends its answer, that thread (and its memory) lived for ever."""
    server = scripted(ehlo=answer)

    result = verify.verify(None, _settings(server), timeout=TIMEOUT)

    assert result["smtp"]["success"] is False
    assert server.wait_for(lambda s: s.disconnects == 1, timeout=3 * TIMEOUT)
