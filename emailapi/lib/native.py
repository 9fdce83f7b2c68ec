"""Compiled modules that ``make`` builds with Cython next to their sources: Python loads one in
preference to its source, so one older than its source (the source edited since the last
``make``) would run code that is no longer there. Its loaders (``mailboxes/imap/__init__.py``,
``emailapi.lib.copy_text``) ask here and run the Python code instead. Pure: no Django and no
app (the IMAP layer uses it)."""

from __future__ import annotations

from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

__all__ = ["compiled_is_stale"]


def compiled_is_stale(directory: Path, module: str, *sources: str | Path) -> bool:
    """Whether the compiled *module* is in *directory* and older than any of its *sources*
    (paths relative to *directory*, or absolute): its own source, and any ``.pxd`` whose
    inline functions it was compiled with (an edited one would otherwise run in its old
    shape, on a struct laid out anew by the module that owns it)."""
    for suffix in EXTENSION_SUFFIXES:
        binary = directory / f"{module}{suffix}"
        if binary.exists():
            built = binary.stat().st_mtime
            return any((directory / source).exists()
                       and built < (directory / source).stat().st_mtime for source in sources)
    return False
