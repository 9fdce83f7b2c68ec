"""``/v1/oauth2``: a tenant's OAuth2 registered_apps. The client secret goes in, is stored sealed, and
never comes out; another tenant's app is a 404; bad input changes nothing."""

from __future__ import annotations

import pytest

from accounts.models import OAuth2App
from accounts.oauth2 import registered_apps

pytestmark = pytest.mark.django_db
SECRET = "GOCSPX-very-Secret-value-42"
GMAIL = {"name": "Google", "provider": "gmail", "clientId": "123.apps.googleusercontent.com",
         "clientSecret": SECRET}
GENERIC = {"provider": "generic", "clientId": "c1", "clientSecret": SECRET,
           "authorizeUrl": "https://idp.example/authorize", "tokenUrl": "https://idp.example/t",
           "imap": {"host": "imap.idp.example", "port": 993, "secure": True}}


def test_it_creates_lists_reads_updates_and_deletes_an_app_without_showing_the_secret(alice):
    api = alice.client
    created = api.post("/v1/oauth2", {**GMAIL, "app": "google"}, format="json")
    assert created.status_code == 200
    assert created.json() == {"id": "google", "created": True}
    row = OAuth2App.objects.get(app_id="google")
    assert SECRET not in row.client_secret_sealed
    assert registered_apps.client_secret(row) == SECRET

    one = api.get("/v1/oauth2/google")
    assert one.status_code == 200
    assert SECRET.encode() not in one.content
    assert one.json()["provider"] == "gmail"
    assert one.json()["clientId"] == GMAIL["clientId"]
    listed = api.get("/v1/oauth2")
    assert listed.json()["total"] == 1
    assert SECRET.encode() not in listed.content

    updated = api.put("/v1/oauth2/google", {"clientSecret": "new-Secret-99", "name": "G"},
                      format="json")
    assert updated.json() == {"id": "google", "updated": True}
    row.refresh_from_db()
    assert registered_apps.client_secret(row) == "new-Secret-99"
    assert row.name == "G"
    assert api.post("/v1/oauth2", {**GMAIL, "app": "google"}, format="json").status_code == 409

    deleted = api.delete("/v1/oauth2/google")
    assert deleted.json() == {"id": "google", "deleted": True, "accounts": 0}
    assert api.get("/v1/oauth2/google").json()["emailapiCode"] == "OAuth2AppNotFound"


def test_another_tenants_app_is_not_found_and_untouched(alice, bob):
    alice.client.post("/v1/oauth2", {**GMAIL, "app": "google"}, format="json")
    for call in (bob.client.get, bob.client.delete):
        response = call("/v1/oauth2/google")
        assert response.status_code == 404
        assert response.json()["statusCode"] == 404
    assert bob.client.put("/v1/oauth2/google", {"name": "x"}, format="json").status_code == 404
    assert bob.client.get("/v1/oauth2").json()["total"] == 0
    assert OAuth2App.objects.get(app_id="google").name == "Google"


@pytest.mark.parametrize("body,field", [
    ({**GENERIC, "authorizeUrl": ""}, "authorizeUrl"),
    ({k: v for k, v in GENERIC.items() if k != "imap"}, "imap"),
    ({**GENERIC, "tokenUrl": "http://idp.example/t"}, "tokenUrl"),
    ({**GENERIC, "tokenUrl": "javascript:alert(1)"}, "tokenUrl"),
    ({**GMAIL, "provider": "myspace"}, "provider"),
    ({**GMAIL, "clientSecret": 5}, "clientSecret"),
    ({k: v for k, v in GMAIL.items() if k != "clientSecret"}, "clientSecret"),
    ({**GMAIL, "scopes": "mail"}, "scopes"),
    ({**GMAIL, "secret": "x"}, "secret"),
    ({**GMAIL, "app": ".."}, "app"),
])
def test_bad_input_is_refused_and_stores_nothing(alice, body, field):
    response = alice.client.post("/v1/oauth2", body, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "InputValidationError"
    assert field in response.json()["details"]
    assert SECRET not in response.content.decode()
    assert not OAuth2App.objects.exists()


def test_an_update_cannot_leave_a_generic_app_without_its_urls(alice):
    alice.client.post("/v1/oauth2", {**GENERIC, "app": "idp"}, format="json")
    response = alice.client.put("/v1/oauth2/idp", {"tokenUrl": ""}, format="json")
    assert response.status_code == 400
    assert "tokenUrl" in response.json()["details"]
    assert OAuth2App.objects.get(app_id="idp").token_url == GENERIC["tokenUrl"]


def test_the_token_url_of_an_app_in_use_stays_on_its_host(alice):
    """Every refresh sends a mailbox's refresh token and the client secret to the token URL:
    while mailboxes use the app it may change its path, not its host. Unused, it may move
    with a new client secret only: the first sign-in would post the stored one there."""
    from accounts import services

    alice.client.post("/v1/oauth2", {**GENERIC, "app": "idp"}, format="json")
    kept = alice.client.put("/v1/oauth2/idp", {"tokenUrl": "https://collector.example/t"},
                            format="json")
    assert kept.status_code == 400, kept.json()
    assert list(kept.json()["details"]) == ["clientSecret"]
    assert OAuth2App.objects.get(app_id="idp").token_url == GENERIC["tokenUrl"]
    same_host = alice.client.put("/v1/oauth2/idp", {"tokenUrl": "https://idp.example/t2"},
                                 format="json")
    assert same_host.status_code == 200, same_host.json()
    moved = alice.client.put("/v1/oauth2/idp", {"tokenUrl": "https://other.example/t",
                                                "clientSecret": "a-new-one-0"}, format="json")
    assert moved.status_code == 200  # no mailbox uses it yet, and the secret is its own
    alice.client.put("/v1/oauth2/idp", {"tokenUrl": GENERIC["tokenUrl"],
                                        "clientSecret": SECRET}, format="json")
    services.register_account(alice.tenant, {
        "account": "m", "imap": {"host": "imap.idp.example", "port": 993, "secure": True,
                                 "auth": {"user": "u@idp.example"}},
        "oauth2": {"app": "idp", "provider": "generic", "refreshToken": "rt"}})
    refused = alice.client.put("/v1/oauth2/idp", {"tokenUrl": "https://collector.example/t",
                                                  "clientSecret": "a-new-one-1"}, format="json")
    assert refused.status_code == 400
    assert list(refused.json()["details"]) == ["tokenUrl"]
    row = OAuth2App.objects.get(app_id="idp")
    assert (row.token_url, registered_apps.client_secret(row)) == (GENERIC["tokenUrl"], SECRET)
    assert alice.client.put("/v1/oauth2/idp", {"tokenUrl": "https://idp.example/token2"},
                            format="json").status_code == 200


def test_read_tokens_cannot_change_apps(alice):
    reader = alice.client_with("read")
    assert reader.get("/v1/oauth2").status_code == 200
    assert reader.post("/v1/oauth2", GMAIL, format="json").status_code == 403
    assert not OAuth2App.objects.exists()
