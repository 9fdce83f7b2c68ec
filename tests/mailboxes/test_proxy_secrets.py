"""A stored mail password cannot be collected through a proxy or a weakened TLS setting
(``accounts.secret_routes``). The collector runs what tests/servers/harvesters.py holds: a
proxy that sends every tunnel to its own IMAP or SMTP server, which offers no TLS and keeps
every line. Real Dovecot, SMTP server and proxies carry the connections that must still work.

- an account's ``proxy`` set or changed, or its TLS weakened, needs the password again;
- through the tenant's proxy (``proxyUrl``), a password given before that proxy was set goes
  only over TLS that verifies the server's certificate: otherwise the account gets a clear
  error and no secret is sent; given again after, it goes as before;
- a send's own proxy carries the password only over such TLS.
"""

from __future__ import annotations

import pytest
from django.test import override_settings

from accounts import services
from accounts.credentials import get_credential
from accounts.models import EmailAccount
from tests.mailboxes.helpers import connect_once, events_of, register
from tests.mailboxes.sending_helpers import b64, raw_message, sending_account, work_send_queue
from tests.servers.harvesters import HijackingProxy, ImapHarvester, SmtpHarvester
from tests.servers.proxies import Socks5Proxy

pytestmark = pytest.mark.django_db(transaction=True)


def _use_tenant_proxy(client, url: str) -> None:
    response = client.post("/v1/settings", {"proxyUrl": url, "proxyEnabled": True},
                           format="json")
    assert response.status_code == 200, response.json()


# --- the account's own proxy and TLS ---------------------------------------------------------

def test_a_new_proxy_without_the_password_is_400_and_never_reaches_the_collector(alice,
                                                                                 mail_user):
    account = register(alice.tenant, mail_user)  # secure: false, as for port 143
    with ImapHarvester() as harvester, HijackingProxy(harvester.port) as proxy:
        changed = alice.client.put("/v1/account/box", {"proxy": proxy.url()}, format="json")
        row = connect_once(account)

    assert changed.status_code == 400, changed.json()
    assert list(changed.json()["details"]) == ["imap.auth.pass"]
    assert "proxy is set or changed" in changed.json()["message"]
    assert row.state == "connected", row.last_error  # still straight to Dovecot
    assert not (row.ee_options or {}).get("proxy")
    assert proxy.requests == []
    assert mail_user.password.encode() not in harvester.seen()


@pytest.mark.parametrize("change", [
    {"imap": {"tls": {"rejectUnauthorized": False}}},
    {"imap": {"secure": False, "port": 143}},
], ids=["certificate-check-off", "secure-off"])
def test_weakening_tls_without_the_password_is_400(alice, mail_user, change):
    imap = mail_user.imap_settings(secure=True)
    imap["tls"] = {"rejectUnauthorized": True}
    services.register_account(alice.tenant, {"account": "box", "imap": imap})

    refused = alice.client.put("/v1/account/box", change, format="json")

    assert refused.status_code == 400, refused.json()
    assert list(refused.json()["details"]) == ["imap.auth.pass"]
    kept = EmailAccount.objects.get(account_id="box").imap
    assert (kept["secure"], kept["tls"]["rejectUnauthorized"]) == (True, True)
    with_password = {section: {**value, "auth": {"user": mail_user.username,
                                                 "pass": mail_user.password}}
                     for section, value in change.items()}
    assert alice.client.put("/v1/account/box", with_password, format="json").status_code == 200


def test_tls_turned_on_a_proxy_taken_away_or_the_same_one_need_no_password(alice, mail_user):
    with Socks5Proxy() as proxy:
        account = register(alice.tenant, mail_user, proxy=proxy.url())
        for change in ({"proxy": proxy.url()}, {"proxy": None},
                       {"imap": {"secure": True, "port": mail_user.imaps_port}}):
            response = alice.client.put("/v1/account/box", change, format="json")
            assert response.status_code == 200, (change, response.json())
        assert connect_once(account).state == "connected"


def test_a_new_proxy_with_the_password_is_taken_and_used(alice, mail_user):
    account = register(alice.tenant, mail_user)
    with Socks5Proxy() as proxy:
        changed = alice.client.put("/v1/account/box", {
            "proxy": proxy.url(), "imap": {"auth": {"user": mail_user.username,
                                                    "pass": mail_user.password}}}, format="json")
        assert changed.status_code == 200, changed.json()
        assert connect_once(account).state == "connected"
        assert len(proxy.requests) == 1


def test_an_oauth2_mailbox_must_sign_in_again_for_a_new_proxy_or_host(alice):
    alice.client.post("/v1/oauth2", {"provider": "generic", "app": "idp", "clientId": "c1",
                                     "clientSecret": "s3cret-s3cret",
                                     "authorizeUrl": "https://idp.example/authorize",
                                     "tokenUrl": "https://idp.example/token"}, format="json")
    services.register_account(alice.tenant, {
        "account": "m", "imap": {"host": "imap.idp.example", "port": 993, "secure": True,
                                 "auth": {"user": "u@idp.example"}},
        "oauth2": {"app": "idp", "provider": "generic", "refreshToken": "rt"}})

    moved = alice.client.put("/v1/account/m", {"proxy": "socks5://collector.example:1080"},
                             format="json")
    # an access token of its own in the section is not what the worker sends: the sign-in's is
    hosted = alice.client.put("/v1/account/m", {"imap": {
        "host": "collector.example", "auth": {"user": "u", "accessToken": "anything"}}},
        format="json")
    # nor may it gain a server its tokens would go to (it had no SMTP server)
    added = alice.client.put("/v1/account/m", {"smtp": {
        "host": "collector.example", "port": 587, "auth": {"user": "u"}}}, format="json")

    for refused in (moved, hosted, added):
        assert refused.status_code == 400, refused.json()
        assert list(refused.json()["details"]) == ["oauth2"]
    account = EmailAccount.objects.get(account_id="m")
    assert account.imap["host"] == "imap.idp.example"
    assert not (account.ee_options or {}).get("proxy")


