"""EmailEngine's account routes, called exactly as its documentation shows them: the answers
carry EmailEngine's field names, types and statuses (issue 16)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from accounts import credentials, mail_proxy
from accounts.models import ApiToken, Credential, EmailAccount
from mailboxes.worker import holders
from tests.servers.proxies import Socks5Proxy
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


def test_numbers_and_booleans_written_as_strings_are_converted_as_joi_does(alice):
    """EmailEngine's Joi converts "993" and "true": its clients' bodies pass unchanged, and
    the values are stored and answered as the number and the boolean."""
    body = ee_account()
    body["imap"] = {**body["imap"], "port": " 993 ", "secure": "TRUE"}
    body["smtp"] = {**body["smtp"], "port": "465", "secure": "false"}
    assert alice.client.post("/v1/account", body, format="json").status_code == 200
    account = alice.client.get("/v1/account/example").json()
    assert (account["imap"]["port"], account["imap"]["secure"]) == (993, True)
    assert (account["smtp"]["port"], account["smtp"]["secure"]) == (465, False)


def test_a_string_is_not_converted_where_a_string_is_not_expected_either_way(alice):
    body = ee_account(name=12)
    response = alice.client.post("/v1/account", body, format="json")
    assert response.status_code == 400
    assert response.json()["details"] == {"name": ["Must be a string"]}
    assert not EmailAccount.objects.exists()


def test_imap_disabled_is_the_pause_under_emailengines_name(alice):
    from mailboxes.worker.eligible import eligible

    body = ee_account()
    body["imap"] = {**body["imap"], "disabled": True}
    assert alice.client.post("/v1/account", body, format="json").status_code == 200
    row = EmailAccount.objects.get(account_id="example")
    assert (row.paused, row.state, "disabled" in row.imap) == (True, "paused", False)
    assert not eligible().filter(pk=row.pk).exists()  # no worker connects it
    shown = alice.client.get("/v1/account/example").json()
    assert (shown["state"], shown["imap"]["disabled"]) == ("paused", True)

    version = row.config_version
    response = alice.client.put("/v1/account/example", {"imap": {"disabled": False}},
                                format="json")
    assert response.status_code == 200
    row.refresh_from_db()
    assert (row.paused, row.state, row.config_version) == (False, "init", version)
    assert row.imap["host"] == "imap.example.com"  # the settings are left as they were
    assert eligible().filter(pk=row.pk).exists()
    assert "disabled" not in alice.client.get("/v1/account/example").json()["imap"]

    alice.client.put("/v1/account/example", {"imap": {"disabled": True, "port": 143}},
                     format="json")
    row.refresh_from_db()
    assert (row.paused, row.state, row.imap["port"]) == (True, "paused", 143)


def test_partial_is_taken_and_not_kept_as_updates_merge_anyway(alice):
    alice.client.post("/v1/account", ee_account(), format="json")
    response = alice.client.put("/v1/account/example", {
        "imap": {"partial": True, "port": 143}, "smtp": {"partial": True, "port": 587}},
        format="json")
    assert response.status_code == 200, response.json()
    row = EmailAccount.objects.get(account_id="example")
    assert (row.imap["host"], row.imap["port"], "partial" in row.imap) == (
        "imap.example.com", 143, False)
    assert (row.smtp["host"], row.smtp["port"], "partial" in row.smtp) == (
        "smtp.example.com", 587, False)


def test_imap_disabled_must_be_a_boolean(alice):
    alice.client.post("/v1/account", ee_account(), format="json")
    response = alice.client.put("/v1/account/example", {"imap": {"disabled": "yes"}},
                                format="json")
    assert response.status_code == 400
    assert "imap.disabled" in response.json()["details"]
    assert not EmailAccount.objects.get(account_id="example").paused


def test_upsert_false_keeps_the_409(alice):
    alice.client.post("/v1/account", ee_account(), format="json")
    response = alice.client.post("/v1/account?upsert=false", ee_account(name="Renamed"),
                                 format="json")
    assert response.status_code == 409


def test_another_tenants_id_is_not_updated(alice, bob):
    bob.client.post("/v1/account", ee_account(name="Bob's"), format="json")
    response = alice.client.post("/v1/account", ee_account(), format="json")
    assert response.json()["state"] == "new"


# --- EmailEngine's account fields ------------------------------------------------------------

EE_FIELDS = {
    "path": ["INBOX", "Sent"],
    "subconnections": ["Sent"],
    "notifyFrom": "2024-01-01T00:00:00.000Z",
    "syncFrom": "2023-01-01T00:00:00.000Z",
    "imapIndexer": "full",
    "logs": True,
    "locale": "et",
    "tz": "Europe/Tallinn",
    "proxy": "socks5://proxy.example.com:1080",
    "smtpEhloName": "mail.example.com",
}


@pytest.fixture
def registered_with_ee_fields(alice):
    body = ee_account(**EE_FIELDS)
    body["imap"] = {**body["imap"], "resyncDelay": 900}
    response = alice.client.post("/v1/account", body, format="json")
    assert response.status_code == 200
    return alice.client.get("/v1/account/example").json()


def test_emailengine_fields_are_accepted(alice):
    body = ee_account(**EE_FIELDS)
    body["imap"] = {**body["imap"], "resyncDelay": 900}
    assert alice.client.post("/v1/account", body, format="json").status_code == 200


@pytest.mark.parametrize("field", ["subconnections", "imapIndexer", "logs", "locale", "tz",
                                   "proxy", "smtpEhloName", "path"])
def test_an_emailengine_field_is_echoed_by_get(registered_with_ee_fields, field):
    assert registered_with_ee_fields[field] == EE_FIELDS[field]


def test_a_proxy_password_is_masked_and_kept_sealed(alice):
    """As EmailEngine shows URL credentials; the password is sealed with the account's
    credentials (its connections go through the proxy: tests/mailboxes/test_*_proxy.py)."""
    alice.client.post("/v1/account", ee_account(proxy="socks5://me:Pr0xy-pw@proxy.example:1080"),
                      format="json")
    shown = alice.client.get("/v1/account/example").json()["proxy"]
    assert shown == "socks5://me:******@proxy.example:1080"
    [listed] = alice.client.get("/v1/accounts").json()["accounts"]
    assert listed["proxy"] == shown
    account = EmailAccount.objects.get(account_id="example")
    assert "Pr0xy-pw" not in str(account.ee_options)
    assert not Credential.objects.filter(sealed__contains="Pr0xy-pw").exists()
    assert mail_proxy.account_proxy(account).password == "Pr0xy-pw"


def test_the_masked_proxy_written_back_keeps_the_password_for_the_same_proxy_only(alice):
    alice.client.post("/v1/account", ee_account(proxy="socks5://me:Pr0xy-pw@proxy.example:1080"),
                      format="json")
    account = EmailAccount.objects.get(account_id="example")

    same = alice.client.put("/v1/account/example",
                            {"proxy": "socks5://me:******@PROXY.example:1080"}, format="json")
    assert same.status_code == 200, same.json()
    assert mail_proxy.account_proxy(account).password == "Pr0xy-pw"

    moved = alice.client.put("/v1/account/example",
                             {"proxy": "socks5://me:******@elsewhere.example:1080"}, format="json")
    assert moved.status_code == 400, moved.json()
    assert "proxy" in moved.json()["details"], moved.json()
    account.refresh_from_db()
    assert mail_proxy.account_proxy(account).host == "proxy.example"

    assert alice.client.put("/v1/account/example", {"proxy": "socks5://proxy.example:1080"},
                            format="json").status_code == 200
    account.refresh_from_db()
    assert mail_proxy.account_proxy(account).password is None
    assert not Credential.objects.filter(email_account=account, name="proxy.pass").exists()


@pytest.mark.parametrize("proxy", [
    "socks5://u:Pr0xy-pw/x@proxy.example:1080",
    "http://u:Pr0xy-pw#x@proxy.example",
    "http://u:Pr0xy-pw?x@proxy.example",
    "http://u:Pr0xy-pw@[proxy.example",
    "u:Pr0xy-pw@proxy.example:1080",
    "https://u:Pr0xy-pw@proxy.example",
])
def test_a_proxy_that_does_not_parse_is_400_naming_it_and_never_echoes_its_password(alice,
                                                                                    proxy):
    """Red team: these were once stored and shown in clear (the strict parse found no
    password); now the proxy is used, so it must be one."""
    response = alice.client.post("/v1/account", ee_account(proxy=proxy), format="json")
    assert response.status_code == 400, response.json()
    assert "proxy" in response.json()["details"], response.json()
    assert "Pr0xy-pw" not in response.content.decode()
    assert not EmailAccount.objects.filter(account_id="example").exists()


@pytest.mark.parametrize("field", ["notifyFrom", "syncFrom"])
def test_a_date_field_is_echoed_by_get(registered_with_ee_fields, field):
    assert registered_with_ee_fields[field].startswith(EE_FIELDS[field][:19])


def test_imap_resync_delay_is_echoed(registered_with_ee_fields):
    assert registered_with_ee_fields["imap"]["resyncDelay"] == 900


def test_path_sets_the_watched_folder(registered_with_ee_fields):
    assert registered_with_ee_fields["watchFolders"] == ["INBOX"]


def test_path_first_folder_is_watched(alice):
    alice.client.post("/v1/account", ee_account(path=["Archive", "INBOX"]), format="json")
    account = EmailAccount.objects.get(tenant=alice.tenant, account_id="example")
    assert account.watch_folders == ["Archive"]


def test_path_star_is_the_default(alice):
    alice.client.post("/v1/account", ee_account(path="*"), format="json")
    assert alice.client.get("/v1/account/example").json()["path"] == ["*"]


def test_path_without_a_value_is_star(alice):
    alice.client.post("/v1/account", ee_account(), format="json")
    assert alice.client.get("/v1/account/example").json()["path"] == ["*"]


def test_path_may_be_a_single_string(alice):
    alice.client.post("/v1/account", ee_account(path="INBOX"), format="json")
    assert alice.client.get("/v1/account/example").json()["path"] == ["INBOX"]


def test_fields_change_with_put(alice):
    alice.client.post("/v1/account", ee_account(), format="json")
    response = alice.client.put("/v1/account/example", {"locale": "de", "logs": True},
                                format="json")
    assert response.status_code == 200
    assert alice.client.get("/v1/account/example").json()["locale"] == "de"


def test_a_field_of_neither_api_is_still_400(alice):
    response = alice.client.post("/v1/account", ee_account(colour="blue"), format="json")
    assert response.status_code == 400
    assert not EmailAccount.objects.filter(account_id="example").exists()


def test_a_bad_path_is_400_and_changes_nothing(alice):
    response = alice.client.post("/v1/account", ee_account(path=[1, 2]), format="json")
    assert response.status_code == 400
    assert not EmailAccount.objects.filter(account_id="example").exists()


def test_a_bad_imap_indexer_is_400(alice):
    response = alice.client.post("/v1/account", ee_account(imapIndexer="turbo"), format="json")
    assert response.status_code == 400


# --- webhooks: the account's own URL is a subscription of its events -----------------------


@pytest.fixture
def private_hooks(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True


def _subscriptions(tenant):
    from webhooks.models import WebhookSubscription
    return list(WebhookSubscription.objects.filter(tenant=tenant))


def test_an_account_webhook_url_makes_a_subscription_of_that_account(alice, private_hooks):
    alice.client.post("/v1/account", ee_account(webhooks="http://127.0.0.1:9/hook"),
                      format="json")
    [subscription] = _subscriptions(alice.tenant)
    assert (subscription.url, subscription.accounts, subscription.events) == (
        "http://127.0.0.1:9/hook", ["example"], ["*"])


def test_get_echoes_the_webhook_url(alice, private_hooks):
    alice.client.post("/v1/account", ee_account(webhooks="http://127.0.0.1:9/hook"),
                      format="json")
    assert alice.client.get("/v1/account/example").json()["webhooks"] == "http://127.0.0.1:9/hook"


def test_a_new_webhook_url_moves_the_subscription(alice, private_hooks):
    alice.client.post("/v1/account", ee_account(webhooks="http://127.0.0.1:9/hook"),
                      format="json")
    alice.client.put("/v1/account/example", {"webhooks": "http://127.0.0.1:9/other"},
                     format="json")
    assert [s.url for s in _subscriptions(alice.tenant)] == ["http://127.0.0.1:9/other"]


def test_clearing_the_webhook_url_removes_the_subscription(alice, private_hooks):
    alice.client.post("/v1/account", ee_account(webhooks="http://127.0.0.1:9/hook"),
                      format="json")
    alice.client.put("/v1/account/example", {"webhooks": ""}, format="json")
    assert _subscriptions(alice.tenant) == []


def test_deleting_the_account_removes_its_subscription(alice, private_hooks):
    alice.client.post("/v1/account", ee_account(webhooks="http://127.0.0.1:9/hook"),
                      format="json")
    alice.client.delete("/v1/account/example")
    assert _subscriptions(alice.tenant) == []


def test_an_account_webhook_url_is_an_emailengine_subscription(alice, private_hooks):
    alice.client.post("/v1/account", ee_account(webhooks="http://127.0.0.1:9/hook"),
                      format="json")
    assert [s.format for s in _subscriptions(alice.tenant)] == ["emailengine"]


def test_the_migration_moves_earlier_account_webhooks_to_emailengines_format(alice, private_hooks):
    """Subscriptions made from the field before it made EmailEngine's format are switched;
    a subscription made through ``/v1/webhooks`` keeps its format."""
    import importlib

    from django.apps import apps

    from webhooks.models import WebhookSubscription

    migration = importlib.import_module(
        "webhooks.migrations.0012_account_webhooks_in_engine_format")
    alice.client.post("/v1/account", ee_account(webhooks="http://127.0.0.1:9/hook"),
                      format="json")
    alice.client.post("/v1/webhooks", {"url": "http://127.0.0.1:9/own", "events": ["*"]},
                      format="json")
    WebhookSubscription.objects.update(format="emailapi")
    migration.to_engine_format(apps, None)
    assert {s.url: s.format for s in _subscriptions(alice.tenant)} == {
        "http://127.0.0.1:9/hook": "emailengine", "http://127.0.0.1:9/own": "emailapi"}


def test_an_internal_webhook_url_is_400_and_registers_nothing(alice, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    response = alice.client.post("/v1/account", ee_account(webhooks="http://127.0.0.1:9/hook"),
                                 format="json")
    assert response.status_code == 400
    assert not EmailAccount.objects.filter(account_id="example").exists()


# --- notifyFrom: no messageNew for older mail ------------------------------------------------


def test_notify_from_silences_older_messages(synced, mail_user):
    from mailboxes.sync.account import sync_account
    from tests.mailboxes.helpers import events_of
    from tests.servers import seed

    response = synced.client.put("/v1/account/box", {"notifyFrom": "2025-01-01T00:00:00Z"},
                                 format="json")
    assert response.status_code == 200
    seed.seed_mailbox(mail_user, messages=[
        seed.make_message(subject="Old news", date=datetime(2024, 6, 1, tzinfo=UTC)),
        seed.make_message(subject="Fresh news"),
    ])
    sync_account(synced.session, synced.account)
    subjects = [event.data["subject"] for event in events_of(synced.account, "messageNew")]
    assert subjects == ["Fresh news"]


# --- GET /v1/account/{account} and GET /v1/accounts ------------------------------------------


@pytest.fixture
def example(alice):
    alice.client.post("/v1/account", ee_account(), format="json")
    return alice.client.get("/v1/account/example").json()


def test_a_password_account_is_type_imap(example):
    assert example["type"] == "imap"


def test_the_stored_imap_password_is_masked(example):
    assert example["imap"]["auth"] == {"user": "user@example.com", "pass": "******"}


def test_the_stored_smtp_password_is_masked(example):
    assert example["smtp"]["auth"]["pass"] == "******"


def test_writing_the_mask_back_keeps_the_password(alice, example):
    alice.client.put("/v1/account/example", {"imap": example["imap"]}, format="json")
    account = EmailAccount.objects.get(tenant=alice.tenant, account_id="example")
    assert credentials.get_credential(account, "imap.pass") == "secret"


def test_counters_count_the_accounts_events(example):
    assert example["counters"] == {"events": {"accountAdded": 1}}


@pytest.mark.parametrize("field,value", [("logs", False), ("notifyFrom", None),
                                         ("syncFrom", None), ("path", ["*"])])
def test_unset_fields_have_emailengine_defaults(example, field, value):
    assert example[field] == value


def gmail_account(alice, app: str = "gmail") -> None:
    """An OAuth2 Gmail mailbox ``g`` with tokens, as a connect link's sign-in saves one."""
    from accounts import services
    services.register_account(alice.tenant, {
        "account": "g", "imap": {"host": "imap.gmail.com", "port": 993, "secure": True,
                                 "auth": {"user": "u@gmail.com"}},
        "oauth2": {"app": app, "provider": "gmail", "accessToken": "at", "refreshToken": "rt"}})


