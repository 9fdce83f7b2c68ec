"""Conversations from the index's ``threadId``: the list of threads, and one thread's
messages across folders (``mailboxes.index_search``)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from emailapi.api.errors import NotFoundError
from emailapi.api.pagination import PageQuerySerializer
from emailapi.api.views import ACCOUNT_PARAM
from mailboxes import index_search, listing
from mailboxes.api.mail_views import MailboxAPIView
from mailboxes.api.serializers import AddressSerializer, MessageSummarySerializer


class ThreadsQuerySerializer(PageQuerySerializer):
    path = serializers.CharField(max_length=1024, trim_whitespace=False, required=False,
                                 help_text="Only threads with messages in this folder")


class ThreadSerializer(serializers.Serializer):
    threadId = serializers.CharField()
    messages = serializers.IntegerField()
    subject = serializers.CharField(allow_blank=True)
    firstDate = serializers.DateTimeField(allow_null=True)
    lastDate = serializers.DateTimeField(allow_null=True)
    unseen = serializers.IntegerField()
    participants = AddressSerializer(many=True)


class ThreadListSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    page = serializers.IntegerField()
    pages = serializers.IntegerField()
    threads = ThreadSerializer(many=True)


class ThreadMessagesSerializer(serializers.Serializer):
    threadId = serializers.CharField()
    messages = MessageSummarySerializer(many=True)


class ThreadListView(MailboxAPIView):
    @extend_schema(operation_id="listThreads", tags=["Message"],
                   parameters=[ACCOUNT_PARAM, ThreadsQuerySerializer],
                   responses={200: ThreadListSerializer}, summary="List threads",
                   description="Conversations from the index's threadId, newest activity "
                               "first, with message count and participants.")
    def get(self, request, account):
        email_account = self.email_account
        options = self.validated(ThreadsQuerySerializer, request.query_params)
        folder = listing.folder_for_path(email_account, options["path"]) \
            if options.get("path") else None
        return Response(index_search.threads(email_account, folder, options["page"],
                                             options["pageSize"]))


class ThreadView(MailboxAPIView):
    @extend_schema(operation_id="getThread", tags=["Message"],
                   parameters=[ACCOUNT_PARAM, OpenApiParameter("thread", str,
                                                               OpenApiParameter.PATH)],
                   responses={200: ThreadMessagesSerializer}, summary="A thread's messages",
                   description="Every message of the conversation, across folders, oldest "
                               "first; 404 for an unknown thread.")
    def get(self, request, account, thread):
        email_account = self.email_account
        messages = index_search.thread_messages(email_account, thread)
        if not messages:
            raise NotFoundError(f"Thread {thread!r} not found", "ThreadNotFound")
        return Response({"threadId": thread, "messages": messages})
