"""Runs of a lane's deliveries (``delivery_state.claim_run``, ``delivery_state.advance``): read in seq
order up to the first that is not due, never split between two claimers, claimed one at a time
as each predecessor is recorded, and recorded only while the claim is still ours. Real
PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.webhooks.test_webhook_delivery import record_many, subscribe
from webhooks import delivery_state, sequencer
from webhooks.models import Delivery, WebhookSubscription
from webhooks.transport import Outcome

pytestmark = pytest.mark.django_db(transaction=True)

OK = Outcome(200, 3, None, b"ok")


@pytest.fixture
def lane(alice, allow_private_webhooks):
    """Five deliveries in lane (hook, "a") and two in lane (hook, "b")."""
    hook = subscribe(alice, "http://127.0.0.1:9/hook")
    record_many(alice.tenant, ["a"], 5)
    record_many(alice.tenant, ["b"], 2)
    sequencer.publish_pending()
    delivery_state.fan_out()
    return hook["id"]


def states(hook, account="a") -> list[tuple[str, int]]:
    return list(Delivery.objects.filter(subscription_id=hook, account_id=account)
                .order_by("seq").values_list("state", "attempts"))


def test_a_run_is_the_lanes_due_deliveries_in_seq_order_and_only_its_first_is_claimed(lane):
    run = delivery_state.claim_run(lane, "a", limit=3)
    assert [d.account_id for d in run] == ["a"] * 3
    assert [d.seq for d in run] == sorted(d.seq for d in run)
    assert [d.event.data["uid"] for d in run] == [1, 2, 3]
    # An attempt is counted when its request is about to go out, not for the whole run.
    assert states(lane) == [("delivering", 1)] + [("pending", 0)] * 4
    assert states(lane, "b") == [("pending", 0)] * 2  # another lane is untouched


def test_a_claimed_lane_gives_nothing_to_a_second_claimer(lane):
    assert len(delivery_state.claim_run(lane, "a", limit=2)) == 2
    assert delivery_state.claim_run(lane, "a") == []  # its head is held: nothing may overtake
    assert len(delivery_state.claim_run(lane, "b")) == 2


def test_a_run_stops_at_the_first_delivery_not_yet_due(lane):
    rows = list(Delivery.objects.filter(subscription_id=lane, account_id="a").order_by("seq"))
    Delivery.objects.filter(pk=rows[2].pk).update(
        next_attempt_at=timezone.now() + timedelta(minutes=5))
    assert [d.pk for d in delivery_state.claim_run(lane, "a")] == [rows[0].pk, rows[1].pk]
    Delivery.objects.filter(subscription_id=lane).update(state="pending", attempts=0)
    Delivery.objects.filter(pk=rows[0].pk).update(
        next_attempt_at=timezone.now() + timedelta(minutes=5))
    assert delivery_state.claim_run(lane, "a") == []


def test_a_lapsed_claim_is_claimed_again(lane):
    delivery_state.claim_run(lane, "a")
    Delivery.objects.filter(subscription_id=lane).update(
        lease_until=timezone.now() - timedelta(seconds=1))
    assert len(delivery_state.claim_run(lane, "a")) == 5
    assert states(lane) == [("delivering", 2)] + [("pending", 0)] * 4


def test_each_outcome_is_recorded_as_the_next_delivery_is_claimed(lane):
    run = delivery_state.claim_run(lane, "a")
    assert delivery_state.advance(run[0], OK, run[1]) is True
    assert states(lane) == [("delivered", 1), ("delivering", 1)] + [("pending", 0)] * 3
    assert (run[1].state, run[1].attempts) == ("delivering", 1)
    assert delivery_state.advance(run[1], OK) is True  # the end of the run: nothing claimed
    assert states(lane) == [("delivered", 1)] * 2 + [("pending", 0)] * 3
    delivered = Delivery.objects.get(pk=run[0].pk)
    assert (delivered.last_status_code, delivered.response_time_ms,
            delivered.last_response, delivered.lease_until) == (200, 3, "ok", None)
    # The rest of the run was never touched: the lane goes on from there.
    assert [d.pk for d in delivery_state.claim_run(lane, "a")] == [d.pk for d in run[2:]]


def test_an_advance_retried_after_its_answer_was_lost_finds_its_own_success(lane):
    run = delivery_state.claim_run(lane, "a")
    lease = delivery_state.lease_until(timezone.now())
    assert delivery_state.advance(run[0], OK, run[1], lease) is True
    run[1].state, run[1].attempts = "pending", 0  # as the caller knew it before the try
    assert delivery_state.advance(run[0], OK, run[1], lease) is True
    assert states(lane) == [("delivered", 1), ("delivering", 1)] + [("pending", 0)] * 3


def test_a_subscription_disabled_mid_run_gets_no_further_attempt(lane):
    run = delivery_state.claim_run(lane, "a")
    WebhookSubscription.objects.filter(pk=lane).update(enabled=False)
    assert delivery_state.advance(run[0], OK, run[1]) is False
    assert states(lane) == [("delivered", 1)] + [("pending", 0)] * 4


def test_a_claimer_whose_claim_lapsed_and_was_taken_over_changes_nothing(lane):
    stale = delivery_state.claim_run(lane, "a")
    Delivery.objects.filter(subscription_id=lane).update(
        lease_until=timezone.now() - timedelta(seconds=1))
    assert len(delivery_state.claim_run(lane, "a")) == 5
    assert delivery_state.advance(stale[0], OK, stale[1]) is False
    assert delivery_state.advance(stale[0], OK) is False
    assert delivery_state.record_failure(stale[0], Outcome(500, 3, "HTTP 500")) is False
    assert states(lane) == [("delivering", 2)] + [("pending", 0)] * 4


def test_a_success_after_failures_makes_the_subscriptions_waiting_retries_due(lane):
    later = timezone.now() + timedelta(hours=1)
    Delivery.objects.filter(subscription_id=lane).update(attempts=3, next_attempt_at=later)
    WebhookSubscription.objects.filter(pk=lane).update(failing_since=timezone.now())
    now = timezone.now()
    assert delivery_state.recovered(lane, now) == 7
    assert set(Delivery.objects.filter(subscription_id=lane)
               .values_list("next_attempt_at", "attempts")) == {(now, 3)}
    assert WebhookSubscription.objects.get(pk=lane).failing_since is None
    Delivery.objects.filter(subscription_id=lane).update(next_attempt_at=later)
    assert delivery_state.recovered(lane) == 0  # not failing: retries keep their schedule


def test_the_due_heads_are_each_lanes_lowest_open_delivery_once_due(lane, alice):
    first = {account: Delivery.objects.filter(subscription_id=lane, account_id=account)
             .order_by("seq").first() for account in ("a", "b")}
    heads, next_due = delivery_state.due_heads(timezone.now())
    assert {(head.account, head.delivery_id) for head in heads} == \
        {(account, row.pk) for account, row in first.items()}
    assert next_due is None
    # A delivered head gives way to the next; a claimed one is due only once its lease lapses.
    Delivery.objects.filter(pk=first["a"].pk).update(state="delivered")
    run = delivery_state.claim_run(lane, "b")
    now = timezone.now()
    heads, next_due = delivery_state.due_heads(now)
    second = Delivery.objects.filter(subscription_id=lane, account_id="a").order_by("seq")[1]
    assert [(head.account, head.delivery_id) for head in heads] == [("a", second.pk)]
    assert next_due == Delivery.objects.get(pk=run[0].pk).lease_until
    # A retry waiting holds its lane back, and tells when it falls due.
    later = now + timedelta(seconds=30)
    Delivery.objects.filter(pk=second.pk).update(next_attempt_at=later)
    assert delivery_state.due_heads(now) == ([], later)
    # Lanes of another subscription (events from its creation on) are heads too; a
    # disabled subscription has none.
    other = subscribe(alice, "http://127.0.0.1:9/other")
    record_many(alice.tenant, ["c"], 2)
    sequencer.publish_pending()
    delivery_state.fan_out()
    heads, _ = delivery_state.due_heads(timezone.now())
    assert {(str(head.subscription_id), head.account) for head in heads} == \
        {(other["id"], "c"), (lane, "c")}
    WebhookSubscription.objects.filter(pk=other["id"]).update(enabled=False)
    heads, _ = delivery_state.due_heads(timezone.now())
    assert {(str(head.subscription_id), head.account) for head in heads} == {(lane, "c")}


def test_an_answer_with_a_nul_byte_is_recorded_not_sent_again(lane):
    """PostgreSQL text cannot hold NUL: an answer carrying one must still be written down
    (else the delivery would be sent again and again), NUL shown as U+FFFD."""
    run = delivery_state.claim_run(lane, "a")
    odd = Outcome(200, 3, None, b"ok\x00done")
    assert delivery_state.advance(run[0], odd, run[1]) is True
    assert Delivery.objects.get(pk=run[0].pk).last_response == "ok\ufffddone"
    assert delivery_state.record_failure(run[1], Outcome(500, 3, "HTTP 500", b"\x00")) is True
    assert Delivery.objects.get(pk=run[1].pk).last_response == "\ufffd"
