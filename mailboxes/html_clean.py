"""A message's HTML made safe to show in a web page, in the calling thread: nh3 (the Rust
ammonia sanitiser) with our allowances, after ``html_nesting.flatten``.

Only for HTML whose cost is known to be small: html5ever (under nh3) can take time and memory
growing with the square of a hostile input's size, whatever the nesting bound counts (it
reopens formatting elements, and copies them into each new list item: 9 KB of them came out as
4.7 MB in 0.5 s). ``web_html`` runs larger HTML through ``sanitize_pool``'s helper processes,
which run these same functions under a deadline. Pure: no Django, no I/O.
"""

from __future__ import annotations

import copy
import re

import nh3

from mailboxes import quoted_history
from mailboxes.html_nesting import flatten

_TAGS = nh3.ALLOWED_TAGS | {"font"}
_ATTRIBUTES = copy.deepcopy(nh3.ALLOWED_ATTRIBUTES)
_ATTRIBUTES.setdefault("*", set()).update({"style", "align", "dir", "lang", "title", "valign",
                                          "width", "height", "bgcolor"})
for _tag in ("table", "td", "th", "tr", "tbody", "thead", "col", "colgroup"):
    _ATTRIBUTES.setdefault(_tag, set()).update({"border", "cellpadding", "cellspacing",
                                                "colspan", "rowspan"})
_ATTRIBUTES.setdefault("font", set()).update({"color", "face", "size"})
_ATTRIBUTES.setdefault("a", set()).update({"href", "title", "target"})

# Inline style properties that lay out and colour text; none of them takes a url().
_STYLE_PROPERTIES = frozenset({
    "color", "background-color", "font", "font-family", "font-size", "font-style",
    "font-weight", "font-variant", "line-height", "letter-spacing", "text-align",
    "text-decoration", "text-indent", "text-transform", "vertical-align", "white-space",
    "word-break", "word-wrap", "overflow-wrap", "direction", "display", "width", "height",
    "max-width", "min-width", "max-height", "min-height", "margin", "margin-top",
    "margin-right", "margin-bottom", "margin-left", "padding", "padding-top", "padding-right",
    "padding-bottom", "padding-left", "border", "border-top", "border-right", "border-bottom",
    "border-left", "border-color", "border-style", "border-width", "border-radius",
    "border-collapse", "border-spacing", "table-layout", "float", "clear",
})
# The only classes kept: those of the folded thread history's block.
_CLASSES = {"details": {quoted_history.COLLAPSE_CLASS},
            "summary": {quoted_history.COLLAPSE_TOGGLE_CLASS}}
_DATA_IMAGE = re.compile(r"\s*data:image/[a-z0-9.+-]+;base64,", re.I)


# What a URL parser drops before it reads a scheme: C0 controls and spaces around the URL,
# tabs and line breaks anywhere in it (``d&#9;ata:`` is ``data:`` to a browser and to nh3).
_URL_EDGES = "".join(map(chr, range(0x21)))
_URL_DROPPED = str.maketrans("", "", "\t\n\r")


def _url_as_parsed(value: str) -> str:
    return value.strip(_URL_EDGES).translate(_URL_DROPPED)


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    url = _url_as_parsed(value)
    if url[:5].lower() == "data:":
        return url if tag == "img" and attribute == "src" and _DATA_IMAGE.match(url) else None
    return value


def sanitize(html: str) -> str:
    """*html* sanitized (scripts, handlers, unsafe URLs and styles gone)."""
    return nh3.clean(flatten(html), tags=_TAGS, attributes=_ATTRIBUTES,
                     url_schemes=nh3.ALLOWED_URL_SCHEMES | {"data", "cid"},
                     attribute_filter=_attribute_filter,
                     filter_style_properties=_STYLE_PROPERTIES, allowed_classes=_CLASSES,
                     link_rel="noopener noreferrer")


def _image_filter(remote: bool):
    schemes = ("data:image/", "https:", "http:") if remote else ("data:image/",)

    def keep(tag: str, attribute: str, value: str) -> str | None:
        if tag == "img" and attribute == "src":
            return value if value.strip().lower().startswith(schemes) else None
        return _attribute_filter(tag, attribute, value)
    return keep


def images_limited(html: str, remote: bool) -> str:
    """Sanitized HTML whose images can load nothing but what the message itself holds
    (``data:`` images, the embedded ``cid:`` ones), or also absolute http(s) URLs when the
    reader asked for remote images. A relative ``src`` is always dropped: in a page it
    resolves against the page's own site (a request to the dashboard with the reader's
    cookies), and a remote image is a read receipt the reader didn't agree to send."""
    return nh3.clean(flatten(html), tags=_TAGS, attributes=_ATTRIBUTES,
                     url_schemes=nh3.ALLOWED_URL_SCHEMES | {"data", "cid"},
                     attribute_filter=_image_filter(remote),
                     filter_style_properties=_STYLE_PROPERTIES, allowed_classes=_CLASSES,
                     link_rel="noopener noreferrer")


def web_safe(html: str) -> str:
    """The web-safe HTML of a message's HTML part: its quoted thread history folded, then
    sanitized."""
    return sanitize(quoted_history.fold_html(html) or html)
