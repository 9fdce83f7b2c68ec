"""Loopback networking helpers shared by the test mail servers.

Why: every server instance (one per pytest-xdist worker, or more) needs its
own ports, and "ready" must mean "a client gets a greeting", not merely
"the process exists".  Only 127.0.0.1 is ever used.
"""

from __future__ import annotations

import socket
import ssl
import time

LOOPBACK = "127.0.0.1"


def find_free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port that was free on *host* a moment ago.

    There is an unavoidable race between closing this socket and the server
    binding the port; callers retry start-up on "address in use".
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def read_greeting(
    host: str, port: int, tls: ssl.SSLContext | None = None, timeout: float = 2.0
) -> bytes:
    """Connect (optionally with implicit TLS) and return the first line."""
    with socket.create_connection((host, port), timeout=timeout) as raw:
        sock = tls.wrap_socket(raw, server_hostname=host) if tls else raw
        try:
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
            return data
        finally:
            if tls:
                sock.close()


def wait_for_greeting(
    host: str,
    port: int,
    prefix: bytes,
    deadline: float,
    tls: ssl.SSLContext | None = None,
    alive=lambda: True,
) -> bytes:
    """Poll until the server on *port* greets with *prefix*.

    *deadline* is a ``time.monotonic()`` value; *alive* is called between
    attempts so a crashed server fails fast instead of timing out.
    Raises ``TimeoutError`` or ``RuntimeError`` (server died).
    """
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"server exited before {host}:{port} greeted")
        try:
            line = read_greeting(host, port, tls=tls)
            if line.startswith(prefix):
                return line
            last_error = RuntimeError(f"unexpected greeting {line!r}")
        except (OSError, ssl.SSLError) as exc:
            last_error = exc
        time.sleep(0.01)
    raise TimeoutError(f"{host}:{port} did not greet with {prefix!r}: {last_error!r}")


def hang_up(sockets, close: bool = True) -> None:
    """End each of ``sockets`` from this side (a client still reading gets end of file at
    once, as from a server going away), closing it unless ``close`` is false; one already gone
    is passed over."""
    for sock in list(sockets):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        if close:
            sock.close()
