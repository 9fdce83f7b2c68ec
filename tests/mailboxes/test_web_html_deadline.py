"""Sanitizing a message's HTML holds the calling thread a bounded time, whatever a sender wrote:
HTML over ``web_html.IN_THREAD_LIMIT`` is sanitized in a helper process (``sanitize_pool``)
killed past ``HTML_SANITIZE_SECONDS``, and the reader then gets the message's text.

The hostile shapes are those a fuzz found that the nesting bound (``html_nesting``) counts as
shallow while html5ever nests them as deep as they are long (seconds to tens of seconds each at
200 KB in the thread), and formatting elements the parser copies into every new list item
(quadratic output: 9 KB became 4.7 MB; at 200 KB the helper hits its memory cap)."""

from __future__ import annotations

import re
import threading
import time

import pytest

from bench import fuzz_sanitize
from mailboxes import html_clean, quoted_history, sanitize_pool, web_html
from mailboxes import sanitize_helper as jobs
from tests.mailboxes.bounded import finishes
from tests.servers import seed

DEADLINE = 1
# The deadline, and room for the round trip and a busy machine.
WITHIN = 2.5
SHAPES = {
    "dd and li close only their own kind": "<dd>x<li>",
    "ignored cell between": "<dd><td><code><li>x",
    "formatting reopened by the parser": "</tr><s>x</i><i><b>x",
    "formatting reopened, b and s": "</td></b><b>x<s>x",
    "anchors and formatting": "</a></li><a>x</u><code>x<font>x",
}
DANGER = ('<script>alert(1)</script><img src=x onerror="alert(2)">'
          '<a href="javascript:alert(3)">click</a>')
NEWSLETTER_BLOCK = (
    '<table width="600" cellpadding="0" style="border-collapse:collapse"><tr>'
    '<td style="padding:8px;font-family:Arial"><div><span style="color:#333">News '
    '<b>item</b></span><br><a href="https://example.test/x">Read more</a>'
    '<img src="https://example.test/i.png" width="40"></div></td></tr></table>\n')
OUTLOOK = ('<html><head><style>p.MsoNormal{margin:0}</style></head><body>'
           '<!--[if mso]><table><tr><td><![endif]--><p class="MsoNormal">Hello &amp; welcome'
           '<o:p></o:p></p><!--[if mso]></td></tr></table><![endif]-->'
           '<img src="cid:logo@x"><img src="/relative.png"></body></html>')
GMAIL_REPLY = ('<div dir="ltr">Sounds good.</div><br><div class="gmail_quote">'
               '<div class="gmail_attr">On Mon, Bob wrote:<br></div><blockquote '
               'class="gmail_quote">' + "<p>Earlier text, quoted.</p>" * 200
               + "</blockquote></div>")


