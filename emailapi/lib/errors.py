"""The kinds of failure a service can report, free of HTTP.

A service (``accounts.services``, ``mailboxes.message_writes``, ...) raises a ``DomainError``
subclass from its app's errors module (``accounts.errors``, ``mailboxes.errors``,
``webhooks.errors``): one class per machine code, each under one kind below. The kind says
what went wrong in words a caller can act on; only the web layer turns it into an answer
(the API's exception handler maps kind -> HTTP status in ``emailapi.api.errors``; the
dashboard puts the message on its form or page). So a service never names a status, and a
caller branches on classes, never on code strings::

    class AccountNotFound(NotFound):
        code = "AccountNotFound"

    raise AccountNotFound(f"Account {account_id!r} not found")

Where EmailEngine reports the same condition with a code of its own (its clients test for it),
the class names it in ``ee_code``: the API answers that as ``code`` and keeps ours as
``emailapiCode`` (``emailapi.api.errors``), so a client written for EmailEngine keeps working::

    class MailboxNotFound(NotFound):
        code = "MailboxNotFound"
        ee_code = "FolderNotFound"

This module imports nothing of the project, Django or DRF.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refusal a caller can understand: ``code`` (machine), ``message`` (human) and
    optional ``details`` (a JSON-able dict naming what was wrong). A subclass sets ``code``
    and, where the text never varies, a default ``message``."""

    code: str = ""
    message: str = ""
    # EmailEngine's code for the same condition, when it has one ("" when it has none).
    ee_code: str = ""

    def __init__(self, message: str | None = None, details: Any = None):
        if message is not None:
            self.message = message
        self.details = details
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class Invalid(DomainError):
    """The request asks for something that cannot be: fix it before trying again."""


class PaymentRequired(DomainError):
    """The organization's plan (or its ended trial) does not allow this."""


class Forbidden(DomainError):
    """Allowed to others, or later, but not to this caller now."""


class NotFound(DomainError):
    """The thing named does not exist (or is not the caller's to see)."""


class Conflict(DomainError):
    """The current state of the thing does not allow this (it exists already, is busy...)."""


class Gone(DomainError):
    """What the request refers to existed once and is no longer kept."""


class TooLarge(DomainError):
    """More than the limit allows."""


class RateLimited(DomainError):
    """Too many attempts in a while: wait and try again."""


class Unimplemented(DomainError):
    """A valid request for something this service does not do (yet)."""


class UpstreamFailed(DomainError):
    """A server this service talks to (a mail server, a provider) failed or refused."""


class Unavailable(DomainError):
    """Something this request needs cannot serve it now; ``retry_after`` (seconds), when
    known, says when trying again makes sense."""

    def __init__(self, message: str | None = None, details: Any = None,
                 retry_after: int | None = None):
        super().__init__(message, details)
        self.retry_after = retry_after


KINDS: tuple[type[DomainError], ...] = (
    Invalid, PaymentRequired, Forbidden, NotFound, Conflict, Gone, TooLarge, RateLimited,
    Unimplemented, UpstreamFailed, Unavailable,
)


def kind_of(error: DomainError | type[DomainError]) -> type[DomainError] | None:
    """The kind (one of ``KINDS``) an error class is under, or None for a bare one."""
    cls = error if isinstance(error, type) else type(error)
    return next((k for k in cls.__mro__ if k in KINDS), None)
