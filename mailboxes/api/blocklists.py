"""EmailEngine's blocklist routes: ``GET /v1/blocklists``, and ``GET``/``POST``/``DELETE
/v1/blocklist/{listId}``. Thin views over ``mailboxes.blocklists``, answering EmailEngine's
shapes; a tenant sees and changes only its own lists."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from emailapi.api.pagination import PageQuerySerializer, paginate
from emailapi.api.serializers import QuerySerializer, StrictSerializer
from emailapi.api.views import InvalidInput, TenantScopedAPIView
from emailapi.proxies import client_address
from mailboxes import blocklists
from mailboxes.errors import BlocklistNotFound
from mailboxes.message_fields import iso

TAGS = ["Blocklists"]
LIST_PARAM = OpenApiParameter(
    "listId", str, OpenApiParameter.PATH,
    description="The list's id, as sends name it with `listId` (a host-name-like id: "
                "newsletter, news.example); a new id makes a new list")


class BlocklistAddSerializer(StrictSerializer):
    account = serializers.CharField(max_length=256, help_text="The account the entry is "
                                    "recorded for (it must exist)")
    recipient = serializers.EmailField(max_length=320, help_text="The address to block")
    reason = serializers.CharField(max_length=256, required=False, allow_blank=True,
                                   help_text="Why (default: block)")


class RecipientQuerySerializer(QuerySerializer):
    recipient = serializers.EmailField(max_length=320, help_text="The address to unblock")


class BlocklistItemSerializer(serializers.Serializer):
    listId = serializers.CharField()
    count = serializers.IntegerField(help_text="Addresses on the list")


class BlocklistsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    page = serializers.IntegerField()
    pages = serializers.IntegerField()
    blocklists = BlocklistItemSerializer(many=True)


class BlockedAddressSerializer(serializers.Serializer):
    recipient = serializers.CharField()
    account = serializers.CharField()
    messageId = serializers.CharField(required=False, help_text="The list message its "
                                      "recipient unsubscribed from")
    source = serializers.ChoiceField(choices=blocklists.SOURCES,
                                     help_text="api, one-click (a mail client's RFC 8058 "
                                               "POST) or form (the unsubscribe page)")
    reason = serializers.CharField()
    remoteAddress = serializers.CharField(required=False)
    userAgent = serializers.CharField(required=False)
    created = serializers.CharField(help_text="When it was added or last updated")


class BlocklistSerializer(BlocklistsSerializer):
    listId = serializers.CharField()
    addresses = BlockedAddressSerializer(many=True)
    blocklists = None


class BlocklistAddedSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    added = serializers.BooleanField(help_text="false when the address was on the list "
                                               "already (its entry is updated)")


class BlocklistDeletedSerializer(serializers.Serializer):
    deleted = serializers.BooleanField(help_text="false when the address was not on the list")


def _address(entry) -> dict:
    out = {"recipient": entry.recipient, "account": entry.account_id, "source": entry.source,
           "reason": entry.reason, "created": iso(entry.created_at)}
    for key, value in (("messageId", entry.message_id), ("remoteAddress", entry.remote_address),
                       ("userAgent", entry.user_agent)):
        if value:
            out[key] = value
    return out


class ListIdView(TenantScopedAPIView):
    def list_id(self) -> str:
        """The path's ``{listId}``, checked as a send's ``listId`` is."""
        list_id = self.kwargs["listId"]
        problem = blocklists.list_id_problem(list_id)
        if problem:
            raise InvalidInput("listId", problem)
        return list_id


class BlocklistsView(TenantScopedAPIView):
    @extend_schema(operation_id="listBlocklists", tags=TAGS, parameters=[PageQuerySerializer],
                   responses={200: BlocklistsSerializer}, summary="List blocklists",
                   description="Your lists that hold blocked addresses, by list id, with how "
                               "many each holds.")
    def get(self, request):
        query = self.validated(PageQuerySerializer, request.query_params)
        items, counters = paginate(blocklists.lists(self.tenant), query["page"],
                                   query["pageSize"])
        return Response({**counters, "blocklists": [
            {"listId": row["list_id"], "count": row["count"]} for row in items]})


class BlocklistView(ListIdView):
    @extend_schema(operation_id="getBlocklist", tags=TAGS,
                   parameters=[LIST_PARAM, PageQuerySerializer],
                   responses={200: BlocklistSerializer}, summary="List a blocklist's entries",
                   description="The list's blocked addresses, by address; 404 "
                               "`BlocklistNotFound` for a list that holds none.")
    def get(self, request, listId):
        list_id = self.list_id()
        query = self.validated(PageQuerySerializer, request.query_params)
        items, counters = paginate(blocklists.entries(self.tenant, list_id), query["page"],
                                   query["pageSize"])
        if not counters["total"]:
            raise BlocklistNotFound(list_id)
        return Response({"listId": list_id, **counters,
                         "addresses": [_address(entry) for entry in items]})

    @extend_schema(operation_id="addToBlocklist", tags=TAGS, parameters=[LIST_PARAM],
                   request=BlocklistAddSerializer, responses={200: BlocklistAddedSerializer},
                   summary="Add an address to a blocklist",
                   description="A send with this `listId` to the address is skipped from now "
                               "on. The list is made if it does not exist.")
    def post(self, request, listId):
        list_id = self.list_id()
        data = self.validated(BlocklistAddSerializer, request.data)
        account = self.account_named(data["account"])
        added = blocklists.add(
            self.tenant, list_id, data["recipient"], account.account_id, source="api",
            reason=data.get("reason") or "block", remote_address=client_address(request),
            user_agent=request.headers.get("User-Agent", ""))
        return Response({"success": True, "added": added})

    @extend_schema(operation_id="deleteFromBlocklist", tags=TAGS,
                   parameters=[LIST_PARAM, RecipientQuerySerializer],
                   responses={200: BlocklistDeletedSerializer},
                   summary="Remove an address from a blocklist",
                   description="Sends with this `listId` reach the address again. 404 "
                               "`BlocklistNotFound` for a list that holds no address.")
    def delete(self, request, listId):
        list_id = self.list_id()
        query = self.validated(RecipientQuerySerializer, request.query_params)
        if not blocklists.exists(self.tenant, list_id):
            raise BlocklistNotFound(list_id)
        return Response({"deleted": blocklists.remove(self.tenant, list_id,
                                                      query["recipient"])})
