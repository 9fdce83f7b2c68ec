"""Hostile nesting that the depth bound (``mailboxes.html_nesting``) once counted as flat while
the parser under nh3 nested it as deep as it was long, at a cost growing with the square of
the depth: elements the parser nests that were not counted (ruby's outside a ``<ruby>``), tag
names read apart from the parser's reading (white space HTML does not call white space,
non-ASCII case folding), and end tags the parser ignores (``</span>`` past a ``<div>``)."""

from __future__ import annotations

import re
import time

import pytest

from mailboxes import html_nesting, web_html
from tests.servers import seed

UNITS = {
    "ruby base outside ruby": "<rb>x",
    "ruby text outside ruby": "<rt>x",
    "ruby parenthesis outside ruby": "<rp>x",
    "ruby text container outside ruby": "<rtc>x",
    "vertical tab after the name": "<q\x0b></q>",
    "no-break space after the name": "<div\xa0></div>",
    "separator control after the name": "<span\x1c>x</span>",
    "non-ASCII case folding": "<xİ></xi̇>",
    "ordinary end tag past a div": "<span><div></span>",
    "formatting end tag past a div": "<b><div></b>",
}


@pytest.mark.parametrize("unit", UNITS.values(), ids=UNITS.keys())
def test_the_parsers_depth_is_counted(unit):
    assert html_nesting.deeper_than(unit * 600)


@pytest.mark.parametrize("unit", UNITS.values(), ids=UNITS.keys())
def test_sanitizing_it_stays_cheap(unit):
    # 40,000 of them took 4 to 6 s each to sanitize (quadratic); flattened, about 0.2 s.
    html = unit * 40_000
    started = time.monotonic()
    web_html.sanitize(html)
    assert time.monotonic() - started < 2.0


def test_end_tags_the_parser_honours_still_close():
    # Nesting closed properly, even around a div, is not deep at all.
    assert not html_nesting.deeper_than("<span><div></div></span><b><i>x</b>" * 2000)
    assert not html_nesting.deeper_than("<table><tr><td><div>x</div></table>" * 2000)


def test_an_unclosed_tag_at_the_end_stays_text():
    html = "<div>" * 600 + "<div\xa0" * 100 + "x"
    assert html_nesting.flatten(html).endswith("<div\xa0" * 100 + "x")


@pytest.fixture
def inbox_messages():
    hostile = "<p>hello</p>" + "<span><div></span>" * 40_000
    return {"hostile": seed.make_message(subject="Hostile nesting", body="hello\n",
                                         html=hostile)}


@pytest.mark.django_db
def test_web_safe_html_of_a_hostile_message_is_cut_at_the_depth(synced):
    started = time.monotonic()
    response = synced.client.get(f"/v1/account/box/message/{synced.id_of['hostile']}",
                                 {"webSafeHtml": "true"})
    assert response.status_code == 200
    assert time.monotonic() - started < 5.0  # 4 s of sanitizing alone before
    html = response.json()["text"]["html"]
    assert "hello" in html
    assert len(re.findall("<div>", html)) <= html_nesting.MAX_DEPTH
