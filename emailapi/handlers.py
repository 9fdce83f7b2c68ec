"""Django's error handlers: JSON in the API error shape for /v1 and /health, HTML elsewhere."""

from django.core.exceptions import DisallowedHost
from django.views import defaults

from emailapi.api.errors import json_error_response


def _is_api(request) -> bool:
    return request.path.startswith(("/v1/", "/v1", "/health"))


def not_found(request, exception=None):
    if _is_api(request):
        return json_error_response(f"No route for {request.method} {request.path}",
                                   "RouteNotFound", 404)
    return defaults.page_not_found(request, exception)


def server_error(request):
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
