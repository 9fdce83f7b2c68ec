"""EmailEngine's webhook URLs with ``user:password@`` where EmailEngine takes them: the settings'
``webhooks`` (``POST /v1/settings``) and an account's own (``POST /v1/account``, ``PUT
/v1/account/{id}``). Sent as HTTP Basic by the real dispatcher to a real receiver, the password
sealed, read back as ``******``, kept when written back, refused for another server."""

from __future__ import annotations

import json

import pytest

from accounts.models import EmailAccount
from tests.base import account_payload
from tests.webhooks import conftest as webhook_fixtures
from tests.webhooks.test_url_userinfo import (
    PASSWORD,
    authorizations,
    basic,
    raw_rows,
    sent_test,
    with_userinfo,
)
from webhooks import events
from webhooks.models import EngineSettings

# The webhook tests' fixtures (receivers, dispatchers), used here too.
allow_private_webhooks = webhook_fixtures.allow_private_webhooks
webhook_receiver = webhook_fixtures.webhook_receiver
start_dispatcher = webhook_fixtures.start_dispatcher

pytestmark = pytest.mark.django_db

BAD_URLS = ["http://u:Marker%zz@127.0.0.1:9/", "http://u:Marker%ff@127.0.0.1:9/",
            "http://u:Marker%00@127.0.0.1:9/", "http://us%3Aer:Marker@127.0.0.1:9/"]


def post_settings(client, body: dict):
    return client.post("/v1/settings", json.dumps(body), content_type="application/json")


def settings_hook_id(tenant) -> str:
    return str(EngineSettings.objects.get(tenant=tenant).subscription_id)


def account_with(client, url: str, account: str = "box"):
    return client.post("/v1/account", json.dumps(account_payload(account, webhooks=url)),
                       content_type="application/json")


def account_hook_id(account: str = "box") -> str:
    return str(EmailAccount.objects.get(account_id=account).webhook_subscription)


@pytest.mark.django_db(transaction=True)
def test_the_settings_url_is_delivered_with_basic_auth_and_read_back_masked(
        alice, allow_private_webhooks, webhook_receiver, start_dispatcher):
    receiver = webhook_receiver()
    answer = post_settings(alice.client, {
        "webhooksEnabled": True, "webhookEvents": ["accountAdded"], "serviceSecret": "ee",
        "webhooks": with_userinfo(receiver.url, f"ee%2Buser:{PASSWORD}")})
    assert answer.status_code == 200, answer.content
    masked = with_userinfo(receiver.url, "ee%2Buser:******")
    assert alice.client.get("/v1/settings?webhooks=true").json() == {"webhooks": masked}
    assert alice.client.get("/v1/webhooks").json()["webhooks"][0]["url"] == masked
    for table in ("webhooks_enginesettings", "webhooks_webhooksubscription"):
        assert PASSWORD not in raw_rows(table)
    assert alice.client.post("/v1/account", account_payload("box"),
                             format="json").status_code == 200
    start_dispatcher()
    [request] = receiver.wait_accepted(1)
    assert request.payload["event"] == "accountAdded"
    assert authorizations(request) == [basic("ee+user", PASSWORD)]
    assert request.path == "/hook"


def test_the_settings_url_written_back_masked_keeps_the_password_for_its_server_only(
        alice, allow_private_webhooks, webhook_receiver):
    receiver = webhook_receiver()
    post_settings(alice.client, {"webhooksEnabled": True,
                                 "webhooks": with_userinfo(receiver.url, f"ee:{PASSWORD}")})
    shown = alice.client.get("/v1/settings?webhooks=true").json()["webhooks"]
    assert post_settings(alice.client, {"webhooks": shown}).status_code == 200
    assert authorizations(sent_test(alice.client, settings_hook_id(alice.tenant), receiver)) \
        == [basic("ee", PASSWORD)]
    moved = post_settings(alice.client, {"webhooks": "http://ee:******@127.0.0.2:9/hook",
                                         "webhooksEnabled": False})
    assert moved.status_code == 400, moved.content
    assert list(moved.json()["details"]) == ["webhooks"]
    assert "only ever sent to the server it was given for" in moved.json()["message"]
    assert alice.client.get("/v1/settings?webhooks=true&webhooksEnabled=true").json() == {
        "webhooks": shown, "webhooksEnabled": True}
    assert EngineSettings.objects.get(tenant=alice.tenant).sealed_webhooks_password


@pytest.mark.django_db(transaction=True)
def test_an_accounts_own_url_is_delivered_with_basic_auth_and_shown_masked(
        alice, allow_private_webhooks, webhook_receiver, start_dispatcher):
    receiver = webhook_receiver()
    answer = account_with(alice.client, with_userinfo(receiver.url, f"acct:{PASSWORD}"))
    assert answer.status_code == 200, answer.content
    masked = with_userinfo(receiver.url, "acct:******")
    shown = [alice.client.get("/v1/account/box"), alice.client.get("/v1/accounts"),
             alice.client.get("/v1/webhooks")]
    for one in shown:
        assert one.status_code == 200
        assert PASSWORD not in one.content.decode()
    assert shown[0].json()["webhooks"] == masked
    assert shown[1].json()["accounts"][0]["webhooks"] == masked
    for table in ("accounts_emailaccount", "webhooks_webhooksubscription"):
        assert PASSWORD not in raw_rows(table)
    start_dispatcher()
    events.record(alice.tenant, events.CONNECT_ERROR, "box", {"error": "test"})
    [request] = receiver.wait_for(lambda r: [q for q in r.accepted()
                                            if q.payload["event"] == "connectError"])
    assert authorizations(request) == [basic("acct", PASSWORD)]
    assert request.path == "/hook"


