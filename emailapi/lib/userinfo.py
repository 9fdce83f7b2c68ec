"""The ``user:password@`` of a URL: read, decoded, masked, and sent as HTTP Basic.

EmailEngine sends a webhook whose URL carries userinfo (``https://user:pass@host/path``) with
``Authorization: Basic base64(user:pass)`` and without the userinfo in the request, as curl
and browsers do. ``split`` takes the userinfo out of a URL (the rest is what is checked and
called) and decodes it; ``basic_authorization`` makes the header.

User and password are percent-decoded (RFC 3986: ``p%40ss`` is ``p@ss``), and the decoded
bytes read as UTF-8, the charset RFC 7617 gives Basic. A userinfo that Basic cannot carry is
refused in words (``BadURL``: the 400 of the field being saved) rather than sent mangled: a
``%`` not followed by two hex digits, bytes that are not UTF-8, a control character, a colon
in the user name (Basic splits user from password at the first colon).

``masked`` and ``with_password`` rewrite only the password of a URL and keep every other
character as written (``urlunsplit`` would drop an empty query or fragment and could change
what a receiver sees). No Django and nothing of the apps here.
"""

from __future__ import annotations

import base64
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from emailapi.lib import netguard
from emailapi.lib.netguard import BadURL

_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_UNSAFE = "\r\n\t\0 "  # refused anywhere in a URL (``netguard``): urlsplit drops some silently


@dataclass(frozen=True)
class Userinfo:
    user: str  # percent-decoded
    password: str | None  # percent-decoded; None when the userinfo has no ":"
    written_password: str | None  # as written in the URL (a mask is recognised as written)


def _pieces(url: str) -> tuple[str, str, str] | None:
    """``url`` as (everything before its userinfo, the userinfo as written, everything after
    its "@"), or None when it has no userinfo. ValueError when it does not parse."""
    netloc = urlsplit(url).netloc
    written, at, _host = netloc.rpartition("@")
    if not at:
        return None
    start = url.find("//" + netloc)
    if start < 0:  # not there as written: urlsplit dropped a character from it
        raise ValueError("the authority is not in the URL as written")
    start += 2
    return url[:start], written, url[start + len(written) + 1:]


def split(url: str) -> tuple[str, Userinfo | None]:
    """``url`` without its userinfo (where a request goes), and the userinfo decoded (None
    without one). ``BadURL`` for a userinfo HTTP Basic cannot carry; whatever else is wrong
    with the URL is for ``netguard.parse_url`` to say."""
    if not isinstance(url, str):
        raise BadURL("Must be a URL")
    if any(ch in url for ch in _UNSAFE):
        raise BadURL("Must not contain spaces or control characters")
    try:
        pieces = _pieces(url)
    except ValueError:
        raise BadURL("Not a valid URL") from None
    if pieces is None:
        return url, None
    before, written, after = pieces
    return before + after, _decoded_userinfo(written)


def _decoded_userinfo(written: str) -> Userinfo:
    user, colon, password = written.partition(":")
    name = _decoded(user, "user name")
    if ":" in name:
        raise BadURL("The user name in the URL contains a colon (%3A), which HTTP Basic "
                     "cannot carry")
    if not colon:
        return Userinfo(name, None, None)
    return Userinfo(name, _decoded(password, "password"), password)


def _decoded(written: str, what: str) -> str:
    """One part of a userinfo, percent-decoded; never echoes it (it may be a password)."""
    if _BAD_ESCAPE.search(written):
        raise BadURL(f"The {what} in the URL has a % not followed by two hex digits (write a "
                     f"% itself as %25)")
    try:
        text = unquote(written, errors="strict")
        text.encode()  # a lone surrogate written as such (JSON allows it) cannot be sent
    except UnicodeError:
        raise BadURL(f"The {what} in the URL is not UTF-8 once percent-decoded") from None
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        raise BadURL(f"The {what} in the URL contains a control character")
    return text


def destination(url: str) -> tuple[str, str, int] | None:
    """Where a URL's requests go: scheme, host and port (None for no usable URL). A password
    kept for a URL is only ever sent to the same destination."""
    try:
        target = netguard.parse_url(split(url)[0])
    except netguard.UnsafeTarget:
        return None
    return target.scheme, target.host.lower(), target.port


def basic_authorization(user: str, password: str | None) -> dict[str, str]:
    """The ``Authorization`` header of a userinfo, as EmailEngine sends it: a user without a
    password is Basic with an empty one; an empty user and password send none."""
    if not user and not password:
        return {}
    token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def masked(url: str, mask: str) -> str:
    """``url`` with the password of its userinfo replaced by ``mask``; as it is when it has
    no password (``user@``) or does not parse."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
    except ValueError:
        return url
    try:
        before, written, after = _pieces(url) or ("", "", "")
    except ValueError:  # a tab or line break urlsplit dropped: rebuilt without it instead
        user, _, host = parts.netloc.rpartition("@")
        return urlunsplit(parts._replace(netloc=f"{user.partition(':')[0]}:{mask}@{host}"))
    return f"{before}{written.partition(':')[0]}:{mask}@{after}"


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*:(?://)?)?(.*)$", re.DOTALL)


def masked_loosely(text: str, mask: str) -> str:
    """``masked``, and for what does not parse as a URL with a password but looks as if it
    carried one (``u:p/x@host``, ``u:p#x@host``, ``u:p@host`` without a scheme, a broken
    host...) everything from the user's colon to the last "@" masked. For what is only shown
    or never used (a proxy URL, a refused form's echo): too much masked rather than a password
    shown. Never for a URL that is stored and called (``http://h:80/a@b`` would lose its
    path)."""
    strict = masked(text, mask)
    if strict != text:
        return strict
    scheme, rest = _SCHEME.match(text).groups()
    loose = _masked_after(scheme or "", rest, mask)
    if loose is None and scheme and "//" not in scheme:  # "u:p@host": "u:" was no scheme
        loose = _masked_after("", text, mask)
    return loose or text


def _masked_after(prefix: str, rest: str, mask: str) -> str | None:
    user, colon, after = rest.partition(":")
    if not colon or "@" not in after or any(char in user for char in "@/?#"):
        return None
    return f"{prefix}{user}:{mask}@{after.rpartition('@')[2]}"


def with_password(url: str, password: str) -> str:
    """``url`` (which has a userinfo) with ``password`` written in, percent-encoded: the URL
    as a client would write it, which ``split`` reads back to the same password."""
    before, written, after = _pieces(url) or ("", "", "")
    if not before:
        raise ValueError("the URL has no userinfo to put a password in")
    return f"{before}{written.partition(':')[0]}:{quote(password, safe='')}@{after}"