def test_an_oauth2_account_is_typed_by_its_provider(alice):
    gmail_account(alice, app="my-gmail-app")
    body = alice.client.get("/v1/account/g").json()
    assert (body["type"], body["app"]) == ("gmail", "my-gmail-app")


def test_oauth2_tokens_are_masked(alice):
    gmail_account(alice)
    oauth2 = alice.client.get("/v1/account/g").json()["oauth2"]
    assert (oauth2["accessToken"], oauth2["refreshToken"]) == ("******", "******")


def test_an_oauth2_mailbox_moved_to_another_host_needs_a_secret_of_its_own(alice):
    """Its tokens would go to the new host: refused, as a stored password is."""
    gmail_account(alice)
    moved = alice.client.put("/v1/account/g", {"imap": {"host": "imap.collector.example"}},
                             format="json")
    assert moved.status_code == 400
    assert EmailAccount.objects.get(account_id="g").imap["host"] == "imap.gmail.com"


def test_last_error_carries_emailengines_response_and_server_response_code(alice, example):
    """As the worker records a refused login: EmailEngine's clients read ``response`` and
    ``serverResponseCode``; ours keep ``error`` and ``code``."""
    EmailAccount.objects.filter(account_id="example").update(
        state="authenticationError", last_error={
            "error": "Login refused: Authentication failed.", "code": "AuthenticationFailed",
            "serverResponse": "[AUTHENTICATIONFAILED] Authentication failed.",
            "time": "2026-12-07T08:00:00Z"})
    shown = alice.client.get("/v1/account/example").json()["lastError"]
    assert shown["response"] == "Login refused: Authentication failed."
    assert shown["serverResponseCode"] == "AUTHENTICATIONFAILED"
    assert (shown["error"], shown["code"]) == ("Login refused: Authentication failed.",
                                               "AuthenticationFailed")
    [listed] = alice.client.get("/v1/accounts").json()["accounts"]
    assert listed["lastError"] == shown


