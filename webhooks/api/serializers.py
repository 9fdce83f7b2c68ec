"""Request and response shapes of the webhook subscription and delivery log routes.

Inputs are strict (unknown fields are a 400). Outputs never carry the signing secret (except
the one response that creates or rotates it), custom header values (only their names: they
often hold credentials) nor the password of a URL's ``user:password@`` (the stored URL has
the mask in its place: ``webhooks.subscriptions``).
"""

from __future__ import annotations

import re

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

from accounts.credentials import MASK, without_password
from emailapi.api.pagination import PageQuerySerializer
from emailapi.api.serializers import StrictSerializer
from emailapi.lib import netguard
from webhooks import events, subscriptions, transport
from webhooks.models import FORMATS, Delivery
from webhooks.payloads import ENGINE_ONLY_EVENTS

HEADER_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")
# What an HTTP header value can carry (RFC 9110 field-value: tab, space, visible ASCII and
# Latin-1 beyond it; no control character): U+2028 or an emoji cannot even be encoded, and
# failed every delivery (POST .../test answered 500).
HEADER_VALUE_RE = re.compile(r"[\t\x20-\x7e\xa0-\xff]*")
# Set by us on every request (or by the HTTP client): a subscription may not override them.
RESERVED_HEADERS = {"host", "content-type", "content-length", "transfer-encoding",
                    "connection", "user-agent", "expect", "te", "upgrade", "keep-alive"}
MAX_HEADERS = 20


def validate_webhook_url(value: str) -> str:
    try:
        transport.check_url(value, settings.WEBHOOKS_ALLOW_PRIVATE)
    except (netguard.UnsafeTarget, netguard.Unresolvable) as exc:
        raise serializers.ValidationError(str(exc)) from None
    if len(without_password(value)) > netguard.MAX_URL_LENGTH:  # what is stored must fit
        raise serializers.ValidationError(
            f"Must be a URL of at most {netguard.MAX_URL_LENGTH} characters with its password "
            f"written as {MASK}")
    return value


def validate_event_names(value: list[str], engine: bool = False) -> list[str]:
    """Our event names; with ``engine`` (format ``emailengine``) EmailEngine's too."""
    known = (*events.ALL, *ENGINE_ONLY_EVENTS) if engine else events.ALL
    unknown = [name for name in value if name != "*" and name not in known]
    if unknown:
        raise serializers.ValidationError(
            f"Unknown event {unknown[0]!r}; use '*' or some of: {', '.join(known)}")
    return value


def validate_headers(value: dict | None) -> dict:
    value = value or {}
    if len(value) > MAX_HEADERS:
        raise serializers.ValidationError(f"At most {MAX_HEADERS} headers")
    seen = set()
    for name, text in value.items():
        lowered = name.lower()
        if not HEADER_NAME_RE.match(name):
            raise serializers.ValidationError(f"{name!r} is not a valid header name")
        if lowered in RESERVED_HEADERS or lowered.startswith("x-emailapi-"):
            raise serializers.ValidationError(f"{name} is set by emailapi and cannot be changed")
        if lowered in seen:
            raise serializers.ValidationError(f"{name} is given twice")
        seen.add(lowered)
        if not HEADER_VALUE_RE.fullmatch(text):
            raise serializers.ValidationError(
                f"The value of {name} contains a character an HTTP header cannot carry (a line "
                f"break, a control character or one beyond Latin-1)")
    return value


@extend_schema_serializer(examples=[
    OpenApiExample("New mail of one mailbox", request_only=True, value={
        "url": "https://example.com/hooks/email", "events": ["messageNew", "messageDeleted"],
        "accounts": ["my-mailbox"], "headers": {"Authorization": "Bearer abc"},
    }),
])
class WebhookCreateSerializer(StrictSerializer):
    url = serializers.CharField(
        max_length=netguard.MAX_URL_LENGTH, validators=[validate_webhook_url],
        help_text="http(s) URL the events are POSTed to. A user:password@ in it is sent as "
                  "HTTP Basic (percent-decoded; a custom Authorization header wins), not in the "
                  "request; the password is stored encrypted and shown as ******, which written "
                  "back keeps it for the same scheme, host and port (elsewhere: 400)")
    events = serializers.ListField(
        child=serializers.CharField(max_length=64), min_length=1, max_length=100,
        help_text='Event names, or ["*"] for all (format emailengine: EmailEngine\'s names '
                  'too, e.g. messageDeliveryError)')
    accounts = serializers.ListField(
        child=serializers.CharField(max_length=256), required=False, allow_null=True,
        max_length=1000, help_text="Only events of these accounts (default: all)")
    headers = serializers.DictField(
        child=serializers.CharField(max_length=2048, allow_blank=True, trim_whitespace=False),
        required=False, allow_null=True, validators=[validate_headers],
        help_text="Extra request headers (write-only: responses list only their names)")
    enabled = serializers.BooleanField(default=True)
    name = serializers.CharField(
        max_length=256, required=False, allow_blank=True, allow_null=True,
        help_text='Your name for it, also its name as an EmailEngine webhook route '
                  '(null or "" clears it)')
    description = serializers.CharField(
        max_length=1024, required=False, allow_blank=True, allow_null=True,
        help_text='Your description of it (null or "" clears it)')
    format = serializers.ChoiceField(
        choices=[name for name, _ in FORMATS], default="emailapi",
        help_text="emailapi (X-EmailAPI-Signature), emailengine (EmailEngine's envelope and "
                  "X-EE-Wh-* headers) or standard (Standard Webhooks)")

    def validate_events(self, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))  # each event once, in the order given

    def validate(self, attrs):
        if "events" in attrs:
            engine = attrs.get("format", getattr(self.instance, "format", "emailapi")) \
                == "emailengine"
            try:
                validate_event_names(attrs["events"], engine)
            except serializers.ValidationError as exc:
                raise serializers.ValidationError({"events": exc.detail}) from None
        return attrs


