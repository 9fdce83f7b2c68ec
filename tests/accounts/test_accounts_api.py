"""Registering, reading, updating and deleting mailboxes; tenant isolation; secrets at rest."""

from __future__ import annotations

import pytest
from django.db import connection

from accounts import announcements, credentials
from accounts.models import Credential, EmailAccount
from mailboxes import connection_settings
from tests.base import account_payload
from webhooks.models import Event

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]


def test_it_registers_a_mailbox(alice):
    response = alice.client.post("/v1/account", account_payload(), format="json")
    assert response.status_code == 200
    assert response.json() == {"account": "sales", "state": "new"}
    account = EmailAccount.objects.get(tenant=alice.tenant, account_id="sales")
    assert account.state == "init"
    assert account.imap["host"] == "imap.example.com"
    assert credentials.get_credential(account, "imap.pass") == "imap-Secret-123"
    assert credentials.get_credential(account, "smtp.pass") == "smtp-Secret-456"
    assert Event.objects.filter(tenant=alice.tenant, event="accountAdded",
                                account_id="sales").count() == 1


def test_it_generates_an_id_when_none_is_given(alice):
    response = alice.client.post("/v1/account", account_payload(account=None), format="json")
    assert response.status_code == 200
    generated = response.json()["account"]
    assert generated
    assert EmailAccount.objects.filter(account_id=generated).exists()


