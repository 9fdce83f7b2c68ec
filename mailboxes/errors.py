"""What the mailbox services refuse, one class per machine code (see ``emailapi.lib.errors``).

``mailboxes.imap`` raises its own plain exceptions (it knows nothing of the project); the
services that call it translate them into these. The API answers each with its kind's status
(``emailapi.api.errors``).

One code has two kinds on purpose: ``ServerRefused`` is a 502 when the mail server failed or
refused for a reason of its own (``ServerRefused``), and a 400 when it says it will never make
that folder change, a bad name say (``FolderChangeRefused``): the request has to change.

``ee_code`` names EmailEngine's code where it reports the same condition with one (the API
answers it as ``code``, ours as ``emailapiCode``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emailapi.lib.errors import (
    Conflict,
    Invalid,
    NotFound,
    RateLimited,
    Unavailable,
    UpstreamFailed,
)

if TYPE_CHECKING:
    from accounts.models import EmailAccount

# --- not found -------------------------------------------------------------------------------


class MailboxNotFound(NotFound):
    code = "MailboxNotFound"
    ee_code = "FolderNotFound"

    def __init__(self, path: str):
        super().__init__(f"Mailbox {path!r} not found")


class MessageNotFound(NotFound):
    code = "MessageNotFound"
    message = "Message not found"


class ReferenceNotFound(MessageNotFound):
    """The message a reply or forward refers to (``reference.message``) is not there."""

    ee_code = "ReferenceNotFound"


class ReferenceMismatch(ReferenceNotFound):
    """A reference's ``messageId`` that is not the referenced message's Message-ID (a 404
    as in EmailEngine, whatever ``ignoreMissing`` says)."""

    message = ("The referenced message was found, but its Message-ID does not match the "
               "expected value")


class AttachmentNotFound(NotFound):
    code = "AttachmentNotFound"

    def __init__(self, attachment_id: str):
        super().__init__(f"Attachment {attachment_id!r} not found")


class ReferencedAttachmentNotFound(AttachmentNotFound):
    """An attachment a message being composed names (``attachments[].reference``) that this
    account does not have, or whose message the server no longer has: EmailEngine's 404
    ``ReferenceNotFound``, naming the field."""

    ee_code = "ReferenceNotFound"

    def __init__(self, field_name: str, attachment_id: str):
        NotFound.__init__(self, f"{field_name}: Referenced attachment {attachment_id!r} was not "
                                "found", {field_name: ["Referenced attachment was not found"]})


class QueueEntryNotFound(NotFound):
    code = "QueueEntryNotFound"

    def __init__(self, queue_id: str):
        super().__init__(f"Queue entry {queue_id!r} not found")


class GatewayNotFound(NotFound):
    code = "GatewayNotFound"

    def __init__(self, gateway_id: str):
        super().__init__(f"Gateway {gateway_id!r} not found")


class TemplateNotFound(NotFound):
    """A template the tenant does not have, or (for a send) another account's."""

    code = "TemplateNotFound"

    def __init__(self, template_id: str):
        super().__init__(f"Template {template_id!r} not found")


class ExportNotFound(NotFound):
    """An export id the account does not have (another tenant's, expired or deleted)."""

    code = "ExportNotFound"

    def __init__(self, export_id: str):
        super().__init__(f"Export {export_id!r} not found")


class ExportNotReady(Invalid):
    """A download of an export that has not completed (EmailEngine's 400)."""

    code = "ExportNotReady"

    def __init__(self, status: str):
        super().__init__(f"Export not completed (it is {status})")


class TooManyExports(RateLimited):
    """An account with ``EXPORT_MAX_CONCURRENT`` exports queued or processing (429)."""

    code = "TooManyExports"

    def __init__(self, limit: int):
        super().__init__(f"Maximum concurrent exports reached ({limit} per account)")


