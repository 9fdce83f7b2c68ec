"""Proxy URLs (``emailapi.lib.tunnels.parse``), and connections through real SOCKS5, SOCKS4a and
HTTP CONNECT proxies (``netguard.connect(proxy=...)``): the proxy is what we connect to and
check, the mail server is named to it by name, bytes flow both ways, and a refusal is in words."""

from __future__ import annotations

import socket
import threading

import pytest

from emailapi.lib import netguard, tunnels
from tests.servers.net import LOOPBACK
from tests.servers.proxies import PROXIES, HttpConnectProxy, Socks4Proxy, Socks5Proxy

# -- parsing -------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "expected"), [
    ("socks5://user:p%40ss@proxy.example.com:1080",
     tunnels.Proxy("socks5", "proxy.example.com", 1080, "user", "p@ss")),
    ("socks://proxy.example.com", tunnels.Proxy("socks5", "proxy.example.com", 1080)),
    ("SOCKS4://proxy.example.com:1081", tunnels.Proxy("socks4", "proxy.example.com", 1081)),
    ("socks4a://bob@proxy.example.com:1081",
     tunnels.Proxy("socks4", "proxy.example.com", 1081, "bob")),
    ("http://u:pw@[2001:db8::1]:3128/", tunnels.Proxy("http", "2001:db8::1", 3128, "u", "pw")),
    ("http://proxy.example.com", tunnels.Proxy("http", "proxy.example.com", 80)),
])
def test_it_parses_proxy_urls(url, expected):
    assert tunnels.parse(url) == expected


@pytest.mark.parametrize(("url", "words"), [
    ("", "proxy URL"),
    ("https://proxy.example.com:443", "socks5://, socks4://"),
    ("ftp://proxy.example.com", "socks5://, socks4://"),
    ("socks5://", "name the proxy's host"),
    ("socks5://proxy.example.com:99999", "port"),
    ("socks5://proxy.example.com:0", "port"),
    ("socks5://proxy.example.com:abc", "port"),
    ("socks5://proxy.example.com:1080/path", "only scheme"),
    ("socks5://proxy.example.com:1080?x=1", "only scheme"),
    ("socks5://us er@proxy.example.com", "spaces"),
    ("socks5://u:%ff@proxy.example.com", "not UTF-8"),
    ("socks5://u:%0a@proxy.example.com", "control character"),
    ("proxy.example.com:1080", "socks5://"),
])
def test_it_refuses_bad_proxy_urls_in_words(url, words):
    with pytest.raises(ValueError) as caught:
        tunnels.parse(url)
    assert words in str(caught.value)


def test_its_repr_never_shows_the_password():
    assert "secret" not in repr(tunnels.parse("socks5://u:secret@proxy.example.com"))


# -- through real proxies ------------------------------------------------------------------


