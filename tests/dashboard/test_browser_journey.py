"""The dashboard in a real browser (Chromium via Playwright) against the real server (daphne),
PostgreSQL, Redis, Dovecot and an IMAP worker: a team's first visit from sign-up to sign-out."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from accounts.models import ApiToken, EmailAccount, Tenant
from tests.dashboard.conftest import screenshot
from tests.servers import seed

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "Correct-Horse-Battery-9"


def test_sign_up_add_a_mailbox_see_it_connect_use_a_token_and_sign_out(
        page, web_server, mail_user, imap_worker, start_dispatcher):
    start_dispatcher()  # publishes events, which the page hears on the tenant's stream
    page.goto("/signup")
    page.get_by_label("Organization name").fill("Journey Ltd")
    page.get_by_label("Work email").fill("founder@journey.test")
    page.get_by_label("Password").fill("123")
    page.get_by_role("button", name="Create account").click()
    # Bad input: the message sits next to the field, and what was typed is still there.
    expect(page.locator("#id_password_error")).to_contain_text("too short")
    expect(page.get_by_label("Organization name")).to_have_value("Journey Ltd")
    screenshot(page, "signup-errors")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()

    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect(page.get_by_test_id("status-banner")).to_contain_text("14 days left")
    screenshot(page, "overview")

    page.get_by_role("link", name="Mailboxes", exact=True).click()
    page.get_by_role("link", name="Add mailbox").click()
    page.get_by_label("Email address").fill(mail_user.email)
    page.get_by_label("Account id").fill("support")
    page.get_by_label("IMAP server").fill(mail_user.host)
    page.get_by_label("IMAP port").fill(str(mail_user.imap_port))
    page.get_by_label("TLS from the start (port 993)").uncheck()
    page.get_by_label("Username").fill(mail_user.username)
    page.get_by_label("Password").fill(mail_user.password)
    page.get_by_label("Verify the server's TLS certificate").uncheck()  # Dovecot's test cert
    screenshot(page, "mailbox-add")
    page.get_by_role("button", name="Test and add").click()

    expect(page).to_have_url(re.compile(r"/dashboard/mailboxes/support$"))
    state = page.get_by_test_id("mailbox-state")
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads
    expect(state).to_have_text("connected", timeout=20_000)
    assert page.evaluate("window.__sameDocument") is True
    # The page hears the mailbox on the tenant's event stream, not by polling. The connection's own
    # events may come before the stream opens (the page catches up on them by one poll), so new
    # mail that arrives once the stream is open is what must reach the page.
    page.wait_for_function("window.emailapiStreamOpen === true", timeout=20_000)
    seed.seed_mailbox(mail_user, messages=[seed.make_message(subject="Heard on the stream")])
    page.wait_for_function("(window.emailapiStreamEvents || 0) > 0", timeout=20_000)
    page.reload()
    # INBOX is a cell of the folders table, and also of the recent messages once the new mail
    # is indexed: either will do.
    expect(page.get_by_role("cell", name="INBOX", exact=True).first).to_be_visible()
    screenshot(page, "mailbox-detail")
    page.get_by_role("link", name="Mailboxes", exact=True).click()
    screenshot(page, "mailboxes")

    page.get_by_role("link", name="API tokens").click()
    page.get_by_label("Token name").fill("backend")
    page.get_by_role("button", name="Create token").click()
    token = page.get_by_test_id("new-token").input_value()
    assert token.startswith("eapi_")
    screenshot(page, "tokens")
    status, body = web_server.api("GET", "/v1/accounts", token)
    assert status == 200
    assert [a["account"] for a in body["accounts"]] == ["support"]

    page.get_by_role("link", name="Team").click()
    screenshot(page, "team")
    page.get_by_role("link", name="Settings").click()
    screenshot(page, "settings")
    page.get_by_role("link", name="Overview").click()
    expect(page.locator("[data-live=events]")).to_contain_text("accountInitialized")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    # The live pages used the session, not a token of their own.
    assert list(ApiToken.objects.values_list("name", flat=True)) == ["backend"]
    page.goto("/dashboard")
    expect(page).to_have_url(re.compile(r"/login\?next=/dashboard$"))
    screenshot(page, "login")
    assert Tenant.objects.get(name="Journey Ltd").status == "trial"
    assert EmailAccount.objects.get(account_id="support").state == "connected"
