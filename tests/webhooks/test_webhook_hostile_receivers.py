"""Hostile or broken receivers against the dispatcher, which serves every tenant: a receiver
dripping its answer (slow loris), one answering with a malformed status line, one hanging up
mid-answer. Each attempt ends, is recorded as a failure in our words and retried; the event
is never lost, and never recorded as delivered without a whole 2xx answer. Real PostgreSQL,
Redis and a scripted loopback receiver (``tests.servers.hostile_http``)."""

from __future__ import annotations

import pytest

from tests.base import wait_for
from tests.servers.hostile_http import drip, once
from webhooks import events, transport
from webhooks.models import Delivery

pytestmark = pytest.mark.django_db(transaction=True)

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def subscribe(tenant_fixture, url) -> dict:
    response = tenant_fixture.client.post("/v1/webhooks", {"url": url, "events": ["*"]},
                                          format="json")
    assert response.status_code == 200, response.json()
    return response.json()


def failed_with(error: str):
    def check():
        return Delivery.objects.filter(last_error=error, state="pending",
                                       attempts__gte=1).first()
    return check


def test_a_slow_loris_receiver_is_let_go_and_the_delivery_retried(
        alice, allow_private_webhooks, settings, hostile_http, start_dispatcher):
    """One byte every 0.2 s never trips the 1 s read timeout, and the answer would last
    hours: the attempt ends within its deadline, well before its lease, and is recorded."""
    settings.WEBHOOK_TIMEOUT = 1
    settings.WEBHOOK_RETRY_SCHEDULE = [3600]
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"
    server = hostile_http(drip(b"x" * 100_000, 0.2, first=head))
    subscribe(alice, server.url())
    start_dispatcher()
    events.record(alice.tenant, events.MESSAGE_NEW, "box", {"uid": 1})
    delivery = wait_for(failed_with("Timed out waiting for the answer"))
    assert delivery.last_status_code is None
    assert delivery.attempts == 1
    server.wait_for(lambda exchanges: exchanges[0].hung_up_at)


@pytest.mark.parametrize("status_line", ["HTTP/1.1 2²0 OK", "HTTP/1.1 099 Odd"])
def test_a_malformed_status_line_is_a_failed_attempt_in_words_then_delivered(
        alice, allow_private_webhooks, fast_retries, hostile_http, start_dispatcher, status_line):
    """Before, ``2²0`` raised ValueError out of the transport: the lane stopped with a
    traceback, the attempt was never recorded, and the delivery went out again at every
    lease's end, for ever."""
    answer = f"{status_line}\r\nContent-Length: 0\r\n\r\n".encode("latin-1")
    server = hostile_http(once(answer))
    subscribe(alice, server.url())
    start_dispatcher()
    event = events.record(alice.tenant, events.MESSAGE_NEW, "box", {"uid": 1})
    wait_for(failed_with("The server's answer is not HTTP"))
    server.script = once(OK)
    delivered = wait_for(lambda: Delivery.objects.filter(event=event, state="delivered").first())
    assert delivered.last_status_code == 200
    assert delivered.attempts >= 2


def test_a_receiver_hanging_up_mid_answer_is_a_failure_and_the_event_is_sent_again(
        alice, allow_private_webhooks, fast_retries, hostile_http, start_dispatcher):
    """A 2xx head whose body never comes whole is not a delivery."""
    server = hostile_http(once(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part"))
    subscribe(alice, server.url())
    start_dispatcher()
    event = events.record(alice.tenant, events.MESSAGE_NEW, "box", {"uid": 1})
    wait_for(failed_with("The connection closed before a complete answer"))
    assert not Delivery.objects.filter(event=event, state="delivered").exists()
    server.script = once(OK)
    wait_for(lambda: Delivery.objects.filter(event=event, state="delivered").exists())
    assert all(str(event.id).encode() in exchange.request for exchange in server.exchanges)


def test_the_transport_says_not_http_for_a_status_code_int_refuses(hostile_http):
    server = hostile_http(once("HTTP/1.1 2²0 OK\r\nContent-Length: 0\r\n\r\n".encode("latin-1")))
    outcome = transport.post(server.url(), b"{}", {}, timeout=5, allow_private=True)
    assert outcome.status_code is None
    assert outcome.error == "The server's answer is not HTTP"
