"""Requests refused before Django: a URL with NUL in its path or query, a WebSocket to a
path that has none.

``%00`` decodes to a NUL character that PostgreSQL cannot store or compare: a path such as
``/v1/account/a%00b`` reached the account lookup and answered 500 (the dashboard's pages the
same), and no view can do anything useful with it. Serializers refuse NUL in the values they
validate; this refuses it everywhere else, once, for every route, with a 400 in the API error
shape. (JSON bodies are checked by ``emailapi.api.parsers``.)

A WebSocket handshake on any path but ``/v1/stream`` found no route in Channels' router, which
raises, and daphne answered 500 with a traceback in the log; ``no_websocket_here`` declines it
instead (daphne's answer to a WebSocket closed before it is accepted: 403).
"""

from __future__ import annotations

import json
import re

from emailapi.api.error_shape import error_body

# A NUL, raw or percent-encoded; a decoded path may also carry a lone surrogate (a server
# decoding with "surrogateescape"), which is no text either.
_PATH = re.compile("[\x00\ud800-\udfff]")
_QUERY = re.compile(rb"\x00|%00", re.IGNORECASE)


def nul_in_url(scope) -> str | None:
    """``"path"`` or ``"query"`` when that part of an HTTP request's URL holds a NUL."""
    if _PATH.search(scope.get("path", "")):
        return "path"
    if _QUERY.search(scope.get("query_string", b"")):
        return "query"
    return None


async def send_nul_400(send, where: str) -> None:
    message = f"NUL characters are not allowed in the URL's {where}"
    body = json.dumps(error_body(f"Invalid input: {where}: {message}", "InputValidationError",
                                 400, {where: [message]})).encode()
    await send({"type": "http.response.start", "status": 400, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
    ]})
    await send({"type": "http.response.body", "body": body})


async def no_websocket_here(scope, receive, send):
    """The last route of the WebSocket router: decline the handshake."""
    await receive()  # websocket.connect
    await send({"type": "websocket.close"})
