"""The unsubscribe link of a list message, and what its recipient does with it.

A send with ``listId`` carries ``List-Unsubscribe: <{service URL}/unsubscribe?data=..&sig=..>``
(``mailboxes.list_sends``). The link holds the tenant, account, list, recipient and
Message-ID in the clear, signed with ``django.core.signing`` under its own salt (the key is
derived from ``EMAILAPI_SECRET``): nobody can change whom or which list it names. It does not
expire: an unsubscribe must keep working as long as the message is read.

Following it, the recipient unsubscribes (the page's button, or a mail client's one-click POST
of RFC 8058) or subscribes again; each change is a ``listUnsubscribe`` or ``listSubscribe``
event (EmailEngine's, data ``{recipient, messageId, listId, remoteAddress, userAgent}``),
recorded in the transaction that makes it. Doing it twice changes nothing and raises no
second event.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.core import signing
from django.db import transaction

from accounts.errors import LinkIncomplete, LinkInvalid, LinkSignatureInvalid
from accounts.models import Tenant
from mailboxes import blocklists
from webhooks import events

SALT = "emailapi.unsubscribe"
MAX_DATA = 8192
PATH = "/unsubscribe"


def link(service_url: str, tenant_id: int, account_id: str, list_id: str, recipient: str,
         message_id: str) -> str:
    payload = {"t": tenant_id, "a": account_id, "l": list_id, "r": recipient, "m": message_id}
    data, sig = signing.dumps(payload, salt=SALT, compress=True).split(":", 1)
    return f"{service_url.rstrip('/')}{PATH}?{urlencode({'data': data, 'sig': sig})}"


def read(data: str | None, sig: str | None) -> dict:
    """The link's ``{tenant, account, list, recipient, message}``; ``LinkInvalid`` (or a
    subclass) for one we did not make, or whose tenant is gone."""
    if not data or not sig or len(data) > MAX_DATA or len(sig) > 100:
        raise LinkIncomplete()
    try:
        payload = signing.loads(f"{data}:{sig}", salt=SALT)
    except signing.BadSignature:
        raise LinkSignatureInvalid() from None
    except ValueError:  # signed by us, yet not our JSON: cannot happen short of a key leak
        raise LinkInvalid() from None
    tenant = Tenant.objects.filter(pk=payload.get("t")).first()
    if tenant is None:
        raise LinkInvalid()
    return {"tenant": tenant, "account": payload["a"], "list": payload["l"],
            "recipient": payload["r"], "message": payload["m"]}


def is_unsubscribed(link_payload: dict) -> bool:
    return blocklists.blocked(link_payload["tenant"], link_payload["list"],
                              link_payload["recipient"]) is not None


def unsubscribe(link_payload: dict, source: str, remote_address: str, user_agent: str) -> bool:
    """Put the link's recipient on its list; True (and ``listUnsubscribe``) when it was
    not on it."""
    with transaction.atomic():
        added = blocklists.add(
            link_payload["tenant"], link_payload["list"], link_payload["recipient"],
            link_payload["account"], source=source, reason="unsubscribe",
            message_id=link_payload["message"], remote_address=remote_address,
            user_agent=user_agent)
        if added:
            _record(events.LIST_UNSUBSCRIBE, link_payload, remote_address, user_agent)
    return added


def subscribe(link_payload: dict, remote_address: str, user_agent: str) -> bool:
    """Take the link's recipient off its list; True (and ``listSubscribe``) when it was
    on it."""
    with transaction.atomic():
        removed = blocklists.remove(link_payload["tenant"], link_payload["list"],
                                    link_payload["recipient"])
        if removed:
            _record(events.LIST_SUBSCRIBE, link_payload, remote_address, user_agent)
    return removed


def _record(event: str, link_payload: dict, remote_address: str, user_agent: str) -> None:
    events.record(link_payload["tenant"], event, link_payload["account"], {
        "recipient": link_payload["recipient"], "messageId": link_payload["message"],
        "listId": link_payload["list"], "remoteAddress": remote_address,
        "userAgent": user_agent})
