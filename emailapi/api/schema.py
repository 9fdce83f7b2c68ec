"""OpenAPI post-processing: the shared error shape on every /v1 operation.

Every route can answer with the same error body, so rather than repeat it on each view, this
hook adds an ``Error`` component and the error responses each kind of operation can give.
"""

from __future__ import annotations

from emailapi.api.error_shape import error_body

ERROR_SCHEMA = {
    "type": "object",
    "required": ["statusCode", "error", "message", "code", "emailapiCode"],
    "properties": {
        "statusCode": {"type": "integer", "description": "The HTTP status, repeated"},
        "error": {"type": "string", "description": "The HTTP reason phrase (\"Not Found\")"},
        "message": {"type": "string", "description": "Human-readable message"},
        "code": {"type": "string", "description": (
            "Stable machine code: EmailEngine's where EmailEngine has one for the same "
            "condition (FolderNotFound, ReferenceNotFound...), else emailapiCode")},
        "emailapiCode": {"type": "string", "description": "This API's own machine code"},
        "details": {"type": "object", "additionalProperties": True,
                    "description": "Per-field messages for validation errors, or extra data"},
        "fields": {"type": "array", "description": (
            "Validation errors only: one {message, key} per message, as EmailEngine's (Joi)"),
            "items": {"type": "object", "required": ["message", "key"], "properties": {
                "message": {"type": "string"}, "key": {"type": "string"}}}},
        "ttl": {"type": "integer",
                "description": "429 only: seconds until requests are let through again"},
    },
}

ERRORS = {
    "400": ("Invalid input", "InputValidationError",
            {"imap.port": ["Ensure this value is less than or equal to 65535."]}),
    "401": ("Authentication required: send Authorization: Bearer <token>", "Unauthorized", None),
    "403": ("This token's scopes do not allow this request", "InsufficientScope", None),
    "404": ("Account 'sales' not found", "AccountNotFound", None),
    "409": ("Account 'sales' already exists", "AlreadyExists", None),
    "413": ("Request body is larger than the 5242880 bytes allowed", "PayloadTooLarge",
            {"maxBytes": 5242880}),
    "429": ("Request was throttled.", "RateLimited", {"retryAfter": "12"}),
    "502": ("The mail server failed the request: IMAP error: UID FETCH failed: NO [SERVERBUG] "
            "Internal error", "ServerRefused", None),
    "503": ("The mail server of account 'sales' is not available: Connection refused",
            "MailboxUnavailable", {"state": "connectError", "lastError": None}),
}
# EmailEngine's code for the examples' conditions, where it has one.
EE_CODES = {
    "503": "ConnectionError",
}
# Every operation needs the database: when it cannot serve the request (no free connection
# in time, unreachable, or no answer within EMAILAPI_DB_QUERY_TIMEOUT) the answer is 503
# ServiceUnavailable with Retry-After.
DATABASE_UNAVAILABLE = ("The database is not available. Retry shortly", "ServiceUnavailable",
                        None)
# Operations that talk to the mail server on the caller's behalf can find it down (503), or
# have it fail the command (502).
SERVER_PATHS = ("/message", "/attachment/", "/text/", "/mailbox", "/search")
# Operations that answer 409 when what they would create exists already.
CONFLICT_OPERATIONS = {"createMailbox", "renameMailbox", "createOAuth2App"}
# Operations that answer 501 for a valid request this service does not carry out.
UNIMPLEMENTED_OPERATIONS = {
    "setQueue": ("Pausing a queue is not supported here: deliveries and sends go on",
                 "NotImplemented", None),
}


def _response(status: str, error: tuple | None = None) -> dict:
    message, code, details = error or ERRORS[status]
    ee_code = "" if error else EE_CODES.get(status, "")
    ttl = 12 if status == "429" else None
    example = error_body(message, code, int(status), details, ee_code=ee_code, ttl=ttl)
    return {
        "description": message,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"},
                                         "example": example}},
    }


def add_error_responses(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path, operations in result.get("paths", {}).items():
        if path == "/v1/openapi.json":
            continue
        for method, operation in operations.items():
            statuses = ["400", "401", "403", "429"]
            if "{" in path:
                statuses.append("404")
            if method in ("post", "put", "patch"):
                statuses.append("413")
            if (method == "post" and path == "/v1/account") or \
                    operation.get("operationId") in CONFLICT_OPERATIONS:
                statuses.append("409")
            if any(fragment in path for fragment in SERVER_PATHS):
                statuses += ["502", "503"]
            responses = operation.setdefault("responses", {})
            for status in statuses:
                responses.setdefault(status, _response(status))
            if operation.get("operationId") in UNIMPLEMENTED_OPERATIONS:
                responses.setdefault("501", _response(
                    "501", UNIMPLEMENTED_OPERATIONS[operation["operationId"]]))
            if "503" in responses:
                responses["503"]["description"] += " (or ServiceUnavailable: the database)"
            else:
                responses["503"] = _response("503", DATABASE_UNAVAILABLE)
    return result
