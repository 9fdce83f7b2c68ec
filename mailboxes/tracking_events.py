"""What a tracked message's reader does: opening it (``trackOpen``) and following one of its
links (``trackClick``), EmailEngine's events, data ``{messageId, remoteAddress, userAgent}``
(and ``url`` for a click), recorded in the event outbox as every event is.

The link (``mailboxes.tracking``) names the tenant and the account. An account deleted since
(or of a tenant deleted since) records nothing, as EmailEngine drops the events of accounts
that no longer exist; the reader still gets the image or the redirect. Every fetch records
one event: nothing is counted once per reader, as in EmailEngine. But a scanner's fetch
(``mailboxes.automated_fetches``: Google's crawlers, hosts named Barracuda's or SPFBL's) records
nothing, as EmailEngine leaves those out, and is only logged.
"""

from __future__ import annotations

import logging

from django.db import transaction

from accounts.models import EmailAccount
from mailboxes import automated_fetches
from mailboxes.tracking import CLICK, OPEN
from webhooks import events

NAMES = {OPEN: events.TRACK_OPEN, CLICK: events.TRACK_CLICK}
MAX_USER_AGENT = 1024  # what an unauthenticated request may write into an event

logger = logging.getLogger(__name__)


def record(kind: str, link: dict, remote_address: str, user_agent: str) -> bool:
    """One ``trackOpen`` (``kind`` open) or ``trackClick`` for ``link`` (as
    ``tracking.read`` returns it); False, and nothing recorded, when its account is gone or
    the fetch is a scanner's. The scanner check (a reverse DNS lookup, bounded) comes before
    any query of this function's own."""
    data = {"messageId": link["message"]}
    if kind == CLICK:
        data["url"] = link["url"]
    data.update({"remoteAddress": remote_address, "userAgent": user_agent[:MAX_USER_AGENT]})
    if automated_fetches.skipped(remote_address):
        logger.info("Detected automated request from %s (%r): %s of %s, account %s of tenant %s,"
                    " not recorded", remote_address, data["userAgent"], NAMES[kind],
                    link["message"], link["account"], link["tenant"])
        return False
    with transaction.atomic():
        if not EmailAccount.objects.filter(tenant_id=link["tenant"],
                                           account_id=link["account"]).exists():
            return False
        events.record(link["tenant"], NAMES[kind], link["account"], data)
    return True
