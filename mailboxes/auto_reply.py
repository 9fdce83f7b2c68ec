"""Is a message an automatic reply? EmailEngine's ``isAutoReply`` (``isAutoreply`` in its
``lib/email-client/base-client.js``), rule for rule, so a receiver that filters on it sees the
same messages flagged:

1. the subject begins with ``Auto reply``, ``Automatic reply``, ``Auto response``,
   ``Automatic response`` (any spacing between the words, or none), ``Out of Office``,
   ``Out of the Office``, ``OOF:`` or ``OOO:`` (any case);
2. or it begins with ``Auto:`` and the message has an In-Reply-To;
3. or, when the headers are known: a ``Precedence`` value containing ``auto-reply``
   (``auto_reply``, ``autoreply``), an ``Auto-Submitted`` value containing ``auto-replied``
   (``auto_replied``, ``autoreplied``), both compared as EmailEngine does (case-sensitive:
   ``Auto-Submitted: Auto-Replied`` does not count there either), or any
   ``X-Auto-Response-Suppress``, ``X-Autoresponder``, ``X-Autorespond`` or ``X-Autoreply``.

Pure: no Django, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

_SUBJECT = re.compile(r"(?:auto(?:matic)?\s*(?:reply|response)|Out of(?: the)? Office|OOF:|OOO:)",
                      re.I)
_WEAK_SUBJECT = re.compile(r"auto:", re.I)
_PRECEDENCE = re.compile(r"auto[_-]?reply")
_AUTO_SUBMITTED = re.compile(r"auto[_-]?replied")
# Present at all: the message says it is (or suppresses replies as) an automatic answer.
_PRESENT = ("x-auto-response-suppress", "x-autoresponder", "x-autorespond", "x-autoreply")


def is_auto_reply(subject: str | None, in_reply_to: str | None,
                  headers: Mapping[str, Sequence[str]] | None) -> bool:
    """*headers*: lower-case name -> values (as ``GET .../message`` shows them), or None when
    they are not known (then the subject decides alone)."""
    subject = subject or ""
    if _SUBJECT.match(subject):
        return True
    if in_reply_to and _WEAK_SUBJECT.match(subject):
        return True
    if not headers:
        return False
    if any(_PRECEDENCE.search(value) for value in headers.get("precedence", ())):
        return True
    if any(_AUTO_SUBMITTED.search(value) for value in headers.get("auto-submitted", ())):
        return True
    return any(headers.get(name) for name in _PRESENT)
