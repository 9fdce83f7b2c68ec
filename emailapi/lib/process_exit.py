"""Ending a process without the interpreter's final garbage collection.

When Python exits it tears its modules down and runs a full garbage collection over
everything still alive. For one of our processes (Django, DRF, the OpenAPI schema, Twisted or
rq: about 150,000 objects) that costs about half a second of CPU (py-spy: nearly all of it in
``gc_collect_main`` after the last line of Python ran). ``manage.py serve`` stops six such
processes at once, and then itself: on two cores, under load, the group took 5 to 12 s to
stop, and the supervisor kills a child that is not gone after 10 s.

That collection frees nothing the operating system would not take back anyway. Freezing the
heap (``gc.freeze``: every object moved out of the collector's reach) once the exit handlers
have run skips it; what a process does to stop (a worker releasing its leases, the logging
handlers flushed, the thread pools joined) has all happened by then, and objects are still
released by reference counting as modules are torn down. What is lost is the ``__del__`` of
objects kept alive only by reference cycles, which Python never promised to run at exit.
"""

from __future__ import annotations

import atexit
import gc


def skip_final_collection() -> None:
    """Call first thing in a process's entry point: exit handlers run last-registered first,
    so this one runs after every handler that the modules imported later register."""
    atexit.register(gc.freeze)
