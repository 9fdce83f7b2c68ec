"""Building and sending one webhook request: body, signature, headers, then ``transport.post``.

The subscription's ``format`` decides the shape: ``emailapi`` (ours: ``X-EmailAPI-*``),
``emailengine`` (EmailEngine's envelope and ``X-EE-Wh-*`` headers, ``webhooks.engine_format``;
one event may be two requests there) or ``standard`` (our body, signed as the Standard Webhooks
spec says: ``webhook-id`` is the event id, so a retry keeps it).

Shared by the dispatcher (events from the outbox) and ``POST /v1/webhooks/{id}/test``, so a
test request is signed and sent exactly like a real one.
"""

from __future__ import annotations

import json
import time
import tomllib
import uuid
from functools import lru_cache

import orjson
from django.conf import settings
from django.utils import timezone

from accounts import plans
from webhooks import engine_format, signing, subscriptions, transport
from webhooks.models import Delivery, WebhookSubscription
from webhooks.payloads import engine_events, engine_payload, event_payload

TEST_EVENT = "test"


@lru_cache(maxsize=1)
def user_agent() -> str:
    with open(settings.BASE_DIR / "pyproject.toml", "rb") as handle:
        version = tomllib.load(handle)["project"]["version"]
    return f"emailapi/{version}"


def encode(payload: dict) -> bytes:
    """Compact JSON in UTF-8 (``json.dumps(separators=(",", ":"), ensure_ascii=False)``'s
    bytes), by orjson: one body per delivery. What orjson refuses (an integer beyond 64 bits,
    a key that is not a string) is written by the standard library."""
    try:
        return orjson.dumps(payload)
    except orjson.JSONEncodeError:
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def with_url_authorization(basic: dict[str, str], custom: dict[str, str]) -> dict[str, str]:
    """The custom headers, after the ``Authorization`` a URL's ``user:password@`` makes: one
    among the custom headers (any case) replaces it, as EmailEngine applies its custom headers
    after the URL's (and two ``Authorization`` headers would be one request's ambiguity)."""
    if any(name.lower() == "authorization" for name in custom):
        return dict(custom)
    return {**basic, **custom}


