"""The text/event-stream body: one SSE event per published event, keep-alives in between.

    id: 42
    event: messageNew
    data: {"id": "...", "seq": 42, "event": "messageNew", "account": "box", ...}

``id`` is the seq, so a browser's EventSource resumes by itself (it sends it back as
``Last-Event-ID``). The body opens with a ``retry`` hint and a comment, so headers and the
first bytes reach the client at once, and a comment follows every ``STREAM_KEEPALIVE`` seconds
of silence, so proxies do not close an idle stream. A client that does not read is dropped: the
body simply ends (``backlog.Backlog``; ``Subscriber.drop``), and the client resumes with its last
id when it is ready.
"""

from __future__ import annotations

import logging
from contextlib import aclosing

from django.conf import settings

from webhooks import feed
from webhooks.stream.backlog import Backlog
from webhooks.stream.hub import Item, get_hub, read_page
from webhooks.stream.params import StreamRequest
from webhooks.stream.subscriber import REPLAY_PAGE, Subscriber

logger = logging.getLogger(__name__)
OPENING = b"retry: 2000\n: emailapi event stream\n\n"
KEEPALIVE = b": keep-alive\n\n"


def format_event(item: Item) -> bytes:
    return f"id: {item.seq}\nevent: {item.event}\ndata: {item.json}\n\n".encode()


def snapshot_body(request: StreamRequest) -> bytes:
    """The ``once=true`` body: what exists now after ``since``, read in pages (synchronous)."""
    parts = [OPENING]
    cursor = request.since or 0
    if request.since is None:
        return b"".join(parts)
    while True:
        items, page = read_page(request.filter, cursor, REPLAY_PAGE)
        parts.extend(format_event(item) for item in items)
        cursor = page.horizon
        if not page.has_more:
            return b"".join(parts)


async def live_body(request: StreamRequest, backlog: Backlog):
    """The streaming body: replay after ``since``, then live, until the client goes away (the
    ASGI handler cancels us) or is dropped for being slow."""
    subscriber = Subscriber(get_hub(), request.filter, request.since,
                            settings.STREAM_CLIENT_QUEUE)
    yield OPENING
    try:
        async with aclosing(subscriber.items(settings.STREAM_KEEPALIVE)) as items:
            async for item in items:
                yield KEEPALIVE if item is None else format_event(item)
                if not await backlog.wait_drained(settings.STREAM_CLIENT_BUFFER,
                                                  settings.STREAM_SLOW_SECONDS,
                                                  gone=lambda: subscriber.dropped):
                    subscriber.drop()
                if subscriber.dropped:
                    logger.info("event stream: dropped a slow SSE client of tenant %s at seq %s",
                                request.filter.tenant_id, subscriber.cursor)
                    backlog.abort_later()
                    return
    finally:
        subscriber.close()


def expired(request: StreamRequest) -> bool:
    if request.since is None:
        return False
    try:
        feed.check_not_expired(request.since)
    except feed.CursorExpired:
        return True
    return False
