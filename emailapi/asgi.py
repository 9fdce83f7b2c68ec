"""ASGI entry point: Django for HTTP, behind a hard body-size cap; the live event stream's
WebSocket (``webhooks.api.stream_socket``) beside it. Every connection runs in a clean context of its
own (``emailapi.asgi_context``): a kept-alive connection's next request must not inherit the
previous request's thread-sensitive executor. A request waits at most ``EMAILAPI_DB_POOL_WAIT``
seconds for a database connection (``emailapi.lib.dbpool``), and the process ends itself if its
pool stays exhausted (``emailapi.watchdog``).

An ordinary ``/v1`` request, nearly all of the API's traffic, goes through one routing function
straight to the API's handler (``emailapi.api.asgi_handler``), which caps its body itself:
each wrapper an ASGI request passes costs it a call per message, and the API is what must be
fast (issue 19). The streams, the dashboard and the rest of the site keep their wrappers."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emailapi.settings")

django_asgi_app = get_asgi_application()

from channels.routing import URLRouter  # noqa: E402  (needs Django first)
from django.conf import settings  # noqa: E402
from django.urls import re_path  # noqa: E402

from emailapi import watchdog  # noqa: E402
from emailapi.api.asgi_handler import ApiASGIHandler  # noqa: E402
from emailapi.api.asgi_input import no_websocket_here, nul_in_url, send_nul_400  # noqa: E402
from emailapi.api.asgi_limits import body_limit  # noqa: E402
from emailapi.api.path_ids import mark_encoded_slashes  # noqa: E402
from emailapi.asgi_context import fresh_context  # noqa: E402
from emailapi.lib import dbpool  # noqa: E402
from webhooks.api.stream_asgi import StreamASGIHandler, streamed  # noqa: E402
from webhooks.api.stream_socket import websocket_urlpatterns  # noqa: E402
from webhooks.stream.backlog import expose_send, paced_bodies  # noqa: E402

dbpool.use_web_wait()
watchdog.start()

API_PREFIX = "/v1/"
api = ApiASGIHandler(max_body_size=settings.EMAILAPI_MAX_BODY_SIZE)
# expose_send: the live stream watches how much a client has not read (stream/backlog.py).
streams = expose_send(body_limit(StreamASGIHandler(), settings.EMAILAPI_MAX_BODY_SIZE))
# paced_bodies: a dashboard download goes at its client's pace, as the API's do (its handler).
site = paced_bodies(body_limit(django_asgi_app, settings.EMAILAPI_MAX_BODY_SIZE),
                    settings.DOWNLOAD_CLIENT_BUFFER, settings.DOWNLOAD_STALL_SECONDS)
websocket = expose_send(URLRouter([*websocket_urlpatterns, re_path(r"", no_websocket_here)]))


async def route(scope, receive, send):
    if scope["type"] == "http":
        # A NUL in a URL is a 400 before any route sees it (api/asgi_input.py).
        where = nul_in_url(scope)
        if where is not None:
            return await send_nul_400(send, where)
        # An id's %2F stays inside its path segment (api/path_ids.py): decided before any
        # route, so /v1/account/a%2Fmessages is the account a/messages, nowhere else.
        scope = mark_encoded_slashes(scope)
        if streamed(scope):
            return await streams(scope, receive, send)
        if scope["path"].startswith(API_PREFIX):
            return await api(scope, receive, send)
        return await site(scope, receive, send)
    if scope["type"] == "websocket":
        return await websocket(scope, receive, send)
    raise ValueError(f"No application configured for scope type {scope['type']!r}")


application = fresh_context(route)
