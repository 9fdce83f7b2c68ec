"""The public pages of sent messages (outside the token-protected /v1): a list message's
unsubscribe link, and a tracked message's image and redirect links."""

from django.urls import path

from mailboxes.web import tracking_pages, unsubscribe_pages

urlpatterns = [
    path("unsubscribe", unsubscribe_pages.unsubscribe_page, name="unsubscribe"),
    path("unsubscribe/address", unsubscribe_pages.change_subscription,
         name="unsubscribe-address"),
    path("open.gif", tracking_pages.open_gif, name="track-open"),
    path("redirect", tracking_pages.redirect, name="track-click"),
]
