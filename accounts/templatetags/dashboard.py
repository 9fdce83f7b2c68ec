"""Template helpers of the dashboard."""

from django import template

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
