"""API tokens of the tenant: list, create (shown once), revoke. Tokens are stored hashed
(``accounts.tokens``); the list shows names, scopes and prefixes, never a token.

EmailEngine's token routes answer at the same paths: ``POST /v1/token`` (also ``/v1/tokens``)
takes its ``account``/``description``/``metadata`` body, ``GET /v1/tokens`` lists ``id`` as
EmailEngine does (the SHA-256 of the token, a string; our number is ``emailapiId``), and
``DELETE /v1/token/{token}`` takes that id, the token itself, or our number.
"""

from __future__ import annotations

import re

from django.db.models import Q
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.response import Response

from accounts import services, tokens
from accounts.errors import AccountNotFound, TokenLimitedToAccount
from accounts.models import ApiToken, EmailAccount
from emailapi.api.errors import NotFoundError
from emailapi.api.parsers import MAX_DEPTH
from emailapi.api.serializers import StrictSerializer
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

    class Meta:
        model = ApiToken
        fields = ["id", "emailapiId", "name", "description", "account", "prefix", "scopes",
                  "metadata", "created", "lastUsed", "access"]

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


class TokenListView(TenantScopedAPIView):
    """``GET /v1/tokens``."""

    @extend_schema(operation_id="listTokens", tags=["Access tokens"],
                   responses={200: TokenListSerializer}, summary="List active tokens",
                   description="Names, scopes and the first characters of each active token; "
                               "never the token itself.")
    def get(self, request):
        tokens = ApiToken.objects.filter(tenant=self.tenant, revoked_at__isnull=True)
        return Response({"tokens": TokenSerializer(tokens.order_by("id"), many=True).data})

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
        found = ApiToken.objects.filter(tenant=self.tenant, revoked_at__isnull=True,
                                        account_id=self.email_account.account_id)
        return Response({"tokens": TokenSerializer(found.order_by("id"), many=True).data})


class TokenCreateView(TenantScopedAPIView):
    """``POST /v1/token`` (and EmailEngine-style ``POST /v1/tokens``)."""

    @extend_schema(operation_id="createToken", tags=["Access tokens"],
                   request=TokenCreateSerializer, responses={200: TokenCreatedSerializer},
                   summary="Create a token",
                   description="The token is shown only once. Takes our body (`name`, "
                               "`scopes`) or EmailEngine's (`account`, `description`, "
                               "`scopes`, `metadata`): with `account` the token opens only "
                               "that account's routes (403 elsewhere). EmailEngine's "
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
        account_id=account_id, metadata=data.get("metadata") or "")
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


class TokenDetailView(TenantScopedAPIView):
    """``DELETE /v1/token/{token}``: revoke."""

    @extend_schema(operation_id="revokeToken", tags=["Access tokens"],
                   parameters=[OpenApiParameter(
                       "token", str, OpenApiParameter.PATH,
                       description="The token's id (`id`, as EmailEngine's), its number "
                                   "(`emailapiId`) or the token itself")],
                   responses={200: TokenRevokedSerializer}, summary="Revoke a token",
                   description="The token stops working at once.")
    def delete(self, request, token: str):
        match = _token_filter(token)
        row = ApiToken.objects.filter(match, tenant=self.tenant, revoked_at__isnull=True) \
            .first() if match is not None else None
        if row is None or not services.revoke_token(row):
            raise NotFoundError("Token not found", "TokenNotFound")
        return Response({"id": row.token_hash, "emailapiId": row.pk, "revoked": True,
                         "deleted": True})
