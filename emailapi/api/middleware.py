"""Refuse oversized request bodies before anything reads them.

A client announcing a body larger than the route allows gets 413 in the API error shape at
once; the body is never parsed. Views may lower or raise the limit with a ``max_body_size``
class attribute (uploads of whole messages need more than account settings do). Bodies sent
without ``Content-Length`` (chunked) are capped while they arrive by
``emailapi.api.asgi_limits.body_limit``, then measured here against the route's own limit.
"""

from __future__ import annotations

from django.conf import settings
from django.middleware.security import SecurityMiddleware

from emailapi.api.errors import json_error_response


class BodySizeLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        view_class = getattr(view_func, "cls", None) or getattr(view_func, "view_class", None)
        limit = getattr(view_class, "max_body_size", None) or settings.EMAILAPI_MAX_BODY_SIZE
        declared = request.META.get("CONTENT_LENGTH")
        try:
            length = int(declared) if declared else len(request.body)
        except ValueError:
            return json_error_response("Invalid Content-Length header", "InvalidContentLength", 400)
        if length > limit:
            return json_error_response(
                f"Request body is larger than the {limit} bytes allowed",
                "PayloadTooLarge",
                413,
                {"maxBytes": limit},
            )
        return None


class ApiMiddleware:
    """The whole middleware chain of ``/v1`` under ASGI (``emailapi.api.asgi_handler``).

    Django's full chain (sessions, CSRF, auth, messages: what the dashboard needs) is made of
    ``MiddlewareMixin`` classes that, under ASGI, each hop to a worker thread and back for
    their hooks: about ten thread switches, 2-3 ms, per API request. The API needs none of
    them (DRF authenticates tokens itself and its views are CSRF-exempt); it needs the Host
    check, the body limit and the security headers, done here. The API handler runs this
    chain in sync mode, on the request's thread together with the view, so that the only
    thread switch of a request is the one into it (a middleware added to ``API_MIDDLEWARE``
    should be sync-capable too, or Django adapts it with a switch of its own).
    """

    sync_capable = True
    async_capable = False

    def __init__(self, get_response):
        self.get_response = get_response
        self.body_limit = BodySizeLimitMiddleware(get_response)
        self.security = SecurityMiddleware(get_response)

    def __call__(self, request):
        # ALLOWED_HOSTS, as CommonMiddleware enforces it on the site: DisallowedHost goes to
        # Django's handler400 (emailapi.handlers.bad_request: 400 InvalidHost), before a view
        # that builds a URL on the host could fail on it.
        request.get_host()
        redirect = self.security.process_request(request)
        if redirect is not None:
            return redirect
        response = self.get_response(request)
        return self.security.process_response(request, response)

    def process_view(self, request, view_func, view_args, view_kwargs):
        """The body was already spooled by Django's ASGI handler (and capped while it arrived
        by ``asgi_limits.body_limit``), so measuring it blocks nothing."""
        return self.body_limit.process_view(request, view_func, view_args, view_kwargs)
