"""The shared outbound HTTP client (``emailapi.lib.http``) against a hostile or broken peer
(``tests.servers.hostile_http``): a tenant chooses the webhook receivers and OAuth2 token
endpoints we call, and one webhook dispatcher serves every tenant, so no answer may hold a
request for ever, spin a thread on an endless stream of small pieces, or raise anything but
``RequestFailed`` in our words."""

from __future__ import annotations

import time

import pytest

from emailapi.lib import http
from tests.servers.hostile_http import drip, once, repeat

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def send(url, *, timeout=5.0, max_bytes=1024):
    return http.request("POST", url, b"{}", {"Content-Type": "application/json"},
                        timeout=timeout, allow_private=True, max_bytes=max_bytes)


@pytest.mark.parametrize("head_at_once", [False, True], ids=["head-dripped", "body-dripped"])
def test_a_slow_loris_answer_cannot_hold_the_request_past_its_deadline(hostile_http, head_at_once):
    """One byte every 0.1 s never trips a 0.5 s read timeout, and the whole answer would take
    10 s: the request as a whole ends within ``TOTAL_TIMEOUTS`` times the timeout."""
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 60\r\n\r\n"
    body = b"x" * 60
    script = drip(body, 0.1, first=head) if head_at_once else drip(head + body, 0.1)
    server = hostile_http(script)
    started = time.monotonic()
    with pytest.raises(http.RequestFailed) as caught:
        send(server.url(), timeout=0.5)
    took = time.monotonic() - started
    assert str(caught.value) == "Timed out waiting for the answer"
    assert took < 0.5 * http.TOTAL_TIMEOUTS + 2  # the dripped answer takes 10 s
    server.wait_for(lambda exchanges: exchanges[0].hung_up_at)


def test_an_answer_slower_than_the_timeout_but_within_the_deadline_arrives_whole(hostile_http):
    """The deadline is not the read timeout: an answer coming in pieces for 1.2 s in all
    (each well within the 1 s timeout) is read whole, as before."""
    server = hostile_http(drip(OK, 0.03))
    assert send(server.url(), timeout=1.0).body == b"ok"


def test_an_endless_run_of_informational_answers_is_not_http(hostile_http):
    """A real server sends one or two (100 Continue, 103 Early Hints); 50,000 in a row would
    keep a thread parsing for as long as the server likes."""
    server = hostile_http(repeat(b"", b"HTTP/1.1 100 Continue\r\n\r\n", 50_000, OK))
    with pytest.raises(http.RequestFailed) as caught:
        send(server.url())
    assert str(caught.value) == "The server's answer is not HTTP"


def test_a_few_informational_answers_are_still_skipped(hostile_http):
    server = hostile_http(once(b"HTTP/1.1 100 Continue\r\n\r\n"
                          + b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" * 3
                          + OK))
    answer = send(server.url())
    assert answer.status == 200
    assert answer.body == b"ok"


def test_an_endless_trailer_section_is_not_http(hostile_http):
    """Trailers after the last chunk are bounded like the head: 7 MB of them is not an
    answer."""
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n"
    server = hostile_http(repeat(head, b"X-Trailer: t\r\n", 500_000, b"\r\n"))
    with pytest.raises(http.RequestFailed) as caught:
        send(server.url())
    assert str(caught.value) == "The server's answer is not HTTP"


def test_a_few_trailers_are_still_read(hostile_http):
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n"
    server = hostile_http(repeat(head, b"X-Trailer: t\r\n", 100, b"\r\n"))
    assert send(server.url()).body == b"ok"


@pytest.mark.parametrize("status_line", [
    "HTTP/1.1 2²0 OK",  # digits to str.isdigit, not to int()
    "HTTP/1.1 ¹²³ Odd",
    "HTTP/1.1 099 Below",  # not informational: below 100 is no status at all
    "HTTP/1.1 000 Zero",
])
def test_a_malformed_status_code_is_not_http_in_words(hostile_http, status_line):
    server = hostile_http(once(f"{status_line}\r\nContent-Length: 0\r\n\r\n".encode("latin-1")
                               + OK))
    with pytest.raises(http.RequestFailed) as caught:
        send(server.url())
    assert str(caught.value) == "The server's answer is not HTTP"
