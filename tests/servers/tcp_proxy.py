"""A loopback TCP proxy that a test can cut and restore: an outage of one client's database or
Redis, and of nobody else's.

Why: the suite's PostgreSQL and Redis are shared by every test worker (and other suites on
the machine); stopping them would break everyone. A process pointed at this proxy instead
sees its server vanish on ``cut()`` (open connections reset, new ones refused) and come back
on ``restore()``, on the same port. Only 127.0.0.1 is used. No Django imports.
"""

from __future__ import annotations

import selectors
import socket
import struct
import threading

from .net import LOOPBACK


class TcpProxy:
    def __init__(self, target_port: int, target_host: str = LOOPBACK, host: str = LOOPBACK):
        self.target = (target_host, target_port)
        self.host = host
        self.port: int | None = None
        self.connections = 0  # accepted since start
        self._listener: socket.socket | None = None
        self._pairs: dict[socket.socket, socket.socket] = {}
        self._upstream: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread: threading.Thread | None = None

    # -- control -------------------------------------------------------------------------

    def start(self) -> TcpProxy:
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._listen(port=0)
        self._thread = threading.Thread(target=self._serve, name="tcp-proxy", daemon=True)
        self._thread.start()
        return self

    def cut(self) -> None:
        """The server is gone: reset every open connection, refuse new ones."""
        with self._lock:
            if self._listener is not None:
                self._selector.unregister(self._listener)
                self._listener.close()
                self._listener = None
            for sock in list(self._pairs):
                self._close(sock, reset=True)
        self._wake()

    def restore(self) -> None:
        """The server is back, on the same port."""
        with self._lock:
            if self._listener is None:
                self._listen(port=self.port)
        self._wake()

    def upstream_ports(self) -> list[int]:
        """Local ports of the open connections to the target (what the server sees as the
        client's ports: PostgreSQL's ``pg_stat_activity.client_port``)."""
        with self._lock:
            ports = []
            for sock in self._upstream:
                try:
                    ports.append(sock.getsockname()[1])
                except OSError:
                    pass
            return ports

    def stop(self) -> None:
        self._stop.set()
        self.cut()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> TcpProxy:
        return self if self._thread else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the loop ------------------------------------------------------------------------

    def _listen(self, port: int) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, port))
        listener.listen(256)
        listener.setblocking(False)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._selector.register(listener, selectors.EVENT_READ, "accept")

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def _serve(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=0.5):
                with self._lock:
                    if key.data == "wake":
                        try:
                            self._wake_r.recv(4096)
                        except OSError:
                            pass
                    elif key.data == "accept":
                        if key.fileobj is self._listener:
                            self._accept()
                    elif key.fileobj in self._pairs:
                        self._forward(key.fileobj)

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except OSError:
            return
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        self.connections += 1
        for sock in (client, upstream):
            sock.setblocking(True)
            sock.settimeout(5)
        self._pairs[client], self._pairs[upstream] = upstream, client
        self._upstream.add(upstream)
        self._selector.register(client, selectors.EVENT_READ, "data")
        self._selector.register(upstream, selectors.EVENT_READ, "data")

    def _forward(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(65536)
        except OSError:
            data = b""
        peer = self._pairs.get(sock)
        if not data or peer is None:
            self._close(sock)
            return
        try:
            peer.sendall(data)
        except OSError:
            self._close(sock)

    def _close(self, sock: socket.socket, reset: bool = False) -> None:
        peer = self._pairs.pop(sock, None)
        for one in (sock, peer):
            if one is None:
                continue
            self._pairs.pop(one, None)
            self._upstream.discard(one)
            try:
                self._selector.unregister(one)
            except (KeyError, ValueError):
                pass
            if reset:  # RST rather than FIN: the client sees its server die, not a goodbye
                try:
                    one.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
            one.close()
