"""A loopback "IMAP server" that hangs, for tests of connect timeouts and of a worker's
connect budget.

Why: a real server that stops answering is the case that held a worker's threads for 30 s
per account; Dovecot cannot be made to hang on purpose. Modes:

- ``silent``: accepts the TCP connection, then says nothing (no greeting), ever;
- ``greet``: greets and answers CAPABILITY (no STARTTLS offered), then never answers another
  command (the client hangs at LOGIN);
- ``starttls``: the same offering STARTTLS (the client hangs at STARTTLS);
- ``trickle``: sends the greeting one byte every ``trickle_every`` seconds, never finishing it
  (a tarpit that defeats a plain per-read socket timeout).

One thread serves every connection with a selector; input other than CAPABILITY is read and
dropped. Connections stay open until ``stop()``. Only 127.0.0.1 is used. No Django imports.
"""

from __future__ import annotations

import selectors
import socket
import threading
import time

from .net import LOOPBACK

GREETING = b"* OK hung test server ready\r\n"
CAPABILITIES = {"greet": b"IMAP4rev1 AUTH=PLAIN", "starttls": b"IMAP4rev1 STARTTLS AUTH=PLAIN"}
MODES = ("silent", "greet", "starttls", "trickle")


class HungImapServer:
    def __init__(self, mode: str = "silent", host: str = LOOPBACK, trickle_every: float = 0.5):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.mode = mode
        self.host = host
        self.trickle_every = trickle_every
        self.port: int | None = None
        self.accepted = 0
        self._listener: socket.socket | None = None
        self._clients: dict[socket.socket, int] = {}  # socket -> bytes of greeting sent
        self._input: dict[socket.socket, bytes] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> HungImapServer:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, 0))
        listener.listen(1024)
        listener.setblocking(False)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name=f"hung-imap-{self.mode}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> HungImapServer:
        return self if self._thread else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._listener, selectors.EVENT_READ)
        next_trickle = time.monotonic()
        try:
            while not self._stop.is_set():
                for key, _ in selector.select(timeout=0.1):
                    if key.fileobj is self._listener:
                        self._accept(selector)
                    else:
                        self._drain(selector, key.fileobj)
                if self.mode == "trickle" and time.monotonic() >= next_trickle:
                    next_trickle = time.monotonic() + self.trickle_every
                    self._trickle()
        finally:
            for sock in list(self._clients):
                sock.close()
            self._listener.close()
            selector.close()

    def _accept(self, selector) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except BlockingIOError:
                return
            self.accepted += 1
            sock.setblocking(False)
            self._clients[sock] = 0
            selector.register(sock, selectors.EVENT_READ)
            if self.mode in CAPABILITIES:
                self._send(sock, GREETING)

    def _drain(self, selector, sock) -> None:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the client gave up
            selector.unregister(sock)
            self._clients.pop(sock, None)
            self._input.pop(sock, None)
            sock.close()
            return
        if self.mode not in CAPABILITIES:
            return
        buffered = self._input.get(sock, b"") + data
        *lines, self._input[sock] = buffered.split(b"\r\n")
        for line in lines:
            tag, _, command = line.partition(b" ")
            if command.strip().upper() == b"CAPABILITY":
                self._send(sock, b"* CAPABILITY " + CAPABILITIES[self.mode] + b"\r\n"
                           + tag + b" OK CAPABILITY completed\r\n")

    @staticmethod
    def _send(sock, data: bytes) -> None:
        try:
            sock.sendall(data)
        except OSError:
            pass

    def _trickle(self) -> None:
        for sock, sent in list(self._clients.items()):
            if sent < len(GREETING) - 2:  # never the final CRLF
                try:
                    sock.send(GREETING[sent:sent + 1])
                    self._clients[sock] = sent + 1
                except OSError:
                    pass
