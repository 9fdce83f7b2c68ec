"""What opening a connection costs: the greeting's CAPABILITY is taken rather than asked for
again; after STARTTLS, where what was said before TLS is discarded (RFC 3501 6.2.1), the list
is asked for only by a login that needs it first, and otherwise comes with LOGIN's answer; and
every connection shares one tag prefix and pattern (imaplib compiles one per connection).
A restarted worker opens thousands at once, so each round trip and each compile is paid
thousands of times on both sides."""

from __future__ import annotations

import pytest

from mailboxes.imap import client as imap
from mailboxes.imap import underlying
from tests.servers.hung_imap import HungImapServer


def _settings(host: str, port: int, secure: bool, user: str = "u", password: str = "p",
              **extra) -> imap.ImapSettings:
    return imap.ImapSettings(host=host, port=port, secure=secure, user=user,
                             password=password, tls_verify=False, timeout=10.0,
                             allow_private=True, **extra)


def _of(mail_user, secure: bool) -> imap.ImapSettings:
    return _settings(mail_user.host, mail_user.imaps_port if secure else mail_user.imap_port,
                     secure, mail_user.username, mail_user.password)


def _names(sent: list[bytes]) -> list[bytes]:
    """The tagged commands sent (whatever their tags), by name."""
    words = [line.rstrip(b"\r\n").split(b" ") for line in sent]
    return [w[1] for w in words if len(w) > 1 and w[0].isalnum() and w[1].isalpha()
            and w[1].isupper()]


@pytest.mark.parametrize(("secure", "commands"), [
    (False, [b"STARTTLS", b"LOGIN"]),  # the list after TLS comes with LOGIN's OK
    (True, [b"LOGIN"]),  # implicit TLS: the greeting's list is the one
])
def test_a_connect_takes_the_greetings_capabilities(mail_user, imap_commands, secure,
                                                    commands):
    client = imap.connect(_of(mail_user, secure=secure))
    try:
        assert client.has_capability("IDLE")
        assert client.has_capability("ENABLE")
        sent = _names(imap_commands)
    finally:
        client.logout()
    assert sent == commands


def test_after_starttls_no_list_read_before_tls_is_used(mail_user, imap_commands):
    """A login that needs the list first (AUTH=PLAIN for a password that is not ASCII) asks
    the server again once TLS is up, rather than trusting what it said in the clear."""
    settings = _settings(mail_user.host, mail_user.imap_port, False, mail_user.username,
                         "pässwörd")
    with pytest.raises(imap.AuthenticationFailed):
        imap.connect(settings)
    assert _names(imap_commands) == [b"STARTTLS", b"CAPABILITY", b"AUTHENTICATE"]


def test_a_greeting_without_capabilities_is_followed_by_a_capability_command(imap_commands):
    with HungImapServer("greet") as server:  # "* OK ..." without [CAPABILITY ...]
        with pytest.raises(imap.ConnectFailed):
            imap.connect(_settings("127.0.0.1", server.port, secure=False, login_timeout=1.0))
    assert _names(imap_commands) == [b"CAPABILITY", b"LOGIN"]


def test_every_connection_shares_one_tag_pattern(mail_user, imap_commands):
    clients = [imap.connect(_of(mail_user, secure=False)) for _ in range(2)]
    try:
        for client in clients:
            connection = underlying.connection(client)
            assert connection.tagre is imap._TAG_PATTERN
            assert {"tagre", "tagpre"}.isdisjoint(vars(connection))
        assert all(line.startswith(b"EAPI") for line in imap_commands)
    finally:
        for client in clients:
            client.logout()
