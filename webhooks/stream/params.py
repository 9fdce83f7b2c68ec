"""A stream request (SSE and WebSocket alike): which events, from where, live or not.

Built from the query parameters the web layer validated (``webhooks.api.stream_query``);
``since`` is a seq (a stream event's ``id``) or a change-feed cursor.
"""

from __future__ import annotations

from dataclasses import dataclass

from webhooks import feed


@dataclass(frozen=True)
class StreamRequest:
    filter: feed.Filter
    since: int | None
    once: bool


def parse_since(value: str | None) -> int | None:
    """Raise ``feed.InvalidCursor`` on a malformed value."""
    if value is None or value.strip() == "":
        return None
    return feed.decode_cursor(value)


def build_filter(tenant_id: int, data: dict, account: str | None = None) -> feed.Filter:
    accounts = data.get("accounts")
    if account is not None:
        accounts = [account]
    events = data.get("events")
    return feed.Filter(tenant_id=tenant_id,
                       accounts=frozenset(accounts) if accounts is not None else None,
                       events=frozenset(events) if events is not None else None)


def stream_request(tenant_id: int, data: dict, last_event_id: str | None) -> StreamRequest:
    """From validated ``StreamQuerySerializer`` data; ``since`` wins over ``Last-Event-ID``."""
    since = data.get("since")
    return StreamRequest(filter=build_filter(tenant_id, data),
                         since=parse_since(since if since is not None else last_event_id),
                         once=data.get("once", False))
