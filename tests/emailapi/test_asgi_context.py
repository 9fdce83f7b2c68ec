"""Each ASGI connection starts from a clean context (``emailapi.asgi_context``), even when the
server starts it from inside another request, as daphne does for a kept-alive connection's
next request. The end-to-end proof (thousands of downloads through daphne) is
``tests/mailboxes/test_download_connections.py``; this is the mechanism, without servers."""

from __future__ import annotations

import asyncio
import contextvars

from asgiref.sync import SyncToAsync, ThreadSensitiveContext

from emailapi.asgi_context import fresh_context

marker = contextvars.ContextVar("marker", default="clean")


def test_a_request_started_inside_another_inherits_none_of_its_context():
    seen = {}

    async def app(scope, receive, send):
        seen["thread-sensitive context"] = SyncToAsync.thread_sensitive_context.get(None)
        seen["marker"] = marker.get()
        marker.set("set by the request")

    application = fresh_context(app)

    async def previous_request():
        async with ThreadSensitiveContext():  # what Django's ASGIHandler enters per request
            marker.set("previous request")
            # daphne: the next request's application task, created in this request's send()
            await asyncio.get_running_loop().create_task(application({}, None, None))
            assert marker.get() == "previous request"  # nor does it leak back

    asyncio.run(previous_request())
    assert seen == {"thread-sensitive context": None, "marker": "clean"}


def test_cancelling_the_server_task_cancels_the_request():
    cancelled = []
    started = asyncio.Event()

    async def app(scope, receive, send):
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def server():
        task = asyncio.ensure_future(fresh_context(app)({}, None, None))
        await started.wait()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(server())
    assert cancelled == [True]
