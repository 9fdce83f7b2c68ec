"""EmailEngine's ``dsn`` on submit: RFC 3461's parameters on MAIL FROM and RCPT TO, sent to a
server that offers DSN and left out where it does not (the message goes out all the same).
The server is a real loopback SMTP server that records every command
(``tests.servers.scripted_smtp``)."""

from __future__ import annotations

import pytest

from mailboxes import sending
from mailboxes.models import OutboxEntry
from tests.mailboxes.sending_helpers import b64, raw_message, sending_account
from tests.servers.scripted_smtp import ScriptedSmtpServer

pytestmark = pytest.mark.django_db(transaction=True)

WITH_DSN = b"250-scripted.test\r\n250-AUTH PLAIN\r\n250-DSN\r\n250 8BITMIME\r\n"
DSN = {"id": "order 42+x", "return": "headers", "notify": ["success", "failure"],
       "recipient": "bob@example.test"}


@pytest.fixture
def server():
    started = []

    def start(**script) -> ScriptedSmtpServer:
        started.append(ScriptedSmtpServer(**script).start())
        return started[-1]

    yield start
    for one in started:
        one.stop()


def _send(alice, smtp_user, smtp, body: dict) -> list[bytes]:
    sending_account(alice.tenant, smtp_user, smtp)
    response = alice.client.post("/v1/account/box/submit", body, format="json")
    assert response.status_code == 200, response.json()
    entry = OutboxEntry.objects.get(queue_id=response.json()["queueId"])
    assert sending.send_entry(entry.pk) == "sent"
    return [c for c in smtp.commands if c.split(b":")[0].upper() in (b"MAIL FROM", b"RCPT TO")]


def test_dsn_parameters_go_to_a_server_that_offers_dsn(alice, smtp_user, server):
    commands = _send(alice, smtp_user, server(ehlo=WITH_DSN),
                     {"raw": b64(raw_message()), "dsn": DSN, "copy": False})
    assert commands == [b"mail FROM:<me@example.test> RET=HDRS ENVID=order+2042+2Bx",
                        b"rcpt TO:<bob@example.test> NOTIFY=SUCCESS,FAILURE "
                        b"ORCPT=rfc822;bob@example.test"]


def test_a_server_without_dsn_gets_the_message_without_them(alice, smtp_user, server):
    commands = _send(alice, smtp_user, server(),
                     {"raw": b64(raw_message()), "dsn": DSN, "copy": False})
    assert commands == [b"mail FROM:<me@example.test>", b"rcpt TO:<bob@example.test>"]


@pytest.mark.parametrize("dsn, field", [
    ({"notify": ["success"]}, "dsn.return"),
    ({"return": "some"}, "dsn.return"),
    ({"return": "full", "notify": ["never", "success"]}, "dsn.notify"),
    ({"return": "full", "notify": ["sometimes"]}, "dsn.notify.0"),
    ({"return": "full", "id": "tab\there"}, "dsn.id"),
    ({"return": "full", "recipient": "not an address"}, "dsn.recipient"),
])
def test_a_bad_dsn_is_refused_and_queues_nothing(alice, smtp_user, server, dsn, field):
    sending_account(alice.tenant, smtp_user, server())
    response = alice.client.post("/v1/account/box/submit",
                                 {"raw": b64(raw_message()), "dsn": dsn}, format="json")
    assert response.status_code == 400
    assert field in response.json()["details"], response.json()
    assert not OutboxEntry.objects.exists()
