"""Helpers for the OAuth2 tests: the test provider and its Dovecot, a generic app pointing at
them, and the hosted connect flow driven with plain HTTP requests (the Django test client for
our pages, urllib for the provider's sign-in page), redirects followed by hand."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from urllib.parse import urlencode, urlsplit

from tests.servers.dovecot import Dovecot
from tests.servers.oauth2 import OAuth2Server

REDIRECT = "https://app.example.test/connected?from=test"



def generic_app_body(provider: OAuth2Server, dovecot: Dovecot, **overrides) -> dict:
    body = {
        "name": "Test provider", "provider": "generic", "clientId": provider.client_id,
        "clientSecret": provider.client_secret, "authorizeUrl": provider.authorize_url,
        "tokenUrl": provider.token_url, "scopes": ["mail", "openid", "email"],
        "imap": {"host": dovecot.host, "port": dovecot.imap_port, "secure": False,
                 "tls": {"rejectUnauthorized": False}},
    }
    body.update(overrides)
    return body


def create_app(tenant_fixture, provider, dovecot, **overrides) -> str:
    response = tenant_fixture.client.post(
        "/v1/oauth2", generic_app_body(provider, dovecot, **overrides), format="json")
    assert response.status_code == 200, response.json()
    return response.json()["id"]


def make_link(tenant_fixture, **body) -> str:
    body.setdefault("redirectUrl", REDIRECT)
    response = tenant_fixture.client.post("/v1/authentication/form", body, format="json")
    assert response.status_code == 200, response.json()
    return response.json()["url"]


def local(url: str) -> str:
    """Our own URL as the Django test client wants it (path and query)."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def provider_sign_in(authorize_url: str) -> str:
    """Open the provider's page and click "Allow"; return where it redirects."""
    with urllib.request.urlopen(authorize_url, timeout=10) as response:  # noqa: S310
        page = response.read().decode()
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', page))
    fields = {k: v.replace("&amp;", "&").replace("&quot;", '"') for k, v in fields.items()}
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(authorize_url.split("?")[0],
                                     data=urlencode(fields).encode(), method="POST")
    try:
        opener.open(request, timeout=10)
    except urllib.error.HTTPError as exc:
        assert exc.code == 302, exc.code
        return exc.headers["Location"]
    raise AssertionError("the provider did not redirect")


def connect_through_link(client, link: str):
    """Follow the hosted flow from the link to the final redirect; return the last response
    of our service (a 302 to redirectUrl on success, an error page otherwise)."""
    page = client.get(local(link))
    assert page.status_code == 200, page.content
    href = re.search(r'id="sign-in"[^>]*href="([^"]+)"', page.content.decode())
    assert href, page.content
    start = client.get(href.group(1).replace("&amp;", "&"))
    assert start.status_code == 302, start.content
    callback = provider_sign_in(start["Location"])
    return client.get(local(callback))
