"""Opening an authenticated IMAP connection (no Django here: plain values in, a client out).

``connect`` takes an ``ImapSettings`` value, never an account row, so the protocol layer never
loads or decrypts anything itself. Failures are raised as one of three ``ImapError`` kinds,
because the caller's reaction differs: an authentication failure is retried slowly (the user
must fix something), a connection or TLS failure is retried with normal backoff.

``secure=True`` means TLS from the first byte (port 993). ``secure=False`` upgrades with
STARTTLS whenever the server offers it and stays plain otherwise, as mail clients do.

Each phase of opening a connection has its own deadline (TCP connect, TLS handshake, greeting,
STARTTLS, login: ``ImapSettings.*_timeout``), checked before every read and write of that
phase, so a server that accepts and never speaks, greets and then hangs, or trickles a byte at a
time cannot hold the caller longer than the phase allows.

After login each read waits for the command in flight: ``read_timeout`` for the commands whose
work grows with the mailbox (``SLOW_COMMANDS``: SELECT, FETCH, SEARCH, STATUS, LIST...; a first
FETCH of a 1,000,000-message folder kept Dovecot silent for ~20 s), ``timeout`` for the others
(NOOP, IDLE and its DONE, ENABLE, LOGOUT...), which any live server answers at once: a dead
connection is still found in seconds. A read that waits longer raises ``CommandTimedOut``,
naming the command and the wait.

What a server sends after login is a tenant's input to a process that holds every other
tenant's sessions too, so a broken or hostile server is bounded in what it can make us hold
and for how long, and each bound ends as an error on that connection, in words:

- time: a command's whole answer must end within ``ImapSettings.answer_timeout`` of the
  command (``ANSWER_SPAN`` times its read wait unless set), however steadily it comes: a
  server trickling a byte every few seconds, or sending untagged lines without end, never
  trips the per-read wait (``AnswerTooLong``);
- a literal: at most ``MAX_LITERAL`` bytes (imaplib would take any size it is told);
- a line: at most ``MAX_LINE`` bytes;
- untagged responses kept for later (imaplib files every one by kind until someone asks for
  it): at most ``MAX_KEPT`` bytes of them per connection.

The host is resolved and checked when the connection is made, and the socket goes to the
checked address (``emailapi.lib.netguard``): a host on an internal address is refused
(``HostNotAllowed``) unless ``allow_private``, whatever its DNS said at registration. A
greeting that is not IMAP is named by its kind, never repeated (``emailapi.lib.wording``).
"""

from __future__ import annotations

import functools
import imaplib
import io
import re
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import imapclient
from imapclient import exceptions as imap_exc

from emailapi.lib import attribute_names, netguard, tunnels
from emailapi.lib.wording import answer_kind, server_text


class ImapError(Exception):
    """Base of the errors ``connect`` raises; ``code`` is the API's machine code."""

    code = "ImapError"
    # Whether the server answered at all (it refused the login, say) rather than being
    # unreachable or silent: a worker connects to silent servers sparingly.
    reached = True

    def __init__(self, message: str, server_response: str | None = None):
        super().__init__(message)
        self.server_response = server_response


class ConnectFailed(ImapError):
    code = "ConnectionError"
    reached = False


class TlsFailed(ImapError):
    code = "TLSError"


class AuthenticationFailed(ImapError):
    code = "AuthenticationFailed"


class TlsRequired(TlsFailed):
    """The password or token was not sent: the settings allow it only over TLS that verified
    the server's certificate (``ImapSettings.tls_required``, its words the message), and this
    connection has none (no STARTTLS offered, or the certificate check off)."""

    code = "TLSRequired"


class CommandTimedOut(TimeoutError):
    """After login, the server did not answer a command within its timeout. A TimeoutError
    (so an OSError, as the plain socket timeout it replaces), whose words say which command
    and how long was waited."""

    def __init__(self, command: str, seconds: float, slow: bool):
        super().__init__(self.words.format(command=command, seconds=seconds))
        self.command, self.seconds = command, seconds
        self.slow = slow  # one of SLOW_COMMANDS (it had ``read_timeout``)

    words = "The server did not answer {command} within {seconds:g} s"


class AnswerTooLong(CommandTimedOut):
    """The server kept a command's answer going past ``ImapSettings.answer_timeout``: bytes
    came often enough for every read, but the answer never ended (a tarpit trickling a byte
    at a time, or untagged responses without end). Without this bound such a server held a
    worker's thread for ever. A ``CommandTimedOut``, so the worker treats it as a silent server
    (its retries back off, and a slow command's go to the slow lane)."""

    words = "The server did not finish its answer to {command} within {seconds:g} s"