def test_a_last_error_without_a_server_code_gives_ours(alice, example):
    EmailAccount.objects.filter(account_id="example").update(
        state="connectError", last_error={"error": "Connection refused",
                                          "code": "ConnectionRefused"})
    shown = alice.client.get("/v1/account/example").json()["lastError"]
    assert (shown["response"], shown["serverResponseCode"]) == ("Connection refused",
                                                                "ConnectionRefused")


def test_the_openapi_document_is_also_where_emailengine_serves_its_own(client):
    answer = client.get("/swagger.json")
    assert answer.status_code == 200
    assert answer.json()["paths"] == client.get("/v1/openapi.json").json()["paths"]


def test_list_items_carry_type_and_counters(alice, example):
    [item] = alice.client.get("/v1/accounts").json()["accounts"]
    assert (item["type"], item["counters"]) == ("imap", {"events": {"accountAdded": 1}})


def test_list_echoes_no_filter_as_emailengine(alice, example):
    body = alice.client.get("/v1/accounts").json()
    assert (body["query"], body["state"]) == (False, "*")


def test_list_echoes_the_filters(alice, example):
    body = alice.client.get("/v1/accounts?query=exa&state=init").json()
    assert (body["query"], body["state"]) == ("exa", "init")


def test_an_empty_list_has_zero_pages(alice):
    body = alice.client.get("/v1/accounts").json()
    assert (body["total"], body["page"], body["pages"], body["accounts"]) == (0, 0, 0, [])


