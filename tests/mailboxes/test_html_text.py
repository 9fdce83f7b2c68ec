"""The text an HTML body shows (``html_text``: what a reader gets when sanitizing its HTML gave
up), with its paragraphs and line breaks, in time linear in its length."""

from __future__ import annotations

import pytest

from mailboxes import html_text
from tests.mailboxes.bounded import finishes


def test_paragraphs_and_line_breaks_are_kept_and_inline_tags_dropped():
    html = "<p>Hello <b>you</b></p><div>line</div>a<br>b"
    assert html_text.text(html) == "Hello you\n\nline\na\nb"


def test_cells_are_a_space_apart_and_rows_on_lines_of_their_own():
    html = "<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>after"
    assert html_text.text(html) == "a b\n\nc\n\nafter"


def test_styles_scripts_and_the_head_show_nothing():
    html = ("<head><title>T</title><style>p{color:red}</style></head><body>x"
            '<script>var a = "<p>";</script>y</body>')
    assert html_text.text(html) == "xy"


def test_entities_are_decoded_comments_dropped_and_a_lone_angle_bracket_kept():
    assert html_text.text("a < b &amp; c <!-- hidden <p> --> d") == "a < b & c d"


def test_an_unclosed_style_shows_its_text():
    assert html_text.text("<style>p{} <p>z") == "p{}\n\nz"


HOSTILE = {
    "unclosed comments": "<!--x",
    "unclosed styles": "<style>x",
    "tags never ended": "<a b='",
    "names without an end": "<div",
    "end tags without an end": "</p x",
}


@pytest.mark.parametrize("unit", HOSTILE.values(), ids=HOSTILE.keys())
def test_it_is_linear_whatever_the_html(unit):
    # 100,000 of each: milliseconds for a linear pass, minutes for one that rescans.
    finishes(lambda: html_text.text(unit * 100_000), within=5.0)
