"""Real clients of the live stream for tests: a real daphne serving the test database, a
minimal RFC 6455 WebSocket client and an SSE client, on plain blocking sockets (nothing to add
to the test dependencies, and a test can choose not to read, to play a slow client)."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

from django.db import connection

from tests.base import stop_process
from tests.servers.net import find_free_port

ROOT = Path(__file__).resolve().parents[2]


def serve_argv(port: int) -> list[str]:
    """The web server's command line exactly as ``manage.py serve`` builds it."""
    from emailapi.management.commands.serve import Command

    return Command().web_children(sys.executable, "127.0.0.1", port, 1)[0].argv


class Daphne:
    """The web server as ``manage.py serve`` starts it (daphne underneath), on a free port, on
    the test database; ``log()`` has its output (access log included)."""

    def __init__(self, settings, **env_overrides: str):
        db = connection.settings_dict
        env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        env.update(DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
                   REDIS_URL=settings.REDIS_URL, EMAILAPI_SECRET=settings.EMAILAPI_SECRET,
                   EMAILAPI_REDIS_PREFIX=settings.EMAILAPI_REDIS_PREFIX,
                   EMAILAPI_RATE_LIMIT="0", EMAILAPI_TOKEN_CACHE_SECONDS="0")
        env.update(env_overrides)  # DATABASE_URL and REDIS_URL too (through a proxy, say)
        self.port = find_free_port()
        self._log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(serve_argv(self.port), cwd=ROOT, env=env,
                                        stdout=self._log, stderr=self._log)
        self._wait_up()

    def log(self) -> str:
        """What the server wrote to stderr so far (pytest shows it when a test fails)."""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def _wait_up(self) -> None:
        deadline = time.monotonic() + 180  # a Django process starting on a busy machine
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("daphne did not start")

    def stop(self) -> None:
        print(self.log()[-5000:])
        stop_process(self.process, timeout=60)


def _connect(port: int, rcvbuf: int | None, timeout: float) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", port))
    return sock


def read_head(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """An HTTP response's status, headers (lower-cased names) and the bytes read past them."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"closed during the response head: {data!r}")
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, rest


class WebSocket:
    def __init__(self, port: int, path: str, headers: dict[str, str] | None = None,
                 rcvbuf: int | None = None, timeout: float = 60):
        self.sock = _connect(port, rcvbuf, timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.status, self.headers, self._buffer = read_head(self.sock)
        assert self.status == 101, self.status
        self.close_code: int | None = None

    def _exactly(self, count: int) -> bytes:
        while len(self._buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            self._buffer += chunk
        data, self._buffer = self._buffer[:count], self._buffer[count:]
        return data

    def _frame(self) -> tuple[int, bytes]:
        first, second = self._exactly(2)
        length = second & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._exactly(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._exactly(8))[0]
        return first & 0x0F, self._exactly(length)

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        header = bytes([0x80 | opcode])
        if len(payload) < 126:
            header += bytes([0x80 | len(payload)])
        else:
            header += bytes([0x80 | 126]) + struct.pack("!H", len(payload))
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def receive(self):
        """The next text message as JSON; None when the server closed (see ``close_code``)."""
        while True:
            opcode, payload = self._frame()
            if opcode == 0x1:
                return json.loads(payload)
            if opcode == 0x8:
                self.close_code = struct.unpack("!H", payload[:2])[0] if payload else None
                return None
            if opcode == 0x9:
                self._send(0xA, payload)

    def close(self) -> None:
        try:
            self._send(0x8, struct.pack("!H", 1000))
        except OSError:
            pass
        self.sock.close()


class EventStream:
    """An SSE client: ``events()`` parses ``id``/``event``/``data`` fields of the body."""

    def __init__(self, port: int, path: str, headers: dict[str, str] | None = None,
                 rcvbuf: int | None = None, timeout: float = 60):
        self.sock = _connect(port, rcvbuf, timeout)
        lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Accept: text/event-stream"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.status, self.headers, self._raw = read_head(self.sock)
        self._text = ""
        self.ended = False
        self.comments: list[str] = []
        self._events: deque[dict] = deque()

    def _fill(self) -> bool:
        """Decode more of the chunked body into ``_text``; False at its end."""
        while True:
            if b"\r\n" in self._raw:
                size_line, rest = self._raw.split(b"\r\n", 1)
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    self.ended = True
                    return False
                if len(rest) >= size + 2:
                    self._text += rest[:size].decode()
                    self._raw = rest[size + 2:]
                    return True
            chunk = self.sock.recv(65536)
            if not chunk:
                self.ended = True
                return False
            self._raw += chunk

    def body(self) -> str:
        """Everything until the server ends the response (for error answers and once=true)."""
        if self.headers.get("transfer-encoding") != "chunked":
            length = int(self.headers.get("content-length", 0))
            while len(self._raw) < length:
                self._raw += self.sock.recv(65536)
            return self._raw.decode()
        while self._fill():
            pass
        return self._text

    def ends_within(self, seconds: float) -> bool:
        """Whether the server ends the body within ``seconds`` (reading what comes meanwhile;
        keep-alives must flow for the deadline to be noticed)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not self._fill():
                return True
        return False

    def next_event(self) -> dict | None:
        """The next event as ``{"id", "event", "data"}`` (comments skipped); None at the end."""
        while not self._events:
            if not self._read_block():
                return None
        return self._events.popleft()

    def wait_comment(self, text: str) -> None:
        """Read on until a comment containing ``text`` has come (events that arrive meanwhile
        are kept for ``next_event``)."""
        while not any(text in comment for comment in self.comments):
            if not self._read_block():
                raise AssertionError(f"the stream ended without a {text!r} comment")

    def _read_block(self) -> bool:
        """Parse the next block (an event, or comments); False at the end of the stream."""
        while "\n\n" not in self._text:
            if not self._fill():
                return False
        block, self._text = self._text.split("\n\n", 1)
        fields = {}
        for line in block.split("\n"):
            if line.startswith(":"):
                self.comments.append(line)
            if line.startswith(":") or ":" not in line:
                continue
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value
        if "data" in fields:
            fields["data"] = json.loads(fields["data"])
            self._events.append(fields)
        return True

    def close(self) -> None:
        self.sock.close()


def parse_events(body: str) -> list[dict]:
    """The events of a whole SSE body (for the test client's ``once=true`` answers)."""
    out = []
    for block in body.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n")
                      if line and not line.startswith(":") and ": " in line)
        if "data" in fields:
            fields["data"] = json.loads(fields["data"])
            out.append(fields)
    return out
