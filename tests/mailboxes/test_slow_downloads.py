"""A download's client sets its pace: through a real server (``manage.py serve``), the web
process reads an attachment from the mail server only as fast as its client takes it, and
cuts off a client that takes nothing for ``EMAILAPI_DOWNLOAD_STALL_SECONDS``.

Under daphne an ASGI ``send`` never waits: unpaced, a client that stopped reading had the
server read the whole attachment into its buffer at the mail server's pace and keep it there,
so a few such requests for a large attachment held hundreds of MB of the process, and the
connection stayed open for as long as TCP allowed. Here the client takes the headers and then
nothing: the server stops after about ``EMAILAPI_DOWNLOAD_CLIENT_BUFFER`` bytes beyond what
the sockets hold, cuts the client off (a log line says so), and the account's mail server
connection is free again for the next request. The same for the API's route and the
dashboard's (a different ASGI handler each).
"""

from __future__ import annotations

import random

import pytest
from django.test import Client

from accounts.models import Membership, User
from tests.base import wait_for
from tests.servers import seed
from tests.webhooks.stream_clients import Daphne, _connect, read_head

pytestmark = pytest.mark.django_db(transaction=True)

SIZE = 16 * 1024 * 1024
STALL = 2
CUT_OFF = "cut off a download whose client took nothing"


@pytest.fixture
def inbox_messages():
    content = random.Random(7).randbytes(SIZE)
    return {"big": seed.make_message(subject="Big", attachments=[
        ("big.bin", content, "application/octet-stream")])}


@pytest.fixture
def server(settings):
    daphne = Daphne(settings, EMAILAPI_DOWNLOAD_CLIENT_BUFFER="65536",
                    EMAILAPI_DOWNLOAD_STALL_SECONDS=str(STALL), EMAILAPI_IMAP_COMMAND_CONNECTIONS="1")
    yield daphne
    daphne.stop()


def _get(server, credential: str, path: str, rcvbuf: int | None = None):
    sock = _connect(server.port, rcvbuf, 60)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{credential}\r\n"
                 "Connection: close\r\n\r\n".encode())
    status, headers, rest = read_head(sock)
    return sock, status, headers, rest


def _rest(sock, rest: bytes) -> bytes:
    """What else the connection gives before it ends (a reset is an end)."""
    data = bytearray(rest)
    try:
        while chunk := sock.recv(1 << 20):
            data += chunk
    except ConnectionResetError:
        pass
    sock.close()
    return bytes(data)


def _signed_in(alice) -> str:
    """A Cookie header of a dashboard session of Alice's owner (sessions are in the database,
    which the server shares)."""
    owner = User.objects.create_user(email="owner@alice.test", password="Correct-Horse-Battery-9")
    Membership.objects.create(tenant=alice.tenant, user=owner, role="owner")
    browser = Client()
    browser.force_login(owner)
    return f"Cookie: sessionid={browser.cookies['sessionid'].value}"


@pytest.mark.parametrize("route", ["api", "dashboard"])
def test_a_client_that_stops_reading_is_cut_off_and_the_server_reads_no_further(
        server, synced, alice, route):
    (attachment,) = synced.client.get(
        f"/v1/account/box/message/{synced.ids[0]}").json()["attachments"]
    if route == "api":
        path, credential = f"/v1/account/box/attachment/{attachment['id']}", \
            f"Authorization: Bearer {alice.token}"
    else:
        path, credential = f"/dashboard/mailboxes/box/attachments/{attachment['id']}", \
            _signed_in(alice)

    sock, status, headers, rest = _get(server, credential, path, rcvbuf=4096)
    assert status == 200
    assert headers["transfer-encoding"] == "chunked"  # base64 in the message: size unknown
    wait_for(lambda: CUT_OFF in server.log(), timeout=60)
    received = _rest(sock, rest)
    assert len(received) < SIZE // 2  # what the sockets held, not the attachment
    assert not received.endswith(b"0\r\n\r\n")  # cut off: its last chunk never came

    # Its mail server connection (the only one) was given back: the next client gets it all.
    sock, status, headers, rest = _get(server, credential, path)
    assert status == 200
    assert _unchunked(_rest(sock, rest)) == random.Random(7).randbytes(SIZE)


def _unchunked(body: bytes) -> bytes:
    """A chunked body's content (its last chunk must be there: the whole was sent)."""
    out, position = bytearray(), 0
    while True:
        end = body.index(b"\r\n", position)
        size = int(body[position:end].split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += body[end + 2:end + 2 + size]
        position = end + 2 + size + 2
