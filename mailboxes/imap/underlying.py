"""imapclient's private parts, reached in one place: the ``imaplib.IMAP4`` connection it
drives (``client._imap``).

imapclient has no API for what the engine needs beyond its methods: reading a FETCH or
ESEARCH answer as it streams in (``fetch``, ``search``, ``parts``), IDLE that tolerates data
before the continuation and lines split across TLS records (``session``), commands it does
not know (NOTIFY), and the response codes and notices imaplib files by kind (COPYUID,
VANISHED, STATUS). Every such reach goes through these functions, so an imapclient release
that changes its internals is met here, and nowhere outside ``mailboxes/imap/``. Importing this
module also bounds imapclient's response parsers (``_readable_within_depth``).
"""

from __future__ import annotations

import functools
import imaplib
from typing import Any

import imapclient
import imapclient.exceptions
import imapclient.imapclient


def connection(client: imapclient.IMAPClient) -> imaplib.IMAP4:
    """The imaplib connection under ``client``, for the response plumbing (``fetch``) that
    sends its own commands and reads their answers line by line."""
    return client._imap


def untagged_responses(client: imapclient.IMAPClient) -> dict[str, list[Any]]:
    """Untagged responses and response codes imaplib has filed by kind (``EXISTS``,
    ``VANISHED``, ``COPYUID``, ``STATUS``...); popping one consumes it."""
    return client._imap.untagged_responses


def read_line(client: imapclient.IMAPClient) -> bytes:
    """One whole line from the server (blocking, bounded by the socket's timeout); raises
    ``imaplib.IMAP4.abort`` at the end of the stream. For use while idling: the engine's
    client bounds the time the whole line may take (``client.AnswerTooLong``)."""
    imap = client._imap
    bounded = getattr(imap, "idle_line", None)
    return bounded() if bounded is not None else imap._get_line()


def read_buffer(client: imapclient.IMAPClient) -> Any:
    """imaplib's buffered reader over the socket (None before connecting, or while the
    engine's client has let go of it as the session idles: it holds nothing then): bytes it
    holds never wake a selector."""
    imap = client._imap
    held = getattr(imap, "held_reader", None)  # the engine's client: never makes one
    return held() if held is not None else getattr(imap, "file", None)


def reusable(client: imapclient.IMAPClient) -> bool:
    """No command left half-done, and the socket still open (a response object collected by
    the garbage collector may have had its socket finalized before its connection was handed
    back)."""
    imap = client._imap
    sock = getattr(imap, "sock", None)
    try:
        if sock is None or sock.fileno() == -1:
            return False
    except OSError:
        return False
    return not getattr(imap, "tagged_commands", None) or all(
        value is not None for value in imap.tagged_commands.values())


_SHARED: dict = {}


def shared(value):
    """One object for every equal ``value``: what many sessions keep alike (capability names,
    fetch item strings, a server's (host, port)), since a worker holds thousands of sessions,
    mostly to a few servers."""
    return _SHARED.setdefault(value, value)


def share_capabilities(client: imapclient.IMAPClient) -> None:
    """Make the capability lists imapclient and imaplib keep per connection (some forty names
    from a server like Dovecot, a few KB a connection) one shared object for every connection
    to servers that announce the same ones: a worker holds thousands of them."""
    cached = getattr(client, "_cached_capabilities", None)
    if isinstance(cached, tuple):
        client._cached_capabilities = shared(tuple(shared(c) for c in cached))
    imap = client._imap
    if isinstance(getattr(imap, "capabilities", None), tuple):
        imap.capabilities = shared(tuple(shared(c) for c in imap.capabilities))


def shared_names(names: frozenset[str]) -> frozenset[str]:
    """``names`` as the one shared frozenset of its value."""
    return shared(frozenset(shared(n) for n in names))


def _readable_within_depth(parse):
    """``parse`` (one of imapclient's response parsers), its RecursionError as imapclient's
    own ``ProtocolError``: its parser recurses once per level of parentheses, so a server's
    answer nested some thousand deep (``* LIST ((((...`` in one line) raised RecursionError
    out of any imapclient command, which the API answered with a 500 and the worker recorded
    as an internal error. Our own parser (``parse``) nests without recursion."""

    @functools.wraps(parse)
    def parse_within_depth(*args, **kwargs):
        try:
            return parse(*args, **kwargs)
        except RecursionError:
            raise imapclient.exceptions.ProtocolError(
                "the server's answer nests too deeply to read") from None

    return parse_within_depth


# imapclient's commands call the parsers by these names of its module; ``parse_response`` is
# the guarded one for our own calls.
for _name in ("parse_response", "parse_fetch_response", "parse_message_list"):
    setattr(imapclient.imapclient, _name,
            _readable_within_depth(getattr(imapclient.imapclient, _name)))
parse_response = imapclient.imapclient.parse_response
