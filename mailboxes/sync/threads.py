"""Identity of a message across folders (``emailId``) and of its conversation (``threadId``)
for servers that offer neither OBJECTID nor Gmail's extensions (pure functions)."""

from __future__ import annotations

import hashlib
from datetime import datetime


def _digest(*parts: str) -> str:
    return hashlib.sha1("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:16]


def fingerprint(message_id: str | None, date: datetime | None, size: int) -> str:
    """Stable across a move: the same message keeps its Message-ID, date and size."""
    return "f" + _digest(message_id or "", date.isoformat() if date else "", str(size))


def thread_id(message_id: str | None, in_reply_to: str | None, references: list[str],
              known: dict[str, str], fallback: str) -> str:
    """The thread of an already indexed parent when there is one, else one named after the
    conversation's root (the first References entry, else the parent, else itself)."""
    for parent in [in_reply_to, *reversed(references)]:
        if parent and parent in known:
            return known[parent]
    root = (references[0] if references else None) or in_reply_to or message_id or fallback
    return "t" + _digest(root)
