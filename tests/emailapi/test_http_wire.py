"""The lean HTTP/1.1 client (``emailapi.lib.http_wire`` through ``emailapi.lib.http``) against
real loopback servers that answer with exactly the bytes a test scripts: keep-alive, chunked
and to-the-close bodies, informational answers, the body cap, timeouts, refusals and TLS, each
failure described in our words."""

from __future__ import annotations

import socket
import ssl
import threading

import pytest

from emailapi.lib import http, netguard
from tests.servers import tls
from tests.servers.net import find_free_port
from webhooks import transport


class ScriptedServer:
    """Answers the n-th request it reads with ``answers[n]`` (bytes; ``None``: close without
    answering, ``"silent"``: say nothing and keep the connection); records each connection's
    requests. ``close_after``: close each connection after that many answers."""

    def __init__(self, answers, *, close_after=None, tls_context=None):
        self.answers = list(answers)
        self.close_after = close_after
        self.tls_context = tls_context
        self.connections: list[list[bytes]] = []
        self._lock = threading.Lock()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, scheme="http", host="127.0.0.1"):
        return f"{scheme}://{host}:{self.port}/hook"

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        if self.tls_context is not None:
            try:
                conn = self.tls_context.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError):
                conn.close()
                return
        requests: list[bytes] = []
        with self._lock:
            self.connections.append(requests)
        buffer = b""
        try:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                requests.append(head + b"\r\n\r\n" + buffer[:length])
                buffer = buffer[length:]
                with self._lock:
                    answer = self.answers.pop(0) if self.answers else None
                if answer == "silent":
                    self.held.append(conn)
                    return
                if answer is None:
                    return
                conn.sendall(answer)
                if self.close_after and len(requests) >= self.close_after:
                    return
        except OSError:
            return
        finally:
            if conn not in self.held:
                conn.close()

    def stop(self):
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def scripted():
    servers = []

    def start(answers, **options) -> ScriptedServer:
        server = ScriptedServer(answers, **options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def ok(body=b'{"ok":true}', extra=b""):
    return (b"HTTP/1.1 200 OK\r\nContent-Length: " + str(len(body)).encode() + b"\r\n" + extra
            + b"\r\n" + body)


def send(url, body=b"{}", *, timeout=5.0, max_bytes=1024, headers=None):
    return http.request("POST", url, body, headers or {"Content-Type": "application/json"},
                        timeout=timeout, allow_private=True, max_bytes=max_bytes)


def test_it_keeps_one_connection_alive_for_many_requests(scripted):
    server = scripted([ok(b"1"), ok(b"2"), ok(b"3")])
    assert [send(server.url()).body for _ in range(3)] == [b"1", b"2", b"3"]
    [requests] = server.connections
    assert len(requests) == 3
    head = requests[0].decode("latin-1")
    assert head.startswith("POST /hook HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{server.port}\r\n" in head
    assert "Content-Length: 2\r\n" in head
    assert head.endswith("\r\n\r\n{}")


def test_a_connection_on_a_high_descriptor_is_kept_alive_too(scripted, descriptors_above_1023):
    """The dispatcher keeps up to 32 connections for each of 256 receivers: descriptors above
    1023, which ``select.select`` refuses. Its ValueError was taken for "closed by the
    server", so no such connection was ever reused (a new TCP connection per delivery)."""
    server = scripted([ok(b"1"), ok(b"2"), ok(b"3")])
    assert [send(server.url()).body for _ in range(3)] == [b"1", b"2", b"3"]
    [requests] = server.connections
    assert len(requests) == 3


def test_a_chunked_answer_is_read_whole_and_the_connection_reused(scripted):
    chunked = (b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n")
    server = scripted([chunked, ok(b"next")])
    answer = send(server.url())
    assert (answer.status, answer.body) == (201, b"hello, world")
    assert send(server.url()).body == b"next"
    assert len(server.connections) == 1


def test_informational_answers_are_skipped_and_headers_read_in_any_case(scripted):
    server = scripted([b"HTTP/1.1 100 Continue\r\n\r\n"
                       + ok(b"x", extra=b"X-Thing: a\r\nx-thing: b\r\n")])
    answer = send(server.url())
    assert answer.status == 200
    assert answer.headers["x-THING"] == "a, b"
    assert answer.headers.get("Content-Type") is None


def test_an_answer_without_length_runs_to_the_close_and_the_connection_is_not_kept(scripted):
    server = scripted([b"HTTP/1.0 200 OK\r\n\r\nuntil the end", ok(b"fresh")], close_after=1)
    assert send(server.url()).body == b"until the end"
    assert send(server.url()).body == b"fresh"
    assert len(server.connections) == 2


def test_connection_close_is_honoured(scripted):
    server = scripted([ok(b"a", extra=b"Connection: close\r\n"), ok(b"b")], close_after=1)
    assert send(server.url()).body == b"a"
    assert send(server.url()).body == b"b"
    assert len(server.connections) == 2


def test_an_answer_over_the_cap_is_cut_and_its_connection_dropped(scripted):
    big = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000
    server = scripted([big, ok(b"small")])
    assert send(server.url(), max_bytes=100).body == b"x" * 100
    assert send(server.url()).body == b"small"
    assert len(server.connections) == 2


def test_a_kept_connection_closed_by_the_server_is_replaced_without_a_failure(scripted):
    server = scripted([ok(b"1"), ok(b"2")], close_after=1)
    assert send(server.url()).body == b"1"
    assert send(server.url()).body == b"2"
    assert len(server.connections) == 2


def test_a_connection_closed_without_an_answer_is_a_failure_in_words(scripted):
    server = scripted([None])
    with pytest.raises(http.RequestFailed, match="closed before a complete answer"):
        send(server.url())


def test_a_silent_server_times_out_waiting_for_the_answer(scripted):
    server = scripted(["silent"])
    with pytest.raises(http.RequestFailed, match="^Timed out waiting for the answer$"):
        send(server.url(), timeout=0.5)


def test_a_refused_connection_reads_refused():
    with pytest.raises(http.RequestFailed, match="^Connection refused or unreachable$"):
        send(f"http://127.0.0.1:{find_free_port()}/hook")


def test_a_header_with_a_line_break_is_refused_before_anything_is_sent(scripted):
    server = scripted([ok()])
    with pytest.raises(http.RequestFailed, match="Invalid request header"):
        send(server.url(), headers={"X-Evil": "a\r\nX-Injected: 1"})
    assert server.connections == []


def test_a_non_2xx_is_an_answer_the_transport_records_as_a_failure(scripted):
    server = scripted([b"HTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nbusy"])
    outcome = transport.post(server.url(), b"{}", {}, timeout=5, allow_private=True)
    assert (outcome.status_code, outcome.error, outcome.body) == (503, "HTTP 503", b"busy")


def test_a_redirect_is_not_followed(scripted):
    target = scripted([ok()])
    server = scripted([b"HTTP/1.1 302 Found\r\nLocation: " + target.url().encode()
                       + b"\r\nContent-Length: 0\r\n\r\n"])
    outcome = transport.post(server.url(), b"{}", {}, timeout=5, allow_private=True)
    assert outcome.status_code == 302
    assert outcome.error == "HTTP 302 (redirects are not followed)"
    assert target.connections == []


@pytest.fixture
def tls_server(scripted, tmp_path):
    cert, key = tls.write_self_signed_cert(str(tmp_path))
    context = tls.server_context(cert, key)

    def start(answers):
        return scripted(answers, tls_context=context), cert

    return start


def test_https_checks_the_certificate_and_says_so_in_words(tls_server):
    server, _ = tls_server([ok()])
    with pytest.raises(http.RequestFailed) as caught:
        send(server.url("https"))
    assert str(caught.value) == "TLS error: CERTIFICATE_VERIFY_FAILED"


def test_https_to_a_trusted_server_is_kept_alive(tls_server, monkeypatch):
    server, cert = tls_server([ok(b"1"), ok(b"2")])
    trusting = tls.client_context(cafile=cert)
    monkeypatch.setattr(http, "tls_context", lambda: trusting)
    assert [send(server.url("https", "localhost")).body for _ in range(2)] == [b"1", b"2"]
    assert len(server.connections) == 1


def test_plain_http_to_a_tls_server_is_not_http(tls_server):
    server, _ = tls_server([ok()])
    with pytest.raises(http.RequestFailed) as caught:
        send(server.url(), timeout=2)
    assert str(caught.value) in ("The server's answer is not HTTP",
                                 "The connection closed before a complete answer")


def test_the_url_checks_still_come_first():
    with pytest.raises(netguard.UnsafeTarget):
        http.request("POST", "http://127.0.0.1:9/hook", b"{}", {}, timeout=1,
                     allow_private=False, max_bytes=10)
