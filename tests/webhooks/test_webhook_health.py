"""Webhook health on the dashboard (issue 18, items 4, 5 and 11): a refused connection named as
one, a failing endpoint shown failing, the last day's failure rate and next attempt, "retry
now", the body sent, secret rotation, custom headers by name (and removing them), unknown
account ids; and a stopped tenant's webhooks refused by the services themselves."""

from __future__ import annotations

import itertools
import json
import ssl
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from accounts import plans
from accounts.errors import TenantSuspended, TrialExpired
from accounts.models import Membership, User
from emailapi.lib import http, http_wire
from tests.base import account_payload
from tests.servers.net import find_free_port
from webhooks import delivery_state, events, health, signed_request, subscriptions, transport
from webhooks.models import Delivery, WebhookSubscription

pytestmark = pytest.mark.django_db


def owner_of(client, tenant) -> User:
    user = User.objects.create_user(email="owner@hooks.test", password="x" * 12,
                                    email_verified_at=datetime.now(UTC))
    Membership.objects.create(tenant=tenant, user=user, role="owner")
    client.force_login(user)
    return user


def refused_url() -> str:
    return f"http://127.0.0.1:{find_free_port()}/hook"


SEQ = itertools.count(1)


def delivery(subscription, state="pending", attempts=0, account="box", **fields):
    seq = next(SEQ)
    event = events.record(subscription.tenant, events.MESSAGE_NEW, account,
                          {"id": f"m{seq}", "subject": "Hello"}, path="INBOX")
    return Delivery.objects.create(subscription=subscription, event=event, seq=seq,
                                   account_id=account, state=state, attempts=attempts, **fields)


def test_a_refused_connection_is_not_called_a_timeout():
    refused = http_wire.ConnectFailed(timed_out=False)
    assert http.describe(refused) == "Connection refused or unreachable"
    assert http.describe(http_wire.ConnectFailed(timed_out=True)) == "Timed out connecting"
    # A timeout is an OSError, and a TLS error both: each still reads as what it is.
    assert http.describe(TimeoutError()) == "Timed out waiting for the answer"
    assert http.describe(ssl.SSLError(1, "x")).startswith("TLS error")


def test_a_real_refused_connection_reads_refused():
    outcome = transport.post(refused_url(), b"{}", {}, timeout=5, allow_private=True)
    assert outcome.status_code is None
    assert outcome.error == "Connection refused or unreachable"


def test_health_counts_the_last_day_and_names_the_next_attempt(alice):
    subscription, _ = subscriptions.create(alice.tenant, {"url": refused_url(), "events": ["*"]})
    soon = timezone.now() + timedelta(minutes=3)
    delivery(subscription, "delivered", 1)
    delivery(subscription, "delivered", 1)
    delivery(subscription, "failed", 6)
    delivery(subscription, "pending", 2, next_attempt_at=soon)
    delivery(subscription, "pending", 0)  # waits behind the lane's head
    old = delivery(subscription, "failed", 6)
    Delivery.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    found = health.health_of(subscription)
    assert (found.delivered, found.failed, found.retrying, found.waiting) == (2, 1, 1, 1)
    assert found.failure_rate == 50
    assert found.next_attempt_at == soon
    assert found.status == "healthy"
    WebhookSubscription.objects.filter(pk=subscription.pk).update(failing_since=timezone.now())
    assert health.health_of(WebhookSubscription.objects.get(pk=subscription.pk)).status == \
        "failing"


def test_account_ids_that_name_no_mailbox_are_found(alice):
    alice.client.post("/v1/account", account_payload("sales"), format="json")
    subscription, _ = subscriptions.create(alice.tenant, {
        "url": refused_url(), "events": ["*"], "accounts": ["sales", "sales-typo"]})
    assert health.unknown_accounts(subscription) == ["sales-typo"]


