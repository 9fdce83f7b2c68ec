"""Folders of a mailbox: list (from the index, or with live counts), create, rename or
subscribe, delete. Thin views over ``mailboxes.listing`` and ``mailboxes.folder_writes``, under
EmailEngine's paths and names."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.response import Response

from emailapi.api.serializers import QuerySerializer, StrictSerializer
from emailapi.api.views import ACCOUNT_PARAM
from mailboxes import folder_writes, listing, special_use
from mailboxes.api.mail_views import MailboxAPIView
from mailboxes.command_pool import pool
from mailboxes.imap.folder_ops import WILDCARDS

MAX_SEGMENTS = 32


def _segment_problem(segment) -> str | None:
    if not isinstance(segment, str) or not segment or len(segment) > 255:
        return "Each folder name must be a non-empty string of at most 255 characters"
    if any(c in segment for c in "\r\n\0" + WILDCARDS):
        return f"Folder names cannot contain line breaks or {WILDCARDS!r}"
    return None


@extend_schema_field({"oneOf": [{"type": "string"},
                                {"type": "array", "items": {"type": "string"}}]})
class PathField(serializers.Field):
    """``"Parent/Child"`` as the server spells it, or ``["Parent", "Child"]`` (joined with
    the server's delimiter)."""

    def __init__(self, new: bool = False, **kwargs):
        """``new``: the path a folder is given (created, renamed to), which cannot start with
        a backslash: every route reads such a path as a special use (``\\Trash``), so a
        folder of that name could never be named again (a delete of ``\\Trash`` deletes
        the Trash folder)."""
        super().__init__(**kwargs)
        self.new = new

    def to_internal_value(self, data):
        segments = data if isinstance(data, list) else [data]
        if not segments or len(segments) > MAX_SEGMENTS or (
                isinstance(data, str) and len(data) > 1024):
            raise serializers.ValidationError("A folder path, or a list of folder names")
        for segment in segments:
            problem = _segment_problem(segment)
            if problem:
                raise serializers.ValidationError(problem)
        if self.new and segments[0].startswith("\\"):
            raise serializers.ValidationError(
                "A path starting with \\ names a special-use folder (\\Trash): a new folder "
                "cannot take one")
        return data

    def to_representation(self, value):
        return value


class CreateFolderSerializer(StrictSerializer):
    path = PathField(new=True, help_text='"Parent/Child" or ["Parent", "Child"]')


class UpdateFolderSerializer(StrictSerializer):
    path = PathField()
    newPath = PathField(new=True, required=False, help_text="Rename to this path")
    subscribed = serializers.BooleanField(required=False,
                                          help_text="Subscribe or unsubscribe")

    def validate(self, attrs):
        if "newPath" not in attrs and "subscribed" not in attrs:
            raise serializers.ValidationError({"newPath": ["Give newPath or subscribed"]})
        return attrs


class DeleteFolderQuerySerializer(QuerySerializer):
    path = serializers.CharField(max_length=1024, trim_whitespace=False)

    def validate_path(self, value: str) -> str:
        """No line break: Dovecot's NO to ``DELETE`` echoes the name decoded, so one in the
        name ends the server's line early and the rest reads as the answer to the next
        command on the pooled connection (a forged ``OK`` among them). No folder can have
        one: ``CREATE`` refuses it."""
        if any(c in value for c in "\r\n"):
            raise serializers.ValidationError("Folder paths cannot contain line breaks")
        return value


class FolderCreatedSerializer(serializers.Serializer):
    path = serializers.CharField()
    created = serializers.BooleanField(help_text="false: it already existed")


class FolderUpdatedSerializer(serializers.Serializer):
    path = serializers.CharField()
    newPath = serializers.CharField(required=False)
    renamed = serializers.BooleanField(required=False)
    subscribed = serializers.BooleanField(required=False)


class FolderDeletedSerializer(serializers.Serializer):
    path = serializers.CharField()
    deleted = serializers.BooleanField()


class MailboxesQuerySerializer(QuerySerializer):
    counters = serializers.BooleanField(
        default=False, help_text="Ask the server (STATUS) for current counts: adds `status: "
                                 "{messages, unseen}` and refreshes `messages`/`unseen`")
    order = serializers.ChoiceField(
        choices=["specialUse", "path"], default="specialUse",
        help_text="specialUse: EmailEngine's order (INBOX, Flagged, Sent, Drafts, All, Archive, "
                  "Junk, Trash, then the rest by path); path: INBOX first, then by path "
                  "case-insensitively")


class MailboxStatusSerializer(serializers.Serializer):
    messages = serializers.IntegerField(help_text="Messages in the folder (STATUS MESSAGES)")
    unseen = serializers.IntegerField(help_text="Messages without \\Seen (STATUS UNSEEN)")


class MailboxSerializer(serializers.Serializer):
    path = serializers.CharField()
    name = serializers.CharField()
    delimiter = serializers.CharField(allow_null=True)
    parentPath = serializers.CharField(allow_null=True)
    specialUse = serializers.CharField(allow_null=True)
    specialUseSource = serializers.ChoiceField(
        choices=["user", "extension", "name"], allow_null=True,
        help_text="How specialUse was found: the account's settings (user: imap.sentMailPath "
                  "and the like), the server's SPECIAL-USE attribute (extension) or the "
                  "folder's name (name: INBOX, or a usual name on servers without it)")
    listed = serializers.BooleanField(help_text="The server's LIST shows it (always true here)")
    subscribed = serializers.BooleanField()
    noSelect = serializers.BooleanField()
    noInferiors = serializers.BooleanField(
        help_text="The server says it cannot have subfolders (\\Noinferiors)")
    messages = serializers.IntegerField()
    unseen = serializers.IntegerField()
    uidValidity = serializers.CharField(allow_null=True)
    uidNext = serializers.IntegerField(allow_null=True)
    highestModseq = serializers.IntegerField(allow_null=True)
    syncedAt = serializers.DateTimeField(allow_null=True)
    status = MailboxStatusSerializer(required=False,
                                     help_text="With counters=true, for selectable folders")


class MailboxListSerializer(serializers.Serializer):
    mailboxes = MailboxSerializer(many=True)


# --- views ----------------------------------------------------------------------------------


class MailboxListView(MailboxAPIView):
    @extend_schema(operation_id="listMailboxes", tags=["Mailbox"],
                   parameters=[ACCOUNT_PARAM, MailboxesQuerySerializer],
                   responses={200: MailboxListSerializer}, summary="List folders",
                   description="Folders from the index with counts, in EmailEngine's order "
                               "(`order=path` for INBOX first, then by path); "
                               "`counters=true` asks the server (STATUS) for current counts "
                               "and adds EmailEngine's `status: {messages, unseen}`.")
    def get(self, request, account):
        email_account = self.email_account
        query = self.validated(MailboxesQuerySerializer, request.query_params)
        folders = listing.folders_of(email_account, query["order"])
        chosen = special_use.chosen(email_account.imap)
        summaries = [listing.folder_summary(f, chosen) for f in folders]
        if query["counters"]:
            with pool.session(email_account) as session:
                for summary, folder in zip(summaries, folders, strict=True):
                    if folder.no_select:
                        continue
                    status = session.status(folder.path)
                    summary.update(messages=status.messages, unseen=status.unseen,
                                   uidNext=status.uidnext,
                                   status={"messages": status.messages,
                                           "unseen": status.unseen})
        return Response({"mailboxes": summaries})


class MailboxView(MailboxAPIView):
    @extend_schema(operation_id="createMailbox", tags=["Mailbox"], parameters=[ACCOUNT_PARAM],
                   request=CreateFolderSerializer, responses={200: FolderCreatedSerializer},
                   summary="Create a folder",
                   description="A list of names is joined with the server's delimiter; missing "
                               "parents are created too. An existing folder answers "
                               "`created: false` (as EmailEngine). Raises `mailboxNew`.")
    def post(self, request, account):
        email_account = self.email_account
        body = self.validated(CreateFolderSerializer, request.data)
        return Response(folder_writes.create_folder(email_account, body["path"]))

    @extend_schema(operation_id="updateMailbox", tags=["Mailbox"], parameters=[ACCOUNT_PARAM],
                   request=UpdateFolderSerializer, responses={200: FolderUpdatedSerializer},
                   summary="Rename a folder, or change its subscription",
                   description="Subfolders move with it; messages keep their ids. Raises "
                               "`mailboxDeleted` (old path) and `mailboxNew` (new path) per "
                               "renamed folder. INBOX cannot be renamed (400); a taken "
                               "`newPath` is 409.")
    def put(self, request, account):
        email_account = self.email_account
        body = self.validated(UpdateFolderSerializer, request.data)
        answer = {}
        if "newPath" in body:
            answer = folder_writes.rename_folder(email_account, body["path"], body["newPath"])
        if "subscribed" in body:
            path = answer.get("newPath", body["path"])
            answer.update(folder_writes.set_subscription(email_account, path, body["subscribed"]),
                          path=answer.get("path", path))
        return Response(answer)

    @extend_schema(operation_id="deleteMailbox", tags=["Mailbox"],
                   parameters=[ACCOUNT_PARAM, DeleteFolderQuerySerializer],
                   responses={200: FolderDeletedSerializer}, summary="Delete a folder",
                   description="Its messages go with it (one `mailboxDeleted`). INBOX cannot "
                               "be deleted (400); an unknown folder is 404; one with "
                               "subfolders is 409.")
    def delete(self, request, account):
        email_account = self.email_account
        query = self.validated(DeleteFolderQuerySerializer, request.query_params)
        return Response(folder_writes.delete_folder(email_account, query["path"]))
