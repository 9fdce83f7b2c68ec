"""Opens and clicks fetched while the database is unavailable (``mailboxes.tracking_spool``):
the reader gets the image or the redirect, the fetch is kept in Redis, and once the database
is back the webhook dispatcher records it, once, dated when it happened. A drainer that dies
half-way loses nothing and a replay duplicates nothing; the spool is capped; with the database
up, recording asks Redis nothing.

The outages are real: the web server (daphne, ``Daphne``) reaches PostgreSQL and Redis through
``TcpProxy`` loopback proxies the test cuts (the suite's servers stay up for everyone else); a
drain's database fault is a statement past its limit, waiting on a lock another session holds.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import signal
import threading
import uuid
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.db import OperationalError, connection
from django.test import Client
from django.utils import timezone

from accounts import usage
from accounts.models import EmailAccount
from emailapi.lib.redis import get_redis
from mailboxes import tracking, tracking_events, tracking_spool
from tests.base import sessions_waiting_on_a_lock, side_connection, wait_for
from tests.emailapi.db_faults import database_url, get
from tests.servers.tcp_proxy import TcpProxy
from tests.webhooks import conftest as webhook_fixtures
from tests.webhooks.stream_clients import Daphne
from tests.webhooks.test_webhook_dispatcher_process import _dispatcher_sessions, _spawn
from webhooks.models import Event

start_dispatcher = webhook_fixtures.start_dispatcher

BASE = "http://testserver"
MESSAGE_ID = "<offer-1@example.test>"
OFFER = "https://shop.example/offer?a=1&b=2"
TRACK_EVENTS = ("trackOpen", "trackClick")


@pytest.fixture
def box(alice) -> EmailAccount:
    return EmailAccount.objects.create(tenant=alice.tenant, account_id="box")


def _local(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _links(tenant_id: int) -> tuple[str, str]:
    """The image's and the offer link's path and query, as the message's HTML has them."""
    return (_local(tracking.open_link(BASE, tenant_id, "box", MESSAGE_ID)),
            _local(tracking.click_link(BASE, tenant_id, "box", MESSAGE_ID, OFFER)))


def _tracked() -> list[Event]:
    return list(Event.objects.filter(event__in=TRACK_EVENTS).order_by("event"))


def _fetch(tenant_id: int, kind: str = tracking.OPEN, **fields) -> tracking_events.Fetch:
    link = {"tenant": tenant_id, "account": "box", "message": MESSAGE_ID}
    if kind == tracking.CLICK:
        link["url"] = OFFER
    return tracking_events.Fetch(kind, link, fields.pop("address", "192.0.2.5"),
                                 fields.pop("user_agent", "Reader/1"), **fields)


def _spooled() -> list[dict]:
    """The spool's fetches, oldest first (the ones being recorded not included)."""
    return [json.loads(raw) for raw in reversed(get_redis().lrange(tracking_spool.spool_key(),
                                                                   0, -1))]


def _taken() -> list[dict]:
    return [json.loads(raw) for raw in get_redis().lrange(tracking_spool.taken_key(), 0, -1)]


class Killed(BaseException):
    """The drainer's process dying at this point (nothing catches it)."""


# -- through the web server --------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # the web server's and the dispatcher's connections
def test_fetches_during_an_outage_are_served_and_recorded_once_the_database_is_back(
        alice, box, settings, start_dispatcher):
    pixel_url, link_url = _links(alice.tenant.pk)
    database = TcpProxy(int(connection.settings_dict["PORT"] or 5432)).start()
    web = Daphne(settings, DATABASE_URL=database_url(port=database.port),
                 EMAILAPI_DB_POOL_WAIT="1")
    try:
        database.cut()
        before = timezone.now()
        status, headers, body, _ = get(web.port, pixel_url)
        assert status == 200
        assert headers["Content-Type"] == "image/gif"
        assert body[:6] == b"GIF89a"
        status, headers, _, _ = get(web.port, link_url)
        assert status == 302
        assert headers["Location"] == OFFER
        fetched = timezone.now()
        spooled = wait_for(lambda: len(_spooled()) == 2 and _spooled(), timeout=30)
        assert sorted(item["kind"] for item in spooled) == ["click", "open"]
        assert _tracked() == []
        database.restore()
        log = web.log()
    finally:
        web.stop()
        database.stop()
    assert "Tracking event kept in the spool: trackOpen of <offer-1@example.test>" in log

    start_dispatcher()
    wait_for(lambda: len(_tracked()) >= 2, timeout=30)
    wait_for(lambda: tracking_spool.waiting() == 0)
    click, opened = _tracked()
    assert len(_tracked()) == 2
    assert (click.event, click.account_id, click.tenant_id) == ("trackClick", "box",
                                                                 alice.tenant.pk)
    assert click.data == {"messageId": MESSAGE_ID, "url": OFFER, "remoteAddress": "127.0.0.1",
                          "userAgent": ""}
    assert (opened.event, opened.account_id) == ("trackOpen", "box")
    assert opened.data == {"messageId": MESSAGE_ID, "remoteAddress": "127.0.0.1",
                           "userAgent": ""}
    # Dated when fetched, not when drained.
    for event in (opened, click):
        assert before <= event.created_at <= fetched
        assert str(event.id) in {item["id"] for item in spooled}


