"""The read API: mailboxes, message lists, messages, raw source and attachments.

Thin views: listings come from ``mailboxes.listing`` (the index), content from
``mailboxes.reading`` (the server, on demand). Downloads stream: under ASGI through an async
iterator that pulls one chunk at a time from a worker thread, so a 50 MB attachment never sits
in the web process's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import math

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response

from accounts.api.permissions import true_option
from accounts.api.views import ACCOUNT_PARAM
from emailapi.api.asgi_handler import close_when_request_ends
from emailapi.api.errors import ApiError, NotFoundError
from emailapi.api.serializers import StrictSerializer
from emailapi.api.views import TenantScopedAPIView
from mailboxes import index_search, listing, message_fields, reading
from mailboxes.api import query
from mailboxes.api import serializers as s
from mailboxes.api.message_write_views import BulkUpdateMixin, MessageWriteMixin
from mailboxes.api.search_serializer import SearchCriteriaSerializer
from mailboxes.command_pool import pool
from mailboxes.imap import search
from mailboxes.models import Message

MESSAGE_PARAM = OpenApiParameter("id", str, OpenApiParameter.PATH, description="Message id")
ATTACHMENT_PARAM = OpenApiParameter("attachment", str, OpenApiParameter.PATH,
                                    description="Attachment id (from the message's attachments)")
_END = object()


class SearchRequestSerializer(StrictSerializer):
    search = SearchCriteriaSerializer(required=False, help_text="Search criteria")


class MailboxListView(TenantScopedAPIView):
    @extend_schema(operation_id="listMailboxes", tags=["Mailbox"],
                   parameters=[ACCOUNT_PARAM, s.MailboxesQuerySerializer],
                   responses={200: s.MailboxListSerializer}, summary="List folders",
                   description="Folders from the index with counts; `counters=true` asks the "
                               "server (STATUS) for current counts instead.")
    def get(self, request, account):
        email_account = self.get_account(account)
        query = self.validated(s.MailboxesQuerySerializer, request.query_params)
        folders = listing.folders_of(email_account)
        summaries = [listing.folder_summary(f) for f in folders]
        if query["counters"]:
            with pool.session(email_account) as session:
                for summary, folder in zip(summaries, folders, strict=True):
                    if folder.no_select:
                        continue
                    status = session.status(folder.path)
                    summary.update(messages=status.messages, unseen=status.unseen,
                                   uidNext=status.uidnext)
        return Response({"mailboxes": summaries})


class MessageListView(BulkUpdateMixin, TenantScopedAPIView):
    @extend_schema(operation_id="listMessages", tags=["Message"],
                   parameters=[ACCOUNT_PARAM, s.MessagesQuerySerializer],
                   responses={200: s.MessageListSerializer}, summary="List messages",
                   description="Newest first, from the index (no IMAP round trip). Page with "
                               "`page`/`pageSize`, or follow `nextPageCursor` with `cursor`: a "
                               "cursor stays correct while messages arrive or vanish.")
    def get(self, request, account):
        query = self.validated(s.MessagesQuerySerializer, request.query_params)
        return Response(listing.tenant_page(self.tenant, account, query["path"], query["page"],
                                            query["pageSize"], query.get("cursor")))


class MessageView(MessageWriteMixin, TenantScopedAPIView):
    def request_writes(self, request) -> str | None:
        """``markAsSeen=true`` stores \\Seen: a read that writes (``HasTokenScope``)."""
        if request.method in ("GET", "HEAD") and true_option(request, "markAsSeen"):
            return "markAsSeen=true changes the message"
        return None

    @extend_schema(operation_id="getMessage", tags=["Message"],
                   parameters=[ACCOUNT_PARAM, MESSAGE_PARAM, s.MessageQuerySerializer],
                   responses={200: s.MessageDetailSerializer}, summary="Get a message",
                   description="Envelope from the index; text parts fetched from the server "
                               "(only the parts needed, BODY.PEEK: flags never change unless "
                               "`markAsSeen=true`).")
    def get(self, request, account, id):  # noqa: A002 - EmailEngine's path parameter name
        email_account = self.get_account(account)
        query = self.validated(s.MessageQuerySerializer, request.query_params)
        return Response(reading.message_detail(
            email_account, id, query["textType"], query["maxBytes"], query["markAsSeen"],
            query["headers"]))


class MessageSourceView(TenantScopedAPIView):
    @extend_schema(operation_id="getMessageSource", tags=["Message"],
                   parameters=[ACCOUNT_PARAM, MESSAGE_PARAM],
                   responses={(200, "message/rfc822"): OpenApiResponse(OpenApiTypes.BINARY)},
                   summary="Raw message", description="The RFC 822 source, streamed.")
    def get(self, request, account, id):  # noqa: A002
        download = reading.source_download(self.get_account(account), id)
        return _stream(request, download, attachment=False)


class AttachmentView(TenantScopedAPIView):
    @extend_schema(operation_id="getAttachment", tags=["Message"],
                   parameters=[ACCOUNT_PARAM, ATTACHMENT_PARAM],
                   responses={(200, "*/*"): OpenApiResponse(OpenApiTypes.BINARY)},
                   summary="Download an attachment",
                   description="Decoded, streamed, with its Content-Type and an RFC 6266 "
                               "Content-Disposition.")
    def get(self, request, account, attachment):
        download = reading.attachment_download(self.get_account(account), attachment)
        return _stream(request, download, attachment=True)


def _stream(request, download: reading.Download, attachment: bool) -> StreamingHttpResponse:
    chunks = download.chunks()
    if isinstance(request._request, ASGIRequest):
        content = _async_chunks(chunks)
    else:
        content = chunks
    response = StreamingHttpResponse(content, content_type=download.content_type)
    # However the response ends (sent, aborted, never read, or dropped unsent when the client
    # left during the view), the connection goes back to the pool explicitly, never through
    # garbage collection (which may close its socket first).
    response._resource_closers.append(download.close)
    close_when_request_ends(request, download.close)
    if download.length is not None:
        response["Content-Length"] = str(download.length)
    if attachment:
        response["Content-Disposition"] = content_disposition_header(
            True, download.filename or "attachment")
    return response


async def _async_chunks(chunks):
    """Pull a sync generator one chunk at a time on a thread (Django would otherwise read a
    sync iterator to the end, into memory, before sending a byte under ASGI).

    A client that leaves cancels this while a chunk is being fetched on its thread, which
    cannot be interrupted: the fetch is let finish (shielded) before the generator is
    closed. Otherwise the close fails ("generator already executing") and the download's
    clean-up finds its IMAP connection mid-FETCH and closes it under the reading thread,
    instead of giving it back for the next request."""
    step = sync_to_async(next, thread_sensitive=False)
    fetching = None
    try:
        while True:
            fetching = asyncio.ensure_future(step(chunks, _END))
            chunk = await asyncio.shield(fetching)
            if chunk is _END:
                return
            yield chunk
    finally:
        if fetching is not None and not fetching.done():
            with contextlib.suppress(Exception):
                await fetching
        await sync_to_async(chunks.close, thread_sensitive=False)()


class SearchView(TenantScopedAPIView):
    """``GET`` (criteria as ``search[...]`` query parameters) and ``POST`` (``{"search"}``).
    Both only read, so a ``read`` token may POST a search too."""

    read_only_post = True

    @extend_schema(operation_id="searchMessagesGet", tags=["Message"],
                   parameters=[ACCOUNT_PARAM, s.SearchQuerySerializer],
                   responses={200: s.MessageSearchListSerializer}, summary="Search (GET)",
                   description="Criteria as `search[from]=...`, `search[seen]=false`, "
                               "`search[or][0][subject]=...`; otherwise as POST.")
    def get(self, request, account):
        params = {k: v for k, v in request.query_params.items() if not k.startswith("search[")}
        options = self.validated(s.SearchQuerySerializer, params)
        try:
            criteria = query.nested(request.query_params, "search")
        except query.BadQuery as exc:
            raise ApiError(f"Invalid input: search: {exc}", "InputValidationError",
                           details={"search": [str(exc)]}) from None
        return self._search(account, options, self.validated(
            SearchCriteriaSerializer, criteria, context={"source": options["source"]}))

    @extend_schema(operation_id="searchMessages", tags=["Message"],
                   parameters=[ACCOUNT_PARAM, s.SearchQuerySerializer],
                   request=SearchRequestSerializer,
                   responses={200: s.MessageSearchListSerializer}, summary="Search",
                   description="IMAP SEARCH on the server (default: bodies and any header, "
                               "UTF-8 aware, values sent as literals so nothing can inject "
                               "IMAP syntax), or `source=index` for the index alone (subject, "
                               "addresses, dates, flags, ids; every folder when `path` is "
                               "omitted). Newest first, paged like listings.")
    def post(self, request, account):
        options = self.validated(s.SearchQuerySerializer, request.query_params)
        body = self.validated(SearchRequestSerializer, request.data,
                              context={"source": options["source"]})
        return self._search(account, options, body.get("search") or {})

    def _search(self, account_id: str, options: dict, criteria: dict) -> Response:
        """*criteria* validated for the ``source`` of *options* (index-only criteria only
        reach an index search)."""
        from_index = options["source"] == "index"
        if options.get("path"):  # account and folder in one query
            folder = listing.tenant_folder(self.tenant, account_id, options["path"],
                                           with_account=not from_index)
            account_pk = folder.account_id
        else:
            folder = None
            account_pk = self.get_account(account_id).pk
        if from_index:
            return Response(index_search.search(account_pk, folder, criteria,
                                                options["page"], options["pageSize"]))
        if folder is None:
            raise ApiError("path is required for an IMAP search", "InputValidationError",
                           details={"path": ["This field is required."]})
        return Response(imap_search(folder.account, folder, criteria, options["page"],
                                    options["pageSize"]))


def imap_search(account, folder, criteria, page: int, page_size: int) -> dict:
    with pool.session(account) as session:
        try:
            uids = session.run_current(
                folder.path, lambda: search.uid_search(session.client, criteria))
        except search.InvalidSearch as exc:
            raise ApiError(f"Invalid search: {exc.message}", "InputValidationError",
                           details={exc.path or "search": [exc.message]}) from None
    uids.sort(reverse=True)
    chosen = uids[page * page_size:(page + 1) * page_size]
    rows = {row.uid: row for row in Message.objects.filter(folder=folder, uid__in=chosen)}
    return {"total": len(uids), "page": page,
            "pages": max(1, math.ceil(len(uids) / page_size)),
            "messages": [message_fields.summary(folder, rows[uid]) for uid in chosen
                         if uid in rows]}


class ThreadListView(TenantScopedAPIView):
    @extend_schema(operation_id="listThreads", tags=["Message"],
                   parameters=[ACCOUNT_PARAM, s.ThreadsQuerySerializer],
                   responses={200: s.ThreadListSerializer}, summary="List threads",
                   description="Conversations from the index's threadId, newest activity "
                               "first, with message count and participants.")
    def get(self, request, account):
        email_account = self.get_account(account)
        options = self.validated(s.ThreadsQuerySerializer, request.query_params)
        folder = listing.folder_for_path(email_account, options["path"]) \
            if options.get("path") else None
        return Response(index_search.threads(email_account, folder, options["page"],
                                             options["pageSize"]))


class ThreadView(TenantScopedAPIView):
    @extend_schema(operation_id="getThread", tags=["Message"],
                   parameters=[ACCOUNT_PARAM, OpenApiParameter("thread", str,
                                                               OpenApiParameter.PATH)],
                   responses={200: s.ThreadMessagesSerializer}, summary="A thread's messages",
                   description="Every message of the conversation, across folders, oldest "
                               "first; 404 for an unknown thread.")
    def get(self, request, account, thread):
        email_account = self.get_account(account)
        messages = index_search.thread_messages(email_account, thread)
        if not messages:
            raise NotFoundError(f"Thread {thread!r} not found", "ThreadNotFound")
        return Response({"threadId": thread, "messages": messages})
