"""The worker's IMAP connections go through the account's proxy (EmailEngine's ``proxy``): a
real loopback SOCKS5 proxy (tests/servers/proxies.py) records Dovecot as the target it was
asked for, and a proxy that refuses the login leaves the account's error in words."""

from __future__ import annotations

import pytest

from accounts import services
from accounts.models import EmailAccount
from mailboxes.models import Message
from tests.mailboxes.helpers import connect_once, register, with_password
from tests.servers import seed
from tests.servers.proxies import PROXIES, Socks5Proxy

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "Pr0xy-pw"



@pytest.mark.parametrize("kind", sorted(PROXIES))
def test_an_account_syncs_through_its_proxy(alice, mail_user, kind):
    with mail_user.imap_client() as client:
        seed.append_messages(client, "INBOX", [seed.make_message(subject="Through the proxy")])
    password = PASSWORD if kind != "socks4" else None
    with PROXIES[kind]("proxyuser", password) as proxy:
        account = register(alice.tenant, mail_user, proxy=proxy.url("proxyuser", password))

        row = connect_once(account)

        assert row.state == "connected", row.last_error
        settings = mail_user.imap_settings(secure=False)
        assert {(r.host, r.port, r.user) for r in proxy.requests} == {
            (settings["host"], settings["port"], "proxyuser")}
    assert list(Message.objects.filter(email_account=account).values_list("subject", flat=True)) \
        == ["Through the proxy"]


def test_a_proxy_that_refuses_the_login_is_the_accounts_error_in_words(alice, mail_user):
    with Socks5Proxy("proxyuser", PASSWORD) as proxy:
        account = register(alice.tenant, mail_user, proxy=proxy.url("proxyuser", "wrong"))

        row = connect_once(account)

        assert proxy.logins_refused == 1
    assert row.state == "connectError"
    assert "The proxy refused the login" in row.last_error["error"], row.last_error
    shown = alice.client.get(f"/v1/account/{account.account_id}").json()
    assert "The proxy refused the login" in shown["lastError"]["error"]
    assert "wrong" not in str(row.last_error)


def test_changing_the_proxy_reconnects_through_the_new_one(alice, mail_user):
    with Socks5Proxy() as first, Socks5Proxy() as second:
        account = register(alice.tenant, mail_user, proxy=first.url())
        assert connect_once(account).state == "connected"
        version = EmailAccount.objects.get(pk=account.pk).config_version

        services.update_account(account, with_password(account, mail_user.password,
                                                       proxy=second.url()))

        assert EmailAccount.objects.get(pk=account.pk).config_version == version + 1
        assert connect_once(account).state == "connected"
        assert (len(first.requests), len(second.requests)) == (1, 1)