@pytest.mark.django_db(transaction=True)  # the web server's own connections
def test_past_the_cap_and_with_redis_down_too_a_fetch_is_dropped_and_the_log_says_so(
        alice, box, settings):
    pixel_url, _ = _links(alice.tenant.pk)
    database = TcpProxy(int(connection.settings_dict["PORT"] or 5432)).start()
    store = TcpProxy(urlsplit(settings.REDIS_URL).port or 6379).start()
    redis_db = urlsplit(settings.REDIS_URL).path
    web = Daphne(settings, DATABASE_URL=database_url(port=database.port),
                 REDIS_URL=f"redis://127.0.0.1:{store.port}{redis_db}",
                 EMAILAPI_DB_POOL_WAIT="1", EMAILAPI_TRACKING_SPOOL_MAX="2",
                 EMAILAPI_TRUSTED_PROXIES="127.0.0.1")
    try:
        database.cut()
        # A scanner's fetch (one of Google's crawler addresses) is not kept: it would record
        # nothing with the database up either.
        assert _get_from(web.port, pixel_url, "66.249.87.5") == 200
        wait_for(lambda: "Detected automated request from 66.249.87.5" in web.log(), timeout=30)
        assert _spooled() == []
        for _ in range(3):
            assert get(web.port, pixel_url)[0] == 200
        wait_for(lambda: "the tracking spool is full (EMAILAPI_TRACKING_SPOOL_MAX, 2)"
                 in web.log(), timeout=30)
        assert len(_spooled()) == 2
        store.cut()
        assert get(web.port, pixel_url)[0] == 200
        wait_for(lambda: "Tracking event LOST: trackOpen of <offer-1@example.test>" in web.log(),
                 timeout=60)
        assert len(_spooled()) == 2
    finally:
        web.stop()
        database.stop()
        store.stop()
    assert web.log().count("Tracking event kept in the spool") == 2
    assert web.log().count("Tracking event dropped") == 1


def _get_from(port: int, path: str, forwarded_for: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path, headers={"X-Forwarded-For": forwarded_for})
        return conn.getresponse().status
    finally:
        conn.close()


# -- the happy path ------------------------------------------------------------------------------


def test_with_the_database_up_a_fetch_is_recorded_without_asking_redis(alice, box, settings):
    """Redis unreachable (a cut proxy, which counts every connection attempt): the event is
    recorded all the same, and nothing tried to reach Redis. (The test's transaction never
    commits, so the outbox's doorbell, rung after a commit and older than the spool, stays
    out of it.)"""
    pixel_url, link_url = _links(alice.tenant.pk)
    # API calls earlier tests of this process counted (accounts.usage) are added to Redis now,
    # not by the counter's own thread through the proxy meanwhile.
    usage.flush()
    with TcpProxy(urlsplit(settings.REDIS_URL).port or 6379) as store:
        store.cut()
        settings.REDIS_URL = f"redis://127.0.0.1:{store.port}/0"
        assert Client().get(pixel_url, REMOTE_ADDR="192.0.2.5").status_code == 200
        assert Client().get(link_url, REMOTE_ADDR="192.0.2.5").status_code == 302
        assert store.accepted == 0
    assert [event.event for event in _tracked()] == ["trackClick", "trackOpen"]


def test_the_event_of_a_direct_record_has_the_fetchs_id_and_time(alice, box):
    fetch = _fetch(alice.tenant.pk, at=timezone.now() - timedelta(seconds=30))
    assert tracking_events.record(fetch) is True
    event, = _tracked()
    assert event.id == fetch.event_id
    assert event.created_at == fetch.at


# -- draining ------------------------------------------------------------------------------------


def test_a_spooled_fetch_is_recorded_once_with_its_own_time(alice, box):
    fetch = _fetch(alice.tenant.pk, tracking.CLICK, at=timezone.now() - timedelta(minutes=5))
    assert tracking_spool.keep(fetch.as_item()) is True
    assert tracking_events.drain_spool() == 1
    event, = _tracked()
    assert (event.id, event.created_at, event.event) == (fetch.event_id, fetch.at, "trackClick")
    assert event.data == {"messageId": MESSAGE_ID, "url": OFFER, "remoteAddress": "192.0.2.5",
                          "userAgent": "Reader/1"}
    assert tracking_spool.waiting() == 0
    assert tracking_events.drain_spool() == 0