class GreetingEcho:
    """A loopback server that greets first (as IMAP and SMTP servers do: the greeting may come
    in the packet after the proxy's answer) and echoes what it is sent."""

    def __init__(self):
        self._listener = socket.create_server((LOOPBACK, 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        with conn:
            conn.sendall(b"* OK hello\r\n")
            while data := conn.recv(4096):
                conn.sendall(data)

    def close(self):
        self._listener.close()


@pytest.fixture
def echo():
    server = GreetingEcho()
    yield server
    server.close()


def _read_line(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        assert chunk, f"closed after {data!r}"
        data += chunk
    return data


@pytest.mark.parametrize("kind", sorted(PROXIES))
@pytest.mark.parametrize("login", [False, True])
def test_it_tunnels_to_the_target_by_name(echo, kind, login):
    credentials = ("alice", "s3cr:t@") if login and kind != "socks4" else (None, None)
    with PROXIES[kind](*credentials) as proxy:
        sock = netguard.connect("localhost", echo.port, 5, allow_private=True,
                                proxy=tunnels.parse(proxy.url(*credentials)))
        with sock:
            assert _read_line(sock) == b"* OK hello\r\n"
            sock.sendall(b"ping\r\n")
            assert _read_line(sock) == b"ping\r\n"
        assert proxy.requests == [
            type(proxy.requests[0])("localhost", echo.port, credentials[0])]


def test_socks4_sends_the_user_id(echo):
    with Socks4Proxy() as proxy:
        with netguard.connect("localhost", echo.port, 5, True,
                              proxy=tunnels.parse(proxy.url("bob"))) as sock:
            assert _read_line(sock) == b"* OK hello\r\n"
        assert [request.user for request in proxy.requests] == ["bob"]


@pytest.mark.parametrize("kind", ["socks5", "http"])
def test_a_refused_login_says_so(echo, kind):
    with PROXIES[kind]("alice", "right") as proxy:
        with pytest.raises(tunnels.ProxyLoginRefused, match="The proxy refused the login"):
            netguard.connect("localhost", echo.port, 5, True,
                             proxy=tunnels.parse(proxy.url("alice", "wrong")))
        assert proxy.logins_refused == 1


@pytest.mark.parametrize("kind", ["socks5", "http"])
def test_a_missing_login_says_so(echo, kind):
    with PROXIES[kind]("alice", "right") as proxy:
        with pytest.raises(tunnels.ProxyLoginRefused, match="wants a"):
            netguard.connect("localhost", echo.port, 5, True, proxy=tunnels.parse(proxy.url()))


@pytest.mark.parametrize(("kind", "words"), [
    ("socks5", "The proxy could not reach imap.example.com:993 (SOCKS5 reply 5: connection refused)"),
    ("socks4", "The proxy could not reach imap.example.com:993 (SOCKS4 reply 91: request rejected"),
    ("http", "The proxy could not reach imap.example.com:993 (HTTP 502 Bad Gateway)"),
])
def test_an_unreachable_target_says_so(kind, words):
    with PROXIES[kind](refuse_target=True) as proxy:
        with pytest.raises(tunnels.ProxyTargetUnreachable) as caught:
            netguard.connect("imap.example.com", 993, 5, True, proxy=tunnels.parse(proxy.url()))
        assert str(caught.value).startswith(words)
        assert isinstance(caught.value, OSError)


@pytest.mark.parametrize("kind", sorted(PROXIES))
@pytest.mark.parametrize("host", ["a" * 64 + ".example.com", "imap..example.com"])
def test_a_name_idna_cannot_write_is_a_proxy_error_in_words(kind, host):
    with PROXIES[kind]() as proxy:
        with pytest.raises(tunnels.ProxyError, match="not a valid DNS name"):
            netguard.connect(host, 993, 5, True, proxy=tunnels.parse(proxy.url()))
        assert proxy.requests == []


def test_the_proxy_host_is_checked_like_a_mail_host(echo):
    with Socks5Proxy() as proxy:
        with pytest.raises(netguard.InternalAddress, match="127.0.0.1 is an internal address"):
            netguard.connect("imap.example.com", 993, 5, False, proxy=tunnels.parse(proxy.url()))
        assert proxy.requests == []


@pytest.mark.parametrize("target", ["127.0.0.1", "10.1.2.3", "[::1]", "169.254.169.254"])
def test_no_tunnel_to_an_internal_address_written_out(target):
    # the proxy itself is allowed here only to show the target's check is the one refusing
    proxy = tunnels.Proxy("socks5", "192.0.2.1", 1080)  # never reached: refused before
    with pytest.raises(netguard.InternalAddress, match="is an internal address"):
        netguard.connect(target, 993, 5, False, proxy=proxy)


def test_a_silent_proxy_times_out_in_words():
    listener = socket.create_server((LOOPBACK, 0))  # accepts (backlog), never answers
    with listener:
        proxy = tunnels.Proxy("socks5", LOOPBACK, listener.getsockname()[1])
        with pytest.raises(tunnels.ProxyError, match=r"did not answer within 0.3 s"):
            netguard.connect("imap.example.com", 993, 0.3, True, proxy=proxy)


def test_an_endless_http_answer_is_cut_off():
    listener = socket.create_server((LOOPBACK, 0))

    def serve():
        conn, _ = listener.accept()
        with conn:
            conn.recv(4096)
            try:
                conn.sendall(b"HTTP/1.1 200 OK\r\n" + b"X-Pad: aaaaaaaaaaaaaaaa\r\n" * 2000)
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    with listener:
        proxy = tunnels.Proxy("http", LOOPBACK, listener.getsockname()[1])
        with pytest.raises(tunnels.ProxyError, match="longer than 16384 bytes"):
            netguard.connect("imap.example.com", 993, 5, True, proxy=proxy)
    thread.join(5)


def test_a_non_proxy_answer_is_named():
    listener = socket.create_server((LOOPBACK, 0))

    def serve():
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"220 smtp.example.com ESMTP\r\n\r\n")

    threading.Thread(target=serve, daemon=True).start()
    with listener:
        proxy = tunnels.Proxy("http", LOOPBACK, listener.getsockname()[1])
        with pytest.raises(tunnels.ProxyError, match="did not answer as an HTTP proxy"):
            netguard.connect("imap.example.com", 993, 5, True, proxy=proxy)


def test_a_proxy_answer_with_the_servers_greeting_in_the_same_packet_loses_no_byte():
    listener = socket.create_server((LOOPBACK, 0))

    def serve():
        conn, _ = listener.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.0 200 OK\r\n\r\n* OK greeting\r\n")
            conn.recv(1)

    threading.Thread(target=serve, daemon=True).start()
    with listener:
        proxy = tunnels.Proxy("http", LOOPBACK, listener.getsockname()[1])
        with netguard.connect("imap.example.com", 993, 5, True, proxy=proxy) as sock:
            assert _read_line(sock) == b"* OK greeting\r\n"


def test_kinds_listed():
    assert {cls.scheme for cls in (Socks5Proxy, Socks4Proxy, HttpConnectProxy)} == set(PROXIES)
