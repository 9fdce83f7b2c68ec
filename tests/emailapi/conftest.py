"""Fixtures the emailapi tests borrow: the webhook receivers and dispatchers (``/metrics``
after a delivered webhook)."""

from tests.webhooks.conftest import start_dispatcher, webhook_receiver  # noqa: F401 (fixtures)
