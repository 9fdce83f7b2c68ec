"""Bearer-token authentication for /v1.

``Authorization: Bearer <token>`` or, for links a browser follows (attachment downloads),
``?access_token=<token>``. A token resolves to an ``ApiCaller``: the tenant every query of the
request is scoped to, and the token's scopes. ``last_used_at`` is written at most once a minute
per token so that reads do not turn into writes under load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from accounts import plans, token_cache, tokens
from accounts.errors import TokenLimitedToAccount
from accounts.models import ApiToken, Tenant
from emailapi.lib.timestamps import utc_iso

LAST_USED_RESOLUTION = timedelta(seconds=60)


@dataclass
class ApiCaller:
    """``request.user`` for API requests: who is calling, on behalf of which tenant."""

    tenant: Tenant
    token: ApiToken
    scopes: list[str] = field(default_factory=list)
    is_authenticated: bool = True
    is_anonymous: bool = False

    @property
    def pk(self):  # used by throttles and logging
        return self.token.pk


def still_valid(caller: ApiCaller) -> bool:
    """Whether ``caller``'s token still opens the API: not revoked or expired, its tenant not
    stopped. Read afresh (no cache): an open event stream asks it every so often
    (``webhooks.stream.validity``), where no new request ever authenticates."""
    token = ApiToken.objects.select_related("tenant").filter(pk=caller.token.pk).first()
    return token is not None and token.is_active and \
        plans.effective_status(token.tenant) not in plans.STOPPED


def _check_expiry(token: ApiToken) -> None:
    """An expired token (EmailEngine's ``expires``) is refused with words saying so, so its
    owner knows to make a new one rather than look for a typo."""
    if token.is_expired():
        raise exceptions.AuthenticationFailed(
            f"API token expired at {utc_iso(token.expires_at)}; create a new one",
            code="TokenExpired")


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        raw = self._raw_token(request)
        if raw is None:
            return None
        if not tokens.looks_like_token(raw):
            raise exceptions.AuthenticationFailed("Invalid API token")
        token_hash = tokens.hash_token(raw)
        token = token_cache.get(token_hash)
        if token is None:
            token = ApiToken.objects.select_related("tenant").filter(token_hash=token_hash).first()
            if token is None or token.revoked_at is not None:
                raise exceptions.AuthenticationFailed("Invalid or revoked API token")
            token_cache.put(token_hash, token)
        _check_expiry(token)  # after the cache too: its copy of the row carries the moment
        plans.check_api_access(token.tenant)  # 402 TrialExpired / 403 TenantSuspended
        if token.account_id:
            self._check_account(request, token)
        self._touch(token)
        return ApiCaller(tenant=token.tenant, token=token, scopes=list(token.scopes)), token

    def authenticate_header(self, request) -> str:
        return f'{self.keyword} realm="api"'

    def _raw_token(self, request) -> str | None:
        header = authentication.get_authorization_header(request).decode("latin-1").strip()
        if header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() != self.keyword.lower() or not value.strip():
                raise exceptions.AuthenticationFailed(
                    "Malformed Authorization header: use 'Bearer <token>'"
                )
            return value.strip()
        value = request.query_params.get("access_token")
        return value.strip() if value else None

    @staticmethod
    def _check_account(request, token: ApiToken) -> None:
        """An account token (EmailEngine's, ``POST /v1/token`` with ``account``) opens only
        the routes of its account: any other route, and any request whose route cannot be
        told (a stream), is 403."""
        kwargs = (getattr(request, "parser_context", None) or {}).get("kwargs") or {}
        if kwargs.get("account") != token.account_id:
            raise TokenLimitedToAccount(token.account_id)

    @staticmethod
    def _touch(token: ApiToken) -> None:
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Describes ``BearerTokenAuthentication`` in the OpenAPI document."""

    target_class = BearerTokenAuthentication
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "An API token (`eapi_...`); `?access_token=` also works."}
