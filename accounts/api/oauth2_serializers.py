"""Request and response shapes of the OAuth2 app, connect-link and autoconfig routes.

Names follow EmailEngine's (``clientId``, ``clientSecret``, ``redirectUrl``). The client secret
is write-only: no response serializer here has a field for it.
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

from accounts.api.serializers import PathField, TlsSerializer, validate_account_id, validate_web_url
from accounts.models import OAuth2App
from accounts.oauth2 import presets
from emailapi.api.pagination import PageQuerySerializer
from emailapi.api.serializers import QuerySerializer, StrictSerializer

HOST_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]_")


def validate_provider_url(value: str) -> str:
    """Endpoints that receive the client secret and codes: https unless allowed."""
    return validate_web_url(value, settings.EMAILAPI_OAUTH2_ALLOW_HTTP)


class MailServerSerializer(StrictSerializer):
    host = serializers.CharField(max_length=255)
    port = serializers.IntegerField(min_value=1, max_value=65535)
    secure = serializers.BooleanField(default=False, help_text="TLS from the start (993/465)")
    tls = TlsSerializer(required=False)

    def validate_host(self, value: str) -> str:
        if not set(value) <= HOST_CHARS:
            raise serializers.ValidationError("Not a valid host name")
        return value


@extend_schema_serializer(examples=[
    OpenApiExample("Gmail app", request_only=True, value={
        "name": "Our Google app", "provider": "gmail",
        "clientId": "1234.apps.googleusercontent.com", "clientSecret": "GOCSPX-...",
    }),
])
class OAuth2AppCreateSerializer(StrictSerializer):
    app = serializers.CharField(max_length=64, required=False, validators=[validate_account_id],
                                help_text="Your id for the app; absent generates one")
    name = serializers.CharField(max_length=256, required=False, allow_blank=True)
    provider = serializers.ChoiceField(choices=OAuth2App.Provider.choices)
    clientId = serializers.CharField(max_length=512)
    clientSecret = serializers.CharField(max_length=2048, write_only=True,
                                         help_text="Stored encrypted, never returned")
    authorizeUrl = serializers.CharField(
        max_length=1024, required=False, allow_blank=True, validators=[validate_provider_url],
        help_text="Required for generic; presets know theirs")
    tokenUrl = serializers.CharField(
        max_length=1024, required=False, allow_blank=True, validators=[validate_provider_url],
        help_text="Required for generic; presets know theirs")
    scopes = serializers.ListField(child=serializers.CharField(max_length=512), max_length=50,
                                   required=False, help_text="Empty: the provider's defaults")
    redirectUrl = serializers.CharField(
        max_length=1024, required=False, allow_blank=True, validators=[validate_web_url],
        help_text="The callback registered at the provider; it must lead to this service's "
                  "/connect/oauth2/callback. Empty: that URL on EMAILAPI_SERVICE_URL")
    imap = MailServerSerializer(required=False, allow_null=True,
                                help_text="Required for generic; presets know theirs")
    smtp = MailServerSerializer(required=False, allow_null=True)

    def validate(self, attrs):
        app: OAuth2App | None = self.context.get("app")
        merged = {"provider": getattr(app, "provider", None),
                  "authorizeUrl": getattr(app, "authorize_url", ""),
                  "tokenUrl": getattr(app, "token_url", ""), "imap": getattr(app, "imap", None),
                  **attrs}
        if merged["provider"] == presets.GENERIC:
            missing = [key for key in ("authorizeUrl", "tokenUrl", "imap") if not merged[key]]
            if missing:
                raise serializers.ValidationError(
                    {key: ["Required for the generic provider"] for key in missing})
        return attrs


class OAuth2AppUpdateSerializer(OAuth2AppCreateSerializer):
    """Partial: only the given fields change (``clientSecret`` too, if given)."""

    def get_fields(self):
        fields = super().get_fields()
        fields.pop("app")
        for field in fields.values():
            field.required = False
        return fields


class OAuth2AppSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="app_id")
    clientId = serializers.CharField(source="client_id")
    authorizeUrl = serializers.CharField(source="authorize_url")
    tokenUrl = serializers.CharField(source="token_url")
    redirectUrl = serializers.CharField(source="redirect_url")
    scopes = serializers.ListField(child=serializers.CharField())
    imap = MailServerSerializer(allow_null=True)
    smtp = MailServerSerializer(allow_null=True)
    created = serializers.DateTimeField(source="created_at")
    updated = serializers.DateTimeField(source="updated_at")

    class Meta:
        model = OAuth2App
        fields = ["id", "name", "provider", "clientId", "authorizeUrl", "tokenUrl", "scopes",
                  "redirectUrl", "imap", "smtp", "created", "updated"]


class OAuth2AppListSerializer(serializers.Serializer):
    apps = OAuth2AppSerializer(many=True)
    total = serializers.IntegerField()
    page = serializers.IntegerField()
    pages = serializers.IntegerField()


class OAuth2AppResultSerializer(serializers.Serializer):
    id = serializers.CharField()
    created = serializers.BooleanField(required=False)
    updated = serializers.BooleanField(required=False)
    deleted = serializers.BooleanField(required=False)
    accounts = serializers.IntegerField(required=False,
                                        help_text="Mailboxes that signed in with the app")


class OAuth2AppListQuerySerializer(PageQuerySerializer):
    pass


@extend_schema_serializer(examples=[
    OpenApiExample("Gmail sign-in", request_only=True, value={
        "account": "alice", "name": "Alice", "expectedEmail": "alice@example.com",
        "redirectUrl": "https://app.example.com/mailbox-connected", "type": "gmail",
    }),
])
class AuthenticationFormSerializer(StrictSerializer):
    account = serializers.CharField(
        max_length=256, required=False, allow_null=True, validators=[validate_account_id],
        help_text="Account id to create, or to reconnect if it exists; absent generates one")
    name = serializers.CharField(max_length=256, required=False, allow_blank=True)
    email = serializers.EmailField(max_length=320, required=False, allow_blank=True)
    expectedEmail = serializers.EmailField(
        max_length=320, required=False, help_text="Refuse a sign-in as any other address")
    redirectUrl = serializers.CharField(max_length=2048, validators=[validate_web_url],
                                        help_text="Where the user lands afterwards, with "
                                                  "?account=<id>&state=new|existing")
    type = serializers.CharField(
        max_length=64, required=False,
        help_text="`imap` (password form), a provider (`gmail`, `outlook`, `yahoo`: your app "
                  "of that provider) or an OAuth2 app id; absent (as EmailEngine), the user "
                  "chooses: the password form and a sign-in button for each of your apps")
    # EmailEngine's account settings a link carries, saved with the account it makes.
    path = PathField(required=False, allow_null=True,
                     help_text='The account\'s `path` (folders to watch: "*" or a list), as '
                               "`POST /v1/account` takes it")
    notifyFrom = serializers.DateTimeField(
        required=False, allow_null=True,
        help_text="The account's `notifyFrom`: no messageNew for messages from before it")
    subconnections = serializers.ListField(
        child=serializers.CharField(max_length=1024), max_length=100, required=False,
        help_text="The account's `subconnections` (accepted and echoed)")

    # The fields above that are the account's settings (``connect.sealed_settings``).
    ACCOUNT_SETTINGS = ("path", "notifyFrom", "subconnections")


class AuthenticationFormResultSerializer(serializers.Serializer):
    url = serializers.CharField(help_text="Single-use; valid for EMAILAPI_CONNECT_LINK_TTL s")


class AutoconfigQuerySerializer(QuerySerializer):
    email = serializers.EmailField(max_length=320)


class DiscoveredAuthSerializer(serializers.Serializer):
    user = serializers.CharField(help_text="The user name to log in with: the address")


class DiscoveredServerSerializer(serializers.Serializer):
    host = serializers.CharField()
    port = serializers.IntegerField()
    secure = serializers.BooleanField()
    auth = DiscoveredAuthSerializer(help_text="EmailEngine's")


class AppPasswordSerializer(serializers.Serializer):
    required = serializers.BooleanField(
        help_text="True: the provider refuses the account's own password here; false: only "
                  "an account with two-factor sign-in needs one")
    provider = serializers.CharField(help_text="The provider's name, for people")
    instructions = serializers.URLField(help_text="The provider's page on making one")


class AutoconfigSerializer(serializers.Serializer):
    email = serializers.CharField()
    provider = serializers.CharField(allow_null=True)
    source = serializers.ChoiceField(choices=["builtin", "mx"], allow_null=True,
                                     help_text="The provider table, or the domain's MX hosts")
    _source = serializers.CharField(allow_null=True,
                                    help_text="EmailEngine's name for `source`, the same value")
    oauth2 = serializers.CharField(allow_null=True,
                                   help_text="OAuth2 provider to use as connect link `type`")
    imap = DiscoveredServerSerializer(allow_null=True)
    smtp = DiscoveredServerSerializer(allow_null=True)
    appPassword = AppPasswordSerializer(
        allow_null=True, help_text="EmailEngine's: whether the provider wants an app password "
                                   "for IMAP/SMTP and where to make one; null when not")
