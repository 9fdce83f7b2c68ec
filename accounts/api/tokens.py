"""API tokens of the tenant: list, create (shown once), revoke. Tokens are stored hashed
(``accounts.tokens``); the list shows names, scopes and prefixes, never a token."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from accounts import services, tokens
from accounts.models import ApiToken
from emailapi.api.errors import NotFoundError
from emailapi.api.serializers import StrictSerializer
from emailapi.api.views import TenantScopedAPIView


class TokenCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=tokens.SCOPES), min_length=1, default=["api"]
    )


class TokenSerializer(serializers.ModelSerializer):
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=tokens.SCOPES))
    created = serializers.DateTimeField(source="created_at")
    lastUsed = serializers.DateTimeField(source="last_used_at", allow_null=True)

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "scopes", "created", "lastUsed"]


class TokenCreatedSerializer(TokenSerializer):
    token = serializers.CharField(help_text="The token; shown only in this response")

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "token"]


class TokenRevokedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    revoked = serializers.BooleanField()


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


class TokenCreateView(TenantScopedAPIView):
    """``POST /v1/token``."""

    @extend_schema(operation_id="createToken", tags=["Access tokens"],
                   request=TokenCreateSerializer, responses={200: TokenCreatedSerializer},
                   summary="Create a token", description="The token is shown only once.")
    def post(self, request):
        data = self.validated(TokenCreateSerializer, request.data)
        token, raw = services.issue_token(self.tenant, data["name"], data["scopes"])
        return Response({**TokenSerializer(token).data, "token": raw})


class TokenDetailView(TenantScopedAPIView):
    """``DELETE /v1/token/{id}``: revoke."""

    @extend_schema(operation_id="revokeToken", tags=["Access tokens"],
                   responses={200: TokenRevokedSerializer}, summary="Revoke a token",
                   description="The token stops working at once.")
    def delete(self, request, token_id: int):
        token = ApiToken.objects.filter(tenant=self.tenant, pk=token_id,
                                        revoked_at__isnull=True).first()
        if token is None:
            raise NotFoundError("Token not found", "TokenNotFound")
        services.revoke_token(token)
        return Response({"id": token.pk, "revoked": True})
