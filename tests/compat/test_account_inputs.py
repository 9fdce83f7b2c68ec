"""EmailEngine's account bodies that its schema allows and ours once refused (the schema diff
of /tmp/ee-schema-diff): sent as its clients send them, they are taken, and they do what
README's "Coming from EmailEngine" says."""

from __future__ import annotations

import pytest

from accounts.models import EmailAccount
from tests.compat.test_accounts import ee_account

pytestmark = [pytest.mark.django_db]


def _imap_of(user, **extra):
    settings = user.imap_settings(secure=False)
    settings["tls"] = {"rejectUnauthorized": False}
    settings.update(extra)
    return settings


# --- imap.disableIMAP4rev2: a no-op here (IMAP4rev1 only) ----------------------------------


def _with_imap(**extra) -> dict:
    body = ee_account()
    body["imap"] = {**body["imap"], **extra}
    return body


def test_disable_imap4rev2_is_taken_on_create_and_echoed(alice):
    response = alice.client.post("/v1/account", _with_imap(disableIMAP4rev2=True), format="json")
    assert response.status_code == 200, response.json()
    assert alice.client.get("/v1/account/example").json()["imap"]["disableIMAP4rev2"] is True


def test_disable_imap4rev2_is_taken_on_update(alice):
    alice.client.post("/v1/account", _with_imap(disableIMAP4rev2=True), format="json")
    response = alice.client.put("/v1/account/example", {"imap": {"disableIMAP4rev2": False}},
                                format="json")
    assert response.status_code == 200, response.json()
    assert alice.client.get("/v1/account/example").json()["imap"]["disableIMAP4rev2"] is False


def test_disable_imap4rev2_on_update_keeps_the_rest_of_imap(alice):
    alice.client.post("/v1/account", ee_account(), format="json")
    alice.client.put("/v1/account/example", {"imap": {"disableIMAP4rev2": True}}, format="json")
    imap = alice.client.get("/v1/account/example").json()["imap"]
    assert (imap["host"], imap["port"], imap["auth"]["pass"]) == ("imap.example.com", 993, "******")


def test_an_account_without_disable_imap4rev2_does_not_show_it(alice):
    alice.client.post("/v1/account", ee_account(), format="json")
    assert "disableIMAP4rev2" not in alice.client.get("/v1/account/example").json()["imap"]


def test_disable_imap4rev2_must_be_a_boolean_and_a_bad_one_registers_nothing(alice):
    response = alice.client.post("/v1/account", _with_imap(disableIMAP4rev2="sometimes"),
                                 format="json")
    assert response.status_code == 400
    assert "imap.disableIMAP4rev2" in response.json()["details"], response.json()
    assert not EmailAccount.objects.filter(account_id="example").exists()


