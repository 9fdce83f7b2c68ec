"""Webhook subscriptions (create, read, change, delete, rotate the secret, send a test) and
their delivery log (list, retry one): thin views over ``webhooks.subscriptions``,
``webhooks.delivery_state`` and ``webhooks.signed_request``.

Every lookup starts from the caller's tenant: another tenant's subscription or delivery is
"not found", exactly like one that does not exist (ids that are not UUIDs too).
"""

from __future__ import annotations

import uuid

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from emailapi.api.errors import ApiError
from emailapi.api.pagination import paginate
from emailapi.api.views import TenantScopedAPIView
from webhooks import delivery_state, signed_request, subscriptions
from webhooks.api import serializers as s
from webhooks.errors import DeliveryNotFound, WebhookNotFound
from webhooks.models import Delivery, WebhookSubscription

TAGS = ["Webhooks"]
WEBHOOK_PARAM = OpenApiParameter("webhook", str, OpenApiParameter.PATH,
                                 description="Subscription id")
DELIVERY_PARAM = OpenApiParameter("delivery", str, OpenApiParameter.PATH,
                                  description="Delivery id")


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


class WebhookScopedView(TenantScopedAPIView):
    def get_webhook(self, webhook: str) -> WebhookSubscription:
        pk = _uuid(webhook)
        found = pk and subscriptions.tenant_subscriptions(self.tenant).filter(pk=pk).first()
        if not found:
            raise WebhookNotFound()
        return found


class WebhookListView(WebhookScopedView):
    """``GET/POST /v1/webhooks``."""

    @extend_schema(operation_id="listWebhooks", tags=TAGS,
                   responses={200: s.WebhookListSerializer}, summary="List webhook subscriptions",
                   description="Your tenant's subscriptions, oldest first; never their secrets "
                               "or header values.")
    def get(self, request):
        rows = subscriptions.tenant_subscriptions(self.tenant)
        return Response({"webhooks": s.WebhookSerializer(rows, many=True).data})

    @extend_schema(
        operation_id="createWebhook", tags=TAGS, request=s.WebhookCreateSerializer,
        responses={200: s.WebhookWithSecretSerializer}, summary="Subscribe a URL to events",
        description="Events are POSTed as JSON, signed with the returned `secret` (shown only "
                    "now): `X-EmailAPI-Signature: sha256=<hex HMAC-SHA256 of "
                    "\"<X-EmailAPI-Timestamp>.<body>\">`. `format: emailengine` sends EmailEngine's "
                    "envelope `{serviceUrl, account, date, path, specialUse, event, data}` with "
                    "`X-EE-Wh-Signature` (base64url HMAC-SHA256 of the body, keyed with the "
                    "secret) and `X-EE-Wh-Id`, `-Attempts-Made`, `-Queued-Time`, `-Event-Id`; "
                    "`format: standard` signs as Standard Webhooks (`webhook-id`, "
                    "`webhook-timestamp`, `webhook-signature: v1,...`; the secret is the "
                    "`whsec_` key). URLs must be http(s) and must not resolve to internal "
                    "addresses. A URL's `user:password@` is sent as `Authorization: Basic` "
                    "(as EmailEngine does; a custom `Authorization` header wins) and never "
                    "shown: answers have `******` for the password.",
    )
    def post(self, request):
        data = self.validated(s.WebhookCreateSerializer, request.data)
        subscription, secret = subscriptions.create(self.tenant, data)
        return Response(s.WebhookWithSecretSerializer(subscription,
                                                      context={"secret": secret}).data)


class WebhookDetailView(WebhookScopedView):
    """``GET/PUT/DELETE /v1/webhooks/{id}``."""

    @extend_schema(operation_id="getWebhook", tags=TAGS, parameters=[WEBHOOK_PARAM],
                   responses={200: s.WebhookSerializer}, summary="One webhook subscription",
                   description="Its settings and health (`failingSince`, `disabledReason`).")
    def get(self, request, webhook):
        return Response(s.WebhookSerializer(self.get_webhook(webhook)).data)

    @extend_schema(
        operation_id="updateWebhook", tags=TAGS, parameters=[WEBHOOK_PARAM],
        request=s.WebhookUpdateSerializer, responses={200: s.WebhookSerializer},
        summary="Change a webhook subscription (partial)",
        description="Only the given fields change; `headers` replaces all custom headers. "
                    "`enabled: true` re-enables a disabled subscription and clears its "
                    "failure streak. A `url` with `******` for its password keeps the stored "
                    "password if the scheme, host and port are the same (else 400: give the "
                    "password).",
    )
    def put(self, request, webhook):
        subscription = self.get_webhook(webhook)
        data = self.validated(s.WebhookUpdateSerializer, request.data, partial=True,
                              instance=subscription)
        return Response(s.WebhookSerializer(subscriptions.update(subscription, data)).data)

    @extend_schema(operation_id="deleteWebhook", tags=TAGS, parameters=[WEBHOOK_PARAM],
                   responses={200: s.WebhookDeletedSerializer},
                   summary="Delete a webhook subscription",
                   description="Pending deliveries are dropped with it.")
    def delete(self, request, webhook):
        subscription = self.get_webhook(webhook)
        pk = subscription.pk
        if not subscriptions.delete(subscription):  # a concurrent delete came first
            raise WebhookNotFound()
        return Response({"id": str(pk), "deleted": True})


