"""A message's HTML made safe to show in a web page (EmailEngine's ``preProcessHtml`` /
``webSafeHtml``), and its ``cid:`` images made self-contained (``embedAttachedImages``).

- ``sanitize`` runs the HTML through nh3 (the Rust ammonia sanitiser, ``html_clean``):
  scripts, styles blocks, event handlers, forms, iframes and ``javascript:`` URLs go;
  formatting, tables, links and inline ``style`` (restricted to layout and typography
  properties, no ``url()``-bearing ones) stay. Links get ``rel="noopener noreferrer"``.
  ``data:`` URLs are kept only as an image's ``src`` and only for ``image/*``. Remote images
  are kept as they are. HTML nested deeper than a browser builds is flattened first
  (``html_nesting``).
- Whatever a sender writes, sanitizing holds the calling thread a bounded time: HTML longer
  than ``IN_THREAD_LIMIT`` characters is sanitized by a helper process under a deadline
  (``sanitize_pool``, ``HTML_SANITIZE_SECONDS``), because html5ever's cost can grow with the
  square of the input (shapes no linear pre-pass fully models: reopened formatting elements,
  copied into each list item, 9 KB made 4.7 MB in 0.5 s). Shorter HTML costs at most a few
  tens of milliseconds and is sanitized in the thread. When the helper gives up (the
  deadline, its memory cap, a crash) the reader gets the message's text: its plain part when
  it has one (what the sender wrote for readers without HTML), else the HTML's own text with
  its paragraphs (``html_text``), as HTML made from plain text. Never the raw HTML.
- ``from_plain`` turns a plain-text body into HTML (escaped, paragraphs and line breaks) for a
  message that has no HTML part, as EmailEngine does.
- ``web_safe`` is what EmailEngine's web-safe HTML is: the quoted thread history folded into a
  collapsed ``<details class="ee-collapsed-thread">`` (``quoted_history``), then sanitised (the
  HTML) or made from the plain text.
- ``embed_images`` replaces ``cid:<content-id>`` URLs with ``data:`` URIs of the given images.

The caller fetches the image parts.
"""

from __future__ import annotations

import base64
import html as html_lib
import re
from collections.abc import Callable, Mapping

from mailboxes import html_clean, html_text, quoted_history, sanitize_pool
from mailboxes import sanitize_helper as jobs

# HTML up to this many characters is sanitized in the calling thread: the worst shapes found
# (formatting elements copied into every list item, <dd>x<li> repeated) cost 15-25 ms at 2 KB
# and grow with the square of the size (3.3 KB: 60 ms, 9 KB: 0.5 s). A helper's round trip
# costs about a millisecond more than the in-thread call at 116 KB.
IN_THREAD_LIMIT = 2048

_CID = re.compile(r"\bcid:([^\"'\s>)]+)", re.I)


def _bounded(kind: bytes, html: str, in_thread: Callable[[str], str]) -> str | None:
    """*html* cleaned by *in_thread* when short, else by a helper within the deadline; None
    when the helper gave up."""
    if len(html) <= IN_THREAD_LIMIT:
        return in_thread(html)
    return sanitize_pool.run(kind, html)


def _as_text(html: str) -> str:
    return from_plain(html_text.text(html))


def sanitize(html: str) -> str:
    """*html* sanitized, or its text as HTML when sanitizing it gave up."""
    clean = _bounded(jobs.SANITIZE, html, html_clean.sanitize)
    return clean if clean is not None else _as_text(html)


def web_safe(html: str | None, plain: str | None) -> str:
    """A message's web-safe HTML (EmailEngine's ``preProcessHtml``, ``notifyWebSafeHtml``):
    its HTML part sanitised, or its plain text as HTML when it has none (or when sanitizing
    its HTML gave up; the HTML's own text when it has no plain text either), the quoted
    thread history folded in each case."""
    if html:
        clean = _bounded(jobs.WEB_SAFE, html, html_clean.web_safe)
        if clean is not None:
            return clean
        if not (plain or "").strip():
            return _as_text(html)
    plain = plain or ""
    return quoted_history.fold_plain(plain, from_plain) or from_plain(plain)


def with_images_limited(html: str, remote: bool) -> str:
    """Sanitized HTML whose images can load nothing but what the message itself holds
    (``data:`` images, the embedded ``cid:`` ones), or also absolute http(s) URLs when the
    reader asked for remote images (``html_clean.images_limited``); its text as HTML when
    sanitizing it gave up."""
    clean = _bounded(jobs.REMOTE_IMAGES if remote else jobs.OWN_IMAGES, html,
                     lambda text: html_clean.images_limited(text, remote))
    return clean if clean is not None else _as_text(html)


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
