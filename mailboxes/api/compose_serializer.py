"""The message fields of upload and submit, validated before anything is built or sent.

``MessageFieldsSerializer`` holds EmailEngine's structured fields (``from``, ``to``,
``subject``, ``text``, ``html``, ``attachments``, ``headers``, ``messageId``, ``reference``)
or ``raw``, never both. Its validated data is what ``mailboxes.compose.compose`` takes:
base64 already decoded to bytes, addresses checked, header names and values free of line
breaks; once ``mailboxes.attachment_references`` has read the attachments given by
``reference`` (an attachment id) in place of ``content``. Upload (``mailboxes.api.messages``)
and submit (``mailboxes.api.submit``) extend it with their own fields.
"""

from __future__ import annotations

import base64
import binascii
import re

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from emailapi.api.serializers import CaseFoldedChoiceField, StrictSerializer
from mailboxes import compose
from mailboxes.errors import ComposeError

MAX_RECIPIENTS = 500
MAX_ATTACHMENTS = 100
MAX_HEADERS = 50
STRUCTURED = ("from", "to", "cc", "bcc", "replyTo", "subject", "text", "html", "attachments",
              "headers", "messageId")
_CID = re.compile(r"^[!-;=?-~]{1,250}$")  # printable ASCII without < > or spaces
MAX_REFERENCE = 256  # EmailEngine's bound on attachments[].reference
_REFERENCE = re.compile(r"[A-Za-z0-9_-]+={0,2}")  # base64url, padding optional
REFERENCE_MISSING = "Referenced message was not found"  # EmailEngine's words


def decode_base64(value: str, what: str = "content") -> bytes:
    """Standard or URL-safe base64, line breaks allowed (as MIME writes it); 400 otherwise."""
    text = re.sub(r"\s+", "", value)
    if "-" in text or "_" in text:
        text = text.replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise serializers.ValidationError(f"The {what} is not valid base64") from None


def _no_line_breaks(value: str) -> str:
    if compose.has_line_break(value):
        raise serializers.ValidationError("Line breaks are not allowed")
    return value


class AddressSerializer(StrictSerializer):
    name = serializers.CharField(max_length=256, required=False, allow_blank=True,
                                 validators=[_no_line_breaks], help_text="Display name")
    address = serializers.EmailField(max_length=320, help_text="Email address")


@extend_schema_field({"oneOf": [{"type": "string", "maxLength": MAX_REFERENCE,
                                  "pattern": f"^{_REFERENCE.pattern}$"},
                                 {"type": "boolean", "enum": [False]}], "nullable": True})
class AttachmentReferenceField(serializers.Field):
    """EmailEngine's ``attachments[].reference``: an attachment id (base64url, padding
    optional, as Joi's ``base64({urlSafe: true, paddingRequired: false})`` takes it), or
    ``false``/``null`` for none (None here). Not a CharField: ``false`` is not a string, and
    the JSON type check would refuse it."""

    default_error_messages = {
        "invalid": "Must be an attachment id (base64url, from a message's attachments[].id), "
                   "false or null",
        "max_length": f"At most {MAX_REFERENCE} characters",
    }

    def __init__(self, **kwargs):
        super().__init__(required=False, allow_null=True, **kwargs)

    def to_internal_value(self, data):
        if data is False:
            return None
        if not isinstance(data, str) or not _REFERENCE.fullmatch(data):
            self.fail("invalid")
        if len(data) > MAX_REFERENCE:
            self.fail("max_length")
        return data.rstrip("=")

    def to_representation(self, value):
        return value


