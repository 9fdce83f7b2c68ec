"""Mail connections through a proxy: EmailEngine's ``proxy`` (SOCKS5, SOCKS4a, HTTP CONNECT).

An account (or one submit) may name a proxy that carries its IMAP and SMTP connections, as a
URL: ``socks5://user:pass@host:1080``, ``socks4://host:1080``, ``socks://`` (SOCKS5) or
``http://user:pass@host:3128`` (HTTP CONNECT). ``parse`` reads one into a ``Proxy``;
``open_tunnel`` asks a proxy we are already connected to for a tunnel to the mail server.

The mail server is named to the proxy by its host name, so the proxy resolves it (SOCKS5 address
type 3, SOCKS4a, ``CONNECT host:port``): that is the point of a proxy in another network. An
address written out is sent as an address. What we connect to ourselves is the proxy, and that is
``netguard.connect``'s business (the one place a tenant-chosen connection is made and checked).
TLS, implicit or STARTTLS, stays end to end with the mail server, over the tunnel.

Every failure is a ``ProxyError`` (an ``OSError``, what a failed connect raises anyway) in
words; every read is bounded by the timeout, and the proxy's answers by their size. No Django.
"""

from __future__ import annotations

import base64
import ipaddress
import socket
import struct
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

SCHEMES = {"socks5": "socks5", "socks": "socks5", "socks5h": "socks5", "socks4": "socks4",
           "socks4a": "socks4", "http": "http"}
DEFAULT_PORTS = {"socks5": 1080, "socks4": 1080, "http": 80}
MAX_URL_LENGTH = 2048
MAX_HTTP_ANSWER = 16384  # bytes of status line and headers a CONNECT answer may take

_SOCKS5_REPLIES = {
    1: "general failure", 2: "connection not allowed by the proxy's rules",
    3: "network unreachable", 4: "host unreachable", 5: "connection refused", 6: "TTL expired",
    7: "command not supported", 8: "address type not supported",
}
_SOCKS4_REPLIES = {
    0x5B: "request rejected or failed", 0x5C: "the proxy could not reach our identd",
    0x5D: "the user id was not confirmed by identd",
}


class ProxyError(OSError):
    """The proxy could not be used: a refused login, a target it could not reach, an answer
    that is not its protocol's, silence. ``str()`` says which, in words."""

    def __str__(self) -> str:
        return self.args[0] if self.args else "The proxy failed"


class ProxyLoginRefused(ProxyError):
    """The proxy refused our login, or wants one we do not have."""


class ProxyTargetUnreachable(ProxyError):
    """The proxy answered, but would not or could not reach the mail server."""


@dataclass(frozen=True)
class Proxy:
    scheme: str  # "socks5", "socks4" or "http"
    host: str  # no brackets around an IPv6 address
    port: int
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def kind(self) -> str:
        return {"socks5": "SOCKS5", "socks4": "SOCKS4", "http": "HTTP"}[self.scheme]


