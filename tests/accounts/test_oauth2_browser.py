"""The hosted connect link clicked through in Chromium (Playwright): our page, the test
provider's sign-in page, back to our callback, on to ``redirectUrl``; the mailbox then syncs
over XOAUTH2. Served by pytest-django's in-process ``live_server``, so the test's settings
(http provider allowed) apply to the pages the browser sees."""

from __future__ import annotations

import os
import threading
from urllib.parse import parse_qs, urlsplit

import pytest

from accounts.models import EmailAccount
from mailboxes.models import Message
from mailboxes.worker.connection import AccountConnection, Idle
from tests.accounts.oauth2_helpers import create_app, make_link
from tests.servers import seed

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium"),
]


@pytest.fixture
def chromium_page(monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; the ORM calls of the test
    # body are plain blocking calls, so Django's async guard is lifted meanwhile.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox"])
        try:
            yield browser.new_page()
        finally:
            browser.close()


def test_a_user_connects_a_mailbox_by_clicking_through_the_link(
        alice, live_server, settings, chromium_page, provider, oauth_dovecot, oauth_user):
    settings.EMAILAPI_OAUTH2_ALLOW_HTTP = True
    settings.EMAILAPI_SERVICE_URL = live_server.url
    seed.seed_mailbox(oauth_user, messages=seed.build_messages()[:2])
    app = create_app(alice, provider, oauth_dovecot)
    link = make_link(alice, type=app, account="clicked", expectedEmail=oauth_user.username,
                     redirectUrl=f"{live_server.url}/health?came=back")

    page = chromium_page
    page.goto(link)
    page.click("#sign-in")  # our page -> the provider's sign-in page
    # The click returns once the navigation has begun, not when the page is there: under a
    # full run's load its content was still empty once.
    page.wait_for_selector("#allow")
    assert oauth_user.username in page.content()
    page.click("#allow")  # provider -> our callback -> redirectUrl
    page.wait_for_url(f"{live_server.url}/health?*")
    query = parse_qs(urlsplit(page.url).query)
    assert query == {"came": ["back"], "account": ["clicked"], "state": ["new"]}

    account = EmailAccount.objects.get(tenant=alice.tenant, account_id="clicked")
    conn = AccountConnection(account.pk, threading.Event())
    try:
        assert isinstance(conn.start(), Idle)
        assert Message.objects.filter(email_account=account).count() == 2
    finally:
        conn.close()

    page.goto(link)  # single use
    assert "already used" in page.content()
