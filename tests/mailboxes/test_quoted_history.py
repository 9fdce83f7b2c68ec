"""Quoted thread history folded as EmailEngine's web-safe HTML folds it (``<details
class="ee-collapsed-thread">``): ``mailboxes.quoted_history`` and ``web_html.web_safe``, pure."""

from __future__ import annotations

import pytest

from mailboxes import web_html
from mailboxes.quoted_history import CLOSE, OPEN, fold_html, fold_plain
from tests.mailboxes.bounded import finishes

QUOTED = "Let's meet tomorrow at 10am in the big room, bring the numbers. " * 3
GMAIL = ('<div dir="ltr">Works for me.</div><br><div class="gmail_quote"><div dir="ltr" '
         'class="gmail_attr">On Mon, Oct 13, 2025 at 10:23 AM Jane &lt;jane@example.test&gt; '
         f'wrote:<br></div><blockquote class="gmail_quote">{QUOTED}</blockquote></div>')
APPLE = (f'<html><body><div>Sure.</div><div><br><blockquote type="cite"><div>{QUOTED}</div>'
         '</blockquote></div></body></html>')
OUTLOOK = (f'<p>See below.</p><div id="appendonsend"></div><hr><div id="divRplyFwdMsg">'
           f'<b>From:</b> Jane<br><b>Sent:</b> Monday</div><div>{QUOTED}</div>')


def test_a_gmail_reply_folds_from_its_quote():
    folded = fold_html(GMAIL)
    assert folded.startswith('<div dir="ltr">Works for me.</div><br>' + OPEN
                             + '<div class="gmail_quote">')
    assert folded.endswith(CLOSE)


def test_the_block_closes_before_the_body_ends():
    folded = fold_html(APPLE)
    assert folded.endswith(CLOSE + "</body></html>")
    assert OPEN + '<blockquote type="cite">' in folded


def test_outlook_folds_from_its_reply_marker():
    assert OPEN + '<div id="appendonsend">' in fold_html(OUTLOOK)


def test_nothing_folds_without_new_text_before_or_enough_quoted_after():
    assert fold_html(f'<div class="gmail_quote">{QUOTED}</div>') is None
    assert fold_html('<p>Yes.</p><blockquote type="cite">Ok?</blockquote>') is None
    assert fold_html("<p>No quote here at all, just a message.</p>") is None


def test_never_at_a_tables_inner_tag():
    assert fold_html(f'<p>x</p><td class="gmail_quote">{QUOTED}</td>') is None


def test_a_plain_text_reply_folds_from_its_attribution():
    text = ("Works for me.\n\nOn Mon, Oct 13, 2025 at 10:23 AM Jane Smith <jane@example.test>\n"
            "wrote:\n\n" + "".join(f"> {QUOTED[:60]}\n" for _ in range(4)))
    html = fold_plain(text, web_html.from_plain)
    assert html.startswith("<p>Works for me.</p>" + OPEN + "<p>On Mon, Oct 13")
    assert html.endswith(CLOSE)


def test_plain_text_with_replies_between_quotes_is_not_folded():
    text = "> question one?\nanswer one\n> question two?\nanswer two\n" + QUOTED
    assert fold_plain(text, web_html.from_plain) is None


def test_a_forward_separator_folds():
    text = f"FYI\n\n---------- Forwarded message ---------\nFrom: Jane\n\n{QUOTED}\n"
    assert OPEN in fold_plain(text, web_html.from_plain)


def test_web_safe_keeps_the_blocks_classes_and_no_others():
    html = web_html.web_safe(GMAIL.replace("Works for me.", "Works <script>x()</script>"), None)
    assert OPEN in html
    assert 'class="gmail_quote"' not in html
    assert "<script>" not in html


def test_web_safe_makes_html_from_plain_text_folded_or_not():
    assert web_html.web_safe(None, "Hi\nthere") == "<p>Hi<br>there</p>"
    assert web_html.web_safe("", "Hi\n\n> " + QUOTED).startswith("<p>Hi</p>" + OPEN)


# --- hostile bodies: any sender writes them, and each is read on every messageNew ------------


def test_an_opening_tag_that_never_closes_is_passed_over_in_time():
    assert finishes(lambda: fold_html("<p>Hi</p><div " + "class=a " * 8_000)) is None


def test_a_quote_after_a_tag_of_many_attributes_still_folds_in_time():
    html = "<p>Hi</p><div " + "class=a " * 8_000 + f'><div class="gmail_quote">{QUOTED}</div>'
    assert finishes(lambda: fold_html(html)).startswith("<p>Hi</p><div ")
    assert OPEN + '<div class="gmail_quote">' in fold_html(html)


def test_a_body_of_quote_marks_that_ends_unquoted_is_not_folded_in_time():
    assert finishes(lambda: fold_plain(">\n" * 20_000 + "x", web_html.from_plain)) is None


def test_a_long_quoted_tail_folds_in_time():
    html = finishes(lambda: fold_plain("Hi\n\n" + "> quoted\n" * 20_000, web_html.from_plain))
    assert html.startswith("<p>Hi</p>" + OPEN)


@pytest.mark.parametrize("filler", ["<!--" * 40_000, "<style>" * 30_000, "<" * 250_000],
                         ids=["unclosed-comments", "unclosed-styles", "unclosed-tags"])
def test_openers_that_never_close_in_the_quote_are_read_in_time(filler):
    html = f'<p>Works for me.</p><div class="gmail_quote">{QUOTED}{filler}'  # and no ">" after
    assert finishes(lambda: fold_html(html)).startswith("<p>Works for me.</p>" + OPEN)
