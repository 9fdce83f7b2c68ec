"""The change feed: published events after a cursor, oldest first, paged, per tenant or account;
a malformed cursor is 400, one older than the retention 410 ``CursorExpired``."""

from __future__ import annotations

import pytest
from django.db import transaction

from tests.base import account_payload
from webhooks import events, sequencer
from webhooks import feed as changes
from webhooks.models import Event
from webhooks.payloads import event_payload

pytestmark = pytest.mark.django_db


def publish(tenant, count: int, account: str = "box", name: str = events.MESSAGE_NEW) -> None:
    with transaction.atomic():
        for n in range(count):
            events.record(tenant, name, account, {"n": n})
    sequencer.publish_pending()


def all_pages(client, url: str, since: str | None = None) -> tuple[list[dict], str, int]:
    got, pages = [], 0
    while True:
        query = f"{url}{'&' if '?' in url else '?'}since={since}" if since else url
        body = client.get(query).json()
        got += body["changes"]
        pages += 1
        since = body["nextCursor"]
        if not body["hasMore"]:
            return got, since, pages


def test_it_pages_the_tenants_changes_oldest_first_with_a_stable_cursor(alice, bob):
    publish(alice.tenant, 120)
    publish(bob.tenant, 30)
    publish(alice.tenant, 130, account="other")
    first = alice.client.get("/v1/changes")
    assert first.status_code == 200
    body = first.json()
    assert len(body["changes"]) == 100
    assert body["hasMore"] is True  # default page
    got, cursor, pages = all_pages(alice.client, "/v1/changes?limit=40")
    assert pages == 7
    assert len(got) == 250
    seqs = [change["seq"] for change in got]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == 250
    assert {change["account"] for change in got} == {"box", "other"}  # never Bob's
    assert got[0] == event_payload(Event.objects.get(seq=seqs[0]))
    assert alice.client.get(f"/v1/changes?pageSize=1000&since={cursor}").json() == {
        "changes": [], "nextCursor": cursor, "hasMore": False}

    publish(alice.tenant, 2, name=events.MESSAGE_DELETED)  # the same cursor continues
    later = alice.client.get(f"/v1/changes?since={cursor}").json()
    assert [c["event"] for c in later["changes"]] == ["messageDeleted"] * 2
    assert later["changes"][0]["seq"] == seqs[-1] + 1
    bobs = bob.client.get("/v1/changes?limit=1000").json()["changes"]
    assert len(bobs) == 30
    assert {c["data"]["n"] for c in bobs} == set(range(30))


def test_the_account_feed_has_only_that_accounts_changes(alice, bob):
    assert alice.client.post("/v1/account", account_payload("box"), format="json").status_code == 200
    publish(alice.tenant, 5)
    publish(alice.tenant, 5, account="elsewhere")
    got, _, _ = all_pages(alice.client, "/v1/account/box/changes?limit=2")
    # accountAdded from registration, then the five messageNew
    assert [c["event"] for c in got] == ["accountAdded"] + ["messageNew"] * 5
    assert {c["account"] for c in got} == {"box"}
    for client, url in ((alice.client, "/v1/account/nobody/changes"),
                        (bob.client, "/v1/account/box/changes")):
        response = client.get(url)
        assert response.status_code == 404
        assert response.json()["code"] == "AccountNotFound"


def test_filters_and_since_now(alice):
    publish(alice.tenant, 3)
    now = alice.client.get("/v1/changes?since=now").json()
    assert now["changes"] == []
    assert now["hasMore"] is False
    publish(alice.tenant, 2, name=events.MESSAGE_DELETED)
    publish(alice.tenant, 2, account="b", name=events.MESSAGE_UPDATED)
    after = alice.client.get(f"/v1/changes?since={now['nextCursor']}").json()["changes"]
    assert [c["event"] for c in after] == ["messageDeleted"] * 2 + ["messageUpdated"] * 2
    only = alice.client.get("/v1/changes?events=messageDeleted&events=messageUpdated"
                            "&accounts=b").json()["changes"]
    assert [c["event"] for c in only] == ["messageUpdated"] * 2
    # A filtered page that matched nothing still moves the cursor past what it scanned.
    page = alice.client.get("/v1/changes?accounts=zzz&limit=1").json()
    assert page["changes"] == []
    assert changes.decode_cursor(page["nextCursor"]) == changes.head()


def test_unpublished_events_are_not_shown(alice):
    publish(alice.tenant, 1)
    events.record(alice.tenant, events.MESSAGE_NEW, "box", {"pending": True})  # not published
    got = alice.client.get("/v1/changes").json()["changes"]
    assert len(got) == 1
    assert "pending" not in got[0]["data"]


