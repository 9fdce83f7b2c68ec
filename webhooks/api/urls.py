"""Routes of the webhook and event API (under /v1, namespace ``webhooks``): subscriptions and
their delivery log, the live stream (SSE; the WebSocket is ``webhooks.api.stream_socket``) and the
change feed, EmailEngine's settings route, its queue counters and its webhook routes
(read-only). One view class per path."""

from django.urls import path

from emailapi.api import path_ids  # noqa: F401  (registers the <id:...> converter)
from webhooks.api import feed, queues, routes, settings, stream, subscriptions

app_name = "webhooks"

urlpatterns = [
    path("stream", stream.StreamView.as_view(), name="event-stream"),
    path("changes", feed.ChangesView.as_view(), name="changes"),
    path("account/<id:account>/changes", feed.AccountChangesView.as_view(),
         name="account-changes"),
    path("settings", settings.SettingsView.as_view(), name="settings"),
    path("settings/queue/<str:queue>", queues.QueueView.as_view(), name="settings-queue"),
    path("webhookRoutes", routes.WebhookRouteListView.as_view(), name="webhook-routes"),
    path("webhookRoutes/webhookRoute/<str:webhookRoute>", routes.WebhookRouteDetailView.as_view(),
         name="webhook-route"),
    path("webhooks", subscriptions.WebhookListView.as_view(), name="webhook-list"),
    path("webhooks/<str:webhook>", subscriptions.WebhookDetailView.as_view(),
         name="webhook-detail"),
    path("webhooks/<str:webhook>/rotate-secret",
         subscriptions.WebhookRotateSecretView.as_view(), name="webhook-rotate-secret"),
    path("webhooks/<str:webhook>/test", subscriptions.WebhookTestView.as_view(),
         name="webhook-test"),
    path("webhooks/<str:webhook>/deliveries", subscriptions.DeliveryListView.as_view(),
         name="webhook-deliveries"),
    path("webhooks/<str:webhook>/deliveries/<str:delivery>/retry",
         subscriptions.DeliveryRetryView.as_view(), name="webhook-delivery-retry"),
]
