"""``GET /metrics``: who may scrape it, and that real activity moves what it shows (read with
``prometheus_client``'s own parser, as Prometheus would)."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from accounts import services
from tests.base import api_client, wait_for
from webhooks import events

OPERATOR_TOKEN = "operator-scrape-token-0123456789"


def scrape(client) -> dict[str, list]:
    response = client.get("/metrics")
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/plain")
    return {family.name: family.samples
            for family in text_string_to_metric_families(response.content.decode())}


def value(families: dict, sample_name: str, **labels) -> float:
    """The sum of the samples called ``sample_name`` whose labels include ``labels``."""
    name = sample_name
    for suffix in ("_total", "_count", "_sum", "_bucket"):
        if sample_name.endswith(suffix):
            name = sample_name[: -len(suffix)]
            break
    samples = families.get(name, []) + families.get(sample_name, [])
    return sum(s.value for s in samples if s.name == sample_name
               and all(s.labels.get(k) == v for k, v in labels.items()))


@pytest.fixture
def operator(settings):
    settings.EMAILAPI_METRICS_TOKEN = OPERATOR_TOKEN
    return api_client(OPERATOR_TOKEN)


@pytest.mark.django_db
def test_without_a_token_it_is_401_json():
    response = api_client().get("/metrics")
    assert response.status_code == 401
    assert response.json()["code"] == "Unauthorized"


@pytest.mark.django_db
def test_a_wrong_token_is_401_json(operator):
    response = api_client("not-the-operator-token-at-all").get("/metrics")
    assert response.status_code == 401
    assert response.json()["statusCode"] == 401
    response = api_client("eapi_" + "x" * 43).get("/metrics")
    assert response.status_code == 401


@pytest.mark.django_db
def test_an_account_token_may_not_scrape(alice):
    services.register_account(alice.tenant, {"account": "box", "imap": {
        "host": "imap.example.com", "port": 993, "secure": True,
        "auth": {"user": "u", "pass": "p"}}})
    _, raw = services.issue_token(alice.tenant, "one box", ["api"], account_id="box")
    response = api_client(raw).get("/metrics")
    assert response.status_code == 403
    assert response.json()["statusCode"] == 403


@pytest.mark.django_db
def test_a_metrics_token_may_scrape_but_not_read_accounts(alice):
    client = alice.client_with("metrics")
    assert client.get("/v1/accounts").status_code == 403
    families = scrape(client)
    assert "emailapi_accounts" in families


@pytest.mark.django_db
def test_operators_see_process_series_and_tenants_only_their_own(alice, bob, operator):
    services.register_account(bob.tenant, {"account": "bobs", "imap": {
        "host": "imap.example.com", "port": 993, "secure": True,
        "auth": {"user": "u", "pass": "p"}}})
    alice.client.get("/v1/accounts")
    everything = scrape(operator)
    assert value(everything, "emailapi_http_request_duration_seconds_count",
                 route="v1/accounts") >= 1
    assert value(everything, "emailapi_accounts", state="init") >= 1
    alices = scrape(alice.client_with("metrics"))
    assert "emailapi_http_request_duration_seconds" not in alices
    assert value(alices, "emailapi_accounts", state="init") == 0  # bob's is not counted


@pytest.mark.django_db
def test_api_requests_are_labelled_by_route_pattern_never_the_path(alice, operator):
    for account in ("one", "two", "three"):
        alice.client.get(f"/v1/account/{account}")
    families = scrape(operator)
    routes = {s.labels["route"] for s in families["emailapi_http_request_duration_seconds"]}
    assert "v1/account/<id:account>" in routes
    assert not any("three" in route for route in routes)
    assert value(families, "emailapi_http_request_duration_seconds_count",
                 route="v1/account/<id:account>", status="404") >= 3


@pytest.mark.django_db(transaction=True)
def test_a_synced_account_and_a_delivered_webhook_move_the_counters(
        synced, operator, settings, webhook_receiver, start_dispatcher):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    before = scrape(operator)
    tenant = synced.account.tenant
    receiver = webhook_receiver()
    hook = synced.client.post("/v1/webhooks", {"url": receiver.url, "events": ["*"]},
                              format="json").json()
    synced.client.get("/v1/account/box/messages?path=INBOX")
    events.record(tenant, events.MESSAGE_NEW, "box", {"uid": 1, "path": "INBOX"})
    start_dispatcher()
    receiver.wait_for(lambda r: len(r.accepted()) >= 1, timeout=30)
    labels = {"tenant": str(tenant.pk), "subscription": str(hook["id"])}
    wait_for(lambda: value(scrape(operator), "emailapi_webhook_deliveries_total",
                           result="delivered", **labels) >= 1)
    after = scrape(operator)
    # The fixture's first sync (before the "before" scrape) and this test's activity:
    assert value(after, "emailapi_messages_indexed_total") >= len(synced.uids)
    assert value(after, "emailapi_sync_pass_duration_seconds_count") >= 1
    assert value(after, "emailapi_http_request_duration_seconds_count",
                 route="v1/account/<id:account>/messages", status="200") > value(
        before, "emailapi_http_request_duration_seconds_count",
        route="v1/account/<id:account>/messages", status="200")
    assert value(after, "emailapi_events_recorded_total", event="messageNew") > value(
        before, "emailapi_events_recorded_total", event="messageNew")
    assert value(after, "emailapi_events_published_total") > value(
        before, "emailapi_events_published_total")
    assert value(after, "emailapi_webhook_delivery_duration_seconds_count", **labels) >= 1
    # The tenant sees its subscription's series; another tenant's token does not.
    assert value(scrape(synced.client), "emailapi_webhook_deliveries_total", **labels) >= 1
