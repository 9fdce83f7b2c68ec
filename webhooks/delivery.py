"""Building and sending one webhook request: body, signature, headers, then ``transport.post``.

Shared by the dispatcher (events from the outbox) and ``POST /v1/webhooks/{id}/test``, so a
test request is signed and sent exactly like a real one.
"""

from __future__ import annotations

import json
import time
import tomllib
import uuid
from functools import lru_cache

from django.conf import settings
from django.utils import timezone

from webhooks import signing, subscriptions, transport
from webhooks.models import WebhookSubscription

TEST_EVENT = "test"


@lru_cache(maxsize=1)
def user_agent() -> str:
    with open(settings.BASE_DIR / "pyproject.toml", "rb") as handle:
        version = tomllib.load(handle)["project"]["version"]
    return f"emailapi/{version}"


def encode(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def request_headers(subscription: WebhookSubscription, payload: dict, body: bytes) -> dict:
    """Custom headers first, ours over them: a subscription cannot forge the signature or
    the event headers (the API refuses such names anyway)."""
    timestamp = str(int(time.time()))
    return {
        **subscriptions.headers_of(subscription),
        "Content-Type": "application/json",
        "User-Agent": user_agent(),
        "X-EmailAPI-Event": payload["event"],
        "X-EmailAPI-Event-Id": payload["id"],
        "X-EmailAPI-Timestamp": timestamp,
        "X-EmailAPI-Signature": signing.signature(subscriptions.secret_of(subscription),
                                                  timestamp, body),
    }


def send(subscription: WebhookSubscription, payload: dict) -> transport.Outcome:
    body = encode(payload)
    return transport.post(subscription.url, body, request_headers(subscription, payload, body),
                          timeout=settings.WEBHOOK_TIMEOUT,
                          allow_private=settings.WEBHOOKS_ALLOW_PRIVATE)


def probe_payload(subscription: WebhookSubscription) -> dict:
    """The ``test`` event: the payload shape of every event, with a fresh id; never stored."""
    return {"id": str(uuid.uuid4()), "seq": None, "event": TEST_EVENT, "account": None,
            "date": timezone.now().isoformat(),
            "data": {"webhook": str(subscription.pk), "message": "Test event from emailapi"}}
