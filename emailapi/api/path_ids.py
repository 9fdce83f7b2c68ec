"""Ids holding ``/`` in a URL path: ``/v1/account/crm%2F42`` names the account ``crm/42``.

EmailEngine takes any text as an account id and its clients put it in a path with
``encodeURIComponent``, so a ``/`` in an id arrives as ``%2F``. The web server hands the
application the path percent-decoded (ASGI's ``scope["path"]``; only ``raw_path`` keeps the
bytes), where ``crm%2F42`` and ``crm/42`` are the same text, and Django resolves that text:
``/v1/account/a%2Fmessages`` would have been the message listing of account ``a``.

Two steps keep an encoded slash inside its segment:

- ``mark_encoded_slashes`` (run by ``emailapi.asgi`` before any route is chosen): when the raw
  path holds ``%2F``, the path is decoded again segment by segment, and a ``/`` that came from
  inside a segment is written as ``MARK`` (U+001F, a control character no id may hold:
  ``accounts.api.serializers.id_problem``). ``%252F`` decodes once, to the text ``%2F``.
- ``IdConverter``, the ``<id:...>`` of every route that takes an account, gateway or OAuth2 app
  id, gives the view ``MARK`` back as ``/``; ``reverse()`` and ``{% url %}`` write ``/`` as
  ``MARK``, which Django percent-encodes as ``%1F``: the links the dashboard makes open the
  same page (Django's ``reverse`` escapes ``%`` itself, so it cannot write ``%2F``). A client
  that writes ``%1F`` itself reaches the same id: no id holds U+001F, so it can mean nothing else.

Without ``raw_path`` (a server that does not give it) an encoded slash cannot be told from a
real one; daphne, which serves this project, gives it.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from django.urls import register_converter

MARK = "\x1f"
_ENCODED_SLASH = re.compile(rb"%2f", re.IGNORECASE)


def mark_encoded_slashes(scope: dict) -> dict:
    """``scope`` with ``path`` rebuilt from ``raw_path`` when that holds an encoded slash
    (the ``/`` it decodes to written as ``MARK``); else ``scope`` itself."""
    raw = scope.get("raw_path")
    if not raw or not _ENCODED_SLASH.search(raw):
        return scope
    # Decoded as the web server decodes a path (daphne: ASCII, then UTF-8 with replacement),
    # one segment at a time.
    segments = raw.decode("latin-1").split("/")
    path = "/".join(unquote(segment).replace("/", MARK) for segment in segments)
    return {**scope, "path": path}


def shown(path: str) -> str:
    """A request's path as the client wrote it, for a message: ``MARK`` as ``%2F``."""
    return path.replace(MARK, "%2F")


class IdConverter:
    """One path segment, ``MARK`` standing for ``/`` (see the module's docstring)."""

    regex = "[^/]+"

    def to_python(self, value: str) -> str:
        return value.replace(MARK, "/")

    def to_url(self, value: str) -> str:
        return str(value).replace("/", MARK)


register_converter(IdConverter, "id")
