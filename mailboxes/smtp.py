"""Opening an authenticated SMTP submission connection (no Django: plain values in).

``secure=True`` is TLS from the start (port 465). ``secure=False`` upgrades with STARTTLS when
the server offers it and goes plain otherwise. AUTH uses whatever PLAIN/LOGIN the server
offers (smtplib picks), or, when an access token is given, a bearer mechanism: XOAUTH2 where
the server offers it (Gmail, Outlook), else the standard OAUTHBEARER (RFC 7628), as IMAP does
(``mailboxes.imap.client.bearer_login``).

As for IMAP, the socket goes to a checked address of the host (``SmtpHostNotAllowed`` for an
internal one unless ``allow_private``), and a greeting that is not SMTP is named by its kind,
never repeated.

The server is the tenant's, so nothing it sends is trusted to end (``_CheckedSMTP``): a reply
is cut off past ``MAX_REPLY_LINES``/``MAX_REPLY_BYTES``, must be complete within ``timeout``
of our asking (not merely show a byte every ``timeout``), and the whole session ends at
``session_timeout``, reads and writes alike. Each ends the session with an ``SmtpError`` in
words.
"""

from __future__ import annotations

import base64
import functools
import io
import smtplib
import socket
import ssl
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from emailapi.lib import netguard, tunnels
from emailapi.lib.wording import answer_kind, server_text
from mailboxes.imap.client import DEFAULT_TLS_VERSION, tls_context


class SmtpError(Exception):
    code = "SmtpError"

    def __init__(self, message: str, response_code: int | None = None):
        super().__init__(message)
        self.response_code = response_code


class SmtpConnectFailed(SmtpError):
    code = "ConnectionError"


class SmtpTlsFailed(SmtpError):
    code = "TLSError"


class SmtpTlsRequired(SmtpTlsFailed):
    """The password or token was not sent: the settings allow it only over TLS that verified
    the server's certificate (``SmtpSettings.tls_required``, its words the message), and this
    connection has none. As ``mailboxes.imap.client.TlsRequired``."""

    code = "TLSRequired"


class SmtpAuthenticationFailed(SmtpError):
    code = "AuthenticationFailed"


class SmtpHostNotAllowed(SmtpError):
    code = "HostNotAllowed"


class SmtpTimeout(SmtpError):
    """No complete answer in time (a reply's ``timeout``, or the ``session_timeout``)."""

    code = "Timeout"


class SmtpProtocolError(SmtpError):
    """The server's answer broke SMTP (a line or a reply too long). Not a refusal: it carries
    no reply code, so a send is tried again rather than failed as if the server said 5xx."""

    code = "ProtocolError"


# A reply is cut off past this many lines or bytes. A real EHLO answer is 10-20 lines of well
# under 100 bytes; smtplib caps only each line (8 KB), not their number, so a server sending
# ``250-...`` forever grew the list of lines until the process ran out of memory.
MAX_REPLY_LINES = 500
MAX_REPLY_BYTES = 256 * 1024
# What we send (the message, in DATA) goes out in pieces of this size, each under the
# timeout: a plain socket's ``sendall`` times the whole message at once (a large one failed on
# a slow link), a TLS socket's times each record (a server reading a trickle held it for ever).
SEND_CHUNK = 16 * 1024


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    secure: bool
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    access_token: str | None = field(default=None, repr=False)
    tls_verify: bool = True
    tls_min_version: str = DEFAULT_TLS_VERSION  # a key of imap.client.TLS_VERSIONS
    timeout: float = 30.0
    local_hostname: str | None = None  # the EHLO name; None: smtplib's (``default_ehlo_name``)
    # The local address the connection goes out from (bound before connecting); None: the
    # operating system's choice. An address the machine lacks fails the connect.
    source_address: str | None = None
    allow_private: bool = False  # connect to loopback, private, link-local... addresses
    # The proxy the connection goes through (EmailEngine's ``proxy``), None for none: what is
    # connected to and checked is the proxy, which reaches ``host`` by name (``tunnels``).
    proxy: tunnels.Proxy | None = None
    # Seconds the whole session (connect to quit) may take, whatever the server's pace; None:
    # only each reply is bounded (by ``timeout``). A sender derives it from its lease.
    session_timeout: float | None = None
    # The account's protocol log, as ``ImapSettings.protocol_log``: each command sent ("C")
    # and each reply line ("S", ``250-...``/``250 ...``) goes to the tap it opens.
    protocol_log: Callable[[], Callable[[str, bytes], None]] | None = field(
        default=None, repr=False, compare=False)
    # Why the secret may go only over TLS that verified the server's certificate, or None
    # (``ImapSettings.tls_required``).
    tls_required: str | None = None