def parse(url: str) -> Proxy:
    """``url`` as a ``Proxy``; ``ValueError`` in words when it is not a proxy URL we can use."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise ValueError(f"Must be a proxy URL of at most {MAX_URL_LENGTH} characters")
    if any(ch in url for ch in "\r\n\t\0 "):
        raise ValueError("Must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError("Not a valid proxy URL (is the port a number from 1 to 65535?)") from None
    scheme = SCHEMES.get(parts.scheme.lower())
    if scheme is None:
        raise ValueError("Must be a socks5://, socks4://, socks:// or http:// proxy URL")
    if not parts.hostname:
        raise ValueError("Must name the proxy's host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("Must be only scheme, optional user:password@, host and port")
    if port == 0:
        raise ValueError("The proxy's port must be from 1 to 65535")
    user = _decoded(parts.username, "user name") if parts.username is not None else None
    password = _decoded(parts.password, "password") if parts.password is not None else None
    if user is not None and len(user.encode()) > 255 and scheme == "socks5":
        raise ValueError("The user name is longer than SOCKS5 allows (255 bytes)")
    if password is not None and len(password.encode()) > 255 and scheme == "socks5":
        raise ValueError("The password is longer than SOCKS5 allows (255 bytes)")
    return Proxy(scheme, parts.hostname, port or DEFAULT_PORTS[scheme], user or None,
                 password if user else None)


def _decoded(written: str, what: str) -> str:
    try:
        text = unquote(written, errors="strict")
        text.encode()
    except UnicodeError:
        raise ValueError(f"The {what} in the proxy URL is not UTF-8 once percent-decoded") from None
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise ValueError(f"The {what} in the proxy URL contains a control character")
    return text


def open_tunnel(sock: socket.socket, proxy: Proxy, host: str, port: int,
                timeout: float | None) -> None:
    """Ask the proxy ``sock`` is connected to for a tunnel to ``host``:``port``; on return the
    socket carries the mail server's bytes. Each read waits at most ``timeout`` seconds.
    ``ProxyError`` when the proxy will not; the socket is the caller's to close."""
    previous = sock.gettimeout()
    sock.settimeout(timeout)
    try:
        if proxy.scheme == "socks5":
            _socks5(sock, proxy, host, port)
        elif proxy.scheme == "socks4":
            _socks4(sock, proxy, host, port)
        else:
            _http_connect(sock, proxy, host, port)
    except (socket.timeout, TimeoutError):
        raise ProxyError(f"The {proxy.kind} proxy {proxy.host}:{proxy.port} did not answer within "
                         f"{timeout:g} s") from None
    except ProxyError:
        raise
    except OSError as exc:
        raise ProxyError(f"The connection to the {proxy.kind} proxy {proxy.host}:{proxy.port} "
                         f"failed: {exc.strerror or type(exc).__name__}") from None
    sock.settimeout(previous)