# --- POST /v1/verifyAccount ------------------------------------------------------------------


def _imap_of(user, **auth):
    settings = user.imap_settings(secure=False)
    settings["tls"] = {"rejectUnauthorized": False}
    settings["auth"] = {**settings["auth"], **auth}
    return settings


def test_verify_lists_mailboxes_at_the_top_level(alice, mail_user):
    response = alice.client.post("/v1/verifyAccount", {"mailboxes": True,
                                                       "imap": _imap_of(mail_user)},
                                 format="json")
    assert response.status_code == 200
    inbox = next(box for box in response.json()["mailboxes"] if box["path"] == "INBOX")
    assert set(inbox) >= {"path", "name", "listed", "subscribed", "specialUse",
                          "specialUseSource"}


def test_verify_mailboxes_carry_emailengine_values(alice, mail_user):
    body = alice.client.post("/v1/verifyAccount", {"mailboxes": True,
                                                   "imap": _imap_of(mail_user)},
                             format="json").json()
    sent = next(box for box in body["mailboxes"] if box["specialUse"] == "\\Sent")
    assert (sent["listed"], sent["subscribed"], sent["specialUseSource"]) == (
        True, True, "extension")


def test_verify_without_mailboxes_lists_none(alice, mail_user):
    body = alice.client.post("/v1/verifyAccount", {"imap": _imap_of(mail_user)},
                             format="json").json()
    assert body == {"imap": {"success": True}}


