"""EmailEngine's ``GET``/``PUT /v1/settings/queue/{queue}``: the tenant's unfinished webhook
deliveries (``notify``) and outbox entries (``submit``), counted from our tables."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from accounts.models import EmailAccount
from mailboxes import outbox
from mailboxes.models import OutboxEntry
from tests.compat.test_accounts import ee_account
from webhooks import delivery_state, events, sequencer
from webhooks.models import Delivery

pytestmark = [pytest.mark.django_db]

EMPTY = {"active": 0, "delayed": 0, "paused": 0, "waiting": 0}


def _queue(tenant, name: str) -> dict:
    response = tenant.client.get(f"/v1/settings/queue/{name}")
    assert response.status_code == 200, response.json()
    return response.json()


def _deliveries(tenant, count: int) -> list[Delivery]:
    """``count`` pending deliveries to a webhook of ``tenant`` (nothing dispatches them here)."""
    with override_settings(WEBHOOKS_ALLOW_PRIVATE=True):
        hook = tenant.client.post("/v1/webhooks", {"url": "http://127.0.0.1:9/hook",
                                                   "events": ["*"]}, format="json")
    assert hook.status_code == 200, hook.json()
    for uid in range(count):
        events.record(tenant.tenant, events.MESSAGE_NEW, "box", {"uid": uid})
    sequencer.publish_pending()
    delivery_state.fan_out()
    rows = list(Delivery.objects.filter(subscription_id=hook.json()["id"]).order_by("seq"))
    assert len(rows) == count
    return rows


def _entries(tenant, count: int) -> list[OutboxEntry]:
    """``count`` queued outbox entries of an account of ``tenant`` (no job sends them)."""
    assert tenant.client.post("/v1/account", ee_account(), format="json").status_code == 200
    account = EmailAccount.objects.get(tenant=tenant.tenant, account_id="example")
    return [outbox.submit(account, raw=b"Subject: x\r\n\r\nx\r\n", envelope={},
                          message_id=f"<{n}@example.com>", subject="x") for n in range(count)]


def test_the_notify_queue_counts_deliveries_by_what_they_wait_for(alice):
    now = timezone.now()
    first, second, third, fourth, _ = _deliveries(alice, 5)
    Delivery.objects.filter(pk=first.pk).update(state="delivering",
                                                lease_until=now + timedelta(minutes=1))
    Delivery.objects.filter(pk=second.pk).update(next_attempt_at=now + timedelta(minutes=5))
    Delivery.objects.filter(pk=third.pk).update(state="delivering",  # its dispatcher died
                                                lease_until=now - timedelta(minutes=1))
    Delivery.objects.filter(pk=fourth.pk).update(state="delivered")
    assert _queue(alice, "notify") == {
        "queue": "notify", "jobs": {"active": 1, "delayed": 1, "paused": 0, "waiting": 2},
        "paused": False}


def test_the_submit_queue_counts_outbox_entries_by_what_they_wait_for(alice):
    now = timezone.now()
    sending, later, _, sent = _entries(alice, 4)
    OutboxEntry.objects.filter(pk=sending.pk).update(state="sending",
                                                     lease_until=now + timedelta(minutes=1))
    OutboxEntry.objects.filter(pk=later.pk).update(next_attempt_at=now + timedelta(hours=1))
    OutboxEntry.objects.filter(pk=sent.pk).update(state="sent")
    assert _queue(alice, "submit")["jobs"] == {"active": 1, "delayed": 1, "paused": 0,
                                               "waiting": 1}


def test_a_tenant_sees_only_its_own_queues(alice, bob):
    _deliveries(alice, 2)
    _entries(alice, 2)
    assert _queue(bob, "notify")["jobs"] == EMPTY
    assert _queue(bob, "submit")["jobs"] == EMPTY


def test_the_documents_queue_is_always_empty(alice):
    assert _queue(alice, "documents") == {"queue": "documents", "jobs": EMPTY, "paused": False}


def test_an_unknown_queue_is_400_in_words(alice):
    for method in ("get", "put"):
        response = getattr(alice.client, method)("/v1/settings/queue/outbox", {}, format="json")
        assert response.status_code == 400
        assert response.json()["emailapiCode"] == "UnknownQueue"
        assert "notify" in response.json()["message"]


def test_pausing_is_501_and_pauses_nothing(alice):
    _deliveries(alice, 1)
    response = alice.client.put("/v1/settings/queue/notify", {"paused": True}, format="json")
    assert response.status_code == 501
    assert response.json()["code"] == "NotImplemented"
    assert "not supported" in response.json()["message"]
    assert _queue(alice, "notify")["paused"] is False


def test_resuming_answers_not_paused(alice):
    response = alice.client.put("/v1/settings/queue/submit", {"paused": False}, format="json")
    assert response.status_code == 200
    assert response.json() == {"queue": "submit", "paused": False}


def test_a_bad_pause_body_is_400(alice):
    for body in ({"paused": "maybe"}, {"pause": True}):
        response = alice.client.put("/v1/settings/queue/submit", body, format="json")
        assert response.status_code == 400, body


def test_a_read_token_reads_but_cannot_put(alice):
    reader = alice.client_with("read")
    assert reader.get("/v1/settings/queue/notify").status_code == 200
    response = reader.put("/v1/settings/queue/notify", {"paused": False}, format="json")
    assert response.status_code == 403
