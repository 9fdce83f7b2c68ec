"""Hostile nesting that the depth bound (``mailboxes.html_nesting``) once counted as flat while
the parser under nh3 nested it as deep as it was long, at a cost growing with the square of
the depth: elements the parser nests that were not counted (ruby's outside a ``<ruby>``), tag
names read apart from the parser's reading (white space HTML does not call white space,
non-ASCII case folding), end tags the parser ignores (``</span>`` past a ``<div>``) and end
tags that are no tags to the parser (in a comment, a quoted attribute value, a ``<style>``,
a CDATA section inside MathML)."""

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
    "end tag in a quoted attribute value": '<q title="</q>">',
    "end tag in a single-quoted value after spaces": "<q title = '</q>'>",
    "end tag in a comment": "<q><!--</q>-->",
    "end tag in a style element": "<div><style></div></style>",
    "end tag in a textarea": "<div><textarea></div></textarea>",
    "end tag in a CDATA section in MathML": "<math><![CDATA[>x</math>]]>",
}


@pytest.mark.parametrize("unit", UNITS.values(), ids=UNITS.keys())
def test_the_parsers_depth_is_counted(unit):
    assert html_nesting.deeper_than(unit * 600)


@pytest.mark.parametrize("unit", UNITS.values(), ids=UNITS.keys())
def test_sanitizing_it_stays_cheap(unit):
    # 40,000 of them (and as many stray end tags, each of which the parser looks for through
    # every open element) took 4 s and more each to sanitize; flattened, about 0.2 s.
    html = unit * 40_000 + "</y>" * 40_000
    started = time.monotonic()
    web_html.sanitize(html)
    assert time.monotonic() - started < 2.0


def test_end_tags_the_parser_honours_still_close():
    # Nesting closed properly, even around a div, is not deep at all.
    assert not html_nesting.deeper_than("<span><div></div></span><b><i>x</b>" * 2000)
    assert not html_nesting.deeper_than("<table><tr><td><div>x</div></table>" * 2000)


def test_comments_attributes_and_style_with_tags_in_them_are_not_deep():
    # Outlook's conditional comments, a ">" in a quoted value, a style block: none nests.
    html = ('<!--[if mso]><table><tr><td><![endif]--><div title="a>b" class=\'x\'>'
            "<style>p{}</style>hi</div><!--[if mso]></td></tr></table><![endif]-->") * 2000
    assert not html_nesting.deeper_than(html)


def test_an_old_script_comment_hides_nothing_after_its_script():
    html = "<script><!-- hide(); //--></script>" + "<span><b>x</b></span>" * 2000
    assert not html_nesting.deeper_than(html)


def test_a_script_its_end_tag_does_not_end_hides_the_end_tags_after_it():
    # Inside <!--, a <script> makes the next </script> part of the script: the parser reads
    # what follows as script text, so the </q> that follow close nothing.
    html = "<q>" * 300 + "<script><!--<script></script>" + "</q>" * 300 + "<q>" * 300
    assert html_nesting.deeper_than(html)


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
