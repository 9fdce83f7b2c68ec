"""OAuth2 apps of the tenant (the clients registered at Google, Microsoft, Yahoo or any
OAuth2 server): thin views over ``accounts.oauth2.registered_apps``. Apps are looked up inside the
caller's tenant only (another tenant's app is "not found", like a missing one)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from accounts.api import oauth2_serializers as s
from accounts.errors import OAuth2AppNotFound
from accounts.models import OAuth2App
from accounts.oauth2 import registered_apps
from emailapi.api.pagination import paginate
from emailapi.api.views import TenantScopedAPIView

APP_PARAM = OpenApiParameter("app", str, OpenApiParameter.PATH, description="OAuth2 app id")
TAGS = ["OAuth2 Applications"]


class OAuth2AppScopedView(TenantScopedAPIView):
    def get_app(self, app_id: str) -> OAuth2App:
        app = OAuth2App.objects.filter(tenant=self.tenant, app_id=app_id).first()
        if app is None:
            raise OAuth2AppNotFound(app_id)
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
        app = registered_apps.create_app(self.tenant, data)
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
        registered_apps.update_app(oauth2_app, data)
        return Response({"id": oauth2_app.app_id, "updated": True})

    @extend_schema(operation_id="deleteOAuth2App", tags=TAGS, parameters=[APP_PARAM],
                   responses={200: s.OAuth2AppResultSerializer}, summary="Delete an OAuth2 app",
                   description="Mailboxes that signed in with it keep working until their "
                               "access token expires, then need a new sign-in "
                               "(`authenticationError` with `reauthRequired`). `accounts` "
                               "counts them.")
    def delete(self, request, app):
        oauth2_app = self.get_app(app)
        using = registered_apps.mailboxes_using(oauth2_app)
        registered_apps.delete_app(oauth2_app)
        return Response({"id": app, "deleted": True, "accounts": using})
