"""Routes of the live stream (SSE; the WebSocket is in ``webhooks.api.stream_socket``) and the change
feed."""

from django.urls import path

from webhooks.api import stream_views as views

urlpatterns = [
    path("stream", views.StreamView.as_view(), name="event-stream"),
    path("changes", views.ChangesView.as_view(), name="changes"),
    path("account/<str:account>/changes", views.AccountChangesView.as_view(),
         name="account-changes"),
]
