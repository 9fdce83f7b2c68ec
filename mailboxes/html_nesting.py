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
up) do not count, and an end tag closes the nearest open element of its name where the parser
would close it. It bounds the parser's depth to a small multiple of ``MAX_DEPTH`` (a ``<td>``
in a ``<tr>`` in a ``<table>`` counts once), which is what keeps it linear; it need not match
the parser's tree exactly, but where the two could differ it errs on the deep side: an end
tag this count honours that the parser would not (one inside a comment, an attribute's quoted
value, a ``<style>``) let a sender nest without limit while this counted nothing. So tags are
read as HTML's tokenizer reads them (comments, quoted attribute values), and inside the
elements whose content is text to the parser (``<style>``, ``<script>``, ``<textarea>``,
``<title>``...; in SVG some of them hold markup) and in ``<![CDATA[`` sections start tags count
and end tags do not.
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
# An attribute, or the white space and slashes between them: a name (which may start with
# "="), then perhaps "=" and a value, quoted (to its closing quote, or the end of the text) or
# not. Each part takes characters no other part can start with, so a tag is read in one pass.
_ATTRIBUTE = (r"(?:[\t\n\f\r /]+|[^\t\n\f\r />][^\t\n\f\r />=]*"
              r"""(?:[\t\n\f\r ]*=[\t\n\f\r ]*(?:"[^"]*"?|'[^']*'?|[^\t\n\f\r >]*))?)""")
# A whole tag, to its ">" or to the end of the text (a tag the text ends in, unclosed, is
# dropped by the parser): every "<" and a letter starts a tag that matches, so no attempt fails
# and rescans (failing attempts over a run of "<div" without a ">" once made 8 KB of them 15 s).
# Its name may hold a "<" (``<div<x>`` is one element to the parser).
_TAG = re.compile(rf"<(/?)({_NAME})(?:{_ATTRIBUTE})*(>?)")
# What the tokenizer reads as no tag: comments (``<!-->`` and ``<!--->`` end at once, others at
# ``-->`` or ``--!>``), doctypes and bogus comments (``<!x``, ``<?x``, ``</3``: to the first
# ">"). ``<![CDATA[`` is one of those too outside SVG and MathML (its section is handled apart).
_NOT_A_TAG = r"<!--(?:-?>|.*?(?:--!?>|\Z))|<(?:!|\?|/(?![a-zA-Z]))[^>]*>?"
_TOKEN = re.compile(rf"{_NOT_A_TAG}|{_TAG.pattern}", re.DOTALL)
# The same reading for others (``html_text``): groups (closing "/", name, ">"), the name None for
# what is no tag. Every "<" that starts one matches at once, so a pass over a text is linear.
TOKENS = _TOKEN
_CDATA = "<![CDATA["
# Elements whose content the parser reads as text up to their own end tag (in HTML; inside SVG
# or MathML the same names may hold markup, so their start tags still count).
_RAW_TEXT = ("script", "style", "xmp", "iframe", "noembed", "noframes", "noscript",
             "textarea", "title")
_SCRIPT_START = re.compile(r"<script[\t\n\f\r />]", re.IGNORECASE | re.ASCII)
_RAW_END = {name: re.compile(rf"</{name}[\t\n\f\r />]", re.IGNORECASE | re.ASCII)
            for name in _RAW_TEXT}
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
        # Per depth (and -1 below them all): the innermost special element at or below it, and
        # likewise the innermost scope marker.
        self._special: list[int] = [-1]
        self._marker: list[int] = [-1]

    def push(self, name: str) -> None:
        depth = len(self.names)
        self.names.append(name)
        at = self.at.get(name)
        if at is None:
            self.at[name] = [depth]
        else:
            at.append(depth)
        special, marker = self._special, self._marker
        special.append(depth if name in _SPECIAL else special[-1])
        marker.append(depth if name in _SCOPE_MARKERS else marker[-1])

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


class _Tags:
    """The tags of a text as ``(closing, name, match)``, in order, read as described in the
    module doc (``match`` is None for an unclosed tag the text ends in)."""

    def __init__(self, html: str):
        self.html = html
        self._raw_ends: dict[str, int] = {}  # name -> where its next end tag starts (-1: none)
        self._cdata_end = 0  # where the last CDATA section seen ends

    def __iter__(self):
        html, pos, size = self.html, 0, len(self.html)
        ends_hidden_until = 0
        while pos < size:
            resume = size  # where to read on from after a raw text element, if one comes
            for match in _TOKEN.finditer(html, pos):
                closing, name, complete = match.groups()
                if name is None:  # a comment, a doctype, a bogus comment
                    if html.startswith(_CDATA, match.start()):
                        ends_hidden_until = max(ends_hidden_until, self._cdata(match.start()))
                    continue
                name = name.lower() if name.isascii() else name.translate(_ASCII_LOWER)
                if closing:
                    if not ends_hidden_until or match.start() >= ends_hidden_until:
                        yield closing, name, match if complete else None
                    continue
                yield closing, name, match if complete else None
                if not complete:
                    continue
                if name == "plaintext":
                    ends_hidden_until = size
                elif name in _RAW_END:
                    end = self._raw_end(name, match.end())
                    yield from self._start_tags(match.end(), end)
                    if name == "script" and _runs_past(html, match.end(), end):
                        ends_hidden_until = size
                    resume = end
                    break
            pos = resume

    def _start_tags(self, pos: int, end: int):
        """The start tags of raw text: none to the parser in HTML, elements inside SVG."""
        html = self.html
        while (match := _TAG.search(html, pos, end)) is not None:
            pos = match.end()
            if not match.group(1):
                yield "", _name(match.group(2)), match if match.group(3) else None

    def _raw_end(self, name: str, pos: int) -> int:
        found = self._raw_ends.get(name)
        if found is None or -1 < found < pos:  # remembered, so each is searched for once
            match = _RAW_END[name].search(self.html, pos)
            found = self._raw_ends[name] = match.start() if match else -1
        return len(self.html) if found == -1 else found

    def _cdata(self, start: int) -> int:
        if self._cdata_end != -1 and self._cdata_end <= start:
            found = self.html.find("]]>", start)
            self._cdata_end = found
        return len(self.html) if self._cdata_end == -1 else self._cdata_end


def _runs_past(html: str, start: int, end: int) -> bool:
    """Whether a script from ``start`` may run past the ``</script`` at ``end``: inside
    ``<!--``, a ``<script`` puts the parser where the next ``</script>`` does not end it. An
    old ``<script><!-- ... //--></script>`` alone does not."""
    opened = html.find("<!--", start, end)
    return opened != -1 and _SCRIPT_START.search(html, opened, end) is not None


def deeper_than(html: str, max_depth: int = MAX_DEPTH) -> bool:
    """Whether ``html`` ever has more than ``max_depth`` elements open (counted as above)."""
    if html.count("<") <= max_depth:
        return False  # too few tags to nest that deep
    elements = _Open()
    names, push, close = elements.names, elements.push, elements.close
    for closing, name, _match in _Tags(html):
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
    for closing, name, match in _Tags(html):
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
        if match is None:
            continue  # unclosed at the end of the text: left as text (the parser drops it)
        kept.append(html[start:match.start()])
        start = match.end()
    kept.append(html[start:])
    return "".join(kept)
