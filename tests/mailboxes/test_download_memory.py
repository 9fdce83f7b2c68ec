"""A 50 MB attachment through the real web server (daphne, ASGI): the web process's memory
must grow by less than 20 MB while it streams, and the bytes must be exact.

The web server is a subprocess on the test database, so its RSS is its own; it is warmed up
first (imports, a small download) so the baseline is a serving process, not a cold one.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from mailboxes.sync.account import sync_account
from tests.base import stop_process
from tests.mailboxes.helpers import open_session, register
from tests.mailboxes.test_parts_dovecot import BIG_SIZE, big_message
from tests.servers import seed
from tests.servers.net import find_free_port

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]
LIMIT = 20 << 20


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _web_server(settings, port: int) -> subprocess.Popen:
    db = connection.settings_dict
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
               REDIS_URL=settings.REDIS_URL, EMAILAPI_SECRET=settings.EMAILAPI_SECRET,
               EMAILAPI_RATE_LIMIT="0")
    return subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
         "emailapi.asgi:application"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _get(port: int, path: str, token: str, sink=None) -> tuple[int, dict, bytes | None]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        if sink is None:
            return response.status, dict(response.getheaders()), response.read()
        while chunk := response.read(256 * 1024):
            sink(chunk)
        return response.status, dict(response.getheaders()), None
    finally:
        conn.close()


def test_a_50_mb_attachment_streams_in_bounded_web_memory(alice, mail_user, settings):
    payload = random.Random(7).randbytes(BIG_SIZE)
    seed.seed_mailbox(mail_user, messages=[big_message(payload), seed.make_message()])
    account = register(alice.tenant, mail_user)
    session = open_session(account)
    sync_account(session, account)
    session.client.logout()

    port = find_free_port()
    web = _web_server(settings, port)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _get(port, "/health", alice.token)[0] == 200:
                    break
            except OSError:
                pass
            assert web.poll() is None, web.stderr.read().decode()
            assert time.monotonic() < deadline, "web server did not start"
            time.sleep(0.2)
        status, _, body = _get(port, "/v1/account/box/messages?path=INBOX", alice.token)
        assert status == 200
        import json

        messages = json.loads(body)["messages"]
        small = next(m for m in messages if not m["hasAttachments"])
        big = next(m for m in messages if m["hasAttachments"])
        _get(port, f"/v1/account/box/message/{small['id']}/source", alice.token)  # warm up
        _, _, detail = _get(port, f"/v1/account/box/message/{big['id']}", alice.token)
        attachment = json.loads(detail)["attachments"][0]

        baseline = _rss(web.pid)
        peak = baseline
        digest = hashlib.sha256()
        received = 0

        def sink(chunk: bytes) -> None:
            nonlocal peak, received
            digest.update(chunk)
            received += len(chunk)
            peak = max(peak, _rss(web.pid))

        status, headers, _ = _get(port, f"/v1/account/box/attachment/{attachment['id']}",
                                  alice.token, sink)
        assert status == 200
        assert received == BIG_SIZE
        assert digest.hexdigest() == hashlib.sha256(payload).hexdigest()
        growth = peak - baseline
        print(f"web RSS {baseline / 2**20:.1f} MiB, peak growth {growth / 2**20:.1f} MiB "
              f"while streaming {BIG_SIZE / 2**20:.0f} MiB")
        assert growth < LIMIT, f"web process grew {growth / 2**20:.1f} MiB"
    finally:
        stop_process(web)
