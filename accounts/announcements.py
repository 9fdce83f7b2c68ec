"""Telling the IMAP workers at once that a mailbox changed (added, updated, paused, deleted...).

The message goes out on a Redis pub/sub channel after the change commits. It is a hint, not the
record: workers also poll the database, so a lost message only delays them.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.db import transaction

from accounts.models import EmailAccount
from emailapi.lib.redis import get_redis

logger = logging.getLogger(__name__)


def account_changes_channel() -> str:
    """Redis pub/sub channels ignore the database number, so the name carries a prefix that
    separates deployments (and test runs) sharing one Redis."""
    return f"{settings.EMAILAPI_REDIS_PREFIX}:account-changes"


# Announcements published per Redis round trip by ``announce_many``.
BATCH = 1000


def _message(account: EmailAccount, action: str) -> str:
    return json.dumps({"tenant": account.tenant_id, "account": account.account_id,
                       "id": account.pk, "action": action})


def announce(account: EmailAccount, action: str) -> None:
    """Publish ``action`` for ``account`` once the current transaction commits."""
    announce_many([account], action)


def announce_many(accounts, action: str) -> None:
    """Publish ``action`` for each of ``accounts`` once the current transaction commits, a
    thousand to a Redis round trip: a tenant's change (its proxy, its plan) can concern
    10,000 accounts, and one ``PUBLISH`` each is 10,000 round trips and as many commit
    callbacks."""
    messages = [_message(account, action) for account in accounts]
    if not messages:
        return

    def publish() -> None:
        try:
            redis, channel = get_redis(), account_changes_channel()
            for start in range(0, len(messages), BATCH):
                pipe = redis.pipeline(transaction=False)
                for message in messages[start:start + BATCH]:
                    pipe.publish(channel, message)
                pipe.execute()
        except Exception as exc:  # noqa: BLE001 - Redis is a hint here, not the record
            logger.warning("could not announce account change: %s", exc)

    transaction.on_commit(publish)
