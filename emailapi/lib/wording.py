"""Errors shown to people are words: the one place that turns an exception into them.

What a mailbox's ``lastError``, the ``authenticationError``/``connectError`` events,
``verifyAccount`` answers and the outbox's errors say comes from here, so that none of them
shows an internal: not a Python ``b'...'`` repr (imaplib puts the server's bytes in its
messages as reprs: ``b'[AUTHENTICATIONFAILED] Authentication failed.'``), not a database's
text (``duplicate key value violates unique constraint ...`` names our tables and values),
and not the banner of a service that is not the one expected (a port that answers
``220 internal-host Python SMTP`` to an IMAP client tells that client what runs there: we
say what we expected and what kind of answer came, ``answer_kind``).

A mail server's own answer to our command (``NO [AUTHENTICATIONFAILED] ...``) is shown,
decoded: it is the user's server, and its words help them fix their settings.

No Django import here (the IMAP protocol layer uses it too): database errors are known by
the modules their classes come from.
"""

from __future__ import annotations

import ast
import imaplib
import re
import smtplib
import socket
import ssl

MAX_TEXT = 300
DATABASE_ERROR = "Internal database error"
_DATABASE_MODULES = ("django.db", "psycopg")
_OUR_PACKAGES = {"accounts", "emailapi", "mailboxes", "webhooks"}
_BYTES_REPR = re.compile(r"""\bb(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")
_REPLY_CODE = re.compile(rb"^\d{3}[ -]")


def decode(raw: bytes | bytearray) -> str:
    """Bytes a server sent, as text: UTF-8 (RFC 6855/6531 servers), else Latin-1."""
    try:
        return bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return bytes(raw).decode("latin-1")


def server_text(value) -> str:
    """A server's text (bytes, a string holding ``b'...'`` reprs, or an exception carrying
    either) as one clean line: reprs undone, control characters out, at most MAX_TEXT."""
    if isinstance(value, BaseException):
        value = value.args[0] if len(value.args) == 1 else str(value)
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        text = decode(value)
    else:
        text = _BYTES_REPR.sub(_undo_repr, str(value))
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + "…"


# "[AUTHENTICATIONFAILED] Authentication failed.": a response code (RFC 5530) and the text.
RESPONSE_CODE_RE = re.compile(r"^\[([A-Za-z0-9-]+)(?:[ ][^\]]*)?\]\s*(.*)$", re.S)


def response_code(answer: str) -> tuple[str, str] | None:
    """The response code of an IMAP server's answer (upper case) and the text after it, or
    None when the answer carries no code."""
    match = RESPONSE_CODE_RE.match(answer) if answer else None
    return (match.group(1).upper(), match.group(2)) if match else None


def _undo_repr(match: re.Match) -> str:
    try:
        value = ast.literal_eval(match.group(0))
    except (ValueError, SyntaxError):
        return match.group(0)[2:-1]
    return decode(value) if isinstance(value, bytes) else str(value)


def answer_kind(raw: bytes | None) -> str:
    """What kind of service a first line comes from, in words ("an SMTP greeting"), for
    errors that must not repeat the line itself."""
    line = (raw or b"").lstrip()
    if not line:
        return "no answer (the connection was closed)"
    upper = line[:16].upper()
    if upper.startswith(b"* "):
        return "an IMAP greeting"
    if _REPLY_CODE.match(line):
        return "an SMTP (or FTP) greeting"
    if upper.startswith((b"+OK", b"-ERR")):
        return "a POP3 greeting"
    if upper.startswith(b"SSH-"):
        return "an SSH banner"
    if upper.startswith(b"HTTP/"):
        return "an HTTP answer"
    if line[:1] in (b"\x15", b"\x16") and line[1:2] == b"\x03":
        return "TLS data (this port expects TLS from the start)"
    return "an answer of no mail protocol we know"


def is_database_error(exc: BaseException) -> bool:
    """Django's database errors and psycopg's (and its pool's), by where they are defined."""
    return any(cls.__module__.startswith(_DATABASE_MODULES) for cls in type(exc).__mro__)


def describe(exc: BaseException) -> str:
    """The words for ``exc`` that a user may see (see the module doc)."""
    if is_database_error(exc):
        return DATABASE_ERROR
    if type(exc).__module__.split(".")[0] in _OUR_PACKAGES:
        # Our domain errors (ImapError, SmtpError, WriteError, OAuth2 and token errors, a
        # command's timeout naming the command): a message we wrote, maybe around a server's
        # answer to our command.
        return server_text(str(exc)) or type(exc).__name__
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "Timed out waiting for the server"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or 'the handshake failed'}"
    if isinstance(exc, imaplib.IMAP4.error):
        return f"IMAP error: {server_text(exc) or type(exc).__name__}"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {server_text(exc.smtp_error)}".strip()
    if isinstance(exc, smtplib.SMTPException):
        return f"SMTP error: {server_text(exc) or type(exc).__name__}"
    if isinstance(exc, OSError):
        return f"Connection error: {exc.strerror or server_text(exc) or type(exc).__name__}"
    return f"Internal error ({type(exc).__name__})"
