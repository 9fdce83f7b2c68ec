"""Who the client is: X-Forwarded-For / X-Forwarded-Proto believed only from trusted proxies
(pure functions; ``test_http_edge.py`` shows the same through the real server)."""

from __future__ import annotations

import ipaddress

import pytest
from django.core.exceptions import ImproperlyConfigured

from emailapi import env
from emailapi.proxies import client_scope, resolve

TRUSTED = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8::/32")]


def headers(**values: str) -> list[tuple[bytes, bytes]]:
    return [(name.replace("_", "-").encode(), value.encode()) for name, value in values.items()]


def test_an_untrusted_peer_is_the_client_whatever_it_says():
    forged = headers(x_forwarded_for="10.1.1.1", x_forwarded_proto="https")
    assert resolve("203.0.113.5", "http", forged, TRUSTED) == ("203.0.113.5", "http", False)
    assert resolve("10.1.1.1", "http", forged, []) == ("10.1.1.1", "http", False)


def test_behind_trusted_proxies_the_first_untrusted_hop_from_the_right_is_the_client():
    chain = headers(x_forwarded_for="198.51.100.1, 203.0.113.9, 10.0.0.2",
                    x_forwarded_proto="https")
    assert resolve("10.0.0.1", "http", chain, TRUSTED) == ("203.0.113.9", "https", True)
    # Several header lines are one list; IPv6 and ports are understood.
    lines = [(b"X-Forwarded-For", b"198.51.100.1"), (b"x-forwarded-for", b"[2001:db9::7]:5000")]
    assert resolve("::ffff:10.0.0.1", "http", lines, TRUSTED) == ("2001:db9::7", "http", True)
    # Only proxies all the way: the leftmost is the client.
    assert resolve("10.0.0.1", "http", headers(x_forwarded_for="10.9.9.9"), TRUSTED)[0] == \
        "10.9.9.9"


def test_a_proxy_that_says_nothing_usable_is_the_client():
    assert resolve("10.0.0.1", "http", [], TRUSTED) == ("10.0.0.1", "http", False)
    garbage = headers(x_forwarded_for="unknown", x_forwarded_proto="https")
    assert resolve("10.0.0.1", "http", garbage, TRUSTED) == ("10.0.0.1", "http", False)


def test_the_scheme_is_the_one_of_the_clients_hop():
    appended = headers(x_forwarded_for="203.0.113.9, 10.0.0.2", x_forwarded_proto="https, http")
    assert resolve("10.0.0.1", "http", appended, TRUSTED)[1] == "https"
    odd = headers(x_forwarded_for="203.0.113.9", x_forwarded_proto="gopher")
    assert resolve("10.0.0.1", "http", odd, TRUSTED)[1] == "http"
    ws = headers(x_forwarded_for="203.0.113.9", x_forwarded_proto="HTTPS")
    assert resolve("10.0.0.1", "ws", ws, TRUSTED, "websocket")[1] == "wss"


def test_the_scope_loses_the_forwarding_headers_either_way():
    scope = {"type": "http", "client": ["203.0.113.5", 4000], "scheme": "http",
             "headers": headers(host="x", x_forwarded_for="10.1.1.1", x_forwarded_port="443")}
    untrusted = client_scope(scope, TRUSTED)
    assert untrusted["client"] == ["203.0.113.5", 4000]
    assert untrusted["headers"] == [(b"host", b"x")]
    trusted = client_scope({**scope, "client": ["10.0.0.1", 4000]}, TRUSTED)
    assert trusted["client"] == ["10.1.1.1", 0]
    assert trusted["headers"] == [(b"host", b"x")]
    plain = {**scope, "headers": headers(host="x")}
    assert client_scope(plain, TRUSTED) is plain


def test_the_setting_lists_addresses_and_networks(monkeypatch):
    monkeypatch.setenv("EMAILAPI_TRUSTED_PROXIES", "10.0.0.5, 192.168.0.0/16,::1")
    assert [str(n) for n in env.env_networks("EMAILAPI_TRUSTED_PROXIES")] == \
        ["10.0.0.5/32", "192.168.0.0/16", "::1/128"]
    monkeypatch.setenv("EMAILAPI_TRUSTED_PROXIES", "10.0.0.5,proxy.local")
    with pytest.raises(ImproperlyConfigured, match="proxy.local"):
        env.env_networks("EMAILAPI_TRUSTED_PROXIES")
    assert env.env_networks("UNSET_VARIABLE_FOR_TEST") == []


def test_https_without_a_trusted_proxy_is_flagged_at_start_up(settings):
    from emailapi.checks import check_https_behind_trusted_proxy

    settings.SESSION_COOKIE_SECURE, settings.EMAILAPI_TRUSTED_PROXIES = True, []
    assert [w.id for w in check_https_behind_trusted_proxy(None)] == ["emailapi.W002"]
    settings.EMAILAPI_TRUSTED_PROXIES = TRUSTED
    assert check_https_behind_trusted_proxy(None) == []
    settings.SESSION_COOKIE_SECURE, settings.EMAILAPI_TRUSTED_PROXIES = False, []
    assert check_https_behind_trusted_proxy(None) == []
