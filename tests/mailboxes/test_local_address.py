"""EmailEngine's ``localAddress`` on submit: the local address an SMTP connection goes out
from (``mailboxes.local_address``). Linux routes all of 127.0.0.0/8 to loopback, so the
recording SMTP server on 127.0.0.1 sees a send bound to 127.0.0.2 or 127.0.0.3 come from
there (``ReceivedMessage.peer``); nothing is mocked. The pure choice is tested alone first."""

from __future__ import annotations

import logging
import socket

import pytest
from django.conf import settings as django_settings
from django.test import override_settings

from accounts import services
from mailboxes import local_address, sending, smtp
from mailboxes.imap import underlying
from mailboxes.local_address import Route, choose, rendezvous
from mailboxes.models import OutboxEntry
from tests.mailboxes.helpers import connect_once, events_of, open_session, register, with_password
from tests.mailboxes.rq_workers import rqworker
from tests.mailboxes.sending_helpers import b64, raw_message, sync, work_send_queue
from tests.servers.net import find_free_port
from tests.servers.proxies import Socks5Proxy
from tests.servers.tcp_proxy import TcpProxy
from webhooks.models import Event
from webhooks.payloads import engine_events

db = pytest.mark.django_db(transaction=True)

LISTED = ["127.0.0.2", "127.0.0.3"]
DEFAULT_SOURCE = "127.0.0.1"  # what the OS picks to reach the test server on 127.0.0.1
NOT_LISTED = "127.0.0.9"
ABSENT = "192.0.2.1"  # TEST-NET-1: no machine of ours has it, so it cannot be bound


# --- the pure choice --------------------------------------------------------------------------


def test_a_listed_hint_is_used():
    assert choose("127.0.0.3", LISTED, "1:box") == Route("127.0.0.3", "127.0.0.3", "hint")


def test_a_hint_is_compared_as_an_address_not_as_text():
    chosen = choose("2001:DB8:0::25", ["2001:db8::10", "2001:db8::25"], "1:box")

    assert (chosen.address, chosen.selector) == ("2001:db8::25", "hint")


def test_one_listed_address_is_used_with_or_without_a_hint():
    assert choose(None, ["127.0.0.2"], "1:box") == Route("127.0.0.2", None, "single")
    assert choose(NOT_LISTED, ["127.0.0.2"], "1:box") == Route("127.0.0.2", NOT_LISTED, "single")


def test_without_listed_addresses_nothing_is_bound():
    assert choose(None, [], "1:box") == Route(None, None, "default")
    assert choose(NOT_LISTED, [], "1:box") == Route(None, NOT_LISTED, "default")


def test_of_several_each_account_keeps_its_own():
    chosen = [choose(None, LISTED, f"1:account-{n}") for n in range(200)]

    assert {route.selector for route in chosen} == {"dedicated"}
    assert {route.address for route in chosen} == set(LISTED), "spread over both"
    again = [choose(NOT_LISTED, list(reversed(LISTED)), f"1:account-{n}").address
             for n in range(200)]
    assert again == [route.address for route in chosen], "stable whatever the order or hint"


def test_removing_an_address_moves_only_the_accounts_that_had_it():
    three = [*LISTED, "127.0.0.4"]
    before = {n: rendezvous(f"1:account-{n}", three) for n in range(300)}
    after = {n: rendezvous(f"1:account-{n}", LISTED) for n in range(300)}

    moved = {n for n in before if before[n] != after[n]}
    assert moved == {n for n in before if before[n] == "127.0.0.4"}
    assert moved, "some accounts had the removed address"


def test_the_same_account_id_of_two_tenants_is_not_bound_to_share_an_address():
    addresses = [f"127.0.0.{n}" for n in range(2, 12)]

    picks = {rendezvous(f"{tenant}:box", addresses) for tenant in range(1, 50)}
    assert len(picks) > 1


def test_network_routing_says_what_was_bound_and_what_was_asked():
    assert Route(None).network_routing() is None
    assert Route("127.0.0.2", None, "single", "mx.example").network_routing() == {
        "localAddress": "127.0.0.2", "name": "mx.example"}
    assert Route("127.0.0.2", "127.0.0.2", "hint", "mx.example").network_routing() == {
        "localAddress": "127.0.0.2", "name": "mx.example"}
    assert Route("127.0.0.2", NOT_LISTED, "single", "mx.example").network_routing() == {
        "localAddress": "127.0.0.2", "name": "mx.example", "requestedLocalAddress": NOT_LISTED}
    assert Route(None, NOT_LISTED, "default", "mx.example").network_routing() == {
        "name": "mx.example", "requestedLocalAddress": NOT_LISTED}


