"""EmailEngine's current token routes: ``GET /v1/tokens`` with its filters and page counters,
``GET``/``DELETE /v1/tokens/{token}`` (its generated clients call these; ours answered 404)."""

from __future__ import annotations

import pytest

from accounts.models import ApiToken
from tests.compat.test_accounts import ee_account

pytestmark = [pytest.mark.django_db]


def _token(alice, description: str, **body) -> dict:
    response = alice.client.post("/v1/tokens", {"description": description, **body},
                                 format="json")
    assert response.status_code == 200, response.json()
    return response.json()


def test_a_token_is_read_by_its_emailengine_id(alice):
    made = _token(alice, "reader")
    response = alice.client.get(f"/v1/tokens/{made['id']}")
    assert response.status_code == 200, response.json()
    assert (response.json()["id"], response.json()["description"]) == (made["id"], "reader")


def test_reading_a_token_never_shows_the_token(alice):
    made = _token(alice, "reader")
    assert "token" not in alice.client.get(f"/v1/tokens/{made['id']}").json()


def test_an_unknown_token_id_is_404(alice):
    response = alice.client.get("/v1/tokens/" + "ab" * 32)
    assert response.status_code == 404
    assert response.json()["emailapiCode"] == "TokenNotFound"


def test_another_tenants_token_is_404(alice, bob):
    made = _token(bob, "bobs")
    assert alice.client.get(f"/v1/tokens/{made['id']}").status_code == 404


def test_delete_tokens_id_revokes_the_token(alice):
    made = _token(alice, "gone")
    response = alice.client.delete(f"/v1/tokens/{made['id']}")
    assert response.status_code == 200, response.json()
    assert response.json()["deleted"] is True
    assert ApiToken.objects.get(token_hash=made["id"]).revoked_at is not None


def test_a_revoked_token_is_404_to_read_and_to_delete(alice):
    made = _token(alice, "gone")
    alice.client.delete(f"/v1/tokens/{made['id']}")
    assert alice.client.get(f"/v1/tokens/{made['id']}").status_code == 404
    assert alice.client.delete(f"/v1/tokens/{made['id']}").status_code == 404


def test_an_account_token_cannot_read_tokens(alice):
    from tests.base import api_client
    alice.client.post("/v1/account", ee_account(), format="json")
    made = _token(alice, "acct", account="example")
    response = api_client(made["token"]).get(f"/v1/tokens/{made['id']}")
    assert response.status_code == 403
    assert response.json()["code"] == "TokenLimitedToAccount"


def test_the_list_carries_emailengines_counters(alice):
    body = alice.client.get("/v1/tokens").json()
    assert {key: body[key] for key in ("total", "page", "pages", "account")} == {
        "total": len(body["tokens"]), "page": 0, "pages": 1, "account": None}


def test_the_list_pages_with_page_and_page_size(alice):
    for n in range(3):
        _token(alice, f"paged-{n}")
    total = ApiToken.objects.filter(tenant=alice.tenant, revoked_at__isnull=True).count()
    body = alice.client.get("/v1/tokens?page=1&pageSize=2").json()
    assert (body["total"], body["page"], body["pages"]) == (total, 1, (total + 1) // 2)
    assert len(body["tokens"]) == min(2, total - 2)


def test_the_list_filters_by_account(alice):
    alice.client.post("/v1/account", ee_account(), format="json")
    made = _token(alice, "acct", account="example")
    body = alice.client.get("/v1/tokens?account=example").json()
    assert [t["id"] for t in body["tokens"]] == [made["id"]]
    assert body["account"] == "example"


def test_the_list_filters_by_query_on_the_description(alice):
    made = _token(alice, "Nightly Backup job")
    body = alice.client.get("/v1/tokens?query=backup").json()
    assert [t["id"] for t in body["tokens"]] == [made["id"]]


def test_the_list_filters_by_query_on_the_id(alice):
    made = _token(alice, "by id")
    body = alice.client.get(f"/v1/tokens?query={made['id'][:20]}").json()
    assert [t["id"] for t in body["tokens"]] == [made["id"]]


def test_nothing_matching_is_zero_pages(alice):
    body = alice.client.get("/v1/tokens?query=nothing-has-this").json()
    assert (body["total"], body["pages"], body["tokens"]) == (0, 0, [])


def test_a_bad_page_size_is_400_naming_it(alice):
    response = alice.client.get("/v1/tokens?pageSize=0")
    assert response.status_code == 400
    assert "pageSize" in response.json()["details"]
