"""``mailboxes.html_nesting``: a message's HTML kept to the depth a browser builds before it
is sanitized, and ``webSafeHtml`` over it against a real Dovecot."""

from __future__ import annotations

import re

import pytest

from mailboxes import html_nesting, web_html
from tests.servers import seed

# 5,000 divs inside each other, then as many written <div/> (which opens one too): a depth
# whose parse cost grows with its square.
DEEP_HTML = "<div>" * 5000 + "<div/>" * 5000 + "deep text" + "</div>" * 5000


def depth(html: str) -> int:
    """The most elements open at once, counting div and span only (what these tests nest)."""
    deepest = current = 0
    for closing in re.findall(r"<(/?)(?:div|span)\b", html):
        current += -1 if closing else 1
        deepest = max(deepest, current)
    return deepest


def test_html_within_the_depth_is_returned_as_it_came():
    html = "<div>" * 512 + "x" + "</div>" * 512 + "<div>y</div>" * 1000
    assert not html_nesting.deeper_than(html)
    assert html_nesting.flatten(html) is html


def test_start_tags_beyond_the_depth_and_their_end_tags_are_left_out_the_text_stays():
    html = "<div>" * 600 + "<span>x</span>" + "</div>" * 600 + "<p>after</p>"
    flat = html_nesting.flatten(html)
    assert depth(flat) == 512
    assert flat.count("<div>") == flat.count("</div>") == 512
    assert "<span>" not in flat
    assert "x" in flat
    assert flat.endswith("</div><p>after</p>")


def test_text_that_only_starts_tags_is_kept_as_text():
    # "<div" never closed by a ">" is no tag: left as it is (one pass, see _TAG).
    html = "<div>" * 600 + "<div" * 5000 + "x"
    flat = html_nesting.flatten(html)
    assert flat == "<div>" * 512 + "<div" * 5000 + "x"


def test_a_slash_does_not_keep_a_div_from_opening():
    assert html_nesting.deeper_than("<div/>" * 513)
    assert html_nesting.flatten("<DIV/>" * 600).count("<DIV/>") == 512


def test_elements_the_parser_closes_itself_do_not_count():
    html = "<p>a<li>b<td>c<br><img src=x>" * 2000
    assert not html_nesting.deeper_than(html)


def test_an_end_tag_closes_the_nearest_element_of_its_name_and_a_stray_one_nothing():
    # Each </b> closes the span opened after its b too; </i> with no i open closes nothing.
    assert not html_nesting.deeper_than("<b><span>x</b></i>" * 2000)
    assert html_nesting.deeper_than("<div></i>" * 513)


@pytest.mark.parametrize("clean", [web_html.sanitize,
                                   lambda html: web_html.with_images_limited(html, False)])
def test_sanitized_html_is_flattened_first(clean):
    html = clean(DEEP_HTML)
    assert depth(html) == 512
    assert "deep text" in html


@pytest.fixture
def inbox_messages():
    return {"deep": seed.make_message(subject="Deep HTML", body="deep text\n", html=DEEP_HTML)}


@pytest.mark.django_db
def test_web_safe_html_of_a_message_nested_10000_deep_stops_at_512_and_keeps_the_text(synced):
    response = synced.client.get(f"/v1/account/box/message/{synced.id_of['deep']}",
                                 {"webSafeHtml": "true"})
    assert response.status_code == 200
    html = response.json()["text"]["html"]
    assert depth(html) == 512
    assert "deep text" in html