def test_a_wrong_password_reads_as_emailengines_error(alice, mail_user):
    body = alice.client.post("/v1/verifyAccount", {"imap": _imap_of(mail_user, **{"pass": "x"})},
                             format="json").json()
    imap = body["imap"]
    assert {key: imap[key] for key in ("success", "error", "code", "responseText")} == {
        "success": False, "error": "Command failed", "code": "AUTHENTICATIONFAILED",
        "responseText": "Authentication failed."}


def test_a_wrong_password_keeps_our_code(alice, mail_user):
    body = alice.client.post("/v1/verifyAccount", {"imap": _imap_of(mail_user, **{"pass": "x"})},
                             format="json").json()
    assert body["imap"]["emailapiCode"] == "AuthenticationFailed"


def test_no_bytes_repr_in_a_verify_error(alice, mail_user):
    response = alice.client.post("/v1/verifyAccount",
                                 {"imap": _imap_of(mail_user, **{"pass": "x"})}, format="json")
    assert "b'" not in response.content.decode()


def test_a_wrong_smtp_password_is_eauth(alice, smtp_server, smtp_user):
    smtp = smtp_server.smtp_settings(smtp_user.username, "wrong")
    smtp["tls"] = {"rejectUnauthorized": False}
    body = alice.client.post("/v1/verifyAccount", {"smtp": smtp}, format="json").json()
    assert (body["smtp"]["code"], body["smtp"]["responseCode"]) == ("EAUTH", 535)


def test_verify_checks_through_emailengines_proxy_and_accepts_an_ehlo_name(alice, mail_user):
    imap = _imap_of(mail_user)
    with Socks5Proxy("proxyuser", "Pr0xy-pw") as proxy:
        response = alice.client.post("/v1/verifyAccount", {
            "imap": imap, "proxy": proxy.url("proxyuser", "Pr0xy-pw"),
            "smtpEhloName": "client.example.com"}, format="json")
        assert response.json() == {"imap": {"success": True}}
        assert [(r.host, r.port) for r in proxy.requests] == [(imap["host"], imap["port"])]


def test_verify_through_a_proxy_that_refuses_the_login_says_so(alice, mail_user,
                                                                smtp_server, smtp_user):
    smtp = {**smtp_server.smtp_settings(smtp_user.username, smtp_user.password),
            "tls": {"rejectUnauthorized": False}}
    with Socks5Proxy("proxyuser", "Pr0xy-pw") as proxy:
        body = alice.client.post("/v1/verifyAccount", {
            "imap": _imap_of(mail_user), "smtp": smtp,
            "proxy": proxy.url("proxyuser", "wrong")}, format="json").json()
        assert proxy.logins_refused == 2
    for section in ("imap", "smtp"):
        assert body[section]["success"] is False, body
        assert "The proxy refused the login" in body[section]["reason"], body


def test_verify_with_a_malformed_proxy_is_400_naming_it(alice, mail_user):
    response = alice.client.post("/v1/verifyAccount", {
        "imap": _imap_of(mail_user), "proxy": "ftp://proxy.example"}, format="json")
    assert response.status_code == 400, response.json()
    assert "proxy" in response.json()["details"], response.json()


# --- access tokens -------------------------------------------------------------------------


def test_an_emailengine_token_request_provisions_a_token(alice):
    alice.client.post("/v1/account", ee_account(), format="json")
    response = alice.client.post("/v1/token", {"account": "example",
                                               "description": "Token description",
                                               "scopes": ["api"],
                                               "metadata": '{"example": "value"}'},
                                 format="json")
    assert response.status_code == 200
    assert isinstance(response.json()["token"], str)


def test_post_tokens_is_the_same_route(alice):
    response = alice.client.post("/v1/tokens", {"description": "ci", "scopes": "api"},
                                 format="json")
    assert response.status_code == 200
    assert response.json()["description"] == "ci"


