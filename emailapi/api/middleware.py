"""Refuse oversized request bodies before anything reads them.

A client announcing a body larger than the route allows gets 413 in the API error shape at
once; the body is never parsed. Views may lower or raise the limit with a ``max_body_size``
class attribute (uploads of whole messages need more than account settings do). Bodies sent
without ``Content-Length`` (chunked) are capped while they arrive by
``emailapi.api.asgi_limits.body_limit``, then measured here against the route's own limit.
"""

from __future__ import annotations

from django.conf import settings

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
