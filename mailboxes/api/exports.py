"""EmailEngine's bulk export routes: ``POST /v1/account/{account}/export``, ``GET``/``DELETE
.../export/{exportId}``, ``GET .../export/{exportId}/download`` and ``GET .../exports``. Thin
views over ``mailboxes.exports``, answering EmailEngine's shapes; an export is seen only
through its account, so another tenant's id is a 404 like an unknown one."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from emailapi.api.pagination import PageQuerySerializer, paginate
from emailapi.api.serializers import StrictSerializer
from emailapi.api.views import ACCOUNT_PARAM, TenantScopedAPIView
from mailboxes import exports
from mailboxes.api.compose_serializer import OneOrListField
from mailboxes.api.mail_views import MailboxAPIView

TAGS = ["Export"]
EXPORT_PARAM = OpenApiParameter("exportId", str, OpenApiParameter.PATH,
                                description="Export id (exp_ and 24 hex digits)")


class ExportRequestSerializer(StrictSerializer):
    folders = OneOrListField(
        child=serializers.CharField(max_length=1024, trim_whitespace=False), required=False,
        max_length=1000, help_text="Folder paths or special uses (\\Inbox, \\Sent) to export; "
                                   "none: every folder but Junk and Trash")
    startDate = serializers.DateTimeField(help_text="Messages from this time (INTERNALDATE)")
    endDate = serializers.DateTimeField(help_text="Messages before this time")
    textType = serializers.ChoiceField(choices=["plain", "html", "*"], default="*",
                                       help_text="Text content to include")
    maxBytes = serializers.IntegerField(
        min_value=0, max_value=2**31 - 1, default=exports.DEFAULT_MAX_BYTES,
        help_text="Truncate each text part to this many bytes (0: unlimited)")
    includeAttachments = serializers.BooleanField(
        default=False, help_text="Each attachment's content, base64, in `content`")

    def validate(self, attrs):
        if attrs["endDate"] <= attrs["startDate"]:
            raise serializers.ValidationError({"endDate": ["Must be after startDate"]})
        return attrs


class ExportCreatedSerializer(serializers.Serializer):
    exportId = serializers.CharField()
    status = serializers.CharField()
    created = serializers.CharField()


class ExportProgressSerializer(serializers.Serializer):
    foldersScanned = serializers.IntegerField()
    foldersTotal = serializers.IntegerField()
    messagesQueued = serializers.IntegerField()
    messagesExported = serializers.IntegerField()
    messagesSkipped = serializers.IntegerField(help_text="Gone from the server meanwhile, or "
                                               "larger than the export message size limit")
    bytesWritten = serializers.IntegerField(help_text="NDJSON bytes, before gzip")


class ExportStatusSerializer(serializers.Serializer):
    exportId = serializers.CharField()
    status = serializers.ChoiceField(choices=["queued", "processing", "completed", "failed"])
    phase = serializers.ChoiceField(choices=["indexing", "exporting", "complete"],
                                    required=False)
    folders = serializers.ListField(child=serializers.CharField())
    startDate = serializers.CharField()
    endDate = serializers.CharField()
    isEncrypted = serializers.BooleanField(
        help_text="EmailEngine's: whether the file is encrypted at rest. Always false here: "
                  "the file is kept as plain gzip in PostgreSQL, readable by whoever reads "
                  "the database, until it expires or is deleted")
    progress = ExportProgressSerializer()
    created = serializers.CharField()
    expiresAt = serializers.CharField()
    error = serializers.CharField(allow_null=True)


class ExportEntrySerializer(serializers.Serializer):
    exportId = serializers.CharField()
    status = serializers.CharField()
    created = serializers.CharField()
    expiresAt = serializers.CharField()


class ExportListSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    page = serializers.IntegerField()
    pages = serializers.IntegerField()
    exports = ExportEntrySerializer(many=True)


class ExportDeletedSerializer(serializers.Serializer):
    deleted = serializers.BooleanField()


class ExportCreateView(MailboxAPIView):
    @extend_schema(operation_id="createExport", tags=TAGS, parameters=[ACCOUNT_PARAM],
                   request=ExportRequestSerializer, responses={200: ExportCreatedSerializer},
                   summary="Create export",
                   description="Queues a bulk export of the messages in the folders and date "
                               "range: a gzip NDJSON file, one line per message as `GET "
                               ".../message/{id}` shows it. `exportCompleted` or "
                               "`exportFailed` says when it ends. 429 `TooManyExports` when the "
                               "account has the most exports queued or running.")
    def post(self, request, account):
        email_account = self.email_account
        data = self.validated(ExportRequestSerializer, request.data)
        export = exports.create(email_account, data.get("folders") or [], data["startDate"],
                                data["endDate"], data["textType"], data["maxBytes"],
                                data["includeAttachments"])
        return Response({"exportId": export.export_id, "status": export.status,
                         "created": exports.status(export)["created"]})


class ExportView(TenantScopedAPIView):
    @extend_schema(operation_id="getExport", tags=TAGS, parameters=[ACCOUNT_PARAM, EXPORT_PARAM],
                   responses={200: ExportStatusSerializer}, summary="Get export status",
                   description="The export's status and progress; 404 `ExportNotFound` once "
                               "it expired or was deleted.")
    def get(self, request, account, exportId):
        return Response(exports.status(exports.get(self.email_account, exportId)))

    @extend_schema(operation_id="deleteExport", tags=TAGS,
                   parameters=[ACCOUNT_PARAM, EXPORT_PARAM],
                   responses={200: ExportDeletedSerializer}, summary="Delete export",
                   description="Cancels a pending export or deletes a finished one, with its "
                               "file.")
    def delete(self, request, account, exportId):
        exports.delete(self.email_account, exportId)
        return Response({"deleted": True})


class ExportDownloadView(TenantScopedAPIView):
    @extend_schema(operation_id="downloadExport", tags=TAGS,
                   parameters=[ACCOUNT_PARAM, EXPORT_PARAM],
                   responses={(200, "application/gzip"): OpenApiResponse(OpenApiTypes.BINARY)},
                   summary="Download export file",
                   description="The completed export as gzip-compressed NDJSON, streamed; 400 "
                               "`ExportNotReady` before it completed.")
    def get(self, request, account, exportId):
        export = exports.get(self.email_account, exportId)
        seqs, size = exports.file_chunks(export)
        if isinstance(getattr(request, "_request", request), ASGIRequest):
            content = _async_chunks(export, seqs)
        else:
            content = (exports.read_chunk(export, seq) for seq in seqs)
        response = StreamingHttpResponse(content, content_type="application/gzip")
        response["Content-Disposition"] = f'attachment; filename="{export.export_id}.ndjson.gz"'
        response["Content-Encoding"] = "identity"
        # A download cut short (the export deleted meanwhile: exports.ExportVanished) must not
        # pass for the whole file with chunked encoding's clean end.
        response["Content-Length"] = str(size)
        return response


async def _async_chunks(export, seqs):
    """Under ASGI each chunk is read on the thread Django's ORM uses for sync code, one at a
    time: the file never sits whole in the web process's memory."""
    read = sync_to_async(exports.read_chunk)
    for seq in seqs:
        yield await read(export, seq)


class ExportListView(TenantScopedAPIView):
    @extend_schema(operation_id="listExports", tags=TAGS,
                   parameters=[ACCOUNT_PARAM, PageQuerySerializer],
                   responses={200: ExportListSerializer}, summary="List exports",
                   description="The account's exports not yet expired, newest first.")
    def get(self, request, account):
        email_account = self.email_account
        query = self.validated(PageQuerySerializer, request.query_params)
        items, counters = paginate(exports.newest_first(email_account), query["page"],
                                   query["pageSize"])
        return Response({**counters, "exports": [exports.entry(item) for item in items]})
