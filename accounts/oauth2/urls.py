"""The hosted connect pages (under /connect, outside the token-protected /v1)."""

from django.urls import path

from accounts.oauth2 import pages

urlpatterns = [
    path("connect", pages.connect_page, name="connect"),
    path("connect/autoconfig", pages.connect_autoconfig, name="connect-autoconfig"),
    path("connect/done", pages.connect_done, name="connect-done"),
    path("connect/oauth2/start", pages.start_oauth2, name="connect-oauth2-start"),
    path("connect/oauth2/callback", pages.oauth2_callback, name="connect-oauth2-callback"),
]
