"""EmailEngine's change stream: ``GET /v1/changes`` with ``Accept: text/event-stream``.

EmailEngine streams its accounts' connection state changes as Server-Sent Events:

    : emailapi change stream

    event: message
    data:{"account":"box","type":"state","key":"connected","payload":null}

``key`` is the new state (``init``, ``connecting``, ``syncing``, ``connected``,
``disconnected``, ``paused``, ``authenticationError``, ``connectError``, ``unset``);
``payload`` is the account's ``lastError`` as the API shows it (``{error, code, time,
response, serverResponseCode}``, ``accounts.state.engine_error``) while the state is an error,
else ``null``. Here the states are those of the account rows (written by the
IMAP workers, ``accounts.state``), read every ``STATE_POLL`` seconds: each change is sent once;
a state that lasted less than that may be skipped, the state it changed to never is. An account
that appears is sent with its state; a deleted one with ``key: "deleted"``. EmailEngine's
``syncWarning``, ``smtpServerState`` and ``imapProxyServerState`` kinds have no counterpart here
(no SMTP or IMAP proxy server) and never come. A comment every ``STREAM_KEEPALIVE`` seconds of
silence keeps proxies from closing the stream.
"""

from __future__ import annotations

import asyncio
import json
import time

from django.conf import settings

from accounts.models import EmailAccount
from accounts.state import engine_error
from webhooks.stream.hub import in_db_thread

OPENING = b": emailapi change stream\n\n"
KEEPALIVE = b": still here\n\n"
STATE_POLL = 1.0
ERROR_STATES = ("authenticationError", "connectError")


def states(tenant_id: int) -> dict[str, tuple[str, dict | None]]:
    """account id -> (state, lastError) of the tenant's accounts."""
    return {account: (state, last_error or None) for account, state, last_error in
            EmailAccount.objects.filter(tenant_id=tenant_id)
            .values_list("account_id", "state", "last_error")}


def frame(account: str, state: str, error: dict | None) -> bytes:
    message = {"account": account, "type": "state", "key": state,
               "payload": engine_error(error) if state in ERROR_STATES else None}
    return f"event: message\ndata:{json.dumps(message, separators=(',', ':'))}\n\n".encode()


def changes(before: dict, now: dict) -> list[bytes]:
    out = [frame(account, state, error) for account, (state, error) in now.items()
           if before.get(account, (None, None))[0] != state]
    out += [frame(account, "deleted", None) for account in before if account not in now]
    return out


async def body(tenant_id: int, poll: float = STATE_POLL):
    """The streaming body; ends when the client goes away (the ASGI handler cancels it)."""
    yield OPENING
    known = await in_db_thread(states, tenant_id)
    quiet_since = time.monotonic()
    while True:
        await asyncio.sleep(poll)
        now = await in_db_thread(states, tenant_id)
        frames = changes(known, now)
        known = now
        if frames:
            quiet_since = time.monotonic()
            yield b"".join(frames)
        elif time.monotonic() - quiet_since >= settings.STREAM_KEEPALIVE:
            quiet_since = time.monotonic()
            yield KEEPALIVE
