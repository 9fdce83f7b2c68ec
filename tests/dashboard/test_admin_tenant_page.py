"""The operators' tenant page (issue 18, item 14): the trial's end editable (through
``accounts.plans``: a past end stops the tenant, a future one runs it again), the list's
actions as buttons on the page, usage and a link to the tenant's mailboxes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts import plans
from accounts.models import EmailAccount, Tenant, User
from tests.base import account_payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator() -> Client:
    user = User.objects.create_superuser("operator@emailapi.test", "Correct-Horse-Battery-9")
    client = Client()
    client.force_login(user)
    return client


def change_form(operator, tenant) -> dict:
    page = operator.get(f"/admin/accounts/tenant/{tenant.pk}/change/")
    form = page.context["adminform"].form
    data = {name: form[name].value() for name in form.fields}
    data = {k: ("" if v is None else v) for k, v in data.items()}
    data.update({"memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0",
                 "memberships-MIN_NUM_FORMS": "0", "memberships-MAX_NUM_FORMS": "1000"})
    return data


def test_the_page_shows_usage_a_link_to_the_mailboxes_and_the_actions(operator, alice):
    plans.start_trial(alice.tenant)
    alice.client.post("/v1/account", account_payload("sales"), format="json")
    page = operator.get(f"/admin/accounts/tenant/{alice.tenant.pk}/change/").content.decode()
    link = f"/admin/accounts/emailaccount/?tenant__id__exact={alice.tenant.pk}"
    assert link in page
    mailboxes = operator.get(link)
    assert mailboxes.status_code == 200
    assert [a.account_id for a in mailboxes.context["cl"].result_list] == ["sales"]
    assert "1 mailboxes (limit 5)" in page
    assert "Convert to Team" in page
    assert "Extend the trial by 14 days" in page
    assert 'name="trial_ends_at_0"' in page  # editable while on a trial


def test_the_buttons_act_through_plans(operator, alice):
    plans.start_trial(alice.tenant)
    alice.client.post("/v1/account", account_payload("sales"), format="json")
    act = f"/admin/accounts/tenant/{alice.tenant.pk}/act/"
    operator.post(act + "suspend/", {"reason": "Unpaid invoice"})
    tenant = Tenant.objects.get(pk=alice.tenant.pk)
    assert (tenant.status, tenant.suspended_reason) == ("suspended", "Unpaid invoice")
    assert EmailAccount.objects.get(account_id="sales").state == "paused"
    operator.post(act + "convert_team/")
    tenant = Tenant.objects.get(pk=alice.tenant.pk)
    assert (tenant.status, tenant.plan, tenant.max_mailboxes) == ("active", "team", 100)
    assert EmailAccount.objects.get(account_id="sales").state == "init"
    assert operator.post(act + "convert_platinum/").status_code == 404
    assert operator.get(act + "extend_trial/").status_code == 302  # a GET changes nothing
    assert Tenant.objects.get(pk=alice.tenant.pk).status == "active"


def test_moving_the_trials_end_into_the_past_stops_it_and_back_resumes(operator, alice):
    plans.start_trial(alice.tenant)
    alice.client.post("/v1/account", account_payload("sales"), format="json")
    data = change_form(operator, alice.tenant)
    past = timezone.now() - timedelta(days=1)
    data.update({"trial_ends_at_0": past.strftime("%Y-%m-%d"), "trial_ends_at_1": "10:00:00"})
    response = operator.post(f"/admin/accounts/tenant/{alice.tenant.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Tenant.objects.get(pk=alice.tenant.pk).status == "expired"
    assert EmailAccount.objects.get(account_id="sales").state == "paused"
    data = change_form(operator, Tenant.objects.get(pk=alice.tenant.pk))
    future = timezone.now() + timedelta(days=30)
    data.update({"trial_ends_at_0": future.strftime("%Y-%m-%d"), "trial_ends_at_1": "10:00:00"})
    operator.post(f"/admin/accounts/tenant/{alice.tenant.pk}/change/", data)
    tenant = Tenant.objects.get(pk=alice.tenant.pk)
    assert tenant.status == "trial"
    assert tenant.trial_ends_at.date() == future.date()
    assert EmailAccount.objects.get(account_id="sales").state == "init"
