"""A worker's heap: few malloc arenas, and freed memory handed back to the system.

glibc gives each thread that allocates its own arena (up to eight per core), and an arena
only shrinks from its top. A worker's connect threads and pool threads all allocate (TLS
handshakes, sync passes), so 10,000 sessions' long-lived objects end up spread over a dozen
arenas between the freed buffers of the connect storm, and the process keeps them all.
Two arenas, and ``malloc_trim`` once a connect wave is over (it also returns free pages from
the middle of an arena), keep the resident size near what is really in use.

Both are no-ops where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

logger = logging.getLogger(__name__)
M_ARENA_MAX = -8  # glibc's mallopt parameter


def _glibc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018 - only glibc has it
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _glibc()


def limit_arenas(count: int = 2) -> bool:
    """At most ``count`` malloc arenas (call before the threads start)."""
    if _LIBC is None:
        return False
    return bool(_LIBC.mallopt(M_ARENA_MAX, count))


def trim() -> bool:
    """Give free heap memory back to the system."""
    if _LIBC is None:
        return False
    return bool(_LIBC.malloc_trim(0))
