"""Helpers for engine tests: register a Dovecot user as an account, open a session, read the
outbox."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from rest_framework.test import APIClient

from accounts import services
from accounts.models import EmailAccount
from mailboxes.imap import client as imap
from mailboxes.imap.session import ImapSession
from webhooks.models import Event


def register(tenant, user, account_id: str = "box", **extra) -> EmailAccount:
    imap_settings = user.imap_settings(secure=False)
    imap_settings["tls"] = {"rejectUnauthorized": False}
    return services.register_account(tenant, {"account": account_id, "imap": imap_settings,
                                               **extra})


def open_session(account: EmailAccount) -> ImapSession:
    return ImapSession(imap.connect(services.account_imap_settings(account)))


def events_of(account: EmailAccount, *kinds: str) -> list[Event]:
    rows = Event.objects.filter(tenant_id=account.tenant_id, account=account.account)
    if kinds:
        rows = rows.filter(event__in=kinds)
    return list(rows.order_by("created_at"))


@dataclass
class SyncedMailbox:
    """A registered account (id ``box``) whose seeded INBOX a first sync indexed (the
    ``synced`` fixture). ``seeded`` is what was seeded: a list, or a dict by name."""

    account: EmailAccount
    session: ImapSession  # still logged in; logged out at the end of the test
    uids: list[int]  # the seeded messages' INBOX UIDs, in seeding order
    seeded: list | dict
    client: APIClient

    @property
    def uid_of(self) -> dict[str, int]:
        """UID by name (when ``seeded`` is a dict)."""
        return dict(zip(self.seeded, self.uids, strict=True))

    def listing(self) -> list[dict]:
        """``GET .../messages`` of INBOX now (every message on one page)."""
        url = f"/v1/account/{self.account.account}/messages?path=INBOX&pageSize=100"
        return self.client.get(url).json()["messages"]

    @cached_property
    def ids(self) -> list[str]:
        """The seeded messages' API ids, in seeding order."""
        id_by_uid = {m["uid"]: m["id"] for m in self.listing()}
        return [id_by_uid[uid] for uid in self.uids]

    @property
    def id_of(self) -> dict[str, str]:
        """API id by name (when ``seeded`` is a dict)."""
        return dict(zip(self.seeded, self.ids, strict=True))