def test_network_routing_names_the_proxy_masked_even_without_a_bind():
    proxy = "socks5://me:******@proxy.example:1080"
    assert Route(None, proxy=proxy).network_routing() == {"proxy": proxy}
    assert Route("127.0.0.2", None, "single", "mx.example", proxy).network_routing() == {
        "localAddress": "127.0.0.2", "name": "mx.example", "proxy": proxy}


def test_listed_addresses_the_machine_lacks_are_skipped_with_one_warning(caplog, monkeypatch):
    monkeypatch.setattr(local_address, "_missing_warned", set())  # another test's warnings
    with caplog.at_level(logging.WARNING, logger="mailboxes.local_address"):
        for _ in range(2):
            assert local_address.usable([ABSENT, "127.0.0.2", "127.0.0.3x"]) == ["127.0.0.2"]

    warned = [record.getMessage() for record in caplog.records]
    assert len(warned) == 2, warned
    assert f"{ABSENT} is skipped: this machine does not have it" in warned[0]
    assert "127.0.0.3x is skipped: it is not an IP address" in warned[1]


# --- sends through the real SMTP server ----------------------------------------------------


def _submit(client, **fields):
    body = {"raw": b64(raw_message()), **fields}
    return client.post("/v1/account/box/submit", body, format="json")


def _not_dedicated(account) -> str:
    """The listed address the account would not get without a hint: a send that comes from
    it did so because the hint asked for it."""
    dedicated = rendezvous(f"{account.tenant_id}:{account.account_id}", LISTED)
    return next(address for address in LISTED if address != dedicated)


def _sent_routing(account) -> dict | None:
    [sent] = events_of(account, "messageSent")
    return sent.data.get("networkRouting")


@db
@override_settings(EMAILAPI_SMTP_LOCAL_ADDRESSES=LISTED)
def test_a_listed_hint_is_the_address_the_server_sees(alice, account, smtp_server):
    hint = _not_dedicated(account)

    response = _submit(alice.client, localAddress=hint)
    assert response.status_code == 200, response.json()
    work_send_queue()

    [received] = smtp_server.wait_for_messages(1)
    assert received.peer == hint
    assert _sent_routing(account) == {"localAddress": hint, "name": received.helo}


@db
@override_settings(EMAILAPI_SMTP_LOCAL_ADDRESSES=[])
def test_an_unlisted_hint_leaves_the_choice_to_the_os_and_says_so(alice, account, smtp_server):
    _submit(alice.client, localAddress=NOT_LISTED)
    work_send_queue()

    [received] = smtp_server.wait_for_messages(1)
    assert received.peer == DEFAULT_SOURCE
    assert _sent_routing(account) == {"name": received.helo,
                                      "requestedLocalAddress": NOT_LISTED}


@db
@override_settings(EMAILAPI_SMTP_LOCAL_ADDRESSES=LISTED)
def test_an_unlisted_hint_among_several_gets_the_accounts_own(alice, account, smtp_server):
    dedicated = rendezvous(f"{account.tenant_id}:box", LISTED)

    _submit(alice.client, localAddress=NOT_LISTED)
    work_send_queue()

    [received] = smtp_server.wait_for_messages(1)
    assert received.peer == dedicated
    assert _sent_routing(account) == {"localAddress": dedicated, "name": received.helo,
                                      "requestedLocalAddress": NOT_LISTED}


@db
@override_settings(EMAILAPI_SMTP_LOCAL_ADDRESSES=[ABSENT, "127.0.0.3"])
def test_the_one_address_the_machine_has_is_used_without_a_hint(alice, account, smtp_server):
    _submit(alice.client)
    work_send_queue()

    [received] = smtp_server.wait_for_messages(1)
    assert received.peer == "127.0.0.3"
    assert _sent_routing(account) == {"localAddress": "127.0.0.3", "name": received.helo}