def _target(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _recv_exactly(sock: socket.socket, size: int, proxy: Proxy) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ProxyError(f"The {proxy.kind} proxy closed the connection during its handshake")
        data += chunk
    return data


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _idna(host: str, proxy: Proxy) -> bytes:
    """The mail server's name as the proxy is told it (IDNA, ASCII); a name IDNA cannot write
    (a label over 63 characters, an empty one) is a ``ProxyError``, as it would be a failed
    lookup without a proxy."""
    try:
        return host.encode("idna")
    except UnicodeError:
        raise ProxyError(f"The host name {host!r} cannot be given to the {proxy.kind} proxy "
                         "(not a valid DNS name)") from None


def _socks5(sock: socket.socket, proxy: Proxy, host: str, port: int) -> None:
    methods = b"\x00\x02" if proxy.user is not None else b"\x00"
    sock.sendall(b"\x05" + bytes([len(methods)]) + methods)
    version, method = _recv_exactly(sock, 2, proxy)
    if version != 5:
        raise ProxyError("The proxy did not answer as a SOCKS5 proxy")
    if method == 0xFF:
        raise ProxyLoginRefused("The proxy wants a login method we were not given (a user and "
                                "password in the proxy URL?)" if proxy.user is None else
                                "The proxy accepts none of our login methods")
    if method == 2:
        if proxy.user is None:
            raise ProxyLoginRefused("The proxy wants a user and password, and the proxy URL "
                                    "has none")
        user, password = proxy.user.encode(), (proxy.password or "").encode()
        sock.sendall(b"\x01" + bytes([len(user)]) + user + bytes([len(password)]) + password)
        _, status = _recv_exactly(sock, 2, proxy)
        if status != 0:
            raise ProxyLoginRefused("The proxy refused the login")
    elif method != 0:
        raise ProxyError(f"The proxy chose a login method we did not offer ({method})")
    address = _address(host)
    if isinstance(address, ipaddress.IPv4Address):
        where = b"\x01" + address.packed
    elif isinstance(address, ipaddress.IPv6Address):
        where = b"\x04" + address.packed
    else:
        name = _idna(host, proxy)
        if len(name) > 255:
            raise ProxyError(f"The host name {host} is too long for SOCKS5")
        where = b"\x03" + bytes([len(name)]) + name
    sock.sendall(b"\x05\x01\x00" + where + struct.pack("!H", port))
    version, reply, _, kind = _recv_exactly(sock, 4, proxy)
    if version != 5:
        raise ProxyError("The proxy did not answer as a SOCKS5 proxy")
    if reply != 0:
        why = _SOCKS5_REPLIES.get(reply, "unknown error")
        raise ProxyTargetUnreachable(f"The proxy could not reach {_target(host, port)} "
                                     f"(SOCKS5 reply {reply}: {why})")
    if kind == 1:
        _recv_exactly(sock, 4 + 2, proxy)
    elif kind == 4:
        _recv_exactly(sock, 16 + 2, proxy)
    elif kind == 3:
        length = _recv_exactly(sock, 1, proxy)[0]
        _recv_exactly(sock, length + 2, proxy)
    else:
        raise ProxyError("The proxy's SOCKS5 answer has an unknown address type")


def _socks4(sock: socket.socket, proxy: Proxy, host: str, port: int) -> None:
    address = _address(host)
    if isinstance(address, ipaddress.IPv6Address):
        raise ProxyError(f"A SOCKS4 proxy cannot reach an IPv6 address ({host})")
    userid = (proxy.user or "").encode()
    if address is not None:
        request = struct.pack("!BBH", 4, 1, port) + address.packed + userid + b"\x00"
    else:  # SOCKS4a: 0.0.0.x, then the name for the proxy to resolve
        request = (struct.pack("!BBH", 4, 1, port) + b"\x00\x00\x00\x01" + userid + b"\x00"
                   + _idna(host, proxy) + b"\x00")
    sock.sendall(request)
    answer = _recv_exactly(sock, 8, proxy)
    if answer[0] != 0:
        raise ProxyError("The proxy did not answer as a SOCKS4 proxy")
    if answer[1] != 0x5A:
        why = _SOCKS4_REPLIES.get(answer[1], "unknown error")
        raise ProxyTargetUnreachable(f"The proxy could not reach {_target(host, port)} "
                                     f"(SOCKS4 reply {answer[1]}: {why})")


def _http_connect(sock: socket.socket, proxy: Proxy, host: str, port: int) -> None:
    target = _target(_idna(host, proxy).decode() if _address(host) is None else host, port)
    lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
    if proxy.user is not None:
        token = base64.b64encode(f"{proxy.user}:{proxy.password or ''}".encode()).decode()
        lines.append(f"Proxy-Authorization: Basic {token}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    answer = _read_http_answer(sock, proxy)
    status_line = answer.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ProxyError("The proxy did not answer as an HTTP proxy")
    status = int(parts[1])
    reason = "".join(ch for ch in (parts[2] if len(parts) > 2 else "") if ch.isprintable())[:100]
    if status == 407:
        raise ProxyLoginRefused(f"The proxy refused the login (HTTP 407 {reason})".replace(" )", ")")
                                if proxy.user is not None else
                                "The proxy wants a user and password, and the proxy URL has none")
    if not 200 <= status < 300:
        raise ProxyTargetUnreachable(f"The proxy could not reach {target} (HTTP {status} {reason})"
                                     .replace(" )", ")"))


def _read_http_answer(sock: socket.socket, proxy: Proxy) -> bytes:
    """The status line and headers, and not one byte more: what follows is the mail server's
    (its greeting may come in the same packet). Peeked, then taken up to the blank line."""
    answer = b""
    while True:
        peeked = sock.recv(4096, socket.MSG_PEEK)
        if not peeked:
            raise ProxyError("The HTTP proxy closed the connection before answering")
        # the blank line may straddle what was taken and what is peeked
        seen = answer[-3:] + peeked
        end = seen.find(b"\r\n\r\n")
        take = len(peeked) if end < 0 else end + 4 - len(answer[-3:])
        if len(answer) + take > MAX_HTTP_ANSWER:
            raise ProxyError(f"The HTTP proxy's answer is longer than {MAX_HTTP_ANSWER} bytes")
        answer += _recv_exactly(sock, take, proxy)
        if end >= 0:
            return answer