class BlocklistNotFound(NotFound):
    """A list id with no blocked address in the tenant's blocklists (EmailEngine's 404
    "Requested blocklist was not found")."""

    code = "BlocklistNotFound"

    def __init__(self, list_id: str):
        super().__init__(f"Blocklist {list_id!r} not found")


# --- invalid requests ------------------------------------------------------------------------


class TemplateRenderFailed(Invalid):
    """A template (or a send's own field with ``render``) that cannot be rendered here: a
    400 naming the field and why; nothing is stored or queued."""

    code = "TemplateRenderFailed"

    def __init__(self, field_name: str, reason: str):
        super().__init__(f"{field_name}: {reason}", {field_name: [reason]})



class UnknownGateway(Invalid):
    """A send names (``gateway``) an SMTP gateway the tenant does not have: the request is
    wrong, as for any bad value (400)."""

    code = "GatewayNotFound"

    def __init__(self, gateway_id: str):
        reason = f"No gateway {gateway_id!r} in your tenant: register one with POST /v1/gateway"
        super().__init__(reason, {"gateway": [reason]})



class InvalidInput(Invalid):
    """A value the API's serializers let through but the service cannot use."""

    code = "InputValidationError"


class GatewaySecretNeeded(InvalidInput):
    """A gateway moved to another host without a new password: its stored password is only
    ever sent to the host it was given for (``accounts.errors.SecretNeeded``, for a
    gateway)."""

    def __init__(self):
        reason = ("required when host changes: the stored password is only ever sent to the "
                  "server it was given for (null: none)")
        super().__init__(f"Invalid input: pass: {reason}", {"pass": [reason]})


