"""The quoted thread history of a reply or forward, folded into one collapsed block, as
EmailEngine's web-safe HTML does it (``lib/web-safe-html.js``)::

    <p>Works for me.</p><details class="ee-collapsed-thread"><summary
    class="ee-collapsed-thread-toggle"></summary><div class="gmail_quote">...</div></details>

Everything from where the sender stopped writing to the end of the body goes into the block;
its ``<summary>`` is empty on purpose (a renderer that knows the class puts its own label there;
one that does not shows nothing extra). EmailEngine finds that point with its content
extractor; here it is where the first quote container of the known mail clients starts (HTML:
Gmail's ``gmail_quote``, Apple Mail's and Thunderbird's ``blockquote type="cite"`` and
``moz-cite-prefix``, Outlook's ``divRplyFwdMsg``/``appendonsend``/``stopSpelling``, Yahoo's
``yahoo_quoted``, Proton's ``protonmail_quote``...; plain text: an ``On ... wrote:`` line or a
``>`` block that runs to the end, ``-----Original Message-----``, a forwarded-message line).
EmailEngine's own limits hold: nothing is folded unless the sender wrote something before it
and at least 120 characters of text would fold, never at a table's inner tag, never past
``</body>``, and not in a body of more than 256 KiB.

Pure: no Django, no I/O. The caller sanitises the result (``web_html.sanitize`` keeps the
block's two classes and nothing else of the kind).
"""

from __future__ import annotations

import html as html_lib
import re

COLLAPSE_CLASS = "ee-collapsed-thread"
COLLAPSE_TOGGLE_CLASS = "ee-collapsed-thread-toggle"
OPEN = f'<details class="{COLLAPSE_CLASS}"><summary class="{COLLAPSE_TOGGLE_CLASS}"></summary>'
CLOSE = "</details>"
MIN_COLLAPSE_CHARS = 120
MAX_ANALYZE_CHARS = 256 * 1024
_DOCUMENT_END_TAIL = 4096

# A quote container is the opening tag of one of these elements whose class or id names one of
# the known mail clients' containers (or a ``<blockquote type="cite">``). The tags are found
# one at a time and their attributes tested apart: one pattern for all of it rescans the rest of
# the body for each ``<div `` that never closes (minutes on a body that is such tags alone).
_QUOTE_OPENER = re.compile(r"<(div|blockquote|hr|section)\b", re.I)
_CLASS_OR_ID = re.compile(r"""\b(?:class|id)\s*=\s*["']?""", re.I)
_QUOTE_MARK = re.compile(r"""["']""")
_QUOTE_NAME = re.compile(
    r"\b(?:gmail_quote|gmail_quote_container|moz-cite-prefix|moz-forward-container|yahoo_quoted|"
    r"protonmail_quote|divRplyFwdMsg|appendonsend|stopSpelling|OutlookMessageHeader|"
    r"mail-editor-reference-message-container|zmail_extra|x_gmail_quote)\b", re.I)
_TYPE_CITE = re.compile(r"""\btype\s*=\s*["']?cite\b""", re.I)
_BLOCKQUOTE_OPENER = re.compile(r"<blockquote\b", re.I)
_TABLE_INTERNAL = re.compile(r"<(?:table|thead|tbody|tfoot|tr|td|th|col|colgroup|caption)[\s/>]",
                             re.I)
_DOCUMENT_END = re.compile(r"</(?:body|html)[\s>]", re.I)
# Elements whose content shows nothing: ``<style>...</style>`` and the like.
_BLOCK_OPENER = re.compile(r"<(style|script|head|title)\b", re.I)
_BLOCK_CLOSER = {name: re.compile(rf"</{name}\s*>", re.I)
                 for name in ("style", "script", "head", "title")}

_WROTE = re.compile(r"^(?:On|Am|Le|El|Il|Op|Em|Den|På)\b.{0,300}?(?:wrote|schrieb|a écrit|escribió"
                    r"|ha scritto|schreef|escreveu|skrev)\s*:\s*$", re.I | re.S)
_SEPARATOR = re.compile(r"^\s*(?:-{2,}\s*(?:Original Message|Ursprüngliche Nachricht|Message "
                        r"d'origine|Forwarded message|Weitergeleitete Nachricht)\s*-{2,}|"
                        r"Begin forwarded message:|_{20,})\s*$", re.I)


def fold_html(html: str) -> str | None:
    """*html* with its quoted tail in the collapsed block, or None when there is none worth
    folding (or no safe place for the block)."""
    if not html or len(html) > MAX_ANALYZE_CHARS:
        return None
    start = _quote_start(html)
    if start is None:
        return None
    if _TABLE_INTERNAL.match(html, start):
        return None
    close = _close_offset(html)
    if close <= start:
        return None
    if not _visible(html[:start]) or len(_visible(html[start:close])) < MIN_COLLAPSE_CHARS:
        return None
    return html[:start] + OPEN + html[start:close] + CLOSE + html[close:]