def connect(settings: SmtpSettings) -> smtplib.SMTP:
    """Return a connected, greeted (EHLO) and authenticated SMTP client; caller must quit()."""
    client = _open(settings)
    verified = settings.secure and settings.tls_verify
    try:
        client.ehlo()
        if not settings.secure and client.has_extn("starttls"):
            try:
                client.starttls(context=tls_context(settings.tls_verify, settings.tls_min_version))
            except ssl.SSLError as exc:
                raise SmtpTlsFailed(f"STARTTLS failed: {exc.reason or exc}") from None
            except smtplib.SMTPResponseException as exc:  # offered, then refused (454 ...)
                raise SmtpTlsFailed(f"The server refused STARTTLS: {exc.smtp_code} "
                                    f"{server_text(exc.smtp_error)}".strip(),
                                    exc.smtp_code if exc.smtp_code > 0 else None) from None
            client.ehlo()
            verified = settings.tls_verify
        if settings.user:
            if settings.tls_required and not verified:
                raise SmtpTlsRequired(settings.tls_required)
            _login(client, settings)
    except smtplib.SMTPServerDisconnected as exc:
        _close_quietly(client)
        raise SmtpConnectFailed(f"Server closed the connection: {exc}") from None
    except (socket.timeout, TimeoutError):
        _close_quietly(client)
        raise SmtpConnectFailed("Timed out waiting for the SMTP server") from None
    except BaseException:
        _close_quietly(client)
        raise
    return client


@functools.cache
def default_ehlo_name() -> str:
    """The name smtplib greets with when given none: the host's fully qualified name, else
    its address in brackets (``SMTP.__init__`` works it out; nothing connects). Asked by a
    sender that reports the name and then hands it to ``SmtpSettings.local_hostname``. Once
    per process: working it out is a name lookup (``socket.getfqdn``), which a send should
    not wait for each time."""
    return smtplib.SMTP().local_hostname


def _open(settings: SmtpSettings) -> smtplib.SMTP:
    # smtplib binds ``source_address`` before connecting (``_CheckedSMTP._get_socket``).
    source = (settings.source_address, 0) if settings.source_address else None
    if settings.secure:
        client = _CheckedSMTPSSL(local_hostname=settings.local_hostname,
                                 timeout=settings.timeout, source_address=source,
                                 context=tls_context(settings.tls_verify, settings.tls_min_version))
    else:
        client = _CheckedSMTP(local_hostname=settings.local_hostname, timeout=settings.timeout,
                              source_address=source)
    client.allow_private = settings.allow_private
    client.proxy = settings.proxy
    if settings.session_timeout is not None:
        client.session_timeout = settings.session_timeout
        client.session_deadline = time.monotonic() + settings.session_timeout
    client.tap = settings.protocol_log() if settings.protocol_log is not None else None
    client._host = settings.host  # what TLS (SNI, certificate check, STARTTLS) names
    try:
        code, message = client.connect(settings.host, settings.port)
    except BaseException as exc:
        _close_quietly(client)
        error = _open_error(exc, settings)
        if error is exc:
            raise
        raise error from None
    if code != 220:
        _close_quietly(client)
        raise SmtpConnectFailed(greeting_error(code, message, client.greeting),
                                code if code > 0 else None)
    return client


def greeting_error(code: int, message, greeting: bytes | None) -> str:
    """Why a greeting was not accepted: an SMTP server's own refusal (``554 ...``) in its
    words; anything that is not SMTP only by its kind (a foreign banner is not repeated)."""
    if 200 <= code < 600:
        return f"Server refused the session: {code} {server_text(message)}".strip()
    return f"Expected an SMTP greeting (220), got {answer_kind(greeting)}"