def test_an_accounts_masked_url_written_back_keeps_the_password_for_its_server_only(
        alice, allow_private_webhooks, webhook_receiver):
    receiver = webhook_receiver()
    account_with(alice.client, with_userinfo(receiver.url, f"acct:{PASSWORD}"))
    shown = alice.client.get("/v1/account/box").json()["webhooks"]
    for change in ({"webhooks": shown},
                   {"webhooksCustomHeaders": [{"key": "X-Team", "value": "blue"}]}):
        answer = alice.client.put("/v1/account/box", change, format="json")
        assert answer.status_code == 200, answer.content
        request = sent_test(alice.client, account_hook_id(), receiver)
        assert authorizations(request) == [basic("acct", PASSWORD)]
    assert request.headers["X-Team"] == "blue"
    moved = alice.client.put("/v1/account/box", {"webhooks": "http://acct:******@127.0.0.2:9/h",
                                                 "name": "Renamed"}, format="json")
    assert moved.status_code == 400, moved.content
    assert list(moved.json()["details"]) == ["webhooks"]
    account = alice.client.get("/v1/account/box").json()
    assert account["webhooks"] == shown
    assert account["name"] == "Sales"
    assert alice.client.get("/v1/webhooks").json()["webhooks"][0]["url"] == shown


def test_a_new_account_with_the_mask_for_a_password_is_refused(alice, allow_private_webhooks):
    answer = account_with(alice.client, "http://acct:******@127.0.0.1:9/hook", "new-box")
    assert answer.status_code == 400, answer.content
    assert list(answer.json()["details"]) == ["webhooks"]
    assert not EmailAccount.objects.filter(account_id="new-box").exists()


@pytest.mark.parametrize("url", BAD_URLS)
def test_a_userinfo_basic_cannot_carry_is_a_400_in_settings_and_accounts(
        alice, allow_private_webhooks, url):
    for answer in (post_settings(alice.client, {"webhooks": url}),
                   account_with(alice.client, url)):
        assert answer.status_code == 400, answer.content
        assert list(answer.json()["details"]) == ["webhooks"]
        assert "Marker" not in answer.content.decode()
    assert alice.client.get("/v1/settings?webhooks=true").json() == {"webhooks": None}
    assert not EmailAccount.objects.exists()


def test_new_headers_keep_a_subscription_moved_through_the_webhooks_api(
        alice, allow_private_webhooks, webhook_receiver):
    """The account's subscription changed through /v1/webhooks keeps its URL and password
    when only the account's headers change (it was re-pointed at the account's masked URL)."""
    receiver, other = webhook_receiver(), webhook_receiver()
    account_with(alice.client, with_userinfo(receiver.url, f"u:{PASSWORD}"))
    hook = account_hook_id()
    moved = alice.client.put(f"/v1/webhooks/{hook}",
                             {"url": with_userinfo(other.url, "v:other-Pass-1")}, format="json")
    assert moved.status_code == 200, moved.content
    response = alice.client.put("/v1/account/box", {
        "name": "Renamed", "webhooksCustomHeaders": [{"key": "X-A", "value": "1"}]},
        format="json")
    assert response.status_code == 200, response.content
    assert authorizations(sent_test(alice.client, hook, other)) == [basic("v", "other-Pass-1")]


def test_new_headers_for_a_deleted_subscription_with_a_password_are_refused_first(
        alice, allow_private_webhooks, webhook_receiver):
    """Its password went with it: nothing is changed, the 400 names ``webhooks``."""
    receiver = webhook_receiver()
    account_with(alice.client, with_userinfo(receiver.url, f"u:{PASSWORD}"))
    assert alice.client.delete(f"/v1/webhooks/{account_hook_id()}").status_code == 200
    for send in (lambda body: alice.client.put("/v1/account/box", body, format="json"),
                 lambda body: alice.client.post("/v1/account", {
                     **account_payload("box"), **body}, format="json")):
        response = send({"name": "Renamed",
                         "webhooksCustomHeaders": [{"key": "X-A", "value": "1"}]})
        assert response.status_code == 400, response.content
        assert list(response.json()["details"]) == ["webhooks"]
        assert EmailAccount.objects.get(account_id="box").name == "Sales"
    again = alice.client.put("/v1/account/box", {
        "webhooks": with_userinfo(receiver.url, f"u:{PASSWORD}"),
        "webhooksCustomHeaders": [{"key": "X-A", "value": "1"}]}, format="json")
    assert again.status_code == 200, again.content