def _quote_start(html: str) -> int | None:
    """Where the first quote container's opening tag starts. A tag's attributes run to the
    first ``>``, so an opener inside another's attributes is part of them: its class or id is
    the outer tag's too. Only a ``<blockquote type="cite"`` there is a quote of its own (the
    outer tag is not a blockquote); each tag's attributes are read once."""
    position = 0
    while (opener := _QUOTE_OPENER.search(html, position)) is not None:
        end = html.find(">", opener.end())
        if end < 0:
            return None  # no tag after this one closes either
        if _is_quote(opener.group(1).lower(), html[opener.end():end]):
            return opener.start()
        inner = _BLOCKQUOTE_OPENER.search(html, opener.end(), end)
        if inner is not None and _TYPE_CITE.search(html[inner.end():end]):
            return inner.start()
        position = end + 1
    return None


def _is_quote(tag: str, attributes: str) -> bool:
    """The attributes (all between the tag's name and its ``>``) make it a quote container:
    a class or id whose value (to the next quote mark) names one."""
    if tag == "blockquote" and _TYPE_CITE.search(attributes):
        return True
    value_end = -1
    for key in _CLASS_OR_ID.finditer(attributes):
        if key.end() < value_end:
            continue  # inside the value tested before: its value is that one's end
        mark = _QUOTE_MARK.search(attributes, key.end())
        value_end = mark.start() if mark else len(attributes)
        if _QUOTE_NAME.search(attributes, key.end(), value_end):
            return True
    return False


def fold_plain(text: str, to_html) -> str | None:
    """HTML of a plain-text body (*to_html* makes each half's), its quoted tail in the
    collapsed block; None when there is none worth folding."""
    if not text or len(text) > MAX_ANALYZE_CHARS:
        return None
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").replace("\0", "")
    cut = _plain_cut(text.split("\n"))
    if cut is None:
        return None
    head, tail = text[:cut], text[cut:]
    if not head.strip() or len(tail.strip()) < MIN_COLLAPSE_CHARS:
        return None
    return to_html(head) + OPEN + to_html(tail) + CLOSE


def _plain_cut(lines: list[str]) -> int | None:
    """The offset of the first line of the quoted tail."""
    offset = 0
    offsets = []
    for line in lines:
        offsets.append(offset)
        offset += len(line) + 1
    tail = _quoted_tails(lines)
    for number, line in enumerate(lines):
        if _SEPARATOR.match(line):
            return offsets[number]
        for span in (1, 2, 3):  # an attribution line wrapped over two or three lines
            joined = " ".join(lines[number:number + span])
            if _WROTE.match(joined) and tail[min(number + span, len(lines))]:
                return offsets[number]
        if line.startswith(">") and tail[number]:
            return offsets[number]
    return None


def _quoted_tails(lines: list[str]) -> list[bool]:
    """For each line number (and one past the last), whether every line from there on is
    quoted (``>``) or blank with at least one quoted; one pass from the end, so a body of
    many ``>`` lines costs no more than its length."""
    tails = [False] * (len(lines) + 1)
    clean, quoted = True, False
    for number in range(len(lines) - 1, -1, -1):
        line = lines[number]
        if line.startswith(">"):
            quoted = True
        elif line.strip():
            clean = False
        tails[number] = clean and quoted
    return tails


def _close_offset(html: str) -> int:
    """Before ``</body>``/``</html>`` near the end, so the block does not wrap the epilogue."""
    tail_start = max(len(html) - _DOCUMENT_END_TAIL, 0)
    match = _DOCUMENT_END.search(html, tail_start)
    return match.start() if match else len(html)


def _visible(fragment: str) -> str:
    """The text a fragment of HTML shows (roughly: tags, comments and style blocks gone)."""
    return " ".join(html_lib.unescape(_without_tags(_without_blocks(fragment))).split())


def _without_blocks(fragment: str) -> str:
    """*fragment* with each ``<style>``...``</style>`` (script, head, title) a space; an opener
    never closed stays (its tag goes with the tags). Each closer is looked for once from its
    opener, and a name found unclosed is not looked for again: nothing after closes it."""
    out: list[str] = []
    kept = position = 0
    unclosed: set[str] = set()
    while (opener := _BLOCK_OPENER.search(fragment, position)) is not None:
        name = opener.group(1).lower()
        closer = None if name in unclosed else _BLOCK_CLOSER[name].search(fragment, opener.end())
        if closer is None:
            unclosed.add(name)
            position = opener.end()
            continue
        out += [fragment[kept:opener.start()], " "]
        kept = position = closer.end()
    out.append(fragment[kept:])
    return "".join(out)


def _without_tags(fragment: str) -> str:
    """*fragment* with each comment (``<!--`` to the first ``-->``) and each tag (``<`` to the
    first ``>``) a space; a ``<!--`` never closed is a tag, and a ``<`` with no ``>`` after it
    is text. Each end is looked for once: when none is left, none is looked for again."""
    out: list[str] = []
    kept = 0
    comments_close = True
    start = fragment.find("<")
    while start >= 0:
        close = -1
        if comments_close and fragment.startswith("<!--", start):
            close = fragment.find("-->", start + 4)
            comments_close = close >= 0
        if close >= 0:
            end = close + 3
        else:
            close = fragment.find(">", start + 1)
            if close < 0:
                break  # no tag after this one closes either
            end = close + 1
        out += [fragment[kept:start], " "]
        kept = end
        start = fragment.find("<", end)
    out.append(fragment[kept:])
    return "".join(out)
