"""Which hosts, addresses and URLs we connect to for a tenant, and connecting only to those.

Tenants choose the hosts we connect to (webhook receivers, OAuth2 token endpoints, IMAP and
SMTP servers). Unchecked, anyone could make us open connections into our own network (SSRF):
a cloud metadata endpoint, an admin port on loopback, a database on a private address. So a
host is resolved once, every address it resolves to is classified, and the connection goes
to an address that was checked: never a second lookup, which DNS could answer differently
(no time-of-check/time-of-use gap).

Forbidden: loopback, private (RFC 1918, ULA), link-local, CGNAT (100.64.0.0/10), cloud
metadata, multicast, unspecified, documentation, benchmarking, reserved, and everything else
not globally reachable. IPv6 addresses that carry an IPv4 address inside (IPv4-mapped
``::ffff:0:0/96``, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``, Teredo ``2001::/32``) are
judged by the IPv4 addresses inside: ``2002:7f00:1::`` reaches 127.0.0.1 through a 6to4
relay, so it is loopback to us. The ranges are listed here, not only taken from Python's
``ipaddress`` flags, whose tables change between Python releases.

A URL (webhook receiver, OAuth2 endpoint) must also be http(s), name a host and carry no
credentials (``parse_url``); ``check_url`` is what saving such a URL checks.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from emailapi.lib import names, tunnels

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_FORBIDDEN_V4 = tuple(ipaddress.ip_network(net) for net in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
    "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
))
_FORBIDDEN_V6 = tuple(ipaddress.ip_network(net) for net in (
    "::/96",  # unspecified, loopback and the deprecated IPv4-compatible form
    "64:ff9b:1::/48", "100::/64", "2001:db8::/32", "fc00::/7", "fe80::/10", "fec0::/10",
    "ff00::/8",
))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

SCHEMES = {"http": 80, "https": 443}
MAX_URL_LENGTH = 2048


class UnsafeTarget(ValueError):
    """Not something we connect to: a malformed URL, or a host with a forbidden address."""


class InternalAddress(UnsafeTarget):
    """The host is, or resolves to, an internal address."""

    def __init__(self, host: str, address: str):
        literal = host.strip("[]") == address
        where = "is" if literal else f"resolves to {address}, which is"
        super().__init__(f"{host} {where} an internal address (loopback, private, "
                         "link-local or reserved)")
        self.host, self.address = host, address


class BadURL(UnsafeTarget):
    """Malformed, not http(s), or carrying credentials."""


class Unresolvable(ValueError):
    """The host name did not resolve (perhaps only for now: worth a retry later)."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as written in the URL (for Host, SNI and certificate checks), no brackets
    port: int
    path: str  # path and query, as sent on the request line

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == SCHEMES[self.scheme] else f"{host}:{self.port}"


def parse_url(url: str) -> Target:
    """Where ``url`` points; ``BadURL`` unless it is an http(s) URL naming a host and no
    credentials. (Remembered per URL: a webhook's is parsed at every request.)"""
    if not isinstance(url, str) or len(url) > MAX_URL_LENGTH:
        raise BadURL(f"Must be a URL of at most {MAX_URL_LENGTH} characters")
    return _parse_url(url)


@lru_cache(maxsize=4096)
def _parse_url(url: str) -> Target:
    if any(ch in url for ch in "\r\n\t\0 "):
        raise BadURL("Must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise BadURL("Not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise BadURL("Must be an http:// or https:// URL")
    if not parts.hostname:
        raise BadURL("Must name a host")
    if parts.username is not None or parts.password is not None:
        raise BadURL("Must not contain credentials; send them with custom headers")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(scheme, parts.hostname, port or SCHEMES[scheme], path)


def check_url(url: str, allow_private: bool) -> Target:
    """What saving a URL checks: well formed and, unless ``allow_private``, a host that
    resolves to no internal address (``Unresolvable`` is refused here too). Requests check
    again when they connect, since DNS may answer differently later."""
    target = parse_url(url)
    if not allow_private:
        resolve(target.host, target.port, allow_private)
    return target


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address] | None:
    """The IPv4 addresses an IPv6 address carries (None when it carries none)."""
    if address.ipv4_mapped:
        return [address.ipv4_mapped]
    if address.sixtofour:
        return [address.sixtofour]
    if address.teredo:
        return list(address.teredo)  # (server, client): both are reached
    if address in _NAT64:
        return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    return None