class AttachmentSerializer(StrictSerializer):
    filename = serializers.CharField(max_length=255, required=False, allow_blank=True,
                                     validators=[_no_line_breaks],
                                     help_text="Default: the referenced attachment's, with "
                                               "`reference`")
    contentType = serializers.CharField(max_length=200, required=False,
                                        help_text="Default: the referenced attachment's, with "
                                                  "`reference`; else guessed from the filename")
    content = serializers.CharField(trim_whitespace=False, required=False,
                                    help_text="The file's bytes, base64; required unless "
                                              "`reference` is given (and used if both are)")
    encoding = serializers.ChoiceField(choices=["base64"], default="base64",
                                       help_text="How `content` is encoded: base64 (the "
                                                 "default and only value, as EmailEngine)")
    reference = AttachmentReferenceField(
        help_text="Attach an attachment of this account's messages instead of `content`: its "
                  "id (a message's `attachments[].id`). Read from the mail server when the "
                  "request is answered (a queued message does not need the source message "
                  "afterwards); 404 `AttachmentNotFound` (`code`: `ReferenceNotFound`) if "
                  "this account has no such attachment. Ignored when `content` is given, as "
                  "in EmailEngine; `false` or `null`: none")
    cid = serializers.CharField(max_length=250, required=False,
                                help_text="Content-ID (no angle brackets) for an inline "
                                          "image the html refers to as cid:...")
    contentDisposition = CaseFoldedChoiceField(choices=["attachment", "inline"],
                                               required=False)

    def validate_content(self, value: str) -> bytes:
        return decode_base64(value)

    def validate(self, attrs):
        """``content``, or a ``reference`` the service reads it from (with both, the content,
        as EmailEngine: its reference is not read); ``encoding`` and an empty reference
        (false, null) say nothing more once validated."""
        attrs.pop("encoding", None)
        if attrs.get("reference") is None or "content" in attrs:
            attrs.pop("reference", None)
        if "content" not in attrs and "reference" not in attrs:
            raise serializers.ValidationError(
                {"content": ["This field is required (or give reference)"]})
        return attrs

    def validate_contentType(self, value: str) -> str:
        if not compose.CONTENT_TYPE.match(value):
            raise serializers.ValidationError("Must be type/subtype, e.g. application/pdf")
        if value.lower().startswith("multipart/"):
            raise serializers.ValidationError("multipart/* cannot be attached")
        return value.lower()

    def validate_cid(self, value: str) -> str:
        value = value.strip().removeprefix("<").removesuffix(">")
        if not _CID.match(value):
            raise serializers.ValidationError("Printable ASCII without spaces or < >")
        return value


def thread_id_field() -> serializers.CharField:
    return serializers.CharField(
        max_length=256, required=False, allow_blank=True, allow_null=True,
        help_text="EmailEngine's Gmail/MS Graph thread id: accepted on every account and "
                  "ignored, as EmailEngine's IMAP accounts ignore it (the referenced message "
                  "already names the thread)")


class ReferenceSerializer(StrictSerializer):
    """EmailEngine's MessageReference, the same on submit and upload: a reply or forward of
    a message of the index (``mailboxes.compose`` reads it)."""

    message = serializers.CharField(max_length=256, help_text="Id of the referenced message")
    action = CaseFoldedChoiceField(
        choices=["reply", "replyAll", "reply-all", "forward"], default="reply",
        help_text="`reply-all` (EmailEngine's spelling) is the same as `replyAll`; any case")
    inline = serializers.BooleanField(default=False, help_text="Quote the original in the "
                                      "new text")
    forwardAttachments = serializers.BooleanField(
        required=False, help_text="A forward: true attaches the original's attachments, "
        "false nothing (EmailEngine's); unset, a forward that is not inline attaches the "
        "whole original as message/rfc822 (ours)")
    messageId = serializers.CharField(
        max_length=996, required=False,
        help_text="Go on only if the referenced message has this Message-ID (404 otherwise, "
                  "whatever `ignoreMissing` says)")
    ignoreMissing = serializers.BooleanField(
        default=False, help_text="Send or store the message even when the referenced message "
                                 "is not found (as if no reference were given; the answer "
                                 "says `reference.success: false`); otherwise 404")
    threadId = thread_id_field()

    def validate_action(self, value: str) -> str:
        return "replyAll" if value == "reply-all" else value

    def validate(self, attrs):
        attrs.pop("threadId", None)  # ignored: see thread_id_field
        if "forwardAttachments" in attrs and attrs["action"] != "forward":
            raise serializers.ValidationError(
                {"forwardAttachments": ["Only for action forward"]})
        return attrs


class SubmittedReferenceSerializer(serializers.Serializer):
    message = serializers.CharField(help_text="The referenced message's id, as given")
    success = serializers.BooleanField(help_text="Whether the referenced message was found "
                                                 "(false only with `ignoreMissing`)")
    error = serializers.CharField(required=False,
                                  help_text="Why not, when `success` is false")


