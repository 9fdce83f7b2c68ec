"""One webhook request against a real loopback receiver: redirects not followed, answers
capped, timeouts bounded, the address check repeated at send time, signatures verifiable."""

from __future__ import annotations

import time

import pytest

from emailapi.lib import netguard
from webhooks import signing, transport


def post(url, *, timeout=5.0, allow_private=True):
    return transport.post(url, b'{"a":1}', {"Content-Type": "application/json"},
                          timeout=timeout, allow_private=allow_private)


def test_a_2xx_is_success_and_the_host_header_names_the_url_host(webhook_receiver):
    receiver = webhook_receiver()
    port = receiver.url.split(":")[2].split("/")[0]
    outcome = post(f"http://localhost:{port}/hook?q=1")
    assert outcome.ok
    assert outcome.status_code == 200
    assert outcome.body == b'{"ok":true}'
    [request] = receiver.requests
    assert request.headers["Host"] == f"localhost:{port}"
    assert request.path == "/hook?q=1"
    assert request.body == b'{"a":1}'


def test_redirects_are_not_followed(webhook_receiver):
    target = webhook_receiver()
    redirecting = webhook_receiver(redirect_to=target.url)
    outcome = post(redirecting.url)
    assert not outcome.ok
    assert outcome.status_code == 302
    assert "not followed" in outcome.error
    assert target.requests == []


def test_a_never_ending_answer_is_read_only_up_to_the_cap(webhook_receiver):
    receiver = webhook_receiver(endless=True)
    started = time.monotonic()
    outcome = post(receiver.url)
    assert outcome.ok
    assert len(outcome.body) == transport.MAX_RESPONSE_BYTES
    assert time.monotonic() - started < 20  # reading all 640 MB would take far longer


def test_a_receiver_that_does_not_answer_times_out(webhook_receiver):
    receiver = webhook_receiver(sleep=60)
    started = time.monotonic()
    outcome = post(receiver.url, timeout=1)
    assert outcome.status_code is None
    assert "Timed out" in outcome.error
    assert time.monotonic() - started < 20  # the 1 s timeout, not the 60 s answer


def test_refused_connection_and_unresolvable_host_are_failures_not_exceptions():
    refused = post("http://127.0.0.1:9/hook")
    assert refused.status_code is None
    assert refused.error
    unknown = post("http://no-such-host.invalid/hook")
    assert unknown.status_code is None
    assert "resolve" in unknown.error


def test_the_address_is_checked_again_at_send_time(webhook_receiver):
    """A subscription saved while allowed (or a name whose DNS changed) is refused when the
    request is made: nothing reaches the internal address."""
    receiver = webhook_receiver()
    outcome = post(receiver.url, allow_private=False)
    assert outcome.status_code is None
    assert "internal address" in outcome.error
    assert receiver.requests == []


@pytest.mark.parametrize("url", ["ftp://example.com/", "http://", "http://u:p@example.com/",
                                 "http://exa mple.com/", "javascript:alert(1)"])
def test_malformed_urls_are_refused(url):
    with pytest.raises(netguard.UnsafeTarget):
        netguard.parse_url(url)


def test_signature_is_hmac_sha256_of_timestamp_dot_body():
    import hashlib
    import hmac

    expected = hmac.new(b"key", b"1700000000.{}", hashlib.sha256).hexdigest()
    assert signing.signature("key", "1700000000", b"{}") == f"sha256={expected}"
    assert signing.verify("key", "1700000000", b"{}", f"sha256={expected}")
    assert not signing.verify("key", "1700000001", b"{}", f"sha256={expected}")


def test_connections_are_kept_alive_and_reused(webhook_receiver):
    receiver = webhook_receiver()
    assert all(post(receiver.url).ok for _ in range(5))
    assert len(receiver.requests) == 5
    assert receiver.connections_opened == 1


def test_a_kept_connection_the_receiver_closed_is_replaced_without_a_failure(webhook_receiver):
    receiver = webhook_receiver()
    assert post(receiver.url).ok
    receiver.drop_connections()
    time.sleep(0.1)
    outcome = post(receiver.url)
    assert outcome.ok, outcome.error
    assert receiver.connections_opened == 2


def test_a_connection_with_an_unread_answer_is_not_reused(webhook_receiver):
    receiver = webhook_receiver(endless=True)
    assert post(receiver.url).ok
    receiver.endless = False
    outcome = post(receiver.url)
    assert outcome.ok
    assert outcome.body == b'{"ok":true}'
    assert receiver.connections_opened == 2
