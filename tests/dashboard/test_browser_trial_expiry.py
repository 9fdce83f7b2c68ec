"""An expired trial in a real browser and over the real API: 402, a clear banner, mailboxes
paused by the worker with nothing deleted; an operator converts the tenant in the Django admin
and everything resumes."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts import services
from accounts.models import EmailAccount, Tenant, User
from accounts.web import onboarding
from mailboxes.models import Folder
from tests.dashboard.conftest import screenshot, wait_for
from tests.mailboxes.helpers import register

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "Correct-Horse-Battery-9"


def state_of(account) -> str:
    return EmailAccount.objects.get(pk=account.pk).state


def test_expired_trial_is_refused_paused_and_restored_by_an_operator(
        new_page, web_server, mail_user, imap_worker, server_passwords):
    tenant, _ = onboarding.sign_up("Lapsed Co", "owner@lapsed.test", PASSWORD)
    _, token = services.issue_token(tenant, "backend", ["api"])
    account = register(tenant, mail_user)
    wait_for(lambda: state_of(account) == "connected")
    assert web_server.api("GET", "/v1/accounts", token)[0] == 200

    # The trial runs out by the clock alone: no job, no announcement.
    Tenant.objects.filter(pk=tenant.pk).update(trial_ends_at=timezone.now() - timedelta(seconds=1))
    wait_for(lambda: state_of(account) == "paused")
    status, body = web_server.api("GET", "/v1/accounts", token)
    assert status == 402
    assert body["code"] == "TrialExpired"
    assert body["statusCode"] == 402
    assert body["message"]
    assert Tenant.objects.get(pk=tenant.pk).status == "expired"
    assert Folder.objects.filter(email_account=account).exists()  # nothing deleted

    page = new_page()
    page.goto("/login")
    page.get_by_label("Email").fill("owner@lapsed.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("status-banner")).to_contain_text("Your free trial has ended")
    screenshot(page, "trial-expired")

    User.objects.create_superuser("operator@emailapi.test", PASSWORD)
    admin = new_page()
    admin.goto("/admin/login/?next=/admin/accounts/tenant/")
    admin.get_by_label("Email").fill("operator@emailapi.test")
    admin.get_by_label("Password").fill(PASSWORD)
    admin.get_by_role("button", name="Log in").click()
    admin.get_by_role("row", name=re.compile("Lapsed Co")).get_by_role("checkbox").check()
    admin.locator("select[name=action]").select_option("convert_to_team")
    screenshot(admin, "admin-tenants")
    admin.get_by_role("button", name="Go").click()
    expect(admin.locator(".messagelist")).to_contain_text("converted to Team")

    assert web_server.api("GET", "/v1/accounts", token)[0] == 200
    wait_for(lambda: state_of(account) == "connected")
    page.reload()
    expect(page.get_by_test_id("status-banner")).to_have_count(0)
    converted = Tenant.objects.get(pk=tenant.pk)
    assert converted.status == "active"
    assert converted.plan == "team"
