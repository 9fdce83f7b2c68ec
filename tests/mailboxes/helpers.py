"""Helpers for engine tests: register a Dovecot user as an account, open a session, read the
outbox."""

from __future__ import annotations

from accounts import services
from accounts.models import EmailAccount
from mailboxes import connection_settings
from mailboxes.imap import client as imap
from mailboxes.imap.session import ImapSession
from webhooks.models import Event


def register(tenant, user, account_id: str = "box", **extra) -> EmailAccount:
    imap_settings = user.imap_settings(secure=False)
    imap_settings["tls"] = {"rejectUnauthorized": False}
    return services.register_account(tenant, {"account": account_id, "imap": imap_settings,
                                               **extra})


def open_session(account: EmailAccount) -> ImapSession:
    return ImapSession(imap.connect(connection_settings.account_imap_settings(account)))


def events_of(account: EmailAccount, *kinds: str) -> list[Event]:
    rows = Event.objects.filter(tenant_id=account.tenant_id, account_id=account.account_id)
    if kinds:
        rows = rows.filter(event__in=kinds)
    return list(rows.order_by("created_at"))
