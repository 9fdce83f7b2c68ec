"""EmailEngine's webhook routes, read-only: ``GET /v1/webhookRoutes`` and ``GET
/v1/webhookRoutes/webhookRoute/{webhookRoute}``. Thin views over ``webhooks.routes``, which
says how a subscription is shown as a route; another tenant's route is a 404 like an unknown
one."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from emailapi.api.pagination import PageQuerySerializer, paginate
from emailapi.api.views import TenantScopedAPIView
from webhooks import routes
from webhooks.api.settings import CustomHeaderSerializer

TAGS = ["Webhooks"]
ROUTE_PARAM = OpenApiParameter("webhookRoute", str, OpenApiParameter.PATH,
                               description="Webhook route id (a subscription id)")
# EmailEngine's bound of ``page`` on this route.
MAX_PAGE = 1024 * 1024


class WebhookRoutesQuerySerializer(PageQuerySerializer):
    page = serializers.IntegerField(min_value=0, max_value=MAX_PAGE, default=0,
                                    help_text="Page number, from 0")


class ErrorFlagSerializer(serializers.Serializer):
    message = serializers.CharField(help_text="Why the last deliveries failed")


class WebhookRouteSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The subscription's id")
    name = serializers.CharField(help_text="The subscription's name, or its URL's host")
    description = serializers.CharField(allow_blank=True)
    created = serializers.CharField()
    updated = serializers.CharField()
    enabled = serializers.BooleanField()
    targetUrl = serializers.CharField(help_text="The URL posted to (a password as ******)")
    tcount = serializers.IntegerField(help_text="Delivery records kept for this route")
    webhookErrorFlag = ErrorFlagSerializer(
        allow_null=True, help_text="Null unless deliveries are failing or the subscription "
                                   "was disabled for it")
    customHeaders = CustomHeaderSerializer(
        many=True, help_text='As /v1/settings shows webhooksCustomHeaders: values are "******"')


class WebhookRouteListSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    page = serializers.IntegerField()
    pages = serializers.IntegerField(help_text="0 when there are none, as EmailEngine")
    webhooks = WebhookRouteSerializer(many=True)


class WebhookRouteContentSerializer(serializers.Serializer):
    fn = serializers.CharField(allow_null=True, help_text="JavaScript filter equivalent to "
                               "the subscription's events and accounts; null: every event")
    map = serializers.CharField(allow_null=True, help_text="Always null: no mapping")


class WebhookRouteDetailSerializer(WebhookRouteSerializer):
    content = WebhookRouteContentSerializer()


class WebhookRouteListView(TenantScopedAPIView):
    """``GET /v1/webhookRoutes``."""

    @extend_schema(
        operation_id="listWebhookRoutes", tags=TAGS, parameters=[WebhookRoutesQuerySerializer],
        responses={200: WebhookRouteListSerializer}, summary="List webhook routes",
        description="EmailEngine's webhook routes: your webhook subscriptions other than the "
                    "one `/v1/settings` manages, newest first, paged with `page` (from 0) and "
                    "`pageSize` (1-1000). Header values are never shown.",
    )
    def get(self, request):
        query = self.validated(WebhookRoutesQuerySerializer, request.query_params)
        items, counters = paginate(routes.newest_first(self.tenant), query["page"],
                                   query["pageSize"])
        if not counters["total"]:
            counters["pages"] = 0  # EmailEngine's count of pages of nothing
        return Response({**counters, "webhooks": [routes.entry(item) for item in items]})


class WebhookRouteDetailView(TenantScopedAPIView):
    """``GET /v1/webhookRoutes/webhookRoute/{webhookRoute}``."""

    @extend_schema(
        operation_id="getWebhookRoute", tags=TAGS, parameters=[ROUTE_PARAM],
        responses={200: WebhookRouteDetailSerializer}, summary="One webhook route",
        description="A route as listed, with `content.fn`, a JavaScript filter equivalent to "
                    "the subscription's `events` and `accounts` (null when it takes every "
                    "event), and `content.map` (always null).",
    )
    def get(self, request, webhookRoute):
        return Response(routes.detail(routes.find(self.tenant, webhookRoute)))
