"""``/v1/stream`` as a WebSocket: the same events as the SSE stream, one JSON text message each.

The token comes as ``Authorization: Bearer`` (clients that can set headers) or
``?access_token=`` (browsers cannot); query parameters are those of the SSE route, with
``since`` (or a ``Last-Event-ID`` header) to resume. A refused connection is accepted and then
closed with a code, after one message carrying the usual error body, because a WebSocket
rejected during the handshake tells the client nothing but "403":

    4400 bad input   4401 no or bad token   4402 trial ended   4403 scope or suspended
    4410 CursorExpired   4429 too slow

An open stream closes with 4401 once its token is revoked or its tenant stopped (looked at every
``STREAM_KEEPALIVE``, ``webhooks.stream.validity``). Messages from the client are ignored;
daphne pings idle connections itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import aclosing
from functools import partial
from types import SimpleNamespace

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.http import QueryDict
from django.http.request import HttpHeaders
from django.urls import path
from rest_framework import exceptions

from accounts import tokens
from accounts.api.authentication import BearerTokenAuthentication, still_valid
from emailapi.api.errors import domain_error_body, error_body, flatten_errors, status_of
from emailapi.lib.errors import DomainError
from webhooks import feed
from webhooks.api import stream_query
from webhooks.stream import params
from webhooks.stream.backlog import Backlog
from webhooks.stream.hub import get_hub, in_db_thread
from webhooks.stream.subscriber import Subscriber
from webhooks.stream.validity import Validity

logger = logging.getLogger(__name__)

CLOSE_INVALID, CLOSE_UNAUTHORIZED, CLOSE_FORBIDDEN = 4400, 4401, 4403
CLOSE_TOO_SLOW = 4429  # 4410 CursorExpired: 4000 + its status, as other refusals


class Refused(Exception):
    def __init__(self, close_code: int, body: dict):
        super().__init__(body["message"])
        self.close_code = close_code
        self.body = body


def _refused(error: DomainError) -> Refused:
    """A service's refusal as the API would answer it, closing with 4000 + its status."""
    return Refused(4000 + status_of(error), domain_error_body(error))


def _headers(scope) -> dict[str, str]:
    return {name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope.get("headers", [])}


def authenticate(scope):
    """The ``ApiCaller`` of a WebSocket scope, or ``Refused`` (runs in a DB thread)."""
    headers = _headers(scope)
    meta = {}
    if "authorization" in headers:
        meta["HTTP_AUTHORIZATION"] = headers["authorization"]
    query = QueryDict(scope.get("query_string", b""))
    request = SimpleNamespace(META=meta, headers=HttpHeaders(meta), query_params=query)
    try:
        result = BearerTokenAuthentication().authenticate(request)
    except exceptions.AuthenticationFailed as exc:
        raise Refused(CLOSE_UNAUTHORIZED,
                      error_body(str(exc.detail), "InvalidToken", 401)) from None
    except DomainError as exc:  # a stopped tenant: 402 TrialExpired, 403 TenantSuspended
        raise _refused(exc) from None
    if result is None:
        raise Refused(CLOSE_UNAUTHORIZED, error_body(
            "Authentication required: send Authorization: Bearer <token>", "Unauthorized", 401))
    caller = result[0]
    if not tokens.allows(caller.scopes, write=False):
        raise Refused(CLOSE_FORBIDDEN, error_body(
            "This token's scopes do not allow this request", "InsufficientScope", 403))
    return caller


def stream_request(scope, tenant_id: int) -> params.StreamRequest:
    """Validated parameters, or ``Refused`` (runs in a DB thread: the expiry check reads)."""
    data = stream_query.flatten_lists(QueryDict(scope.get("query_string", b"")))
    serializer = stream_query.StreamQuerySerializer(data=data)
    if not serializer.is_valid():
        details = flatten_errors(serializer.errors)
        field, messages = next(iter(details.items()))
        raise Refused(CLOSE_INVALID, error_body(f"Invalid input: {field}: {messages[0]}",
                                                "InputValidationError", 400, details))
    try:
        request = params.stream_request(tenant_id, serializer.validated_data,
                                        _headers(scope).get("last-event-id"))
        if request.since is not None:
            feed.check_not_expired(request.since)
    except DomainError as exc:  # 4400 InvalidCursor, 4410 CursorExpired
        raise _refused(exc) from None
    return request


def _prepare(scope):
    caller = authenticate(scope)
    return caller, stream_request(scope, caller.tenant.pk)


class StreamConsumer(AsyncWebsocketConsumer):
    # Events come from the process's hub, not a channel layer: an alias that is not configured
    # spares each connection a layer channel and its receive task.
    channel_layer_alias = "no-channel-layer"
    subscriber: Subscriber | None = None
    sender: asyncio.Task | None = None

    async def connect(self):
        await self.accept()
        try:
            caller, request = await in_db_thread(_prepare, self.scope)
        except Refused as refused:
            await self.send(text_data=json.dumps(refused.body))
            await self.close(code=refused.close_code)
            return
        except Exception:  # noqa: BLE001 - logged; the client learns only that it failed
            logger.exception("event stream: could not open a WebSocket stream")
            await self.send(text_data=json.dumps(error_body("Internal server error",
                                                            "InternalError", 500)))
            await self.close(code=1011)
            return
        self.subscriber = Subscriber(get_hub(), request.filter, request.since,
                                     settings.STREAM_CLIENT_QUEUE)
        validity = Validity(partial(still_valid, caller), settings.STREAM_KEEPALIVE)
        self.sender = asyncio.create_task(
            self._send_events(Backlog.from_scope(self.scope), validity))

    async def receive(self, text_data=None, bytes_data=None):
        """Nothing to receive: the stream is one way."""

    async def disconnect(self, code):
        if self.sender is not None:
            self.sender.cancel()
        if self.subscriber is not None:
            self.subscriber.close()

    async def _send_events(self, backlog: Backlog, validity: Validity) -> None:
        subscriber = self.subscriber
        try:
            async with aclosing(subscriber.items(settings.STREAM_KEEPALIVE)) as items:
                async for item in items:
                    if item is not None:
                        await self.send(text_data=item.json)
                    if not await validity.holds():  # the token revoked, the tenant stopped
                        await self.close(code=CLOSE_UNAUTHORIZED)
                        return
                    if not await backlog.wait_drained(settings.STREAM_CLIENT_BUFFER,
                                                      settings.STREAM_SLOW_SECONDS,
                                                      gone=lambda: subscriber.dropped):
                        subscriber.drop()
                    if subscriber.dropped:
                        logger.info("event stream: dropped a slow WebSocket client of tenant "
                                    "%s at seq %s", subscriber.filter.tenant_id,
                                    subscriber.cursor)
                        await self.close(code=CLOSE_TOO_SLOW)
                        backlog.abort_later()
                        return
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - end this client, never the process
            logger.exception("event stream: WebSocket sender failed")
            await self.close(code=1011)
        finally:
            subscriber.close()


websocket_urlpatterns = [
    path("v1/stream", StreamConsumer.as_asgi()),
]
