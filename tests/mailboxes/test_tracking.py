"""The rewriting of a tracked message's HTML (``mailboxes.tracking``), EmailEngine's: the
tracking image before ``</body>`` (or at the end), http(s) links through the signed redirect
(``&amp;`` decoded before signing, the new link encoded), this service's own unsubscribe and
redirect links and every other scheme left alone; and which tracking a send gets."""

from __future__ import annotations

import html as html_lib
import re
import secrets
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import signing

from accounts.errors import LinkIncomplete, LinkInvalid, LinkSignatureInvalid
from mailboxes import tracking, unsubscribe

BASE = "https://mail.example.test"
MESSAGE_ID = "<m1@example.test>"
HREF = re.compile(r'href="([^"]*)"')
SRC = re.compile(r'<img src="([^"]*)"')


def _rewrite(html: str, *, opens: bool = True, clicks: bool = True, base: str = BASE) -> str:
    return tracking.trackers(base, 7, "box", opens=opens, clicks=clicks)(html, MESSAGE_ID)


def _query(url: str) -> tuple[str, str, str]:
    """``(path, data, sig)`` of one of our links (HTML-decoded first)."""
    parts = urlsplit(html_lib.unescape(url))
    query = parse_qs(parts.query)
    return parts.path, query["data"][0], query["sig"][0]


def _clicked(url: str) -> dict:
    path, data, sig = _query(url)
    assert path == "/redirect"
    return tracking.read(tracking.CLICK, data, sig)


def test_the_image_goes_before_the_body_end_tag():
    html = _rewrite("<html><body><p>Hi</p></BODY></html>", clicks=False)
    assert html.startswith("<html><body><p>Hi</p><img src=")
    assert html.endswith('width="1" height="1" alt=""></BODY></html>')
    assert html.count("<img") == 1


def test_without_a_body_end_tag_the_image_is_appended():
    html = _rewrite("<p>Hi</p>", clicks=False)
    assert html.startswith('<p>Hi</p><img src="https://mail.example.test/open.gif?data=')
    assert html.endswith("alt=\"\">")


def test_the_image_names_tenant_account_and_message():
    src, = SRC.findall(_rewrite("<p>Hi</p>", clicks=False))
    assert "&amp;sig=" in src  # HTML-encoded in the attribute
    path, data, sig = _query(src)
    assert path == "/open.gif"
    assert tracking.read(tracking.OPEN, data, sig) == {"tenant": 7, "account": "box",
                                                       "message": MESSAGE_ID}


def test_links_go_through_the_redirect_with_their_entities_decoded():
    html = _rewrite('<p><a class="b" href="https://shop.example/x?a=1&amp;b=2">Buy</a></p>',
                    opens=False)
    href, = HREF.findall(html)
    assert href.startswith("https://mail.example.test/redirect?data=")
    assert "&amp;sig=" in href
    assert _clicked(href) == {"tenant": 7, "account": "box", "message": MESSAGE_ID,
                              "url": "https://shop.example/x?a=1&b=2"}
    assert html.startswith('<p><a class="b" href="https://mail.example.test/redirect?')
    assert html.endswith('">Buy</a></p>')


@pytest.mark.parametrize("anchor", [
    "<A HREF='http://shop.example/a'>x</A>",
    "<a href=http://shop.example/a>x</a>",
    '<a\n  title="t"\n  href = "http://shop.example/a">x</a>',
])
def test_every_spelling_of_an_http_link_is_rewritten(anchor):
    html = _rewrite(anchor, opens=False)
    assert "shop.example" not in html
    target = re.search(r"(https://mail\.example\.test/redirect\?[^\"'> ]+)", html).group(1)
    assert _clicked(target)["url"] == "http://shop.example/a"


@pytest.mark.parametrize("anchor", [
    '<a href="mailto:ann@example.test">Mail</a>',
    '<a href="tel:+3725551234">Call</a>',
    '<a href="#top">Top</a>',
    '<a href="/relative/path">Here</a>',
    '<a href="cid:logo">Logo</a>',
    '<a href="javascript:alert(1)">No</a>',
    '<a href="httpx://odd.example/">Odd</a>',
    '<a href="http://shop.example/a&#10;Location:x">Broken</a>',  # a line break, decoded
    '<link href="https://fonts.example/css">',
    '<img src="https://cdn.example/logo.png">',
])
def test_what_is_not_an_http_link_is_left_alone(anchor):
    assert _rewrite(anchor, opens=False) == anchor