def test_verify_account_takes_disable_imap4rev2_and_still_logs_in(alice, mail_user):
    response = alice.client.post("/v1/verifyAccount",
                                 {"imap": _imap_of(mail_user, disableIMAP4rev2=True)},
                                 format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["imap"]["success"] is True


# --- imapIndexer: null, and a webhooksCustomHeaders item without value ---------------------


def test_imap_indexer_null_on_create_is_unset(alice):
    response = alice.client.post("/v1/account", ee_account(imapIndexer=None), format="json")
    assert response.status_code == 200, response.json()
    assert alice.client.get("/v1/account/example").json()["imapIndexer"] is None


def test_imap_indexer_null_on_update_unsets_it(alice):
    alice.client.post("/v1/account", ee_account(imapIndexer="fast"), format="json")
    response = alice.client.put("/v1/account/example", {"imapIndexer": None}, format="json")
    assert response.status_code == 200, response.json()
    assert alice.client.get("/v1/account/example").json()["imapIndexer"] is None


def test_imap_indexer_null_in_the_upsert_unsets_it(alice):
    alice.client.post("/v1/account", ee_account(imapIndexer="fast"), format="json")
    response = alice.client.post("/v1/account", ee_account(imapIndexer=None), format="json")
    assert response.json()["state"] == "existing"
    assert alice.client.get("/v1/account/example").json()["imapIndexer"] is None


@pytest.fixture
def private_hooks(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True


def _headers_of_the_account_hook(tenant) -> dict:
    from webhooks import subscriptions
    from webhooks.models import WebhookSubscription
    [subscription] = WebhookSubscription.objects.filter(tenant=tenant)
    return subscriptions.headers_of(subscription)


def test_a_custom_header_without_value_has_the_empty_value(alice, private_hooks):
    response = alice.client.post("/v1/account", ee_account(
        webhooks="http://127.0.0.1:9/hook",
        webhooksCustomHeaders=[{"key": "X-Tenant-Hook"}, {"key": "X-Tag", "value": "a"}]),
        format="json")
    assert response.status_code == 200, response.json()
    assert _headers_of_the_account_hook(alice.tenant) == {"X-Tenant-Hook": "", "X-Tag": "a"}


def test_a_custom_header_without_key_is_400_and_registers_nothing(alice, private_hooks):
    response = alice.client.post("/v1/account", ee_account(
        webhooks="http://127.0.0.1:9/hook", webhooksCustomHeaders=[{"value": "a"}]),
        format="json")
    assert response.status_code == 400
    assert "webhooksCustomHeaders" in response.json()["details"], response.json()
    assert not EmailAccount.objects.filter(account_id="example").exists()


def test_a_custom_header_with_another_field_is_still_400(alice, private_hooks):
    response = alice.client.post("/v1/account", ee_account(
        webhooks="http://127.0.0.1:9/hook",
        webhooksCustomHeaders=[{"key": "X-Tag", "value": "a", "colour": "blue"}]),
        format="json")
    assert response.status_code == 400
    assert "webhooksCustomHeaders" in response.json()["details"], response.json()


# --- the round trip: what GET shows null, PUT takes as null ---------------------------------

UNSET_AS_NULL = ("locale", "tz", "subconnections", "imapIndexer")


@pytest.mark.parametrize("field", UNSET_AS_NULL)
def test_get_shows_an_unset_field_as_null(alice, field):
    alice.client.post("/v1/account", ee_account(), format="json")
    assert alice.client.get("/v1/account/example").json()[field] is None


@pytest.mark.parametrize("method", ["put", "post"])
def test_null_written_back_is_taken_and_stays_unset(alice, method):
    alice.client.post("/v1/account", ee_account(), format="json")
    shown = alice.client.get("/v1/account/example").json()
    nulls = {field: shown[field] for field in UNSET_AS_NULL}
    if method == "put":
        response = alice.client.put("/v1/account/example", nulls, format="json")
    else:
        response = alice.client.post("/v1/account", ee_account(**nulls), format="json")
    assert response.status_code == 200, response.json()
    again = alice.client.get("/v1/account/example").json()
    assert {field: again[field] for field in UNSET_AS_NULL} == dict.fromkeys(UNSET_AS_NULL)


def test_null_on_put_clears_what_was_set(alice):
    alice.client.post("/v1/account", ee_account(locale="et", tz="Europe/Tallinn",
                                                subconnections=["Sent"], imapIndexer="fast"),
                      format="json")
    response = alice.client.put("/v1/account/example", dict.fromkeys(UNSET_AS_NULL),
                                format="json")
    assert response.status_code == 200, response.json()
    shown = alice.client.get("/v1/account/example").json()
    assert {field: shown[field] for field in UNSET_AS_NULL} == dict.fromkeys(UNSET_AS_NULL)
    options = EmailAccount.objects.get(account_id="example").ee_options
    assert not set(options) & set(UNSET_AS_NULL), options


def test_every_field_get_shows_that_put_takes_can_be_written_back(alice):
    """A client of ours that PUTs back what it read (the fields PUT takes) gets 200 and
    changes nothing it did not mean to."""
    from accounts.api.serializers import AccountUpdateSerializer
    alice.client.post("/v1/account", ee_account(), format="json")
    shown = alice.client.get("/v1/account/example").json()
    writable = set(AccountUpdateSerializer().fields)
    body = {key: value for key, value in shown.items() if key in writable}
    assert set(UNSET_AS_NULL) <= set(body)
    response = alice.client.put("/v1/account/example", body, format="json")
    assert response.status_code == 200, response.json()
    assert alice.client.get("/v1/account/example").json() | {"updated": None} == \
        shown | {"updated": None}


# --- verifyAccount: statusCode on a failed check, noInferiors on each folder ---------------


def test_a_refused_login_carries_status_code_401_on_both_checks(alice, smtp_server, smtp_user):
    imap = _imap_of(smtp_user)
    imap["auth"] = {**imap["auth"], "pass": "wrong"}
    smtp = smtp_server.smtp_settings(smtp_user.username, "wrong")
    smtp["tls"] = {"rejectUnauthorized": False}
    body = alice.client.post("/v1/verifyAccount", {"imap": imap, "smtp": smtp},
                             format="json").json()
    assert (body["imap"]["statusCode"], body["smtp"]["statusCode"]) == (401, 401)


def test_a_refused_connection_carries_status_code_502(alice, mail_user):
    from tests.servers.net import find_free_port
    imap = _imap_of(mail_user, port=find_free_port())
    body = alice.client.post("/v1/verifyAccount", {"imap": imap}, format="json").json()
    assert (body["imap"]["success"], body["imap"]["statusCode"]) == (False, 502)


def test_a_successful_check_has_no_status_code(alice, mail_user):
    body = alice.client.post("/v1/verifyAccount", {"imap": _imap_of(mail_user)},
                             format="json").json()
    assert body["imap"] == {"success": True}


def test_verified_mailboxes_carry_no_inferiors(alice, mail_user):
    body = alice.client.post("/v1/verifyAccount", {"mailboxes": True,
                                                   "imap": _imap_of(mail_user)},
                             format="json").json()
    assert {type(box["noInferiors"]) for box in body["mailboxes"]} == {bool}
    inbox = next(box for box in body["mailboxes"] if box["path"] == "INBOX")
    assert inbox["noInferiors"] is False
