"""The outbound-connection guard shared by webhooks, the OAuth2 back channel and IMAP/SMTP:
the address classifier (pure), and connections that go only to the address that was checked
(real loopback sockets; only the resolver is replaced, to give a name two answers)."""

from __future__ import annotations

import ipaddress
import socket
import threading

import pytest

from emailapi.lib import http, netguard
from tests.base import wait_for

FORBIDDEN = [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.10", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "224.0.0.1", "255.255.255.255", "240.0.0.1", "192.0.0.8", "198.18.0.1",
    "192.0.2.1", "::1", "::", "fe80::1", "fc00::1", "fd00:ec2::254", "ff02::1", "2001:db8::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::127.0.0.1",
    # 6to4: the IPv4 address in bits 16-48 is what a relay reaches.
    "2002:7f00:1::1", "2002:a00:1::", "2002:c0a8:10a::1", "2002:a9fe:a9fe::",
    # Teredo: server 65.54.227.120, client (obfuscated) 127.0.0.1 / 10.0.0.1.
    "2001:0:4136:e378:8000:63bf:80ff:fffe", "2001:0:53aa:64c:0:0:f5ff:fffe",
    # NAT64 (RFC 6052) around internal IPv4 addresses.
    "64:ff9b::7f00:1", "64:ff9b::a00:1", "64:ff9b:1::a00:1",
]
ALLOWED = [
    "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8",
    "2002:808:808::1",  # 6to4 around 8.8.8.8
    "2001:0:4136:e378:8000:63bf:f7f7:f7f7",  # Teredo: public server, client 8.8.8.8
    "64:ff9b::808:808",  # NAT64 (DNS64) around 8.8.8.8: how IPv6-only hosts reach IPv4
]


@pytest.mark.parametrize("text", FORBIDDEN)
def test_internal_addresses_in_every_form_are_forbidden(text):
    assert netguard.is_forbidden(ipaddress.ip_address(text)), text


@pytest.mark.parametrize("text", ALLOWED)
def test_public_addresses_are_allowed_whatever_they_are_wrapped_in(text):
    assert not netguard.is_forbidden(ipaddress.ip_address(text)), text


def test_a_literal_internal_host_is_refused_without_a_connection():
    with pytest.raises(netguard.InternalAddress) as caught:
        netguard.connect("2002:7f00:1::1", 993, 1.0, allow_private=False)
    assert "internal address" in str(caught.value)


@pytest.fixture
def listeners():
    """Two loopback listeners that count connections: 127.0.0.1 and 127.0.0.2."""
    made = []

    def make(host: str):
        sock = socket.socket()
        sock.bind((host, 0))
        sock.listen(8)
        accepted = []

        def serve():
            while True:
                try:
                    conn, _ = sock.accept()
                except OSError:
                    return
                accepted.append(conn)
                if b"HTTP" in conn.recv(4096):
                    conn.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")

        threading.Thread(target=serve, daemon=True).start()
        made.append((sock, accepted))
        return sock.getsockname()[1], accepted

    yield make
    for sock, accepted in made:
        sock.close()
        for conn in accepted:
            conn.close()


@pytest.fixture
def two_faced_dns(monkeypatch):
    """``two-faced.test`` answers 127.0.0.2 the first time and 127.0.0.1 after: a name
    whose DNS changes between a check and a connection (rebinding)."""
    real = socket.getaddrinfo
    calls = []

    def getaddrinfo(host, port, *args, **kwargs):
        if host != "two-faced.test":
            return real(host, port, *args, **kwargs)
        calls.append(host)
        address = "127.0.0.2" if len(calls) == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return calls


def test_a_connection_goes_to_the_address_that_was_checked(listeners, two_faced_dns):
    port_checked, at_checked = listeners("127.0.0.2")
    sock = netguard.connect("two-faced.test", port_checked, 2.0, allow_private=True)
    sock.close()
    wait_for(lambda: len(at_checked) == 1)
    assert two_faced_dns == ["two-faced.test"]


def test_an_http_request_resolves_once_and_goes_to_the_checked_address(
        listeners, two_faced_dns):
    port, at_checked = listeners("127.0.0.2")
    answer = http.request("GET", f"http://two-faced.test:{port}/x", None, {}, timeout=5,
                          allow_private=True, max_bytes=1024)
    assert answer.status == 204
    assert two_faced_dns == ["two-faced.test"]
    assert len(at_checked) == 1


def test_a_non_http_answer_is_described_not_echoed():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)

    def banner():
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            conn.sendall(b"220 internal.example ESMTP SECRET-BANNER ready\r\n")
            conn.recv(4096)
            conn.close()

    threading.Thread(target=banner, daemon=True).start()
    try:
        with pytest.raises(http.RequestFailed) as caught:
            http.request("POST", f"http://127.0.0.1:{sock.getsockname()[1]}/", b"x", {},
                         timeout=5, allow_private=True, max_bytes=1024)
    finally:
        sock.close()
    assert "SECRET-BANNER" not in str(caught.value)
    assert "not HTTP" in str(caught.value)


@pytest.mark.parametrize("host", ["127.0.0.1", "8.8.8.8", "127.1", "10.0.0.01", "::1"])
def test_an_address_written_out_resolves_as_the_resolver_would_have_it(host):
    """IPv4 dotted quads skip getaddrinfo; every other form still goes through it."""
    expected = list(dict.fromkeys((info[0], info[4]) for info in socket.getaddrinfo(
        host, 443, type=socket.SOCK_STREAM)))
    assert netguard.lookup(host, 443) == expected


@pytest.mark.parametrize("url", ["http://127.1/hook", "http://0x7f.0.0.1/hook",
                                 "http://127.0.0.1:8080/hook", "https://[::ffff:10.0.0.1]/"])
def test_internal_hosts_stay_refused_at_every_request(url):
    for _ in range(2):  # the second time from what is remembered of the URL and address
        with pytest.raises(netguard.InternalAddress):
            http.request("POST", url, b"{}", {}, timeout=1, allow_private=False, max_bytes=10)
