"""EmailEngine's ``smtpStatus`` and ``sendOnly`` on ``GET /v1/account/{account}``: the outcome
of the account's last send through its own SMTP server (the real aiosmtpd one), not a
gateway's, and whether it has IMAP at all."""

from __future__ import annotations

import time

import pytest

from accounts.models import EmailAccount
from tests.mailboxes.sending_helpers import b64, raw_message, sending_account, work_send_queue

pytestmark = pytest.mark.django_db(transaction=True)


def _send(client) -> None:
    response = client.post("/v1/account/box/submit", {
        "raw": b64(raw_message()), "deliveryAttempts": 0, "copy": False}, format="json")
    assert response.status_code == 200, response.json()
    work_send_queue()


def test_no_send_yet_is_null_and_a_mailbox_is_not_send_only(alice, smtp_server, smtp_user):
    sending_account(alice.tenant, smtp_user, smtp_server)

    shown = alice.client.get("/v1/account/box").json()

    assert shown["smtpStatus"] is None
    assert shown["sendOnly"] is False


def test_an_accepted_send_is_status_ok_with_the_servers_answer(alice, smtp_server, smtp_user):
    sending_account(alice.tenant, smtp_user, smtp_server)
    before = int(time.time() * 1000)

    _send(alice.client)

    status = alice.client.get("/v1/account/box").json()["smtpStatus"]
    assert status["status"] == "ok"
    assert status["response"].startswith("250 ")
    assert status["responseCode"] == 250
    assert before <= status["created"] <= int(time.time() * 1000)


def test_a_refused_send_is_status_error_with_the_reply_and_command(alice, smtp_server,
                                                                    smtp_user):
    sending_account(alice.tenant, smtp_user, smtp_server)
    smtp_server.refuse_always("550 5.7.1 Relaying denied", stage="rcpt")

    _send(alice.client)

    status = alice.client.get("/v1/account/box").json()["smtpStatus"]
    assert status["status"] == "error"
    assert status["response"] == "550 5.7.1 Relaying denied"
    assert status["responseCode"] == 550
    assert status["command"] == "RCPT TO"
    assert status["code"] == "SmtpRefused"


def test_the_last_send_wins(alice, smtp_server, smtp_user):
    sending_account(alice.tenant, smtp_user, smtp_server)
    smtp_server.refuse_always("550 5.7.1 Relaying denied", stage="rcpt")
    _send(alice.client)
    smtp_server.accept()

    _send(alice.client)

    assert alice.client.get("/v1/account/box").json()["smtpStatus"]["status"] == "ok"


def test_a_send_through_a_gateway_leaves_it_alone(alice, smtp_server, smtp_user):
    sending_account(alice.tenant, smtp_user, smtp_server)
    alice.client.post("/v1/gateway", {
        "gateway": "relay", "name": "Relay", "host": smtp_server.host, "port": smtp_server.port,
        "secure": False, "user": smtp_user.username, "pass": smtp_user.password,
        "tls": {"rejectUnauthorized": False}}, format="json")

    alice.client.post("/v1/account/box/submit", {
        "raw": b64(raw_message()), "gateway": "relay", "copy": False}, format="json")
    work_send_queue()

    smtp_server.wait_for_messages(1)
    assert alice.client.get("/v1/account/box").json()["smtpStatus"] is None
    assert EmailAccount.objects.get(account_id="box").smtp_status is None


def test_a_send_only_account_says_so(alice, smtp_server, smtp_user):
    smtp = smtp_server.smtp_settings(smtp_user.username, smtp_user.password)
    alice.client.post("/v1/account", {"account": "relay", "imap": False, "smtp": smtp},
                      format="json")

    assert alice.client.get("/v1/account/relay").json()["sendOnly"] is True