def test_a_duplicate_id_without_upsert_is_409_and_changes_nothing(alice):
    alice.client.post("/v1/account", account_payload(), format="json")
    again = account_payload(name="Other")
    again["imap"]["auth"]["pass"] = "changed"
    response = alice.client.post("/v1/account?upsert=false", again, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "AlreadyExists"
    account = EmailAccount.objects.get(account_id="sales")
    assert account.name == "Sales"
    assert credentials.get_credential(account, "imap.pass") == "imap-Secret-123"
    assert Event.objects.filter(event="accountAdded").count() == 1


def test_the_same_id_may_exist_in_two_tenants(alice, bob):
    assert alice.client.post("/v1/account", account_payload(), format="json").status_code == 200
    assert bob.client.post("/v1/account", account_payload(), format="json").status_code == 200
    assert EmailAccount.objects.filter(account_id="sales").count() == 2


def test_get_returns_settings_without_any_secret(alice):
    alice.client.post("/v1/account", account_payload(), format="json")
    response = alice.client.get("/v1/account/sales")
    assert response.status_code == 200
    body = response.json()
    assert body["account"] == "sales"
    assert body["state"] == "init"
    assert body["lastError"] is None
    assert body["imap"] == {"host": "imap.example.com", "port": 993, "secure": True,
                            "auth": {"user": "sales@example.com", "pass": "******"}}
    assert body["smtp"]["auth"] == {"user": "sales@example.com", "pass": "******"}
    assert "Secret" not in response.content.decode()


def test_list_is_paged_and_filtered(alice):
    for index in range(5):
        alice.client.post("/v1/account", account_payload(account=f"box-{index}",
                                                         name=f"Box {index}"), format="json")
    response = alice.client.get("/v1/accounts?page=1&pageSize=2")
    body = response.json()
    assert body["total"] == 5
    assert body["page"] == 1
    assert body["pages"] == 3
    assert [item["account"] for item in body["accounts"]] == ["box-2", "box-3"]
    assert "Secret" not in response.content.decode()
    assert alice.client.get("/v1/accounts?query=box 9").json()["total"] == 0
    assert alice.client.get("/v1/accounts?query=Box 4").json()["total"] == 1
    assert alice.client.get("/v1/accounts?state=connected").json()["total"] == 0
    assert alice.client.get("/v1/accounts?page=9").json()["accounts"] == []


@pytest.mark.parametrize("size", ["0", "1001", "x"])
def test_list_refuses_a_bad_page_size(alice, size):
    response = alice.client.get(f"/v1/accounts?pageSize={size}")
    assert response.status_code == 400
    assert "pageSize" in response.json()["details"]


def test_update_is_partial_and_a_new_password_takes_effect(alice):
    alice.client.post("/v1/account", account_payload(), format="json")
    before = EmailAccount.objects.get(account_id="sales")
    response = alice.client.put("/v1/account/sales",
                                {"name": "Renamed", "imap": {"auth": {"pass": "new-pass"}}},
                                format="json")
    assert response.status_code == 200
    after = EmailAccount.objects.get(account_id="sales")
    assert after.name == "Renamed"
    assert after.email == "sales@example.com"
    assert after.imap["host"] == "imap.example.com"
    assert after.imap["auth"] == {"user": "sales@example.com"}
    assert after.config_version == before.config_version + 1
    assert credentials.get_credential(after, "imap.pass") == "new-pass"
    assert credentials.get_credential(after, "smtp.pass") == "smtp-Secret-456"
    assert connection_settings.account_imap_settings(after).password == "new-pass"


def test_update_can_remove_smtp(alice):
    alice.client.post("/v1/account", account_payload(), format="json")
    response = alice.client.put("/v1/account/sales", {"smtp": None}, format="json")
    assert response.status_code == 200
    account = EmailAccount.objects.get(account_id="sales")
    assert account.smtp is None
    assert not Credential.objects.filter(email_account=account, name__startswith="smtp.").exists()


def test_a_partial_smtp_for_an_account_without_one_is_400_and_changes_nothing(alice):
    """Only auth for a server the account does not have would leave an SMTP section no send
    can use (every attempt failed on the missing host)."""
    alice.client.post("/v1/account", account_payload(smtp=None), format="json")
    response = alice.client.put("/v1/account/sales",
                                {"smtp": {"auth": {"user": "u", "pass": "p-secret-9"}}},
                                format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "InputValidationError"
    assert response.json()["details"] == {"smtp.host": ["This field is required."],
                                          "smtp.port": ["This field is required."]}
    account = EmailAccount.objects.get(account_id="sales")
    assert account.smtp is None
    assert not Credential.objects.filter(email_account=account, name__startswith="smtp.").exists()


@pytest.mark.parametrize("auth", [{}, {"user": "sales@example.com"},
                                  {"user": "sales@example.com", "pass": "******"}])
def test_a_new_host_without_a_new_password_is_400_and_keeps_everything(alice, auth):
    """Whoever may change a mailbox's settings must not be able to have its stored password
    sent to a server of their choosing: a new host needs its own password (the mask written
    back is not one)."""
    alice.client.post("/v1/account", account_payload(), format="json")
    change = {"host": "collector.example.net", **({"auth": auth} if auth else {})}
    response = alice.client.put("/v1/account/sales", {"imap": change}, format="json")
    assert response.status_code == 400, response.content
    assert list(response.json()["details"]) == ["imap.auth.pass"]
    account = EmailAccount.objects.get(account_id="sales")
    assert account.imap["host"] == "imap.example.com"
    assert credentials.get_credential(account, "imap.pass") == "imap-Secret-123"


def test_a_new_host_with_its_own_password_or_a_new_port_is_taken(alice):
    alice.client.post("/v1/account", account_payload(), format="json")
    assert alice.client.put("/v1/account/sales", {"smtp": {"port": 587}},
                            format="json").status_code == 200
    assert alice.client.put("/v1/account/sales", {"imap": {
        "host": "IMAP.example.com"}}, format="json").status_code == 200  # the same host
    moved = alice.client.put("/v1/account/sales", {"imap": {
        "host": "imap.other.example", "auth": {"user": "u", "pass": "its-own-9"}}}, format="json")
    assert moved.status_code == 200, moved.content
    account = EmailAccount.objects.get(account_id="sales")
    assert (account.imap["host"], account.smtp["port"]) == ("imap.other.example", 587)
    assert credentials.get_credential(account, "imap.pass") == "its-own-9"


def test_update_refuses_changing_the_id(alice):
    alice.client.post("/v1/account", account_payload(), format="json")
    response = alice.client.put("/v1/account/sales", {"account": "other"}, format="json")
    assert response.status_code == 400
    assert EmailAccount.objects.filter(account_id="sales").exists()


def test_delete_removes_the_mailbox_and_its_credentials(alice):
    alice.client.post("/v1/account", account_payload(), format="json")
    response = alice.client.delete("/v1/account/sales")
    assert response.status_code == 200
    assert response.json() == {"account": "sales", "deleted": True}
    assert not EmailAccount.objects.filter(account_id="sales").exists()
    assert not Credential.objects.exists()
    assert Event.objects.filter(event="accountDeleted", account_id="sales").count() == 1
    assert alice.client.get("/v1/account/sales").status_code == 404
    assert alice.client.delete("/v1/account/sales").status_code == 404


def test_a_change_is_announced_to_workers(alice, redis_db, django_capture_on_commit_callbacks):
    pubsub = redis_db.pubsub()
    pubsub.subscribe(announcements.account_changes_channel())
    pubsub.get_message(timeout=1)  # the subscribe confirmation
    # Announced on commit only; the test transaction never commits, so run the hooks.
    with django_capture_on_commit_callbacks(execute=True):
        alice.client.post("/v1/account", account_payload(), format="json")
    message = pubsub.get_message(timeout=2)
    assert message
    assert b'"action": "added"' in message["data"]
    assert b'"account": "sales"' in message["data"]


def test_another_tenant_sees_404_everywhere(alice, bob):
    alice.client.post("/v1/account", account_payload(), format="json")
    assert bob.client.get("/v1/account/sales").status_code == 404
    assert bob.client.get("/v1/account/sales").json()["code"] == "AccountNotFound"
    assert bob.client.put("/v1/account/sales", {"name": "x"}, format="json").status_code == 404
    assert bob.client.delete("/v1/account/sales").status_code == 404
    assert bob.client.get("/v1/accounts").json()["total"] == 0
    account = EmailAccount.objects.get(account_id="sales")
    assert account.name == "Sales"
    # the 404 for an existing foreign account is byte-identical to one for a missing account
    missing = bob.client.get("/v1/account/nope").json()
    foreign = bob.client.get("/v1/account/sales").json()
    assert missing["code"] == foreign["code"]
    assert missing["statusCode"] == foreign["statusCode"]


def test_passwords_are_not_in_the_database_in_clear(alice):
    alice.client.post("/v1/account", account_payload(), format="json")
    alice.client.put("/v1/account/sales", {"smtp": {"auth": {"pass": "third-Secret-789"}}},
                     format="json")
    dump = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')
            dump.append(repr(cursor.fetchall()))
    everything = "\n".join(dump)
    for secret in ("imap-Secret-123", "smtp-Secret-456", "third-Secret-789"):
        assert secret not in everything
    sealed = Credential.objects.values_list("sealed", flat=True)
    assert all(value.startswith("v1.") for value in sealed)


def test_a_sealed_password_copied_to_another_account_does_not_open(alice, bob):
    from accounts.crypto import DecryptionError

    alice.client.post("/v1/account", account_payload(), format="json")
    bob.client.post("/v1/account", account_payload(account="bobs"), format="json")
    alices = EmailAccount.objects.get(account_id="sales")
    bobs = EmailAccount.objects.get(account_id="bobs")
    stolen = Credential.objects.get(email_account=alices, name="imap.pass").sealed
    Credential.objects.filter(email_account=bobs, name="imap.pass").update(sealed=stolen)
    with pytest.raises(DecryptionError):
        credentials.get_credential(bobs, "imap.pass")
