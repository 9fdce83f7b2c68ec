"""ASGI entry point: Django for HTTP, behind a hard body-size cap; the live event stream
(websocket routes) joins in issue 6."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emailapi.settings")

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402  (needs Django set up first)
from django.conf import settings  # noqa: E402

from emailapi.api.asgi_handler import ApiASGIHandler, by_path  # noqa: E402
from emailapi.api.asgi_limits import body_limit  # noqa: E402

application = ProtocolTypeRouter({
    "http": body_limit(by_path(ApiASGIHandler(), django_asgi_app),
                       settings.EMAILAPI_MAX_BODY_SIZE),
})
