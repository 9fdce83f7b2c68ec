"""Who the client is: the peer of the connection, unless that peer is a trusted proxy.

``X-Forwarded-For`` and ``X-Forwarded-Proto`` say whatever the previous hop wants them to say,
so they are believed only from the addresses and networks in ``EMAILAPI_TRUSTED_PROXIES``
(none by default). Each proxy appends the address it saw to ``X-Forwarded-For``, so the list
is read from the right: past the trusted proxies, the first address is the client; anything
left of it is the client's own claim and is ignored. Sign-in throttling (per client address)
and ``REMOTE_ADDR`` rest on this.

The headers are then removed from the request: what they said (or that they are not believed)
is in the scope's ``client`` and ``scheme``, and nothing downstream (Django, DRF's throttles,
a library) can read them again and decide differently.
"""

from __future__ import annotations

import ipaddress

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

FORWARDED_FOR, FORWARDED_PROTO = b"x-forwarded-for", b"x-forwarded-proto"
# Read here or by no one: removed from every request.
FORWARDED_HEADERS = frozenset({FORWARDED_FOR, FORWARDED_PROTO, b"x-forwarded-port"})
_SCHEMES = {"http": {"http": "http", "https": "https"}, "websocket": {"http": "ws", "https": "wss"}}


def parse_address(text: str) -> Address | None:
    """An address as proxies write it (``203.0.113.9``, ``[2001:db8::1]:443``, ``1.2.3.4:80``),
    IPv4-mapped IPv6 as IPv4; None for anything else (``unknown``, a name)."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    return getattr(address, "ipv4_mapped", None) or address


def is_trusted(address: Address | None, trusted: list[Network]) -> bool:
    return address is not None and any(address in network for network in trusted)


def _values(headers, name: bytes) -> list[str]:
    """Every comma-separated item of a header that may come on several lines, in order."""
    items = []
    for key, value in headers:
        if key.lower() == name:
            items += [item.strip() for item in value.decode("latin-1").split(",")]
    return [item for item in items if item]


def resolve(peer: str | None, scheme: str, headers, trusted: list[Network],
            scope_type: str = "http") -> tuple[str | None, str, bool]:
    """``(client address, scheme, from_proxy)`` of a request from ``peer`` with ``headers``
    (``(name, value)`` byte pairs); the peer and the connection's own scheme unless the peer
    is trusted and the headers say more."""
    if not trusted or not is_trusted(parse_address(peer or ""), trusted):
        return peer, scheme, False
    hops = _values(headers, FORWARDED_FOR)
    if not hops:
        return peer, scheme, False
    index = len(hops) - 1
    while index > 0 and is_trusted(parse_address(hops[index]), trusted):
        index -= 1
    client = parse_address(hops[index])
    if client is None:  # not an address: the proxy's word is all we have
        return peer, scheme, False
    protos = [proto.lower() for proto in _values(headers, FORWARDED_PROTO)]
    # A proxy that appends its scheme (like its peer's address) writes one item per hop.
    proto = (protos[index] if len(protos) == len(hops) else protos[-1]) if protos else None
    scheme = _SCHEMES.get(scope_type, {}).get(proto, scheme)
    return str(client), scheme, True


def client_scope(scope: dict, trusted: list[Network]) -> dict:
    """The ASGI ``scope`` with ``client`` and ``scheme`` as seen past trusted proxies, and
    without the forwarding headers."""
    headers = scope.get("headers") or []
    peer = scope.get("client")
    address, scheme, forwarded = resolve(peer[0] if peer else None, scope.get("scheme", "http"),
                                         headers, trusted, scope.get("type", "http"))
    kept = [(name, value) for name, value in headers if name.lower() not in FORWARDED_HEADERS]
    if not forwarded and len(kept) == len(headers):
        return scope
    # The client's port is not forwarded: 0, as daphne says for a proxied client.
    client = [address, 0] if forwarded else peer
    return {**scope, "client": client, "scheme": scheme, "headers": kept}


def client_address(request) -> str:
    """A Django request's client address as ``client_scope`` resolved it (``REMOTE_ADDR``:
    the peer, or what trusted proxies said of the client), '' when the server gave none.
    What the pages and the API record of who did something (an unsubscribe, a block, an
    open) is read here, so they all mean the same client."""
    return request.META.get("REMOTE_ADDR") or ""