def test_bad_input_is_400_and_changes_nothing(alice):
    publish(alice.tenant, 1)
    for query in ("since=%25%25", "since=-1", "since=czp4", "since=" + "9" * 30, "since=bm9wZQ"):
        response = alice.client.get(f"/v1/changes?{query}")
        assert response.status_code == 400, query
        assert response.json()["code"] == "InvalidCursor", query
    for query in ("limit=0", "limit=1001", "pageSize=abc", "limit=5&pageSize=6",
                  "events=messageNew,nope", "accounts=a%09b", "account=", "bogus=1"):
        response = alice.client.get(f"/v1/changes?{query}")
        assert response.status_code == 400, query
        assert response.json()["code"] == "InputValidationError", query
    assert alice.client.get("/v1/stream?once=true&since=%25").json()["code"] == "InvalidCursor"
    assert alice.client.get("/v1/stream?once=maybe").status_code == 400
    assert Event.objects.count() == 1


def test_a_cursor_older_than_the_retention_is_410(alice):
    publish(alice.tenant, 10)
    seqs = list(Event.objects.order_by("seq").values_list("seq", flat=True))
    cursor_at = {seq: changes.encode_cursor(seq) for seq in seqs}
    Event.objects.filter(seq__lte=seqs[4]).delete()  # what pruning does to the oldest
    for since in (cursor_at[seqs[0]], str(seqs[2])):
        for url in ("/v1/changes", "/v1/account/box/changes", "/v1/stream"):
            if "account/" in url:
                alice.client.post("/v1/account", account_payload("box"), format="json")
            once = "&once=true" if url == "/v1/stream" else ""
            response = alice.client.get(f"{url}?since={since}{once}")
            assert response.status_code == 410, (url, since)
            assert response.json() == {"statusCode": 410, "error": "Gone",
                                       "message": response.json()["message"],
                                       "code": "CursorExpired", "emailapiCode": "CursorExpired"}
    # Right at the pruned horizon nothing was lost.
    fine = alice.client.get(f"/v1/changes?since={cursor_at[seqs[4]]}").json()["changes"]
    assert [c["seq"] for c in fine] == seqs[5:]
    # A cursor from beyond anything published (a restored or renumbered database) too.
    ahead = alice.client.get(f"/v1/changes?since={changes.encode_cursor(seqs[-1] + 50)}")
    assert ahead.status_code == 410


def test_a_cursor_past_the_retention_is_410_even_before_pruning(alice, settings):
    """Events older than EVENT_RETENTION_DAYS may vanish at any moment (and some survive,
    owed to a late delivery): the feed starts after them and refuses cursors before them."""
    from datetime import timedelta

    from django.utils import timezone

    settings.EVENT_RETENTION_DAYS = 7
    publish(alice.tenant, 6)
    seqs = list(Event.objects.order_by("seq").values_list("seq", flat=True))
    Event.objects.filter(seq__lte=seqs[2]).update(
        dispatched_at=timezone.now() - timedelta(days=7, hours=1))
    fresh = alice.client.get("/v1/changes").json()["changes"]
    assert [c["seq"] for c in fresh] == seqs[3:]
    assert alice.client.get(f"/v1/changes?since={seqs[0]}").status_code == 410
    assert alice.client.get(f"/v1/stream?once=true&since={seqs[1]}").status_code == 410
    kept = alice.client.get(f"/v1/changes?since={seqs[2]}").json()["changes"]
    assert [c["seq"] for c in kept] == seqs[3:]


def test_the_sse_snapshot_replays_after_since_with_ids(alice, bob):
    from tests.webhooks.stream_clients import parse_events

    start = changes.head()
    publish(alice.tenant, 3)
    publish(bob.tenant, 1)
    response = alice.client.get(f"/v1/stream?once=true&since={start}",
                                HTTP_ACCEPT="text/event-stream")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/event-stream")
    got = parse_events(response.content.decode())
    assert [int(e["id"]) for e in got] == [start + 1, start + 2, start + 3]
    assert {e["data"]["account"] for e in got} == {"box"}
    resumed = alice.client.get("/v1/stream?once=true", HTTP_LAST_EVENT_ID=str(start + 2))
    assert [int(e["id"]) for e in parse_events(
        resumed.content.decode())] == [start + 3]
    unauthorized = alice.client.__class__().get("/v1/stream", HTTP_ACCEPT="text/event-stream")
    assert unauthorized.status_code == 401
    assert unauthorized.json()["code"] == "Unauthorized"


def test_cursors_round_trip_and_accept_a_bare_seq():
    for seq in (0, 1, 42, 2 ** 62):
        assert changes.decode_cursor(changes.encode_cursor(seq)) == seq
        assert changes.decode_cursor(str(seq)) == seq
    for bad in ("", "%%", "czp4", "eDox", "-5", "１２"):
        with pytest.raises(changes.InvalidCursor):
            changes.decode_cursor(bad)
