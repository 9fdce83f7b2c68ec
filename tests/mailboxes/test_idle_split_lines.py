"""A line the server sends during IDLE split across two TLS records is read whole.

imapclient's ``idle_check`` reads in non-blocking mode: when the second record has not arrived
yet, the TLS layer's "want read" makes Python's buffered reader drop the half line it had, and
the rest ("CENT") then reads as a protocol violation, which cost the mailbox a reconnect.
Dovecot cannot be made to split a line on purpose, so a few lines of a TLS IMAP server here
do (greeting, CAPABILITY, LOGIN, IDLE; then the split line)."""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time

from mailboxes.imap import client as imap
from mailboxes.imap.session import idle_responses
from tests.servers.tls import server_context, write_self_signed_cert


def _serve_once(listener: socket.socket, context: ssl.SSLContext, sent: threading.Event) -> None:
    raw, _ = listener.accept()
    conn = context.wrap_socket(raw, server_side=True)
    reader = conn.makefile("rb")
    conn.sendall(b"* OK [CAPABILITY IMAP4rev1 IDLE AUTH=PLAIN] split test server\r\n")
    idle_tag = b"*"
    while line := reader.readline():
        tag, _, command = line.strip().partition(b" ")
        verb = command.split(b" ", 1)[0].upper()
        if verb == b"CAPABILITY":
            conn.sendall(b"* CAPABILITY IMAP4rev1 IDLE AUTH=PLAIN\r\n" + tag + b" OK done\r\n")
        elif verb == b"LOGIN":
            conn.sendall(tag + b" OK logged in\r\n")
        elif verb == b"IDLE":
            idle_tag = tag
            conn.sendall(b"+ idling\r\n")
            conn.sendall(b"* 3 EXISTS\r\n* 1 RE")  # one TLS record, ending mid-line ...
            time.sleep(0.3)
            conn.sendall(b"CENT\r\n")  # ... and the rest of the line in the next one
            sent.set()
        elif line.strip() == b"DONE":
            conn.sendall(idle_tag + b" OK idle done\r\n")
        if verb == b"LOGOUT":
            conn.sendall(b"* BYE\r\n" + tag + b" OK bye\r\n")
            break
    conn.close()


def test_a_line_split_across_tls_records_during_idle_is_read_whole(tmp_path):
    cert, key = write_self_signed_cert(str(tmp_path))
    listener = socket.create_server(("127.0.0.1", 0))
    sent = threading.Event()
    server = threading.Thread(target=_serve_once, daemon=True,
                              args=(listener, server_context(cert, key), sent))
    server.start()
    client = imap.connect(imap.ImapSettings(
        host="127.0.0.1", port=listener.getsockname()[1], secure=True, user="u",
        password="p", tls_verify=False, timeout=10, allow_private=True))
    try:
        client.idle()
        assert select.select([client.socket()], [], [], 5)[0], "nothing came during IDLE"
        responses = idle_responses(client)  # the first record is there, the second is not
        if len(responses) < 2:  # (on a slow machine only the first line may be in yet)
            sent.wait(5)
            responses += idle_responses(client)
        assert responses == [(3, b"EXISTS"), (1, b"RECENT")]
        client.idle_done()
    finally:
        try:
            client.logout()
        except Exception:  # noqa: BLE001 - the assertion above is what counts
            client.shutdown()
        listener.close()
        server.join(timeout=5)
