"""Which webhook URLs we are willing to call: http(s) only, and never an internal address.

A webhook URL is chosen by a tenant, so without this check the dispatcher would make requests
into our own network for anyone (SSRF: a cloud metadata endpoint, an admin port on loopback).
The check runs when a subscription is saved *and* before every request, because DNS may
answer differently later; the transport then connects to exactly the address checked here,
so a second lookup cannot slip in another one (no time-of-check/time-of-use gap).
``WEBHOOKS_ALLOW_PRIVATE=true`` lifts the address rule (tests, on-premise receivers).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

SCHEMES = {"http": 80, "https": 443}
MAX_URL_LENGTH = 2048
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


class UnsafeURL(ValueError):
    """The URL is malformed, not http(s), or its host is an address we refuse to call."""


class Unresolvable(ValueError):
    """The host name did not resolve (possibly for a moment: worth a retry at send time)."""


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


def parse(url: str) -> Target:
    if not isinstance(url, str) or len(url) > MAX_URL_LENGTH:
        raise UnsafeURL(f"Must be a URL of at most {MAX_URL_LENGTH} characters")
    if any(ch in url for ch in "\r\n\t\0 "):
        raise UnsafeURL("Must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(f"Not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise UnsafeURL("Must be an http:// or https:// URL")
    if not parts.hostname:
        raise UnsafeURL("Must name a host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeURL("Must not contain credentials; send them with custom headers")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(scheme, parts.hostname, port or SCHEMES[scheme], path)


def is_forbidden(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Loopback, private, link-local, CGNAT, metadata, multicast, unspecified, reserved."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address in _METADATA or (address.version == 4 and address in _CGNAT):
        return True
    return (address.is_multicast or address.is_unspecified or address.is_loopback
            or address.is_link_local or address.is_private or address.is_reserved
            or not address.is_global)


def resolve(target: Target, allow_private: bool) -> list[str]:
    """The addresses to connect to. Refuses the host if ANY address it resolves to is
    forbidden: a name answering with one public and one internal address is not safe."""
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Unresolvable(f"Cannot resolve {target.host}: {exc}") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not allow_private:
        for text in addresses:
            if is_forbidden(ipaddress.ip_address(text.split("%", 1)[0])):
                raise UnsafeURL(f"{target.host} resolves to {text}, an internal address; "
                                "such webhooks are refused (WEBHOOKS_ALLOW_PRIVATE)")
    if not addresses:
        raise Unresolvable(f"Cannot resolve {target.host}")
    return addresses


def check(url: str, allow_private: bool) -> Target:
    """What saving a subscription checks; ``Unresolvable`` is refused there too."""
    target = parse(url)
    if not allow_private:
        resolve(target, allow_private)
    return target
