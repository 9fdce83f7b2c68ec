"""Operators' view of webhooks: subscriptions and their deliveries, searchable and filtered.

Read-only: secrets and headers stay sealed (never shown), and delivery state changes only
through ``webhooks.delivery_state`` (the API's retry route), never by editing a row here.
"""

from __future__ import annotations

from django.contrib import admin

from webhooks.models import Delivery, WebhookSubscription


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(ReadOnlyAdmin):
    list_display = ("url", "tenant", "enabled", "failing_since", "disabled_reason", "created_at")
    list_filter = ("enabled", ("failing_since", admin.EmptyFieldListFilter))
    search_fields = ("url", "tenant__name", "tenant__slug")
    exclude = ("sealed_headers", "sealed_secret", "sealed_url_password")
    list_select_related = ("tenant",)


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ("event_name", "account_id", "subscription", "state", "attempts",
                    "last_status_code", "last_error", "response_time_ms", "next_attempt_at",
                    "updated_at")
    list_filter = ("state", "last_status_code")
    search_fields = ("account_id", "subscription__url", "subscription__tenant__name",
                     "event__event", "last_error")
    list_select_related = ("event", "subscription", "subscription__tenant")
    date_hierarchy = "created_at"

    @admin.display(description="event", ordering="event__event")
    def event_name(self, delivery: Delivery) -> str:
        return delivery.event.event
