"""EmailEngine's send-only accounts (``imap: false``, or ``smtp`` without ``imap``): they
register, send through the real SMTP server, show type ``sending`` and state ``unset``, no
worker holds them, and a mail route answers 409 ``SendOnlyAccount`` (EmailEngine's code
``NotSyncing``) in words rather than an empty mailbox."""

from __future__ import annotations

import pytest

from accounts.models import Credential, EmailAccount
from mailboxes.worker import eligible
from tests.mailboxes.helpers import register
from tests.mailboxes.sending_helpers import b64, raw_message, sending_account, work_send_queue

pytestmark = pytest.mark.django_db(transaction=True)

MAIL_ROUTES = [
    ("get", "/v1/account/relay/mailboxes", None),
    ("get", "/v1/account/relay/messages?path=INBOX", None),
    ("get", "/v1/account/relay/message/AAAAAQAAAAE", None),
    ("post", "/v1/account/relay/search?path=INBOX", {"search": {"unseen": True}}),
    ("get", "/v1/account/relay/threads", None),
    ("post", "/v1/account/relay/mailbox", {"path": "New"}),
    ("post", "/v1/account/relay/message", {"path": "INBOX", "raw": "U3ViamVjdDogaGkNCg0KaGk="}),
    ("post", "/v1/account/relay/export", {"startDate": "2020-01-01T00:00:00Z",
                                          "endDate": "2030-01-01T00:00:00Z"}),
]


def _smtp(smtp_server, smtp_user) -> dict:
    smtp = smtp_server.smtp_settings(smtp_user.username, smtp_user.password)
    smtp["tls"] = {"rejectUnauthorized": False}
    return smtp


@pytest.mark.parametrize("imap", [{"imap": False}, {}, {"imap": None}])
def test_an_smtp_only_account_registers_as_sending_and_unset(alice, smtp_server, smtp_user,
                                                              imap):
    response = alice.client.post("/v1/account", {
        "account": "relay", "email": "me@example.test", **imap,
        "smtp": _smtp(smtp_server, smtp_user)}, format="json")

    assert response.status_code == 200, response.json()
    shown = alice.client.get("/v1/account/relay").json()
    assert shown["type"] == "sending"
    assert shown["state"] == "unset"
    assert shown["imap"] is None
    assert shown["smtp"]["auth"]["pass"] == "******"
    listed = alice.client.get("/v1/accounts?state=unset").json()["accounts"]
    assert [item["account"] for item in listed] == ["relay"]
    account = EmailAccount.objects.get(account_id="relay")
    assert not eligible.eligible().filter(pk=account.pk).exists()


def test_a_send_only_account_sends_through_its_smtp_server(alice, smtp_server, smtp_user):
    alice.client.post("/v1/account", {"account": "relay", "imap": False,
                                      "smtp": _smtp(smtp_server, smtp_user)}, format="json")

    queued = alice.client.post("/v1/account/relay/submit", {
        "raw": b64(raw_message(subject="From the relay"))}, format="json")
    assert queued.status_code == 200, queued.json()
    work_send_queue()

    [received] = smtp_server.wait_for_messages(1)
    assert received.message["Subject"] == "From the relay"
    entry = alice.client.get(f"/v1/outbox/{queued.json()['queueId']}").json()
    assert entry["state"] == "sent"


@pytest.mark.parametrize(("method", "path", "body"), MAIL_ROUTES)
def test_mail_routes_of_a_send_only_account_say_so_in_words(alice, smtp_server, smtp_user,
                                                             method, path, body):
    alice.client.post("/v1/account", {"account": "relay", "imap": False,
                                      "smtp": _smtp(smtp_server, smtp_user)}, format="json")

    response = getattr(alice.client, method)(path, body, format="json")

    assert response.status_code == 409, response.json()
    error = response.json()
    assert error["code"] == "NotSyncing"
    assert error["emailapiCode"] == "SendOnlyAccount"
    assert "only sends" in error["message"]


@pytest.mark.parametrize(("body", "field"), [
    ({"account": "relay", "imap": False}, "imap"),
    ({"account": "relay", "imap": False, "smtp": False}, "imap"),
    ({"account": "relay"}, "imap"),
    ({"account": "relay", "imap": True}, "imap"),
])
def test_an_account_that_could_do_nothing_is_refused_and_nothing_is_stored(alice, body, field):
    response = alice.client.post("/v1/account", body, format="json")

    assert response.status_code == 400
    assert field in response.json()["details"]
    assert not EmailAccount.objects.filter(account_id="relay").exists()


def test_imap_false_on_update_turns_a_mailbox_into_a_send_only_one_and_back(
        alice, smtp_server, smtp_user):
    account = sending_account(alice.tenant, smtp_user, smtp_server, account_id="relay")
    imap = account.imap

    response = alice.client.put("/v1/account/relay", {"imap": False}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["state"] == "unset"
    account.refresh_from_db()
    assert account.imap is None
    assert not Credential.objects.filter(email_account=account, name__startswith="imap.").exists()
    assert not eligible.eligible().filter(pk=account.pk).exists()
    assert alice.client.get("/v1/account/relay/mailboxes").status_code == 409

    back = alice.client.put("/v1/account/relay", {"imap": {
        **imap, "auth": {"user": smtp_user.username, "pass": smtp_user.password}}}, format="json")

    assert back.status_code == 200, back.json()
    assert back.json()["state"] == "init"
    assert eligible.eligible().filter(pk=account.pk).exists()


def test_imap_false_on_an_account_without_smtp_is_refused(alice, smtp_user):
    register(alice.tenant, smtp_user, account_id="relay")

    response = alice.client.put("/v1/account/relay", {"imap": False}, format="json")

    assert response.status_code == 400
    assert "smtp" in response.json()["details"]["imap"][0]
    assert EmailAccount.objects.get(account_id="relay").imap is not None


def test_a_paused_send_only_account_resumes_unset(alice, smtp_server, smtp_user):
    alice.client.post("/v1/account", {"account": "relay", "imap": False,
                                      "smtp": _smtp(smtp_server, smtp_user)}, format="json")

    alice.client.put("/v1/account/relay/pause")
    resumed = alice.client.put("/v1/account/relay/resume")

    assert resumed.json()["state"] == "unset"
