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

# The opening tag of a quote container, by the class or id its client gives it.
_HTML_QUOTE = re.compile(
    r"""<(?:div|blockquote|hr|section)\b[^>]*?\b(?:class|id)\s*=\s*["']?[^"'>]*?\b(?:"""
    r"gmail_quote|gmail_quote_container|moz-cite-prefix|moz-forward-container|yahoo_quoted|"
    r"protonmail_quote|divRplyFwdMsg|appendonsend|stopSpelling|OutlookMessageHeader|"
    r"mail-editor-reference-message-container|zmail_extra|x_gmail_quote"
    r""")\b[^>]*>|<blockquote\b[^>]*\btype\s*=\s*["']?cite\b[^>]*>""", re.I)
_TABLE_INTERNAL = re.compile(r"<(?:table|thead|tbody|tfoot|tr|td|th|col|colgroup|caption)[\s/>]",
                             re.I)
_DOCUMENT_END = re.compile(r"</(?:body|html)[\s>]", re.I)
_TAG = re.compile(r"<!--.*?-->|<[^>]*>", re.S)
_BLOCK_CONTENT = re.compile(r"<(style|script|head|title)\b.*?</\1\s*>", re.I | re.S)

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
    match = _HTML_QUOTE.search(html)
    if match is None:
        return None
    start = match.start()
    if _TABLE_INTERNAL.match(html, start):
        return None
    close = _close_offset(html)
    if close <= start:
        return None
    if not _visible(html[:start]) or len(_visible(html[start:close])) < MIN_COLLAPSE_CHARS:
        return None
    return html[:start] + OPEN + html[start:close] + CLOSE + html[close:]


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
    for number, line in enumerate(lines):
        if _SEPARATOR.match(line):
            return offsets[number]
        for span in (1, 2, 3):  # an attribution line wrapped over two or three lines
            joined = " ".join(lines[number:number + span])
            if _WROTE.match(joined) and _quoted_or_blank(lines[number + span:], at_least=1):
                return offsets[number]
        if line.startswith(">") and _quoted_or_blank(lines[number:], at_least=1):
            return offsets[number]
    return None


def _quoted_or_blank(lines: list[str], at_least: int) -> bool:
    """Every line is quoted (``>``) or blank, and at least *at_least* are quoted."""
    quoted = 0
    for line in lines:
        if line.startswith(">"):
            quoted += 1
        elif line.strip():
            return False
    return quoted >= at_least


def _close_offset(html: str) -> int:
    """Before ``</body>``/``</html>`` near the end, so the block does not wrap the epilogue."""
    tail_start = max(len(html) - _DOCUMENT_END_TAIL, 0)
    match = _DOCUMENT_END.search(html, tail_start)
    return match.start() if match else len(html)


def _visible(fragment: str) -> str:
    """The text a fragment of HTML shows (roughly: tags, comments and style blocks gone)."""
    return " ".join(html_lib.unescape(_TAG.sub(" ", _BLOCK_CONTENT.sub(" ", fragment))).split())
