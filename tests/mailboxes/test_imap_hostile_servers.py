"""What a broken or hostile IMAP server can do after login is bounded, and ends as an error in
words on that connection: never a process grown without end, nor a thread held for ever.

Tenants register their own servers, and one worker process holds thousands of tenants'
sessions: a server that makes it allocate gigabytes gets it killed for all of them, and one
that keeps a command's answer going for ever holds one of its sync threads for good. Each test
talks to ``HostileImapServer`` on loopback (a real socket, real imaplib/imapclient), which
logs in and then answers one command badly.
"""

from __future__ import annotations

import imaplib
import threading
import time

import imapclient
import pytest

from mailboxes.imap import client as imap
from mailboxes.imap import fetch
from mailboxes.imap import session as sessions
from mailboxes.imap.session import ImapSession, idle_responses, input_waiting, start_idle
from tests.base import wait_for
from tests.servers.hostile_imap import HostileImapServer, flood, huge_literal, lines, trickle

WAIT = 30  # seconds a test waits for a call that must end much sooner


def _connect(server: HostileImapServer, **timeouts) -> ImapSession:
    settings = {"timeout": 2.0, "read_timeout": 2.0, "answer_timeout": 60.0, **timeouts}
    client = imap.connect(imap.ImapSettings(
        host="127.0.0.1", port=server.port, secure=False, user="u", password="p",
        allow_private=True, **settings))
    return ImapSession(client)