def test_fetches_are_recorded_in_the_order_they_were_kept(alice, box):
    fetches = [_fetch(alice.tenant.pk, address=f"192.0.2.{n}") for n in range(1, 5)]
    for fetch in fetches:
        tracking_spool.keep(fetch.as_item())
    recorded = []
    assert tracking_spool.drain(recorded.append) == 4
    assert [item["remoteAddress"] for item in recorded] == [f"192.0.2.{n}" for n in range(1, 5)]


@pytest.mark.django_db(transaction=True)  # the dispatcher process's own connections
def test_a_dispatcher_process_killed_while_recording_a_spooled_fetch_loses_nothing(
        alice, box, settings, tmp_path, start_dispatcher):
    """``manage.py webhookdispatcher`` killed (SIGKILL) with the fetch taken and its event not
    committed (the outbox table locked by another session meanwhile): the next dispatcher
    records it, once."""
    fetch = _fetch(alice.tenant.pk)
    tracking_spool.keep(fetch.as_item())
    with side_connection("test-lock") as other:
        other.execute(f"LOCK TABLE {Event._meta.db_table} IN ACCESS EXCLUSIVE MODE")
        process = _spawn(settings, tmp_path / "dispatcher.log")
        try:
            wait_for(_taken, timeout=120)
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
    wait_for(lambda: not _dispatcher_sessions(), timeout=30)  # its last statements ran
    assert _tracked() == []
    assert [item["id"] for item in _taken()] == [str(fetch.event_id)]
    get_redis().delete(tracking_spool.lock_key())  # its lock lapses, 30 s after its last renewal

    start_dispatcher()
    wait_for(lambda: tracking_spool.waiting() == 0, timeout=30)
    assert [event.id for event in _tracked()] == [fetch.event_id]


def test_a_drainer_killed_before_its_commit_loses_nothing(alice, box):
    fetch = _fetch(alice.tenant.pk)
    tracking_spool.keep(fetch.as_item())

    def killed(item):
        raise Killed()

    with pytest.raises(Killed):
        tracking_spool.drain(killed)
    assert _tracked() == []
    assert [item["id"] for item in _taken()] == [str(fetch.event_id)]
    # Its lock, had it died for real, lapses; meanwhile another drainer does nothing.
    get_redis().set(tracking_spool.lock_key(), "the dead drainer", px=500)
    assert tracking_events.drain_spool() == 0
    assert [item["id"] for item in _taken()] == [str(fetch.event_id)]

    wait_for(lambda: tracking_events.drain_spool() == 1)
    event, = _tracked()
    assert event.id == fetch.event_id
    assert tracking_spool.waiting() == 0


def _repeats(caplog) -> list[str]:
    """What the drain logged of fetches it found recorded already, and of any it dropped."""
    return [record.getMessage() for record in caplog.records
            if record.name == "mailboxes.tracking_events"]


def test_a_drainer_killed_after_its_commit_is_not_recorded_twice(alice, box, caplog):
    caplog.set_level(logging.INFO, logger="mailboxes.tracking_events")
    fetch = _fetch(alice.tenant.pk)
    tracking_spool.keep(fetch.as_item())

    def committed_then_killed(item):
        tracking_events.write_spooled(item)
        raise Killed()

    with pytest.raises(Killed):
        tracking_spool.drain(committed_then_killed)
    assert [item["id"] for item in _taken()] == [str(fetch.event_id)]  # not removed
    assert tracking_events.drain_spool() == 1  # replayed, found recorded
    assert [event.id for event in _tracked()] == [fetch.event_id]
    assert tracking_spool.waiting() == 0
    assert _repeats(caplog) == [
        f"tracking spool: trackOpen of {MESSAGE_ID}, account box of tenant {alice.tenant.pk} "
        f"({fetch.event_id}) not recorded: its account is gone or it was recorded already"]


def test_a_fetch_spooled_though_its_commit_went_through_is_recorded_once(alice, box, caplog):
    """A commit whose answer was lost: the event is in, and the fetch spooled anyway (twice,
    even, as two drainers after a lapsed lock would take it)."""
    caplog.set_level(logging.INFO, logger="mailboxes.tracking_events")
    fetch = _fetch(alice.tenant.pk)
    assert tracking_events.write(fetch) is True
    tracking_spool.keep(fetch.as_item())
    tracking_spool.keep(fetch.as_item())
    assert tracking_events.drain_spool() == 2
    assert [event.id for event in _tracked()] == [fetch.event_id]
    repeats = _repeats(caplog)
    assert len(repeats) == 2
    assert all("recorded already" in message for message in repeats), repeats


