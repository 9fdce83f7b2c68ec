"""API tokens of the tenant: list, create (shown once), revoke. Tokens are stored hashed
(``accounts.tokens``); the list shows names, scopes and prefixes, never a token.

EmailEngine's token routes answer at the same paths: ``POST /v1/token`` (also ``/v1/tokens``)
takes its ``account``/``description``/``metadata`` body, ``GET /v1/tokens`` lists ``id`` as
EmailEngine does (the SHA-256 of the token, a string; our number is ``emailapiId``) and takes
its ``account``/``query``/``page``/``pageSize``, and ``DELETE /v1/token/{token}`` takes that id,
the token itself, or our number. EmailEngine's current spelling, ``GET``/``DELETE
/v1/tokens/{token}``, reads and revokes one token the same way.
"""

from __future__ import annotations

import re

from django.db.models import Q
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.response import Response

from accounts import services, tokens
from accounts.errors import AccountNotFound, TokenLimitedToAccount
from accounts.models import ApiToken, EmailAccount
from emailapi.api.errors import NotFoundError
from emailapi.api.pagination import MAX_PAGE, MAX_PAGE_SIZE, paginate
from emailapi.api.parsers import MAX_DEPTH
from emailapi.api.serializers import QuerySerializer, StrictSerializer
from emailapi.api.views import ACCOUNT_PARAM, TenantScopedAPIView
from emailapi.lib import jsondepth


class TokenAccessSerializer(serializers.Serializer):
    time = serializers.DateTimeField(allow_null=True, help_text="Last use (to the minute)")


class TokenCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200, required=False,
                                 help_text="What the token is for (or EmailEngine's description)")
    description = serializers.CharField(max_length=200, required=False,
                                        help_text="EmailEngine's name for `name`")
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=tokens.SCOPES), min_length=1, default=["api"]
    )
    account = serializers.CharField(
        max_length=256, required=False,
        help_text="EmailEngine's account token: usable only on this account's routes")
    metadata = serializers.CharField(max_length=65536, required=False, allow_blank=True,
                                     help_text="EmailEngine's: your JSON text, kept as given")
    restrictions = serializers.JSONField(
        required=False, help_text="EmailEngine's; only false (none) is accepted here")
    ip = serializers.IPAddressField(required=False,
                                    help_text="EmailEngine's requester address; not used")
    expires = serializers.DateTimeField(
        required=False, allow_null=True,
        help_text="EmailEngine's: an ISO 8601 date-time (a future one) from which the token "
                  "stops working; without it, or null, the token works until revoked")

    def to_internal_value(self, data):
        if isinstance(data, dict) and isinstance(data.get("scopes"), str):
            data = {**data, "scopes": [data["scopes"]]}  # EmailEngine takes one as a list
        return super().to_internal_value(data)

    def validate_metadata(self, value):
        if value:
            try:
                jsondepth.loads(value, MAX_DEPTH)
            except jsondepth.TooDeep as exc:
                raise serializers.ValidationError(f"Metadata is {exc}") from None
            except ValueError:
                raise serializers.ValidationError("Metadata must be a valid JSON string") \
                    from None
        return value

    def validate_expires(self, value):
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("Give a moment in the future: the token would "
                                              "never work")
        return value

    def validate_restrictions(self, value):
        if value not in (False, None, ""):
            raise serializers.ValidationError(
                "Token restrictions (referrers, addresses, rate limits) are not supported; "
                "scope tokens with scopes and account instead")
        return value

    def validate(self, attrs):
        if not (attrs.get("name") or attrs.get("description")):
            raise serializers.ValidationError({"name": ["Give name (or description)"]})
        return attrs


class TokenSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="token_hash",
                               help_text="EmailEngine's token id: the SHA-256 of the token")
    emailapiId = serializers.IntegerField(source="pk", help_text="Our number for the token")
    description = serializers.CharField(source="name", help_text="EmailEngine's name for name")
    account = serializers.CharField(source="account_id", allow_blank=True,
                                    help_text="An account token's account; empty: all")
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=tokens.SCOPES))
    created = serializers.DateTimeField(source="created_at")
    lastUsed = serializers.DateTimeField(source="last_used_at", allow_null=True)
    access = serializers.SerializerMethodField()
    metadata = serializers.CharField(allow_blank=True)
    expires = serializers.DateTimeField(source="expires_at", allow_null=True,
                                        help_text="When the token stops working (EmailEngine's "
                                                  "`expires`); null: never")

    class Meta:
        model = ApiToken
        fields = ["id", "emailapiId", "name", "description", "account", "prefix", "scopes",
                  "metadata", "created", "lastUsed", "access", "expires"]

    @extend_schema_field(TokenAccessSerializer)
    def get_access(self, obj):
        return {"time": obj.last_used_at.isoformat() if obj.last_used_at else None}


