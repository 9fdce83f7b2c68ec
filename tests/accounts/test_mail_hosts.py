"""Egress policy for mail hosts: IMAP/SMTP servers on internal addresses are refused with
``400 HostNotAllowed`` (register, update, verifyAccount, the hosted connect form), and the
worker and the sender refuse to connect to one at connect time, unless the deployment
(``EMAILAPI_MAIL_ALLOW_PRIVATE``) or the tenant (admin) allows it. Errors name a foreign
service's banner by its kind only. A connect link allows a few attempts a minute.

The suite runs with EMAILAPI_MAIL_ALLOW_PRIVATE on (its servers are on loopback); these tests
turn it off. "Servers" that must never be reached are loopback listeners that only queue
connections, so ``reached()`` tells whether anything connected at all."""

from __future__ import annotations

import socket
import threading

import pytest
from django.test import override_settings

from accounts import services
from accounts.models import EmailAccount, Tenant, User
from mailboxes import sending
from mailboxes.worker.connection import AccountConnection
from tests.accounts.oauth2_helpers import local, make_link
from tests.base import account_payload
from tests.mailboxes.helpers import events_of, register
from tests.mailboxes.sending_helpers import queue

pytestmark = pytest.mark.django_db

INTERNAL_HOSTS = ["127.0.0.1", "localhost", "10.0.0.5", "172.16.3.4", "192.168.1.10",
                  "169.254.169.254", "100.64.1.1", "0.0.0.0", "224.0.0.1", "240.0.0.1",
                  "::1", "fe80::1", "fd00:ec2::254", "::ffff:127.0.0.1",
                  "2002:7f00:1::1",  # 6to4 around 127.0.0.1
                  "2001:0:4136:e378:8000:63bf:80ff:fffe"]  # Teredo, client 127.0.0.1

private_off = override_settings(EMAILAPI_MAIL_ALLOW_PRIVATE=False)


