"""Tenancy in a real browser: a user of one organization who types another organization's
page addresses gets the 404 page, and nothing of the other organization shows."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts import services
from accounts.web import onboarding
from tests.dashboard.conftest import screenshot
from webhooks import subscriptions

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "Correct-Horse-Battery-9"


def test_another_organizations_pages_are_404_by_url(new_page, web_server, server_passwords):
    alpha, _ = onboarding.sign_up("Alpha Co", "owner@alpha.test", PASSWORD)
    services.register_account(alpha, {"account": "alpha-box", "imap": {
        "host": "imap.alpha.test", "port": 993, "secure": True,
        "auth": {"user": "x@alpha.test", "pass": "Alpha-Pass-1"}}})
    beta, _ = onboarding.sign_up("Beta Co", "owner@beta.test", PASSWORD)
    services.register_account(beta, {"account": "beta-secrets", "imap": {
        "host": "imap.beta.test", "port": 993, "secure": True,
        "auth": {"user": "x@beta.test", "pass": "Beta-Pass-1"}}})
    hook, _ = subscriptions.create(beta, {"url": "https://hooks.beta.test/in", "events": ["*"]})
    page = new_page()
    page.goto("/login")
    page.get_by_label("Email").fill("owner@alpha.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("org-name")).to_have_text("Alpha Co")
    assert page.goto("/dashboard/mailboxes/alpha-box").status == 200  # the same kind of page
    for url in ("/dashboard/mailboxes/beta-secrets", f"/dashboard/webhooks/{hook.pk}"):
        response = page.goto(url)
        assert response.status == 404, url
        expect(page.locator("body")).not_to_contain_text("beta.test")
    screenshot(page, "not-found")
    page.goto("/dashboard/mailboxes")
    expect(page.locator("body")).not_to_contain_text("beta-secrets")
