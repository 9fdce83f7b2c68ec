"""Quoted thread history folded as EmailEngine's web-safe HTML folds it (``<details
class="ee-collapsed-thread">``): ``mailboxes.quoted_history`` and ``web_html.web_safe``, pure."""

from __future__ import annotations

from mailboxes import web_html
from mailboxes.quoted_history import CLOSE, OPEN, fold_html, fold_plain

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
