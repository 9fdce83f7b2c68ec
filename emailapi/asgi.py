"""ASGI entry point: Django for HTTP, behind a hard body-size cap; the live event stream's
WebSocket (``webhooks.api.stream_socket``) beside it. Every connection runs in a clean context of its
own (``emailapi.asgi_context``): a kept-alive connection's next request must not inherit the
previous request's thread-sensitive executor. A request waits at most ``EMAILAPI_DB_POOL_WAIT``
seconds for a database connection (``emailapi.lib.dbpool``), and the process ends itself if its
pool stays exhausted (``emailapi.watchdog``)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emailapi.settings")

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402  (needs Django first)
from django.conf import settings  # noqa: E402
from django.urls import re_path  # noqa: E402

from emailapi import watchdog  # noqa: E402
from emailapi.api.asgi_handler import ApiASGIHandler, by_path  # noqa: E402
from emailapi.api.asgi_input import no_websocket_here, refuse_nul  # noqa: E402
from emailapi.api.asgi_limits import body_limit  # noqa: E402
from emailapi.asgi_context import fresh_context  # noqa: E402
from emailapi.lib import dbpool  # noqa: E402
from webhooks.api.stream_asgi import StreamASGIHandler, stream_first  # noqa: E402
from webhooks.api.stream_socket import websocket_urlpatterns  # noqa: E402
from webhooks.stream.backlog import expose_send  # noqa: E402

dbpool.use_web_wait()
watchdog.start()

application = fresh_context(ProtocolTypeRouter({
    # expose_send: the live stream watches how much a client has not read (stream/backlog.py).
    # refuse_nul: a NUL in a URL is a 400 before any route sees it (api/asgi_input.py).
    "http": expose_send(refuse_nul(body_limit(
        stream_first(StreamASGIHandler(), by_path(ApiASGIHandler(), django_asgi_app)),
        settings.EMAILAPI_MAX_BODY_SIZE))),
    "websocket": expose_send(URLRouter([*websocket_urlpatterns,
                                        re_path(r"", no_websocket_here)])),
}))
