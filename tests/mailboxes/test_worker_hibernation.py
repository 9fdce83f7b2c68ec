"""New mail that lands as Dovecot hands an idling session to imap-hibernate is still announced
within seconds (README "The IMAP engine": ``EMAILAPI_IDLE_RECHECK``).

Dovecot moves a session that has been in IDLE for ``imap_hibernate_timeout`` to its
imap-hibernate process. A change that lands in the half second before the hand-over is never
reported to the session: it stays hibernated, silent, until the mailbox changes again or the
client sends a command. The worker therefore syncs the watched folder once more
``IMAP_IDLE_RECHECK`` seconds into an IDLE that follows a change.
"""

from __future__ import annotations

import time

import pytest

from mailboxes.models import Folder
from tests.mailboxes.helpers import events_of, register
from tests.mailboxes.test_worker import connected
from tests.servers import seed
from tests.servers.dovecot import Dovecot

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("fast_worker_settings")]

HIBERNATE_AFTER = 2.0  # the server's imap_hibernate_timeout, seconds
HIBERNATION = f"""
imap_hibernate_timeout = {HIBERNATE_AFTER:.0f}s
service imap {{
  unix_listener imap-master {{
    user = $default_internal_user
  }}
}}
service imap-hibernate {{
  unix_listener imap-hibernate {{
    mode = 0660
    user = $default_internal_user
    group = $default_internal_group
  }}
}}
"""


@pytest.fixture(scope="module")
def hibernating_dovecot():
    server = Dovecot(extra_config=HIBERNATION).start()
    yield server
    server.stop()


def announced(account, subject: str):
    return [e for e in events_of(account, "messageNew") if e.data.get("subject") == subject]


def test_mail_landing_as_the_session_hibernates_is_announced(alice, hibernating_dovecot,
                                                             driven_worker, settings):
    settings.IMAP_POLL_INTERVAL = 3600  # only IDLE or the recheck can announce it
    settings.IMAP_IDLE_RECHECK = 4
    settings.IMAP_NOTIFY = False  # Dovecot never hibernates a session with NOTIFY
    user = hibernating_dovecot.add_user()
    account = register(alice.tenant, user)
    worker = driven_worker()
    connected(worker, account)
    appender = user.imap_client()
    timed = 0
    for attempt in range(4):
        # A change first: the session leaves IDLE, syncs, and idles again from a known time.
        appender.append("INBOX", seed.make_message(subject=f"first {attempt}"))
        worker.until(lambda a=attempt: announced(account, f"first {a}")
                     and worker.idle(account.pk))
        idle_since = worker.slots[account.pk].conn.idle_since
        # The next message lands in the half second before imap-hibernate takes the session
        # over, where Dovecot never reports it (the moment is what is tested: a wait for a
        # time, not for a condition). A loaded machine may miss the moment: counted.
        land_at = idle_since + HIBERNATE_AFTER - 0.25
        time.sleep(max(0.0, land_at - time.monotonic()))
        late = time.monotonic() - land_at
        appender.append("INBOX", seed.make_message(subject=f"second {attempt}"))
        timed += late < 0.15
        event = worker.until(lambda a=attempt: announced(account, f"second {a}"),
                             timeout=settings.IMAP_IDLE_RECHECK + 10)
        assert len(event) == 1
    appender.logout()
    assert timed  # at least one message landed in the hand-over's blind spot


def test_a_change_gets_one_more_sync_into_the_idle(alice, mail_user, driven_worker, settings):
    settings.IMAP_POLL_INTERVAL = 3600
    settings.IMAP_IDLE_RECHECK = 2
    account = register(alice.tenant, mail_user)
    worker = driven_worker()
    connected(worker, account)
    seed.seed_mailbox(mail_user, messages=[seed.make_message(subject="Live one")])
    worker.until(lambda: announced(account, "Live one"))
    worker.until(lambda: worker.idle(account.pk))
    synced = Folder.objects.get(email_account=account, path="INBOX").last_synced_at

    worker.until(lambda: Folder.objects.get(email_account=account, path="INBOX")
                 .last_synced_at > synced, timeout=settings.IMAP_IDLE_RECHECK + 10)
    assert len(events_of(account, "messageNew")) == 1
