"""The text an HTML body shows, as plain text with its line and paragraph breaks, in time
linear in its length: what a reader gets when sanitizing the HTML gave up (``web_html``: it
took longer than the deadline, or its helper process failed) and the message has no text
part of its own.

Tags are read as HTML's tokenizer reads them (``html_nesting.TOKENS``); the content of the
elements that show none (``<style>``, ``<script>``, ``<head>``, ``<title>``) goes with them.
Block-level tags break lines (paragraphs, headings, tables and lists: a blank line; ``<br>``,
``<div>``, rows and items: a line break), cells are a space apart, other tags nothing; the
entities are then decoded and the white space of each line collapsed. Pure.
"""

from __future__ import annotations

import html as html_lib
import re

from mailboxes.html_nesting import TOKENS

_HIDDEN_OPENER = re.compile(r"<(style|script|head|title)[\t\n\f\r />]", re.I)
_HIDDEN_CLOSER = {name: re.compile(rf"</{name}[\t\n\f\r />]", re.I)
                  for name in ("style", "script", "head", "title")}
_PARAGRAPH = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "table", "ul",
                        "ol", "dl", "pre", "hr"})
_LINE = frozenset({"br", "div", "tr", "li", "dt", "dd", "address", "article", "aside",
                   "section", "header", "footer", "nav", "main", "figure", "figcaption",
                   "caption", "center", "details", "summary", "body"})
_CELL = frozenset({"td", "th"})


def text(html: str) -> str:
    """The text *html* shows, lines kept, as plain text (for ``web_html.from_plain``)."""
    shown = html_lib.unescape(TOKENS.sub(_break_for, _without_hidden(html)))
    lines: list[str] = []
    for line in shown.split("\n"):
        line = " ".join(line.split())
        if line or (lines and lines[-1]):  # one blank line at most between paragraphs
            lines.append(line)
    return "\n".join(lines).strip("\n")


def _break_for(match: re.Match) -> str:
    name = match.group(2)
    if name is None:
        return ""  # a comment, a doctype
    name = name.lower()
    if name in _PARAGRAPH:
        return "\n\n"
    if name in _LINE:
        return "\n"
    return " " if name in _CELL else ""


def _without_hidden(html: str) -> str:
    """*html* without its ``<style>``...``</style>`` (script, head, title) blocks. An opener
    never closed stays (its tag goes with the tags); each closer is looked for once from its
    opener, and a name found unclosed is not looked for again, so the pass is linear."""
    out: list[str] = []
    kept = position = 0
    unclosed: set[str] = set()
    while (opener := _HIDDEN_OPENER.search(html, position)) is not None:
        name = opener.group(1).lower()
        closer = None if name in unclosed else _HIDDEN_CLOSER[name].search(html, opener.end())
        if closer is None:
            unclosed.add(name)
            position = opener.end()
            continue
        out.append(html[kept:opener.start()])
        kept = position = closer.start()  # the end tag itself goes with the tags
    out.append(html[kept:])
    return "".join(out)