class _CheckedSMTP(smtplib.SMTP):
    """``smtplib.SMTP`` whose socket goes to a checked address of the host, which keeps the
    start of the server's first answer (for ``greeting_error``), and which bounds what the
    server can make it do (see the module doc): smtplib's ``getreply`` reads continuation
    lines without limit, and its socket timeout is per read, so a server showing a byte every
    few seconds held a send job (or a verifyAccount thread) for ever."""

    allow_private = False
    proxy: tunnels.Proxy | None = None
    greeting: bytes | None = None
    tap: Callable[[str, bytes], None] | None = None  # the protocol log (SmtpSettings)
    session_timeout: float | None = None
    session_deadline: float | None = None  # time.monotonic()
    _reply_deadline: float | None = None  # while a reply is read

    def _get_socket(self, host, port, timeout):
        return netguard.connect(host, port, self._wait(), self.allow_private,
                                self.source_address, proxy=self.proxy)

    def _wait(self) -> float:
        """Seconds the next read or write may wait: ``timeout``, cut to what is left of the
        reply's and the session's time; ``SmtpTimeout`` once either has run out."""
        now = time.monotonic()
        wait = self.timeout if isinstance(self.timeout, (int, float)) else 30.0
        for deadline in (self.session_deadline, self._reply_deadline):
            if deadline is not None:
                if now >= deadline:
                    raise self._timed_out()
                wait = min(wait, deadline - now)
        return wait

    def _timed_out(self) -> SmtpTimeout:
        if self.session_deadline is not None and time.monotonic() >= self.session_deadline:
            return SmtpTimeout(f"The SMTP session took longer than the {self.session_timeout:g} s "
                               "allowed for it")
        return SmtpTimeout(f"The SMTP server did not finish its answer within {self.timeout:g} s")

    def getreply(self):
        """smtplib's ``getreply`` with bounds: at most ``MAX_REPLY_LINES`` lines and
        ``MAX_REPLY_BYTES`` bytes, complete within ``timeout`` (and the session's deadline).
        Past a bound the connection is closed: what follows could not be told apart from the
        next reply."""
        if self.sock is None:
            raise smtplib.SMTPServerDisconnected("Not connected to the SMTP server")
        if self.file is None:  # new socket: connect(), or STARTTLS's wrapped one
            self.file = io.BufferedReader(_ReplyReader(self))
        try:
            self._reply_deadline = time.monotonic() + self._wait()
            if self.greeting is None:
                self.greeting = self.file.peek(1)[:512]
            code, message = self._read_reply()
            self.sock.settimeout(self._session_wait())  # for what follows (e.g. STARTTLS)
        except (socket.timeout, TimeoutError):
            self.close()
            raise self._timed_out() from None
        except OSError as exc:
            self.close()
            raise smtplib.SMTPServerDisconnected(
                f"Connection unexpectedly closed: {exc.strerror or type(exc).__name__}") from None
        except BaseException:
            self.close()
            raise
        finally:
            self._reply_deadline = None
        if self.tap is not None:
            lines = message.split(b"\n") if message else [b""]
            for number, line in enumerate(lines):
                joint = b" " if number == len(lines) - 1 else b"-"
                self.tap("S", b"%d%s%s" % (code, joint, line))
        return code, message

    def _read_reply(self) -> tuple[int, bytes]:
        lines: list[bytes] = []
        size = 0
        while True:
            line = self.file.readline(smtplib._MAXLINE + 1)
            if not line:
                raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
            if len(line) > smtplib._MAXLINE:
                raise SmtpProtocolError("The SMTP server sent a line longer than "
                                        f"{smtplib._MAXLINE} bytes")
            size += len(line)
            lines.append(line[4:].strip(b" \t\r\n"))
            try:
                code = int(line[:3])
            except ValueError:  # not a reply line: smtplib's -1, and no continuation read
                return -1, b"\n".join(lines)
            if line[3:4] != b"-":
                return code, b"\n".join(lines)
            if len(lines) >= MAX_REPLY_LINES or size >= MAX_REPLY_BYTES:
                raise SmtpProtocolError(f"The SMTP server's answer ran past {len(lines)} lines "
                                        f"({size} bytes) without ending")

    def _session_wait(self) -> float:
        """The socket's timeout between replies: ``timeout``, cut to the session's time left
        (never zero: that would make the socket non-blocking)."""
        wait = self.timeout if isinstance(self.timeout, (int, float)) else 30.0
        if self.session_deadline is not None:
            wait = min(wait, self.session_deadline - time.monotonic())
        return max(wait, 0.001)

    def send(self, s):
        """smtplib's ``send`` in ``SEND_CHUNK`` pieces, each waiting at most ``timeout`` and
        none past the session's deadline."""
        if self.tap is not None:
            self.tap("C", s.encode("utf-8", "replace") if isinstance(s, str) else bytes(s))
        if self.sock is None:
            raise smtplib.SMTPServerDisconnected("please run connect() first")
        data = memoryview(s.encode(self.command_encoding) if isinstance(s, str) else s)
        sys.audit("smtplib.send", self, s)
        try:
            for start in range(0, len(data), SEND_CHUNK):
                self.sock.settimeout(self._wait())
                self.sock.sendall(data[start:start + SEND_CHUNK])
        except (socket.timeout, TimeoutError):
            self.close()
            raise self._timed_out() from None
        except OSError:
            self.close()
            raise smtplib.SMTPServerDisconnected("Server not connected") from None
        except BaseException:
            self.close()
            raise


class _ReplyReader(io.RawIOBase):
    """The client's socket as ``getreply`` reads it: each read waits at most what
    ``_CheckedSMTP._wait`` allows, so a reply trickled a byte at a time still ends."""

    def __init__(self, client: _CheckedSMTP):
        super().__init__()
        self._client = client
        self._sock = client.sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        self._sock.settimeout(self._client._wait())
        return self._sock.recv_into(buffer)


