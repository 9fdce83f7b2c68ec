"""The ASGI handler for ``/v1``: Django with the API's own short middleware chain.

Django builds one middleware chain per handler from ``settings.MIDDLEWARE``. The dashboard
and the admin need the full chain; the JSON API needs only ``settings.API_MIDDLEWARE``
(``emailapi.api.middleware.ApiMiddleware``, async-native). ``emailapi.asgi`` sends ``/v1/``
requests here and everything else to Django's ordinary handler. Both share URLs, views,
settings and the exception handlers; only the chain differs.

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

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.db import close_old_connections

CLOSERS = "emailapi.closers"  # scope key: the request's list of closers


class ApiASGIHandler(ASGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        # BaseHandler reads settings.MIDDLEWARE itself; lend it the API's list while the
        # chain is built (once, at start-up, before any request is served).
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.API_MIDDLEWARE
        try:
            super().load_middleware(is_async=is_async)
        finally:
            settings.MIDDLEWARE = full

    async def __call__(self, scope, receive, send):
        closers: list = []
        try:
            # Returns once the request's thread-sensitive executor has finished its work,
            # a view still running when the request was cancelled included.
            await super().__call__({**scope, CLOSERS: closers}, receive, send)
        finally:
            if closers:
                await sync_to_async(_close_all, thread_sensitive=False)(closers)

    async def run_get_response(self, request):
        response = await super().run_get_response(request)
        if response.streaming:
            # On the view's own thread (thread-sensitive), whose connection it is.
            await sync_to_async(close_old_connections)()
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
