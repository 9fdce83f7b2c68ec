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

# A tag's name, as the tokenizer reads it: a letter, then anything up to HTML's white space
# (tab, LF, FF, CR, space), "/" or ">". Python's ``\s`` is wider (NBSP, vertical tab, U+001C...):
# with it, ``<q\x0b>`` would be a q here and a "q\x0b" to the parser, which a ``</q>`` then
# never closes. Names are lowercased in ASCII only, as the tokenizer does (``str.lower`` folds
# more: "İ" and "i̇" would be one name here and two to the parser).
_NAME = r"[a-zA-Z][^\t\n\f\r />]*"
_TAG_START = re.compile(rf"<(/?)({_NAME})")
# A whole tag. Its name may hold a "<" (``<div<x>`` is one element to the parser), and the
# rest of the tag runs to the first ">" or to the end of the text: every "<" and a letter
# starts a tag that matches, so no attempt fails and rescans (failing attempts over a run of
# "<div" without a ">" once made 8 KB of them 15 s). One without its ">" is left as text.
_TAG = re.compile(rf"<(/?)({_NAME})(?:[\t\n\f\r /][^>]*)?>?")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
# Elements that never hold content, and those the parser closes implicitly (HTML's optional
# end tags, and the document's own). Not the ruby ones (rb, rt, rtc, rp): outside a <ruby> the
# parser nests them like any other element (20,000 <rb> took 1 s to sanitize, 40,000 6 s).
_UNCOUNTED = frozenset({
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
    "source", "track", "wbr", "keygen", "basefont", "bgsound", "frame", "image",
    "p", "li", "dt", "dd", "tr", "td", "th", "thead", "tbody", "tfoot", "colgroup", "caption",
    "option", "optgroup", "html", "head", "body",
})
# HTML's "special" elements (those counted here): an end tag of any other name stops at them.
_SPECIAL = frozenset({
    "address", "applet", "article", "aside", "blockquote", "button", "center", "details",
    "dir", "div", "dl", "fieldset", "figcaption", "figure", "footer", "form", "frameset", "h1",
    "h2", "h3", "h4", "h5", "h6", "header", "hgroup", "iframe", "listing", "main", "marquee",
    "menu", "nav", "noembed", "noframes", "noscript", "object", "ol", "plaintext", "pre",
    "script", "search", "section", "select", "style", "summary", "table", "template",
    "textarea", "title", "ul", "xmp",
})
# What a special element's end tag does not reach past (its "scope"; with the list and button
# scopes' own, so a close is never assumed that the parser would not make).
_SCOPE_MARKERS = frozenset({"applet", "marquee", "object", "table", "template", "ol", "ul",
                            "button"})


class _Open:
    """The open elements in order, and for each name where they are.

    An end tag closes the nearest open element of its name, and everything opened after it,
    only where the parser would: an end tag of an ordinary element (``</span>``, ``</b>``) is
    ignored by the parser when a special element (a div, a table...) was opened after it, and
    a special element's end tag when a scope marker (a table...) was. Closing there anyway let
    ``<span><div></span>`` repeated nest as deep as it was long while it counted 0 here. Each
    check is constant time (the last special and marker positions are kept per depth)."""

    def __init__(self):
        self.names: list[str] = []
        self.at: dict[str, list[int]] = {}  # name -> its depths, innermost last
        self._special: list[int] = []  # per depth: the innermost special element at or below
        self._marker: list[int] = []  # likewise for scope markers

    def push(self, name: str) -> None:
        depth = len(self.names)
        self.names.append(name)
        self.at.setdefault(name, []).append(depth)
        self._special.append(depth if name in _SPECIAL else
                             (self._special[-1] if self._special else -1))
        self._marker.append(depth if name in _SCOPE_MARKERS else
                            (self._marker[-1] if self._marker else -1))

    def close(self, name: str) -> None:
        where = self.at.get(name)
        if not where:
            return
        depth = where[-1]
        blocker = self._marker[-1] if name in _SPECIAL else self._special[-1]
        if blocker > depth:
            return  # the parser ignores this end tag
        while len(self.names) > depth:
            popped = self.names.pop()
            self.at[popped].pop()
            self._special.pop()
            self._marker.pop()


def _name(raw: str) -> str:
    return raw.lower() if raw.isascii() else raw.translate(_ASCII_LOWER)


def deeper_than(html: str, max_depth: int = MAX_DEPTH) -> bool:
    """Whether ``html`` ever has more than ``max_depth`` elements open (counted as above)."""
    if html.count("<") <= max_depth:
        return False  # too few tags to nest that deep
    elements = _Open()
    names, push, close = elements.names, elements.push, elements.close
    for closing, raw in _TAG_START.findall(html):
        name = _name(raw)
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
        closing, name = match.group(1), _name(match.group(2))
        if name in _UNCOUNTED or not match.group(0).endswith(">"):
            continue  # (a tag the text ends in, unclosed, is dropped by the parser anyway)
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