@db
def test_without_a_setting_or_a_hint_the_event_has_no_network_routing(alice, account,
                                                                      smtp_server):
    _submit(alice.client)
    work_send_queue()

    assert smtp_server.wait_for_messages(1)[0].peer == DEFAULT_SOURCE
    assert _sent_routing(account) is None


@db
@pytest.mark.parametrize("value", ["mail.example.com", "127.0.0.256", "10.0.0.0/8", "1"])
def test_a_local_address_that_is_not_an_ip_is_400_and_queues_nothing(alice, account, value):
    for path in ("/v1/account/box/submit", "/v1/account/box/message/AAAAAQAAAAE/submit"):
        response = alice.client.post(path, {"raw": b64(raw_message()), "localAddress": value}
                                     if path.endswith("box/submit") else
                                     {"localAddress": value}, format="json")

        assert response.status_code == 400, response.json()
        body = response.json()
        assert "localAddress" in body["details"], body
        assert "IP address" in body["details"]["localAddress"][0], body
    assert not OutboxEntry.objects.exists()


@db
# Not pytest-django's ``settings`` beside override_settings: its teardown would restore the
# decorator's settings after the decorator ended, for the tests that follow.
@override_settings(EMAILAPI_SMTP_LOCAL_ADDRESSES=LISTED, SEND_RETRY_SCHEDULE=[0])
def test_the_hint_is_kept_and_a_retry_in_another_process_uses_it(
        alice, account, smtp_server, monkeypatch):
    monkeypatch.setenv("EMAILAPI_SMTP_LOCAL_ADDRESSES", ",".join(LISTED))  # the worker's
    hint = _not_dedicated(account)
    smtp_server.refuse_next(1, "451 4.3.0 Try again later")
    queue_id = _submit(alice.client, localAddress=hint).json()["queueId"]
    entry = OutboxEntry.objects.get(queue_id=queue_id)
    assert entry.local_address == hint

    assert sending.send_entry(entry.pk) == "retry"
    [error] = events_of(account, "messageDeliveryError")
    assert error.data["networkRouting"]["localAddress"] == hint
    sending.enqueue(entry.pk, queue_id)
    with rqworker(django_settings, "send"):
        [received] = smtp_server.wait_for_messages(1)

    assert received.peer == hint
    assert OutboxEntry.objects.get(pk=entry.pk).attempts == 2


@db
@override_settings(EMAILAPI_SMTP_LOCAL_ADDRESSES=LISTED)
def test_a_send_through_a_gateway_goes_out_from_the_hint_too(alice, smtp_user, smtp_server):
    dead = {"host": "127.0.0.1", "port": find_free_port("127.0.0.1"), "secure": False,
            "auth": {"user": smtp_user.username, "pass": smtp_user.password}}
    account = register(alice.tenant, smtp_user, smtp=dead)
    sync(account)
    created = alice.client.post("/v1/gateway", {
        "gateway": "relay", "name": "Relay", "host": smtp_server.host, "port": smtp_server.port,
        "secure": False, "user": smtp_user.username, "pass": smtp_user.password,
        "tls": {"rejectUnauthorized": False}}, format="json")
    assert created.status_code == 200, created.json()
    hint = _not_dedicated(account)

    response = _submit(alice.client, gateway="relay", localAddress=hint)
    assert response.status_code == 200, response.json()
    work_send_queue()

    assert smtp_server.wait_for_messages(1)[0].peer == hint
    assert _sent_routing(account)["localAddress"] == hint


@db
@override_settings(EMAILAPI_SMTP_LOCAL_ADDRESSES=LISTED)
def test_a_failed_send_says_where_it_went_out_from(alice, account, smtp_server):
    smtp_server.refuse_always("550 5.7.1 Relaying denied", stage="rcpt")
    hint = _not_dedicated(account)

    _submit(alice.client, localAddress=hint)
    work_send_queue()

    [failed] = events_of(account, "messageFailed")
    assert failed.data["networkRouting"]["localAddress"] == hint
    assert "requestedLocalAddress" not in failed.data["networkRouting"]


