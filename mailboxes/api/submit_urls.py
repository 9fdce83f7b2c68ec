"""Routes of sending: submit and the outbox."""

from django.urls import path

from mailboxes.api import submit_views as views

urlpatterns = [
    path("account/<str:account>/submit", views.SubmitView.as_view(), name="submit"),
    path("outbox", views.OutboxListView.as_view(), name="outbox-list"),
    path("outbox/<str:queueId>", views.OutboxEntryView.as_view(), name="outbox-entry"),
]
