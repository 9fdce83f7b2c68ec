"""The HTTP edge through the real web server, started as ``manage.py serve`` starts it: bodies
are bounded while they arrive (not after daphne has read them), the client is the peer unless
the peer is a trusted proxy, and the access log carries no token and no control character."""

from __future__ import annotations

import json
import re
import socket
import threading

import pytest

from tests.base import wait_for
from tests.webhooks.stream_clients import Daphne, read_head

# Tests whose data the server (another process) must see commit it.
committed = pytest.mark.django_db(transaction=True)

LIMIT = 1 << 20  # EMAILAPI_MAX_BODY_SIZE of the servers here
PROXY = "10.20.30.40"


@pytest.fixture(scope="module")
def server(django_db_setup):
    from django.conf import settings

    daphne = Daphne(settings, EMAILAPI_MAX_BODY_SIZE=str(LIMIT), EMAILAPI_TRUSTED_PROXIES=PROXY)
    yield daphne
    daphne.stop()


@pytest.fixture(scope="module")
def proxied_server(django_db_setup):
    """A server behind a proxy on loopback: this test process plays the proxy."""
    from django.conf import settings

    daphne = Daphne(settings, EMAILAPI_TRUSTED_PROXIES=f"127.0.0.1,{PROXY}")
    yield daphne
    daphne.stop()


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))


def _connect(server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=15)


def _answer(sock: socket.socket) -> tuple[int, dict[str, str], dict]:
    """The response to a request sent with ``Connection: close`` (or refused: the server
    closes after it), its JSON body decoded."""
    status, headers, rest = read_head(sock)
    length = int(headers.get("content-length", -1))
    while length < 0 or len(rest) < length:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        rest += chunk
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            size_line, rest = rest.split(b"\r\n", 1)
            size = int(size_line, 16)
            if not size:
                break
            body, rest = body + rest[:size], rest[size + 2:]
        rest = body
    return status, headers, json.loads(rest) if rest else {}


def request(server, method: str, path: str, body: dict | None = None,
            headers: dict[str, str] | None = None, host: str = "127.0.0.1",
            ) -> tuple[int, dict[str, str], dict]:
    payload = json.dumps(body).encode() if body is not None else b""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: close",
             f"Content-Length: {len(payload)}", "Content-Type: application/json"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    with _connect(server) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        return _answer(sock)


def _warm(server) -> int:
    """RSS of the server once it has served a request (imports done)."""
    assert request(server, "GET", "/health")[0] == 200
    return _rss(server.process.pid)


def _send_until_cut(sock: socket.socket, total: int, piece: bytes) -> int:
    """Send up to ``total`` bytes in ``piece``s; how many went out before the server cut."""
    sent = 0
    try:
        while sent < total:
            sock.sendall(piece)
            sent += len(piece)
    except OSError:
        pass
    return sent


def test_a_huge_declared_body_is_refused_before_any_of_it_is_read(server):
    baseline = _warm(server)
    with _connect(server) as sock:
        sock.sendall(f"POST /v1/account HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {200 << 20}\r\n\r\n"
                     .encode())
        # Not one byte of the body sent yet: the answer comes from the headers alone.
        status, headers, body = _answer(sock)
        assert status == 413, body
        assert body["code"] == "PayloadTooLarge", body
        assert body["details"] == {"maxBytes": LIMIT}
        assert headers["connection"] == "close"
        # A client that sends its body anyway is cut off long before 200 MiB.
        sent = _send_until_cut(sock, 200 << 20, b"x" * (256 << 10))
    assert sent < 64 << 20, f"the server read {sent >> 20} MiB of a refused body"
    assert _rss(server.process.pid) - baseline < 20 << 20
    wait_for(lambda: '"POST /v1/account" 413' in server.log(), timeout=10)


