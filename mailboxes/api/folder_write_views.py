"""Folder routes (create, rename, delete) and message upload: thin views over
``mailboxes.folder_writes``."""

from __future__ import annotations

import base64
import binascii

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from accounts.api.views import ACCOUNT_PARAM
from emailapi.api.serializers import QuerySerializer, StrictSerializer
from emailapi.api.views import TenantScopedAPIView
from mailboxes import composing, folder_writes
from mailboxes.api.compose_fields import STRUCTURED, MessageFieldsSerializer


class PathField(serializers.JSONField):
    """A folder path as a string, or a list of names joined with the server's delimiter."""

    def to_internal_value(self, data):
        if isinstance(data, str) and data.strip() and len(data) <= 1024:
            return data
        if (isinstance(data, list) and data and len(data) <= 32
                and all(isinstance(p, str) and p and len(p) <= 255 for p in data)):
            return data
        raise serializers.ValidationError("A folder path, or a list of folder names")


class CreateFolderSerializer(StrictSerializer):
    path = PathField(help_text='"Parent/Child" or ["Parent", "Child"]')


class RenameFolderSerializer(StrictSerializer):
    path = serializers.CharField(max_length=1024, trim_whitespace=False)
    newPath = PathField()


class FolderQuerySerializer(QuerySerializer):
    path = serializers.CharField(max_length=1024, trim_whitespace=False)


class FolderCreatedSerializer(serializers.Serializer):
    path = serializers.CharField()
    created = serializers.BooleanField()


class FolderRenamedSerializer(serializers.Serializer):
    path = serializers.CharField()
    newPath = serializers.CharField()
    renamed = serializers.BooleanField()


class FolderDeletedSerializer(serializers.Serializer):
    path = serializers.CharField()
    deleted = serializers.BooleanField()


class FolderView(TenantScopedAPIView):
    @extend_schema(operation_id="createMailbox", tags=["Mailbox"], parameters=[ACCOUNT_PARAM],
                   request=CreateFolderSerializer, responses={200: FolderCreatedSerializer},
                   summary="Create a folder",
                   description="Parents are joined with the server's delimiter; an existing "
                               "folder is 409 MailboxExists. Raises mailboxNew.")
    def post(self, request, account):
        email_account = self.get_account(account)
        body = self.validated(CreateFolderSerializer, request.data)
        return Response(folder_writes.create_folder(email_account, body["path"]))

    @extend_schema(operation_id="renameMailbox", tags=["Mailbox"], parameters=[ACCOUNT_PARAM],
                   request=RenameFolderSerializer, responses={200: FolderRenamedSerializer},
                   summary="Rename a folder",
                   description="mailboxDeleted for the old path and mailboxNew for the new; "
                               "its messages get new ids (ids carry the folder).")
    def put(self, request, account):
        email_account = self.get_account(account)
        body = self.validated(RenameFolderSerializer, request.data)
        return Response(folder_writes.rename_folder(email_account, body["path"],
                                                    body["newPath"]))

    @extend_schema(operation_id="deleteMailbox", tags=["Mailbox"],
                   parameters=[ACCOUNT_PARAM, FolderQuerySerializer],
                   responses={200: FolderDeletedSerializer}, summary="Delete a folder",
                   description="INBOX cannot be deleted (400); an unknown folder is 404.")
    def delete(self, request, account):
        email_account = self.get_account(account)
        query = self.validated(FolderQuerySerializer, request.query_params)
        return Response(folder_writes.delete_folder(email_account, query["path"]))


class UploadSerializer(MessageFieldsSerializer):
    path = serializers.CharField(max_length=1024, trim_whitespace=False,
                                 help_text="Folder to store the message in, e.g. Drafts")
    flags = serializers.ListField(child=serializers.CharField(max_length=128), required=False,
                                  max_length=50)
    raw = serializers.CharField(required=False, help_text="The whole RFC 822 message, base64")

    def validate_raw(self, value: str) -> bytes:
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise serializers.ValidationError("Not valid base64") from None
        if not raw.strip():
            raise serializers.ValidationError("The message is empty")
        return raw

    def validate(self, attrs):
        structured = [name for name in STRUCTURED if name in attrs]
        if "raw" in attrs and structured:
            raise serializers.ValidationError(
                {"raw": [f"Give raw or structured fields, not both ({structured[0]})"]})
        return attrs


class UploadedSerializer(serializers.Serializer):
    id = serializers.CharField(allow_null=True)
    path = serializers.CharField()
    uid = serializers.IntegerField(allow_null=True)
    messageId = serializers.CharField(allow_null=True)


class UploadView(TenantScopedAPIView):
    max_body_size = 35 * 1024 * 1024  # a message with attachments, base64 in JSON

    @extend_schema(operation_id="uploadMessage", tags=["Message"], parameters=[ACCOUNT_PARAM],
                   request=UploadSerializer, responses={200: UploadedSerializer},
                   summary="Upload a message (APPEND)",
                   description="`raw` (base64 RFC 822) or structured fields (`from`, `to`, "
                               "`subject`, `text`, `html`, `attachments`, `reference` for "
                               "reply/forward headers). Indexed at once; raises messageNew.")
    def post(self, request, account):
        email_account = self.get_account(account)
        body = self.validated(UploadSerializer, request.data)
        if "raw" in body:
            raw, message_id = body["raw"], None
        else:
            raw, message_id = composing.build(email_account, body, keep_bcc=True)
        return Response(folder_writes.upload(email_account, body["path"], raw,
                                             body.get("flags") or [], message_id))
