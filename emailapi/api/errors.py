"""One JSON error shape for every failure of the API: EmailEngine's, with our codes
(``emailapi.api.error_shape`` says what each field means)::

    {"statusCode": 400, "error": "Bad Request", "message": "human text",
     "code": "MachineCode", "emailapiCode": "MachineCode", "details": {...}, "fields": [...]}

DRF routes every exception through ``exception_handler`` (the ``EXCEPTION_HANDLER`` setting);
Django-level failures outside DRF (unknown URL, a 500 before a view runs) go through
``json_error_response`` via the handlers in ``emailapi.urls``. A 500 is logged with its traceback
and answered with a generic message: nothing about the fault leaks to the caller. A database
that cannot serve the request (no free connection in time, unreachable, connection lost) is
not a fault of ours to hide behind a 500: it is ``503 ServiceUnavailable`` with ``Retry-After``
(``dependency_unavailable``), for the client to retry; so is Redis being unreachable where a
request needs it (single-use links, OAuth2 sign-in state).

Services raise ``emailapi.lib.errors.DomainError``s, which know nothing of HTTP: the status of
each kind is set here, in ``STATUS_OF_KIND`` and nowhere else; the error's class says
EmailEngine's code for the same condition (``ee_code``), which goes out as ``code``.
``ApiError`` stays for the web layer's own refusals (request validation in views).
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from emailapi.api.error_shape import error_body
from emailapi.lib import dbpool
from emailapi.lib import errors as domain

logger = logging.getLogger("emailapi.api")


class ApiError(exceptions.APIException):
    """An error with an explicit machine code and status, raised by the web layer itself
    (request validation in views); services raise ``emailapi.lib.errors.DomainError``s.
    ``ee_code`` is EmailEngine's code for the same condition, when it has one."""

    def __init__(self, message: str, code: str, status_code: int = 400, details: Any = None,
                 ee_code: str = ""):
        super().__init__(detail=message, code=code)
        self.status_code = status_code
        self.error_code = code
        self.details = details
        self.ee_code = ee_code


class NotFoundError(ApiError):
    def __init__(self, message: str = "Not found", code: str = "NotFound", ee_code: str = ""):
        super().__init__(message, code, status.HTTP_404_NOT_FOUND, ee_code=ee_code)


class ServiceUnavailable(ApiError):
    def __init__(self, message: str, retry_after: int):
        super().__init__(message, "ServiceUnavailable", status.HTTP_503_SERVICE_UNAVAILABLE)
        self.retry_after = retry_after


def dependency_unavailable(exc: BaseException) -> ServiceUnavailable | None:
    """The 503 for an exception that means the database or Redis could not serve this
    request, or None for any other exception (for the database,
    ``emailapi.lib.dbpool.unavailable_reason`` decides)."""
    if isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
        return ServiceUnavailable("A service this request needs is not available. Retry "
                                  "shortly", retry_after=5)
    reason = dbpool.unavailable_reason(exc)
    if reason is None:
        return None
    if reason == dbpool.EXHAUSTED:
        return ServiceUnavailable("The service is busy: no database connection was free in "
                                  "time. Retry shortly", retry_after=2)
    if reason == dbpool.TOO_SLOW:
        return ServiceUnavailable("The database did not answer in time. Retry shortly",
                                  retry_after=5)
    return ServiceUnavailable("The database is not available. Retry shortly", retry_after=5)


def service_unavailable_response(error: ServiceUnavailable):
    """A plain Django response for ``error`` in the API error shape, with ``Retry-After``."""
    response = json_error_response(str(error.detail), error.error_code, error.status_code)
    response["Retry-After"] = str(error.retry_after)
    return response


class PayloadTooLarge(ApiError):
    def __init__(self, limit: int):
        super().__init__(
            f"Request body is larger than the {limit} bytes allowed",
            "PayloadTooLarge",
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            {"maxBytes": limit},
        )


# The one place a domain error's kind becomes an HTTP status.
STATUS_OF_KIND: dict[type[domain.DomainError], int] = {
    domain.Invalid: status.HTTP_400_BAD_REQUEST,
    domain.PaymentRequired: status.HTTP_402_PAYMENT_REQUIRED,
    domain.Forbidden: status.HTTP_403_FORBIDDEN,
    domain.NotFound: status.HTTP_404_NOT_FOUND,
    domain.Conflict: status.HTTP_409_CONFLICT,
    domain.Gone: status.HTTP_410_GONE,
    domain.TooLarge: status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    domain.RateLimited: status.HTTP_429_TOO_MANY_REQUESTS,
    domain.Unimplemented: status.HTTP_501_NOT_IMPLEMENTED,
    domain.UpstreamFailed: status.HTTP_502_BAD_GATEWAY,
    domain.Unavailable: status.HTTP_503_SERVICE_UNAVAILABLE,
}


def status_of(error: domain.DomainError) -> int:
    """The HTTP status of a domain error, by its kind (KeyError for a bare ``DomainError``:
    a programming error, answered as any other fault)."""
    return STATUS_OF_KIND[domain.kind_of(error)]


