"""EmailEngine's account flush (``PUT /v1/account/{account}/flush``): forget an account's index
and build it again from the server.

The folders and messages indexed for the account are deleted, its ``notifyFrom`` is set (by
default to now, as EmailEngine's flush does, so the rebuild raises no ``messageNew`` for mail
already there) and the worker holding it is told to reconnect: the sync after login finds no
index and indexes every folder afresh, silently, like a first sync. Message ids (ours are
stored per message) change, as EmailEngine's do after a flush.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from accounts import services
from accounts.errors import AccountNotFound
from accounts.models import EmailAccount
from mailboxes.models import Folder, Message


def flush_index(email_account: EmailAccount, notify_from: datetime | None = None) -> int:
    """Delete the account's index and have it rebuilt; returns the messages forgotten."""
    with transaction.atomic():
        account = EmailAccount.objects.select_for_update().filter(pk=email_account.pk).first()
        if account is None:  # deleted meanwhile
            raise AccountNotFound(email_account.account_id)
        account.notify_from = notify_from or timezone.now()
        account.save(update_fields=["notify_from"])
        forgotten = Message.objects.filter(email_account=account).count()
        Message.objects.filter(email_account=account).delete()
        Folder.objects.filter(email_account=account).delete()
    services.request_reconnect(account)  # announced once this commits
    return forgotten