@pytest.mark.django_db(transaction=True)  # another session holds a lock the drain waits on
def test_a_drain_the_database_cannot_serve_keeps_the_fetch_for_the_next(alice, box):
    fetch = _fetch(alice.tenant.pk)
    tracking_spool.keep(fetch.as_item())
    with side_connection("test-lock") as other:
        other.execute(f"LOCK TABLE {Event._meta.db_table} IN ACCESS EXCLUSIVE MODE")
        with connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = '300ms'")
        try:
            with pytest.raises(OperationalError) as failed:
                tracking_events.drain_spool()
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET statement_timeout")
    assert "canceling statement due to statement timeout" in str(failed.value)
    assert [item["id"] for item in _taken()] == [str(fetch.event_id)]
    assert tracking_events.drain_spool() == 1
    assert [event.id for event in _tracked()] == [fetch.event_id]


@pytest.mark.django_db(transaction=True)  # another session's INSERT races the drain's
def test_two_drainers_racing_on_one_fetch_record_it_once(alice, box, caplog):
    """Another drainer (this one's lock lapsed under a slow database) inserts the same event
    between this drain's check and its INSERT: the INSERT waits for it, conflicts, and the
    fetch is found recorded."""
    caplog.set_level(logging.INFO, logger="mailboxes.tracking_events")
    fetch = _fetch(alice.tenant.pk)
    tracking_spool.keep(fetch.as_item())
    drained = []

    def drain():
        try:
            drained.append(tracking_events.drain_spool())
        finally:
            connection.close()

    with side_connection("test-drainer") as other:
        other.execute(f"INSERT INTO {Event._meta.db_table} (id, tenant_id, account_id, event, "
                      "path, data, created_at) VALUES (%s, %s, 'box', 'trackOpen', '', '{}', "
                      "now())", [fetch.event_id, alice.tenant.pk])
        thread = threading.Thread(target=drain)
        thread.start()
        wait_for(lambda: sessions_waiting_on_a_lock() == 1, timeout=30)
        other.commit()
        thread.join(30)
    assert drained == [1]
    assert [event.id for event in _tracked()] == [fetch.event_id]
    assert _repeats(caplog) == [
        f"tracking spool: trackOpen of {MESSAGE_ID}, account box of tenant {alice.tenant.pk} "
        f"({fetch.event_id}) recorded already by another drainer"]


def test_an_account_deleted_meanwhile_records_nothing(alice, box):
    tracking_spool.keep(_fetch(alice.tenant.pk).as_item())
    box.delete()
    assert tracking_events.drain_spool() == 1
    assert _tracked() == []
    assert tracking_spool.waiting() == 0


def test_while_another_drainer_holds_the_lock_a_drain_does_nothing(alice, box):
    tracking_spool.keep(_fetch(alice.tenant.pk).as_item())
    held = get_redis().lock(tracking_spool.lock_key(), timeout=30)
    assert held.acquire(blocking=False)
    try:
        assert tracking_events.drain_spool() == 0
        assert len(_spooled()) == 1
    finally:
        held.release()
    assert tracking_events.drain_spool() == 1
    assert len(_tracked()) == 1


def test_an_entry_that_is_no_fetch_is_dropped_and_holds_up_nothing(alice, box, caplog):
    caplog.set_level(logging.INFO, logger="mailboxes")
    client = get_redis()
    client.lpush(tracking_spool.spool_key(), b"not json")
    client.lpush(tracking_spool.spool_key(), json.dumps({"kind": "open"}))
    no_url = _fetch(alice.tenant.pk, tracking.CLICK).as_item()
    del no_url["link"]["url"]
    client.lpush(tracking_spool.spool_key(), json.dumps(no_url))
    fetch = _fetch(alice.tenant.pk)
    tracking_spool.keep(fetch.as_item())
    assert tracking_events.drain_spool() == 4
    assert [event.id for event in _tracked()] == [fetch.event_id]
    messages = [record.getMessage() for record in caplog.records]
    assert any(m.startswith("tracking spool: dropped an entry that is not JSON") for m in messages)
    assert len([m for m in messages
                if m.startswith("tracking spool: dropped an entry that is not a fetch")]) == 2


def test_the_spool_holds_at_most_its_cap(settings, redis_db):
    settings.TRACKING_SPOOL_MAX = 3
    kept = [tracking_spool.keep({"id": str(uuid.uuid4())}) for _ in range(5)]
    assert kept == [True, True, True, False, False]
    assert get_redis().llen(tracking_spool.spool_key()) == 3


def test_a_spooled_fetch_reads_back_as_it_was_kept(alice):
    fetch = _fetch(alice.tenant.pk, tracking.CLICK, user_agent="x" * 2000)
    again = tracking_events.Fetch.from_item(json.loads(json.dumps(fetch.as_item())))
    assert again == fetch
    assert len(again.user_agent) == tracking_events.MAX_USER_AGENT
