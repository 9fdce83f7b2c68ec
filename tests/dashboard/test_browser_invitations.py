"""Invitations in a real browser: an owner invites someone from the team page; the invited
person opens the mailed link, chooses a password and lands in the organization. Nobody is
added, and no user exists, before that."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from accounts.models import Membership, User
from accounts.web import onboarding
from tests.base import wait_for
from tests.dashboard.conftest import screenshot

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "Correct-Horse-Battery-9"


def mailed_link(web_server, email: str) -> str:
    """The invitation link in the mail the server printed (console email backend)."""
    def found():
        text = web_server.log.read_text(errors="replace")
        at = text.rfind(f"To: {email}")
        match = at >= 0 and re.search(r"http://127\.0\.0\.1:\d+(/invitations/\S+)", text[at:])
        return match and match.group(1)

    return wait_for(found, timeout=20)


def test_invite_then_accept_with_a_new_password(new_page, web_server, server_passwords):
    tenant, _ = onboarding.sign_up("Team Co", "owner@team.test", PASSWORD)
    owner = new_page()
    owner.goto("/login")
    owner.get_by_label("Email").fill("owner@team.test")
    owner.get_by_label("Password").fill(PASSWORD)
    owner.get_by_role("button", name="Sign in").click()
    owner.get_by_role("link", name="Team").click()
    owner.get_by_label("Email").fill("newcomer@team.test")
    owner.get_by_label("Role").select_option("admin")
    owner.get_by_role("button", name="Send invitation").click()
    expect(owner.get_by_test_id("invitations")).to_contain_text("newcomer@team.test")
    screenshot(owner, "team-invitation-pending")
    assert not User.objects.filter(email="newcomer@team.test").exists()

    newcomer = new_page()
    newcomer.goto(mailed_link(web_server, "newcomer@team.test"))
    expect(newcomer).to_have_url(re.compile(r"/invitations/accept$"))  # no token in sight
    expect(newcomer.get_by_role("heading")).to_have_text("Join Team Co")
    newcomer.get_by_label("Choose a password").fill("short")
    newcomer.get_by_role("button", name="Set password and join").click()
    expect(newcomer.locator("#id_password_error")).to_contain_text("too short")
    screenshot(newcomer, "invitation-accept")
    newcomer.get_by_label("Choose a password").fill("Newcomer-Long-Pass-4")
    newcomer.get_by_role("button", name="Set password and join").click()
    expect(newcomer).to_have_url(re.compile(r"/dashboard$"))
    expect(newcomer.get_by_test_id("org-name")).to_have_text("Team Co")
    membership = Membership.objects.get(user__email="newcomer@team.test")
    assert membership.tenant == tenant
    assert membership.role == "admin"
    owner.reload()
    expect(owner.locator("body")).not_to_contain_text("Pending invitations")
