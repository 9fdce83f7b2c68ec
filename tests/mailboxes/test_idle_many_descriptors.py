"""A worker holding thousands of sessions has sockets numbered above 1023: whether an idling
session has something to read is still answered at once (``select.select`` refuses such
descriptors; taken for "input waiting", every read of an IDLE then waited for its timeout)."""

from __future__ import annotations

from mailboxes.imap.session import input_waiting, start_idle
from tests.base import wait_for
from tests.servers import seed


def test_an_idle_session_on_a_high_descriptor_has_nothing_waiting(mail_user,
                                                                  descriptors_above_1023):
    client = mail_user.imap_client(starttls=True)
    assert client.socket().fileno() > 1023
    client.capabilities()
    client.select_folder("INBOX", readonly=True)
    start_idle(client)
    assert not input_waiting(client)

    seed.seed_mailbox(mail_user, messages=[seed.make_message(subject="wakes it")])
    wait_for(lambda: input_waiting(client), timeout=10)
    client.shutdown()
