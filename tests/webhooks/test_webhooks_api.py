"""Webhook subscription routes: create/list/get/update/delete, secrets shown once, bad input,
private-address refusal, tenant isolation, and the synchronous test request."""

from __future__ import annotations

import pytest

from webhooks import signing
from webhooks.models import Delivery, WebhookSubscription

pytestmark = pytest.mark.django_db


def create(client, **body):
    body = {"url": "http://127.0.0.1:9/hook", "events": ["*"], **body}
    return client.post("/v1/webhooks", body, format="json")


def test_it_creates_and_shows_the_secret_only_once(alice, allow_private_webhooks):
    response = create(alice.client, events=["messageNew", "messageNew"], accounts=["box"],
                      headers={"Authorization": "Bearer receiver-token-123"})
    assert response.status_code == 200, response.json()
    created = response.json()
    assert created["secret"].startswith("whsec_")
    assert len(created["secret"]) > 30
    assert created["events"] == ["messageNew"]
    assert created["accounts"] == ["box"]
    assert created["headerNames"] == ["Authorization"]
    assert created["enabled"] is True
    assert created["failingSince"] is None
    assert created["disabledReason"] is None

    listed = alice.client.get("/v1/webhooks").json()["webhooks"]
    fetched = alice.client.get(f"/v1/webhooks/{created['id']}").json()
    for shown in (listed[0], fetched):
        text = str(shown)
        assert "secret" not in shown
        assert created["secret"] not in text
        assert "receiver-token-123" not in text
    row = WebhookSubscription.objects.get(pk=created["id"])
    assert created["secret"] not in row.sealed_secret
    assert "receiver-token-123" not in row.sealed_headers


def test_rotation_returns_a_new_secret_that_signs_from_then_on(alice, allow_private_webhooks,
                                                                webhook_receiver):
    receiver = webhook_receiver()
    created = create(alice.client, url=receiver.url).json()
    rotated = alice.client.post(f"/v1/webhooks/{created['id']}/rotate-secret").json()
    assert rotated["id"] == created["id"]
    assert rotated["secret"] != created["secret"]
    result = alice.client.post(f"/v1/webhooks/{created['id']}/test").json()
    assert result["statusCode"] == 200
    assert "error" not in result
    [request] = receiver.requests
    timestamp = request.headers["X-EmailAPI-Timestamp"]
    signature = request.headers["X-EmailAPI-Signature"]
    assert signing.verify(rotated["secret"], timestamp, request.body, signature)
    assert not signing.verify(created["secret"], timestamp, request.body, signature)


def test_the_test_route_sends_a_signed_test_event_and_reports_it(alice, allow_private_webhooks,
                                                                 webhook_receiver):
    receiver = webhook_receiver()
    created = create(alice.client, url=receiver.url + "?x=1",
                     headers={"X-Receiver-Key": "k1"}).json()
    result = alice.client.post(f"/v1/webhooks/{created['id']}/test").json()
    assert result["statusCode"] == 200
    assert result["duration"] >= 0
    [request] = receiver.requests
    payload = request.payload
    assert request.path == "/hook?x=1"
    assert payload["event"] == "test"
    assert payload["data"]["webhook"] == created["id"]
    assert set(payload) >= {"id", "event", "account", "date", "data"}
    headers = request.headers
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"].startswith("emailapi/")
    assert headers["X-EmailAPI-Event"] == "test"
    assert headers["X-EmailAPI-Event-Id"] == payload["id"]
    assert headers["X-Receiver-Key"] == "k1"
    assert signing.verify(created["secret"], headers["X-EmailAPI-Timestamp"], request.body,
                          headers["X-EmailAPI-Signature"])

    receiver.fail_next(1, 503)
    failed = alice.client.post(f"/v1/webhooks/{created['id']}/test").json()
    assert failed["statusCode"] == 503
    assert failed["error"] == "HTTP 503"
    receiver.stop()
    refused = alice.client.post(f"/v1/webhooks/{created['id']}/test").json()
    assert refused["statusCode"] is None
    assert refused["error"]


