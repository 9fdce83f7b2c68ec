"""API calls are counted in the process and added to Redis in the background (``accounts.usage``):
the limit is exact within a process, the counts reach Redis without any request waiting on it,
and while Redis is unreachable the limit still holds and no call is lost."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest

from accounts import usage
from emailapi.lib.redis import get_redis
from tests.base import TIMEOUT_FACTOR
from tests.servers.tcp_proxy import TcpProxy

pytestmark = pytest.mark.django_db


def _wait_for(condition, seconds: float = 10 * TIMEOUT_FACTOR):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def _stored(tenant_id: int) -> tuple[int, int]:
    now = time.time()
    minute, day = get_redis().mget([usage._minute_key(tenant_id, int(now) // usage.WINDOW),
                                    usage._day_key(tenant_id, int(now) // usage.DAY)])
    return int(minute or 0), int(day or 0)


def test_calls_reach_redis_without_a_request_waiting_for_it(alice):
    tenant_id = alice.tenant.pk
    counts = [usage.count_call(tenant_id) for _ in range(5)]
    usage.count_call(tenant_id, api_call=False)  # the dashboard's stream: not a day's API call

    assert counts == [1, 2, 3, 4, 5]
    assert _wait_for(lambda: _stored(tenant_id) == (6, 5))
    assert usage.calls(tenant_id) == usage.Calls(this_minute=6, today=5)


def test_other_processes_calls_count_once_flushed(alice):
    tenant_id = alice.tenant.pk
    usage.count_call(tenant_id)
    usage.flush()
    window = usage._minute_key(tenant_id, int(time.time()) // usage.WINDOW)
    get_redis().incrby(window, 10)  # another web process's calls, already added
    usage.count_call(tenant_id)
    usage.flush()

    assert usage.count_call(tenant_id) == 13


def test_a_redis_outage_keeps_the_limit_and_loses_no_call(alice, settings):
    tenant_id = alice.tenant.pk
    settings.EMAILAPI_RATE_LIMIT = 3
    with TcpProxy(urlsplit(settings.REDIS_URL).port or 6379) as proxy:
        up = settings.REDIS_URL
        settings.REDIS_URL = f"redis://127.0.0.1:{proxy.port}/{urlsplit(up).path.strip('/')}"
        proxy.cut()
        statuses = [alice.client.get("/v1/accounts").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        with pytest.raises(Exception):  # noqa: B017 - whichever error Redis gives
            usage.flush()
        assert usage.calls(tenant_id) is None  # unknown while Redis is down
        settings.REDIS_URL = up

    assert _wait_for(lambda: _stored(tenant_id) == (4, 4))
