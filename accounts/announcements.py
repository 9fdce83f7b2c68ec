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


def announce(account: EmailAccount, action: str) -> None:
    """Publish ``action`` for ``account`` once the current transaction commits."""
    message = json.dumps({"tenant": account.tenant_id, "account": account.account_id,
                          "id": account.pk, "action": action})

    def publish() -> None:
        try:
            get_redis().publish(account_changes_channel(), message)
        except Exception as exc:  # noqa: BLE001 - Redis is a hint here, not the record
            logger.warning("could not announce account change: %s", exc)

    transaction.on_commit(publish)
