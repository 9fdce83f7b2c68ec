"""A recording SMTP submission server for tests, built on aiosmtpd.

Why: sending mail through the API must be observable without any real mail
relay.  This server accepts AUTH PLAIN/LOGIN (over plain TCP too, since test
settings use ``secure: False``), optionally offers STARTTLS with a throwaway
certificate, checks credentials against an in-memory dict (so a test can
reuse a Dovecot ``MailUser``'s credentials), and records every accepted
message instead of delivering it.  It listens on a free 127.0.0.1 port, so
one instance per pytest-xdist worker is fine.

OAuth2 mailboxes send with a bearer token: ``offer("XOAUTH2", "OAUTHBEARER")``
chooses which of the two mechanisms EHLO advertises (each connection reads the
current choice), and ``check_tokens_with`` says how a token is judged (e.g. by
the test OAuth2 provider's introspection).  A refused token gets the exchange
real servers use: a 334 challenge with a JSON error, then 535 once the client
has answered it.

No Django imports here: this module must work for any test.
"""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import errno
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Callable

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from .net import LOOPBACK, find_free_port
from .tls import server_context, write_self_signed_cert

__all__ = ["SmtpServer", "ReceivedMessage"]

PASSWORD_MECHANISMS = ("PLAIN", "LOGIN")
BEARER_MECHANISMS = ("XOAUTH2", "OAUTHBEARER")
_INVALID_TOKEN = base64.b64encode(
    b'{"status":"invalid_token","schemes":"bearer","scope":"mail"}').decode()


