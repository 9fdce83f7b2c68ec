"""A bounded fuzz of the dashboard, as ``tests/emailapi/test_fuzz_openapi.py`` is of the API:
signed in as the owner of a tenant with a real synced mailbox, a webhook, an OAuth2 app, a
token, a team member and an invitation, every page of ``accounts.web.urls`` and every hosted
connect page (``accounts.oauth2.urls``, asked with a genuine link) gets hostile values in each
path parameter, in each query parameter its links name, and in each field of each form it shows
(POSTed with the page's CSRF token, the other fields as the page filled them). Values are
percent-encoded bytes: NUL, invalid UTF-8, a lone surrogate, bidi and escape characters,
integers beyond any column, very long text. The requests go through ``emailapi.asgi.application``
(``tests/asgi_calls.py``), as a browser's meet every layer of the web server.

No answer may be a 5xx, and no view may raise: a page answers a bad value with its form's
error, a 400 or a 404, and a value it accepts must be one the database can store (a NUL in a
name is refused by PostgreSQL's text type: an unhandled ``DataError``).
"""

from __future__ import annotations

import random
import re
import sys
from datetime import timedelta
from html import unescape
from html.parser import HTMLParser
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from django.core.signals import got_request_exception
from django.test import Client
from django.urls import URLPattern
from django.utils import timezone

from accounts import services
from accounts.models import Invitation, Membership, User
from accounts.oauth2 import connect
from accounts.oauth2 import urls as connect_urls
from accounts.web import urls as web_urls
from tests import asgi_calls

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "Correct-Horse-Battery-9"
# Percent-encoded values for a query parameter, a form field or a path segment.
VALUES = ["", "%00", "a%00b", "%FF", "%ED%A0%80", "%C3%A9%E2%80%AE%1B%5B31m", "99999999999999999999",
          "-99999999999999999999", "-1", "1e400", "NaN", "..%2F..%2Fetc", "a%0D%0ABcc%3A%20x",
          "x" * 5000, "%5B" * 3000, "%3Cscript%3E"]
PATH_VALUES = ["%00", "a%00b", "%FF", "%ED%A0%80", "99999999999999999999", "-1", "x" * 2000,
               "%20", "a%2Fb", "00000000-0000-4000-8000-000000000000"]
NAMED = {"%00", "%FF", "%ED%A0%80", "99999999999999999999", "x" * 5000}
# Query parameters tried on every GET page, beyond those its own links name.
COMMON_QUERY = ["page", "cursor", "q", "path", "in", "next", "account", "state", "pageSize", "data",
                "sig", "email", "code", "error", "images"]
# Routes never requested: signing out ends the run's session.
SKIPPED = {"logout"}
# Per route: the named values on every field, then this many more requests chosen at random
# (fixed seed), so that the run stays within a minute or two on a busy machine.
PER_ROUTE = 60


