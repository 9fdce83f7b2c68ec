"""Text as PostgreSQL can store it.

PostgreSQL's ``text`` and ``jsonb`` refuse NUL (``DataError``), and UTF-8 cannot encode a lone
surrogate (psycopg raises while adapting). A mail's header values are a sender's: an encoded
word ``=?utf-8?q?a=00b?=`` in a Subject, an RFC 2231 filename ``f%00.txt`` or a raw NUL in a
name decodes to text holding NUL, and such a message made its whole batch's COPY fail, on
every retry, so that nothing after it in the folder was ever indexed or announced. What is
stored keeps the rest of the text and shows U+FFFD (the replacement character) where the
unstorable character was, as a decoder does for bytes it cannot read.
"""

from __future__ import annotations

from typing import Any

REPLACEMENT = "\ufffd"


def storable_text(text: str) -> str:
    """``text`` with each NUL and lone surrogate replaced by U+FFFD (itself when it has none:
    the common case costs a scan for NUL and, for non-ASCII text, an encode)."""
    if "\x00" in text:
        text = text.replace("\x00", REPLACEMENT)
    return whole_characters(text)


def whole_characters(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD (itself when it has none). UTF-7
    decodes ``+2AA-`` to one, which no UTF-8 writer takes: not the database, not a JSON or
    HTML encoder, not the email package composing a reply that quotes it."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = "".join(REPLACEMENT if "\ud800" <= char <= "\udfff" else char for char in text)
    return text


def unstorable(value: Any) -> bool:
    """Whether ``value`` (a str, or lists, tuples and dicts of them: what a row's columns and
    their JSON hold) holds text PostgreSQL cannot store."""
    if isinstance(value, str):
        return storable_text(value) is not value
    if isinstance(value, dict):
        return any(unstorable(key) or unstorable(item) for key, item in value.items())
    if isinstance(value, list) or type(value) is tuple:
        return any(unstorable(item) for item in value)
    return False


def storable(value: Any) -> Any:
    """``value`` with ``storable_text`` applied to every str in it, its lists (of any kind),
    tuples and dicts rebuilt as plain ones; other values as they are."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    if isinstance(value, list):  # DRF's ReturnList too, as a plain list
        return [storable(item) for item in value]
    if type(value) is tuple:
        return tuple(storable(item) for item in value)
    return value
