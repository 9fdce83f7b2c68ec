"""The bounces recorded for messages (EmailEngine's ``bounces`` of a message): those the sync
found in bounce reports (``mailboxes.sync.index`` writes ``Bounce`` rows), matched by the
original's Message-ID within its account.

EmailEngine puts ``bounces`` on every message it describes, in a listing as in a message read.
A message read asks for its own; a listing asks once for its page. Both ask nothing of an
account that never had a bounce (``EmailAccount.has_bounces``): most never do, and the query
was a quarter of a message read's time.
"""

from __future__ import annotations

from collections.abc import Iterable

from emailapi.lib.timestamps import utc_iso
from mailboxes.models import Bounce


def of_messages(account_pk: int, message_ids: Iterable[str]) -> dict[str, list[dict]]:
    """Message-ID -> its bounces, oldest first, for those of ``message_ids`` that have any
    (one query; none for no ids)."""
    wanted = {message_id for message_id in message_ids if message_id}
    if not wanted:
        return {}
    found: dict[str, list[dict]] = {}
    rows = Bounce.objects.filter(email_account_id=account_pk, message_id__in=wanted) \
        .order_by("created_at", "pk")
    for row in rows:
        bounce = {"message": row.bounce_message, "recipient": row.recipient,
                  "action": row.action}
        if row.response_message or row.response_status:
            bounce["response"] = {
                **({"message": row.response_message} if row.response_message else {}),
                **({"status": row.response_status} if row.response_status else {})}
        bounce["date"] = utc_iso(row.created_at)
        found.setdefault(row.message_id, []).append(bounce)
    return found


def of_message(account_pk: int, has_bounces: bool, message_id: str) -> list[dict]:
    """One message's bounces (``[]`` without a Message-ID, or in an account without any:
    without a query)."""
    if not has_bounces or not message_id:
        return []
    return of_messages(account_pk, [message_id]).get(message_id, [])


def on_page(account_pk: int, has_bounces: bool, messages: list[dict]) -> list[dict]:
    """A listing's summaries, each with its ``bounces`` when it has any: new dicts for those,
    the others as they are (a summary may be shared by a memo of listed rows, never
    changed)."""
    if not has_bounces or not messages:
        return messages
    found = of_messages(account_pk, (message.get("messageId") for message in messages))
    if not found:
        return messages
    return [{**message, "bounces": found[message["messageId"]]}
            if message.get("messageId") in found else message for message in messages]
