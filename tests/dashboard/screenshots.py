"""``make screenshots``: every dashboard page (found by ``tour.crawl``), the public pages and
the operators' admin, at 1280x800 and 390x844, as full-page PNGs under ``var/shots/<width>/``,
from a running server (daphne) on a database toured by ``tour.seed`` with real Dovecot mail,
an IMAP worker and the webhook dispatcher. Run it with pytest (the suite's rig starts the
servers); it is not collected by a plain ``pytest`` run (no ``test_`` prefix):

    EMAILAPI_TEST_SLOT=3 .venv/bin/python -m pytest -q tests/dashboard/screenshots.py
"""

from __future__ import annotations

import shutil

import pytest

from tests.dashboard import tour
from tests.dashboard.conftest import ROOT

pytestmark = pytest.mark.django_db(transaction=True)

SHOTS = ROOT / "var" / "shots"


def test_screenshots_of_every_page(browser, web_server, toured):
    shutil.rmtree(SHOTS, ignore_errors=True)  # no stale pages of an earlier run
    written = []
    for viewport in (tour.DESKTOP, tour.PHONE):
        folder = SHOTS / str(viewport["width"])
        folder.mkdir(parents=True, exist_ok=True)
        for who in ("public", "owner", "viewer", "operator"):
            context = browser.new_context(base_url=web_server.url, viewport=viewport)
            context.set_default_timeout(15_000)
            page = context.new_page()
            if who == "public":
                paths = tour.PUBLIC_PAGES
            elif who == "operator":
                tour.sign_in_admin(page)
                paths = tour.admin_pages(toured)
            else:
                tour.sign_in(page, tour.OWNER if who == "owner" else "viewer@northwind.test")
                paths = tour.crawl(page) if who == "owner" else \
                    ["/dashboard/settings", "/dashboard/mailboxes/new"]
            for path in paths:
                page.goto(path)
                page.wait_for_load_state("load")
                name = tour.name_of(path) if who in ("owner", "public") else \
                    f"{who}-{tour.name_of(path)}"
                target = folder / f"{name}.png"
                page.screenshot(path=str(target), full_page=True)
                written.append(target)
            context.close()
    print(f"\n{len(written)} screenshots in {SHOTS}")
    assert written
