"""API tokens: shown once, stored hashed, scoped, revocable; every /v1 route needs one."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import URLPattern, URLResolver, get_resolver

from accounts import tokens
from accounts.models import ApiToken, Tenant
from tests.base import account_payload, api_client, wait_for


def test_it_generates_prefixed_unique_tokens():
    a, b = tokens.generate(), tokens.generate()
    assert a.startswith("eapi_")
    assert b.startswith("eapi_")
    assert a != b
    assert len(a) >= 40
    assert tokens.looks_like_token(a)
    assert not tokens.looks_like_token("eapi_short")
    assert not tokens.looks_like_token("x" * 50)


def test_it_parses_scopes_and_refuses_unknown_ones():
    assert tokens.parse_scopes("read, api") == ["api", "read"]
    with pytest.raises(ValueError):
        tokens.parse_scopes("api,admin")
    with pytest.raises(ValueError):
        tokens.parse_scopes("")


def test_scope_rules():
    assert tokens.allows(["api"], write=True)
    assert tokens.allows(["read"], write=False)
    assert not tokens.allows(["read"], write=True)
    assert not tokens.allows(["metrics"], write=False)
    assert tokens.allows(["metrics"], write=False, metrics=True)
    assert not tokens.allows(["metrics"], write=True, metrics=True)


def _v1_routes():
    """Every /v1 URL pattern with sample arguments, so a new route is covered automatically."""
    routes = []

    def walk(patterns, prefix):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                routes.append(prefix + str(pattern.pattern))

    walk(get_resolver().url_patterns, "/")
    samples = {"<id:account>": "sales", "<int:token_id>": "1", "<str:token>": "1", "<str:id>": "msgid",
               "<str:attachment>": "attid", "<str:thread>": "thrid", "<str:queueId>": "qid",
               "<id:app>": "appid", "<str:text>": "txtid",
               "<str:webhook>": "whid", "<str:delivery>": "dlid", "<id:gateway>": "gwid",
               "<str:template>": "tplid", "<str:listId>": "lstid", "<str:exportId>": "expid",
               "<str:webhookRoute>": "whrid", "<str:queue>": "qname"}
    out = []
    for route in routes:
        if not route.startswith("/v1/") or route.endswith("openapi.json"):
            continue
        for placeholder, value in samples.items():
            route = route.replace(placeholder, value)
        assert "<" not in route, f"add a sample value for {route}"
        out.append(route)
    return out


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post", "put", "delete"])
def test_it_answers_401_without_a_token_on_every_route(method):
    routes = _v1_routes()
    assert len(routes) >= 6
    for route in routes:
        response = getattr(api_client(), method)(route, {}, format="json")
        assert response.status_code == 401, route
        assert response.json()["code"] == "Unauthorized"
        assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.django_db
def test_it_refuses_invalid_and_malformed_tokens(alice):
    for header in ("Bearer eapi_" + "x" * 43, "Bearer nonsense", "Basic abc", "Bearer "):
        client = api_client()
        client.credentials(HTTP_AUTHORIZATION=header)
        response = client.get("/v1/accounts")
        assert response.status_code == 401, header
        assert response.json()["statusCode"] == 401


@pytest.mark.django_db
def test_it_accepts_access_token_query_parameter(alice):
    response = api_client().get(f"/v1/accounts?access_token={alice.token}")
    assert response.status_code == 200
    assert response.json()["total"] == 0


@pytest.mark.django_db
def test_read_token_can_read_but_not_write(alice):
    reader = alice.client_with("read")
    assert reader.get("/v1/accounts").status_code == 200
    response = reader.post("/v1/account", account_payload(), format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "InsufficientScope"
    assert reader.delete("/v1/account/sales").status_code == 403
    assert reader.post("/v1/verifyAccount", {}, format="json").status_code == 403


@pytest.mark.django_db
def test_metrics_token_cannot_read_accounts(alice):
    assert alice.client_with("metrics").get("/v1/accounts").status_code == 403


@pytest.mark.django_db
def test_revoked_token_stops_working(alice):
    client = alice.client_with("api")
    assert client.get("/v1/accounts").status_code == 200  # now remembered by this process
    listed = alice.client.get("/v1/tokens").json()["tokens"]
    newest = max(listed, key=lambda t: t["emailapiId"])
    assert newest["name"] == "api"
    assert alice.client.delete(f"/v1/token/{newest['id']}").status_code == 200
    response = client.get("/v1/accounts")
    assert response.status_code == 401
    assert response.json()["code"] == "InvalidToken"


@pytest.mark.django_db
def test_a_token_revoked_by_another_process_stops_within_the_cache_time(alice, settings):
    """Another process's revocation cannot reach this one's memory: the token keeps working
    for at most EMAILAPI_TOKEN_CACHE_SECONDS, then the database's word counts."""
    import time

    from django.utils import timezone

    settings.EMAILAPI_TOKEN_CACHE_SECONDS = 2
    client = alice.client_with("api")
    assert client.get("/v1/accounts").status_code == 200
    cached = time.monotonic()
    ApiToken.objects.filter(name="api").update(revoked_at=timezone.now())
    still = client.get("/v1/accounts").status_code
    if time.monotonic() - cached < 2:  # (a stalled machine may have outlived the cache)
        assert still == 200
    # Refused once the cache time has passed (polled: a busy machine is no reason to fail).
    wait_for(lambda: client.get("/v1/accounts").status_code == 401, timeout=10)


