"""Fixtures the accounts tests borrow: the hostile HTTP servers (an OAuth2 app's token
endpoint is a URL a tenant chooses)."""

from tests.webhooks.conftest import hostile_http  # noqa: F401 (fixture)