def domain_error_response(error: domain.DomainError) -> Response:
    """A service's refusal in the API error shape, with ``Retry-After`` when it says when."""
    status_code = status_of(error)
    headers = {}
    if isinstance(error, domain.Unavailable) and error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    set_rollback()
    return Response(domain_error_body(error), status=status_code, headers=headers)


def domain_error_body(error: domain.DomainError) -> dict:
    """A service's refusal as the API's error body (the stream's WebSocket sends it too)."""
    return error_body(error.message, error.code, status_of(error), error.details,
                      ee_code=error.ee_code)


# DRF's own exception classes, by their default code, mapped to our codes and texts.
_DRF_CODES = {
    "parse_error": ("InvalidJSON", None),
    "not_authenticated": ("Unauthorized", "Authentication required: send Authorization: Bearer <token>"),
    "authentication_failed": ("InvalidToken", None),
    "permission_denied": ("Forbidden", None),
    "insufficient_scope": ("InsufficientScope", None),
    "not_found": ("NotFound", "Not found"),
    "method_not_allowed": ("MethodNotAllowed", None),
    "not_acceptable": ("NotAcceptable", None),
    "unsupported_media_type": ("UnsupportedMediaType", None),
    "throttled": ("RateLimited", None),
    "invalid": ("InputValidationError", "Invalid input"),
}


def json_error_response(message: str, code: str, status_code: int, details: Any = None,
                        ee_code: str = ""):
    """A plain Django response in the API error shape (for code outside DRF)."""
    return JsonResponse(error_body(message, code, status_code, details, ee_code=ee_code),
                        status=status_code)


def flatten_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn DRF's nested error structure into ``{"imap.auth.pass": ["..."]}``."""
    flat: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = prefix if key == "non_field_errors" and prefix else (
                f"{prefix}.{key}" if prefix else str(key)
            )
            for k, v in flatten_errors(value, name).items():
                flat.setdefault(k, []).extend(v)
    elif isinstance(detail, list) and detail and all(isinstance(i, (dict, list)) for i in detail):
        for index, value in enumerate(detail):
            for k, v in flatten_errors(value, f"{prefix}[{index}]").items():
                flat.setdefault(k, []).extend(v)
    elif isinstance(detail, list):
        flat[prefix or "body"] = [str(item) for item in detail]
    else:
        flat[prefix or "body"] = [str(detail)]
    return flat


def _validation_summary(details: dict[str, list[str]]) -> str:
    field, messages = next(iter(details.items()))
    more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    return f"Invalid input: {field}: {messages[0]}{more}"


def exception_handler(exc: Exception, context: dict) -> Response:
    if isinstance(exc, domain.DomainError) and domain.kind_of(exc) is not None:
        return domain_error_response(exc)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    elif isinstance(exc, (TooManyFieldsSent, TooManyFilesSent)):
        # Django's limit on parameters parsed (DRF passes it on as it is: it was a 500).
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        exc = ApiError(f"Invalid input: more than {limit} query or form parameters",
                       "InputValidationError", details={"query": [f"At most {limit} parameters"]})
    elif (unavailable := dependency_unavailable(exc)) is not None:
        request = context.get("request")
        logger.warning("Dependency unavailable on %s %s: %s: %s",
                       getattr(request, "method", "?"), getattr(request, "path", "?"),
                       exc.__class__.__name__, exc)
        exc = unavailable

    if not isinstance(exc, exceptions.APIException):
        request = context.get("request")
        logger.exception(
            "Unhandled error on %s %s",
            getattr(request, "method", "?"),
            getattr(request, "path", "?"),
        )
        set_rollback()
        return Response(
            error_body("Internal server error", "InternalError", 500), status=500
        )

    headers: dict[str, str] = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None) is not None:
        headers["Retry-After"] = str(int(exc.wait) + 1)
    if getattr(exc, "retry_after", None) is not None:
        headers["Retry-After"] = str(exc.retry_after)

    status_code = exc.status_code
    details, ee_code, ttl = None, "", None
    if isinstance(exc, ApiError):
        code, message, details = exc.error_code, str(exc.detail), exc.details
        ee_code = exc.ee_code
    elif isinstance(exc, exceptions.ValidationError):
        details = flatten_errors(exc.detail)
        code, message = "InputValidationError", _validation_summary(details)
    else:
        default_code = exc.get_codes() if isinstance(exc.get_codes(), str) else exc.default_code
        code, fixed_message = _DRF_CODES.get(default_code, (None, None))
        code = code or str(default_code)
        message = fixed_message or str(exc.detail)
        if isinstance(exc, exceptions.Throttled):
            details = {"retryAfter": headers.get("Retry-After")}
            ttl = int(headers["Retry-After"]) if "Retry-After" in headers else None

    set_rollback()
    return Response(error_body(message, code, status_code, details, ee_code=ee_code, ttl=ttl),
                    status=status_code, headers=headers)