@pytest.mark.django_db
def test_token_api_creates_a_working_token_shown_once(alice):
    response = alice.client.post("/v1/token", {"name": "ci", "scopes": ["read"]}, format="json")
    assert response.status_code == 200
    raw = response.json()["token"]
    assert api_client(raw).get("/v1/accounts").status_code == 200
    listed = alice.client.get("/v1/tokens").json()["tokens"]
    assert all("token" not in item for item in listed)
    assert {item["name"] for item in listed} == {"test", "ci"}


@pytest.mark.django_db
def test_tenant_cannot_revoke_another_tenants_token(alice, bob):
    bob_token = ApiToken.objects.get(tenant=bob.tenant)
    response = alice.client.delete(f"/v1/token/{bob_token.pk}")
    assert response.status_code == 404
    assert bob.client.get("/v1/accounts").status_code == 200


@pytest.mark.django_db
def test_tokens_are_stored_only_as_hashes(alice):
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_apitoken")
        rows = cursor.fetchall()
    assert rows
    assert alice.token not in repr(rows)
    assert tokens.hash_token(alice.token) in repr(rows)


@pytest.mark.django_db
def test_it_records_last_use(alice):
    token = ApiToken.objects.get(tenant=alice.tenant)
    assert token.last_used_at is None
    alice.client.get("/v1/accounts")
    token.refresh_from_db()
    assert token.last_used_at is not None


@pytest.mark.django_db
def test_create_tenant_prints_a_working_token_last():
    out = io.StringIO()
    call_command("create_tenant", "Carol GmbH", "--scopes", "api", stdout=out)
    raw = out.getvalue().strip().splitlines()[-1]
    assert tokens.looks_like_token(raw)
    assert Tenant.objects.get(name="Carol GmbH")
    response = api_client(raw).post("/v1/account", account_payload(), format="json")
    assert response.status_code == 200


@pytest.mark.django_db
def test_create_token_adds_a_scoped_token_to_a_tenant(alice):
    out = io.StringIO()
    call_command("create_token", alice.tenant.slug, "--scopes", "read", stdout=out)
    raw = out.getvalue().strip().splitlines()[-1]
    client = api_client(raw)
    assert client.get("/v1/accounts").status_code == 200
    assert client.post("/v1/account", account_payload(), format="json").status_code == 403


@pytest.mark.django_db
def test_create_token_refuses_an_unknown_tenant():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("create_token", "no-such-tenant", stdout=io.StringIO())
