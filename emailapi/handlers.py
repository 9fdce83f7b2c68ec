"""Django's error handlers: JSON in the API error shape for /v1 and /health, HTML elsewhere.

Under ASGI Django calls them on a thread of the event loop's default executor
(``response_for_exception`` runs with ``thread_sensitive=False``), not on the request's own
thread, where ``request_finished`` gives connections back. A page that is the first to read
the signed-in user (a 404 for a URL no route matches: no view ran) opened a pooled connection
on that thread and kept it for the thread's life; a busy process's executor threads held its
whole pool (``tests/emailapi/test_error_page_connections.py``). So each handler closes a
connection it opened itself (``_returns_its_connection``).
"""

import sys
from functools import wraps

from django.core.exceptions import DisallowedHost
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.views import defaults

from emailapi.api.errors import dependency_unavailable, json_error_response, service_unavailable_response
from emailapi.api.path_ids import shown


def _is_api(request) -> bool:
    return request.path.startswith(("/v1/", "/v1", "/health"))


def _returns_its_connection(handler):
    """Close the database connection ``handler`` opened on this thread, if it opened one
    (outside a transaction): the request's own thread already had its connection, and keeps
    it; any other thread has nobody to give it back."""

    @wraps(handler)
    def wrapper(request, *args, **kwargs):
        connection = connections[DEFAULT_DB_ALIAS]
        had_one = connection.connection is not None
        try:
            return handler(request, *args, **kwargs)
        finally:
            if not had_one and connection.connection is not None and not connection.in_atomic_block:
                connection.close()

    return wrapper


@_returns_its_connection
def not_found(request, exception=None):
    if _is_api(request):
        return json_error_response(f"No route for {request.method} {shown(request.path)}",
                                   "RouteNotFound", 404)
    return defaults.page_not_found(request, exception)


@_returns_its_connection
def server_error(request):
    """500, or 503 when the error that got here means the database could not serve the
    request (Django calls this while handling it, so ``sys.exc_info`` holds it). The HTML 503
    page is rendered without the request: its user, session and menus would need the
    database."""
    unavailable = dependency_unavailable(sys.exc_info()[1]) if sys.exc_info()[1] else None
    if unavailable is not None:
        if _is_api(request):
            return service_unavailable_response(unavailable)
        page = render_to_string("503.html", {"message": str(unavailable.detail)})
        return HttpResponse(page, status=503, headers={"Retry-After": str(unavailable.retry_after)})
    if _is_api(request):
        return json_error_response("Internal server error", "InternalError", 500)
    return defaults.server_error(request)


@_returns_its_connection
def bad_request(request, exception=None):
    if _is_api(request):
        if isinstance(exception, DisallowedHost):
            return json_error_response("This server does not answer to that Host header "
                                       "(ALLOWED_HOSTS)", "InvalidHost", 400)
        return json_error_response("Bad request", "BadRequest", 400)
    return defaults.bad_request(request, exception)


@_returns_its_connection
def forbidden(request, exception=None):
    if _is_api(request):
        return json_error_response("Forbidden", "Forbidden", 403)
    return defaults.permission_denied(request, exception)
