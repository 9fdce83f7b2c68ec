"""What may reach a log line: control characters escaped, secrets in URLs redacted.

A log is read by people (terminals, ``less``) and by programs (one record per line). A value
that carries a line break can forge a record of its own ("2026-01-01 INFO admin signed in"),
and an ANSI escape can rewrite what a terminal shows. Logged values come from clients (paths,
query strings), from mail servers (greetings, error texts) and from OAuth2 providers, so every
record goes through ``SafeFormatter`` (settings ``LOGGING``: every process formats its logs
with it) and daphne's access log through ``access_line`` (``emailapi.server``).

Tokens travel in URLs (``?access_token=``: browsers cannot set headers on a link), so URLs are
logged with such values replaced by ``***``.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote

# C0 controls, DEL, C1 controls (CSI 0x9b starts ANSI sequences too), the Unicode line and
# paragraph separators some viewers break lines at, and the bidirectional overrides that
# make text display in another order than it is stored.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_one(match: re.Match) -> str:
    char = match.group(0)
    return _NAMED.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100
                                else f"\\u{ord(char):04x}")


def escape_controls(text: str) -> str:
    """``text`` on one line with no control character left: each is written as ``\\n``,
    ``\\x1b``, ``\\u2028``..."""
    return _CONTROL.sub(_escape_one, text)


def escape_lines(text: str) -> str:
    """Escape control characters but keep the line breaks (of a traceback: its own)."""
    return "\n".join(escape_controls(line) for line in text.split("\n"))


# Query parameters whose value is a credential: tokens of every kind, OAuth2 codes, connect
# link signatures, passwords and keys.
_SECRET_NAME = re.compile(r"token|secret|passw|signature|^(sig|code|key|api_?key|auth)$", re.I)
REDACTED = "***"


def redact_url(url: str) -> str:
    """``url`` with the values of secret query parameters replaced by ``***`` (the rest is
    kept as it was written, percent-encoding included)."""
    path, mark, query = url.partition("?")
    if not mark:
        return url
    parts = []
    for pair in query.split("&"):
        name, equals, _ = pair.partition("=")
        if equals and _SECRET_NAME.search(unquote(name.replace("+", " ")).strip()):
            pair = f"{name}={REDACTED}"
        parts.append(pair)
    return f"{path}?{'&'.join(parts)}"


def _exception_chain(error: BaseException | None):
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)


class SafeFormatter(logging.Formatter):
    """``logging.Formatter`` whose records cannot span lines or carry terminal escapes.

    The message (format string and values) is escaped whole. A traceback keeps its lines, but
    an exception's own text (which may quote a client or a mail server) is escaped like a
    message, so it cannot add a line either.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_controls(record.message)
        return super().formatMessage(record)

    def formatException(self, ei) -> str:
        text = super().formatException(ei)
        for error in _exception_chain(ei[1]):
            try:
                message = str(error)
            except Exception:  # noqa: BLE001 - the traceback says "<exception str() failed>"
                continue
            escaped = escape_controls(message)
            if escaped != message:
                text = text.replace(message, escaped)
        return escape_lines(text)

    def formatStack(self, stack_info: str) -> str:
        return escape_lines(super().formatStack(stack_info))

    def format(self, record: logging.LogRecord) -> str:
        # exc_text is cached on the record by whichever formatter saw it first: format the
        # exception here again rather than trust another formatter's text.
        if record.exc_info:
            record.exc_text = None
        elif record.exc_text:
            record.exc_text = escape_lines(record.exc_text)
        return super().format(record)