def test_a_token_for_an_unknown_account_is_404(alice):
    response = alice.client.post("/v1/token", {"account": "nobody", "description": "x"},
                                 format="json")
    assert response.status_code == 404


def test_token_restrictions_are_refused(alice):
    response = alice.client.post("/v1/token", {"description": "x", "restrictions": {
        "addresses": ["127.0.0.1"]}}, format="json")
    assert response.status_code == 400


def test_bad_metadata_is_400(alice):
    response = alice.client.post("/v1/token", {"description": "x", "metadata": "{not json"},
                                 format="json")
    assert response.status_code == 400


def test_metadata_nested_past_the_body_limit_is_400_naming_the_depth(alice):
    # 60,000 levels inside a string: the body's own nesting is fine, the decoder of the
    # string's would give up with a RecursionError.
    metadata = "[" * 30_000 + "]" * 30_000
    tokens = ApiToken.objects.filter(tenant=alice.tenant).count()
    response = alice.client.post("/v1/token", {"description": "x", "metadata": metadata},
                                 format="json")
    assert response.status_code == 400
    assert response.json()["details"] == {
        "metadata": ["Metadata is JSON nested deeper than 32 levels"]}
    assert ApiToken.objects.filter(tenant=alice.tenant).count() == tokens


@pytest.fixture
def account_token(alice):
    from tests.base import api_client
    alice.client.post("/v1/account", ee_account(), format="json")
    alice.client.post("/v1/account", ee_account(account="other"), format="json")
    raw = alice.client.post("/v1/token", {"account": "example", "description": "d"},
                            format="json").json()["token"]
    return api_client(raw)


def test_an_account_token_opens_its_account(account_token):
    assert account_token.get("/v1/account/example").status_code == 200


def test_an_account_token_does_not_open_another_account(account_token):
    assert account_token.get("/v1/account/other").status_code == 403


def test_an_account_token_does_not_open_tenant_routes(account_token):
    assert account_token.get("/v1/accounts").status_code == 403


def test_an_account_token_refusal_says_why(account_token):
    assert account_token.get("/v1/accounts").json()["code"] == "TokenLimitedToAccount"


def test_an_account_token_does_not_open_the_event_stream(alice, account_token):
    from webhooks.api.stream_socket import Refused, authenticate
    raw = account_token._credentials["HTTP_AUTHORIZATION"]
    with pytest.raises(Refused):
        authenticate({"headers": [(b"authorization", raw.encode())], "query_string": b""})


def test_tokens_list_with_string_ids_and_descriptions(alice):
    alice.client.post("/v1/token", {"description": "Token description"}, format="json")
    listed = alice.client.get("/v1/tokens").json()["tokens"]
    item = next(t for t in listed if t["description"] == "Token description")
    assert (type(item["id"]), len(item["id"]), set(item) >= {"scopes", "created", "access"}) \
        == (str, 64, True)


def test_a_token_is_deleted_by_its_emailengine_id(alice):
    alice.client.post("/v1/token", {"description": "gone"}, format="json")
    item = next(t for t in alice.client.get("/v1/tokens").json()["tokens"]
                if t["description"] == "gone")
    response = alice.client.delete(f"/v1/token/{item['id']}")
    assert response.json()["deleted"] is True


def test_a_token_is_deleted_by_the_token_itself(alice):
    from tests.base import api_client
    raw = alice.client.post("/v1/token", {"description": "gone"}, format="json").json()["token"]
    alice.client.delete(f"/v1/token/{raw}")
    assert api_client(raw).get("/v1/accounts").status_code == 401


def test_deleting_an_unknown_token_is_404(alice):
    assert alice.client.delete(f"/v1/token/{'0' * 64}").status_code == 404


def test_deleting_garbage_is_404(alice):
    assert alice.client.delete("/v1/token/not-a-token").status_code == 404


# --- PUT /v1/account/{account}/sync and /flush -----------------------------------------------


def test_sync_true_answers_sync_true(alice):
    alice.client.post("/v1/account", ee_account(), format="json")
    response = alice.client.put("/v1/account/example/sync", {"sync": True}, format="json")
    assert (response.status_code, response.json()) == (200, {"sync": True})


def test_sync_without_the_flag_does_nothing_as_emailengine(alice):
    alice.client.post("/v1/account", ee_account(), format="json")
    response = alice.client.put("/v1/account/example/sync", {}, format="json")
    assert response.json() == {"sync": False}


def test_sync_of_an_unknown_account_is_404(alice):
    response = alice.client.put("/v1/account/nobody/sync", {"sync": True}, format="json")
    assert response.status_code == 404


def test_flush_of_an_unknown_account_is_404(alice):
    response = alice.client.put("/v1/account/nobody/flush", {"flush": True}, format="json")
    assert response.status_code == 404


def test_flush_forgets_the_index(synced):
    from mailboxes.models import Message
    response = synced.client.put("/v1/account/box/flush", {"flush": True}, format="json")
    assert (response.status_code, response.json()) == (200, {"flush": True})
    assert Message.objects.filter(email_account=synced.account).count() == 0


def test_flush_without_the_flag_keeps_the_index(synced):
    from mailboxes.models import Message
    synced.client.put("/v1/account/box/flush", {}, format="json")
    assert Message.objects.filter(email_account=synced.account).count() > 0