class WebhookUpdateSerializer(WebhookCreateSerializer):
    """Used with ``partial=True``: only the given fields change."""

    format = serializers.ChoiceField(choices=[name for name, _ in FORMATS], required=False)


# --- answers: rendered from the rows by these serializers, so the document is the answer ----


class _OffsetDateTimeField(serializers.DateTimeField):
    """``isoformat()``, UTC spelt ``+00:00`` as these answers always had it (DRF writes ``Z``)."""

    def to_representation(self, value):
        return value.isoformat() if value else None


class _BlankAsNullField(serializers.CharField):
    """An empty column is ``null`` in the answer."""

    def get_attribute(self, instance):
        return super().get_attribute(instance) or None


class _HeaderNamesField(serializers.ListField):
    def get_attribute(self, instance):
        return subscriptions.header_names(instance)


class _ContextField(serializers.CharField):
    """A value the view hands over in the context (it is not stored readable on the row)."""

    def get_attribute(self, instance):
        return self.context[self.field_name]


class _NextAttemptField(_OffsetDateTimeField):
    def get_attribute(self, instance):
        return instance.next_attempt_at if instance.state == Delivery.State.PENDING else None


class WebhookSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = _BlankAsNullField(allow_null=True)
    description = _BlankAsNullField(allow_null=True)
    url = serializers.CharField(help_text="The password of a user:password@ in it shown as "
                                          "******")
    events = serializers.ListField(child=serializers.CharField())
    accounts = serializers.ListField(child=serializers.CharField())
    headerNames = _HeaderNamesField(child=serializers.CharField(),
                                    help_text="Names of the custom headers sent")
    enabled = serializers.BooleanField()
    format = serializers.ChoiceField(choices=[name for name, _ in FORMATS])
    failingSince = _OffsetDateTimeField(
        source="failing_since", allow_null=True,
        help_text="Start of the current streak of failed attempts")
    disabledReason = _BlankAsNullField(
        source="disabled_reason", allow_null=True,
        help_text="Why the subscription was disabled automatically")
    created = _OffsetDateTimeField(source="created_at")
    updated = _OffsetDateTimeField(source="updated_at")


# Rendered with ``context={"secret": ...}``: the secret exists in clear only then. (A comment:
# drf-spectacular would publish a docstring.)
class WebhookWithSecretSerializer(WebhookSerializer):
    secret = _ContextField(
        help_text="HMAC-SHA256 signing key; shown only here and on rotation")


class WebhookListSerializer(serializers.Serializer):
    webhooks = WebhookSerializer(many=True)


class WebhookDeletedSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    deleted = serializers.BooleanField()


class SecretRotatedSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    secret = serializers.CharField()


class WebhookTestResultSerializer(serializers.Serializer):
    statusCode = serializers.IntegerField(allow_null=True,
                                          help_text="HTTP status of the answer; null if none")
    duration = serializers.IntegerField(help_text="Milliseconds until the answer or failure")
    error = serializers.CharField(required=False, help_text="Why it failed (absent on 2xx)")


class DeliveryQuerySerializer(PageQuerySerializer):
    state = serializers.ChoiceField(choices=Delivery.State.values, required=False)


class DeliverySerializer(serializers.Serializer):
    deliveryId = serializers.UUIDField(source="pk")
    eventId = serializers.UUIDField(source="event_id")
    event = serializers.CharField(source="event.event")
    account = _BlankAsNullField(source="account_id", allow_null=True)
    seq = serializers.IntegerField()
    state = serializers.ChoiceField(choices=Delivery.State.values)
    attempts = serializers.IntegerField()
    lastStatusCode = serializers.IntegerField(source="last_status_code", allow_null=True)
    lastError = _BlankAsNullField(source="last_error", allow_null=True)
    responseTimeMs = serializers.IntegerField(source="response_time_ms", allow_null=True)
    nextAttempt = _NextAttemptField(allow_null=True,
                                    help_text="When a pending delivery is tried next")
    created = _OffsetDateTimeField(source="created_at")
    updated = _OffsetDateTimeField(source="updated_at")


class DeliveryListSerializer(serializers.Serializer):
    deliveries = DeliverySerializer(many=True)
    total = serializers.IntegerField()
    page = serializers.IntegerField()
    pages = serializers.IntegerField()
