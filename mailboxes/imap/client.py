"""Opening an authenticated IMAP connection (no Django here: plain values in, a client out).

``connect`` takes an ``ImapSettings`` value, never an account row, so the protocol layer never
loads or decrypts anything itself. Failures are raised as one of three ``ImapError`` kinds,
because the caller's reaction differs: an authentication failure is retried slowly (the user
must fix something), a connection or TLS failure is retried with normal backoff.

``secure=True`` means TLS from the first byte (port 993). ``secure=False`` upgrades with
STARTTLS whenever the server offers it and stays plain otherwise, as mail clients do.

The host is resolved and checked when the connection is made, and the socket goes to the
checked address (``emailapi.egress.addresses``): a host on an internal address is refused
(``HostNotAllowed``) unless ``allow_private``, whatever its DNS said at registration. A
greeting that is not IMAP is named by its kind, never repeated (``emailapi.wording``).
"""

from __future__ import annotations

import functools
import imaplib
import socket
import ssl
from dataclasses import dataclass, field

import imapclient
from imapclient import exceptions as imap_exc
from imapclient import imap4, tls

from emailapi.egress import addresses
from emailapi.wording import answer_kind, server_text


class ImapError(Exception):
    """Base of the errors ``connect`` raises; ``code`` is the API's machine code."""

    code = "ImapError"

    def __init__(self, message: str, server_response: str | None = None):
        super().__init__(message)
        self.server_response = server_response


class ConnectFailed(ImapError):
    code = "ConnectionError"


class TlsFailed(ImapError):
    code = "TLSError"


class AuthenticationFailed(ImapError):
    code = "AuthenticationFailed"


class HostNotAllowed(ImapError):
    """The host is (or now resolves to) an internal address, which is not allowed."""

    code = "HostNotAllowed"


@dataclass(frozen=True)
class ImapSettings:
    host: str
    port: int
    secure: bool
    user: str
    password: str | None = field(default=None, repr=False)
    access_token: str | None = field(default=None, repr=False)
    tls_verify: bool = True
    timeout: float = 30.0
    allow_private: bool = False  # connect to loopback, private, link-local... addresses


@functools.lru_cache(maxsize=2)
def tls_context(verify: bool) -> ssl.SSLContext:
    """One shared context per verification mode. Each new context loads the whole CA store
    (~850 KiB and ~40 ms of CPU): made per connection, it was most of a worker's memory per
    idling account. Contexts are safe to share between threads and connections."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def connect(settings: ImapSettings) -> imapclient.IMAPClient:
    """Return a logged-in client; the caller must ``logout()`` it."""
    client = _open(settings)
    try:
        if not settings.secure and client.has_capability("STARTTLS"):
            try:
                client.starttls(tls_context(settings.tls_verify))
            except ssl.SSLError as exc:
                raise TlsFailed(f"STARTTLS failed: {exc.reason or exc}") from None
        _login(client, settings)
    except BaseException:
        _close_quietly(client)
        raise
    return client


def _open(settings: ImapSettings) -> imapclient.IMAPClient:
    try:
        return _CheckedIMAPClient(
            settings.host,
            port=settings.port,
            ssl=settings.secure,
            ssl_context=tls_context(settings.tls_verify) if settings.secure else None,
            timeout=settings.timeout,
            allow_private=settings.allow_private,
        )
    except addresses.InternalAddress as exc:
        raise HostNotAllowed(f"{exc}: mail servers there are not allowed") from None
    except addresses.Unresolvable as exc:
        raise ConnectFailed(str(exc)) from None
    except ssl.SSLCertVerificationError as exc:
        raise TlsFailed(f"TLS certificate not trusted: {exc.verify_message}") from None
    except ssl.SSLError as exc:
        raise TlsFailed(f"TLS handshake failed: {exc.reason or exc}") from None
    except socket.gaierror as exc:
        raise ConnectFailed(f"Cannot resolve {settings.host}: {exc.strerror}") from None
    except (socket.timeout, TimeoutError):
        raise ConnectFailed(
            f"Timed out connecting to {settings.host}:{settings.port}"
        ) from None
    except OSError as exc:
        raise ConnectFailed(
            f"Cannot connect to {settings.host}:{settings.port}: {exc.strerror or exc}"
        ) from None
    except imap_exc.IMAPClientError as exc:
        raise ConnectFailed(greeting_error(getattr(exc, "greeting", b""))) from None


def greeting_error(greeting: bytes) -> str:
    """Why a greeting was not accepted: an IMAP server's own refusal (``* BYE ...``) in its
    words; anything else only by its kind (a foreign service's banner is not repeated)."""
    if greeting.startswith(b"* "):
        return f"The server refused the connection: {server_text(greeting)}"
    return f"Expected an IMAP greeting (* OK), got {answer_kind(greeting)}"


class _GreetingKept(imaplib.IMAP4):
    """Keeps the first line the server sent, and hands it to a failed greeting's error."""

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


class _CheckedPlain(_GreetingKept, imap4.IMAP4WithTimeout):
    def __init__(self, host: str, port: int, timeout, allow_private: bool):
        self._allow_private = allow_private
        super().__init__(host, port, timeout)

    def _create_socket(self, timeout=None):
        return addresses.connect(self.host, self.port,
                                 self._timeout if timeout is None else timeout,
                                 self._allow_private)


class _CheckedTLS(_GreetingKept, tls.IMAP4_TLS):
    def __init__(self, host: str, port: int, ssl_context, timeout, allow_private: bool):
        self._allow_private = allow_private
        super().__init__(host, port, ssl_context, timeout)

    def _create_socket(self, timeout=None):
        sock = addresses.connect(self.host, self.port,
                                 self._timeout if timeout is None else timeout,
                                 self._allow_private)
        try:
            return tls.wrap_socket(sock, self.ssl_context, self.host)
        except BaseException:
            sock.close()
            raise


class _CheckedIMAPClient(imapclient.IMAPClient):
    """``IMAPClient`` whose socket goes to a checked address of the host (the host's name
    still goes into TLS SNI and the certificate check, STARTTLS included)."""

    def __init__(self, host: str, *, allow_private: bool, **kwargs):
        self._allow_private = allow_private
        super().__init__(host, **kwargs)

    def _create_IMAP4(self):
        connect_timeout = getattr(self._timeout, "connect", None)
        if self.ssl:
            return _CheckedTLS(self.host, self.port, self.ssl_context, connect_timeout,
                               self._allow_private)
        return _CheckedPlain(self.host, self.port, connect_timeout, self._allow_private)


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
