"""The tenant's proxy (EmailEngine's settings ``proxyUrl`` with ``proxyEnabled``) carries the
connections of its accounts that have no proxy of their own: the worker's IMAP, sends,
verifyAccount without a ``proxy``. An account's own proxy, and a submit's, win; another
tenant's never applies; changing it reconnects the accounts it routes. Real loopback proxies
(tests/servers/proxies.py) record the target each connection asked for."""

from __future__ import annotations

import pytest
from django.test import override_settings

from accounts.models import EmailAccount
from tests.base import statements_naming
from tests.mailboxes.helpers import connect_once, events_of, register
from tests.mailboxes.sending_helpers import b64, raw_message, work_send_queue
from tests.servers.proxies import PROXIES, Socks5Proxy

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "Pr0xy:p@ss"


def _use(client, url: str | None, enabled: bool = True) -> None:
    response = client.post("/v1/settings", {"proxyUrl": url, "proxyEnabled": enabled},
                           format="json")
    assert response.status_code == 200, response.json()



def _targets(proxy, port: int | None = None) -> list[tuple]:
    return [(r.host, r.port, r.user) for r in proxy.requests if port in (None, r.port)]


def _masked(proxy) -> str:
    return f"{proxy.scheme}://proxyuser:******@127.0.0.1:{proxy.port}"


@pytest.mark.parametrize("kind", sorted(PROXIES))
def test_an_account_without_a_proxy_syncs_through_the_tenants(alice, mail_user, kind):
    password = PASSWORD if kind != "socks4" else None
    with PROXIES[kind]("proxyuser", password) as proxy:
        _use(alice.client, proxy.url("proxyuser", password))
        account = register(alice.tenant, mail_user)

        row = connect_once(account)

        assert row.state == "connected", row.last_error
        imap = mail_user.imap_settings(secure=False)
        assert _targets(proxy) == [(imap["host"], imap["port"], "proxyuser")]


def test_disabled_it_is_not_used_and_enabling_it_reroutes(alice, mail_user, trusted_certificates):
    """(Registered before the proxy is enabled: their TLS verifies, as it must then.)"""
    with Socks5Proxy() as proxy, Socks5Proxy() as own:
        _use(alice.client, proxy.url(), enabled=False)
        account = register(alice.tenant, mail_user, verify_tls=True)
        owning = register(alice.tenant, mail_user, "own", verify_tls=True, proxy=own.url())
        assert connect_once(account).state == "connected"
        assert proxy.requests == []
        versions = dict(EmailAccount.objects.values_list("account_id", "config_version"))

        _use(alice.client, proxy.url(), enabled=True)

        after = dict(EmailAccount.objects.values_list("account_id", "config_version"))
        # only the account without its own proxy takes a new route: reconnected
        assert after == {"box": versions["box"] + 1, "own": versions["own"]}
        assert connect_once(account).state == "connected"
        assert len(proxy.requests) == 1
        assert connect_once(owning).state == "connected"  # the account's own proxy wins
        assert (len(own.requests), len(proxy.requests)) == (1, 1)


def test_another_tenants_proxy_never_applies(alice, bob, mail_user):
    with Socks5Proxy() as bobs:
        _use(bob.client, bobs.url())
        account = register(alice.tenant, mail_user)

        assert connect_once(account).state == "connected"
        assert alice.client.post("/v1/verifyAccount", {
            "imap": {**mail_user.imap_settings(secure=False),
                     "tls": {"rejectUnauthorized": False}}}, format="json").json() \
            == {"imap": {"success": True}}
        assert bobs.requests == []


@override_settings(EMAILAPI_SMTP_LOCAL_ADDRESSES=[])
def test_a_send_goes_through_it_and_networkrouting_says_so(alice, verified_account,
                                                           smtp_server):
    account = verified_account  # registered before the proxy: its TLS must verify
    with Socks5Proxy("proxyuser", PASSWORD) as proxy:
        _use(alice.client, proxy.url("proxyuser", PASSWORD))
        response = alice.client.post("/v1/account/box/submit", {"raw": b64(raw_message())},
                                     format="json")
        assert response.status_code == 200, response.json()
        work_send_queue()

        assert smtp_server.wait_for_messages(1)
        assert _targets(proxy, smtp_server.port) == [
            (smtp_server.host, smtp_server.port, "proxyuser")]
    [sent] = events_of(account, "messageSent")
    assert sent.data["networkRouting"] == {"proxy": _masked(proxy)}
    assert "p@ss" not in str(sent.data)


def test_an_attempt_reads_the_tenants_proxy_once(alice, verified_account, smtp_server):
    """A send reports its proxy (``networkRouting``) and connects through it: one read of the
    tenant's settings for both, not one each."""
    with Socks5Proxy("proxyuser", PASSWORD) as proxy:
        _use(alice.client, proxy.url("proxyuser", PASSWORD))
        response = alice.client.post("/v1/account/box/submit", {"raw": b64(raw_message())},
                                     format="json")
        assert response.status_code == 200, response.json()
        with statements_naming("proxy_url") as reads:
            work_send_queue()
        assert smtp_server.wait_for_messages(1)
    assert len(reads) == 1, reads


def test_a_submits_own_proxy_wins_for_its_send(alice, verified_account, smtp_server):
    with Socks5Proxy() as tenants, PROXIES["http"]() as asked:
        _use(alice.client, tenants.url())
        alice.client.post("/v1/account/box/submit", {"raw": b64(raw_message()),
                                                      "proxy": asked.url()}, format="json")
        work_send_queue()

        assert smtp_server.wait_for_messages(1)
        assert (len(_targets(asked, smtp_server.port)),
                _targets(tenants, smtp_server.port)) == (1, [])


def test_verify_without_a_proxy_checks_through_the_tenants(alice, mail_user, smtp_server,
                                                           smtp_user):
    imap = {**mail_user.imap_settings(secure=False), "tls": {"rejectUnauthorized": False}}
    smtp = {**smtp_server.smtp_settings(smtp_user.username, smtp_user.password),
            "tls": {"rejectUnauthorized": False}}
    with Socks5Proxy("proxyuser", PASSWORD) as proxy, Socks5Proxy() as given:
        _use(alice.client, proxy.url("proxyuser", PASSWORD))

        body = alice.client.post("/v1/verifyAccount", {"imap": imap, "smtp": smtp},
                                 format="json").json()

        assert body == {"imap": {"success": True}, "smtp": {"success": True}}
        assert sorted(_targets(proxy)) == sorted([
            (imap["host"], imap["port"], "proxyuser"),
            (smtp_server.host, smtp_server.port, "proxyuser")])
        alice.client.post("/v1/verifyAccount", {"imap": imap, "proxy": given.url()},
                          format="json")
        assert (len(given.requests), len(proxy.requests)) == (1, 2)  # a given proxy wins
