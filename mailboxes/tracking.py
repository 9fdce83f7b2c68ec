"""Open and click tracking of sent messages (EmailEngine's ``trackOpens`` and ``trackClicks``).

A tracked message's HTML is rewritten as EmailEngine's ``lib/add-trackers.js`` rewrites it:

* opens: a 1x1 image put before the first ``</body`` (appended when there is none)::

      <img src="{base}/open.gif?data=..&amp;sig=.." ... width="1" height="1" alt="">

* clicks: the ``href`` of every ``<a ... href="http...">`` HTML-decoded (``&amp;`` is ``&``),
  signed, and replaced by ``{base}/redirect?data=..&amp;sig=..`` (HTML-encoded). Links to
  this service's own ``/unsubscribe`` and ``/redirect`` stay as they are, and so does
  anything that is not an http(s) URL (``mailto:``, ``tel:``, ``#top``, ``cid:``).

As in EmailEngine the rewriting is a regular expression over the HTML, not a parser: it sees
every ``<a`` whose ``href`` starts with ``http``, wherever it is.

Each link holds the tenant, account, Message-ID (and the target URL of a click) in the clear,
signed with ``django.core.signing`` under a salt of its own kind (the key derives from
``EMAILAPI_SECRET``): nobody can change what it names, nor turn an open link into a click
link, nor make one for another tenant. Links do not expire: a message is read when it is
read. ``read`` checks one; ``mailboxes.tracking_events`` records what a visitor did with it.

Everything here is pure (no database): ``trackers`` is what ``mailboxes.compose`` applies to
a send's HTML once its Message-ID is known.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable
from urllib.parse import urlencode, urlsplit

from django.core import signing

from accounts.errors import LinkIncomplete, LinkInvalid, LinkSignatureInvalid
from mailboxes.unsubscribe import PATH as UNSUBSCRIBE_PATH

OPEN = "open"
CLICK = "click"
SALTS = {OPEN: "emailapi.track.open", CLICK: "emailapi.track.click"}
OPEN_PATH = "/open.gif"
REDIRECT_PATH = "/redirect"
MAX_DATA = 8192  # a link's data at most: a longer target URL is left as it is
SCHEMES = ("http", "https")

PIXEL = ('<img src="{src}" style="border: 0px; width:1px; height: 1px;" tabindex="-1" '
         'width="1" height="1" alt="">')
_BODY_END = re.compile(r"</body", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# EmailEngine's expression, but for any white space (not only a space) before ``href``, and
# no "<" before it in the tag: with ``[^>]*`` every ``<a`` of a text without ">" looked for an
# href to the text's end, so 60 KB of ``<a `` took 5 s of the submit's thread (quadratic).
_LINK = re.compile(r"""(<a[^<>]*\shref\s*=[\s"']*)(http[^"'>\s]+)""", re.IGNORECASE)


# --- which tracking a send gets --------------------------------------------------------------


def wanted(fields: dict, default_opens: bool | None, default_clicks: bool | None
           ) -> tuple[bool, bool]:
    """``(opens, clicks)`` for a send, in EmailEngine's order: the send's ``trackOpens`` /
    ``trackClicks``, else the tenant's settings of the same names (``None``: never set), else
    the send's ``trackingEnabled`` (EmailEngine's older name, for both), else off."""
    enabled = bool(fields.get("trackingEnabled"))

    def one(given: bool | None, default: bool | None) -> bool:
        if given is not None:
            return given
        return default if default is not None else enabled

    return one(fields.get("trackOpens"), default_opens), one(fields.get("trackClicks"),
                                                              default_clicks)


# --- the signed links ------------------------------------------------------------------------


def _link(base: str, path: str, kind: str, payload: dict) -> str:
    data, sig = signing.dumps(payload, salt=SALTS[kind], compress=True).split(":", 1)
    return f"{base.rstrip('/')}{path}?{urlencode({'data': data, 'sig': sig})}"


def open_link(base: str, tenant_id: int, account_id: str, message_id: str) -> str:
    return _link(base, OPEN_PATH, OPEN, {"t": tenant_id, "a": account_id, "m": message_id})


def click_link(base: str, tenant_id: int, account_id: str, message_id: str,
               url: str) -> str | None:
    """The redirect link to ``url``, or None when its data would be too long to read back."""
    link = _link(base, REDIRECT_PATH, CLICK,
                 {"t": tenant_id, "a": account_id, "m": message_id, "u": url})
    data = link.split("data=", 1)[1].split("&", 1)[0]
    return link if len(data) <= MAX_DATA else None


def read(kind: str, data: str | None, sig: str | None) -> dict:
    """What a link of ``kind`` names: ``{tenant (id), account, message}`` (and ``url`` for a
    click); ``LinkInvalid`` (or a subclass) for one we did not make."""
    if not data or not sig or len(data) > MAX_DATA or len(sig) > 100:
        raise LinkIncomplete()
    try:
        payload = signing.loads(f"{data}:{sig}", salt=SALTS[kind])
    except signing.BadSignature:
        raise LinkSignatureInvalid() from None
    except ValueError:  # signed by us, yet not our JSON: cannot happen short of a key leak
        raise LinkInvalid() from None
    if not isinstance(payload, dict) or not all(
            isinstance(payload.get(key), kind_) for key, kind_ in
            (("t", int), ("a", str), ("m", str))):
        raise LinkInvalid()
    link = {"tenant": payload["t"], "account": payload["a"], "message": payload["m"]}
    if kind == CLICK:
        url = payload.get("u")
        if not isinstance(url, str) or not is_web_url(url):
            raise LinkInvalid()  # only http(s) is ever redirected to
        link["url"] = url
    return link


# --- the rewriting ---------------------------------------------------------------------------


def is_web_url(url: str) -> bool:
    """Whether ``url`` is an http(s) URL with a host, and nothing a Location header cannot
    carry (a decoded ``&#10;`` is a line break; ``urlsplit`` would quietly drop it)."""
    if _CONTROL.search(url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:  # "http://[bad" and such
        return False
    return parts.scheme.lower() in SCHEMES and bool(parts.hostname)


def is_own_link(url: str, base: str) -> bool:
    """Whether ``url`` is this service's ``/unsubscribe`` or ``/redirect`` under ``base``
    (EmailEngine's rule: same origin, and one of those paths)."""
    link, own = urlsplit(url), urlsplit(base)
    if (link.scheme.lower(), link.netloc.lower()) != (own.scheme.lower(), own.netloc.lower()):
        return False
    root = own.path.rstrip("/")
    return link.path in (root + UNSUBSCRIBE_PATH, root + REDIRECT_PATH)


def with_open_tracker(html: str, pixel_url: str) -> str:
    """``html`` with the tracking image before its first ``</body``, or at its end."""
    pixel = PIXEL.format(src=html_lib.escape(pixel_url))
    end = _BODY_END.search(html)
    if end is None:
        return html + pixel
    return html[:end.start()] + pixel + html[end.start():]


def with_click_trackers(html: str, redirect_for: Callable[[str], str | None]) -> str:
    """``html`` with each ``<a ... href="http...">`` pointing at ``redirect_for(url)`` (``url``
    HTML-decoded; the link is kept when it answers None)."""

    def rewrite(match: re.Match) -> str:
        target = redirect_for(html_lib.unescape(match.group(2)))
        return match.group(0) if target is None else match.group(1) + html_lib.escape(target)

    return _LINK.sub(rewrite, html)


def trackers(base: str, tenant_id: int, account_id: str, *, opens: bool,
             clicks: bool) -> Callable[[str, str], str]:
    """The rewriting of one send's HTML, given its Message-ID (``compose``'s
    ``html_filter``)."""

    def redirect_for(message_id: str) -> Callable[[str], str | None]:
        def target(url: str) -> str | None:
            if not is_web_url(url) or is_own_link(url, base):
                return None
            return click_link(base, tenant_id, account_id, message_id, url)
        return target

    def rewrite(html: str, message_id: str) -> str:
        if opens:
            html = with_open_tracker(html, open_link(base, tenant_id, account_id, message_id))
        if clicks:
            html = with_click_trackers(html, redirect_for(message_id))
        return html

    return rewrite