class ComposeError(InvalidInput):
    """A field that cannot become a message: a 400 naming it."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"Invalid input: {field_name}: {message}", {field_name: [message]})


class NoRecipients(ComposeError):
    code = "NoRecipients"


class OriginalTooLarge(ComposeError):
    """What a message would take from the mail server is over its limit: an original to
    forward as attachment over ``compose.FORWARD_SOURCE_LIMIT``, or referenced attachments
    (``attachments[].reference``) more than the request could have carried as content."""

    code = "MessageTooLarge"


class MessageNotDraft(Invalid):
    """``message/{id}/submit`` of a message that is neither in Drafts nor flagged \\Draft."""

    code = "MessageNotDraft"

    def __init__(self, message_id: str):
        super().__init__(f"Message {message_id!r} is not a draft: it is not in the Drafts "
                         "folder and has no \\Draft flag")


class InvalidCursor(Invalid):
    code = "InvalidCursor"
    message = "Invalid or expired cursor"


class InvalidFlag(Invalid):
    code = "InvalidFlag"

    def __init__(self, exc: Exception):
        """From ``mailboxes.imap.message_ops.BadFlag``, which names the ``flag``."""
        super().__init__(str(exc), {"flag": str(exc.flag)[:80]})


class InvalidLabel(Invalid):
    code = "InvalidLabel"

    def __init__(self, exc: Exception):
        """From ``mailboxes.imap.message_ops.BadLabel``, which names the ``label``."""
        super().__init__(str(exc), {"label": str(exc.label)[:80]})


class LabelsUnsupported(Invalid):
    code = "LabelsUnsupported"
    ee_code = "MissingServerExtension"
    message = "This server has no labels (X-GM-EXT-1): use flags"


class MailboxNotSelectable(Invalid):
    code = "MailboxNotSelectable"

    def __init__(self, path: str):
        super().__init__(f"Mailbox {path!r} cannot hold messages")


class InboxProtected(Invalid):
    code = "InboxProtected"

    def __init__(self, what: str):
        super().__init__(f"INBOX cannot be {what}")


class MailboxUnderItself(Invalid):
    """A rename into the folder's own subtree: servers refuse it with no reason code, which
    would otherwise come back as a 502 ``ServerRefused``."""

    code = "MailboxUnderItself"

    def __init__(self, path: str, new_path: str):
        super().__init__(f"Mailbox {path!r} cannot be moved under itself ({new_path!r})",
                         {"newPath": ["Inside the folder being renamed"]})


class SameMailbox(Invalid):
    code = "SameMailbox"


class MessageNotInMailbox(Invalid):
    code = "MessageNotInMailbox"

    def __init__(self, message_id: str, path: str):
        super().__init__(f"Message {message_id!r} is not in mailbox {path!r}",
                         {"ids": [message_id]})


class NotIndexable(Invalid):
    code = "NotIndexable"

    def __init__(self, criterion: str):
        super().__init__(f"Search criterion {criterion!r} needs the server: omit source=index",
                         {"criterion": criterion})


class SearchUnsupported(Invalid):
    """A search criterion this mail server has no extension for (``gmailRaw`` without Gmail's
    X-GM-EXT-1, ``modseq`` without CONDSTORE), refused before anything is sent."""

    code = "SearchUnsupported"
    ee_code = "MissingServerExtension"

    def __init__(self, criterion: str, message: str, extension: str):
        super().__init__(message, {"criterion": criterion, "extension": extension})


class SearchRefused(Invalid):
    """The server answered NO or BAD to a search: a criterion it does not take (Gmail's own
    syntax in gmailRaw, an extension it lacks). Its words are kept for the caller."""

    code = "SearchRefused"

    def __init__(self, server_text: str):
        super().__init__(f"The mail server refused the search: {server_text}",
                         {"response": server_text})


class FolderChangeRefused(Invalid):
    """The server will never make this folder change (``[CANNOT]``, a bad name)."""

    code = "ServerRefused"


# --- conflicts -------------------------------------------------------------------------------


class MailboxExists(Conflict):
    code = "MailboxExists"


class MailboxHasChildren(Conflict):
    code = "MailboxHasChildren"


class MailboxInUse(Conflict):
    code = "MailboxInUse"


class IdempotencyKeyInUse(Conflict):
    """A submit with an ``Idempotency-Key`` whose first request is still being processed."""

    code = "IdempotencyKeyInUse"

    def __init__(self, key: str):
        super().__init__("A request with this Idempotency-Key is still being processed: "
                         "retry in a moment", {"key": key[:80]})


class SendOnlyAccount(Conflict):
    """A mail read or write on an account without IMAP (EmailEngine's ``imap: false``): it
    has no folders or messages here. EmailEngine answers 503 ``NotSyncing``, a "try later"
    that never comes true for such an account; the condition lasts until IMAP is given."""

    code = "SendOnlyAccount"
    ee_code = "NotSyncing"

    def __init__(self, account_id: str):
        super().__init__(
            f"Account {account_id!r} only sends: it has no IMAP settings, so no folders or "
            "messages to read or change. Give it `imap` (PUT /v1/account/{account}) to use "
            "its mailbox", {"state": "unset"})


class QueueEntryNotCancellable(Conflict):
    code = "QueueEntryNotCancellable"

    def __init__(self, queue_id: str, state: str):
        super().__init__(f"Queue entry {queue_id!r} is {state}; only a queued entry can be "
                         "cancelled")


# --- the mail server -------------------------------------------------------------------------


class ServerRefused(UpstreamFailed):
    """The mail server failed, or refused a change for a reason of its own."""

    code = "ServerRefused"




class MailboxUnavailable(Unavailable):
    """The account's mail server cannot be used now (down, login refused, pool full).

    EmailEngine says why in its code: ``AuthenticationFails`` (login refused),
    ``ConnectionError`` (the server cannot be reached), ``NotSyncing`` (no IMAP settings) or
    ``IMAPUnavailable`` (no connection free now: retry shortly), the default."""

    code = "MailboxUnavailable"

    def __init__(self, account: EmailAccount, reason: str, ee_code: str = "IMAPUnavailable"):
        super().__init__(
            f"The mail server of account {account.account_id!r} is not available: {reason}",
            {"state": account.state, "lastError": account.last_error})
        self.ee_code = ee_code