class _Forms(HTMLParser):
    """Each ``<form method=post>`` of a page: its action and its fields as the page filled
    them (text inputs, hidden inputs, checked boxes, selected options, textareas); and the
    names of the query parameters of the page's own links."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self.query_names: set[str] = set()
        self._form: dict | None = None
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and attrs.get("href"):
            self.query_names.update(name for name, _ in parse_qsl(urlsplit(attrs["href"]).query))
        if tag == "form":
            self._form = {"action": attrs.get("action") or "", "method": (attrs.get("method") or
                          "get").lower(), "fields": {}}
            self.forms.append(self._form)
        if self._form is None or not attrs.get("name"):
            return
        name, fields = attrs["name"], self._form["fields"]
        if tag == "input":
            kind = (attrs.get("type") or "text").lower()
            if kind in ("checkbox", "radio"):
                if "checked" in attrs:
                    fields[name] = attrs.get("value") or "on"
                else:
                    fields.setdefault(name, None)
            elif kind not in ("submit", "button", "image", "file"):
                fields[name] = attrs.get("value") or ""
        elif tag == "select":
            self._select = name
            fields.setdefault(name, None)
        elif tag == "textarea":
            self._textarea = name
            fields[name] = ""
        if tag == "option" and self._select and ("selected" in attrs or fields[self._select] is None):
            fields[self._select] = attrs.get("value", "")

    def handle_data(self, data):
        if self._form is not None and self._textarea:
            self._form["fields"][self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


@pytest.fixture
def world(synced, settings, no_remote_names):
    """The owner's session and a sample value for every path parameter of the dashboard."""
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    settings.EMAILAPI_VERIFY_TIMEOUT = 2
    tenant, api = synced.account.tenant, synced.client
    owner = User.objects.create_user(email="owner@alice.test", password=PASSWORD)
    Membership.objects.create(tenant=tenant, user=owner, role="owner")
    colleague = User.objects.create_user(email="colleague@alice.test", password=PASSWORD)
    member = Membership.objects.create(tenant=tenant, user=colleague, role="member")
    invitation = Invitation.objects.create(
        tenant=tenant, email="new@alice.test", role="member", invited_by=owner, key="k" * 40,
        expires_at=timezone.now() + timedelta(days=7))
    listing = synced.listing()
    message = next((m for m in listing if m["hasAttachments"]), listing[0])
    detail = api.get(f"/v1/account/box/message/{message['id']}").json()
    webhook = api.post("/v1/webhooks", {"url": "http://127.0.0.1:9/hook", "events": ["*"]},
                       format="json").json()
    app = api.post("/v1/oauth2", {"provider": "gmail", "name": "Fuzz", "clientId": "id",
                                  "clientSecret": "secret"}, format="json").json()
    assert "id" in webhook, webhook
    assert "id" in app, app
    token, _ = services.issue_token(tenant, "spare", ["api"])
    client = Client(raise_request_exception=False)
    client.force_login(owner)
    client.get("/dashboard/tokens")  # a page with a form: the CSRF cookie
    link = connect.make_link(tenant, {"type": connect.IMAP, "email": "someone@example.test"},
                             "http://127.0.0.1")
    return client, {"link": urlsplit(link).query,
        "account_id": "box", "message_id": message["id"],
        "attachment_id": (detail.get("attachments") or [{"id": "none"}])[0]["id"],
        "action": "reconnect", "webhook_id": webhook["id"], "app_id": app["id"],
        "delivery_id": "00000000-0000-4000-8000-000000000000", "token_id": str(token.pk),
        "member_id": str(member.pk), "invitation_id": str(invitation.pk), "token": "forged",
        "uidb64": "MQ", "str": "x"}


def _routes() -> list[tuple[str, str, list[str]]]:
    """``(name, template, parameter names)`` of every dashboard route and hosted connect page:
    ``<kind:name>`` becomes ``{name}``."""
    routes = []
    for pattern in [*web_urls.urlpatterns, *connect_urls.urlpatterns]:
        assert isinstance(pattern, URLPattern)
        text = str(pattern.pattern)
        names = re.findall(r"<(?:\w+:)?(\w+)>", text)
        template = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", text)
        routes.append((pattern.name, template, names))
    return routes


def _path(template: str, values: dict) -> str:
    for key, value in values.items():
        template = template.replace("{" + key + "}", value)
    return template


def _encoded(fields: dict) -> str:
    """A form body or query: the page's own values encoded, fuzzed ones (already percent-encoded)
    as they are."""
    return "&".join(f"{quote(name, safe='')}={value}" for name, value in fields.items())


