"""Small real proxies for tests: SOCKS5 (RFC 1928, optional user/password RFC 1929), SOCKS4a
and HTTP CONNECT (optional Basic), on loopback, one thread per connection.

Why: a proxy's handshake and a mail session through it are only shown to work by a real
proxy in between. Each records what it was asked (``requests``: the target host as the client
named it, the port, the user) and relays bytes both ways once the tunnel is open. The target is
resolved by the proxy itself (as a real one does), so a client that names ``localhost`` is
sent on to this machine. ``refuse_target=True`` answers every request with "connection refused"
(SOCKS5 reply 5, SOCKS4 0x5B, HTTP 502). Only 127.0.0.1 is listened on; no Django.
"""

from __future__ import annotations

import base64
import ipaddress
import socket
import struct
import threading
from dataclasses import dataclass
from urllib.parse import quote

from tests.servers.net import LOOPBACK


@dataclass(frozen=True)
class Request:
    host: str
    port: int
    user: str | None


class _Proxy:
    scheme = ""

    def __init__(self, user: str | None = None, password: str | None = None,
                 refuse_target: bool = False):
        self.user, self.password, self.refuse_target = user, password, refuse_target
        self.requests: list[Request] = []
        self.logins_refused = 0
        self._listener = socket.create_server((LOOPBACK, 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False

    def url(self, user: str | None = None, password: str | None = None) -> str:
        login = ""
        if user is not None:
            login = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "") + "@"
        return f"{self.scheme}://{login}{LOOPBACK}:{self.port}"

    def start(self):
        threading.Thread(target=self._accept, name=f"{self.scheme}-proxy", daemon=True).start()
        return self

    def stop(self) -> None:
        self._closed = True
        self._listener.close()
        with self._lock:
            sockets, self._sockets = list(self._sockets), set()
        for sock in sockets:
            _close(sock)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._sockets.add(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            client.settimeout(10)  # inside: stop() may have closed it already
            request = self.handshake(client)
            if request is None:
                return
            with self._lock:
                self.requests.append(request)
            if self.refuse_target:
                self.answer(client, False)
                return
            try:
                upstream = socket.create_connection((request.host, request.port), timeout=5)
            except OSError:
                self.answer(client, False)
                return
            with self._lock:
                self._sockets.add(upstream)
            self.answer(client, True)
            client.settimeout(None)
            upstream.settimeout(None)
            threading.Thread(target=_pump, args=(upstream, client), daemon=True).start()
            _pump(client, upstream)
        except OSError:
            pass
        finally:
            _close(client)

    def handshake(self, client: socket.socket) -> Request | None:
        raise NotImplementedError

    def answer(self, client: socket.socket, ok: bool) -> None:
        raise NotImplementedError


class Socks5Proxy(_Proxy):
    scheme = "socks5"

    def handshake(self, client):
        version, count = _read(client, 2)
        methods = _read(client, count)
        if version != 5:
            return None
        want = 2 if self.user is not None else 0
        if want not in methods:
            client.sendall(b"\x05\xff")
            return None
        client.sendall(bytes([5, want]))
        user = None
        if want == 2:
            _, length = _read(client, 2)
            user = _read(client, length).decode()
            password = _read(client, _read(client, 1)[0]).decode()
            if (user, password) != (self.user, self.password):
                self.logins_refused += 1
                client.sendall(b"\x01\x01")
                return None
            client.sendall(b"\x01\x00")
        _, command, _, kind = _read(client, 4)
        if kind == 1:
            host = str(ipaddress.IPv4Address(_read(client, 4)))
        elif kind == 4:
            host = str(ipaddress.IPv6Address(_read(client, 16)))
        else:
            host = _read(client, _read(client, 1)[0]).decode()
        (port,) = struct.unpack("!H", _read(client, 2))
        return Request(host, port, user)

    def answer(self, client, ok):
        client.sendall(bytes([5, 0 if ok else 5, 0, 1]) + bytes(4) + b"\x00\x00")


class Socks4Proxy(_Proxy):
    scheme = "socks4"

    def handshake(self, client):
        version, _command, port = struct.unpack("!BBH", _read(client, 4))
        address = _read(client, 4)
        user = _read_zero_terminated(client).decode()
        if address[:3] == b"\x00\x00\x00" and address[3]:
            host = _read_zero_terminated(client).decode()
        else:
            host = str(ipaddress.IPv4Address(address))
        return Request(host, port, user or None) if version == 4 else None

    def answer(self, client, ok):
        client.sendall(bytes([0, 0x5A if ok else 0x5B]) + bytes(6))


class HttpConnectProxy(_Proxy):
    scheme = "http"

    def handshake(self, client):
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            byte = client.recv(1)
            if not byte or len(head) > 16384:
                return None
            head += byte
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        user = None
        if self.user is not None:
            given = headers.get("Proxy-Authorization", "")
            expected = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            if given != expected:
                self.logins_refused += 1
                client.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                               b"Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n")
                return None
            user = self.user
        if method != "CONNECT":
            return None
        host, _, port = target.rpartition(":")
        return Request(host.strip("[]"), int(port), user)

    def answer(self, client, ok):
        client.sendall(b"HTTP/1.1 200 Connection established\r\nVia: test\r\n\r\n" if ok else
                       b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")


PROXIES = {"socks5": Socks5Proxy, "socks4": Socks4Proxy, "http": HttpConnectProxy}


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def _read_zero_terminated(sock: socket.socket) -> bytes:
    data = b""
    while (byte := _read(sock, 1)) != b"\x00":
        data += byte
        if len(data) > 512:
            raise ConnectionError("too long")
    return data


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass
