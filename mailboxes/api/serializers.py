"""Query parameters and response shapes of the read API (EmailEngine's names)."""

from __future__ import annotations

from rest_framework import serializers

from emailapi.api.pagination import PageQuerySerializer
from emailapi.api.serializers import QuerySerializer
from mailboxes import message_fields


class MailboxesQuerySerializer(QuerySerializer):
    counters = serializers.BooleanField(
        default=False, help_text="Refresh message/unseen counts from the server (STATUS)")


class MessagesQuerySerializer(PageQuerySerializer):
    path = serializers.CharField(max_length=1024, trim_whitespace=False,
                                 help_text="Folder path, or a special use such as \\Sent")
    cursor = serializers.CharField(max_length=512, required=False,
                                   help_text="nextPageCursor of the previous page")


class MessageQuerySerializer(QuerySerializer):
    textType = serializers.ChoiceField(choices=["plain", "html", "*"], default="*")
    maxBytes = serializers.IntegerField(min_value=1, max_value=50 * 1024 * 1024,
                                        default=5 * 1024 * 1024,
                                        help_text="Truncate each text part (hasMore: true)")
    markAsSeen = serializers.BooleanField(
        default=False, help_text="Add \\Seen (reading never does otherwise); a change, so a "
                                 "read-only token gets 403 InsufficientScope")
    headers = serializers.BooleanField(default=False, help_text="Include all headers")


class AddressSerializer(serializers.Serializer):
    name = serializers.CharField(allow_blank=True)
    address = serializers.CharField(allow_blank=True)


class MailboxSerializer(serializers.Serializer):
    path = serializers.CharField()
    name = serializers.CharField()
    delimiter = serializers.CharField(allow_null=True)
    parentPath = serializers.CharField(allow_null=True)
    specialUse = serializers.CharField(allow_null=True)
    subscribed = serializers.BooleanField()
    noSelect = serializers.BooleanField()
    messages = serializers.IntegerField()
    unseen = serializers.IntegerField()
    uidValidity = serializers.CharField(allow_null=True)
    uidNext = serializers.IntegerField(allow_null=True)
    highestModseq = serializers.IntegerField(allow_null=True)
    syncedAt = serializers.DateTimeField(allow_null=True)


class MailboxListSerializer(serializers.Serializer):
    mailboxes = MailboxSerializer(many=True)


def _documented(field: message_fields.MessageField) -> serializers.Field:
    """The documented (OpenAPI) form of one of the listing's fields."""
    kind, null = field.kind, field.null
    if kind == message_fields.STRING:
        return serializers.CharField(allow_null=null)
    if kind == message_fields.TEXT:
        return serializers.CharField(allow_blank=True, allow_null=null)
    if kind == message_fields.INTEGER:
        return serializers.IntegerField(allow_null=null)
    if kind == message_fields.BOOLEAN:
        return serializers.BooleanField(allow_null=null)
    if kind == message_fields.DATETIME:
        return serializers.DateTimeField(allow_null=null)
    if kind == message_fields.STRINGS:
        return serializers.ListField(child=serializers.CharField(), allow_null=null)
    if kind == message_fields.ADDRESS:
        return AddressSerializer(allow_null=null)
    if kind == message_fields.ADDRESSES:
        return AddressSerializer(many=True, allow_null=null)
    raise ValueError(f"message field {field.name!r}: no documented form for kind {kind!r}")


# Built from the one table of listing fields, so the document cannot drift from the shape.
MessageSummarySerializer = type("MessageSummarySerializer", (serializers.Serializer,), {
    "__module__": __name__,
    **{field.name: _documented(field) for field in message_fields.FIELDS},
})


class MessageListSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    page = serializers.IntegerField()
    pages = serializers.IntegerField()
    nextPageCursor = serializers.CharField(allow_null=True)
    messages = MessageSummarySerializer(many=True)


class TextSerializer(serializers.Serializer):
    plain = serializers.CharField(allow_null=True, allow_blank=True)
    html = serializers.CharField(allow_null=True, allow_blank=True)
    hasMore = serializers.BooleanField()


class AttachmentSerializer(serializers.Serializer):
    id = serializers.CharField()
    filename = serializers.CharField(allow_null=True)
    contentType = serializers.CharField(allow_null=True)
    size = serializers.IntegerField()
    encodedSize = serializers.IntegerField()
    contentId = serializers.CharField(allow_null=True)
    inline = serializers.BooleanField()


class MessageDetailSerializer(MessageSummarySerializer):
    references = serializers.ListField(child=serializers.CharField())
    text = TextSerializer()
    attachments = AttachmentSerializer(many=True)
    headers = serializers.DictField(child=serializers.ListField(child=serializers.CharField()),
                                    required=False)



class SearchQuerySerializer(PageQuerySerializer):
    path = serializers.CharField(max_length=1024, trim_whitespace=False, required=False,
                                 help_text="Folder to search; required unless source=index "
                                           "(then omitted means every folder)")
    source = serializers.ChoiceField(
        choices=["imap", "index"], default="imap",
        help_text="imap: IMAP SEARCH on the server (bodies, any header); index: the index "
                  "only, in milliseconds (subject, addresses, dates, flags, ids)")


class ThreadsQuerySerializer(PageQuerySerializer):
    path = serializers.CharField(max_length=1024, trim_whitespace=False, required=False,
                                 help_text="Only threads with messages in this folder")


class MessageSearchListSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    page = serializers.IntegerField()
    pages = serializers.IntegerField()
    messages = MessageSummarySerializer(many=True)


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
