"""JSON from outside, decoded only once its nesting is known to be shallow.

Python's decoder descends one C call per ``[`` or ``{`` and gives up with a RecursionError near
the interpreter's limit. Catching that error is not enough: every level allocates a list or a
dict, so the garbage collector runs somewhere in that descent, and whatever finalizers it calls
(a closed generator, a socket, a connection's ``__del__``) run with no stack left, fail, and are
lost as "Exception ignored" (the cleanup they owed never happens). So the depth is measured
first, by a scan that skips strings without recursing, and a body nested deeper than the limit
is refused before the decoder sees it.
"""

from __future__ import annotations

import json
import re
from array import array
from itertools import accumulate

# A string, escapes included, up to its closing quote or, unterminated, to the end of the text.
# Unrolled, so that the engine loops in C per character and only once per escape.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
# Bytes of what is left: an opener counts +1, a closer -1 (255 as a signed char), the rest goes.
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[{]}"))


class TooDeep(ValueError):
    """Nested deeper than allowed; a ValueError, as the decoder's own refusals are."""

    def __init__(self, limit: int):
        super().__init__(f"JSON nested deeper than {limit} levels")
        self.limit = limit


def deeper_than(text: str, limit: int) -> bool:
    """Whether ``text`` opens more than ``limit`` arrays or objects inside each other.

    Brackets inside strings do not count, nor any after a quote that is never closed. Every
    step runs in C: strings are cut out, the brackets left become +1 and -1, and their running
    sum peaks at the depth. Text that is not JSON gets an answer too; the decoder refuses it."""
    if text.count("[") + text.count("{") <= limit:
        return False  # too few openers to nest that deep: the common case costs two counts
    skeleton = _STRING.sub("", text).encode("latin-1", "ignore")  # the rest is ASCII in JSON
    steps = array("b", skeleton.translate(_STEPS, _NOT_BRACKETS))
    return max(accumulate(steps), default=0) > limit


def loads(raw: str | bytes, limit: int, **options):
    """``json.loads`` of ``raw`` unless it nests deeper than ``limit`` (then ``TooDeep``).

    Bytes are decoded as ``json.loads`` decodes them (UTF-8, -16 or -32, told apart by their
    first bytes); a ``UnicodeDecodeError`` is a ValueError too."""
    if isinstance(raw, (bytes, bytearray)):
        text = raw.decode(json.detect_encoding(raw), "surrogatepass")
    else:
        text = raw
    if deeper_than(text, limit):
        raise TooDeep(limit)
    return json.loads(text, **options)
