"""New history rows' COPY lines written straight from their ``MessageMeta`` where ``make``
compiled ``_row_lines.pyx``; ``index._row_values`` with ``emailapi.lib.copy_text`` is the
reference and the fallback (a row the compiled writer declines, new mail, and everywhere when
nothing was built). No Django here.

``plan(names)``: the compiled writer's column codes for a COPY column list, ``None`` when it
cannot write those columns (or was not built). ``line(codes, meta, account_id, folder_id,
email_id, thread_id, indexed_at)``: the line (bytes, newline included), or ``None`` where the
reference must write the row. A compiled module older than its source or than
``emailapi/lib/_copy_text.pxd`` (whose inline writers it was compiled with) is not used, nor
one whose ``copy_text`` is not (its other writers are that module's).
"""

from __future__ import annotations

import warnings
from pathlib import Path

from emailapi.lib import copy_text
from emailapi.lib.native import compiled_is_stale

__all__ = ["plan", "line", "compiled"]

_HERE = Path(__file__).resolve().parent
_SHARED = _HERE.parents[1] / "emailapi" / "lib" / "_copy_text.pxd"


def _no_plan(names: tuple[str, ...]) -> None:
    return None


def _no_line(*args) -> None:
    return None


def _load():
    if compiled_is_stale(_HERE, "_row_lines", "_row_lines.pyx", _SHARED):
        warnings.warn("mailboxes/sync/_row_lines.pyx or emailapi/lib/_copy_text.pxd changed "
                      "since it was compiled (run `make install`): history rows are built in "
                      "Python instead, more slowly",
                      RuntimeWarning, stacklevel=3)
        return _no_plan, _no_line
    if not copy_text.compiled:  # its writers are this module's
        return _no_plan, _no_line
    try:
        from mailboxes.sync import _row_lines
    except ImportError:
        return _no_plan, _no_line
    return _row_lines.plan, _row_lines.line


plan, line = _load()
compiled = plan is not _no_plan
