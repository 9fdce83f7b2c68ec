"""Content fetched from the server on demand: a message's raw source and its attachments,
streamed. Under ASGI the body is an async iterator that pulls one chunk at a time from a worker
thread, so a 50 MB attachment never sits in the web process's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import unicodedata
from urllib.parse import quote

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response

from emailapi.api.asgi_handler import close_when_request_ends
from emailapi.api.views import ACCOUNT_PARAM
from mailboxes import reading
from mailboxes.api import serializers as s
from mailboxes.api.mail_views import MailboxAPIView
from mailboxes.api.messages import MESSAGE_PARAM

TEXT_PARAM = OpenApiParameter("text", str, OpenApiParameter.PATH,
                              description="Text id (a message's text.id)")
ATTACHMENT_PARAM = OpenApiParameter("attachment", str, OpenApiParameter.PATH,
                                    description="Attachment id (from the message's attachments)")
_END = object()
SOURCE_DISPOSITION = "attachment; filename=message.eml"


class MessageSourceView(MailboxAPIView):
    @extend_schema(operation_id="getMessageSource", tags=["Message"],
                   parameters=[ACCOUNT_PARAM, MESSAGE_PARAM],
                   responses={(200, "message/rfc822"): OpenApiResponse(OpenApiTypes.BINARY)},
                   summary="Raw message",
                   description="The RFC 822 source, streamed, as a download named "
                               "message.eml (EmailEngine's Content-Disposition).")
    def get(self, request, account, id):  # noqa: A002
        download = reading.source_download(self.email_account, id)
        response = stream_download(request, download, attachment=False)
        response["Content-Disposition"] = SOURCE_DISPOSITION
        return response


class AttachmentView(MailboxAPIView):
    @extend_schema(operation_id="getAttachment", tags=["Message"],
                   parameters=[ACCOUNT_PARAM, ATTACHMENT_PARAM],
                   responses={(200, "*/*"): OpenApiResponse(OpenApiTypes.BINARY)},
                   summary="Download an attachment",
                   description="Decoded, streamed, with its Content-Type and an RFC 6266 "
                               "Content-Disposition carrying both `filename` (an ASCII "
                               "fallback) and `filename*` (RFC 5987, UTF-8).")
    def get(self, request, account, attachment):
        download = reading.attachment_download(self.email_account, attachment)
        return stream_download(request, download, attachment=True)


class TextView(MailboxAPIView):
    @extend_schema(operation_id="getMessageText", tags=["Message"],
                   parameters=[ACCOUNT_PARAM, TEXT_PARAM, s.TextQuerySerializer],
                   responses={200: s.TextContentSerializer}, summary="Get a message's text",
                   description="EmailEngine's text route: the plain and HTML bodies that a "
                               "listed message's `text.id` names (BODY.PEEK: flags never "
                               "change).")
    def get(self, request, account, text):
        query = self.validated(s.TextQuerySerializer, request.query_params)
        text_type, html = s.text_options(query)
        return Response(reading.message_text(self.email_account, text, text_type,
                                             query["maxBytes"], html))


def stream_download(request, download: reading.Download,
                    attachment: bool) -> StreamingHttpResponse:
    """*download* as a streamed response, for the API (a DRF request) and the dashboard (a
    Django one) alike."""
    chunks = download.chunks()
    if isinstance(getattr(request, "_request", request), ASGIRequest):
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
        response["Content-Disposition"] = attachment_disposition(
            download.filename or "attachment")
    return response


def attachment_disposition(filename: str) -> str:
    """``attachment; filename="<ASCII fallback>"; filename*=utf-8''<percent-encoded>``: both
    forms (RFC 6266 section 4.3), so clients that read only ``filename`` (as EmailEngine's
    users may) still get a name, and those that read ``filename*`` get the exact one."""
    name = " ".join(filename.replace("\r", " ").replace("\n", " ").split()) or "attachment"
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    ascii_name = "".join(c if c.isprintable() else "_" for c in ascii_name).strip()
    if not ascii_name or ascii_name.startswith("."):  # nothing but an extension was ASCII
        ascii_name = f"attachment{ascii_name}"
    fallback = ascii_name.replace("\\", "\\\\").replace('"', '\\"')
    return f"attachment; filename=\"{fallback}\"; filename*=utf-8''{quote(name, safe='')}"


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