class WebhookRotateSecretView(WebhookScopedView):
    """``POST /v1/webhooks/{id}/rotate-secret``."""

    @extend_schema(operation_id="rotateWebhookSecret", tags=TAGS, parameters=[WEBHOOK_PARAM],
                   request=None, responses={200: s.SecretRotatedSerializer},
                   summary="Replace the signing secret",
                   description="The new secret is shown only now and signs every later "
                               "attempt; the old one stops at once.")
    def post(self, request, webhook):
        subscription = self.get_webhook(webhook)
        return Response({"id": str(subscription.pk),
                         "secret": subscriptions.rotate_secret(subscription)})


class WebhookTestView(WebhookScopedView):
    """``POST /v1/webhooks/{id}/test``."""

    @extend_schema(
        operation_id="testWebhook", tags=TAGS, parameters=[WEBHOOK_PARAM], request=None,
        responses={200: s.WebhookTestResultSerializer}, summary="Send a test event now",
        description="POSTs a signed `test` event (not recorded, not retried) and reports the "
                    "receiver's status code and the time taken, waiting at most "
                    "`EMAILAPI_WEBHOOK_TIMEOUT` seconds. Works on disabled subscriptions too.",
    )
    def post(self, request, webhook):
        subscription = self.get_webhook(webhook)
        outcome = signed_request.send_test(subscription)
        body = {"statusCode": outcome.status_code, "duration": outcome.duration_ms}
        if outcome.error:
            body["error"] = outcome.error
        return Response(body)


class DeliveryListView(WebhookScopedView):
    """``GET /v1/webhooks/{id}/deliveries``."""

    @extend_schema(
        operation_id="listWebhookDeliveries", tags=TAGS,
        parameters=[WEBHOOK_PARAM, s.DeliveryQuerySerializer],
        responses={200: s.DeliveryListSerializer}, summary="The delivery log",
        description="Newest first, paged with `page` (from 0) and `pageSize`; `state` filters. "
                    "Delivered and failed rows are kept "
                    "`EMAILAPI_WEBHOOK_DELIVERY_RETENTION_DAYS` days.",
    )
    def get(self, request, webhook):
        subscription = self.get_webhook(webhook)
        query = self.validated(s.DeliveryQuerySerializer, request.query_params)
        rows = (Delivery.objects.filter(subscription=subscription).select_related("event")
                .order_by("-created_at", "-seq"))
        if query.get("state"):
            rows = rows.filter(state=query["state"])
        items, counters = paginate(rows, query["page"], query["pageSize"])
        return Response({"deliveries": s.DeliverySerializer(items, many=True).data, **counters})


class DeliveryRetryView(WebhookScopedView):
    """``POST /v1/webhooks/{id}/deliveries/{deliveryId}/retry``."""

    @extend_schema(
        operation_id="retryWebhookDelivery", tags=TAGS, parameters=[WEBHOOK_PARAM, DELIVERY_PARAM],
        request=None, responses={200: s.DeliverySerializer}, summary="Send one delivery again",
        description="Makes the delivery pending with a fresh retry schedule and sends it as "
                    "soon as its lane allows: it keeps its place in the order of its mailbox's "
                    "events, so it goes before later pending ones. 409 while it is being sent.",
    )
    def post(self, request, webhook, delivery):
        subscription = self.get_webhook(webhook)
        pk = _uuid(delivery)
        row = pk and Delivery.objects.filter(subscription=subscription, pk=pk) \
            .select_related("event").first()
        if not row:
            raise DeliveryNotFound()
        if row.state == Delivery.State.DELIVERING:
            raise ApiError("The delivery is being sent right now", "DeliveryInProgress", 409)
        return Response(s.DeliverySerializer(delivery_state.retry(row)).data)
