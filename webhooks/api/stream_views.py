"""``GET /v1/stream`` (Server-Sent Events) and the change feed (``GET /v1/changes``,
``GET /v1/account/{account}/changes``): thin views over ``webhooks.stream`` and
``webhooks.changes``. The WebSocket at the same path is ``webhooks.api.stream_socket``.

The SSE view authenticates and validates like every /v1 view (DRF, in a thread), then returns a
streaming response whose body is an async generator: under ASGI it runs in the event loop, so
an open stream costs a coroutine and a small buffer, never a thread.
"""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from accounts.api.views import ACCOUNT_PARAM
from emailapi.api.errors import ApiError
from emailapi.api.views import TenantScopedAPIView
from webhooks import changes
from webhooks.api import stream_query
from webhooks.stream import params, sse
from webhooks.stream.backlog import Backlog

DEFAULT_FEED_PAGE = 100
EXPIRED = OpenApiResponse(OpenApiTypes.OBJECT, description=(
    "The cursor is older than the event retention (`CursorExpired`): events after it were "
    "pruned. Resynchronise (list what you need afresh), then continue from `since=now`."))


class _JsonErrorsOnly(BaseContentNegotiation):
    """Errors are JSON whatever ``Accept`` says (an EventSource sends text/event-stream)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return JSONRenderer(), JSONRenderer.media_type

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None


class ChangeEventSerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="Event id: drop repeats by it")
    seq = serializers.IntegerField(help_text="Place in the published order")
    event = serializers.CharField(help_text="messageNew, messageUpdated, messageDeleted, ...")
    account = serializers.CharField(allow_null=True)
    date = serializers.DateTimeField()
    path = serializers.CharField(required=False, help_text="Folder, for folder events")
    data = serializers.DictField(help_text="Event-specific fields, as in webhooks")


class ChangesSerializer(serializers.Serializer):
    changes = ChangeEventSerializer(many=True)
    nextCursor = serializers.CharField(help_text="Pass as since to continue (opaque)")
    hasMore = serializers.BooleanField(help_text="More changes exist after this page now")


def _since_or_400(value: str | None) -> int | None:
    try:
        return params.parse_since(value)
    except changes.InvalidCursor:
        raise ApiError("Invalid cursor: use a nextCursor or an event seq", "InvalidCursor",
                       400) from None


def _expired() -> ApiError:
    return ApiError("Events after this cursor were pruned: resynchronise", "CursorExpired", 410)


class StreamView(TenantScopedAPIView):
    content_negotiation_class = _JsonErrorsOnly

    @extend_schema(
        operation_id="streamEvents", tags=["Events"], parameters=[stream_query.StreamQuerySerializer],
        responses={(200, "text/event-stream"): OpenApiResponse(OpenApiTypes.STR, description=(
            "One SSE event per event: `id: <seq>`, `event: <name>`, `data: <payload JSON>`; "
            "a `: keep-alive` comment every 15 s of silence")), 410: EXPIRED},
        summary="Live events (Server-Sent Events; WebSocket at the same path)",
        description="Your tenant's events as they are published, as Server-Sent Events. "
                    "`Last-Event-ID` (sent by EventSource on reconnect) or `since` replays the "
                    "events after that seq first, then continues live: nothing missed, nothing "
                    "twice. A client that stops reading is disconnected; it resumes with its "
                    "last id. The same stream is a WebSocket at this path (see README).")
    def get(self, request):
        query = self.validated(stream_query.StreamQuerySerializer, stream_query.flatten_lists(
            request.query_params))
        since = _since_or_400(query.get("since", request.headers.get("Last-Event-ID")))
        stream = params.StreamRequest(filter=params.build_filter(self.tenant.pk, query),
                                      since=since, once=query["once"])
        if sse.expired(stream):
            raise _expired()
        if stream.once:
            body = iter([sse.snapshot_body(stream)])
        else:
            body = self.live_body(stream, Backlog.from_scope(getattr(request, "scope", None)))
        response = StreamingHttpResponse(body, content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
        return response

    def live_body(self, stream: params.StreamRequest, backlog: Backlog):
        """The streaming body (the dashboard's stream wraps it to end with the session)."""
        return sse.live_body(stream, backlog)


def _feed(tenant_id: int, query: dict, account: str | None = None) -> dict:
    flt = params.build_filter(tenant_id, query, account)
    if (query.get("since") or "").strip().lower() == "now":
        return {"changes": [], "nextCursor": changes.encode_cursor(changes.head()),
                "hasMore": False}
    since = _since_or_400(query.get("since"))
    limit = query.get("limit") or query.get("pageSize") or DEFAULT_FEED_PAGE
    try:
        return changes.feed_page(flt, since, limit)
    except changes.CursorExpired:
        raise _expired() from None


_FEED_DESCRIPTION = (
    "Events after `since`, oldest first, from the outbox (retained "
    "`EMAILAPI_EVENT_RETENTION_DAYS`): a subscriber that missed webhooks or a stream "
    "reconciles here. Keep `nextCursor` and pass it as `since` next time; `hasMore` says "
    "to ask again now. Without `since` the feed starts at the oldest retained event. "
    "A cursor older than the retention answers 410 `CursorExpired`.")


class ChangesView(TenantScopedAPIView):
    @extend_schema(operation_id="listChanges", tags=["Events"],
                   parameters=[stream_query.ChangesQuerySerializer],
                   responses={200: ChangesSerializer, 410: EXPIRED},
                   summary="Change feed of the tenant", description=_FEED_DESCRIPTION)
    def get(self, request):
        query = self.validated(stream_query.ChangesQuerySerializer,
                               stream_query.flatten_lists(request.query_params))
        return Response(_feed(self.tenant.pk, query))


class AccountChangesQuerySerializer(stream_query.ChangesQuerySerializer):
    accounts = None  # the account is in the path


class AccountChangesView(TenantScopedAPIView):
    @extend_schema(operation_id="listAccountChanges", tags=["Events"],
                   parameters=[ACCOUNT_PARAM, AccountChangesQuerySerializer],
                   responses={200: ChangesSerializer, 410: EXPIRED},
                   summary="Change feed of one account", description=_FEED_DESCRIPTION)
    def get(self, request, account):
        self.get_account(account)
        query = self.validated(AccountChangesQuerySerializer,
                               stream_query.flatten_lists(request.query_params))
        return Response(_feed(self.tenant.pk, query, account))
