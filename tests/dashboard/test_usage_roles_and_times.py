"""Issue 18 items 5, 6, 7 and 12 through the test client: an expired trial's real limits,
usage against the plan and a plan request; viewers see values, not dead forms; an invited
person's address counts as confirmed; one time format with its zone; "Deliveries" in the
admin."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.core import mail
from django.test import Client

from accounts import plans
from accounts.models import EmailAccount, Membership, User
from accounts.templatetags.dashboard import when
from tests.base import account_payload
from webhooks.models import Delivery

pytestmark = pytest.mark.django_db

PASSWORD = "Correct-Horse-Battery-9"


def member(tenant, role="owner", email=None, verified=True) -> Client:
    user = User.objects.create_user(email=email or f"{role}@alice.test", password=PASSWORD,
                                    email_verified_at=datetime.now(UTC) if verified else None)
    Membership.objects.create(tenant=tenant, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


def fact(page, testid: str) -> str:
    return re.search(rf'data-testid="{testid}">(.*?)</dd>', page.content.decode()).group(1)


def test_an_expired_trial_shows_the_trials_real_limits(alice):
    plans.start_trial(alice.tenant)
    plans.expire(alice.tenant)
    owner = member(alice.tenant)
    page = owner.get("/dashboard/settings")
    assert fact(page, "limit-mailboxes") == "up to 5"
    assert fact(page, "limit-rate") == "up to 600"
    assert "Trial ended" in page.content.decode()
    assert "no limit" not in page.content.decode()


def test_usage_counts_api_calls_mailboxes_and_events_against_the_plan(alice, settings):
    plans.start_trial(alice.tenant)
    owner = member(alice.tenant)
    for n in range(3):
        assert alice.client.post("/v1/account", account_payload(f"box{n}"),
                                 format="json").status_code == 200
    page = owner.get("/dashboard/settings")
    usage = page.context["usage"]
    assert (usage.mailboxes.used, usage.mailboxes.limit) == (3, 5)
    assert usage.api_calls_this_minute.limit == 600
    assert usage.api_calls_this_minute.used >= 3
    assert usage.api_calls_today >= 3
    assert usage.events_today >= 3  # accountAdded
    assert usage.trial_ends_at == alice.tenant.trial_ends_at
    assert "Request Team" in page.content.decode()


def test_add_is_disabled_at_the_mailbox_limit(alice):
    plans.start_trial(alice.tenant)
    owner = member(alice.tenant)
    for n in range(plans.TRIAL.max_mailboxes):
        alice.client.post("/v1/account", account_payload(f"box{n}"), format="json")
    assert EmailAccount.objects.count() == 5
    page = owner.get("/dashboard/mailboxes").content.decode()
    assert re.search(r'<button class="button" disabled[^>]*data-testid="add-mailbox"', page)
    assert "Limit reached" in page
    assert 'href="/dashboard/settings#plan"' in page


def test_a_plan_request_reaches_the_operators(alice, settings):
    settings.EMAILAPI_SALES_EMAIL = "sales@emailapi.test"
    owner = member(alice.tenant)
    mail.outbox.clear()
    response = owner.post("/dashboard/settings/plan-request", {"plan": "team"}, follow=True)
    [message] = mail.outbox
    assert message.to == ["sales@emailapi.test"]
    assert "Team" in message.subject
    assert "Request for the Team plan sent" in response.content.decode()
    owner.post("/dashboard/settings/plan-request", {"plan": "platinum"})
    assert len(mail.outbox) == 1
    viewer = member(alice.tenant, "viewer")
    assert viewer.post("/dashboard/settings/plan-request", {"plan": "team"}).status_code == 403


def test_a_viewer_sees_the_name_and_no_add_mailbox_form(alice):
    viewer = member(alice.tenant, "viewer")
    settings_page = viewer.get("/dashboard/settings").content.decode()
    assert 'name="name"' not in settings_page
    assert 'data-testid="org-name-readonly">Alice' in settings_page
    add = viewer.get("/dashboard/mailboxes/new").content.decode()
    assert 'data-testid="viewer-notice"' in add
    assert 'name="password"' not in add
    assert "Add mailbox" not in viewer.get("/dashboard/mailboxes").content.decode()


def test_an_invited_person_with_an_account_is_confirmed_by_accepting(alice, bob):
    owner = member(alice.tenant)
    carol = member(bob.tenant, email="carol@bob.test", verified=False)
    assert b"confirm your email" in carol.get("/dashboard").content
    mail.outbox.clear()
    owner.post("/dashboard/team", {"email": "carol@bob.test", "role": "viewer"})
    link = re.search(r"http://testserver(/invitations/\S+)", mail.outbox[0].body).group(1)
    carol.get(link)
    assert carol.post("/invitations/accept", {"accept": "1"}).status_code == 302
    assert User.objects.get(email="carol@bob.test").email_verified_at is not None
    assert b"confirm your email" not in carol.get("/dashboard").content


def test_one_time_format_with_its_zone():
    moment = datetime(2026, 12, 3, 7, 34, 21, tzinfo=UTC)
    assert when(moment) == '<time datetime="2026-12-03T07:34:21Z">2026-12-03 07:34:21 UTC</time>'
    assert when("2026-12-03T08:34:21+01:00") == when(moment)
    assert when(None) == ""


def test_the_admin_says_deliveries():
    assert Delivery._meta.verbose_name_plural == "deliveries"