class Listener:
    """A loopback port that queues connections and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    def reached(self) -> bool:
        try:
            self.sock.accept()[0].close()
        except BlockingIOError:
            return False
        return True

    def close(self):
        self.sock.close()


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.close()


def _server(host: str, port: int = 993) -> dict:
    return {"host": host, "port": port, "secure": False,
            "auth": {"user": "ann", "pass": "Secret-1"}}


# --- registration, update, verifyAccount ----------------------------------------------------


@private_off
@pytest.mark.parametrize("section", ["imap", "smtp"])
@pytest.mark.parametrize("host", INTERNAL_HOSTS)
def test_a_mailbox_on_an_internal_host_is_refused(alice, host, section):
    response = alice.client.post("/v1/account", account_payload(**{section: _server(host)}),
                                 format="json")
    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["code"] == "HostNotAllowed"
    assert f"{section}.host" in body["details"]
    assert not EmailAccount.objects.exists()


@private_off
def test_an_update_to_an_internal_host_is_refused_and_changes_nothing(alice):
    created = alice.client.post("/v1/account", account_payload(), format="json")
    assert created.status_code == 200
    before = EmailAccount.objects.get(tenant=alice.tenant, account_id="sales").config_version
    response = alice.client.put("/v1/account/sales", {"imap": {"host": "127.0.0.1"}},
                                format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "HostNotAllowed"
    account = EmailAccount.objects.get(tenant=alice.tenant, account_id="sales")
    assert account.imap["host"] == "imap.example.com"
    assert account.config_version == before
    # Other changes of that mailbox still work.
    assert alice.client.put("/v1/account/sales", {"name": "Renamed"},
                            format="json").status_code == 200


@private_off
def test_verify_account_refuses_an_internal_host_without_connecting(alice, listener):
    response = alice.client.post("/v1/verifyAccount", {
        "imap": _server("127.0.0.1", listener.port),
        "smtp": _server("127.0.0.1", listener.port)}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "HostNotAllowed"
    assert not listener.reached()


@private_off
def test_a_tenant_allowed_in_the_admin_may_use_internal_hosts(alice, bob, mail_user, client):
    operator = User.objects.create_superuser("op@emailapi.test", "x")
    client.force_login(operator)
    tenant = Tenant.objects.create(name="On premise", slug="on-premise")
    page = client.get(f"/admin/accounts/tenant/{tenant.pk}/change/")
    assert page.status_code == 200
    assert b'name="mail_allow_private"' in page.content
    saved = client.post(f"/admin/accounts/tenant/{tenant.pk}/change/", {
        "name": "On premise", "slug": "on-premise", "mail_allow_private": "on",
        "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0"})
    assert saved.status_code == 302, saved.content
    assert Tenant.objects.get(pk=tenant.pk).mail_allow_private is True

    Tenant.objects.filter(pk=alice.tenant.pk).update(mail_allow_private=True)
    imap = {**mail_user.imap_settings(), "tls": {"rejectUnauthorized": False}}
    verified = alice.client.post("/v1/verifyAccount", {"imap": imap}, format="json")
    assert verified.json() == {"imap": {"success": True}}
    assert alice.client.post("/v1/account", account_payload(imap=imap),
                             format="json").status_code == 200
    # Another tenant is not.
    assert bob.client.post("/v1/verifyAccount", {"imap": imap},
                           format="json").json()["code"] == "HostNotAllowed"


# --- at connect time: the worker and the sender ------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_worker_refuses_to_connect_to_an_internal_address(alice, listener):
    account = services.register_account(alice.tenant, {  # saved while allowed
        "account": "box", "imap": _server("localhost", listener.port)})
    with private_off:
        conn = AccountConnection(account.pk, threading.Event())
        try:
            conn.start()
        finally:
            conn.close()
    row = EmailAccount.objects.get(pk=account.pk)
    assert row.state == "connectError"
    assert row.last_error["code"] == "HostNotAllowed"
    assert "127.0.0.1" in row.last_error["error"]
    [event] = events_of(account, "connectError")
    assert event.data["serverResponseCode"] == "HostNotAllowed"
    assert not listener.reached()


@pytest.mark.django_db(transaction=True)
def test_the_sender_refuses_to_connect_to_an_internal_address(alice, mail_user, listener):
    account = register(alice.tenant, mail_user, smtp=_server("127.0.0.1", listener.port))
    entry = queue(account)
    with private_off:
        assert sending.send_entry(entry.pk) in ("retry", "failed")
    entry.refresh_from_db()
    assert entry.last_error["code"] == "HostNotAllowed"
    assert not listener.reached()


# --- foreign banners are named, not echoed ------------------------------------------------------


def test_a_foreign_services_banner_is_named_by_its_kind_not_repeated(
        alice, smtp_server, dovecot):
    imap_at_smtp = _server(smtp_server.host, smtp_server.port)
    smtp_at_imap = _server(dovecot.host, dovecot.imap_port)
    body = alice.client.post("/v1/verifyAccount", {"imap": imap_at_smtp, "smtp": smtp_at_imap},
                             format="json").json()
    assert body["imap"]["error"] == "Expected an IMAP greeting (* OK), got an SMTP (or FTP) " \
                                    "greeting"
    assert body["smtp"]["error"] == "Expected an SMTP greeting (220), got an IMAP greeting"
    assert body["smtp"].get("responseCode") is None
    text = str(body)
    for banner in ("Python SMTP", "localhost", "Dovecot", "CAPABILITY"):
        assert banner not in text


# --- the hosted connect form ------------------------------------------------------------------


@private_off
def test_the_connect_form_refuses_an_internal_host_without_connecting(alice, client, listener):
    url = make_link(alice, type="imap", account="pw", email="ann@example.test")
    page = client.post(local(url), {"email": "ann@example.test", "password": "Secret-1",
                                    "imap_host": "127.0.0.1", "imap_port": listener.port})
    assert page.status_code == 400
    assert b"internal address" in page.content
    assert not listener.reached()
    assert not EmailAccount.objects.filter(account_id="pw").exists()


def test_a_connect_link_allows_a_few_attempts_a_minute(alice, client, listener, settings):
    settings.EMAILAPI_CONNECT_ATTEMPTS_PER_MINUTE = 3
    settings.EMAILAPI_VERIFY_TIMEOUT = 1
    url = make_link(alice, type="imap", account="pw", email="ann@example.test")
    form = {"email": "ann@example.test", "password": "Guess", "imap_host": "127.0.0.1",
            "imap_port": listener.port}
    statuses = [client.post(local(url), form).status_code for _ in range(4)]
    assert statuses == [400, 400, 400, 429]
    limited = client.post(local(url), form)
    assert limited.status_code == 429
    assert 1 <= int(limited["Retry-After"]) <= 60
    # The page itself still opens, and another link has its own count.
    assert client.get(local(url)).status_code == 200
    other = make_link(alice, type="imap", account="pw2", email="ann@example.test")
    assert client.post(local(other), form).status_code == 400


def test_oauth2_starts_count_as_attempts_too(alice, client, settings):
    settings.EMAILAPI_CONNECT_ATTEMPTS_PER_MINUTE = 2
    body = {"app": "g", "provider": "gmail", "clientId": "c.apps.googleusercontent.com",
            "clientSecret": "s"}
    assert alice.client.post("/v1/oauth2", body, format="json").status_code == 200
    url = make_link(alice, type="g")
    query = local(url).split("?", 1)[1]
    starts = [client.get(f"/connect/oauth2/start?{query}") for _ in range(3)]
    assert [r.status_code for r in starts] == [302, 302, 429]
    assert starts[2]["Retry-After"]


@private_off
def test_a_generic_oauth2_app_with_internal_mail_servers_is_refused_when_saved(alice):
    """A generic app's IMAP/SMTP servers are where its mailboxes will connect: refused when
    the app is saved, not at the end of a user's sign-in."""
    app = {"provider": "generic", "clientId": "c1", "clientSecret": "s3cret",
           "authorizeUrl": "https://idp.example/authorize", "tokenUrl": "https://idp.example/t"}
    for host in ("127.0.0.1", "10.0.0.5", "2002:7f00:1::1"):
        created = alice.client.post("/v1/oauth2", {**app, "app": "idp",
                                                   "imap": {"host": host, "port": 993}},
                                    format="json")
        assert created.status_code == 400, host
        assert created.json()["code"] == "HostNotAllowed", host
    assert alice.client.get("/v1/oauth2").json()["apps"] == []
    made = alice.client.post("/v1/oauth2", {**app, "app": "idp",
                                            "imap": {"host": "8.8.8.8", "port": 993}},
                             format="json")
    assert made.status_code == 200, made.json()
    changed = alice.client.put("/v1/oauth2/idp", {"smtp": {"host": "192.168.1.10", "port": 465}},
                               format="json")
    assert changed.status_code == 400
    assert changed.json()["code"] == "HostNotAllowed"
    assert alice.client.get("/v1/oauth2/idp").json()["smtp"] is None
