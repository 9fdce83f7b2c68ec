"""Routes of folder changes and uploads (``mailboxes.api.folder_views``)."""

from django.urls import path

from mailboxes.api import folder_views as views

urlpatterns = [
    path("account/<str:account>/mailbox", views.MailboxView.as_view(), name="mailbox"),
    path("account/<str:account>/message", views.UploadView.as_view(), name="message-upload"),
]
