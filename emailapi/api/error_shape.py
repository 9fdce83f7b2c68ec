"""The JSON body of every error the API answers, EmailEngine's (Boom's) shape with our codes::

    {"statusCode": 404, "error": "Not Found", "message": "Mailbox 'Nope' not found",
     "code": "FolderNotFound", "emailapiCode": "MailboxNotFound"}

* ``statusCode`` repeats the HTTP status; ``error`` is its reason phrase, as Boom writes it
  (Node's ``http.STATUS_CODES``); ``message`` is the human text (show and log this one).
* ``code`` is EmailEngine's code where EmailEngine reports the same condition with one (its
  clients test for it: ``FolderNotFound``, ``ReferenceNotFound``, ``AuthenticationFails``...),
  else ours; ``emailapiCode`` is always ours, so a client of this API reads that one.
* ``details`` (optional) is ours: per-field messages keyed by dotted path for a validation
  error (``{"imap.port": ["..."]}``), or data naming what was wrong.
* ``fields`` (400s whose ``details`` are per-field messages) is Joi's list, as EmailEngine's
  validation errors carry it: one ``{"message", "key"}`` per message, ``key`` being the last
  segment of the path as Joi's ``context.key`` is.
* ``ttl`` (429 only): seconds until the limit lets requests through again, as EmailEngine's.

Pure (no Django, no DRF): the ASGI refusals that answer before Django use it as well as the
exception handler (``emailapi.api.errors``).
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

# Where Node's reason phrase (Boom's ``error``) differs from Python's.
_NODE_PHRASES = {413: "Payload Too Large", 414: "URI Too Long", 416: "Range Not Satisfiable"}

_SEGMENT = re.compile(r"[^.\[\]]+")


def reason_phrase(status_code: int) -> str:
    """The HTTP reason phrase of ``status_code`` as EmailEngine answers it ("Not Found")."""
    if status_code in _NODE_PHRASES:
        return _NODE_PHRASES[status_code]
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return "Unknown"


def fields_of(details: Any) -> list[dict[str, str]] | None:
    """Joi's ``fields`` for per-field ``details`` (``{"imap.auth.pass": ["Required"]}`` ->
    ``[{"message": "imap.auth.pass: Required", "key": "pass"}]``), or None for details of
    any other form."""
    if not isinstance(details, dict) or not details:
        return None
    if not all(isinstance(messages, list) and messages
               and all(isinstance(m, str) for m in messages) for messages in details.values()):
        return None
    fields = []
    for path, messages in details.items():
        segments = _SEGMENT.findall(str(path))
        key = segments[-1] if segments else str(path)
        fields.extend({"message": f"{path}: {message}", "key": key} for message in messages)
    return fields


def error_body(message: str, code: str, status_code: int, details: Any = None, *,
               ee_code: str = "", ttl: int | None = None) -> dict:
    """The error body (see the module docstring); ``ee_code`` is EmailEngine's code for the
    same condition, when it has one."""
    body: dict[str, Any] = {"statusCode": status_code, "error": reason_phrase(status_code),
                            "message": message, "code": ee_code or code, "emailapiCode": code}
    if details:
        body["details"] = details
    if status_code == 400 and (fields := fields_of(details)):
        body["fields"] = fields
    if ttl is not None:
        body["ttl"] = ttl
    return body
