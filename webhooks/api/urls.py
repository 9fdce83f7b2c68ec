from django.urls import path

from webhooks.api import views

urlpatterns = [
    path("webhooks", views.WebhookListView.as_view(), name="webhook-list"),
    path("webhooks/<str:webhook>", views.WebhookDetailView.as_view(), name="webhook-detail"),
    path("webhooks/<str:webhook>/rotate-secret", views.WebhookRotateSecretView.as_view(),
         name="webhook-rotate-secret"),
    path("webhooks/<str:webhook>/test", views.WebhookTestView.as_view(), name="webhook-test"),
    path("webhooks/<str:webhook>/deliveries", views.DeliveryListView.as_view(),
         name="webhook-deliveries"),
    path("webhooks/<str:webhook>/deliveries/<str:delivery>/retry",
         views.DeliveryRetryView.as_view(), name="webhook-delivery-retry"),
]
