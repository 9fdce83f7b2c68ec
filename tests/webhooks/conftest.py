"""Fixtures of the webhook tests: loopback receivers and dispatchers running in threads."""

from __future__ import annotations

import threading

import pytest

from tests.servers.hostile_http import HostileHttpServer
from tests.servers.webhook_receiver import WebhookReceiver


@pytest.fixture
def allow_private_webhooks(settings):
    """Receivers here listen on loopback, which production refuses."""
    settings.WEBHOOKS_ALLOW_PRIVATE = True


@pytest.fixture
def fast_retries(settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 0, 1, 1, 1]
    settings.WEBHOOK_POLL_INTERVAL = 1


@pytest.fixture
def webhook_receiver():
    """Start receivers (``webhook_receiver(sleep=...)``); all stop at the end of the test."""
    started = []

    def start(**options) -> WebhookReceiver:
        receiver = WebhookReceiver(**options).start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop()


@pytest.fixture
def hostile_http():
    """Start scripted, hostile HTTP servers (``hostile_http(script)``, see
    ``tests.servers.hostile_http``); all stop at the end of the test."""
    started = []

    def start(script) -> HostileHttpServer:
        server = HostileHttpServer(script)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def start_dispatcher():
    """Start ``webhooks.dispatcher.Dispatcher`` in threads; stopped at the end of the test
    (or earlier with ``stop_dispatcher``)."""
    from webhooks.dispatcher import Dispatcher

    started = []

    def start(**options) -> Dispatcher:
        dispatcher = Dispatcher(**options)
        thread = threading.Thread(target=dispatcher.run, daemon=True)
        thread.start()
        dispatcher.thread = thread
        started.append(dispatcher)
        return dispatcher

    yield start
    for dispatcher in started:
        stop_dispatcher(dispatcher)


def stop_dispatcher(dispatcher, timeout: float = 60.0) -> None:
    dispatcher.stop.set()
    dispatcher.wake.set()
    dispatcher.thread.join(timeout)
    assert not dispatcher.thread.is_alive(), "dispatcher did not stop"