# --- the tenant's proxy ------------------------------------------------------------------------

def test_the_tenants_new_proxy_cannot_collect_a_password_given_before_it(alice, mail_user):
    account = register(alice.tenant, mail_user)
    with ImapHarvester() as harvester, HijackingProxy(harvester.port) as proxy:
        _use_tenant_proxy(alice.client, proxy.url())

        row = connect_once(account)

    assert len(proxy.requests) == 1  # the route was taken, the password kept back
    assert mail_user.password.encode() not in harvester.seen()
    assert not any(b"LOGIN" in line.upper() for line in harvester.lines), harvester.lines
    assert row.state == "connectError"
    assert row.last_error["code"] == "TLSRequired"
    assert "before that proxy was set" in row.last_error["error"]
    assert "imap.auth.pass" in row.last_error["error"]
    shown = alice.client.get("/v1/account/box").json()["lastError"]
    assert shown["code"] == "TLSRequired"


def test_a_password_given_again_after_the_tenants_proxy_goes_through_it(alice, mail_user):
    account = register(alice.tenant, mail_user)  # its TLS check off: a self-signed server
    with Socks5Proxy() as proxy:
        _use_tenant_proxy(alice.client, proxy.url())
        assert connect_once(account).state == "connectError"

        given = alice.client.put("/v1/account/box", {"imap": {"auth": {
            "user": mail_user.username, "pass": mail_user.password}}}, format="json")
        assert given.status_code == 200, given.json()

        row = connect_once(account)
        assert row.state == "connected", row.last_error
        assert len(proxy.requests) == 2


def test_through_the_tenants_proxy_a_verified_server_gets_an_older_password(
        alice, mail_user, trusted_certificates):
    account = register(alice.tenant, mail_user, verify_tls=True)  # STARTTLS, checked
    with Socks5Proxy() as proxy:
        _use_tenant_proxy(alice.client, proxy.url())

        row = connect_once(account)

        assert row.state == "connected", row.last_error
        assert len(proxy.requests) == 1


def test_moving_the_tenants_proxy_needs_the_passwords_again(alice, mail_user):
    with Socks5Proxy() as first:
        _use_tenant_proxy(alice.client, first.url())
        account = register(alice.tenant, mail_user)  # given knowing this route
        assert connect_once(account).state == "connected"
        with ImapHarvester() as harvester, HijackingProxy(harvester.port) as moved:
            _use_tenant_proxy(alice.client, moved.url())
            row = connect_once(account)
    assert row.last_error["code"] == "TLSRequired"
    assert mail_user.password.encode() not in harvester.seen()


@override_settings(EMAILAPI_SMTP_LOCAL_ADDRESSES=[], SEND_RETRY_SCHEDULE=[])
def test_a_send_through_the_tenants_new_proxy_keeps_the_password_back(alice, smtp_user,
                                                                      smtp_server):
    account = sending_account(alice.tenant, smtp_user, smtp_server)
    with SmtpHarvester() as harvester, HijackingProxy(harvester.port) as proxy:
        _use_tenant_proxy(alice.client, proxy.url())
        response = alice.client.post("/v1/account/box/submit", {"raw": b64(raw_message())},
                                     format="json")
        assert response.status_code == 200, response.json()
        work_send_queue()

    assert harvester.connections == 1
    assert not any(line.upper().startswith(b"AUTH") for line in harvester.lines), harvester.lines
    [failed] = events_of(account, "messageFailed")
    assert "before that proxy was set" in failed.data["error"], failed.data
    assert smtp_server.messages == []


# --- a send's own proxy --------------------------------------------------------------------------

@override_settings(EMAILAPI_SMTP_LOCAL_ADDRESSES=[], SEND_RETRY_SCHEDULE=[])
def test_a_sends_own_proxy_cannot_collect_the_smtp_password(alice, smtp_user, smtp_server):
    account = sending_account(alice.tenant, smtp_user, smtp_server)
    with SmtpHarvester() as harvester, HijackingProxy(harvester.port) as proxy:
        response = alice.client.post("/v1/account/box/submit", {
            "raw": b64(raw_message()), "proxy": proxy.url()}, format="json")
        assert response.status_code == 200, response.json()
        work_send_queue()

    assert harvester.connections == 1
    assert not any(line.upper().startswith(b"AUTH") for line in harvester.lines), harvester.lines
    [failed] = events_of(account, "messageFailed")
    assert "a send's own proxy" in failed.data["error"], failed.data
    assert get_credential(account, "smtp.pass") == smtp_user.password  # nothing lost


@override_settings(EMAILAPI_SMTP_LOCAL_ADDRESSES=[])
def test_a_sends_own_proxy_reaches_a_verified_server(alice, smtp_user, smtp_server,
                                                     trusted_certificates):
    sending_account(alice.tenant, smtp_user, smtp_server, verify_tls=True)
    with Socks5Proxy() as proxy:
        response = alice.client.post("/v1/account/box/submit", {
            "raw": b64(raw_message()), "proxy": proxy.url()}, format="json")
        assert response.status_code == 200, response.json()
        work_send_queue()

        assert smtp_server.wait_for_messages(1)
        assert len(proxy.requests) == 1
