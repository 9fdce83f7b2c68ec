"""The ASGI handler for ``/v1``: Django with the API's own short middleware chain, driven the
way Django's WSGI handler drives it, from one thread switch per request.

Django builds one middleware chain per handler from ``settings.MIDDLEWARE``. The dashboard
and the admin need the full chain; the JSON API needs only ``settings.API_MIDDLEWARE``
(``emailapi.api.middleware.ApiMiddleware``). ``emailapi.asgi`` sends ``/v1/`` requests here
and everything else to Django's ordinary handler. Both share URLs, views, settings and the
exception handlers; only the chain differs.

**Speed** (issue 19; profiled with py-spy, ``bench/read_api.py`` measures it). Django's ASGI
handler costs an API request far more than its view: a thread-sensitive context per request,
three switches to a thread and back (the ``request_started`` signal, the view,
``response.close()``), a disconnect-watching task beside the request's own, and a send per
64 KiB. Here the chain is built in sync mode and an ordinary request costs the event loop
only its body (read and capped, ``max_body_size``), one call on a thread of the handler's
pool (``_serve``: what Django's WSGI handler does — ``request_started``, the request, the
chain and the view, rendering, ``close()``, which gives the database connection back — and
the headers encoded), and two messages out (start, then the whole body). A streamed response
(a download) is sent as Django's handler sends one, watching for the client to leave.

A client that leaves while the view runs is not watched for: the view finishes on its thread
(a thread cannot be interrupted anyway), its answer goes nowhere (daphne drops messages for a
closed connection), and everything is released as for any other request. daphne cancels the
application of a connection gone for long (``application_close_timeout``); that leaves the
thread to finish alone, and what it holds goes back when it does.

It also makes sure a request's resources go back however the request ends. Django closes a
response (and so what it holds) only when it was sent or the client left while it was being
sent. A download's response holds an IMAP command connection, so a few requests dropped
unclosed used up the account's connections for good. Views register what must be released
with ``close_when_request_ends``; this handler calls it once the request's thread has
finished, however the request ended (calling it twice is the closer's business: a download's
``close`` is safe to repeat). And a streamed response gives its database connection back
before the first byte, not after the last: the view's queries are done, and a slow client
must not hold one of the pool's few connections for minutes.

``handle`` and ``_respond`` are Django's handler's path with the chain's work in one switch;
``webhooks.api.stream_asgi`` serves the long-lived streams with them (a stream's view must run
on asgiref's shared thread, not hold one of this pool's).
"""

from __future__ import annotations

import asyncio
import tempfile
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.db import close_old_connections
from django.http import FileResponse
from django.urls import set_script_prefix

from emailapi.api.asgi_limits import BodyTooLarge, send_413
from webhooks.stream.backlog import paced

CLOSERS = "emailapi.closers"  # scope key: the request's list of closers
CLOSED = "_emailapi_closed"  # on a response: already closed on the request's thread
# Requests' synchronous parts run on at most this many threads of a process; more in flight
# wait for one. Each waits for a database connection, of which there are fewer
# (EMAILAPI_DB_POOL_SIZE), only while it has a query to run.
MAX_THREADS = 64


