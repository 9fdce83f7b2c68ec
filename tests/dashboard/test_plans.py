"""Trials and plans through the API and the admin: 402 for an expired trial, 403 for a suspended
tenant or a mailbox over the plan's limit, the plan's rate, and the operator's actions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import plans, token_cache
from accounts.models import EmailAccount, Tenant, User
from tests.base import account_payload

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_token_memory(settings):
    settings.EMAILAPI_TOKEN_CACHE_SECONDS = 0
    token_cache.clear()


def test_a_trial_past_its_end_gets_402_and_is_recorded_expired(alice):
    plans.start_trial(alice.tenant)
    assert alice.client.get("/v1/accounts").status_code == 200
    Tenant.objects.filter(pk=alice.tenant.pk).update(trial_ends_at=timezone.now())
    response = alice.client.post("/v1/account", account_payload(), format="json")
    assert response.status_code == 402
    assert response.json() == {"statusCode": 402, "error": "Payment Required",
                               "message": response.json()["message"], "code": "TrialExpired",
                               "emailapiCode": "TrialExpired"}
    assert not EmailAccount.objects.exists()
    assert Tenant.objects.get(pk=alice.tenant.pk).status == "expired"


def test_converting_restores_the_api_and_sets_the_plans_limits(alice):
    plans.expire(alice.tenant)
    assert alice.client.get("/v1/accounts").status_code == 402
    plans.convert(alice.tenant, "starter")
    assert alice.client.get("/v1/accounts").status_code == 200
    tenant = Tenant.objects.get(pk=alice.tenant.pk)
    assert (tenant.status, tenant.plan, tenant.max_mailboxes) == ("active", "starter", 10)


def test_a_suspended_tenant_gets_403_and_others_are_untouched(alice, bob):
    plans.suspend(alice.tenant, "Unpaid invoice")
    response = alice.client.get("/v1/accounts")
    assert response.status_code == 403
    assert response.json()["code"] == "TenantSuspended"
    assert bob.client.get("/v1/accounts").status_code == 200


def test_stopping_pauses_mailboxes_and_converting_resumes_them(alice):
    alice.client.post("/v1/account", account_payload("one"), format="json")
    alice.client.post("/v1/account", account_payload("own-pause"), format="json")
    alice.client.put("/v1/account/own-pause/pause", {}, format="json")
    plans.suspend(alice.tenant, "abuse")
    assert set(EmailAccount.objects.values_list("state", flat=True)) == {"paused"}
    plans.convert(alice.tenant, "team")
    states = dict(EmailAccount.objects.values_list("account_id", "state"))
    assert states == {"one": "init", "own-pause": "paused"}  # the user's own pause stays


def test_a_mailbox_over_the_plans_limit_is_403_plan_limit(alice):
    Tenant.objects.filter(pk=alice.tenant.pk).update(max_mailboxes=2)
    for name in ("a", "b"):
        assert alice.client.post("/v1/account", account_payload(name),
                                 format="json").status_code == 200
    response = alice.client.post("/v1/account", account_payload("c"), format="json")
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "PlanLimit"
    assert body["details"] == {"limit": 2, "count": 2}
    assert EmailAccount.objects.count() == 2


def test_trials_have_the_trial_limit(alice):
    plans.start_trial(alice.tenant)
    for index in range(plans.TRIAL.max_mailboxes):
        alice.client.post("/v1/account", account_payload(f"m{index}"), format="json")
    response = alice.client.post("/v1/account", account_payload("extra"), format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "PlanLimit"


def test_the_plans_rate_limit_applies_per_tenant(alice, bob, settings):
    settings.EMAILAPI_RATE_LIMIT = 0
    Tenant.objects.filter(pk=alice.tenant.pk).update(api_rate_limit=2)
    codes = [alice.client.get("/v1/accounts").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert all(bob.client.get("/v1/accounts").status_code == 200 for _ in range(3))


def test_operator_actions_in_the_admin(client, alice):
    operator = User.objects.create_superuser("op@emailapi.test", "x")
    client.force_login(operator)
    url = "/admin/accounts/tenant/"
    plans.expire(alice.tenant)
    client.post(url, {"action": "extend_trial", "_selected_action": [alice.tenant.pk]})
    tenant = Tenant.objects.get(pk=alice.tenant.pk)
    assert tenant.status == "trial"
    assert tenant.trial_ends_at > timezone.now() + timedelta(days=13)

    form = client.post(url, {"action": "suspend", "_selected_action": [alice.tenant.pk]})
    assert form.status_code == 200
    assert b"Suspend" in form.content
    assert Tenant.objects.get(pk=alice.tenant.pk).status == "trial"  # not until confirmed
    client.post(url, {"action": "suspend", "_selected_action": [alice.tenant.pk],
                      "apply": "1", "reason": "Chargeback"})
    tenant = Tenant.objects.get(pk=alice.tenant.pk)
    assert (tenant.status, tenant.suspended_reason) == ("suspended", "Chargeback")

    client.post(url, {"action": "convert_to_business", "_selected_action": [alice.tenant.pk]})
    tenant = Tenant.objects.get(pk=alice.tenant.pk)
    assert (tenant.status, tenant.plan, tenant.suspended_reason) == ("active", "business", "")
    assert client.get(url + "?q=Alice").status_code == 200
    assert client.get("/admin/accounts/emailaccount/?tenant__status=active").status_code == 200


def test_trial_days_left_counts_whole_days():
    tenant = Tenant(status="trial", trial_ends_at=timezone.now() + timedelta(days=3, hours=1))
    assert plans.trial_days_left(tenant) == 4
    tenant.trial_ends_at = timezone.now() - timedelta(hours=1)
    assert plans.trial_days_left(tenant) == 0
    assert plans.trial_days_left(Tenant(status="active")) is None


def test_operators_search_and_filter_webhook_deliveries_without_seeing_secrets(client, alice):
    from webhooks import delivery_state, events, sequencer, subscriptions

    hook, secret = subscriptions.create(alice.tenant, {
        "url": "https://hooks.example.com/in", "events": ["*"],
        "headers": {"Authorization": "Bearer hidden-value"}})
    events.record(alice.tenant, events.MESSAGE_NEW, "sales", {"uid": 1})
    sequencer.publish_pending()
    delivery_state.fan_out()
    client.force_login(User.objects.create_superuser("ops@emailapi.test", "x"))
    listing = client.get("/admin/webhooks/delivery/?q=sales&state__exact=pending")
    assert listing.status_code == 200
    assert b"messageNew" in listing.content
    assert b"hooks.example.com" in listing.content
    assert client.get("/admin/webhooks/delivery/?q=nothing-like-this").content.count(
        b"messageNew") == 0
    detail = client.get(f"/admin/webhooks/webhooksubscription/{hook.pk}/change/")
    assert detail.status_code == 200
    assert secret.encode() not in detail.content
    assert b"hidden-value" not in detail.content
