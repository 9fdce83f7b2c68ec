"""Issue 18's fixes in Chromium, at a phone's width and a laptop's, on the tour's organization
(``tour.seed``: real Dovecot, IMAP worker, webhook dispatcher and receiver): the last error in
words with its time and next try, server-rendered and live; senders' names and undated mail
by arrival; one time format for server-rendered and live times; webhook health with a refused
endpoint; usage and plan; an expired trial's limits and stopped webhooks; a viewer's pages;
the operators' tenant page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from accounts import plans
from tests.dashboard import tour

pytestmark = pytest.mark.django_db(transaction=True)

expect.set_options(timeout=30_000)  # a loaded machine: 8 suites at once
MOMENT = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$")
WIDTHS = pytest.mark.parametrize("viewport", [tour.PHONE, tour.DESKTOP], ids=["390", "1280"])


@pytest.fixture
def at(browser, web_server):
    contexts = []

    def open_page(viewport):
        context = browser.new_context(base_url=web_server.url, viewport=viewport)
        context.set_default_timeout(30_000)  # a loaded machine: 8 suites at once
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


def times_of(page, selector: str) -> list[str]:
    return page.locator(selector).all_inner_texts()


@WIDTHS
def test_mailboxes_errors_messages_and_times(at, toured, viewport):
    page = at(viewport)
    tour.sign_in(page)
    page.goto("/dashboard/mailboxes/support")
    error = page.get_by_test_id("last-error")
    expect(error).to_contain_text("Authentication failed")
    expect(error).to_contain_text("next try")
    for text in times_of(page, "[data-testid=last-error] time"):
        assert MOMENT.match(text), text
    # The live update (the stream opened, live.json applied) writes it the same way.
    page.wait_for_function("window.emailapiStreamOpen === true")
    page.wait_for_function("document.querySelector('[data-testid=last-error]')"
                           ".hasAttribute('data-shown')")
    for text in times_of(page, "[data-testid=last-error] time"):
        assert MOMENT.match(text), text
    expect(error).to_contain_text("Authentication failed")

    page.goto("/dashboard/mailboxes/sales")
    expect(page.get_by_test_id("mailbox-state")).to_have_text("connected")
    expect(page.get_by_test_id("last-error")).to_have_text("none")
    senders = page.get_by_test_id("message-from").all_inner_texts()
    assert senders.count("Valentina Jensen") == 2  # the name, not the search column
    assert senders[-1] == "Ósk Dóttir"  # undated, arrived in 2020: last, not first
    expect(page.get_by_test_id("recent-messages").locator("tbody tr").last).to_contain_text(
        "2020-01-02 03:04:00 UTC")
    assert tour.overflow(page) == {"page": 0, "header": 0}

    page.goto("/dashboard")
    page.wait_for_function("window.emailapiStreamOpen === true")
    page.wait_for_function("document.querySelectorAll('[data-live=events] td time').length > 0")
    for text in times_of(page, "[data-live=events] time"):
        assert MOMENT.match(text), text


@WIDTHS
def test_webhook_health_and_usage(at, toured, viewport):
    page = at(viewport)
    tour.sign_in(page)
    page.goto("/dashboard/webhooks")
    statuses = page.get_by_test_id("webhook-status").all_inner_texts()
    assert sorted(statuses) == ["failing", "healthy"]
    page.goto(f"/dashboard/webhooks/{toured.failing_webhook.pk}")
    expect(page.get_by_test_id("webhook-status")).to_have_text("failing")
    expect(page.get_by_test_id("delivery-log")).to_contain_text(
        "Connection refused or unreachable")
    expect(page.get_by_test_id("delivery-log")).not_to_contain_text("Timed out")
    expect(page.get_by_test_id("unknown-accounts")).to_contain_text("sales-typo")
    expect(page.get_by_test_id("webhook-health")).to_contain_text("Authorization, X-Team")
    page.get_by_role("button", name="Retry now").first.click()
    expect(page.locator(".flash")).to_contain_text("attempted again now")
    page.get_by_test_id("delivery-log").locator("summary").first.click()
    expect(page.get_by_test_id("delivery-body").first).to_contain_text('"event":')
    assert tour.overflow(page) == {"page": 0, "header": 0}

    page.goto("/dashboard/settings")
    expect(page.get_by_test_id("usage-mailboxes")).to_contain_text("2 of 5")
    expect(page.get_by_test_id("trial-end")).to_contain_text("UTC")
    expect(page.get_by_role("button", name="Request Team")).to_be_visible()
    assert tour.overflow(page) == {"page": 0, "header": 0}


@WIDTHS
def test_expired_trial_viewer_and_operator(at, toured, viewport):
    plans.expire(toured.tenant)
    page = at(viewport)
    tour.sign_in(page)
    page.goto("/dashboard/settings")
    expect(page.get_by_test_id("limit-mailboxes")).to_have_text("up to 5")
    expect(page.get_by_test_id("limit-rate")).to_have_text("up to 600")
    page.goto("/dashboard/webhooks")
    expect(page.get_by_test_id("webhooks-stopped")).to_be_visible()
    expect(page.get_by_role("button", name="Add webhook")).to_have_count(0)
    page.goto(f"/dashboard/webhooks/{toured.failing_webhook.pk}")
    expect(page.get_by_role("button", name="Send a test event")).to_have_count(0)

    viewer = at(viewport)
    tour.sign_in(viewer, "viewer@northwind.test")
    viewer.goto("/dashboard/settings")
    expect(viewer.get_by_test_id("org-name-readonly")).to_have_text("Northwind Trading")
    expect(viewer.get_by_label("Organization name")).to_have_count(0)
    viewer.goto("/dashboard/mailboxes/new")
    expect(viewer.get_by_test_id("viewer-notice")).to_be_visible()
    expect(viewer.get_by_label("Password")).to_have_count(0)
    expect(viewer.locator(".banner.warn")).to_have_count(0)  # no "confirm your email"

    operator = at(viewport)
    tour.sign_in_admin(operator)
    operator.goto(f"/admin/accounts/tenant/{toured.tenant.pk}/change/")
    expect(operator.locator("#operator-actions")).to_contain_text("Convert to Team")
    operator.get_by_role("button", name="Convert to Team").click()
    expect(operator.locator(".messagelist")).to_contain_text("Converted to Team")
    operator.get_by_role("link", name=re.compile("mailbox\\(es\\) of Northwind")).click()
    expect(operator.locator("#result_list")).to_contain_text("sales")
