"""No move loses a message: the COPY + EXPUNGE fallback (servers without MOVE), whole and
killed halfway, against real Dovecot."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mailboxes import ids, listing, message_writes
from mailboxes.sync.account import sync_account
from tests.mailboxes.helpers import events_of, server_subjects
from tests.servers import seed

pytestmark = pytest.mark.django_db

# A process that moves one message the fallback way and is killed (SIGKILL, no cleanup)
# after the COPY, before the STORE \Deleted + UID EXPUNGE.
KILLED_MOVE = textwrap.dedent("""
    import json, os, signal, sys
    import imapclient
    from mailboxes.imap import message_ops

    args = json.loads(sys.argv[1])
    client = imapclient.IMAPClient(args["host"], port=args["port"], ssl=False)
    client.login(args["user"], args["password"])
    client.select_folder("INBOX")
    message_ops.expunge = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
    message_ops.move(client, [args["uid"]], "Archive", use_move=False)
    print("not killed")
""")


@pytest.fixture
def inbox_messages():
    return [seed.make_message(subject="Keep me"), seed.make_message(subject="Other")]


@pytest.fixture
def before_sync():
    def mark_deleted(mail_user, uids):
        with mail_user.imap_client() as other:  # someone else's \Deleted mark: must survive
            other.select_folder("INBOX")
            other.add_flags([uids[1]], [b"\\Deleted"])
    return mark_deleted


def test_the_fallback_move_expunges_only_its_own_uid(alice, synced, mail_user):
    account, session, uids = synced.account, synced.session, synced.uids
    folder, row = listing.message_by_id(account, ids.message_id_for(
        listing.folder_for_path(account, "INBOX"), uids[0]))
    target = message_writes.destination(account, "Archive")
    transfer, _ = message_writes._transfer(account, folder, [row.uid], target,
                                           keep_source=False, use_move=False)
    assert list(transfer.uid_map) == [uids[0]]
    assert server_subjects(mail_user, "Archive") == ["Keep me"]
    assert server_subjects(mail_user, "INBOX") == ["Other"]  # marked \Deleted, still there
    sync_account(session, account)
    assert [e.event for e in events_of(account) if e.event.startswith("message")] == \
        ["messageMoved"]


def test_a_move_killed_between_copy_and_expunge_loses_nothing(alice, synced, mail_user):
    account, session, uids = synced.account, synced.session, synced.uids
    args = json.dumps({"host": mail_user.host, "port": mail_user.imap_port,
                       "user": mail_user.username, "password": mail_user.password,
                       "uid": uids[0]})
    child = subprocess.run([sys.executable, "-c", KILLED_MOVE, args], capture_output=True,
                           timeout=60, cwd=str(Path(__file__).parents[2]))
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    assert server_subjects(mail_user, "Archive") == ["Keep me"]  # copied...
    assert server_subjects(mail_user, "INBOX") == ["Keep me", "Other"]  # ...and not yet removed
    sync_account(session, account)  # the index converges on what the server holds
    inbox = alice.client.get("/v1/account/box/messages?path=INBOX").json()["messages"]
    archive = alice.client.get("/v1/account/box/messages?path=Archive").json()["messages"]
    assert sorted(m["subject"] for m in inbox) == ["Keep me", "Other"]
    assert [m["subject"] for m in archive] == ["Keep me"]