class ApiASGIHandler(ASGIHandler):

    def __init__(self, max_body_size: int | None = None):
        """``max_body_size``: bodies beyond it are answered 413 while they arrive (as
        ``emailapi.api.asgi_limits.body_limit`` does for the other routes)."""
        super().__init__()
        self.max_body_size = max_body_size

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

    # Threads that run requests' synchronous part: one per request in flight, reused (a
    # ThreadPoolExecutor starts a thread only when none is idle). A request waiting on a slow
    # mail server holds one; requests beyond this many in flight queue for a free thread.
    threads = ThreadPoolExecutor(max_workers=MAX_THREADS, thread_name_prefix="api")

    async def __call__(self, scope, receive, send):
        """One request: its body read here, its whole synchronous life in one call on a
        thread (``_serve``), its response sent here in two messages."""
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        except BodyTooLarge:
            await send_413(send, self.max_body_size)
            return
        closers: list = []
        work = self.threads.submit(self._serve, {**scope, CLOSERS: closers}, body_file)
        try:
            response = await asyncio.wrap_future(work)
            if response.streaming:
                await self._stream(response, receive, send)
            else:
                await send({"type": "http.response.start", "status": response.status_code,
                            "headers": response.asgi_headers})
                await send({"type": "http.response.body", "body": response.content})
        finally:
            # However the request ended (sent, client gone, cancelled by the server while
            # the view still runs), what the view registered goes back once its thread is
            # done with it.
            if closers or not work.done():
                work.add_done_callback(lambda _: self._release(closers, body_file))
            else:
                body_file.close()

    async def read_body(self, receive):
        """Django's ``read_body``, counting: past ``max_body_size`` it raises
        ``BodyTooLarge`` without keeping more."""
        if self.max_body_size is None:
            return await super().read_body(receive)
        body_file = tempfile.SpooledTemporaryFile(
            max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE, mode="w+b")
        received = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                body_file.close()
                raise RequestAborted()
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_body_size:
                body_file.close()
                raise BodyTooLarge()
            body_file.write(chunk)
            if not message.get("more_body", False):
                break
        body_file.seek(0)
        return body_file

    def _release(self, closers: list, body_file) -> None:
        body_file.close()
        if closers:
            self.threads.submit(_close_all, closers)

    def _serve(self, scope, body_file):
        """On a request thread: what Django's WSGI handler does for a request, in one call:
        ``request_started``, the request built, the sync middleware chain and the view, and
        for an ordinary response its ``close()`` (``request_finished`` gives the database
        connection back) and its headers encoded for ASGI."""
        set_script_prefix(get_script_prefix(scope))
        request, response = self.create_request(scope, body_file)
        if request is None:  # Django's own 400 (a bad header): nothing else to do
            response.close()
        else:
            response = self._respond(request)
        if not response.streaming:
            response.asgi_headers = _asgi_headers(response)
        return response

    async def _stream(self, response, receive, send):
        """A streamed response (a download): sent at the client's pace (``backlog.paced``)
        while watching for it to leave, as Django's handler does; closed on a request thread
        once over."""

        async def sending():
            try:
                await self.send_response(response, paced(
                    send, settings.DOWNLOAD_CLIENT_BUFFER, settings.DOWNLOAD_STALL_SECONDS))
            except asyncio.CancelledError:
                pass  # the client left while it was sent, or was cut off for taking nothing

        try:
            await self._while_connected(receive, sending())
        finally:
            await asyncio.wrap_future(self.threads.submit(response.close))

    async def _while_connected(self, receive, work) -> asyncio.Task:
        """Run the coroutine *work* beside a watch for the client leaving, as Django's
        handler does: whichever ends first cancels the other (the view may handle its
        cancellation). Returns *work*'s task, done or cancelled."""
        tasks = [asyncio.create_task(self.listen_for_disconnect(receive)),
                 asyncio.create_task(work)]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                try:
                    task.result()
                except RequestAborted:
                    pass
            else:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        return tasks[1]

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

        try:
            task = await self._while_connected(receive, process_request())
        except AssertionError:
            body_file.close()
            raise
        try:
            response = task.result()
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


def _asgi_headers(response) -> list[tuple[bytes, bytes]]:
    """The response's headers and cookies as ASGI wants them (Django's ``send_response``)."""
    headers = [(name.encode("ascii") if isinstance(name, str) else bytes(name),
                value.encode("latin1") if isinstance(value, str) else bytes(value))
               for name, value in response.items()]
    for cookie in response.cookies.values():
        headers.append((b"Set-Cookie", cookie.output(header="").encode("ascii").strip()))
    return headers


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
