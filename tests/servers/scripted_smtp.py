"""A loopback SMTP server that follows a script, for tests of a hostile or broken server.

Why: tenants register their own mail servers, so the sending path must survive one that never
finishes a reply (``250-`` continuation lines for ever, a reply trickled a byte at a time),
answers with bytes no database text can hold, or refuses what it offered; aiosmtpd is too well
behaved to do any of that.

Each connection gets a thread that speaks just enough SMTP (EHLO, AUTH PLAIN, STARTTLS, MAIL,
RCPT, DATA, RSET, QUIT) and answers each stage with the script's answer for it: ``bytes``
sent at once, or a callable ``answer(conn)`` that behaves badly (``flood``, ``trickle``,
``delayed``). Stages: ``greeting``, ``ehlo``, ``starttls``, ``auth``, ``mail``, ``rcpt``,
``data`` (the 354), ``message`` (the answer after the final dot), ``rset``, ``quit`` and
``other``. Accepted messages are kept in ``messages``; ``disconnects`` counts connections the
client closed (what a test waits on to know the client gave up). A misbehaving answer ends
when the client goes away or the server stops. ``read_rate`` (bytes a second) makes the
server read a message that slowly, through a small receive buffer: a slow link.

Only 127.0.0.1 is used. No Django imports.
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Callable
from typing import Any

from .net import LOOPBACK, hang_up

Answer = bytes | Callable[["Connection"], None]

DEFAULTS: dict[str, bytes] = {
    "greeting": b"220 scripted.test ESMTP\r\n",
    "ehlo": b"250-scripted.test\r\n250-AUTH PLAIN\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
    "starttls": b"454 4.7.0 TLS not available\r\n",
    "auth": b"235 2.7.0 Authenticated\r\n",
    "mail": b"250 2.1.0 Ok\r\n",
    "rcpt": b"250 2.1.5 Ok\r\n",
    "data": b"354 End data with <CR><LF>.<CR><LF>\r\n",
    "message": b"250 2.0.0 Ok: queued\r\n",
    "rset": b"250 2.0.0 Ok\r\n",
    "quit": b"221 2.0.0 Bye\r\n",
    "other": b"502 5.5.2 Not implemented\r\n",
}
STAGES = {b"EHLO": "ehlo", b"HELO": "ehlo", b"STARTTLS": "starttls", b"AUTH": "auth",
          b"MAIL": "mail", b"RCPT": "rcpt", b"DATA": "data", b"RSET": "rset", b"QUIT": "quit"}


class ClientGone(Exception):
    """The client closed the connection (or the server is stopping)."""


class Connection:
    """One client's connection, as an answer sees it."""

    def __init__(self, sock: socket.socket, stop: threading.Event):
        self.sock = sock
        self.stop = stop
        self.sent = 0  # bytes sent to the client

    def send(self, data: bytes) -> None:
        """Send ``data``; ``ClientGone`` when the client has closed or the server stops."""
        if self.stop.is_set() or self.client_closed():
            raise ClientGone
        try:
            self.sock.sendall(data)
        except OSError:
            raise ClientGone from None
        self.sent += len(data)

    def pause(self, seconds: float) -> None:
        """Wait ``seconds`` (the script's pace), ending early with ``ClientGone``."""
        if self.stop.wait(seconds):
            raise ClientGone

    def client_closed(self) -> bool:
        """True once the client has closed its side (input waiting is left unread)."""
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
            return bool(readable) and self.sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True


