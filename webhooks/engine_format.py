"""Events in EmailEngine's shape, for subscriptions with ``format: emailengine``.

``webhooks.payloads.engine_events`` turns one of our events into EmailEngine's (a move is
``messageDeleted`` + ``messageNew`` there); this module adds what needs the database or the
mail server, at delivery time: the envelope's ``serviceUrl`` and ``specialUse``, and for
``messageNew`` the fields EmailEngine adds (``specialUse``, ``messageSpecialUse``,
``seemsLikeNew``, ``isAutoReply``, and with the tenant's ``notifyText``/``notifyHeaders``
settings the text (web-safe with ``notifyWebSafeHtml``) and headers, read from the server like
``GET .../message/{id}`` does, with ``notifyAttachments`` each attachment's content up to
``notifyAttachmentSize``, with ``notifyCalendarEvents`` the ``calendarEvents`` of its calendar
parts; a message gone from the server by then, or a calendar part the parser fails on, is
sent without them); before
``accountInitialized``, a ``mailboxNew`` for each folder, as EmailEngine's first sync announces
them.

``isAutoReply`` (EmailEngine's ``isAutoReply: true``, ``mailboxes.auto_reply``): the subject's
rules always (the event has the subject and In-Reply-To); the headers' rules (Auto-Submitted,
Precedence, X-Autoreply...) when the message is read from the server anyway, for
``notifyText`` or ``notifyHeaders``: the index keeps no other header, and an extra read per
``messageNew`` only for it would cost every webhook a round trip to the mail server.

The options are the tenant's ``webhooks.models.EngineSettings`` (``/v1/settings``) when the
subscription is its default one, EmailEngine's defaults (no text, no headers) otherwise, with
the ``serviceUrl`` setting in every case, and ``inboxNewOnly`` also for the subscriptions of
the accounts' own webhook URLs: EmailEngine applies it to its default route, whose URL is the
account's own when it has one (not to its custom routes). A messageNew it keeps out is left out
of that subscription's delivery only (the event, the stream and other subscriptions keep it).
"""

from __future__ import annotations

import base64
import logging
import uuid

from django.utils import timezone

from accounts.models import EmailAccount
from mailboxes import auto_reply, calendar_events, reading
from mailboxes.models import Folder, Message
from webhooks.models import EngineSettings, Event, WebhookSubscription
from webhooks.payloads import (
    MAILBOX_EVENTS,
    engine_date,
    engine_events,
    engine_folder_data,
    engine_payload,
)

logger = logging.getLogger(__name__)

# Folders whose new mail is not "new mail" to a user (EmailEngine: ``seemsLikeNew`` false).
NOT_NEW_IN = ("\\Sent", "\\Drafts", "\\Trash", "\\Junk")
# Largest attachment (encoded bytes) whose content messageNew carries without a
# ``notifyAttachmentSize`` setting.
DEFAULT_ATTACHMENT_SIZE = 2 * 1024 * 1024
# Largest calendar part (encoded bytes, and decoded) read for ``calendarEvents``; an invite is a
# few KB, one with hundreds of attendees some hundreds.
CALENDAR_SIZE = 2 * 1024 * 1024
INBOX = "\\Inbox"


def options_of(subscription: WebhookSubscription) -> EngineSettings:
    """The tenant's settings row (unsaved defaults if it has none); text and headers only for
    the default subscription it drives."""
    found = EngineSettings.objects.filter(tenant_id=subscription.tenant_id).first()
    if found is None:
        return EngineSettings(tenant_id=subscription.tenant_id)
    if found.subscription_id != subscription.pk:
        # inboxNewOnly stays: the renderer applies it only if this is an account's own URL.
        return EngineSettings(tenant_id=subscription.tenant_id, service_url=found.service_url,
                              inbox_new_only=found.inbox_new_only)
    return found


def in_inbox(path: str | None, special_use: str | None, data: dict) -> bool:
    """EmailEngine's test for ``inboxNewOnly`` (``workers/webhooks.js``): the folder is INBOX
    or has the \\Inbox special use, or the message's own special use or a Gmail label is
    \\Inbox."""
    return ((path or "").upper() == "INBOX" or special_use == INBOX
            or data.get("messageSpecialUse") == INBOX or INBOX in (data.get("labels") or ()))