def _outcome(server: HostileImapServer, call, **timeouts) -> tuple[BaseException | None, float]:
    """Run ``call(session)`` on a thread; its exception (None: it returned) and its time. A
    call still running after ``WAIT`` fails the test (the server is stopped to end it)."""
    session = _connect(server, **timeouts)
    found: dict = {}

    def run():
        started = time.monotonic()
        try:
            found["result"] = call(session)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            found["error"] = exc
        found["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(WAIT)
    try:
        assert not thread.is_alive(), f"still reading from the server after {WAIT} s"
    finally:
        server.stop()
        thread.join(5)
        session.client.shutdown()
    return found.get("error"), found["seconds"]


def _fetch_meta(session: ImapSession):
    session.select("INBOX")
    return fetch.fetch_meta(session.client, "1:*")


def test_a_literal_announced_beyond_the_cap_is_refused_before_it_is_read():
    """``{4000000000}``: imaplib would read it all (growing as the bytes come) whatever its
    size; here it is refused at once, in words. (Before: the client read all 64 MiB sent and
    waited for the rest, its buffer growing with every byte.)"""
    with HostileImapServer(b"FETCH", huge_literal(4_000_000_000, send=64 * 1024 * 1024)) as server:
        error, _ = _outcome(server, _fetch_meta)
    assert isinstance(error, imaplib.IMAP4.abort)
    assert str(error) == ("the server announced a literal of 4,000,000,000 bytes, more than "
                          f"the {imap.MAX_LITERAL:,} allowed")


@pytest.mark.parametrize("command", ["UID FETCH", "NOOP"])
def test_untagged_responses_without_end_are_not_kept_without_end(command):
    """``* OK ...`` lines before the tagged answer are filed by imaplib for later, by our FETCH
    reader and by imapclient's own commands alike: past ``MAX_KEPT`` the connection ends.
    (Before: 80 MB of them were all kept, and a server that never stops grew the worker by
    hundreds of MB a second.)"""
    line = b"* OK " + b"x" * 200 + b"\r\n"
    on = b"FETCH" if command == "UID FETCH" else b"NOOP"
    call = _fetch_meta if command == "UID FETCH" else (lambda session: session.client.noop())
    with HostileImapServer(on, flood(line, total=80 * 1024 * 1024)) as server:
        error, _ = _outcome(server, call)
    assert isinstance(error, imaplib.IMAP4.abort)
    assert f"the server sent more than {imap.MAX_KEPT // 2:,} bytes of untagged responses" \
        in str(error)


@pytest.mark.parametrize(("on", "command", "call"), [
    (b"EXAMINE", "EXAMINE", lambda session: session.select("INBOX")),
    (b"FETCH", "UID FETCH", _fetch_meta),
    (b"LIST", "LIST", lambda session: session.list_folders()),
])
def test_an_answer_trickled_for_ever_ends_at_its_deadline(on, command, call):
    """A byte every 0.1 s never trips the 2 s wait for each read; the answer's deadline ends
    it, naming the command. (Before: the call never returned.)"""
    text = b"* 1 FETCH (FLAGS ())\r\n" if on == b"FETCH" else b"* OK [UIDVALIDITY 7] ok\r\n"
    with HostileImapServer(on, trickle(text), pace=0.1) as server:
        error, seconds = _outcome(server, call, answer_timeout=3.0)
    assert isinstance(error, imap.AnswerTooLong)
    assert str(error) == f"The server did not finish its answer to {command} within 3 s"
    assert error.slow
    assert 3 <= seconds < 10


def test_a_line_trickled_while_idling_ends_at_the_deadline():
    """While idling no deadline applies (an IDLE lasts as long as we like), but a line the
    server has begun must end. (Before: a line without end, trickled, held the reader.)"""
    with HostileImapServer(b"IDLE", trickle(b"* OK never ending "), pace=0.1) as server:
        def idle(session):
            start_idle(session.client)
            wait_for(lambda: input_waiting(session.client))  # the line has begun
            return idle_responses(session.client)

        error, seconds = _outcome(server, idle, answer_timeout=3.0)
    assert isinstance(error, imap.AnswerTooLong)
    assert str(error) == "The server did not finish its answer to IDLE within 3 s"
    assert seconds < 10


def test_notices_without_end_while_idling_are_read_a_bounded_batch_at_a_time():
    """(Before: all 50,000 lines came back in one list; a server that never stops kept the
    reader in its loop, the list growing, for ever.)"""
    with HostileImapServer(b"IDLE", flood(b"* OK x\r\n", total=400_000)) as server:
        session = _connect(server)
        try:
            start_idle(session.client)
            wait_for(lambda: server.sent >= 400_000)  # all of it is waiting to be read
            responses = idle_responses(session.client)
        finally:
            session.client.shutdown()
    assert len(responses) == sessions.MAX_IDLE_RESPONSES


@pytest.mark.parametrize(("on", "answer", "call"), [
    (b"SEARCH", b'* ESEARCH (TAG "{tag}") UID ALL 1:%d\r\n',
     lambda session: fetch.search_uids(session.client, "ALL")),
    (b"SEARCH", b'* ESEARCH (TAG "{tag}") UID ALL 1:4294967295\r\n',
     lambda session: fetch.search_uids(session.client, "ALL")),
    (b"FETCH", b"* VANISHED (EARLIER) 1:%d\r\n",
     lambda session: fetch.fetch_flags(session.client, "1:*", changedsince=1, vanished=True)),
])
def test_a_range_of_more_uids_than_any_folder_holds_is_refused_unexpanded(on, answer, call):
    """A few bytes (``1:4294967295``) listed billions of UIDs, each built as a number: tens
    of GB, the kernel's OOM killer, every tenant's sessions gone. (Before: the ``MAX_UIDS`` + 1
    were built and returned; the 4,294,967,295 raised MemoryError, or worse.)"""
    if b"%d" in answer:
        answer = answer % (fetch.MAX_UIDS + 1)
    with HostileImapServer(on, lines(answer)) as server:
        def selected(session):
            session.select("INBOX")
            return call(session)

        error, _ = _outcome(server, selected)
    assert isinstance(error, imaplib.IMAP4.abort)
    assert str(error) == (f"the server listed more than {fetch.MAX_UIDS:,} UIDs in one answer, "
                          "more than any folder holds")


def test_an_answer_nested_beyond_imapclients_reach_is_a_protocol_error_in_words():
    """A LIST answer with flags nested 100,000 deep: imapclient's parser recurses once per
    level (a RecursionError, which the API answered with a 500 and the worker recorded as
    "Internal error (RecursionError)"); here it is imapclient's own ``ProtocolError``, as for
    any answer it cannot read."""
    deep = b"(" * 100_000 + b")" * 100_000
    with HostileImapServer(b"LIST", lines(b'* LIST (' + deep + b') "/" INBOX\r\n')) as server:
        error, _ = _outcome(server, lambda session: session.list_folders())
    assert isinstance(error, imapclient.exceptions.ProtocolError)
    assert str(error) == "the server's answer nests too deeply to read"


def test_folder_names_no_command_could_name_are_left_out():
    """A name holding NUL (no IMAP string may, and PostgreSQL stores none: the account's every
    sync failed on it) or a lone surrogate (``&2AA-``, modified UTF-7 of half a pair) cannot
    be sent back in a command nor stored: such a folder is not listed, the others are."""
    answer = (b'* LIST () "/" INBOX\r\n* LIST () "/" "Bad\x00Name"\r\n'
              b'* LIST () "/" "&2AA-half"\r\n* LIST () "/" Archive\r\n')
    with HostileImapServer(b"LIST", lines(answer)) as server:
        session = _connect(server)
        try:
            listed = [listing.path for listing in session.list_folders()]
        finally:
            session.client.shutdown()
    assert listed == ["INBOX", "Archive"]
