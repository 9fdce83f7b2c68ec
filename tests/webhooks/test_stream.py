"""The live event stream through a real daphne: WebSocket and SSE clients receive the same
events, resume with their last id with nothing missed or repeated, see only their tenant and
their filters, and a client that stops reading is dropped while others keep receiving."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction

from tests.webhooks.stream_clients import Daphne, EventStream, WebSocket, parse_events
from webhooks import events, feed, sequencer

pytestmark = pytest.mark.django_db(transaction=True)

# A client is slow after 5 s behind (a busy machine can stall a reading test thread for a
# second or two); the slow client of the test is dropped by its full queue first anyway.
SERVER_ENV = {"EMAILAPI_STREAM_KEEPALIVE": "1", "EMAILAPI_STREAM_POLL_INTERVAL": "10",
              "EMAILAPI_STREAM_CLIENT_QUEUE": "2000", "EMAILAPI_STREAM_CLIENT_BUFFER": "65536",
              "EMAILAPI_STREAM_SLOW_SECONDS": "5"}


@pytest.fixture
def server(settings):
    daphne = Daphne(settings, **SERVER_ENV)
    yield daphne
    daphne.stop()


def publish(tenant, count: int, account: str = "box", name: str = events.MESSAGE_NEW,
            size: int = 0) -> None:
    with transaction.atomic():
        for n in range(count):
            events.record(tenant, name, account, {"n": n, "pad": "x" * size})
    sequencer.publish_pending()


def ws(server, token: str, query: str = "") -> WebSocket:
    return WebSocket(server.port, f"/v1/stream?access_token={token}{query}")


def sse(server, token: str, query: str = "", rcvbuf: int | None = None,
        **headers: str) -> EventStream:
    stream = EventStream(server.port, f"/v1/stream?{query}",
                         {"Authorization": f"Bearer {token}", **headers}, rcvbuf=rcvbuf)
    assert stream.status == 200, stream.body()
    assert stream.headers["content-type"].startswith("text/event-stream")
    return stream


def test_a_websocket_and_an_sse_client_receive_the_same_events_of_their_tenant_only(
        server, alice, bob):
    start = feed.head()
    socket_client = ws(server, alice.token, f"&since={start}")
    event_client = sse(server, alice.token, f"since={start}")
    publish(alice.tenant, 3)
    publish(bob.tenant, 2)
    publish(alice.tenant, 2, account="other", name=events.MESSAGE_DELETED)

    over_ws = [socket_client.receive() for _ in range(5)]
    over_sse = [event_client.next_event() for _ in range(5)]
    assert [e["data"] for e in over_sse] == over_ws
    assert [int(e["id"]) for e in over_sse] == [e["seq"] for e in over_ws]
    assert [e["event"] for e in over_sse] == [e["event"] for e in over_ws]
    seqs = [e["seq"] for e in over_ws]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == 5
    assert [e["account"] for e in over_ws] == ["box"] * 3 + ["other"] * 2
    first = over_ws[0]
    assert set(first) == {"id", "seq", "event", "account", "date", "data"}
    assert first["event"] == "messageNew"
    assert first["data"] == {"n": 0, "pad": ""}

    # Bob's events were published between Alice's: they never reach her, on either transport.
    publish(alice.tenant, 1, name=events.MESSAGE_UPDATED)
    assert socket_client.receive()["event"] == "messageUpdated"
    assert event_client.next_event()["event"] == "messageUpdated"
    bobs = sse(server, bob.token, f"since={start}")
    assert [bobs.next_event()["data"]["data"]["n"] for _ in range(2)] == [0, 1]
    for client in (socket_client, event_client, bobs):
        client.close()


def test_a_reconnect_with_the_last_id_resumes_with_nothing_missed(server, alice):
    start = feed.head()
    first = sse(server, alice.token, f"since={start}")
    publish(alice.tenant, 3)
    seen = [first.next_event() for _ in range(3)]
    first.close()
    publish(alice.tenant, 4)  # while disconnected

    again = sse(server, alice.token, **{"Last-Event-ID": seen[-1]["id"]})
    replayed = [again.next_event() for _ in range(4)]
    assert [e["data"]["data"]["n"] for e in replayed] == [0, 1, 2, 3]
    publish(alice.tenant, 1, name=events.MESSAGE_DELETED)  # and live again
    live = again.next_event()
    assert live["event"] == "messageDeleted"
    ids = [int(e["id"]) for e in seen + replayed + [live]]
    assert ids == list(range(start + 1, start + 9))

    socket_client = ws(server, alice.token, f"&since={seen[-1]['id']}")
    assert [socket_client.receive()["seq"] for _ in range(5)] == ids[3:]
    again.close()
    socket_client.close()


def test_joining_while_events_pour_in_gives_each_exactly_once_in_order(server, alice):
    """Replay pages (500) and the live hand-over race with a writer publishing all along."""
    start = feed.head()
    publish(alice.tenant, 700)
    stop = threading.Event()

    def writer():
        try:
            while not stop.is_set():
                publish(alice.tenant, 7)
                time.sleep(0.01)
        finally:
            connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        client = ws(server, alice.token, f"&since={start}")
        received = [client.receive()["seq"] for _ in range(1200)]
    finally:
        stop.set()
        thread.join(30)
    assert received == list(range(start + 1, start + 1201))
    client.close()


def test_filters_by_account_and_event(server, alice):
    start = feed.head()
    client = ws(server, alice.token,
                f"&since={start}&accounts=a1&accounts=a2&events=messageNew,messageDeleted")
    publish(alice.tenant, 1, account="a1")
    publish(alice.tenant, 1, account="a3")
    publish(alice.tenant, 1, account="a2", name=events.MESSAGE_UPDATED)
    publish(alice.tenant, 1, account="a2", name=events.MESSAGE_DELETED)
    got = [client.receive() for _ in range(2)]
    assert [(e["account"], e["event"]) for e in got] == [("a1", "messageNew"),
                                                         ("a2", "messageDeleted")]
    # The same filter over the replay (SQL) as over the live path (in memory).
    replay = alice.client.get(f"/v1/stream?once=true&since={start}&accounts=a1,a2"
                              f"&events=messageNew&events=messageDeleted")
    body = replay.content.decode()
    assert [(e["data"]["account"], e["event"]) for e in parse_events(body)] == [
        ("a1", "messageNew"), ("a2", "messageDeleted")]
    client.close()


def test_the_doorbell_wakes_the_stream_and_the_poll_covers_its_loss(server, alice, settings):
    client = sse(server, alice.token, f"since={feed.head()}")
    began = time.monotonic()
    publish(alice.tenant, 1)
    assert client.next_event()["data"]["data"]["n"] == 0
    assert time.monotonic() - began < 5, "the doorbell should beat the 10 s poll"

    settings.EMAILAPI_REDIS_PREFIX = "nobody-listens-here"  # the ring goes nowhere
    publish(alice.tenant, 1, name=events.MESSAGE_DELETED)
    assert client.next_event()["event"] == "messageDeleted"  # found by the poll
    client.wait_comment(": keep-alive")  # silence: a keep-alive comment comes (every 1 s)
    publish(alice.tenant, 1, name=events.MESSAGE_UPDATED)
    assert client.next_event()["event"] == "messageUpdated"
    client.close()


def test_a_slow_client_is_dropped_while_a_fast_one_keeps_receiving(server, alice):
    start = feed.head()
    slow = sse(server, alice.token, f"since={start}", rcvbuf=4096)  # reads only at the end
    fast = WebSocket(server.port, f"/v1/stream?access_token={alice.token}&since={start}",
                     timeout=120)
    total = 3000
    received, failed = [], []

    def read_fast():
        try:
            while len(received) < total:
                received.append(fast.receive()["seq"])
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            failed.append(repr(exc))

    reader = threading.Thread(target=read_fast)
    reader.start()
    for _ in range(3):
        publish(alice.tenant, total // 3, size=3000)
    reader.join(300)
    assert received == list(range(start + 1, start + total + 1)), (len(received), failed)

    got_slow = []
    slow.sock.settimeout(10)
    try:
        while (event := slow.next_event()) is not None:
            got_slow.append(int(event["id"]))
        assert slow.ended
    except ConnectionResetError:
        pass  # cut 2 s after the drop, its unread bytes with it: also an end
    assert len(got_slow) < total, "the slow client should have been dropped"
    assert got_slow == list(range(start + 1, start + len(got_slow) + 1))
    # It resumes from its last id and gets the rest.
    last = got_slow[-1] if got_slow else start
    resumed = sse(server, alice.token, **{"Last-Event-ID": str(last)})
    rest = [int(resumed.next_event()["id"]) for _ in range(total - len(got_slow))]
    assert got_slow + rest == received
    for client in (slow, fast, resumed):
        client.close()


def test_refusals_over_websocket_close_with_a_code_and_the_error_body(server, alice):
    cases = [
        ("/v1/stream", {}, 4401, "Unauthorized"),
        (f"/v1/stream?access_token=eapi_{'x' * 43}", {}, 4401, "InvalidToken"),
        ("/v1/stream", {"Authorization": f"Bearer {alice.token}x"}, 4401, "InvalidToken"),
        (f"/v1/stream?access_token={alice.token}&events=nope", {}, 4400,
         "InputValidationError"),
        (f"/v1/stream?access_token={alice.token}&since=%%%", {}, 4400, "InvalidCursor"),
        (f"/v1/stream?access_token={alice.token}&since=99999999", {}, 4410, "CursorExpired"),
    ]
    for path, headers, code, error in cases:
        client = WebSocket(server.port, path, headers)
        assert client.receive()["code"] == error, path
        assert client.receive() is None, path
        assert client.close_code == code, path
        client.close()
    metrics = alice.client_with("metrics")
    token = metrics._credentials["HTTP_AUTHORIZATION"].split()[1]
    client = WebSocket(server.port, "/v1/stream", {"Authorization": f"Bearer {token}"})
    assert client.receive()["code"] == "InsufficientScope"
    assert client.receive() is None
    assert client.close_code == 4403
    client.close()

    unauthorized = EventStream(server.port, "/v1/stream")
    assert unauthorized.status == 401
    assert '"Unauthorized"' in unauthorized.body()
    unauthorized.close()


def test_open_streams_end_once_their_token_is_revoked_or_their_tenant_stopped(server, alice):
    """Checked every keep-alive (1 s here): a revoked token's SSE and WebSocket streams end
    (the socket with 4401) while another token's stream goes on; a stopped tenant's streams
    end alike. New requests with the token are refused at once as before."""
    from accounts import plans, services

    revoked, raw = services.issue_token(alice.tenant, "to revoke", ["read"])
    _, other = services.issue_token(alice.tenant, "kept", ["read"])
    start = feed.head()
    socket_client, event_client = ws(server, raw, f"&since={start}"), sse(server, raw,
                                                                          f"since={start}")
    kept = sse(server, other, f"since={start}")
    publish(alice.tenant, 1)
    assert socket_client.receive()["data"]["n"] == 0
    assert event_client.next_event()["data"]["data"]["n"] == 0
    assert alice.client.delete(f"/v1/token/{revoked.pk}").status_code == 200
    assert event_client.ends_within(20)
    assert socket_client.receive() is None  # closed, with no event sent meanwhile
    assert socket_client.close_code == 4401
    publish(alice.tenant, 1)
    assert [kept.next_event()["data"]["data"]["n"] for _ in range(2)] == [0, 0]
    for client in (socket_client, event_client):
        client.close()

    plans.expire(alice.tenant)
    assert kept.ends_within(20)
    kept.close()


def _threads(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("Threads:"))


def test_many_clients_cost_no_thread_each_and_all_receive(server, alice):
    start = feed.head()
    warm = [sse(server, alice.token, f"since={start}"), ws(server, alice.token, f"&since={start}")]
    before = _threads(server.process.pid)
    clients = [sse(server, alice.token, f"since={start}") for _ in range(100)]
    clients += [ws(server, alice.token, f"&since={start}") for _ in range(100)]
    assert _threads(server.process.pid) <= before + 8  # the shared pools, not 200 threads
    publish(alice.tenant, 1)
    for client in warm + clients:
        event = client.next_event() if isinstance(client, EventStream) else client.receive()
        seq = int(event["id"]) if isinstance(client, EventStream) else event["seq"]
        assert seq == start + 1
        client.close()
