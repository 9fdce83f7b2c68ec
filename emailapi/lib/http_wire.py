"""One HTTP/1.1 client connection on a socket: write a request, read its answer, stay open.

Why not urllib3 or ``http.client``: a webhook delivery to a fast receiver is one small POST and
one small answer, and urllib3 spent about a millisecond of CPU on each (its header objects,
``http.client``'s status and header parsing through ``email.parser``, its pool and retry
bookkeeping): more than the dispatcher's database work and the receiver together, so the
client, not the network, set how many deliveries a second one process could send. This one
writes the request in one ``sendall`` and parses just what the answer needs:

* the status line (anything else is ``NotHttp``: a non-HTTP server's banner is never shown;
  the code is three ASCII digits from 100 to 999, as ``http.client`` has it), informational
  (1xx) answers skipped, at most ``MAX_INFORMATIONAL`` of them;
* the headers (at most ``MAX_HEAD`` bytes), as a case-insensitive mapping; a chunked body's
  trailers likewise;
* the body by ``Content-Length``, chunked transfer coding, or up to the close; at most
  ``max_bytes`` of it, after which the connection is not reused (unread bytes are left);
* whether the connection may carry the next request (HTTP/1.1 without ``Connection: close``,
  or HTTP/1.0 with ``keep-alive``, and the answer read to its end).

Every socket operation waits at most the connection's ``timeout``, and none goes on past a
``deadline`` when one is given (to ``open`` and ``exchange``): a per-read timeout alone never
ends a server that sends one byte every few seconds (slow loris), so without a deadline such
an answer could hold the calling thread for days. Every piece of an answer is bounded too
(head, each chunk line, trailers, the number of informational answers, the body by
``max_bytes``), so that a server streaming small pieces fast cannot keep a thread parsing
until the deadline either. Errors are the socket's own (``TimeoutError``, ``ssl.SSLError``,
``OSError``), ``ConnectFailed`` for the connect, ``NotHttp`` and ``Incomplete``; the caller
puts them in words. No redirect is ever followed: there is no such logic here.
"""

from __future__ import annotations

import select
import socket
import ssl
import time
from collections.abc import Iterator, Mapping

MAX_HEAD = 64 * 1024  # an answer's head, and a chunked body's trailers
READ_SIZE = 64 * 1024
NO_BODY_STATUSES = (204, 304)
# Informational answers before the real one: servers send one or two (100 Continue, 103 Early
# Hints); a server sending them without end would otherwise keep the thread parsing.
MAX_INFORMATIONAL = 16


class ConnectFailed(Exception):
    """The TCP connection could not be made (``timed_out`` tells a timeout from a refusal)."""

    def __init__(self, timed_out: bool):
        super().__init__("timed out" if timed_out else "refused or unreachable")
        self.timed_out = timed_out


class NotHttp(Exception):
    """What the server sent does not parse as an HTTP answer."""


class Incomplete(Exception):
    """The connection closed before the answer was complete; ``nothing_read`` when not a
    byte of it came (a kept-alive connection the server had closed: safe to try again)."""

    def __init__(self, nothing_read: bool):
        super().__init__("closed before a complete answer")
        self.nothing_read = nothing_read


class Headers(Mapping):
    """An answer's headers, looked up by name in any case; repeated ones joined by ", "."""

    def __init__(self, pairs: dict[str, str]):
        self._pairs = pairs  # lower-case names

    def __getitem__(self, name: str) -> str:
        return self._pairs[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)

    def __repr__(self) -> str:
        return f"Headers({self._pairs!r})"


