"""``GET /v1/stream``: the tenant's live events as Server-Sent Events (the WebSocket at the
same path is ``webhooks.api.stream_socket``).

The view authenticates and validates like every /v1 view (DRF, in a thread), then returns a
streaming response whose body is an async generator: under ASGI it runs in the event loop, so
an open stream costs a coroutine and a small buffer, never a thread. ``once=true`` is a
snapshot that ends: an ordinary response with the whole body.
"""

from __future__ import annotations

from functools import partial

from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema

from accounts.api.authentication import still_valid
from emailapi.api.views import TenantScopedAPIView
from webhooks.api import feed, stream_query
from webhooks.errors import CursorExpired
from webhooks.stream import params, sse
from webhooks.stream.backlog import Backlog
from webhooks.stream.validity import Validity, while_valid


class StreamView(TenantScopedAPIView):
    content_negotiation_class = feed.JsonErrorsOnly

    @extend_schema(
        operation_id="streamEvents", tags=["Events"], parameters=[stream_query.StreamQuerySerializer],
        responses={(200, "text/event-stream"): OpenApiResponse(OpenApiTypes.STR, description=(
            "One SSE event per event: `id: <seq>`, `event: <name>`, `data: <payload JSON>`; "
            "a `: keep-alive` comment every 15 s of silence")), 410: feed.EXPIRED},
        summary="Live events (Server-Sent Events; WebSocket at the same path)",
        description="Your tenant's events as they are published, as Server-Sent Events. "
                    "`Last-Event-ID` (sent by EventSource on reconnect) or `since` replays the "
                    "events after that seq first, then continues live: nothing missed, nothing "
                    "twice. A client that stops reading is disconnected; it resumes with its "
                    "last id. The same stream is a WebSocket at this path (see README).")
    def get(self, request):
        query = self.validated(stream_query.StreamQuerySerializer, stream_query.flatten_lists(
            request.query_params))
        since = params.parse_since(query.get("since", request.headers.get("Last-Event-ID")))
        stream = params.StreamRequest(filter=params.build_filter(self.tenant.pk, query),
                                      since=since, once=query["once"])
        if sse.expired(stream):
            raise CursorExpired()
        if stream.once:  # a whole body, not a stream (Django would buffer a sync iterator)
            response = HttpResponse(sse.snapshot_body(stream), content_type="text/event-stream")
        else:
            response = StreamingHttpResponse(
                self.live_body(stream, Backlog.from_scope(getattr(request, "scope", None))),
                content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
        return response

    def live_body(self, stream: params.StreamRequest, backlog: Backlog):
        """The streaming body, ended once the token is revoked or the tenant stopped (checked
        every ``STREAM_KEEPALIVE``); the dashboard's stream checks its session instead."""
        caller = self.request.user
        return while_valid(sse.live_body(stream, backlog),
                           Validity(partial(still_valid, caller), settings.STREAM_KEEPALIVE))
