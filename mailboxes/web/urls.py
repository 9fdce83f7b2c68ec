"""The public pages of list messages (outside the token-protected /v1): a recipient's
unsubscribe link."""

from django.urls import path

from mailboxes.web import unsubscribe_pages

urlpatterns = [
    path("unsubscribe", unsubscribe_pages.unsubscribe_page, name="unsubscribe"),
    path("unsubscribe/address", unsubscribe_pages.change_subscription,
         name="unsubscribe-address"),
]
