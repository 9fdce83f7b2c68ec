"""``/health`` reports database and Redis reachability."""

import pytest

pytestmark = pytest.mark.django_db


def test_it_is_healthy_with_both_up(client):
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["redis"] == {"ok": True}
    assert body["database"]["ok"] is True
    # The pool as it was before the check (this test's own connection is the busy one).
    pool = body["database"]["pool"]
    assert set(pool) == {"max", "size", "idle", "busy", "waiting"}
    assert pool["idle"] + pool["busy"] == pool["size"] <= pool["max"]
    assert pool["waiting"] == 0


def test_it_is_503_when_redis_is_unreachable(client, settings):
    from tests.servers.net import find_free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{find_free_port()}/0"
    response = client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["redis"]["ok"] is False
    assert body["database"]["ok"] is True
