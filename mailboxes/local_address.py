"""The local address an SMTP or IMAP connection goes out from (EmailEngine's ``localAddress``,
and its ``imapStrategy`` for IMAP).

The machine's addresses belong to the operator, not to tenants: a tenant choosing any source
address would pick another tenant's sending reputation, or one the machine does not have. So
the operator lists the ones sends may use (``EMAILAPI_SMTP_LOCAL_ADDRESSES``) and a send's
``localAddress`` is only a hint, as in EmailEngine (``getLocalAddress``)::

    hint in the list              -> the hint                       ("hint")
    else one address listed       -> that one                       ("single")
    else several                  -> the account's own, stable      ("dedicated")
    else none                     -> no bind: the OS chooses        ("default")

"Dedicated" is rendezvous (highest random weight) hashing over the account: each account
keeps its address for as long as the list holds it, and removing an address moves only the
accounts that had it. A listed address the machine does not have (any more) is skipped, with
a warning, before the choice: binding to it would fail every send.

``choose`` is the pure rule; ``route`` applies it to the setting and the machine. What was
chosen travels in ``messageSent``, ``messageDeliveryError`` and ``messageFailed`` as
``networkRouting`` (``Route.network_routing``).

IMAP connections follow the same rule without a hint, over their own list
(``EMAILAPI_IMAP_LOCAL_ADDRESSES``; ``imap_address``): an account keeps its address across
reconnects, so a server that limits connections per client address sees each account's
sessions come from one place.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings

from mailboxes import smtp

logger = logging.getLogger(__name__)

_missing_warned: set[tuple[str, str]] = set()  # addresses already warned about by this process


@dataclass(frozen=True)
class Route:
    """Where a send's connection goes out from: ``address`` bound (None: the operating
    system's choice), the ``requested`` hint, how it was chosen (``selector``: hint, single,
    dedicated, default) and the EHLO ``name`` the connection greets with (when known)."""

    address: str | None
    requested: str | None = None
    selector: str = "default"
    name: str | None = None
    proxy: str | None = None  # the proxy URL the connection goes through, password masked

    def network_routing(self) -> dict | None:
        """EmailEngine's ``networkRouting``: ``{localAddress, name, requestedLocalAddress}``,
        ``localAddress`` when one was bound, ``requestedLocalAddress`` when the hint was not
        the one used; ``proxy`` (password masked) when the connection went through one. None
        when there is nothing to say (no bind, no hint, no proxy). EmailEngine
        says nothing either for a hint it could not honour without a bind; here the caller
        learns it was not used."""
        if self.address is None and self.requested is None and not self.proxy:
            return None
        routing: dict = {}
        if self.address is not None:
            routing["localAddress"] = self.address
        if self.name:
            routing["name"] = self.name
        if self.requested is not None and self.requested != self.address:
            routing["requestedLocalAddress"] = self.requested
        if self.proxy:
            routing["proxy"] = self.proxy
        return routing


def normalized(value: str) -> str | None:
    """``value`` as ``ipaddress`` writes it (``2001:DB8:0::1`` -> ``2001:db8::1``), or None
    when it is not an IP address."""
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def choose(hint: str | None, addresses: Sequence[str], account_key: str) -> Route:
    """The rule of the module doc. ``addresses``: the usable ones, normalized; ``hint`` as
    given (None for none); ``account_key`` names the account for the dedicated choice."""
    hint = hint or None
    wanted = normalized(hint) if hint else None
    if wanted is not None and wanted in addresses:
        return Route(wanted, hint, "hint")
    if len(addresses) == 1:
        return Route(addresses[0], hint, "single")
    if addresses:
        return Route(rendezvous(account_key, addresses), hint, "dedicated")
    return Route(None, hint, "default")


def rendezvous(key: str, addresses: Iterable[str]) -> str:
    """The address of highest weight for ``key``, the weight a hash of both: the same key
    gets the same address while the list holds it, whatever else is added or removed.
    (Our hash, SHA-256: EmailEngine's choice for the same account may differ.)"""
    def weight(address: str) -> bytes:
        return hashlib.sha256(f"{address}\0{key}".encode()).digest()

    return max(addresses, key=weight)


def usable(addresses: Iterable[str], setting: str = "EMAILAPI_SMTP_LOCAL_ADDRESSES") -> list[str]:
    """The listed addresses the machine has, normalized, in order: each is tried by binding a
    socket to it (port 0, never listening), which fails for an address the machine lacks."""
    found = []
    for listed in addresses:
        address = normalized(listed)
        if address is None:
            _warn(listed, "it is not an IP address", setting)
        elif _bindable(address):
            found.append(address)
        else:
            _warn(address, "this machine does not have it", setting)
    return list(dict.fromkeys(found))


def _bindable(address: str) -> bool:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.bind((address, 0))
    except OSError:
        return False
    return True


def _warn(address: str, why: str, setting: str = "EMAILAPI_SMTP_LOCAL_ADDRESSES") -> None:
    """Once per address and process: the setting is read at every send and connect."""
    if (setting, address) not in _missing_warned:
        _missing_warned.add((setting, address))
        logger.warning("%s: %s is skipped: %s", setting, address, why)


def route(hint: str | None, tenant_id: int, account_id: str) -> Route:
    """The route of one send of the account (``account_id`` of tenant ``tenant_id``): the
    choice over the usable listed addresses, with the EHLO name the connection will use when
    there is something to report. The dedicated choice hashes tenant and account together:
    two tenants' accounts of the same id need not share an address."""
    chosen = choose(hint, usable(settings.EMAILAPI_SMTP_LOCAL_ADDRESSES),
                    f"{tenant_id}:{account_id}")
    if chosen.network_routing() is None:
        return chosen
    return Route(chosen.address, chosen.requested, chosen.selector, smtp.default_ehlo_name())


def imap_address(tenant_id: int, account_id: str) -> str | None:
    """The address the account's IMAP connections go out from (None: the operating system
    chooses): the rule without a hint over ``EMAILAPI_IMAP_LOCAL_ADDRESSES``, keyed as a
    send's, so with the same list an account's IMAP and SMTP connections share an address."""
    listed = settings.EMAILAPI_IMAP_LOCAL_ADDRESSES
    if not listed:
        return None
    return choose(None, usable(listed, "EMAILAPI_IMAP_LOCAL_ADDRESSES"),
                  f"{tenant_id}:{account_id}").address