def test_the_pages_show_a_failing_endpoint_its_health_and_the_body_sent(client, alice):
    owner_of(client, alice.tenant)
    subscription, _ = subscriptions.create(alice.tenant, {
        "url": refused_url(), "events": ["*"], "accounts": ["nobody"],
        "headers": {"Authorization": "Bearer secret-token", "X-Team": "ops"}})
    row = delivery(subscription, "pending", 1, account="nobody",
                   last_error="Connection refused or unreachable")
    WebhookSubscription.objects.filter(pk=subscription.pk).update(failing_since=timezone.now())
    listing = client.get("/dashboard/webhooks").content.decode()
    assert 'data-testid="webhook-status">failing<' in listing
    page = client.get(f"/dashboard/webhooks/{subscription.pk}").content.decode()
    assert 'data-testid="webhook-status">failing<' in page
    assert "Connection refused or unreachable" in page
    assert "Authorization, X-Team" in page
    assert "secret-token" not in page
    assert 'data-testid="unknown-accounts"' in page
    body = json.dumps({"id": str(row.event_id)}, indent=2)[2:-2]  # "id": "..."
    assert body.replace('"', "&quot;") in page
    assert "Retry now" in page


def test_retry_now_moves_a_pending_delivery_to_now_keeping_its_attempts(client, alice):
    owner_of(client, alice.tenant)
    subscription, _ = subscriptions.create(alice.tenant, {"url": refused_url(), "events": ["*"]})
    row = delivery(subscription, "pending", 2, next_attempt_at=timezone.now() + timedelta(hours=1))
    client.post(f"/dashboard/webhooks/{subscription.pk}/deliveries/{row.pk}/retry")
    row.refresh_from_db()
    assert row.next_attempt_at <= timezone.now()
    assert row.attempts == 2
    assert row.state == "pending"
    done = delivery(subscription, "delivered", 1)
    assert delivery_state.retry_now(done) is False


def test_rotating_the_secret_shows_the_new_one_once(client, alice):
    owner_of(client, alice.tenant)
    subscription, old = subscriptions.create(alice.tenant, {"url": refused_url(), "events": ["*"]})
    response = client.post(f"/dashboard/webhooks/{subscription.pk}/rotate-secret", follow=True)
    new = subscriptions.secret_of(WebhookSubscription.objects.get(pk=subscription.pk))
    assert new != old
    assert new in response.content.decode()
    assert new not in client.get(f"/dashboard/webhooks/{subscription.pk}").content.decode()


def test_custom_headers_can_be_removed_by_name(client, alice):
    owner_of(client, alice.tenant)
    subscription, _ = subscriptions.create(alice.tenant, {
        "url": refused_url(), "events": ["*"],
        "headers": {"Authorization": "Bearer x", "X-Team": "ops"}})
    client.post(f"/dashboard/webhooks/{subscription.pk}/remove-headers",
                {"header": ["authorization"]})
    kept = subscriptions.headers_of(WebhookSubscription.objects.get(pk=subscription.pk))
    assert kept == {"X-Team": "ops"}


@pytest.mark.parametrize("stop, error", [
    (lambda tenant: plans.expire(tenant), TrialExpired),
    (lambda tenant: plans.suspend(tenant, "Unpaid"), TenantSuspended)])
def test_a_stopped_tenant_cannot_create_or_test_webhooks(client, alice, stop, error):
    owner_of(client, alice.tenant)
    subscription, _ = subscriptions.create(alice.tenant, {"url": refused_url(), "events": ["*"]})
    stop(alice.tenant)
    with pytest.raises(error):
        subscriptions.create(alice.tenant, {"url": refused_url(), "events": ["*"]})
    with pytest.raises(error):
        signed_request.send_test(WebhookSubscription.objects.get(pk=subscription.pk))
    page = client.post("/dashboard/webhooks", {"url": "https://example.com/hook", "events": "*",
                                               "enabled": "on"})
    assert page.status_code == 400
    assert b'data-testid="webhooks-stopped"' in page.content  # no form, the reason instead
    assert WebhookSubscription.objects.count() == 1
    tested = client.post(f"/dashboard/webhooks/{subscription.pk}/test", follow=True)
    assert error.message in tested.content.decode()
    assert "Send a test event" not in tested.content.decode()
