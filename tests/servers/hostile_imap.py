"""A loopback "IMAP server" that logs anyone in and then answers one command with hostile bytes,
for tests of what a broken or malicious server can do to a client after login.

Why: tenants register their own IMAP servers, so everything a server sends after login is
attacker-controlled input to a worker that holds thousands of other tenants' sessions. Dovecot
cannot be made to misbehave on purpose. This server plays a plain session (greeting with
capabilities, LOGIN, CAPABILITY, ENABLE, SELECT/EXAMINE, LIST, NOOP, IDLE/DONE, LOGOUT) and
answers the command named by ``on`` (``b"FETCH"``, ``b"SEARCH"``, ``b"SELECT"``, ``b"IDLE"``:
the first word after the tag, or the second after ``UID``) with what ``answer(tag)`` yields:
chunks of bytes, each written as it comes, the next one after ``pace`` seconds (a tarpit), until
the generator ends (then the connection is closed) or the client goes away.

``sent`` counts the bytes of hostile answers written, over all connections, and ``gave_up``
is set when a client closed its connection while one was being written. One thread per
connection; only 127.0.0.1 is used. No Django imports.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

from .net import LOOPBACK, hang_up

CAPABILITIES = b"IMAP4rev1 AUTH=PLAIN ESEARCH IDLE ENABLE"
Answer = Callable[[bytes], Iterator[bytes]]


def flood(line: bytes, total: int | None = None) -> Answer:
    """The same untagged line, again and again: for ever, or *total* bytes of it and then the
    tagged OK (``IDLE``: then nothing more)."""
    def answer(tag: bytes) -> Iterator[bytes]:
        block = line * max(1, 65536 // len(line))
        sent = 0
        while total is None or sent < total:
            yield block
            sent += len(block)
        if tag:
            yield tag + b" OK done\r\n"
    return answer


def trickle(text: bytes) -> Answer:
    """*text* one byte at a time (with ``pace``), over and over: an answer that never ends."""
    def answer(tag: bytes) -> Iterator[bytes]:
        while True:
            for index in range(len(text)):
                yield text[index:index + 1]
    return answer


def huge_literal(announced: int, send: int) -> Answer:
    """A FETCH response announcing a literal of *announced* bytes, then *send* bytes of it
    (at full speed), then the end of the connection."""
    def answer(tag: bytes) -> Iterator[bytes]:
        yield b"* 1 FETCH (UID 1 BODY[] {%d}\r\n" % announced
        chunk = b"x" * 65536
        for _ in range(send // len(chunk)):
            yield chunk
    return answer


def lines(*data: bytes, tagged: bytes = b"OK done") -> Answer:
    """A fixed answer: these untagged lines (``{tag}`` in them replaced by the command's tag),
    then the tagged one."""
    def answer(tag: bytes) -> Iterator[bytes]:
        yield b"".join(data).replace(b"{tag}", tag) + tag + b" " + tagged + b"\r\n"
    return answer


class HostileImapServer:
    def __init__(self, on: bytes, answer: Answer, pace: float = 0.0, host: str = LOOPBACK):
        self.on = on.upper()
        self.answer = answer
        self.pace = pace
        self.host = host
        self.port: int | None = None
        self.sent = 0
        self.gave_up = threading.Event()  # a client closed its end during a hostile answer
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []

    def start(self) -> HostileImapServer:
        self._listener = socket.create_server((self.host, 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, name="hostile-imap", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        hang_up([self._listener, *self._sockets])

    def __enter__(self) -> HostileImapServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            self._sockets.append(sock)
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(10)  # a client that stops reading cannot hold this thread for ever
        reader = sock.makefile("rb")
        idling = b""
        try:
            sock.sendall(b"* OK [CAPABILITY " + CAPABILITIES + b"] hostile test server\r\n")
            while not self._stop.is_set():
                line = reader.readline()
                if not line:
                    return
                tag, _, rest = line.rstrip(b"\r\n").partition(b" ")
                words = rest.split(b" ")
                name = words[0].upper()
                if name == b"UID" and len(words) > 1:
                    name = words[1].upper()
                if tag.upper() == b"DONE":  # the end of an IDLE answered normally
                    sock.sendall(idling + b" OK done\r\n")
                    continue
                if name == self.on:
                    self._hostile(sock, tag)
                    reader.read()  # keep the connection until the client closes it
                    return
                if name == b"IDLE":
                    idling = tag
                sock.sendall(self._plain(tag, name))
                if name == b"LOGOUT":
                    return
        except OSError:
            return
        finally:
            reader.close()
            sock.close()

    def _hostile(self, sock: socket.socket, tag: bytes) -> None:
        if self.on == b"IDLE":
            sock.sendall(b"+ idling\r\n")
            tag = b""  # what follows is sent while the client idles: no tagged answer
        try:
            for chunk in self.answer(tag):
                if self._stop.is_set():
                    return
                sock.sendall(chunk)
                self.sent += len(chunk)
                if self.pace and self._stop.wait(self.pace):
                    return
        except OSError:
            self.gave_up.set()

    @staticmethod
    def _plain(tag: bytes, name: bytes) -> bytes:
        if name in (b"SELECT", b"EXAMINE"):
            return (b"* FLAGS (\\Seen)\r\n* 1 EXISTS\r\n* 0 RECENT\r\n"
                    b"* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT 2] ok\r\n"
                    + tag + b" OK [READ-ONLY] done\r\n")
        if name == b"CAPABILITY":
            return b"* CAPABILITY " + CAPABILITIES + b"\r\n" + tag + b" OK done\r\n"
        if name in (b"LIST", b"LSUB"):
            return b'* ' + name + b' () "/" INBOX\r\n' + tag + b" OK done\r\n"
        if name == b"IDLE":
            return b"+ idling\r\n"
        if name == b"LOGOUT":
            return b"* BYE bye\r\n" + tag + b" OK done\r\n"
        if name == b"LOGIN":
            return tag + b" OK [CAPABILITY " + CAPABILITIES + b"] logged in\r\n"
        return tag + b" OK done\r\n"
