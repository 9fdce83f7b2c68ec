"""EmailEngine's token ``expires``: a token made with it stops working at that moment, even
in a process that remembers it (``accounts/token_cache.py``), and is listed with it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.api.authentication import ApiCaller, still_valid
from accounts.models import ApiToken
from tests.base import api_client, wait_for

pytestmark = [pytest.mark.django_db]


def _in(seconds: float) -> str:
    return (timezone.now() + timedelta(seconds=seconds)).isoformat()


def _make(alice, **body) -> dict:
    response = alice.client.post("/v1/tokens", {"description": "expiring", **body},
                                 format="json")
    assert response.status_code == 200, response.json()
    return response.json()


def _expire(made: dict) -> None:
    """Move the token's moment into the past (as time passing would)."""
    ApiToken.objects.filter(token_hash=made["id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1))


def test_a_token_with_expires_works_until_then_and_shows_it(alice):
    made = _make(alice, expires="2099-01-02T03:04:05Z")
    assert made["expires"].startswith("2099-01-02T03:04:05")
    assert api_client(made["token"]).get("/v1/accounts").status_code == 200
    listed = {item["id"]: item for item in alice.client.get("/v1/tokens").json()["tokens"]}
    assert listed[made["id"]]["expires"].startswith("2099-01-02T03:04:05")
    detail = alice.client.get(f"/v1/tokens/{made['id']}").json()
    assert detail["expires"].startswith("2099-01-02T03:04:05")


def test_a_token_without_expires_shows_null(alice):
    made = _make(alice)
    assert made["expires"] is None
    assert alice.client.get(f"/v1/tokens/{made['id']}").json()["expires"] is None


@pytest.mark.parametrize("value", ["2001-01-01T00:00:00Z", "tomorrow", "2099-13-45T00:00:00Z", 17])
def test_a_past_or_malformed_expires_is_400_and_makes_no_token(alice, value):
    before = ApiToken.objects.filter(tenant=alice.tenant).count()
    response = alice.client.post("/v1/tokens", {"description": "bad", "expires": value},
                                 format="json")
    assert response.status_code == 400, response.json()
    assert "expires" in response.json()["details"]
    assert ApiToken.objects.filter(tenant=alice.tenant).count() == before


def test_an_expired_token_stops_at_once_even_when_remembered(alice, settings):
    """The process remembers the token far longer than its life: the moment still counts."""
    settings.EMAILAPI_TOKEN_CACHE_SECONDS = 600
    made = _make(alice, expires=_in(2))
    client = api_client(made["token"])
    assert client.get("/v1/accounts").status_code == 200  # now in this process's memory
    wait_for(lambda: client.get("/v1/accounts").status_code == 401, timeout=10)
    body = client.get("/v1/accounts").json()
    assert body["code"] == "TokenExpired"
    assert "expired" in body["message"]


def test_an_expired_token_is_401_when_read_from_the_database(alice):
    made = _make(alice, expires=_in(3600))
    _expire(made)
    response = api_client(made["token"]).get("/v1/accounts")
    assert response.status_code == 401
    assert response.json()["code"] == "TokenExpired"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_an_open_stream_hears_its_token_expired(alice):
    made = _make(alice, expires=_in(3600))
    token = ApiToken.objects.select_related("tenant").get(token_hash=made["id"])
    caller = ApiCaller(tenant=alice.tenant, token=token, scopes=["api"])
    assert still_valid(caller)
    _expire(made)
    assert not still_valid(caller)


def test_an_expired_token_leaves_the_lists_and_can_still_be_revoked(alice):
    made = _make(alice, expires=_in(3600))
    _expire(made)
    ids = [item["id"] for item in alice.client.get("/v1/tokens").json()["tokens"]]
    assert made["id"] not in ids
    assert alice.client.get(f"/v1/tokens/{made['id']}").status_code == 404
    assert alice.client.delete(f"/v1/tokens/{made['id']}").status_code == 200
    assert ApiToken.objects.get(token_hash=made["id"]).revoked_at is not None
