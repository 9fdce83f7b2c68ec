"""The documented message shapes (EmailEngine's names): a message in listings, search results,
threads and events, a whole message, and the query parameters of reading them."""

from __future__ import annotations

from rest_framework import serializers

from emailapi.api.pagination import PageQuerySerializer
from emailapi.api.serializers import QuerySerializer
from mailboxes import message_fields


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