def test_update_is_partial_and_re_enabling_clears_the_failure_streak(alice,
                                                                      allow_private_webhooks):
    created = create(alice.client, headers={"A": "1"}).json()
    row = WebhookSubscription.objects.get(pk=created["id"])
    from django.utils import timezone
    row.enabled, row.failing_since, row.disabled_reason = False, timezone.now(), "broken"
    row.save()
    assert alice.client.get(f"/v1/webhooks/{row.pk}").json()["disabledReason"] == "broken"
    updated = alice.client.put(f"/v1/webhooks/{row.pk}", {"events": ["messageDeleted"],
                                                          "enabled": True}, format="json")
    assert updated.status_code == 200, updated.json()
    body = updated.json()
    assert body["events"] == ["messageDeleted"]
    assert body["enabled"] is True
    assert body["failingSince"] is None
    assert body["disabledReason"] is None
    assert body["headerNames"] == ["A"]
    assert body["url"] == created["url"]
    cleared = alice.client.put(f"/v1/webhooks/{row.pk}", {"headers": {}, "accounts": None},
                               format="json").json()
    assert cleared["headerNames"] == []
    assert cleared["accounts"] == []


def test_delete_removes_the_subscription_and_its_deliveries(alice, allow_private_webhooks):
    from webhooks import events

    created = create(alice.client).json()
    event = events.record(alice.tenant, events.MESSAGE_NEW, "box")
    event.seq = 1
    event.save()
    Delivery.objects.create(subscription_id=created["id"], event=event, seq=1)
    response = alice.client.delete(f"/v1/webhooks/{created['id']}")
    assert response.json() == {"id": created["id"], "deleted": True}
    assert not Delivery.objects.exists()
    assert alice.client.get(f"/v1/webhooks/{created['id']}").status_code == 404


@pytest.mark.parametrize("body, field", [
    ({"url": "ftp://example.com/x"}, "url"),
    ({"url": "not a url"}, "url"),
    ({"url": "http://user:p%zz@example.com/"}, "url"),  # userinfo Basic cannot carry
    ({"events": ["messageNope"]}, "events"),
    ({"events": []}, "events"),
    ({"events": "messageNew"}, "events"),
    ({"headers": {"X-A": "one\r\nX-Injected: yes"}}, "headers"),
    ({"headers": {"Bad Name": "1"}}, "headers"),
    ({"headers": {"Host": "evil.example"}}, "headers"),
    ({"headers": {"X-EmailAPI-Signature": "forged"}}, "headers"),
    ({"enabled": "yes"}, "enabled"),
    ({"secret": "mine"}, "secret"),
])
def test_bad_input_is_a_400_and_stores_nothing(alice, allow_private_webhooks, body, field):
    response = create(alice.client, **body)
    assert response.status_code == 400, response.json()
    error = response.json()
    assert error["code"] == "InputValidationError"
    assert field in error["details"]
    assert not WebhookSubscription.objects.exists()


def test_bad_update_changes_nothing(alice, allow_private_webhooks):
    created = create(alice.client).json()
    response = alice.client.put(f"/v1/webhooks/{created['id']}", {"url": "gopher://x",
                                                                   "enabled": False},
                                format="json")
    assert response.status_code == 400
    assert alice.client.get(f"/v1/webhooks/{created['id']}").json()["enabled"] is True


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/hook", "http://localhost:8080/", "http://10.0.0.8/", "http://[::1]/",
    "http://169.254.169.254/latest/meta-data/", "http://100.64.0.1/", "http://0.0.0.0/",
    "http://224.0.0.1/", "https://192.168.1.10/",
    # 6to4 and Teredo addresses around loopback and the metadata address.
    "http://[2002:7f00:1::1]/", "http://[2002:a9fe:a9fe::]/",
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",
])
def test_internal_addresses_are_refused_unless_allowed(alice, settings, url):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    response = create(alice.client, url=url)
    assert response.status_code == 400, url
    assert "url" in response.json()["details"]
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    assert create(alice.client, url=url).status_code == 200


def test_another_tenant_sees_and_touches_nothing(alice, bob, allow_private_webhooks):
    created = create(alice.client).json()
    pk = created["id"]
    other = bob.client
    assert other.get("/v1/webhooks").json() == {"webhooks": []}
    for response in (
        other.get(f"/v1/webhooks/{pk}"),
        other.put(f"/v1/webhooks/{pk}", {"enabled": False}, format="json"),
        other.delete(f"/v1/webhooks/{pk}"),
        other.post(f"/v1/webhooks/{pk}/rotate-secret"),
        other.post(f"/v1/webhooks/{pk}/test"),
        other.get(f"/v1/webhooks/{pk}/deliveries"),
        other.post(f"/v1/webhooks/{pk}/deliveries/{pk}/retry"),
        alice.client.get("/v1/webhooks/not-a-uuid"),
    ):
        assert response.status_code == 404
        assert response.json()["emailapiCode"] == "WebhookNotFound"
    assert alice.client.get(f"/v1/webhooks/{pk}").json()["enabled"] is True
    assert WebhookSubscription.objects.get(pk=pk).sealed_secret
