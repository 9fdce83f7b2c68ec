"""Live updates in a real browser (Chromium via Playwright, daphne, Dovecot, an IMAP worker and
the dispatcher): the pages follow the tenant's events on a stream the session authenticates,
and no request the browser makes carries a token in its address or its headers."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from accounts.models import ApiToken
from accounts.web import onboarding
from tests.dashboard.conftest import running_web_server, screenshot
from tests.mailboxes.helpers import register
from tests.servers import seed
from webhooks.models import Event

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "Correct-Horse-Battery-9"
SECRET_IN_URL = re.compile(r"access_token|eapi_|ticket|token=", re.IGNORECASE)


@pytest.fixture
def web_server(django_db_setup, tmp_path_factory):
    """A web server of this test's own. The session's has served other tests, whose events
    were numbered from 1 again once the database was emptied between tests: its stream would
    take this test's first events for a renumbered (restored) outbox and drop the page's
    stream, as it must for a real restore."""
    with running_web_server(tmp_path_factory) as server:
        yield server


def test_pages_update_live_with_no_token_in_any_request(
        page, web_server, mail_user, imap_worker, start_dispatcher, server_passwords):
    start_dispatcher()  # publishes the events the page hears on its stream
    tenant, _ = onboarding.sign_up("Live Co", "owner@live.test", PASSWORD)
    requests = []
    page.on("request", lambda request: requests.append(request))
    streams = []
    page.on("response", lambda response: streams.append(response)
            if response.url.endswith("/dashboard/stream") else None)

    page.goto("/login")
    page.get_by_label("Email").fill("owner@live.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads
    # Events published before the stream is open reach the page only by its catch-up poll.
    page.wait_for_function("window.emailapiStreamOpen === true", timeout=20_000)

    # A mailbox registered elsewhere (the API) connects: the overview hears it live.
    register(tenant, mail_user, account_id="live-box")
    events = page.locator("[data-live=events]")
    expect(events).to_contain_text("accountInitialized", timeout=30_000)
    expect(events).to_contain_text("live-box")
    assert page.evaluate("window.__sameDocument") is True
    try:
        page.wait_for_function("(window.emailapiStreamEvents || 0) > 0", timeout=60_000)
    except PlaywrightTimeout:
        published = list(Event.objects.filter(tenant=tenant).values_list("event", "seq"))
        raise AssertionError(f"no event heard on the page's stream; the tenant's events and "
                             f"their seq (None: not published yet): {published}") from None
    screenshot(page, "overview-live")

    # The mailbox page follows its state, and new mail shows up in the event feed.
    page.goto("/dashboard/mailboxes/live-box")
    expect(page.get_by_test_id("mailbox-state")).to_have_text("connected", timeout=20_000)
    page.goto("/dashboard")
    page.evaluate("window.__sameDocument = true; window.emailapiStreamEvents = 0")
    seed.seed_mailbox(mail_user, messages=[seed.make_message(subject="Live hello")])
    expect(events.locator("tbody tr").first).to_contain_text("messageNew", timeout=30_000)
    assert page.evaluate("window.__sameDocument") is True
    assert page.evaluate("window.emailapiStreamEvents") > 0  # heard, not polled

    assert streams
    assert all(response.status == 200 for response in streams)
    assert all(response.headers["content-type"].startswith("text/event-stream")
               for response in streams)
    assert requests
    for request in requests:
        assert not SECRET_IN_URL.search(request.url), request.url
        assert "authorization" not in request.headers, request.url
    assert not ApiToken.objects.filter(tenant=tenant).exists()  # no token made for the pages
