"""The documented message shapes (EmailEngine's names): a message in listings, search results,
threads and events, a whole message, and the query parameters of reading them."""

from __future__ import annotations

from rest_framework import serializers

from emailapi.api.pagination import PageQuerySerializer
from emailapi.api.serializers import QuerySerializer
from mailboxes import message_fields, reading


def document_store_field() -> serializers.BooleanField:
    return serializers.BooleanField(
        default=False, help_text="Accepted for EmailEngine clients (its deprecated Document "
                                 "Store); there is none here, so it changes nothing: reads "
                                 "come from the index and the mail server either way")


class MessagesQuerySerializer(PageQuerySerializer):
    remember_valid = True  # the query alone decides (a listing's hot path)

    path = serializers.CharField(max_length=1024, trim_whitespace=False,
                                 help_text="Folder path, or a special use such as \\Sent")
    cursor = serializers.CharField(max_length=512, required=False,
                                   help_text="nextPageCursor or prevPageCursor of a page")
    documentStore = document_store_field()


class TextQuerySerializer(QuerySerializer):
    remember_valid = True  # the query alone decides (a message's and a text's hot path)

    textType = serializers.ChoiceField(choices=["plain", "html", "*"], default="*")
    maxBytes = serializers.IntegerField(min_value=1, max_value=50 * 1024 * 1024,
                                        default=5 * 1024 * 1024,
                                        help_text="Truncate each text part (hasMore: true)")
    webSafeHtml = serializers.BooleanField(
        default=False, help_text="textType=*, embedAttachedImages and preProcessHtml at once "
                                 "(EmailEngine's shorthand)")
    embedAttachedImages = serializers.BooleanField(
        default=False, help_text="cid: images of the message as data: URIs in the HTML")
    preProcessHtml = serializers.BooleanField(
        default=False, help_text="HTML sanitised for a web page (nh3: no scripts, handlers, "
                                 "forms or frames; safe inline styles kept), or made from the "
                                 "plain text when there is no HTML part; text.webSafe: true")
    documentStore = document_store_field()


def text_options(query: dict) -> tuple[str, reading.HtmlOptions]:
    """The ``textType`` and HTML options a validated ``TextQuerySerializer`` query asks for
    (``webSafeHtml`` is EmailEngine's shorthand: every text type, images embedded, web-safe)."""
    web_safe_html = query["webSafeHtml"]
    return ("*" if web_safe_html else query["textType"], reading.HtmlOptions(
        web_safe=web_safe_html or query["preProcessHtml"],
        embed_images=web_safe_html or query["embedAttachedImages"]))


class MessageQuerySerializer(TextQuerySerializer):
    markAsSeen = serializers.BooleanField(
        default=False, help_text="Add \\Seen (reading never does otherwise); a change, so a "
                                 "read-only token gets 403 InsufficientScope")
    headers = serializers.BooleanField(
        default=True, help_text="Include all headers (EmailEngine always does); false leaves "
                                "them out and saves a FETCH")


class AddressSerializer(serializers.Serializer):
    name = serializers.CharField(allow_blank=True)
    address = serializers.CharField(allow_blank=True)


class EncodedSizeSerializer(serializers.Serializer):
    plain = serializers.IntegerField(required=False, help_text="Encoded size of the plain parts")
    html = serializers.IntegerField(required=False, help_text="Encoded size of the HTML parts")


class TextInfoSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="For GET /v1/account/{account}/text/{text}")
    encodedSize = EncodedSizeSerializer(help_text="Only the kinds the message has")


class AttachmentSerializer(serializers.Serializer):
    id = serializers.CharField()
    contentType = serializers.CharField(allow_null=True)
    encodedSize = serializers.IntegerField(help_text="As stored in the message (encoded)")
    size = serializers.IntegerField(
        help_text="Decoded size: exact on a single message (`GET message/{id}`: the bytes the "
                  "attachment route returns); in listings, searches and webhooks an estimate "
                  "from the encoded size (3/4 of `encodedSize` for base64, else `encodedSize`)")
    filename = serializers.CharField(allow_null=True)
    contentId = serializers.CharField(allow_null=True,
                                      help_text="With its angle brackets, as the header has it")
    embedded = serializers.BooleanField(help_text="Inside a multipart/related")
    inline = serializers.BooleanField()
    encodedInMessage = serializers.BooleanField(
        help_text="Part of an attached message (always false: those are not listed)")
    method = serializers.CharField(
        required=False, help_text="A calendar part's iTIP method (REQUEST, CANCEL...); only "
                                  "on text/calendar parts that have one")


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
    if kind == message_fields.TEXT_INFO:
        return TextInfoSerializer(allow_null=null)
    if kind == message_fields.ATTACHMENTS:
        return AttachmentSerializer(many=True, allow_null=null)
    raise ValueError(f"message field {field.name!r}: no documented form for kind {kind!r}")


# Built from the one table of listing fields, so the document cannot drift from the shape.
MessageSummarySerializer = type("MessageSummarySerializer", (serializers.Serializer,), {
    "__module__": __name__,
    **{field.name: _documented(field) for field in message_fields.FIELDS},
})


class BounceResponseSerializer(serializers.Serializer):
    message = serializers.CharField(required=False, help_text="The reporting server's words")
    status = serializers.CharField(required=False, help_text="Enhanced status code, e.g. 5.1.1")


class BounceSerializer(serializers.Serializer):
    message = serializers.CharField(help_text="Message id of the bounce itself")
    recipient = serializers.CharField()
    action = serializers.CharField(help_text="As reported: failed")
    response = BounceResponseSerializer(required=False)
    date = serializers.DateTimeField(help_text="When the bounce was recorded")


class ListedMessageSerializer(MessageSummarySerializer):
    bounces = BounceSerializer(
        many=True, required=False,
        help_text="Bounces reported for this message's Message-ID in the account (messageBounce), "
                  "oldest first; left out when there are none")


class MessageListSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    page = serializers.IntegerField()
    pages = serializers.IntegerField()
    nextPageCursor = serializers.CharField(allow_null=True)
    prevPageCursor = serializers.CharField(allow_null=True)
    messages = ListedMessageSerializer(many=True)


class TextContentSerializer(serializers.Serializer):
    plain = serializers.CharField(allow_null=True, allow_blank=True)
    html = serializers.CharField(allow_null=True, allow_blank=True)
    hasMore = serializers.BooleanField()
    webSafe = serializers.BooleanField(required=False,
                                       help_text="true when html was made web-safe")


class TextSerializer(TextInfoSerializer, TextContentSerializer):
    pass


class MessageDetailSerializer(ListedMessageSerializer):
    references = serializers.ListField(child=serializers.CharField())
    specialUse = serializers.CharField(allow_null=True,
                                       help_text="Special use of the message's folder")
    text = TextSerializer()
    headers = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False,
        help_text="Lower-case header name -> its values in order (left out with headers=false)")
    isAutoReply = serializers.BooleanField(
        required=False, help_text="true when the subject or the headers say the message is an "
                                  "automatic reply (EmailEngine's rules); absent otherwise")
