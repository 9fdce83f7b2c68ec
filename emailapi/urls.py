"""URL map: the JSON API under /v1, its OpenAPI document and docs, health, and the admin."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import TemplateView
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView

from emailapi import handlers
from emailapi.api.metrics_view import MetricsView
from emailapi.health import health

# The mailbox routes first: listings and messages are most of the traffic, and every include
# tried before the one that matches costs its whole list of patterns (Django records each as
# "tried"). No path of one include can match a pattern of another, so the order decides
# nothing else.
api_v1 = [
    path("", include("mailboxes.api.urls")),  # namespace "mailboxes"
    path("", include("accounts.api.urls")),  # namespace "accounts"
    path("", include("webhooks.api.urls")),  # namespace "webhooks"
    path("openapi.json", SpectacularJSONAPIView.as_view(
        authentication_classes=[], permission_classes=[], throttle_classes=[],
    ), name="openapi"),
]

urlpatterns = [
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
    path("v1/", include(api_v1)),
    path("", include("accounts.oauth2.urls")),  # hosted connect pages
    path("", include("mailboxes.web.urls")),  # unsubscribe page, tracking image and redirect
    # EmailEngine serves its document here: clients and tools pointed at it keep working.
    path("swagger.json", SpectacularJSONAPIView.as_view(
        authentication_classes=[], permission_classes=[], throttle_classes=[],
    ), name="swagger-json"),
    path("docs", SpectacularSwaggerView.as_view(
        url_name="openapi", authentication_classes=[], permission_classes=[]), name="docs"),
    path("health", health, name="health"),
    path("metrics", MetricsView.as_view(), name="metrics"),
    path("admin/", admin.site.urls),
    path("", include("accounts.web.urls")),  # the dashboard: /signup, /login, /dashboard...
]

handler404 = handlers.not_found
handler500 = handlers.server_error
handler400 = handlers.bad_request
handler403 = handlers.forbidden