def test_the_index_is_rebuilt_after_a_flush_without_messageNew(synced):
    from mailboxes.models import Message
    from mailboxes.sync.account import sync_account
    from tests.mailboxes.helpers import events_of
    before = Message.objects.filter(email_account=synced.account).count()
    synced.client.put("/v1/account/box/flush", {"flush": True}, format="json")
    sync_account(synced.session, EmailAccount.objects.get(pk=synced.account.pk))
    assert (Message.objects.filter(email_account=synced.account).count(),
            len(events_of(synced.account, "messageNew"))) == (before, 0)


def test_flush_sets_notify_from(synced):
    synced.client.put("/v1/account/box/flush", {"flush": True,
                                                "notifyFrom": "2024-05-01T00:00:00Z"},
                      format="json")
    assert synced.client.get("/v1/account/box").json()["notifyFrom"].startswith("2024-05-01")


@pytest.mark.django_db(transaction=True)
def test_sync_makes_the_holding_worker_poll_every_folder_now(alice, mail_user, settings):
    import time

    from tests.mailboxes.helpers import DrivenWorker, register

    settings.IMAP_CLAIM_INTERVAL, settings.IMAP_LEASE_TTL = 1, 60
    settings.IMAP_POLL_INTERVAL = 600  # no poll of its own during the test
    account = register(alice.tenant, mail_user)
    worker = DrivenWorker()
    try:
        worker.claim()
        worker.until(lambda: EmailAccount.objects.get(pk=account.pk).state == "connected"
                     and worker.idle(account.pk))
        asked = time.monotonic()
        alice.client.put(f"/v1/account/{account.account_id}/sync", {"sync": True},
                         format="json")
        polled = worker.until(lambda: worker.slots[account.pk].conn.last_poll > asked
                              and worker.idle(account.pk))
    finally:
        worker.shutdown()
    assert polled is True


# --- GET /v1/stats -------------------------------------------------------------------------


def test_stats_answer_emailengines_shape(alice, example):
    body = alice.client.get("/v1/stats").json()
    assert (body["accounts"], body["connections"]["init"],
            body["counters"]["events"]["accountAdded"], type(body["version"])) == (1, 1, 1, str)


def test_stats_count_only_the_callers_tenant(alice, bob, example):
    assert bob.client.get("/v1/stats").json()["accounts"] == 0


def test_stats_counters_cover_the_given_seconds(alice, example):
    Event.objects.filter(tenant=alice.tenant).update(
        created_at=datetime(2020, 1, 1, tzinfo=UTC))
    assert alice.client.get("/v1/stats?seconds=60").json()["counters"]["events"] == {}


def _unassigned(alice) -> int:
    return alice.client.get("/v1/stats").json()["connections"]["unassigned"]


def test_stats_count_a_fresh_mailbox_as_unassigned_and_not_unset(alice, example):
    connections = alice.client.get("/v1/stats").json()["connections"]
    assert (connections["unassigned"], connections["unset"]) == (1, 0)


def test_stats_unassigned_leaves_out_held_and_paused_mailboxes(alice, example):
    account = EmailAccount.objects.get(tenant=alice.tenant, account_id="example")
    holders.beat("stats-w1", 60)
    holders.claim("stats-w1", [account.pk])
    assert _unassigned(alice) == 0
    holders.beat("stats-w1", -1)  # the worker died: its heartbeat lapsed
    assert _unassigned(alice) == 1
    assert alice.client.put("/v1/account/example/pause").status_code == 200
    assert _unassigned(alice) == 0


def test_stats_unassigned_counts_only_the_callers_tenant(alice, bob, example):
    assert _unassigned(bob) == 0


def test_stats_count_a_mailbox_without_imap_settings_as_unset_not_unassigned(alice, example):
    EmailAccount.objects.filter(tenant=alice.tenant, account_id="example").update(imap=None)
    connections = alice.client.get("/v1/stats").json()["connections"]
    assert (connections["unset"], connections["unassigned"]) == (1, 0)


def test_stats_with_bad_seconds_is_400(alice):
    assert alice.client.get("/v1/stats?seconds=-1").status_code == 400


# --- syncFrom: no index of older history --------------------------------------------------------


def test_sync_from_leaves_older_history_unindexed(alice, mail_user):
    from mailboxes.models import Message
    from mailboxes.sync.account import sync_account
    from tests.mailboxes.helpers import open_session
    from tests.servers import seed

    seed.seed_mailbox(mail_user, messages=[
        seed.make_message(subject="Ancient", date=datetime(2020, 6, 1, tzinfo=UTC)),
        seed.make_message(subject="Recent"),
    ])
    imap = mail_user.imap_settings(secure=False)
    imap["tls"] = {"rejectUnauthorized": False}
    response = alice.client.post("/v1/account", {"account": "box", "imap": imap,
                                                 "syncFrom": "2024-01-01T00:00:00Z"},
                                 format="json")
    assert response.status_code == 200
    account = EmailAccount.objects.get(tenant=alice.tenant, account_id="box")
    session = open_session(account)
    try:
        sync_account(session, account)
    finally:
        session.client.logout()
    subjects = list(Message.objects.filter(email_account=account).values_list("subject",
                                                                              flat=True))
    assert subjects == ["Recent"]


