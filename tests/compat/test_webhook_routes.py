"""EmailEngine's webhook routes (``GET /v1/webhookRoutes``, ``GET
/v1/webhookRoutes/webhookRoute/{id}``) over the tenant's webhook subscriptions, through the API
on real PostgreSQL: the settings' own subscription is not a route, another tenant's is never
seen, secrets stay masked, ``tcount`` counts deliveries, ``webhookErrorFlag`` follows real
failures (``delivery_state.record_failure``), ``content.fn`` mirrors the filter, EmailEngine's
paging; and a subscription's ``name``/``description`` on ``/v1/webhooks``."""

from __future__ import annotations

import itertools
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import EmailAccount
from tests.base import account_payload
from tests.webhooks import conftest as webhook_fixtures
from webhooks import delivery_state, events
from webhooks.models import Delivery, EngineSettings
from webhooks.transport import Outcome

# The webhook tests' fixture letting subscriptions point at loopback, used here too.
allow_private_webhooks = webhook_fixtures.allow_private_webhooks

pytestmark = pytest.mark.django_db

ENGINE_DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ROUTE_FIELDS = {"id", "name", "description", "created", "updated", "enabled", "targetUrl",
                "tcount", "webhookErrorFlag", "customHeaders"}
SEQ = itertools.count(1)


def subscribe(client, **body) -> dict:
    body = {"url": "http://127.0.0.1:9/hook", "events": ["*"], **body}
    answer = client.post("/v1/webhooks", body, format="json")
    assert answer.status_code == 200, answer.content
    return answer.json()


def routes(client, query: str = "") -> dict:
    answer = client.get(f"/v1/webhookRoutes{query}")
    assert answer.status_code == 200, answer.content
    return answer.json()


def route(client, route_id: str):
    return client.get(f"/v1/webhookRoutes/webhookRoute/{route_id}")


def delivery(tenant, subscription_id, **fields) -> Delivery:
    seq = next(SEQ)
    event = events.record(tenant, events.MESSAGE_NEW, "box", {"id": f"m{seq}"}, path="INBOX")
    return Delivery.objects.create(subscription_id=subscription_id, event=event, seq=seq,
                                   account_id="box", **fields)


def test_routes_are_the_subscriptions_but_the_settings_own(alice, allow_private_webhooks):
    hook = subscribe(alice.client, name="Slack relay", description="New mail to Slack")
    settings = alice.client.post("/v1/settings", {"webhooks": "http://127.0.0.1:9/ee",
                                                  "webhooksEnabled": True}, format="json")
    assert settings.status_code == 200, settings.content
    settings_hook = str(EngineSettings.objects.get(tenant=alice.tenant).subscription_id)
    assert {h["id"] for h in alice.client.get("/v1/webhooks").json()["webhooks"]} \
        == {hook["id"], settings_hook}

    listed = routes(alice.client)
    assert listed["total"] == 1
    assert listed["page"] == 0
    assert listed["pages"] == 1
    [shown] = listed["webhooks"]
    assert set(shown) == ROUTE_FIELDS
    assert shown["id"] == hook["id"]
    assert shown["name"] == "Slack relay"
    assert shown["description"] == "New mail to Slack"
    assert shown["enabled"] is True
    assert shown["targetUrl"] == "http://127.0.0.1:9/hook"
    assert shown["tcount"] == 0
    assert shown["webhookErrorFlag"] is None
    assert shown["customHeaders"] == []
    assert ENGINE_DATE.match(shown["created"])
    assert ENGINE_DATE.match(shown["updated"])

    answer = route(alice.client, settings_hook)
    assert answer.status_code == 404
    assert answer.json()["code"] == "NotFound"
    assert answer.json()["emailapiCode"] == "WebhookRouteNotFound"


def test_an_accounts_own_webhooks_url_is_not_a_route(alice, allow_private_webhooks):
    """EmailEngine's per-account ``webhooks`` URL is a subscription here (kept with the
    account) but, as there, not a route."""
    hook = subscribe(alice.client, name="Relay")
    answer = alice.client.post("/v1/account", account_payload("box", webhooks="http://127.0.0.1:9/b"),
                               format="json")
    assert answer.status_code == 200, answer.content
    held = str(EmailAccount.objects.get(account_id="box").webhook_subscription)
    assert {h["id"] for h in alice.client.get("/v1/webhooks").json()["webhooks"]} \
        == {hook["id"], held}

    assert [r["id"] for r in routes(alice.client)["webhooks"]] == [hook["id"]]
    assert route(alice.client, held).status_code == 404


