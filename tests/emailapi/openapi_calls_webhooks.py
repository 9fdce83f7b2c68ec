"""Real calls of the webhook routes for ``test_openapi.test_real_responses_match_the_document``:
subscriptions (create, refuse, list, get, update, rotate, test, delete) and the delivery log
(list with a real delivery in it, retry, not found); EmailEngine's /v1/settings and webhook
routes (one with a failed delivery, so its tcount and webhookErrorFlag are set)."""

from __future__ import annotations

from django.test import override_settings
from django.utils import timezone

from webhooks import delivery_state, events, sequencer
from webhooks.models import Delivery, WebhookSubscription


def _loopback_allowed(call):
    """Receivers here are on loopback, which only ``WEBHOOKS_ALLOW_PRIVATE`` permits."""
    def run():
        with override_settings(WEBHOOKS_ALLOW_PRIVATE=True):
            return call()
    return run


def _failing(hook) -> bool:
    """Start the subscription's failure streak (its delivery failed): its route's
    ``webhookErrorFlag`` is an object, not null."""
    return bool(WebhookSubscription.objects.filter(pk=hook["id"])
                .update(failing_since=timezone.now()))


def _webhooks_calls(alice, bob):
    api = alice.client
    body = {"url": "http://127.0.0.1:9/hook", "events": ["*"], "headers": {"X-Key": "v"}}
    hook = _loopback_allowed(lambda: api.post("/v1/webhooks", body, format="json"))().json()
    doomed = _loopback_allowed(lambda: api.post("/v1/webhooks", body, format="json"))().json()
    events.record(alice.tenant, events.MESSAGE_NEW, "box", {"uid": 1})
    sequencer.publish_pending()
    delivery_state.fan_out()
    delivery = Delivery.objects.filter(subscription_id=hook["id"]).first()
    Delivery.objects.filter(pk=delivery.pk).update(state="failed", attempts=3,
                                                   last_status_code=500, last_error="HTTP 500")
    one = f"/v1/webhooks/{hook['id']}"
    return [
        ("/v1/webhooks", "post", _loopback_allowed(
            lambda: api.post("/v1/webhooks", body, format="json"))),
        ("/v1/webhooks", "post", lambda: api.post("/v1/webhooks", {"url": "ftp://x"},
                                                  format="json")),
        ("/v1/webhooks", "get", lambda: api.get("/v1/webhooks")),
        ("/v1/webhooks/{webhook}", "get", lambda: api.get(one)),
        ("/v1/webhooks/{webhook}", "get", lambda: bob.client.get(one)),
        ("/v1/webhooks/{webhook}", "put", lambda: api.put(one, {"events": ["messageNew"]},
                                                          format="json")),
        ("/v1/webhooks/{webhook}", "put", lambda: api.put(one, {"events": ["nope"]},
                                                          format="json")),
        ("/v1/webhooks/{webhook}/rotate-secret", "post",
         lambda: api.post(f"{one}/rotate-secret")),
        ("/v1/webhooks/{webhook}/test", "post", _loopback_allowed(lambda: api.post(f"{one}/test"))),
        ("/v1/webhooks/{webhook}/deliveries", "get", lambda: api.get(f"{one}/deliveries")),
        ("/v1/webhooks/{webhook}/deliveries", "get",
         lambda: api.get(f"{one}/deliveries?pageSize=0")),
        ("/v1/webhooks/{webhook}/deliveries/{delivery}/retry", "post",
         lambda: api.post(f"{one}/deliveries/{delivery.pk}/retry")),
        ("/v1/webhooks/{webhook}/deliveries/{delivery}/retry", "post",
         lambda: api.post(f"{one}/deliveries/{hook['id']}/retry")),
        ("/v1/webhooks/{webhook}", "delete", lambda: api.delete(f"/v1/webhooks/{doomed['id']}")),
        ("/v1/settings", "post", _loopback_allowed(lambda: api.post("/v1/settings", {
            "webhooks": "http://127.0.0.1:9/ee", "webhooksEnabled": True,
            "webhooksCustomHeaders": [{"key": "X-Key", "value": "v"}], "serviceSecret": "s",
            "notifyText": True, "notifyTextSize": 100, "serviceUrl": "https://ee.example.com"},
            format="json"))),
        ("/v1/settings", "post", lambda: api.post("/v1/settings", {"notifyTextSize": -1},
                                                  format="json")),
        ("/v1/settings", "post", lambda: api.post("/v1/settings", {"trackOpens": True,
                                                                   "trackClicks": None},
                                                  format="json")),
        ("/v1/settings", "get", lambda: api.get("/v1/settings?trackOpens=true&trackClicks=true")),
        ("/v1/settings", "get", lambda: api.get("/v1/settings")),
        ("/v1/settings", "get", lambda: api.get("/v1/settings?eventTypes=true&webhooks=true")),
        ("/v1/settings", "get", lambda: api.get("/v1/settings?nope=1")),
        ("/v1/webhookRoutes", "get", lambda: _failing(hook) and api.get("/v1/webhookRoutes")),
        ("/v1/webhookRoutes", "get", lambda: api.get("/v1/webhookRoutes?pageSize=0")),
        ("/v1/webhookRoutes/webhookRoute/{webhookRoute}", "get",
         lambda: api.get(f"/v1/webhookRoutes/webhookRoute/{hook['id']}")),
        ("/v1/webhookRoutes/webhookRoute/{webhookRoute}", "get",
         lambda: bob.client.get(f"/v1/webhookRoutes/webhookRoute/{hook['id']}")),
        ("/v1/settings/queue/{queue}", "get", lambda: api.get("/v1/settings/queue/notify")),
        ("/v1/settings/queue/{queue}", "get", lambda: api.get("/v1/settings/queue/submit")),
        ("/v1/settings/queue/{queue}", "get", lambda: api.get("/v1/settings/queue/nope")),
        ("/v1/settings/queue/{queue}", "put",
         lambda: api.put("/v1/settings/queue/notify", {"paused": False}, format="json")),
        ("/v1/settings/queue/{queue}", "put",
         lambda: api.put("/v1/settings/queue/submit", {"paused": True}, format="json")),
    ]