@dataclass
class ReceivedMessage:
    """One message accepted by the server, exactly as it arrived."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    auth_user: str | None = None
    peer: str | None = None  # the client's address: where the connection came from
    helo: str | None = None  # the name the client gave in EHLO/HELO

    @property
    def message(self) -> EmailMessage:
        """The data parsed with the modern email API."""
        return email.message_from_bytes(self.data, policy=email.policy.default)


@dataclass
class _Refusal:
    """Scripted failure: answer ``reply`` at ``stage`` ("rcpt" or "data") for the next
    ``remaining`` transactions (None: every one), after ``delay`` seconds (a stalled server)."""

    reply: str
    stage: str = "data"
    remaining: int | None = None
    delay: float = 0.0


@dataclass
class _Recorder:
    """aiosmtpd handler + authenticator sharing one state object."""

    require_auth: bool = True  # not "auth_*": aiosmtpd treats those as AUTH mechanisms
    users: dict[str, str] = field(default_factory=dict)
    messages: list[ReceivedMessage] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # the replies given instead of accepting
    refusal: _Refusal | None = None
    cond: threading.Condition = field(default_factory=threading.Condition)
    mechanisms: tuple[str, ...] = PASSWORD_MECHANISMS  # what EHLO advertises
    token_owner: Callable[[str], str | None] | None = None  # bearer token -> its user
    logins: list[tuple[str, str, bool]] = field(default_factory=list)  # (mechanism, user, ok)
    on_accept: Callable[[ReceivedMessage], None] | None = None  # runs before the 250 to DATA

    async def _refuse_at(self, stage: str) -> str | None:
        """The scripted reply for this stage (after its delay), counting the transaction it
        spoils."""
        refusal = self._take_refusal(stage)
        if refusal is None:
            return None
        if refusal.delay:
            await asyncio.sleep(refusal.delay)
        return refusal.reply

    def _take_refusal(self, stage: str) -> _Refusal | None:
        with self.cond:
            refusal = self.refusal
            if refusal is None or refusal.stage != stage:
                return None
            if refusal.remaining is not None:
                refusal.remaining -= 1
                if refusal.remaining <= 0:
                    self.refusal = None
            self.refused.append(refusal.reply)
            self.cond.notify_all()
            return refusal

    def __call__(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        ok = user in self.users and self.users[user] == password
        return AuthResult(success=ok, handled=False, auth_data=user if ok else None)

    # aiosmtpd finds AUTH mechanisms by name: ``auth_<MECHANISM>`` on the handler.
    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        """``user=<u>\\x01auth=Bearer <token>\\x01\\x01`` (Google's XOAUTH2)."""
        return await self._bearer(server, args, "XOAUTH2")

    async def auth_OAUTHBEARER(self, server: SMTP, args: list[str]) -> AuthResult:
        """``n,a=<u>,\\x01host=..\\x01port=..\\x01auth=Bearer <token>\\x01\\x01`` (RFC 7628)."""
        return await self._bearer(server, args, "OAUTHBEARER")

    async def _bearer(self, server: SMTP, args: list[str], mechanism: str) -> AuthResult:
        if len(args) > 1:
            try:
                blob = base64.b64decode(args[1], validate=True)
            except ValueError:
                await server.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        else:
            blob = await server.challenge_auth("")
            if not isinstance(blob, bytes):
                return AuthResult(success=False, handled=True)
        user, token = _parse_bearer(blob.decode("utf-8", "replace"), mechanism)
        owner = self.token_owner(token) if self.token_owner and token else None
        ok = bool(user) and owner == user
        with self.cond:
            self.logins.append((mechanism, user, ok))
        if ok:
            return AuthResult(success=True, auth_data=user)
        # The client must answer the error challenge before the final reply (RFC 7628 3.2.2).
        answer = await server.challenge_auth(_INVALID_TOKEN, encode_to_b64=False)
        return AuthResult(success=False, handled=not isinstance(answer, bytes))  # "*": 501 sent

    async def handle_MAIL(self, server, session, envelope, address, mail_options) -> str:
        # Enforced here rather than with aiosmtpd's auth_required, which
        # warns (UserWarning) on every connection when TLS is not required.
        if self.require_auth and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if envelope.rcpt_tos:  # one refusal per transaction, at its first recipient
            envelope.rcpt_tos.append(address)
            return "250 OK"
        reply = await self._refuse_at("rcpt")
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        reply = await self._refuse_at("data")
        if reply:
            return reply
        received = ReceivedMessage(
            mail_from=envelope.mail_from,
            rcpt_tos=list(envelope.rcpt_tos),
            data=bytes(envelope.original_content or envelope.content),
            auth_user=session.auth_data if session.authenticated else None,
            peer=session.peer[0] if isinstance(session.peer, tuple) else None,
            helo=session.host_name,
        )
        with self.cond:
            self.messages.append(received)
            self.cond.notify_all()
        if self.on_accept is not None:  # off the event loop: it may block (a test's fault)
            await asyncio.get_running_loop().run_in_executor(None, self.on_accept, received)
        return "250 2.0.0 OK: queued"


def _parse_bearer(text: str, mechanism: str) -> tuple[str, str]:
    """(user, token) from a client's initial response; empty strings where malformed."""
    user = ""
    if mechanism == "OAUTHBEARER":
        gs2, _, text = text.partition("\x01")
        for part in gs2.split(","):
            if part.startswith("a="):
                user = part[2:].replace("=2C", ",").replace("=3D", "=")
    pairs = dict(p.split("=", 1) for p in text.split("\x01") if "=" in p)
    user = user or pairs.get("user", "")
    scheme, _, token = pairs.get("auth", "").partition(" ")
    return user, token if scheme.lower() == "bearer" else ""


class _Controller(Controller):
    """Builds each connection's SMTP with only the mechanisms currently offered."""

    def factory(self) -> SMTP:
        offered = set(self.handler.mechanisms)
        hidden = [m for m in (*PASSWORD_MECHANISMS, *BEARER_MECHANISMS) if m not in offered]
        return SMTP(self.handler, auth_exclude_mechanism=hidden, **self.SMTP_kwargs)


class SmtpServer:
    """A recording SMTP server on 127.0.0.1.

    Usage::

        smtp = SmtpServer().start()
        smtp.add_user(user.username, user.password)
        ... send via API using smtp.smtp_settings(user.username, user.password)
        smtp.wait_for_messages(1)[0].message["Subject"]
        smtp.stop()
    """

    start_attempts = 3

    def __init__(
        self,
        host: str = LOOPBACK,
        starttls: bool = True,
        auth_required: bool = True,
        tls_versions: tuple | None = None,
    ) -> None:
        """``tls_versions``: (oldest, newest) ``ssl.TLSVersion`` the server speaks, for one
        that is older than the default (TLS 1.0 needs OpenSSL's security level 0 too)."""
        self.host = host
        self.port: int | None = None
        self.starttls = starttls
        self.tls_versions = tls_versions
        self.cert_path: str | None = None
        self._tmpdir: str | None = None
        self._recorder = _Recorder(require_auth=auth_required)
        self._controller: Controller | None = None

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> "SmtpServer":
        if self._controller is not None:
            raise RuntimeError("SmtpServer already started")
        tls_context = self._make_tls_context() if self.starttls else None
        for attempt in range(1, self.start_attempts + 1):
            self.port = find_free_port(self.host)
            controller = self._make_controller(tls_context)
            try:
                controller.start()
            except OSError as exc:  # lost the race for the port
                if exc.errno != errno.EADDRINUSE or attempt == self.start_attempts:
                    self._remove_tmpdir()
                    raise
                continue
            self._controller = controller
            return self
        raise AssertionError("unreachable")

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()
        self._remove_tmpdir()

    def __enter__(self) -> "SmtpServer":
        return self if self._controller else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _make_tls_context(self):
        self._tmpdir = tempfile.mkdtemp(prefix="smtp-")
        self.cert_path, key_path = write_self_signed_cert(self._tmpdir)
        context = server_context(self.cert_path, key_path)
        if self.tls_versions:
            context.minimum_version, context.maximum_version = self.tls_versions
            context.set_ciphers("DEFAULT:@SECLEVEL=0")
        return context

    def _make_controller(self, tls_context) -> Controller:
        return _Controller(
            self._recorder,
            hostname=self.host,
            port=self.port,
            ready_timeout=5.0,
            server_hostname="localhost",
            authenticator=self._recorder,
            auth_require_tls=False,
            tls_context=tls_context,
            require_starttls=False,
            enable_SMTPUTF8=True,
            decode_data=False,
        )

    def _remove_tmpdir(self) -> None:
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    # -- users and settings ------------------------------------------------

    @property
    def auth_required(self) -> bool:
        return self._recorder.require_auth

    @auth_required.setter
    def auth_required(self, value: bool) -> None:
        self._recorder.require_auth = value

    def add_user(self, user: str, password: str) -> None:
        """Accept AUTH for *user*/*password* (replaces an existing password)."""
        self._recorder.users[user] = password

    def remove_user(self, user: str) -> None:
        self._recorder.users.pop(user, None)

    def offer(self, *mechanisms: str) -> None:
        """Advertise these AUTH mechanisms from the next connection on (default PLAIN LOGIN);
        any of PLAIN, LOGIN, XOAUTH2, OAUTHBEARER."""
        unknown = set(mechanisms) - {*PASSWORD_MECHANISMS, *BEARER_MECHANISMS}
        if unknown:
            raise ValueError(f"unsupported mechanisms: {sorted(unknown)}")
        self._recorder.mechanisms = tuple(mechanisms)

    def check_tokens_with(self, token_owner: Callable[[str], str | None]) -> None:
        """Accept a bearer token when ``token_owner(token)`` names the user logging in."""
        self._recorder.token_owner = token_owner

    @property
    def logins(self) -> list[tuple[str, str, bool]]:
        """Bearer logins so far as (mechanism, user, accepted), oldest first; a live list."""
        return self._recorder.logins

    def smtp_settings(self, user: str, password: str) -> dict[str, Any]:
        """The API's ``smtp`` object for this server."""
        return {
            "host": self.host,
            "port": self.port,
            "secure": False,
            "auth": {"user": user, "pass": password},
        }

    # -- received mail -----------------------------------------------------

    @property
    def messages(self) -> list[ReceivedMessage]:
        """Messages accepted so far (oldest first); a live list."""
        return self._recorder.messages

    def clear(self) -> None:
        """Forget received mail and refusals, and stop refusing (a test's fresh start)."""
        with self._recorder.cond:
            self._recorder.messages.clear()
            self._recorder.refused.clear()
            self._recorder.refusal = None
            self._recorder.on_accept = None

    # -- failure injection -------------------------------------------------

    def refuse_next(self, count: int, reply: str = "451 4.3.0 Try again later",
                    stage: str = "data", delay: float = 0.0) -> None:
        """Refuse the next *count* transactions with *reply* at *stage* ("rcpt" or "data"),
        each after *delay* seconds of silence, then accept again."""
        self._recorder.refusal = _Refusal(reply, stage, count, delay)

    def refuse_always(self, reply: str = "550 5.7.1 Message rejected",
                      stage: str = "data") -> None:
        """Refuse every transaction with *reply* until ``accept()`` or ``clear()``."""
        self._recorder.refusal = _Refusal(reply, stage, None)

    def accept(self) -> None:
        self._recorder.refusal = None

    def on_accept(self, callback: Callable[[ReceivedMessage], None] | None) -> None:
        """Call ``callback(message)`` each time a message is accepted, after it is recorded
        and before the 250 answer to DATA goes out: a fault injected there happens right
        after the server took the message, before the client knows it did (None: stop)."""
        self._recorder.on_accept = callback

    def wait_for_refusals(self, count: int = 1, timeout: float = 60.0) -> list[str]:
        """Block until at least *count* transactions were refused (or began to stall)."""
        refused = self._recorder.refused
        with self._recorder.cond:
            if not self._recorder.cond.wait_for(lambda: len(refused) >= count, timeout):
                raise TimeoutError(f"expected {count} refusals, got {len(refused)}")
            return list(refused)

    @property
    def refused(self) -> list[str]:
        """The replies given instead of accepting, oldest first; a live list."""
        return self._recorder.refused

    def wait_for_messages(self, count: int = 1, timeout: float = 60.0) -> list[ReceivedMessage]:
        """Block until at least *count* messages arrived; return a copy."""
        messages = self._recorder.messages
        with self._recorder.cond:
            if not self._recorder.cond.wait_for(lambda: len(messages) >= count, timeout):
                raise TimeoutError(f"expected {count} messages, got {len(messages)}")
            return list(messages)
