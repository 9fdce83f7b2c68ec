"""Mail the dashboard sends (confirmation links, invitations, plan requests).

A mail server that is down, slow or refusing is a sentence for the page, never a 500: the
signup, the invitation or the request row is saved already by then, and the page says what was
saved and what was not sent (the person can send it again), rather than an error page that
hides that anything happened.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail

from emailapi.lib.wording import describe

logger = logging.getLogger(__name__)


def send(subject: str, body: str, to: list[str]) -> str | None:
    """Send one message; None when it went, else why not, in words."""
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, to)
    except OSError as exc:  # smtplib's errors are OSErrors too
        why = describe(exc)
        logger.warning("dashboard mail %r to %d address(es) not sent: %s", subject, len(to), why)
        return why
    return None
