"""The base class of every /v1 view: the one place where a request is tied to a tenant.

After DRF's pipeline has authenticated the token and checked its scope, ``self.tenant`` is the
caller's tenant, and ``self.email_account`` is the mailbox named by the path's ``{account}``,
looked up inside that tenant on first use and kept for the rest of the request: another
tenant's account is "not found", exactly like one that does not exist. Views never query a
model without starting from ``self.tenant``.

Input a serializer cannot judge alone (a query string in bracket form, a criterion the
server refuses) is refused with ``InvalidInput``: the same ``InputValidationError`` shape,
``details`` keyed by field, as a serializer's own errors.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter
from rest_framework.views import APIView

from accounts.errors import AccountNotFound
from accounts.models import EmailAccount
from emailapi.api.errors import ApiError
from emailapi.api.serializers import remember_valid_query, valid_query

# The ``{account}`` path parameter of every per-mailbox route.
ACCOUNT_PARAM = OpenApiParameter("account", str, OpenApiParameter.PATH,
                                 description="Account id given at registration, percent-encoded "
                                             "as encodeURIComponent writes it (/ as %2F)")


class InvalidInput(ApiError):
    """400 ``InputValidationError`` naming ``field``; the message defaults to the one a
    serializer's error for that field would give."""

    def __init__(self, field: str, problem: str, message: str | None = None):
        super().__init__(message or f"Invalid input: {field}: {problem}",
                         "InputValidationError", details={field: [problem]})


class TenantScopedAPIView(APIView):
    @property
    def tenant(self):
        return self.request.user.tenant

    @cached_property
    def email_account(self) -> EmailAccount:
        """The path's ``{account}`` in the caller's tenant (404 ``AccountNotFound``
        otherwise), resolved once per request (DRF makes a view instance per request)."""
        return self.account_named(self.kwargs["account"])

    def account_named(self, account_id: str) -> EmailAccount:
        """The caller's tenant's account of this id (404 ``AccountNotFound`` otherwise), for
        a route whose account is named elsewhere than its path (a body, a query)."""
        account = EmailAccount.of_tenant(self.tenant, account_id)
        if account is None:
            raise AccountNotFound(account_id)
        return account

    def body_room(self) -> int:
        """Bytes the request body could still have carried under its size limit (the one
        ``BodySizeLimitMiddleware`` let it through by): content a service adds on the
        request's behalf, an attachment read from the mail server say, counts against the
        same limit as content sent."""
        limit = getattr(self, "max_body_size", None) or settings.EMAILAPI_MAX_BODY_SIZE
        return limit - request_size(self.request)

    def validated(self, serializer_class, data, **kwargs) -> dict[str, Any]:
        remembered = None if kwargs else valid_query(serializer_class, data)
        if remembered is not None:
            return remembered
        serializer = serializer_class(data=data, **kwargs)
        serializer.is_valid(raise_exception=True)
        if not kwargs:
            remember_valid_query(serializer_class, data, serializer.validated_data)
        return serializer.validated_data


def request_size(request) -> int:
    """The request body's length: its Content-Length (checked by the body size middleware),
    else the body itself, which that middleware has read to measure it."""
    declared = request.META.get("CONTENT_LENGTH")
    if declared:
        return max(int(declared), 0)
    return len(request.body)