class TokenCreatedSerializer(TokenSerializer):
    token = serializers.CharField(help_text="The token; shown only in this response")

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "token"]


class TokenRevokedSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="EmailEngine's token id (SHA-256 of the token)")
    emailapiId = serializers.IntegerField()
    revoked = serializers.BooleanField()
    deleted = serializers.BooleanField(help_text="EmailEngine's name for revoked")


class TokenListSerializer(serializers.Serializer):
    tokens = TokenSerializer(many=True)


class TokenPageSerializer(TokenListSerializer):
    """``GET /v1/tokens``: EmailEngine's TokensResponse (the page counters and the account
    filter) around our list."""

    account = serializers.CharField(allow_null=True,
                                    help_text="The `account` filter given, null without one")
    total = serializers.IntegerField(help_text="How many tokens match")
    page = serializers.IntegerField(help_text="This page, from 0")
    pages = serializers.IntegerField(help_text="How many pages (0 when nothing matches)")


class TokenListQuerySerializer(QuerySerializer):
    """EmailEngine's filters of ``GET /v1/tokens``. Without ``page``/``pageSize`` the whole
    list is one page, as this route answered before it took them."""

    account = serializers.CharField(max_length=256, required=False,
                                    help_text="Only the tokens made with this `account`")
    query = serializers.CharField(max_length=1024, required=False,
                                  help_text="Substring of the description, id or account")
    page = serializers.IntegerField(min_value=0, max_value=MAX_PAGE, required=False,
                                    help_text="Page number, from 0")
    pageSize = serializers.IntegerField(min_value=1, max_value=MAX_PAGE_SIZE, required=False,
                                        help_text="Tokens per page, 1-1000 (20 with `page`; "
                                                  "without either, every token)")


class TokenListView(TenantScopedAPIView):
    """``GET /v1/tokens``."""

    @extend_schema(operation_id="listTokens", tags=["Access tokens"],
                   parameters=[TokenListQuerySerializer],
                   responses={200: TokenPageSerializer}, summary="List active tokens",
                   description="Names, scopes and the first characters of each active token "
                               "(neither revoked nor expired); "
                               "never the token itself. EmailEngine's `account` and `query` "
                               "filter the list and `page`/`pageSize` page it (without them "
                               "every token is on page 0).")
    def get(self, request):
        query = self.validated(TokenListQuerySerializer, request.query_params)
        found = ApiToken.live(tenant=self.tenant)
        if "account" in query:
            found = found.filter(account_id=query["account"])
        if query.get("query"):
            text = query["query"]
            found = found.filter(Q(name__icontains=text) | Q(token_hash__icontains=text)
                                 | Q(account_id__icontains=text))
        found = found.order_by("id")
        if "page" in query or "pageSize" in query:
            items, counters = paginate(found, query.get("page", 0), query.get("pageSize", 20))
        else:
            items = list(found)
            counters = {"total": len(items), "page": 0, "pages": 1}
        if not counters["total"]:
            counters["pages"] = 0  # EmailEngine's count of pages of nothing
        return Response({"tokens": TokenSerializer(items, many=True).data, **counters,
                         "account": query.get("account")})

    @extend_schema(operation_id="createTokenAlias", tags=["Access tokens"],
                   request=TokenCreateSerializer, responses={200: TokenCreatedSerializer},
                   summary="Create a token (the same as POST /v1/token)")
    def post(self, request):
        return _create(self, request)


class AccountTokenListView(TenantScopedAPIView):
    """``GET /v1/tokens/account/{account}``: EmailEngine's listing of one account's tokens."""

    @extend_schema(operation_id="listAccountTokens", tags=["Access tokens"],
                   parameters=[ACCOUNT_PARAM], responses={200: TokenListSerializer},
                   summary="List an account's tokens",
                   description="The active tokens made with this `account` (`POST /v1/token`), "
                               "as `GET /v1/tokens` shows them. 404 for an account your tenant "
                               "does not have. Not open to account tokens themselves: managing "
                               "tokens is for the tenant's own.")
    def get(self, request, account):
        token = getattr(request.user, "token", None)
        if token is not None and token.account_id:
            raise TokenLimitedToAccount(token.account_id)
        found = ApiToken.live(tenant=self.tenant, account_id=self.email_account.account_id)
        return Response({"tokens": TokenSerializer(found.order_by("id"), many=True).data})