class _CheckedSMTPSSL(smtplib.SMTP_SSL, _CheckedSMTP):
    """TLS from the first byte; ``SMTP_SSL._get_socket`` wraps what ``_CheckedSMTP`` opens."""


def _open_error(exc: BaseException, settings: SmtpSettings) -> BaseException:
    """A failure to connect and read the greeting, as an ``SmtpError`` (others unchanged)."""
    where = f"{settings.host}:{settings.port}"
    if isinstance(exc, netguard.InternalAddress):
        return SmtpHostNotAllowed(f"{exc}: mail servers there are not allowed")
    if isinstance(exc, netguard.Unresolvable):
        return SmtpConnectFailed(str(exc))
    if isinstance(exc, ssl.SSLCertVerificationError):
        return SmtpTlsFailed(f"TLS certificate not trusted: {exc.verify_message}")
    if isinstance(exc, ssl.SSLError):
        return SmtpTlsFailed(f"TLS handshake failed: {exc.reason or exc}")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return SmtpConnectFailed(f"Timed out waiting for {where}")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return SmtpConnectFailed("Server closed the connection before its greeting")
    if isinstance(exc, OSError):
        return SmtpConnectFailed(f"Cannot connect to {where}: {exc.strerror or exc}")
    return exc


def _login(client: smtplib.SMTP, settings: SmtpSettings) -> None:
    try:
        if settings.access_token:
            bearer_login(client, settings)
        else:
            password_login(client, settings.user or "", settings.password or "")
    except smtplib.SMTPAuthenticationError as exc:
        raise SmtpAuthenticationFailed(
            f"{exc.smtp_code} {server_text(exc.smtp_error)}".strip(), exc.smtp_code
        ) from None
    except smtplib.SMTPNotSupportedError:
        raise SmtpAuthenticationFailed("The server does not offer AUTH on this connection") from None
    except smtplib.SMTPException as exc:
        raise SmtpAuthenticationFailed(f"Authentication failed: {exc}") from None


def password_login(client: smtplib.SMTP, user: str, password: str) -> None:
    """smtplib's AUTH, or AUTH PLAIN in UTF-8 (RFC 4616) when the user name or password is
    not ASCII: smtplib encodes every mechanism's answer as ASCII (a UnicodeEncodeError)."""
    if (user + password).isascii():
        client.login(user, password)
        return
    if "PLAIN" not in (client.esmtp_features.get("auth") or "").upper().split():
        raise SmtpAuthenticationFailed("The server takes only ASCII user names and passwords "
                                       "(it offers no AUTH PLAIN for others)")
    blob = base64.b64encode(f"\0{user}\0{password}".encode()).decode("ascii")
    code, answer = client.docmd("AUTH", f"PLAIN {blob}")
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, answer)


def bearer_mechanism(client: smtplib.SMTP) -> str:
    """XOAUTH2 unless the EHLO's AUTH line offers OAUTHBEARER and not XOAUTH2: the providers
    that matter speak XOAUTH2, and a server naming neither may still take it."""
    offered = set((client.esmtp_features.get("auth") or "").upper().split())
    return "OAUTHBEARER" if "OAUTHBEARER" in offered and "XOAUTH2" not in offered else "XOAUTH2"


def bearer_login(client: smtplib.SMTP, settings: SmtpSettings, mechanism: str | None = None) -> None:
    """AUTH with the access token; ``mechanism`` forces XOAUTH2 or OAUTHBEARER.

    On a refused token both mechanisms answer with a 334 challenge carrying a JSON error
    (RFC 7628 3.2.2; Google does the same for XOAUTH2) and wait for the client to end the
    exchange (``\\x01`` for OAUTHBEARER, an empty line for XOAUTH2) before the final 535. The
    challenge is not kept: the reply code and the final line are what we report."""
    mechanism = mechanism or bearer_mechanism(client)
    user, token = settings.user or "", settings.access_token or ""
    if mechanism == "OAUTHBEARER":
        authzid = user.replace("=", "=3D").replace(",", "=2C")  # RFC 5801 saslname
        blob = (f"n,a={authzid},\x01host={settings.host}\x01port={settings.port}"
                f"\x01auth=Bearer {token}\x01\x01")
        abort = base64.b64encode(b"\x01").decode()
    else:
        blob = f"user={user}\x01auth=Bearer {token}\x01\x01"
        abort = ""
    code, response = client.docmd("AUTH", f"{mechanism} {base64.b64encode(blob.encode()).decode()}")
    if code == 334:
        code, response = client.docmd(abort)
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, response)


def _close_quietly(client: smtplib.SMTP) -> None:
    try:
        client.close()
    except Exception:  # noqa: BLE001 - best effort
        pass
