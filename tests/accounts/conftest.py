"""Fixtures of the account tests: the test OAuth2 provider, a Dovecot that takes its tokens,
a user of both, and plain-HTTP OAuth2 for the test server (helpers in ``oauth2_helpers``)."""

from __future__ import annotations

import pytest

from tests.servers.dovecot import Dovecot
from tests.servers.oauth2 import OAuth2Server, dovecot_oauth2_config


@pytest.fixture(scope="module")
def provider():
    server = OAuth2Server().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def oauth_dovecot(provider):
    """A Dovecot whose passdb also takes bearer tokens, checked by introspection at
    ``provider`` (password logins keep working, so tests can seed mail)."""
    server = Dovecot(extra_config=dovecot_oauth2_config(provider)).start()
    yield server
    server.stop()


@pytest.fixture
def allow_http(settings):
    settings.EMAILAPI_OAUTH2_ALLOW_HTTP = True
    settings.EMAILAPI_SERVICE_URL = "http://testserver"


@pytest.fixture
def oauth_user(oauth_dovecot, provider):
    user = oauth_dovecot.add_user()
    provider.sign_in_as = user.username
    provider.access_ttl = 3600
    provider.refresh_calls = 0
    return user
