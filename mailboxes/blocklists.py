"""Blocklists (EmailEngine's ``/v1/blocklists``): the addresses a tenant's mailing lists send
nothing more to.

A list is named by a send's ``listId``, a host-name-like id ("newsletter", "news.example");
lists are made ad hoc and one exists while it holds an address. An address gets on a list by
its recipient's unsubscribe (``mailboxes.unsubscribe``) or over the API, and off it by the
recipient subscribing again or over the API. Addresses are kept lowercased and trimmed, the
recipient as given beside it. What a send with ``listId`` does with them is
``mailboxes.list_sends``.
"""

from __future__ import annotations

import re

from django.db.models import Count, QuerySet
from django.utils import timezone

from accounts.models import Tenant
from mailboxes.models import BlocklistEntry

# A host name's shape (EmailEngine validates listId as one): labels of letters, digits and
# inner hyphens, dot-separated.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
LIST_ID = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
MAX_LIST_ID = 253

SOURCES = ("api", "one-click", "form")


def list_id_problem(value: str) -> str | None:
    """Why ``value`` cannot name a list, or None when it can."""
    if len(value) > MAX_LIST_ID or not LIST_ID.fullmatch(value):
        return ("Must look like a host name: letters, digits, hyphens and dots "
                f"(\"newsletter\", \"news.example\"), at most {MAX_LIST_ID} characters")
    return None


def normalized(address: str) -> str:
    return address.strip().lower()


def add(tenant: Tenant | int, list_id: str, recipient: str, account_id: str, *,
        source: str, reason: str, message_id: str = "", remote_address: str = "",
        user_agent: str = "") -> bool:
    """Put ``recipient`` on the list; True when it was not on it. An address already there
    keeps its place with this entry's details (the latest reason stands, as in
    EmailEngine, whose ``created`` is "added or updated")."""
    _, created = BlocklistEntry.objects.update_or_create(
        tenant_id=getattr(tenant, "pk", tenant), list_id=list_id, address=normalized(recipient),
        defaults={"recipient": recipient.strip(), "account_id": account_id,
                  "message_id": message_id, "source": source, "reason": reason,
                  "remote_address": remote_address[:64], "user_agent": user_agent[:512],
                  "created_at": timezone.now()})
    return created


def remove(tenant: Tenant | int, list_id: str, recipient: str) -> bool:
    """Take ``recipient`` off the list; True when it was on it."""
    deleted, _ = BlocklistEntry.objects.filter(
        tenant_id=getattr(tenant, "pk", tenant), list_id=list_id,
        address=normalized(recipient)).delete()
    return bool(deleted)


def blocked(tenant: Tenant | int, list_id: str, recipient: str) -> BlocklistEntry | None:
    return BlocklistEntry.objects.filter(
        tenant_id=getattr(tenant, "pk", tenant), list_id=list_id,
        address=normalized(recipient)).first()


def blocked_among(tenant: Tenant | int, list_id: str,
                  recipients: list[str]) -> dict[str, BlocklistEntry]:
    """The entries of those of ``recipients`` on the list, by normalized address: one query
    for a mail merge's recipients, not one each."""
    addresses = {normalized(recipient) for recipient in recipients}
    return {entry.address: entry for entry in BlocklistEntry.objects.filter(
        tenant_id=getattr(tenant, "pk", tenant), list_id=list_id, address__in=addresses)}


def exists(tenant: Tenant, list_id: str) -> bool:
    return BlocklistEntry.objects.filter(tenant=tenant, list_id=list_id).exists()


def lists(tenant: Tenant) -> QuerySet:
    """``{list_id, count}`` rows, by list id (EmailEngine's order)."""
    return (BlocklistEntry.objects.filter(tenant=tenant).values("list_id")
            .annotate(count=Count("id")).order_by("list_id"))


def entries(tenant: Tenant, list_id: str) -> QuerySet:
    """A list's entries, by address (EmailEngine's order)."""
    return BlocklistEntry.objects.filter(tenant=tenant, list_id=list_id).order_by("address")

