"""What the webhook and change-feed services refuse, one class per machine code (see
``emailapi.lib.errors``). The API answers each with its kind's status (``emailapi.api.errors``);
the WebSocket stream closes with 4000 + that status and the same body
(``webhooks.api.stream_socket``)."""

from __future__ import annotations

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


class DeliveryNotFound(NotFound):
    code = "DeliveryNotFound"
    message = "Delivery not found"