def is_forbidden(address: IPAddress) -> bool:
    """Whether ``address`` is one we never connect to for a tenant (see the module doc)."""
    if isinstance(address, ipaddress.IPv6Address):
        inside = embedded_ipv4(address)
        if inside is not None:
            return any(is_forbidden(ipv4) for ipv4 in inside)
        if any(address in net for net in _FORBIDDEN_V6):
            return True
    elif any(address in net for net in _FORBIDDEN_V4):
        return True
    return (address.is_multicast or address.is_unspecified or address.is_loopback
            or address.is_link_local or address.is_private or address.is_reserved
            or not address.is_global)


def parse_address(text: str) -> IPAddress:
    """An address as getaddrinfo gives it (an IPv6 zone, ``fe80::1%eth0``, is dropped)."""
    return ipaddress.ip_address(text.split("%", 1)[0])


def lookup(host: str, port: int, timeout: float | None = None) -> list[tuple[int, tuple]]:
    """``(family, sockaddr)`` for each address of ``host``, in the resolver's order, within
    ``timeout`` seconds (``names``: bounded, shared, remembered for a while). An IPv4 address
    written out is its own answer (what getaddrinfo would give, without its cost)."""
    if host[:1].isdigit():
        try:
            if socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, host)) == host:
                return [(socket.AF_INET, (host, port))]
        except OSError:
            pass  # a name, or a form only the resolver reads (``127.1``)
    try:
        infos = names.getaddrinfo(host, port, timeout)
    except names.LookupTimedOut as exc:
        raise Unresolvable(f"Cannot resolve {host}: {exc}") from None
    except socket.gaierror as exc:
        raise Unresolvable(f"Cannot resolve {host}: {exc.strerror or 'no address'}") from None
    except (UnicodeError, ValueError, OSError):
        raise Unresolvable(f"Cannot resolve {host}: not a valid host name") from None
    found = list(dict.fromkeys((info[0], info[4]) for info in infos))
    if not found:
        raise Unresolvable(f"Cannot resolve {host}: no address")
    return found


def check(host: str, addresses: Iterable[str]) -> None:
    """Refuse ``host`` if ANY of its addresses is forbidden: a name answering with one
    public and one internal address is not safe (the resolver's order may change)."""
    for text in addresses:
        if _forbidden_text(text):
            raise InternalAddress(host, text)


@lru_cache(maxsize=4096)
def _forbidden_text(text: str) -> bool:
    """``is_forbidden`` of an address as text, remembered (it is checked at every request)."""
    return is_forbidden(parse_address(text))


def resolve(host: str, port: int, allow_private: bool,
            timeout: float | None = None) -> list[str]:
    """The checked addresses of ``host``, as text; connect to one of these only."""
    found = lookup(host, port, timeout)
    texts = list(dict.fromkeys(sockaddr[0] for _, sockaddr in found))
    if not allow_private:
        check(host, texts)
    return texts


def connect(host: str, port: int, timeout: float | None, allow_private: bool,
            source_address: tuple | None = None,
            proxy: tunnels.Proxy | None = None) -> socket.socket:
    """``socket.create_connection`` that connects only to checked addresses of ``host``
    (raises ``InternalAddress`` or ``Unresolvable`` before any connection is tried).

    For protocol clients (imaplib, smtplib) that would otherwise resolve the name
    themselves; TLS still names ``host`` (SNI, certificate check), the caller's business.

    With a ``proxy`` it is the proxy's host that is resolved, checked and connected to, and a
    tunnel is then opened to ``host`` by name (``tunnels``): the proxy resolves it, in its own
    network. A ``host`` written as an address is still checked: no tunnel to an internal
    address unless ``allow_private``. ``tunnels.ProxyError`` when the proxy will not."""
    if not isinstance(timeout, (int, float)):  # smtplib may pass its "no value" object
        timeout = None
    if proxy is None:
        return _connect(host, port, timeout, allow_private, source_address)
    if not allow_private:
        try:
            literal = parse_address(host.strip("[]"))
        except ValueError:
            literal = None
        if literal is not None and is_forbidden(literal):
            raise InternalAddress(host, host.strip("[]"))
    sock = _connect(proxy.host, proxy.port, timeout, allow_private, source_address)
    try:
        tunnels.open_tunnel(sock, proxy, host.strip("[]"), port, timeout)
    except BaseException:
        sock.close()
        raise
    return sock


def _connect(host: str, port: int, timeout: float | None, allow_private: bool,
             source_address: tuple | None) -> socket.socket:
    found = lookup(host, port, timeout)
    if not allow_private:
        check(host, (sockaddr[0] for _, sockaddr in found))
    error: OSError | None = None
    for family, sockaddr in found:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            if timeout is not None:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error  # type: ignore[misc]  # lookup() never returns an empty list
