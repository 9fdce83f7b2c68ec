"""EmailEngine's ``statusCode`` on a failed verifyAccount check.

EmailEngine documents it as "HTTP-style status code for the error. Only present if
success=false" (VerifyImapResult/VerifySmtpResult, an integer). It copies the error's own
``statusCode``, which its own errors carry (503 for an IMAP connection it cannot get) and a
mail server's refusal does not. Ours gives every failed check one, by the kind of failure
(``mailboxes.verify``'s ``emailapiCode``), as our API would answer a request that met it: an
HTTP status is the API layer's business, so it is added here, not by the check.
"""

from __future__ import annotations

# 401: the server refused the credentials; 403: the host is on an address not allowed;
# 504: the server did not answer in time; anything else the server or the way to it did: 502.
STATUS_CODES = {"AuthenticationFailed": 401, "HostNotAllowed": 403, "Timeout": 504}
UPSTREAM_FAILED = 502


def status_code(check: dict) -> int | None:
    """The HTTP-style status of one check's result, None when it succeeded."""
    if check.get("success", True):
        return None
    return STATUS_CODES.get(check.get("emailapiCode") or check.get("code"), UPSTREAM_FAILED)


def with_status_codes(result: dict) -> dict:
    """``mailboxes.verify.verify``'s answer with ``statusCode`` on each failed check."""
    for name in ("imap", "smtp"):
        check = result.get(name)
        code = status_code(check) if isinstance(check, dict) else None
        if code is not None:
            result[name] = {**check, "statusCode": code}
    return result
