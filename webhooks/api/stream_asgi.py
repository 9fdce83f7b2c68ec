"""The ASGI handler of ``/v1/stream`` (and the dashboard's ``/dashboard/stream``) over HTTP: the
API's handler without a thread per stream.

Django wraps every ASGI request in a ``ThreadSensitiveContext``, which gives the request its own
one-thread executor for sync code (the DRF view) and keeps it until the response is finished.
For an ordinary request that is milliseconds; a stream's response lasts for hours, so every open
stream would hold an idle thread (and the process stopped answering new streams after a few).
Here the context is left out: the view's short sync part (token, parameters, cursor check) runs
on asgiref's shared thread, and the streaming body runs in the event loop, its database reads in
the loop's shared pool (``webhooks.stream.hub.in_db_thread``).
"""

from __future__ import annotations

from emailapi.api.asgi_handler import ApiASGIHandler


class StreamASGIHandler(ApiASGIHandler):
    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"StreamASGIHandler serves HTTP, not {scope['type']}")
        await self.handle(scope, receive, send)


# The API's stream, and the dashboard's (the same view, authenticated by the session:
# accounts.web.live).
STREAM_PATHS = frozenset({"/v1/stream", "/dashboard/stream"})


# Streams only when the client asks for one (``Accept: text/event-stream``): EmailEngine's
# /v1/changes; its JSON change feed is an ordinary request.
SSE_PATHS = frozenset({"/v1/changes"})


def _wants_event_stream(scope) -> bool:
    return any(name == b"accept" and b"text/event-stream" in value
               for name, value in scope.get("headers", ()))


def streamed(scope, paths: frozenset[str] = STREAM_PATHS,
             sse_paths: frozenset[str] = SSE_PATHS) -> bool:
    """Whether an HTTP request is for a stream (``paths``, or ``sse_paths`` asking for one)."""
    path = scope.get("path")
    return path in paths or (path in sse_paths and _wants_event_stream(scope))
