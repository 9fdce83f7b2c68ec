"""Browser test rig: a real web server (daphne on the test database), real IMAP workers (threads
of the test process, like tests/mailboxes/test_worker.py) and Debian's Chromium through
Playwright. Browser tests use ``django_db(transaction=True)``: the server is another process
and sees only committed rows.

Screenshots go to ``var/screenshots/`` (ignored by git) for a reviewer to look at.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.base import stop_process, wait_for
from tests.servers.net import find_free_port
from tests.webhooks.conftest import start_dispatcher, webhook_receiver  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"
CHROMIUM = "/usr/bin/chromium"




class WebServer:
    def __init__(self, port: int, process: subprocess.Popen, log: Path):
        self.port, self.process, self.log = port, process, log
        self.url = f"http://127.0.0.1:{port}"

    def api(self, method: str, path: str, token: str, body: dict | None = None):
        """A real HTTP request to the served API: (status, JSON body)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            conn.request(method, path, body=json.dumps(body) if body is not None else None,
                         headers=headers)
            response = conn.getresponse()
            return response.status, json.loads(response.read() or b"null")
        finally:
            conn.close()


@contextlib.contextmanager
def running_web_server(tmp_path_factory):
    """daphne serving ``emailapi.asgi`` on the test database, until the block ends."""
    from django.conf import settings
    from django.db import connection

    db = connection.settings_dict
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
               REDIS_URL=settings.REDIS_URL, EMAILAPI_SECRET=settings.EMAILAPI_SECRET,
               EMAILAPI_RATE_LIMIT="0", EMAILAPI_TOKEN_CACHE_SECONDS="0",
               EMAILAPI_VERIFY_TIMEOUT="10", WEBHOOKS_ALLOW_PRIVATE="true")
    port = find_free_port()
    log = tmp_path_factory.mktemp("web") / "daphne.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
             "emailapi.asgi:application"], cwd=ROOT, env=env, stdout=out, stderr=out)
    server = WebServer(port, process, log)

    def up():
        assert process.poll() is None, log.read_text()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/health")
            return conn.getresponse().status == 200
        except OSError:
            return False

    try:
        wait_for(up, timeout=60, interval=0.2)
        yield server
    finally:
        stop_process(process)


@pytest.fixture(scope="session")
def web_server(django_db_setup, tmp_path_factory):
    """daphne serving ``emailapi.asgi`` on the test database, for the whole session."""
    with running_web_server(tmp_path_factory) as server:
        yield server


@pytest.fixture
def server_passwords(settings):
    """Users made by the test must sign in through the server, which does not know the suite's
    fast MD5 hasher: hash with Django's default here too."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher",
                                 "django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def browser(web_server):
    """Chromium for one test. Playwright's sync API runs an event loop on this thread while it
    is started, which makes Django refuse ORM calls from the test body as "async" (they are
    plain blocking calls here, so the guard is lifted meanwhile) and breaks ``asyncio.run`` in
    later tests: so it lives no longer than the test (about a second to start)."""
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                  args=["--no-sandbox"])
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def new_page(browser, web_server):
    """Open pages in fresh browser contexts (separate cookies: a user, an operator)."""
    contexts = []

    def open_page():
        context = browser.new_context(base_url=web_server.url,
                                      viewport={"width": 1280, "height": 860})
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    return new_page()


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def toured(dovecot, mail_user, webhook_receiver, start_dispatcher, imap_worker,  # noqa: F811
           server_passwords, settings):
    """One organization with something on every dashboard page (``tour.seed``), for the
    tests and the screenshots that visit them all."""
    from tests.dashboard import tour
    settings.WEBHOOKS_ALLOW_PRIVATE = True  # the receivers listen on loopback
    return tour.seed(dovecot, mail_user, webhook_receiver, start_dispatcher)