def _page_requests(template: str, params: list[str], samples: dict, client: Client,
                   rng: random.Random) -> list[tuple[str, str, str, str]]:
    """``(method, path, encoded query, encoded body)`` of one route: its path parameters, the
    query parameters of its page, each field of each form on its page. A hosted connect page
    is asked with a genuine link's ``data`` and ``sig``, each request on its own."""
    path = _path(template, samples)
    base = dict(parse_qsl(samples["link"])) if template.startswith("/connect") else {}
    page = client.get(path, base)
    parser = _Forms()
    if page.status_code == 200 and page.get("Content-Type", "").startswith("text/html"):
        parser.feed(page.content.decode())
    own_query = {key: quote(value, safe="") for key, value in base.items()}
    query = _encoded(own_query)
    token = _encoded({"csrfmiddlewaretoken": client.cookies["csrftoken"].value})
    must, extra = [], []
    for param in params:
        for value in PATH_VALUES:
            for method, body in (("GET", ""), ("POST", token)):
                (must if value in NAMED else extra).append(
                    (method, _path(template, {**samples, param: value}), query, body))
    for query_name in sorted(parser.query_names | set(COMMON_QUERY)):
        for value in VALUES:
            (must if value in NAMED else extra).append(
                ("GET", path, _encoded({**own_query, query_name: value}), ""))
    for form in parser.forms:
        if form["method"] != "post":
            continue
        action = urlsplit(unescape(form["action"]))
        target = action.path if action.path.startswith("/") else path
        form_query = action.query if action.path else query
        own = {key: quote(value or "", safe="") for key, value in form["fields"].items()
               if value is not None}
        for field in form["fields"]:
            if field == "csrfmiddlewaretoken":
                continue
            for value in VALUES:
                (must if value in NAMED else extra).append(
                    ("POST", target, form_query, _encoded({**own, field: value})))
    return must + rng.sample(extra, min(len(extra), max(0, PER_ROUTE - len(must))))


def _send(requests: list[tuple[str, str, str, str]], client: Client) -> list[tuple]:
    """Each request through ``emailapi.asgi.application`` with the owner's session and CSRF
    cookie (a POST without the page's token is refused before any form sees it):
    ``(request, status, headers, exceptions raised in a view)``."""
    from emailapi.asgi import application

    cookies = "; ".join(f"{name}={morsel.value}" for name, morsel in client.cookies.items())
    headers = [(b"cookie", cookies.encode()), (b"content-type", b"application/x-www-form-urlencoded")]
    raised: list[str] = []

    def record(sender, **kwargs):
        raised.append(f"{sys.exc_info()[0].__name__}: {sys.exc_info()[1]}"[:300])

    async def main():
        answers = []
        for method, path, query, body in requests:
            raised.clear()
            status, answer_headers, _ = await asgi_calls.call(application, method, path, query,
                                                              body.encode(), headers)
            answers.append(((method, path, query, body), status, answer_headers, list(raised)))
        return answers

    got_request_exception.connect(record)
    try:
        return asgi_calls.run(main)
    finally:
        got_request_exception.disconnect(record)


def test_no_dashboard_page_fails_on_hostile_input(world):
    client, samples = world
    rng = random.Random(19)
    # Destructive routes last, so that the sample data lives for the others.
    routes = sorted(_routes(), key=lambda route: any(
        word in route[0] for word in ("delete", "remove", "revoke", "cancel")))
    failures, sent, refused = [], 0, 0
    for name, template, params in routes:
        if name in SKIPPED:
            continue
        requests = _page_requests(template, params, samples, client, rng)
        for (method, path, query, body), status, headers, raised in _send(requests, client):
            sent += 1
            refused += method == "POST" and status == 403
            if status >= 500 or raised:
                failures.append(f"{method} {path[:120]}?{query[:200]} {body[:200]} -> {status} {raised}")
            assert not headers.get("location", "").startswith("/login"), "signed out by " + path
    assert sent > 1000, f"only {sent} requests: the fuzz reached too little"
    print(f"{sent} requests, {refused} POSTs refused with 403")
    assert refused < sent / 20, f"{refused} POSTs refused (403): forms were not reached"
    assert failures == [], f"{len(failures)} failures:\n" + "\n".join(failures[:40])
