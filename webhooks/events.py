"""Recording events into the outbox (``webhooks.models.Event``).

Call ``record`` inside the transaction that makes the change the event describes.
"""

from __future__ import annotations

from typing import Any

from webhooks.models import Event

ACCOUNT_ADDED = "accountAdded"
ACCOUNT_DELETED = "accountDeleted"


def record(tenant, event: str, account: str = "", data: dict[str, Any] | None = None) -> Event:
    return Event.objects.create(tenant=tenant, account=account, event=event, data=data or {})
