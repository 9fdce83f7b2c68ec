"""Every dashboard page at a phone's width (390x844) and a laptop's (1280x800), in Chromium:
no page is wider than the screen, the header fits, and tables stay readable (their rows
stacked, or scrolling inside the page). The pages are found by following the dashboard's
links (``tour.crawl``), so a new page is checked without being listed."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.dashboard import tour

pytestmark = pytest.mark.django_db(transaction=True)


def open_at(browser, web_server, viewport):
    context = browser.new_context(base_url=web_server.url, viewport=viewport)
    context.set_default_timeout(15_000)
    return context, context.new_page()


@pytest.mark.parametrize("viewport", [tour.PHONE, tour.DESKTOP], ids=["390", "1280"])
def test_no_page_is_wider_than_the_screen(browser, web_server, toured, viewport):
    context, page = open_at(browser, web_server, viewport)
    try:
        tour.sign_in(page)
        pages = tour.crawl(page)
        assert {"/dashboard", "/dashboard/mailboxes", "/dashboard/mailboxes/sales",
                "/dashboard/tokens", "/dashboard/webhooks", "/dashboard/team",
                "/dashboard/oauth2", "/dashboard/settings"} <= set(pages)
        too_wide = {}
        for path in [*pages, *tour.PUBLIC_PAGES]:
            if path in tour.PUBLIC_PAGES:
                page.context.clear_cookies()
            page.goto(path)
            found = tour.overflow(page)
            if found["page"] or found["header"]:
                too_wide[path] = found
        assert too_wide == {}
    finally:
        context.close()


def test_tables_on_a_phone_are_stacked_rows_with_their_labels(browser, web_server, toured):
    context, page = open_at(browser, web_server, tour.PHONE)
    try:
        tour.sign_in(page)
        page.goto("/dashboard/mailboxes")
        row = page.locator("table.stack tbody tr").first
        cells = row.locator("td")
        # One cell under another, each as wide as the row, its column named before it.
        first, second = cells.nth(0).bounding_box(), cells.nth(1).bounding_box()
        assert second["y"] >= first["y"] + first["height"] - 1
        assert first["width"] > 300
        label = cells.nth(1).evaluate("td => getComputedStyle(td, '::before').content")
        assert label == '"Email"'
        expect(page.locator("table.stack thead")).not_to_be_in_viewport()
    finally:
        context.close()


def test_the_operators_admin_pages_open_at_both_widths(browser, web_server, toured):
    for viewport in (tour.PHONE, tour.DESKTOP):
        context, page = open_at(browser, web_server, viewport)
        try:
            tour.sign_in_admin(page)
            for path in tour.admin_pages(toured):
                assert page.goto(path).ok, path
        finally:
            context.close()