def test_webhooks_custom_headers_go_with_the_account_webhook(alice, private_hooks):
    from webhooks import subscriptions
    alice.client.post("/v1/account", ee_account(
        webhooks="http://127.0.0.1:9/hook",
        webhooksCustomHeaders=[{"key": "Authorization", "value": "Bearer abc"}]), format="json")
    [subscription] = _subscriptions(alice.tenant)
    assert subscriptions.headers_of(subscription) == {"Authorization": "Bearer abc"}


def test_webhooks_custom_header_values_are_masked(alice, private_hooks):
    alice.client.post("/v1/account", ee_account(
        webhooks="http://127.0.0.1:9/hook",
        webhooksCustomHeaders=[{"key": "Authorization", "value": "Bearer abc"}]), format="json")
    body = alice.client.get("/v1/account/example").json()
    assert body["webhooksCustomHeaders"] == [{"key": "Authorization", "value": "******"}]


def test_a_masked_header_written_back_keeps_its_value(alice, private_hooks):
    from webhooks import subscriptions
    alice.client.post("/v1/account", ee_account(
        webhooks="http://127.0.0.1:9/hook",
        webhooksCustomHeaders=[{"key": "Authorization", "value": "Bearer abc"}]), format="json")
    alice.client.put("/v1/account/example", {"webhooksCustomHeaders": [
        {"key": "Authorization", "value": "******"}, {"key": "X-Extra", "value": "1"}]},
        format="json")
    [subscription] = _subscriptions(alice.tenant)
    assert subscriptions.headers_of(subscription) == {"Authorization": "Bearer abc",
                                                      "X-Extra": "1"}


def test_a_reserved_custom_header_is_400(alice, private_hooks):
    response = alice.client.post("/v1/account", ee_account(
        webhooks="http://127.0.0.1:9/hook",
        webhooksCustomHeaders=[{"key": "Host", "value": "x"}]), format="json")
    assert response.status_code == 400


@pytest.mark.django_db(transaction=True)
def test_a_special_use_path_is_watched_as_its_folder(alice, mail_user, settings):
    from mailboxes.models import Folder
    from tests.mailboxes.helpers import DrivenWorker

    settings.IMAP_CLAIM_INTERVAL, settings.IMAP_LEASE_TTL = 1, 60
    imap = mail_user.imap_settings(secure=False)
    imap["tls"] = {"rejectUnauthorized": False}
    alice.client.post("/v1/account", {"account": "box", "imap": imap, "path": ["\\Sent"]},
                      format="json")
    account = EmailAccount.objects.get(tenant=alice.tenant, account_id="box")
    worker = DrivenWorker()
    try:
        worker.claim()
        worker.until(lambda: worker.idle(account.pk))
        watched = worker.slots[account.pk].conn.watched
    finally:
        worker.shutdown()
    sent = Folder.objects.get(email_account=account, special_use="\\Sent")
    assert (watched, sent.path != "INBOX") == (sent.path, True)


def test_copy_null_means_the_default(alice):
    alice.client.post("/v1/account", ee_account(copy=None), format="json")
    assert alice.client.get("/v1/account/example").json()["copy"] is True


def test_smtp_false_means_no_smtp(alice):
    response = alice.client.post("/v1/account", ee_account(smtp=False), format="json")
    assert response.status_code == 200
    assert alice.client.get("/v1/account/example").json()["smtp"] is None


def test_list_takes_emailengines_unset_state(alice, example):
    body = alice.client.get("/v1/accounts?state=unset").json()
    assert (body["total"], body["state"]) == (0, "unset")


def test_the_tokens_of_an_account_are_listed_under_its_id(alice, bob, account_token):
    alice.client.post("/v1/token", {"description": "tenant-wide"}, format="json")
    alice.client.post("/v1/token", {"account": "other", "description": "o"}, format="json")
    revoked = alice.client.post("/v1/token", {"account": "example", "description": "gone"},
                                format="json").json()
    alice.client.delete(f"/v1/token/{revoked['id']}")
    listed = alice.client.get("/v1/tokens/account/example").json()["tokens"]
    assert [(t["account"], t["description"]) for t in listed] == [("example", "d")]
    assert "token" not in listed[0]
    assert alice.client.get("/v1/tokens/account/nobody").status_code == 404
    assert bob.client.get("/v1/tokens/account/example").status_code == 404  # alice's


def test_an_account_token_cannot_list_tokens_even_of_its_own_account(account_token):
    response = account_token.get("/v1/tokens/account/example")
    assert (response.status_code, response.json()["code"]) == (403, "TokenLimitedToAccount")


def test_an_account_token_goes_with_its_account(alice, account_token):
    """Red team: kept, it opened the next account registered under the same id."""
    assert alice.client.delete("/v1/account/example").status_code == 200
    alice.client.post("/v1/account", ee_account(), format="json")  # the same id again
    assert account_token.get("/v1/account/example").status_code == 401
    assert alice.client.get("/v1/tokens/account/example").json()["tokens"] == []
    assert ApiToken.objects.filter(account_id="example", revoked_at__isnull=True).count() == 0
