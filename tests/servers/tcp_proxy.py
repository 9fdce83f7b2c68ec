"""A loopback TCP forwarder that a test can take down and bring back: a database outage for
one web server, without touching the PostgreSQL that the rest of the suite (and other suites
on the machine) are using.

``down()`` cuts every forwarded connection and refuses new ones (accepted, then closed at
once, as a restarting server's port does); ``up()`` forwards again. ``hold()`` keeps the
connections open but stops passing bytes (a server that has gone quiet), counting what the
client sends meanwhile (``held_bytes``), until ``release()``. Threads only; the listening
socket stays bound throughout, so the port never changes hands.
"""

from __future__ import annotations

import socket
import threading

from tests.servers.net import LOOPBACK


class TcpProxy:
    def __init__(self, target_port: int, target_host: str = LOOPBACK):
        self.target = (target_host, target_port)
        self._listener = socket.create_server((LOOPBACK, 0))
        self.port = self._listener.getsockname()[1]
        self._up = True
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._closed = False
        self._flowing = threading.Event()
        self._flowing.set()
        self.held_bytes = 0
        threading.Thread(target=self._accept, name="tcp-proxy", daemon=True).start()

    def down(self) -> None:
        with self._lock:
            self._up = False
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            _close(sock)

    def up(self) -> None:
        with self._lock:
            self._up = True

    def hold(self) -> None:
        with self._lock:
            self.held_bytes = 0
            self._flowing.clear()

    def release(self) -> None:
        self._flowing.set()

    def close(self) -> None:
        self._closed = True
        self.release()
        self.down()
        _close(self._listener)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                up = self._up
            if not up:
                _close(client)
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
                server.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._open.update((client, server))
            for source, sink, upstream in ((client, server, True), (server, client, False)):
                threading.Thread(target=self._pump, args=(source, sink, upstream),
                                 daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, upstream: bool) -> None:
        try:
            while data := source.recv(65536):
                if not self._flowing.is_set():
                    if upstream:
                        with self._lock:
                            self.held_bytes += len(data)
                    self._flowing.wait()
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with self._lock:
                    self._open.discard(sock)
                _close(sock)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
