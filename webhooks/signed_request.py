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


class Sender:
    """Sends any number of payloads to one subscription; its secret and custom headers are
    unsealed once, not per delivery (the dispatcher sends runs of a lane's deliveries)."""

    def __init__(self, subscription: WebhookSubscription):
        self.url = subscription.url
        self.secret = subscriptions.secret_of(subscription)
        self.custom_headers = subscriptions.headers_of(subscription)

    def headers(self, payload: dict, body: bytes) -> dict:
        """Custom headers first, ours over them: a subscription cannot forge the signature
        or the event headers (the API refuses such names anyway)."""
        timestamp = str(int(time.time()))
        return {
            **self.custom_headers,
            "Content-Type": "application/json",
            "User-Agent": user_agent(),
            "X-EmailAPI-Event": payload["event"],
            "X-EmailAPI-Event-Id": payload["id"],
            "X-EmailAPI-Timestamp": timestamp,
            "X-EmailAPI-Signature": signing.signature(self.secret, timestamp, body),
        }

    def send(self, payload: dict) -> transport.Outcome:
        body = encode(payload)
        return transport.post(self.url, body, self.headers(payload, body),
                              timeout=settings.WEBHOOK_TIMEOUT,
                              allow_private=settings.WEBHOOKS_ALLOW_PRIVATE)


def send(subscription: WebhookSubscription, payload: dict) -> transport.Outcome:
    return Sender(subscription).send(payload)


def probe_payload(subscription: WebhookSubscription) -> dict:
    """The ``test`` event: the payload shape of every event, with a fresh id; never stored."""
    return {"id": str(uuid.uuid4()), "seq": None, "event": TEST_EVENT, "account": None,
            "date": timezone.now().isoformat(),
            "data": {"webhook": str(subscription.pk), "message": "Test event from emailapi"}}