def reference_answer(reference: dict | None, found: bool) -> dict | None:
    """EmailEngine's ``reference: {message, success}`` of a submit's or an upload's answer
    (plus ``error`` when it was not found); None when no reference was given."""
    if not reference:
        return None
    answer = {"message": reference["message"], "success": found}
    if not found:
        answer["error"] = REFERENCE_MISSING
    return answer


class HeadersField(serializers.DictField):
    """Extra headers ``{"X-Campaign": "spring"}``: names of printable ASCII, values without
    line breaks (nothing can add a header or end the header block), none of the headers
    the other fields set."""

    child = serializers.CharField(max_length=4000, allow_blank=True, trim_whitespace=False)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if len(value) > MAX_HEADERS:
            raise serializers.ValidationError(f"At most {MAX_HEADERS} headers")
        errors = {name: [problem] for name, text in value.items()
                  if (problem := compose.check_header(name, text))}
        if errors:
            raise serializers.ValidationError(errors)
        return value


class OneOrListField(serializers.ListField):
    """A list that also takes one item alone (EmailEngine's ``.single()``: ``"to": {...}``
    for ``"to": [{...}]``)."""

    takes_one = True  # StrictSerializer's type check: an item alone is of the child's type

    def to_internal_value(self, data):
        if isinstance(data, (dict, str)):
            data = [data]
        return super().to_internal_value(data)


def _addresses(**kwargs):
    return OneOrListField(child=AddressSerializer(), max_length=MAX_RECIPIENTS,
                          required=False, **kwargs)


class MessageFieldsSerializer(StrictSerializer):
    # ``from`` is a Python keyword: added under its JSON name in get_fields.
    to = _addresses(help_text="Recipients: [{name, address}]")
    cc = _addresses()
    bcc = _addresses(help_text="Kept in the envelope; a sent message has no Bcc header")
    replyTo = _addresses()
    subject = serializers.CharField(max_length=10000, required=False, allow_blank=True,
                                    trim_whitespace=False, validators=[_no_line_breaks])
    text = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    html = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    attachments = serializers.ListField(child=AttachmentSerializer(), required=False,
                                        max_length=MAX_ATTACHMENTS)
    headers = HeadersField(required=False)
    messageId = serializers.CharField(max_length=998, required=False,
                                      help_text="Default: <uuid@domain of from>")
    reference = ReferenceSerializer(required=False,
                                    help_text="Reply to or forward a message of the index")
    raw = serializers.CharField(required=False, trim_whitespace=False,
                                help_text="The whole RFC 822 message, base64, instead of "
                                          "the structured fields")
    locale = serializers.CharField(
        max_length=100, required=False, allow_blank=True,
        help_text="Language of the quoted message's date in an inline reply or forward (BCP 47, "
                  "e.g. de or pt-BR); default the account's, else English. Unknown: English")
    tz = serializers.CharField(
        max_length=100, required=False, allow_blank=True,
        help_text="Time zone of that date (IANA, e.g. Europe/Tallinn); default the account's, "
                  "else UTC. Unknown: UTC")

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = AddressSerializer(required=False,
                                           help_text="Default: the account's name and email")
        return fields

    def validate_raw(self, value: str) -> bytes:
        raw = decode_base64(value, "message")
        if not raw.strip():
            raise serializers.ValidationError("The message is empty")
        if b"\n\n" not in raw.replace(b"\r\n", b"\n") and b":" not in raw.split(b"\n", 1)[0]:
            raise serializers.ValidationError("Not an RFC 822 message (no header)")
        return raw

    def validate_messageId(self, value: str) -> str:
        try:
            return compose.message_id_header(value, "")
        except ComposeError as exc:
            raise serializers.ValidationError(exc.details["messageId"][0]) from None

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if "raw" in attrs:
            mixed = [name for name in STRUCTURED if name in attrs]
            if mixed:
                raise serializers.ValidationError(
                    {"raw": [f"Give raw or the structured fields, not both ({', '.join(mixed)})"]})
        return attrs
