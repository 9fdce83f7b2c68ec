"""The ASGI handler for ``/v1``: Django with the API's own short middleware chain.

Django builds one middleware chain per handler from ``settings.MIDDLEWARE``. The dashboard
and the admin need the full chain; the JSON API needs only ``settings.API_MIDDLEWARE``
(``emailapi.api.middleware.ApiMiddleware``, async-native). ``emailapi.asgi`` sends ``/v1/``
requests here and everything else to Django's ordinary handler. Both share URLs, views,
settings and the exception handlers; only the chain differs.
"""

from __future__ import annotations

from django.conf import settings
from django.core.handlers.asgi import ASGIHandler


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


def by_path(api_app, site_app, prefix: str = "/v1/"):
    """An ASGI app sending HTTP requests under ``prefix`` to ``api_app``, others to
    ``site_app``."""

    async def route(scope, receive, send):
        app = api_app if scope.get("path", "").startswith(prefix) else site_app
        return await app(scope, receive, send)

    return route
