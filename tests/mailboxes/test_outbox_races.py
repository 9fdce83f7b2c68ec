"""A cancel of a queued message racing the delete of its account (real PostgreSQL, two
request threads): the cancel finds the entry gone and answers 404, never a 500.

The race is made certain: the test holds the entry's row locked (its own connection), the
account's delete queues for that lock first, then the cancel reads the entry (the delete has
not committed) and queues behind it; the test lets go once both wait."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from mailboxes.models import OutboxEntry
from tests.base import api_client, sessions_waiting_on_a_lock, side_connection, wait_for
from tests.mailboxes.sending_helpers import queue

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_cancel_meeting_the_accounts_delete_is_not_found(alice, account):
    entry = queue(account)
    lock = side_connection("test-outbox-lock")
    lock.execute("SELECT 1 FROM mailboxes_outboxentry WHERE id = %s FOR UPDATE", [entry.pk])
    answers: dict[str, int] = {}

    def call(name, method, path):
        try:
            answers[name] = getattr(api_client(alice.token), method)(path).status_code
        finally:
            connection.close()

    deleting = threading.Thread(target=call, args=("delete", "delete", "/v1/account/box"))
    cancelling = threading.Thread(target=call, args=("cancel", "delete",
                                                     f"/v1/outbox/{entry.queue_id}"))
    try:
        deleting.start()
        wait_for(lambda: sessions_waiting_on_a_lock() >= 1, timeout=10)
        cancelling.start()
        wait_for(lambda: sessions_waiting_on_a_lock() >= 2, timeout=10)
    finally:
        lock.rollback()
        lock.close()
        for thread in (deleting, cancelling):
            thread.join(timeout=60)
    assert answers == {"delete": 200, "cancel": 404}
    assert not OutboxEntry.objects.filter(pk=entry.pk).exists()
