"""EmailEngine's SMTP gateways: the routes (``mailboxes.api.gateways``) and a send through one
(``submit`` with ``gateway``), against the real test SMTP server and Dovecot. The account's
own SMTP server is a closed port, so a message that arrives came through the gateway."""

from __future__ import annotations

import pytest
from django.db import connection

from mailboxes import smtp_status
from mailboxes.models import OutboxEntry, SmtpGateway
from tests.mailboxes.helpers import register
from tests.mailboxes.sending_helpers import b64, raw_message, sync, work_send_queue
from tests.servers.net import find_free_port

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "gateway-Secret-789"


def _gateway_body(smtp_server, smtp_user, **changes) -> dict:
    body = {"gateway": "relay", "name": "Relay", "host": smtp_server.host,
            "port": smtp_server.port, "secure": False, "user": smtp_user.username,
            "pass": smtp_user.password, "tls": {"rejectUnauthorized": False}}
    return {**body, **changes}


@pytest.fixture
def dead_smtp_account(alice, smtp_user):
    """Alice's ``box``: IMAP on the test Dovecot, SMTP on a port nothing listens on."""
    smtp = {"host": "127.0.0.1", "port": find_free_port("127.0.0.1"), "secure": False,
            "auth": {"user": smtp_user.username, "pass": smtp_user.password}}
    account = register(alice.tenant, smtp_user, smtp=smtp)
    sync(account)
    return account


def test_gateway_routes_register_show_change_list_and_delete(alice, bob, smtp_server,
                                                              smtp_user):
    created = alice.client.post("/v1/gateway", _gateway_body(smtp_server, smtp_user),
                                format="json")
    assert created.json() == {"gateway": "relay", "state": "new"}
    again = alice.client.post("/v1/gateway", _gateway_body(smtp_server, smtp_user, name="R2"),
                              format="json")
    assert again.json() == {"gateway": "relay", "state": "existing"}
    shown = alice.client.get("/v1/gateway/relay").json()
    assert shown["name"] == "R2"
    assert (shown["pass"], shown["user"], shown["deliveries"], shown["lastUse"]) == (
        "******", smtp_user.username, 0, None)
    assert smtp_user.password not in str(shown)
    edited = alice.client.put("/v1/gateway/edit/relay", {"port": 2525, "pass": None},
                              format="json")
    assert edited.json() == {"gateway": "relay"}
    shown = alice.client.get("/v1/gateway/relay").json()
    assert (shown["port"], "pass" in shown) == (2525, False)
    listed = alice.client.get("/v1/gateways").json()
    assert ([g["gateway"] for g in listed["gateways"]], listed["total"]) == (["relay"], 1)
    assert bob.client.get("/v1/gateway/relay").status_code == 404  # alice's
    assert bob.client.get("/v1/gateways").json()["gateways"] == []
    assert bob.client.delete("/v1/gateway/relay").status_code == 404
    assert alice.client.delete("/v1/gateway/relay").json() == {"gateway": "relay",
                                                               "deleted": True}
    missing = alice.client.delete("/v1/gateway/relay")
    assert (missing.status_code, missing.json()["code"]) == (404, "GatewayNotFound")
    generated = alice.client.post("/v1/gateway", _gateway_body(smtp_server, smtp_user,
                                                               gateway=None), format="json")
    assert generated.json()["state"] == "new"
    assert len(generated.json()["gateway"]) == 16


def test_the_password_is_stored_sealed(alice, smtp_server, smtp_user):
    body = _gateway_body(smtp_server, smtp_user, **{"pass": PASSWORD})
    alice.client.post("/v1/gateway", body, format="json")
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM mailboxes_smtpgateway")
        rows = cursor.fetchall()
    assert rows
    assert PASSWORD not in str(rows)


@pytest.mark.parametrize("body, field", [
    ({"port": 0}, "port"),
    ({"host": "bad host\r\nQUIT"}, "host"),
    ({"gateway": "a\tb"}, "gateway"),
    ({"pass": 5}, "pass"),
    ({"password": "x"}, "password"),
    ({"tls": {"minVersion": "SSLv3"}}, "tls.minVersion"),
])
def test_bad_gateways_are_refused_and_store_nothing(alice, smtp_server, smtp_user, body, field):
    response = alice.client.post("/v1/gateway", _gateway_body(smtp_server, smtp_user, **body),
                                 format="json")
    assert response.status_code == 400
    assert field in response.json()["details"], response.json()
    assert not SmtpGateway.objects.exists()


def test_a_send_through_a_gateway_goes_out_through_it_and_counts(
        alice, dead_smtp_account, smtp_server, smtp_user):
    alice.client.post("/v1/gateway", _gateway_body(smtp_server, smtp_user), format="json")
    response = alice.client.post("/v1/account/box/submit", {
        "raw": b64(raw_message(subject="Via the relay")), "gateway": "relay"}, format="json")
    assert response.status_code == 200, response.json()
    work_send_queue()
    received = smtp_server.wait_for_messages(1)[0]
    assert received.message["Subject"] == "Via the relay"
    entry = alice.client.get(f"/v1/outbox/{response.json()['queueId']}").json()
    assert entry["state"] == "sent"
    shown = alice.client.get("/v1/gateway/relay").json()
    assert shown["deliveries"] == 1
    assert shown["lastUse"] is not None


def test_without_the_gateway_the_accounts_own_server_is_used(alice, dead_smtp_account):
    response = alice.client.post("/v1/account/box/submit", {
        "raw": b64(raw_message(subject="Direct")), "deliveryAttempts": 0}, format="json")
    work_send_queue()
    entry = OutboxEntry.objects.get(queue_id=response.json()["queueId"])
    assert entry.state == "failed"  # the closed port: nothing else was tried
    assert entry.gateway == ""


