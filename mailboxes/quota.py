"""A mailbox's storage quota as EmailEngine reports it (``GET /v1/account/{account}?quota=true``):
``{"usage": bytes, "limit": bytes, "status": "53%"}``, or ``False`` when the server tells none.

Asked of the mail server at the time of the request (a pooled command connection), never kept:
a quota changes with every message. A server that cannot be asked now (down, refusing the
login) gives ``False`` too, as one without QUOTA does: the account's ``state`` and
``lastError`` say why (the answer is read after the attempt), and the rest of the account's
answer does not depend on it. A paused account (``imap.disabled``) is not asked: ``False``.
"""

from __future__ import annotations

from accounts.models import EmailAccount
from mailboxes.command_pool import pool
from mailboxes.errors import MailboxUnavailable, ServerRefused


def storage_quota(account: EmailAccount) -> dict | bool:
    if account.paused or not account.imap:  # IMAP is off for a paused account: not asked
        return False
    try:
        with pool.session(account) as session:
            found = session.storage_quota()
    except (MailboxUnavailable, ServerRefused):
        return False
    if found is None:
        return False
    usage, limit = found
    return {"usage": usage, "limit": limit, "status": f"{round(usage * 100 / limit)}%"}
