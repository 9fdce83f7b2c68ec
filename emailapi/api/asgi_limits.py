"""A hard cap on request body size at the ASGI layer, before Django buffers anything.

``BodySizeLimitMiddleware`` refuses a body whose ``Content-Length`` is too large, but a chunked
body announces no length, and Django's ASGI handler would spool all of it before any view
runs. This wrapper counts bytes as they arrive and answers 413 (in the API error shape) as soon
as the cap is passed, so no client can make the server store an unbounded body.
"""

from __future__ import annotations

import json

from emailapi.api.error_shape import error_body


class BodyTooLarge(Exception):
    pass


def body_limit(app, max_bytes: int):
    async def limited(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        received = 0
        response_started = False

        async def counting_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise BodyTooLarge()
            return message

        async def tracking_send(message):
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not response_started:
                await send_413(send, max_bytes)

    return limited


async def send_413(send, max_bytes: int) -> None:
    body = json.dumps(error_body(f"Request body is larger than the {max_bytes} bytes allowed",
                                 "PayloadTooLarge", 413, {"maxBytes": max_bytes})).encode()
    await send({"type": "http.response.start", "status": 413, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]})
    await send({"type": "http.response.body", "body": body})
