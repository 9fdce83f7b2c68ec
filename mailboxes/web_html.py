"""A message's HTML made safe to show in a web page (EmailEngine's ``preProcessHtml`` /
``webSafeHtml``), and its ``cid:`` images made self-contained (``embedAttachedImages``).

- ``sanitize`` runs the HTML through nh3 (the Rust ammonia sanitiser): scripts, styles blocks,
  event handlers, forms, iframes and ``javascript:`` URLs go; formatting, tables, links and
  inline ``style`` (restricted to layout and typography properties, no ``url()``-bearing
  ones) stay. Links get ``rel="noopener noreferrer"``. ``data:`` URLs are kept only as an
  image's ``src`` and only for ``image/*``. Remote images are kept as they are. HTML nested
  deeper than a browser builds is flattened first (``html_nesting``): html5ever's cost grows
  with the square of the depth.
- ``from_plain`` turns a plain-text body into HTML (escaped, paragraphs and line breaks) for a
  message that has no HTML part, as EmailEngine does.
- ``web_safe`` is what EmailEngine's web-safe HTML is: the quoted thread history folded into a
  collapsed ``<details class="ee-collapsed-thread">`` (``quoted_history``), then sanitised (the
  HTML) or made from the plain text.
- ``embed_images`` replaces ``cid:<content-id>`` URLs with ``data:`` URIs of the given images.

Pure functions: the caller fetches the image parts.
"""

from __future__ import annotations

import base64
import copy
import html as html_lib
import re
from collections.abc import Mapping

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
_CID = re.compile(r"\bcid:([^\"'\s>)]+)", re.I)


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
    return nh3.clean(flatten(html), tags=_TAGS, attributes=_ATTRIBUTES,
                     url_schemes=nh3.ALLOWED_URL_SCHEMES | {"data", "cid"},
                     attribute_filter=_attribute_filter,
                     filter_style_properties=_STYLE_PROPERTIES, allowed_classes=_CLASSES,
                     link_rel="noopener noreferrer")


def web_safe(html: str | None, plain: str | None) -> str:
    """A message's web-safe HTML (EmailEngine's ``preProcessHtml``, ``notifyWebSafeHtml``):
    its HTML part sanitised, or its plain text as HTML when it has none, the quoted thread
    history folded in both cases."""
    if html:
        return sanitize(quoted_history.fold_html(html) or html)
    plain = plain or ""
    return quoted_history.fold_plain(plain, from_plain) or from_plain(plain)


def _image_filter(remote: bool):
    schemes = ("data:image/", "https:", "http:") if remote else ("data:image/",)

    def keep(tag: str, attribute: str, value: str) -> str | None:
        if tag == "img" and attribute == "src":
            return value if value.strip().lower().startswith(schemes) else None
        return _attribute_filter(tag, attribute, value)
    return keep


def with_images_limited(html: str, remote: bool) -> str:
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


def from_plain(text: str) -> str:
    """Plain text as HTML: escaped, blank lines make paragraphs, line breaks ``<br>``."""
    paragraphs = re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip("\n"))
    return "".join(f"<p>{'<br>'.join(html_lib.escape(line) for line in p.split(chr(10)))}</p>"
                   for p in paragraphs if p.strip())


def referenced_cids(html: str) -> set[str]:
    """The Content-IDs (without angle brackets) that ``cid:`` URLs in *html* name."""
    return {match.group(1) for match in _CID.finditer(html)}


def embed_images(html: str, images: Mapping[str, tuple[str, bytes]]) -> str:
    """``cid:`` URLs of *images* (Content-ID without brackets -> (content type, bytes)) as
    ``data:`` URIs; a cid without an image stays as it is."""
    def replace(match: re.Match) -> str:
        found = images.get(match.group(1))
        if found is None:
            return match.group(0)
        content_type, content = found
        return f"data:{content_type};base64,{base64.b64encode(content).decode()}"
    return _CID.sub(replace, html)
