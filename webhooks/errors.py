"""What the webhook and change-feed services refuse, one class per machine code (see
``emailapi.lib.errors``). The API answers each with its kind's status (``emailapi.api.errors``);
the WebSocket stream closes with 4000 + that status and the same body
(``webhooks.api.stream_socket``)."""

from __future__ import annotations

from accounts.credentials import MASK
from accounts.errors import InvalidInput
from emailapi.lib.errors import Gone, Invalid, NotFound


class InvalidCursor(Invalid):
    """A change-feed or stream cursor this API did not hand out."""

    code = "InvalidCursor"
    message = "Invalid cursor: use a nextCursor or an event seq"


class CursorExpired(Gone):
    """Events after the cursor were pruned: the client must resynchronise from scratch."""

    code = "CursorExpired"
    message = "Events after this cursor were pruned: resynchronise"


class WebhookNotFound(NotFound):
    """A subscription that is not the tenant's, or was deleted meanwhile."""

    code = "WebhookNotFound"
    ee_code = "NotFound"
    message = "Webhook not found"


class WebhookRouteNotFound(NotFound):
    """An EmailEngine webhook route (``webhooks.routes``) that is not one of the tenant's:
    unknown, another tenant's, or the subscription ``/v1/settings`` manages."""

    code = "WebhookRouteNotFound"
    ee_code = "NotFound"
    message = "Webhook route not found"


class DeliveryNotFound(NotFound):
    code = "DeliveryNotFound"
    message = "Delivery not found"


class WebhookPasswordNeeded(InvalidInput):
    """A webhook URL written with the mask (``******``) for its password where no stored
    password may stand in: none is stored, or the URL now names another server (host, port or
    scheme). As ``accounts.errors.SecretNeeded`` for a mailbox: a stored password is only ever
    sent to the server it was given for (whoever may change a webhook must not be able to
    collect its password at a server of their choosing, nor have it sent in clear)."""

    def __init__(self, field: str, moved: bool):
        self.field = field
        reason = ("the password is required when the URL's host, port or scheme changes: the "
                  "stored password is only ever sent to the server it was given for" if moved
                  else f"{MASK} stands for a stored password, and none is stored: write the "
                       f"password itself")
        super().__init__(f"Invalid input: {field}: {reason}", {field: [reason]})
