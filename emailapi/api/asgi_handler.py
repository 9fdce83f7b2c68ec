"""The ASGI handler for ``/v1``: Django with the API's own short middleware chain, run in one
thread switch per request on a reused thread.

Django builds one middleware chain per handler from ``settings.MIDDLEWARE``. The dashboard
and the admin need the full chain; the JSON API needs only ``settings.API_MIDDLEWARE``
(``emailapi.api.middleware.ApiMiddleware``). ``emailapi.asgi`` sends ``/v1/`` requests here
and everything else to Django's ordinary handler. Both share URLs, views, settings and the
exception handlers; only the chain differs.

**Speed** (issue 19; profiled with py-spy, ``bench/read_api.py`` measures it). Django's ASGI
handler costs an API request far more than its view: a new thread (and a second one to join
it) for the request's thread-sensitive executor, and three switches to it and back (the
``request_started`` signal, the view, ``response.close()``), each about as dear as a listing's
query. Here the API chain is built in sync mode, and the request's whole synchronous life
(``request_started``, the middleware, the view, rendering, and for an ordinary response its
``close()``, which gives the database connection back) runs in one call on the request's
executor; the executor is a reused one-thread executor (``_Executors``), handed to asgiref's
``ThreadSensitiveContext`` instead of a fresh thread per request. Only the body, the response's
bytes and the disconnect watch stay in the event loop, as in Django's handler.

It also makes sure a request's resources go back however the request ends. Django closes a
response (and so what it holds) only when it was sent or the client left while it was being
sent; when the client leaves while the view still runs, Django cancels the request and drops
the view's response unclosed. A download's response holds an IMAP command connection, so a
few such requests used up the account's connections for good. Views register what must be
released with ``close_when_request_ends``; this handler calls it once the request's thread
has finished, however the request ended (calling it twice is the closer's business: a
download's ``close`` is safe to repeat). And a streamed response gives its database
connection back before the first byte, not after the last: the view's queries are done, and a
slow client must not hold one of the pool's few connections for minutes.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.db import close_old_connections
from django.http import FileResponse
from django.urls import set_script_prefix

CLOSERS = "emailapi.closers"  # scope key: the request's list of closers
CLOSED = "_emailapi_closed"  # on a response: already closed on the request's thread


class _Executor(ThreadPoolExecutor):
    """A one-thread executor that knows whether it has work left (its last call is done:
    one thread runs its calls in order)."""

    _last: Future | None = None

    def __init__(self):
        super().__init__(max_workers=1, thread_name_prefix="api")

    def submit(self, fn, /, *args, **kwargs):
        future = super().submit(fn, *args, **kwargs)
        self._last = future
        return future

    def idle(self) -> bool:
        return self._last is None or self._last.done()

    def barrier(self) -> Future:
        """Done once every call submitted so far is."""
        return self._last if self._last is not None else super().submit(lambda: None)


class _Executors:
    """Idle request executors, reused: one thread per request in flight, not per request.
    An executor goes back only once idle (a cancelled request's view may still run)."""

    KEPT = 64  # idle executors kept at most; beyond, they are shut down

    def __init__(self):
        self._free: list[_Executor] = []
        self._lock = threading.Lock()

    def take(self) -> _Executor:
        with self._lock:
            if self._free:
                return self._free.pop()
        return _Executor()

    def give(self, executor: _Executor) -> None:
        if not executor.idle():
            executor.barrier().add_done_callback(lambda _: self.give(executor))
            return
        with self._lock:
            if len(self._free) < self.KEPT:
                self._free.append(executor)
                return
        executor.shutdown(wait=False)


class ApiASGIHandler(ASGIHandler):
    executors = _Executors()

    def load_middleware(self, is_async: bool = False) -> None:
        # BaseHandler reads settings.MIDDLEWARE itself; lend it the API's list while the
        # chain is built (once, at start-up, before any request is served). Built in sync
        # mode: it runs inside the request's one thread switch (``_respond``).
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.API_MIDDLEWARE
        try:
            super().load_middleware(is_async=False)
        finally:
            settings.MIDDLEWARE = full

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        closers: list = []
        executor = self.executors.take()
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle({**scope, CLOSERS: closers}, receive, send)
            # Return once the request's executor has finished its work, a view still
            # running when the request was cancelled included (what the closers release).
            if not executor.idle():
                await asyncio.wrap_future(executor.barrier())
        finally:
            self.executors.give(executor)
            if closers:
                await sync_to_async(_close_all, thread_sensitive=False)(closers)

    async def handle(self, scope, receive, send):
        """Django's ``ASGIHandler.handle``, with ``request_started``, the chain and (for an
        ordinary response) ``close()`` in one thread switch (``_respond``)."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            await signals.request_started.asend(sender=self.__class__, scope=scope)
            body_file.close()
            await self.send_response(error_response, send)
            await sync_to_async(error_response.close)()
            return

        async def process_request():
            response = await sync_to_async(self._respond)(request)
            try:
                await self.send_response(response, send)
            except asyncio.CancelledError:
                pass  # the client left while it was sent
            return response

        tasks = [asyncio.create_task(self.listen_for_disconnect(receive)),
                 asyncio.create_task(process_request())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                try:
                    task.result()
                except RequestAborted:
                    pass
                except AssertionError:
                    body_file.close()
                    raise
            else:
                task.cancel()  # the view may handle it (Django's handler does the same)
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        try:
            response = tasks[1].result()
        except asyncio.CancelledError:
            await signals.request_finished.asend(sender=self.__class__)
        else:
            if not getattr(response, CLOSED, False):
                await sync_to_async(response.close)()
        body_file.close()

    def _respond(self, request):
        """On the request's executor: everything synchronous a request does, in one call."""
        signals.request_started.send(sender=self.__class__, scope=request.scope)
        response = self.get_response(request)
        response._handler_class = self.__class__
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size
        if response.streaming:
            # The view's queries are done: its connection goes back before the first byte.
            close_old_connections()
        else:
            # The body is bytes in memory: close now (request_finished gives the database
            # connection back) rather than in a switch of its own after sending.
            response.close()
            setattr(response, CLOSED, True)
        return response


def close_when_request_ends(request, closer) -> None:
    """Call ``closer()`` when the request is over, however it ended. Outside this handler
    (tests' WSGI client, the stream handler) nothing is registered: the response's own
    closers are the only ones, as in plain Django."""
    scope = getattr(getattr(request, "_request", request), "scope", None) or {}
    closers = scope.get(CLOSERS)
    if closers is not None:
        closers.append(closer)


def _close_all(closers: list) -> None:
    for closer in closers:
        try:
            closer()
        except Exception:  # noqa: BLE001 - one closer's failure must not skip the others
            pass


def by_path(api_app, site_app, prefix: str = "/v1/"):
    """An ASGI app sending HTTP requests under ``prefix`` to ``api_app``, others to
    ``site_app``."""

    async def route(scope, receive, send):
        app = api_app if scope.get("path", "").startswith(prefix) else site_app
        return await app(scope, receive, send)

    return route
