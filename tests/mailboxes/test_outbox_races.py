"""A cancel of a queued message racing the delete of its account (real PostgreSQL, two
request threads): the cancel finds the entry gone and answers 404, never a 500.

The race is made certain: the test holds the entry's row locked (its own connection), the
account's delete queues for that lock first, then the cancel reads the entry (the delete has
not committed) and queues behind it; the test lets go once both wait."""

from __future__ import annotations

import pytest

from mailboxes.models import OutboxEntry
from tests.base import api_client, queued_behind, side_connection
from tests.mailboxes.sending_helpers import queue

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_cancel_meeting_the_accounts_delete_is_not_found(alice, account):
    entry = queue(account)
    lock = side_connection("test-outbox-lock")
    lock.execute("SELECT 1 FROM mailboxes_outboxentry WHERE id = %s FOR UPDATE", [entry.pk])
    deleted, cancelled = queued_behind(lock, [  # a client each: one per thread
        lambda: api_client(alice.token).delete("/v1/account/box").status_code,
        lambda: api_client(alice.token).delete(f"/v1/outbox/{entry.queue_id}").status_code])
    assert (deleted, cancelled) == (200, 404)
    assert not OutboxEntry.objects.filter(pk=entry.pk).exists()
