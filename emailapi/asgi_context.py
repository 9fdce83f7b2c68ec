"""Every ASGI connection runs in its own, clean ``contextvars`` context.

Why: daphne starts the application for a kept-alive connection's next request from inside the
previous request's ``send``. A client that has read a response's whole ``Content-Length``
(a raw message, a 7-bit attachment) sends its next request at once; Twisted holds it until
the response is finished, and the response finishes in the ``send`` of its last (empty) body
message, which runs in the previous request's task. ``asyncio`` copies the current context into
the new task, so the next request would inherit the previous one's context variables, among
them asgiref's ``ThreadSensitiveContext``. Django's ``ASGIHandler`` would then reuse that context
instead of making its own, and the next request would run its view (and take a database
connection) on the previous request's one-thread executor, while its teardown
(``response.close()``, which gives the thread's connection back) runs on another thread. When
the previous request ends, its executor is shut down with the connection still held by its
thread: one pooled connection lost for good per such race (1-7 % of downloads), until the pool
is empty and every request waits for the pool timeout.

``fresh_context`` runs each connection's application in a copy of the context the server had
when it loaded the application, the same as a connection daphne starts from its own event loop
callbacks. Nothing a request sets (thread-sensitive executor, language, script prefix) can
reach another request.
"""

from __future__ import annotations

import asyncio
import contextvars


def fresh_context(app):
    """Wrap an ASGI app so every call runs as its own task in a clean context.

    Cancelling the caller (daphne cancels an application that outlives its connection)
    cancels that task too, since awaiting a task forwards cancellation to it."""
    base = contextvars.copy_context()

    async def isolated(scope, receive, send):
        task = asyncio.get_running_loop().create_task(app(scope, receive, send),
                                                      context=base.copy())
        return await task

    return isolated