def request_bytes(method: str, path: str, headers: Mapping[str, str],
                  body: bytes | None) -> bytes:
    """The request as sent: request line, headers, blank line, body. A CR or LF in a header
    (which would split it into two, or end the head early) is refused with ``ValueError``."""
    lines = [f"{method} {path} HTTP/1.1"]
    for name, value in headers.items():
        if any(ch in name or ch in value for ch in "\r\n\0") or ":" in name:
            raise ValueError(f"invalid header {name!r}")
        lines.append(f"{name}: {value}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body if body else head


class Connection:
    """A connected socket (plain or TLS) and the bytes read from it but not yet used."""

    def __init__(self, sock: socket.socket, timeout: float | None = None):
        self.sock = sock
        self.buffer = bytearray()
        self.requests = 0  # answered on this connection so far
        self.timeout = sock.gettimeout() if timeout is None else timeout  # each operation
        self.deadline: float | None = None  # time.monotonic() no operation goes past
        self._shortened = False  # the socket's timeout is cut to the deadline

    @classmethod
    def open(cls, address: str, port: int, timeout: float, *,
             tls_host: str | None = None, tls: ssl.SSLContext | None = None,
             deadline: float | None = None) -> Connection:
        """Connect to ``address`` (already checked: no name is resolved here); with
        ``tls_host``, TLS naming that host (SNI and the certificate check). The connect and
        the TLS handshake each wait at most ``timeout``, and not past ``deadline``."""
        try:
            sock = socket.create_connection((address, port), _within(timeout, deadline))
        except TimeoutError:
            raise ConnectFailed(timed_out=True) from None
        except OSError:
            raise ConnectFailed(timed_out=False) from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if tls_host is not None:
                sock.settimeout(_within(timeout, deadline))
                sock = (tls or ssl.create_default_context()).wrap_socket(
                    sock, server_hostname=tls_host)
            sock.settimeout(timeout)
        except TimeoutError:
            sock.close()
            raise ConnectFailed(timed_out=True) from None
        except BaseException:
            sock.close()
            raise
        return cls(sock, timeout)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def dropped(self) -> bool:
        """Whether an idle kept-alive connection was closed by the server (or sent something
        unasked): it is readable, so reusing it would fail or read a stale answer."""
        if self.buffer:
            return True
        try:
            # poll, not select: select refuses descriptors above 1023, and a dispatcher
            # keeping connections to many receivers has them (each was taken for dropped).
            poller = select.poll()
            poller.register(self.sock, select.POLLIN)
            return bool(poller.poll(0))
        except (OSError, ValueError):
            return True

    def exchange(self, request: bytes, *, head_only: bool, max_bytes: int,
                 deadline: float | None = None) -> tuple[int, Headers, bytes, bool]:
        """Send ``request`` (``request_bytes``) and read its answer: (status, headers, at most
        ``max_bytes`` of the body, whether this connection may be reused). Past ``deadline``
        (``time.monotonic()``) the next socket operation raises ``TimeoutError``."""
        self.deadline = deadline
        if self._shortened:
            self.sock.settimeout(self.timeout)
            self._shortened = False
        self._wait()
        self.sock.sendall(request)
        for _ in range(MAX_INFORMATIONAL + 1):
            version, status, headers = self._read_head()
            if status >= 200 or status == 101:
                break  # 1xx (100 Continue, 103 Early Hints) precede the real answer
        else:
            raise NotHttp("too many informational answers")
        keep = version == "HTTP/1.1"
        tokens = {token.strip().lower() for token in headers.get("connection", "").split(",")}
        if "close" in tokens:
            keep = False
        elif "keep-alive" in tokens:
            keep = True
        if head_only or status in NO_BODY_STATUSES or status < 200:
            body, complete = b"", status != 101
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body, complete = self._read_chunked(max_bytes)
        elif "content-length" in headers:
            try:
                length = int(headers["content-length"].split(",")[0])
            except ValueError:
                raise NotHttp("bad Content-Length") from None
            if length < 0:
                raise NotHttp("bad Content-Length")
            body = self._read_exactly(min(length, max_bytes))
            complete = length <= max_bytes
        else:  # the body runs to the close
            body, keep, complete = self._read_to_close(max_bytes), False, False
        self.requests += 1
        return status, Headers(headers), body, keep and complete

    # --- reading ----------------------------------------------------------------------------

    def _wait(self) -> None:
        """Before a socket operation: no wait past the deadline. The socket's timeout is cut
        only near the deadline (``settimeout`` is a system call, and most answers come long
        before it)."""
        if self.deadline is None:
            return
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request's deadline passed")
        if self.timeout is None or left < self.timeout:
            self.sock.settimeout(left)
            self._shortened = True

    def _fill(self) -> None:
        self._wait()
        data = self.sock.recv(READ_SIZE)
        if not data:
            raise Incomplete(nothing_read=False)
        self.buffer += data

    def _read_head(self) -> tuple[str, int, dict[str, str]]:
        first = True
        while True:
            if len(self.buffer) >= 5 and not self.buffer.startswith(b"HTTP/"):
                raise NotHttp("no status line")
            end = self.buffer.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(self.buffer) > MAX_HEAD:
                raise NotHttp("head too long")
            try:
                self._fill()
            except Incomplete:
                raise Incomplete(nothing_read=first and not self.buffer) from None
            first = False
        lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        del self.buffer[:end + 4]
        parts = lines[0].split(" ", 2)
        # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
        if len(parts) < 2 or parts[0] not in ("HTTP/1.1", "HTTP/1.0") \
                or len(parts[1]) != 3 or not parts[1].isascii() or not parts[1].isdigit() \
                or parts[1][0] == "0":
            raise NotHttp("bad status line")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon or not name or name != name.strip():
                raise NotHttp("bad header line")
            name = name.lower()
            value = value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        return parts[0], int(parts[1]), headers

    def _read_exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def _read_line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            if len(self.buffer) > MAX_HEAD:
                raise NotHttp("chunk line too long")
            self._fill()
        line = bytes(self.buffer[:end])
        del self.buffer[:end + 2]
        return line

    def _read_chunked(self, max_bytes: int) -> tuple[bytes, bool]:
        """The chunked body's data up to ``max_bytes``; whether it was read to its end."""
        body = bytearray()
        while True:
            try:
                size = int(self._read_line().split(b";")[0].strip(), 16)
            except ValueError:
                raise NotHttp("bad chunk size") from None
            if size < 0:
                raise NotHttp("bad chunk size")
            if size == 0:
                trailers = 0
                while line := self._read_line():  # trailers, up to the blank line
                    trailers += len(line) + 2
                    if trailers > MAX_HEAD:
                        raise NotHttp("trailers too long")
                return bytes(body), True
            if len(body) + size > max_bytes:
                body += self._read_exactly(max_bytes - len(body))
                return bytes(body), False
            body += self._read_exactly(size)
            if self._read_exactly(2) != b"\r\n":
                raise NotHttp("bad chunk end")

    def _read_to_close(self, max_bytes: int) -> bytes:
        while len(self.buffer) < max_bytes:
            self._wait()
            data = self.sock.recv(READ_SIZE)
            if not data:
                break
            self.buffer += data
        body = bytes(self.buffer[:max_bytes])
        self.buffer.clear()
        return body


def _within(timeout: float, deadline: float | None) -> float:
    """``timeout``, cut to what is left before ``deadline``; ``TimeoutError`` past it."""
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the request's deadline passed")
    return min(timeout, left)
