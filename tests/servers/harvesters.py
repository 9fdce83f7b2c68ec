"""What someone collecting mail passwords would run: a proxy that sends every tunnel to a
server of its own, and IMAP and SMTP servers that offer no TLS, take any login and keep every
line they are sent. A test asserts the password never reaches their ``lines``."""

from __future__ import annotations

import socket
import threading

from tests.servers.net import LOOPBACK
from tests.servers.proxies import Request, Socks5Proxy


class _Harvester:
    """A line server on loopback: greets, answers each line, keeps them all."""

    greeting = b""

    def __init__(self):
        self.lines: list[bytes] = []
        self.connections = 0
        self._listener = socket.create_server((LOOPBACK, 0))
        self.port = self._listener.getsockname()[1]

    def __enter__(self):
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._listener.close()

    def seen(self) -> bytes:
        return b"".join(self.lines)

    def _accept(self):
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket):
        sock.settimeout(10)
        reader = sock.makefile("rb")
        try:
            sock.sendall(self.greeting)
            while line := reader.readline():
                self.lines.append(line)
                sock.sendall(self.answer(line))
        except OSError:
            pass
        finally:
            sock.close()

    def answer(self, line: bytes) -> bytes:
        raise NotImplementedError


class ImapHarvester(_Harvester):
    """IMAP with no STARTTLS: every command is refused, after it was read."""

    greeting = b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n"

    def answer(self, line: bytes) -> bytes:
        return line.split(b" ", 1)[0] + b" NO [AUTHENTICATIONFAILED] no\r\n"


class SmtpHarvester(_Harvester):
    """SMTP with no STARTTLS, offering AUTH PLAIN/LOGIN, refusing the login it was sent."""

    greeting = b"220 harvester ESMTP\r\n"

    def answer(self, line: bytes) -> bytes:
        verb = line[:4].upper()
        if verb == b"EHLO":
            return b"250-harvester\r\n250 AUTH PLAIN LOGIN\r\n"
        if verb == b"AUTH":
            return b"535 5.7.8 no\r\n"
        if verb == b"QUIT":
            return b"221 bye\r\n"
        return b"250 ok\r\n"


class HijackingProxy(Socks5Proxy):
    """A SOCKS5 proxy that accepts every request and connects it to its own server."""

    def __init__(self, to_port: int):
        super().__init__()
        self.to_port = to_port

    def handshake(self, client):
        request = super().handshake(client)
        return None if request is None else Request(LOOPBACK, self.to_port, request.user)
