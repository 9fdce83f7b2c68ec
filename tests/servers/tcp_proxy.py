"""A loopback TCP proxy that a test can cut, restore, hold and release: an outage of one
process's database, Redis or mail server, and of nobody else's.

Why: the suite's PostgreSQL and Redis are shared by every test worker (and other suites on the
machine); stopping them would break everyone. A process pointed at this proxy instead sees its
server vanish on ``cut()`` (open connections reset, new ones accepted and closed at once, as a
restarting server's port does) and come back on ``restore()``. ``hold()`` keeps connections
open but stops passing bytes (a server gone quiet), counting what is held meanwhile either
way (``held_bytes``: a request, or an answer caught on its way), until ``release()``.
``strand()`` does that for good to the connections open at the time, while new ones flow: a
server that failed over to another behind the same address, the old connections left to
packets that go nowhere. The listening socket stays bound throughout, so the port never
changes hands. Threads only; only 127.0.0.1 is used; no Django.
"""

from __future__ import annotations

import socket
import struct
import threading

from tests.servers.net import LOOPBACK


class TcpProxy:
    def __init__(self, target_port: int, target_host: str = LOOPBACK):
        self.target = (target_host, target_port)
        self._listener = socket.create_server((LOOPBACK, 0))
        self.port = self._listener.getsockname()[1]
        self.accepted = 0  # connections accepted since start, refused ones included
        self.peers: list[str] = []  # the client address of each, in order
        self.held_bytes = 0
        self._up = True
        self._closed = False
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._upstream: set[socket.socket] = set()
        self._stranded: set[socket.socket] = set()
        self._stopped = threading.Event()
        self._flowing = threading.Event()
        self._flowing.set()
        self._thread: threading.Thread | None = None

    # -- control -------------------------------------------------------------------------

    def start(self) -> TcpProxy:
        if self._thread is None:
            self._thread = threading.Thread(target=self._accept, name="tcp-proxy", daemon=True)
            self._thread.start()
        return self

    def cut(self) -> None:
        """The server is gone: reset every open connection, refuse new ones."""
        with self._lock:
            self._up = False
            sockets, self._open = list(self._open), set()
            self._upstream.clear()
        for sock in sockets:
            _close(sock, reset=True)

    def restore(self) -> None:
        """The server is back, on the same port."""
        with self._lock:
            self._up = True

    def hold(self) -> None:
        with self._lock:
            self.held_bytes = 0
            self._flowing.clear()

    def release(self) -> None:
        self._flowing.set()

    def strand(self) -> None:
        """The connections open now pass no byte again; later ones flow."""
        with self._lock:
            self._stranded.update(self._open)

    def upstream_ports(self) -> list[int]:
        """Local ports of the open connections to the target (what the server sees as the
        client's ports: PostgreSQL's ``pg_stat_activity.client_port``)."""
        ports = []
        with self._lock:
            for sock in self._upstream:
                try:
                    ports.append(sock.getsockname()[1])
                except OSError:
                    pass
        return ports

    def stop(self) -> None:
        self._closed = True
        self._stopped.set()
        self.release()
        self.cut()
        _close(self._listener)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- forwarding ----------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, peer = self._listener.accept()
            except OSError:
                return
            with self._lock:
                up = self._up
                self.accepted += 1
                self.peers.append(peer[0])
            if not up:
                _close(client, reset=True)
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
                server.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._open.update((client, server))
                self._upstream.add(server)
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if source in self._stranded:
                    with self._lock:
                        self.held_bytes += len(data)
                    self._stopped.wait()
                    break
                if not self._flowing.is_set():
                    with self._lock:
                        self.held_bytes += len(data)
                    self._flowing.wait()
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                for sock in (source, sink):
                    self._open.discard(sock)
                    self._upstream.discard(sock)
                    self._stranded.discard(sock)
            for sock in (source, sink):
                _close(sock)


def _close(sock: socket.socket, reset: bool = False) -> None:
    """Close, waking a pump thread blocked in ``recv`` on it (a plain ``close`` would not on
    Linux). ``reset``: RST rather than FIN, so the client sees its server die, not a goodbye
    (SHUT_RD wakes the reader without sending a FIN; linger 0 makes the close a reset)."""
    try:
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RD if reset else socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
