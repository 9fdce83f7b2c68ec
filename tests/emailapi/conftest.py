"""Fixtures the emailapi tests borrow: the webhook receivers and dispatchers (``/metrics``
after a delivered webhook), the hostile HTTP servers (the shared HTTP client's tests)."""

from tests.webhooks.conftest import (  # noqa: F401 (fixtures)
    hostile_http,
    start_dispatcher,
    webhook_receiver,
)
