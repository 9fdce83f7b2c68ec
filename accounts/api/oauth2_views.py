"""OAuth2 apps, hosted connect links and settings discovery: thin views over
``accounts.oauth2``. Apps are looked up inside the caller's tenant only (another tenant's
app is "not found", like a missing one)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from accounts.api import oauth2_serializers as s
from accounts.models import OAuth2App
from accounts.oauth2 import apps, connect, discovery
from emailapi.api.errors import ApiError, NotFoundError
from emailapi.api.pagination import paginate
from emailapi.api.views import TenantScopedAPIView

APP_PARAM = OpenApiParameter("app", str, OpenApiParameter.PATH, description="OAuth2 app id")
TAGS = ["OAuth2 Applications"]


class OAuth2AppScopedView(TenantScopedAPIView):
    def get_app(self, app_id: str) -> OAuth2App:
        app = OAuth2App.objects.filter(tenant=self.tenant, app_id=app_id).first()
        if app is None:
            raise NotFoundError(f"OAuth2 app {app_id!r} not found", "OAuth2AppNotFound")
        return app


class OAuth2AppListView(OAuth2AppScopedView):
    """``GET /v1/oauth2`` (list) and ``POST /v1/oauth2`` (register an app)."""

    @extend_schema(operation_id="listOAuth2Apps", tags=TAGS,
                   parameters=[s.OAuth2AppListQuerySerializer],
                   responses={200: s.OAuth2AppListSerializer}, summary="List OAuth2 apps",
                   description="Your tenant's OAuth2 apps, oldest first; never the secret.")
    def get(self, request):
        query = self.validated(s.OAuth2AppListQuerySerializer, request.query_params)
        items, counters = paginate(OAuth2App.objects.filter(tenant=self.tenant),
                                   query["page"], query["pageSize"])
        return Response({"apps": s.OAuth2AppSerializer(items, many=True).data, **counters})

    @extend_schema(operation_id="createOAuth2App", tags=TAGS,
                   request=s.OAuth2AppCreateSerializer,
                   responses={200: s.OAuth2AppResultSerializer}, summary="Register an OAuth2 app",
                   description="The client registered at Google (`gmail`), Microsoft "
                               "(`outlook`), Yahoo or any OAuth2 server (`generic`, with its "
                               "URLs and mail servers). The secret is stored encrypted. 409 if "
                               "the id is taken.")
    def post(self, request):
        data = self.validated(s.OAuth2AppCreateSerializer, request.data)
        app = apps.create_app(self.tenant, data)
        return Response({"id": app.app_id, "created": True})


class OAuth2AppDetailView(OAuth2AppScopedView):
    """``GET/PUT/DELETE /v1/oauth2/{app}``."""

    @extend_schema(operation_id="getOAuth2App", tags=TAGS, parameters=[APP_PARAM],
                   responses={200: s.OAuth2AppSerializer}, summary="One OAuth2 app",
                   description="Its settings, never the client secret.")
    def get(self, request, app):
        return Response(s.OAuth2AppSerializer(self.get_app(app)).data)

    @extend_schema(operation_id="updateOAuth2App", tags=TAGS, parameters=[APP_PARAM],
                   request=s.OAuth2AppUpdateSerializer,
                   responses={200: s.OAuth2AppResultSerializer},
                   summary="Update an OAuth2 app (partial)",
                   description="Only the given fields change; a new `clientSecret` is used "
                               "from the next sign-in or token refresh.")
    def put(self, request, app):
        oauth2_app = self.get_app(app)
        data = self.validated(s.OAuth2AppUpdateSerializer, request.data,
                              context={"app": oauth2_app})
        apps.update_app(oauth2_app, data)
        return Response({"id": oauth2_app.app_id, "updated": True})

    @extend_schema(operation_id="deleteOAuth2App", tags=TAGS, parameters=[APP_PARAM],
                   responses={200: s.OAuth2AppResultSerializer}, summary="Delete an OAuth2 app",
                   description="Mailboxes that signed in with it keep working until their "
                               "access token expires, then need a new sign-in "
                               "(`authenticationError` with `reauthRequired`). `accounts` "
                               "counts them.")
    def delete(self, request, app):
        oauth2_app = self.get_app(app)
        using = apps.mailboxes_using(oauth2_app)
        apps.delete_app(oauth2_app)
        return Response({"id": app, "deleted": True, "accounts": using})


class AuthenticationFormView(TenantScopedAPIView):
    """``POST /v1/authentication/form``: a hosted connect link for an end user."""

    @extend_schema(operation_id="createAuthenticationForm", tags=["Account"],
                   request=s.AuthenticationFormSerializer,
                   responses={200: s.AuthenticationFormResultSerializer},
                   summary="Make a hosted connect link",
                   description="A signed, single-use URL to a page where your user signs in "
                               "(OAuth2 with your app of that provider, or an IMAP password "
                               "form tested before saving). On success the mailbox is "
                               "registered (`accountAdded`) or, if `account` exists, "
                               "reconnected, and the browser goes to `redirectUrl` with "
                               "`account` and `state` (`new`/`existing`). Valid for "
                               "EMAILAPI_CONNECT_LINK_TTL seconds (default 3600).")
    def post(self, request):
        data = self.validated(s.AuthenticationFormSerializer, request.data)
        if data["type"] != connect.IMAP and apps.find_app(self.tenant.pk, data["type"]) is None:
            raise ApiError(f"No OAuth2 app {data['type']!r} in your tenant: register one with "
                           f"POST /v1/oauth2", "OAuth2AppNotFound", 400)
        base = request.build_absolute_uri("/")
        return Response({"url": connect.make_link(self.tenant, data, base)})


class AutoconfigView(TenantScopedAPIView):
    """``GET /v1/autoconfig?email=``: suggested IMAP/SMTP settings."""

    # The MX lookup; tests replace it so no DNS query leaves the machine.
    mx_lookup = staticmethod(discovery.dns_mx_lookup)

    @extend_schema(operation_id="discoverSettings", tags=["Account"],
                   parameters=[s.AutoconfigQuerySerializer],
                   responses={200: s.AutoconfigSerializer}, summary="Discover server settings",
                   description="IMAP/SMTP settings for an address from the built-in table of "
                               "common providers, else from its domain's MX hosts (Google "
                               "Workspace, Microsoft 365, ...). `oauth2` names the provider "
                               "whose sign-in such a mailbox needs. Nulls when unknown.")
    def get(self, request):
        email = self.validated(s.AutoconfigQuerySerializer, request.query_params)["email"]
        found = discovery.discover(email, mx_lookup=self.mx_lookup) or {}
        return Response({
            "email": email, "provider": found.get("provider"), "source": found.get("source"),
            "oauth2": found.get("oauth2"), "imap": found.get("imap"), "smtp": found.get("smtp"),
        })

