"""Real calls of the live stream (its SSE snapshot, ``once=true``, which ends instead of staying
open) and of the change feed, for ``test_openapi.test_real_responses_match_the_document``."""

from __future__ import annotations

from django.db import transaction

from webhooks import events, sequencer
from webhooks import feed as changes


def _stream_calls(alice, bob):
    api = alice.client
    start = changes.head()
    with transaction.atomic():
        for n in range(3):
            events.record(alice.tenant, events.MESSAGE_NEW, "box", {"n": n}, path="INBOX")
    sequencer.publish_pending()
    return [
        ("/v1/stream", "get", lambda: api.get(f"/v1/stream?once=true&since={start}")),
        ("/v1/stream", "get", lambda: api.get("/v1/stream?events=nope")),
        ("/v1/changes", "get", lambda: api.get("/v1/changes?limit=2")),
        ("/v1/changes", "get", lambda: api.get("/v1/changes?since=%25%25")),
        ("/v1/changes", "get", lambda: api.get(f"/v1/changes?since={start + 1000}")),
        ("/v1/account/{account}/changes", "get",
         lambda: api.get("/v1/account/box/changes?since=now")),
        ("/v1/account/{account}/changes", "get",
         lambda: api.get(f"/v1/account/box/changes?pageSize=10&since={start}")),
        ("/v1/account/{account}/changes", "get",
         lambda: bob.client.get("/v1/account/box/changes")),
    ]
