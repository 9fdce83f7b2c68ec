"""The IMAP protocol layer: commands, parsing and values, and no Django.

``make`` compiles four of its modules with Cython, next to their sources: ``parse`` (the same
source, compiled: its FETCH interpretation in about two thirds of the time), ``_tokens`` (the
tokenizer, in C), ``_headers`` (header values: RFC 2047 words, dates, message ids, address
headers, in C) and ``_meta`` (a response's FETCH items and a message's ``MessageMeta``: item
names, BODYSTRUCTURE and the envelope's fields, in C). Python loads a compiled module in
preference to its source, so one older than its source (the source edited since the last
``make``) would run code that is no longer there: such a module is not loaded. ``parse`` then
runs from its source, and without ``_tokens``, ``_headers`` or ``_meta`` it uses its own
Python code for them. Slower, never different.
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from pathlib import Path

from emailapi.lib.native import compiled_is_stale

_HERE = Path(__file__).resolve().parent
# module: its source (the ``_`` modules first: ``parse`` imports them)
COMPILED = {"_tokens": "_tokens.pyx", "_headers": "_headers.pyx", "_meta": "_meta.pyx",
            "parse": "parse.py"}


def _load_sources_for_stale_modules() -> None:
    for module, source in COMPILED.items():
        if not compiled_is_stale(_HERE, module, source):
            continue
        name = f"{__name__}.{module}"
        warnings.warn(f"{__name__.replace('.', '/')}/{source} changed since it was compiled "
                      "(run `make install`): the Python code runs instead, more slowly",
                      RuntimeWarning, stacklevel=2)
        if source.endswith(".pyx"):
            sys.modules[name] = None  # importing it raises ImportError: the fallback is used
            continue
        spec = importlib.util.spec_from_file_location(name, _HERE / source)
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[name] = loaded
        spec.loader.exec_module(loaded)
        globals()[module] = loaded


_load_sources_for_stale_modules()
