"""Rows for PostgreSQL's ``COPY ... FROM STDIN`` (text format) written in one pass, where
``make`` compiled ``_copy_text.pyx``; psycopg's ``Copy.write_row`` is the reference and the
fallback (for a row with a value of another kind, and everywhere when nothing was built).

``row(values, names, json)``: the line (bytes, newline included) of ``values[name]`` for each
name, the ones flagged in *json* written as JSON text; ``None`` when psycopg must adapt the
row. A compiled module older than its source (edited since the last ``make``) is not used.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from emailapi.lib.native import compiled_is_stale

__all__ = ["row", "compiled"]

_HERE = Path(__file__).resolve().parent


def _none(values: Mapping[str, Any], names: tuple[str, ...], json: tuple[bool, ...]) -> None:
    return None


def _load() -> Callable[[Mapping[str, Any], tuple[str, ...], tuple[bool, ...]], bytes | None]:
    if compiled_is_stale(_HERE, "_copy_text", "_copy_text.pyx", "_copy_text.pxd"):
        warnings.warn("emailapi/lib/_copy_text.pyx or .pxd changed since it was compiled (run "
                      "`make install`): COPY rows are adapted by psycopg instead, more slowly",
                      RuntimeWarning, stacklevel=3)
        return _none
    try:
        from emailapi.lib import _copy_text
    except ImportError:
        return _none
    return _copy_text.row


row = _load()
compiled = row is not _none
