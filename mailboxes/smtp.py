"""Opening an authenticated SMTP submission connection (no Django: plain values in).

``secure=True`` is TLS from the start (port 465). ``secure=False`` upgrades with STARTTLS when
the server offers it and goes plain otherwise. AUTH uses whatever PLAIN/LOGIN the server
offers (smtplib picks), or, when an access token is given, a bearer mechanism: XOAUTH2 where
the server offers it (Gmail, Outlook), else the standard OAUTHBEARER (RFC 7628), as IMAP does
(``mailboxes.imap.client.bearer_login``).

As for IMAP, the socket goes to a checked address of the host (``SmtpHostNotAllowed`` for an
internal one unless ``allow_private``), and a greeting that is not SMTP is named by its kind,
never repeated.
"""

from __future__ import annotations

import base64
import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

from emailapi.lib import netguard
from emailapi.lib.wording import answer_kind, server_text
from mailboxes.imap.client import tls_context


class SmtpError(Exception):
    code = "SmtpError"

    def __init__(self, message: str, response_code: int | None = None):
        super().__init__(message)
        self.response_code = response_code


class SmtpConnectFailed(SmtpError):
    code = "ConnectionError"


class SmtpTlsFailed(SmtpError):
    code = "TLSError"


class SmtpAuthenticationFailed(SmtpError):
    code = "AuthenticationFailed"


class SmtpHostNotAllowed(SmtpError):
    code = "HostNotAllowed"


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    secure: bool
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    access_token: str | None = field(default=None, repr=False)
    tls_verify: bool = True
    timeout: float = 30.0
    local_hostname: str | None = None
    allow_private: bool = False  # connect to loopback, private, link-local... addresses
    # The account's protocol log, as ``ImapSettings.protocol_log``: each command sent ("C")
    # and each reply line ("S", ``250-...``/``250 ...``) goes to the tap it opens.
    protocol_log: Callable[[], Callable[[str, bytes], None]] | None = field(
        default=None, repr=False, compare=False)


def connect(settings: SmtpSettings) -> smtplib.SMTP:
    """Return a connected, greeted (EHLO) and authenticated SMTP client; caller must quit()."""
    client = _open(settings)
    try:
        client.ehlo()
        if not settings.secure and client.has_extn("starttls"):
            try:
                client.starttls(context=tls_context(settings.tls_verify))
            except ssl.SSLError as exc:
                raise SmtpTlsFailed(f"STARTTLS failed: {exc.reason or exc}") from None
            client.ehlo()
        if settings.user:
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


def _open(settings: SmtpSettings) -> smtplib.SMTP:
    if settings.secure:
        client = _CheckedSMTPSSL(local_hostname=settings.local_hostname,
                                 timeout=settings.timeout,
                                 context=tls_context(settings.tls_verify))
    else:
        client = _CheckedSMTP(local_hostname=settings.local_hostname, timeout=settings.timeout)
    client.allow_private = settings.allow_private
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
    """``smtplib.SMTP`` whose socket goes to a checked address of the host, and which keeps
    the start of the server's first answer (for ``greeting_error``)."""

    allow_private = False
    greeting: bytes | None = None
    tap: Callable[[str, bytes], None] | None = None  # the protocol log (SmtpSettings)

    def _get_socket(self, host, port, timeout):
        return netguard.connect(host, port, timeout, self.allow_private, self.source_address)

    def getreply(self):
        if self.greeting is None and self.sock is not None:
            if self.file is None:
                self.file = self.sock.makefile("rb")
            self.greeting = self.file.peek(1)[:512]
        code, message = super().getreply()
        if self.tap is not None:
            lines = message.split(b"\n") if message else [b""]
            for number, line in enumerate(lines):
                joint = b" " if number == len(lines) - 1 else b"-"
                self.tap("S", b"%d%s%s" % (code, joint, line))
        return code, message

    def send(self, s):
        if self.tap is not None:
            self.tap("C", s.encode("utf-8", "replace") if isinstance(s, str) else bytes(s))
        return super().send(s)


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