class Sender:
    """Sends any number of payloads to one subscription; its secret, custom headers and URL
    password are unsealed once, not per delivery (the dispatcher sends runs of a lane's
    deliveries)."""

    def __init__(self, subscription: WebhookSubscription):
        self.subscription = subscription
        self.url, basic = subscriptions.request_target(subscription)
        self.format = subscription.format
        self.secret = subscriptions.secret_of(subscription)
        self.custom_headers = with_url_authorization(basic,
                                                     subscriptions.headers_of(subscription))
        self._engine = None

    def headers(self, payload: dict, body: bytes) -> dict:
        """Custom headers first, ours over them: a subscription cannot forge the signature
        or the event headers (the API refuses such names anyway)."""
        timestamp = str(int(time.time()))
        if self.format == "standard":
            signed = {
                "webhook-id": payload["id"],
                "webhook-timestamp": timestamp,
                "webhook-signature": signing.standard_signature(self.secret, payload["id"],
                                                                timestamp, body),
            }
        else:
            signed = {
                "X-EmailAPI-Event": payload["event"],
                "X-EmailAPI-Event-Id": payload["id"],
                "X-EmailAPI-Timestamp": timestamp,
                "X-EmailAPI-Signature": signing.signature(self.secret, timestamp, body),
            }
        return {**self.custom_headers, "Content-Type": "application/json",
                "User-Agent": user_agent(), **signed}

    def engine_headers(self, body: bytes, job_id: str, event_id: str, attempts_made: int,
                       queued_seconds: float) -> dict:
        """EmailEngine's request headers (``workers/webhooks.js``), with
        ``X-EE-Wh-Custom-Route`` (the route's id) when the subscription is one of its custom
        routes rather than its default route: a receiver shared by several routes tells them
        apart by it."""
        headers = {**self.custom_headers, "Content-Type": "application/json",
                   "User-Agent": user_agent(),
                   "X-EE-Wh-Id": job_id,
                   "X-EE-Wh-Attempts-Made": str(attempts_made),
                   "X-EE-Wh-Queued-Time": f"{round(max(0.0, queued_seconds))}s"}
        if not self.renderer().default_route():
            headers["X-EE-Wh-Custom-Route"] = str(self.subscription.pk)
        return {**headers, "X-EE-Wh-Event-Id": event_id,
                "X-EE-Wh-Signature": signing.engine_signature(self.secret, body)}

    def renderer(self) -> engine_format.EngineRenderer:
        if self._engine is None:
            self._engine = engine_format.EngineRenderer(self.subscription)
        return self._engine

    def _post(self, body: bytes, headers: dict) -> transport.Outcome:
        return transport.post(self.url, body, headers, timeout=settings.WEBHOOK_TIMEOUT,
                              allow_private=settings.WEBHOOKS_ALLOW_PRIVATE)

    def send(self, payload: dict) -> transport.Outcome:
        """One payload of our shape (``emailapi`` or ``standard``)."""
        body = encode(payload)
        return self._post(body, self.headers(payload, body))

    def send_delivery(self, delivery: Delivery) -> transport.Outcome:
        """The request(s) of one delivery in the subscription's format. EmailEngine's: each of
        the event's payloads in turn (the first failure is the outcome; a retry sends all
        again, which at-least-once delivery allows)."""
        if self.format != "emailengine":
            return self.send(event_payload(delivery.event))
        queued = (timezone.now() - delivery.created_at).total_seconds()
        outcome = None
        for number, payload in enumerate(self.renderer().payloads(delivery.event)):
            body = encode(payload)
            job_id = str(delivery.pk) if number == 0 else f"{delivery.pk}:{number}"
            event_id = str(delivery.event_id) if number == 0 else \
                str(uuid.uuid5(delivery.event_id, str(number)))
            outcome = self._post(body, self.engine_headers(
                body, job_id, event_id, max(0, delivery.attempts - 1), queued))
            if not outcome.ok:
                return outcome
        return outcome or transport.Outcome(200, 0, None)


def send(subscription: WebhookSubscription, payload: dict) -> transport.Outcome:
    sender = Sender(subscription)
    if subscription.format == "emailengine":
        body = encode(payload)
        return sender._post(body, sender.engine_headers(body, str(uuid.uuid4()),
                                                        str(uuid.uuid4()), 0, 0))
    if "id" not in payload:
        payload = {"id": str(uuid.uuid4()), **payload}
    return sender.send(payload)


def probe_payload(subscription: WebhookSubscription) -> dict:
    """The ``test`` event: the payload shape of every event, with a fresh id; never stored."""
    if subscription.format == "emailengine":
        return engine_format.probe_payload(subscription)
    return {"id": str(uuid.uuid4()), "seq": None, "event": TEST_EVENT, "account": None,
            "date": timezone.now().isoformat(),
            "data": {"webhook": str(subscription.pk), "message": "Test event from emailapi"}}


def send_test(subscription: WebhookSubscription) -> transport.Outcome:
    """Send the ``test`` event now, signed like a real one. A stopped tenant (expired trial,
    suspended) is refused (``TrialExpired``, ``TenantSuspended``): its webhooks are stopped
    too."""
    plans.check_api_access(subscription.tenant)
    return send(subscription, probe_payload(subscription))


def sent_bodies(subscription: WebhookSubscription, deliveries) -> dict:
    """The JSON body each delivery sends, by delivery id, for the delivery log: exactly what
    the receiver gets in our formats; in EmailEngine's, each request's envelope and data
    without the text, headers and attachment contents read from the mail server at sending
    time (the log reads no mail)."""
    out = {}
    for delivery in deliveries:
        if subscription.format == "emailengine":
            payloads = [engine_payload(delivery.event, name, path, data, None, None)
                        for name, path, data in engine_events(delivery.event)]
        else:
            payloads = [event_payload(delivery.event)]
        out[delivery.pk] = [json.dumps(payload, indent=2, ensure_ascii=False)
                            for payload in payloads]
    return out
