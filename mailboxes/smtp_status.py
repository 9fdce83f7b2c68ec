"""A send's SMTP outcome in EmailEngine's shapes, built from what we store.

We keep one record of a failed attempt, ``{"error", "code", "responseCode", "command"?,
"networkRouting"?}`` (``mailboxes.sending.SendFailure``), on the outbox entry and on a gateway.
EmailEngine shows the same facts under other names in three places: an outbox entry's
``progress.error`` (``{message, code, statusCode, networkRouting}``), a gateway's
``lastError`` and an account's ``smtpStatus`` (``{created, status, response, description,
responseCode, code, command, networkRouting}``). These pure functions make those shapes, so
the three cannot drift apart and clients written for EmailEngine read the names they know
while ours stay beside them.
"""

from __future__ import annotations

from datetime import datetime


def epoch_ms(when: datetime | str | None) -> int | None:
    """EmailEngine's ``created``: milliseconds since the epoch (it stores ``Date.now()``)."""
    if isinstance(when, str):
        try:
            when = datetime.fromisoformat(when.replace("Z", "+00:00"))
        except ValueError:
            return None
    return int(when.timestamp() * 1000) if when is not None else None


def progress_error(error: dict | None) -> dict | None:
    """An outbox entry's ``progress.error``: the last failed attempt, or None."""
    if not error:
        return None
    out = {"message": error.get("error"), "code": error.get("code"),
           "statusCode": error.get("responseCode")}
    if error.get("networkRouting"):
        out["networkRouting"] = error["networkRouting"]
    return out


def error_entry(error: dict, when: datetime | str | None) -> dict:
    """EmailEngine's GatewayErrorEntry (a gateway's ``lastError``, an account's failed
    ``smtpStatus``) from our record of a failed attempt made at ``when``. ``response`` is
    the server's reply when there was one (``responseCode`` says so), else our words;
    ``description`` is always our words of it."""
    text = error.get("error")
    return {"created": epoch_ms(when), "status": "error",
            "response": text, "description": text,
            "responseCode": error.get("responseCode"), "code": error.get("code"),
            "command": error.get("command"),
            "networkRouting": error.get("networkRouting")}


def ok_entry(response: str, when: datetime | None,
             network_routing: dict | None = None) -> dict:
    """An account's ``smtpStatus`` after a send the server accepted: its answer to DATA."""
    code = response[:3]
    return {"created": epoch_ms(when), "status": "ok", "response": response,
            "description": "Message accepted",
            "responseCode": int(code) if code.isdigit() else None, "code": None,
            "command": "DATA", "networkRouting": network_routing}
