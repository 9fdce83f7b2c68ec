"""Requests straight into ``emailapi.asgi.application`` (what the web server runs), in this
process: the fuzz tests use it so that what they send meets every layer a real request meets
(the ASGI guards before Django included), while name resolution stays fenced in this process."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from urllib.parse import quote, unquote

from asgiref.testing import ApplicationCommunicator


async def call(application, method: str, path: str, query: str, body: bytes,
               headers: Iterable[tuple[bytes, bytes]]) -> tuple[int, dict, bytes]:
    """``(status, headers, body)`` of one request; ``path`` and ``query`` percent-encoded.
    A live event stream never ends: only its head is read."""
    raw_path = quote(path, safe="/%").encode()
    scope = {"type": "http", "method": method, "path": unquote(path), "raw_path": raw_path,
             "query_string": query.encode(), "http_version": "1.1", "scheme": "http",
             "headers": [(b"host", b"127.0.0.1"), *headers,
                         (b"content-length", str(len(body)).encode())],
             "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 5000), "root_path": "",
             "asgi": {"version": "3.0"}}
    app = ApplicationCommunicator(application, scope)
    await app.send_input({"type": "http.request", "body": body, "more_body": False})
    start = await app.receive_output(60)
    answer_headers = {name.decode().lower(): value.decode() for name, value in start["headers"]}
    content = b""
    if not answer_headers.get("content-type", "").startswith("text/event-stream"):
        while True:
            message = await app.receive_output(60)
            content += message.get("body", b"")
            if not message.get("more_body"):
                break
    await app.send_input({"type": "http.disconnect"})
    await app.wait(10)
    return start["status"], answer_headers, content


def run(main):
    """``asyncio.run(main())`` on a thread of its own (a browser test may have left an event
    loop on this one), returning its result or raising what it raised."""
    result, failure = [], []

    def in_thread():
        try:
            result.append(asyncio.run(main()))
        except BaseException as exc:  # raised again in the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]
