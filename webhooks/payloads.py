"""The JSON a subscriber receives for one event: webhooks, the live stream and the change feed
all render events here, so the three can never disagree about an event's shape.

    {"id": eventId, "seq": 42, "event": "messageNew", "account": "my-account",
     "date": "2025-01-01T10:00:00.000000+00:00", "path": "INBOX"?, "data": {...}}

``id`` lets a receiver drop repeats (delivery is at least once); ``seq`` is the event's place in
the one published order (``webhooks.sequencer``) and is what stream and feed cursors count.
``path`` is present only for events about one folder, as in the product we replace.
"""

from __future__ import annotations

from webhooks.models import Event


def event_payload(event: Event) -> dict:
    payload = {
        "id": str(event.id),
        "seq": event.seq,
        "event": event.event,
        "account": event.account_id or None,
        "date": event.created_at.isoformat(),
    }
    if event.path:
        payload["path"] = event.path
    payload["data"] = event.data
    return payload
