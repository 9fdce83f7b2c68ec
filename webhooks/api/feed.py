"""The change feed: ``GET /v1/changes`` (the tenant) and ``GET /v1/account/{account}/changes``
(one mailbox), pages of recorded events after a cursor (``webhooks.feed``). With ``Accept:
text/event-stream``, ``/v1/changes`` is EmailEngine's stream of account state changes instead
(``webhooks.stream.account_states``). A bad or
pruned cursor is a domain error of ``webhooks.errors`` (``InvalidCursor``, ``CursorExpired``),
the stream's as well as the feed's.
"""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from emailapi.api.views import ACCOUNT_PARAM, TenantScopedAPIView
from webhooks import feed
from webhooks.api import stream_query
from webhooks.stream import account_states, params

DEFAULT_FEED_PAGE = 100
EXPIRED = OpenApiResponse(OpenApiTypes.OBJECT, description=(
    "The cursor is older than the event retention (`CursorExpired`): events after it were "
    "pruned. Resynchronise (list what you need afresh), then continue from `since=now`."))


class JsonErrorsOnly(BaseContentNegotiation):
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


def _feed(tenant_id: int, query: dict, account: str | None = None) -> dict:
    flt = params.build_filter(tenant_id, query, account)
    if (query.get("since") or "").strip().lower() == "now":
        return {"changes": [], "nextCursor": feed.encode_cursor(feed.head()),
                "hasMore": False}
    since = params.parse_since(query.get("since"))
    limit = query.get("limit") or query.get("pageSize") or DEFAULT_FEED_PAGE
    return feed.feed_page(flt, since, limit)


_FEED_DESCRIPTION = (
    "Events after `since`, oldest first, from the outbox (retained "
    "`EMAILAPI_EVENT_RETENTION_DAYS`): a subscriber that missed webhooks or a stream "
    "reconciles here. Keep `nextCursor` and pass it as `since` next time; `hasMore` says "
    "to ask again now. Without `since` the feed starts at the oldest retained event. "
    "A cursor older than the retention answers 410 `CursorExpired`.")


def wants_event_stream(request) -> bool:
    return "text/event-stream" in request.headers.get("Accept", "")


class ChangesView(TenantScopedAPIView):
    # ``Accept: text/event-stream`` must reach the view (errors are JSON all the same).
    content_negotiation_class = JsonErrorsOnly

    @extend_schema(operation_id="listChanges", tags=["Events"],
                   parameters=[stream_query.ChangesQuerySerializer],
                   responses={200: ChangesSerializer, 410: EXPIRED,
                              (200, "text/event-stream"): OpenApiResponse(
                                  OpenApiTypes.STR, description=(
                                      "With `Accept: text/event-stream`: EmailEngine's stream "
                                      "of account state changes, `event: message` / "
                                      "`data:{account, type: \"state\", key: <state>, "
                                      "payload}`"))},
                   summary="Change feed of the tenant (or EmailEngine's state stream)",
                   description=_FEED_DESCRIPTION + (
                       " With `Accept: text/event-stream` (an EmailEngine client's EventSource) "
                       "the answer is instead EmailEngine's Server-Sent Events stream of the "
                       "accounts' connection state changes (query parameters do not apply)."))
    def get(self, request):
        if wants_event_stream(request):
            response = StreamingHttpResponse(account_states.body(self.tenant.pk),
                                             content_type="text/event-stream")
            response["Cache-Control"] = "no-cache"
            response["X-Accel-Buffering"] = "no"
            return response
        query = self.validated(stream_query.ChangesQuerySerializer,
                               stream_query.flatten_lists(request.query_params))
        return Response(_feed(self.tenant.pk, query))


class AccountChangesQuerySerializer(stream_query.ChangesQuerySerializer):
    accounts = None  # the account is in the path
    account = None


class AccountChangesView(TenantScopedAPIView):
    @extend_schema(operation_id="listAccountChanges", tags=["Events"],
                   parameters=[ACCOUNT_PARAM, AccountChangesQuerySerializer],
                   responses={200: ChangesSerializer, 410: EXPIRED},
                   summary="Change feed of one account", description=_FEED_DESCRIPTION)
    def get(self, request, account):
        account_id = self.email_account.account_id  # 404 AccountNotFound outside the tenant
        query = self.validated(AccountChangesQuerySerializer,
                               stream_query.flatten_lists(request.query_params))
        return Response(_feed(self.tenant.pk, query, account_id))