@pytest.mark.parametrize("text", ["<a " * 40_000, "<a\thref " * 20_000, "<a =" * 40_000])
def test_rewriting_a_hostile_text_takes_time_in_proportion_to_it(text):
    # Every "<a" of a text without ">" once looked for an href to the text's end: 40,000 of
    # them (120 KB) took 20 s of the submitting request's thread.
    started = time.monotonic()
    assert _rewrite(text, opens=False) == text
    assert time.monotonic() - started < 1.0


def test_our_own_unsubscribe_and_redirect_links_are_left_alone():
    own_unsubscribe = unsubscribe.link(BASE, 7, "box", "news", "ann@example.test", MESSAGE_ID)
    own_redirect = tracking.click_link(BASE, 7, "box", MESSAGE_ID, "https://shop.example/")
    html = (f'<a href="{html_lib.escape(own_unsubscribe)}">Leave</a>'
            f'<a href="{html_lib.escape(own_redirect)}">Already</a>')
    assert _rewrite(html, opens=False) == html


def test_another_hosts_unsubscribe_link_is_tracked():
    html = _rewrite('<a href="https://other.example/unsubscribe?x=1">Leave</a>', opens=False)
    href, = HREF.findall(html)
    assert _clicked(href)["url"] == "https://other.example/unsubscribe?x=1"


def test_under_a_base_with_a_path_our_links_are_under_it_too():
    base = "https://example.test/mail"
    own = unsubscribe.link(base, 7, "box", "news", "ann@example.test", MESSAGE_ID)
    html = _rewrite(f'<a href="{html_lib.escape(own)}">Leave</a>', base=base)
    src, = SRC.findall(html)
    assert src.startswith("https://example.test/mail/open.gif?")
    assert html_lib.escape(own) in html


def test_a_link_too_long_to_sign_stays_as_it_is():
    url = "https://shop.example/" + secrets.token_hex(7000)  # incompressible
    anchor = f'<a href="{url}">Long</a>'
    assert _rewrite(anchor, opens=False) == anchor


def test_both_kinds_and_neither():
    html = '<body><a href="https://shop.example/">x</a></body>'
    both = _rewrite(html)
    assert "/open.gif?" in both
    assert "/redirect?" in both
    assert _rewrite(html, opens=False, clicks=False) == html


# -- reading a link back -----------------------------------------------------------------------

def _parts(url: str) -> tuple[str, str]:
    _, data, sig = _query(url)
    return data, sig


def test_a_changed_byte_missing_parts_or_the_other_kind_are_refused():
    data, sig = _parts(tracking.open_link(BASE, 7, "box", MESSAGE_ID))
    with pytest.raises(LinkSignatureInvalid):
        tracking.read(tracking.OPEN, data, sig[:-1] + ("A" if sig[-1] != "A" else "B"))
    with pytest.raises(LinkSignatureInvalid):
        tracking.read(tracking.CLICK, data, sig)  # an open link is no click link
    with pytest.raises(LinkIncomplete):
        tracking.read(tracking.OPEN, data, None)
    with pytest.raises(LinkIncomplete):
        tracking.read(tracking.OPEN, "", sig)


def test_another_tenants_data_under_this_signature_is_refused():
    _, sig = _parts(tracking.open_link(BASE, 7, "box", MESSAGE_ID))
    data, _ = _parts(tracking.open_link(BASE, 8, "box", MESSAGE_ID))
    with pytest.raises(LinkSignatureInvalid):
        tracking.read(tracking.OPEN, data, sig)


@pytest.mark.parametrize("url", ["javascript:alert(1)", "ftp://files.example/",
                                 "http://shop.example/\r\nSet-Cookie: x", "https://"])
def test_a_signed_link_to_anything_but_http_is_never_redirected_to(url):
    payload = {"t": 7, "a": "box", "m": MESSAGE_ID, "u": url}
    data, sig = signing.dumps(payload, salt=tracking.SALTS[tracking.CLICK]).split(":", 1)
    with pytest.raises(LinkInvalid):
        tracking.read(tracking.CLICK, data, sig)


# -- which tracking a send gets ----------------------------------------------------------------

@pytest.mark.parametrize(("fields", "defaults", "expected"), [
    ({}, (None, None), (False, False)),
    ({"trackingEnabled": True}, (None, None), (True, True)),
    ({"trackingEnabled": True, "trackClicks": False}, (None, None), (True, False)),
    ({"trackOpens": True}, (None, None), (True, False)),
    ({}, (True, None), (True, False)),
    ({"trackOpens": False}, (True, True), (False, True)),
    # EmailEngine's order: a setting that is set wins over the send's trackingEnabled.
    ({"trackingEnabled": True}, (False, None), (False, True)),
])
def test_the_send_then_the_settings_then_tracking_enabled_decide(fields, defaults, expected):
    assert tracking.wanted(fields, *defaults) == expected