def test_network_routing_reaches_emailengines_events_of_a_send():
    routing = {"localAddress": "127.0.0.2", "name": "mx.example"}
    failed = Event(event="messageFailed", account_id="box", data={
        "queueId": "q", "messageId": "<m@x>", "error": "550 No", "code": "SmtpRefused",
        "responseCode": 550, "envelope": {}, "attemptsMade": 1, "networkRouting": routing})
    sent = Event(event="messageSent", account_id="box", data={
        "queueId": "q", "messageId": "<m@x>", "response": "250 OK", "envelope": {},
        "networkRouting": routing})

    assert [(name, data["networkRouting"]) for name, _, data in engine_events(failed)] == [
        ("messageDeliveryError", routing), ("messageFailed", routing)]
    assert [(name, data["networkRouting"]) for name, _, data in engine_events(sent)] == [
        ("messageSent", routing)]
    del failed.data["networkRouting"]
    assert ["networkRouting" in data for _, _, data in engine_events(failed)] == [False, False]


def test_the_ehlo_name_a_route_reports_is_worked_out_once_per_process(monkeypatch):
    """Working it out is a name lookup (``socket.getfqdn``): a send that reports its route
    must not wait for one each time."""
    lookups = []
    real = socket.getfqdn

    def getfqdn(*args):
        lookups.append(args)
        return real(*args)

    monkeypatch.setattr(socket, "getfqdn", getfqdn)
    smtp.default_ehlo_name.cache_clear()
    try:
        names = {smtp.default_ehlo_name() for _ in range(3)}
    finally:
        smtp.default_ehlo_name.cache_clear()
    assert len(names) == 1
    assert len(lookups) == 1


# --- IMAP connections (EMAILAPI_IMAP_LOCAL_ADDRESSES) ------------------------------------------


def _behind_a_recorder(tenant, mail_user, recorder: TcpProxy):
    """Account ``box``, its IMAP server Dovecot behind a TCP proxy that records where each
    connection came from (``TcpProxy.peers``)."""
    imap = {**mail_user.imap_settings(secure=False), "port": recorder.port,
            "tls": {"rejectUnauthorized": False}}
    return services.register_account(tenant, {"account": "box", "imap": imap})


@db
def test_the_workers_imap_connection_goes_out_from_the_accounts_listed_address(alice, mail_user):
    with TcpProxy(mail_user.imap_port) as recorder:
        account = _behind_a_recorder(alice.tenant, mail_user, recorder)
        expected = rendezvous(f"{account.tenant_id}:{account.account_id}", LISTED)
        with override_settings(EMAILAPI_IMAP_LOCAL_ADDRESSES=LISTED):
            assert connect_once(account).state == "connected"
            assert connect_once(account).state == "connected"
        assert recorder.peers == [expected, expected]  # the account keeps its address
        assert connect_once(account).state == "connected"  # no setting: the OS chooses
        assert recorder.peers[-1] == DEFAULT_SOURCE


@db
def test_the_apis_imap_sessions_bind_too_and_through_a_proxy_the_proxy_connection(
        alice, mail_user):
    with TcpProxy(mail_user.imap_port) as recorder:
        account = _behind_a_recorder(alice.tenant, mail_user, recorder)
        with override_settings(EMAILAPI_IMAP_LOCAL_ADDRESSES=["127.0.0.3"]):
            open_session(account).client.logout()
        assert recorder.peers == ["127.0.0.3"]
        with Socks5Proxy() as proxy, \
                override_settings(EMAILAPI_IMAP_LOCAL_ADDRESSES=["127.0.0.2"]):
            services.update_account(account, with_password(account, mail_user.password,
                                                           proxy=proxy.url()))
            account.refresh_from_db()
            session = open_session(account)
            try:
                assert underlying.connection(session.client).sock.getsockname()[0] == "127.0.0.2"
            finally:
                session.client.logout()
            assert len(proxy.requests) == 1


@db
def test_an_imap_address_the_machine_lacks_is_skipped(alice, mail_user, caplog, monkeypatch):
    monkeypatch.setattr(local_address, "_missing_warned", set())
    with TcpProxy(mail_user.imap_port) as recorder:
        account = _behind_a_recorder(alice.tenant, mail_user, recorder)
        with override_settings(EMAILAPI_IMAP_LOCAL_ADDRESSES=[ABSENT]), \
                caplog.at_level(logging.WARNING, logger="mailboxes.local_address"):
            assert connect_once(account).state == "connected"
        assert recorder.peers == [DEFAULT_SOURCE]
    assert any(f"EMAILAPI_IMAP_LOCAL_ADDRESSES: {ABSENT} is skipped" in record.getMessage()
               for record in caplog.records)
