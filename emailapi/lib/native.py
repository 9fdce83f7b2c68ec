"""Compiled modules that ``make`` builds with Cython next to their sources: Python loads one in
preference to its source, so one older than its source (the source edited since the last
``make``) would run code that is no longer there. Its loaders (``mailboxes/imap/__init__.py``,
``emailapi.lib.copy_text``) ask here and run the Python code instead. Pure: no Django and no
app (the IMAP layer uses it)."""

from __future__ import annotations

from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

__all__ = ["compiled_is_stale"]


def compiled_is_stale(directory: Path, module: str, source: str) -> bool:
    """Whether the compiled *module* is in *directory* and older than its *source* there."""
    source_path = directory / source
    for suffix in EXTENSION_SUFFIXES:
        binary = directory / f"{module}{suffix}"
        if binary.exists():
            return source_path.exists() and binary.stat().st_mtime < source_path.stat().st_mtime
    return False
