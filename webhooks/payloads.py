"""The JSON a subscriber receives for one event: webhooks, the live stream and the change feed
all render events here, so the three can never disagree about an event's shape.

    {"id": eventId, "seq": 42, "event": "messageNew", "account": "my-account",
     "date": "2025-01-01T10:00:00.000000+00:00", "path": "INBOX"?, "data": {...}}

``id`` lets a receiver drop repeats (delivery is at least once); ``seq`` is the event's place in
the one published order (``webhooks.sequencer``) and is what stream and feed cursors count.
``path`` is present only for events about one folder, as in the product we replace.
"""

from __future__ import annotations

from datetime import UTC, datetime

from emailapi.lib.timestamps import utc_iso
from webhooks.models import Event


def event_payload(event: Event) -> dict:
    payload = {
        "id": str(event.id),
        "seq": event.seq,
        "event": event.event,
        "account": event.account_id or None,
        "date": event.created_at.astimezone(UTC).isoformat(),
    }
    if event.path:
        payload["path"] = event.path
    payload["data"] = event.data
    return payload


# --- EmailEngine's shape (subscriptions with ``format: emailengine``) ----------------------
#
#     {"serviceUrl": ..., "account": "my-account", "date": "2025-01-01T10:00:00.000Z",
#      "path": "INBOX"?, "specialUse": "\\Inbox"?, "event": "messageNew", "data": {...}}
#
# The event id travels in the ``X-EE-Wh-Event-Id`` header, not in the body. One of our events
# may be two of EmailEngine's: a move another client made (``messageMoved``) is, there,
# ``messageDeleted`` on the source and ``messageNew`` on the destination; a send that failed
# for good (``messageFailed``) is ``messageDeliveryError`` (the attempt) then ``messageFailed``.

ENGINE_ONLY_EVENTS = ("messageMissing",)
MAILBOX_EVENTS = ("mailboxNew", "mailboxDeleted", "mailboxReset")
# Our ``mailboxReset`` reasons as EmailEngine spells them.
ENGINE_RESET_REASONS = {"uidvalidity": "uidValidityChange"}

def engine_date(value) -> str:
    """EmailEngine's timestamps: UTC, milliseconds, ``Z`` (JavaScript's ``toISOString``)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    return utc_iso(value)


def _engine_data(name: str, data: dict) -> dict:
    data = dict(data)
    if data.get("date"):
        data["date"] = engine_date(data["date"])
    if name == "accountInitialized":
        data["initialized"] = True
    if name in MAILBOX_EVENTS:
        data = engine_folder_data(data)
    if name == "messageNew":
        data = engine_message_data(data)
    return data


def engine_message_data(data: dict) -> dict:
    """A message's fields as EmailEngine's ``messageNew`` has them: what the message lacks is
    absent, not ``null`` or ``[]`` (no ``cc``/``bcc`` without such recipients, no
    ``inReplyTo`` for a message that answers none, no ``filename``/``contentId`` on an
    attachment without one). A receiver typed for EmailEngine (a schema's optional string)
    refuses ``null`` where it expects a string or nothing."""
    data = {key: value for key, value in data.items()
            if not ((key in ("cc", "bcc") and not value)
                    or (key == "inReplyTo" and value is None))}
    if isinstance(data.get("attachments"), list):
        data["attachments"] = [
            {key: value for key, value in entry.items()
             if not (key in ("filename", "contentId") and value is None)}
            if isinstance(entry, dict) else entry for entry in data["attachments"]]
    return data


def engine_folder_data(data: dict) -> dict:
    """A folder event's data as EmailEngine writes it: ``specialUse`` is ``false`` for a folder
    without one (a receiver written for it may test ``=== false``), and a reset's ``reason``
    in its spelling (``uidValidityChange``)."""
    data = dict(data)
    if "specialUse" in data and not data["specialUse"]:
        data["specialUse"] = False
    if data.get("reason") in ENGINE_RESET_REASONS:
        data["reason"] = ENGINE_RESET_REASONS[data["reason"]]
    return data


# Our codes of a failed send as nodemailer's (EmailEngine's ``errorCode``); a refusal by its
# command: of an address (MAIL FROM, RCPT TO) or of the message (DATA).
ENGINE_SEND_CODES = {"AuthenticationFailed": "EAUTH", "ConnectionError": "ECONNECTION",
                     "TLSError": "ETLS", "Timeout": "ETIMEDOUT"}
ENGINE_REFUSALS = {"MAIL FROM": "EENVELOPE", "RCPT TO": "EENVELOPE", "DATA": "EMESSAGE"}


def engine_send_code(data: dict) -> str | None:
    """``errorCode`` as EmailEngine's receivers switch on it; ours where it has no
    equivalent."""
    code = data.get("code")
    if code in ("SmtpRefused", "SmtpDeferred") and data.get("command") in ENGINE_REFUSALS:
        return ENGINE_REFUSALS[data["command"]]
    return ENGINE_SEND_CODES.get(code, code)


def _delivery_error(data: dict) -> dict:
    """EmailEngine's ``messageDeliveryError`` for a failed attempt: one to be retried (our
    ``messageDeliveryError``, with ``nextAttempt``) or the last (``messageFailed``); its
    ``networkRouting`` as ours, when the attempt had one."""
    attempts = data.get("attemptsMade")
    next_attempt = data.get("nextAttempt")
    out = {"queueId": data.get("queueId"), "envelope": data.get("envelope"),
           "messageId": data.get("messageId"), "error": data.get("error"),
           "errorCode": engine_send_code(data), "smtpResponse": data.get("error"),
           "smtpResponseCode": data.get("responseCode")}
    if data.get("command"):
        out["smtpCommand"] = data["command"]
    if data.get("networkRouting"):
        out["networkRouting"] = data["networkRouting"]
    out["job"] = {"id": data.get("queueId"), "attemptsMade": attempts,
                  "attempts": data.get("attempts", attempts),
                  "nextAttempt": engine_date(next_attempt) if next_attempt else False}
    return out


def engine_events(event: Event) -> list[tuple[str, str, dict]]:
    """``(event name, path, data)`` of EmailEngine's events for our ``event``."""
    data = event.data
    if event.event == "messageMoved":
        source = data.get("source") or {}
        moved = {k: v for k, v in data.items() if k not in ("source", "destination")}
        gone = {"id": source.get("id"), "uid": source.get("uid"), "path": source.get("path"),
                "emailId": data.get("emailId"), "messageId": data.get("messageId")}
        return [("messageDeleted", source.get("path") or "", gone),
                ("messageNew", event.path, _engine_data("messageNew", moved))]
    if event.event == "messageDeliveryError":
        return [("messageDeliveryError", "", _delivery_error(data))]
    if event.event == "messageFailed":
        return [("messageDeliveryError", "", _delivery_error(data)),
                ("messageFailed", "", _engine_data("messageFailed", data))]
    path = event.path
    if event.event in MAILBOX_EVENTS and not path:
        # EmailEngine's envelope names the folder of a folder event (its ``path``, and the
        # folder's ``specialUse``, added at delivery) as it does a message event's.
        path = data.get("path") or ""
    return [(event.event, path, _engine_data(event.event, data))]


def engine_payload(event: Event, name: str, path: str, data: dict, service_url: str | None,
                   special_use: str | None) -> dict:
    payload: dict = {"serviceUrl": service_url, "account": event.account_id or None,
                     "date": engine_date(event.created_at)}
    if path:
        payload["path"] = path
        if special_use:
            payload["specialUse"] = special_use
    payload["event"] = name
    payload["data"] = data
    return payload
