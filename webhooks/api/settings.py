"""``GET/POST /v1/settings``: EmailEngine's settings route for the tenant's default webhook and
what its events carry (``webhooks.engine_settings``).

As in EmailEngine, ``GET`` answers the keys asked for as query flags
(``?webhooks=true&notifyText=true``; with none, every key: EmailEngine answers ``{}`` then),
secrets only as "set" (``serviceSecret: true``, header values ``"******"``), and ``POST``
answers ``{"updated": [keys]}``. ``eventTypes=true`` lists the event names a webhook can carry.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from accounts import auth_server
from emailapi.api.serializers import QuerySerializer, StrictSerializer
from emailapi.api.views import TenantScopedAPIView
from emailapi.lib import tunnels
from webhooks import engine_settings, events
from webhooks.api.serializers import validate_headers, validate_webhook_url
from webhooks.payloads import ENGINE_ONLY_EVENTS

TAGS = ["Settings"]
EVENT_TYPES = [*events.ALL, *ENGINE_ONLY_EVENTS]
AUTH_SERVER = "authServer"  # kept by accounts.auth_server, not with the webhook settings


class CustomHeaderSerializer(StrictSerializer):
    key = serializers.CharField(max_length=1024)
    value = serializers.CharField(max_length=10 * 1024, allow_blank=True, default="",
                                  trim_whitespace=True)


def _validate_engine_events(value: list[str]) -> list[str]:
    unknown = [name for name in value if name != "*" and name not in EVENT_TYPES]
    if unknown:
        raise serializers.ValidationError(
            f"Unknown event {unknown[0]!r}; use '*' or some of: {', '.join(EVENT_TYPES)}")
    return list(dict.fromkeys(value))


class SettingsSerializer(StrictSerializer):
    webhooksEnabled = serializers.BooleanField(required=False,
                                               help_text="If false, no webhooks are sent")
    webhooks = serializers.CharField(
        required=False, allow_blank=True, max_length=2048,
        help_text="The URL webhooks are POSTed to ('' = none). A user:password@ in it is sent "
                  "as HTTP Basic, as EmailEngine does; the password is stored encrypted and "
                  "read back as ******, which written back keeps it (same scheme, host, port)")
    webhookEvents = serializers.ListField(
        child=serializers.CharField(max_length=256), required=False, max_length=100,
        help_text='Events to send (EmailEngine\'s names; ["*"] = all)')
    webhooksCustomHeaders = CustomHeaderSerializer(many=True, required=False,
                                                   help_text="Extra request headers")
    notifyText = serializers.BooleanField(required=False,
                                          help_text="messageNew carries text.plain/html")
    notifyTextSize = serializers.IntegerField(required=False, allow_null=True, min_value=0,
                                              max_value=10 * 1024 * 1024,
                                              help_text="Bytes of each text at most")
    notifyHeaders = serializers.ListField(
        child=serializers.CharField(max_length=256), required=False, max_length=100,
        help_text='Headers messageNew carries (lowercase names; ["*"] = all)')
    notifyAttachments = serializers.BooleanField(
        required=False, help_text="messageNew carries each attachment's content (base64) up to "
                                  "notifyAttachmentSize")
    notifyAttachmentSize = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=10 * 1024 * 1024,
        help_text="Largest attachment (encoded bytes) whose content messageNew carries "
                  "(default 2 MiB)")
    notifyWebSafeHtml = serializers.BooleanField(
        required=False, help_text="messageNew's text.html is web-safe (sanitised, quoted thread "
                                  "history folded, made from the plain text when there is no "
                                  "HTML; text.webSafe: true); needs notifyText")
    notifyCalendarEvents = serializers.BooleanField(
        required=False, help_text="messageNew carries calendarEvents, parsed from the message's "
                                  "text/calendar and application/ics parts")
    inboxNewOnly = serializers.BooleanField(
        required=False, help_text="messageNew only for mail in the Inbox, on the default webhook "
                                  "and the accounts' own webhook URLs")
    serviceUrl = serializers.CharField(required=False, allow_blank=True, max_length=2048,
                                       help_text="This service's public URL (payload "
                                                 "serviceUrl)")
    serviceSecret = serializers.CharField(required=False, min_length=1, max_length=256,
                                          trim_whitespace=False,
                                          help_text="The key of X-EE-Wh-Signature "
                                                    "(write-only)")
    trackOpens = serializers.BooleanField(
        required=False, allow_null=True,
        help_text="Sends that say nothing of it put a tracking image in their HTML (trackOpen "
                  "events); null: unset, the send's trackingEnabled decides")
    trackClicks = serializers.BooleanField(
        required=False, allow_null=True,
        help_text="Sends that say nothing of it point their HTML's links at /redirect "
                  "(trackClick events); null: unset, the send's trackingEnabled decides")
    proxyUrl = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, max_length=2048, trim_whitespace=False,
        help_text="The proxy the IMAP and SMTP connections of accounts without a proxy of their "
                  "own go through while proxyEnabled (and verifyAccount without one): socks5://, "
                  "socks4://, socks:// (SOCKS5) or http:// (HTTP CONNECT) ('' or null = none). "
                  "A password in it is stored encrypted and read back as ******, which written "
                  "back keeps it (same proxy)")
    proxyEnabled = serializers.BooleanField(required=False, allow_null=True,
                                            help_text="Whether proxyUrl is used")
    authServer = serializers.CharField(
        required=False, allow_blank=True, max_length=2048, trim_whitespace=False,
        help_text="The URL mailboxes with `imap.useAuthServer` / `smtp.useAuthServer` get their "
                  "credentials from ('' = none). A user:password@ in it is sent as HTTP Basic; "
                  "the password is stored encrypted and read back as ******")

    def validate_webhooks(self, value: str) -> str:
        return validate_webhook_url(value) if value else ""

    def validate_proxyUrl(self, value):  # noqa: N802 - EmailEngine's field name
        """A proxy URL ``tunnels.parse`` reads; "" or null for none."""
        if value:
            try:
                tunnels.parse(value)
            except ValueError as exc:
                raise serializers.ValidationError(str(exc)) from None
        return value or ""

    def validate_webhookEvents(self, value):  # noqa: N802 - EmailEngine's field name
        return _validate_engine_events(value)

    def validate_webhooksCustomHeaders(self, value):  # noqa: N802 - EmailEngine's field name
        headers = {item["key"]: item["value"] for item in value}
        if len(headers) != len(value):
            raise serializers.ValidationError("A header is given twice")
        if any(name.lower().startswith("x-ee-wh-") for name in headers):
            raise serializers.ValidationError("X-EE-Wh-* headers are set by emailapi")
        return validate_headers(headers)

    def validate_notifyHeaders(self, value):  # noqa: N802 - EmailEngine's field name
        return [name.lower() for name in value]

    def validate_serviceUrl(self, value: str) -> str:  # noqa: N802 - EmailEngine's field name
        if not value:
            return ""
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise serializers.ValidationError("Must be an http(s) URL")
        return f"{parts.scheme}://{parts.netloc}"  # EmailEngine keeps the origin


# One flag per key, as EmailEngine's query has them.
SettingsQuerySerializer = type("SettingsQuerySerializer", (QuerySerializer,), {
    key: serializers.BooleanField(required=False, help_text=f"Include {key}")
    for key in (*engine_settings.KEYS, AUTH_SERVER, "eventTypes")})


class SettingsValuesSerializer(serializers.Serializer):
    webhooksEnabled = serializers.BooleanField(required=False)
    webhooks = serializers.CharField(required=False, allow_null=True,
                                     help_text="The URL, a password in it shown as ******")
    webhookEvents = serializers.ListField(child=serializers.CharField(), required=False)
    webhooksCustomHeaders = CustomHeaderSerializer(many=True, required=False)
    notifyText = serializers.BooleanField(required=False)
    notifyTextSize = serializers.IntegerField(required=False, allow_null=True)
    notifyHeaders = serializers.ListField(child=serializers.CharField(), required=False)
    notifyAttachments = serializers.BooleanField(required=False)
    notifyAttachmentSize = serializers.IntegerField(required=False, allow_null=True)
    notifyWebSafeHtml = serializers.BooleanField(required=False)
    notifyCalendarEvents = serializers.BooleanField(required=False)
    inboxNewOnly = serializers.BooleanField(required=False)
    serviceUrl = serializers.CharField(required=False, allow_null=True)
    serviceSecret = serializers.BooleanField(required=False, help_text="Whether one is set")
    trackOpens = serializers.BooleanField(required=False, allow_null=True,
                                          help_text="null: never set")
    trackClicks = serializers.BooleanField(required=False, allow_null=True,
                                           help_text="null: never set")
    proxyUrl = serializers.CharField(required=False, allow_null=True,
                                     help_text="The proxy URL, a password in it shown as ******")
    proxyEnabled = serializers.BooleanField(required=False)
    authServer = serializers.CharField(required=False, allow_null=True,
                                       help_text="The URL, a password in it shown as ******")
    eventTypes = serializers.ListField(child=serializers.CharField(), required=False)


class SettingsUpdatedSerializer(serializers.Serializer):
    updated = serializers.ListField(child=serializers.CharField())


class SettingsView(TenantScopedAPIView):
    """``GET/POST /v1/settings``."""

    @extend_schema(operation_id="getSettings", tags=TAGS, parameters=[SettingsQuerySerializer],
                   responses={200: SettingsValuesSerializer}, summary="Read settings",
                   description="The keys given as true query flags (all without any). "
                               "`serviceSecret` only says whether one is set; custom header "
                               "values, and the password of a `webhooks` or `proxyUrl` URL's "
                               "`user:password@`, show as `******`.")
    def get(self, request):
        query = self.validated(SettingsQuerySerializer, request.query_params)
        asked = [key for key, wanted in query.items() if wanted]
        keys = [key for key in asked if key not in ("eventTypes", AUTH_SERVER)]
        values = engine_settings.read(self.tenant, keys if asked else None) \
            if keys or not asked else {}
        if AUTH_SERVER in asked or not asked:
            values[AUTH_SERVER] = auth_server.shown_url(self.tenant)
        if "eventTypes" in asked:
            values["eventTypes"] = EVENT_TYPES
        return Response(values)

    @extend_schema(
        operation_id="setSettings", tags=TAGS, request=SettingsSerializer,
        responses={200: SettingsUpdatedSerializer}, summary="Change settings",
        description="EmailEngine's settings for the tenant's default webhook: `webhooks` (URL) "
                    "with `webhooksEnabled: true` makes a subscription with format "
                    "`emailengine` (listed in /v1/webhooks); `webhookEvents`, "
                    "`webhooksCustomHeaders` and `serviceSecret` (the X-EE-Wh-Signature key) "
                    "apply to it; `notifyText`, `notifyTextSize`, `notifyHeaders`, "
                    "`notifyAttachments`, `notifyAttachmentSize`, `notifyWebSafeHtml` and "
                    "`notifyCalendarEvents` shape its messageNew, and `inboxNewOnly` keeps it "
                    "(and the accounts' own webhook URLs) to mail in the Inbox; `serviceUrl` "
                    "is every emailengine payload's field (and where "
                    "a send's links point); `trackOpens` and `trackClicks` are what a send "
                    "that says nothing of them gets; `proxyUrl` with `proxyEnabled` is the "
                    "proxy of accounts without their own (changing it reconnects them).",
        examples=[OpenApiExample("Default webhook", request_only=True, value={
            "webhooksEnabled": True, "webhooks": "https://example.com/webhooks",
            "webhookEvents": ["messageNew"], "notifyText": True, "notifyTextSize": 65536})])
    def post(self, request):
        data = dict(self.validated(SettingsSerializer, request.data))
        url = data.pop(AUTH_SERVER, None)
        problem = url and auth_server.url_problem(self.tenant, url)
        if problem:
            raise serializers.ValidationError({AUTH_SERVER: [problem]})
        updated = list(engine_settings.update(self.tenant, data)) if data else []
        if url is not None:
            auth_server.set_url(self.tenant, url)
            updated.append(AUTH_SERVER)
        return Response({"updated": updated})
