"""Request metrics: every HTTP request counted and timed by URL pattern, method and status
(``emailapi_http_request_duration_seconds``, ``emailapi.lib.metrics``).

First in both middleware chains (the site's and ``/v1``'s), async under ASGI so it adds no
thread switch. The label is the route's pattern (``v1/account/<id:account>/messages``), never
the path, so the number of series stays bounded; a method Django does not know is ``other``
and a request no route matched is ``unmatched``. A request costs two clock reads, one dict
lookup (the histogram's child for these labels is kept) and one ``observe``.
"""

from __future__ import annotations

from time import perf_counter

from asgiref.sync import iscoroutinefunction
from django.utils.decorators import sync_and_async_middleware

from emailapi.lib import metrics

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
MAX_KEPT = 4096  # children kept for the next request with the same labels


class Observer:
    def __init__(self):
        self.children: dict[tuple, object] = {}

    def __call__(self, request, response, started: float) -> None:
        elapsed = perf_counter() - started
        match = request.resolver_match
        key = (match.route if match is not None else "unmatched", request.method,
               response.status_code)
        child = self.children.get(key)
        if child is None:
            method = key[1] if key[1] in METHODS else "other"
            child = metrics.HTTP_REQUESTS.labels(key[0], method, str(key[2]))
            if len(self.children) < MAX_KEPT:
                self.children[key] = child
        child.observe(elapsed)
        metrics.observe_db_pool(every=5.0)


@sync_and_async_middleware
def request_metrics(get_response):
    observe = Observer()
    if iscoroutinefunction(get_response):
        async def middleware(request):
            started = perf_counter()
            response = await get_response(request)
            observe(request, response, started)
            return response
    else:
        def middleware(request):
            started = perf_counter()
            response = get_response(request)
            observe(request, response, started)
            return response
    return middleware
