"""EmailEngine's account routes, called exactly as its documentation shows them: the answers
carry EmailEngine's field names, types and statuses (issue 16)."""

from __future__ import annotations

import pytest

from accounts import credentials
from accounts.models import EmailAccount
from webhooks.models import Event

pytestmark = [pytest.mark.django_db]

# EmailEngine's "Register an account" example body (password IMAP + SMTP).
EE_ACCOUNT = {
    "account": "example",
    "name": "My Example Account",
    "email": "user@example.com",
    "imap": {"auth": {"user": "user@example.com", "pass": "secret"},
             "host": "imap.example.com", "port": 993, "secure": True},
    "smtp": {"auth": {"user": "user@example.com", "pass": "secret"},
             "host": "smtp.example.com", "port": 465, "secure": True},
}


def ee_account(**overrides) -> dict:
    body = {key: (dict(value) if isinstance(value, dict) else value)
            for key, value in EE_ACCOUNT.items()}
    body.update(overrides)
    return body


# --- POST /v1/account is an upsert ---------------------------------------------------------


def test_a_new_account_answers_state_new(alice):
    response = alice.client.post("/v1/account", ee_account(), format="json")
    assert response.status_code == 200
    assert response.json() == {"account": "example", "state": "new"}


def test_posting_an_existing_id_updates_it_and_answers_state_existing(alice):
    alice.client.post("/v1/account", ee_account(), format="json")
    response = alice.client.post("/v1/account", ee_account(name="Renamed"), format="json")
    assert response.status_code == 200
    assert response.json() == {"account": "example", "state": "existing"}


def test_the_upsert_changes_the_stored_fields(alice):
    alice.client.post("/v1/account", ee_account(), format="json")
    alice.client.post("/v1/account", ee_account(name="Renamed"), format="json")
    assert alice.client.get("/v1/account/example").json()["name"] == "Renamed"


def test_the_upsert_replaces_the_password(alice):
    alice.client.post("/v1/account", ee_account(), format="json")
    body = ee_account()
    body["imap"] = {**body["imap"], "auth": {"user": "user@example.com", "pass": "new-secret"}}
    alice.client.post("/v1/account", body, format="json")
    account = EmailAccount.objects.get(tenant=alice.tenant, account_id="example")
    assert credentials.get_credential(account, "imap.pass") == "new-secret"


def test_the_upsert_keeps_one_account_and_one_accountAdded(alice):
    alice.client.post("/v1/account", ee_account(), format="json")
    alice.client.post("/v1/account", ee_account(name="Renamed"), format="json")
    assert Event.objects.filter(tenant=alice.tenant, event="accountAdded").count() == 1


def test_upsert_false_keeps_the_409(alice):
    alice.client.post("/v1/account", ee_account(), format="json")
    response = alice.client.post("/v1/account?upsert=false", ee_account(name="Renamed"),
                                 format="json")
    assert response.status_code == 409


def test_another_tenants_id_is_not_updated(alice, bob):
    bob.client.post("/v1/account", ee_account(name="Bob's"), format="json")
    response = alice.client.post("/v1/account", ee_account(), format="json")
    assert response.json()["state"] == "new"
