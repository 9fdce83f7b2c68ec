"""A message's HTML kept to a nesting depth a browser would build, before it is sanitized.

A sender controls how deep a message's HTML nests, and html5ever (under nh3) pays for depth
twice: each block-level start tag looks through the open elements (is a ``<p>`` in scope?),
so ``<div>`` nested n deep costs n² (100,000 of them, 600 KB, took 16 s; a 5 MB body, hours),
and the tree it builds is as deep as the input. Browsers stop at a depth (Chromium: 512) and
put what comes deeper beside, not inside. ``flatten`` does the same with the tags' text:
beyond ``MAX_DEPTH`` open elements, start tags (and the end tags that close them) are left
out, their content kept. Below it the text is returned as it came.

The count is lexical, as a tokenizer sees the tags: void elements and those whose end tag may
be left out (``<p>``, ``<li>``, ``<td>``...: the parser closes them itself, so they do not pile
up) do not count, and an end tag closes the nearest open element of its name. It bounds the
parser's depth to a small multiple of ``MAX_DEPTH`` (a ``<td>`` in a ``<tr>`` in a ``<table>``
counts once), which is what keeps it linear; it need not match the parser's tree exactly.
"""

from __future__ import annotations

import re

MAX_DEPTH = 512

# A tag's start is enough to know what it opens or closes: ``<div/>`` opens a div too (in HTML
# the slash means nothing but on void and foreign elements).
_TAG_START = re.compile(r"<(/?)([a-z][^\s/>]*)")  # of the lowercased text
# A whole tag. Its name ends at white space, "/", "<" or ">", and the rest holds neither "<"
# nor ">", so no two parts of the pattern can take the same characters: a run of "<div"
# without a ">" costs one pass (overlapping parts made 8 KB of them 15 s).
_TAG = re.compile(r"<(/?)([a-zA-Z][^\s/<>]*)(?:[\s/][^<>]*)?>")
# Elements that never hold content, and those the parser closes implicitly (HTML's optional
# end tags, and the document's own).
_UNCOUNTED = frozenset({
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
    "source", "track", "wbr", "keygen", "basefont", "bgsound", "frame", "image",
    "p", "li", "dt", "dd", "tr", "td", "th", "thead", "tbody", "tfoot", "colgroup", "caption",
    "option", "optgroup", "rb", "rt", "rtc", "rp", "html", "head", "body",
})


class _Open:
    """The open elements, by name and in order; an end tag closes the nearest of its name."""

    def __init__(self):
        self.names: list[str] = []
        self.counts: dict[str, int] = {}

    def push(self, name: str) -> None:
        self.names.append(name)
        self.counts[name] = self.counts.get(name, 0) + 1

    def close(self, name: str) -> None:
        if self.counts.get(name):
            while (popped := self.names.pop()) != name:
                self.counts[popped] -= 1
            self.counts[name] -= 1


def deeper_than(html: str, max_depth: int = MAX_DEPTH) -> bool:
    """Whether ``html`` ever has more than ``max_depth`` elements open (counted as above)."""
    if html.count("<") <= max_depth:
        return False  # too few tags to nest that deep
    elements = _Open()
    names, push, close = elements.names, elements.push, elements.close
    for closing, name in _TAG_START.findall(html.lower()):  # one lower() for every name
        if name in _UNCOUNTED:
            continue
        if closing:
            close(name)
        else:
            push(name)
            if len(names) > max_depth:
                return True
    return False


def flatten(html: str, max_depth: int = MAX_DEPTH) -> str:
    """``html`` with the start tags beyond ``max_depth`` open elements left out (and the end
    tags of those), or ``html`` itself when it does not nest that deep."""
    if not deeper_than(html, max_depth):
        return html
    elements = _Open()
    left_out: dict[str, int] = {}
    kept: list[str] = []
    start = 0
    for match in _TAG.finditer(html):
        closing, name = match.group(1), match.group(2).lower()
        if name in _UNCOUNTED:
            continue
        if closing and left_out.get(name):  # the innermost element of that name is left out
            left_out[name] -= 1
        elif closing:
            elements.close(name)
            continue
        elif len(elements.names) < max_depth:
            elements.push(name)
            continue
        else:
            left_out[name] = left_out.get(name, 0) + 1
        kept.append(html[start:match.start()])
        start = match.end()
    kept.append(html[start:])
    return "".join(kept)
