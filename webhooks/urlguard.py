"""Which webhook URLs we are willing to call: http(s) only, and never an internal address.

A webhook URL is chosen by a tenant, so without this check the dispatcher would make requests
into our own network for anyone (SSRF: a cloud metadata endpoint, an admin port on loopback).
The check runs when a subscription is saved *and* before every request, because DNS may
answer differently later; the transport then connects to exactly the address checked here,
so a second lookup cannot slip in another one (no time-of-check/time-of-use gap).
``WEBHOOKS_ALLOW_PRIVATE=true`` lifts the address rule (tests, on-premise receivers).

URL parsing and the address classifier are shared with the other outbound connections
(OAuth2 back channel, IMAP and SMTP): ``emailapi.egress``.
"""

from __future__ import annotations

from emailapi.egress import addresses
from emailapi.egress.http import MAX_URL_LENGTH, SCHEMES, Target, parse  # noqa: F401

UnsafeURL = addresses.UnsafeTarget  # malformed, not http(s), or an internal address
Unresolvable = addresses.Unresolvable  # perhaps for a moment: worth a retry at send time
is_forbidden = addresses.is_forbidden


def resolve(target: Target, allow_private: bool) -> list[str]:
    """The checked addresses to connect to: refused if ANY address the host resolves to is
    internal (``emailapi.egress.addresses``)."""
    try:
        return addresses.resolve(target.host, target.port, allow_private)
    except addresses.InternalAddress as exc:
        raise UnsafeURL(f"{exc}; such webhooks are refused (WEBHOOKS_ALLOW_PRIVATE)") from None


def check(url: str, allow_private: bool) -> Target:
    """What saving a subscription checks; ``Unresolvable`` is refused there too."""
    target = parse(url)
    if not allow_private:
        resolve(target, allow_private)
    return target