def test_another_tenants_route_is_never_seen(alice, bob, allow_private_webhooks):
    mine = subscribe(alice.client)
    theirs = subscribe(bob.client)
    assert [h["id"] for h in routes(alice.client)["webhooks"]] == [mine["id"]]
    assert route(alice.client, mine["id"]).status_code == 200
    for unknown in (theirs["id"], "00000000-0000-0000-0000-000000000000", "not-an-id"):
        answer = route(alice.client, unknown)
        assert answer.status_code == 404, unknown
        assert answer.json()["message"] == "Webhook route not found"
        assert answer.json()["emailapiCode"] == "WebhookRouteNotFound"


def test_header_values_and_the_url_password_are_masked(alice, allow_private_webhooks):
    hook = subscribe(alice.client, url="http://relay:Pw-route-secret@127.0.0.1:9/hook",
                     headers={"Authorization": "Bearer route-token-42", "X-Tag": "t-value"})
    listed = routes(alice.client)["webhooks"][0]
    one = route(alice.client, hook["id"]).json()
    for shown in (listed, one):
        assert shown["customHeaders"] == [{"key": "Authorization", "value": "******"},
                                          {"key": "X-Tag", "value": "******"}]
        assert shown["targetUrl"] == "http://relay:******@127.0.0.1:9/hook"
        text = str(shown)
        assert "route-token-42" not in text
        assert "t-value" not in text
        assert "Pw-route-secret" not in text


def test_a_route_without_a_name_is_called_by_its_host(alice, allow_private_webhooks):
    hook = subscribe(alice.client, url="http://u:p@127.0.0.1:9/hook")
    shown = route(alice.client, hook["id"]).json()
    assert shown["name"] == "127.0.0.1"
    assert shown["description"] == ""


def test_tcount_counts_the_deliveries_kept_without_a_query_per_route(alice,
                                                                    allow_private_webhooks):
    first, second, third = (subscribe(alice.client) for _ in range(3))
    for _ in range(3):
        delivery(alice.tenant, first["id"])
    delivery(alice.tenant, second["id"], state="delivered")
    assert route(alice.client, first["id"]).json()["tcount"] == 3

    with CaptureQueriesContext(connection) as few:
        counts = {h["id"]: h["tcount"] for h in routes(alice.client)["webhooks"]}
    assert counts == {first["id"]: 3, second["id"]: 1, third["id"]: 0}
    for _ in range(3):
        subscribe(alice.client)
    with CaptureQueriesContext(connection) as more:
        assert len(routes(alice.client)["webhooks"]) == 6
    assert len(more.captured_queries) == len(few.captured_queries)


def test_the_error_flag_follows_failures_and_automatic_disabling(alice, settings,
                                                                 allow_private_webhooks):
    hook = subscribe(alice.client)
    delivery(alice.tenant, hook["id"], state="delivered")
    assert route(alice.client, hook["id"]).json()["webhookErrorFlag"] is None

    failing = delivery(alice.tenant, hook["id"], state="delivering", attempts=1)
    assert delivery_state.record_failure(failing, Outcome(502, 5, "HTTP 502 Bad Gateway"))
    shown = route(alice.client, hook["id"]).json()
    assert shown["webhookErrorFlag"] == {"message": "HTTP 502 Bad Gateway"}
    assert shown["enabled"] is True
    assert routes(alice.client)["webhooks"][0]["webhookErrorFlag"] == \
        {"message": "HTTP 502 Bad Gateway"}

    settings.WEBHOOK_DISABLE_AFTER = 0
    again = delivery(alice.tenant, hook["id"], state="delivering", attempts=1)
    assert delivery_state.record_failure(again, Outcome(None, 5, "Connection refused"))
    shown = route(alice.client, hook["id"]).json()
    assert shown["enabled"] is False
    message = shown["webhookErrorFlag"]["message"]
    assert message.startswith("Every delivery failed since ")
    assert message.endswith("last error: Connection refused")

    alice.client.put(f"/v1/webhooks/{hook['id']}", {"enabled": True}, format="json")
    assert route(alice.client, hook["id"]).json()["webhookErrorFlag"] is None


