"""Template helpers of the dashboard."""

from datetime import datetime
from datetime import timezone as dt_timezone

from django import template
from django.utils.html import format_html

from accounts import state as account_state
from webhooks import events

register = template.Library()


@register.simple_tag
def stream_events() -> str:
    """The event names the live stream sends (space-separated), from the one list
    (``webhooks.events.ALL``), for the dashboard's script to listen to."""
    return " ".join(events.ALL)


@register.simple_tag
def input_for(field):
    """The field's input, tied to its help and error text for screen readers."""
    ids = []
    if field.help_text:
        ids.append(f"{field.auto_id}_help")
    if field.errors:
        ids.append(f"{field.auto_id}_error")
    attrs = {"aria-describedby": " ".join(ids)} if ids else {}
    if field.errors:
        attrs["aria-invalid"] = "true"
    return field.as_widget(attrs=attrs)


# The one way the dashboard writes a moment, server-rendered or live (app.js ``when``):
# UTC, with its zone, so two times on a page always compare.
TIME_FORMAT = "%Y-%m-%d %H:%M:%S UTC"


@register.filter(is_safe=True)
def when(value) -> str:
    """A ``<time>`` element for an aware datetime (or an ISO 8601 string): "2026-12-03
    07:34:21 UTC"; empty for None."""
    if not value:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    moment = value.astimezone(dt_timezone.utc)
    return format_html('<time datetime="{}">{}</time>',
                       moment.isoformat().replace("+00:00", "Z"),
                       moment.strftime(TIME_FORMAT))


@register.filter
def shown_error(account) -> dict | None:
    """The mailbox's last error as the pages show it (``accounts.state.shown_error``)."""
    return account_state.shown_error(account.state, account.last_error)


@register.filter
def sender(message) -> str:
    """Who a message is from, as a person reads it: the name, else the address."""
    found = message.from_address or message.sender or {}
    return found.get("name") or found.get("address") or ""
