"""Template filters of the dashboard's mail pages: addresses and dates as the API gives them
(``{"name", "address"}`` dicts, ISO 8601 strings) in words a reader expects."""

from __future__ import annotations

from django import template
from django.utils.dateparse import parse_datetime

from mailboxes import listing

register = template.Library()


@register.filter
def address(value) -> str:
    """``Name <address>``, or the address alone; empty for none."""
    if not isinstance(value, dict):
        return ""
    name, addr = (value.get("name") or "").strip(), (value.get("address") or "").strip()
    if name and addr:
        return f"{name} <{addr}>"
    return name or addr


@register.filter
def sender(value) -> str:
    """The sender's name for a list (the address when there is no name)."""
    if not isinstance(value, dict):
        return ""
    return (value.get("name") or "").strip() or (value.get("address") or "").strip()


@register.filter
def addresses(value) -> str:
    return ", ".join(filter(None, (address(item) for item in value or [])))


@register.filter
def isodate(value):
    """An API timestamp (``2024-03-01T09:30:00Z``) as a datetime for ``|date``."""
    return parse_datetime(value) if isinstance(value, str) else value


@register.simple_tag
def sync_progress_of(account):
    """``{% sync_progress_of account as progress %}``: the mailbox's first-sync progress
    (``mailboxes.listing.sync_progress``), for pages whose view does not give it."""
    return listing.sync_progress(account)
