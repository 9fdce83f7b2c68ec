"""Messages of a mailbox: the listing (from the index), one message (envelope from the index,
text parts from the server), flag changes, move, copy, delete, one at a time or in bulk, and
upload (APPEND). Thin views over ``mailboxes.listing``, ``mailboxes.reading``,
``mailboxes.message_writes`` and ``mailboxes.uploading``; the documented message shapes are in
``mailboxes.api.serializers``.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from accounts.api.permissions import true_option
from emailapi.api.serializers import QuerySerializer, StrictSerializer
from emailapi.api.views import ACCOUNT_PARAM
from mailboxes import listing, message_writes, reading, uploading
from mailboxes.api import serializers as s
from mailboxes.api.compose_serializer import (
    MessageFieldsSerializer,
    SubmittedReferenceSerializer,
    reference_answer,
)
from mailboxes.api.mail_views import MailboxAPIView
from mailboxes.api.search_serializer import SearchCriteriaSerializer

MESSAGE_PARAM = OpenApiParameter(
    "id", str, OpenApiParameter.PATH,
    description="Message id, or the message's emailId or Message-ID header (<...>, URL-encoded)")
TAGS = ["Message"]


# --- request and response shapes of the changes (EmailEngine's names) ----------------------


def _flags(help_text: str) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.CharField(max_length=128, trim_whitespace=False), required=False,
        max_length=100, help_text=help_text)


class FlagEditSerializer(StrictSerializer):
    add = _flags("Flags to add, e.g. \\Seen or a keyword")
    delete = _flags("Flags to remove")
    set = _flags("Replace all flags with these")

    def validate(self, attrs):
        if "set" in attrs and ("add" in attrs or "delete" in attrs):
            raise serializers.ValidationError({"set": ["Use set alone, or add/delete"]})
        return attrs


def _labels(help_text: str) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.CharField(max_length=225, trim_whitespace=False), required=False,
        max_length=100, help_text=help_text)


class LabelEditSerializer(FlagEditSerializer):
    add = _labels("Gmail labels to add: a label's name (Work, Clients/Acme) or a system "
                  "label (\\Important, \\Starred, \\Inbox)")
    delete = _labels("Gmail labels to remove")
    set = _labels("Replace all Gmail labels with these")


class MessageUpdateSerializer(StrictSerializer):
    flags = FlagEditSerializer(required=False)
    labels = LabelEditSerializer(
        required=False, help_text="Gmail labels (X-GM-LABELS: servers with X-GM-EXT-1 only; "
                                  "elsewhere a 400 LabelsUnsupported)")

    def validate(self, attrs):
        if not attrs.get("flags") and not attrs.get("labels"):
            raise serializers.ValidationError({"flags": ["Nothing to change"]})
        return attrs


class FlagsAnswerSerializer(serializers.Serializer):
    add = serializers.BooleanField(required=False)
    delete = serializers.BooleanField(required=False)
    set = serializers.BooleanField(required=False)


class MessageUpdateResultSerializer(serializers.Serializer):
    flags = FlagsAnswerSerializer(required=False)
    labels = FlagsAnswerSerializer(required=False)


class MoveSerializer(StrictSerializer):
    path = serializers.CharField(max_length=1024, trim_whitespace=False,
                                 help_text="Destination folder (or a special use: \\Archive)")
    source = serializers.CharField(
        max_length=1024, trim_whitespace=False, required=False,
        help_text="Accepted as EmailEngine does and not used: there it names the Gmail API's "
                  "source label; over IMAP the message's id already says its folder")


class MoveResultSerializer(serializers.Serializer):
    path = serializers.CharField()
    id = serializers.CharField(allow_null=True, help_text="The message's id in its new folder")
    uid = serializers.IntegerField(allow_null=True)


class DeleteQuerySerializer(QuerySerializer):
    force = serializers.BooleanField(default=False,
                                     help_text="Expunge at once instead of moving to Trash")


class MovedToSerializer(serializers.Serializer):
    destination = serializers.CharField()
    message = serializers.CharField(allow_null=True)
    uid = serializers.IntegerField(allow_null=True)


class DeleteResultSerializer(serializers.Serializer):
    deleted = serializers.BooleanField()
    moved = MovedToSerializer(required=False)


# --- bulk ---------------------------------------------------------------------------------


class BulkQuerySerializer(QuerySerializer):
    path = serializers.CharField(max_length=1024, trim_whitespace=False,
                                 help_text="The folder whose messages are changed")


class _Selection(StrictSerializer):
    search = SearchCriteriaSerializer(required=False,
                                      help_text="Messages matching this (IMAP SEARCH)")
    ids = serializers.ListField(child=serializers.CharField(max_length=256), required=False,
                                max_length=100_000, help_text="Or these message ids")

    def validate(self, attrs):
        if ("search" in attrs) == ("ids" in attrs):
            raise serializers.ValidationError({"search": ["Give search or ids (one of them)"]})
        return attrs


class BulkUpdateChangeSerializer(MessageUpdateSerializer):
    pass


class BulkUpdateSerializer(_Selection):
    update = BulkUpdateChangeSerializer()


class BulkMoveSerializer(_Selection):
    path = serializers.CharField(max_length=1024, trim_whitespace=False,
                                 help_text="Destination folder")


class BulkDeleteSerializer(_Selection):
    force = serializers.BooleanField(required=False, default=False,
                                     help_text="Expunge instead of moving to Trash")


class BulkUpdateResultSerializer(serializers.Serializer):
    flags = FlagsAnswerSerializer(required=False)
    labels = FlagsAnswerSerializer(required=False)
    matched = serializers.IntegerField(help_text="Messages selected")
    updated = serializers.IntegerField(help_text="Of those, still on the server and stored")
    changed = serializers.IntegerField(
        help_text="Of those, whose flags (or labels) really changed")


class BulkMoveResultSerializer(serializers.Serializer):
    path = serializers.CharField()
    matched = serializers.IntegerField()
    moved = serializers.IntegerField()
    idMap = serializers.ListField(child=serializers.ListField(child=serializers.CharField()),
                                  help_text="[old id, new id] pairs")


class BulkDeletedToTrashSerializer(BulkMoveResultSerializer):
    destination = serializers.CharField(help_text="The Trash folder they went to "
                                                  "(EmailEngine's name; `path` is the same)")


class BulkDeleteResultSerializer(serializers.Serializer):
    deleted = serializers.BooleanField()
    matched = serializers.IntegerField()
    expunged = serializers.IntegerField(required=False)
    moved = BulkDeletedToTrashSerializer(required=False)


class UploadSerializer(MessageFieldsSerializer):
    path = serializers.CharField(max_length=1024, trim_whitespace=False,
                                 help_text="Folder to store it in (or a special use: \\Drafts)")
    flags = serializers.ListField(child=serializers.CharField(max_length=128), required=False,
                                  max_length=50, help_text='e.g. ["\\\\Draft", "\\\\Seen"]')
    internalDate = serializers.DateTimeField(required=False,
                                             help_text="INTERNALDATE; default: now")

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if not set(attrs) - {"path", "flags", "internalDate"}:
            raise serializers.ValidationError(
                {"raw": ["Give raw, or structured fields (to, subject, text...)"]})
        return attrs


class UploadedSerializer(serializers.Serializer):
    id = serializers.CharField(allow_null=True)
    path = serializers.CharField()
    uid = serializers.IntegerField(allow_null=True)
    uidValidity = serializers.CharField(allow_null=True)
    seq = serializers.IntegerField(
        required=False, help_text="Its sequence number in the folder just after the upload "
                                  "(it changes as messages before it are deleted); absent "
                                  "when the server gave no UID for it")
    messageId = serializers.CharField(allow_null=True)
    reference = SubmittedReferenceSerializer(
        required=False, help_text="Only when a reference was given: whether it was found "
                                  "(false only with `ignoreMissing`), as submit answers")


# --- views ----------------------------------------------------------------------------------


class MessageListView(MailboxAPIView):
    """``GET`` (the listing) and ``PUT`` (flags of many) of ``account/{account}/messages``."""

    checked_by_service = True  # both find the folder with the account first

    @extend_schema(operation_id="listMessages", tags=TAGS,
                   parameters=[ACCOUNT_PARAM, s.MessagesQuerySerializer],
                   responses={200: s.MessageListSerializer}, summary="List messages",
                   description="Newest first, from the index (no IMAP round trip). Page with "
                               "`page`/`pageSize`, or follow `nextPageCursor` with `cursor`: a "
                               "cursor stays correct while messages arrive or vanish.")
    def get(self, request, account):
        query = self.validated(s.MessagesQuerySerializer, request.query_params)
        return Response(listing.tenant_page(self.tenant, account, query["path"], query["page"],
                                            query["pageSize"], query.get("cursor")))

    @extend_schema(operation_id="updateMessages", tags=TAGS,
                   parameters=[ACCOUNT_PARAM, BulkQuerySerializer],
                   request=BulkUpdateSerializer,
                   responses={200: BulkUpdateResultSerializer},
                   summary="Change flags or Gmail labels of many messages",
                   description="The messages of `path` matching `search` (IMAP SEARCH) or "
                               "listed in `ids`; one STORE per 1,000 UIDs.")
    def put(self, request, account):
        body = self.validated(BulkUpdateSerializer, request.data)
        email_account, folder, uids = _selected(self, account, request, body)
        return Response(message_writes.bulk_update(email_account, folder, uids,
                                                   body["update"].get("flags"),
                                                   body["update"].get("labels")))


class MessageView(MailboxAPIView):
    """``GET``, ``PUT`` (flags) and ``DELETE`` of ``account/{account}/message/{id}``."""

    def request_writes(self, request) -> str | None:
        """``markAsSeen=true`` stores \\Seen: a read that writes (``HasTokenScope``)."""
        if request.method in ("GET", "HEAD") and true_option(request, "markAsSeen"):
            return "markAsSeen=true changes the message"
        return None

    @extend_schema(operation_id="getMessage", tags=TAGS,
                   parameters=[ACCOUNT_PARAM, MESSAGE_PARAM, s.MessageQuerySerializer],
                   responses={200: s.MessageDetailSerializer}, summary="Get a message",
                   description="Envelope from the index; text parts fetched from the server "
                               "(only the parts needed, BODY.PEEK: flags never change unless "
                               "`markAsSeen=true`). `webSafeHtml`, `preProcessHtml` and "
                               "`embedAttachedImages` as EmailEngine; `documentStore` is "
                               "accepted and changes nothing.")
    def get(self, request, account, id):  # noqa: A002 - EmailEngine's path parameter name
        email_account = self.email_account
        query = self.validated(s.MessageQuerySerializer, request.query_params)
        text_type, html = s.text_options(query)
        return Response(reading.message_detail(
            email_account, id, text_type, query["maxBytes"], query["markAsSeen"],
            query["headers"], html, with_bounces=True))

    @extend_schema(operation_id="updateMessage", tags=TAGS, request=MessageUpdateSerializer,
                   parameters=[ACCOUNT_PARAM], responses={200: MessageUpdateResultSerializer},
                   summary="Change flags or Gmail labels",
                   description="`flags.add`/`delete` or `flags.set` (system flags such as "
                               "`\\Seen` or keywords); on Gmail (X-GM-EXT-1) also "
                               "`labels.add`/`delete` or `labels.set`; stored on the server, "
                               "then in the index (the next GET shows it), with one "
                               "`messageUpdated` (`changes.flags`, `changes.labels`).")
    def put(self, request, account, id):  # noqa: A002
        email_account = self.email_account
        body = self.validated(MessageUpdateSerializer, request.data)
        return Response(message_writes.update_message(email_account, id, body.get("flags"),
                                                      body.get("labels")))

    @extend_schema(operation_id="deleteMessage", tags=TAGS,
                   parameters=[ACCOUNT_PARAM, DeleteQuerySerializer],
                   responses={200: DeleteResultSerializer}, summary="Delete a message",
                   description="Moves it to the Trash special-use folder; `force=true`, a "
                               "message already in Trash, or no Trash: expunges that one UID.")
    def delete(self, request, account, id):  # noqa: A002
        email_account = self.email_account
        query = self.validated(DeleteQuerySerializer, request.query_params)
        return Response(message_writes.delete_message(email_account, id, query["force"]))


def _selected(view, account_id, request, body):
    query = view.validated(BulkQuerySerializer, request.query_params)
    folder = listing.tenant_folder(view.tenant, account_id, query["path"])
    account = folder.email_account
    uids = message_writes.matching_uids(account, folder, body.get("search"), body.get("ids"))
    return account, folder, uids


def _transfer(view, request, id: str, keep_source: bool) -> Response:  # noqa: A002
    email_account = view.email_account
    body = view.validated(MoveSerializer, request.data)
    return Response(message_writes.transfer_message(email_account, id, body["path"],
                                                    keep_source))


class MessageMoveView(MailboxAPIView):
    @extend_schema(operation_id="moveMessage", tags=TAGS, request=MoveSerializer,
                   parameters=[ACCOUNT_PARAM], responses={200: MoveResultSerializer},
                   summary="Move a message",
                   description="MOVE where the server has it, else COPY + STORE \\Deleted + "
                               "UID EXPUNGE of that UID only. Returns the new id and UID.")
    def put(self, request, account, id):  # noqa: A002
        return _transfer(self, request, id, keep_source=False)


class MessageCopyView(MailboxAPIView):
    @extend_schema(operation_id="copyMessage", tags=TAGS, request=MoveSerializer,
                   parameters=[ACCOUNT_PARAM], responses={200: MoveResultSerializer},
                   summary="Copy a message", description="COPY; returns the copy's id and UID.")
    def put(self, request, account, id):  # noqa: A002
        return _transfer(self, request, id, keep_source=True)


class BulkMoveView(MailboxAPIView):
    @extend_schema(operation_id="moveMessages", tags=TAGS,
                   parameters=[ACCOUNT_PARAM, BulkQuerySerializer],
                   request=BulkMoveSerializer, responses={200: BulkMoveResultSerializer},
                   summary="Move many messages",
                   description="The messages of `path` matching `search` or listed in `ids` "
                               "to the body's `path`; one MOVE per 1,000 UIDs.")
    def put(self, request, account):
        body = self.validated(BulkMoveSerializer, request.data)
        email_account, folder, uids = _selected(self, account, request, body)
        return Response(message_writes.bulk_move(email_account, folder, uids, body["path"]))


class BulkDeleteView(MailboxAPIView):
    @extend_schema(operation_id="deleteMessages", tags=TAGS,
                   parameters=[ACCOUNT_PARAM, BulkQuerySerializer],
                   request=BulkDeleteSerializer, responses={200: BulkDeleteResultSerializer},
                   summary="Delete many messages",
                   description="To Trash, or expunged (`force`, or already in Trash).")
    def post(self, request, account):
        body = self.validated(BulkDeleteSerializer, request.data)
        email_account, folder, uids = _selected(self, account, request, body)
        return Response(message_writes.bulk_delete(email_account, folder, uids, body["force"]))

    @extend_schema(operation_id="deleteMessagesPut", tags=TAGS,
                   parameters=[ACCOUNT_PARAM, BulkQuerySerializer],
                   request=BulkDeleteSerializer, responses={200: BulkDeleteResultSerializer},
                   summary="Delete many messages (EmailEngine's PUT)",
                   description="The same as POST, under the method EmailEngine uses.")
    def put(self, request, account):
        return self.post(request, account)


class UploadView(MailboxAPIView):
    @extend_schema(operation_id="uploadMessage", tags=TAGS, parameters=[ACCOUNT_PARAM],
                   request=UploadSerializer, responses={200: UploadedSerializer},
                   summary="Upload a message (APPEND)",
                   description="`raw` (base64 RFC 822, stored as given) or structured fields "
                               "(`from`, `to`, `subject`, `text`, `html`, `attachments`, "
                               "`reference` for reply/forward headers, as on submit: "
                               "`ignoreMissing` stores it even when the referenced message "
                               "is not found, and the answer's `reference.success` says "
                               "whether it was; Bcc is kept in a draft). An attachment "
                               "may be `reference`: the id of one of "
                               "this account's attachments, read from the mail server and "
                               "attached (404 `AttachmentNotFound` if there is none). "
                               "Indexed at once with one `messageNew`. An unknown `path` is "
                               "404 naming it.")
    def post(self, request, account):
        email_account = self.email_account
        body = self.validated(UploadSerializer, request.data)
        fields = {key: value for key, value in body.items()
                  if key not in ("path", "flags", "internalDate")}
        answer = uploading.upload(email_account, body["path"], fields,
                                  body.get("flags") or [], body.get("internalDate"),
                                  room=self.body_room())
        found = answer.pop("referenceFound")
        if fields.get("reference"):
            answer["reference"] = reference_answer(fields["reference"], found)
        return Response(UploadedSerializer(answer).data)