def test_a_refused_body_sends_no_100_continue(server):
    with _connect(server) as sock:
        sock.sendall(f"PUT /v1/account/x HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\n"
                     f"Content-Length: {LIMIT + 1}\r\n\r\n".encode())
        status, _, body = _answer(sock)
    assert status == 413
    assert body["code"] == "PayloadTooLarge"


def test_a_chunked_body_is_cut_once_it_passes_the_limit(server):
    baseline = _warm(server)
    piece = b"x" * (64 << 10)
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    answers = []
    with _connect(server) as sock:
        sock.sendall(b"POST /v1/account HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        reader = threading.Thread(target=lambda: answers.append(_answer(sock)), daemon=True)
        reader.start()
        sent = _send_until_cut(sock, 256 << 20, chunk)
        reader.join(15)
    assert answers, "no answer"
    status, _, body = answers[0]
    assert status == 413
    assert body["code"] == "PayloadTooLarge"
    assert sent < 64 << 20, f"the server read {sent >> 20} MiB of a chunked body over the limit"
    assert _rss(server.process.pid) - baseline < 20 << 20


def test_a_body_just_over_the_limit_still_gets_its_answer(server):
    """A client that sends a little too much before reading (http.client, requests) reads a
    413, not a reset connection: what follows a refusal is read and dropped for a while."""
    import http.client

    for chunked in (False, True):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        body = b"x" * (LIMIT * 2)
        try:
            if chunked:
                conn.request("POST", "/v1/account", body=iter([body[:LIMIT], body[LIMIT:]]),
                             encode_chunked=True, headers={"Content-Type": "application/json"})
            else:
                conn.request("POST", "/v1/account", body=body,
                             headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            assert response.status == 413, chunked
            assert json.loads(response.read())["code"] == "PayloadTooLarge"
        finally:
            conn.close()


@committed
def test_bodies_within_the_limit_are_served(server, alice):
    status, _, body = request(server, "POST", "/v1/token", {"name": "x" * 200},
                              {"Authorization": f"Bearer {alice.token}"})
    assert status == 200, body
    assert body["token"].startswith("eapi_"), body


# --- Who is the client (EMAILAPI_TRUSTED_PROXIES), and which host it asked for

@committed
def test_a_host_not_in_allowed_hosts_is_a_400_in_the_api_shape(server, alice):
    form = {"type": "imap", "redirectUrl": "https://example.com/done"}
    for method, path, body in [("POST", "/v1/authentication/form", form),
                               ("GET", "/v1/accounts", None), ("GET", "/health", None)]:
        status, _, answer = request(server, method, path, body,
                                    {"Authorization": f"Bearer {alice.token}"},
                                    host="evil.example")
        assert status == 400, (path, answer)
        assert answer["code"] == "InvalidHost", answer
        assert answer["statusCode"] == 400, answer
    assert request(server, "GET", "/v1/accounts", None,
                   {"Authorization": f"Bearer {alice.token}"}, host="localhost")[0] == 200



def _connect_link(server, token: str, headers: dict[str, str]) -> str:
    status, _, body = request(server, "POST", "/v1/authentication/form",
                              {"type": "imap", "redirectUrl": "https://example.com/done"},
                              {"Authorization": f"Bearer {token}", **headers})
    assert status == 200, body
    return body["url"]


@committed
def test_forwarded_headers_from_an_untrusted_peer_are_ignored(server, alice):
    forged = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    assert _connect_link(server, alice.token, forged).startswith("http://127.0.0.1/")
    wait_for(lambda: re.search(r"^127\.0\.0\.1:\d+ .*\"POST /v1/authentication/form\" 200",
                               server.log(), re.M), timeout=10)
    assert "203.0.113.9" not in server.log()


@committed
def test_a_trusted_proxy_says_who_the_client_is(proxied_server, alice):
    # The client's own claim (left) is not believed; the proxies' (right) are.
    headers = {"X-Forwarded-For": f"198.51.100.1, 203.0.113.9, {PROXY}",
               "X-Forwarded-Proto": "https"}
    assert _connect_link(proxied_server, alice.token, headers).startswith("https://127.0.0.1/")
    wait_for(lambda: re.search(r"^203\.0\.113\.9:0 .*\"POST /v1/authentication/form\" 200",
                               proxied_server.log(), re.M), timeout=10)


def test_a_body_refused_behind_a_trusted_proxy_is_logged_for_the_client(proxied_server):
    with _connect(proxied_server) as sock:
        sock.sendall(f"POST /v1/token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     f"X-Forwarded-For: 203.0.113.21\r\nContent-Length: {64 << 20}\r\n\r\n"
                     .encode())
        status, _, body = _answer(sock)
    assert status == 413
    assert body["code"] == "PayloadTooLarge"
    wait_for(lambda: re.search(r'^203\.0\.113\.21:0 .*"POST /v1/token" 413', proxied_server.log(),
                               re.M), timeout=10)


def _login(server, email: str, headers: dict[str, str]) -> str:
    """Sign in with a wrong password; the page's text."""
    with _connect(server) as sock:
        sock.sendall("GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                     .encode())
        page = b""
        while chunk := sock.recv(65536):
            page += chunk
    cookie = re.search(rb"csrftoken=([^;]+)", page).group(1).decode()
    form_token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1).decode()
    form = f"csrfmiddlewaretoken={form_token}&email={email}&password=wrong-password-1"
    lines = ["POST /login HTTP/1.1", "Host: 127.0.0.1", "Connection: close",
             f"Cookie: csrftoken={cookie}", "Content-Type: application/x-www-form-urlencoded",
             f"Content-Length: {len(form)}"] + [f"{k}: {v}" for k, v in headers.items()]
    with _connect(server) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n" + form).encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer.decode(errors="replace")


def test_sign_in_throttling_cannot_be_dodged_with_a_forged_forwarded_for(server, settings,
                                                                        redis_db):
    from accounts.web import login_limit

    prefix = settings.EMAILAPI_REDIS_PREFIX
    redis_db.set(f"{prefix}:login-fail:ip:127.0.0.1", login_limit.MAX_PER_IP)
    answer = _login(server, "someone@example.com", {"X-Forwarded-For": "203.0.113.77"})
    assert "Too many failed sign-in attempts" in answer
    assert redis_db.get(f"{prefix}:login-fail:ip:203.0.113.77") is None


def test_behind_a_trusted_proxy_sign_in_failures_count_for_the_client(proxied_server, settings,
                                                                      redis_db):
    prefix = settings.EMAILAPI_REDIS_PREFIX
    answer = _login(proxied_server, "someone@example.com",
                    {"X-Forwarded-For": "203.0.113.77"})
    assert "Email or password is incorrect" in answer
    assert redis_db.get(f"{prefix}:login-fail:ip:203.0.113.77") == b"1"
    assert redis_db.get(f"{prefix}:login-fail:ip:127.0.0.1") is None


# --- The access log

@committed
def test_the_access_log_shows_no_token(server, alice):
    status, _, _ = request(server, "GET", f"/v1/accounts?pageSize=5&access_token={alice.token}")
    assert status == 200
    line = wait_for(lambda: re.search(r'"GET /v1/accounts\?[^"]*" 200.*', server.log()),
                    timeout=10).group(0)
    assert "pageSize=5" in line
    assert "access_token=***" in line
    assert alice.token not in server.log()


def test_the_access_log_cannot_be_forged(server):
    # Twisted refuses most control characters in a request line, not DEL (nor C1 bytes, which
    # daphne then refuses as non-ASCII).
    with _connect(server) as sock:
        sock.sendall(b"GET /nope\x7f\x7fFORGED HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Connection: close\r\n\r\n")
        while sock.recv(65536):
            pass
    line = wait_for(lambda: re.search(r'"GET /nope.*', server.log()), timeout=10).group(0)
    assert "\x7f" not in server.log()
    assert "/nope\\x7f\\x7fFORGED" in line, line
