"""Which IMAP/SMTP hosts a tenant's mailboxes may use: never one on an internal address.

A mailbox's servers are chosen by whoever registers it (a tenant's API client, or the end
user on a hosted connect page), and we connect to them from inside our network. A host on
loopback, a private or link-local network, CGNAT, multicast or a reserved range would let
anyone probe and talk to our own services through a mailbox (a "mail server" on the Redis
port answering verifyAccount). So such hosts are refused (``400 HostNotAllowed``) when a
mailbox is registered or changed and when settings are verified, and, because DNS may answer
differently later, the protocol layer checks again at every connection and connects to the
address it checked (``ImapSettings.allow_private`` / ``SmtpSettings.allow_private``,
``emailapi.lib.netguard``, the same classifier as webhooks).

Allowed anyway when the operator sets ``EMAILAPI_MAIL_ALLOW_PRIVATE=true`` (development,
tests, a single-tenant install next to its mail server) or ticks the tenant's "mail servers
on internal addresses" in the admin (an on-premise customer).

A host that does not resolve is not refused here (it may resolve later); connecting to it
fails until it does, and then it is checked.
"""

from __future__ import annotations

from django.conf import settings

from accounts.errors import HostNotAllowed
from accounts.models import Tenant
from emailapi.lib import netguard

SECTIONS = ("imap", "smtp")


def allows_private(tenant: Tenant | None) -> bool:
    """Whether ``tenant``'s mailboxes may use hosts on internal addresses."""
    return settings.EMAILAPI_MAIL_ALLOW_PRIVATE or bool(tenant and tenant.mail_allow_private)


def check(tenant: Tenant | None, data: dict) -> None:
    """Refuse (``HostNotAllowed``) the ``imap``/``smtp`` hosts given in ``data`` (a mailbox's
    settings, or the part of them being changed) that are on an internal address."""
    if allows_private(tenant):
        return
    for section in SECTIONS:
        server = data.get(section)
        if not isinstance(server, dict) or not server.get("host"):
            continue
        try:
            netguard.resolve(str(server["host"]), int(server.get("port") or 0), False)
        except netguard.InternalAddress as exc:
            raise HostNotAllowed(section, str(exc)) from None
        except netguard.Unresolvable:
            continue  # see the module doc