class TokenCreateView(TenantScopedAPIView):
    """``POST /v1/token`` (and EmailEngine-style ``POST /v1/tokens``)."""

    @extend_schema(operation_id="createToken", tags=["Access tokens"],
                   request=TokenCreateSerializer, responses={200: TokenCreatedSerializer},
                   summary="Create a token",
                   description="The token is shown only once. Takes our body (`name`, "
                               "`scopes`) or EmailEngine's (`account`, `description`, "
                               "`scopes`, `metadata`): with `account` the token opens only "
                               "that account's routes (403 elsewhere); with `expires` it stops "
                               "working at that moment (401 `TokenExpired`). EmailEngine's "
                               "`restrictions` are refused unless false.")
    def post(self, request):
        return _create(self, request)


def _create(view: TenantScopedAPIView, request) -> Response:
    data = view.validated(TokenCreateSerializer, request.data)
    account_id = data.get("account") or ""
    if account_id and EmailAccount.of_tenant(view.tenant, account_id) is None:
        raise AccountNotFound(account_id)
    token, raw = services.issue_token(
        view.tenant, data.get("name") or data["description"], data["scopes"],
        account_id=account_id, metadata=data.get("metadata") or "",
        expires_at=data.get("expires"))
    return Response({**TokenSerializer(token).data, "token": raw})


TOKEN_HASH_RE = re.compile(r"^[0-9a-f]{64}$")


def _token_filter(value: str) -> Q | None:
    """``{token}`` of the DELETE route: our number, EmailEngine's id (the SHA-256 of the
    token, which is what we store) or the token itself; None for none of these."""
    if value.isdigit() and len(value) <= 18:
        return Q(pk=int(value))
    if TOKEN_HASH_RE.match(value):
        return Q(token_hash=value)
    if tokens.looks_like_token(value):
        return Q(token_hash=tokens.hash_token(value))
    return None


TOKEN_PARAM = OpenApiParameter(
    "token", str, OpenApiParameter.PATH,
    description="The token's id (`id`, as EmailEngine's), its number (`emailapiId`) or the "
                "token itself")


def _active_token(tenant, value: str, expired_too: bool = False) -> ApiToken | None:
    """The tenant's live token that ``value`` names (see ``_token_filter``), or None.
    ``expired_too``: an expired one too (not revoked), so that it can still be revoked, as
    EmailEngine deletes an expired token."""
    match = _token_filter(value)
    if match is None:
        return None
    if expired_too:
        return ApiToken.objects.filter(match, tenant=tenant, revoked_at__isnull=True).first()
    return ApiToken.live(tenant=tenant).filter(match).first()


def _revoke(view: TenantScopedAPIView, value: str) -> Response:
    row = _active_token(view.tenant, value, expired_too=True)
    if row is None or not services.revoke_token(row):
        raise NotFoundError("Token not found", "TokenNotFound")
    return Response({"id": row.token_hash, "emailapiId": row.pk, "revoked": True,
                     "deleted": True})


class TokenDetailView(TenantScopedAPIView):
    """``DELETE /v1/token/{token}``: revoke."""

    @extend_schema(operation_id="revokeToken", tags=["Access tokens"],
                   parameters=[TOKEN_PARAM],
                   responses={200: TokenRevokedSerializer}, summary="Revoke a token",
                   description="The token stops working at once.")
    def delete(self, request, token: str):
        return _revoke(self, token)


class TokenItemView(TenantScopedAPIView):
    """``GET``/``DELETE /v1/tokens/{token}``: EmailEngine's current paths for one token
    (its ``/v1/token/{token}`` is the older spelling, kept above)."""

    @extend_schema(operation_id="getToken", tags=["Access tokens"], parameters=[TOKEN_PARAM],
                   responses={200: TokenSerializer}, summary="One token's details",
                   description="The active token's details, as `GET /v1/tokens` lists them; "
                               "never the token itself. 404 `TokenNotFound` for a revoked, "
                               "expired or unknown one.")
    def get(self, request, token: str):
        row = _active_token(self.tenant, token)
        if row is None:
            raise NotFoundError("Token not found", "TokenNotFound")
        return Response(TokenSerializer(row).data)

    @extend_schema(operation_id="revokeTokenItem", tags=["Access tokens"],
                   parameters=[TOKEN_PARAM], responses={200: TokenRevokedSerializer},
                   summary="Revoke a token (the same as DELETE /v1/token/{token})",
                   description="The token stops working at once.")
    def delete(self, request, token: str):
        return _revoke(self, token)
