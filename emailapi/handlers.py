"""Django's error handlers: JSON in the API error shape for /v1 and /health, HTML elsewhere."""

import sys

from django.core.exceptions import DisallowedHost
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.views import defaults

from emailapi.api.errors import dependency_unavailable, json_error_response, service_unavailable_response


def _is_api(request) -> bool:
    return request.path.startswith(("/v1/", "/v1", "/health"))


def not_found(request, exception=None):
    if _is_api(request):
        return json_error_response(f"No route for {request.method} {request.path}",
                                   "RouteNotFound", 404)
    return defaults.page_not_found(request, exception)


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


def bad_request(request, exception=None):
    if _is_api(request):
        if isinstance(exception, DisallowedHost):
            return json_error_response("This server does not answer to that Host header "
                                       "(ALLOWED_HOSTS)", "InvalidHost", 400)
        return json_error_response("Bad request", "BadRequest", 400)
    return defaults.bad_request(request, exception)


def forbidden(request, exception=None):
    if _is_api(request):
        return json_error_response("Forbidden", "Forbidden", 403)
    return defaults.permission_denied(request, exception)
