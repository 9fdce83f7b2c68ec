"""What a send with ``listId`` (EmailEngine's mailing-list send, one recipient a message, as
a mail merge makes them) does.

A recipient on the list's blocklist (``mailboxes.blocklists``) is skipped: nothing is queued
and the answer says ``skipped: {reason, listId}``. Otherwise the message gets a Message-ID now
(the unsubscribe link names it) and the headers mail clients act on::

    List-ID: <{listId}.{the service URL's host}>
    List-Unsubscribe: <{service URL}/unsubscribe?data=..&sig=..>
    List-Unsubscribe-Post: List-Unsubscribe=One-Click          (RFC 8058)

and its subject, text, HTML and preview text are rendered (Handlebars) with
``{{rcpt.name}}``, ``{{rcpt.address}}`` and ``{{rcpt.unsubscribeUrl}}`` beside the
``params``, ``account`` and ``service`` values of ``mailboxes.templates``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from accounts.models import EmailAccount
from mailboxes import blocklists, compose, unsubscribe

LIST_HEADERS = ("List-ID", "List-Unsubscribe", "List-Unsubscribe-Post")


def prepared(account: EmailAccount, data: dict, service_url: str,
             blocked: dict | None = None) -> tuple[dict, dict | None]:
    """``(data, None)``: the send's fields with the list's headers, its Message-ID and
    the ``rcpt`` values its rendering sees; or ``(data, skipped)`` when its one recipient is
    on the list's blocklist. ``blocked``: the list's entries for a mail merge's recipients
    (``blocklists.blocked_among``), read once for all of them; otherwise read here."""
    list_id = data["listId"]
    recipient = data["to"][0]
    entry = blocklists.blocked(account.tenant_id, list_id, recipient["address"]) \
        if blocked is None else blocked.get(blocklists.normalized(recipient["address"]))
    if entry is not None:
        return data, {"reason": entry.reason, "listId": list_id}
    sender = (data.get("from") or {}).get("address") or account.email or ""
    message_id = compose.message_id_header(data.get("messageId"), sender)
    url = unsubscribe.link(service_url, account.tenant_id, account.account_id, list_id,
                           recipient["address"], message_id)
    own = {name: value for name, value in (data.get("headers") or {}).items()
           if name.lower() not in {header.lower() for header in LIST_HEADERS}}
    headers = {**own, "List-ID": f"<{list_id}.{urlsplit(service_url).hostname or 'localhost'}>",
               "List-Unsubscribe": f"<{url}>",
               "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    rcpt = {"name": recipient.get("name") or "", "address": recipient["address"],
            "unsubscribeUrl": url}
    return {**data, "messageId": message_id, "headers": headers, "rcpt": rcpt}, None
