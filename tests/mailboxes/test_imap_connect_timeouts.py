"""Each phase of opening an IMAP connection has its own deadline: servers that accept and
never greet, greet and never answer, hang at STARTTLS or trickle a byte at a time are given
up on within that phase's bound, whatever the command timeout is. After login, a command's
answer is awaited with ``read_timeout`` or ``timeout`` by the kind of command."""

from __future__ import annotations

import time

import pytest

from mailboxes.imap import client as imap
from mailboxes.imap.session import ImapSession, start_idle
from tests.servers.hung_imap import HungImapServer
from tests.servers.tcp_proxy import TcpProxy


def _settings(port: int, **phases) -> imap.ImapSettings:
    bounds = {"connect_timeout": 1.0, "greeting_timeout": 1.0, "tls_timeout": 1.0,
              "login_timeout": 1.0}
    bounds.update(phases)
    return imap.ImapSettings(host="127.0.0.1", port=port, secure=False, user="u",
                             password="p", tls_verify=False, timeout=60.0, allow_private=True,
                             **bounds)


@pytest.mark.parametrize(("mode", "error", "words"), [
    ("silent", imap.ConnectFailed, "greeting"),
    ("trickle", imap.ConnectFailed, "greeting"),
    ("greet", imap.ConnectFailed, "LOGIN"),
    ("starttls", imap.TlsFailed, "STARTTLS"),
])
def test_a_hung_phase_fails_within_its_own_timeout(mode, error, words):
    with HungImapServer(mode, trickle_every=0.3) as server:
        started = time.monotonic()
        with pytest.raises(error) as failure:
            imap.connect(_settings(server.port))
        elapsed = time.monotonic() - started
    assert words in str(failure.value)
    assert elapsed < 5, f"{mode}: gave up after {elapsed:.1f} s, not within its 1 s phase"


def test_each_phase_has_its_own_bound():
    """A long login bound does not lengthen the greeting's, and the other way round."""
    with HungImapServer("silent") as silent, HungImapServer("greet") as greet:
        started = time.monotonic()
        with pytest.raises(imap.ConnectFailed):
            imap.connect(_settings(silent.port, login_timeout=30.0))
        assert time.monotonic() - started < 5
        started = time.monotonic()
        with pytest.raises(imap.ConnectFailed):
            imap.connect(_settings(greet.port, greeting_timeout=30.0, login_timeout=1.0))
        assert time.monotonic() - started < 5


def test_phases_never_exceed_the_callers_own_timeout():
    settings = _settings(0, greeting_timeout=30.0)
    settings = imap.ImapSettings(**{**settings.__dict__, "timeout": 1.0})
    assert settings.phase_timeout("greeting") == 1.0


def test_a_healthy_server_is_unaffected_and_commands_get_the_command_timeout(mail_user):
    settings = imap.ImapSettings(host=mail_user.host, port=mail_user.imap_port, secure=False,
                                 user=mail_user.username, password=mail_user.password,
                                 tls_verify=False, timeout=42.0, connect_timeout=1.0,
                                 greeting_timeout=1.0, tls_timeout=1.0, login_timeout=1.0,
                                 allow_private=True)
    client = imap.connect(settings)
    try:
        assert client.socket().gettimeout() == 42.0
        time.sleep(1.2)  # past every phase deadline: commands are no longer bound by them
        assert client.select_folder("INBOX", readonly=True)[b"UIDVALIDITY"]
    finally:
        client.logout()


@pytest.mark.parametrize(("command", "name", "waited"), [
    (lambda client: client.noop(), "NOOP", 1.0),
    (lambda client: client.select_folder("INBOX", readonly=True), "EXAMINE", 2.0),
    (lambda client: client.fetch("1:*", ["FLAGS"]), "UID FETCH", 2.0),
    (lambda client: client.idle_done(), "DONE", 1.0),
])
def test_after_login_slow_commands_wait_the_read_timeout_and_others_the_short_one(
        mail_user, command, name, waited):
    """A server gone quiet is found after ``timeout`` on a command any live server answers at
    once (NOOP, IDLE's DONE), after ``read_timeout`` on one that works through a folder; the
    error names the command and the wait."""
    with TcpProxy(mail_user.imap_port) as proxy:
        client = imap.connect(imap.ImapSettings(
            host="127.0.0.1", port=proxy.port, secure=False, user=mail_user.username,
            password=mail_user.password, tls_verify=False, timeout=1.0, read_timeout=2.0,
            allow_private=True))
        try:
            ImapSession(client)  # as a worker's session: capabilities known, QRESYNC enabled
            if name in ("UID FETCH", "DONE"):
                client.select_folder("INBOX", readonly=True)
            if name == "DONE":
                start_idle(client)
            proxy.hold()
            with pytest.raises(imap.CommandTimedOut) as failure:
                command(client)
        finally:
            client.shutdown()
    assert (failure.value.command, failure.value.seconds) == (name, waited)
    assert str(failure.value) == f"The server did not answer {name} within {waited:g} s"