class EngineRenderer:
    """Renders events for one subscription; folder lookups are cached per account."""

    def __init__(self, subscription: WebhookSubscription):
        self.subscription = subscription
        self.options = options_of(subscription)
        self._folders: dict[str, dict[str, str]] = {}
        self._accounts: dict[str, EmailAccount | None] = {}
        self._default_route: bool | None = None

    def default_route(self) -> bool:
        """Whether this subscription is EmailEngine's default route: the tenant's default one
        or an account's own URL; any other is one of its custom routes (``webhooks.routes``),
        named in ``X-EE-Wh-Custom-Route`` and not subject to ``inboxNewOnly``. Asked of the
        database once per renderer, when first needed (not for every run)."""
        if self._default_route is None:
            subscription = self.subscription
            self._default_route = self.options.subscription_id == subscription.pk \
                or EmailAccount.objects.filter(tenant_id=subscription.tenant_id,
                                               webhook_subscription=subscription.pk).exists()
        return self._default_route

    def inbox_only(self) -> bool:
        """``inboxNewOnly`` for this subscription: the default route's only."""
        return self.options.inbox_new_only and self.default_route()

    def wanted(self, name: str) -> bool:
        events = self.subscription.events
        return "*" in events or name in events

    def payloads(self, event: Event) -> list[dict]:
        out = []
        parts = engine_events(event)
        if event.event == "accountInitialized":
            parts = [*self._first_folders(event.account_id), *parts]
        for name, path, data in parts:
            if not self.wanted(name):
                continue
            if name in MAILBOX_EVENTS:
                # the folder's own, from the event: a deleted folder's row is gone by now
                special_use = data.get("specialUse") or None
            else:
                special_use = self.special_use(event.account_id, path) if path else None
            if name == "messageNew":
                if self.options.inbox_new_only and self.inbox_only() \
                        and not in_inbox(path, special_use, data):
                    continue
                data = self._message_new(event.account_id, path, special_use, data)
            out.append(engine_payload(event, name, path, data,
                                      self.options.service_url or None, special_use))
        return out

    def _first_folders(self, account_id: str) -> list[tuple[str, str, dict]]:
        """EmailEngine announces every folder with ``mailboxNew`` at the first sync (ours is
        silent then): one per folder the index holds when ``accountInitialized`` goes out,
        before it."""
        account = self._account(account_id)
        if account is None:
            return []
        rows = Folder.objects.filter(email_account=account).order_by("number")
        return [("mailboxNew", folder.path, engine_folder_data({
            "path": folder.path, "name": folder.name, "specialUse": folder.special_use or None,
            "uidValidity": str(folder.uidvalidity) if folder.uidvalidity else None}))
            for folder in rows]

    def _account(self, account_id: str) -> EmailAccount | None:
        if account_id not in self._accounts:
            self._accounts[account_id] = EmailAccount.objects.filter(
                tenant_id=self.subscription.tenant_id, account_id=account_id).first()
        return self._accounts[account_id]

    def special_use(self, account_id: str, path: str) -> str | None:
        if account_id not in self._folders:
            account = self._account(account_id)
            self._folders[account_id] = dict(Folder.objects.filter(email_account=account)
                                             .values_list("path", "special_use")) \
                if account else {}
        found = self._folders[account_id].get(path)
        if not found and path.upper() == "INBOX":
            return "\\Inbox"
        return found or None

    def _message_new(self, account_id: str, path: str, special_use: str | None,
                     data: dict) -> dict:
        data = dict(data)
        data["specialUse"] = special_use
        # The message's own (a Gmail label's, in All Mail: \Sent) before its folder's.
        data["messageSpecialUse"] = data.get("messageSpecialUse") or special_use
        data["seemsLikeNew"] = self._seems_like_new(account_id, special_use, data)
        options = self.options
        account = self._account(account_id)
        if account is not None and options.notify_attachments and data.get("attachments"):
            data["attachments"] = self._with_content(account, data["attachments"])
        replied = auto_reply.is_auto_reply(data.get("subject"), data.get("inReplyTo"), None)
        if account is not None and data.get("id") and (
                options.notify_text or options.notify_headers):
            replied = self._with_text_and_headers(account, data) or replied
        if replied:
            data["isAutoReply"] = True
        if account is not None and options.notify_calendar_events and data.get("attachments"):
            try:
                found = self._calendar_events(account, data["attachments"])
            except Exception as exc:  # noqa: BLE001 - the event goes out without them
                # (raised here, the delivery run would be retried forever without counting an
                # attempt, holding up the account's later events)
                logger.info("messageNew %s: calendar events not read (%s)", data.get("id"), exc)
                found = []
            if found:
                data["calendarEvents"] = found
        return data

    def _with_text_and_headers(self, account: EmailAccount, data: dict) -> bool:
        """Put the text and headers the options ask for into *data*, read from the server
        (with every header, for the auto-reply rules); return whether the message is an
        automatic reply by all of EmailEngine's rules (False when it could not be read)."""
        options = self.options
        html = reading.HtmlOptions(web_safe=options.notify_text and options.notify_web_safe_html)
        try:
            detail = reading.message_detail(
                account, data["id"], "*", options.notify_text_size or None, False, True, html)
        except Exception as exc:  # noqa: BLE001 - the event goes out without them
            logger.info("messageNew %s: text not read (%s)", data["id"], exc)
            return False
        if options.notify_text and isinstance(detail.get("text"), dict):
            text = {key: value for key, value in detail["text"].items()
                    if value is not None}
            data["text"] = {**(data.get("text") or {}), **text}
        if options.notify_headers and detail.get("headers") is not None:
            wanted = {name.lower() for name in options.notify_headers}
            data["headers"] = {name: values for name, values in detail["headers"].items()
                               if "*" in wanted or name in wanted}
        return bool(detail.get("isAutoReply"))

    def _calendar_events(self, account: EmailAccount, attachments: list[dict]) -> list[dict]:
        """``calendarEvents`` from the message's calendar parts (``mailboxes.calendar_events``),
        each read from the server unless ``notifyAttachments`` brought it already; a part
        larger than ``CALENDAR_SIZE`` or that cannot be read gives none."""
        parts = []
        for entry in attachments:
            if not calendar_events.is_calendar(entry) or not entry.get("id") \
                    or (entry.get("encodedSize") or 0) > CALENDAR_SIZE:
                continue
            if entry.get("content"):
                parts.append((entry, base64.b64decode(entry["content"])))
                continue
            try:
                _download, content = reading.attachment_content(account, entry["id"],
                                                                CALENDAR_SIZE)
            except Exception as exc:  # noqa: BLE001 - the event goes out without it
                logger.info("messageNew calendar part %s: not read (%s)", entry["id"], exc)
                continue
            if len(content) <= CALENDAR_SIZE:
                parts.append((entry, content))
        return calendar_events.calendar_events(parts)

    def _with_content(self, account: EmailAccount, attachments: list[dict]) -> list[dict]:
        """The attachments, each with its decoded bytes as base64 ``content`` when its encoded
        size is within the limit (read from the server; one that cannot be read goes
        without)."""
        limit = self.options.notify_attachment_size or DEFAULT_ATTACHMENT_SIZE
        out = []
        for entry in attachments:
            entry = dict(entry)
            if entry.get("id") and (entry.get("encodedSize") or 0) <= limit:
                try:
                    download = reading.attachment_download(account, entry["id"])
                    entry["content"] = base64.b64encode(b"".join(download.chunks())).decode()
                except Exception as exc:  # noqa: BLE001 - the event goes out without it
                    logger.info("messageNew attachment %s: not read (%s)", entry["id"], exc)
            out.append(entry)
        return out

    def _seems_like_new(self, account_id: str, special_use: str | None, data: dict) -> bool:
        """EmailEngine's guess: not in Sent/Drafts/Trash/Junk, and not seen before in another
        folder of the account (by Message-ID). A Gmail message (it has labels) is in All Mail
        and a folder per label at once: its own copies (the same X-GM-MSGID, ``emailId``)
        are not "seen before"."""
        if (data.get("messageSpecialUse") or special_use) in NOT_NEW_IN:
            return False
        account = self._account(account_id)
        if account is None or not data.get("messageId"):
            return True
        earlier = Message.objects.filter(email_account=account, message_id=data["messageId"]) \
            .exclude(uid=data.get("uid"), folder__path=data.get("path"))
        if data.get("labels") and data.get("emailId"):
            earlier = earlier.exclude(email_id=data["emailId"])
        return not earlier.exists()


def probe_payload(subscription: WebhookSubscription) -> dict:
    """EmailEngine's test webhook (``event: "test"``)."""
    return {"serviceUrl": options_of(subscription).service_url or None, "account": None,
            "date": engine_date(timezone.now()), "event": "test",
            "data": {"nonce": uuid.uuid4().hex, "webhook": str(subscription.pk)}}