def _hostile(unit: str, size: int = 400_000) -> str:
    half = unit * (size // len(unit) // 2)
    return half + DANGER + half


def _copied_formatting(size: int) -> str:
    """Formatting elements (each with its own attribute, so none is dropped as a duplicate)
    left open in a list item: the parser copies all of them into every next item."""
    opened = "".join(f"<b title={n}>" for n in range(size // 20))
    items = "<li>x" * ((size - len(opened)) // 5)
    return "<li>" + opened + items


def _assert_safe(html: str) -> None:
    assert "<script" not in html
    assert "onerror" not in html
    assert "javascript:" not in html


@pytest.fixture
def deadline(settings):
    """A one-second deadline, and this process's helpers started (a helper's start is not
    counted in the deadline: it happens once per helper)."""
    settings.HTML_SANITIZE_SECONDS = DEADLINE
    web_html.sanitize(NEWSLETTER_BLOCK * 40)


@pytest.fixture
def small_pool():
    pool = sanitize_pool.Pool(size=1)
    yield pool
    pool.close()


@pytest.mark.parametrize("unit", SHAPES.values(), ids=SHAPES.keys())
def test_hostile_shapes_are_sanitized_within_the_bound(deadline, unit):
    _assert_safe(finishes(lambda: web_html.sanitize(_hostile(unit)), within=WITHIN))


def test_formatting_copied_into_every_item_is_bounded_in_time_and_memory(deadline):
    html = _copied_formatting(200_000)
    _assert_safe(finishes(lambda: web_html.sanitize(html + DANGER), within=WITHIN))


@pytest.mark.parametrize("seed_number", [1, 2, 3])
def test_fuzzed_shapes_are_sanitized_within_the_bound(deadline, seed_number):
    for unit, html in fuzz_sanitize.shapes(seed_number, 4, 200_000):
        started = time.monotonic()
        web_html.sanitize(html)
        assert time.monotonic() - started < WITHIN, unit


REAL = {
    "newsletter": NEWSLETTER_BLOCK * 400,
    "outlook": OUTLOOK * 20,
    "gmail reply": GMAIL_REPLY,
    "deep divs (flattened)": "<div>" * 2000 + "x" + "</div>" * 2000,
}


@pytest.mark.parametrize("html", REAL.values(), ids=REAL.keys())
def test_real_html_comes_back_from_a_helper_as_the_thread_sanitizes_it(deadline, html):
    assert len(html) > web_html.IN_THREAD_LIMIT  # so it goes to a helper
    assert web_html.sanitize(html) == html_clean.sanitize(html)
    assert web_html.web_safe(html, "plain") == html_clean.web_safe(html)
    assert web_html.with_images_limited(html, False) == html_clean.images_limited(html, False)
    assert web_html.with_images_limited(html, True) == html_clean.images_limited(html, True)


def test_the_folded_history_of_a_reply_survives_the_helper(deadline):
    html = web_html.web_safe(GMAIL_REPLY, None)
    assert f'<details class="{quoted_history.COLLAPSE_CLASS}">' in html


def test_past_the_deadline_the_plain_part_is_shown(deadline):
    plain = "Hello there.\n\nOn Monday, Bob wrote:\n> earlier\n> text\n"
    html = finishes(lambda: web_html.web_safe(_hostile("<dd>x<li>", 400_000), plain),
                    within=WITHIN)
    assert html == web_html.web_safe(None, plain)


def test_past_the_deadline_without_a_plain_part_the_htmls_own_text_is_shown(deadline):
    hostile = ("<html><head><style>p{color:red}</style></head><body><p>Dear reader,</p>"
               "<p>the news &amp; more</p>" + _hostile("<dd>x<li>", 400_000))
    html = finishes(lambda: web_html.web_safe(hostile, ""), within=WITHIN)
    assert html.startswith("<p>Dear reader,</p><p>the news &amp; more</p>")
    assert "color:red" not in html
    _assert_safe(html)


def test_past_the_deadline_the_dashboards_frame_shows_the_text(deadline):
    hostile = "<p>Dear reader,</p>" + _hostile("<dd>x<li>", 400_000)
    html = finishes(lambda: web_html.with_images_limited(hostile, True), within=WITHIN)
    assert html.startswith("<p>Dear reader,</p>")
    assert not re.search(r"<(?!/?p>|br>)", html)  # text only: paragraphs and line breaks


def test_a_helper_past_the_deadline_is_killed_and_the_next_one_answers(small_pool):
    benign = NEWSLETTER_BLOCK * 40
    assert small_pool.run(jobs.SANITIZE, benign, DEADLINE) == html_clean.sanitize(benign)
    [first] = small_pool._idle
    started = time.monotonic()
    assert small_pool.run(jobs.SANITIZE, _hostile("<dd>x<li>", 400_000), DEADLINE) is None
    assert time.monotonic() - started < WITHIN
    assert first.process.poll() is not None  # killed (and reaped)
    assert small_pool.run(jobs.SANITIZE, benign, DEADLINE) == html_clean.sanitize(benign)
    [second] = small_pool._idle
    assert second.process.pid != first.process.pid


def test_a_helper_that_runs_out_of_memory_is_replaced(small_pool):
    assert small_pool.run(jobs.SANITIZE, _copied_formatting(200_000), 30) is None
    assert small_pool._idle == []
    assert small_pool.run(jobs.SANITIZE, "<b>fine</b>" * 300, DEADLINE) == "<b>fine</b>" * 300


def test_threads_share_the_helpers(deadline):
    html = NEWSLETTER_BLOCK * 100
    expected = html_clean.sanitize(html)
    answers: list[str] = []

    def read() -> None:
        answers.append(web_html.sanitize(html))

    threads = [threading.Thread(target=read) for _ in range(8)]

    def all_of_them() -> None:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    finishes(all_of_them, within=10)
    assert answers == [expected] * 8
    assert len(sanitize_pool.pool()._idle) <= sanitize_pool.HELPERS


def test_short_html_is_sanitized_in_the_thread(monkeypatch):
    def no_helper(kind, html):
        raise AssertionError("a helper was asked")

    monkeypatch.setattr(sanitize_pool, "run", no_helper)
    html = "<p>hi<script>x</script></p>" * 70
    assert len(html) <= web_html.IN_THREAD_LIMIT
    assert web_html.sanitize(html) == html_clean.sanitize(html)


def test_the_worst_shape_found_is_cheap_at_the_in_thread_limit():
    # The copied formatting, the costliest per byte found: 9 KB took 0.5 s in the thread.
    html = _copied_formatting(web_html.IN_THREAD_LIMIT)
    started = time.monotonic()
    html_clean.sanitize(html)
    assert time.monotonic() - started < 0.25


def test_an_answer_far_larger_than_the_html_is_refused():
    html = _copied_formatting(9_000)  # 4.7 MB of copies
    status, _body = jobs.answer(jobs.SANITIZE, html.encode())
    assert status == jobs.FAILED
    assert len(html_clean.sanitize(html)) > jobs.output_limit(len(html))


@pytest.fixture
def inbox_messages():
    hostile = "<p>hello</p>" + "<dd>x<li>" * 40_000
    return {"hostile": seed.make_message(subject="Copied formatting", body="Plain hello\n",
                                         html=hostile)}


@pytest.mark.django_db
def test_web_safe_html_of_a_hostile_message_is_its_plain_text_past_the_deadline(synced,
                                                                                 deadline):
    started = time.monotonic()
    response = synced.client.get(f"/v1/account/box/message/{synced.id_of['hostile']}",
                                 {"webSafeHtml": "true"})
    assert response.status_code == 200
    assert time.monotonic() - started < 5.0  # 10 s and more of sanitizing alone before
    text = response.json()["text"]
    assert text["html"] == "<p>Plain hello</p>"
    assert text["webSafe"] is True