def flood(line: bytes = b"250-" + b"x" * 1000, chunk: int = 64 * 1024,
          every: float = 0.05) -> Callable[[Connection], None]:
    """Continuation lines for ever, ``chunk`` bytes every ``every`` seconds (about 1.3 MB/s:
    enough to show a client that never stops reading, without exhausting a test's memory)."""
    block = (line + b"\r\n") * max(1, chunk // (len(line) + 2))

    def answer(conn: Connection) -> None:
        while True:
            conn.send(block)
            conn.pause(every)
    return answer


def trickle(data: bytes = b"250-still talking\r\n", every: float = 0.2,
            forever: bool = True) -> Callable[[Connection], None]:
    """``data`` one byte every ``every`` seconds (again and again if ``forever``): a tarpit
    that a per-read socket timeout never trips."""

    def answer(conn: Connection) -> None:
        while True:
            for index in range(len(data)):
                conn.send(data[index:index + 1])
                conn.pause(every)
            if not forever:
                return
    return answer


def delayed(seconds: float, data: bytes) -> Callable[[Connection], None]:
    """``data`` after ``seconds``: a slow but honest server."""

    def answer(conn: Connection) -> None:
        conn.pause(seconds)
        conn.send(data)
    return answer


class ScriptedSmtpServer:
    def __init__(self, host: str = LOOPBACK, read_rate: int | None = None, **script: Answer):
        unknown = set(script) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"unknown stages: {sorted(unknown)}")
        self.host = host
        self.read_rate = read_rate
        self.script: dict[str, Answer] = {**DEFAULTS, **script}
        self.port: int | None = None
        self.messages: list[bytes] = []
        self.commands: list[bytes] = []
        self.connections = 0
        self.disconnects = 0
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []

    # -- life ----------------------------------------------------------------------------

    def start(self) -> ScriptedSmtpServer:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.read_rate:  # inherited by accepted sockets; stops the kernel buffering MBs
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        listener.bind((self.host, 0))
        listener.listen(64)
        listener.settimeout(0.1)
        self._listener = listener
        self.port = listener.getsockname()[1]
        thread = threading.Thread(target=self._accept, name="scripted-smtp", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop: every connection is closed, so a client still reading gets end of file."""
        self._stop.set()
        hang_up(self._socks, close=False)
        for thread in list(self._threads):
            thread.join(timeout=5)

    def __enter__(self) -> ScriptedSmtpServer:
        return self if self.port else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def smtp_settings(self, user: str = "user", password: str = "secret") -> dict[str, Any]:
        """The API's ``smtp`` object for this server."""
        return {"host": self.host, "port": self.port, "secure": False,
                "auth": {"user": user, "pass": password}}

    def wait_for(self, predicate: Callable[[ScriptedSmtpServer], bool],
                 timeout: float = 30.0) -> bool:
        """Wait until ``predicate(self)`` holds (True) or ``timeout`` passes (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self), timeout=timeout)

    # -- serving -------------------------------------------------------------------------

    def _accept(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    sock, _ = self._listener.accept()
                except TimeoutError:
                    continue
                with self._cond:
                    self.connections += 1
                self._socks.append(sock)
                thread = threading.Thread(target=self._serve, args=(sock,), daemon=True,
                                          name="scripted-smtp-conn")
                self._threads.append(thread)
                thread.start()
        finally:
            self._listener.close()

    def _serve(self, sock: socket.socket) -> None:
        conn = Connection(sock, self._stop)
        reader = sock.makefile("rb")
        try:
            self._answer(conn, "greeting")
            while True:
                line = reader.readline(65536)
                if not line:
                    raise ClientGone
                with self._cond:
                    self.commands.append(line.rstrip(b"\r\n"))
                verb = line.split(b" ", 1)[0].strip().upper()
                stage = STAGES.get(verb, "other")
                self._answer(conn, stage)
                if stage == "data" and self._stage_bytes("data").startswith(b"354"):
                    self._receive(reader, conn)
                elif stage == "quit":
                    return
        except (ClientGone, ConnectionError):  # closed, or reset (a client cut off mid-line)
            pass
        finally:
            reader.close()
            sock.close()
            with self._cond:
                self.disconnects += 1
                self._cond.notify_all()

    def _receive(self, reader, conn: Connection) -> None:
        lines = []
        unpaced = 0
        while True:
            line = reader.readline(65536)
            if not line:
                raise ClientGone
            if line == b".\r\n":
                break
            unpaced += len(line)
            if self.read_rate and unpaced >= 64 * 1024:
                conn.pause(unpaced / self.read_rate)
                unpaced = 0
            lines.append(line[1:] if line.startswith(b"..") else line)
        with self._cond:
            self.messages.append(b"".join(lines))
            self._cond.notify_all()
        self._answer(conn, "message")

    def _stage_bytes(self, stage: str) -> bytes:
        answer = self.script[stage]
        return answer if isinstance(answer, bytes) else b""

    def _answer(self, conn: Connection, stage: str) -> None:
        answer = self.script[stage]
        if isinstance(answer, bytes):
            conn.send(answer)
        else:
            answer(conn)