# Commands whose answer may take long on a big mailbox (the server reads or searches the
# folder's messages or index): these wait ``ImapSettings.read_timeout`` after login. ``UID
# FETCH`` and the like count by their second word.
SLOW_COMMANDS = frozenset({b"SELECT", b"EXAMINE", b"FETCH", b"SEARCH", b"SORT", b"THREAD",
                           b"STATUS", b"LIST", b"LSUB", b"STORE", b"COPY", b"MOVE", b"EXPUNGE",
                           b"APPEND"})


class HostNotAllowed(ImapError):
    """The host is (or now resolves to) an internal address, which is not allowed."""

    code = "HostNotAllowed"
    reached = False


# EmailEngine's ``tls.minVersion`` (Node's names) -> the oldest protocol version allowed.
TLS_VERSIONS = {"TLSv1": ssl.TLSVersion.TLSv1, "TLSv1.1": ssl.TLSVersion.TLSv1_1,
                "TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}
DEFAULT_TLS_VERSION = "TLSv1.2"


@dataclass(frozen=True)
class ImapSettings:
    host: str
    port: int
    secure: bool
    user: str
    password: str | None = field(default=None, repr=False)
    access_token: str | None = field(default=None, repr=False)
    tls_verify: bool = True
    tls_min_version: str = DEFAULT_TLS_VERSION  # a key of TLS_VERSIONS
    timeout: float = 30.0
    allow_private: bool = False  # connect to loopback, private, link-local... addresses
    # The proxy the connection goes through (EmailEngine's ``proxy``), None for none: what is
    # connected to and checked is the proxy, which reaches ``host`` by name (``tunnels``).
    proxy: tunnels.Proxy | None = None
    # The local IP address the connection goes out from (None: the operating system's
    # choice); bound before connecting, to the mail server or to the proxy.
    source_address: str | None = None
    # Deadlines of the phases of opening the connection; None (or more than ``timeout``)
    # means ``timeout``.
    connect_timeout: float | None = None
    greeting_timeout: float | None = None
    tls_timeout: float | None = None
    login_timeout: float | None = None
    # After login: the wait for the answer to a ``SLOW_COMMANDS`` command (None: ``timeout``).
    # The worker's sync waits long (``EMAILAPI_IMAP_READ_TIMEOUT``); API calls and
    # verifyAccount do not set it.
    read_timeout: float | None = None
    # After login: the longest a command's whole answer may take, counted from when the
    # command (or its last literal) was sent. None: ``ANSWER_SPAN`` times the command's read
    # wait (above).
    answer_timeout: float | None = None
    # The account's protocol log (``logs: true``): called once per connection, it gives the
    # tap that sees each line sent ("C") and read ("S"), as bytes. It redacts and stores
    # (``mailboxes.protocol_log``); this layer only hands the lines over.
    protocol_log: Callable[[], Callable[[str, bytes], None]] | None = field(
        default=None, repr=False, compare=False)
    # Why the secret may go only over TLS that verified the server's certificate (the words
    # ``TlsRequired`` says), or None: sent as the other settings say. Set by the layer that
    # knows the route (a proxy whoever changed settings may have picked: see
    # ``accounts.secret_routes``); this layer only keeps the secret back.
    tls_required: str | None = None

    def phase_timeout(self, phase: str) -> float:
        value = getattr(self, f"{phase}_timeout")
        return self.timeout if value is None else min(value, self.timeout)


def tls_context(verify: bool, min_version: str = DEFAULT_TLS_VERSION) -> ssl.SSLContext:
    """One shared context per verification mode and oldest version. The verifying one loads
    the whole CA store (~850 KiB and ~40 ms of CPU): made per connection, it would be most of a
    worker's memory per idling account. Contexts are safe to share between threads and
    connections. Made under a lock: a worker's connect threads all start at once, and each
    would build its own."""
    with _tls_lock:
        return _tls_context(verify, min_version)


_tls_lock = threading.Lock()


@functools.lru_cache(maxsize=8)
def _tls_context(verify: bool, min_version: str = DEFAULT_TLS_VERSION) -> ssl.SSLContext:
    """The verifying context trusts the system's CA store. The other holds no CA at all:
    OpenSSL builds and checks a server's chain even when told to ignore the outcome, and
    against the system's store (its ~140 roots, and its hash directory looked up for each
    issuer it does not hold) that check cost an unverified handshake 0.2-0.4 ms of CPU, 0.3-0.7
    ms with several threads handshaking at once (``bench/RESULTS.md``, "Each phase of a
    reconnect, by its own thread's CPU"): a fifth of it and more, spent on an answer nobody
    reads."""
    if verify:
        context = ssl.create_default_context()
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # create_default_context's options
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    oldest = TLS_VERSIONS[min_version]
    with warnings.catch_warnings():  # Python deprecates TLS 1.0/1.1: the account asked for it
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = oldest
    if oldest < ssl.TLSVersion.TLSv1_2:
        # An old server's TLS 1.0/1.1 (asked for by the account's settings) needs OpenSSL's
        # security level 0 as well: the system's level 2 refuses those versions' SHA-1
        # signatures however low the minimum is set.
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def connect(settings: ImapSettings) -> imapclient.IMAPClient:
    """Return a logged-in client; the caller must ``logout()`` it."""
    phases = _Phases(settings)
    client = _open(settings, phases)
    verified = settings.secure and settings.tls_verify
    try:
        if not settings.secure and client.has_capability("STARTTLS"):
            phases.start("tls")
            try:
                client.starttls(tls_context(settings.tls_verify, settings.tls_min_version))
            except ssl.SSLError as exc:
                raise TlsFailed(f"STARTTLS failed: {exc.reason or exc}") from None
            except (socket.timeout, TimeoutError):
                error = TlsFailed("Timed out waiting for the server to complete STARTTLS")
                error.reached = False
                raise error from None
            verified = settings.tls_verify
        if settings.tls_required and not verified:
            raise TlsRequired(settings.tls_required)
        phases.start("login")
        _login(client, settings)
        phases.end()
        phases.settings = None  # the password is not kept for the connection's life
        client.socket().settimeout(settings.timeout)
        slow = settings.read_timeout or settings.timeout
        phases.timeouts = _read_timeouts(
            settings.timeout, slow, settings.answer_timeout or ANSWER_SPAN * settings.timeout,
            settings.answer_timeout or ANSWER_SPAN * slow)
    except BaseException:
        _close_quietly(client)
        raise
    return client


# A command's whole answer may take this many times its read wait (``ImapSettings.
# answer_timeout`` unless set): the worker's slow commands 20 minutes (120 s reads), its others
# and an API call's 150 s and 100 s. Generous: the worker's commands are batched (a FETCH of
# 1,000 messages, flags 5,000 UIDs at a time, a SEARCH answered in ranges), and the longest,
# a first FETCH of a 1,000,000-message folder or a CHANGEDSINCE over all of it, took well under
# a minute on Dovecot; a server busy for longer sends "* OK" progress lines, which count for
# no more than any other byte here. Not a rate floor: those progress lines are a few dozen
# bytes every ten seconds, which a throughput bound strict enough to stop a tarpit would
# refuse.
ANSWER_SPAN = 10


@functools.lru_cache(maxsize=16)
def _read_timeouts(short: float, slow: float, short_answer: float,
                   slow_answer: float) -> tuple[float, float, float, float]:
    """One tuple for every connection with the same timeouts: the read waits of a command
    that is not slow and of one that is, then the answer deadlines of each."""
    return short, slow, short_answer, slow_answer


@functools.lru_cache(maxsize=16)
def _socket_timeout(seconds: float) -> imapclient.imapclient.SocketTimeout:
    """One value for every connection with the same timeout (IMAPClient otherwise makes a
    tuple of its own per connection, and keeps it)."""
    return imapclient.imapclient.SocketTimeout(seconds, seconds)


_COMMAND_NAMES: dict[bytes, bytes] = {}


class _Phases:
    """The phase of opening a connection in progress and its deadline. Every read and write
    re-arms the socket's timeout to what is left of the phase (one slow byte at a time cannot
    stretch it), and fails at once when nothing is left."""

    # One lives as long as its connection (a worker holds thousands): no per-instance dict.
    __slots__ = ("settings", "name", "deadline", "timeouts", "command", "answer_by", "kept")

    def __init__(self, settings: ImapSettings):
        self.settings = settings
        self.name: str | None = None
        self.deadline: float | None = None
        # After login (set by ``connect``): the (short, slow-command) read timeouts, and the
        # command whose answer is awaited (named by ``CommandTimedOut``).
        self.timeouts: tuple[float, float, float, float] | None = None
        self.command = b"the command"
        # After login: when the answer to the command in flight must have ended
        # (``time.monotonic()``; None while idling: an IDLE lasts as long as we like), and
        # about how many bytes of untagged responses imaplib holds (``_PhasedIMAP4``).
        self.answer_by: float | None = None
        self.kept = 0

    def start(self, name: str) -> float:
        seconds = self.settings.phase_timeout(name)
        self.name, self.deadline = name, time.monotonic() + seconds
        return seconds

    def end(self) -> None:
        self.name = self.deadline = None

    def arm(self, sock: socket.socket) -> None:
        if self.deadline is None:
            return
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout(f"{self.name} timed out")
        sock.settimeout(left)

    def sending(self, sock: socket.socket, data: bytes) -> None:
        """After login: a command is sent; its answer is awaited with its timeout. (Lines
        that are not a command, such as a literal's data, change nothing.)"""
        if self.timeouts is None:
            return
        if data.startswith(_TAG_PREFIX):
            words = data.split(None, 3)
            name = words[1].upper() if len(words) > 1 else b""
            if name == b"UID" and len(words) > 2:
                name = words[2].upper()
                command = b"UID " + name
            else:
                command = name
            # Shared (only our own commands are sent: a small set), not one per connection.
            self.command = _COMMAND_NAMES.setdefault(command, command)
        elif data == b"DONE\r\n":
            name = self.command = b"DONE"
        elif self.answer_by is None:
            return
        else:
            # A literal's data (APPEND's message): the time it took us to send is not the
            # server's, so the answer's deadline starts again from here.
            name = self.command.rpartition(b" ")[2]
        slow = name in SLOW_COMMANDS
        sock.settimeout(self.timeouts[slow])
        self.answer_by = time.monotonic() + self.timeouts[2 + slow]

    def check_answer(self, sock: socket.socket) -> None:
        """After login, before a read: fail once the answer's deadline has passed, and let
        the read wait no longer than what is left of it (the socket's timeout is the
        command's read wait again with the next command)."""
        answer_by = self.answer_by
        if answer_by is None:
            return
        left = answer_by - time.monotonic()
        if left <= 0:
            raise self.too_long()
        wait = sock.gettimeout()
        if wait and left < wait:  # (0: a look at what is waiting, which never blocks)
            sock.settimeout(left)

    def too_long(self) -> AnswerTooLong:
        name = self.command.rpartition(b" ")[2]
        slow = name in SLOW_COMMANDS
        return AnswerTooLong(self.command.decode("ascii", "replace"), self.timeouts[2 + slow],
                             slow)

    def timed_out(self, sock: socket.socket) -> CommandTimedOut:
        name = self.command.rpartition(b" ")[2]
        return CommandTimedOut(self.command.decode("ascii", "replace"), sock.gettimeout() or 0,
                               name in SLOW_COMMANDS)


class _PhasedReader(socket.SocketIO):
    """The raw reader under imaplib's buffered ``file``: arms the phase before each read."""

    def __init__(self, sock: socket.socket, phases: _Phases):
        super().__init__(sock, "rb")
        self._phases = phases

    def readinto(self, buffer):
        phases = self._phases
        if phases.timeouts is None:
            phases.arm(self._sock)
        else:
            phases.check_answer(self._sock)
        try:
            return super().readinto(buffer)
        except (socket.timeout, TimeoutError):
            if phases.timeouts is None:
                raise  # a phase of connecting: ``connect`` names it
            if phases.answer_by is not None and phases.answer_by <= time.monotonic():
                raise phases.too_long() from None
            raise phases.timed_out(self._sock) from None
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            # A TLS socket in non-blocking mode (a peek for buffered input) that would block:
            # say so as a plain socket does, so the buffered reader keeps what it holds.
            return None


def greeting_error(greeting: bytes) -> str:
    """Why a greeting was not accepted: an IMAP server's own refusal (``* BYE ...``) in its
    words; anything else only by its kind (a foreign service's banner is not repeated)."""
    if greeting.startswith(b"* "):
        return f"The server refused the connection: {server_text(greeting)}"
    return f"Expected an IMAP greeting (* OK), got {answer_kind(greeting)}"


class _GreetingKept(imaplib.IMAP4):
    """Keeps the first line the server sent, and hands it to a failed greeting's error.
    Once the greeting is accepted the copy goes, and imaplib's own (``welcome``, which
    nothing reads after the connect: IMAPClient's ``welcome`` is then empty): a session
    lives for hours, a worker holds thousands, and some servers' greetings are unique to
    each connection, so they cannot be shared."""

    first_line: bytes | None = None

    def readline(self):
        line = super().readline()
        if self.first_line is None:
            self.first_line = line
        return line

    def _connect(self):
        try:
            super()._connect()
        except imaplib.IMAP4.error as exc:
            exc.greeting = self.first_line or b""
            raise
        self.first_line = b""  # read, accepted, and not None: no later line is kept
        self.welcome = b""


_TAG_PREFIX = b"EAPI"
_TAG_PATTERN = re.compile(br"(?P<tag>" + _TAG_PREFIX + br"\d+) (?P<type>[A-Z]+) (?P<data>.*)",
                          re.ASCII)


class _Tapped(imaplib.IMAP4):
    """Hands every line sent and read (a literal read only by its size) to ``_tap``, the
    account's protocol log, when it has one."""

    _tap: Callable[[str, bytes], None] | None = None

    def readline(self):
        line = super().readline()
        if self._tap is not None:
            self._tap("S", line)
        return line

    def read(self, size):
        data = super().read(size)
        if self._tap is not None:
            self._tap("S", b"[%d bytes]" % len(data))
        return data

    def send(self, data):
        if self._tap is not None:
            self._tap("C", bytes(data))
        return super().send(data)


# The longest line we read from a server. imaplib's own limit (1,000,000 bytes) is below what
# real folders send in one line: a message with thousands of MIME parts has a BODYSTRUCTURE
# that long, so the first index of its folder failed at the same FETCH on every retry, for
# ever; a SEARCH answer without ESEARCH (Gmail) lists every UID in one line, past 1 MB from
# about 140,000 messages. The limit still bounds what a broken or hostile server can make one
# connection hold while reading a line.
MAX_LINE = 64 * 1024 * 1024


class _LongLines(imaplib.IMAP4):
    """imaplib's ``readline`` with ``MAX_LINE`` in place of its 1,000,000 bytes, and its
    ``read`` of a literal refusing more than ``MAX_LITERAL``."""

    def readline(self):
        line = self.file.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise self.error(f"the server sent a line longer than {MAX_LINE:,} bytes")
        return line

    def read(self, size):
        if size > MAX_LITERAL:
            # Unread, the literal leaves the connection out of step: an abort, never reused.
            raise self.abort(f"the server announced a literal of {size:,} bytes, more than "
                             f"the {MAX_LITERAL:,} allowed")
        return super().read(size)


# The largest literal we read from a server. imaplib reads whatever size a server announces
# (``{4000000000}``), into one buffer that grows as the bytes come: a server streaming
# gigabytes grew the worker, which holds every tenant's sessions, until the kernel killed it.
# What we ask for is far below this: downloads are streamed in 1 MiB parts
# (``parts.DEFAULT_CHUNK``), a text body is at most ``maxBytes`` (50 MiB) plus one byte, a
# source parsed here or forwarded 32 or 25 MiB; a whole message read in one piece, had we a
# path that did, could be 100+ MB on servers that take such messages. 256 MiB leaves room for
# all of it, and for servers that send more than the partial fetch asked for.
MAX_LITERAL = 256 * 1024 * 1024

# The most a server can make one connection keep of the untagged responses imaplib files for
# later (``untagged_responses``: EXISTS, OK [...], FLAGS, a LIST's lines until its command
# ends...), in bytes with ``_KEPT_OVERHEAD`` per response. Its consumers take what they want
# of it and leave the rest until the next SELECT or IDLE: a server sending ``* OK x`` without
# end before its tagged answer grew a worker by hundreds of MB a second. A real session keeps
# a few kilobytes; a LIST of 100,000 folders, answered through imaplib, about 10 MB.
MAX_KEPT = 64 * 1024 * 1024
_KEPT_OVERHEAD = 64  # about what Python adds to each kept response (a bytes object, a slot)


# ``_PhasedIMAP4._file`` while the session idles with its reader let go (``park_reader``).
_PARKED = object()

# The read buffer every connection keeps while it reads (``io``'s default is 8 KiB). An
# idling session reads a line now and then; a FETCH's literals larger than the buffer are read
# straight into their own bytes, so a small buffer only costs a few more reads per long
# line. 8 KiB was a quarter of a worker's memory per idling account (bench/worker_scale.py).
READ_BUFFER = 1024


def _fixed(value):
    """A class attribute instances cannot shadow: sets are ignored, reads give ``value``."""
    return property(lambda self: value() if callable(value) else value,
                    lambda self, new: None)


def _no_message(text, secs=None):
    """imaplib's debug output, which is never written here (debug level 0)."""


class _PhasedIMAP4(_GreetingKept, _Tapped, _LongLines, imaplib.IMAP4):
    """imaplib's client with a deadline per phase: TCP connect, then (``secure``) the TLS
    handshake, then the greeting (and the CAPABILITY imaplib asks for with it)."""

    # imaplib's debugging state (its level, imapclient's logger in ``_mesg``, the line log
    # ``_log`` no longer keeps) fixed on the class, not set on each connection. Python keeps
    # an instance's attributes in a compact table shared by its class while the class's
    # instances use at most 30 names between them; these five made imaplib's 34, so every
    # connection had a dict of its own (1.6 KB rather than 0.3: bench/tls_session_memory.py
    # --trace). An attribute added here must keep the count under 30 (a test counts them).
    debug = _fixed(0)
    _mesg = _fixed(lambda: _no_message)
    _cmd_log_len = _fixed(0)
    _cmd_log_idx = _fixed(0)
    _cmd_log = _fixed(dict)

    def __init__(self, host: str, port: int, phases: _Phases,
                 context: ssl.SSLContext | None):
        self._phases = phases
        self._context = context
        self._file = None
        opener = phases.settings.protocol_log
        if opener is not None:  # else the class's None: no attribute per idle connection
            self._tap = opener()
        super().__init__(host, port, timeout=phases.settings.phase_timeout("connect"))

    # imaplib draws a random tag prefix per connection and compiles a pattern for it: a regex
    # object per connection (kilobytes each in a worker holding thousands) and 0.36 ms of
    # CPU per connect here (a restarted worker's thousands of connects). Tags only need to
    # be unique within a connection, so every connection has the one prefix and pattern, and
    # imaplib's own assignments are ignored: its compile of the same text is a cache hit.
    tagpre = property(lambda self: _TAG_PREFIX, lambda self, value: None)
    tagre = property(lambda self: _TAG_PATTERN, lambda self, value: None)

    def _get_capabilities(self):
        """The greeting's CAPABILITY response code where it has one (Dovecot's, most
        servers'), rather than asking again: one round trip fewer per connect.

        After STARTTLS what was said before TLS is discarded (RFC 3501 6.2.1), any capability
        line that came before dropped unread, and the server is not asked at once (imaplib
        would): only a login that needs the list before it (OAuth2's mechanism, AUTH=PLAIN for
        a name that is not ASCII) asks for it, through imapclient, which never answers from a
        list read before STARTTLS. After login the capabilities the server sent with its
        answer (Dovecot: in the tagged OK), or a CAPABILITY command then, give it. A password
        login, every reconnect of a restart or failover, saves a round trip on both sides."""
        greeted = self.untagged_responses.pop("CAPABILITY", None)
        if self._tls_established:
            self.capabilities = ()
            return
        if greeted and greeted[-1]:
            self.capabilities = tuple(str(greeted[-1], self._encoding).upper().split())
            return
        super()._get_capabilities()

    def _create_socket(self, timeout):
        self._phases.start("connect")
        settings = self._phases.settings
        sock = netguard.connect(self.host, self.port, timeout, settings.allow_private,
                                source_address=(settings.source_address, 0)
                                if settings.source_address else None,
                                proxy=settings.proxy)
        try:
            if self._context is not None:
                sock.settimeout(self._phases.start("tls"))
                sock = self._context.wrap_socket(sock, server_hostname=self.host)
            self._phases.start("greeting")
        except BaseException:
            sock.close()
            raise
        return sock

    # imaplib sets ``file`` right after each new socket (open, STARTTLS): read it through
    # the phase deadlines (Python 3.11's imaplib; the project pins 3.11).
    @property
    def file(self):
        reader = self._file
        if reader is _PARKED:
            reader = self._file = self._new_reader()
        return reader

    @file.setter
    def file(self, value):
        if value is not None:
            value.close()
            value = self._new_reader()
        self._file = value

    def held_reader(self):
        """The reader, or None while it is parked: asking ``file`` would make a new one, and
        a look at what is buffered after every IDLE made one for every idling session."""
        reader = self._file
        return None if reader is _PARKED else reader

    def _new_reader(self):
        return io.BufferedReader(_PhasedReader(self.sock, self._phases),
                                 buffer_size=READ_BUFFER)

    def park_reader(self) -> None:
        """Let go of the read buffer while the session idles; the next read makes a new one.

        An idling session reads nothing for minutes to hours, and its reader (the buffer,
        the buffered and the raw reader objects: about 1.3 KiB) was most of what the engine
        keeps per session beside TLS. The caller has made sure it holds no byte: a parked
        reader is closed, which gives its socket no more than its reference back."""
        reader = self._file
        if reader is not None and reader is not _PARKED:
            self._file = _PARKED
            reader.close()

    def send(self, data):
        self._phases.arm(self.sock)
        self._phases.sending(self.sock, data)
        return super().send(data)

    def _log(self, line):
        """imaplib keeps the repr of the last ten lines sent or read on every connection, for
        its own debugging (a LOGIN with its password among them): a couple of KB per idle
        account in a worker, and a repr of every line of a long FETCH. Kept nowhere here."""

    def idle_started(self) -> None:
        """IDLE's continuation has come: what the server says from now on comes when it
        likes, for as long as we idle (the deadline comes back with DONE)."""
        self._phases.answer_by = None

    def idle_line(self) -> bytes:
        """One line the server sent while we idle (``_get_line``), which once begun must end
        within IDLE's answer deadline: a line trickled a byte at a time, never ending, held
        the worker's thread that reads it for ever."""
        phases = self._phases
        if phases.timeouts is not None:
            phases.answer_by = time.monotonic() + phases.timeouts[2]
        try:
            return self._get_line()
        finally:
            phases.answer_by = None

    def _append_untagged(self, typ, dat):
        """imaplib's, bounded by ``MAX_KEPT``. Consumers pop what they take without telling
        us, so ``kept`` only grows, by each response's size: once it passes ``MAX_KEPT``,
        what is really held is counted. More than half of ``MAX_KEPT`` still held ends the
        connection; less starts the count again from there (a count is then due only after
        at least half of ``MAX_KEPT`` more, so counting stays a small part of the reading)."""
        phases = self._phases
        phases.kept += _kept_size(dat)
        if phases.kept > MAX_KEPT:
            phases.kept = sum(_kept_size(data) for kept in self.untagged_responses.values()
                              for data in kept) + _kept_size(dat)
            if phases.kept > MAX_KEPT // 2:
                raise self.abort(f"the server sent more than {MAX_KEPT // 2:,} bytes of "
                                 "untagged responses that no command asked for")
        super()._append_untagged(typ, dat)


def _kept_size(data) -> int:
    """About the bytes one response kept by imaplib takes: ``b"..."`` or ``(b"...", literal)``."""
    if isinstance(data, tuple):
        return sum(len(part) for part in data if part) + 2 * _KEPT_OVERHEAD
    return len(data or b"") + _KEPT_OVERHEAD


# Every name a connection sets on itself, in the order it first does (imaplib's own, then
# ours): taught to the class before any connection exists (``attribute_names``), so that
# connections opened sixteen at a time share one table of names (a test checks that a live
# connection sets no other).
CONNECTION_ATTRIBUTES = (
    "_phases", "_context", "_file", "_tap", "state", "literal", "tagged_commands",
    "untagged_responses", "continuation_response", "is_readonly", "tagnum",
    "_tls_established", "utf8_enabled", "_encoding", "Literal", "Untagged_status", "host",
    "port", "sock", "first_line", "mo", "welcome", "capabilities",
    "PROTOCOL_VERSION",
)
attribute_names.learn(_PhasedIMAP4, CONNECTION_ATTRIBUTES)


class _PhasedClient(imapclient.IMAPClient):
    def __init__(self, settings: ImapSettings, phases: _Phases):
        self._phases = phases
        super().__init__(
            settings.host, port=settings.port, ssl=settings.secure,
            ssl_context=tls_context(settings.tls_verify, settings.tls_min_version)
            if settings.secure else None,
            timeout=_socket_timeout(settings.timeout))
        # IMAPClient hands imaplib a logger adapter of its own (a bound method and an adapter
        # with its dict, ~1.6 KB per connection) and debug level 5, at which imaplib formats
        # the repr of every line sent and read for it: both are ignored (``_PhasedIMAP4``'s
        # fixed ``debug`` and ``_mesg``). Our protocol log is ``_Tapped``.

    def _create_IMAP4(self):  # noqa: N802 - IMAPClient's name
        return _PhasedIMAP4(self.host, self.port, self._phases,
                            self.ssl_context if self.ssl else None)


_TIMED_OUT = {
    "connect": "Timed out connecting to {host}:{port}",
    "tls": "Timed out during the TLS handshake with {host}:{port}",
    "greeting": "Timed out waiting for the greeting of {host}:{port}",
}


def _open(settings: ImapSettings, phases: _Phases) -> imapclient.IMAPClient:
    try:
        return _PhasedClient(settings, phases)
    except netguard.InternalAddress as exc:
        raise HostNotAllowed(f"{exc}: mail servers there are not allowed") from None
    except netguard.Unresolvable as exc:
        error = ConnectFailed(str(exc))
        error.reached = False
        raise error from None
    except ssl.SSLCertVerificationError as exc:
        raise TlsFailed(f"TLS certificate not trusted: {exc.verify_message}") from None
    except ssl.SSLError as exc:
        raise TlsFailed(f"TLS handshake failed: {exc.reason or exc}") from None
    except socket.gaierror as exc:
        raise ConnectFailed(f"Cannot resolve {settings.host}: {exc.strerror}") from None
    except (socket.timeout, TimeoutError):
        message = _TIMED_OUT.get(phases.name or "connect", _TIMED_OUT["connect"]).format(
            host=settings.host, port=settings.port)
        error = (TlsFailed if phases.name == "tls" else ConnectFailed)(message)
        error.reached = False
        raise error from None
    except OSError as exc:
        raise ConnectFailed(
            f"Cannot connect to {settings.host}:{settings.port}: {exc.strerror or exc}"
        ) from None
    except imap_exc.IMAPClientError as exc:
        raise ConnectFailed(greeting_error(getattr(exc, "greeting", b""))) from None


def bearer_login(client: imapclient.IMAPClient, user: str, token: str,
                 mechanism: str | None = None) -> None:
    """Log in with an OAuth2 access token: XOAUTH2 where the server offers it (Gmail,
    Outlook), else the standard OAUTHBEARER (RFC 7628); ``mechanism`` forces one."""
    if mechanism is None:
        capabilities = {(c.decode("ascii", "replace") if isinstance(c, bytes) else str(c)).upper()
                        for c in client.capabilities()}
        offered = "AUTH=XOAUTH2" in capabilities or "AUTH=OAUTHBEARER" not in capabilities
        mechanism = "XOAUTH2" if offered else "OAUTHBEARER"
    if mechanism == "OAUTHBEARER":
        client.oauthbearer_login(user, token)
    else:
        client.oauth2_login(user, token)


def password_login(client: imapclient.IMAPClient, user: str, password: str) -> None:
    """LOGIN, or AUTHENTICATE PLAIN when the user name or password is not ASCII: LOGIN takes
    ASCII strings (imaplib cannot even send others: a UnicodeEncodeError), while SASL PLAIN
    carries UTF-8 (RFC 4616), which is how servers take such credentials (RFC 6855)."""
    if (user + password).isascii():
        client.login(user, password)
    elif client.has_capability("AUTH=PLAIN"):
        client.plain_login(user, password)
    else:
        raise AuthenticationFailed("The server takes only ASCII user names and passwords "
                                   "(it offers no AUTH=PLAIN for others)")


def _login(client: imapclient.IMAPClient, settings: ImapSettings) -> None:
    try:
        if settings.access_token:
            bearer_login(client, settings.user or "", settings.access_token)
        else:
            password_login(client, settings.user or "", settings.password or "")
    except imap_exc.LoginError as exc:
        text = _text(exc)
        raise AuthenticationFailed(text or "Authentication failed", server_response=text) from None
    except (socket.timeout, TimeoutError):
        raise ConnectFailed("Timed out waiting for the server to answer LOGIN") from None
    except (OSError, imap_exc.IMAPClientError) as exc:
        raise ConnectFailed(f"Connection lost during login: {server_text(exc)}") from None


def _text(exc: Exception) -> str:
    """The server's answer in a login error, as words (imapclient passes it on as the
    ``b'...'`` repr of the bytes imaplib got)."""
    return server_text(exc)


def _close_quietly(client: imapclient.IMAPClient) -> None:
    try:
        client.shutdown()
    except Exception:  # noqa: BLE001 - already failing; closing is best effort
        pass