@pytest.mark.parametrize("events_, accounts, fn", [
    (["*"], [], None),
    (["messageNew", "messageDeleted"], ["acc1"],
     'return ["messageNew","messageDeleted"].includes(payload.event) '
     '&& ["acc1"].includes(payload.account);'),
    (["*"], ["a\u2028b"], 'return ["a\\u2028b"].includes(payload.account);'),
])
def test_content_fn_says_the_filter_in_javascript(alice, allow_private_webhooks, events_,
                                                  accounts, fn):
    hook = subscribe(alice.client, events=events_, accounts=accounts)
    shown = route(alice.client, hook["id"]).json()
    assert set(shown) == ROUTE_FIELDS | {"content"}
    assert shown["content"] == {"fn": fn, "map": None}


def test_paging_as_emailengine(alice, allow_private_webhooks):
    assert routes(alice.client) == {"total": 0, "page": 0, "pages": 0, "webhooks": []}
    made = [subscribe(alice.client)["id"] for _ in range(5)]
    first = routes(alice.client, "?pageSize=2")
    assert (first["total"], first["page"], first["pages"]) == (5, 0, 3)
    pages = [routes(alice.client, f"?page={page}&pageSize=2")["webhooks"] for page in range(3)]
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [h["id"] for page in pages for h in page] == made[::-1]  # newest first
    past = routes(alice.client, "?page=3&pageSize=2")
    assert (past["total"], past["page"], past["pages"], past["webhooks"]) == (5, 3, 3, [])
    assert routes(alice.client, "?page=1048576")["webhooks"] == []


@pytest.mark.parametrize("query, field", [
    ("?page=-1", "page"), ("?page=1048577", "page"), ("?page=abc", "page"),
    ("?pageSize=0", "pageSize"), ("?pageSize=1001", "pageSize"),
    ("?page=99999999999999999999", "page"), ("?nope=1", "nope"),
])
def test_bad_queries_are_400_in_words(alice, query, field):
    answer = alice.client.get(f"/v1/webhookRoutes{query}")
    assert answer.status_code == 400, answer.content
    body = answer.json()
    assert body["statusCode"] == 400
    assert body["emailapiCode"] == "InputValidationError"
    assert field in body["details"], body
    assert body["message"].startswith(f"Invalid input: {field}: ")


def test_a_read_token_may_read_routes_and_a_metrics_token_may_not(alice, allow_private_webhooks):
    hook = subscribe(alice.client)
    reader = alice.client_with("read")
    assert reader.get("/v1/webhookRoutes").status_code == 200
    assert route(reader, hook["id"]).status_code == 200
    metrics = alice.client_with("metrics")
    assert metrics.get("/v1/webhookRoutes").status_code == 403
    assert route(metrics, hook["id"]).status_code == 403


def test_name_and_description_round_trip_on_v1_webhooks(alice, allow_private_webhooks):
    hook = subscribe(alice.client, name="CRM", description="Leads inbox")
    assert (hook["name"], hook["description"]) == ("CRM", "Leads inbox")
    one = f"/v1/webhooks/{hook['id']}"
    fetched = alice.client.get(one).json()
    assert (fetched["name"], fetched["description"]) == ("CRM", "Leads inbox")

    renamed = alice.client.put(one, {"name": "CRM v2"}, format="json").json()
    assert (renamed["name"], renamed["description"]) == ("CRM v2", "Leads inbox")
    assert route(alice.client, hook["id"]).json()["name"] == "CRM v2"
    cleared = alice.client.put(one, {"name": None, "description": ""}, format="json").json()
    assert (cleared["name"], cleared["description"]) == (None, None)
    assert alice.client.get("/v1/webhooks").json()["webhooks"][0]["name"] is None

    for body in ({"name": "x" * 257}, {"description": "x" * 1025}, {"name": 5}):
        answer = alice.client.put(one, body, format="json")
        assert answer.status_code == 400, body
        assert set(answer.json()["details"]) == set(body)