def test_an_unknown_gateway_is_refused_and_nothing_is_queued(alice, bob, dead_smtp_account,
                                                             smtp_server, smtp_user):
    bob.client.post("/v1/gateway", _gateway_body(smtp_server, smtp_user), format="json")
    response = alice.client.post("/v1/account/box/submit", {
        "raw": b64(raw_message()), "gateway": "relay"}, format="json")  # bob's, not alice's
    assert response.status_code == 400
    assert response.json()["code"] == "GatewayNotFound"
    assert "gateway" in response.json()["details"]
    assert not OutboxEntry.objects.exists()


def test_a_gateway_deleted_before_the_send_fails_it_and_records_why(
        alice, dead_smtp_account, smtp_server, smtp_user):
    alice.client.post("/v1/gateway", _gateway_body(smtp_server, smtp_user), format="json")
    response = alice.client.post("/v1/account/box/submit", {
        "raw": b64(raw_message()), "gateway": "relay", "sendAt": "2099-01-01T00:00:00Z"},
        format="json")
    alice.client.delete("/v1/gateway/relay")
    OutboxEntry.objects.update(send_at="2000-01-01T00:00:00Z",
                               next_attempt_at="2000-01-01T00:00:00Z")
    from mailboxes import sending
    entry = OutboxEntry.objects.get(queue_id=response.json()["queueId"])
    assert sending.send_entry(entry.pk) == "failed"
    entry.refresh_from_db()
    assert entry.last_error["code"] == "GatewayNotFound"
    assert smtp_server.messages == []


def test_a_failed_send_through_a_gateway_is_its_last_error(alice, dead_smtp_account,
                                                           smtp_server, smtp_user):
    alice.client.post("/v1/gateway", _gateway_body(smtp_server, smtp_user, **{"pass": "wrong"}),
                      format="json")
    alice.client.post("/v1/account/box/submit", {
        "raw": b64(raw_message()), "gateway": "relay", "deliveryAttempts": 0}, format="json")
    work_send_queue()
    shown = alice.client.get("/v1/gateway/relay").json()
    assert shown["deliveries"] == 0
    assert shown["lastError"]["responseCode"] == 535
    assert "wrong" not in str(shown)


def test_a_gateways_last_error_has_emailengines_names_beside_ours(alice, dead_smtp_account,
                                                                  smtp_server, smtp_user):
    alice.client.post("/v1/gateway", _gateway_body(smtp_server, smtp_user, **{"pass": "wrong"}),
                      format="json")
    alice.client.post("/v1/account/box/submit", {
        "raw": b64(raw_message()), "gateway": "relay", "deliveryAttempts": 0}, format="json")
    work_send_queue()
    error = alice.client.get("/v1/gateway/relay").json()["lastError"]
    listed = alice.client.get("/v1/gateways").json()["gateways"][0]["lastError"]
    assert listed == error
    assert error["status"] == "error"
    assert error["response"].startswith("535")
    assert error["description"] == error["error"]
    assert error["command"] == "AUTH"
    assert error["networkRouting"] is None
    stored = SmtpGateway.objects.get(gateway_id="relay").last_error
    assert error["created"] == smtp_status.epoch_ms(stored["time"])
    assert isinstance(error["created"], int)
    assert error["time"] == stored["time"]


def test_an_error_kept_before_the_command_was_shows_null_for_it(alice, smtp_server, smtp_user):
    alice.client.post("/v1/gateway", _gateway_body(smtp_server, smtp_user), format="json")
    SmtpGateway.objects.filter(gateway_id="relay").update(last_error={
        "error": "Connection refused", "code": "ConnectionError", "responseCode": None,
        "time": "2026-01-02T03:04:05.678000Z"})
    error = alice.client.get("/v1/gateway/relay").json()["lastError"]
    assert error["created"] == 1767323045678
    assert error["command"] is None
    assert error["response"] == "Connection refused"


def test_a_gateway_moved_to_another_host_needs_a_password_of_its_own(alice, smtp_server,
                                                                     smtp_user):
    """As for a mailbox: the stored password is only ever sent to the host it was given for,
    so a token that may edit the gateway cannot collect it at a server of its choosing (the
    edit kept it, and the next send through the gateway logged in there with it)."""
    alice.client.post("/v1/gateway", _gateway_body(smtp_server, smtp_user,
                                                   **{"pass": PASSWORD}), format="json")
    gateway = SmtpGateway.objects.get(gateway_id="relay")
    moved = alice.client.put("/v1/gateway/edit/relay", {"host": "mail.attacker.example"},
                             format="json")
    assert moved.status_code == 400, moved.json()
    assert list(moved.json()["details"]) == ["pass"]
    unchanged = SmtpGateway.objects.get(pk=gateway.pk)
    assert (unchanged.host, unchanged.sealed_pass) == (gateway.host, gateway.sealed_pass)
    same_host = alice.client.put("/v1/gateway/edit/relay",
                                 {"host": gateway.host.upper(), "port": 2526}, format="json")
    assert same_host.status_code == 200, same_host.json()
    assert SmtpGateway.objects.get(pk=gateway.pk).sealed_pass == gateway.sealed_pass
    with_its_own = alice.client.put("/v1/gateway/edit/relay", {
        "host": "mail.elsewhere.example", "pass": "another-Secret-1"}, format="json")
    assert with_its_own.status_code == 200, with_its_own.json()
    without_one = alice.client.put("/v1/gateway/edit/relay", {
        "host": "mail.third.example", "pass": None}, format="json")
    assert without_one.status_code == 200, without_one.json()
