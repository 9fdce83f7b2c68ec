"""The first index's progress on the account: ``{indexed, total, complete}`` while history fills
in behind a ``connected`` account, against real Dovecot and PostgreSQL.

The worker is held in the middle of its history (a gate around the index writer's batches,
opened by the test), so the half-way figures are observed for certain, without sleeping."""

from __future__ import annotations

import threading

import pytest

from accounts.models import EmailAccount
from mailboxes.sync import index
from tests.mailboxes.helpers import events_of, register
from tests.servers import seed

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("fast_worker_settings")]

MESSAGES = 12


@pytest.fixture
def history_gate(monkeypatch):
    """Holds the worker after the 4th batch of silent history (2 messages each) is committed,
    until the test sets ``release``."""
    reached, release = threading.Event(), threading.Event()
    batches = []
    original = index.add_messages

    def gated(folder, metas, notify, *args, **kwargs):
        rows = original(folder, metas, notify, *args, **kwargs)
        if not notify:
            batches.append(len(rows))
            if len(batches) == 4:
                reached.set()
                release.wait(timeout=60)
        return rows

    monkeypatch.setattr(index, "add_messages", gated)
    return reached, release


def progress_of(client, account_id: str) -> tuple[dict, dict]:
    """(the account, its row in the list), as GET /v1/account/{id} and /v1/accounts say."""
    detail = client.get(f"/v1/account/{account_id}").json()
    [listed] = [a for a in client.get("/v1/accounts").json()["accounts"]
                if a["account"] == account_id]
    return detail, listed


def test_progress_counts_history_behind_a_connected_account(alice, mail_user, driven_worker,
                                                            history_gate, monkeypatch):
    from mailboxes.sync import folder as folder_sync
    from mailboxes.worker import connection

    monkeypatch.setattr(folder_sync, "FIRST_BATCH", 2)
    monkeypatch.setattr(folder_sync, "BATCH", 2)
    monkeypatch.setattr(connection, "BACKFILL_SLICE", 1)
    reached, release = history_gate
    seed.seed_mailbox(mail_user, messages=[seed.make_message(subject=f"old {n}")
                                           for n in range(MESSAGES)])
    account = register(alice.tenant, mail_user)
    detail, listed = progress_of(alice.client, "box")
    assert detail["indexProgress"] == {"indexed": 0, "total": 0, "complete": False}
    assert listed["indexProgress"] == detail["indexProgress"]

    worker = driven_worker()
    worker.claim()
    try:
        # The first sync pass indexes 2 + 2 messages and goes connected; history goes on in
        # the background, and the gate holds it after its 4th batch: 8 of 12 indexed.
        worker.until(reached.is_set)
        detail, listed = progress_of(alice.client, "box")
        assert detail["state"] == "connected"
        assert detail["initialized"] is None
        assert detail["indexProgress"] == {"indexed": 8, "total": MESSAGES, "complete": False}
        assert listed["indexProgress"] == detail["indexProgress"]
        assert not events_of(account, "accountInitialized")
    finally:
        release.set()
    worker.until(lambda: events_of(account, "accountInitialized"), timeout=20)
    detail, listed = progress_of(alice.client, "box")
    assert detail["indexProgress"] == {"indexed": MESSAGES, "total": MESSAGES, "complete": True}
    assert listed["indexProgress"] == detail["indexProgress"]
    assert detail["initialized"] is not None
    [initialized] = events_of(account, "accountInitialized")
    assert initialized.data["messages"] == MESSAGES
    assert EmailAccount.objects.get(pk=account.pk).state == "connected"
